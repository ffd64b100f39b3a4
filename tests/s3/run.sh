#!/bin/sh
# run.sh BUILD_DIR -- the s3d black-box suite: real s3d processes (HTTP and
# TLS) against boto3, the aws CLI, s3cmd, rclone, curl, s3fs and hand-built
# requests.  Uses BUILD_DIR/s3d/s3d and BUILD_DIR/storectl/storectl.
#
# Each script prints `ok NAME` / `FAIL NAME: reason` and `N passed, N failed`;
# this script prints the totals the same way and exits non-zero on any
# failure.  Every script runs with a scrubbed environment (env -i): the
# machine's AWS_* settings never reach a client.
#
#   S3D_TESTS="raw boto3"   run only some scripts
#   S3D_MEM_TEST_MB=N       size of the streaming memory test (default 1024)
#   S3D_KEEP=1              keep the temp directories (logs, stores)
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)
for f in "$build/s3d/s3d" "$build/storectl/storectl"; do
  [ -x "$f" ] || { echo "run.sh: $f not built" >&2; exit 1; }
done

# The Python that has boto3 and the aws CLI (pyenv shims need HOME, so
# resolve the real interpreter now).
py=$(python3 -c 'import sys; print(sys.executable)') || exit 1
"$py" -c 'import boto3' 2>/dev/null || { echo "run.sh: boto3 missing for $py" >&2; exit 1; }

# Under AddressSanitizer the daemon's RSS includes shadow memory.
bound=${S3D_MEM_BOUND_MB:-96}
if ldd "$build/s3d/s3d" 2>/dev/null | grep -q libasan; then bound=${S3D_MEM_BOUND_MB:-1024}; fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

tests=${S3D_TESTS:-"raw boto3 awscli tools memory"}
pass=0 fail=0 status=0
for t in $tests; do
  echo "# test_$t.py"
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$tmp" LANG=C.UTF-8 \
      TMPDIR="${TMPDIR:-/tmp}" S3D_BUILD="$build" \
      S3D_MEM_TEST_MB="${S3D_MEM_TEST_MB:-1024}" S3D_MEM_BOUND_MB="$bound" \
      S3D_KEEP="${S3D_KEEP:-0}" PYTHONDONTWRITEBYTECODE=1 \
      ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
      "$py" "$here/test_$t.py" "$build" >"$tmp/out" 2>&1
  rc=$?
  cat "$tmp/out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/out" | tail -1)
  if [ -z "$line" ]; then
    echo "FAIL test_$t.py: exited $rc without a summary"
    fail=$((fail + 1))
    status=1
    continue
  fi
  p=${line%% passed*}
  f=${line#*, }
  f=${f%% failed}
  pass=$((pass + p))
  fail=$((fail + f))
  [ "$rc" -eq 0 ] || status=1
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] || status=1
exit $status
