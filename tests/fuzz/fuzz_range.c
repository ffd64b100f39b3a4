/*
 * fuzz_range.c -- Range header, HTTP dates, ETag lists and conditional
 * requests (s3d/range.c).
 *
 * Input: 8 bytes of object size, 8 bytes of mtime, one flag byte, then
 * newline-separated fields: Range value, If-Match, If-None-Match,
 * If-Modified-Since, If-Unmodified-Since, the object's ETag.
 * Checked beyond memory safety:
 *  - s3range_parse agrees with a reference parser written differently
 *    (split on ',', match each element whole), and a satisfiable range lies
 *    inside the object;
 *  - a date that parses formats back to a date that parses to the same time;
 *  - an ETag list holding the tag quoted, weak or as "*" matches it;
 *  - s3cond_eval never answers 304 to a write and fails If-Match on a
 *    missing object.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "range.h"

static int ows(char c) { return c == ' ' || c == '\t'; }

/* Digits s[0..n) (n > 0, all digits) saturating at UINT64_MAX. */
static uint64_t ref_num(const char *s, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  return v;
}

static int all_digits(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static s3range_result ref_range(const char *v, size_t n, uint64_t size, uint64_t *off,
                                uint64_t *len) {
  if (n > S3RANGE_MAX_LEN) return S3RANGE_NONE;
  size_t i = 0;
  while (i < n && ows(v[i])) i++;
  if (n - i < 6 || strncasecmp(v + i, "bytes=", 6)) return S3RANGE_NONE;
  i += 6;
  int count = 0, sfx = 0, open = 0;
  uint64_t a = 0, b = 0;
  while (i <= n) {
    const char *c = memchr(v + i, ',', n - i);
    size_t e = c ? (size_t)(c - v) : n;
    size_t s0 = i, s1 = e;
    while (s0 < s1 && ows(v[s0])) s0++;
    while (s1 > s0 && ows(v[s1 - 1])) s1--;
    if (s1 > s0) {
      const char *el = v + s0;
      size_t el_n = s1 - s0;
      const char *dash = memchr(el, '-', el_n);
      if (!dash) return S3RANGE_NONE;
      size_t dl = (size_t)(dash - el), rl = el_n - dl - 1;
      uint64_t x, y = 0;
      int esfx = 0, eopen = 0;
      if (dl == 0) {
        if (!all_digits(dash + 1, rl)) return S3RANGE_NONE;
        x = 0;
        y = ref_num(dash + 1, rl);
        esfx = 1;
      } else {
        if (!all_digits(el, dl)) return S3RANGE_NONE;
        x = ref_num(el, dl);
        if (rl == 0) {
          eopen = 1;
        } else {
          if (!all_digits(dash + 1, rl)) return S3RANGE_NONE;
          y = ref_num(dash + 1, rl);
          if (y < x) return S3RANGE_NONE;
        }
      }
      if (++count == 1) {
        a = x;
        b = y;
        sfx = esfx;
        open = eopen;
      }
    }
    if (!c) break;
    i = e + 1;
  }
  if (count != 1) return S3RANGE_NONE;
  if (sfx) {
    if (b == 0 || size == 0) return S3RANGE_UNSATISFIABLE;
    if (b > size) b = size;
    *off = size - b;
    *len = b;
    return S3RANGE_OK;
  }
  if (a >= size) return S3RANGE_UNSATISFIABLE;
  uint64_t last = open || b >= size ? size - 1 : b;
  *off = a;
  *len = last - a + 1;
  return S3RANGE_OK;
}

static void check_range(const char *v, size_t n, uint64_t size) {
  uint64_t off = 7, len = 7, roff = 7, rlen = 7;
  s3range_result rc = s3range_parse(v, n, size, &off, &len);
  s3range_result want = ref_range(v, n, size, &roff, &rlen);
  FZ_CHECK(rc == want, "s3range_parse %d, reference %d (size %llu)", rc, want,
           (unsigned long long)size);
  if (rc == S3RANGE_OK) {
    FZ_CHECK(off == roff && len == rlen, "[%llu,+%llu) vs reference [%llu,+%llu)",
             (unsigned long long)off, (unsigned long long)len,
             (unsigned long long)roff, (unsigned long long)rlen);
    FZ_CHECK(len >= 1 && off < size && len <= size - off);
  }
}

static void check_date(const char *s, size_t n) {
  time_t t;
  if (s3_http_date_parse(s, n, &t) != 0) return;
  char buf[S3_HTTP_DATE_LEN];
  size_t k = s3_http_date_format(t, buf, sizeof buf);
  if (k == 0) return; /* outside 0000..9999: cannot be written back */
  FZ_CHECK(k == 29 && buf[29] == '\0');
  time_t t2;
  FZ_CHECK(s3_http_date_parse(buf, k, &t2) == 0 && t2 == t,
           "\"%.*s\" -> %lld -> \"%s\"", (int)n, s, (long long)t, buf);
}

static void check_time(int64_t t) {
  char buf[S3_HTTP_DATE_LEN];
  size_t k = s3_http_date_format((time_t)t, buf, sizeof buf);
  if (k == 0) return;
  time_t back;
  FZ_CHECK(s3_http_date_parse(buf, k, &back) == 0 && (int64_t)back == t,
           "%lld -> \"%s\"", (long long)t, buf);
  int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
  int64_t y;
  unsigned m, d;
  s3_civil_from_days(days, &y, &m, &d);
  FZ_CHECK(m >= 1 && m <= 12 && d >= 1 && d <= 31);
  FZ_CHECK(s3_days_from_civil(y, m, d) == days);
}

static void check_etag(const char *list, size_t n, const char *etag, size_t el) {
  (void)s3_etag_match(list, n, etag, el);
  /* An ETag as S3 makes them (hex, "-N" for multipart) matches itself in
     every form. */
  if (el == 0 || el > 200) return;
  for (size_t i = 0; i < el; i++)
    if (!((etag[i] >= '0' && etag[i] <= '9') || (etag[i] >= 'a' && etag[i] <= 'z') ||
          (etag[i] >= 'A' && etag[i] <= 'Z') || etag[i] == '-'))
      return;
  char buf[256];
  memcpy(buf + 1, etag, el);
  buf[0] = '"';
  buf[el + 1] = '"';
  FZ_CHECK(s3_etag_match(buf, el + 2, etag, el) == 1);
  FZ_CHECK(s3_etag_match(etag, el, buf, el + 2) == 1);
  FZ_CHECK(s3_etag_match("*", 1, etag, el) == 1);
  memcpy(buf + 2, etag, el);
  buf[0] = 'W';
  buf[1] = '/';
  buf[2] = '"';
  memcpy(buf + 3, etag, el);
  buf[el + 3] = '"';
  FZ_CHECK(s3_etag_match(buf, el + 4, etag, el) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz f = {data, size};
  uint64_t osize = fz_uint(&f, 8);
  int64_t mtime = (int64_t)fz_uint(&f, 8);
  uint8_t flags = fz_u8(&f);
  /* Small sizes matter most for ranges: keep the full 64 bits rare. */
  if (!(flags & 0x80)) osize %= 1u << 20;
  mtime %= (int64_t)1 << 40; /* years -32000..36000: formatting bounds */

  const char *fld[6];
  size_t fl[6];
  for (int i = 0; i < 6; i++) fld[i] = fz_until(&f, '\n', &fl[i]);

  char *range = fz_dup(fld[0], fl[0]);
  check_range(range, fl[0], osize);
  free(range);

  char *s[6];
  for (int i = 1; i < 6; i++) s[i] = fz_strdup(fld[i], fl[i]);
  for (int i = 1; i < 5; i++) {
    char *x = fz_dup(fld[i], fl[i]);
    check_date(x, fl[i]);
    check_etag(x, fl[i], s[5], fl[5]);
    free(x);
  }
  check_time(mtime);

  struct s3cond_headers h = {
      flags & 1 ? s[1] : NULL, flags & 2 ? s[2] : NULL, flags & 4 ? s[3] : NULL,
      flags & 8 ? s[4] : NULL};
  int exists = !!(flags & 16), is_read = !!(flags & 32);
  s3cond_result rc = s3cond_eval(&h, exists, s[5], fl[5], (time_t)mtime, is_read);
  FZ_CHECK(rc == S3COND_PROCEED || rc == S3COND_NOT_MODIFIED ||
           rc == S3COND_PRECONDITION_FAILED);
  if (!is_read) FZ_CHECK(rc != S3COND_NOT_MODIFIED, "304 for a write");
  if (h.if_match && !exists) FZ_CHECK(rc == S3COND_PRECONDITION_FAILED);
  for (int i = 1; i < 6; i++) free(s[i]);
  return 0;
}
