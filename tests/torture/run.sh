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
dir=$1
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
. "$(dirname "$0")/../lib.sh"
suite_build "$dir" s3d/s3d fusefs/fusefs storectl/storectl
suite_need_root torture "FUSE"
suite_python
suite_tmp torture FAULT_KEEP
suite_run torture.py "$T" \
    TORTURE_ROUNDS="${TORTURE_ROUNDS:-12}" TORTURE_SECONDS="${TORTURE_SECONDS:-60}" \
    TORTURE_SEED="${TORTURE_SEED:-}" TORTURE_LOAD="${TORTURE_LOAD:-}" \
    TORTURE_TARGETS="${TORTURE_TARGETS:-}" TORTURE_KNOWN="${TORTURE_KNOWN:-}"
