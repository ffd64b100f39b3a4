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
. "$(dirname "$0")/../lib.sh"
suite_build "$1" s3d/s3d fusefs/fusefs storectl/storectl
suite_need_root security "FUSE, setpriv"
suite_python
suite_tmp security FAULT_KEEP
suite_run security.py "$T" \
    SECURITY_TESTS="${SECURITY_TESTS:-auth ownership paths secrets slowloris}"
