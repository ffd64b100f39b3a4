/*
 * pathmap.c -- the rule that turns object keys into paths and back.
 *
 * Pure functions of their arguments (no store, no globals), so tests and
 * fuzzers can call them directly.  The rule (docs/fusefs.md, "Keys and
 * paths"):
 *  - '/' separates components; a directory is a common prefix "d/" or a
 *    marker object "d/" (zero bytes: s3fs, rclone and the AWS console);
 *    the old s3fs/Hadoop marker "d_$folder$" and an s3fs directory object
 *    "d" (mode S_IFDIR, no data) are read as directory d too.
 *  - A component that cannot be a POSIX name (empty as in "a//b", "." or
 *    "..", over 255 bytes) is hidden with everything below it.  Such keys
 *    stay intact: a directory holding them is not empty (rmdir fails with
 *    ENOTEMPTY) and a directory rename moves them along.
 *  - A key that is both a file "a" and a prefix "a/": the directory is
 *    shown as "a" and the file as "a" + PATHMAP_CONFLICT_SUFFIX (unless a
 *    key of that name exists itself, which then wins).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fusefs.h"

int pathmap_name_ok(const char *name, size_t n) {
  if (n == 0 || n > FUSEFS_NAME_MAX) return 0;
  if (n == 1 && name[0] == '.') return 0;
  if (n == 2 && name[0] == '.' && name[1] == '.') return 0;
  return memchr(name, '/', n) == NULL && memchr(name, '\0', n) == NULL;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
  size_t sl = strlen(suffix);
  return n >= sl && memcmp(s + n - sl, suffix, sl) == 0;
}

int pathmap_entry(const char *prefix, const char *key, uint64_t size,
                  uint32_t mode, size_t *name_off, size_t *name_len) {
  size_t pl = strlen(prefix), kl = strlen(key);
  if (kl < pl || memcmp(key, prefix, pl) != 0) return PM_HIDDEN;
  const char *rest = key + pl;
  size_t rl = kl - pl;
  *name_off = pl;
  *name_len = rl;
  if (rl == 0) return PM_SELF;
  if (memchr(rest, '/', rl)) return PM_HIDDEN;
  size_t fl = strlen(PATHMAP_FOLDER_SUFFIX);
  if (size == 0 && ends_with(rest, rl, PATHMAP_FOLDER_SUFFIX) &&
      pathmap_name_ok(rest, rl - fl)) {
    *name_len = rl - fl;
    return PM_LEGACY_DIR;
  }
  if (!pathmap_name_ok(rest, rl)) return PM_HIDDEN;
  if (size == 0 && S_ISDIR(mode)) return PM_LEGACY_DIR;
  return PM_FILE;
}

int pathmap_common_prefix(const char *prefix, const char *cp, size_t *name_off,
                          size_t *name_len) {
  size_t pl = strlen(prefix), cl = strlen(cp);
  if (cl <= pl || memcmp(cp, prefix, pl) != 0 || cp[cl - 1] != '/')
    return PM_HIDDEN;
  *name_off = pl;
  *name_len = cl - pl - 1;
  return pathmap_name_ok(cp + pl, cl - pl - 1) ? PM_DIR : PM_HIDDEN;
}

size_t pathmap_conflict_base(const char *name) {
  size_t n = strlen(name), sl = strlen(PATHMAP_CONFLICT_SUFFIX);
  if (!ends_with(name, n, PATHMAP_CONFLICT_SUFFIX)) return 0;
  return pathmap_name_ok(name, n - sl) ? n - sl : 0;
}

int pathmap_child_key(const char *prefix, const char *name, int dir,
                      char *out, size_t cap) {
  size_t pl = strlen(prefix), n = strlen(name);
  if (n > FUSEFS_NAME_MAX) return ENAMETOOLONG;
  if (!pathmap_name_ok(name, n)) return EINVAL;
  size_t total = pl + n + (dir ? 1 : 0);
  if (total > STORE_KEY_MAX) return ENAMETOOLONG;
  if (total + 1 > cap) return ENAMETOOLONG;
  memcpy(out, prefix, pl);
  memcpy(out + pl, name, n);
  if (dir) out[pl + n++] = '/';
  out[pl + n] = '\0';
  return 0;
}
