/*
 * checksum.h -- the S3 checksum family: CRC32, CRC32C, CRC64NVME, SHA1,
 * SHA256 (x-amz-checksum-*) and MD5 (Content-MD5, ETag), as one streaming
 * interface, plus base64 and multipart combination.
 *
 * Digests are the raw big-endian bytes S3 base64-encodes in headers and
 * XML: 4 bytes for the CRC32s, 8 for CRC64NVME, 20 SHA1, 32 SHA256, 16 MD5.
 *
 * CRC tables are built once on first use (thread-safe). A struct s3ck is
 * plain data owned by the caller; it holds no heap memory.
 */
#ifndef S3D_CHECKSUM_H
#define S3D_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/md5.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

typedef enum {
  S3CK_NONE = 0,
  S3CK_CRC32,     /* IEEE 802.3, reflected 0xEDB88320, as zlib */
  S3CK_CRC32C,    /* Castagnoli, reflected 0x82F63B78 */
  S3CK_CRC64NVME, /* NVMe, reflected 0x9A6C9329AC4BC9B5, init/xorout ~0 */
  S3CK_SHA1,
  S3CK_SHA256,
  S3CK_MD5 /* not an x-amz-checksum algorithm: Content-MD5 and ETags */
} s3ck_alg;

#define S3CK_MAX_DIGEST 32
/* base64 of the largest digest (44) plus "-10000" and a NUL. */
#define S3CK_MAX_B64 64

/* Raw CRC functions in the zlib convention: start with crc = 0, feed any
   number of slices, the value returned after the last slice is the CRC
   (pre- and post-inversion are done inside). */
uint32_t s3ck_crc32(uint32_t crc, const void *p, size_t n);
uint32_t s3ck_crc32c(uint32_t crc, const void *p, size_t n);
uint64_t s3ck_crc64nvme(uint64_t crc, const void *p, size_t n);

/* CRC of A||B from crc(A), crc(B) and len(B), for alg a CRC algorithm (the
   FULL_OBJECT multipart checksum type). Returns 0 for other algorithms. */
uint64_t s3ck_crc_combine(s3ck_alg alg, uint64_t crc_a, uint64_t crc_b,
                          uint64_t len_b);

struct s3ck {
  s3ck_alg alg;
  union {
    uint32_t crc32;
    uint64_t crc64;
    struct sha1_ctx sha1;
    struct sha256_ctx sha256;
    struct md5_ctx md5;
  } u;
};

/* Streaming use: init, update with any slices, then digest (once). */
void s3ck_init(struct s3ck *c, s3ck_alg alg);
void s3ck_update(struct s3ck *c, const void *p, size_t n);
/* Write the digest into out (S3CK_MAX_DIGEST bytes) and return its length
   (0 for S3CK_NONE). Resets hash contexts, as Nettle does. */
size_t s3ck_digest(struct s3ck *c, uint8_t *out);
/* Digest as base64 into out[cap] (cap >= S3CK_MAX_B64 always suffices).
   Returns the length, or 0 on S3CK_NONE or a too small buffer. */
size_t s3ck_digest_b64(struct s3ck *c, char *out, size_t cap);

/* Digest length in bytes of an algorithm (0 for S3CK_NONE). */
size_t s3ck_len(s3ck_alg alg);
/* "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "MD5" (NULL for NONE). */
const char *s3ck_name(s3ck_alg alg);
/* "x-amz-checksum-crc32" ... (NULL for NONE and MD5). */
const char *s3ck_header(s3ck_alg alg);
/* Parse an algorithm name as in x-amz-checksum-algorithm / x-amz-sdk-
   checksum-algorithm (case-insensitive). MD5 is not accepted here.
   Returns S3CK_NONE when unknown. */
s3ck_alg s3ck_from_name(const char *s, size_t n);
/* Parse a header name "x-amz-checksum-crc32" ... (case-insensitive). */
s3ck_alg s3ck_from_header(const char *s, size_t n);

/* Standard base64 (RFC 4648, with padding). encode: returns the length
   written (plus NUL) or 0 if cap is too small. decode: strict (length a
   multiple of 4, correct padding, no whitespace); returns 0 on success with
   *out_len set, -1 on malformed input or a too small buffer. */
size_t s3_base64_encode(char *out, size_t cap, const uint8_t *p, size_t n);
int s3_base64_decode(uint8_t *out, size_t cap, const char *s, size_t n,
                     size_t *out_len);

/* Check a base64 digest received from a client (header or trailer value)
   against a computed raw digest. Returns 1 on match, 0 otherwise
   (including malformed base64 or the wrong length). */
int s3ck_b64_equal(const char *b64, size_t n, const uint8_t *digest,
                   size_t digest_len);

/* Multipart COMPOSITE checksum: the checksum (same algorithm) of the
   concatenated raw part digests, base64-encoded, followed by "-N" where N
   is the number of parts. part_digests holds nparts * s3ck_len(alg) bytes.
   Returns the string length, or 0 on a bad algorithm or small buffer. */
size_t s3ck_composite(s3ck_alg alg, const uint8_t *part_digests, size_t nparts,
                      char *out, size_t cap);

#endif
