/*
 * chunked.h -- an incremental decoder for aws-chunked request bodies
 * (Content-Encoding: aws-chunked), in its signed and unsigned forms.
 *
 * Signed (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]):
 *
 *   hex-size;chunk-signature=<64 hex>\r\n <size bytes> \r\n
 *   ...
 *   0;chunk-signature=<64 hex>\r\n
 *   [x-amz-checksum-crc64nvme:<base64>\r\n           (-TRAILER only)
 *    x-amz-trailer-signature:<64 hex>\r\n]
 *   \r\n
 *
 * Unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER):
 *
 *   hex-size\r\n <size bytes> \r\n ... 0\r\n [trailer lines] \r\n
 *
 * Each chunk signature is HMAC-SHA256(signing key, "AWS4-HMAC-SHA256-PAYLOAD"
 * \n amz-date \n scope \n previous-signature \n sha256("") \n sha256(data)),
 * chained from the seed signature of the Authorization header. The trailer
 * signature is HMAC(key, "AWS4-HMAC-SHA256-TRAILER" \n amz-date \n scope \n
 * last-chunk-signature \n sha256(trailers)), where trailers is each trailer
 * (other than the signature) as "name:value\n", names lower-cased, sorted.
 *
 * Push-style: feed the body in slices of any size (one byte at a time
 * works); decoded data is passed to the on_data callback as it arrives,
 * framing never is. IMPORTANT: data reaches on_data before the signature of
 * its chunk has been checked (the signature covers the whole chunk). The
 * caller must treat everything as provisional and commit nothing until
 * s3chunk_finish() returns S3CHUNK_OK.
 *
 * Errors are sticky: after the first one every call returns it again.
 * Lines are capped (S3CHUNK_MAX_*), as are the number of size digits (16)
 * and the chunk size (config.max_chunk). The decoder holds no heap memory.
 */
#ifndef S3D_CHUNKED_H
#define S3D_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#include "sigv4.h"

#define S3CHUNK_MAX_HEADER_LINE 256  /* "hex;chunk-signature=..." line */
#define S3CHUNK_MAX_TRAILER_LINE 512 /* one trailer line */
#define S3CHUNK_MAX_TRAILERS 8       /* trailers besides the signature */
#define S3CHUNK_MAX_TRAILER_NAME 64
#define S3CHUNK_MAX_TRAILER_VALUE 256
#define S3CHUNK_DEFAULT_MAX_CHUNK ((uint64_t)5 << 30) /* 5 GiB, S3's PUT max */

typedef enum {
  S3CHUNK_OK = 0,
  S3CHUNK_MALFORMED,       /* framing error, bad trailer, data after the end */
  S3CHUNK_BAD_SIGNATURE,   /* a chunk or trailer signature does not match, or
                              the trailer signature is missing */
  S3CHUNK_TRUNCATED,       /* s3chunk_finish() before the body was complete */
  S3CHUNK_TOO_LARGE,       /* a chunk above config.max_chunk, or too many
                              trailers */
  S3CHUNK_LENGTH_MISMATCH, /* decoded bytes differ from decoded_length */
  S3CHUNK_ABORTED          /* on_data returned nonzero */
} s3chunk_result;

#define S3CHUNK_SIGNED 0x1  /* chunk-signature= on every chunk */
#define S3CHUNK_TRAILER 0x2 /* trailer lines follow the last chunk */

struct s3chunk_config {
  unsigned flags; /* S3CHUNK_SIGNED | S3CHUNK_TRAILER */
  /* Signing context (S3CHUNK_SIGNED only), from struct s3sig_auth. Copied
     by s3chunk_init(). */
  const uint8_t *signing_key; /* 32 bytes */
  const char *amz_date;       /* YYYYMMDDTHHMMSSZ */
  const char *scope;          /* YYYYMMDD/region/s3/aws4_request */
  const char *seed_signature; /* 64 hex: the request's signature */
  uint64_t max_chunk;         /* 0: S3CHUNK_DEFAULT_MAX_CHUNK */
  int64_t decoded_length;     /* x-amz-decoded-content-length, or -1 */
  /* Receives decoded bytes. Return 0 to go on, nonzero to abort. May be
     NULL to discard. */
  int (*on_data)(void *ctx, const uint8_t *p, size_t n);
  void *ctx;
};

/* Fill a config for an authenticated request: flags from auth->payload
   (S3SIG_PAYLOAD_STREAMING*), signing fields from auth. Returns -1 if the
   payload mode is not an aws-chunked one. */
int s3chunk_config_from_auth(struct s3chunk_config *cfg,
                             const struct s3sig_auth *auth,
                             int64_t decoded_length);

struct s3chunk_trailer {
  char name[S3CHUNK_MAX_TRAILER_NAME + 1];   /* lower-cased */
  char value[S3CHUNK_MAX_TRAILER_VALUE + 1]; /* trimmed */
};

struct s3chunk {
  /* configuration (copied) */
  unsigned flags;
  uint8_t key[32];
  char amz_date[17];
  char scope[S3SIG_MAX_SCOPE + 1];
  uint64_t max_chunk;
  int64_t decoded_length;
  int (*on_data)(void *ctx, const uint8_t *p, size_t n);
  void *ctx;
  /* state */
  int state;
  s3chunk_result err;
  char line[S3CHUNK_MAX_TRAILER_LINE + 1];
  size_t line_len;
  int line_cr;        /* the last byte taken was '\r' */
  uint64_t remaining; /* data bytes left in the current chunk */
  uint64_t total;     /* decoded bytes so far */
  uint8_t chunk_sig[32];
  char prev_sig[65];  /* hex signature of the previous chunk (or seed) */
  struct sha256_ctx sha;
  int maybe_done;     /* TRAILER mode: a blank line right after the last
                         chunk; the end if the body ends here */
  struct s3chunk_trailer trailers[S3CHUNK_MAX_TRAILERS];
  size_t ntrailers;
  int have_trailer_sig;
  uint8_t trailer_sig[32];
};

void s3chunk_init(struct s3chunk *d, const struct s3chunk_config *cfg);

/* Decode the next n bytes of the body. Returns S3CHUNK_OK (more may come or
   the body is complete, see s3chunk_done()) or an error. */
s3chunk_result s3chunk_feed(struct s3chunk *d, const void *p, size_t n);

/* The body has ended. Returns S3CHUNK_OK only if it was complete and every
   signature, the trailer signature and the decoded length checked out;
   S3CHUNK_TRUNCATED if it stopped early; or the sticky error. */
s3chunk_result s3chunk_finish(struct s3chunk *d);

/* 1 once the terminating blank line has been decoded. */
int s3chunk_done(const struct s3chunk *d);

/* Value of a trailer (name in lower case), or NULL. Meaningful after
   s3chunk_finish() returned S3CHUNK_OK. x-amz-trailer-signature is not
   listed. */
const char *s3chunk_trailer_value(const struct s3chunk *d, const char *name);

/* Wipe the copied signing key. */
void s3chunk_wipe(struct s3chunk *d);

/* Human-readable name of a result, for logs. */
const char *s3chunk_strerror(s3chunk_result rc);

#endif
