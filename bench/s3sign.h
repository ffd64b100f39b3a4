/*
 * s3sign.h -- SigV4 header signing for the bench/ load generators
 * (s3d_load, s3_soak): UNSIGNED-PAYLOAD, a canonical query string, and any
 * number of extra signed headers.  HMAC-SHA256 from Nettle; the signing key
 * is cached per thread and per day.
 */
#ifndef S3SIGN_H
#define S3SIGN_H

#include <stddef.h>
#include <stdint.h>

typedef struct s3sign_hdr {
  const char *name;  /* lower case */
  const char *value; /* trimmed */
} s3sign_hdr;

/* Append the request's Host, x-amz-date, x-amz-content-sha256, the extra
 * headers and the Authorization line (each ending in CRLF) to out.
 * `path` is the raw (already URI-encoded) path, `query` the canonical query
 * string ("" for none: names sorted, every name and value URI-encoded).
 * Returns the length written (>= cap when it did not fit). */
int s3sign_lines(char *out, size_t cap, const char *ak, const char *sk,
                 const char *region, const char *method, const char *path,
                 const char *query, const char *host, const s3sign_hdr *extra,
                 int nextra);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void s3sign_hex(const uint8_t *d, size_t n, char *out);

/* URI-encode s (RFC 3986 unreserved kept; '/' kept when keep_slash) into
 * out; returns the length, or -1 when it does not fit. */
int s3sign_uri_encode(const char *s, int keep_slash, char *out, size_t cap);

#endif
