#!/bin/sh
# run.sh BUILD_DIR -- security checks of s3d, fusefs and storectl: every S3
# operation without valid credentials (anonymous, wrong signature, unknown
# key, revoked key; headers, presigned URLs, POST forms) is refused with
# the right code and changes nothing; bucket ownership between users; keys,
# buckets, Host headers and upload ids that try to leave the store
# directory, `storectl export` of such keys, ".." on the mount; secrets in
# logs and at rest; slowloris connections.
#
# Uses BUILD_DIR/s3d/s3d, BUILD_DIR/fusefs/fusefs, BUILD_DIR/storectl/storectl
# and tests/faults/fcommon.py.  Needs root (FUSE, setpriv to another user)
# and the python3 that has boto3 (resolved now; it runs under env -i).
# Everything listens on 127.0.0.1 only and is bounded in count and time.
#
# Prints `ok NAME` / `FAIL NAME: reason` and ends with `N passed, N failed`;
# exits non-zero on any failure.  Every mount and process it started is
# gone when it exits, whatever happens.
#
#   SECURITY_TESTS="auth ownership paths secrets slowloris"  run only some
#   SLOWLORIS_N=220                                         slow connections
#   FAULT_KEEP=1                                            keep the temp dir
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)
for f in "$build/s3d/s3d" "$build/fusefs/fusefs" "$build/storectl/storectl"; do
  [ -x "$f" ] || { echo "run.sh: $f not built" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "ok security # SKIP needs root (FUSE, setpriv)"
  echo "1 passed, 0 failed"
  exit 0
fi
py=$(python3 -c 'import sys; print(sys.executable)') || exit 1

T=$(mktemp -d "${TMPDIR:-/tmp}/security.XXXXXX") || exit 1
: >"$T/pids"

# ours PID: the process is still one we started (its command line names $T),
# so a recycled pid is never signalled.
ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$T"
}
pypid=
cleanup() {
  [ -n "$pypid" ] && kill -TERM "$pypid" 2>/dev/null
  # processes first (a fusefs holding a mount), then mounts, deepest first
  if [ -s "$T/pids" ]; then
    while read -r p; do
      ours "$p" && kill -TERM "$p" 2>/dev/null
    done <"$T/pids"
    sleep 0.5
  fi
  awk -v t="$T" '$2 == t || index($2, t "/") == 1 { print $2 }' /proc/mounts |
    sort -r | while read -r m; do
      fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
  if [ -s "$T/pids" ]; then
    while read -r p; do
      ours "$p" && kill -KILL "$p" 2>/dev/null
    done <"$T/pids"
  fi
  if [ "${FAULT_KEEP:-0}" = 1 ]; then
    echo "# kept $T"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'cat "$T/out" 2>/dev/null; echo "FAIL interrupted"; exit 130' INT TERM

env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T" LANG=C.UTF-8 \
    TMPDIR="$T" FAULT_PIDS="$T/pids" PYTHONDONTWRITEBYTECODE=1 \
    SECURITY_TESTS="${SECURITY_TESTS:-auth ownership paths secrets slowloris}" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    "$py" "$here/security.py" "$build" "$T" >"$T/out" 2>&1 &
pypid=$!
wait "$pypid"
rc=$?
pypid=
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out" | tail -1)
if [ -z "$line" ]; then
  p=$(grep -c '^ok ' "$T/out")
  f=$(grep -c '^FAIL ' "$T/out")
  echo "FAIL security.py: exited $rc without a summary"
  echo "$p passed, $((f + 1)) failed"
  exit 1
fi
echo "$line"
case "$line" in
  *", 0 failed") [ $rc -eq 0 ] || exit 1 ;;
  *) exit 1 ;;
esac
exit 0
