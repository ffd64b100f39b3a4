/*
 * test_parsers.c -- unit tests of s3d's untrusted-input parsers: SigV4,
 * aws-chunked, checksums, Range/conditionals, URL coding and the XML writer.
 *
 * The SigV4 and aws-chunked vectors are the published AWS examples
 * (AKIAIOSFODNN7EXAMPLE, 20130524T000000Z, us-east-1); the extra SigV4
 * vectors were computed with an independent Python implementation of the
 * same rules (hashlib/hmac, urllib quote/unquote_plus).
 */
#include <stdint.h>
#include <strings.h>
#include <time.h>

#include "harness.h"

#include "../checksum.h"
#include "../chunked.h"
#include "../range.h"
#include "../sigv4.h"
#include "../urlenc.h"
#include "../xmlout.h"

/* The table path of CRC32C (checksum.c), to compare with the SSE4.2 one. */
uint32_t s3ck_crc32c_sw(uint32_t crc, const void *p, size_t n);

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* ======================================================================
 * checksum
 * ====================================================================== */

/* Bit-at-a-time references, independent of the table code. */
static uint64_t ref_crc(uint64_t poly, int width, const uint8_t *p, size_t n) {
  uint64_t mask = width == 64 ? ~0ull : ((1ull << width) - 1);
  uint64_t c = mask;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
  }
  return c ^ mask;
}

static void test_crc_check_values(void) {
  const char *s = "123456789";
  T_EQ_U64(s3ck_crc32(0, s, 9), 0xcbf43926u);
  T_EQ_U64(s3ck_crc32c(0, s, 9), 0xe3069283u);
  T_EQ_U64(s3ck_crc32c_sw(0, s, 9), 0xe3069283u);
  T_EQ_U64(s3ck_crc64nvme(0, s, 9), 0xae8b14860a799888ull);
  T_EQ_U64(s3ck_crc32(0, "", 0), 0);
  T_EQ_U64(s3ck_crc32c(0, "", 0), 0);
  T_EQ_U64(s3ck_crc64nvme(0, "", 0), 0);
  /* Streaming in two pieces gives the same value. */
  T_EQ_U64(s3ck_crc64nvme(s3ck_crc64nvme(0, s, 4), s + 4, 5), 0xae8b14860a799888ull);
  T_EQ_U64(s3ck_crc32(s3ck_crc32(0, s, 1), s + 1, 8), 0xcbf43926u);
}

static void test_crc_against_reference(void) {
  uint8_t buf[300];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rnd();
  for (size_t off = 0; off < 9; off++) {
    for (size_t n = 0; off + n <= sizeof buf; n += (n < 40 ? 1 : 37)) {
      T_EQ_U64(s3ck_crc32(0, buf + off, n), ref_crc(0xEDB88320u, 32, buf + off, n));
      T_EQ_U64(s3ck_crc32c(0, buf + off, n), ref_crc(0x82F63B78u, 32, buf + off, n));
      T_EQ_U64(s3ck_crc32c_sw(0, buf + off, n), ref_crc(0x82F63B78u, 32, buf + off, n));
      T_EQ_U64(s3ck_crc64nvme(0, buf + off, n),
               ref_crc(0x9A6C9329AC4BC9B5ull, 64, buf + off, n));
    }
  }
}

static void test_crc_random_slices(void) {
  size_t n = 100000;
  uint8_t *buf = malloc(n);
  T_ASSERT(buf);
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rnd();
  uint32_t w32 = s3ck_crc32(0, buf, n), w32c = s3ck_crc32c(0, buf, n);
  uint64_t w64 = s3ck_crc64nvme(0, buf, n);
  T_EQ_U64(w32c, s3ck_crc32c_sw(0, buf, n));
  for (int round = 0; round < 20; round++) {
    struct s3ck a, b, c;
    s3ck_init(&a, S3CK_CRC32);
    s3ck_init(&b, S3CK_CRC32C);
    s3ck_init(&c, S3CK_CRC64NVME);
    for (size_t i = 0; i < n;) {
      size_t k = round == 0 ? 1 : (size_t)(rnd() % 5000);
      if (k > n - i) k = n - i;
      s3ck_update(&a, buf + i, k);
      s3ck_update(&b, buf + i, k);
      s3ck_update(&c, buf + i, k);
      i += k;
    }
    uint8_t d[S3CK_MAX_DIGEST];
    T_EQ_U64(s3ck_digest(&a, d), 4);
    T_EQ_U64((uint32_t)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3], w32);
    T_EQ_U64(s3ck_digest(&b, d), 4);
    T_EQ_U64((uint32_t)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3], w32c);
    T_EQ_U64(s3ck_digest(&c, d), 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | d[i];
    T_EQ_U64(v, w64);
  }
  free(buf);
}

static void test_crc_combine(void) {
  uint8_t buf[5000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rnd();
  size_t cuts[] = {0, 1, 7, 8, 9, 100, 2500, 4999, 5000};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    size_t a = cuts[k], b = sizeof buf - a;
    T_EQ_U64(s3ck_crc_combine(S3CK_CRC32, s3ck_crc32(0, buf, a),
                              s3ck_crc32(0, buf + a, b), b),
             s3ck_crc32(0, buf, sizeof buf));
    T_EQ_U64(s3ck_crc_combine(S3CK_CRC32C, s3ck_crc32c(0, buf, a),
                              s3ck_crc32c(0, buf + a, b), b),
             s3ck_crc32c(0, buf, sizeof buf));
    T_EQ_U64(s3ck_crc_combine(S3CK_CRC64NVME, s3ck_crc64nvme(0, buf, a),
                              s3ck_crc64nvme(0, buf + a, b), b),
             s3ck_crc64nvme(0, buf, sizeof buf));
  }
  T_EQ_U64(s3ck_crc_combine(S3CK_SHA256, 1, 2, 3), 0);
}

static void test_checksum_b64_digests(void) {
  struct s3ck c;
  char out[S3CK_MAX_B64];
  const char *ab = "abc";
  /* The CRC32C of the AWS trailer example body: 66560 bytes of 'a'. */
  uint8_t *a = malloc(66560);
  T_ASSERT(a);
  memset(a, 'a', 66560);
  s3ck_init(&c, S3CK_CRC32C);
  s3ck_update(&c, a, 66560);
  T_ASSERT(s3ck_digest_b64(&c, out, sizeof out) == 8);
  T_EQ_STR(out, "sOO8/Q==");
  free(a);

  s3ck_init(&c, S3CK_SHA256);
  T_ASSERT(s3ck_digest_b64(&c, out, sizeof out) == 44);
  T_EQ_STR(out, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  s3ck_init(&c, S3CK_SHA1);
  s3ck_update(&c, ab, 3);
  uint8_t d[S3CK_MAX_DIGEST];
  char hex[2 * S3CK_MAX_DIGEST + 1];
  T_EQ_U64(s3ck_digest(&c, d), 20);
  s3_hex(d, 20, hex);
  T_EQ_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
  s3ck_init(&c, S3CK_MD5);
  T_EQ_U64(s3ck_digest(&c, d), 16);
  s3_hex(d, 16, hex);
  T_EQ_STR(hex, "d41d8cd98f00b204e9800998ecf8427e");
  s3ck_init(&c, S3CK_CRC32);
  s3ck_update(&c, "hello world", 11);
  s3ck_digest_b64(&c, out, sizeof out);
  T_EQ_STR(out, "DUoRhQ==");
  s3ck_init(&c, S3CK_CRC64NVME);
  s3ck_digest_b64(&c, out, sizeof out);
  T_EQ_STR(out, "AAAAAAAAAAA=");
  s3ck_init(&c, S3CK_CRC32);
  T_EQ_U64(s3ck_digest_b64(&c, out, 8), 0); /* needs 9 */
  s3ck_init(&c, S3CK_NONE);
  T_EQ_U64(s3ck_digest_b64(&c, out, sizeof out), 0);
}

static void test_base64(void) {
  char out[64];
  uint8_t bin[64];
  size_t n;
  T_EQ_U64(s3_base64_encode(out, sizeof out, (const uint8_t *)"", 0), 0);
  T_EQ_STR(out, "");
  s3_base64_encode(out, sizeof out, (const uint8_t *)"f", 1);
  T_EQ_STR(out, "Zg==");
  s3_base64_encode(out, sizeof out, (const uint8_t *)"fo", 2);
  T_EQ_STR(out, "Zm8=");
  s3_base64_encode(out, sizeof out, (const uint8_t *)"foobar", 6);
  T_EQ_STR(out, "Zm9vYmFy");
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zm9vYmE=", 8, &n) == 0 && n == 5 &&
           memcmp(bin, "fooba", 5) == 0);
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zg==", 4, &n) == 0 && n == 1);
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "", 0, &n) == 0 && n == 0);
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zg=", 3, &n) == -1);     /* length */
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zh==", 4, &n) == -1);    /* stray bits */
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Z===", 4, &n) == -1);
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zg=a", 4, &n) == -1);
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zg==Zg==", 8, &n) == -1); /* pad mid */
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zm9 ", 4, &n) == -1);
  T_ASSERT(s3_base64_decode(bin, sizeof bin, "Zm-_", 4, &n) == -1); /* url alphabet */
  T_ASSERT(s3_base64_decode(bin, 2, "Zm9v", 4, &n) == -1);          /* small buffer */
  uint8_t crc[4] = {0xb0, 0xe3, 0xbc, 0xfd};
  T_ASSERT(s3ck_b64_equal("sOO8/Q==", 8, crc, 4));
  T_ASSERT(!s3ck_b64_equal("sOO8/Q=", 7, crc, 4));
  T_ASSERT(!s3ck_b64_equal("sOO8/A==", 8, crc, 4));
  T_ASSERT(!s3ck_b64_equal("sOO8/Q==", 8, crc, 3));
}

static void test_checksum_composite_and_names(void) {
  /* Three parts; the composite is CRC32 over the 12 concatenated bytes. */
  const char *parts[3] = {"part one", "part two", "3"};
  uint8_t cat[12];
  for (int i = 0; i < 3; i++) {
    uint32_t c = s3ck_crc32(0, parts[i], strlen(parts[i]));
    cat[4 * i] = (uint8_t)(c >> 24);
    cat[4 * i + 1] = (uint8_t)(c >> 16);
    cat[4 * i + 2] = (uint8_t)(c >> 8);
    cat[4 * i + 3] = (uint8_t)c;
  }
  uint32_t whole = s3ck_crc32(0, cat, 12);
  uint8_t be[4] = {(uint8_t)(whole >> 24), (uint8_t)(whole >> 16),
                   (uint8_t)(whole >> 8), (uint8_t)whole};
  char want[32], got[S3CK_MAX_B64];
  size_t n = s3_base64_encode(want, sizeof want, be, 4);
  memcpy(want + n, "-3", 3);
  T_EQ_U64(s3ck_composite(S3CK_CRC32, cat, 3, got, sizeof got), n + 2);
  T_EQ_STR(got, want);
  T_EQ_U64(s3ck_composite(S3CK_CRC32, cat, 3, got, n + 2), 0); /* no room for NUL */
  T_EQ_U64(s3ck_composite(S3CK_NONE, cat, 3, got, sizeof got), 0);
  /* 10000 parts of SHA256: the longest suffix. */
  uint8_t *many = calloc(10000, 32);
  T_ASSERT(many);
  n = s3ck_composite(S3CK_SHA256, many, 10000, got, sizeof got);
  T_EQ_U64(n, 44 + 6);
  T_ASSERT(strcmp(got + 44, "-10000") == 0);
  free(many);

  T_ASSERT(s3ck_from_name("crc64nvme", 9) == S3CK_CRC64NVME);
  T_ASSERT(s3ck_from_name("SHA256", 6) == S3CK_SHA256);
  T_ASSERT(s3ck_from_name("CRC32", 5) == S3CK_CRC32);
  T_ASSERT(s3ck_from_name("CRC3", 4) == S3CK_NONE);
  T_ASSERT(s3ck_from_name("MD5", 3) == S3CK_NONE);
  T_ASSERT(s3ck_from_header("X-Amz-Checksum-CRC32C", 21) == S3CK_CRC32C);
  T_EQ_STR(s3ck_header(S3CK_SHA1), "x-amz-checksum-sha1");
  T_EQ_STR(s3ck_name(S3CK_CRC64NVME), "CRC64NVME");
  T_ASSERT(s3ck_header(S3CK_MD5) == NULL);
  T_EQ_U64(s3ck_len(S3CK_CRC64NVME), 8);
}

/* ======================================================================
 * urlenc
 * ====================================================================== */

static void test_url_decode(void) {
  char out[32];
  size_t n;
  T_ASSERT(s3url_decode(out, sizeof out, "%41%62c", 7, 0, &n) == S3URL_OK && n == 3);
  T_EQ_STR(out, "Abc");
  T_ASSERT(s3url_decode(out, sizeof out, "%6a%6A", 6, 0, &n) == S3URL_OK);
  T_EQ_STR(out, "jj");
  T_ASSERT(s3url_decode(out, sizeof out, "a+b", 3, 0, &n) == S3URL_OK);
  T_EQ_STR(out, "a+b");
  T_ASSERT(s3url_decode(out, sizeof out, "a+b", 3, S3URL_PLUS_SPACE, &n) == S3URL_OK);
  T_EQ_STR(out, "a b");
  T_ASSERT(s3url_decode(out, sizeof out, "%2B", 3, S3URL_PLUS_SPACE, &n) == S3URL_OK);
  T_EQ_STR(out, "+");
  T_ASSERT(s3url_decode(out, sizeof out, "%", 1, 0, &n) == S3URL_BAD_ESCAPE);
  T_ASSERT(s3url_decode(out, sizeof out, "a%4", 3, 0, &n) == S3URL_BAD_ESCAPE);
  T_ASSERT(s3url_decode(out, sizeof out, "%zz", 3, 0, &n) == S3URL_BAD_ESCAPE);
  T_ASSERT(s3url_decode(out, sizeof out, "%g0", 3, 0, &n) == S3URL_BAD_ESCAPE);
  T_ASSERT(s3url_decode(out, sizeof out, "%0", 2, 0, &n) == S3URL_BAD_ESCAPE);
  /* %00: allowed unless rejected; a raw NUL byte likewise. */
  T_ASSERT(s3url_decode(out, sizeof out, "a%00b", 5, 0, &n) == S3URL_OK && n == 3 &&
           out[1] == '\0');
  T_ASSERT(s3url_decode(out, sizeof out, "a%00b", 5, S3URL_REJECT_NUL, &n) == S3URL_NUL);
  T_ASSERT(s3url_decode(out, sizeof out, "a\0b", 3, S3URL_REJECT_NUL, &n) == S3URL_NUL);
  /* Capacity: the output and its NUL must fit. */
  T_ASSERT(s3url_decode(out, 4, "abc", 3, 0, &n) == S3URL_OK);
  T_ASSERT(s3url_decode(out, 3, "abc", 3, 0, &n) == S3URL_TOO_LONG);
  T_ASSERT(s3url_decode(out, 2, "%41%42", 6, 0, &n) == S3URL_TOO_LONG);
  T_ASSERT(s3url_decode(out, 0, "", 0, 0, &n) == S3URL_TOO_LONG);
  T_ASSERT(s3url_decode(out, 1, "", 0, 0, &n) == S3URL_OK && n == 0);
  /* Not double-decoded. */
  T_ASSERT(s3url_decode(out, sizeof out, "%2541", 5, 0, &n) == S3URL_OK);
  T_EQ_STR(out, "%41");
  /* UTF-8 passes through as bytes. */
  T_ASSERT(s3url_decode(out, sizeof out, "%C3%A9", 6, 0, &n) == S3URL_OK && n == 2);
  T_EQ_STR(out, "\xc3\xa9");
  /* In place. */
  char inplace[] = "x%20y";
  T_ASSERT(s3url_decode(inplace, sizeof inplace, inplace, 5, 0, &n) == S3URL_OK);
  T_EQ_STR(inplace, "x y");
}

static void test_url_encode(void) {
  char out[64];
  size_t n;
  const char *s = "a b/c~-._*+!=&\xc3\xa9";
  T_ASSERT(s3url_encode(out, sizeof out, s, strlen(s), 0, &n) == S3URL_OK);
  T_EQ_STR(out, "a%20b%2Fc~-._%2A%2B%21%3D%26%C3%A9");
  T_EQ_U64(n, strlen(out));
  T_EQ_U64(s3url_encoded_len(s, strlen(s), 0), n);
  T_ASSERT(s3url_encode(out, sizeof out, "a/b c", 5, S3URL_KEEP_SLASH, &n) == S3URL_OK);
  T_EQ_STR(out, "a/b%20c");
  T_EQ_U64(s3url_encoded_len("a/b c", 5, S3URL_KEEP_SLASH), 7);
  T_ASSERT(s3url_encode(out, 4, "abc", 3, 0, &n) == S3URL_OK);
  T_ASSERT(s3url_encode(out, 3, "abc", 3, 0, &n) == S3URL_TOO_LONG);
  T_ASSERT(s3url_encode(out, 3, " ", 1, 0, &n) == S3URL_TOO_LONG);
  T_ASSERT(s3url_encode(out, 4, " ", 1, 0, &n) == S3URL_OK && n == 3);
  T_ASSERT(s3url_encode(out, sizeof out, "\0\x7f\xff", 3, 0, &n) == S3URL_OK);
  T_EQ_STR(out, "%00%7F%FF");
  /* Round trip every byte value. */
  char all[256], enc[3 * 256 + 1], dec[257];
  for (int i = 0; i < 256; i++) all[i] = (char)i;
  T_ASSERT(s3url_encode(enc, sizeof enc, all, 256, 0, &n) == S3URL_OK);
  T_ASSERT(s3url_decode(dec, sizeof dec, enc, n, 0, &n) == S3URL_OK && n == 256);
  T_ASSERT(memcmp(dec, all, 256) == 0);
}

static void test_url_split_query(void) {
  struct s3url_param p[8];
  size_t n;
  const char *q = "a=1&b&&c=&=x&list-type=2&";
  T_ASSERT(s3url_split_query(q, strlen(q), p, 8, &n) == S3URL_OK);
  T_EQ_U64(n, 5);
  T_ASSERT(p[0].name_len == 1 && p[0].value_len == 1 && p[0].has_eq &&
           p[0].value[0] == '1');
  T_ASSERT(p[1].name_len == 1 && p[1].value_len == 0 && !p[1].has_eq);
  T_ASSERT(p[2].name_len == 1 && p[2].value_len == 0 && p[2].has_eq);
  T_ASSERT(p[3].name_len == 0 && p[3].value_len == 1);
  T_ASSERT(p[4].name_len == 9 && memcmp(p[4].value, "2", 1) == 0);
  T_ASSERT(s3url_split_query("a=b=c", 5, p, 8, &n) == S3URL_OK && n == 1 &&
           p[0].value_len == 3);
  T_ASSERT(s3url_split_query("", 0, p, 8, &n) == S3URL_OK && n == 0);
  T_ASSERT(s3url_split_query("&&&", 3, p, 8, &n) == S3URL_OK && n == 0);
  T_ASSERT(s3url_split_query("a&b&c", 5, p, 2, &n) == S3URL_TOO_MANY);
  T_ASSERT(s3url_split_query("a&b", 3, p, 2, &n) == S3URL_OK && n == 2);
  q = "X%2DAmz-Date=1&prefix=x";
  T_ASSERT(s3url_split_query(q, strlen(q), p, 8, &n) == S3URL_OK);
  T_ASSERT(s3url_find_param(p, n, "X-Amz-Date") == 0);
  T_ASSERT(s3url_find_param(p, n, "prefix") == 1);
  T_ASSERT(s3url_find_param(p, n, "Prefix") == -1);
  T_ASSERT(s3url_find_param(p, n, "X-Amz") == -1);
}

/* ======================================================================
 * range, dates, conditionals
 * ====================================================================== */

static void test_range(void) {
  static const struct {
    const char *h;
    uint64_t size;
    s3range_result rc;
    uint64_t off, len;
  } cases[] = {
      {"bytes=0-9", 100, S3RANGE_OK, 0, 10},
      {"bytes=0-0", 100, S3RANGE_OK, 0, 1},
      {"bytes=99-99", 100, S3RANGE_OK, 99, 1},
      {"bytes=90-200", 100, S3RANGE_OK, 90, 10},
      {"bytes=99-", 100, S3RANGE_OK, 99, 1},
      {"bytes=0-", 100, S3RANGE_OK, 0, 100},
      {"bytes=100-", 100, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=100-200", 100, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=-10", 100, S3RANGE_OK, 90, 10},
      {"bytes=-100", 100, S3RANGE_OK, 0, 100},
      {"bytes=-200", 100, S3RANGE_OK, 0, 100},
      {"bytes=-0", 100, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=0-", 0, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=0-0", 0, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=-5", 0, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=5-4", 100, S3RANGE_NONE, 0, 0},        /* invalid: ignored */
      {"bytes=0-1,3-4", 100, S3RANGE_NONE, 0, 0},    /* multi: whole object */
      {"bytes=0-1, -3", 100, S3RANGE_NONE, 0, 0},
      {"bytes=0-1,", 100, S3RANGE_OK, 0, 2},         /* empty list element */
      {"bytes= 0-1 ", 100, S3RANGE_OK, 0, 2},
      {"  bytes=1-2", 100, S3RANGE_OK, 1, 2},
      {"Bytes=1-2", 100, S3RANGE_OK, 1, 2},
      {"BYTES=1-2", 100, S3RANGE_OK, 1, 2},
      {"items=0-1", 100, S3RANGE_NONE, 0, 0},
      {"bytes 0-1", 100, S3RANGE_NONE, 0, 0},
      {"bytes =0-1", 100, S3RANGE_NONE, 0, 0},
      {"bytes=", 100, S3RANGE_NONE, 0, 0},
      {"bytes=-", 100, S3RANGE_NONE, 0, 0},
      {"bytes=a-b", 100, S3RANGE_NONE, 0, 0},
      {"bytes=1-2x", 100, S3RANGE_NONE, 0, 0},
      {"bytes=1 -2", 100, S3RANGE_NONE, 0, 0},
      {"bytes=--1", 100, S3RANGE_NONE, 0, 0},
      {"bytes=+1-2", 100, S3RANGE_NONE, 0, 0},
      {"bytes=1", 100, S3RANGE_NONE, 0, 0},
      {"", 100, S3RANGE_NONE, 0, 0},
      {"bytes=99999999999999999999999-", 100, S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=0-99999999999999999999999", 100, S3RANGE_OK, 0, 100},
      {"bytes=-99999999999999999999999", 100, S3RANGE_OK, 0, 100},
      {"bytes=18446744073709551615-18446744073709551615", UINT64_MAX,
       S3RANGE_UNSATISFIABLE, 0, 0},
      {"bytes=18446744073709551614-", UINT64_MAX, S3RANGE_OK,
       18446744073709551614ull, 1},
      {"bytes=0-", UINT64_MAX, S3RANGE_OK, 0, UINT64_MAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t off = 12345, len = 12345;
    s3range_result rc =
        s3range_parse(cases[i].h, strlen(cases[i].h), cases[i].size, &off, &len);
    if (rc != cases[i].rc) T_FAIL("case %zu \"%s\": rc %d, want %d", i, cases[i].h, rc, cases[i].rc);
    if (rc == S3RANGE_OK && (off != cases[i].off || len != cases[i].len))
      T_FAIL("case %zu \"%s\": off %llu len %llu", i, cases[i].h,
             (unsigned long long)off, (unsigned long long)len);
  }
  /* A header over the cap is ignored, even if it starts well. */
  char big[S3RANGE_MAX_LEN + 10];
  memset(big, ' ', sizeof big);
  memcpy(big, "bytes=0-1", 9);
  uint64_t off, len;
  T_ASSERT(s3range_parse(big, sizeof big, 100, &off, &len) == S3RANGE_NONE);
  T_ASSERT(s3range_parse(big, S3RANGE_MAX_LEN, 100, &off, &len) == S3RANGE_OK);
  T_ASSERT(s3range_parse(NULL, 0, 100, &off, &len) == S3RANGE_NONE);
}

static void test_http_dates(void) {
  time_t t;
  const time_t want = 784111777; /* 1994-11-06 08:49:37 UTC */
  T_ASSERT(s3_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t) == 0 && t == want);
  T_ASSERT(s3_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t) == 0 && t == want);
  T_ASSERT(s3_http_date_parse("Sun Nov  6 08:49:37 1994", 24, &t) == 0 && t == want);
  T_ASSERT(s3_http_date_parse("Sun Nov 16 08:49:37 1994", 24, &t) == 0 &&
           t == want + 10 * 86400);
  T_ASSERT(s3_http_date_parse("Fri, 24 May 2013 00:00:00 GMT", 29, &t) == 0 &&
           t == 1369353600);
  T_ASSERT(s3_http_date_parse("Thursday, 01-Jan-70 00:00:00 GMT", 32, &t) == 0 && t == 0);
  T_ASSERT(s3_http_date_parse("Monday, 01-Jan-01 00:00:00 GMT", 30, &t) == 0 &&
           t == 978307200);
  T_ASSERT(s3_http_date_parse("Tue, 29 Feb 2000 12:00:00 GMT", 29, &t) == 0 &&
           t == 951825600);
  static const char *bad[] = {
      "Sun, 06 Nov 1994 08:49:37 UTC",  "Sun, 6 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:60:00 GMT",  "Sun, 31 Feb 1994 08:49:37 GMT",
      "Sat, 29 Feb 1900 00:00:00 GMT",  "Sun, 06 Foo 1994 08:49:37 GMT",
      "Xyz, 06 Nov 1994 08:49:37 GMT",  "sun, 06 Nov 1994 08:49:37 GMT",
      "Sun,06 Nov 1994 08:49:37 GMT",   "Sunday, 06 Nov 1994 08:49:37 GMT",
      "Sun, 06-Nov-94 08:49:37 GMT",    "Sun Nov 6 08:49:37 1994",
      "Sun Nov  6 08:49:37 94",         "",
      "Sun, 00 Nov 1994 08:49:37 GMT",  "1994-11-06T08:49:37Z",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (s3_http_date_parse(bad[i], strlen(bad[i]), &t) == 0)
      T_FAIL("accepted bad date \"%s\"", bad[i]);
  T_ASSERT(s3_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &t) == -1);

  char out[S3_HTTP_DATE_LEN];
  T_EQ_U64(s3_http_date_format(want, out, sizeof out), 29);
  T_EQ_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
  s3_http_date_format(0, out, sizeof out);
  T_EQ_STR(out, "Thu, 01 Jan 1970 00:00:00 GMT");
  s3_http_date_format(951825600, out, sizeof out);
  T_EQ_STR(out, "Tue, 29 Feb 2000 12:00:00 GMT");
  s3_http_date_format(-1, out, sizeof out);
  T_EQ_STR(out, "Wed, 31 Dec 1969 23:59:59 GMT");
  T_EQ_U64(s3_http_date_format(want, out, 29), 0);
  /* Round trips, and agreement with the C library. */
  for (int i = 0; i < 2000; i++) {
    time_t r = (time_t)(rnd() % 8000000000ull);
    char buf[64];
    struct tm tm;
    T_ASSERT(s3_http_date_format(r, out, sizeof out) == 29);
    gmtime_r(&r, &tm);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    T_EQ_STR(out, buf);
    T_ASSERT(s3_http_date_parse(out, 29, &t) == 0 && t == r);
  }
}

static void test_etag_match(void) {
  const char *e = "\"d41d8cd98f00b204e9800998ecf8427e\"";
  size_t el = strlen(e);
#define M(list) s3_etag_match(list, strlen(list), e, el)
  T_ASSERT(M("\"d41d8cd98f00b204e9800998ecf8427e\""));
  T_ASSERT(M("*"));
  T_ASSERT(M(" * "));
  T_ASSERT(M("W/\"d41d8cd98f00b204e9800998ecf8427e\""));
  T_ASSERT(M("\"x\", \"d41d8cd98f00b204e9800998ecf8427e\""));
  T_ASSERT(M("\"x\",W/\"d41d8cd98f00b204e9800998ecf8427e\" ,\"y\""));
  T_ASSERT(M("d41d8cd98f00b204e9800998ecf8427e")); /* unquoted, leniently */
  T_ASSERT(!M("\"d41d8cd98f00b204e9800998ecf8427\""));
  T_ASSERT(!M("\"D41D8CD98F00B204E9800998ECF8427E\""));
  T_ASSERT(!M(""));
  T_ASSERT(!M(","));
  T_ASSERT(!M("\"x\""));
  T_ASSERT(!M("\"d41d8cd98f00b204e9800998ecf8427e")); /* unterminated */
  T_ASSERT(!M("\"a\"b, \"x\""));
  T_ASSERT(M("\"a\"b, \"d41d8cd98f00b204e9800998ecf8427e\"")); /* bad entry skipped */
  T_ASSERT(!M("**"));
#undef M
  /* The stored etag may be given without quotes; multipart etags. */
  T_ASSERT(s3_etag_match("\"abc-2\"", 7, "abc-2", 5));
  T_ASSERT(!s3_etag_match("\"abc\"", 5, "abc-2", 5));
  T_ASSERT(!s3_etag_match(NULL, 0, "abc", 3));
}

static void test_conditionals(void) {
  const char *e = "\"abc\"";
  time_t mtime = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
  const char *at = "Sun, 06 Nov 1994 08:49:37 GMT";
  const char *before = "Sun, 06 Nov 1994 08:49:36 GMT";
  const char *after = "Sun, 06 Nov 1994 08:49:38 GMT";
  struct s3cond_headers h;
#define EVAL(read) s3cond_eval(&h, 1, e, 5, mtime, read)
  memset(&h, 0, sizeof h);
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  h.if_match = "\"abc\"";
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  h.if_match = "\"xyz\"";
  T_ASSERT(EVAL(1) == S3COND_PRECONDITION_FAILED);
  T_ASSERT(EVAL(0) == S3COND_PRECONDITION_FAILED);
  /* If-Match true wins over a false If-Unmodified-Since (S3 documents this). */
  h.if_match = "\"abc\"";
  h.if_unmodified_since = before;
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  h.if_match = NULL;
  T_ASSERT(EVAL(1) == S3COND_PRECONDITION_FAILED);
  h.if_unmodified_since = at;
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  h.if_unmodified_since = "garbage";
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  memset(&h, 0, sizeof h);
  h.if_none_match = "\"abc\"";
  T_ASSERT(EVAL(1) == S3COND_NOT_MODIFIED);
  T_ASSERT(EVAL(0) == S3COND_PRECONDITION_FAILED);
  h.if_none_match = "*";
  T_ASSERT(EVAL(0) == S3COND_PRECONDITION_FAILED);
  T_ASSERT(s3cond_eval(&h, 0, "", 0, 0, 0) == S3COND_PROCEED); /* create-only PUT */
  h.if_none_match = "\"xyz\"";
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  /* If-None-Match false + If-Modified-Since true -> 304 (S3 documents). */
  h.if_none_match = "\"abc\"";
  h.if_modified_since = before;
  T_ASSERT(EVAL(1) == S3COND_NOT_MODIFIED);
  /* If-None-Match present: If-Modified-Since is not evaluated. */
  h.if_none_match = "\"xyz\"";
  h.if_modified_since = after;
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  h.if_none_match = NULL;
  T_ASSERT(EVAL(1) == S3COND_NOT_MODIFIED);
  h.if_modified_since = at;
  T_ASSERT(EVAL(1) == S3COND_NOT_MODIFIED);
  h.if_modified_since = before;
  T_ASSERT(EVAL(1) == S3COND_PROCEED);
  h.if_modified_since = after;
  T_ASSERT(EVAL(0) == S3COND_PROCEED); /* writes ignore If-Modified-Since */
  memset(&h, 0, sizeof h);
  h.if_match = "*";
  T_ASSERT(EVAL(0) == S3COND_PROCEED);
  T_ASSERT(s3cond_eval(&h, 0, "", 0, 0, 0) == S3COND_PRECONDITION_FAILED);
#undef EVAL
}

/* ======================================================================
 * xmlout
 * ====================================================================== */

static void test_xml_writer(void) {
  struct s3xml x;
  char *doc;
  size_t len;
  s3xml_init(&x, 4096);
  s3xml_open(&x, "ListBucketResult", S3XML_NS);
  s3xml_elem_str(&x, "Name", "bucket");
  s3xml_elem(&x, "Key", "a&b<c>d\"e'f\r\n\tg\x01h\x7f", 18);
  s3xml_elem_u64(&x, "Size", 18446744073709551615ull);
  s3xml_elem_u64(&x, "Zero", 0);
  s3xml_elem_bool(&x, "IsTruncated", 0);
  s3xml_elem_time(&x, "LastModified", 1255369830);
  s3xml_open(&x, "Owner", NULL);
  s3xml_elem_str(&x, "ID", "\xc3\xa9t\xc3\xa9");
  s3xml_close(&x);
  s3xml_elem(&x, "Empty", "", 0);
  s3xml_close(&x);
  T_ASSERT(s3xml_finish(&x, &doc, &len) == 0);
  T_EQ_STR(doc,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
           "<Name>bucket</Name>"
           "<Key>a&amp;b&lt;c&gt;d&quot;e&apos;f&#13;&#10;&#9;g&#x01;h&#x7F;</Key>"
           "<Size>18446744073709551615</Size><Zero>0</Zero>"
           "<IsTruncated>false</IsTruncated>"
           "<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
           "<Owner><ID>\xc3\xa9t\xc3\xa9</ID></Owner><Empty></Empty>"
           "</ListBucketResult>\n");
  T_EQ_U64(len, strlen(doc));
  free(doc);

  /* Over the cap: the whole document fails, nothing leaks. */
  s3xml_init(&x, 100);
  s3xml_open(&x, "R", NULL);
  for (int i = 0; i < 50; i++) s3xml_elem_str(&x, "K", "0123456789");
  s3xml_close(&x);
  T_ASSERT(s3xml_finish(&x, &doc, &len) == -1);

  /* Unbalanced. */
  s3xml_init(&x, 1000);
  s3xml_open(&x, "R", NULL);
  T_ASSERT(s3xml_finish(&x, &doc, &len) == -1);
  s3xml_init(&x, 1000);
  s3xml_close(&x);
  T_ASSERT(s3xml_finish(&x, &doc, &len) == -1);
  /* Too deep. */
  s3xml_init(&x, 10000);
  for (int i = 0; i <= S3XML_MAX_DEPTH; i++) s3xml_open(&x, "D", NULL);
  T_ASSERT(x.err);
  s3xml_free(&x);

  char ts[32];
  T_EQ_U64(s3_iso8601_format(0, ts, sizeof ts), 24);
  T_EQ_STR(ts, "1970-01-01T00:00:00.000Z");
  s3_iso8601_format(951825599, ts, sizeof ts);
  T_EQ_STR(ts, "2000-02-29T11:59:59.000Z");
  T_EQ_U64(s3_iso8601_format(-1, ts, sizeof ts), 0);
  T_EQ_U64(s3_iso8601_format(0, ts, 24), 0);
}

/* ======================================================================
 * SigV4
 * ====================================================================== */

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 ((time_t)1369353600)
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef const char *kv_t[2];

static const char *kv_lookup(void *ctx, const char *name, size_t *len) {
  const kv_t *kv = ctx;
  for (; (*kv)[0]; kv++)
    if (strcasecmp((*kv)[0], name) == 0) {
      *len = strlen((*kv)[1]);
      return (*kv)[1];
    }
  return NULL;
}

static size_t secret_lookup(void *ctx, const char *ak, char *out, size_t cap) {
  (void)ctx;
  if (strcmp(ak, AK) != 0 || cap < sizeof SK) return 0;
  memcpy(out, SK, sizeof SK);
  return sizeof SK - 1;
}

static s3sig_result verify(const char *method, const char *target, const kv_t *kv,
                           time_t now, const char *region,
                           struct s3sig_auth *auth) {
  struct s3sig_request req = {method, target, strlen(target), kv_lookup,
                              (void *)kv, secret_lookup, NULL, now, region};
  return s3sig_verify(&req, auth);
}

static const char *auth_hdr(char *buf, size_t cap, const char *signed_headers,
                            const char *sig, const char *region) {
  snprintf(buf, cap,
           "AWS4-HMAC-SHA256 Credential=" AK "/20130524/%s/s3/aws4_request, "
           "SignedHeaders=%s, Signature=%s",
           region, signed_headers, sig);
  return buf;
}

static void test_sigv4_aws_get_object(void) {
  char a[512];
  kv_t kv[] = {
      {"Host", "examplebucket.s3.amazonaws.com"},
      {"Range", "bytes=0-9"},
      {"x-amz-content-sha256", EMPTY_SHA},
      {"x-amz-date", "20130524T000000Z"},
      {"Authorization",
       auth_hdr(a, sizeof a, "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                "us-east-1")},
      {NULL, NULL}};
  struct s3sig_auth auth;
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_OK);
  T_EQ_STR(auth.access_key, AK);
  T_EQ_STR(auth.amz_date, "20130524T000000Z");
  T_EQ_STR(auth.scope, "20130524/us-east-1/s3/aws4_request");
  T_EQ_STR(auth.region, "us-east-1");
  T_ASSERT(auth.payload == S3SIG_PAYLOAD_SHA256);
  T_EQ_STR(auth.payload_hash, EMPTY_SHA);
  T_ASSERT(!auth.presigned);
  T_ASSERT(auth.canonical_request == NULL);
  s3sig_auth_free(&auth);

  /* The configured region must match when one is configured. */
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, "us-east-1", &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, "eu-west-1", &auth) ==
           S3SIG_WRONG_REGION);
  s3sig_auth_free(&auth);

  /* Skew: 15 minutes either way is fine, a second more is not. */
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524 + 900, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524 - 900, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524 + 901, NULL, &auth) ==
           S3SIG_TIME_SKEWED);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524 - 901, NULL, &auth) ==
           S3SIG_TIME_SKEWED);
  s3sig_auth_free(&auth);

  /* Whitespace in header values is trimmed and collapsed. */
  kv[1][1] = "  bytes=0-9\t ";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);

  /* Any change breaks it, and the error carries what we computed. */
  kv[1][1] = "bytes=0-8";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  T_EQ_STR(auth.canonical_request,
           "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
           "range:bytes=0-8\nx-amz-content-sha256:" EMPTY_SHA "\n"
           "x-amz-date:20130524T000000Z\n\n"
           "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
  T_ASSERT(strncmp(auth.string_to_sign,
                   "AWS4-HMAC-SHA256\n20130524T000000Z\n"
                   "20130524/us-east-1/s3/aws4_request\n", 69) == 0);
  s3sig_auth_free(&auth);
  T_ASSERT(auth.canonical_request == NULL);
  kv[1][1] = "bytes=0-9";
  T_ASSERT(verify("GET", "/test.txt?x", kv, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("HEAD", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/Test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  s3sig_auth_free(&auth);

  /* Unknown access key. */
  char a2[512];
  snprintf(a2, sizeof a2, "%s", a);
  memcpy(strstr(a2, AK), "AKIAIOSFODNN7EXAMPLF", 20);
  kv[4][1] = a2;
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_INVALID_ACCESS_KEY);
  T_EQ_STR(auth.access_key, "AKIAIOSFODNN7EXAMPLF");
  s3sig_auth_free(&auth);
}

static void test_sigv4_aws_put_and_listing(void) {
  char a[512];
  struct s3sig_auth auth;
  /* PUT with a '$' the client encoded in the request line. */
  kv_t put[] = {
      {"Host", "examplebucket.s3.amazonaws.com"},
      {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"x-amz-content-sha256",
       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
      {"Authorization",
       auth_hdr(a, sizeof a, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                "us-east-1")},
      {NULL, NULL}};
  T_ASSERT(verify("PUT", "/test%24file.text", put, T20130524, NULL, &auth) == S3SIG_OK);
  T_EQ_STR(auth.payload_hash,
           "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  s3sig_auth_free(&auth);
  /* The same path sent raw ('$' unencoded) verifies through the
     decode-and-re-encode fallback. */
  T_ASSERT(verify("PUT", "/test$file.text", put, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  /* But the path is never double-encoded. */
  T_ASSERT(verify("PUT", "/test%2524file.text", put, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  s3sig_auth_free(&auth);

  kv_t lc[] = {
      {"Host", "examplebucket.s3.amazonaws.com"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-content-sha256", EMPTY_SHA},
      {"Authorization",
       auth_hdr(a, sizeof a, "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
                "us-east-1")},
      {NULL, NULL}};
  T_ASSERT(verify("GET", "/?lifecycle", lc, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "?lifecycle", lc, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/?lifecycle=", lc, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);

  auth_hdr(a, sizeof a, "host;x-amz-content-sha256;x-amz-date",
           "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
           "us-east-1");
  T_ASSERT(verify("GET", "/?max-keys=2&prefix=J", lc, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  /* Parameter order on the wire does not matter. */
  T_ASSERT(verify("GET", "/?prefix=J&max-keys=2", lc, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/?prefix=%4A&max-keys=%32", lc, T20130524, NULL, &auth) ==
           S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/?prefix=K&max-keys=2", lc, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/?prefix=%4&max-keys=2", lc, T20130524, NULL, &auth) ==
           S3SIG_BAD_TARGET);
  s3sig_auth_free(&auth);
}

static void test_sigv4_presigned(void) {
  kv_t kv[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {NULL, NULL}};
  const char *url =
      "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
      "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
      "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&"
      "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  struct s3sig_auth auth;
  T_ASSERT(verify("GET", url, kv, T20130524, NULL, &auth) == S3SIG_OK);
  T_ASSERT(auth.presigned);
  T_ASSERT(auth.payload == S3SIG_PAYLOAD_UNSIGNED);
  T_EQ_STR(auth.access_key, AK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", url, kv, T20130524 + 86400, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", url, kv, T20130524 + 86401, NULL, &auth) == S3SIG_EXPIRED);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", url, kv, T20130524 - 900, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", url, kv, T20130524 - 901, NULL, &auth) == S3SIG_NOT_YET_VALID);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("PUT", url, kv, T20130524, NULL, &auth) == S3SIG_SIGNATURE_MISMATCH);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", url, kv, T20130524, "eu-west-1", &auth) == S3SIG_QUERY_MALFORMED);
  s3sig_auth_free(&auth);
  /* An Authorization header as well: ambiguous. */
  kv_t both[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"Authorization", "AWS4-HMAC-SHA256 Credential=x"},
                 {NULL, NULL}};
  T_ASSERT(verify("GET", url, both, T20130524, NULL, &auth) == S3SIG_AMBIGUOUS);
  s3sig_auth_free(&auth);

  /* Parameter-level errors (the signature check never runs). */
  static const struct {
    const char *target;
    s3sig_result rc;
  } bad[] = {
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256", S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" EMPTY_SHA,
       S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=0&X-Amz-SignedHeaders=host&X-Amz-Signature=" EMPTY_SHA,
       S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=" EMPTY_SHA,
       S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=-1&X-Amz-SignedHeaders=host&X-Amz-Signature=" EMPTY_SHA,
       S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=2013-05-24&"
       "X-Amz-Expires=10&X-Amz-SignedHeaders=host&X-Amz-Signature=" EMPTY_SHA,
       S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=10&X-Amz-SignedHeaders=host&X-Amz-Signature=abc",
       S3SIG_QUERY_MALFORMED},
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=10&X-Amz-SignedHeaders=x-amz-date&X-Amz-Signature=" EMPTY_SHA,
       S3SIG_QUERY_MALFORMED}, /* host not signed */
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256",
       S3SIG_QUERY_MALFORMED}, /* duplicate */
      {"/t?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
       "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
       "X-Amz-Expires=10&X-Amz-SignedHeaders=host&X-Amz-Signature=" EMPTY_SHA
       "&X-Amz-Content-Sha256=STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
       S3SIG_BAD_CONTENT_SHA256},
      {"/t?X-Amz-Credential=%zz", S3SIG_BAD_TARGET},
      {"/t?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=abc",
       S3SIG_UNSUPPORTED},
      {"/t?prefix=x", S3SIG_MISSING},
      {"/t", S3SIG_MISSING},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s3sig_result rc = verify("GET", bad[i].target, kv, T20130524, NULL, &auth);
    s3sig_auth_free(&auth);
    if (rc != bad[i].rc) T_FAIL("case %zu: rc %d, want %d", i, rc, bad[i].rc);
  }

  struct s3sig_parsed ps;
  const char *q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524"
                  "%2Fr%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires="
                  "604800&X-Amz-SignedHeaders=Host%3BX-Amz-Date&X-Amz-Signature=" EMPTY_SHA;
  T_ASSERT(s3sig_parse_presigned(q, strlen(q), &ps) == S3SIG_OK);
  T_EQ_STR(ps.access_key, "AK");
  T_EQ_STR(ps.region, "r");
  T_EQ_STR(ps.signed_headers, "host;x-amz-date");
  T_EQ_U64(ps.expires, 604800);
  T_EQ_STR(ps.amz_date, "20130524T000000Z");
}

static void test_sigv4_more_vectors(void) {
  char a[512];
  struct s3sig_auth auth;
  /* Date header only (no x-amz-date), UNSIGNED-PAYLOAD. */
  kv_t d[] = {{"Host", "localhost:9000"},
              {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
              {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
              {"Authorization",
               auth_hdr(a, sizeof a, "date;host;x-amz-content-sha256",
                        "5566c9b86eae7d898f668755e9f8fe0e0717e6098b4fffc6cf3adcf589afeabd",
                        "us-east-1")},
              {NULL, NULL}};
  T_ASSERT(verify("GET", "/bucket/key", d, T20130524, NULL, &auth) == S3SIG_OK);
  T_EQ_STR(auth.amz_date, "20130524T000000Z");
  T_ASSERT(auth.payload == S3SIG_PAYLOAD_UNSIGNED);
  s3sig_auth_free(&auth);

  /* Query canonicalisation: '+' is a space, %7e becomes '~', values of
     bare names are empty, sorting is by byte (upper case first). */
  kv_t q[] = {{"Host", "localhost:9000"},
              {"x-amz-content-sha256", EMPTY_SHA},
              {"x-amz-date", "20130524T000000Z"},
              {"Authorization",
               auth_hdr(a, sizeof a, "host;x-amz-content-sha256;x-amz-date",
                        "589f800144b2a71ecd6104ffb0d452699e48e30db556001b428a8e8d8eb69b57",
                        "us-east-1")},
              {NULL, NULL}};
  const char *target = "/bucket?prefix=a%20b&delimiter=%2F&list-type=2&x=%7e&plus=a+b"
                       "&empty&uploads&z=%E2%82%AC&A=1";
  T_ASSERT(verify("GET", target, q, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  struct s3buf cb;
  s3buf_init(&cb, 4096);
  struct s3sig_request req = {"GET", target, strlen(target), kv_lookup, (void *)q,
                              NULL, NULL, 0, NULL};
  T_ASSERT(s3sig_canonical_request(&req, "host", "UNSIGNED-PAYLOAD", 0, 0, &cb) == S3SIG_OK);
  T_EQ_STR(cb.p, "GET\n/bucket\nA=1&delimiter=%2F&empty=&list-type=2&plus=a%20b&"
                 "prefix=a%20b&uploads=&x=~&z=%E2%82%AC\nhost:localhost:9000\n\n"
                 "host\nUNSIGNED-PAYLOAD");
  s3buf_free(&cb);
  /* Duplicate names sort by value. */
  s3buf_init(&cb, 4096);
  req.target = "/?b=2&a=z&a=y";
  req.target_len = strlen(req.target);
  T_ASSERT(s3sig_canonical_request(&req, "host", "X", 0, 0, &cb) == S3SIG_OK);
  T_ASSERT(strstr(cb.p, "\na=y&a=z&b=2\n") != NULL);
  s3buf_free(&cb);

  /* The raw path comes first; a client that sent '!' '(' ')' raw but signed
     them encoded still verifies through the fallback. */
  kv_t f[] = {{"Host", "localhost:9000"},
              {"x-amz-content-sha256", EMPTY_SHA},
              {"x-amz-date", "20130524T000000Z"},
              {"Authorization",
               auth_hdr(a, sizeof a, "host;x-amz-content-sha256;x-amz-date",
                        "9f7083f0afbbbed9cfadd51e983cad8967f7d0e58410eefe9fcf518a71524616",
                        "us-east-1")},
              {NULL, NULL}};
  T_ASSERT(verify("GET", "/bucket/a%21b%28c%29", f, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/bucket/a!b(c)", f, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);
  T_ASSERT(verify("GET", "/bucket/a%21b%28c%29/", f, T20130524, NULL, &auth) ==
           S3SIG_SIGNATURE_MISMATCH);
  /* The error shows the raw form. */
  T_ASSERT(strncmp(auth.canonical_request, "GET\n/bucket/a%21b%28c%29/\n", 26) == 0);
  s3sig_auth_free(&auth);

  /* Another region, a signed x-amz-meta header with inner spaces. */
  kv_t r[] = {{"Host", "localhost:9000"},
              {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
              {"x-amz-date", "20130524T000000Z"},
              {"X-Amz-Meta-A", " one   two \t three "},
              {"Authorization",
               auth_hdr(a, sizeof a, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-a",
                        "25b1ba9560614c598cc288082bce62ad6901cf6ac579073c390db339e3ae518e",
                        "garage")},
              {NULL, NULL}};
  T_ASSERT(verify("PUT", "/bucket/k", r, T20130524, "garage", &auth) == S3SIG_OK);
  T_EQ_STR(auth.region, "garage");
  s3sig_auth_free(&auth);
}

static void test_sigv4_header_errors(void) {
  struct s3sig_auth auth;
  static const char *sig =
      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  char good[512];
  snprintf(good, sizeof good,
           "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
           "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=%s",
           sig);
  kv_t kv[] = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", EMPTY_SHA},
               {"x-amz-date", "20130524T000000Z"},
               {"Authorization", good},
               {NULL, NULL}};
  /* No spaces after the commas is fine too. */
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_OK);
  s3sig_auth_free(&auth);

  static const struct {
    const char *authz;
    s3sig_result rc;
  } bad[] = {
      {"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", S3SIG_UNSUPPORTED},
      {"Bearer abc", S3SIG_UNSUPPORTED},
      {"AWS4-ECDSA-P256-SHA256 Credential=x", S3SIG_UNSUPPORTED},
      {"", S3SIG_UNSUPPORTED},
      {"AWS4-HMAC-SHA256", S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 ", S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host", S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host, Signature=abc", S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA ", Signature=" EMPTY_SHA,
       S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA ", Extra=1", S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/2013052/us-east-1/s3/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524//s3/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_reques, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host;;range, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=ho st, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=range;x-amz-date, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/ec2/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED},
      {"AWS4-HMAC-SHA256 Credential=" AK "/20130525/us-east-1/s3/aws4_request, "
       "SignedHeaders=host, Signature=" EMPTY_SHA, S3SIG_MALFORMED}, /* date */
      {"AWS4-HMAC-SHA256 Credential " AK, S3SIG_MALFORMED},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    kv[4][1] = bad[i].authz;
    s3sig_result rc = verify("GET", "/test.txt", kv, T20130524, NULL, &auth);
    s3sig_auth_free(&auth);
    if (rc != bad[i].rc) T_FAIL("case %zu: rc %d, want %d", i, rc, bad[i].rc);
  }
  kv[4][1] = good;

  /* Access keys may contain '/', the credential is split from the right. */
  struct s3sig_parsed ps;
  const char *h = "AWS4-HMAC-SHA256 Credential=a/b/20130524/r/s3/aws4_request,"
                  "SignedHeaders=Host;X-Amz-Date,Signature=" EMPTY_SHA;
  T_ASSERT(s3sig_parse_authorization(h, strlen(h), &ps) == S3SIG_OK);
  T_EQ_STR(ps.access_key, "a/b");
  T_EQ_STR(ps.signed_headers, "host;x-amz-date");
  /* Caps. */
  char huge[S3SIG_MAX_AUTH_HEADER + 2];
  memset(huge, 'a', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  T_ASSERT(s3sig_parse_authorization(huge, strlen(huge), &ps) == S3SIG_TOO_LARGE);
  char longsh[S3SIG_MAX_SIGNED_HEADERS + 200];
  int n = snprintf(longsh, sizeof longsh,
                   "AWS4-HMAC-SHA256 Credential=a/20130524/r/s3/aws4_request,"
                   "Signature=" EMPTY_SHA ",SignedHeaders=host");
  while ((size_t)n < sizeof longsh - 3) {
    longsh[n++] = ';';
    longsh[n++] = 'x';
  }
  longsh[n] = '\0';
  T_ASSERT(s3sig_parse_authorization(longsh, (size_t)n, &ps) == S3SIG_MALFORMED);

  /* Payload declarations. */
  kv[2][1] = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_UNSUPPORTED_PAYLOAD);
  s3sig_auth_free(&auth);
  kv[2][1] = "streaming-aws4-hmac-sha256-payload";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_BAD_CONTENT_SHA256);
  s3sig_auth_free(&auth);
  kv[2][1] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_BAD_CONTENT_SHA256);
  s3sig_auth_free(&auth);
  kv[2][0] = "x-amz-content-sha255";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) ==
           S3SIG_MISSING_CONTENT_SHA256);
  s3sig_auth_free(&auth);
  kv[2][0] = "x-amz-content-sha256";
  kv[2][1] = EMPTY_SHA;
  /* Dates. */
  kv[3][1] = "20130524T000000";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_MISSING_DATE);
  s3sig_auth_free(&auth);
  kv[3][1] = "20130532T000000Z";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_MISSING_DATE);
  s3sig_auth_free(&auth);
  kv[3][0] = "x-amz-datum";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_MISSING_DATE);
  s3sig_auth_free(&auth);
  kv[3][0] = "x-amz-date";
  kv[3][1] = "20130524T000000Z";
  /* Anonymous. */
  kv[4][0] = "X-Not-Authorization";
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_MISSING);
  s3sig_auth_free(&auth);
  /* Target caps. */
  kv[4][0] = "Authorization";
  char *longt = malloc(S3SIG_MAX_TARGET + 2);
  T_ASSERT(longt);
  memset(longt, 'a', S3SIG_MAX_TARGET + 1);
  longt[0] = '/';
  longt[S3SIG_MAX_TARGET + 1] = '\0';
  T_ASSERT(verify("GET", longt, kv, T20130524, NULL, &auth) == S3SIG_TOO_LARGE);
  s3sig_auth_free(&auth);
  free(longt);
  char many[2000];
  size_t mlen = 0;
  many[mlen++] = '/';
  many[mlen++] = '?';
  for (int i = 0; i <= S3SIG_MAX_QUERY_PARAMS; i++) {
    memcpy(many + mlen, "a&", 2);
    mlen += 2;
  }
  many[mlen] = '\0';
  T_ASSERT(verify("GET", many, kv, T20130524, NULL, &auth) == S3SIG_BAD_TARGET);
  s3sig_auth_free(&auth);
  /* A huge signed header value. */
  char *hv = malloc(S3SIG_MAX_HEADER_VALUE + 2);
  T_ASSERT(hv);
  memset(hv, 'v', S3SIG_MAX_HEADER_VALUE + 1);
  hv[S3SIG_MAX_HEADER_VALUE + 1] = '\0';
  kv[1][1] = hv;
  T_ASSERT(verify("GET", "/test.txt", kv, T20130524, NULL, &auth) == S3SIG_TOO_LARGE);
  s3sig_auth_free(&auth);
  free(hv);

  /* Error table. */
  struct s3sig_error e = s3sig_error(S3SIG_SIGNATURE_MISMATCH);
  T_EQ_STR(e.code, "SignatureDoesNotMatch");
  T_EQ_U64(e.status, 403);
  T_EQ_STR(s3sig_error(S3SIG_TIME_SKEWED).code, "RequestTimeTooSkewed");
  T_EQ_STR(s3sig_error(S3SIG_INVALID_ACCESS_KEY).code, "InvalidAccessKeyId");
  T_EQ_STR(s3sig_error(S3SIG_MALFORMED).code, "AuthorizationHeaderMalformed");
  T_EQ_U64(s3sig_error(S3SIG_MALFORMED).status, 400);
  T_EQ_STR(s3sig_error(S3SIG_EXPIRED).code, "AccessDenied");
  T_EQ_STR(s3sig_error(S3SIG_QUERY_MALFORMED).code, "AuthorizationQueryParametersError");
  T_EQ_U64(s3sig_error(S3SIG_UNSUPPORTED_PAYLOAD).status, 501);
}

static void test_sigv4_helpers(void) {
  time_t t;
  char out[17];
  T_ASSERT(s3sig_parse_amz_date("20130524T000000Z", 16, &t) == 0 && t == T20130524);
  T_ASSERT(s3sig_parse_amz_date("20000229T235959Z", 16, &t) == 0);
  T_ASSERT(s3sig_parse_amz_date("19000229T000000Z", 16, &t) == -1);
  T_ASSERT(s3sig_parse_amz_date("20130524T240000Z", 16, &t) == -1);
  T_ASSERT(s3sig_parse_amz_date("20130524 000000Z", 16, &t) == -1);
  T_ASSERT(s3sig_parse_amz_date("2013052400000Z", 14, &t) == -1);
  T_ASSERT(s3sig_parse_amz_date("2013-05-24T000Z", 15, &t) == -1);
  s3sig_format_amz_date(T20130524 + 3661, out);
  T_EQ_STR(out, "20130524T010101Z");
  uint8_t key[32];
  char hex[65];
  s3sig_signing_key(SK, strlen(SK), "20130524", "us-east-1", "s3", key);
  s3_hex(key, 32, hex);
  /* Checked against the Python reference implementation. */
  T_EQ_STR(hex, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
  s3sig_hmac_hex(key, "x", 1, hex);
  T_EQ_U64(strlen(hex), 64);
  s3_sha256_hex("", 0, hex);
  T_EQ_STR(hex, EMPTY_SHA);
  uint8_t raw[4];
  T_ASSERT(s3_unhex("00fFaB10", 8, raw, 4) == 0 && raw[1] == 0xff && raw[2] == 0xab);
  T_ASSERT(s3_unhex("00fFaB1", 7, raw, 4) == -1);
  T_ASSERT(s3_unhex("00fFaBxx", 8, raw, 4) == -1);
}

/* ======================================================================
 * aws-chunked
 * ====================================================================== */

struct sink {
  uint8_t *p;
  size_t len, cap;
  int abort_after; /* abort when len would exceed this (0: never) */
};

static int sink_data(void *ctx, const uint8_t *p, size_t n) {
  struct sink *s = ctx;
  if (s->abort_after && s->len + n > (size_t)s->abort_after) return 1;
  if (s->len + n > s->cap) {
    size_t c = s->cap ? s->cap * 2 : 1024;
    while (c < s->len + n) c *= 2;
    s->p = realloc(s->p, c);
    if (!s->p) return 1;
    s->cap = c;
  }
  memcpy(s->p + s->len, p, n);
  s->len += n;
  return 0;
}

struct body {
  uint8_t *p;
  size_t len, cap;
};

static void body_add(struct body *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap * 2 : 1024;
    while (c < b->len + n) c *= 2;
    b->p = realloc(b->p, c);
    T_ASSERT(b->p);
    b->cap = c;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void body_str(struct body *b, const char *s) { body_add(b, s, strlen(s)); }

/* The AWS example signing context. */
static uint8_t ex_key[32];
static const char *ex_date = "20130524T000000Z";
static const char *ex_scope = "20130524/us-east-1/s3/aws4_request";

static void ex_init(void) {
  s3sig_signing_key(SK, strlen(SK), "20130524", "us-east-1", "s3", ex_key);
}

/* Sign one chunk the way a client does (string to sign by hand). */
static void sign_chunk(const char *prev, const void *data, size_t n, char out[65]) {
  char h[65], sts[512];
  s3_sha256_hex(data, n, h);
  int k = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s",
                   ex_date, ex_scope, prev, EMPTY_SHA, h);
  s3sig_hmac_hex(ex_key, sts, (size_t)k, out);
}

static void sign_trailer(const char *prev, const char *canon, char out[65]) {
  char h[65], sts[512];
  s3_sha256_hex(canon, strlen(canon), h);
  int k = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s",
                   ex_date, ex_scope, prev, h);
  s3sig_hmac_hex(ex_key, sts, (size_t)k, out);
}

/* Build a signed aws-chunked body of the given chunk sizes over data. */
static void build_signed(struct body *b, const char *seed, const uint8_t *data,
                         const size_t *sizes, size_t nsizes, const char *trailers,
                         int padded) {
  char prev[65], sig[65], line[128];
  snprintf(prev, sizeof prev, "%s", seed);
  size_t off = 0;
  for (size_t i = 0; i <= nsizes; i++) {
    size_t n = i < nsizes ? sizes[i] : 0;
    sign_chunk(prev, data + off, n, sig);
    snprintf(line, sizeof line, "%zx;chunk-signature=%s\r\n", n, sig);
    body_str(b, line);
    body_add(b, data + off, n);
    if (n) body_str(b, "\r\n");
    off += n;
    memcpy(prev, sig, 65);
  }
  if (trailers) {
    /* trailers: "name:value\n" lines (already canonical) */
    if (padded) body_str(b, "\r\n");
    for (const char *p = trailers; *p;) {
      const char *e = strchr(p, '\n');
      body_add(b, p, (size_t)(e - p));
      body_str(b, "\r\n");
      p = e + 1;
    }
    sign_trailer(prev, trailers, sig);
    body_str(b, "x-amz-trailer-signature:");
    body_str(b, sig);
    body_str(b, "\r\n");
  }
  body_str(b, "\r\n");
}

static void cfg_signed(struct s3chunk_config *cfg, unsigned flags, const char *seed,
                       struct sink *s) {
  memset(cfg, 0, sizeof *cfg);
  cfg->flags = flags;
  cfg->signing_key = ex_key;
  cfg->amz_date = ex_date;
  cfg->scope = ex_scope;
  cfg->seed_signature = seed;
  cfg->decoded_length = -1;
  cfg->on_data = sink_data;
  cfg->ctx = s;
}

/* Feed a body in slices: mode 0 all at once, 1 byte by byte, else random. */
static s3chunk_result feed_body(struct s3chunk *d, const uint8_t *p, size_t n,
                                int mode) {
  size_t i = 0;
  while (i < n) {
    size_t k = mode == 0 ? n : mode == 1 ? 1 : 1 + (size_t)(rnd() % 700);
    if (k > n - i) k = n - i;
    s3chunk_result rc = s3chunk_feed(d, p + i, k);
    if (rc) return rc;
    i += k;
  }
  return s3chunk_finish(d);
}

#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define TSEED "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"

static void aws_example_body(struct body *b) {
  uint8_t *a = malloc(65536);
  T_ASSERT(a);
  memset(a, 'a', 65536);
  body_str(b, "10000;chunk-signature="
              "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
  body_add(b, a, 65536);
  body_str(b, "\r\n400;chunk-signature="
              "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
  body_add(b, a, 1024);
  body_str(b, "\r\n0;chunk-signature="
              "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
  free(a);
}

static void test_chunked_aws_seed_signature(void) {
  /* The request of the AWS streaming example: its signature is the seed. */
  char a[512];
  kv_t kv[] = {
      {"Host", "s3.amazonaws.com"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
      {"Content-Encoding", "aws-chunked"},
      {"x-amz-decoded-content-length", "66560"},
      {"Content-Length", "66824"},
      {"Authorization",
       auth_hdr(a, sizeof a,
                "content-encoding;content-length;host;x-amz-content-sha256;"
                "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                SEED, "us-east-1")},
      {NULL, NULL}};
  struct s3sig_auth auth;
  T_ASSERT(verify("PUT", "/examplebucket/chunkObject.txt", kv, T20130524, NULL,
                  &auth) == S3SIG_OK);
  T_ASSERT(auth.payload == S3SIG_PAYLOAD_STREAMING);
  T_EQ_STR(auth.signature, SEED);

  /* Decode the example body with the context the verifier produced. */
  struct body b = {0};
  aws_example_body(&b);
  T_EQ_U64(b.len, 66824); /* the example's Content-Length */
  struct s3chunk_config cfg;
  T_ASSERT(s3chunk_config_from_auth(&cfg, &auth, 66560) == 0);
  T_ASSERT(cfg.flags == S3CHUNK_SIGNED);
  struct sink s = {0};
  cfg.on_data = sink_data;
  cfg.ctx = &s;
  struct s3chunk d;
  s3chunk_init(&d, &cfg);
  s3sig_auth_free(&auth); /* the decoder keeps its own copy */
  T_ASSERT(feed_body(&d, b.p, b.len, 0) == S3CHUNK_OK);
  T_ASSERT(s3chunk_done(&d));
  T_EQ_U64(s.len, 66560);
  for (size_t i = 0; i < s.len; i++) T_ASSERT(s.p[i] == 'a');
  s3chunk_wipe(&d);
  free(s.p);
  free(b.p);
  struct s3sig_auth plain;
  memset(&plain, 0, sizeof plain);
  plain.payload = S3SIG_PAYLOAD_UNSIGNED;
  T_ASSERT(s3chunk_config_from_auth(&cfg, &plain, -1) == -1);
  plain.payload = S3SIG_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
  T_ASSERT(s3chunk_config_from_auth(&cfg, &plain, -1) == 0 &&
           cfg.flags == S3CHUNK_TRAILER);
}

static void test_chunked_aws_example_slices(void) {
  ex_init();
  struct body b = {0};
  aws_example_body(&b);
  for (int mode = 0; mode < 8; mode++) {
    struct sink s = {0};
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED, SEED, &s);
    cfg.decoded_length = 66560;
    s3chunk_init(&d, &cfg);
    s3chunk_result rc = feed_body(&d, b.p, b.len, mode);
    if (rc) T_FAIL("mode %d: %s", mode, s3chunk_strerror(rc));
    T_EQ_U64(s.len, 66560);
    for (size_t i = 0; i < s.len; i++) T_ASSERT(s.p[i] == 'a');
    free(s.p);
  }
  /* A flipped data byte, a flipped signature digit, a wrong seed. */
  for (int which = 0; which < 4; which++) {
    struct body c = {0};
    body_add(&c, b.p, b.len);
    size_t last = c.len - 6; /* inside the final chunk's signature */
    if (which == 0) c.p[100] ^= 1;
    if (which == 1) c.p[30] = c.p[30] == 'a' ? 'b' : 'a';
    if (which == 2) c.p[last] = c.p[last] == '0' ? '1' : '0';
    struct sink s = {0};
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED,
               which == 3 ? "5f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
                          : SEED,
               &s);
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, c.p, c.len, 2) == S3CHUNK_BAD_SIGNATURE);
    /* Sticky. */
    T_ASSERT(s3chunk_feed(&d, "x", 1) == S3CHUNK_BAD_SIGNATURE);
    T_ASSERT(s3chunk_finish(&d) == S3CHUNK_BAD_SIGNATURE);
    free(s.p);
    free(c.p);
  }
  free(b.p);
}

static void test_chunked_aws_trailer_example(void) {
  ex_init();
  uint8_t *a = malloc(65536);
  T_ASSERT(a);
  memset(a, 'a', 65536);
  for (int padded = 0; padded < 2; padded++) {
    struct body b = {0};
    body_str(&b, "10000;chunk-signature="
                 "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n");
    body_add(&b, a, 65536);
    body_str(&b, "\r\n400;chunk-signature="
                 "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n");
    body_add(&b, a, 1024);
    body_str(&b, "\r\n0;chunk-signature="
                 "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n");
    if (padded) body_str(&b, "\r\n");
    body_str(&b, "x-amz-checksum-crc32c:sOO8/Q==\r\n"
                 "x-amz-trailer-signature:"
                 "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n");
    for (int mode = 0; mode < 4; mode++) {
      struct sink s = {0};
      struct s3chunk_config cfg;
      struct s3chunk d;
      cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, TSEED, &s);
      cfg.decoded_length = 66560;
      s3chunk_init(&d, &cfg);
      s3chunk_result rc = feed_body(&d, b.p, b.len, mode);
      if (rc) T_FAIL("padded %d mode %d: %s", padded, mode, s3chunk_strerror(rc));
      T_EQ_U64(s.len, 66560);
      const char *v = s3chunk_trailer_value(&d, "x-amz-checksum-crc32c");
      T_ASSERT(v);
      T_EQ_STR(v, "sOO8/Q==");
      T_ASSERT(s3chunk_trailer_value(&d, "x-amz-trailer-signature") == NULL);
      /* What the server then does: compare with its own CRC32C. */
      uint32_t crc = s3ck_crc32c(0, s.p, s.len);
      uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                       (uint8_t)crc};
      T_ASSERT(s3ck_b64_equal(v, strlen(v), be, 4));
      free(s.p);
    }
    /* A changed trailer value fails the trailer signature. */
    uint8_t *t = (uint8_t *)memmem(b.p, b.len, "sOO8", 4);
    T_ASSERT(t);
    t[0] = 't';
    struct sink s = {0};
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, TSEED, &s);
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, b.p, b.len, 0) == S3CHUNK_BAD_SIGNATURE);
    free(s.p);
    free(b.p);
  }
  free(a);
}

static void test_chunked_signed_built(void) {
  ex_init();
  uint8_t data[4096];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)rnd();
  size_t sizes[] = {1000, 1, 0x7ff, 0, 0};
  /* (the 0-size entries end the list early: only 3 data chunks) */
  struct body b = {0};
  build_signed(&b, SEED, data, sizes, 3, "x-amz-checksum-crc64nvme:AAAAAAAAAAA=\n", 0);
  size_t total = 1000 + 1 + 0x7ff;
  for (int mode = 0; mode < 6; mode++) {
    struct sink s = {0};
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, &s);
    cfg.decoded_length = (int64_t)total;
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, b.p, b.len, mode) == S3CHUNK_OK);
    T_EQ_U64(s.len, total);
    T_ASSERT(memcmp(s.p, data, total) == 0);
    T_EQ_STR(s3chunk_trailer_value(&d, "x-amz-checksum-crc64nvme"), "AAAAAAAAAAA=");
    free(s.p);
  }
  /* Every strict prefix is truncated (never OK, never another error). */
  for (size_t cut = 0; cut < b.len; cut++) {
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, NULL);
    cfg.on_data = NULL;
    s3chunk_init(&d, &cfg);
    s3chunk_result rc = s3chunk_feed(&d, b.p, cut);
    T_ASSERT(rc == S3CHUNK_OK);
    rc = s3chunk_finish(&d);
    if (rc != S3CHUNK_TRUNCATED) T_FAIL("cut %zu: %s", cut, s3chunk_strerror(rc));
  }
  /* Wrong decoded length, both ways. */
  for (int delta = -1; delta <= 1; delta += 2) {
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, NULL);
    cfg.on_data = NULL;
    cfg.decoded_length = (int64_t)total + delta;
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, b.p, b.len, 1) == S3CHUNK_LENGTH_MISMATCH);
  }
  /* Trailing garbage after the end. */
  {
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, NULL);
    cfg.on_data = NULL;
    s3chunk_init(&d, &cfg);
    T_ASSERT(s3chunk_feed(&d, b.p, b.len) == S3CHUNK_OK);
    T_ASSERT(s3chunk_done(&d));
    T_ASSERT(s3chunk_feed(&d, "\r\n", 2) == S3CHUNK_MALFORMED);
  }
  /* Abort from the consumer. */
  {
    struct sink s = {0};
    s.abort_after = 1500;
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, &s);
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, b.p, b.len, 1) == S3CHUNK_ABORTED);
    T_EQ_U64(s.len, 1500);
    free(s.p);
  }
  /* max_chunk. */
  {
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, NULL);
    cfg.on_data = NULL;
    cfg.max_chunk = 1500;
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, b.p, b.len, 0) == S3CHUNK_TOO_LARGE);
  }
  free(b.p);

  /* Trailer signature missing / trailers in the wrong mode. */
  struct body m = {0};
  build_signed(&m, SEED, data, sizes, 1, NULL, 0);
  /* m ends "0;chunk-signature=...\r\n\r\n"; insert an unsigned trailer. */
  struct body m2 = {0};
  body_add(&m2, m.p, m.len - 2);
  body_str(&m2, "x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
  {
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, NULL);
    cfg.on_data = NULL;
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, m2.p, m2.len, 0) == S3CHUNK_BAD_SIGNATURE);
    cfg.flags = S3CHUNK_SIGNED; /* trailers not announced */
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, m2.p, m2.len, 0) == S3CHUNK_MALFORMED);
    /* Without trailers the plain signed body is fine in both modes. */
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, m.p, m.len, 1) == S3CHUNK_OK);
    cfg.flags = S3CHUNK_SIGNED | S3CHUNK_TRAILER;
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, m.p, m.len, 1) == S3CHUNK_OK);
  }
  free(m.p);
  free(m2.p);
}

static void test_chunked_unsigned(void) {
  const char *body = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n"
                     "x-amz-checksum-crc32:NSRBwg==\r\n\r\n";
  size_t n = strlen(body);
  for (int mode = 0; mode < 4; mode++) {
    struct sink s = {0};
    struct s3chunk_config cfg = {0};
    struct s3chunk d;
    cfg.flags = S3CHUNK_TRAILER;
    cfg.decoded_length = 13;
    cfg.on_data = sink_data;
    cfg.ctx = &s;
    s3chunk_init(&d, &cfg);
    T_ASSERT(feed_body(&d, (const uint8_t *)body, n, mode) == S3CHUNK_OK);
    T_EQ_U64(s.len, 13);
    T_ASSERT(memcmp(s.p, "abc0123456789", 13) == 0);
    T_EQ_STR(s3chunk_trailer_value(&d, "x-amz-checksum-crc32"), "NSRBwg==");
    free(s.p);
  }
  for (size_t cut = 0; cut < n; cut++) {
    struct s3chunk_config cfg = {0};
    struct s3chunk d;
    cfg.flags = S3CHUNK_TRAILER;
    cfg.decoded_length = -1;
    s3chunk_init(&d, &cfg);
    T_ASSERT(s3chunk_feed(&d, body, cut) == S3CHUNK_OK);
    if (s3chunk_finish(&d) != S3CHUNK_TRUNCATED) T_FAIL("cut %zu", cut);
  }

  static const struct {
    const char *body;
    unsigned flags;
    s3chunk_result rc;
  } cases[] = {
      /* fine */
      {"0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_OK},
      {"0\r\n\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_OK},
      {"000003\r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_OK},
      {"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32 :  AAAAAA== \r\n\r\n", S3CHUNK_TRAILER,
       S3CHUNK_MALFORMED}, /* space before ':' is not a token */
      {"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32:  AAAAAA== \r\n\r\n", S3CHUNK_TRAILER,
       S3CHUNK_OK},
      /* framing */
      {"zz\r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"\r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3;x=y\r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3 \r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3\rabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3\r\nabcd\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3\r\nab\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3\r\nabc\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"3\r\nabc\r0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"0000000000000000003\r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"10000000000000000\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"ffffffffffffffff\r\n", S3CHUNK_TRAILER, S3CHUNK_TOO_LARGE},
      {"3;chunk-signature=" EMPTY_SHA "\r\nabc\r\n0\r\n\r\n", S3CHUNK_TRAILER,
       S3CHUNK_MALFORMED},
      {"0\r\n\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_OK}, /* padding + end */
      {"0\r\n\r\n\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"0\r\n\r\nX", S3CHUNK_TRAILER, S3CHUNK_TRUNCATED},
      {"0\r\nnocolon\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"0\r\n:value\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"0\r\nx-a:1\r\nx-a:2\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"0\r\nx-a:\x01\r\n\r\n", S3CHUNK_TRAILER, S3CHUNK_MALFORMED},
      {"0\r\nx-amz-trailer-signature:" EMPTY_SHA "\r\n\r\n", S3CHUNK_TRAILER,
       S3CHUNK_MALFORMED}, /* no signature in the unsigned form */
      {"0\r\nx-a:1\r\n\r\n", 0, S3CHUNK_MALFORMED}, /* not announced */
      {"0\r\n\r\n", 0, S3CHUNK_OK},
      {"0\r\n\r\nx", 0, S3CHUNK_MALFORMED},
      {"0\r\n", 0, S3CHUNK_TRUNCATED},
      {"0\r\n\r", 0, S3CHUNK_TRUNCATED},
      {"", 0, S3CHUNK_TRUNCATED},
      {"0\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\ne:5\r\nf:6\r\ng:7\r\nh:8\r\ni:9\r\n\r\n",
       S3CHUNK_TRAILER, S3CHUNK_TOO_LARGE},
      {"0\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\ne:5\r\nf:6\r\ng:7\r\nh:8\r\n\r\n",
       S3CHUNK_TRAILER, S3CHUNK_OK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int mode = 0; mode < 2; mode++) {
      struct s3chunk_config cfg = {0};
      struct s3chunk d;
      cfg.flags = cases[i].flags;
      cfg.decoded_length = -1;
      s3chunk_init(&d, &cfg);
      s3chunk_result rc =
          feed_body(&d, (const uint8_t *)cases[i].body, strlen(cases[i].body), mode);
      if (rc != cases[i].rc)
        T_FAIL("case %zu mode %d: %s, want %s", i, mode, s3chunk_strerror(rc),
               s3chunk_strerror(cases[i].rc));
    }
  }

  /* Line caps. */
  char line[S3CHUNK_MAX_TRAILER_LINE + 16];
  struct s3chunk_config cfg = {0};
  struct s3chunk d;
  cfg.flags = S3CHUNK_TRAILER;
  cfg.decoded_length = -1;
  memset(line, '0', sizeof line);
  s3chunk_init(&d, &cfg);
  T_ASSERT(s3chunk_feed(&d, line, S3CHUNK_MAX_HEADER_LINE + 1) == S3CHUNK_MALFORMED);
  s3chunk_init(&d, &cfg);
  T_ASSERT(s3chunk_feed(&d, "0\r\nx-a:", 7) == S3CHUNK_OK);
  memset(line, 'v', sizeof line);
  T_ASSERT(s3chunk_feed(&d, line, sizeof line) == S3CHUNK_MALFORMED);
  /* A value longer than the value cap but within the line cap. */
  s3chunk_init(&d, &cfg);
  T_ASSERT(s3chunk_feed(&d, "0\r\nx-a:", 7) == S3CHUNK_OK);
  T_ASSERT(s3chunk_feed(&d, line, S3CHUNK_MAX_TRAILER_VALUE + 1) == S3CHUNK_OK);
  T_ASSERT(s3chunk_feed(&d, "\r\n", 2) == S3CHUNK_MALFORMED);
}

static void test_chunked_signed_garbled(void) {
  ex_init();
  char sig[65], body[512];
  sign_chunk(SEED, "abc", 3, sig);
  static const char *fmts[] = {
      "3;chunk-signature=%s\r\nabc\r\n",               /* ok so far */
      "3;chunk-signature= %s\r\nabc\r\n",              /* space */
      "3;chunk-signature=%s \r\nabc\r\n",
      "3;Chunk-Signature=%s\r\nabc\r\n",
      "3;chunk-signature=%.63s\r\nabc\r\n",            /* short sig */
      "3;chunk-signature=%sa\r\nabc\r\n",              /* long sig */
      "3\r\nabc\r\n",                                  /* missing sig */
      "3;chunk-signature=%s;x=y\r\nabc\r\n",
      "3;chunk-signature=%s\r\nabc\r\n0\r\n\r\n",      /* last chunk unsigned */
  };
  for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
    snprintf(body, sizeof body, fmts[i], sig);
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, S3CHUNK_SIGNED, SEED, NULL);
    cfg.on_data = NULL;
    s3chunk_init(&d, &cfg);
    s3chunk_result rc = s3chunk_feed(&d, body, strlen(body));
    if (i == 0) {
      T_ASSERT(rc == S3CHUNK_OK);
      T_ASSERT(s3chunk_finish(&d) == S3CHUNK_TRUNCATED);
    } else if (rc != S3CHUNK_MALFORMED) {
      T_FAIL("fmt %zu: %s", i, s3chunk_strerror(rc));
    }
  }
  /* An upper-case signature is the same signature. */
  char up[65];
  for (int i = 0; i < 65; i++) up[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ? sig[i] - 32 : sig[i]);
  snprintf(body, sizeof body, "3;chunk-signature=%s\r\nabc\r\n", up);
  struct s3chunk_config cfg;
  struct s3chunk d;
  cfg_signed(&cfg, S3CHUNK_SIGNED, SEED, NULL);
  cfg.on_data = NULL;
  s3chunk_init(&d, &cfg);
  T_ASSERT(s3chunk_feed(&d, body, strlen(body)) == S3CHUNK_OK);
  /* The signed trailer form: signature must be last and well formed. */
  char prev[65], last[65], tsig[65];
  sign_chunk(SEED, "abc", 3, prev);
  sign_chunk(prev, "", 0, last);
  sign_trailer(last, "x-amz-checksum-crc32:NSRBwg==\n", tsig);
  static const char *tf[] = {
      "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%s\r\n\r\n", /* ok */
      "x-amz-checksum-crc32: NSRBwg==\r\nx-amz-trailer-signature: %s\r\n\r\n", /* ok */
      "x-amz-trailer-signature:%s\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n",
      ("x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%s\r\n"
       "x-amz-trailer-signature:%s\r\n\r\n"),
      "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%.60s\r\n\r\n",
      "x-amz-checksum-crc32:NSRBwg==\r\n\r\n",
      "x-amz-checksum-crc32:NSRBwh==\r\nx-amz-trailer-signature:%s\r\n\r\n",
      "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%s\r\n",
  };
  static const s3chunk_result tw[] = {
      S3CHUNK_OK, S3CHUNK_OK, S3CHUNK_MALFORMED, S3CHUNK_MALFORMED,
      S3CHUNK_MALFORMED, S3CHUNK_BAD_SIGNATURE, S3CHUNK_BAD_SIGNATURE,
      S3CHUNK_TRUNCATED};
  for (size_t i = 0; i < sizeof tf / sizeof tf[0]; i++) {
    char tr[400];
    int k = snprintf(body, sizeof body, "3;chunk-signature=%s\r\nabc\r\n0;chunk-signature=%s\r\n",
                     prev, last);
    snprintf(tr, sizeof tr, tf[i], tsig, tsig);
    snprintf(body + k, sizeof body - (size_t)k, "%s", tr);
    cfg_signed(&cfg, S3CHUNK_SIGNED | S3CHUNK_TRAILER, SEED, NULL);
    cfg.on_data = NULL;
    s3chunk_init(&d, &cfg);
    s3chunk_result rc = feed_body(&d, (const uint8_t *)body, strlen(body), 1);
    if (rc != tw[i]) T_FAIL("trailer form %zu: %s", i, s3chunk_strerror(rc));
  }
}

static void test_chunked_random_garbage(void) {
  /* Nothing crashes or overruns on noise (run under ASan/UBSan too). */
  ex_init();
  uint8_t buf[4096];
  static const char alphabet[] = "0123456789abcdefABCDEF;=-:\r\n xz";
  for (int round = 0; round < 3000; round++) {
    size_t n = (size_t)(rnd() % sizeof buf);
    for (size_t i = 0; i < n; i++)
      buf[i] = (round & 1) ? (uint8_t)rnd()
                           : (uint8_t)alphabet[rnd() % (sizeof alphabet - 1)];
    struct s3chunk_config cfg;
    struct s3chunk d;
    cfg_signed(&cfg, (unsigned)(round % 4), SEED, NULL);
    cfg.on_data = NULL;
    cfg.decoded_length = (round & 4) ? -1 : (int64_t)(rnd() % 100);
    s3chunk_init(&d, &cfg);
    s3chunk_result rc = feed_body(&d, buf, n, 2);
    T_ASSERT(rc <= S3CHUNK_ABORTED);
  }
  /* Likewise the other parsers. */
  for (int round = 0; round < 3000; round++) {
    char s[200];
    size_t n = (size_t)(rnd() % sizeof s);
    for (size_t i = 0; i < n; i++) s[i] = (char)rnd();
    char out[700];
    size_t olen;
    uint64_t off, len;
    time_t t;
    struct s3sig_parsed ps;
    struct s3url_param qp[8];
    (void)s3url_decode(out, sizeof out, s, n, 0, &olen);
    (void)s3url_encode(out, sizeof out, s, n, 0, &olen);
    (void)s3url_split_query(s, n, qp, 8, &olen);
    (void)s3range_parse(s, n, rnd(), &off, &len);
    (void)s3_http_date_parse(s, n, &t);
    (void)s3_etag_match(s, n, "\"x\"", 3);
    (void)s3sig_parse_authorization(s, n, &ps);
    (void)s3sig_parse_presigned(s, n, &ps);
    (void)s3_base64_decode((uint8_t *)out, 64, s, n, &olen);
  }
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(test_crc_check_values);
  T_RUN(test_crc_against_reference);
  T_RUN(test_crc_random_slices);
  T_RUN(test_crc_combine);
  T_RUN(test_checksum_b64_digests);
  T_RUN(test_base64);
  T_RUN(test_checksum_composite_and_names);
  T_RUN(test_url_decode);
  T_RUN(test_url_encode);
  T_RUN(test_url_split_query);
  T_RUN(test_range);
  T_RUN(test_http_dates);
  T_RUN(test_etag_match);
  T_RUN(test_conditionals);
  T_RUN(test_xml_writer);
  T_RUN(test_sigv4_aws_get_object);
  T_RUN(test_sigv4_aws_put_and_listing);
  T_RUN(test_sigv4_presigned);
  T_RUN(test_sigv4_more_vectors);
  T_RUN(test_sigv4_header_errors);
  T_RUN(test_sigv4_helpers);
  T_RUN(test_chunked_aws_seed_signature);
  T_RUN(test_chunked_aws_example_slices);
  T_RUN(test_chunked_aws_trailer_example);
  T_RUN(test_chunked_signed_built);
  T_RUN(test_chunked_unsigned);
  T_RUN(test_chunked_signed_garbled);
  T_RUN(test_chunked_random_garbage);
  T_MAIN_END();
}
