/*
 * chunked.c -- incremental aws-chunked decoder (see chunked.h).
 */
#include "chunked.h"

#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <stdlib.h>
#include <string.h>

enum {
  ST_HEADER,  /* reading "hex[;chunk-signature=...]" */
  ST_DATA,    /* inside chunk data */
  ST_DATA_CR, /* expecting the '\r' after the data */
  ST_DATA_LF, /* expecting the '\n' after the data */
  ST_TRAILER, /* reading trailer lines after the last chunk */
  ST_DONE
};

static const char EMPTY_SHA256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

int s3chunk_config_from_auth(struct s3chunk_config *cfg,
                             const struct s3sig_auth *auth,
                             int64_t decoded_length) {
  memset(cfg, 0, sizeof *cfg);
  switch (auth->payload) {
  case S3SIG_PAYLOAD_STREAMING: cfg->flags = S3CHUNK_SIGNED; break;
  case S3SIG_PAYLOAD_STREAMING_TRAILER:
    cfg->flags = S3CHUNK_SIGNED | S3CHUNK_TRAILER;
    break;
  case S3SIG_PAYLOAD_STREAMING_UNSIGNED_TRAILER: cfg->flags = S3CHUNK_TRAILER; break;
  default: return -1;
  }
  cfg->signing_key = auth->signing_key;
  cfg->amz_date = auth->amz_date;
  cfg->scope = auth->scope;
  cfg->seed_signature = auth->signature;
  cfg->decoded_length = decoded_length;
  return 0;
}

static void copy_cstr(char *dst, size_t cap, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= cap) n = cap - 1;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
}

void s3chunk_init(struct s3chunk *d, const struct s3chunk_config *cfg) {
  memset(d, 0, sizeof *d);
  d->flags = cfg->flags;
  if (cfg->flags & S3CHUNK_SIGNED) {
    if (cfg->signing_key) memcpy(d->key, cfg->signing_key, 32);
    copy_cstr(d->amz_date, sizeof d->amz_date, cfg->amz_date);
    copy_cstr(d->scope, sizeof d->scope, cfg->scope);
    copy_cstr(d->prev_sig, sizeof d->prev_sig, cfg->seed_signature);
  }
  d->max_chunk = cfg->max_chunk ? cfg->max_chunk : S3CHUNK_DEFAULT_MAX_CHUNK;
  d->decoded_length = cfg->decoded_length;
  d->on_data = cfg->on_data;
  d->ctx = cfg->ctx;
  d->state = ST_HEADER;
}

void s3chunk_wipe(struct s3chunk *d) {
  if (d) explicit_bzero(d->key, sizeof d->key);
}

int s3chunk_done(const struct s3chunk *d) { return d->state == ST_DONE; }

static s3chunk_result fail(struct s3chunk *d, s3chunk_result rc) {
  d->err = rc;
  return rc;
}

/* HMAC of the chained string to sign; the first line names the kind. */
static int check_sig(struct s3chunk *d, const char *kind, const char *hash1,
                     const char *hash2, const uint8_t want[32]) {
  struct hmac_sha256_ctx c;
  uint8_t mac[32];
  hmac_sha256_set_key(&c, 32, d->key);
  hmac_sha256_update(&c, strlen(kind), (const uint8_t *)kind);
  hmac_sha256_update(&c, 1, (const uint8_t *)"\n");
  hmac_sha256_update(&c, strlen(d->amz_date), (const uint8_t *)d->amz_date);
  hmac_sha256_update(&c, 1, (const uint8_t *)"\n");
  hmac_sha256_update(&c, strlen(d->scope), (const uint8_t *)d->scope);
  hmac_sha256_update(&c, 1, (const uint8_t *)"\n");
  hmac_sha256_update(&c, strlen(d->prev_sig), (const uint8_t *)d->prev_sig);
  hmac_sha256_update(&c, 1, (const uint8_t *)"\n");
  hmac_sha256_update(&c, strlen(hash1), (const uint8_t *)hash1);
  if (hash2) {
    hmac_sha256_update(&c, 1, (const uint8_t *)"\n");
    hmac_sha256_update(&c, strlen(hash2), (const uint8_t *)hash2);
  }
  hmac_sha256_digest(&c, sizeof mac, mac);
  explicit_bzero(&c, sizeof c);
  if (!memeql_sec(mac, want, 32)) return -1;
  s3_hex(want, 32, d->prev_sig); /* the chain continues from this one */
  return 0;
}

/* The current chunk's data is complete: verify its signature. */
static s3chunk_result end_of_chunk(struct s3chunk *d) {
  if (!(d->flags & S3CHUNK_SIGNED)) return S3CHUNK_OK;
  uint8_t dig[32];
  char hex[65];
  sha256_digest(&d->sha, sizeof dig, dig);
  s3_hex(dig, sizeof dig, hex);
  if (check_sig(d, "AWS4-HMAC-SHA256-PAYLOAD", EMPTY_SHA256, hex, d->chunk_sig))
    return fail(d, S3CHUNK_BAD_SIGNATURE);
  return S3CHUNK_OK;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static s3chunk_result chunk_header(struct s3chunk *d) {
  const char *s = d->line;
  size_t n = d->line_len, i = 0;
  uint64_t size = 0;
  while (i < n && hexval(s[i]) >= 0) {
    if (i == 16) return fail(d, S3CHUNK_MALFORMED); /* more than 64 bits */
    size = size << 4 | (uint64_t)hexval(s[i]);
    i++;
  }
  if (i == 0) return fail(d, S3CHUNK_MALFORMED);
  if (d->flags & S3CHUNK_SIGNED) {
    static const char ext[] = ";chunk-signature=";
    if (n - i != sizeof ext - 1 + 64 || memcmp(s + i, ext, sizeof ext - 1) != 0 ||
        s3_unhex(s + i + sizeof ext - 1, 64, d->chunk_sig, 32) != 0)
      return fail(d, S3CHUNK_MALFORMED);
  } else if (i != n) {
    return fail(d, S3CHUNK_MALFORMED);
  }
  if (size > d->max_chunk) return fail(d, S3CHUNK_TOO_LARGE);
  if (d->decoded_length >= 0 && size > (uint64_t)d->decoded_length - d->total)
    return fail(d, S3CHUNK_LENGTH_MISMATCH);
  if (d->flags & S3CHUNK_SIGNED) sha256_init(&d->sha);
  if (size == 0) {
    s3chunk_result rc = end_of_chunk(d);
    if (rc) return rc;
    d->state = ST_TRAILER;
    return S3CHUNK_OK;
  }
  d->remaining = size;
  d->state = ST_DATA;
  return S3CHUNK_OK;
}

static int trailer_cmp(const void *a, const void *b) {
  return strcmp(((const struct s3chunk_trailer *)a)->name,
                ((const struct s3chunk_trailer *)b)->name);
}

/* The blank line ending the trailers has been read. */
static s3chunk_result end_of_body(struct s3chunk *d) {
  if ((d->flags & S3CHUNK_SIGNED) && (d->flags & S3CHUNK_TRAILER) &&
      (d->ntrailers || d->have_trailer_sig)) {
    if (!d->have_trailer_sig) return fail(d, S3CHUNK_BAD_SIGNATURE);
    struct s3chunk_trailer sorted[S3CHUNK_MAX_TRAILERS];
    struct sha256_ctx c;
    uint8_t dig[32];
    char hex[65];
    memcpy(sorted, d->trailers, d->ntrailers * sizeof sorted[0]);
    qsort(sorted, d->ntrailers, sizeof sorted[0], trailer_cmp);
    sha256_init(&c);
    for (size_t i = 0; i < d->ntrailers; i++) {
      sha256_update(&c, strlen(sorted[i].name), (const uint8_t *)sorted[i].name);
      sha256_update(&c, 1, (const uint8_t *)":");
      sha256_update(&c, strlen(sorted[i].value), (const uint8_t *)sorted[i].value);
      sha256_update(&c, 1, (const uint8_t *)"\n");
    }
    sha256_digest(&c, sizeof dig, dig);
    s3_hex(dig, sizeof dig, hex);
    if (check_sig(d, "AWS4-HMAC-SHA256-TRAILER", hex, NULL, d->trailer_sig))
      return fail(d, S3CHUNK_BAD_SIGNATURE);
  }
  if (d->decoded_length >= 0 && d->total != (uint64_t)d->decoded_length)
    return fail(d, S3CHUNK_LENGTH_MISMATCH);
  d->state = ST_DONE;
  return S3CHUNK_OK;
}

static int tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static s3chunk_result trailer_line(struct s3chunk *d) {
  const char *s = d->line;
  size_t n = d->line_len;
  if (n == 0) {
    /* Some writers put the blank line of the empty last chunk before the
       trailers. With trailers announced, a blank line straight after the
       last chunk is the end only if the body ends there (s3chunk_finish). */
    if ((d->flags & S3CHUNK_TRAILER) && !d->maybe_done && !d->ntrailers &&
        !d->have_trailer_sig) {
      d->maybe_done = 1;
      return S3CHUNK_OK;
    }
    return end_of_body(d);
  }
  d->maybe_done = 0; /* trailers follow: the blank line was padding */
  if (!(d->flags & S3CHUNK_TRAILER)) return fail(d, S3CHUNK_MALFORMED);
  if (d->have_trailer_sig) return fail(d, S3CHUNK_MALFORMED); /* sig is last */
  const char *colon = memchr(s, ':', n);
  if (!colon || colon == s) return fail(d, S3CHUNK_MALFORMED);
  size_t nlen = (size_t)(colon - s);
  size_t v0 = nlen + 1, v1 = n;
  while (v0 < v1 && (s[v0] == ' ' || s[v0] == '\t')) v0++;
  while (v1 > v0 && (s[v1 - 1] == ' ' || s[v1 - 1] == '\t')) v1--;
  if (nlen > S3CHUNK_MAX_TRAILER_NAME || v1 - v0 > S3CHUNK_MAX_TRAILER_VALUE)
    return fail(d, S3CHUNK_MALFORMED);
  char name[S3CHUNK_MAX_TRAILER_NAME + 1];
  for (size_t i = 0; i < nlen; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!tchar(c)) return fail(d, S3CHUNK_MALFORMED);
    name[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
  }
  name[nlen] = '\0';
  for (size_t i = v0; i < v1; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 ? c != '\t' : c == 0x7f) return fail(d, S3CHUNK_MALFORMED);
  }
  if (strcmp(name, "x-amz-trailer-signature") == 0) {
    if (!(d->flags & S3CHUNK_SIGNED) ||
        s3_unhex(s + v0, v1 - v0, d->trailer_sig, 32) != 0)
      return fail(d, S3CHUNK_MALFORMED);
    d->have_trailer_sig = 1;
    return S3CHUNK_OK;
  }
  for (size_t i = 0; i < d->ntrailers; i++)
    if (strcmp(d->trailers[i].name, name) == 0) return fail(d, S3CHUNK_MALFORMED);
  if (d->ntrailers == S3CHUNK_MAX_TRAILERS) return fail(d, S3CHUNK_TOO_LARGE);
  struct s3chunk_trailer *t = &d->trailers[d->ntrailers++];
  memcpy(t->name, name, nlen + 1);
  memcpy(t->value, s + v0, v1 - v0);
  t->value[v1 - v0] = '\0';
  return S3CHUNK_OK;
}

/* Accumulate one CRLF-terminated line. Returns 1 when d->line holds a full
   line (without the CRLF), 0 when more input is needed, -1 on a bare CR or
   LF or a line over cap. *used gets the bytes consumed. */
static int take_line(struct s3chunk *d, const uint8_t *p, size_t n, size_t cap,
                     size_t *used) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i++];
    if (d->line_cr) {
      d->line_cr = 0;
      if (c != '\n') {
        *used = i;
        return -1;
      }
      d->line[d->line_len] = '\0';
      *used = i;
      return 1;
    }
    if (c == '\r') {
      d->line_cr = 1;
      continue;
    }
    if (c == '\n' || d->line_len == cap) {
      *used = i;
      return -1;
    }
    d->line[d->line_len++] = (char)c;
  }
  *used = i;
  return 0;
}

s3chunk_result s3chunk_feed(struct s3chunk *d, const void *pv, size_t n) {
  const uint8_t *p = pv;
  if (d->err) return d->err;
  while (n > 0) {
    size_t used = 0;
    int r;
    s3chunk_result rc = S3CHUNK_OK;
    switch (d->state) {
    case ST_HEADER:
    case ST_TRAILER:
      r = take_line(d, p, n,
                    d->state == ST_HEADER ? S3CHUNK_MAX_HEADER_LINE
                                          : S3CHUNK_MAX_TRAILER_LINE,
                    &used);
      if (r < 0) return fail(d, S3CHUNK_MALFORMED);
      if (r > 0) {
        rc = d->state == ST_HEADER ? chunk_header(d) : trailer_line(d);
        d->line_len = 0;
      }
      break;
    case ST_DATA: {
      size_t k = n;
      if ((uint64_t)k > d->remaining) k = (size_t)d->remaining;
      if (d->flags & S3CHUNK_SIGNED) sha256_update(&d->sha, k, p);
      if (d->on_data && d->on_data(d->ctx, p, k) != 0)
        return fail(d, S3CHUNK_ABORTED);
      d->remaining -= k;
      d->total += k;
      used = k;
      if (d->remaining == 0) {
        rc = end_of_chunk(d);
        d->state = ST_DATA_CR;
      }
      break;
    }
    case ST_DATA_CR:
      if (p[0] != '\r') return fail(d, S3CHUNK_MALFORMED);
      used = 1;
      d->state = ST_DATA_LF;
      break;
    case ST_DATA_LF:
      if (p[0] != '\n') return fail(d, S3CHUNK_MALFORMED);
      used = 1;
      d->state = ST_HEADER;
      break;
    case ST_DONE:
    default:
      return fail(d, S3CHUNK_MALFORMED); /* bytes after the end */
    }
    if (rc) return rc;
    p += used;
    n -= used;
  }
  return S3CHUNK_OK;
}

s3chunk_result s3chunk_finish(struct s3chunk *d) {
  if (d->err) return d->err;
  if (d->state == ST_DONE) return S3CHUNK_OK;
  if (d->state == ST_TRAILER && d->maybe_done && d->line_len == 0 && !d->line_cr)
    return end_of_body(d);
  return fail(d, S3CHUNK_TRUNCATED);
}

const char *s3chunk_trailer_value(const struct s3chunk *d, const char *name) {
  for (size_t i = 0; i < d->ntrailers; i++)
    if (strcmp(d->trailers[i].name, name) == 0) return d->trailers[i].value;
  return NULL;
}

const char *s3chunk_strerror(s3chunk_result rc) {
  switch (rc) {
  case S3CHUNK_OK: return "ok";
  case S3CHUNK_MALFORMED: return "malformed aws-chunked body";
  case S3CHUNK_BAD_SIGNATURE: return "chunk or trailer signature mismatch";
  case S3CHUNK_TRUNCATED: return "aws-chunked body truncated";
  case S3CHUNK_TOO_LARGE: return "chunk too large or too many trailers";
  case S3CHUNK_LENGTH_MISMATCH: return "decoded length differs from x-amz-decoded-content-length";
  case S3CHUNK_ABORTED: return "aborted by the data consumer";
  }
  return "unknown";
}
