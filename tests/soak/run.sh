#!/bin/sh
# run.sh BUILD_DIR -- the short soak of s3d and fusefs on one store (CI).
#
# soak.py starts a store, s3d on 127.0.0.1 and a fusefs mount, runs four
# deterministic probes of open bugs (fusefs; gc vs. a GET), then
# BUILD_DIR/bench/s3_soak:
# SOAK_SECONDS (default 40) of many S3 connections and mount workers on
# shared keys with every byte checked, a verification pass over both doors,
# memory bounds, clean shutdown and `storectl fsck`.  bench/soak.sh is the
# long form; bench/soak_README.md explains the checks and the figures.
#
# Needs root (/dev/fuse) and fusermount3; python3 without extra modules.
# Everything listens on 127.0.0.1 only, and every client runs under env -i
# (the machine's AWS_* settings never reach it).
#
# Prints `ok NAME` / `FAIL NAME: reason` and ends with `N passed, N failed`;
# exits non-zero on any failure.  Every mount and process it started is
# gone when it exits, whatever happens.
#
#   SOAK_SECONDS, SOAK_CONNS, SOAK_MOUNT_WORKERS, ...   see soak.py
#   SOAK_KNOWN=a,b     checks failing today because of open fusefs bugs
#   SOAK_KEEP=1        keep the temp directory (store, logs, soak.json)
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)
for f in "$build/s3d/s3d" "$build/fusefs/fusefs" "$build/storectl/storectl" \
         "$build/bench/s3_soak"; do
  [ -x "$f" ] || { echo "run.sh: $f not built" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "ok soak # SKIP needs root (FUSE)"
  echo "1 passed, 0 failed"
  exit 0
fi
py=$(python3 -c 'import sys; print(sys.executable)') || exit 1

T=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/var/tmp}}/soak.XXXXXX") || exit 1
chmod 755 "$T"
: >"$T/pids"

# ours PID: the process is still one we started (its command line names $T),
# so a recycled pid is never signalled.
ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$T"
}
pypid=
cleanup() {
  [ -n "$pypid" ] && kill -TERM "$pypid" 2>/dev/null
  # processes first (s3_soak, then the daemons), then mounts
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
  if [ "${SOAK_KEEP:-0}" = 1 ]; then
    echo "# kept $T"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
interrupted() {
  cat "$T/out" 2>/dev/null
  echo "FAIL interrupted"
  echo "$(grep -c '^ok ' "$T/out" 2>/dev/null) passed," \
       "$(( $(grep -c '^FAIL ' "$T/out" 2>/dev/null) + 1 )) failed"
  exit 130
}
trap interrupted INT TERM

env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T" LANG=C.UTF-8 \
    TMPDIR="$T" FAULT_PIDS="$T/pids" PYTHONDONTWRITEBYTECODE=1 \
    SOAK_KNOWN="${SOAK_KNOWN:-}" SOAK_SECONDS="${SOAK_SECONDS:-}" \
    SOAK_CONNS="${SOAK_CONNS:-}" SOAK_MOUNT_WORKERS="${SOAK_MOUNT_WORKERS:-}" \
    SOAK_SCALE="${SOAK_SCALE:-}" SOAK_LARGE_MAX_MIB="${SOAK_LARGE_MAX_MIB:-}" \
    SOAK_SEED="${SOAK_SEED:-}" SOAK_GC_EVERY="${SOAK_GC_EVERY:-}" \
    SOAK_MEM_EVERY="${SOAK_MEM_EVERY:-}" SOAK_DRAIN="${SOAK_DRAIN:-}" \
    SOAK_REPORT="${SOAK_REPORT:-}" \
    SOAK_RSS_GROWTH_S3D="${SOAK_RSS_GROWTH_S3D:-}" \
    SOAK_RSS_GROWTH_FUSEFS="${SOAK_RSS_GROWTH_FUSEFS:-}" \
    SOAK_RSS_PEAK_S3D="${SOAK_RSS_PEAK_S3D:-}" \
    SOAK_RSS_PEAK_FUSEFS="${SOAK_RSS_PEAK_FUSEFS:-}" \
    SOAK_RSS_LATE_S3D="${SOAK_RSS_LATE_S3D:-}" \
    SOAK_RSS_LATE_FUSEFS="${SOAK_RSS_LATE_FUSEFS:-}" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    "$py" "$here/soak.py" "$build" "$T" >"$T/out" 2>&1 &
pypid=$!
wait "$pypid"
rc=$?
pypid=
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out" | tail -1)
if [ -z "$line" ]; then
  p=$(grep -c '^ok ' "$T/out")
  f=$(grep -c '^FAIL ' "$T/out")
  echo "FAIL soak.py: exited $rc without a summary"
  echo "$p passed, $((f + 1)) failed"
  exit 1
fi
echo "$line"
case "$line" in
  *", 0 failed") [ $rc -eq 0 ] || exit 1 ;;
  *) exit 1 ;;
esac
exit 0
