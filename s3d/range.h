/*
 * range.h -- Range requests, HTTP dates and conditional requests
 * (RFC 9110 sections 5.6.7, 13 and 14), as S3 applies them.
 *
 * Pure functions over (pointer, length) inputs; nothing is allocated.
 */
#ifndef S3D_RANGE_H
#define S3D_RANGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef enum {
  S3RANGE_NONE = 0,      /* serve the whole object (200): no header, a
                            syntactically invalid one, a unit other than
                            "bytes", or more than one range */
  S3RANGE_OK,            /* serve [*off, *off + *len) with 206 */
  S3RANGE_UNSATISFIABLE  /* 416 InvalidRange, Content-Range: bytes * /size */
} s3range_result;

/* Evaluate a Range header value against an object of size bytes.
 *
 *   bytes=a-b  first a, last min(b, size-1); invalid if b < a;
 *              unsatisfiable if a >= size
 *   bytes=a-   from a to the end; unsatisfiable if a >= size
 *   bytes=-n   the last min(n, size) bytes; unsatisfiable if n == 0 or
 *              size == 0
 *
 * S3 serves a single range only: a valid multi-range set ("bytes=0-1,5-6")
 * is ignored and the whole object is served (S3RANGE_NONE), as S3 does.
 * The unit is matched case-insensitively; whitespace around '=' is not
 * allowed, optional whitespace around the list is. Numbers too large for
 * 64 bits saturate (so they compare as "beyond the end"). The header value
 * is capped at S3RANGE_MAX_LEN bytes; longer ones are ignored. */
#define S3RANGE_MAX_LEN 1024
s3range_result s3range_parse(const char *v, size_t n, uint64_t size,
                             uint64_t *off, uint64_t *len);

/* Parse an HTTP date in any of the three RFC 9110 forms:
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"  (yy < 70 -> 20yy)
 *   asctime      "Sun Nov  6 08:49:37 1994"
 * The weekday name must be valid but is not checked against the date.
 * Returns 0 and *out (seconds since the epoch, UTC) or -1 if malformed. */
int s3_http_date_parse(const char *s, size_t n, time_t *out);

/* Format t as IMF-fixdate into out (at least 30 bytes). Returns the length
   (29) or 0 if t is outside years 0000-9999. */
#define S3_HTTP_DATE_LEN 30
size_t s3_http_date_format(time_t t, char *out, size_t cap);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12), and
   the inverse. */
int64_t s3_days_from_civil(int64_t y, unsigned m, unsigned d);
void s3_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Does an If-Match / If-None-Match list match etag? The list is "*" or a
 * comma-separated list of entity tags; each may be quoted ("abc"), weak
 * (W/"abc") or, leniently, unquoted (abc). Weakness is ignored and quotes
 * are stripped on both sides before an exact comparison, so a stored etag
 * may be given with or without its quotes. "*" matches any existing
 * object. Malformed entries never match. Returns 1 on match, else 0. */
int s3_etag_match(const char *list, size_t n, const char *etag, size_t etag_len);

/* The outcome of the conditional headers of a read (GET/HEAD) or a write. */
typedef enum {
  S3COND_PROCEED = 0,      /* serve / perform the request */
  S3COND_NOT_MODIFIED,     /* 304 (GET and HEAD only) */
  S3COND_PRECONDITION_FAILED /* 412 PreconditionFailed */
} s3cond_result;

/* Header values, NULL when absent. */
struct s3cond_headers {
  const char *if_match;
  const char *if_none_match;
  const char *if_modified_since;
  const char *if_unmodified_since;
};

/* Evaluate conditions in RFC 9110 section 13.2.2 order, which gives the
 * combinations S3 documents: If-Match true wins over a false
 * If-Unmodified-Since; a false If-None-Match together with a true
 * If-Modified-Since is 304. is_read is 1 for GET/HEAD (a failed
 * If-None-Match then means 304, not 412; If-Modified-Since only applies to
 * reads). Unparseable dates are ignored, as the RFC says. Times compare at
 * one-second resolution. exists is 0 when there is no current object
 * (If-Match then fails; If-None-Match: * then succeeds). */
s3cond_result s3cond_eval(const struct s3cond_headers *h, int exists,
                          const char *etag, size_t etag_len, time_t mtime,
                          int is_read);

#endif
