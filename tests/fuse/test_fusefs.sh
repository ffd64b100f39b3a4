#!/usr/bin/env bash
# tests/fuse/test_fusefs.sh -- black-box tests of fusefs over a real mount.
#
# Usage: test_fusefs.sh BUILDDIR [FSX_SEED]
#
# Uses BUILDDIR/fusefs/fusefs and BUILDDIR/storectl/storectl.  Creates a
# store with storectl in a mktemp -d directory, mounts it (needs /dev/fuse
# and fusermount3; run as root for the ownership checks and the ENOSPC
# check on a small tmpfs), and exercises every operation with its errno
# results (fusefs_checks.py, plain python3), interoperation with storectl,
# directory rename atomicity under concurrent readers, a 100,000-entry
# directory and a seeded, bounded fsx-style random-operation loop.
# Every mount is unmounted at the end, whatever happens (trap).
#
# Prints "ok NAME" or "FAIL NAME: reason" per check and ends with the line
# "N passed, N failed"; the exit status is non-zero if any check failed.
# Environment: FUSEFS_BIGDIR_N (default 100000), FUSEFS_BIGDIR_SECONDS
# (creation budget, default 120), FSX_OPS (default 1500), FSX_SECONDS
# (default 40), TEST_TMPDIR.
set -u

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILDDIR [FSX_SEED]" >&2
  exit 2
fi
BUILD=$(realpath "$1")
FUSEFS=$BUILD/fusefs/fusefs
SC=$BUILD/storectl/storectl
CHECKS=$(dirname "$(realpath "$0")")/fusefs_checks.py
SEED=${2:-$(( $(date +%s) % 100000 ))}
for f in "$FUSEFS" "$SC"; do
  [ -x "$f" ] || { echo "missing $f" >&2; exit 2; }
done
T=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/fusefs-test.XXXXXX") || exit 2
chmod 755 "$T"   # the non-root checks traverse it
export T
S=$T/store
unset STORE_DIR
export LC_ALL=C

passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# ------------------------------------------------------------------ mounts
MOUNTS=()   # mountpoints to unmount at exit
PIDS=()     # fusefs processes we started (foreground mode)
cleanup() {
  local m p
  for m in "${MOUNTS[@]}"; do
    mountpoint -q "$m" 2>/dev/null && fusermount3 -u -z "$m" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
  done
  mountpoint -q "$T/small" 2>/dev/null && umount -l "$T/small" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_mounted() { # MNT [SECONDS]
  local i
  for ((i = 0; i < ${2:-100}; i++)); do
    mountpoint -q "$1" && return 0
    sleep 0.1
  done
  return 1
}

# start_fs MNT ARGS...: fusefs in the foreground, in the background; sets
# $FSPID.  Its stderr goes to $T/fusefs.<n>.log.
nlog=0
start_fs() {
  local mnt=$1
  shift
  mkdir -p "$mnt"
  nlog=$((nlog + 1))
  "$FUSEFS" "$@" "$mnt" -f 2>"$T/fusefs.$nlog.log" &
  FSPID=$!
  PIDS+=("$FSPID")
  MOUNTS+=("$mnt")
  if ! wait_mounted "$mnt" 150; then
    echo "fusefs did not mount: $(head -c 300 "$T/fusefs.$nlog.log")"
    return 1
  fi
}

# stop_fs NAME MNT PID: unmount; the daemon must exit 0 on its own.
stop_fs() {
  local name=$1 mnt=$2 pid=$3 i rc
  fusermount3 -u "$mnt" 2>"$T/umount.err"
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$name" "fusefs still running after fusermount3 -u: $(cat "$T/umount.err")"
    return
  fi
  wait "$pid"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name" "fusefs exit $rc: $(tail -c 300 "$T/fusefs.$nlog.log")"
  elif grep -q 'runtime error\|Sanitizer' "$T/fusefs.$nlog.log"; then
    fail "$name" "sanitizer report: $(grep -m1 'runtime error\|Sanitizer' "$T/fusefs.$nlog.log")"
  elif mountpoint -q "$mnt"; then
    fail "$name" "still mounted"
  else
    ok "$name"
  fi
}

# py SECTION MNT ARGS...: run a section of fusefs_checks.py, count results.
py() {
  local section=$1
  python3 "$CHECKS" "$section" "$2" "$S" "$SC" "${@:3}" >"$T/py.out" 2>"$T/py.err"
  local rc=$?
  cat "$T/py.out"
  local p f
  p=$(grep -c '^ok ' "$T/py.out")
  f=$(grep -c '^FAIL ' "$T/py.out")
  passed=$((passed + p))
  failed=$((failed + f))
  if [ $rc -ne 0 ]; then
    fail "py_$section" "checks crashed (exit $rc): $(tail -n 3 "$T/py.err" | tr '\n' ' ')"
  fi
}

# ------------------------------------------------------------------ the CLI
"$FUSEFS" --version >"$T/out" 2>&1
if [ $? -eq 0 ] && grep -q '^fusefs [0-9]' "$T/out"; then ok cli_version; else fail cli_version "$(cat "$T/out")"; fi
"$FUSEFS" --help >"$T/out" 2>&1
if [ $? -eq 0 ] && grep -q 'Usage: fusefs --store DIR' "$T/out"; then ok cli_help; else fail cli_help "no usage"; fi
"$FUSEFS" >/dev/null 2>"$T/err"
rc=$?; if [ $rc -eq 2 ]; then ok cli_no_args; else fail cli_no_args "exit $rc"; fi
"$FUSEFS" --store "$S" "$T" --frobnicate >/dev/null 2>"$T/err"
rc=$?; if [ $rc -eq 2 ]; then ok cli_unknown_option; else fail cli_unknown_option "exit $rc"; fi
"$FUSEFS" --store "$S" "$T" -o frobnicate >/dev/null 2>"$T/err"
rc=$?; if [ $rc -eq 2 ]; then ok cli_unknown_mount_option; else fail cli_unknown_mount_option "exit $rc"; fi
"$FUSEFS" --store "$S" "$T" -o verify=maybe >/dev/null 2>"$T/err"
rc=$?; if [ $rc -eq 2 ] && grep -q 'bad verify=maybe' "$T/err"; then ok cli_bad_option_value; else fail cli_bad_option_value "exit $rc: $(head -c 200 "$T/err")"; fi
"$FUSEFS" --store "$T/nostore" "$T" -f >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q '^fusefs: ' "$T/err"; then
  ok cli_not_a_store
else
  fail cli_not_a_store "exit $rc: $(head -c 200 "$T/err")"
fi

"$SC" --store "$S" init >/dev/null 2>&1 || { fail setup "storectl init"; echo "$passed passed, $failed failed"; exit 1; }
"$SC" --store "$S" bucket create bkt1 && "$SC" --store "$S" bucket create bkt2 ||
  fail setup "bucket create"

"$FUSEFS" --store "$S" --bucket nosuchbucket "$T" -f >/dev/null 2>"$T/err"
rc=$?; if [ $rc -eq 1 ] && grep -q 'nosuchbucket' "$T/err"; then ok cli_no_bucket; else fail cli_no_bucket "exit $rc"; fi
"$FUSEFS" --store "$S" "$T/nomnt" -f >/dev/null 2>"$T/err"
rc=$?; if [ $rc -eq 1 ]; then ok cli_no_mountpoint; else fail cli_no_mountpoint "exit $rc"; fi

# ------------------------------------------------------------------ daemon
# The default is to daemonize: the command returns once mounted.
mkdir -p "$T/mnt_daemon"
MOUNTS+=("$T/mnt_daemon")
"$FUSEFS" --store "$S" "$T/mnt_daemon" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && wait_mounted "$T/mnt_daemon" && [ -d "$T/mnt_daemon/bkt1" ]; then
  ok daemon_mount
else
  fail daemon_mount "exit $rc: $(head -c 200 "$T/err")"
fi
fusermount3 -u "$T/mnt_daemon" 2>/dev/null
if ! mountpoint -q "$T/mnt_daemon"; then ok daemon_unmount; else fail daemon_unmount "still mounted"; fi

# ------------------------------------------------------------------ main mount
M=$T/mnt
if start_fs "$M" --store "$S" -o allow_other; then
  MAINPID=$FSPID
  ls "$M" >/dev/null 2>&1 # the first request after INIT applies readahead_kb
  ra=$(cat "/sys/class/bdi/$(mountpoint -d "$M")/read_ahead_kb" 2>/dev/null)
  if [ "$ra" = 1024 ]; then ok mount_readahead_1mib; else fail mount_readahead_1mib "read_ahead_kb is '$ra'"; fi
  py basic "$M"
  mkdir -p "$T/ref"
  py fsx "$M" "$SEED" "${FSX_OPS:-1500}" "${FSX_SECONDS:-40}" "$T/ref"
  py atomic "$M"
  stop_fs unmount_main "$M" "$MAINPID"
else
  fail mount_main "could not mount"
fi

# ------------------------------------------------------------------ 100k dir
# Commits without fsync here (durability=process): the point is readdir.
M4=$T/mnt_big
if start_fs "$M4" --store "$S" -o durability=process,max_threads=32,verify=off; then
  BIGPID=$FSPID
  py bigdir "$M4" "${FUSEFS_BIGDIR_N:-100000}" "$BIGPID" "${FUSEFS_BIGDIR_SECONDS:-120}"
  stop_fs unmount_bigdir "$M4" "$BIGPID"
else
  fail mount_bigdir "could not mount"
fi

# ------------------------------------------------------------------ SIGTERM
M2=$T/mnt2
if start_fs "$M2" --store "$S"; then
  kill -TERM "$FSPID"
  for ((i = 0; i < 100; i++)); do kill -0 "$FSPID" 2>/dev/null || break; sleep 0.1; done
  wait "$FSPID"
  rc=$?
  if [ $rc -eq 0 ] && ! mountpoint -q "$M2"; then ok sigterm_unmounts; else fail sigterm_unmounts "exit $rc, mounted: $(mountpoint "$M2")"; fi
else
  fail sigterm_unmounts "could not mount"
fi

# ------------------------------------------------------------------ --bucket B/PREFIX
if start_fs "$M2" --store "$S" --bucket bkt1/pre/sub; then
  py prefix "$M2"
  stop_fs unmount_prefix "$M2" "$FSPID"
else
  fail mount_prefix "could not mount"
fi

# ------------------------------------------------------------------ uid=,gid=,umask=
if start_fs "$M2" --store "$S" -o uid=4321,gid=8765,umask=027,attr_timeout=0.5,entry_timeout=0.5; then
  py defaults "$M2"
  stop_fs unmount_defaults "$M2" "$FSPID"
else
  fail mount_defaults "could not mount"
fi

# ------------------------------------------------------------------ read-only
if start_fs "$M2" --store "$S" -o ro; then
  py ro "$M2"
  stop_fs unmount_ro "$M2" "$FSPID"
else
  fail mount_ro "could not mount"
fi

# ------------------------------------------------------------------ mount(8) form
# What an fstab line "STORE MNT fuse.fusefs bucket=bkt1,_netdev 0 0" runs.
if command -v mount.fuse3 >/dev/null; then
  mkdir -p "$M2"
  MOUNTS+=("$M2")
  PATH=$(dirname "$FUSEFS"):$PATH mount.fuse3 "$S" "$M2" -t fusefs -o bucket=bkt1,_netdev,nofail 2>"$T/err"
  rc=$?
  if [ $rc -eq 0 ] && wait_mounted "$M2" && [ -f "$M2/hello.txt" ]; then
    ok mount_helper_fstab_form
  else
    fail mount_helper_fstab_form "exit $rc: $(head -c 200 "$T/err")"
  fi
  fusermount3 -u "$M2" 2>/dev/null
fi

# ------------------------------------------------------------------ ENOSPC
# A store on a 40 MiB tmpfs (root only).
mkdir -p "$T/small"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=40m tmpfs "$T/small" 2>/dev/null; then
  S_SAVE=$S
  S=$T/small/store
  "$SC" --store "$S" init >/dev/null 2>&1 && "$SC" --store "$S" bucket create bkt1
  if start_fs "$T/mnt_small" --store "$S"; then
    py enospc "$T/mnt_small"
    stop_fs unmount_enospc "$T/mnt_small" "$FSPID"
  else
    fail mount_enospc "could not mount"
  fi
  S=$S_SAVE
  umount "$T/small" 2>/dev/null || umount -l "$T/small"
else
  echo "ok enospc # SKIP cannot mount a tmpfs here"
  passed=$((passed + 1))
fi

# ------------------------------------------------------------------ store health
if "$SC" --store "$S" fsck >"$T/out" 2>&1; then ok store_fsck_after; else fail store_fsck_after "$(tail -n 3 "$T/out" | tr '\n' ' ')"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
