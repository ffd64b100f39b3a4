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
. "$(dirname "$0")/../lib.sh"
suite_build "$1" storectl/storectl s3d/s3d tests/powerloss/libplrecorder.so
suite_python
"$py" -c 'import boto3' 2>/dev/null || { echo "run.sh: boto3 missing for $py" >&2; exit 1; }
suite_tmp powerloss PL_KEEP
# Thousands of directories are made and removed per run (256 chunk fan-out
# directories per crash state): on a tmpfs of our own that costs nothing.
# Without root (or without tmpfs) the run just takes longer.
W="$T/fs"
mkdir "$W"
[ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=4g,mode=700 tmpfs "$W" 2>/dev/null
suite_run powerloss.py "$W" \
    PL_POINTS="${PL_POINTS:-}" PL_SCALE="${PL_SCALE:-1}" \
    PL_SEED="${PL_SEED:-1}" PL_VARIANTS="${PL_VARIANTS:-}" \
    PL_WORKLOADS="${PL_WORKLOADS:-}" PL_KEEP="${PL_KEEP:-0}"
