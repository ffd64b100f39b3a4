/*
 * ops_list.c -- ListObjects (v1, marker), ListObjectsV2 (opaque,
 * HMAC-protected continuation tokens) and ListObjectVersions (current
 * objects, VersionId "null").  Paging is libstore's: store_list resumes
 * after a key or a common prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "s3d.h"
#include "urlenc.h"
#include "xmlout.h"

#define TOKEN_MAC 16

static time_t ns_to_s(int64_t ns) { return (time_t)(ns / 1000000000); }

struct list_params {
  const char *prefix;
  const char *delimiter;
  uint32_t max_keys;
  int url;
};

/* Common query parameters; 0 or replied. */
static int list_params(struct req *r, struct list_params *lp) {
  memset(lp, 0, sizeof *lp);
  lp->prefix = req_query(r, "prefix");
  lp->delimiter = req_query(r, "delimiter");
  if (lp->delimiter && !*lp->delimiter) lp->delimiter = NULL;
  lp->max_keys = 1000;
  const char *mk = req_query(r, "max-keys");
  if (!mk) mk = req_query(r, "max-uploads");
  if (mk) {
    char *end;
    long long v = strtoll(mk, &end, 10);
    if (end == mk || *end || v < 0) {
      reply_error(r, S3E_InvalidArgument, "Provided max-keys not an integer "
                                          "or within integer range");
      return -1;
    }
    lp->max_keys = v > 1000 ? 1000 : (uint32_t)v;
  }
  const char *et = req_query(r, "encoding-type");
  if (et) {
    if (strcmp(et, "url")) {
      reply_error(r, S3E_InvalidArgument, "Invalid Encoding Method "
                                          "specified in Request");
      return -1;
    }
    lp->url = 1;
  }
  if ((lp->prefix && strlen(lp->prefix) > STORE_KEY_MAX) ||
      (lp->delimiter && strlen(lp->delimiter) > STORE_KEY_MAX)) {
    reply_error(r, S3E_KeyTooLongError, NULL);
    return -1;
  }
  return 0;
}

/* A text element, URL-encoded when encoding-type=url was asked for. */
static void elem_key(struct s3xml *x, const char *name, const char *v,
                     int url) {
  if (!url) return s3xml_elem_str(x, name, v);
  size_t n = strlen(v), el = s3url_encoded_len(v, n, S3URL_KEEP_SLASH);
  char *enc = malloc(el + 1);
  if (!enc) {
    x->err = -1;
    return;
  }
  s3url_encode(enc, el + 1, v, n, S3URL_KEEP_SLASH, NULL);
  s3xml_elem_str(x, name, enc);
  free(enc);
}

static void entry_xml(struct s3xml *x, const store_list_entry *e, int url,
                      int owner, int version) {
  s3xml_open(x, version ? "Version" : "Contents", NULL);
  elem_key(x, "Key", e->key, url);
  if (version) {
    s3xml_elem_str(x, "VersionId", "null");
    s3xml_elem_bool(x, "IsLatest", 1);
  }
  s3xml_elem_time(x, "LastModified", ns_to_s(e->mtime_ns));
  char q[STORE_ETAG_MAX + 3];
  snprintf(q, sizeof q, "\"%s\"", e->etag);
  s3xml_elem_str(x, "ETag", q);
  s3xml_elem_u64(x, "Size", e->size);
  if (owner) {
    s3xml_open(x, "Owner", NULL);
    s3xml_elem_str(x, "ID", e->owner);
    s3xml_elem_str(x, "DisplayName", e->owner);
    s3xml_close(x);
  }
  s3xml_elem_str(x, "StorageClass", "STANDARD");
  s3xml_close(x);
}

static void prefixes_xml(struct s3xml *x, const store_list_result *lr,
                         int url) {
  for (size_t i = 0; i < lr->n_prefixes; i++) {
    s3xml_open(x, "CommonPrefixes", NULL);
    elem_key(x, "Prefix", lr->prefixes[i], url);
    s3xml_close(x);
  }
}

static void send_doc(struct req *r, struct s3xml *x) {
  char *doc;
  size_t len;
  if (s3xml_finish(x, &doc, &len))
    return reply_error(r, S3E_InternalError, "response too large");
  reply_xml(r, 200, doc, len);
}

static int do_list(struct req *r, const struct list_params *lp,
                   const char *after, store_list_result *lr) {
  memset(lr, 0, sizeof *lr);
  if (lp->max_keys == 0) {
    /* S3 answers an empty, untruncated page; check the bucket exists. */
    return need_bucket(r);
  }
  store_list_opts o = {.prefix = lp->prefix,
                       .delimiter = lp->delimiter,
                       .start_after = after,
                       .max_keys = lp->max_keys};
  int rc = store_list(g_s3d.st, r->bucket, &o, lr);
  if (rc) {
    reply_rc(r, rc);
    return -1;
  }
  return 0;
}

void op_list_objects(struct req *r) {
  struct list_params lp;
  if (list_params(r, &lp)) return;
  const char *marker = req_query(r, "marker");
  store_list_result lr;
  if (do_list(r, &lp, marker, &lr)) return;
  struct s3xml x;
  s3xml_init(&x, 8u << 20);
  s3xml_open(&x, "ListBucketResult", S3XML_NS);
  s3xml_elem_str(&x, "Name", r->bucket);
  elem_key(&x, "Prefix", lp.prefix ? lp.prefix : "", lp.url);
  elem_key(&x, "Marker", marker ? marker : "", lp.url);
  s3xml_elem_u64(&x, "MaxKeys", lp.max_keys);
  if (lp.delimiter) elem_key(&x, "Delimiter", lp.delimiter, lp.url);
  s3xml_elem_bool(&x, "IsTruncated", lr.truncated);
  if (lr.truncated && lr.next_marker)
    elem_key(&x, "NextMarker", lr.next_marker, lp.url);
  if (lp.url) s3xml_elem_str(&x, "EncodingType", "url");
  for (size_t i = 0; i < lr.n_entries; i++)
    entry_xml(&x, &lr.entries[i], lp.url, 1, 0);
  prefixes_xml(&x, &lr, lp.url);
  s3xml_close(&x);
  store_list_result_free(&lr);
  send_doc(r, &x);
}

/* Continuation token: base64(marker || HMAC(user key, bucket NUL marker)
   truncated to 16 bytes).  Forged or foreign tokens fail the MAC. */
static void token_mac(const uint8_t key[32], const char *bucket,
                      const char *marker, size_t ml, uint8_t mac[TOKEN_MAC]) {
  struct hmac_sha256_ctx h;
  hmac_sha256_set_key(&h, 32, key);
  hmac_sha256_update(&h, strlen(bucket) + 1, (const uint8_t *)bucket);
  hmac_sha256_update(&h, ml, (const uint8_t *)marker);
  hmac_sha256_digest(&h, TOKEN_MAC, mac);
}

static char *token_make(struct req *r, const char *marker) {
  uint8_t key[32];
  if (auth_token_key(r->auth.access_key, key)) return NULL;
  size_t ml = strlen(marker);
  uint8_t *raw = malloc(ml + TOKEN_MAC);
  if (!raw) return NULL;
  memcpy(raw, marker, ml);
  token_mac(key, r->bucket, marker, ml, raw + ml);
  size_t cap = (ml + TOKEN_MAC + 2) / 3 * 4 + 1;
  char *tok = malloc(cap);
  if (tok && !s3_base64_encode(tok, cap, raw, ml + TOKEN_MAC)) {
    free(tok);
    tok = NULL;
  }
  free(raw);
  return tok;
}

/* The marker in a token, or NULL when the token is not one of ours. */
static char *token_open(struct req *r, const char *tok) {
  size_t tl = strlen(tok);
  if (tl > 4 * (STORE_KEY_MAX + TOKEN_MAC)) return NULL;
  uint8_t *raw = malloc(tl);
  size_t rl = 0;
  if (!raw || s3_base64_decode(raw, tl, tok, tl, &rl) || rl < TOKEN_MAC) {
    free(raw);
    return NULL;
  }
  uint8_t key[32], mac[TOKEN_MAC];
  if (auth_token_key(r->auth.access_key, key)) {
    free(raw);
    return NULL;
  }
  size_t ml = rl - TOKEN_MAC;
  char *marker = malloc(ml + 1);
  if (!marker) {
    free(raw);
    return NULL;
  }
  memcpy(marker, raw, ml);
  marker[ml] = 0;
  token_mac(key, r->bucket, marker, ml, mac);
  int ok = memeql_sec(mac, raw + ml, TOKEN_MAC) && strlen(marker) == ml;
  free(raw);
  if (!ok) {
    free(marker);
    return NULL;
  }
  return marker;
}

void op_list_objects_v2(struct req *r) {
  struct list_params lp;
  if (list_params(r, &lp)) return;
  const char *ctok = req_query(r, "continuation-token");
  const char *sa = req_query(r, "start-after");
  const char *fo = req_query(r, "fetch-owner");
  int fetch_owner = fo && !strcmp(fo, "true");
  char *after = NULL;
  if (ctok) {
    after = token_open(r, ctok);
    if (!after)
      return reply_error(r, S3E_InvalidArgument,
                         "The continuation token provided is incorrect");
  }
  store_list_result lr;
  /* A token wins over start-after (it resumes past it anyway). */
  if (do_list(r, &lp, after ? after : sa, &lr)) {
    free(after);
    return;
  }
  free(after);
  struct s3xml x;
  s3xml_init(&x, 8u << 20);
  s3xml_open(&x, "ListBucketResult", S3XML_NS);
  s3xml_elem_str(&x, "Name", r->bucket);
  elem_key(&x, "Prefix", lp.prefix ? lp.prefix : "", lp.url);
  if (sa) elem_key(&x, "StartAfter", sa, lp.url);
  if (ctok) s3xml_elem_str(&x, "ContinuationToken", ctok);
  s3xml_elem_u64(&x, "KeyCount", lr.n_entries + lr.n_prefixes);
  s3xml_elem_u64(&x, "MaxKeys", lp.max_keys);
  if (lp.delimiter) elem_key(&x, "Delimiter", lp.delimiter, lp.url);
  s3xml_elem_bool(&x, "IsTruncated", lr.truncated);
  if (lr.truncated && lr.next_marker) {
    char *nt = token_make(r, lr.next_marker);
    if (!nt) {
      store_list_result_free(&lr);
      s3xml_free(&x);
      return reply_error(r, S3E_InternalError, NULL);
    }
    s3xml_elem_str(&x, "NextContinuationToken", nt);
    free(nt);
  }
  if (lp.url) s3xml_elem_str(&x, "EncodingType", "url");
  for (size_t i = 0; i < lr.n_entries; i++)
    entry_xml(&x, &lr.entries[i], lp.url, fetch_owner, 0);
  prefixes_xml(&x, &lr, lp.url);
  s3xml_close(&x);
  store_list_result_free(&lr);
  send_doc(r, &x);
}

void op_list_object_versions(struct req *r) {
  struct list_params lp;
  if (list_params(r, &lp)) return;
  const char *km = req_query(r, "key-marker");
  const char *vm = req_query(r, "version-id-marker");
  /* Only "null" versions exist: a version marker on a key means that key
     is done, which is what key-marker alone means too. */
  (void)vm;
  store_list_result lr;
  if (do_list(r, &lp, km, &lr)) return;
  struct s3xml x;
  s3xml_init(&x, 8u << 20);
  s3xml_open(&x, "ListVersionsResult", S3XML_NS);
  s3xml_elem_str(&x, "Name", r->bucket);
  elem_key(&x, "Prefix", lp.prefix ? lp.prefix : "", lp.url);
  elem_key(&x, "KeyMarker", km ? km : "", lp.url);
  s3xml_elem_str(&x, "VersionIdMarker", vm ? vm : "");
  s3xml_elem_u64(&x, "MaxKeys", lp.max_keys);
  if (lp.delimiter) elem_key(&x, "Delimiter", lp.delimiter, lp.url);
  s3xml_elem_bool(&x, "IsTruncated", lr.truncated);
  if (lr.truncated && lr.next_marker) {
    elem_key(&x, "NextKeyMarker", lr.next_marker, lp.url);
    s3xml_elem_str(&x, "NextVersionIdMarker", "null");
  }
  if (lp.url) s3xml_elem_str(&x, "EncodingType", "url");
  for (size_t i = 0; i < lr.n_entries; i++)
    entry_xml(&x, &lr.entries[i], lp.url, 1, 1);
  prefixes_xml(&x, &lr, lp.url);
  s3xml_close(&x);
  store_list_result_free(&lr);
  send_doc(r, &x);
}
