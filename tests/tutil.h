/*
 * tutil.h -- helpers shared by the libstore C tests (on top of harness.h).
 *
 * Deterministic pseudo-random data (xorshift64*), MD5 through nettle, a
 * whole-object read/compare, and disk-usage measurement of a directory tree.
 * Everything here is static inline so each test program can use any subset.
 */
#ifndef TUTIL_H
#define TUTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <time.h>

#include <nettle/md5.h>

#include "harness.h"
#include "libstore.h"

#define MiB (1024u * 1024u)
#define KiB 1024u

/* ---------------------------------------------------------------- */
/* Deterministic pseudo-random numbers.                             */
/* ---------------------------------------------------------------- */
typedef struct t_rng {
  uint64_t s;
} t_rng;

static inline t_rng t_rng_seed(uint64_t seed) {
  /* splitmix64 step so that small seeds give unrelated streams */
  uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  t_rng r = {z ? z : 0x1234567ull};
  return r;
}

static inline uint64_t t_rng_next(t_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform-ish in [0, n). n == 0 gives 0. */
static inline uint64_t t_rng_below(t_rng *r, uint64_t n) {
  return n ? t_rng_next(r) % n : 0;
}

/* Fill buf with the deterministic byte stream of `seed`. */
static inline void t_fill(void *buf, size_t n, uint64_t seed) {
  t_rng r = t_rng_seed(seed);
  uint8_t *p = (uint8_t *)buf;
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t v = t_rng_next(&r);
    memcpy(p + i, &v, 8);
    i += 8;
  }
  if (i < n) {
    uint64_t v = t_rng_next(&r);
    memcpy(p + i, &v, n - i);
  }
}

static inline void *t_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) T_FAIL("out of memory (%zu bytes)", n);
  return p;
}

/* A freshly allocated buffer holding t_fill(seed). */
static inline uint8_t *t_gen(size_t n, uint64_t seed) {
  uint8_t *p = (uint8_t *)t_xmalloc(n);
  t_fill(p, n, seed);
  return p;
}

/* ---------------------------------------------------------------- */
/* MD5.                                                             */
/* ---------------------------------------------------------------- */
static inline void t_md5(const void *buf, size_t n, uint8_t out[16]) {
  struct md5_ctx c;
  md5_init(&c);
  md5_update(&c, n, (const uint8_t *)buf);
  md5_digest(&c, MD5_DIGEST_SIZE, out);
}

static inline void t_tohex(const uint8_t *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = 0;
}

static inline void t_md5_hex(const void *buf, size_t n, char out[33]) {
  uint8_t d[16];
  t_md5(buf, n, d);
  t_tohex(d, 16, out);
}

/* Parse 32 hex characters (an etag, quotes tolerated) into 16 bytes. */
static inline int t_unhex16(const char *hex, uint8_t out[16]) {
  if (*hex == '"') hex++;
  for (int i = 0; i < 16; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

/* ---------------------------------------------------------------- */
/* Store helpers.                                                   */
/* ---------------------------------------------------------------- */
/* Create a store in SCRATCH/store and return its path. */
static inline const char *t_store_dir(void) {
  static char p[4200];
  snprintf(p, sizeof p, "%s/store", t_dir());
  return p;
}

static inline store *t_new_store(void) {
  store *s = NULL;
  T_OK(store_create(t_store_dir(), NULL, &s));
  T_ASSERT(s != NULL);
  return s;
}

static inline store *t_open_store(void) {
  store *s = NULL;
  T_OK(store_open(t_store_dir(), NULL, &s));
  T_ASSERT(s != NULL);
  return s;
}

/* Read a whole object into a malloc'd buffer. Returns the store rc. */
static inline int t_read_all(store *s, const char *bucket, const char *key,
                             uint8_t **out, size_t *outn) {
  store_reader *r = NULL;
  *out = NULL;
  *outn = 0;
  int rc = store_reader_open(s, bucket, key, NULL, &r, NULL);
  if (rc != STORE_OK) return rc;
  uint64_t size = store_reader_size(r);
  uint8_t *buf = (uint8_t *)t_xmalloc((size_t)size + 1);
  uint64_t off = 0;
  while (off < size) {
    size_t want = (size_t)(size - off);
    if (want > 1 * MiB + 17) want = 1 * MiB + 17; /* odd piece size */
    size_t got = 0;
    rc = store_read(r, buf + off, want, off, &got);
    if (rc != STORE_OK) {
      free(buf);
      store_reader_close(r);
      return rc;
    }
    if (got == 0) break;
    off += got;
  }
  /* A read at the end gives 0 bytes. */
  size_t got = 99;
  uint8_t extra[16];
  rc = store_read(r, extra, sizeof extra, size, &got);
  store_reader_close(r);
  if (rc != STORE_OK) {
    free(buf);
    return rc;
  }
  if (off != size || got != 0) {
    fprintf(stderr, "  t_read_all %s/%s: size %" PRIu64 ", read %" PRIu64
                    ", read at end got %zu\n",
            bucket, key, size, off, got);
    free(buf);
    return -1;
  }
  *out = buf;
  *outn = (size_t)size;
  return STORE_OK;
}

/* Fail the test unless bucket/key holds exactly (want, n). */
#define T_CONTENT(s, bucket, key, want, n) \
  t_check_content_at(__FILE__, __LINE__, s, bucket, key, want, n)

static inline void t_check_content_at(const char *file, int line, store *s,
                                      const char *bucket, const char *key,
                                      const void *want, size_t n) {
  uint8_t *got = NULL;
  size_t gotn = 0;
  int rc = t_read_all(s, bucket, key, &got, &gotn);
  if (rc != STORE_OK) {
    fprintf(stderr, "  %s:%d: reading %s/%s: rc %d (%s: %s)\n", file, line,
            bucket, key, rc, rc >= 0 ? store_strerror(rc) : "short read",
            rc >= 0 ? store_errmsg() : "");
    _exit(1);
  }
  if (gotn != n) {
    fprintf(stderr, "  %s:%d: %s/%s: size %zu, expected %zu\n", file, line,
            bucket, key, gotn, n);
    _exit(1);
  }
  if (n && memcmp(got, want, n) != 0) {
    size_t i = 0;
    while (got[i] == ((const uint8_t *)want)[i]) i++;
    fprintf(stderr, "  %s:%d: %s/%s: content differs at byte %zu of %zu\n",
            file, line, bucket, key, i, n);
    _exit(1);
  }
  free(got);
}

static inline void t_put(store *s, const char *bucket, const char *key,
                         const void *buf, size_t n) {
  int rc = store_put(s, bucket, key, buf, n, NULL, NULL);
  if (rc != STORE_OK)
    T_FAIL("store_put(%s, %s, %zu bytes) = %d (%s: %s)", bucket, key, n, rc,
           store_strerror(rc), store_errmsg());
}

static inline const char *t_kv_find(const store_kv *kv, size_t n,
                                    const char *name) {
  for (size_t i = 0; i < n; i++)
    if (kv[i].name && strcmp(kv[i].name, name) == 0) return kv[i].value;
  return NULL;
}

static inline store_stats t_stats(store *s) {
  store_stats st;
  memset(&st, 0, sizeof st);
  T_OK(store_stats_get(s, &st));
  return st;
}

/* ---------------------------------------------------------------- */
/* Files.                                                           */
/* ---------------------------------------------------------------- */
typedef struct t_du_acc {
  uint64_t bytes_alloc; /* st_blocks * 512 */
  uint64_t bytes_size;  /* st_size */
  uint64_t files;
  char largest[4200];
  uint64_t largest_size;
} t_du_acc;

static inline void t_du_walk(const char *dir, t_du_acc *a) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[4200];
    if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
      continue;
    struct stat st;
    if (lstat(p, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      t_du_walk(p, a);
    } else if (S_ISREG(st.st_mode)) {
      a->files++;
      a->bytes_alloc += (uint64_t)st.st_blocks * 512u;
      a->bytes_size += (uint64_t)st.st_size;
      if ((uint64_t)st.st_size > a->largest_size) {
        a->largest_size = (uint64_t)st.st_size;
        snprintf(a->largest, sizeof a->largest, "%s", p);
      }
    }
  }
  closedir(d);
}

/* Disk usage of a tree (regular files only). */
static inline t_du_acc t_du(const char *dir) {
  t_du_acc a;
  memset(&a, 0, sizeof a);
  t_du_walk(dir, &a);
  return a;
}

static inline void t_sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Full write/read on a file descriptor (pipes). */
static inline int t_write_full(int fd, const void *buf, size_t n) {
  const char *p = (const char *)buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static inline ssize_t t_read_full(int fd, void *buf, size_t n) {
  char *p = (char *)buf;
  size_t done = 0;
  while (done < n) {
    ssize_t r = read(fd, p + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

/* Wait for a child and return 0 if it exited 0. */
static inline int t_wait_ok(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFSIGNALED(st))
    fprintf(stderr, "  child %d killed by signal %d\n", (int)pid,
            WTERMSIG(st));
  else
    fprintf(stderr, "  child %d exited %d\n", (int)pid, WEXITSTATUS(st));
  return -1;
}

#endif
