#!/bin/bash
# soak.sh -- the long soak of s3d and fusefs on one store, run by hand.
#
# The same harness as the CI short form (tests/soak/run.sh: soak.py and
# bench/s3_soak), with long-form settings: by default 10 minutes of 48 S3
# connections and 8 mount workers on a key space of 960 keys, objects up
# to 32 MiB (multipart included), `storectl gc` every 60 s, memory sampled
# every 5 s; then the verification pass, clean shutdown and fsck.  Prints
# every check and s3_soak's whole report (requests per op, faults by kind,
# latency percentiles, throughput, memory over time).
#
#   bench/soak.sh [--seconds N] [--conns N] [--mount-workers N] [--scale N]
#                 [--large-max-mib N] [--gc-every S] [--seed N] [--keep]
#                 [--build DIR]
#
#   --build DIR  the build to test (default build/, made with
#                scripts/build.sh plain when missing)
#   --keep       keep the work directory (store, logs, soak.json, soak.out)
#
# The work directory is under /var/tmp (the real disk; about 10 GB at most
# between two gc runs).  Needs root and /dev/fuse.  Everything it starts is
# stopped, and the mount removed, when it exits.  See bench/soak_README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build
seconds=600
conns=48
mworkers=8
scale=4
large=32
gc_every=60
seed=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --conns) conns=$2; shift ;;
    --mount-workers) mworkers=$2; shift ;;
    --scale) scale=$2; shift ;;
    --large-max-mib) large=$2; shift ;;
    --gc-every) gc_every=$2; shift ;;
    --seed) seed=$2; shift ;;
    --keep) keep=1 ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ ! -x "$build/bench/s3_soak" ]; then
  if [ "$build" = "$root/build" ]; then
    "$root/scripts/build.sh" plain
  else
    ninja -C "$build" >/dev/null
  fi
fi

echo "soak.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg), build $build, commit" \
     "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"

# The long form's memory bounds (bench/soak_README.md, "Memory").
export SOAK_RSS_GROWTH_S3D=${SOAK_RSS_GROWTH_S3D:-192}
export SOAK_RSS_GROWTH_FUSEFS=${SOAK_RSS_GROWTH_FUSEFS:-128}
export SOAK_RSS_PEAK_S3D=${SOAK_RSS_PEAK_S3D:-384}
export SOAK_RSS_PEAK_FUSEFS=${SOAK_RSS_PEAK_FUSEFS:-256}
export SOAK_RSS_LATE_S3D=${SOAK_RSS_LATE_S3D:-48}
export SOAK_RSS_LATE_FUSEFS=${SOAK_RSS_LATE_FUSEFS:-16}

# The checks of the open fusefs bugs, as in tests/soak/meson.build.
export SOAK_KNOWN=${SOAK_KNOWN-mount_edit_applies_to_version_opened,mount_read_sees_one_version}

SOAK_SECONDS=$seconds SOAK_CONNS=$conns SOAK_MOUNT_WORKERS=$mworkers \
SOAK_SCALE=$scale SOAK_LARGE_MAX_MIB=$large SOAK_GC_EVERY=$gc_every \
SOAK_SEED=$seed SOAK_MEM_EVERY=5 SOAK_DRAIN=300 SOAK_REPORT=1 \
SOAK_KEEP=$keep TEST_TMPDIR=/var/tmp \
  exec "$root/tests/soak/run.sh" "$build"
