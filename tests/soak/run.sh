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
. "$(dirname "$0")/../lib.sh"
suite_build "$1" s3d/s3d fusefs/fusefs storectl/storectl bench/s3_soak
suite_need_root soak "FUSE"
suite_python
suite_tmp soak SOAK_KEEP "${TEST_TMPDIR:-${TMPDIR:-/var/tmp}}"
chmod 755 "$T"
suite_run soak.py "$T" \
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
    SOAK_RSS_LATE_FUSEFS="${SOAK_RSS_LATE_FUSEFS:-}"
