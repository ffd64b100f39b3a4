/*
 * fuzz_chunked.c -- the aws-chunked decoder (s3d/chunked.c), signed and
 * unsigned, with and without trailers, fed in slices whose sizes come from
 * the input.
 *
 * Input: a flag byte, a slice table (a count byte k, then k slice sizes,
 * 0 meaning 4096), then
 *   raw mode (flag 0x80 clear): the body itself (flag 0x04: a 16-bit
 *     x-amz-decoded-content-length precedes it; flag 0x08: max_chunk 16);
 *   built mode (flag 0x80 set): a mutation (16-bit position, xor byte),
 *     chunk records (length byte, data; 0 ends them) and trailer lines
 *     "name:value\n". The harness frames and signs them as a client does
 *     (flag 0x10: the blank line some writers put before the trailers;
 *     0x20: send the true decoded length; 0x08: send it off by one; 0x40:
 *     each chunk's data 64 times over).
 * Flags 0x01 and 0x02 are S3CHUNK_SIGNED and S3CHUNK_TRAILER. The signing
 * context is the AWS example's (secret, 20130524, us-east-1).
 *
 * Checked beyond memory safety:
 *  - raw: feeding the body in the given slices gives the same result,
 *    decoded bytes and trailers as feeding it at once (or byte by byte);
 *  - built, unmutated: the body decodes (S3CHUNK_OK) to exactly the data,
 *    with every trailer's value, in any slicing; with a wrong decoded length
 *    it fails with S3CHUNK_LENGTH_MISMATCH;
 *  - built, mutated: whatever the outcome, decoded bytes never exceed the
 *    body and S3CHUNK_OK implies the decoded length, when sent, matched.
 */
#include <stdint.h>
#include <string.h>

#include "chunked.h"
#include "fuzz.h"
#include "sigv4.h"

#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define AMZ_DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"
#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static uint8_t g_key[32];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  s3sig_signing_key(SK, strlen(SK), "20130524", "us-east-1", "s3", g_key);
  return 0;
}

struct sink {
  struct s3buf b;
};

static int on_data(void *ctx, const uint8_t *p, size_t n) {
  struct sink *s = ctx;
  return s3buf_add(&s->b, p, n) != S3BUF_OK;
}

struct outcome {
  s3chunk_result rc;
  int done;
  struct s3buf data;
  struct s3chunk_trailer trailers[S3CHUNK_MAX_TRAILERS];
  size_t ntrailers;
};

static void decode(const uint8_t *body, size_t n, unsigned flags, int64_t dlen,
                   uint64_t max_chunk, const size_t *slices, size_t nslices,
                   struct outcome *o) {
  struct s3chunk_config cfg = {0};
  cfg.flags = flags;
  cfg.signing_key = g_key;
  cfg.amz_date = AMZ_DATE;
  cfg.scope = SCOPE;
  cfg.seed_signature = SEED;
  cfg.max_chunk = max_chunk;
  cfg.decoded_length = dlen;
  cfg.on_data = on_data;
  struct sink s;
  s3buf_init(&s.b, 1u << 24);
  cfg.ctx = &s;
  struct s3chunk d;
  s3chunk_init(&d, &cfg);
  s3chunk_result rc = S3CHUNK_OK;
  size_t i = 0, k = 0;
  while (i < n && rc == S3CHUNK_OK) {
    size_t len = nslices ? slices[k++ % nslices] : n;
    if (len > n - i) len = n - i;
    /* Exact-size copy: the decoder must not look past the slice. */
    uint8_t *piece = (uint8_t *)fz_dup(body + i, len);
    rc = s3chunk_feed(&d, piece, len);
    free(piece);
    i += len;
  }
  /* Sticky errors. */
  if (rc != S3CHUNK_OK) FZ_CHECK(s3chunk_feed(&d, "x", 1) == rc);
  s3chunk_result fin = s3chunk_finish(&d);
  if (rc != S3CHUNK_OK) FZ_CHECK(fin == rc, "finish %d after feed %d", fin, rc);
  o->rc = fin;
  o->done = s3chunk_done(&d);
  if (fin == S3CHUNK_OK) {
    FZ_CHECK(o->done);
    FZ_CHECK(d.ntrailers <= S3CHUNK_MAX_TRAILERS);
    FZ_CHECK(s3chunk_trailer_value(&d, "x-amz-trailer-signature") == NULL);
    if (dlen >= 0) FZ_CHECK((uint64_t)dlen == s.b.len);
  }
  o->ntrailers = d.ntrailers;
  memcpy(o->trailers, d.trailers, sizeof d.trailers);
  FZ_CHECK(s.b.len <= n);
  o->data = s.b;
  s3chunk_wipe(&d);
}

static void same(const struct outcome *a, const struct outcome *b) {
  FZ_CHECK(a->rc == b->rc, "result %d vs %d", a->rc, b->rc);
  FZ_CHECK(a->done == b->done);
  if (a->rc != S3CHUNK_OK) return; /* data before an error may differ */
  FZ_CHECK(a->data.len == b->data.len &&
           (a->data.len == 0 || !memcmp(a->data.p, b->data.p, a->data.len)));
  FZ_CHECK(a->ntrailers == b->ntrailers);
  for (size_t i = 0; i < a->ntrailers; i++)
    FZ_CHECK(!strcmp(a->trailers[i].name, b->trailers[i].name) &&
             !strcmp(a->trailers[i].value, b->trailers[i].value));
}

/* ---- built mode: frame and sign like a client ------------------------- */

static void sign_chunk(const char *prev, const uint8_t *p, size_t n, char out[65]) {
  char h[65];
  s3_sha256_hex(p, n, h);
  struct s3buf sts;
  s3buf_init(&sts, 1024);
  s3buf_addstr(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n" AMZ_DATE "\n" SCOPE "\n");
  s3buf_addstr(&sts, prev);
  s3buf_addstr(&sts, "\n" EMPTY_SHA "\n");
  s3buf_addstr(&sts, h);
  s3sig_hmac_hex(g_key, sts.p, sts.len, out);
  s3buf_free(&sts);
}

static int tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

struct trailer {
  char name[S3CHUNK_MAX_TRAILER_NAME + 1];
  char value[S3CHUNK_MAX_TRAILER_VALUE + 1];
};

static int tcmp(const void *a, const void *b) {
  return strcmp(((const struct trailer *)a)->name, ((const struct trailer *)b)->name);
}

/* Make trailer lines valid: names lower-case tchars, values visible ASCII
   trimmed, no duplicates, at most S3CHUNK_MAX_TRAILERS. */
static size_t clean_trailers(struct fz *f, struct trailer *t) {
  size_t n = 0;
  while (f->n && n < S3CHUNK_MAX_TRAILERS) {
    size_t ll;
    const char *line = fz_until(f, '\n', &ll);
    const char *colon = memchr(line, ':', ll);
    if (!colon) continue;
    size_t nl = 0, vl = 0;
    for (const char *c = line; c < colon && nl < S3CHUNK_MAX_TRAILER_NAME; c++) {
      unsigned char ch = (unsigned char)*c;
      if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch + 32);
      if (tchar(ch)) t[n].name[nl++] = (char)ch;
    }
    t[n].name[nl] = '\0';
    char *val = t[n].value;
    for (const char *v = colon + 1; v < line + ll && vl < S3CHUNK_MAX_TRAILER_VALUE; v++)
      if ((unsigned char)*v >= 0x20 && (unsigned char)*v < 0x7f) val[vl++] = *v;
    while (vl && val[vl - 1] == ' ') vl--;
    size_t lead = 0;
    while (lead < vl && val[lead] == ' ') lead++;
    memmove(val, val + lead, vl - lead);
    val[vl - lead] = '\0';
    if (!nl || !strcmp(t[n].name, "x-amz-trailer-signature")) continue;
    int dup = 0;
    for (size_t i = 0; i < n; i++) dup |= !strcmp(t[i].name, t[n].name);
    if (!dup) n++;
  }
  return n;
}

static void built(struct fz *f, unsigned flags, uint8_t fl, const size_t *slices,
                  size_t nslices) {
  size_t pos = (size_t)fz_uint(f, 2);
  uint8_t xor = fz_u8(f);
  int rep = fl & 0x40 ? 64 : 1;
  struct s3buf body, data;
  s3buf_init(&body, 1u << 24);
  s3buf_init(&data, 1u << 24);
  char prev[65], sig[65], line[128];
  memcpy(prev, SEED, 65);
  for (;;) {
    size_t len = fz_u8(f);
    if (len > f->n) len = f->n;
    const uint8_t *p = f->p;
    f->p += len;
    f->n -= len;
    size_t start = data.len;
    for (int r = 0; r < rep; r++) s3buf_add(&data, p, len);
    size_t cl = data.len - start;
    const uint8_t *chunk = cl ? (const uint8_t *)data.p + start : (const uint8_t *)"";
    if (flags & S3CHUNK_SIGNED) {
      sign_chunk(prev, chunk, cl, sig);
      snprintf(line, sizeof line, "%zx;chunk-signature=%s\r\n", cl, sig);
      memcpy(prev, sig, 65);
    } else {
      snprintf(line, sizeof line, "%zX\r\n", cl);
    }
    s3buf_addstr(&body, line);
    if (cl == 0) break;
    s3buf_add(&body, chunk, cl);
    s3buf_addstr(&body, "\r\n");
  }
  struct trailer t[S3CHUNK_MAX_TRAILERS];
  size_t nt = 0;
  if (flags & S3CHUNK_TRAILER) {
    nt = clean_trailers(f, t);
    if (fl & 0x10) s3buf_addstr(&body, "\r\n");
    for (size_t i = 0; i < nt; i++) {
      s3buf_addstr(&body, t[i].name);
      s3buf_addstr(&body, ":");
      s3buf_addstr(&body, t[i].value);
      s3buf_addstr(&body, "\r\n");
    }
    if ((flags & S3CHUNK_SIGNED) && nt) {
      struct trailer sorted[S3CHUNK_MAX_TRAILERS];
      memcpy(sorted, t, nt * sizeof t[0]);
      qsort(sorted, nt, sizeof sorted[0], tcmp);
      struct s3buf canon, sts;
      s3buf_init(&canon, 1u << 16);
      for (size_t i = 0; i < nt; i++) {
        s3buf_addstr(&canon, sorted[i].name);
        s3buf_addc(&canon, ':');
        s3buf_addstr(&canon, sorted[i].value);
        s3buf_addc(&canon, '\n');
      }
      char h[65];
      s3_sha256_hex(canon.p, canon.len, h);
      s3buf_init(&sts, 1024);
      s3buf_addstr(&sts, "AWS4-HMAC-SHA256-TRAILER\n" AMZ_DATE "\n" SCOPE "\n");
      s3buf_addstr(&sts, prev);
      s3buf_addc(&sts, '\n');
      s3buf_addstr(&sts, h);
      s3sig_hmac_hex(g_key, sts.p, sts.len, sig);
      s3buf_addstr(&body, "x-amz-trailer-signature:");
      s3buf_addstr(&body, sig);
      s3buf_addstr(&body, "\r\n");
      s3buf_free(&canon);
      s3buf_free(&sts);
    }
  }
  s3buf_addstr(&body, "\r\n");
  FZ_CHECK(!body.err && !data.err);

  int64_t dlen = -1;
  if (fl & 0x20) dlen = (int64_t)data.len;
  if (fl & 0x08) dlen = (int64_t)data.len + 1;
  int mutated = xor != 0 && pos < body.len;
  if (mutated) body.p[pos] ^= (char)xor;

  struct outcome o;
  decode((const uint8_t *)body.p, body.len, flags, dlen, 0, slices, nslices, &o);
  if (!mutated) {
    if (fl & 0x08) {
      FZ_CHECK(o.rc == S3CHUNK_LENGTH_MISMATCH, "rc %d with a wrong decoded length",
               o.rc);
    } else {
      FZ_CHECK(o.rc == S3CHUNK_OK, "client-framed body refused: %s\n%.*s",
               s3chunk_strerror(o.rc), (int)(body.len > 2000 ? 2000 : body.len), body.p);
      FZ_CHECK(o.data.len == data.len &&
               (data.len == 0 || !memcmp(o.data.p, data.p, data.len)));
      FZ_CHECK(o.ntrailers == nt);
      for (size_t i = 0; i < nt; i++) {
        int found = 0;
        for (size_t j = 0; j < o.ntrailers; j++)
          if (!strcmp(o.trailers[j].name, t[i].name)) {
            FZ_CHECK(!strcmp(o.trailers[j].value, t[i].value), "trailer %s: \"%s\" vs \"%s\"",
                     t[i].name, o.trailers[j].value, t[i].value);
            found = 1;
          }
        FZ_CHECK(found, "trailer %s lost", t[i].name);
      }
    }
  }
  s3buf_free(&o.data);
  s3buf_free(&body);
  s3buf_free(&data);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  struct fz f = {in, size};
  uint8_t fl = fz_u8(&f);
  unsigned flags = fl & (S3CHUNK_SIGNED | S3CHUNK_TRAILER);
  size_t nslices = fz_u8(&f) % 16, slices[16];
  for (size_t i = 0; i < nslices; i++) {
    size_t v = fz_u8(&f);
    slices[i] = v ? v : 4096;
  }
  if (fl & 0x80) {
    built(&f, flags, fl, slices, nslices);
    return 0;
  }
  int64_t dlen = fl & 0x04 ? (int64_t)fz_uint(&f, 2) : -1;
  uint64_t max_chunk = fl & 0x08 ? 16 : 0;
  size_t n;
  const uint8_t *body = (const uint8_t *)fz_rest(&f, &n);
  struct outcome whole, sliced;
  decode(body, n, flags, dlen, max_chunk, NULL, 0, &whole);
  if (nslices) {
    decode(body, n, flags, dlen, max_chunk, slices, nslices, &sliced);
  } else {
    size_t one = 1;
    decode(body, n, flags, dlen, max_chunk, &one, 1, &sliced);
  }
  same(&whole, &sliced);
  s3buf_free(&whole.data);
  s3buf_free(&sliced.data);
  return 0;
}
