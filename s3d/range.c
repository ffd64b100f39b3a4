/*
 * range.c -- Range, HTTP-date and conditional-request evaluation.
 */
#include "range.h"

#include <string.h>
#include <strings.h>

static int is_ows(char c) { return c == ' ' || c == '\t'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parse 1*DIGIT at s[*i], saturating at UINT64_MAX. Returns 0 if no digit. */
static int parse_u64(const char *s, size_t n, size_t *i, uint64_t *out) {
  size_t j = *i;
  uint64_t v = 0;
  if (j >= n || !is_digit(s[j])) return 0;
  for (; j < n && is_digit(s[j]); j++) {
    unsigned d = (unsigned)(s[j] - '0');
    if (v > (UINT64_MAX - d) / 10) v = UINT64_MAX;
    else v = v * 10 + d;
  }
  *i = j;
  *out = v;
  return 1;
}

s3range_result s3range_parse(const char *v, size_t n, uint64_t size,
                             uint64_t *off, uint64_t *len) {
  if (!v || n > S3RANGE_MAX_LEN) return S3RANGE_NONE;
  size_t i = 0;
  while (i < n && is_ows(v[i])) i++;
  if (n - i < 6 || strncasecmp(v + i, "bytes=", 6) != 0) return S3RANGE_NONE;
  i += 6;

  int count = 0;
  int have_first = 0;
  uint64_t first = 0, last = 0, suffix = 0;
  int is_suffix = 0, open_end = 0;
  for (;;) {
    /* Empty list elements and whitespace between elements are allowed. */
    while (i < n && (is_ows(v[i]) || v[i] == ',')) i++;
    if (i >= n) break;
    uint64_t a = 0, b = 0;
    int sfx = 0, open = 0;
    if (v[i] == '-') {
      i++;
      if (!parse_u64(v, n, &i, &b)) return S3RANGE_NONE;
      sfx = 1;
    } else {
      if (!parse_u64(v, n, &i, &a)) return S3RANGE_NONE;
      if (i >= n || v[i] != '-') return S3RANGE_NONE;
      i++;
      if (!parse_u64(v, n, &i, &b)) open = 1;
      else if (b < a) return S3RANGE_NONE; /* invalid: ignore the header */
    }
    /* An element must end at OWS, ',' or the end. */
    while (i < n && is_ows(v[i])) i++;
    if (i < n && v[i] != ',') return S3RANGE_NONE;
    if (++count == 1) {
      have_first = 1;
      first = a;
      last = b;
      is_suffix = sfx;
      open_end = open;
      suffix = b;
    }
  }
  if (!have_first || count > 1) return S3RANGE_NONE;

  if (is_suffix) {
    if (suffix == 0 || size == 0) return S3RANGE_UNSATISFIABLE;
    if (suffix > size) suffix = size;
    *off = size - suffix;
    *len = suffix;
    return S3RANGE_OK;
  }
  if (first >= size) return S3RANGE_UNSATISFIABLE;
  if (open_end || last >= size) last = size - 1;
  *off = first;
  *len = last - first + 1;
  return S3RANGE_OK;
}

/* --- HTTP dates --------------------------------------------------------- */

static const char *const wkday_short[7] = {"Sun", "Mon", "Tue", "Wed",
                                           "Thu", "Fri", "Sat"};
static const char *const wkday_long[7] = {"Sunday",   "Monday", "Tuesday",
                                          "Wednesday", "Thursday", "Friday",
                                          "Saturday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};

int64_t s3_days_from_civil(int64_t y, unsigned m, unsigned d) {
  /* Howard Hinnant's days_from_civil. */
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void s3_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned mdays(int64_t y, unsigned m) {
  static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

struct cur {
  const char *s;
  size_t n, i;
};

static int lit(struct cur *c, const char *t) {
  size_t k = strlen(t);
  if (c->n - c->i < k || memcmp(c->s + c->i, t, k) != 0) return 0;
  c->i += k;
  return 1;
}

/* Exactly k digits. */
static int digits(struct cur *c, size_t k, unsigned *out) {
  unsigned v = 0;
  if (c->n - c->i < k) return 0;
  for (size_t j = 0; j < k; j++) {
    char ch = c->s[c->i + j];
    if (!is_digit(ch)) return 0;
    v = v * 10 + (unsigned)(ch - '0');
  }
  c->i += k;
  *out = v;
  return 1;
}

static int month(struct cur *c, unsigned *m) {
  if (c->n - c->i < 3) return 0;
  for (unsigned k = 0; k < 12; k++)
    if (memcmp(c->s + c->i, months[k], 3) == 0) {
      c->i += 3;
      *m = k + 1;
      return 1;
    }
  return 0;
}

static int tod(struct cur *c, unsigned *h, unsigned *mi, unsigned *se) {
  return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) && lit(c, ":") &&
         digits(c, 2, se) && *h < 24 && *mi < 60 && *se <= 60;
}

int s3_http_date_parse(const char *s, size_t n, time_t *out) {
  struct cur c = {s, n, 0};
  unsigned d = 0, m = 0, y = 0, h = 0, mi = 0, se = 0;
  int64_t year;
  if (!s || n > 64) return -1;

  size_t w = 0;
  while (w < n && ((s[w] >= 'A' && s[w] <= 'Z') || (s[w] >= 'a' && s[w] <= 'z'))) w++;
  int kind = 0; /* 1 IMF, 2 RFC 850, 3 asctime */
  for (int k = 0; k < 7 && !kind; k++) {
    if (w == 3 && memcmp(s, wkday_short[k], 3) == 0)
      kind = (w < n && s[w] == ',') ? 1 : 3;
    else if (w == strlen(wkday_long[k]) && memcmp(s, wkday_long[k], w) == 0)
      kind = 2;
  }
  c.i = w;
  switch (kind) {
  case 1:
    if (!(lit(&c, ", ") && digits(&c, 2, &d) && lit(&c, " ") && month(&c, &m) &&
          lit(&c, " ") && digits(&c, 4, &y) && lit(&c, " ") &&
          tod(&c, &h, &mi, &se) && lit(&c, " GMT")))
      return -1;
    year = y;
    break;
  case 2:
    if (!(lit(&c, ", ") && digits(&c, 2, &d) && lit(&c, "-") && month(&c, &m) &&
          lit(&c, "-") && digits(&c, 2, &y) && lit(&c, " ") &&
          tod(&c, &h, &mi, &se) && lit(&c, " GMT")))
      return -1;
    year = y < 70 ? 2000 + y : 1900 + y;
    break;
  case 3:
    if (!(lit(&c, " ") && month(&c, &m) && lit(&c, " ")))
      return -1;
    if (c.i < n && s[c.i] == ' ') {
      c.i++;
      if (!digits(&c, 1, &d)) return -1;
    } else if (!digits(&c, 2, &d)) {
      return -1;
    }
    if (!(lit(&c, " ") && tod(&c, &h, &mi, &se) && lit(&c, " ") &&
          digits(&c, 4, &y)))
      return -1;
    year = y;
    break;
  default:
    return -1;
  }
  if (c.i != n) return -1;
  if (d < 1 || d > mdays(year, m)) return -1;
  int64_t t = s3_days_from_civil(year, m, d) * 86400 + h * 3600 + mi * 60 + se;
  if ((int64_t)(time_t)t != t) return -1;
  *out = (time_t)t;
  return 0;
}

static void put2(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10 % 10);
  p[1] = (char)('0' + v % 10);
}

size_t s3_http_date_format(time_t t, char *out, size_t cap) {
  int64_t tt = (int64_t)t;
  if (tt < -62167219200LL || tt > 253402300799LL) return 0; /* 0000..9999 */
  int64_t days = tt >= 0 ? tt / 86400 : -((-tt + 86399) / 86400);
  int64_t secs = tt - days * 86400;
  int64_t y;
  unsigned m, d;
  s3_civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999 || cap < S3_HTTP_DATE_LEN) return 0;
  int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
  /* "Sun, 06 Nov 1994 08:49:37 GMT" */
  memcpy(out, wkday_short[wd], 3);
  memcpy(out + 3, ", ", 2);
  put2(out + 5, d);
  out[7] = ' ';
  memcpy(out + 8, months[m - 1], 3);
  out[11] = ' ';
  put2(out + 12, (unsigned)(y / 100));
  put2(out + 14, (unsigned)(y % 100));
  out[16] = ' ';
  put2(out + 17, (unsigned)(secs / 3600));
  out[19] = ':';
  put2(out + 20, (unsigned)(secs / 60 % 60));
  out[22] = ':';
  put2(out + 23, (unsigned)(secs % 60));
  memcpy(out + 25, " GMT", 5); /* includes the NUL */
  return 29;
}

/* --- ETags and conditions ----------------------------------------------- */

static void strip_etag(const char **p, size_t *n) {
  if (*n >= 2 && (*p)[0] == 'W' && (*p)[1] == '/') {
    *p += 2;
    *n -= 2;
  }
  if (*n >= 2 && (*p)[0] == '"' && (*p)[*n - 1] == '"') {
    *p += 1;
    *n -= 2;
  }
}

int s3_etag_match(const char *list, size_t n, const char *etag, size_t etag_len) {
  if (!list) return 0;
  strip_etag(&etag, &etag_len);
  size_t i = 0;
  while (i < n) {
    while (i < n && (is_ows(list[i]) || list[i] == ',')) i++;
    if (i >= n) break;
    size_t start = i;
    const char *tag;
    size_t tlen;
    int ok = 1;
    if (list[i] == '*') {
      i++;
      tag = NULL;
      tlen = 0;
    } else {
      if (n - i >= 2 && list[i] == 'W' && list[i + 1] == '/') i += 2;
      if (i < n && list[i] == '"') {
        const char *q = memchr(list + i + 1, '"', n - i - 1);
        if (!q) return 0; /* unterminated: nothing after can be trusted */
        tag = list + i + 1;
        tlen = (size_t)(q - tag);
        i = (size_t)(q - list) + 1;
      } else {
        tag = list + i;
        while (i < n && list[i] != ',' && !is_ows(list[i]) && list[i] != '"') i++;
        tlen = (size_t)(list + i - tag);
        if (i < n && list[i] == '"') ok = 0;
      }
    }
    /* The element must end here. */
    while (i < n && is_ows(list[i])) i++;
    if (i < n && list[i] != ',') {
      ok = 0;
      while (i < n && list[i] != ',') i++;
    }
    if (!ok || i == start) continue;
    if (!tag) return 1; /* "*" */
    if (tlen == etag_len && memcmp(tag, etag, tlen) == 0) return 1;
  }
  return 0;
}

s3cond_result s3cond_eval(const struct s3cond_headers *h, int exists,
                          const char *etag, size_t etag_len, time_t mtime,
                          int is_read) {
  time_t t;
  if (h->if_match) {
    if (!exists || !s3_etag_match(h->if_match, strlen(h->if_match), etag, etag_len))
      return S3COND_PRECONDITION_FAILED;
  } else if (h->if_unmodified_since && exists &&
             s3_http_date_parse(h->if_unmodified_since,
                                strlen(h->if_unmodified_since), &t) == 0) {
    if (mtime > t) return S3COND_PRECONDITION_FAILED;
  }
  if (h->if_none_match) {
    if (exists &&
        s3_etag_match(h->if_none_match, strlen(h->if_none_match), etag, etag_len))
      return is_read ? S3COND_NOT_MODIFIED : S3COND_PRECONDITION_FAILED;
  } else if (is_read && h->if_modified_since && exists &&
             s3_http_date_parse(h->if_modified_since,
                                strlen(h->if_modified_since), &t) == 0) {
    if (mtime <= t) return S3COND_NOT_MODIFIED;
  }
  return S3COND_PROCEED;
}
