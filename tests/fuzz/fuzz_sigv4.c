/*
 * fuzz_sigv4.c -- SigV4 (s3d/sigv4.c): the Authorization header, presigned
 * query parameters, the canonical request and the whole verifier.
 *
 * Input: a mode byte, a flag byte, then text.
 *   mode 0  the text is an Authorization header value
 *   mode 1  the text is a query string (presigned parameters)
 *   mode 2  "METHOD\nTARGET\nname:value\n..." verified by s3sig_verify()
 *   mode 3  "METHOD\nTARGET\nSIGNED-HEADERS\nPAYLOAD\nname:value\n..." given
 *           to s3sig_canonical_request() directly
 * Every mode also runs the amz-date parser over the text.
 *
 * Checked beyond memory safety:
 *  - what the two parsers accept, written back in canonical form, parses
 *    to the same result (access key, scope, signed headers, signature...);
 *  - the verifier's results are consistent (diagnostics only with
 *    SignatureDoesNotMatch, a well-formed scope on success), and a request
 *    that failed only on its signature verifies once the correct
 *    signature -- computed from the string to sign the server reported --
 *    is put in its place (so the signature never feeds the canonical
 *    request, and verification is deterministic);
 *  - the canonical request has its six parts, its query sorted by
 *    (name, value) and AWS-encoded, and ends with the signed headers and
 *    the payload hash.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fuzz.h"
#include "sigv4.h"
#include "urlenc.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 ((time_t)1369353600)
#define MAX_HDRS 32

struct hdrs {
  const char *name[MAX_HDRS], *value[MAX_HDRS];
  size_t nlen[MAX_HDRS], vlen[MAX_HDRS];
  size_t n;
  const char *auth_override; /* replaces "authorization" when set */
  size_t auth_len;
};

static const char *lookup(void *ctx, const char *name, size_t *len) {
  struct hdrs *h = ctx;
  if (h->auth_override && strcmp(name, "authorization") == 0) {
    *len = h->auth_len;
    return h->auth_override;
  }
  size_t k = strlen(name);
  for (size_t i = 0; i < h->n; i++)
    if (h->nlen[i] == k && strncasecmp(h->name[i], name, k) == 0) {
      *len = h->vlen[i];
      return h->value[i];
    }
  return NULL;
}

static size_t secret(void *ctx, const char *ak, char *out, size_t cap) {
  (void)ctx;
  if (strcmp(ak, "NOSUCHKEY") == 0 || cap < sizeof SECRET) return 0;
  memcpy(out, SECRET, sizeof SECRET);
  return sizeof SECRET - 1;
}

static int same_parsed(const struct s3sig_parsed *a, const struct s3sig_parsed *b) {
  return !strcmp(a->access_key, b->access_key) && !strcmp(a->date, b->date) &&
         !strcmp(a->region, b->region) && !strcmp(a->service, b->service) &&
         !strcmp(a->signed_headers, b->signed_headers) &&
         !memcmp(a->signature, b->signature, 32);
}

static void add_enc(struct s3buf *b, const char *s) {
  char tmp[3 * 2100 + 1];
  size_t k;
  if (s3url_encode(tmp, sizeof tmp, s, strlen(s), 0, &k) != S3URL_OK) abort();
  s3buf_add(b, tmp, k);
}

static void check_authorization(const char *v, size_t n) {
  struct s3sig_parsed p, q;
  s3sig_result rc = s3sig_parse_authorization(v, n, &p);
  if (rc != S3SIG_OK) return;
  FZ_CHECK(p.access_key[0] && strlen(p.date) == 8 && p.region[0] && p.service[0]);
  FZ_CHECK(p.signed_headers[0] && p.signed_headers[0] != ';');
  for (const char *c = p.signed_headers; *c; c++)
    FZ_CHECK(!(*c >= 'A' && *c <= 'Z') && !(c[0] == ';' && (c[1] == ';' || !c[1])));
  char hex[65];
  s3_hex(p.signature, 32, hex);
  struct s3buf b;
  s3buf_init(&b, 16384);
  s3buf_addstr(&b, "AWS4-HMAC-SHA256 Credential=");
  s3buf_addstr(&b, p.access_key);
  s3buf_addc(&b, '/');
  s3buf_addstr(&b, p.date);
  s3buf_addc(&b, '/');
  s3buf_addstr(&b, p.region);
  s3buf_addc(&b, '/');
  s3buf_addstr(&b, p.service);
  s3buf_addstr(&b, "/aws4_request, SignedHeaders=");
  s3buf_addstr(&b, p.signed_headers);
  s3buf_addstr(&b, ", Signature=");
  s3buf_addstr(&b, hex);
  FZ_CHECK(b.err == 0);
  rc = s3sig_parse_authorization(b.p, b.len, &q);
  FZ_CHECK(rc == S3SIG_OK && same_parsed(&p, &q), "rewritten header \"%s\" -> %d",
           b.p, rc);
  s3buf_free(&b);
}

static void check_presigned(const char *v, size_t n) {
  struct s3sig_parsed p, q;
  s3sig_result rc = s3sig_parse_presigned(v, n, &p);
  if (rc != S3SIG_OK) return;
  FZ_CHECK(p.expires >= 1 && p.expires <= S3SIG_MAX_EXPIRES);
  time_t t;
  FZ_CHECK(s3sig_parse_amz_date(p.amz_date, strlen(p.amz_date), &t) == 0);
  char hex[65], cred[512];
  s3_hex(p.signature, 32, hex);
  snprintf(cred, sizeof cred, "%s/%s/%s/%s/aws4_request", p.access_key, p.date,
           p.region, p.service);
  char exp[16];
  snprintf(exp, sizeof exp, "%lu", p.expires);
  struct s3buf b;
  s3buf_init(&b, 32768);
  s3buf_addstr(&b, "X-Amz-Signature=");
  s3buf_addstr(&b, hex);
  s3buf_addstr(&b, "&X-Amz-Credential=");
  add_enc(&b, cred);
  s3buf_addstr(&b, "&X-Amz-Date=");
  s3buf_addstr(&b, p.amz_date);
  s3buf_addstr(&b, "&X-Amz-Expires=");
  s3buf_addstr(&b, exp);
  s3buf_addstr(&b, "&X-Amz-SignedHeaders=");
  add_enc(&b, p.signed_headers);
  if (p.content_sha256[0]) {
    s3buf_addstr(&b, "&X-Amz-Content-Sha256=");
    add_enc(&b, p.content_sha256);
  }
  s3buf_addstr(&b, "&X-Amz-Algorithm=AWS4-HMAC-SHA256");
  FZ_CHECK(b.err == 0);
  rc = s3sig_parse_presigned(b.p, b.len, &q);
  FZ_CHECK(rc == S3SIG_OK && same_parsed(&p, &q) && !strcmp(p.amz_date, q.amz_date) &&
               p.expires == q.expires && !strcmp(p.content_sha256, q.content_sha256),
           "rewritten query \"%s\" -> %d", b.p, rc);
  s3buf_free(&b);
}

static void check_amz_date(const char *s, size_t n) {
  time_t t, t2;
  if (s3sig_parse_amz_date(s, n, &t) != 0) return;
  char out[17];
  s3sig_format_amz_date(t, out);
  FZ_CHECK(s3sig_parse_amz_date(out, 16, &t2) == 0 && t2 == t, "%.*s -> %s", (int)n, s,
           out);
}

/* "name:value" lines (without a colon: skipped) into h. */
static void parse_headers(struct fz *f, struct hdrs *h) {
  memset(h, 0, sizeof *h);
  while (f->n && h->n < MAX_HDRS) {
    size_t ll;
    const char *line = fz_until(f, '\n', &ll);
    const char *colon = memchr(line, ':', ll);
    if (!colon) continue;
    h->name[h->n] = line;
    h->nlen[h->n] = (size_t)(colon - line);
    h->value[h->n] = colon + 1;
    h->vlen[h->n] = ll - h->nlen[h->n] - 1;
    h->n++;
  }
}

/* The query parameter whose decoded name is X-Amz-Signature, or -1. */
static int find_sig_param(const char *q, size_t n, struct s3url_param *ps, size_t *np) {
  if (s3url_split_query(q, n, ps, S3SIG_MAX_QUERY_PARAMS, np)) return -1;
  return s3url_find_param(ps, *np, "X-Amz-Signature");
}

static void check_verify(struct fz *f, uint8_t flags) {
  size_t ml, tlen;
  const char *m = fz_until(f, '\n', &ml);
  const char *t = fz_until(f, '\n', &tlen);
  struct hdrs h;
  parse_headers(f, &h);
  char *method = fz_strdup(m, ml);
  char *target = fz_dup(t, tlen);
  /* Request time: around the AWS examples' date, sometimes far off. */
  time_t now = T20130524 + (time_t)((int8_t)(flags & 0xf8)) * 8;
  const char *region = (flags & 1) ? "us-east-1" : NULL;
  struct s3sig_request req = {method, target, tlen, lookup, &h, secret, NULL, now,
                              region};
  struct s3sig_auth auth;
  s3sig_result rc = s3sig_verify(&req, &auth);
  if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "s3sig_verify: %d (%s)\n", rc, s3sig_error(rc).code);
  FZ_CHECK(rc <= S3SIG_NOMEM);
  FZ_CHECK(rc != S3SIG_NOMEM, "verifier reports out of memory");
  if (rc == S3SIG_SIGNATURE_MISMATCH)
    FZ_CHECK(auth.canonical_request && auth.string_to_sign);
  else
    FZ_CHECK(!auth.canonical_request && !auth.string_to_sign);
  if (rc == S3SIG_OK) {
    FZ_CHECK(auth.access_key[0] && strlen(auth.amz_date) == 16);
    FZ_CHECK(strncmp(auth.scope, auth.amz_date, 8) == 0 &&
             strlen(auth.scope) > 8 + 1 + 1 + 3 + 13 &&
             strcmp(auth.scope + strlen(auth.scope) - 16, "/s3/aws4_request") == 0,
             "scope \"%s\"", auth.scope);
    if (region) FZ_CHECK(strcmp(auth.region, region) == 0);
  }

  /* Sign it as a client would, from the string to sign the server
     reported, and try again. */
  if (rc == S3SIG_SIGNATURE_MISMATCH) {
    const char *scope = auth.scope;
    char date[9], reg[S3SIG_MAX_REGION + 1];
    memcpy(date, scope, 8);
    date[8] = '\0';
    const char *r0 = scope + 9, *r1 = strchr(r0, '/');
    FZ_CHECK(r1 && (size_t)(r1 - r0) <= S3SIG_MAX_REGION);
    memcpy(reg, r0, (size_t)(r1 - r0));
    reg[r1 - r0] = '\0';
    uint8_t key[32];
    char sig[65];
    s3sig_signing_key(SECRET, strlen(SECRET), date, reg, "s3", key);
    s3sig_hmac_hex(key, auth.string_to_sign, strlen(auth.string_to_sign), sig);

    struct s3buf nb;
    s3buf_init(&nb, S3SIG_MAX_TARGET + 128);
    int retry = 0;
    if (!auth.presigned) {
      size_t alen;
      const char *av = lookup(&h, "authorization", &alen);
      struct s3sig_parsed p;
      if (av && s3sig_parse_authorization(av, alen, &p) == S3SIG_OK &&
          !strstr(p.signed_headers, "authorization")) {
        s3buf_addstr(&nb, "AWS4-HMAC-SHA256 Credential=");
        s3buf_addstr(&nb, p.access_key);
        s3buf_addc(&nb, '/');
        s3buf_addstr(&nb, p.date);
        s3buf_addc(&nb, '/');
        s3buf_addstr(&nb, p.region);
        s3buf_addc(&nb, '/');
        s3buf_addstr(&nb, p.service);
        s3buf_addstr(&nb, "/aws4_request,SignedHeaders=");
        s3buf_addstr(&nb, p.signed_headers);
        s3buf_addstr(&nb, ",Signature=");
        s3buf_addstr(&nb, sig);
        if (!nb.err) {
          h.auth_override = nb.p;
          h.auth_len = nb.len;
          retry = 1;
        }
      }
    } else {
      const char *qm = memchr(target, '?', tlen);
      struct s3url_param ps[S3SIG_MAX_QUERY_PARAMS];
      size_t np;
      int k = qm ? find_sig_param(qm + 1, tlen - (size_t)(qm - target) - 1, ps, &np) : -1;
      FZ_CHECK(k >= 0, "presigned without X-Amz-Signature");
      s3buf_add(&nb, target, (size_t)(ps[k].value - target));
      s3buf_addstr(&nb, sig);
      const char *after = ps[k].value + ps[k].value_len;
      s3buf_add(&nb, after, (size_t)(target + tlen - after));
      if (!nb.err) {
        req.target = nb.p;
        req.target_len = nb.len;
        retry = nb.len <= S3SIG_MAX_TARGET;
      }
    }
    if (retry) {
      struct s3sig_auth a2;
      s3sig_result rc2 = s3sig_verify(&req, &a2);
      FZ_CHECK(rc2 == S3SIG_OK, "correctly re-signed request: %d\n%s", rc2,
               auth.canonical_request);
      s3sig_auth_free(&a2);
    }
    h.auth_override = NULL;
    s3buf_free(&nb);
  }
  s3sig_auth_free(&auth);
  free(target);
  free(method);
}

static int encoded_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~')
      continue;
    if (c != '%' || i + 2 >= n) return 0;
    i += 2;
  }
  return 1;
}

static void check_canonical(struct fz *f, uint8_t flags) {
  /* METHOD \n TARGET \n SIGNED \n PAYLOAD \n headers */
  size_t ml, tlen, shl, pll;
  const char *m = fz_until(f, '\n', &ml);
  const char *t = fz_until(f, '\n', &tlen);
  const char *sh = fz_until(f, '\n', &shl);
  const char *pl = fz_until(f, '\n', &pll);
  struct hdrs h;
  parse_headers(f, &h);
  char *method = fz_strdup(m, ml);
  char *target = fz_dup(t, tlen);
  char *signed_headers = fz_strdup(sh, shl);
  char *payload = fz_strdup(pl, pll);
  struct s3sig_request req = {method, target, tlen, lookup, &h, NULL, NULL, 0, NULL};
  struct s3buf out;
  s3buf_init(&out, S3SIG_MAX_CANONICAL);
  s3sig_result rc = s3sig_canonical_request(&req, signed_headers, payload, flags & 1,
                                            flags & 2, &out);
  if (rc == S3SIG_OK && !memchr(method, '\n', strlen(method))) {
    size_t k = strlen(method);
    FZ_CHECK(out.len > k && !memcmp(out.p, method, k) && out.p[k] == '\n');
    /* The query line: third line. */
    const char *l2 = memchr(out.p + k + 1, '\n', out.len - k - 1);
    FZ_CHECK(l2);
    const char *l3 = memchr(l2 + 1, '\n', out.len - (size_t)(l2 + 1 - out.p));
    FZ_CHECK(l3);
    const char *q = l2 + 1;
    size_t qn = (size_t)(l3 - q);
    const char *prev = NULL;
    size_t prevn = 0;
    for (size_t i = 0; i < qn;) {
      const char *amp = memchr(q + i, '&', qn - i);
      size_t e = amp ? (size_t)(amp - q) : qn;
      const char *seg = q + i;
      size_t sn = e - i;
      const char *eq = memchr(seg, '=', sn);
      FZ_CHECK(eq, "query pair without '=': %.*s", (int)sn, seg);
      FZ_CHECK(encoded_ok(seg, (size_t)(eq - seg)) &&
               encoded_ok(eq + 1, sn - (size_t)(eq - seg) - 1));
      if (prev) {
        /* (name, value) order: compare names, then values. */
        const char *peq = memchr(prev, '=', prevn);
        size_t pn = (size_t)(peq - prev), cn = (size_t)(eq - seg);
        int c = memcmp(prev, seg, pn < cn ? pn : cn);
        if (c == 0) c = pn < cn ? -1 : pn > cn;
        if (c == 0) {
          size_t pv = prevn - pn - 1, cv = sn - cn - 1;
          c = memcmp(peq + 1, eq + 1, pv < cv ? pv : cv);
          if (c == 0) c = pv < cv ? -1 : pv > cv;
        }
        FZ_CHECK(c <= 0, "query not sorted: %.*s before %.*s", (int)prevn, prev,
                 (int)sn, seg);
      }
      prev = seg;
      prevn = sn;
      i = e + 1;
    }
    /* The tail: "\n" signed-headers "\n" payload. */
    size_t sl = strlen(signed_headers), pl2 = strlen(payload);
    FZ_CHECK(out.len >= sl + pl2 + 2 &&
             !memcmp(out.p + out.len - pl2, payload, pl2) &&
             out.p[out.len - pl2 - 1] == '\n' &&
             !memcmp(out.p + out.len - pl2 - 1 - sl, signed_headers, sl));
  }
  s3buf_free(&out);
  free(payload);
  free(signed_headers);
  free(target);
  free(method);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz f = {data, size};
  uint8_t mode = fz_u8(&f) & 3, flags = fz_u8(&f);
  struct fz all = f;
  size_t n;
  const char *rest = fz_rest(&all, &n);
  char *copy = fz_dup(rest, n);
  check_amz_date(copy, n);
  switch (mode) {
  case 0: check_authorization(copy, n); break;
  case 1: check_presigned(copy, n); break;
  case 2: check_verify(&f, flags); break;
  case 3: check_canonical(&f, flags); break;
  }
  free(copy);
  return 0;
}
