/*
 * fuzz.h -- what the libFuzzer harnesses in tests/fuzz/ share: a cursor
 * that takes parameters and fields out of the fuzzer's input, and a check
 * macro for the properties a harness asserts beyond "no crash".
 *
 * Every slice handed to a parser is copied into a heap block of exactly
 * its size (no spare NUL unless the API wants a C string), so AddressSanitizer
 * catches a parser that reads one byte past the length it was given.
 */
#ifndef S3STORE_FUZZ_H
#define S3STORE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property the code under test must keep. On failure the input is a
   reproducer: libFuzzer saves it as a crash- file. */
#define FZ_CHECK(cond, ...)                                                 \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "\nfuzz property failed at %s:%d: %s\n  ", __FILE__,  \
              __LINE__, #cond);                                             \
      fprintf(stderr, "" __VA_ARGS__);                                      \
      fprintf(stderr, "\n");                                                \
      abort();                                                              \
    }                                                                       \
  } while (0)

struct fz {
  const uint8_t *p;
  size_t n;
};

static inline uint8_t fz_u8(struct fz *f) {
  if (f->n == 0) return 0;
  f->n--;
  return *f->p++;
}

/* nbytes little-endian bytes (missing bytes read as 0). */
static inline uint64_t fz_uint(struct fz *f, int nbytes) {
  uint64_t v = 0;
  for (int i = 0; i < nbytes; i++) v |= (uint64_t)fz_u8(f) << (8 * i);
  return v;
}

/* An exact-size heap copy of p[0..n) (malloc(0) made non-NULL). */
static inline char *fz_dup(const void *p, size_t n) {
  char *c = malloc(n ? n : 1);
  if (!c) abort();
  if (n) memcpy(c, p, n);
  return c;
}

/* An uninitialised exact-size heap block (n == 0 made non-NULL). */
static inline char *fz_alloc(size_t n) {
  char *c = malloc(n ? n : 1);
  if (!c) abort();
  return c;
}

/* The same with a terminating NUL, for APIs that take C strings. */
static inline char *fz_strdup(const void *p, size_t n) {
  char *c = malloc(n + 1);
  if (!c) abort();
  if (n) memcpy(c, p, n);
  c[n] = '\0';
  return c;
}

/* The bytes up to the next sep (consumed, not included), or the rest.
   Returns a pointer into the input; *len its length. */
static inline const char *fz_until(struct fz *f, uint8_t sep, size_t *len) {
  const uint8_t *s = f->p;
  const uint8_t *e = f->n ? memchr(f->p, sep, f->n) : NULL;
  size_t k = e ? (size_t)(e - s) : f->n;
  *len = k;
  f->p += k;
  f->n -= k;
  if (e) {
    f->p++;
    f->n--;
  }
  return (const char *)s;
}

/* Everything left. */
static inline const char *fz_rest(struct fz *f, size_t *len) {
  const char *s = (const char *)f->p;
  *len = f->n;
  f->p += f->n;
  f->n = 0;
  return s;
}

/* Whether s[0..n) contains byte c. */
static inline int fz_has(const char *s, size_t n, char c) {
  return n && memchr(s, c, n) != NULL;
}

#endif
