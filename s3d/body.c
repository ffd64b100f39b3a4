/*
 * body.c -- the streaming request-body pipeline:
 *
 *   raw bytes --[aws-chunked decoder]--> data --+--> SHA-256 (signed payload)
 *                                               +--> x-amz-checksum-* algo
 *                                               +--> MD5 (buffered bodies)
 *                                               +--> sink: store_write() or
 *                                                    a capped buffer
 *
 * Nothing is buffered beyond what MHD hands us: a 5 GiB PUT streams through
 * in connection-buffer-sized slices.  Every check (chunk signatures, the
 * trailer, SHA-256, Content-MD5, the checksum) completes in body_finish(),
 * and only then may the caller commit the writer; otherwise body_free()
 * aborts it and nothing becomes visible.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3d.h"

int s3ck_to_store(s3ck_alg a) {
  switch (a) {
  case S3CK_CRC32: return STORE_CKSUM_CRC32;
  case S3CK_CRC32C: return STORE_CKSUM_CRC32C;
  case S3CK_CRC64NVME: return STORE_CKSUM_CRC64NVME;
  case S3CK_SHA1: return STORE_CKSUM_SHA1;
  case S3CK_SHA256: return STORE_CKSUM_SHA256;
  default: return STORE_CKSUM_NONE;
  }
}

s3ck_alg s3ck_from_store(int a) {
  switch (a) {
  case STORE_CKSUM_CRC32: return S3CK_CRC32;
  case STORE_CKSUM_CRC32C: return S3CK_CRC32C;
  case STORE_CKSUM_CRC64NVME: return S3CK_CRC64NVME;
  case STORE_CKSUM_SHA1: return S3CK_SHA1;
  case STORE_CKSUM_SHA256: return S3CK_SHA256;
  default: return S3CK_NONE;
  }
}

static void fail(struct body *b, enum s3err e, const char *msg) {
  if (b->err) return;
  b->err = e;
  b->err_msg = msg;
}

static void take_data(struct body *b, const uint8_t *p, size_t n) {
  if (b->err) return;
  if (n > b->limit - b->total) {
    fail(b, b->sink == SINK_BUF ? S3E_MaxMessageLengthExceeded
                                : S3E_EntityTooLarge, NULL);
    return;
  }
  b->total += n;
  if (b->check_sha256) sha256_update(&b->sha, n, p);
  if (b->ck_alg != S3CK_NONE) s3ck_update(&b->ck, p, n);
  switch (b->sink) {
  case SINK_WRITER: {
    int rc = store_write(b->w, p, n);
    if (rc) {
      b->store_rc = rc;
      fail(b, s3err_from_rc(rc), NULL);
    }
    break;
  }
  case SINK_BUF:
    s3ck_update(&b->md5, p, n);
    if (s3buf_add(&b->buf, p, n) != S3BUF_OK)
      fail(b, S3E_MaxMessageLengthExceeded, NULL);
    break;
  default:
    break;
  }
}

static int on_chunk_data(void *ctx, const uint8_t *p, size_t n) {
  struct body *b = ctx;
  take_data(b, p, n);
  return b->err ? 1 : 0;
}

static enum s3err chunk_err(struct body *b, s3chunk_result rc) {
  switch (rc) {
  case S3CHUNK_OK: return S3E_NONE;
  case S3CHUNK_BAD_SIGNATURE: return S3E_SignatureDoesNotMatch;
  case S3CHUNK_TOO_LARGE: return S3E_EntityTooLarge;
  case S3CHUNK_ABORTED: return b->err ? b->err : S3E_InternalError;
  case S3CHUNK_MALFORMED: return S3E_InvalidRequest;
  case S3CHUNK_TRUNCATED:
  case S3CHUNK_LENGTH_MISMATCH:
  default: return S3E_IncompleteBody;
  }
}

static const s3ck_alg k_algs[] = {S3CK_CRC32, S3CK_CRC32C, S3CK_CRC64NVME,
                                  S3CK_SHA1, S3CK_SHA256};

enum s3err body_begin(struct req *r, enum body_sink sink, uint64_t limit) {
  struct body *b = &r->body;
  memset(b, 0, sizeof *b);
  b->active = 1;
  b->sink = sink;
  b->limit = limit;
  if (sink == SINK_BUF) {
    s3buf_init(&b->buf, limit ? limit : 1);
    s3ck_init(&b->md5, S3CK_MD5);
  }

  const char *te = req_header(r, "transfer-encoding");
  const char *cl = req_header(r, "content-length");
  uint64_t clen = 0;
  if (cl) {
    char *end;
    clen = strtoull(cl, &end, 10);
    if (end == cl || *end) return S3E_InvalidArgument;
  }

  int chunked = r->authed && (r->auth.payload == S3SIG_PAYLOAD_STREAMING ||
                              r->auth.payload ==
                                  S3SIG_PAYLOAD_STREAMING_TRAILER ||
                              r->auth.payload ==
                                  S3SIG_PAYLOAD_STREAMING_UNSIGNED_TRAILER);
  if (chunked) {
    int64_t dlen = -1;
    const char *d = req_header(r, "x-amz-decoded-content-length");
    if (d) {
      char *end;
      unsigned long long v = strtoull(d, &end, 10);
      if (end == d || *end) return S3E_InvalidArgument;
      if (v > limit)
        return sink == SINK_BUF ? S3E_MaxMessageLengthExceeded
                                : S3E_EntityTooLarge;
      dlen = (int64_t)v;
    } else if (!te && !cl) {
      return S3E_MissingContentLength;
    }
    struct s3chunk_config cfg;
    if (s3chunk_config_from_auth(&cfg, &r->auth, dlen))
      return S3E_InvalidRequest;
    cfg.on_data = on_chunk_data;
    cfg.ctx = b;
    cfg.max_chunk = limit ? limit : 1;
    s3chunk_init(&b->dec, &cfg);
    b->chunked = 1;
  } else {
    if (cl && clen > limit)
      return sink == SINK_BUF ? S3E_MaxMessageLengthExceeded
                              : S3E_EntityTooLarge;
    if (!cl && !te && sink == SINK_WRITER &&
        strcmp(r->method, "POST") != 0)
      return S3E_MissingContentLength;
  }

  if (r->authed && r->auth.payload == S3SIG_PAYLOAD_SHA256) {
    b->check_sha256 = 1;
    sha256_init(&b->sha);
    memcpy(b->expect_sha, r->auth.payload_hash, 65);
  }

  const char *md5 = req_header(r, "content-md5");
  if (md5) {
    size_t got = 0;
    if (s3_base64_decode(b->want_md5, sizeof b->want_md5, md5, strlen(md5),
                         &got) ||
        got != 16)
      return S3E_InvalidDigest;
    b->have_md5 = 1;
  }

  /* The checksum: a header with the value, or announced as a trailer, or
     only named by x-amz-sdk-checksum-algorithm (then computed, and stored
     as computed). */
  int nck = 0;
  for (size_t i = 0; i < sizeof k_algs / sizeof k_algs[0]; i++) {
    const char *v = req_header(r, s3ck_header(k_algs[i]));
    if (!v) continue;
    nck++;
    uint8_t raw[S3CK_MAX_DIGEST];
    size_t got = 0;
    if (s3_base64_decode(raw, sizeof raw, v, strlen(v), &got) ||
        got != s3ck_len(k_algs[i]))
      return S3E_InvalidRequest;
    b->ck_alg = k_algs[i];
    snprintf(b->ck_header, sizeof b->ck_header, "%s", v);
  }
  if (nck > 1) return S3E_InvalidRequest;
  const char *tr = req_header(r, "x-amz-trailer");
  if (tr) {
    while (*tr == ' ') tr++;
    s3ck_alg a = s3ck_from_header(tr, strcspn(tr, " ,"));
    if (a == S3CK_NONE || a == S3CK_MD5 || nck) return S3E_InvalidRequest;
    if (!b->chunked ||
        !(r->auth.payload == S3SIG_PAYLOAD_STREAMING_TRAILER ||
          r->auth.payload == S3SIG_PAYLOAD_STREAMING_UNSIGNED_TRAILER))
      return S3E_InvalidRequest;
    b->ck_alg = a;
    b->ck_from_trailer = 1;
  }
  const char *sdk = req_header(r, "x-amz-sdk-checksum-algorithm");
  if (sdk) {
    s3ck_alg a = s3ck_from_name(sdk, strlen(sdk));
    if (a == S3CK_NONE || a == S3CK_MD5) return S3E_InvalidRequest;
    if (b->ck_alg == S3CK_NONE) b->ck_alg = a;
    else if (b->ck_alg != a) return S3E_InvalidRequest;
  }
  if (b->ck_alg != S3CK_NONE) s3ck_init(&b->ck, b->ck_alg);
  return S3E_NONE;
}

void body_feed(struct req *r, const char *p, size_t n) {
  struct body *b = &r->body;
  if (b->err || !b->active) return;
  if (b->chunked) {
    s3chunk_result rc = s3chunk_feed(&b->dec, p, n);
    if (rc != S3CHUNK_OK) fail(b, chunk_err(b, rc), s3chunk_strerror(rc));
  } else {
    take_data(b, (const uint8_t *)p, n);
  }
}

enum s3err body_finish(struct req *r) {
  struct body *b = &r->body;
  if (!b->active) return S3E_InternalError;
  if (b->err) return b->err;
  if (b->chunked) {
    s3chunk_result rc = s3chunk_finish(&b->dec);
    if (rc != S3CHUNK_OK) {
      fail(b, chunk_err(b, rc), s3chunk_strerror(rc));
      return b->err;
    }
  }
  if (b->check_sha256) {
    uint8_t d[32];
    char hex[65];
    sha256_digest(&b->sha, 32, d);
    s3_hex(d, 32, hex);
    if (strcasecmp(hex, b->expect_sha)) {
      fail(b, S3E_XAmzContentSHA256Mismatch, NULL);
      return b->err;
    }
  }
  if (b->have_md5) {
    uint8_t d[16];
    if (b->sink == SINK_WRITER) {
      if (store_writer_md5(b->w, d)) {
        fail(b, S3E_InternalError, NULL);
        return b->err;
      }
    } else {
      s3ck_digest(&b->md5, d);
    }
    if (memcmp(d, b->want_md5, 16)) {
      fail(b, S3E_BadDigest, NULL);
      return b->err;
    }
  }
  if (b->ck_alg != S3CK_NONE) {
    uint8_t d[S3CK_MAX_DIGEST];
    size_t dl = s3ck_digest(&b->ck, d);
    const char *want = NULL;
    if (b->ck_from_trailer) {
      want = s3chunk_trailer_value(&b->dec, s3ck_header(b->ck_alg));
      if (!want) {
        fail(b, S3E_InvalidRequest, "the announced checksum trailer is "
                                    "missing");
        return b->err;
      }
    } else if (b->ck_header[0]) {
      want = b->ck_header;
    }
    if (want && !s3ck_b64_equal(want, strlen(want), d, dl)) {
      fail(b, S3E_InvalidChecksum, NULL);
      return b->err;
    }
    if (!s3_base64_encode(b->ck_b64, sizeof b->ck_b64, d, dl)) {
      fail(b, S3E_InternalError, NULL);
      return b->err;
    }
  }
  return S3E_NONE;
}

int body_store_checksum(const struct body *b, const char **b64) {
  if (b->ck_alg == S3CK_NONE || !b->ck_b64[0]) {
    *b64 = NULL;
    return STORE_CKSUM_NONE;
  }
  *b64 = b->ck_b64;
  return s3ck_to_store(b->ck_alg);
}

store_writer *body_take_writer(struct body *b) {
  store_writer *w = b->w;
  b->w = NULL;
  return w;
}

void body_free(struct body *b) {
  if (!b->active) return;
  /* An uncommitted writer never becomes visible. */
  if (b->w) store_writer_abort(b->w);
  b->w = NULL;
  s3buf_free(&b->buf);
  if (b->chunked) s3chunk_wipe(&b->dec);
  b->active = 0;
}
