/*
 * sigv4.h -- AWS Signature Version 4 verification for S3 requests: the
 * Authorization header and presigned (query-string) URLs.
 *
 * The caller (the HTTP server) describes a request with struct
 * s3sig_request -- method, the raw request target exactly as it appeared on
 * the request line, a header lookup callback, a secret-key lookup callback
 * and the current time -- and s3sig_verify() answers with S3SIG_OK or the
 * reason for refusal, which s3sig_error() maps to the S3 error code, HTTP
 * status and message. On success struct s3sig_auth holds what later stages
 * need: the access key, the payload mode and hash the client declared, and
 * for aws-chunked bodies the seed signature and the derived signing key.
 *
 * How the canonical request is built is described in docs/sigv4.md. In
 * short: the canonical URI is the raw path as sent (S3 neither normalises
 * nor double-encodes it); the canonical query is every parameter (except
 * X-Amz-Signature for presigned URLs) decoded and re-encoded the AWS way,
 * sorted; header values are trimmed with inner whitespace runs collapsed.
 *
 * Every input is bounded by the S3SIG_MAX_* caps below; anything larger is
 * refused before any work proportional to it is done. The functions keep
 * no global state and are safe to call from several threads at once.
 */
#ifndef S3D_SIGV4_H
#define S3D_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dynbuf.h"

#define S3SIG_MAX_ACCESS_KEY 128
#define S3SIG_MAX_SECRET 128
#define S3SIG_MAX_REGION 64
#define S3SIG_MAX_SERVICE 32
#define S3SIG_MAX_AUTH_HEADER 8192     /* Authorization header value */
#define S3SIG_MAX_SIGNED_HEADERS 2048  /* bytes of the SignedHeaders list */
#define S3SIG_MAX_SIGNED_COUNT 64      /* names in SignedHeaders */
#define S3SIG_MAX_HEADER_VALUE 8192    /* each signed header's value */
#define S3SIG_MAX_TARGET 16384         /* raw request target */
#define S3SIG_MAX_QUERY_PARAMS 128
#define S3SIG_MAX_CANONICAL 131072     /* canonical request */
#define S3SIG_MAX_SKEW 900             /* seconds: RequestTimeTooSkewed */
#define S3SIG_MAX_EXPIRES 604800       /* seconds: X-Amz-Expires upper bound */

/* Scope: date(8) / region / service / aws4_request */
#define S3SIG_MAX_SCOPE (8 + 1 + S3SIG_MAX_REGION + 1 + S3SIG_MAX_SERVICE + 13)

typedef enum {
  S3SIG_OK = 0,
  S3SIG_MISSING,           /* no Authorization header, no X-Amz-* query: anonymous */
  S3SIG_UNSUPPORTED,       /* another scheme (SigV2, ECDSA, Bearer ...) */
  S3SIG_AMBIGUOUS,         /* both header and query authentication */
  S3SIG_MALFORMED,         /* Authorization header syntax or scope error */
  S3SIG_QUERY_MALFORMED,   /* presigned parameters missing/invalid */
  S3SIG_WRONG_REGION,      /* scope region differs from the configured one */
  S3SIG_BAD_TARGET,        /* request target unparsable (bad %XX, too many params) */
  S3SIG_MISSING_CONTENT_SHA256, /* header auth without x-amz-content-sha256 */
  S3SIG_BAD_CONTENT_SHA256,     /* x-amz-content-sha256 not a hash or known token */
  S3SIG_UNSUPPORTED_PAYLOAD,    /* STREAMING-AWS4-ECDSA-P256-SHA256-* */
  S3SIG_MISSING_DATE,      /* no valid x-amz-date / Date */
  S3SIG_INVALID_ACCESS_KEY,/* the secret callback does not know the key */
  S3SIG_TIME_SKEWED,       /* header auth: more than 15 minutes off */
  S3SIG_EXPIRED,           /* presigned: past X-Amz-Date + X-Amz-Expires */
  S3SIG_NOT_YET_VALID,     /* presigned: X-Amz-Date more than 15 min ahead */
  S3SIG_SIGNATURE_MISMATCH,
  S3SIG_TOO_LARGE,         /* an input exceeds its S3SIG_MAX_* cap */
  S3SIG_NOMEM
} s3sig_result;

/* How the request body is covered, from x-amz-content-sha256 (header auth)
   or X-Amz-Content-Sha256 (presigned; UNSIGNED-PAYLOAD when absent). */
typedef enum {
  S3SIG_PAYLOAD_SHA256 = 0,  /* payload_hash holds the hex SHA-256 the caller
                                must check the body against */
  S3SIG_PAYLOAD_UNSIGNED,    /* UNSIGNED-PAYLOAD */
  S3SIG_PAYLOAD_STREAMING,   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
  S3SIG_PAYLOAD_STREAMING_TRAILER,         /* ...-PAYLOAD-TRAILER */
  S3SIG_PAYLOAD_STREAMING_UNSIGNED_TRAILER /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
} s3sig_payload;

/* Header lookup: return the value of the header called name (given in lower
   case; the lookup must be case-insensitive) and its length, or NULL when
   the request has no such header. A header sent several times should be
   returned as its values joined with ",". The pointer must stay valid until
   s3sig_verify() returns. */
typedef const char *(*s3sig_header_fn)(void *ctx, const char *name,
                                       size_t *len);

/* Secret lookup: copy the secret key of access_key, NUL-terminated, into
   secret[cap] and return its length; return 0 if the key is unknown or
   disabled (InvalidAccessKeyId). */
typedef size_t (*s3sig_secret_fn)(void *ctx, const char *access_key,
                                  char *secret, size_t cap);

struct s3sig_request {
  const char *method;    /* "GET", "PUT", ... */
  const char *target;    /* raw request target: "/bucket/key?a=b" */
  size_t target_len;
  s3sig_header_fn header;
  void *header_ctx;
  s3sig_secret_fn secret;
  void *secret_ctx;
  time_t now;
  const char *region;    /* the server's region; NULL accepts any region */
};

struct s3sig_auth {
  int presigned;                     /* 1 for query-string auth */
  s3sig_payload payload;
  char payload_hash[65];             /* lower-case hex, when PAYLOAD_SHA256 */
  char access_key[S3SIG_MAX_ACCESS_KEY + 1];
  char region[S3SIG_MAX_REGION + 1];
  char amz_date[17];                 /* YYYYMMDDTHHMMSSZ */
  char scope[S3SIG_MAX_SCOPE + 1];   /* YYYYMMDD/region/s3/aws4_request */
  char signature[65];                /* the request's (seed) signature, hex */
  uint8_t signing_key[32];           /* for chunk and trailer signatures */
  time_t request_time;
  /* After S3SIG_SIGNATURE_MISMATCH only: what the server computed, for the
     <CanonicalRequest> and <StringToSign> of the error body. Otherwise
     NULL. Freed by s3sig_auth_free(). */
  char *canonical_request;
  char *string_to_sign;
};

/* Verify a request. Always initialises *auth (call s3sig_auth_free() after,
   whatever the result). */
s3sig_result s3sig_verify(const struct s3sig_request *req,
                          struct s3sig_auth *auth);

/* Free the diagnostic strings and wipe the signing key. NULL is fine. */
void s3sig_auth_free(struct s3sig_auth *auth);

/* The S3 error for a result: code ("SignatureDoesNotMatch"), HTTP status
   and a human message. This is the one table from SigV4 results to S3
   errors. For S3SIG_MISSING it describes the refusal of an anonymous
   request (AccessDenied). */
struct s3sig_error {
  const char *code;
  int status;
  const char *message;
};
struct s3sig_error s3sig_error(s3sig_result rc);

/* --- building blocks (pure; used by the verifier, tests and fuzzers) ---- */

/* The parsed credential and signature of either form. */
struct s3sig_parsed {
  char access_key[S3SIG_MAX_ACCESS_KEY + 1];
  char date[9];                      /* credential scope date YYYYMMDD */
  char region[S3SIG_MAX_REGION + 1];
  char service[S3SIG_MAX_SERVICE + 1];
  char signed_headers[S3SIG_MAX_SIGNED_HEADERS + 1]; /* lower-cased */
  uint8_t signature[32];
  /* presigned only: */
  char amz_date[17];
  char content_sha256[65];           /* X-Amz-Content-Sha256 if given */
  unsigned long expires;
};

/* Parse an Authorization header value:
     AWS4-HMAC-SHA256 Credential=AK/YYYYMMDD/region/s3/aws4_request,
       SignedHeaders=a;b;c, Signature=<64 hex>
   Whitespace around the commas is optional; each of the three parameters
   must appear exactly once. Returns S3SIG_OK, S3SIG_UNSUPPORTED (another
   scheme), S3SIG_MALFORMED or S3SIG_TOO_LARGE. The scope is parsed but not
   checked against date, region or service. */
s3sig_result s3sig_parse_authorization(const char *v, size_t n,
                                       struct s3sig_parsed *out);

/* Parse the presigned parameters of a raw query string (without '?'):
   X-Amz-Algorithm=AWS4-HMAC-SHA256, X-Amz-Credential, X-Amz-Date,
   X-Amz-Expires (1..604800), X-Amz-SignedHeaders, X-Amz-Signature, and the
   optional X-Amz-Content-Sha256. Returns S3SIG_OK, S3SIG_MISSING (none of
   them present), S3SIG_QUERY_MALFORMED, S3SIG_BAD_CONTENT_SHA256 (a value
   longer than 64 bytes), S3SIG_BAD_TARGET or S3SIG_TOO_LARGE. */
s3sig_result s3sig_parse_presigned(const char *query, size_t n,
                                   struct s3sig_parsed *out);

/* Append the canonical request to out:
     METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
   signed_headers is the lower-case ';' list. presigned drops X-Amz-Signature
   from the query. reencode_path canonicalises the path as decode+AWS-encode
   instead of using it raw (the verifier's fallback, see docs/sigv4.md). */
s3sig_result s3sig_canonical_request(const struct s3sig_request *req,
                                     const char *signed_headers,
                                     const char *payload_hash, int presigned,
                                     int reencode_path, struct s3buf *out);

/* Parse "YYYYMMDDTHHMMSSZ" (exactly). Returns 0 and *out, or -1. */
int s3sig_parse_amz_date(const char *s, size_t n, time_t *out);
/* Format t as "YYYYMMDDTHHMMSSZ" into out[17]. */
void s3sig_format_amz_date(time_t t, char out[17]);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
   "aws4_request"). */
void s3sig_signing_key(const char *secret, size_t secret_len, const char *date,
                       const char *region, const char *service,
                       uint8_t key[32]);

/* Lower-case hex HMAC-SHA256 of msg under a 32-byte key, NUL-terminated. */
void s3sig_hmac_hex(const uint8_t key[32], const void *msg, size_t n,
                    char hex[65]);
/* Lower-case hex SHA-256, NUL-terminated. */
void s3_sha256_hex(const void *p, size_t n, char hex[65]);
/* Lower-case hex of n bytes into out[2n+1]. */
void s3_hex(const uint8_t *p, size_t n, char *out);
/* Decode exactly 2*n hex digits (either case) into out[n]; 0 or -1. */
int s3_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
