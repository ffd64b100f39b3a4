#!/bin/bash
# s3d_bench.sh -- the s3d benchmark, run by hand (never in CI).
#
# Builds a release (build-bench/), creates a fresh store in a temporary
# directory under /var/tmp with known keys, starts a real s3d and a static
# file server (nginx, sendfile on, keep-alive) on loopback ports, and runs
# bench/s3d_load, which measures the machine's limits, its own ceiling, the
# static server and s3d, and prints the summary table.  Everything it starts
# is stopped, and the directory removed, when it exits.
#
#   bench/s3d_bench.sh [--quick] [--runs N] [--dir DIR] [--keep]
#                      [--perf] [--strace] [-- s3d_load options...]
#
#   --quick     256 MiB instead of 1 GiB, 1 s per 4 KiB test (about 1 min)
#   --runs N    rounds; the best run of each figure is reported (default 2)
#   --dir DIR   parent of the work directory (default /var/tmp: the real
#               disk; the store and the disk measurements live there)
#   --keep      keep the work directory (logs, store) for inspection
#   --perf      after the benchmark, profile s3d (perf record, DWARF call
#               graphs) under the 4 KiB tests and under the large transfers
#               (reports in the work dir; add --keep to read them later)
#   --strace    after the benchmark, count s3d's syscalls (strace -c -f)
#               under the 4 KiB tests and under the large transfers
#
# See bench/s3d_README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD:-$root/build-bench}
parent=/var/tmp
runs=2
quick=()
keep=0
do_perf=0
do_strace=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --runs) runs=$2; shift ;;
    --dir) parent=$2; shift ;;
    --keep) keep=1 ;;
    --perf) do_perf=1 ;;
    --strace) do_strace=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "s3d_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# ---------------------------------------------------------------- build
cd "$root"
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" s3d/s3d storectl/storectl bench/s3d_load >/dev/null

nginx_bin=$(command -v nginx || true)
[ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
  echo "s3d_bench: nginx is needed for the static-server baseline:" \
       "apt-get install nginx-light" >&2
  exit 1
fi

S3D=${S3D_BIN:-$build/s3d/s3d}   # S3D_BIN: compare another s3d binary
CTL=$build/storectl/storectl
LOAD=$build/bench/s3d_load

# ---------------------------------------------------------------- set-up
work=$(mktemp -d "$parent/s3d_bench.XXXXXX")
s3d_pid=
nginx_pid=

stop_pid() { # pid signal: signal it, wait up to 10 s, then SIGKILL
  local pid=$1 sig=$2 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_pid "$s3d_pid" TERM
  stop_pid "$nginx_pid" QUIT
  if [ "$keep" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

AK=BENCHAKIAS3DLOAD0001
SK=benchSecretKeyForS3dLoad0000000000000001
STORE_ACCESS_KEY=$AK STORE_SECRET_KEY=$SK "$CTL" --store "$work/store" init \
  >"$work/init.log"

s3_port=$("$LOAD" freeport)
"$S3D" --store "$work/store" --listen "127.0.0.1:$s3_port" \
  2>"$work/s3d.log" &
s3d_pid=$!

mkdir -p "$work/static" "$work/nginx"
ng_port=$("$LOAD" freeport)
while [ "$ng_port" = "$s3_port" ]; do ng_port=$("$LOAD" freeport); done
cat >"$work/nginx/nginx.conf" <<EOF
# temporary config of s3d_bench.sh
user root;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log $work/nginx/access.log;   # s3d logs every request too
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 120;
  keepalive_requests 100000000;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$ng_port;
    root $work/static;
  }
}
EOF
"$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" \
  -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!

# Wait (bounded) until both answer.
for i in $(seq 100); do
  if curl -fs "http://127.0.0.1:$s3_port/health" >/dev/null 2>&1 &&
     curl -s -o /dev/null "http://127.0.0.1:$ng_port/" 2>/dev/null; then
    break
  fi
  if [ "$i" = 100 ]; then
    echo "s3d_bench: s3d or nginx did not start; logs:" >&2
    tail -5 "$work/s3d.log" "$work/nginx/error.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
ng_workers=$(pgrep -P "$nginx_pid" | paste -sd, -)

echo "s3d_bench: work dir $work; s3d pid $s3d_pid on 127.0.0.1:$s3_port;" \
     "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*: //') pid $nginx_pid" \
     "(workers $ng_workers) on 127.0.0.1:$ng_port"
echo "s3d_bench: git $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(
  git -C "$root" diff --quiet HEAD -- s3d libstore 2>/dev/null ||
  echo ' (s3d/libstore modified)'), $(nproc) cores, $(uname -r)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"

common=(--s3 "127.0.0.1:$s3_port" --access-key "$AK" --secret-key "$SK"
        --s3d-pid "$s3d_pid" --work "$work"
        --gc-cmd "'$CTL' --store '$work/store' gc")
# timeout: a hard bound for the whole measurement (it is ~3 min normally)
timeout -k 10 1800 "$LOAD" bench "${common[@]}" \
  --static "127.0.0.1:$ng_port" --static-root "$work/static" \
  --static-pids "$nginx_pid,$ng_workers" \
  --runs "$runs" "${quick[@]}" "${extra[@]}"

# ---------------------------------------------------------------- diagnosis
# Optional: where s3d spends its time.  Each step is bounded.
diag() { # name, s3d_load --only phase, seconds of 4 KiB tests
  local name=$1 only=$2
  shift 2
  timeout -k 10 600 "$LOAD" bench "${common[@]}" --only "$only" --runs 1 \
    --small-secs 3 "$@" >"$work/diag-$name.out" 2>&1 || true
}
if [ "$do_perf" = 1 ]; then
  if command -v perf >/dev/null; then
    # DWARF call graphs: s3d, libmicrohttpd and SQLite have no frame pointers.
    for what in s3small s3big; do
      timeout -k 5 300 perf record -F 299 --call-graph dwarf,8192 \
        -o "$work/perf-$what.data" -p "$s3d_pid" >/dev/null 2>&1 &
      perf_pid=$!
      sleep 1
      diag "perf-$what" "$what"
      kill -INT "$perf_pid" 2>/dev/null || true
      wait "$perf_pid" 2>/dev/null || true
      perf report -i "$work/perf-$what.data" --no-children --stdio \
        --percent-limit 1 --sort dso,symbol -g none 2>/dev/null \
        | grep -E '^ +[0-9.]+%' >"$work/perf-$what-self.txt" || true
      perf report -i "$work/perf-$what.data" --children --stdio \
        --percent-limit 2 --sort symbol -g none 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | grep -v -E '0x0000|\[k\]|inlined' \
        >"$work/perf-$what-incl.txt" || true
      echo "--- perf, s3d under $what: self time (top 20; $work/perf-$what-self.txt)"
      head -20 "$work/perf-$what-self.txt"
      echo "--- perf, s3d under $what: inclusive time of named functions (top 30)"
      head -30 "$work/perf-$what-incl.txt"
    done
  else
    echo "s3d_bench: perf not installed; --perf skipped"
  fi
fi
if [ "$do_strace" = 1 ]; then
  if command -v strace >/dev/null; then
    for what in s3small s3big; do
      timeout -k 5 300 strace -c -f -p "$s3d_pid" -o "$work/strace-$what.txt" &
      st_pid=$!
      sleep 1
      diag "strace-$what" "$what"
      kill -INT "$st_pid" 2>/dev/null || true
      wait "$st_pid" 2>/dev/null || true
      echo "--- strace -c -f, s3d under $what (note: strace slows s3d down)"
      grep -E '%|^ +[0-9]' "$work/strace-$what.txt" | head -22 || true
      grep -E '^(s3d|  \[[0-9]\] s3d)' "$work/diag-strace-$what.out" || true
    done
  else
    echo "s3d_bench: strace not installed; --strace skipped"
  fi
fi
