/*
 * ops_object.c -- object operations: PutObject, GetObject, HeadObject,
 * DeleteObject, DeleteObjects, CopyObject, object tagging and
 * GetObjectAttributes; plus the helpers shared with multipart and POST
 * (request headers -> store_put_opts, stored attributes -> response headers).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "range.h"
#include "s3d.h"
#include "urlenc.h"
#include "xmlout.h"

#define OBJECT_TAGS_MAX 10
#define GET_BLOCK (256 * 1024)

static time_t ns_to_s(int64_t ns) { return (time_t)(ns / 1000000000); }

/* System headers stored with an object and returned by GET/HEAD. */
static const char *k_sys_headers[] = {"Content-Encoding", "Content-Disposition",
                                      "Content-Language", "Cache-Control",
                                      "Expires", NULL};

/* ------------------------------------------------------------------ */
/* Request headers -> put options.                                    */
/* ------------------------------------------------------------------ */
static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2
            : (*p >> 3) == 30 ? 3 : -1;
    if (n < 0) return 0;
    p++;
    while (n--) {
      if ((*p & 0xC0) != 0x80) return 0;
      p++;
    }
  }
  return 1;
}

enum s3err parse_tag_query(const char *s, store_kv **tags, size_t *n) {
  *tags = NULL;
  *n = 0;
  struct s3url_param ps[OBJECT_TAGS_MAX + 1];
  size_t np = 0;
  if (s3url_split_query(s, strlen(s), ps, OBJECT_TAGS_MAX + 1, &np) !=
          S3URL_OK ||
      np > OBJECT_TAGS_MAX)
    return S3E_InvalidTag;
  if (np == 0) return S3E_NONE;
  store_kv *kv = calloc(np, sizeof *kv);
  if (!kv) return S3E_SlowDown;
  for (size_t i = 0; i < np; i++) {
    kv[i].name = malloc(ps[i].name_len + 1);
    kv[i].value = malloc(ps[i].value_len + 1);
    if (!kv[i].name || !kv[i].value ||
        s3url_decode(kv[i].name, ps[i].name_len + 1, ps[i].name,
                     ps[i].name_len, S3URL_PLUS_SPACE | S3URL_REJECT_NUL,
                     NULL) ||
        s3url_decode(kv[i].value, ps[i].value_len + 1, ps[i].value,
                     ps[i].value_len, S3URL_PLUS_SPACE | S3URL_REJECT_NUL,
                     NULL) ||
        !kv[i].name[0] || strlen(kv[i].name) > 128 ||
        strlen(kv[i].value) > 256 || !valid_utf8(kv[i].name) ||
        !valid_utf8(kv[i].value)) {
      store_kv_free(kv, np);
      return S3E_InvalidTag;
    }
    for (size_t j = 0; j < i; j++)
      if (!strcmp(kv[j].name, kv[i].name)) {
        store_kv_free(kv, np);
        return S3E_InvalidTag;
      }
  }
  *tags = kv;
  *n = np;
  return S3E_NONE;
}

static char *strip_quotes(const char *s) {
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') return strndup(s + 1, n - 2);
  return strdup(s);
}

void put_attrs_free(struct put_attrs *a) {
  for (size_t i = 0; i < a->o.n_meta; i++) {
    free(a->meta[i].name);
    free(a->meta[i].value);
  }
  for (size_t i = 0; i < a->o.n_headers; i++) free(a->hdrs[i].value);
  store_kv_free(a->tags, a->n_tags);
  free((char *)a->o.if_match);
  free(a->tag_buf);
  memset(a, 0, sizeof *a);
}

enum s3err put_attrs_from_headers(struct req *r, struct put_attrs *a,
                                  const char **msg) {
  memset(a, 0, sizeof *a);
  *msg = NULL;
  a->o.content_type = req_header(r, "content-type");
  size_t meta_bytes = 0;
  for (size_t i = 0; i < r->nhdrs; i++) {
    const char *n = r->hdrs[i].name;
    if (strncasecmp(n, "x-amz-meta-", 11) || !n[11]) continue;
    if (a->o.n_meta >= sizeof a->meta / sizeof a->meta[0])
      return S3E_MetadataTooLarge;
    char *name = strdup(n + 11), *val = strdup(r->hdrs[i].value);
    a->meta[a->o.n_meta].name = name;
    a->meta[a->o.n_meta].value = val;
    a->o.n_meta++;
    if (!name || !val) return S3E_SlowDown;
    for (char *c = name; *c; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    meta_bytes += strlen(name) + strlen(val);
  }
  if (meta_bytes > STORE_META_MAX) return S3E_MetadataTooLarge;
  a->o.meta = a->meta;

  for (size_t i = 0; k_sys_headers[i]; i++) {
    const char *v = req_header(r, k_sys_headers[i]);
    if (!v) continue;
    char *val;
    if (!strcasecmp(k_sys_headers[i], "Content-Encoding")) {
      /* aws-chunked is framing, not a property of the object. */
      char buf[512];
      size_t o = 0;
      const char *p = v;
      while (*p) {
        while (*p == ' ' || *p == ',') p++;
        size_t l = strcspn(p, ",");
        size_t tl = l;
        while (tl && p[tl - 1] == ' ') tl--;
        if (tl && !(tl == 11 && !strncasecmp(p, "aws-chunked", 11)) &&
            o + tl + 2 < sizeof buf) {
          if (o) buf[o++] = ',';
          memcpy(buf + o, p, tl);
          o += tl;
        }
        p += l;
      }
      if (!o) continue;
      buf[o] = 0;
      val = strdup(buf);
    } else {
      val = strdup(v);
    }
    if (!val) return S3E_SlowDown;
    a->hdrs[a->o.n_headers].name = (char *)k_sys_headers[i];
    a->hdrs[a->o.n_headers].value = val;
    a->o.n_headers++;
  }
  a->o.headers = a->hdrs;

  const char *tg = req_header(r, "x-amz-tagging");
  if (tg) {
    enum s3err e = parse_tag_query(tg, &a->tags, &a->n_tags);
    if (e) {
      *msg = "The header 'x-amz-tagging' shall be encoded as UTF-8 then URL "
             "encoded URL query parameters without tag name duplicates.";
      return e;
    }
    a->o.tags = a->tags;
    a->o.n_tags = a->n_tags;
  }

  const char *sc = req_header(r, "x-amz-storage-class");
  if (sc && strcmp(sc, "STANDARD") && strcmp(sc, "REDUCED_REDUNDANCY") &&
      strcmp(sc, "STANDARD_IA") && strcmp(sc, "ONEZONE_IA") &&
      strcmp(sc, "INTELLIGENT_TIERING") && strcmp(sc, "GLACIER") &&
      strcmp(sc, "DEEP_ARCHIVE") && strcmp(sc, "GLACIER_IR") &&
      strcmp(sc, "OUTPOSTS") && strcmp(sc, "EXPRESS_ONEZONE"))
    return S3E_InvalidStorageClass;

  const char *inm = req_header(r, "if-none-match");
  if (inm) {
    if (strcmp(inm, "*")) {
      *msg = "If-None-Match only supports *";
      return S3E_NotImplemented;
    }
    a->o.if_none_match_star = 1;
  }
  const char *im = req_header(r, "if-match");
  if (im) {
    a->o.if_match = strip_quotes(im);
    if (!a->o.if_match) return S3E_SlowDown;
  }
  a->o.owner = r->auth.access_key;
  return S3E_NONE;
}

/* ------------------------------------------------------------------ */
/* Stored attributes -> response headers.                             */
/* ------------------------------------------------------------------ */
static void add_checksum_headers(struct MHD_Response *resp, int algo,
                                 const char *value, int composite) {
  s3ck_alg a = s3ck_from_store(algo);
  if (a == S3CK_NONE || !value) return;
  MHD_add_response_header(resp, s3ck_header(a), value);
  MHD_add_response_header(resp, "x-amz-checksum-type",
                          composite ? "COMPOSITE" : "FULL_OBJECT");
}

void resp_object_headers(struct req *r, struct MHD_Response *resp,
                         const store_object_info *info, int with_checksum) {
  char date[S3_HTTP_DATE_LEN];
  resp_add_etag(resp, info->etag);
  if (s3_http_date_format(ns_to_s(info->mtime_ns), date, sizeof date))
    MHD_add_response_header(resp, "Last-Modified", date);
  MHD_add_response_header(resp, "Content-Type",
                          info->content_type && info->content_type[0]
                              ? info->content_type
                              : "binary/octet-stream");
  for (size_t i = 0; i < info->n_meta; i++) {
    char name[256];
    if (snprintf(name, sizeof name, "x-amz-meta-%s", info->meta[i].name) <
        (int)sizeof name)
      MHD_add_response_header(resp, name, info->meta[i].value);
  }
  for (size_t i = 0; i < info->n_headers; i++)
    MHD_add_response_header(resp, info->headers[i].name,
                            info->headers[i].value);
  if (info->n_tags) {
    char n[24];
    snprintf(n, sizeof n, "%zu", info->n_tags);
    MHD_add_response_header(resp, "x-amz-tagging-count", n);
  }
  if (info->version_id[0] && strcmp(info->version_id, "null"))
    MHD_add_response_header(resp, "x-amz-version-id", info->version_id);
  if (with_checksum) {
    const char *cm = req_header(r, "x-amz-checksum-mode");
    if (cm && !strcasecmp(cm, "ENABLED"))
      add_checksum_headers(resp, info->checksum_algo, info->checksum,
                           info->checksum_composite);
  }
}

/* ------------------------------------------------------------------ */
/* PutObject.                                                         */
/* ------------------------------------------------------------------ */
static void put_state_free(struct req *r) {
  struct put_attrs *a = r->op;
  if (a) {
    put_attrs_free(a);
    free(a);
  }
  r->op = NULL;
}

static void put_object_end(struct req *r) {
  struct put_attrs *a = r->op;
  enum s3err e = body_finish(r);
  if (e) return reply_error(r, e, r->body.err_msg);
  const char *ck = NULL;
  a->o.checksum_algo = body_store_checksum(&r->body, &ck);
  a->o.checksum = ck;
  store_object_info info = {0};
  /* persist before you reply: store_writer_commit returns once the object
     is durable and visible (or not at all). */
  int rc = store_writer_commit(body_take_writer(&r->body), &a->o, &info);
  if (rc == STORE_ERR_TOO_LARGE && a->o.n_meta) {
    store_object_info_free(&info);
    return reply_error(r, S3E_MetadataTooLarge, NULL);
  }
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }
  struct MHD_Response *resp = resp_buf("", 0);
  if (resp) {
    resp_add_etag(resp, info.etag);
    if (ck) add_checksum_headers(resp, a->o.checksum_algo, ck, 0);
  }
  store_object_info_free(&info);
  reply(r, 200, resp);
}

void op_put_object(struct req *r) {
  struct put_attrs *a = calloc(1, sizeof *a);
  if (!a) return reply_error(r, S3E_SlowDown, NULL);
  r->op = a;
  r->op_free = put_state_free;
  const char *msg;
  enum s3err e = put_attrs_from_headers(r, a, &msg);
  if (e) return reply_error(r, e, msg);
  e = body_begin(r, SINK_WRITER, S3D_MAX_PUT);
  if (e) return reply_error(r, e, NULL);
  int rc = store_writer_open(g_s3d.st, r->bucket, r->key, &r->body.w);
  if (rc) return reply_rc(r, rc);
  r->op_end = put_object_end;
}

/* ------------------------------------------------------------------ */
/* GetObject / HeadObject.                                            */
/* ------------------------------------------------------------------ */
struct get_stream {
  store_reader *rd;
  uint64_t off; /* first byte served */
  uint64_t len;
  uint64_t *sent; /* the request's bytes_streamed */
};

static ssize_t get_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  struct get_stream *g = cls;
  /* libmicrohttpd asks for the block at `pos` once everything before it
     has gone to the socket: what the access log reports for a body that
     was cut off (by a read error here, or by the client).  It never calls
     this after the request's completion callback, so the request is
     still there. */
  *g->sent = pos;
  if (pos >= g->len) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t want = max;
  if (want > g->len - pos) want = (size_t)(g->len - pos);
  size_t got = 0;
  int rc = store_read(g->rd, buf, want, g->off + pos, &got);
  if (rc) {
    fprintf(stderr, "s3d: read failed mid-response: %s: %s\n",
            store_strerror(rc), store_errmsg());
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  if (got == 0) return MHD_CONTENT_READER_END_WITH_ERROR; /* shrank? */
  return (ssize_t)got;
}

static void get_free(void *cls) {
  struct get_stream *g = cls;
  store_reader_close(g->rd);
  free(g);
}

static ssize_t no_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)cls;
  (void)pos;
  (void)buf;
  (void)max;
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

static const char *version_arg(struct req *r) {
  const char *v = req_query(r, "versionId");
  if (v && !strcmp(v, "null")) return NULL;
  return v;
}

static void get_or_head(struct req *r, int head) {
  store_object_info info = {0};
  store_reader *rd = NULL;
  int rc;
  const char *vid = version_arg(r);
  if (head)
    rc = store_head(g_s3d.st, r->bucket, r->key, vid, &info);
  else
    rc = store_reader_open(g_s3d.st, r->bucket, r->key, vid, &rd, &info);
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }

  struct s3cond_headers ch = {
    .if_match = req_header(r, "if-match"),
    .if_none_match = req_header(r, "if-none-match"),
    .if_modified_since = req_header(r, "if-modified-since"),
    .if_unmodified_since = req_header(r, "if-unmodified-since"),
  };
  s3cond_result cr = s3cond_eval(&ch, 1, info.etag, strlen(info.etag),
                                 ns_to_s(info.mtime_ns), 1);
  if (cr != S3COND_PROCEED) {
    store_reader_close(rd);
    if (cr == S3COND_NOT_MODIFIED) {
      struct MHD_Response *resp = resp_buf("", 0);
      if (resp) {
        char date[S3_HTTP_DATE_LEN];
        resp_add_etag(resp, info.etag);
        if (s3_http_date_format(ns_to_s(info.mtime_ns), date, sizeof date))
          MHD_add_response_header(resp, "Last-Modified", date);
      }
      store_object_info_free(&info);
      return reply(r, 304, resp);
    }
    store_object_info_free(&info);
    return reply_error(r, S3E_PreconditionFailed, NULL);
  }

  uint64_t size = info.size, off = 0, len = size;
  int partial = 0;
  char crange[96] = "";
  const char *pn = req_query(r, "partNumber");
  const char *range = req_header(r, "range");
  if (pn) {
    char *end;
    unsigned long n = strtoul(pn, &end, 10);
    if (end == pn || *end || n < 1 || n > STORE_PARTS_MAX) {
      store_reader_close(rd);
      store_object_info_free(&info);
      return reply_error(r, S3E_InvalidArgument,
                         "Part number must be an integer between 1 and "
                         "10000, inclusive");
    }
    if (range) {
      store_reader_close(rd);
      store_object_info_free(&info);
      return reply_error(r, S3E_InvalidRequest,
                         "Cannot specify both Range header and partNumber "
                         "query parameter");
    }
    if (info.parts == 0) {
      if (n != 1) {
        store_reader_close(rd);
        store_object_info_free(&info);
        return reply_error(r, S3E_InvalidPart, NULL);
      }
    } else {
      char petag[STORE_ETAG_MAX];
      rc = store_part_range(g_s3d.st, r->bucket, r->key, (uint32_t)n, &off,
                            &len, petag);
      if (rc) {
        store_reader_close(rd);
        store_object_info_free(&info);
        return reply_error(r, rc == STORE_ERR_RANGE || rc == STORE_ERR_NO_KEY
                                  ? S3E_InvalidPart
                                  : s3err_from_rc(rc),
                           NULL);
      }
      partial = 1;
    }
  } else if (range) {
    s3range_result rr = s3range_parse(range, strlen(range), size, &off, &len);
    if (rr == S3RANGE_UNSATISFIABLE) {
      store_reader_close(rd);
      store_object_info_free(&info);
      snprintf(crange, sizeof crange, "bytes */%" PRIu64, size);
      /* The 416 carries Content-Range so clients learn the size. */
      const struct s3err_info *ei = s3err_get(S3E_InvalidRange);
      struct s3xml x;
      s3xml_init(&x, 4096);
      s3xml_open(&x, "Error", NULL);
      s3xml_elem_str(&x, "Code", ei->code);
      s3xml_elem_str(&x, "Message", ei->message);
      s3xml_elem_str(&x, "RangeRequested", range);
      s3xml_elem_u64(&x, "ActualObjectSize", size);
      s3xml_elem_str(&x, "RequestId", r->id);
      s3xml_close(&x);
      char *doc;
      size_t dl;
      if (s3xml_finish(&x, &doc, &dl)) return reply_empty(r, 416);
      struct MHD_Response *resp = resp_take(doc, dl);
      if (resp) {
        MHD_add_response_header(resp, "Content-Type", "application/xml");
        MHD_add_response_header(resp, "Content-Range", crange);
      }
      r->bytes_out = dl;
      return reply(r, 416, resp);
    }
    if (rr == S3RANGE_OK) partial = 1;
  }
  if (partial)
    snprintf(crange, sizeof crange, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
             off, len ? off + len - 1 : off, size);

  struct MHD_Response *resp;
  if (head || len == 0) {
    store_reader_close(rd);
    rd = NULL;
    resp = head ? MHD_create_response_from_callback(len, GET_BLOCK, no_reader,
                                                    NULL, NULL)
                : resp_buf("", 0);
  } else {
    struct get_stream *g = malloc(sizeof *g);
    if (!g) {
      store_reader_close(rd);
      store_object_info_free(&info);
      return reply_error(r, S3E_SlowDown, NULL);
    }
    g->rd = rd;
    g->off = off;
    g->len = len;
    g->sent = &r->bytes_streamed;
    /* Streamed from store_read into MHD's own block buffer (reused for
       every block): memory stays at GET_BLOCK per download. */
    resp = MHD_create_response_from_callback(len, GET_BLOCK, get_reader, g,
                                             get_free);
    if (!resp)
      get_free(g);
    else
      r->streamed = 1;
  }
  if (!resp) {
    store_object_info_free(&info);
    return reply_error(r, S3E_SlowDown, NULL);
  }
  resp_object_headers(r, resp, &info, !partial);
  MHD_add_response_header(resp, "Accept-Ranges", "bytes");
  if (partial) MHD_add_response_header(resp, "Content-Range", crange);
  if (pn && info.parts) {
    char n[24];
    snprintf(n, sizeof n, "%" PRIu32, info.parts);
    MHD_add_response_header(resp, "x-amz-mp-parts-count", n);
  }
  /* response-* query parameters override stored headers (GET only in S3,
     harmless on HEAD). */
  static const struct {
    const char *q, *h;
  } ovr[] = {{"response-content-type", "Content-Type"},
             {"response-content-language", "Content-Language"},
             {"response-expires", "Expires"},
             {"response-cache-control", "Cache-Control"},
             {"response-content-disposition", "Content-Disposition"},
             {"response-content-encoding", "Content-Encoding"}};
  for (size_t i = 0; i < sizeof ovr / sizeof ovr[0]; i++) {
    const char *v = req_query(r, ovr[i].q);
    if (!v) continue;
    MHD_del_response_header(resp, ovr[i].h,
                            MHD_get_response_header(resp, ovr[i].h));
    MHD_add_response_header(resp, ovr[i].h, v);
  }
  store_object_info_free(&info);
  r->bytes_out = len;
  reply(r, partial ? 206 : 200, resp);
}

void op_get_object(struct req *r) { get_or_head(r, 0); }
void op_head_object(struct req *r) { get_or_head(r, 1); }

/* ------------------------------------------------------------------ */
/* DeleteObject / DeleteObjects.                                      */
/* ------------------------------------------------------------------ */
void op_delete_object(struct req *r) {
  int rc = store_delete(g_s3d.st, r->bucket, r->key);
  /* Deleting an absent key succeeds, as in S3. */
  if (rc == STORE_ERR_NO_KEY) rc = STORE_OK;
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 204);
}

static void delete_objects_end(struct req *r) {
  if (xml_body_ok(r)) return;
  struct del_key *keys;
  size_t n;
  int quiet;
  enum s3err e = xmlin_delete(r->body.buf.p, r->body.buf.len, &keys, &n,
                              &quiet);
  if (e) return reply_error(r, e, NULL);
  struct s3xml x;
  s3xml_init(&x, 16 * 1024 * 1024);
  s3xml_open(&x, "DeleteResult", S3XML_NS);
  for (size_t i = 0; i < n; i++) {
    int rc;
    size_t kl = strlen(keys[i].key);
    if (kl > STORE_KEY_MAX)
      rc = STORE_ERR_KEY_TOO_LONG;
    else if (keys[i].version_id && strcmp(keys[i].version_id, "null"))
      rc = STORE_ERR_NO_KEY; /* no such version: nothing to delete */
    else
      rc = store_delete(g_s3d.st, r->bucket, keys[i].key);
    if (rc == STORE_ERR_NO_KEY) rc = STORE_OK;
    if (rc == STORE_OK) {
      if (quiet) continue;
      s3xml_open(&x, "Deleted", NULL);
      s3xml_elem_str(&x, "Key", keys[i].key);
      if (keys[i].version_id)
        s3xml_elem_str(&x, "VersionId", keys[i].version_id);
      s3xml_close(&x);
    } else {
      const struct s3err_info *ei = s3err_get(s3err_from_rc(rc));
      s3xml_open(&x, "Error", NULL);
      s3xml_elem_str(&x, "Key", keys[i].key);
      if (keys[i].version_id)
        s3xml_elem_str(&x, "VersionId", keys[i].version_id);
      s3xml_elem_str(&x, "Code", ei->code);
      s3xml_elem_str(&x, "Message", ei->message);
      s3xml_close(&x);
    }
  }
  s3xml_close(&x);
  del_keys_free(keys, n);
  char *doc;
  size_t len;
  if (s3xml_finish(&x, &doc, &len))
    return reply_error(r, S3E_InternalError, NULL);
  reply_xml(r, 200, doc, len);
}

static int has_integrity_header(struct req *r) {
  if (req_header(r, "content-md5") ||
      req_header(r, "x-amz-sdk-checksum-algorithm") ||
      req_header(r, "x-amz-trailer"))
    return 1;
  for (size_t i = 0; i < r->nhdrs; i++)
    if (!strncasecmp(r->hdrs[i].name, "x-amz-checksum-", 15) &&
        strcasecmp(r->hdrs[i].name, "x-amz-checksum-mode") &&
        strcasecmp(r->hdrs[i].name, "x-amz-checksum-type"))
      return 1;
  return 0;
}

void op_delete_objects(struct req *r) {
  if (!has_integrity_header(r))
    return reply_error(r, S3E_InvalidRequest,
                       "Missing required header for this request: "
                       "Content-MD5 or x-amz-checksum-*");
  if (need_bucket(r)) return;
  expect_xml_body(r, S3D_XML_DELETE_MAX, delete_objects_end);
}

/* ------------------------------------------------------------------ */
/* CopyObject.                                                        */
/* ------------------------------------------------------------------ */
/* Parse x-amz-copy-source ("[/]bucket/key[?versionId=v]", URL-encoded).
   server.c checks the source bucket's ownership with this same parse. */
enum s3err copy_source_parse(const char *v, struct copy_src *cs) {
  memset(cs, 0, sizeof *cs);
  if (!v) return S3E_InvalidArgument;
  size_t n = strlen(v);
  const char *qm = memchr(v, '?', n);
  size_t pl = qm ? (size_t)(qm - v) : n;
  char *dec = malloc(pl + 1);
  if (!dec) return S3E_SlowDown;
  size_t dl;
  if (s3url_decode(dec, pl + 1, v, pl, S3URL_REJECT_NUL, &dl)) {
    free(dec);
    return S3E_InvalidArgument;
  }
  char *p = dec;
  if (*p == '/') p++;
  char *sl = strchr(p, '/');
  if (!sl || sl == p || !sl[1] || (size_t)(sl - p) > STORE_BUCKET_NAME_MAX) {
    free(dec);
    return S3E_InvalidArgument;
  }
  memcpy(cs->bucket, p, (size_t)(sl - p));
  cs->bucket[sl - p] = 0;
  cs->key = strdup(sl + 1);
  free(dec);
  if (!cs->key) return S3E_SlowDown;
  if (strlen(cs->key) > STORE_KEY_MAX) return S3E_KeyTooLongError;
  if (qm) {
    const char *vp = strstr(qm + 1, "versionId=");
    if (vp) {
      vp += 10;
      size_t vl = strcspn(vp, "&");
      cs->version = strndup(vp, vl);
      if (cs->version && !strcmp(cs->version, "null")) {
        free(cs->version);
        cs->version = NULL;
      }
    }
  }
  return S3E_NONE;
}

void copy_src_free(struct copy_src *cs) {
  free(cs->key);
  free(cs->version);
}

/* Evaluate x-amz-copy-source-if-* against the source; 0 or replied. */
static int copy_source_conditions(struct req *r, const store_object_info *src) {
  struct s3cond_headers ch = {
    .if_match = req_header(r, "x-amz-copy-source-if-match"),
    .if_none_match = req_header(r, "x-amz-copy-source-if-none-match"),
    .if_modified_since = req_header(r, "x-amz-copy-source-if-modified-since"),
    .if_unmodified_since =
        req_header(r, "x-amz-copy-source-if-unmodified-since"),
  };
  s3cond_result cr = s3cond_eval(&ch, 1, src->etag, strlen(src->etag),
                                 ns_to_s(src->mtime_ns), 1);
  if (cr != S3COND_PROCEED) {
    reply_error(r, S3E_PreconditionFailed, NULL);
    return -1;
  }
  return 0;
}

void op_copy_object(struct req *r) {
  struct copy_src cs;
  enum s3err e = copy_source_parse(req_header(r, "x-amz-copy-source"), &cs);
  if (e) {
    copy_src_free(&cs);
    return reply_error(r, e, "Copy Source must mention the source bucket and "
                             "key: sourcebucket/sourcekey");
  }
  const char *md = header_or(r, "x-amz-metadata-directive", "COPY");
  const char *td = header_or(r, "x-amz-tagging-directive", "COPY");
  if ((strcmp(md, "COPY") && strcmp(md, "REPLACE")) ||
      (strcmp(td, "COPY") && strcmp(td, "REPLACE"))) {
    copy_src_free(&cs);
    return reply_error(r, S3E_InvalidArgument,
                       "Unknown metadata or tagging directive");
  }
  int replace_meta = !strcmp(md, "REPLACE"), replace_tags = !strcmp(td, "REPLACE");
  if (!strcmp(cs.bucket, r->bucket) && !strcmp(cs.key, r->key) &&
      !cs.version && !replace_meta) {
    copy_src_free(&cs);
    return reply_error(r, S3E_InvalidRequest,
                       "This copy request is illegal because it is trying to "
                       "copy an object to itself without changing the "
                       "object's metadata, storage class, website redirect "
                       "location or encryption attributes.");
  }
  store_object_info src = {0};
  int rc = store_head(g_s3d.st, cs.bucket, cs.key, cs.version, &src);
  if (rc) {
    store_object_info_free(&src);
    copy_src_free(&cs);
    return reply_rc(r, rc);
  }
  if (copy_source_conditions(r, &src)) {
    store_object_info_free(&src);
    copy_src_free(&cs);
    return;
  }
  struct put_attrs a;
  const char *msg;
  e = put_attrs_from_headers(r, &a, &msg);
  if (e) {
    put_attrs_free(&a);
    store_object_info_free(&src);
    copy_src_free(&cs);
    return reply_error(r, e, msg);
  }
  store_copy_opts co = {
    .replace_meta = replace_meta,
    .replace_tags = replace_tags,
    .put = &a.o,
    .src_if_match = src.etag, /* the version the conditions were judged on */
    .src_version_id = cs.version,
  };
  store_object_info out = {0};
  /* persist before you reply: store_copy commits before returning. */
  rc = store_copy(g_s3d.st, cs.bucket, cs.key, r->bucket, r->key, &co, &out);
  put_attrs_free(&a);
  if (rc) {
    store_object_info_free(&out);
    store_object_info_free(&src);
    copy_src_free(&cs);
    /* The source changed between our check and the copy. */
    return reply_rc(r, rc);
  }
  struct s3xml x;
  s3xml_init(&x, 4096);
  s3xml_open(&x, "CopyObjectResult", S3XML_NS);
  char q[STORE_ETAG_MAX + 3];
  snprintf(q, sizeof q, "\"%s\"", out.etag);
  s3xml_elem_str(&x, "ETag", q);
  s3xml_elem_time(&x, "LastModified", ns_to_s(out.mtime_ns));
  s3ck_alg ca = s3ck_from_store(out.checksum_algo);
  if (ca != S3CK_NONE && out.checksum) {
    char nm[32];
    snprintf(nm, sizeof nm, "Checksum%s", s3ck_name(ca));
    /* element names must outlive the writer: use constants */
    static const char *names[] = {NULL, "ChecksumCRC32", "ChecksumCRC32C",
                                  "ChecksumCRC64NVME", "ChecksumSHA1",
                                  "ChecksumSHA256"};
    if ((int)ca >= 1 && (int)ca <= 5) s3xml_elem_str(&x, names[ca], out.checksum);
  }
  s3xml_close(&x);
  char *doc;
  size_t len;
  int bad = s3xml_finish(&x, &doc, &len);
  store_object_info_free(&out);
  store_object_info_free(&src);
  if (bad) {
    copy_src_free(&cs);
    return reply_error(r, S3E_InternalError, NULL);
  }
  struct MHD_Response *resp = resp_take(doc, len);
  if (resp) {
    MHD_add_response_header(resp, "Content-Type", "application/xml");
    if (cs.version)
      MHD_add_response_header(resp, "x-amz-copy-source-version-id", cs.version);
  }
  copy_src_free(&cs);
  r->bytes_out = len;
  reply(r, 200, resp);
}

/* UploadPartCopy shares the copy-source parsing. */
enum s3err copy_source_for_part(struct req *r, char *bucket, char **key,
                                char **version, store_object_info *src);
enum s3err copy_source_for_part(struct req *r, char *bucket, char **key,
                                char **version, store_object_info *src) {
  struct copy_src cs;
  enum s3err e = copy_source_parse(req_header(r, "x-amz-copy-source"), &cs);
  if (e) {
    copy_src_free(&cs);
    return e;
  }
  int rc = store_head(g_s3d.st, cs.bucket, cs.key, cs.version, src);
  if (rc) {
    copy_src_free(&cs);
    return s3err_from_rc(rc);
  }
  memcpy(bucket, cs.bucket, sizeof cs.bucket);
  *key = cs.key;
  *version = cs.version;
  return S3E_NONE;
}

int copy_source_check(struct req *r, const store_object_info *src);
int copy_source_check(struct req *r, const store_object_info *src) {
  return copy_source_conditions(r, src);
}

/* ------------------------------------------------------------------ */
/* Object tagging.                                                    */
/* ------------------------------------------------------------------ */
static void put_object_tagging_end(struct req *r) {
  if (xml_body_ok(r)) return;
  store_kv *tags;
  size_t n;
  const char *msg;
  enum s3err e = xmlin_tagging(r->body.buf.p, r->body.buf.len, &tags, &n, &msg);
  if (e) return reply_error(r, e, msg);
  if (n > OBJECT_TAGS_MAX) {
    store_kv_free(tags, n);
    return reply_error(r, S3E_InvalidTag,
                       "Object tags cannot be greater than 10");
  }
  int rc = store_object_tags_set(g_s3d.st, r->bucket, r->key, tags, n);
  store_kv_free(tags, n);
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 200);
}

void op_put_object_tagging(struct req *r) {
  expect_xml_body(r, S3D_XML_MAX, put_object_tagging_end);
}

void op_get_object_tagging(struct req *r) {
  store_object_info info = {0};
  int rc = store_head(g_s3d.st, r->bucket, r->key, version_arg(r), &info);
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }
  struct s3xml x;
  s3xml_init(&x, 64 * 1024);
  s3xml_open(&x, "Tagging", S3XML_NS);
  s3xml_open(&x, "TagSet", NULL);
  for (size_t i = 0; i < info.n_tags; i++) {
    s3xml_open(&x, "Tag", NULL);
    s3xml_elem_str(&x, "Key", info.tags[i].name);
    s3xml_elem_str(&x, "Value", info.tags[i].value);
    s3xml_close(&x);
  }
  s3xml_close(&x);
  s3xml_close(&x);
  store_object_info_free(&info);
  char *doc;
  size_t len;
  if (s3xml_finish(&x, &doc, &len))
    return reply_error(r, S3E_InternalError, NULL);
  reply_xml(r, 200, doc, len);
}

void op_delete_object_tagging(struct req *r) {
  int rc = store_object_tags_set(g_s3d.st, r->bucket, r->key, NULL, 0);
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 204);
}

/* ------------------------------------------------------------------ */
/* GetObjectAttributes.                                               */
/* ------------------------------------------------------------------ */
void op_get_object_attributes(struct req *r) {
  const char *want = req_header(r, "x-amz-object-attributes");
  if (!want || !*want)
    return reply_error(r, S3E_InvalidArgument,
                       "x-amz-object-attributes header is required");
  store_object_info info = {0};
  int rc = store_head(g_s3d.st, r->bucket, r->key, version_arg(r), &info);
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }
  int w_etag = 0, w_ck = 0, w_parts = 0, w_sc = 0, w_size = 0;
  const char *p = want;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    size_t l = strcspn(p, ",");
    size_t tl = l;
    while (tl && p[tl - 1] == ' ') tl--;
#define IS(s) (tl == sizeof(s) - 1 && !strncasecmp(p, s, tl))
    if (IS("ETag")) w_etag = 1;
    else if (IS("Checksum")) w_ck = 1;
    else if (IS("ObjectParts")) w_parts = 1;
    else if (IS("StorageClass")) w_sc = 1;
    else if (IS("ObjectSize")) w_size = 1;
    else if (tl) {
      store_object_info_free(&info);
      return reply_error(r, S3E_InvalidArgument,
                         "Invalid attribute name specified.");
    }
#undef IS
    p += l;
  }
  struct s3xml x;
  s3xml_init(&x, 64 * 1024);
  s3xml_open(&x, "GetObjectAttributesResponse", S3XML_NS);
  if (w_etag) s3xml_elem_str(&x, "ETag", info.etag);
  s3ck_alg ca = s3ck_from_store(info.checksum_algo);
  if (w_ck && ca != S3CK_NONE && info.checksum) {
    static const char *names[] = {NULL, "ChecksumCRC32", "ChecksumCRC32C",
                                  "ChecksumCRC64NVME", "ChecksumSHA1",
                                  "ChecksumSHA256"};
    s3xml_open(&x, "Checksum", NULL);
    s3xml_elem_str(&x, names[ca], info.checksum);
    s3xml_elem_str(&x, "ChecksumType",
                   info.checksum_composite ? "COMPOSITE" : "FULL_OBJECT");
    s3xml_close(&x);
  }
  if (w_parts && info.parts) {
    s3xml_open(&x, "ObjectParts", NULL);
    s3xml_elem_u64(&x, "PartsCount", info.parts);
    s3xml_close(&x);
  }
  if (w_sc) s3xml_elem_str(&x, "StorageClass", "STANDARD");
  if (w_size) s3xml_elem_u64(&x, "ObjectSize", info.size);
  s3xml_close(&x);
  char *doc;
  size_t len;
  char date[S3_HTTP_DATE_LEN];
  int have_date = s3_http_date_format(ns_to_s(info.mtime_ns), date, sizeof date) > 0;
  store_object_info_free(&info);
  if (s3xml_finish(&x, &doc, &len))
    return reply_error(r, S3E_InternalError, NULL);
  struct MHD_Response *resp = resp_take(doc, len);
  if (resp) {
    MHD_add_response_header(resp, "Content-Type", "application/xml");
    if (have_date) MHD_add_response_header(resp, "Last-Modified", date);
  }
  r->bytes_out = len;
  reply(r, 200, resp);
}
