#!/bin/sh
# run.sh BUILD_DIR -- the power-loss model: storectl and s3d run with the
# recorder preloaded (BUILD_DIR/tests/powerloss/libplrecorder.so), then
# every chosen crash point is rebuilt under the strict durability model and
# checked with storectl (powerloss.py, replay.py; docs/durability.md).
#
# Uses BUILD_DIR/storectl/storectl and BUILD_DIR/s3d/s3d, and the python3
# that has boto3 (resolved now: it runs under env -i, so the machine's
# AWS_* and proxy settings never reach a client).  Listens on 127.0.0.1.
#
# Prints `ok NAME` / `FAIL NAME: reason`, a line
# `powerloss: workloads W, crash points P, objects checked N, losses L`
# and `N passed, N failed`; exits non-zero on any failure.
#
#   PL_POINTS=N       crash points over all workloads (default 300; 60 in
#                     an ASan build)
#   PL_SCALE=X        workload size multiplier (default 1)
#   PL_SEED=N         seed of the crash point and variant choice (default 1)
#   PL_VARIANTS=X     share of points also checked with unsynced changes
#                     partly surviving (default 0.4)
#   PL_WORKLOADS="cli s3 negative"   run only some
#   PL_KEEP=1         keep the temp directory (and up to 3 failing states
#                     per workload)
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)
for f in "$build/storectl/storectl" "$build/s3d/s3d" \
         "$build/tests/powerloss/libplrecorder.so"; do
  [ -e "$f" ] || { echo "run.sh: $f not built" >&2; exit 2; }
done
py=$(python3 -c 'import sys; print(sys.executable)') || exit 1
"$py" -c 'import boto3' 2>/dev/null || { echo "run.sh: boto3 missing for $py" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/powerloss.XXXXXX") || exit 1
: >"$T/pids"
# Thousands of directories are made and removed per run (256 chunk fan-out
# directories per crash state): on a tmpfs of our own that costs nothing.
# Without root (or without tmpfs) the run just takes longer.
W="$T/fs"
mkdir "$W"
mounted=0
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=4g,mode=700 tmpfs "$W" 2>/dev/null; then
  mounted=1
fi
ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$T"
}
pypid=
cleanup() {
  [ -n "$pypid" ] && kill -TERM "$pypid" 2>/dev/null
  if [ -s "$T/pids" ]; then
    while read -r p; do
      ours "$p" && kill -KILL "$p" 2>/dev/null
    done <"$T/pids"
  fi
  if [ "${PL_KEEP:-0}" = 1 ]; then
    echo "# kept $T (a tmpfs on $W: umount it when done)"
  else
    [ $mounted = 1 ] && umount -l "$W" 2>/dev/null
    rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'cat "$T/out" 2>/dev/null; echo "FAIL interrupted"; exit 130' INT TERM

env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$W" LANG=C.UTF-8 \
    TMPDIR="$W" FAULT_PIDS="$T/pids" PYTHONDONTWRITEBYTECODE=1 \
    PL_POINTS="${PL_POINTS:-}" PL_SCALE="${PL_SCALE:-1}" \
    PL_SEED="${PL_SEED:-1}" PL_VARIANTS="${PL_VARIANTS:-}" \
    PL_WORKLOADS="${PL_WORKLOADS:-}" PL_KEEP="${PL_KEEP:-0}" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    "$py" "$here/powerloss.py" "$build" "$W" >"$T/out" 2>&1 &
pypid=$!
wait "$pypid"
rc=$?
pypid=
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out" | tail -1)
if [ -z "$line" ]; then
  p=$(grep -c '^ok ' "$T/out")
  f=$(grep -c '^FAIL ' "$T/out")
  echo "FAIL powerloss.py: exited $rc without a summary"
  echo "$p passed, $((f + 1)) failed"
  exit 1
fi
echo "$line"
case "$line" in
  *", 0 failed") [ $rc -eq 0 ] || exit 1 ;;
  *) exit 1 ;;
esac
exit 0
