/*
 * urlenc.h -- percent-decoding, AWS-style percent-encoding and query-string
 * splitting for untrusted request targets.
 *
 * All functions are pure: they read only the bytes given, write only into
 * the caller's buffer (never past its capacity) and keep no state. Inputs
 * are (pointer, length) pairs and need not be NUL-terminated. Outputs are
 * always NUL-terminated when the call succeeds.
 */
#ifndef S3D_URLENC_H
#define S3D_URLENC_H

#include <stddef.h>

typedef enum {
  S3URL_OK = 0,
  S3URL_BAD_ESCAPE, /* '%' not followed by two hex digits */
  S3URL_NUL,        /* decoded a NUL byte and S3URL_REJECT_NUL was given */
  S3URL_TOO_LONG,   /* the output (plus its NUL) does not fit the buffer */
  S3URL_TOO_MANY    /* more query parameters than the caller allows */
} s3url_result;

/* Flags for s3url_decode(). */
#define S3URL_PLUS_SPACE 0x1 /* decode '+' as ' ' (query strings) */
#define S3URL_REJECT_NUL 0x2 /* fail with S3URL_NUL on "%00" */

/* Percent-decode src[0..n) into dst[0..cap). Every '%' must start a valid
   %XX escape (either hex case). On success *out_len (may be NULL) is the
   decoded length and dst[*out_len] == '\0'. The decoded bytes are not
   checked for UTF-8 validity. dst may equal src (decoding never grows). */
s3url_result s3url_decode(char *dst, size_t cap, const char *src, size_t n,
                          unsigned flags, size_t *out_len);

/* Flags for s3url_encode(). */
#define S3URL_KEEP_SLASH 0x1 /* leave '/' unencoded (paths, listing keys) */

/* AWS URI-encode src[0..n) into dst[0..cap): the unreserved bytes
   A-Z a-z 0-9 '-' '.' '_' '~' are copied, every other byte becomes %XX with
   upper-case hex (space is %20, never '+'). This is the encoding SigV4 uses
   in canonical requests and the one s3d uses for encoding-type=url listing
   output (with S3URL_KEEP_SLASH). */
s3url_result s3url_encode(char *dst, size_t cap, const char *src, size_t n,
                          unsigned flags, size_t *out_len);

/* The encoded length s3url_encode() would produce (without the NUL). */
size_t s3url_encoded_len(const char *src, size_t n, unsigned flags);

/* One query parameter, as slices of the original query string (still
   percent-encoded). has_eq says whether the raw form had '=' (so "a" and
   "a=" can be told apart; both have an empty value). */
struct s3url_param {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
  int has_eq;
};

/* Split a query string (the part after '?', without the '?') on '&'.
   Empty segments ("a&&b", trailing '&') are skipped. The first '=' of a
   segment separates name from value. At most max parameters are stored;
   more gives S3URL_TOO_MANY. *count receives the number stored. Nothing is
   decoded and nothing is allocated: the slices point into q. */
s3url_result s3url_split_query(const char *q, size_t n, struct s3url_param *out,
                               size_t max, size_t *count);

/* Find the first parameter whose decoded name equals name (exact, case-
   sensitive; names in params are compared after percent-decoding with '+'
   as space). Returns its index or -1. */
int s3url_find_param(const struct s3url_param *params, size_t count,
                     const char *name);

#endif
