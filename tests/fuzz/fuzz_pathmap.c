/*
 * fuzz_pathmap.c -- the mount's key <-> path rule (fusefs/pathmap.c), both
 * directions.
 *
 * Input: a flag byte, the object size (one byte), a mode selector (0: no
 * "mode" metadata, 1 directory, 2 regular file, 3 symlink), then three
 * NUL-separated strings: a directory prefix P, a key-or-name X and a third
 * string Y (a common prefix, or a second name).
 *
 * Checked (docs/fusefs.md, "Keys and paths"):
 *  - pathmap_name_ok is exactly "1..255 bytes, not . or .., no / or NUL";
 *  - key -> path: whatever pathmap_entry shows for key X under P, the name
 *    it shows maps back to X (file: pathmap_child_key(P, name) == X; an
 *    old-style marker: X is P + name + "_$folder$" or an s3fs directory
 *    object P + name), and a hidden key really cannot be shown; a common
 *    prefix shown as directory `name` is pathmap_child_key(P, name, dir);
 *  - path -> key: for a valid name, the key pathmap_child_key builds is
 *    listed back under P as that same name (a file, or the directory from
 *    its common prefix), and its errors are the documented ones;
 *  - NAME.~file: pathmap_conflict_base finds NAME exactly when the name is
 *    a valid NAME plus the suffix, and the shown conflict name of a file
 *    maps back to it.
 *
 * One overlap is by the rule, not a bug, and is asserted as such: an empty
 * regular file whose name ends in "_$folder$" is listed as the old-style
 * directory marker of the name without the suffix.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fusefs.h"
#include "fuzz.h"

static int ref_name_ok(const char *s, size_t n) {
  if (n < 1 || n > 255) return 0;
  if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '/' || s[i] == '\0') return 0;
  return 1;
}

static int ends_with(const char *s, size_t n, const char *suf) {
  size_t k = strlen(suf);
  return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* Key -> path, for key x under prefix p. */
static void key_to_path(const char *p, const char *x, uint64_t size, uint32_t mode) {
  size_t off = (size_t)-1, len = (size_t)-1;
  int kind = pathmap_entry(p, x, size, mode, &off, &len);
  size_t pl = strlen(p), xl = strlen(x);
  int under = xl >= pl && memcmp(x, p, pl) == 0;
  const char *rest = x + pl;
  size_t rl = under ? xl - pl : 0;
  char key[2 * STORE_KEY_MAX + 600];
  switch (kind) {
  case PM_SELF:
    FZ_CHECK(under && rl == 0);
    break;
  case PM_FILE: {
    FZ_CHECK(under && off == pl && len == rl);
    FZ_CHECK(ref_name_ok(x + off, len));
    FZ_CHECK(!(size == 0 && S_ISDIR(mode)), "empty directory object shown as a file");
    FZ_CHECK(!(size == 0 && ends_with(rest, rl, PATHMAP_FOLDER_SUFFIX) &&
               ref_name_ok(rest, rl - strlen(PATHMAP_FOLDER_SUFFIX))),
             "old-style marker shown as a file");
    char name[256];
    memcpy(name, x + off, len);
    name[len] = '\0';
    int e = pathmap_child_key(p, name, 0, key, sizeof key);
    if (pl + len <= STORE_KEY_MAX) {
      FZ_CHECK(e == 0 && strcmp(key, x) == 0, "file %s -> key %s (e %d)", name, key, e);
    } else {
      FZ_CHECK(e == ENAMETOOLONG);
    }
    /* Its conflict name, when it fits, maps back to it. */
    if (len + strlen(PATHMAP_CONFLICT_SUFFIX) <= FUSEFS_NAME_MAX) {
      char cn[300];
      snprintf(cn, sizeof cn, "%s%s", name, PATHMAP_CONFLICT_SUFFIX);
      FZ_CHECK(pathmap_conflict_base(cn) == len);
    }
    break;
  }
  case PM_LEGACY_DIR: {
    FZ_CHECK(under && off == pl && size == 0);
    FZ_CHECK(ref_name_ok(x + off, len));
    if (len == rl) {
      FZ_CHECK(S_ISDIR(mode), "legacy dir without suffix or directory mode");
    } else {
      FZ_CHECK(len + strlen(PATHMAP_FOLDER_SUFFIX) == rl &&
               ends_with(rest, rl, PATHMAP_FOLDER_SUFFIX));
    }
    char name[256];
    memcpy(name, x + off, len);
    name[len] = '\0';
    /* The directory's own key is P + name + "/". */
    int e = pathmap_child_key(p, name, 1, key, sizeof key);
    if (pl + len + 1 <= STORE_KEY_MAX) {
      FZ_CHECK(e == 0);
      size_t kl = strlen(key);
      FZ_CHECK(kl == pl + len + 1 && key[kl - 1] == '/' && !strncmp(key, x, pl + len));
    }
    break;
  }
  case PM_HIDDEN:
    if (under && rl > 0 && !memchr(rest, '/', rl)) {
      FZ_CHECK(!ref_name_ok(rest, rl), "valid name %s hidden", rest);
      FZ_CHECK(!(size == 0 && ends_with(rest, rl, PATHMAP_FOLDER_SUFFIX) &&
                 ref_name_ok(rest, rl - strlen(PATHMAP_FOLDER_SUFFIX))));
    }
    break;
  default:
    FZ_CHECK(0, "pathmap_entry returned %d", kind);
  }
}

/* A common prefix cp listed under p. */
static void prefix_to_path(const char *p, const char *cp) {
  size_t off, len;
  int kind = pathmap_common_prefix(p, cp, &off, &len);
  size_t pl = strlen(p), cl = strlen(cp);
  if (kind == PM_HIDDEN) {
    if (cl > pl + 1 && !memcmp(cp, p, pl) && cp[cl - 1] == '/')
      FZ_CHECK(!ref_name_ok(cp + pl, cl - pl - 1), "valid directory hidden");
    return;
  }
  FZ_CHECK(kind == PM_DIR && off == pl && len == cl - pl - 1);
  FZ_CHECK(ref_name_ok(cp + off, len));
  char name[256], key[2 * STORE_KEY_MAX + 600];
  memcpy(name, cp + off, len);
  name[len] = '\0';
  int e = pathmap_child_key(p, name, 1, key, sizeof key);
  if (cl <= STORE_KEY_MAX) FZ_CHECK(e == 0 && !strcmp(key, cp));
}

/* Path -> key: name n created in directory p. */
static void path_to_key(const char *p, const char *n, uint64_t size, uint32_t mode) {
  size_t pl = strlen(p), nl = strlen(n);
  char key[2 * STORE_KEY_MAX + 600];
  for (int dir = 0; dir < 2; dir++) {
    int e = pathmap_child_key(p, n, dir, key, sizeof key);
    if (nl > FUSEFS_NAME_MAX) {
      FZ_CHECK(e == ENAMETOOLONG);
      continue;
    }
    if (!ref_name_ok(n, nl)) {
      FZ_CHECK(e == EINVAL, "invalid name accepted (e %d)", e);
      continue;
    }
    if (pl + nl + (size_t)dir > STORE_KEY_MAX) {
      FZ_CHECK(e == ENAMETOOLONG);
      continue;
    }
    FZ_CHECK(e == 0 && strlen(key) == pl + nl + (size_t)dir);
    size_t off, len;
    if (dir) {
      /* Listed as a common prefix: the same directory name. */
      FZ_CHECK(pathmap_common_prefix(p, key, &off, &len) == PM_DIR && len == nl &&
               !memcmp(key + off, n, nl));
      /* Its marker object is the directory itself. */
      FZ_CHECK(pathmap_entry(key, key, 0, S_IFDIR | 0755, &off, &len) == PM_SELF);
      continue;
    }
    /* A file written through the mount (mode S_IFREG or a symlink). */
    uint32_t fmode = S_ISLNK(mode) ? mode : (S_IFREG | 0644);
    int kind = pathmap_entry(p, key, size, fmode, &off, &len);
    size_t fl = strlen(PATHMAP_FOLDER_SUFFIX);
    if (size == 0 && ends_with(n, nl, PATHMAP_FOLDER_SUFFIX) && ref_name_ok(n, nl - fl)) {
      /* By the rule: read as the old-style marker of the shorter name. */
      FZ_CHECK(kind == PM_LEGACY_DIR && len == nl - fl);
    } else {
      FZ_CHECK(kind == PM_FILE && off == pl && len == nl && !memcmp(key + off, n, nl),
               "created \"%s\" in \"%s\", listed as kind %d", n, p, kind);
    }
  }
}

static void conflict(const char *n) {
  size_t nl = strlen(n), sl = strlen(PATHMAP_CONFLICT_SUFFIX);
  size_t b = pathmap_conflict_base(n);
  int want = nl > sl && ends_with(n, nl, PATHMAP_CONFLICT_SUFFIX) && ref_name_ok(n, nl - sl);
  FZ_CHECK(want ? b == nl - sl : b == 0, "conflict base of \"%s\": %zu", n, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz f = {data, size};
  uint8_t flags = fz_u8(&f);
  uint64_t osize = fz_u8(&f);
  static const uint32_t modes[4] = {0, S_IFDIR | 0755, S_IFREG | 0644, S_IFLNK | 0777};
  uint32_t mode = modes[fz_u8(&f) & 3];
  size_t pl, xl, yl;
  const char *p = fz_until(&f, 0, &pl);
  const char *x = fz_until(&f, 0, &xl);
  const char *y = fz_until(&f, 0, &yl);
  if (pl > STORE_KEY_MAX + 300 || xl > STORE_KEY_MAX + 300 || yl > STORE_KEY_MAX + 300)
    return 0;
  char *ps = fz_strdup(p, pl), *xs = fz_strdup(x, xl), *ys = fz_strdup(y, yl);
  /* Inputs hold no NUL (they are split on it), so strlen == length. */
  FZ_CHECK(pathmap_name_ok(xs, xl) == ref_name_ok(xs, xl));
  FZ_CHECK(pathmap_name_ok(ys, yl) == ref_name_ok(ys, yl));
  if (xl) { /* with an embedded NUL */
    char *z = fz_dup(xs, xl);
    z[xl / 2] = '\0';
    FZ_CHECK(pathmap_name_ok(z, xl) == 0);
    free(z);
  }
  /* Often make X a key under P. */
  char *xk = xs;
  if (flags & 1) {
    xk = fz_alloc(pl + xl + 1);
    memcpy(xk, ps, pl);
    memcpy(xk + pl, xs, xl + 1);
  }
  key_to_path(ps, xk, osize, mode);
  prefix_to_path(ps, ys);
  if (flags & 2) { /* Y as a common prefix under P */
    char *cp = fz_alloc(pl + yl + 2);
    memcpy(cp, ps, pl);
    memcpy(cp + pl, ys, yl);
    cp[pl + yl] = '/';
    cp[pl + yl + 1] = '\0';
    prefix_to_path(ps, cp);
    free(cp);
  }
  path_to_key(ps, xs, osize, mode);
  path_to_key(ps, ys, osize, mode);
  conflict(xs);
  conflict(ys);
  if (xk != xs) free(xk);
  free(ps);
  free(xs);
  free(ys);
  return 0;
}
