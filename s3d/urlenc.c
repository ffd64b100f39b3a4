/*
 * urlenc.c -- percent-decoding, AWS URI-encoding and query splitting.
 */
#include "urlenc.h"

#include <string.h>

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

s3url_result s3url_decode(char *dst, size_t cap, const char *src, size_t n,
                          unsigned flags, size_t *out_len) {
  size_t o = 0;
  if (cap == 0) return S3URL_TOO_LONG;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)src[i];
    if (c == '%') {
      if (n - i < 3) return S3URL_BAD_ESCAPE;
      int hi = hexval((unsigned char)src[i + 1]);
      int lo = hexval((unsigned char)src[i + 2]);
      if (hi < 0 || lo < 0) return S3URL_BAD_ESCAPE;
      c = (unsigned char)(hi * 16 + lo);
      if (c == 0 && (flags & S3URL_REJECT_NUL)) return S3URL_NUL;
      i += 2;
    } else if (c == '+' && (flags & S3URL_PLUS_SPACE)) {
      c = ' ';
    } else if (c == 0 && (flags & S3URL_REJECT_NUL)) {
      return S3URL_NUL;
    }
    if (o + 1 >= cap) return S3URL_TOO_LONG;
    dst[o++] = (char)c;
  }
  dst[o] = '\0';
  if (out_len) *out_len = o;
  return S3URL_OK;
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

size_t s3url_encoded_len(const char *src, size_t n, unsigned flags) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)src[i];
    len += (unreserved(c) || (c == '/' && (flags & S3URL_KEEP_SLASH))) ? 1 : 3;
  }
  return len;
}

s3url_result s3url_encode(char *dst, size_t cap, const char *src, size_t n,
                          unsigned flags, size_t *out_len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  if (cap == 0) return S3URL_TOO_LONG;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)src[i];
    if (unreserved(c) || (c == '/' && (flags & S3URL_KEEP_SLASH))) {
      if (o + 1 >= cap) return S3URL_TOO_LONG;
      dst[o++] = (char)c;
    } else {
      if (o + 3 >= cap) return S3URL_TOO_LONG;
      dst[o++] = '%';
      dst[o++] = hex[c >> 4];
      dst[o++] = hex[c & 15];
    }
  }
  dst[o] = '\0';
  if (out_len) *out_len = o;
  return S3URL_OK;
}

s3url_result s3url_split_query(const char *q, size_t n, struct s3url_param *out,
                               size_t max, size_t *count) {
  size_t k = 0, i = 0;
  *count = 0;
  while (i < n) {
    const char *amp = memchr(q + i, '&', n - i);
    size_t end = amp ? (size_t)(amp - q) : n;
    if (end > i) {
      if (k == max) return S3URL_TOO_MANY;
      const char *seg = q + i;
      size_t seglen = end - i;
      const char *eq = memchr(seg, '=', seglen);
      struct s3url_param *p = &out[k++];
      p->name = seg;
      if (eq) {
        p->name_len = (size_t)(eq - seg);
        p->value = eq + 1;
        p->value_len = seglen - p->name_len - 1;
        p->has_eq = 1;
      } else {
        p->name_len = seglen;
        p->value = seg + seglen;
        p->value_len = 0;
        p->has_eq = 0;
      }
      *count = k;
    }
    i = end + 1;
  }
  return S3URL_OK;
}

int s3url_find_param(const struct s3url_param *params, size_t count,
                     const char *name) {
  size_t want = strlen(name);
  for (size_t i = 0; i < count; i++) {
    /* Decoding never grows, so a raw name shorter than the wanted one can
       never match; a raw name up to 3x longer might. */
    if (params[i].name_len < want || params[i].name_len > 3 * want) continue;
    char buf[256];
    size_t len;
    if (s3url_decode(buf, sizeof buf, params[i].name, params[i].name_len,
                     S3URL_PLUS_SPACE, &len) != S3URL_OK)
      continue;
    if (len == want && memcmp(buf, name, want) == 0) return (int)i;
  }
  return -1;
}
