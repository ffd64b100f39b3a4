/*
 * s3sign.c -- SigV4 header signing for the bench/ load generators; see
 * s3sign.h.
 */
#include "s3sign.h"

#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void s3sign_hex(const uint8_t *d, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[d[i] >> 4];
    out[2 * i + 1] = hx[d[i] & 15];
  }
  out[2 * n] = 0;
}

int s3sign_uri_encode(const char *s, int keep_slash, char *out, size_t cap) {
  static const char hx[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                c == '~' || (keep_slash && c == '/');
    if (o + 4 > cap) return -1;
    if (plain) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hx[c >> 4];
      out[o++] = hx[c & 15];
    }
  }
  if (o + 1 > cap) return -1;
  out[o] = 0;
  return (int)o;
}

static void hmac256(const uint8_t *k, size_t kl, const void *m, size_t ml,
                    uint8_t out[32]) {
  struct hmac_sha256_ctx c;
  hmac_sha256_set_key(&c, kl, k);
  hmac_sha256_update(&c, ml, m);
  hmac_sha256_digest(&c, 32, out);
}

/* Per thread: the signing key of the current day (for one secret and
 * region), the date string of the current second. */
static __thread struct {
  char day[9];
  const char *sk, *region;
  uint8_t key[32];
  time_t sec;
  char amz[17];
} sig_cache;

static int hdr_cmp(const void *a, const void *b) {
  return strcmp(((const s3sign_hdr *)a)->name, ((const s3sign_hdr *)b)->name);
}

#define MAX_SIGNED 16

int s3sign_lines(char *out, size_t cap, const char *ak, const char *sk,
                 const char *region, const char *method, const char *path,
                 const char *query, const char *host, const s3sign_hdr *extra,
                 int nextra) {
  time_t t = time(NULL);
  if (t != sig_cache.sec || sig_cache.sk != sk || sig_cache.region != region) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(sig_cache.amz, sizeof sig_cache.amz, "%Y%m%dT%H%M%SZ", &tm);
    sig_cache.sec = t;
    if (memcmp(sig_cache.day, sig_cache.amz, 8) || sig_cache.sk != sk ||
        sig_cache.region != region) {
      uint8_t k[32], k2[32];
      char ks[160];
      int kl = snprintf(ks, sizeof ks, "AWS4%s", sk);
      if (kl < 0 || (size_t)kl >= sizeof ks) return (int)cap;
      memcpy(sig_cache.day, sig_cache.amz, 8);
      sig_cache.day[8] = 0;
      hmac256((const uint8_t *)ks, (size_t)kl, sig_cache.day, 8, k);
      hmac256(k, 32, region, strlen(region), k2);
      hmac256(k2, 32, "s3", 2, k);
      hmac256(k, 32, "aws4_request", 12, sig_cache.key);
      sig_cache.sk = sk;
      sig_cache.region = region;
    }
  }
  if (nextra < 0 || nextra > MAX_SIGNED - 3) return (int)cap;
  s3sign_hdr h[MAX_SIGNED];
  int nh = 0;
  h[nh++] = (s3sign_hdr){"host", host};
  h[nh++] = (s3sign_hdr){"x-amz-content-sha256", "UNSIGNED-PAYLOAD"};
  h[nh++] = (s3sign_hdr){"x-amz-date", sig_cache.amz};
  for (int i = 0; i < nextra; i++) h[nh++] = extra[i];
  qsort(h, (size_t)nh, sizeof h[0], hdr_cmp);

  char canon[8192], names[512];
  size_t cl = 0, nl = 0;
  int w = snprintf(canon, sizeof canon, "%s\n%s\n%s\n", method, path, query);
  if (w < 0 || (size_t)w >= sizeof canon) return (int)cap;
  cl = (size_t)w;
  names[0] = 0;
  for (int i = 0; i < nh; i++) {
    w = snprintf(canon + cl, sizeof canon - cl, "%s:%s\n", h[i].name, h[i].value);
    if (w < 0 || (size_t)w >= sizeof canon - cl) return (int)cap;
    cl += (size_t)w;
    w = snprintf(names + nl, sizeof names - nl, "%s%s", i ? ";" : "", h[i].name);
    if (w < 0 || (size_t)w >= sizeof names - nl) return (int)cap;
    nl += (size_t)w;
  }
  w = snprintf(canon + cl, sizeof canon - cl, "\n%s\nUNSIGNED-PAYLOAD", names);
  if (w < 0 || (size_t)w >= sizeof canon - cl) return (int)cap;
  cl += (size_t)w;

  uint8_t d[32];
  char hh[65], sig[65], sts[256];
  struct sha256_ctx sc;
  sha256_init(&sc);
  sha256_update(&sc, cl, (const uint8_t *)canon);
  sha256_digest(&sc, 32, d);
  s3sign_hex(d, 32, hh);
  int sl = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s",
                    sig_cache.amz, sig_cache.day, region, hh);
  if (sl < 0 || (size_t)sl >= sizeof sts) return (int)cap;
  hmac256(sig_cache.key, 32, sts, (size_t)sl, d);
  s3sign_hex(d, 32, sig);

  size_t o = 0;
  w = snprintf(out, cap, "Host: %s\r\nx-amz-date: %s\r\n"
               "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n", host, sig_cache.amz);
  if (w < 0 || (size_t)w >= cap) return (int)cap;
  o = (size_t)w;
  for (int i = 0; i < nextra; i++) {
    w = snprintf(out + o, cap - o, "%s: %s\r\n", extra[i].name, extra[i].value);
    if (w < 0 || (size_t)w >= cap - o) return (int)cap;
    o += (size_t)w;
  }
  w = snprintf(out + o, cap - o,
               "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/"
               "aws4_request, SignedHeaders=%s, Signature=%s\r\n",
               ak, sig_cache.day, region, names, sig);
  if (w < 0 || (size_t)w >= cap - o) return (int)cap;
  return (int)(o + (size_t)w);
}
