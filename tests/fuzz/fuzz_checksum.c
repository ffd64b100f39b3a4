/*
 * fuzz_checksum.c -- base64 and the x-amz-checksum-* family
 * (s3d/checksum.c): the decoding of client-sent digests (Content-MD5,
 * x-amz-checksum-* headers and trailers, CompleteMultipartUpload part
 * checksums) and the streaming digests over arbitrary slices.
 *
 * Input: one selector byte, one slice-size byte, then the bytes.
 * Checked beyond memory safety:
 *  - s3_base64_decode is strict: whatever it accepts re-encodes to exactly
 *    the same text, and it never writes past the capacity it was given;
 *  - s3ck_b64_equal accepts the encoding of a digest and nothing that
 *    decodes differently;
 *  - every algorithm gives the same digest whether fed at once or in
 *    slices; s3ck_crc_combine(crc(A), crc(B), |B|) == crc(A||B);
 *  - algorithm names and header names parse back case-insensitively;
 *  - s3ck_composite never writes past its buffer.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "checksum.h"
#include "fuzz.h"

/* The table path of CRC32C (checksum.c), to compare with the SSE4.2 one. */
uint32_t s3ck_crc32c_sw(uint32_t crc, const void *p, size_t n);

static void check_base64(const char *s, size_t n) {
  size_t cap = n / 4 * 3 + 3;
  uint8_t *out = (uint8_t *)fz_alloc(cap);
  size_t len = 0;
  if (s3_base64_decode(out, cap, s, n, &len) == 0) {
    FZ_CHECK(len <= cap && len == n / 4 * 3 - (n && s[n - 1] == '=') -
                                      (n > 1 && s[n - 2] == '='));
    char *enc = fz_alloc(n + 1);
    FZ_CHECK(s3_base64_encode(enc, n + 1, out, len) == n);
    FZ_CHECK(memcmp(enc, s, n) == 0, "non-canonical base64 accepted");
    free(enc);
    /* One byte too small a buffer fails cleanly. */
    if (len) {
      uint8_t *shrt = (uint8_t *)fz_alloc(len - 1);
      size_t l2;
      FZ_CHECK(s3_base64_decode(shrt, len - 1, s, n, &l2) == -1);
      free(shrt);
    }
    /* b64_equal agrees for digest-sized values. */
    if (len <= S3CK_MAX_DIGEST) FZ_CHECK(s3ck_b64_equal(s, n, out, len) == 1);
  } else {
    uint8_t d[S3CK_MAX_DIGEST] = {0};
    FZ_CHECK(s3ck_b64_equal(s, n, d, n / 4 * 3) == 0);
  }
  free(out);
}

static void check_names(const char *s, size_t n) {
  s3ck_alg a = s3ck_from_name(s, n);
  if (a != S3CK_NONE) {
    const char *nm = s3ck_name(a);
    FZ_CHECK(nm && strlen(nm) == n && strncasecmp(nm, s, n) == 0);
  }
  s3ck_alg h = s3ck_from_header(s, n);
  if (h != S3CK_NONE) {
    const char *hn = s3ck_header(h);
    FZ_CHECK(hn && strlen(hn) == n && strncasecmp(hn, s, n) == 0);
  }
}

static void check_digests(const uint8_t *p, size_t n, size_t slice) {
  static const s3ck_alg algs[] = {S3CK_CRC32, S3CK_CRC32C, S3CK_CRC64NVME,
                                  S3CK_SHA1,  S3CK_SHA256, S3CK_MD5};
  for (size_t k = 0; k < sizeof algs / sizeof algs[0]; k++) {
    struct s3ck one, sl;
    uint8_t d1[S3CK_MAX_DIGEST], d2[S3CK_MAX_DIGEST];
    s3ck_init(&one, algs[k]);
    s3ck_update(&one, p, n);
    s3ck_init(&sl, algs[k]);
    for (size_t i = 0; i < n; i += slice)
      s3ck_update(&sl, p + i, n - i < slice ? n - i : slice);
    size_t l1 = s3ck_digest(&one, d1), l2 = s3ck_digest(&sl, d2);
    FZ_CHECK(l1 == s3ck_len(algs[k]) && l1 == l2 && memcmp(d1, d2, l1) == 0,
             "%s differs in slices of %zu", s3ck_name(algs[k]), slice);
    /* The digest's base64 is accepted by b64_equal. */
    char b64[S3CK_MAX_B64];
    size_t bl = s3_base64_encode(b64, sizeof b64, d1, l1);
    FZ_CHECK(bl > 0 && s3ck_b64_equal(b64, bl, d1, l1) == 1);
    if (l1) {
      d1[0] ^= 1;
      FZ_CHECK(s3ck_b64_equal(b64, bl, d1, l1) == 0);
    }
  }
  FZ_CHECK(s3ck_crc32c(0, p, n) == s3ck_crc32c_sw(0, p, n), "CRC32C: SSE4.2 != table");
  /* CRC combination at a split point. */
  size_t cut = slice % (n + 1);
  uint64_t a32 = s3ck_crc32(0, p, cut), b32 = s3ck_crc32(0, p + cut, n - cut);
  FZ_CHECK(s3ck_crc_combine(S3CK_CRC32, a32, b32, n - cut) == s3ck_crc32(0, p, n));
  uint64_t ac = s3ck_crc32c(0, p, cut), bc = s3ck_crc32c(0, p + cut, n - cut);
  FZ_CHECK(s3ck_crc_combine(S3CK_CRC32C, ac, bc, n - cut) == s3ck_crc32c(0, p, n));
  uint64_t a64 = s3ck_crc64nvme(0, p, cut), b64v = s3ck_crc64nvme(0, p + cut, n - cut);
  FZ_CHECK(s3ck_crc_combine(S3CK_CRC64NVME, a64, b64v, n - cut) ==
           s3ck_crc64nvme(0, p, n));
}

static void check_composite(const uint8_t *p, size_t n, uint8_t sel) {
  s3ck_alg alg = (s3ck_alg)(1 + sel % 5);
  size_t dl = s3ck_len(alg);
  size_t nparts = n / dl;
  size_t cap = 1 + (size_t)(sel >> 3) * 4; /* 1..125: often too small */
  char *out = fz_alloc(cap);
  size_t k = s3ck_composite(alg, p, nparts, out, cap);
  if (k) {
    FZ_CHECK(k < cap && out[k] == '\0' && strchr(out, '-') != NULL);
  } else {
    size_t digits = 1;
    for (size_t v = nparts; v >= 10; v /= 10) digits++;
    FZ_CHECK(nparts == 0 || cap < 4 * ((dl + 2) / 3) + 1 + digits + 1,
             "composite of %zu parts failed with cap %zu", nparts, cap);
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz f = {data, size};
  uint8_t sel = fz_u8(&f);
  size_t slice = 1 + fz_u8(&f);
  size_t n;
  const char *rest = fz_rest(&f, &n);
  char *s = fz_dup(rest, n);
  check_base64(s, n);
  check_names(s, n);
  check_digests((const uint8_t *)s, n, slice);
  check_composite((const uint8_t *)s, n, sel);
  free(s);
  return 0;
}
