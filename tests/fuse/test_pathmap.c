/*
 * test_pathmap.c -- unit tests of fusefs's key <-> path rule
 * (fusefs/pathmap.c, pure functions), plus a seeded random round trip.
 *
 * Build: with fusefs/pathmap.c and fusefs/errmap.c, include directories
 * fusefs/, libstore/ and tests/, and fuse3's cflags (fusefs.h includes
 * fuse_lowlevel.h); no library is needed beyond libc.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "fusefs.h"
#include "harness.h"

/* fs_errno is in errmap.c; fusefs.h also declares FS and fs_log. */
struct fs *FS;
void fs_log(const char *fmt, ...) { (void)fmt; }

static void test_name_ok(void) {
  T_ASSERT(pathmap_name_ok("a", 1));
  T_ASSERT(pathmap_name_ok("...", 3));
  T_ASSERT(pathmap_name_ok(".hidden", 7));
  T_ASSERT(!pathmap_name_ok("", 0));
  T_ASSERT(!pathmap_name_ok(".", 1));
  T_ASSERT(!pathmap_name_ok("..", 2));
  T_ASSERT(!pathmap_name_ok("a/b", 3));
  char long_name[300];
  memset(long_name, 'x', sizeof long_name);
  T_ASSERT(pathmap_name_ok(long_name, 255));
  T_ASSERT(!pathmap_name_ok(long_name, 256));
}

static void test_entries(void) {
  size_t off, len;
  T_ASSERT(pathmap_entry("d/", "d/", 0, 0, &off, &len) == PM_SELF);
  T_ASSERT(pathmap_entry("d/", "d/f.txt", 5, 0, &off, &len) == PM_FILE);
  T_ASSERT(off == 2 && len == 5);
  T_ASSERT(pathmap_entry("", "top", 1, 0, &off, &len) == PM_FILE);
  T_ASSERT(pathmap_entry("d/", "d/.", 1, 0, &off, &len) == PM_HIDDEN);
  T_ASSERT(pathmap_entry("d/", "d/..", 1, 0, &off, &len) == PM_HIDDEN);
  T_ASSERT(pathmap_entry("d/", "e/x", 1, 0, &off, &len) == PM_HIDDEN);
  /* old-style markers */
  T_ASSERT(pathmap_entry("d/", "d/sub_$folder$", 0, 0, &off, &len) ==
           PM_LEGACY_DIR);
  T_ASSERT(len == 3 && !memcmp("d/sub_$folder$" + off, "sub", 3));
  T_ASSERT(pathmap_entry("d/", "d/sub_$folder$", 9, 0, &off, &len) == PM_FILE);
  T_ASSERT(pathmap_entry("d/", "d/_$folder$", 0, 0, &off, &len) == PM_FILE);
  T_ASSERT(pathmap_entry("d/", "d/s3fsdir", 0, S_IFDIR | 0755, &off, &len) ==
           PM_LEGACY_DIR);
  T_ASSERT(pathmap_entry("d/", "d/s3fsdir", 1, S_IFDIR | 0755, &off, &len) ==
           PM_FILE);
  char key[400] = "d/";
  memset(key + 2, 'L', 256);
  key[258] = '\0';
  T_ASSERT(pathmap_entry("d/", key, 1, 0, &off, &len) == PM_HIDDEN);
}

static void test_prefixes(void) {
  size_t off, len;
  T_ASSERT(pathmap_common_prefix("", "a/", &off, &len) == PM_DIR);
  T_ASSERT(off == 0 && len == 1);
  T_ASSERT(pathmap_common_prefix("a/", "a//", &off, &len) == PM_HIDDEN);
  T_ASSERT(pathmap_common_prefix("p/", "p/./", &off, &len) == PM_HIDDEN);
  T_ASSERT(pathmap_common_prefix("p/", "p/../", &off, &len) == PM_HIDDEN);
  T_ASSERT(pathmap_common_prefix("p/", "p/x", &off, &len) == PM_HIDDEN);
  T_ASSERT(pathmap_common_prefix("p/", "p/sub/", &off, &len) == PM_DIR);
  T_ASSERT(len == 3);
}

static void test_conflict(void) {
  T_EQ_U64(pathmap_conflict_base("a.~file"), 1);
  T_EQ_U64(pathmap_conflict_base("a"), 0);
  T_EQ_U64(pathmap_conflict_base(".~file"), 0);
  T_EQ_U64(pathmap_conflict_base("...~file"), 0); /* base ".." */
  T_EQ_U64(pathmap_conflict_base("x.~file.~file"), 7);
}

static void test_child_key(void) {
  char out[STORE_KEY_MAX + 2];
  T_EQ_U64(pathmap_child_key("a/", "b", 0, out, sizeof out), 0);
  T_EQ_STR(out, "a/b");
  T_EQ_U64(pathmap_child_key("a/", "b", 1, out, sizeof out), 0);
  T_EQ_STR(out, "a/b/");
  T_EQ_U64(pathmap_child_key("", "top", 0, out, sizeof out), 0);
  T_EQ_STR(out, "top");
  T_EQ_U64(pathmap_child_key("a/", "..", 0, out, sizeof out), EINVAL);
  T_EQ_U64(pathmap_child_key("a/", "x/y", 0, out, sizeof out), EINVAL);
  char name[300];
  memset(name, 'n', 256);
  name[256] = '\0';
  T_EQ_U64(pathmap_child_key("a/", name, 0, out, sizeof out), ENAMETOOLONG);
  char prefix[STORE_KEY_MAX + 1];
  memset(prefix, 'p', 1020);
  prefix[1020] = '/';
  prefix[1021] = '\0';
  T_EQ_U64(pathmap_child_key(prefix, "abc", 0, out, sizeof out), 0);
  T_EQ_U64(pathmap_child_key(prefix, "abcd", 0, out, sizeof out),
           ENAMETOOLONG);
  T_EQ_U64(pathmap_child_key(prefix, "abc", 1, out, sizeof out), ENAMETOOLONG);
}

/* Random names: a name accepted by pathmap_child_key comes back from
 * pathmap_entry / pathmap_common_prefix as the same name. */
static void test_round_trip(void) {
  uint64_t x = 88172645463325252ULL;
  const char alphabet[] = "ab./_$~-\x01 \xc3\xa9";
  for (int i = 0; i < 20000; i++) {
    char name[300];
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t n = x % 12;
    for (size_t j = 0; j < n; j++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      name[j] = alphabet[x % (sizeof alphabet - 1)];
    }
    name[n] = '\0';
    char key[STORE_KEY_MAX + 2], dkey[STORE_KEY_MAX + 2];
    int e = pathmap_child_key("dir/", name, 0, key, sizeof key);
    if (e) {
      T_ASSERT(e == EINVAL && !pathmap_name_ok(name, n));
      continue;
    }
    T_ASSERT(pathmap_name_ok(name, n));
    size_t off, len;
    int kind = pathmap_entry("dir/", key, 1, 0, &off, &len);
    T_ASSERT(kind == PM_FILE);
    T_ASSERT(len == n && memcmp(key + off, name, n) == 0);
    T_ASSERT(pathmap_child_key("dir/", name, 1, dkey, sizeof dkey) == 0);
    T_ASSERT(pathmap_common_prefix("dir/", dkey, &off, &len) == PM_DIR);
    T_ASSERT(len == n && memcmp(dkey + off, name, n) == 0);
  }
}

static void test_errmap(void) {
  T_EQ_U64(fs_errno(STORE_OK), 0);
  T_EQ_U64(fs_errno(STORE_ERR_NOSPC), ENOSPC);
  T_EQ_U64(fs_errno(STORE_ERR_NO_KEY), ENOENT);
  T_EQ_U64(fs_errno(STORE_ERR_KEY_TOO_LONG), ENAMETOOLONG);
  T_EQ_U64(fs_errno(STORE_ERR_BUCKET_NOT_EMPTY), ENOTEMPTY);
  T_EQ_U64(fs_errno(-1), EIO);
  T_EQ_U64(fs_errno(STORE_ERR__COUNT), EIO);
  for (int rc = 1; rc < STORE_ERR__COUNT; rc++) T_ASSERT(fs_errno(rc) > 0);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(test_name_ok);
  T_RUN(test_entries);
  T_RUN(test_prefixes);
  T_RUN(test_conflict);
  T_RUN(test_child_key);
  T_RUN(test_round_trip);
  T_RUN(test_errmap);
  T_MAIN_END();
}
