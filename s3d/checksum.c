/*
 * checksum.c -- CRC32/CRC32C/CRC64NVME (slice-by-8 tables), SHA1/SHA256/MD5
 * through Nettle, base64, CRC combination and multipart composites.
 *
 * All three CRCs are "reflected" (LSB-first) with init ~0 and xorout ~0,
 * so one slice-by-8 routine in 64-bit arithmetic serves them all; the
 * 32-bit ones simply never set the upper half.
 */
#include "checksum.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#define POLY_CRC32 0xEDB88320u
#define POLY_CRC32C 0x82F63B78u
#define POLY_CRC64NVME 0x9A6C9329AC4BC9B5ull

static uint32_t t_crc32[8][256];
static uint32_t t_crc32c[8][256];
static uint64_t t_crc64[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
#if defined(__x86_64__) && defined(__GNUC__)
static int have_sse42;
#endif

static void build_tables(void) {
  for (unsigned i = 0; i < 256; i++) {
    uint32_t a = i, b = i;
    uint64_t c = i;
    for (int k = 0; k < 8; k++) {
      a = (a & 1) ? (a >> 1) ^ POLY_CRC32 : a >> 1;
      b = (b & 1) ? (b >> 1) ^ POLY_CRC32C : b >> 1;
      c = (c & 1) ? (c >> 1) ^ POLY_CRC64NVME : c >> 1;
    }
    t_crc32[0][i] = a;
    t_crc32c[0][i] = b;
    t_crc64[0][i] = c;
  }
  for (unsigned i = 0; i < 256; i++) {
    for (int k = 1; k < 8; k++) {
      t_crc32[k][i] = (t_crc32[k - 1][i] >> 8) ^ t_crc32[0][t_crc32[k - 1][i] & 0xff];
      t_crc32c[k][i] = (t_crc32c[k - 1][i] >> 8) ^ t_crc32c[0][t_crc32c[k - 1][i] & 0xff];
      t_crc64[k][i] = (t_crc64[k - 1][i] >> 8) ^ t_crc64[0][t_crc64[k - 1][i] & 0xff];
    }
  }
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static void tables(void) { pthread_once(&tables_once, build_tables); }

static inline uint64_t load_le64(const unsigned char *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
         (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* Slice-by-8 over a reflected 32-bit table set; crc is the raw register. */
static uint32_t slice8_32(uint32_t t[8][256], uint32_t crc,
                          const unsigned char *p, size_t n) {
  while (n >= 8) {
    uint64_t x = load_le64(p) ^ crc;
    crc = t[7][x & 0xff] ^ t[6][(x >> 8) & 0xff] ^ t[5][(x >> 16) & 0xff] ^
          t[4][(x >> 24) & 0xff] ^ t[3][(x >> 32) & 0xff] ^
          t[2][(x >> 40) & 0xff] ^ t[1][(x >> 48) & 0xff] ^ t[0][x >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return crc;
}

uint32_t s3ck_crc32(uint32_t crc, const void *p, size_t n) {
  tables();
  return ~slice8_32(t_crc32, ~crc, p, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
  uint64_t c = crc;
  while (n && ((uintptr_t)p & 7)) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return (uint32_t)c;
}
#endif

/* Table path of CRC32C, exposed for the tests (not in the header). */
uint32_t s3ck_crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t s3ck_crc32c_sw(uint32_t crc, const void *p, size_t n) {
  tables();
  return ~slice8_32(t_crc32c, ~crc, p, n);
}

uint32_t s3ck_crc32c(uint32_t crc, const void *p, size_t n) {
  tables();
#if defined(__x86_64__) && defined(__GNUC__)
  if (have_sse42) return ~crc32c_hw(~crc, p, n);
#endif
  return ~slice8_32(t_crc32c, ~crc, p, n);
}

uint64_t s3ck_crc64nvme(uint64_t crc, const void *pv, size_t n) {
  const unsigned char *p = pv;
  tables();
  crc = ~crc;
  while (n >= 8) {
    uint64_t x = load_le64(p) ^ crc;
    crc = t_crc64[7][x & 0xff] ^ t_crc64[6][(x >> 8) & 0xff] ^
          t_crc64[5][(x >> 16) & 0xff] ^ t_crc64[4][(x >> 24) & 0xff] ^
          t_crc64[3][(x >> 32) & 0xff] ^ t_crc64[2][(x >> 40) & 0xff] ^
          t_crc64[1][(x >> 48) & 0xff] ^ t_crc64[0][x >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t_crc64[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

/* --- combination, in the manner of zlib's crc32_combine_gen ------------
 * Polynomials are kept reflected: bit (W-1) is x^0. multmodp() multiplies
 * two polynomials modulo P; x^(8*len) is built by repeated squaring. */

static uint64_t multmodp(uint64_t a, uint64_t b, uint64_t poly, int width) {
  uint64_t m = (uint64_t)1 << (width - 1), p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ poly : b >> 1;
  }
  return p;
}

/* x^(n * 2^k) modulo poly. */
static uint64_t x2nmodp(uint64_t n, unsigned k, uint64_t poly, int width) {
  uint64_t p = (uint64_t)1 << (width - 1);     /* x^0 */
  uint64_t sq = (uint64_t)1 << (width - 2);    /* x^1 */
  for (unsigned i = 0; i < k; i++) sq = multmodp(sq, sq, poly, width);
  while (n) {
    if (n & 1) p = multmodp(sq, p, poly, width);
    n >>= 1;
    sq = multmodp(sq, sq, poly, width);
  }
  return p;
}

uint64_t s3ck_crc_combine(s3ck_alg alg, uint64_t crc_a, uint64_t crc_b,
                          uint64_t len_b) {
  uint64_t poly;
  int width;
  switch (alg) {
  case S3CK_CRC32: poly = POLY_CRC32; width = 32; break;
  case S3CK_CRC32C: poly = POLY_CRC32C; width = 32; break;
  case S3CK_CRC64NVME: poly = POLY_CRC64NVME; width = 64; break;
  default: return 0;
  }
  /* Appending len_b bytes multiplies A's register by x^(8*len_b). */
  return multmodp(x2nmodp(len_b, 3, poly, width), crc_a, poly, width) ^ crc_b;
}

/* --- streaming interface ------------------------------------------------ */

void s3ck_init(struct s3ck *c, s3ck_alg alg) {
  memset(c, 0, sizeof *c);
  c->alg = alg;
  switch (alg) {
  case S3CK_SHA1: sha1_init(&c->u.sha1); break;
  case S3CK_SHA256: sha256_init(&c->u.sha256); break;
  case S3CK_MD5: md5_init(&c->u.md5); break;
  default: break;
  }
}

void s3ck_update(struct s3ck *c, const void *p, size_t n) {
  switch (c->alg) {
  case S3CK_CRC32: c->u.crc32 = s3ck_crc32(c->u.crc32, p, n); break;
  case S3CK_CRC32C: c->u.crc32 = s3ck_crc32c(c->u.crc32, p, n); break;
  case S3CK_CRC64NVME: c->u.crc64 = s3ck_crc64nvme(c->u.crc64, p, n); break;
  case S3CK_SHA1: sha1_update(&c->u.sha1, n, p); break;
  case S3CK_SHA256: sha256_update(&c->u.sha256, n, p); break;
  case S3CK_MD5: md5_update(&c->u.md5, n, p); break;
  default: break;
  }
}

size_t s3ck_len(s3ck_alg alg) {
  switch (alg) {
  case S3CK_CRC32:
  case S3CK_CRC32C: return 4;
  case S3CK_CRC64NVME: return 8;
  case S3CK_SHA1: return SHA1_DIGEST_SIZE;
  case S3CK_SHA256: return SHA256_DIGEST_SIZE;
  case S3CK_MD5: return MD5_DIGEST_SIZE;
  default: return 0;
  }
}

size_t s3ck_digest(struct s3ck *c, uint8_t *out) {
  size_t len = s3ck_len(c->alg);
  switch (c->alg) {
  case S3CK_CRC32:
  case S3CK_CRC32C:
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(c->u.crc32 >> (24 - 8 * i));
    break;
  case S3CK_CRC64NVME:
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(c->u.crc64 >> (56 - 8 * i));
    break;
  case S3CK_SHA1: sha1_digest(&c->u.sha1, SHA1_DIGEST_SIZE, out); break;
  case S3CK_SHA256: sha256_digest(&c->u.sha256, SHA256_DIGEST_SIZE, out); break;
  case S3CK_MD5: md5_digest(&c->u.md5, MD5_DIGEST_SIZE, out); break;
  default: break;
  }
  return len;
}

size_t s3ck_digest_b64(struct s3ck *c, char *out, size_t cap) {
  uint8_t d[S3CK_MAX_DIGEST];
  size_t n = s3ck_digest(c, d);
  if (!n) return 0;
  return s3_base64_encode(out, cap, d, n);
}

static const struct {
  s3ck_alg alg;
  const char *name;
  const char *header;
} names[] = {
    {S3CK_CRC32, "CRC32", "x-amz-checksum-crc32"},
    {S3CK_CRC32C, "CRC32C", "x-amz-checksum-crc32c"},
    {S3CK_CRC64NVME, "CRC64NVME", "x-amz-checksum-crc64nvme"},
    {S3CK_SHA1, "SHA1", "x-amz-checksum-sha1"},
    {S3CK_SHA256, "SHA256", "x-amz-checksum-sha256"},
};

const char *s3ck_name(s3ck_alg alg) {
  if (alg == S3CK_MD5) return "MD5";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].alg == alg) return names[i].name;
  return NULL;
}

const char *s3ck_header(s3ck_alg alg) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].alg == alg) return names[i].header;
  return NULL;
}

static int ieq(const char *a, size_t n, const char *b) {
  return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

s3ck_alg s3ck_from_name(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (ieq(s, n, names[i].name)) return names[i].alg;
  return S3CK_NONE;
}

s3ck_alg s3ck_from_header(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (ieq(s, n, names[i].header)) return names[i].alg;
  return S3CK_NONE;
}

/* --- base64 ------------------------------------------------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t s3_base64_encode(char *out, size_t cap, const uint8_t *p, size_t n) {
  size_t need = (n + 2) / 3 * 4;
  if (n > ((size_t)-1) / 2 || cap < need + 1) return 0;
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = b64chars[(v >> 6) & 63];
    out[o++] = b64chars[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = b64chars[(v >> 6) & 63];
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int s3_base64_decode(uint8_t *out, size_t cap, const char *s, size_t n,
                     size_t *out_len) {
  if (n % 4) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)s[i + (size_t)k];
      if (c == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
      } else {
        if (pad) return -1; /* data after '=' */
        v[k] = b64val(c);
        if (v[k] < 0) return -1;
      }
    }
    /* Reject non-canonical encodings: the bits padding drops must be 0. */
    if (pad == 1 && (v[2] & 3)) return -1;
    if (pad == 2 && (v[1] & 15)) return -1;
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    size_t take = 3 - (size_t)pad;
    if (cap - o < take) return -1;
    out[o++] = (uint8_t)(w >> 16);
    if (take > 1) out[o++] = (uint8_t)(w >> 8);
    if (take > 2) out[o++] = (uint8_t)w;
  }
  *out_len = o;
  return 0;
}

int s3ck_b64_equal(const char *b64, size_t n, const uint8_t *digest,
                   size_t digest_len) {
  uint8_t got[S3CK_MAX_DIGEST];
  size_t len;
  if (n > 4 * ((S3CK_MAX_DIGEST + 2) / 3)) return 0;
  if (s3_base64_decode(got, sizeof got, b64, n, &len) != 0) return 0;
  return len == digest_len && memcmp(got, digest, len) == 0;
}

size_t s3ck_composite(s3ck_alg alg, const uint8_t *part_digests, size_t nparts,
                      char *out, size_t cap) {
  size_t dlen = s3ck_len(alg);
  if (!dlen || nparts == 0) return 0;
  struct s3ck c;
  s3ck_init(&c, alg);
  s3ck_update(&c, part_digests, nparts * dlen);
  size_t n = s3ck_digest_b64(&c, out, cap);
  if (!n) return 0;
  /* "-N": format N by hand (no sprintf). */
  char num[24];
  size_t k = sizeof num;
  size_t v = nparts;
  do {
    num[--k] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t nlen = sizeof num - k;
  if (cap - n < nlen + 2) return 0;
  out[n++] = '-';
  memcpy(out + n, num + k, nlen);
  n += nlen;
  out[n] = '\0';
  return n;
}
