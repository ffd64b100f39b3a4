# tests/lib.sh -- the shell frame shared by the suites whose checks are a
# Python driver (faults, security, torture, soak, powerloss): resolve the
# build, skip without root, make a private temp directory, run the driver
# under env -i (so the machine's AWS_*, proxy and CA settings never reach a
# client), pass its output on, end with one `N passed, N failed` line, and
# leave no process or mount behind whatever happens.  Sourced by
# tests/SUITE/run.sh after `set -u`:
#
#   . "$(dirname "$0")/../lib.sh"
#   suite_build "$1" s3d/s3d fusefs/fusefs ...  sets build (absolute) and
#                                               here; each file must exist
#   suite_need_root NAME "why"                  not root: one SKIP, exit 0
#   suite_python                                sets py: the python3 to use
#   suite_tmp NAME KEEPVAR [BASE]               makes $T and $T/pids (the
#       driver appends the pids it starts: FAULT_PIDS); on exit kills them
#       (only if their command line still names $T), unmounts what is
#       mounted under $T and removes $T -- unless $KEEPVAR is 1: then the
#       directory and its non-FUSE mounts stay
#   suite_run DRIVER.py WORKDIR [VAR=VALUE ...]  runs
#       "$py" "$here/DRIVER.py" "$build" WORKDIR with HOME and TMPDIR set to
#       WORKDIR, the sanitizer options and the given variables, and exits
#       with its verdict

suite_build() {
  build=$(cd "$1" && pwd) || exit 2
  shift
  here=$(cd "$(dirname "$0")" && pwd)
  for f in "$@"; do
    [ -e "$build/$f" ] || { echo "run.sh: $build/$f not built" >&2; exit 2; }
  done
}

suite_need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "ok $1 # SKIP needs root ($2)"
    echo "1 passed, 0 failed"
    exit 0
  fi
}

suite_python() {
  py=$(python3 -c 'import sys; print(sys.executable)') || exit 1
}

# ours PID: the process is still one we started (its command line names $T),
# so a recycled pid is never signalled.
suite_ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$T"
}

suite_signal_pids() {
  [ -s "$T/pids" ] || return 0
  while read -r p; do
    suite_ours "$p" && kill "-$1" "$p" 2>/dev/null
  done <"$T/pids"
}

# The mounts under $T, deepest first; with "fuse" only FUSE ones.
suite_mounts() {
  awk -v t="$T" -v only="${1:-}" '($2 == t || index($2, t "/") == 1) &&
      (only == "" || index($3, "fuse") == 1) { print $2 }' /proc/mounts | sort -r
}

suite_cleanup() {
  [ -n "$suite_pypid" ] && kill -TERM "$suite_pypid" 2>/dev/null
  # processes first (a fusefs holding a mount), then mounts, deepest first
  if [ -s "$T/pids" ]; then
    suite_signal_pids TERM
    sleep 0.5
  fi
  suite_mounts fuse | while read -r m; do
    fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  suite_signal_pids KILL
  if [ "$suite_keep" = 1 ]; then
    echo "# kept $T$(suite_mounts | sed 's/^/ (still mounted: /; s/$/)/' | tr '\n' ' ')"
  else
    suite_mounts | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$T"
  fi
}

suite_interrupted() {
  cat "$T/out" 2>/dev/null
  echo "FAIL interrupted"
  echo "$(grep -c '^ok ' "$T/out" 2>/dev/null) passed," \
       "$(( $(grep -c '^FAIL ' "$T/out" 2>/dev/null) + 1 )) failed"
  exit 130
}

suite_tmp() {
  T=$(mktemp -d "${3:-${TMPDIR:-/tmp}}/$1.XXXXXX") || exit 1
  : >"$T/pids"
  eval "suite_keep=\${$2:-0}"
  suite_pypid=
  trap suite_cleanup EXIT
  trap suite_interrupted INT TERM
}

suite_run() {
  driver=$1 work=$2
  shift 2
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LANG=C.UTF-8 \
      TMPDIR="$work" FAULT_PIDS="$T/pids" PYTHONDONTWRITEBYTECODE=1 \
      ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
      "$@" "$py" "$here/$driver" "$build" "$work" >"$T/out" 2>&1 &
  suite_pypid=$!
  wait "$suite_pypid"
  rc=$?
  suite_pypid=
  grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/out" | tail -1)
  if [ -z "$line" ]; then
    echo "FAIL $driver: exited $rc without a summary"
    echo "$(grep -c '^ok ' "$T/out") passed, $(( $(grep -c '^FAIL ' "$T/out") + 1 )) failed"
    exit 1
  fi
  echo "$line"
  case "$line" in
    *", 0 failed") [ $rc -eq 0 ] || exit 1 ;;
    *) exit 1 ;;
  esac
  exit 0
}
