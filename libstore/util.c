/*
 * util.c -- result codes, per-thread error detail, UTF-8 validation, the
 * kv blob encoding, hex, random ids and content-type guessing.
 */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static const char *const rc_names[STORE_ERR__COUNT] = {
    [STORE_OK] = "ok",
    [STORE_ERR_NOMEM] = "out of memory",
    [STORE_ERR_IO] = "I/O error",
    [STORE_ERR_NOSPC] = "no space left on device",
    [STORE_ERR_READONLY] = "store is read-only",
    [STORE_ERR_CORRUPT] = "data is corrupt",
    [STORE_ERR_BUSY] = "catalog is busy",
    [STORE_ERR_INVALID] = "invalid argument",
    [STORE_ERR_NO_STORE] = "not a store",
    [STORE_ERR_STORE_EXISTS] = "store already exists",
    [STORE_ERR_TOO_NEW] = "store was created by a newer version",
    [STORE_ERR_BAD_BUCKET_NAME] = "invalid bucket name",
    [STORE_ERR_BAD_KEY] = "invalid key",
    [STORE_ERR_KEY_TOO_LONG] = "key too long",
    [STORE_ERR_NO_BUCKET] = "no such bucket",
    [STORE_ERR_BUCKET_EXISTS] = "bucket already exists",
    [STORE_ERR_BUCKET_NOT_EMPTY] = "bucket not empty",
    [STORE_ERR_NO_KEY] = "no such key",
    [STORE_ERR_EXISTS] = "already exists",
    [STORE_ERR_PRECONDITION] = "precondition failed",
    [STORE_ERR_NO_UPLOAD] = "no such upload",
    [STORE_ERR_INVALID_PART] = "invalid part",
    [STORE_ERR_INVALID_PART_ORDER] = "invalid part order",
    [STORE_ERR_ENTITY_TOO_SMALL] = "part too small",
    [STORE_ERR_TOO_LARGE] = "too large",
    [STORE_ERR_BAD_DIGEST] = "digest mismatch",
    [STORE_ERR_RANGE] = "range not satisfiable",
    [STORE_ERR_NO_USER] = "no such access key",
    [STORE_ERR_USER_EXISTS] = "access key already exists",
    [STORE_ERR_NOT_SUPPORTED] = "not supported",
};

const char *store_strerror(int rc) {
  if (rc < 0 || rc >= STORE_ERR__COUNT || !rc_names[rc]) return "unknown error";
  return rc_names[rc];
}

static __thread char tls_err[512];

const char *store_errmsg(void) { return tls_err; }

void store__clear_err(void) { tls_err[0] = 0; }

int store__err(int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_err, sizeof tls_err, fmt, ap);
  va_end(ap);
  return rc;
}

int store__errno(int err, const char *what) {
  int rc;
  switch (err) {
  case ENOSPC:
  case EDQUOT: rc = STORE_ERR_NOSPC; break;
  case EROFS:
  case EACCES:
  case EPERM: rc = STORE_ERR_READONLY; break;
  case ENOMEM: rc = STORE_ERR_NOMEM; break;
  default: rc = STORE_ERR_IO; break;
  }
  return store__err(rc, "%s: %s", what, strerror(err));
}

/* Can a file be created next to `file`?  0 if so, else the errno. */
static int probe_dir(const char *file) {
  if (!file || !*file) return 0;
  const char *slash = strrchr(file, '/');
  if (!slash) return 0;
  char path[4096];
  int n = snprintf(path, sizeof path, "%.*s/.probe-%d-%lx", (int)(slash - file),
                   file, (int)getpid(), (unsigned long)pthread_self());
  if (n < 0 || (size_t)n >= sizeof path) return 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno == EEXIST ? 0 : errno;
  close(fd);
  unlink(path);
  return 0;
}

int store__sqlerr(sqlite3 *db, int src, const char *what) {
  int rc;
  switch (src & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED: rc = STORE_ERR_BUSY; break;
  case SQLITE_FULL: rc = STORE_ERR_NOSPC; break;
  case SQLITE_NOMEM: rc = STORE_ERR_NOMEM; break;
  case SQLITE_READONLY: rc = STORE_ERR_READONLY; break;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB: rc = STORE_ERR_CORRUPT; break;
  default: rc = STORE_ERR_IO; break;
  }
  /* An I/O error may hide a condition the caller can act on: a
   * filesystem that turned read-only (ext4 errors=remount-ro) or filled
   * up.  SQLite does not always keep the errno, so probe the directory. */
  if (rc == STORE_ERR_IO && db) {
    int e = sqlite3_system_errno(db);
    if (e == 0) e = probe_dir(sqlite3_db_filename(db, "main"));
    if (e == EROFS || e == EACCES || e == EPERM) rc = STORE_ERR_READONLY;
    else if (e == ENOSPC || e == EDQUOT) rc = STORE_ERR_NOSPC;
  }
  return store__err(rc, "catalog: %s: %s", what,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

int64_t store__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void store__random(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      abort(); /* no entropy: nothing safe to do (policy: log and abort) */
    }
    p += r;
    n -= (size_t)r;
  }
}

void store_hex(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}

void store__random_id(char *out, size_t nchars) {
  uint8_t raw[64];
  size_t nb = (nchars + 1) / 2;
  if (nb > sizeof raw) nb = sizeof raw;
  store__random(raw, nb);
  char hex[129];
  store_hex(raw, nb, hex);
  memcpy(out, hex, nchars);
  out[nchars] = 0;
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
bool store__utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned min;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      min = 0x80;
      c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      min = 0x800;
      c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      min = 0x10000;
      c &= 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      c = (c << 6) | (s[i + k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

int store_key_check(const char *key, size_t len) {
  if (!key || len == 0) return store__err(STORE_ERR_BAD_KEY, "empty key");
  if (len > STORE_KEY_MAX)
    return store__err(STORE_ERR_KEY_TOO_LONG, "key is %zu bytes, over %d",
                      len, STORE_KEY_MAX);
  if (memchr(key, 0, len))
    return store__err(STORE_ERR_BAD_KEY, "key contains a NUL byte");
  if (!store__utf8_valid(key, len))
    return store__err(STORE_ERR_BAD_KEY, "key is not valid UTF-8");
  return STORE_OK;
}

char *store__strdup(const char *s) {
  if (!s) return NULL;
  return strdup(s);
}

char *store__prefix_end(const char *p) {
  size_t n = strlen(p);
  char *e = malloc(n + 2);
  if (!e) return NULL;
  memcpy(e, p, n);
  e[n] = (char)0xff;
  e[n + 1] = 0;
  return e;
}

size_t store__kv_size(const store_kv *kv, size_t n) {
  size_t t = 0;
  for (size_t i = 0; i < n; i++)
    t += strlen(kv[i].name) + strlen(kv[i].value ? kv[i].value : "");
  return t;
}

int store__kv_encode(const store_kv *kv, size_t n, char **blob, size_t *len) {
  size_t total = 0;
  *blob = NULL;
  *len = 0;
  if (n == 0) return STORE_OK;
  for (size_t i = 0; i < n; i++) {
    if (!kv[i].name) return store__err(STORE_ERR_INVALID, "kv without name");
    total += strlen(kv[i].name) + 1 + strlen(kv[i].value ? kv[i].value : "") + 1;
  }
  char *b = malloc(total);
  if (!b) return STORE_ERR_NOMEM;
  char *p = b;
  for (size_t i = 0; i < n; i++) {
    size_t a = strlen(kv[i].name) + 1;
    memcpy(p, kv[i].name, a);
    p += a;
    const char *v = kv[i].value ? kv[i].value : "";
    size_t bl = strlen(v) + 1;
    memcpy(p, v, bl);
    p += bl;
  }
  *blob = b;
  *len = total;
  return STORE_OK;
}

int store__kv_decode(const void *blob, size_t len, store_kv **out,
                     size_t *n) {
  *out = NULL;
  *n = 0;
  if (!blob || len == 0) return STORE_OK;
  const char *b = blob, *end = b + len;
  size_t count = 0;
  for (const char *p = b; p < end; p++)
    if (*p == 0) count++;
  if (count % 2 != 0 || b[len - 1] != 0)
    return store__err(STORE_ERR_CORRUPT, "catalog: malformed kv blob");
  store_kv *kv = calloc(count / 2, sizeof *kv);
  if (!kv) return STORE_ERR_NOMEM;
  const char *p = b;
  for (size_t i = 0; i < count / 2; i++) {
    kv[i].name = strdup(p);
    p += strlen(p) + 1;
    kv[i].value = strdup(p);
    p += strlen(p) + 1;
    if (!kv[i].name || !kv[i].value) {
      store_kv_free(kv, i + 1);
      return STORE_ERR_NOMEM;
    }
  }
  *out = kv;
  *n = count / 2;
  return STORE_OK;
}

int store__kv_dup(const store_kv *kv, size_t n, store_kv **out) {
  *out = NULL;
  if (n == 0) return STORE_OK;
  store_kv *d = calloc(n, sizeof *d);
  if (!d) return STORE_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    d[i].name = strdup(kv[i].name);
    d[i].value = strdup(kv[i].value ? kv[i].value : "");
    if (!d[i].name || !d[i].value) {
      store_kv_free(d, i + 1);
      return STORE_ERR_NOMEM;
    }
  }
  *out = d;
  return STORE_OK;
}

void store_kv_free(store_kv *kv, size_t n) {
  if (!kv) return;
  for (size_t i = 0; i < n; i++) {
    free(kv[i].name);
    free(kv[i].value);
  }
  free(kv);
}

void store__sha256(const void *data, size_t n, uint8_t out[HASH_LEN]) {
  struct sha256_ctx c;
  sha256_init(&c);
  sha256_update(&c, n, data);
  sha256_digest(&c, HASH_LEN, out);
}

static const struct {
  const char *ext, *type;
} mime_types[] = {
    {"7z", "application/x-7z-compressed"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"c", "text/x-c"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"deb", "application/vnd.debian.binary-package"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"h", "text/x-c"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"ico", "image/vnd.microsoft.icon"},
    {"iso", "application/x-iso9660-image"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"md", "text/markdown"},
    {"mjs", "text/javascript"},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"parquet", "application/vnd.apache.parquet"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"py", "text/x-python"},
    {"rar", "application/vnd.rar"},
    {"sh", "application/x-sh"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tgz", "application/gzip"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

const char *store_guess_content_type(const char *key) {
  const char *slash = key ? strrchr(key, '/') : NULL;
  const char *base = slash ? slash + 1 : key;
  const char *dot = base ? strrchr(base, '.') : NULL;
  if (!dot || dot == base || !dot[1]) return "application/octet-stream";
  const char *ext = dot + 1;
  size_t lo = 0, hi = sizeof mime_types / sizeof mime_types[0];
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcasecmp(ext, mime_types[mid].ext);
    if (c == 0) return mime_types[mid].type;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return "application/octet-stream";
}
