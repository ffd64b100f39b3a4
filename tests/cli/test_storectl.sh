#!/usr/bin/env bash
# tests/cli/test_storectl.sh -- black-box tests of the storectl admin tool.
#
# Usage: test_storectl.sh PATH/TO/storectl
#
# Runs every verb of the command-line contract against fresh stores in a
# mktemp -d directory, including misuse (exit 2), failures (exit 1 with a
# "storectl: ..." line) and a damaged store.  Prints "ok NAME" or
# "FAIL NAME: reason" per check and ends with the plain line
# "N passed, N failed"; the exit status is non-zero if any check failed.
set -u

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH/TO/storectl" >&2
  exit 2
fi
BIN=$(realpath "$1")
T=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/storectl-test.XXXXXX") || exit 2
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
S=$T/store
unset STORE_DIR STORE_ACCESS_KEY STORE_SECRET_KEY POSIXLY_CORRECT
export LC_ALL=C

passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# run ARGS...: storectl with stdout in $T/out, stderr in $T/err, status in $rc
run() { "$BIN" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
# sc ARGS...: run on the main store
sc() { run --store "$S" "$@"; }
errline() { head -c 300 "$T/err" | tr '\n' ' '; }
# expect NAME WANT_RC: check the status of the last run
expect() {
  if [ "$rc" -eq "$2" ]; then ok "$1"; else fail "$1" "exit $rc, expected $2; stderr: $(errline)"; fi
}
# expect_fail NAME [REASON]: exit 1 and one "storectl: what: reason" line
# on stderr (containing REASON when given)
expect_fail() {
  if [ "$rc" -ne 1 ]; then
    fail "$1" "exit $rc, expected 1; stderr: $(errline)"
  elif ! grep -q '^storectl: .*: ' "$T/err"; then
    fail "$1" "no 'storectl: <what>: <reason>' line on stderr: $(errline)"
  elif [ $# -gt 1 ] && ! grep -qF -- "$2" "$T/err"; then
    fail "$1" "stderr does not say '$2': $(errline)"
  else
    ok "$1"
  fi
}
field() { awk -F': *' -v k="$1" '$1 == k { print $2; exit }' "$2"; }

# ------------------------------------------------------------------ usage
run --version
if [ $rc -eq 0 ] && grep -q '^storectl [0-9]' "$T/out"; then ok version; else fail version "exit $rc: $(cat "$T/out")"; fi
run --help
if [ $rc -eq 0 ] && grep -q 'Usage' "$T/out" && grep -q 'import SRCDIR BUCKET' "$T/out"; then ok help; else fail help "exit $rc"; fi
run
expect usage_no_verb 2
run --store "$S" frobnicate
if [ $rc -eq 2 ] && grep -q "unknown verb" "$T/err"; then ok usage_unknown_verb; else fail usage_unknown_verb "exit $rc: $(errline)"; fi
run --store "$S" --frob stats
expect usage_unknown_option 2
run --store "$S" ls --repair b
expect usage_option_not_for_verb 2
run --store "$S" put onlybucket
expect usage_missing_argument 2
run --store "$S" get a b c d
expect usage_too_many_arguments 2
run --store "$S" user
expect usage_missing_subcommand 2
run --store "$S" bucket explode x
expect usage_unknown_subcommand 2
run --store
expect usage_option_needs_argument 2
run stats
expect usage_no_store 2
run --store "$T/nothing-here" stats
expect_fail open_missing_store "not a store"

# ------------------------------------------------------------------ init
sc init
if [ $rc -eq 0 ]; then
  AK=$(field "access key" "$T/out")
  SK=$(field "secret key" "$T/out")
  if [ ${#AK} -ge 16 ] && [ ${#SK} -ge 30 ]; then ok init_random_keys; else fail init_random_keys "keys '$AK' '$SK'"; fi
else
  fail init_random_keys "exit $rc: $(errline)"
  AK=none SK=none
fi
sc init
expect_fail init_twice "store already exists"

run --store "$T/store2" init --access-key AKIAGIVENKEY0000001 --secret-key givensecretgivensecretgivensecret0001
if [ $rc -eq 0 ] && [ "$(field "access key" "$T/out")" = AKIAGIVENKEY0000001 ] &&
  [ "$(field "secret key" "$T/out")" = givensecretgivensecretgivensecret0001 ]; then
  ok init_given_keys
else fail init_given_keys "exit $rc: $(cat "$T/out") $(errline)"; fi

STORE_DIR=$T/store3 STORE_ACCESS_KEY=AKIAFROMENV00000001 STORE_SECRET_KEY=envsecretenvsecretenvsecretenvsecret01 \
  run init
if [ $rc -eq 0 ] && [ "$(field "access key" "$T/out")" = AKIAFROMENV00000001 ] && [ -d "$T/store3" ]; then
  ok init_env_keys_and_store_dir
else fail init_env_keys_and_store_dir "exit $rc: $(cat "$T/out") $(errline)"; fi
STORE_DIR=$T/store3 run user list
if [ $rc -eq 0 ] && grep -q AKIAFROMENV00000001 "$T/out" && grep -q admin "$T/out"; then
  ok store_dir_from_env
else fail store_dir_from_env "exit $rc: $(errline)"; fi

# ------------------------------------------------------------------ users
sc user add alice
ALICE_AK=$(field "access key" "$T/out")
ALICE_SK=$(field "secret key" "$T/out")
if [ $rc -eq 0 ] && [ -n "$ALICE_AK" ] && [ -n "$ALICE_SK" ] && grep -q '^admin: *no' "$T/out"; then
  ok user_add
else fail user_add "exit $rc: $(errline)"; fi
sc user add bob --admin --access-key AKIABOB000000000001 --secret-key bobsecretbobsecretbobsecretbobsecret01
if [ $rc -eq 0 ] && grep -q '^admin: *yes' "$T/out" && grep -q AKIABOB000000000001 "$T/out"; then
  ok user_add_admin_given_keys
else fail user_add_admin_given_keys "exit $rc: $(errline)"; fi
sc user add ""
expect user_add_empty_name 2
sc user add bob2 --access-key AKIABOB000000000001 --secret-key othersecretothersecretothersecret01
expect_fail user_add_duplicate_key "access key already exists"
sc user list
if [ $rc -eq 0 ] && grep -q "$AK" "$T/out" && grep -q "$ALICE_AK" "$T/out" &&
  grep -q AKIABOB000000000001 "$T/out" && grep -q 'alice' "$T/out"; then
  ok user_list
else fail user_list "exit $rc: $(cat "$T/out") $(errline)"; fi
if grep -qF -e "$SK" -e "$ALICE_SK" -e bobsecretbobsecretbobsecretbobsecret01 "$T/out"; then
  fail user_list_no_secrets "a secret key appears in 'user list'"
else ok user_list_no_secrets; fi
sc user revoke "$ALICE_AK"
expect user_revoke 0
sc user list
if grep "$ALICE_AK" "$T/out" | grep -q revoked; then ok user_revoke_listed; else fail user_revoke_listed "$(cat "$T/out")"; fi
sc user revoke AKIANOSUCHKEY000000
expect_fail user_revoke_unknown "no such access key"

# ------------------------------------------------------------------ buckets
sc bucket create bkt1
expect bucket_create 0
sc bucket create bkt1
expect_fail bucket_create_twice "bucket already exists"
sc bucket create Bad_Name!
expect_fail bucket_create_bad_name "invalid bucket name"
sc bucket create ab
expect_fail bucket_create_too_short_name "invalid bucket name"
sc bucket create empty-one
sc bucket list
if [ $rc -eq 0 ] && grep -q ' bkt1 ' "$T/out" && grep -q ' empty-one ' "$T/out"; then ok bucket_list; else fail bucket_list "exit $rc: $(cat "$T/out")"; fi
sc bucket list bkt1
if [ $rc -eq 0 ] && grep -q ' bkt1 ' "$T/out" && ! grep -q empty-one "$T/out"; then ok bucket_list_name; else fail bucket_list_name "exit $rc"; fi
sc bucket list nosuchbucket
expect_fail bucket_list_missing "no such bucket"
sc bucket delete empty-one
expect bucket_delete 0
sc bucket delete empty-one
expect_fail bucket_delete_missing "no such bucket"

# ------------------------------------------------------------------ put/get/ls/rm
head -c 3145728 /dev/urandom >"$T/big.bin"
printf 'hello world\n' >"$T/hello.txt"
touch -d '2001-02-03 04:05:06' "$T/hello.txt"
sc put bkt1 docs/hello.txt "$T/hello.txt"
if [ $rc -eq 0 ] && grep -q 'docs/hello.txt' "$T/out"; then ok put_file; else fail put_file "exit $rc: $(errline)"; fi
sc get bkt1 docs/hello.txt "$T/hello.out"
if [ $rc -eq 0 ] && cmp -s "$T/hello.txt" "$T/hello.out"; then ok get_file; else fail get_file "exit $rc: $(errline)"; fi
echo stale >"$T/hello.out"
sc get bkt1 docs/hello.txt "$T/hello.out"
if [ $rc -eq 0 ] && cmp -s "$T/hello.txt" "$T/hello.out"; then ok get_overwrites; else fail get_overwrites "exit $rc"; fi
"$BIN" --store "$S" put bkt1 big.bin - <"$T/big.bin" >"$T/out" 2>"$T/err"
rc=$?
expect put_stdin_redirect 0
# shellcheck disable=SC2002 # a pipe, not a file, is the point here
cat "$T/big.bin" | "$BIN" --store "$S" put bkt1 piped/big.bin - >"$T/out" 2>"$T/err"
rc=$?
expect put_stdin_pipe 0
"$BIN" --store "$S" get bkt1 piped/big.bin - 2>"$T/err" | cmp -s - "$T/big.bin"
st=("${PIPESTATUS[@]}")
if [ "${st[0]}" -eq 0 ] && [ "${st[1]}" -eq 0 ]; then ok get_stdout_3mib; else fail get_stdout_3mib "content differs or exit ${st[0]}: $(errline)"; fi
sc get bkt1 big.bin "$T/big.out"
if [ $rc -eq 0 ] && cmp -s "$T/big.bin" "$T/big.out"; then ok get_file_3mib; else fail get_file_3mib "exit $rc"; fi
printf '' | "$BIN" --store "$S" put bkt1 empty.dat - >"$T/out" 2>"$T/err"
rc=$?
sc get bkt1 empty.dat "$T/empty.out"
if [ $rc -eq 0 ] && [ -f "$T/empty.out" ] && [ ! -s "$T/empty.out" ]; then ok put_get_empty; else fail put_get_empty "exit $rc"; fi
sc put bkt1 -- -dash.txt "$T/hello.txt"
expect put_key_with_leading_dash 0
sc get bkt1 nosuchkey "$T/never.out"
expect_fail get_missing_key "no such key"
if [ -e "$T/never.out" ]; then fail get_missing_key_no_file "created $T/never.out"; else ok get_missing_key_no_file; fi
sc get nosuchbucket x -
expect_fail get_missing_bucket "no such bucket"
sc put nosuchbucket x "$T/hello.txt"
expect_fail put_missing_bucket "no such bucket"
sc put bkt1 x "$T/no-such-file"
expect_fail put_missing_file "No such file or directory"
sc put bkt1 "$(head -c 1100 /dev/zero | tr '\0' k)" "$T/hello.txt"
expect_fail put_key_too_long "key too long"

sc ls bkt1
if [ $rc -eq 0 ] && grep -q 'PRE docs/' "$T/out" && grep -q 'PRE piped/' "$T/out" &&
  grep -q ' 3145728 big.bin$' "$T/out" && ! grep -q 'docs/hello.txt' "$T/out"; then
  ok ls_delimiter
else fail ls_delimiter "exit $rc: $(cat "$T/out") $(errline)"; fi
sc ls -r bkt1
if [ $rc -eq 0 ] && grep -q ' 12 docs/hello.txt$' "$T/out" && ! grep -q PRE "$T/out" &&
  grep -q '^2001-02-03T04:05:06Z\|^20[0-9][0-9]-' "$T/out"; then
  ok ls_recursive
else fail ls_recursive "exit $rc: $(cat "$T/out")"; fi
sc ls bkt1 docs/
if [ $rc -eq 0 ] && [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q 'docs/hello.txt$' "$T/out"; then ok ls_prefix; else fail ls_prefix "$(cat "$T/out")"; fi
run ls -r bkt1 --store "$S"
if [ $rc -eq 0 ] && grep -q ' docs/hello.txt$' "$T/out"; then ok options_after_verb; else fail options_after_verb "exit $rc: $(errline)"; fi
sc ls nosuchbucket
expect_fail ls_missing_bucket "no such bucket"
sc rm bkt1 docs/hello.txt
expect rm 0
sc ls -r bkt1
if grep -q 'docs/hello.txt' "$T/out"; then fail rm_gone "still listed"; else ok rm_gone; fi
sc rm bkt1 docs/hello.txt
expect_fail rm_missing_key "no such key"
sc bucket delete bkt1
expect_fail bucket_delete_not_empty "bucket not empty"

# ------------------------------------------------------------------ import/export
SRC=$T/src
mkdir -p "$SRC/a/b/c" "$SRC/empty" "$SRC/a/also empty" "$SRC/sp ace"
cp "$T/big.bin" "$SRC/a/b/c/big.bin"
printf 'one\n' >"$SRC/one.txt"
printf 'two\n' >"$SRC/a/two.txt"
printf 'spaces\n' >"$SRC/sp ace/file with spaces.txt"
printf 'utf8\n' >"$SRC/"$'h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93.txt'
printf 'mode\n' >"$SRC/a/private.txt"
chmod 0640 "$SRC/a/private.txt"
: >"$SRC/a/zero-length"
touch -d '2010-05-06 07:08:09' "$SRC/a/b/c/big.bin"
ln -s one.txt "$SRC/skipme.lnk"
run --store "$S" import "$SRC" tree
if [ $rc -eq 0 ] && grep -q '^import .* 1 symlinks skipped' "$T/out"; then ok import; else fail import "exit $rc: $(cat "$T/out") $(errline)"; fi
if grep -q $'\r' "$T/err"; then fail import_no_progress_when_not_tty "progress on a non-terminal"; else ok import_no_progress_when_not_tty; fi
sc ls -r tree
if grep -q ' 0 empty/$' "$T/out" && grep -q ' 0 a/also empty/$' "$T/out" &&
  grep -q $' 5 h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93.txt$' "$T/out" && ! grep -q skipme "$T/out" &&
  ! grep -q ' a/b/$' "$T/out"; then
  ok import_keys
else fail import_keys "$(cat "$T/out")"; fi
run --store "$S" export tree "$T/dst"
if [ $rc -eq 0 ] && grep -q '^export ' "$T/out"; then ok export; else fail export "exit $rc: $(cat "$T/out") $(errline)"; fi
if diff -r -x skipme.lnk "$SRC" "$T/dst" >"$T/diff" 2>&1; then ok import_export_round_trip; else fail import_export_round_trip "$(head -c 300 "$T/diff")"; fi
if [ "$(stat -c %a "$T/dst/a/private.txt" 2>/dev/null)" = 640 ]; then ok export_mode; else fail export_mode "mode $(stat -c %a "$T/dst/a/private.txt" 2>&1)"; fi
if [ "$(stat -c %Y "$T/dst/a/b/c/big.bin" 2>/dev/null)" = "$(stat -c %Y "$SRC/a/b/c/big.bin")" ]; then ok export_mtime; else fail export_mtime "mtime differs"; fi
if [ -d "$T/dst/empty" ] && [ -z "$(ls -A "$T/dst/empty")" ]; then ok export_empty_dir; else fail export_empty_dir "missing or not empty"; fi
run --store "$S" import "$T/no-such-dir" tree
expect_fail import_missing_srcdir
run --store "$S" import "$SRC" Bad_Bucket
expect_fail import_bad_bucket_name "invalid bucket name"
run --store "$S" export nosuchbucket "$T/dst-none"
expect_fail export_missing_bucket "no such bucket"

# Pagination: more keys than one listing page (1000) through import, ls, export.
mkdir "$T/many"
for i in $(seq 1 1010); do echo "$i" >"$T/many/f$i"; done
run --store "$S" import "$T/many" many
expect import_many 0
sc ls many
if [ $rc -eq 0 ] && [ "$(wc -l <"$T/out")" -eq 1010 ]; then ok ls_paginates; else fail ls_paginates "exit $rc, $(wc -l <"$T/out") lines"; fi
run --store "$S" export many "$T/many-out"
if [ $rc -eq 0 ] && diff -r "$T/many" "$T/many-out" >/dev/null; then ok export_paginates; else fail export_paginates "exit $rc: $(cat "$T/out")"; fi

# Keys that cannot be paths are skipped, counted, and never escape DESTDIR.
mkdir -p "$T/outside" "$T/udst"
ln -s "$T/outside" "$T/udst/link"
sc bucket create unsafe
long=$(head -c 300 /dev/zero | tr '\0' n)
for k in ../evil a/../../evil2 x//y ./dot .. "$long/f" link/pwned /abs good/file c c/d; do
  sc put unsafe "$k" "$T/hello.txt"
  [ $rc -eq 0 ] || echo "  note: put unsafe '$k' failed: $(errline)"
done
run --store "$S" export unsafe "$T/udst"
if [ $rc -eq 0 ] && [ -f "$T/udst/good/file" ] && [ -f "$T/udst/c" ] && grep -q ' 9 skipped' "$T/out"; then
  ok export_skips_unsafe_keys
else fail export_skips_unsafe_keys "exit $rc: $(cat "$T/out") $(errline)"; fi
if [ -e "$T/evil" ] || [ -e "$T/evil2" ] || [ -e "$T/outside/pwned" ] || [ -e "$T/udst/dot" ] ||
  [ -e "$T/udst/x/y" ] || [ -e "/abs" ]; then
  fail export_stays_inside "a file was written outside DESTDIR or from a bad key"
else ok export_stays_inside; fi

# ------------------------------------------------------------------ gc/fsck/stats
sc stats
if [ $rc -eq 0 ] && [ -n "$(field "objects" "$T/out")" ] && [ -n "$(field "physical bytes" "$T/out")" ] &&
  [ -n "$(field "dedup ratio" "$T/out")" ] && [ -n "$(field "chunks" "$T/out")" ] &&
  [ -n "$(field "unreferenced" "$T/out")" ]; then
  ok stats
else fail stats "exit $rc: $(cat "$T/out") $(errline)"; fi
sc gc
if [ $rc -eq 0 ] && grep -q '^gc: .* s (.*MB/s)' "$T/out"; then ok gc; else fail gc "exit $rc: $(cat "$T/out") $(errline)"; fi
sc stats
if [ "$(field unreferenced "$T/out" | cut -d' ' -f1)" = 0 ]; then ok gc_leaves_nothing_unreferenced; else fail gc_leaves_nothing_unreferenced "$(field unreferenced "$T/out")"; fi
sc fsck
if [ $rc -eq 0 ] && grep -q 'healthy' "$T/out"; then ok fsck_healthy; else fail fsck_healthy "exit $rc: $(cat "$T/out") $(errline)"; fi
sc fsck --repair
expect fsck_repair_healthy 0

# Dedup: the same tree in two buckets must not double the physical bytes.
D=$T/dedup
run --store "$D" init
run --store "$D" import "$SRC" copy-one
run --store "$D" stats
L1=$(field "logical bytes" "$T/out")
P1=$(field "physical bytes" "$T/out")
run --store "$D" import "$SRC" copy-two
expect import_second_copy 0
run --store "$D" stats
L2=$(field "logical bytes" "$T/out")
P2=$(field "physical bytes" "$T/out")
R2=$(field "dedup ratio" "$T/out")
if [ -n "$P1" ] && [ -n "$P2" ] && [ "${L1:-0}" -gt 3000000 ] && [ "$L2" -ge $((2 * L1)) ] &&
  [ "$P2" -lt $((P1 + P1 / 10)) ]; then
  ok stats_dedup
else fail stats_dedup "logical $L1 -> $L2, physical $P1 -> $P2"; fi
case "$R2" in 1.9* | [2-9].*) ok stats_dedup_ratio ;; *) fail stats_dedup_ratio "ratio '$R2'" ;; esac

# fsck on a damaged store: overwrite one chunk file with garbage of the same size.
chunk=$(find "$D/chunks" -type f -size +1k 2>/dev/null | head -n 1)
if [ -z "$chunk" ]; then
  fail fsck_damaged "no chunk file found under $D/chunks"
else
  size=$(stat -c %s "$chunk")
  chmod u+w "$chunk" 2>/dev/null
  head -c "$size" /dev/urandom >"$T/garbage"
  cat "$T/garbage" >"$chunk"
  run --store "$D" fsck
  if [ $rc -eq 1 ] && grep -q '^storectl: fsck: ' "$T/err" && grep -q '^chunks corrupt: *[1-9]' "$T/out"; then
    ok fsck_damaged
  else fail fsck_damaged "exit $rc: $(cat "$T/out") $(errline)"; fi
  # The only objects holding that chunk are the two copies of big.bin.
  if grep -q '^objects damaged: *[1-9]' "$T/out"; then ok fsck_damaged_counts_objects; else
    fail fsck_damaged_counts_objects "a corrupt chunk is referenced, yet: $(grep '^objects damaged' "$T/out")"; fi
  run --store "$D" export copy-one "$T/dst-damaged"
  expect_fail export_damaged_fails
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
