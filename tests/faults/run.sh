#!/bin/sh
# run.sh BUILD_DIR -- fault injection against s3d, fusefs and storectl
# sharing one store: disk full, a read-only store, corrupt or missing
# chunk files, a catalog locked by another process.  What each fault does
# to each door is written down in docs/faults.md.
#
# Uses BUILD_DIR/s3d/s3d, BUILD_DIR/fusefs/fusefs, BUILD_DIR/storectl/storectl.
# Needs root (tmpfs and loop mounts, /dev/fuse), fusermount3 and the python3
# that has boto3 (resolved now; it runs under env -i, so the machine's AWS_*
# and proxy settings never reach a client).  Everything listens on
# 127.0.0.1 only.
#
# Prints `ok NAME` / `FAIL NAME: reason` and ends with `N passed, N failed`;
# exits non-zero on any failure.  Every mount and process it started is
# gone when it exits, whatever happens.
#
#   FAULT_TESTS="diskfull readonly corrupt locked"   run only some sections
#   FAULT_KEEP=1                                      keep the temp directory
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
. "$(dirname "$0")/../lib.sh"
suite_build "$1" s3d/s3d fusefs/fusefs storectl/storectl
suite_need_root faults "tmpfs, loop devices, FUSE"
suite_python
suite_tmp faults FAULT_KEEP
suite_run faults.py "$T" \
    FAULT_KNOWN="${FAULT_KNOWN:-}" \
    FAULT_TESTS="${FAULT_TESTS:-diskfull readonly corrupt locked}"
