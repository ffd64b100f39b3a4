/*
 * fuzz_urlenc.c -- percent-decoding, AWS URI-encoding and query splitting
 * (s3d/urlenc.c).
 *
 * Input: one flag byte, then the bytes to decode / encode / split.
 * Checked beyond memory safety:
 *  - s3url_decode agrees with an independent reference decoder (result and
 *    bytes), never needs more than n+1 bytes, fails with S3URL_TOO_LONG
 *    (not an overflow) when the buffer is one byte short, and works in
 *    place;
 *  - s3url_encode emits only unreserved bytes and %XX, its length is
 *    s3url_encoded_len(), and decoding it gives the input back;
 *  - s3url_split_query's slices tile the query, S3URL_TOO_MANY exactly
 *    when there are more non-empty segments than allowed, and
 *    s3url_find_param finds the first parameter of every decodable name.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "urlenc.h"

static int hexv(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reference decoder: the rules of urlenc.h, written separately. */
static s3url_result ref_decode(const char *s, size_t n, unsigned flags, char *out,
                               size_t *olen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n) return S3URL_BAD_ESCAPE;
      int h = hexv((unsigned char)s[i + 1]), l = hexv((unsigned char)s[i + 2]);
      if (h < 0 || l < 0) return S3URL_BAD_ESCAPE;
      c = (unsigned char)(h * 16 + l);
      i += 2;
    } else if (c == '+' && (flags & S3URL_PLUS_SPACE)) {
      c = ' ';
    }
    if (c == 0 && (flags & S3URL_REJECT_NUL)) return S3URL_NUL;
    out[o++] = (char)c;
  }
  *olen = o;
  return S3URL_OK;
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

static void check_decode(const char *src, size_t n, unsigned flags) {
  char *ref = fz_alloc(n);
  size_t rlen = 0;
  s3url_result want = ref_decode(src, n, flags, ref, &rlen);

  char *dst = fz_alloc(n + 1);
  size_t len = (size_t)-1;
  s3url_result rc = s3url_decode(dst, n + 1, src, n, flags, &len);
  FZ_CHECK(rc == want, "decode rc %d, reference %d", rc, want);
  if (rc == S3URL_OK) {
    FZ_CHECK(len == rlen && memcmp(dst, ref, len) == 0 && dst[len] == '\0');
    /* The exact size works; one byte less is TOO_LONG, never an overflow. */
    char *tight = fz_alloc(len + 1);
    FZ_CHECK(s3url_decode(tight, len + 1, src, n, flags, NULL) == S3URL_OK);
    FZ_CHECK(memcmp(tight, ref, len) == 0);
    free(tight);
    if (len > 0) {
      char *shrt = fz_alloc(len);
      FZ_CHECK(s3url_decode(shrt, len, src, n, flags, NULL) == S3URL_TOO_LONG);
      free(shrt);
    }
    /* In place. */
    char *inpl = fz_alloc(n + 1);
    if (n) memcpy(inpl, src, n);
    size_t ilen;
    FZ_CHECK(s3url_decode(inpl, n + 1, inpl, n, flags, &ilen) == S3URL_OK);
    FZ_CHECK(ilen == len && memcmp(inpl, ref, len) == 0);
    free(inpl);
  }
  char z;
  FZ_CHECK(s3url_decode(&z, 0, src, n, flags, NULL) != S3URL_OK);
  free(dst);
  free(ref);
}

static void check_encode(const char *src, size_t n, unsigned flags) {
  size_t want = s3url_encoded_len(src, n, flags);
  FZ_CHECK(want >= n && want <= 3 * n);
  char *dst = fz_alloc(want + 1);
  size_t len = (size_t)-1;
  FZ_CHECK(s3url_encode(dst, want + 1, src, n, flags, &len) == S3URL_OK);
  FZ_CHECK(len == want && dst[len] == '\0');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)dst[i];
    if (c == '%') {
      FZ_CHECK(i + 2 < len && hexv((unsigned char)dst[i + 1]) >= 0 &&
               hexv((unsigned char)dst[i + 2]) >= 0);
      FZ_CHECK(!(dst[i + 1] >= 'a' && dst[i + 1] <= 'f') &&
               !(dst[i + 2] >= 'a' && dst[i + 2] <= 'f'), "lower-case hex");
      i += 2;
    } else {
      FZ_CHECK(unreserved(c) || (c == '/' && (flags & S3URL_KEEP_SLASH)),
               "byte 0x%02x left unencoded", c);
    }
  }
  /* Round trip. */
  char *back = fz_alloc(len + 1);
  size_t blen;
  FZ_CHECK(s3url_decode(back, len + 1, dst, len, 0, &blen) == S3URL_OK);
  FZ_CHECK(blen == n && memcmp(back, src, n) == 0, "decode(encode(x)) != x");
  free(back);
  if (want > 0) {
    char *shrt = fz_alloc(want);
    FZ_CHECK(s3url_encode(shrt, want, src, n, flags, NULL) == S3URL_TOO_LONG);
    free(shrt);
  }
  free(dst);
}

static void check_split(const char *q, size_t n, size_t max) {
  struct s3url_param *ps = calloc(max ? max : 1, sizeof *ps);
  if (!ps) abort();
  size_t count = (size_t)-1;
  s3url_result rc = s3url_split_query(q, n, ps, max, &count);

  /* Reference: non-empty '&'-separated segments. */
  size_t segs = 0;
  for (size_t i = 0; i < n;) {
    const char *a = memchr(q + i, '&', n - i);
    size_t e = a ? (size_t)(a - q) : n;
    if (e > i) segs++;
    i = e + 1;
  }
  if (segs > max) {
    FZ_CHECK(rc == S3URL_TOO_MANY && count == max, "rc %d count %zu max %zu", rc,
             count, max);
  } else {
    FZ_CHECK(rc == S3URL_OK && count == segs, "rc %d count %zu segs %zu", rc, count,
             segs);
  }
  const char *prev_end = q;
  for (size_t i = 0; i < count; i++) {
    const struct s3url_param *p = &ps[i];
    FZ_CHECK(p->name >= prev_end && p->name + p->name_len <= q + n);
    FZ_CHECK(!fz_has(p->name, p->name_len, '&') && !fz_has(p->name, p->name_len, '='));
    FZ_CHECK(p->value >= p->name + p->name_len && p->value + p->value_len <= q + n);
    FZ_CHECK(!fz_has(p->value, p->value_len, '&'));
    FZ_CHECK(p->name_len + p->value_len > 0 || p->has_eq);
    if (p->has_eq)
      FZ_CHECK(p->value == p->name + p->name_len + 1 && p->name[p->name_len] == '=');
    else
      FZ_CHECK(p->value_len == 0);
    prev_end = p->value + p->value_len;
  }

  /* find_param finds the first parameter with each decoded name. */
  for (size_t i = 0; i < count; i++) {
    char name[256];
    size_t nl;
    if (s3url_decode(name, sizeof name, ps[i].name, ps[i].name_len, S3URL_PLUS_SPACE,
                     &nl) != S3URL_OK ||
        memchr(name, '\0', nl))
      continue;
    int j = s3url_find_param(ps, count, name);
    FZ_CHECK(j >= 0 && (size_t)j <= i, "find_param(\"%s\") = %d, first at or "
             "before %zu expected", name, j, i);
    char other[256];
    size_t ol;
    FZ_CHECK(s3url_decode(other, sizeof other, ps[j].name, ps[j].name_len,
                          S3URL_PLUS_SPACE, &ol) == S3URL_OK &&
             ol == nl && memcmp(other, name, nl) == 0);
  }
  free(ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz f = {data, size};
  uint8_t sel = fz_u8(&f);
  size_t n;
  const char *rest = fz_rest(&f, &n);
  char *src = fz_dup(rest, n);
  unsigned dflags = (sel & 1 ? S3URL_PLUS_SPACE : 0) | (sel & 2 ? S3URL_REJECT_NUL : 0);
  check_decode(src, n, dflags);
  check_encode(src, n, sel & 4 ? S3URL_KEEP_SLASH : 0);
  check_split(src, n, (size_t)(sel >> 3) * 5); /* 0..155 parameters */
  free(src);
  return 0;
}
