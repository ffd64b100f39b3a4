/*
 * sigv4.c -- AWS Signature Version 4 verification (see sigv4.h and
 * docs/sigv4.md).
 */
#include "sigv4.h"

#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "range.h"
#include "urlenc.h"

static const char ALGORITHM[] = "AWS4-HMAC-SHA256";

/* --- small helpers ------------------------------------------------------ */

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Copy s[0..n) as a C string into dst[cap]; -1 if it does not fit. */
static int copy_str(char *dst, size_t cap, const char *s, size_t n) {
  if (n >= cap) return -1;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

static int streq_n(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

void s3_hex(const uint8_t *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int s3_unhex(const char *s, size_t slen, uint8_t *out, size_t n) {
  if (slen != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

void s3_sha256_hex(const void *p, size_t n, char hex[65]) {
  struct sha256_ctx c;
  uint8_t d[SHA256_DIGEST_SIZE];
  sha256_init(&c);
  sha256_update(&c, n, p);
  sha256_digest(&c, sizeof d, d);
  s3_hex(d, sizeof d, hex);
}

static void hmac256(const uint8_t *key, size_t klen, const void *msg, size_t n,
                    uint8_t out[32]) {
  struct hmac_sha256_ctx c;
  hmac_sha256_set_key(&c, klen, key);
  hmac_sha256_update(&c, n, msg);
  hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, out);
  explicit_bzero(&c, sizeof c);
}

void s3sig_hmac_hex(const uint8_t key[32], const void *msg, size_t n,
                    char hex[65]) {
  uint8_t d[32];
  hmac256(key, 32, msg, n, d);
  s3_hex(d, 32, hex);
}

void s3sig_signing_key(const char *secret, size_t secret_len, const char *date,
                       const char *region, const char *service,
                       uint8_t key[32]) {
  uint8_t k[4 + S3SIG_MAX_SECRET];
  uint8_t a[32], b[32];
  if (secret_len > S3SIG_MAX_SECRET) secret_len = S3SIG_MAX_SECRET;
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, secret_len);
  hmac256(k, 4 + secret_len, date, strlen(date), a);
  hmac256(a, 32, region, strlen(region), b);
  hmac256(b, 32, service, strlen(service), a);
  hmac256(a, 32, "aws4_request", 12, key);
  explicit_bzero(k, sizeof k);
  explicit_bzero(a, sizeof a);
  explicit_bzero(b, sizeof b);
}

/* --- dates -------------------------------------------------------------- */

static int num(const char *s, size_t k, unsigned *out) {
  unsigned v = 0;
  for (size_t i = 0; i < k; i++) {
    if (!is_digit(s[i])) return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  *out = v;
  return 0;
}

int s3sig_parse_amz_date(const char *s, size_t n, time_t *out) {
  unsigned y, mo, d, h, mi, se;
  static const unsigned dm[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (n != 16 || s[8] != 'T' || s[15] != 'Z') return -1;
  if (num(s, 4, &y) || num(s + 4, 2, &mo) || num(s + 6, 2, &d) ||
      num(s + 9, 2, &h) || num(s + 11, 2, &mi) || num(s + 13, 2, &se))
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > dm[mo - 1] || h > 23 || mi > 59 || se > 60)
    return -1;
  if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return -1;
  int64_t t = s3_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
  if ((int64_t)(time_t)t != t) return -1;
  *out = (time_t)t;
  return 0;
}

static void put_n(char *p, unsigned v, int k) {
  for (int i = k - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
}

void s3sig_format_amz_date(time_t t, char out[17]) {
  int64_t tt = (int64_t)t;
  int64_t days = tt >= 0 ? tt / 86400 : -((-tt + 86399) / 86400);
  int64_t secs = tt - days * 86400;
  int64_t y;
  unsigned m, d;
  s3_civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999) y = 0;
  put_n(out, (unsigned)y, 4);
  put_n(out + 4, m, 2);
  put_n(out + 6, d, 2);
  out[8] = 'T';
  put_n(out + 9, (unsigned)(secs / 3600), 2);
  put_n(out + 11, (unsigned)(secs / 60 % 60), 2);
  put_n(out + 13, (unsigned)(secs % 60), 2);
  out[15] = 'Z';
  out[16] = '\0';
}

/* --- parsing the credential and signed headers -------------------------- */

/* Bytes allowed in the access key and the scope parts: visible ASCII except
   the separators of the header syntax. */
static int scope_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '/' && c != ',' && c != ';' && c != '=';
}

static int parse_credential(const char *s, size_t n, struct s3sig_parsed *out) {
  /* AK/YYYYMMDD/region/service/aws4_request, split from the right so an
     access key is free to be any run of scope characters. */
  size_t cut[4];
  int k = 4;
  for (size_t i = n; i-- > 0 && k > 0;)
    if (s[i] == '/') cut[--k] = i;
  if (k != 0) return -1;
  const char *ak = s;
  size_t ak_len = cut[0];
  const char *date = s + cut[0] + 1;
  size_t date_len = cut[1] - cut[0] - 1;
  const char *reg = s + cut[1] + 1;
  size_t reg_len = cut[2] - cut[1] - 1;
  const char *svc = s + cut[2] + 1;
  size_t svc_len = cut[3] - cut[2] - 1;
  const char *term = s + cut[3] + 1;
  size_t term_len = n - cut[3] - 1;

  if (ak_len == 0 || reg_len == 0 || svc_len == 0) return -1;
  for (size_t i = 0; i < ak_len; i++)
    if (ak[i] != '/' && !scope_char((unsigned char)ak[i])) return -1;
  for (size_t i = 0; i < reg_len; i++)
    if (!scope_char((unsigned char)reg[i])) return -1;
  for (size_t i = 0; i < svc_len; i++)
    if (!scope_char((unsigned char)svc[i])) return -1;
  if (date_len != 8) return -1;
  for (size_t i = 0; i < 8; i++)
    if (!is_digit(date[i])) return -1;
  if (!streq_n(term, term_len, "aws4_request")) return -1;
  if (copy_str(out->access_key, sizeof out->access_key, ak, ak_len) ||
      copy_str(out->date, sizeof out->date, date, date_len) ||
      copy_str(out->region, sizeof out->region, reg, reg_len) ||
      copy_str(out->service, sizeof out->service, svc, svc_len))
    return -1;
  return 0;
}

/* RFC 9110 tchar. */
static int tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit((char)c))
    return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Validate and lower-case "a;b;c" into out. */
static int parse_signed_headers(const char *s, size_t n, char *out, size_t cap) {
  size_t count = 0, start = 0;
  if (n == 0 || n >= cap) return -1;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == ';') {
      if (i == start) return -1; /* empty name */
      if (++count > S3SIG_MAX_SIGNED_COUNT) return -1;
      start = i + 1;
      if (i < n) out[i] = ';';
      continue;
    }
    unsigned char c = (unsigned char)s[i];
    if (!tchar(c)) return -1;
    out[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
  }
  out[n] = '\0';
  return 0;
}

static int signed_has(const char *list, const char *name) {
  size_t k = strlen(name);
  const char *p = list;
  for (;;) {
    const char *e = strchr(p, ';');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == k && memcmp(p, name, k) == 0) return 1;
    if (!e) return 0;
    p = e + 1;
  }
}

s3sig_result s3sig_parse_authorization(const char *v, size_t n,
                                       struct s3sig_parsed *out) {
  memset(out, 0, sizeof *out);
  if (n > S3SIG_MAX_AUTH_HEADER) return S3SIG_TOO_LARGE;
  size_t i = 0;
  while (i < n && is_ows(v[i])) i++;
  size_t s0 = i;
  while (i < n && !is_ows(v[i])) i++;
  if (!streq_n(v + s0, i - s0, ALGORITHM)) return S3SIG_UNSUPPORTED;
  if (i == n) return S3SIG_MALFORMED;

  int have_cred = 0, have_sh = 0, have_sig = 0;
  while (i < n) {
    while (i < n && is_ows(v[i])) i++;
    if (i == n) break;
    size_t k0 = i;
    while (i < n && v[i] != '=' && v[i] != ',') i++;
    if (i == n || v[i] != '=') return S3SIG_MALFORMED;
    size_t k1 = i++;
    size_t v0 = i;
    while (i < n && v[i] != ',') i++;
    size_t v1 = i;
    while (v1 > v0 && is_ows(v[v1 - 1])) v1--;
    if (i < n) i++; /* the ',' */
    const char *key = v + k0, *val = v + v0;
    size_t klen = k1 - k0, vlen = v1 - v0;
    if (streq_n(key, klen, "Credential")) {
      if (have_cred++ || parse_credential(val, vlen, out)) return S3SIG_MALFORMED;
    } else if (streq_n(key, klen, "SignedHeaders")) {
      if (have_sh++ || parse_signed_headers(val, vlen, out->signed_headers,
                                            sizeof out->signed_headers))
        return S3SIG_MALFORMED;
    } else if (streq_n(key, klen, "Signature")) {
      if (have_sig++ || s3_unhex(val, vlen, out->signature, 32))
        return S3SIG_MALFORMED;
    } else {
      return S3SIG_MALFORMED;
    }
  }
  if (!have_cred || !have_sh || !have_sig) return S3SIG_MALFORMED;
  return S3SIG_OK;
}

/* --- presigned parameters ------------------------------------------------ */

enum { P_ALG, P_CRED, P_DATE, P_EXPIRES, P_SH, P_SIG, P_SHA, P_COUNT };
static const char *const presign_names[P_COUNT] = {
    "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",
    "X-Amz-Expires",       "X-Amz-SignedHeaders", "X-Amz-Signature",
    "X-Amz-Content-Sha256"};

s3sig_result s3sig_parse_presigned(const char *query, size_t n,
                                   struct s3sig_parsed *out) {
  struct s3url_param params[S3SIG_MAX_QUERY_PARAMS];
  size_t count;
  char val[P_COUNT][S3SIG_MAX_SIGNED_HEADERS + 1];
  size_t vlen[P_COUNT];
  int seen[P_COUNT] = {0};

  memset(out, 0, sizeof *out);
  if (n > S3SIG_MAX_TARGET) return S3SIG_TOO_LARGE;
  if (s3url_split_query(query, n, params, S3SIG_MAX_QUERY_PARAMS, &count))
    return S3SIG_BAD_TARGET;
  for (size_t i = 0; i < count; i++) {
    char name[64];
    size_t nlen;
    if (params[i].name_len >= 3 * sizeof name) continue; /* cannot be ours */
    s3url_result ur = s3url_decode(name, sizeof name, params[i].name,
                                   params[i].name_len, S3URL_PLUS_SPACE, &nlen);
    if (ur == S3URL_TOO_LONG) continue;
    if (ur != S3URL_OK) return S3SIG_BAD_TARGET;
    for (int k = 0; k < P_COUNT; k++) {
      /* By length: a name may decode to NULs ("X-Amz-Signature%00"). */
      if (!streq_n(name, nlen, presign_names[k])) continue;
      if (seen[k]++) return S3SIG_QUERY_MALFORMED; /* duplicate */
      ur = s3url_decode(val[k], sizeof val[k], params[i].value,
                        params[i].value_len, S3URL_PLUS_SPACE | S3URL_REJECT_NUL,
                        &vlen[k]);
      if (ur == S3URL_BAD_ESCAPE) return S3SIG_BAD_TARGET;
      if (ur != S3URL_OK) return S3SIG_QUERY_MALFORMED;
    }
  }
  if (!seen[P_ALG] && !seen[P_CRED] && !seen[P_SIG]) return S3SIG_MISSING;
  for (int k = 0; k < P_SHA; k++)
    if (!seen[k]) return S3SIG_QUERY_MALFORMED;

  if (strcmp(val[P_ALG], ALGORITHM) != 0) return S3SIG_QUERY_MALFORMED;
  if (parse_credential(val[P_CRED], vlen[P_CRED], out)) return S3SIG_QUERY_MALFORMED;
  time_t t;
  if (s3sig_parse_amz_date(val[P_DATE], vlen[P_DATE], &t))
    return S3SIG_QUERY_MALFORMED;
  memcpy(out->amz_date, val[P_DATE], 17);
  if (vlen[P_EXPIRES] == 0 || vlen[P_EXPIRES] > 7) return S3SIG_QUERY_MALFORMED;
  unsigned long e = 0;
  for (size_t i = 0; i < vlen[P_EXPIRES]; i++) {
    if (!is_digit(val[P_EXPIRES][i])) return S3SIG_QUERY_MALFORMED;
    e = e * 10 + (unsigned long)(val[P_EXPIRES][i] - '0');
  }
  if (e < 1 || e > S3SIG_MAX_EXPIRES) return S3SIG_QUERY_MALFORMED;
  out->expires = e;
  if (parse_signed_headers(val[P_SH], vlen[P_SH], out->signed_headers,
                           sizeof out->signed_headers))
    return S3SIG_QUERY_MALFORMED;
  if (s3_unhex(val[P_SIG], vlen[P_SIG], out->signature, 32))
    return S3SIG_QUERY_MALFORMED;
  if (seen[P_SHA] &&
      copy_str(out->content_sha256, sizeof out->content_sha256, val[P_SHA],
               vlen[P_SHA]))
    return S3SIG_BAD_CONTENT_SHA256;
  return S3SIG_OK;
}

/* --- the canonical request ---------------------------------------------- */

struct qent {
  char *name, *value; /* AWS-encoded, NUL-terminated, in the arena */
};

static int qent_cmp(const void *a, const void *b) {
  const struct qent *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

/* Decode then AWS-encode src into the arena at *pos. */
static s3sig_result reencode(const char *src, size_t n, char *tmp, char *arena,
                             size_t arena_cap, size_t *pos, char **out) {
  size_t dlen, elen;
  if (s3url_decode(tmp, n + 1, src, n, S3URL_PLUS_SPACE, &dlen) != S3URL_OK)
    return S3SIG_BAD_TARGET;
  if (s3url_encode(arena + *pos, arena_cap - *pos, tmp, dlen, 0, &elen) != S3URL_OK)
    return S3SIG_NOMEM; /* cannot happen: the arena is sized for 3x */
  *out = arena + *pos;
  *pos += elen + 1;
  return S3SIG_OK;
}

static s3sig_result canonical_query(const char *q, size_t n, int presigned,
                                    struct s3buf *out) {
  struct s3url_param params[S3SIG_MAX_QUERY_PARAMS];
  struct qent ents[S3SIG_MAX_QUERY_PARAMS];
  size_t count, used = 0;
  if (s3url_split_query(q, n, params, S3SIG_MAX_QUERY_PARAMS, &count))
    return S3SIG_BAD_TARGET;
  if (count == 0) return S3SIG_OK;

  /* Every byte encodes to at most 3, plus a NUL per name and value. */
  size_t arena_cap = 3 * n + 2 * count + 1;
  char *arena = malloc(arena_cap);
  char *tmp = malloc(n + 1);
  s3sig_result rc = S3SIG_OK;
  size_t pos = 0;
  if (!arena || !tmp) {
    rc = S3SIG_NOMEM;
    goto done;
  }
  for (size_t i = 0; i < count; i++) {
    struct qent *e = &ents[used];
    rc = reencode(params[i].name, params[i].name_len, tmp, arena, arena_cap,
                  &pos, &e->name);
    if (rc) goto done;
    if (presigned && strcmp(e->name, "X-Amz-Signature") == 0) {
      /* Still validate the value's escapes, then leave it out. */
      char *ignored;
      rc = reencode(params[i].value, params[i].value_len, tmp, arena,
                    arena_cap, &pos, &ignored);
      if (rc) goto done;
      continue;
    }
    rc = reencode(params[i].value, params[i].value_len, tmp, arena, arena_cap,
                  &pos, &e->value);
    if (rc) goto done;
    used++;
  }
  qsort(ents, used, sizeof ents[0], qent_cmp);
  for (size_t i = 0; i < used; i++) {
    if (i) s3buf_addc(out, '&');
    s3buf_addstr(out, ents[i].name);
    s3buf_addc(out, '=');
    s3buf_addstr(out, ents[i].value);
  }
done:
  free(arena);
  free(tmp);
  return rc;
}

/* Append a header value trimmed, with inner runs of blanks collapsed. */
static void add_trimmed(struct s3buf *out, const char *v, size_t n) {
  size_t i = 0;
  while (i < n && is_ows(v[i])) i++;
  while (n > i && is_ows(v[n - 1])) n--;
  size_t run = i;
  while (i < n) {
    if (is_ows(v[i])) {
      s3buf_add(out, v + run, i - run);
      s3buf_addc(out, ' ');
      while (i < n && is_ows(v[i])) i++;
      run = i;
    } else {
      i++;
    }
  }
  s3buf_add(out, v + run, n - run);
}

s3sig_result s3sig_canonical_request(const struct s3sig_request *req,
                                     const char *signed_headers,
                                     const char *payload_hash, int presigned,
                                     int reencode_path, struct s3buf *out) {
  const char *t = req->target ? req->target : "";
  size_t tlen = req->target ? req->target_len : 0;
  if (tlen > S3SIG_MAX_TARGET) return S3SIG_TOO_LARGE;
  const char *qm = memchr(t, '?', tlen);
  size_t plen = qm ? (size_t)(qm - t) : tlen;
  const char *q = qm ? qm + 1 : t + tlen;
  size_t qlen = qm ? tlen - plen - 1 : 0;
  s3sig_result rc;

  s3buf_addstr(out, req->method);
  s3buf_addc(out, '\n');
  if (plen == 0) {
    s3buf_addc(out, '/');
  } else if (!reencode_path) {
    s3buf_add(out, t, plen);
  } else {
    char *dec = malloc(plen + 1), *enc = malloc(3 * plen + 1);
    size_t dlen, elen;
    rc = S3SIG_OK;
    if (!dec || !enc) rc = S3SIG_NOMEM;
    else if (s3url_decode(dec, plen + 1, t, plen, S3URL_REJECT_NUL, &dlen))
      rc = S3SIG_BAD_TARGET;
    else if (s3url_encode(enc, 3 * plen + 1, dec, dlen, S3URL_KEEP_SLASH, &elen))
      rc = S3SIG_NOMEM;
    else
      s3buf_add(out, enc, elen);
    free(dec);
    free(enc);
    if (rc) return rc;
  }
  s3buf_addc(out, '\n');
  rc = canonical_query(q, qlen, presigned, out);
  if (rc) return rc;
  s3buf_addc(out, '\n');

  /* Canonical headers, in the order of the signed list. */
  const char *p = signed_headers;
  for (;;) {
    const char *e = strchr(p, ';');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char name[S3SIG_MAX_SIGNED_HEADERS + 1];
    if (len >= sizeof name) return S3SIG_TOO_LARGE;
    memcpy(name, p, len);
    name[len] = '\0';
    size_t vlen = 0;
    const char *v = req->header ? req->header(req->header_ctx, name, &vlen) : NULL;
    if (!v) vlen = 0;
    if (vlen > S3SIG_MAX_HEADER_VALUE) return S3SIG_TOO_LARGE;
    s3buf_add(out, name, len);
    s3buf_addc(out, ':');
    if (v) add_trimmed(out, v, vlen);
    s3buf_addc(out, '\n');
    if (!e) break;
    p = e + 1;
  }
  s3buf_addc(out, '\n');
  s3buf_addstr(out, signed_headers);
  s3buf_addc(out, '\n');
  s3buf_addstr(out, payload_hash);
  if (out->err == S3BUF_TOO_BIG) return S3SIG_TOO_LARGE;
  if (out->err) return S3SIG_NOMEM;
  return S3SIG_OK;
}

/* --- verification -------------------------------------------------------- */

static const struct {
  const char *token;
  s3sig_payload kind;
} payload_tokens[] = {
    {"UNSIGNED-PAYLOAD", S3SIG_PAYLOAD_UNSIGNED},
    {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", S3SIG_PAYLOAD_STREAMING},
    {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", S3SIG_PAYLOAD_STREAMING_TRAILER},
    {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", S3SIG_PAYLOAD_STREAMING_UNSIGNED_TRAILER},
};

static s3sig_result classify_payload(const char *v, size_t n,
                                     struct s3sig_auth *auth) {
  for (size_t i = 0; i < sizeof payload_tokens / sizeof payload_tokens[0]; i++)
    if (streq_n(v, n, payload_tokens[i].token)) {
      auth->payload = payload_tokens[i].kind;
      return S3SIG_OK;
    }
  if (n > 24 && memcmp(v, "STREAMING-AWS4-ECDSA-P256", 25) == 0)
    return S3SIG_UNSUPPORTED_PAYLOAD;
  uint8_t d[32];
  if (s3_unhex(v, n, d, 32)) return S3SIG_BAD_CONTENT_SHA256;
  auth->payload = S3SIG_PAYLOAD_SHA256;
  s3_hex(d, 32, auth->payload_hash);
  return S3SIG_OK;
}

static const char *hdr(const struct s3sig_request *req, const char *name,
                       size_t *len) {
  *len = 0;
  if (!req->header) return NULL;
  const char *v = req->header(req->header_ctx, name, len);
  if (!v) *len = 0;
  return v;
}

static int query_has(const char *q, size_t n, const char *name) {
  struct s3url_param params[S3SIG_MAX_QUERY_PARAMS];
  size_t count;
  if (s3url_split_query(q, n, params, S3SIG_MAX_QUERY_PARAMS, &count))
    return 0;
  return s3url_find_param(params, count, name) >= 0;
}

s3sig_result s3sig_verify(const struct s3sig_request *req,
                          struct s3sig_auth *auth) {
  struct s3sig_parsed ps;
  s3sig_result rc;
  memset(auth, 0, sizeof *auth);

  if (req->target_len > S3SIG_MAX_TARGET) return S3SIG_TOO_LARGE;
  const char *t = req->target ? req->target : "";
  const char *qm = memchr(t, '?', req->target_len);
  const char *q = qm ? qm + 1 : "";
  size_t qlen = qm ? req->target_len - (size_t)(qm - t) - 1 : 0;

  {
    struct s3url_param params[S3SIG_MAX_QUERY_PARAMS];
    size_t count;
    if (s3url_split_query(q, qlen, params, S3SIG_MAX_QUERY_PARAMS, &count))
      return S3SIG_BAD_TARGET;
  }
  size_t alen;
  const char *authz = hdr(req, "authorization", &alen);
  int query_auth = query_has(q, qlen, "X-Amz-Algorithm") ||
                   query_has(q, qlen, "X-Amz-Credential") ||
                   query_has(q, qlen, "X-Amz-Signature");
  if (authz && query_auth) return S3SIG_AMBIGUOUS;
  if (authz) {
    rc = s3sig_parse_authorization(authz, alen, &ps);
    if (rc) return rc;
  } else if (query_auth) {
    rc = s3sig_parse_presigned(q, qlen, &ps);
    if (rc) return rc;
    auth->presigned = 1;
  } else {
    if (query_has(q, qlen, "AWSAccessKeyId") && query_has(q, qlen, "Signature"))
      return S3SIG_UNSUPPORTED; /* SigV2 presigned URL */
    return S3SIG_MISSING;
  }
  const s3sig_result malformed =
      auth->presigned ? S3SIG_QUERY_MALFORMED : S3SIG_MALFORMED;

  memcpy(auth->access_key, ps.access_key, sizeof auth->access_key);
  memcpy(auth->region, ps.region, sizeof auth->region);
  s3_hex(ps.signature, 32, auth->signature);

  /* The scope. */
  if (strcmp(ps.service, "s3") != 0) return malformed;
  if (req->region && strcmp(ps.region, req->region) != 0)
    return auth->presigned ? S3SIG_QUERY_MALFORMED : S3SIG_WRONG_REGION;
  if (!signed_has(ps.signed_headers, "host")) return malformed;
  size_t sl = 0;
  memcpy(auth->scope, ps.date, 8);
  sl = 8;
  auth->scope[sl++] = '/';
  size_t rl = strlen(ps.region), svl = strlen(ps.service);
  memcpy(auth->scope + sl, ps.region, rl);
  sl += rl;
  auth->scope[sl++] = '/';
  memcpy(auth->scope + sl, ps.service, svl);
  sl += svl;
  memcpy(auth->scope + sl, "/aws4_request", 14);

  /* The payload the client declared. A valid value is at most 64 bytes
     (a hex digest; the tokens are shorter) and goes into the canonical
     request exactly as sent. */
  char payload_line[65];
  if (!auth->presigned) {
    size_t vlen;
    const char *v = hdr(req, "x-amz-content-sha256", &vlen);
    if (!v) return S3SIG_MISSING_CONTENT_SHA256;
    rc = classify_payload(v, vlen, auth);
    if (rc) return rc;
    if (copy_str(payload_line, sizeof payload_line, v, vlen))
      return S3SIG_BAD_CONTENT_SHA256;
  } else if (ps.content_sha256[0]) {
    rc = classify_payload(ps.content_sha256, strlen(ps.content_sha256), auth);
    if (rc) return rc;
    if (auth->payload != S3SIG_PAYLOAD_SHA256 &&
        auth->payload != S3SIG_PAYLOAD_UNSIGNED)
      return S3SIG_BAD_CONTENT_SHA256; /* no streaming with presigned URLs */
    memcpy(payload_line, ps.content_sha256, sizeof payload_line);
  } else {
    auth->payload = S3SIG_PAYLOAD_UNSIGNED;
    memcpy(payload_line, "UNSIGNED-PAYLOAD", 17);
  }

  /* The request time. */
  time_t when;
  if (auth->presigned) {
    s3sig_parse_amz_date(ps.amz_date, 16, &when); /* validated by the parser */
    memcpy(auth->amz_date, ps.amz_date, 17);
  } else {
    size_t dlen;
    const char *d = hdr(req, "x-amz-date", &dlen);
    int bad = d ? s3sig_parse_amz_date(d, dlen, &when) : -1;
    if (!d) {
      d = hdr(req, "date", &dlen);
      bad = d ? s3_http_date_parse(d, dlen, &when) : -1;
    }
    if (bad) return S3SIG_MISSING_DATE;
    s3sig_format_amz_date(when, auth->amz_date);
  }
  auth->request_time = when;
  if (memcmp(auth->amz_date, ps.date, 8) != 0)
    return malformed; /* credential date is not the request date */

  /* The key. */
  char secret[S3SIG_MAX_SECRET + 1];
  size_t secret_len = req->secret
                          ? req->secret(req->secret_ctx, ps.access_key, secret,
                                        sizeof secret)
                          : 0;
  if (secret_len == 0 || secret_len > S3SIG_MAX_SECRET) {
    explicit_bzero(secret, sizeof secret);
    return S3SIG_INVALID_ACCESS_KEY;
  }

  /* The time window. */
  if (auth->presigned) {
    if (when > req->now && when - req->now > S3SIG_MAX_SKEW) {
      rc = S3SIG_NOT_YET_VALID;
    } else if (req->now > when && (uint64_t)(req->now - when) > ps.expires) {
      rc = S3SIG_EXPIRED;
    } else {
      rc = S3SIG_OK;
    }
  } else {
    int64_t skew = (int64_t)req->now - (int64_t)when;
    rc = (skew > S3SIG_MAX_SKEW || skew < -S3SIG_MAX_SKEW) ? S3SIG_TIME_SKEWED
                                                          : S3SIG_OK;
  }
  if (rc) {
    explicit_bzero(secret, sizeof secret);
    return rc;
  }

  s3sig_signing_key(secret, secret_len, ps.date, ps.region, ps.service,
                    auth->signing_key);
  explicit_bzero(secret, sizeof secret);

  /* The signature: first over the raw path, then -- only if that fails and
     it makes a difference -- over the decoded and AWS re-encoded path. */
  rc = S3SIG_SIGNATURE_MISMATCH;
  for (int attempt = 0; attempt < 2 && rc == S3SIG_SIGNATURE_MISMATCH; attempt++) {
    struct s3buf canon, sts;
    s3buf_init(&canon, S3SIG_MAX_CANONICAL);
    s3buf_init(&sts, S3SIG_MAX_CANONICAL);
    s3sig_result r = s3sig_canonical_request(req, ps.signed_headers, payload_line,
                                             auth->presigned, attempt, &canon);
    if (r) {
      s3buf_free(&canon);
      s3buf_free(&sts);
      if (attempt == 0) rc = r;
      break;
    }
    if (attempt == 1 && auth->canonical_request &&
        strcmp(canon.p, auth->canonical_request) == 0) {
      s3buf_free(&canon);
      s3buf_free(&sts);
      break; /* same as the raw form: nothing new to try */
    }
    char h[65];
    s3_sha256_hex(canon.p, canon.len, h);
    s3buf_addstr(&sts, ALGORITHM);
    s3buf_addc(&sts, '\n');
    s3buf_addstr(&sts, auth->amz_date);
    s3buf_addc(&sts, '\n');
    s3buf_addstr(&sts, auth->scope);
    s3buf_addc(&sts, '\n');
    s3buf_addstr(&sts, h);
    if (sts.err) {
      s3buf_free(&canon);
      s3buf_free(&sts);
      rc = S3SIG_NOMEM;
      break;
    }
    uint8_t mac[32];
    hmac256(auth->signing_key, 32, sts.p, sts.len, mac);
    if (memeql_sec(mac, ps.signature, 32)) {
      rc = S3SIG_OK;
      s3buf_free(&canon);
      s3buf_free(&sts);
    } else if (attempt == 0) {
      /* Keep the raw form for the error body. */
      auth->canonical_request = s3buf_take(&canon, NULL);
      auth->string_to_sign = s3buf_take(&sts, NULL);
    } else {
      s3buf_free(&canon);
      s3buf_free(&sts);
    }
  }
  if (rc == S3SIG_OK) {
    free(auth->canonical_request);
    free(auth->string_to_sign);
    auth->canonical_request = auth->string_to_sign = NULL;
  } else {
    if (rc != S3SIG_SIGNATURE_MISMATCH) {
      free(auth->canonical_request);
      free(auth->string_to_sign);
      auth->canonical_request = auth->string_to_sign = NULL;
    }
    explicit_bzero(auth->signing_key, sizeof auth->signing_key);
  }
  return rc;
}

void s3sig_auth_free(struct s3sig_auth *auth) {
  if (!auth) return;
  free(auth->canonical_request);
  free(auth->string_to_sign);
  auth->canonical_request = auth->string_to_sign = NULL;
  explicit_bzero(auth->signing_key, sizeof auth->signing_key);
}

struct s3sig_error s3sig_error(s3sig_result rc) {
  struct s3sig_error e = {"InternalError", 500,
                          "We encountered an internal error. Please try again."};
  switch (rc) {
  case S3SIG_OK: e = (struct s3sig_error){"", 200, ""}; break;
  case S3SIG_MISSING:
    e = (struct s3sig_error){"AccessDenied", 403, "Access Denied"};
    break;
  case S3SIG_UNSUPPORTED:
    e = (struct s3sig_error){"InvalidRequest", 400,
                             "The authorization mechanism you have provided is "
                             "not supported. Please use AWS4-HMAC-SHA256."};
    break;
  case S3SIG_AMBIGUOUS:
    e = (struct s3sig_error){"InvalidArgument", 400,
                             "Only one auth mechanism allowed; only the "
                             "X-Amz-Algorithm query parameter, Signature query "
                             "string parameter or the Authorization header "
                             "should be specified"};
    break;
  case S3SIG_MALFORMED:
    e = (struct s3sig_error){"AuthorizationHeaderMalformed", 400,
                             "The authorization header is malformed."};
    break;
  case S3SIG_QUERY_MALFORMED:
    e = (struct s3sig_error){
        "AuthorizationQueryParametersError", 400,
        "Query-string authentication version 4 requires the X-Amz-Algorithm, "
        "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
        "and X-Amz-Expires parameters, with X-Amz-Expires between 1 and "
        "604800 and a credential scope for this region and service s3."};
    break;
  case S3SIG_WRONG_REGION:
    e = (struct s3sig_error){"AuthorizationHeaderMalformed", 400,
                             "The authorization header is malformed; the "
                             "region in the credential scope is wrong."};
    break;
  case S3SIG_BAD_TARGET:
    e = (struct s3sig_error){"InvalidURI", 400, "Couldn't parse the specified URI."};
    break;
  case S3SIG_MISSING_CONTENT_SHA256:
    e = (struct s3sig_error){"InvalidRequest", 400,
                             "Missing required header for this request: "
                             "x-amz-content-sha256"};
    break;
  case S3SIG_BAD_CONTENT_SHA256:
    e = (struct s3sig_error){"InvalidArgument", 400,
                             "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                             "STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], "
                             "STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a valid "
                             "sha256 value."};
    break;
  case S3SIG_UNSUPPORTED_PAYLOAD:
    e = (struct s3sig_error){"NotImplemented", 501,
                             "ECDSA streaming signatures are not implemented."};
    break;
  case S3SIG_MISSING_DATE:
    e = (struct s3sig_error){"AccessDenied", 403,
                             "AWS authentication requires a valid Date or "
                             "x-amz-date header"};
    break;
  case S3SIG_INVALID_ACCESS_KEY:
    e = (struct s3sig_error){"InvalidAccessKeyId", 403,
                             "The AWS Access Key Id you provided does not "
                             "exist in our records."};
    break;
  case S3SIG_TIME_SKEWED:
    e = (struct s3sig_error){"RequestTimeTooSkewed", 403,
                             "The difference between the request time and the "
                             "current time is too large."};
    break;
  case S3SIG_EXPIRED:
    e = (struct s3sig_error){"AccessDenied", 403, "Request has expired"};
    break;
  case S3SIG_NOT_YET_VALID:
    e = (struct s3sig_error){"AccessDenied", 403, "Request is not valid yet"};
    break;
  case S3SIG_SIGNATURE_MISMATCH:
    e = (struct s3sig_error){"SignatureDoesNotMatch", 403,
                             "The request signature we calculated does not "
                             "match the signature you provided. Check your key "
                             "and signing method."};
    break;
  case S3SIG_TOO_LARGE:
    e = (struct s3sig_error){"RequestHeaderSectionTooLarge", 400,
                             "Your request header section exceeds the maximum "
                             "allowed size."};
    break;
  case S3SIG_NOMEM: break;
  }
  return e;
}
