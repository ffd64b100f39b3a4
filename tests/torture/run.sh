#!/bin/sh
# run.sh BUILD_DIR [--rounds N] [--seconds S] [--seed N] -- crash torture:
# s3d and fusefs on one store under concurrent S3 PUTs (inline and
# multi-chunk), multipart uploads (completed and aborted), writes, renames
# (files and a directory) and unlinks through the mount, deletes from both
# doors and `storectl gc`, while one of {s3d, fusefs, the running gc} is
# killed with SIGKILL at a random moment each round and restarted.  After
# each round: every acknowledged write reads back (S3 and the mount), an
# operation in flight at the kill is all or nothing, fsck is clean and GC
# leaves no stray chunk.  docs/torture.md says what is checked and how.
#
# Uses BUILD_DIR/s3d/s3d, BUILD_DIR/fusefs/fusefs, BUILD_DIR/storectl/storectl
# and tests/faults/fcommon.py.  Needs root (/dev/fuse), fusermount3 and the
# python3 that has boto3 (resolved now; it runs under env -i, so the
# machine's AWS_* and proxy settings never reach a client).  Everything
# listens on 127.0.0.1 only.
#
# The loop stops after N rounds or S seconds, whichever comes first
# (defaults 12 and 60: the CI form; the long form is e.g.
# `--rounds 100000 --seconds 900`).  Also from the environment:
#   TORTURE_ROUNDS, TORTURE_SECONDS, TORTURE_SEED (repeat a run's choices),
#   TORTURE_LOAD="2.5-5" (seconds of load per round), TORTURE_TARGETS="s3d
#   fusefs gc" (what may be killed), FAULT_KEEP=1 (keep the temp directory).
#
# Prints `ok NAME` / `FAIL NAME: reason`, the line
# `torture: rounds R, kills K (s3d a, fusefs b, gc c), objects checked N, ...`
# and ends with `N passed, N failed`; exits non-zero on any failure.  Every
# mount and process it started is gone when it exits, whatever happens.
set -u
usage() {
  echo "usage: $0 BUILD_DIR [--rounds N] [--seconds S] [--seed N]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
build=$(cd "$1" && pwd) || exit 2
shift
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --rounds) TORTURE_ROUNDS=$2 ;;
    --seconds) TORTURE_SECONDS=$2 ;;
    --seed) TORTURE_SEED=$2 ;;
    *) usage ;;
  esac
  shift 2
done
here=$(cd "$(dirname "$0")" && pwd)
for f in "$build/s3d/s3d" "$build/fusefs/fusefs" "$build/storectl/storectl"; do
  [ -x "$f" ] || { echo "run.sh: $f not built" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "ok torture # SKIP needs root (FUSE)"
  echo "1 passed, 0 failed"
  exit 0
fi
py=$(python3 -c 'import sys; print(sys.executable)') || exit 1

T=$(mktemp -d "${TMPDIR:-/tmp}/torture.XXXXXX") || exit 1
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
    TORTURE_ROUNDS="${TORTURE_ROUNDS:-12}" TORTURE_SECONDS="${TORTURE_SECONDS:-60}" \
    TORTURE_SEED="${TORTURE_SEED:-}" TORTURE_LOAD="${TORTURE_LOAD:-}" \
    TORTURE_TARGETS="${TORTURE_TARGETS:-}" TORTURE_KNOWN="${TORTURE_KNOWN:-}" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    "$py" "$here/torture.py" "$build" "$T" >"$T/out" 2>&1 &
pypid=$!
wait "$pypid"
rc=$?
pypid=
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out" | tail -1)
if [ -z "$line" ]; then
  p=$(grep -c '^ok ' "$T/out")
  f=$(grep -c '^FAIL ' "$T/out")
  echo "FAIL torture.py: exited $rc without a summary"
  echo "$p passed, $((f + 1)) failed"
  exit 1
fi
echo "$line"
case "$line" in
  *", 0 failed") [ $rc -eq 0 ] || exit 1 ;;
  *) exit 1 ;;
esac
exit 0
