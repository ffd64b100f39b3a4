#!/usr/bin/env bash
# shellcheck disable=SC2034
# run.sh [NAME...] -- build the libFuzzer harnesses of tests/fuzz/ with clang
# (AddressSanitizer + UndefinedBehaviorSanitizer) and run each for a bounded
# time, one after the other.  See docs/fuzzing.md.
#
# Prints "ok fuzz_NAME (N execs)" or "FAIL fuzz_NAME: KIND (reproducer saved
# at PATH)" per harness and ends with "N passed, N failed".  Exits 0, 1 on a
# failure, or 77 (meson's "skipped") when clang's libFuzzer is missing.
#
# Environment:
#   FUZZ_SECONDS=20         time per harness (-max_total_time)
#   FUZZ_CC=clang           the compiler (clang-14 etc.)
#   FUZZ_JOBS=2             parallel compiles
#   FUZZ_ARTIFACTS=DIR      where reproducers and logs go (./fuzz-artifacts)
#   FUZZ_WORK=DIR           build and scratch corpus directory (a fresh
#                           temporary one, removed at the end, by default)
#   FUZZ_UPDATE_CORPUS=1    afterwards, merge what the run found into
#                           tests/fuzz/corpus/NAME (libFuzzer -merge=1)
#   FUZZ_ARGS="..."         extra libFuzzer flags
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
art=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
extra=${FUZZ_ARGS:-}

cc=${FUZZ_CC:-}
if [ -z "$cc" ]; then
  for c in clang clang-14 clang-15 clang-16 clang-17 clang-18; do
    if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
  done
fi

all="urlenc range checksum sigv4 chunked xmlin post pathmap"
names=${*:-$all}

# The sources of each harness (paths from the repository root), read
# through ${!v} below (hence shellcheck's SC2034, disabled at the top).
s3d_daemon="s3d/dynbuf.c s3d/urlenc.c s3d/checksum.c s3d/range.c s3d/xmlout.c
  s3d/sigv4.c s3d/chunked.c s3d/xmlin.c s3d/auth.c s3d/body.c s3d/errors.c
  s3d/server.c s3d/ops_bucket.c s3d/ops_list.c s3d/ops_multipart.c
  s3d/ops_object.c s3d/ops_post.c"
libstore="libstore/util.c libstore/backend_local.c libstore/catalog.c
  libstore/object.c libstore/namespace.c libstore/multipart.c libstore/maint.c"
srcs_urlenc="s3d/urlenc.c"
srcs_range="s3d/range.c"
srcs_checksum="s3d/checksum.c"
srcs_sigv4="s3d/sigv4.c s3d/urlenc.c s3d/range.c s3d/dynbuf.c"
srcs_chunked="s3d/chunked.c $srcs_sigv4"
srcs_xmlin="s3d/xmlin.c s3d/xmlout.c s3d/dynbuf.c s3d/range.c libstore/util.c"
srcs_post="$s3d_daemon $libstore" # ops_post.c needs the daemon around it
srcs_pathmap="fusefs/pathmap.c"
# pkg-config packages each harness compiles and links against.
pkgs_urlenc=""
pkgs_range=""
pkgs_checksum="nettle"
pkgs_sigv4="nettle"
pkgs_chunked="nettle"
pkgs_xmlin="libxml-2.0 nettle sqlite3"
pkgs_post="libmicrohttpd gnutls libxml-2.0 nettle sqlite3"
pkgs_pathmap="fuse3"

skip() {
  echo "skip: $*"
  exit 77
}
[ -n "$cc" ] || skip "no clang found (set FUZZ_CC)"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config not found"

work=${FUZZ_WORK:-}
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/s3store-fuzz.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/obj" "$work/bin" "$art"

# libFuzzer and the sanitizer runtimes (Debian: libclang-rt-NN-dev).
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)'\
' { (void)d; (void)n; return 0; }\n' >"$work/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" \
  >/dev/null 2>&1 || skip "$cc cannot build libFuzzer binaries (Debian: apt-get install libclang-rt-14-dev)"

base_flags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
  -fno-sanitize-recover=undefined -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
  -std=gnu11 -I$root/s3d -I$root/fusefs -I$root/libstore -I$here"

pkg_cflags() { [ -z "$1" ] || pkg-config --cflags $1 2>/dev/null; }
pkg_libs() { [ -z "$1" ] || pkg-config --libs $1 2>/dev/null; }

# Harnesses whose libraries are missing are skipped (not failed).
run=""
for n in $names; do
  v="srcs_$n"
  [ -n "${!v+x}" ] || { echo "unknown harness: $n (have: $all)"; exit 2; }
  p="pkgs_$n"
  missing=""
  for k in ${!p}; do pkg-config --exists "$k" || missing="$missing $k"; done
  if [ -n "$missing" ]; then
    echo "skip fuzz_$n: missing$missing (pkg-config)"
    continue
  fi
  run="$run $n"
done
names=$run
[ -n "$names" ] || skip "no harness can be built here"

# Compile every source the selected harnesses need, once, in parallel.
need=""
for n in $names; do v="srcs_$n"; need="$need ${!v}"; done
all_pkgs=""
for n in $names; do v="pkgs_$n"; all_pkgs="$all_pkgs ${!v}"; done
cflags_all="$base_flags"
for p in $(echo $all_pkgs | tr ' ' '\n' | sort -u); do
  cflags_all="$cflags_all $(pkg_cflags "$p")"
done
export cc cflags_all root work
printf '%s\n' $need | sort -u | xargs -P "$jobs" -I{} sh -c '
  o="$work/obj/$(echo "{}" | tr / _).o"
  $cc $cflags_all -fsanitize=fuzzer-no-link -c "$root/{}" -o "$o" \
    >"$o.log" 2>&1 || { echo "compile failed: {}"; cat "$o.log"; }' \
  | head -40

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

passed=0
failed=0
for n in $names; do
  h="fuzz_$n"
  s="srcs_$n"
  p="pkgs_$n"
  objs=""
  for f in ${!s}; do objs="$objs $work/obj/$(echo "$f" | tr / _).o"; done
  log="$art/$h.log"
  # shellcheck disable=SC2086,SC2046
  if ! "$cc" $cflags_all -fsanitize=fuzzer "$here/$h.c" $objs \
      $(pkg_libs "${!p}") -lpthread -o "$work/bin/$h" >"$log" 2>&1; then
    echo "FAIL $h: build failed (log at $log)"
    sed -n '1,15p' "$log" | sed 's/^/  /'
    failed=$((failed + 1))
    continue
  fi
  corpus="$work/corpus-$n"
  mkdir -p "$corpus"
  dict=""
  [ -f "$here/dict/$n.dict" ] && dict="-dict=$here/dict/$n.dict"
  seeds="$here/corpus/$n"
  [ -d "$seeds" ] || seeds=""
  rm -f "$art/$h-"crash-* "$art/$h-"leak-* "$art/$h-"timeout-* "$art/$h-"oom-*
  # shellcheck disable=SC2086
  "$work/bin/$h" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$art/$h-" $dict $extra \
    "$corpus" $seeds >"$log" 2>&1
  rc=$?
  repro=$(ls -t "$art/$h-"crash-* "$art/$h-"leak-* "$art/$h-"timeout-* \
    "$art/$h-"oom-* 2>/dev/null | head -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $rc -eq 0 ] && [ -z "$repro" ]; then
    cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -1 |
      sed -n 's/.*\(cov: [0-9]* ft: [0-9]*\).*exec\/s: \([0-9]*\).*/\1 exec\/s: \2/p')
    echo "ok $h (${execs:-0} execs)"
    [ -n "$cov" ] && echo "  $cov"
    passed=$((passed + 1))
    if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ] && [ -n "$seeds" ]; then
      "$work/bin/$h" -merge=1 $dict "$seeds" "$corpus" >>"$log" 2>&1
    fi
  else
    kind=crash
    case "$(basename "${repro:-x}")" in
    *-leak-*) kind=leak ;;
    *-timeout-*) kind=timeout ;;
    *-oom-*) kind=out-of-memory ;;
    esac
    echo "FAIL $h: $kind (reproducer saved at ${repro:-none; exit status $rc}, log $log)"
    grep -m1 -E 'SUMMARY:|fuzz property failed|ERROR: libFuzzer' "$log" | sed 's/^/  /'
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
