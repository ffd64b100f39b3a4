#!/usr/bin/env bash
# bench/fusefs_bench.sh -- fusefs against the local filesystem under it and
# against s3fs-fuse on s3d, measured in the same run.  Run by hand (root,
# /dev/fuse), never in CI.  See bench/fusefs_README.md.
#
#   bench/fusefs_bench.sh [options]
#     --build DIR        build directory (default build-bench, a release build)
#     --dir DIR          where the store and the local files go (default /var/tmp)
#     --runs N           rounds; the best run of each figure is kept (default 2)
#     --size-mb N        size of the sequential / random-read file (default 1024)
#     --files N          small files on fusefs and local (default 10000)
#     --s3fs-files N     small files on s3fs (default 1000; it is slow)
#     --small-size B     bytes per small file (default 4096)
#     --rand-secs S      seconds per random-read run (default 10)
#     --only LIST        any of seq,rand,small,s3fs (default all)
#     --fusefs-opts O    extra -o options for fusefs (e.g. durability=process)
#     --keep             keep the work directory
#
# Per round: sequential write of one file with dd bs=1M conv=fsync (source:
# incompressible data in /dev/shm; memory primed first), sequential read with
# dd bs=1M after drop_caches, random 4 KiB reads (fio, psync, 1 job, after
# drop_caches; the C fallback when fio is missing), and
# create+stat+readdir+unlink of small files -- each on the local filesystem
# and on the mount, in the same round; the sequential pair also through
# libstore alone (storectl put/get, the mount's ceiling), the small files
# also on s3fs-fuse mounted on an s3d of the same store.  Every run is
# printed; the summary keeps the best run of each figure and prints
# fusefs/local, fusefs/storectl and fusefs/s3fs ratios, plus the load average.
set -u

BUILD=build-bench
BASE=/var/tmp
RUNS=2
SIZE_MB=1024
NFILES=10000
NS3FS=1000
SMALL=4096
RAND_SECS=10
ONLY=seq,rand,small,s3fs
FSOPTS=
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --dir) BASE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --files) NFILES=$2; shift 2 ;;
    --s3fs-files) NS3FS=$2; shift 2 ;;
    --small-size) SMALL=$2; shift 2 ;;
    --rand-secs) RAND_SECS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --fusefs-opts) FSOPTS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 0 ;;
    *) echo "fusefs_bench: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

cd "$(dirname "$0")/.." || exit 1
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "no build directory; run: meson setup build-bench --buildtype=release && ninja -C build-bench" >&2; exit 2; }
FUSEFS=$BUILD/fusefs/fusefs
S3D=$BUILD/s3d/s3d
SC=$BUILD/storectl/storectl
OPS=$BUILD/bench/fusefs_ops
for f in "$FUSEFS" "$S3D" "$SC" "$OPS"; do
  [ -x "$f" ] || { echo "fusefs_bench: $f not built (ninja -C $BUILD)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "fusefs_bench: run as root (drop_caches, mounts)" >&2; exit 2; }
PY=$(command -v python3)

W=$(mktemp -d "$BASE/fusefs_bench.XXXXXX") || exit 1
STORE=$W/store
MNT=$W/mnt
S3FS_MNT=$W/s3fs
LOCAL=$W/local
SRC=/dev/shm/fusefs_bench_src.$$
mkdir -p "$MNT" "$S3FS_MNT" "$LOCAL" "$W/home"
ACCESS=AKIABENCHFUSEFS00001
SECRET=benchFusefsSecret/0123456789abcdefghijk
FS_PID= S3D_PID= S3FS_PID=

cleanup() {
  local p
  mountpoint -q "$S3FS_MNT" 2>/dev/null && fusermount3 -u -z "$S3FS_MNT"
  mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u -z "$MNT"
  for p in $S3FS_PID $FS_PID $S3D_PID; do
    kill -0 "$p" 2>/dev/null && kill -TERM "$p"
  done
  sleep 1
  rm -f "$SRC"
  if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
wait_mounted() { local i; for ((i = 0; i < 150; i++)); do mountpoint -q "$1" && return 0; sleep 0.1; done; return 1; }

# ------------------------------------------------------------------ set-up
env -i PATH=/usr/bin:/bin HOME="$W/home" STORE_ACCESS_KEY=$ACCESS STORE_SECRET_KEY=$SECRET \
  "$SC" --store "$STORE" init >/dev/null || exit 1
"$SC" --store "$STORE" bucket create bench >/dev/null || exit 1
"$FUSEFS" --store "$STORE" --bucket bench "$MNT" -f ${FSOPTS:+-o "$FSOPTS"} 2>"$W/fusefs.log" &
FS_PID=$!
wait_mounted "$MNT" || { echo "fusefs did not mount: $(cat "$W/fusefs.log")" >&2; exit 1; }
if want s3fs; then
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env -i PATH=/usr/bin:/bin HOME="$W/home" "$S3D" --store "$STORE" --listen "127.0.0.1:$PORT" \
    >"$W/s3d.log" 2>&1 &
  S3D_PID=$!
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  printf '%s:%s\n' "$ACCESS" "$SECRET" >"$W/home/passwd-s3fs"
  chmod 600 "$W/home/passwd-s3fs"
  # The options tests/s3 uses for s3fs.
  env -i PATH=/usr/bin:/bin HOME="$W/home" s3fs bench "$S3FS_MNT" -f \
    -o url="http://127.0.0.1:$PORT" -o use_path_request_style \
    -o passwd_file="$W/home/passwd-s3fs" -o endpoint=us-east-1 -o sigv4 \
    -o stat_cache_expire=1 -o enable_noobj_cache >"$W/s3fs.log" 2>&1 &
  S3FS_PID=$!
  wait_mounted "$S3FS_MNT" || { echo "s3fs did not mount: $(tail -c 300 "$W/s3fs.log")" >&2; exit 1; }
fi

echo "# fusefs_bench $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), $(nproc) cores; build $BUILD"
echo "# local: $LOCAL ($(df -T "$LOCAL" | awk 'NR==2 {print $2}')); fusefs -o ${FSOPTS:-defaults}; runs $RUNS"
LOAD_START=$(loadavg)
echo "# load average at start: $LOAD_START"

declare -A BEST   # BEST[test/target] = best figure (higher is better)
keep_best() { # KEY VALUE
  local k=$1 v=$2
  if [ -z "${BEST[$k]:-}" ] || awk -v a="$v" -v b="${BEST[$k]}" 'BEGIN { exit !(a > b) }'; then
    BEST[$k]=$v
  fi
}

# dd's own figure: "N bytes ... copied, S s, ..." -> MB/s (10^6 bytes/s)
dd_rate() { awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i - 1); b = $1 } END { if (s > 0) printf "%.1f", b / s / 1e6 }'; }

SIZE=$((SIZE_MB * 1024 * 1024))
if want seq || want rand; then
  "$OPS" gen "$SIZE" >"$SRC" || exit 1
  cat "$SRC" >/dev/null
fi

now() { date +%s.%N; }
# This VM gives idle guest memory back to its host; the first write into
# such page-cache pages runs at a fraction of the usual speed (see
# bench/README.md, "Memory priming").  Write and delete a scratch file of
# the same size first, so every measured write finds the memory present.
prime() {
  dd if="$SRC" of="$LOCAL/prime.bin" bs=1M status=none
  rm -f "$LOCAL/prime.bin"
}
mbps() { awk -v b="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.1f", b / (t1 - t0) / 1e6 }'; }

# local: dd on the filesystem below the store.  storectl: the same bytes
# through libstore alone (storectl put / get, no FUSE): the ceiling fusefs
# can reach.  fusefs: dd on the mount.
seq_round() { # ROUND
  local r=$1 t f out rate t0 t1
  for t in local storectl fusefs; do
    if [ $t = local ]; then f=$LOCAL/seq.bin; else f=$MNT/seq.bin; fi
    rm -f "$f"
    prime
    drop_caches
    if [ $t = storectl ]; then
      t0=$(now)
      "$SC" --store "$STORE" put bench seq-storectl.bin "$SRC" >/dev/null || { echo "storectl put failed"; continue; }
      t1=$(now)
      rate=$(mbps "$SIZE" "$t0" "$t1")
    else
      out=$(dd if="$SRC" of="$f" bs=1M conv=fsync 2>&1) || { echo "dd write $t failed: $out"; continue; }
      rate=$(echo "$out" | dd_rate)
    fi
    echo "[$r] seqwrite $t ${SIZE_MB} MiB: $rate MB/s  (load $(loadavg))"
    keep_best "seqwrite/$t" "$rate"
    drop_caches
    if [ $t = storectl ]; then
      t0=$(now)
      "$SC" --store "$STORE" get bench seq-storectl.bin - >/dev/null || { echo "storectl get failed"; continue; }
      t1=$(now)
      rate=$(mbps "$SIZE" "$t0" "$t1")
    else
      out=$(dd if="$f" of=/dev/null bs=1M 2>&1) || { echo "dd read $t failed: $out"; continue; }
      rate=$(echo "$out" | dd_rate)
    fi
    echo "[$r] seqread  $t ${SIZE_MB} MiB (cold): $rate MB/s  (load $(loadavg))"
    keep_best "seqread/$t" "$rate"
  done
}

rand_round() { # ROUND
  local r=$1 t f iops
  for t in local fusefs; do
    if [ $t = local ]; then f=$LOCAL/seq.bin; else f=$MNT/seq.bin; fi
    if [ ! -f "$f" ]; then
      dd if="$SRC" of="$f" bs=1M conv=fsync status=none || continue
    fi
    drop_caches
    if command -v fio >/dev/null; then
      iops=$(fio --name=rr --filename="$f" --rw=randread --bs=4k --size="$SIZE" \
               --ioengine=psync --numjobs=1 --time_based --runtime="$RAND_SECS" \
               --invalidate=1 --readonly --randrepeat=1 --output-format=json 2>"$W/fio.err" |
             "$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["jobs"][0]["read"]["iops"])')
      [ -n "$iops" ] || { echo "fio $t failed: $(tail -c 300 "$W/fio.err")"; continue; }
    else
      iops=$("$OPS" randread "$f" "$RAND_SECS" | awk '/^RESULT/ { sub("rate=", "", $5); printf "%.0f", $5 }')
    fi
    echo "[$r] randread $t 4 KiB (cold start, ${RAND_SECS} s): $iops IOPS  (load $(loadavg))"
    keep_best "randread/$t" "$iops"
  done
}

small_round() { # ROUND TARGET DIR N
  local r=$1 t=$2 d=$3 n=$4 line name rate
  rm -rf "$d" 2>/dev/null
  "$OPS" small "$d" "$n" "$SMALL" >"$W/small.out" 2>"$W/small.err" ||
    { echo "[$r] small $t failed: $(cat "$W/small.err")"; return; }
  while read -r line; do
    name=$(echo "$line" | awk '{print $2}')
    rate=$(echo "$line" | awk '{ sub("rate=", "", $5); print $5 }')
    secs=$(echo "$line" | awk '{ sub("secs=", "", $4); print $4 }')
    case $name in readdir1|readdir2) name=readdir ;; esac
    printf '[%s] %-8s %-6s %6d files: %10.1f /s  (%s s)\n' "$r" "$name" "$t" "$n" "$rate" "$secs"
    keep_best "$name/$t" "$rate"
  done < <(grep '^RESULT' "$W/small.out")
  echo "[$r]   (load $(loadavg))"
}

for ((r = 1; r <= RUNS; r++)); do
  want seq && seq_round "$r"
  want rand && rand_round "$r"
  if want small; then
    small_round "$r" local "$LOCAL/small" "$NFILES"
    small_round "$r" fusefs "$MNT/small" "$NFILES"
  fi
  if want s3fs; then
    small_round "$r" s3fs "$S3FS_MNT/s3fs-small" "$NS3FS"
    # our figure at the same count, for a like-for-like ratio
    small_round "$r" fusefs-n "$MNT/small-n" "$NS3FS"
  fi
done
rm -f "$LOCAL/seq.bin" "$MNT/seq.bin"
"$SC" --store "$STORE" rm bench seq-storectl.bin >/dev/null 2>&1

LOAD_END=$(loadavg)
echo
echo "# summary: best of $RUNS runs; load average at start $LOAD_START, at end $LOAD_END"
ratio() { awk -v a="${BEST[$1]:-}" -v b="${BEST[$2]:-}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'; }
fmt() { if [ -n "${BEST[$1]:-}" ]; then printf '%.1f' "${BEST[$1]}"; else printf -- '-'; fi; }
printf '%-26s %10s %10s %10s %9s %9s   %s\n' "test" "local" "storectl" "fusefs" "fs/local" "fs/store" "aim"
row() { # TEST LABEL UNIT AIM
  printf '%-26s %10s %10s %10s %9s %9s   %s\n' "$2 ($3)" "$(fmt "$1/local")" "$(fmt "$1/storectl")" \
    "$(fmt "$1/fusefs")" "$(ratio "$1/fusefs" "$1/local")" "$(ratio "$1/fusefs" "$1/storectl")" "$4"
}
want seq && row seqwrite "seq write ${SIZE_MB} MiB" "MB/s" ">= 0.60"
want seq && row seqread "seq read ${SIZE_MB} MiB" "MB/s" ">= 0.60"
want rand && row randread "rand 4K read" "IOPS" ""
if want small; then
  row create "create ${NFILES}" "/s" ""
  row stat "stat ${NFILES}" "/s" ""
  row readdir "readdir ${NFILES}" "entries/s" ""
  row unlink "unlink ${NFILES}" "/s" ""
fi
if want s3fs; then
  echo
  printf '%-26s %10s %10s %10s   %s\n' "small files, n=$NS3FS" "s3fs" "fusefs" "fs/s3fs" "aim"
  for t in create stat readdir unlink; do
    printf '%-26s %10s %10s %10s   %s\n' "$t (/s)" "$(fmt "$t/s3fs")" "$(fmt "$t/fusefs-n")" \
      "$(ratio "$t/fusefs-n" "$t/s3fs")" ">= 10"
  done
fi
