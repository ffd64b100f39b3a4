#!/usr/bin/env bash
# tests/interop/run.sh BUILD_DIR -- fusefs and s3d on one store, with real
# S3 clients on one side and the mount on the other.
#
# Starts one store (storectl init), one s3d on 127.0.0.1 (a free port), one
# fusefs mount of the whole store and one s3fs-fuse mount of the test bucket
# through s3d; then interop_checks.py runs the checks (aws CLI, boto3,
# rclone, s3fs against the mount, coherence, a bounded mixed load).  Every
# client runs with its own scrubbed environment (env -i, HOME in a temp dir,
# explicit AWS_* variables, config and credential files in the temp dir): the
# machine's AWS_* settings never reach a client.
#
# Needs root and /dev/fuse, fusermount3, the machine's python3 with boto3 and
# the aws CLI, and s3fs, rclone from Debian.  A missing tool is a failure.
#
# Prints "ok NAME" / "FAIL NAME: reason" per check and ends with the line
# "N passed, N failed"; exit status non-zero if any check failed.  Whatever
# happens, both mounts are unmounted and every process started here is
# stopped (trap).
#
# Environment: INTEROP_LOAD_SECONDS (mixed load, default 20), INTEROP_ONLY
# (a regex: run only the matching checks; they run in order and some use
# what earlier ones made), INTEROP_TIMEOUT (of the checks,
# default 480 s),
# INTEROP_KEEP=1 (keep the temp directory: logs, store), TEST_TMPDIR.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd) || exit 2
HERE=$(cd "$(dirname "$0")" && pwd)
S3D=$BUILD/s3d/s3d
FUSEFS=$BUILD/fusefs/fusefs
SC=$BUILD/storectl/storectl
for f in "$S3D" "$FUSEFS" "$SC"; do
  [ -x "$f" ] || { echo "run.sh: $f not built" >&2; exit 2; }
done

passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# The Python that has boto3 and the aws CLI.  pyenv shims need HOME and the
# machine's environment, so resolve the real interpreter before scrubbing.
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if [ -z "$PY" ] || ! "$PY" -c 'import boto3' 2>/dev/null; then
  fail setup "no python3 with boto3"
  finish
fi
PYBIN=$(dirname "$PY")

T=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/interop.XXXXXX") || exit 2
chmod 755 "$T"
STORE=$T/store
MNT=$T/mnt
S3FS_MNT=$T/s3fs
mkdir -p "$MNT" "$S3FS_MNT" "$T/home-s3fs" "$T/home-py" "$T/work"

ACCESS=AKIAINTEROPTEST00001
SECRET=interopTestSecret/0123456789abcdefghijkl
BUCKET=interop

S3D_PID=
FS_PID=
S3FS_PID=
cleanup() {
  local p i
  mountpoint -q "$S3FS_MNT" 2>/dev/null && fusermount3 -u -z "$S3FS_MNT" 2>/dev/null
  mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u -z "$MNT" 2>/dev/null
  for p in $S3FS_PID $FS_PID $S3D_PID; do
    kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
  done
  for p in $S3FS_PID $FS_PID $S3D_PID; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  if [ "${INTEROP_KEEP:-0}" = 1 ]; then
    echo "# kept $T"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_mounted() { # MNT TENTHS
  local i
  for ((i = 0; i < $2; i++)); do
    mountpoint -q "$1" && return 0
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------ store
if ! env -i PATH=/usr/bin:/bin HOME="$T" STORE_ACCESS_KEY=$ACCESS STORE_SECRET_KEY=$SECRET \
    "$SC" --store "$STORE" init >"$T/init.out" 2>&1 ||
   ! "$SC" --store "$STORE" bucket create "$BUCKET" >>"$T/init.out" 2>&1; then
  fail setup "storectl init: $(tail -n 2 "$T/init.out" | tr '\n' ' ')"
  finish
fi

# ------------------------------------------------------------------ s3d
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ENDPOINT=http://127.0.0.1:$PORT
env -i PATH=/usr/bin:/bin HOME="$T" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" "$S3D" --store "$STORE" --listen "127.0.0.1:$PORT" \
  >"$T/s3d.log" 2>&1 &
S3D_PID=$!
up=0
for ((i = 0; i < 100; i++)); do
  kill -0 "$S3D_PID" 2>/dev/null || break
  if "$PY" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('$ENDPOINT/health', timeout=2).status == 200 else 1)" 2>/dev/null; then
    up=1
    break
  fi
  sleep 0.1
done
if [ $up -eq 1 ]; then ok s3d_up; else fail s3d_up "$(tail -c 300 "$T/s3d.log")"; finish; fi

# ------------------------------------------------------------------ fusefs
"$FUSEFS" --store "$STORE" "$MNT" -f -o allow_other 2>"$T/fusefs.log" &
FS_PID=$!
if wait_mounted "$MNT" 150 && [ -d "$MNT/$BUCKET" ]; then
  ok fusefs_mount
else
  fail fusefs_mount "$(head -c 300 "$T/fusefs.log")"
  finish
fi

# ------------------------------------------------------------------ s3fs
# The options of tests/s3/test_tools.py: path-style, SigV4, 1 s stat cache.
S3FS_OK=
if command -v s3fs >/dev/null; then
  printf '%s:%s\n' "$ACCESS" "$SECRET" >"$T/home-s3fs/passwd-s3fs"
  chmod 600 "$T/home-s3fs/passwd-s3fs"
  env -i PATH=/usr/bin:/bin HOME="$T/home-s3fs" LANG=C.UTF-8 \
    s3fs "$BUCKET" "$S3FS_MNT" -f -o url="$ENDPOINT" -o use_path_request_style \
    -o passwd_file="$T/home-s3fs/passwd-s3fs" -o endpoint=us-east-1 -o sigv4 \
    -o stat_cache_expire=1 -o enable_noobj_cache >"$T/s3fs.log" 2>&1 &
  S3FS_PID=$!
  if wait_mounted "$S3FS_MNT" 150; then
    ok s3fs_mount
    S3FS_OK=1
  else
    fail s3fs_mount "$(tail -c 300 "$T/s3fs.log")"
  fi
else
  fail s3fs_mount "s3fs is not installed"
fi

# ------------------------------------------------------------------ checks
# interop_checks.py runs with env -i; it gives each client program its own
# clean environment in turn.
timeout -k 10 "${INTEROP_TIMEOUT:-480}" env -i PATH="$PYBIN:/usr/local/bin:/usr/bin:/bin" HOME="$T/home-py" \
  LANG=C.UTF-8 TMPDIR="$T/work" PYTHONDONTWRITEBYTECODE=1 \
  INTEROP_ENDPOINT="$ENDPOINT" INTEROP_ACCESS="$ACCESS" INTEROP_SECRET="$SECRET" \
  INTEROP_BUCKET="$BUCKET" INTEROP_MNT="$MNT" INTEROP_S3FS="${S3FS_OK:+$S3FS_MNT}" \
  INTEROP_WORK="$T/work" INTEROP_S3D_LOG="$T/s3d.log" INTEROP_FUSEFS_LOG="$T/fusefs.log" \
  INTEROP_STORE="$STORE" INTEROP_STORECTL="$SC" \
  INTEROP_LOAD_SECONDS="${INTEROP_LOAD_SECONDS:-20}" INTEROP_ONLY="${INTEROP_ONLY:-}" \
  INTEROP_KNOWN="${INTEROP_KNOWN:-}" \
  "$PY" "$HERE/interop_checks.py" >"$T/py.out" 2>"$T/py.err"
rc=$?
cat "$T/py.out"
p=$(grep -c '^ok ' "$T/py.out")
f=$(grep -c '^FAIL ' "$T/py.out")
passed=$((passed + p))
failed=$((failed + f))
if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
  fail interop_checks "exit $rc: $(tail -n 3 "$T/py.err" | tr '\n' ' ')"
elif [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
  fail interop_checks "exit $rc (timeout or crash): $(tail -n 3 "$T/py.err" | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ shutdown
if [ -n "$S3FS_PID" ]; then
  fusermount3 -u "$S3FS_MNT" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$S3FS_PID" 2>/dev/null || break; sleep 0.1; done
fi

fusermount3 -u "$MNT" 2>"$T/umount.err"
for ((i = 0; i < 300; i++)); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$FS_PID" 2>/dev/null; then
  fail fusefs_unmount "still running after fusermount3 -u: $(cat "$T/umount.err")"
else
  wait "$FS_PID"
  rc=$?
  FS_PID=
  if [ $rc -eq 0 ] && ! mountpoint -q "$MNT"; then ok fusefs_unmount; else fail fusefs_unmount "exit $rc"; fi
fi

kill -TERM "$S3D_PID"
for ((i = 0; i < 300; i++)); do kill -0 "$S3D_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$S3D_PID" 2>/dev/null; then
  fail s3d_stop "still running 30 s after SIGTERM"
else
  wait "$S3D_PID"
  rc=$?
  S3D_PID=
  if [ $rc -eq 0 ]; then ok s3d_stop; else fail s3d_stop "exit $rc"; fi
fi

# Over the whole run: no lock errors, no 5xx, no sanitizer report.
bad=$(grep -E -m3 'database is locked|database table is locked|catalog is busy|SQLITE_BUSY| 5[0-9][0-9] [0-9]+ [0-9]+ |runtime error|Sanitizer' "$T/s3d.log")
if [ -z "$bad" ]; then ok s3d_log_clean; else fail s3d_log_clean "$(echo "$bad" | tr '\n' ' ' | head -c 400)"; fi
bad=$(grep -v -E '^\s*$' "$T/fusefs.log" | head -n 3)
if [ -z "$bad" ]; then ok fusefs_log_clean; else fail fusefs_log_clean "$(echo "$bad" | tr '\n' ' ' | head -c 400)"; fi

if "$SC" --store "$STORE" fsck >"$T/fsck.out" 2>&1; then
  ok store_fsck_after
else
  fail store_fsck_after "$(tail -n 3 "$T/fsck.out" | tr '\n' ' ')"
fi

finish
