/*
 * server.c -- the request lifecycle of s3d: from libmicrohttpd's callbacks
 * to one S3 operation and back.
 *
 *   uri_log_cb      a request line arrived: allocate struct req, keep the
 *                   raw target (SigV4 signs it as sent), give it an id.
 *   access_cb       1st call: headers are in.  Parse the target (path- or
 *                   virtual-hosted style), authenticate, route (dispatch()).
 *                   Operations set up the body pipeline and an `op_end`,
 *                   or reply at once to refuse the body.  A request
 *                   without a body is dispatched in the last call instead
 *                   (a reply queued in the 1st call closes the connection).
 *                   next calls: body bytes, fed to the pipeline.
 *                   last call: the body is complete: run op_end.
 *   completed_cb    the request is over (answered, or the connection broke):
 *                   abort an uncommitted writer, write the access-log line,
 *                   free everything.
 *
 * Between authentication and routing, authz_request() applies bucket
 * ownership to every bucket-scoped operation (PostObject, which
 * authenticates from its form, asks authz_bucket() itself).
 *
 * Every request gets exactly one reply (reply() asserts it).
 *
 * The connection guard (guard_*) puts deadlines on what libmicrohttpd only
 * times out when idle: the request header and the request body.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */

#include "s3d.h"
#include "urlenc.h"
#include "xmlout.h"

struct s3d_global g_s3d;
atomic_int g_inflight;

static struct conn_guard *guard_of(struct MHD_Connection *conn);
static void guard_request_line(struct conn_guard *g);
static void guard_headers_done(struct conn_guard *g, int body_expected);
static void guard_body_begin(struct conn_guard *g);
static void guard_body_end(struct conn_guard *g, size_t n);
static void guard_busy(struct conn_guard *g);
static int guard_request_done(struct conn_guard *g);

char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }
char *xstrndup(const char *s, size_t n) { return s ? strndup(s, n) : NULL; }

void random_hex(char *out, size_t nhex) {
  uint8_t b[64];
  size_t nb = (nhex + 1) / 2;
  if (nb > sizeof b) nb = sizeof b;
  if (getrandom(b, nb, 0) != (ssize_t)nb) {
    /* Never fatal: request ids only need to be unique-ish. */
    static atomic_uint_fast64_t ctr;
    uint64_t v = atomic_fetch_add(&ctr, 1) ^ (uint64_t)time(NULL) << 20;
    for (size_t i = 0; i < nb; i++) b[i] = (uint8_t)(v >> (8 * (i % 8)));
  }
  static const char hx[] = "0123456789ABCDEF";
  for (size_t i = 0; i < nhex; i++)
    out[i] = hx[(b[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
  out[nhex] = 0;
}

/* ------------------------------------------------------------------ */
/* Request accessors.                                                 */
/* ------------------------------------------------------------------ */
const char *req_header(struct req *r, const char *name) {
  const char *first = NULL;
  size_t count = 0, total = 0;
  for (size_t i = 0; i < r->nhdrs; i++)
    if (!strcasecmp(r->hdrs[i].name, name)) {
      if (!first) first = r->hdrs[i].value;
      count++;
      total += strlen(r->hdrs[i].value) + 1;
    }
  if (count <= 1 || r->njoined >= sizeof r->joined / sizeof r->joined[0])
    return first;
  /* A header sent several times reads as its values joined with ','. */
  char *j = malloc(total + 1), *p = j;
  if (!j) return first;
  for (size_t i = 0; i < r->nhdrs; i++)
    if (!strcasecmp(r->hdrs[i].name, name)) {
      if (p != j) *p++ = ',';
      size_t l = strlen(r->hdrs[i].value);
      memcpy(p, r->hdrs[i].value, l);
      p += l;
    }
  *p = 0;
  r->joined[r->njoined++] = j;
  return j;
}

const char *header_or(struct req *r, const char *name, const char *dflt) {
  const char *v = req_header(r, name);
  return v ? v : dflt;
}

const char *req_query(struct req *r, const char *name) {
  for (size_t i = 0; i < r->nq; i++)
    if (!strcmp(r->q[i].name, name)) return r->q[i].value;
  return NULL;
}

int req_has_query(struct req *r, const char *name) {
  return req_query(r, name) != NULL;
}

/* ------------------------------------------------------------------ */
/* Replies.                                                           */
/* ------------------------------------------------------------------ */
struct MHD_Response *resp_buf(const void *p, size_t n) {
  return MHD_create_response_from_buffer(n, (void *)p,
                                         MHD_RESPMEM_MUST_COPY);
}

struct MHD_Response *resp_take(char *p, size_t n) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(n, p, MHD_RESPMEM_MUST_FREE);
  if (!resp) free(p);
  return resp;
}

void resp_add_etag(struct MHD_Response *resp, const char *etag) {
  char q[STORE_ETAG_MAX + 3];
  snprintf(q, sizeof q, "\"%s\"", etag);
  MHD_add_response_header(resp, "ETag", q);
}

void reply(struct req *r, int status, struct MHD_Response *resp) {
  if (r->responded) {
    /* Two replies to one request is a bug in an operation; keep serving. */
    fprintf(stderr, "s3d: BUG: second reply to request %s\n", r->id);
    if (resp) MHD_destroy_response(resp);
    return;
  }
  r->responded = 1;
  guard_busy(r->guard); /* no longer waiting for the client */
  if (!resp) {
    resp = MHD_create_response_from_buffer(0, (void *)"",
                                           MHD_RESPMEM_PERSISTENT);
    status = 500;
    r->bytes_out = 0;
    if (!resp) { r->status = 500; return; }
  }
  char id2[33];
  random_hex(id2, 32);
  MHD_add_response_header(resp, "x-amz-request-id", r->id);
  MHD_add_response_header(resp, "x-amz-id-2", id2);
  MHD_add_response_header(resp, "Server", "s3d");
  r->status = status;
  if (r->is_head) r->bytes_out = 0;
  if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
    fprintf(stderr, "s3d: request %s: could not queue the response\n", r->id);
  MHD_destroy_response(resp);
}

void reply_xml(struct req *r, int status, char *xml, size_t len) {
  struct MHD_Response *resp = resp_take(xml, len);
  if (resp) MHD_add_response_header(resp, "Content-Type", "application/xml");
  r->bytes_out = len;
  reply(r, status, resp);
}

void reply_empty(struct req *r, int status) {
  r->bytes_out = 0;
  reply(r, status, resp_buf("", 0));
}

void reply_error_ex(struct req *r, enum s3err e, const char *msg,
                    const char *const *extra) {
  const struct s3err_info *ei = s3err_get(e);
  if (e == S3E_NotModified) { /* 304 carries no body */
    reply_empty(r, 304);
    return;
  }
  struct s3xml x;
  s3xml_init(&x, 64 * 1024);
  s3xml_open(&x, "Error", NULL);
  s3xml_elem_str(&x, "Code", ei->code);
  s3xml_elem_str(&x, "Message", msg ? msg : ei->message);
  for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
    s3xml_elem_str(&x, extra[i], extra[i + 1]);
  if (r->path) s3xml_elem_str(&x, "Resource", r->path);
  s3xml_elem_str(&x, "RequestId", r->id);
  s3xml_elem_str(&x, "HostId", r->id);
  s3xml_close(&x);
  char *doc;
  size_t len;
  if (s3xml_finish(&x, &doc, &len)) {
    reply_empty(r, ei->status);
    return;
  }
  struct MHD_Response *resp = resp_take(doc, len);
  if (resp) MHD_add_response_header(resp, "Content-Type", "application/xml");
  r->bytes_out = len;
  reply(r, ei->status, resp);
}

void reply_error(struct req *r, enum s3err e, const char *msg) {
  reply_error_ex(r, e, msg, NULL);
}

void reply_rc(struct req *r, int rc) {
  enum s3err e = s3err_from_rc(rc);
  const char *detail = NULL;
  /* Pass libstore's one-line detail for argument errors; never for I/O
     errors (they may name paths inside the store). */
  if (rc == STORE_ERR_INVALID || rc == STORE_ERR_BAD_KEY ||
      rc == STORE_ERR_BAD_BUCKET_NAME || rc == STORE_ERR_NOT_SUPPORTED)
    detail = store_errmsg();
  if (rc == STORE_ERR_IO || rc == STORE_ERR_CORRUPT || rc == STORE_ERR_NOSPC ||
      rc == STORE_ERR_READONLY)
    fprintf(stderr, "s3d: request %s: %s: %s\n", r->id, store_strerror(rc),
            store_errmsg());
  reply_error(r, e, detail && *detail ? detail : NULL);
}

/* ------------------------------------------------------------------ */
/* Parsing the request target.                                        */
/* ------------------------------------------------------------------ */
static const char *k_unsupported_sub[] = {
  "policy", "cors", "lifecycle", "website", "logging", "notification",
  "replication", "encryption", "object-lock", "ownershipControls",
  "publicAccessBlock", "accelerate", "requestPayment", "inventory",
  "analytics", "metrics", "intelligent-tiering", "legal-hold", "retention",
  "restore", "select", "torrent", "policyStatus", NULL};

static enum MHD_Result copy_headers_cb(void *cls, enum MHD_ValueKind kind,
                           const char *key, const char *value) {
  (void)kind;
  struct req *r = cls;
  if (r->nhdrs >= S3D_MAX_HEADERS) return MHD_NO;
  r->hdrs[r->nhdrs].name = key;
  r->hdrs[r->nhdrs].value = value ? value : "";
  r->nhdrs++;
  return MHD_YES;
}

/* Split the raw target into a decoded path, bucket, key and query.  Returns
   0, or replies and returns -1. */
static int parse_target(struct req *r) {
  const char *t = r->target;
  const char *qm = memchr(t, '?', r->target_len);
  size_t plen = qm ? (size_t)(qm - t) : r->target_len;
  r->path = malloc(plen + 2);
  if (!r->path) return reply_error(r, S3E_SlowDown, NULL), -1;
  size_t dlen;
  if (s3url_decode(r->path, plen + 2, t, plen, S3URL_REJECT_NUL, &dlen) !=
      S3URL_OK) {
    /* The buffer holds a partial decode: never echo it as Resource. */
    free(r->path);
    r->path = NULL;
    return reply_error(r, S3E_InvalidURI, NULL), -1;
  }
  if (dlen == 0 || r->path[0] != '/') {
    if (!strncmp(t, "http://", 7) || !strncmp(t, "https://", 8))
      return reply_error(r, S3E_InvalidURI, "absolute-form targets are not "
                                            "supported"), -1;
    memmove(r->path + 1, r->path, dlen + 1);
    r->path[0] = '/';
    dlen++;
  }

  if (qm) {
    struct s3url_param ps[S3D_MAX_QUERY];
    size_t np = 0;
    size_t qlen = r->target_len - plen - 1;
    s3url_result ur = s3url_split_query(qm + 1, qlen, ps, S3D_MAX_QUERY, &np);
    if (ur != S3URL_OK)
      return reply_error(r, S3E_InvalidArgument, "too many query parameters"),
             -1;
    for (size_t i = 0; i < np; i++) {
      char *n = malloc(ps[i].name_len + 1), *v = malloc(ps[i].value_len + 1);
      if (!n || !v) {
        free(n);
        free(v);
        return reply_error(r, S3E_SlowDown, NULL), -1;
      }
      r->q[r->nq].name = n;
      r->q[r->nq].value = v;
      r->q[r->nq].has_eq = ps[i].has_eq;
      r->nq++;
      if (s3url_decode(n, ps[i].name_len + 1, ps[i].name, ps[i].name_len,
                       S3URL_PLUS_SPACE, NULL) != S3URL_OK ||
          s3url_decode(v, ps[i].value_len + 1, ps[i].value, ps[i].value_len,
                       S3URL_PLUS_SPACE, NULL) != S3URL_OK)
        return reply_error(r, S3E_InvalidURI, NULL), -1;
    }
  }

  /* Virtual-hosted style: Host: BUCKET.DOMAIN[:port]. */
  const char *p = r->path + 1; /* after the leading '/' */
  const char *host = req_header(r, "host");
  if (g_s3d.cfg.domain && host) {
    size_t hl = strcspn(host, ":");
    if (host[0] == '[') hl = strlen(host); /* IPv6 literal: never a bucket */
    size_t dl = strlen(g_s3d.cfg.domain);
    if (hl > dl + 1 && host[hl - dl - 1] == '.' &&
        !strncasecmp(host + hl - dl, g_s3d.cfg.domain, dl)) {
      size_t bl = hl - dl - 1;
      if (bl > STORE_BUCKET_NAME_MAX)
        return reply_error(r, S3E_InvalidBucketName, NULL), -1;
      memcpy(r->bucket, host, bl);
      r->bucket[bl] = 0;
      r->has_bucket = 1;
      if (*p) {
        r->key = xstrdup(p);
        r->key_len = strlen(p);
      }
      goto check_key;
    }
  }
  /* Path style: /BUCKET[/KEY]. */
  if (*p) {
    const char *sl = strchr(p, '/');
    size_t bl = sl ? (size_t)(sl - p) : strlen(p);
    if (bl > STORE_BUCKET_NAME_MAX)
      return reply_error(r, S3E_InvalidBucketName, NULL), -1;
    memcpy(r->bucket, p, bl);
    r->bucket[bl] = 0;
    r->has_bucket = 1;
    if (sl && sl[1]) {
      r->key_len = dlen - (size_t)(sl + 1 - r->path);
      r->key = xstrndup(sl + 1, r->key_len);
    }
  }
check_key:
  if (r->key && r->key_len > STORE_KEY_MAX)
    return reply_error(r, S3E_KeyTooLongError, NULL), -1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Routing.                                                           */
/* ------------------------------------------------------------------ */
static int has_unsupported_sub(struct req *r) {
  for (size_t i = 0; k_unsupported_sub[i]; i++)
    if (req_has_query(r, k_unsupported_sub[i])) return 1;
  return 0;
}

static void op_get_acl(struct req *r) {
  /* Everything is private to the store's users: report the canned
     "private" ACL so tools that read ACLs keep working. */
  if (r->key) {
    store_object_info info = {0};
    int rc = store_head(g_s3d.st, r->bucket, r->key, NULL, &info);
    store_object_info_free(&info);
    if (rc) return reply_rc(r, rc);
  } else if (need_bucket(r)) {
    return;
  }
  struct s3xml x;
  s3xml_init(&x, 4096);
  s3xml_open(&x, "AccessControlPolicy", S3XML_NS);
  s3xml_open(&x, "Owner", NULL);
  s3xml_elem_str(&x, "ID", r->auth.access_key);
  s3xml_elem_str(&x, "DisplayName", r->auth.access_key);
  s3xml_close(&x);
  s3xml_open(&x, "AccessControlList", NULL);
  s3xml_open(&x, "Grant", NULL);
  s3xml_open(&x, "Grantee", NULL);
  s3xml_elem_str(&x, "ID", r->auth.access_key);
  s3xml_elem_str(&x, "DisplayName", r->auth.access_key);
  s3xml_close(&x);
  s3xml_elem_str(&x, "Permission", "FULL_CONTROL");
  s3xml_close(&x);
  s3xml_close(&x);
  s3xml_close(&x);
  char *doc;
  size_t len;
  if (s3xml_finish(&x, &doc, &len)) return reply_error(r, S3E_InternalError, NULL);
  reply_xml(r, 200, doc, len);
}

/* CreateBucket, as route() tells it from the other PUTs on a bucket. */
static int is_create_bucket(struct req *r) {
  return r->has_bucket && !r->key && !strcmp(r->method, "PUT") &&
         !has_unsupported_sub(r) && !req_has_query(r, "tagging") &&
         !req_has_query(r, "versioning") && !req_has_query(r, "acl");
}

/* Bucket ownership, for every bucket-scoped operation, in one place: the
   request's bucket, and the source bucket of CopyObject / UploadPartCopy
   (x-amz-copy-source, parsed as the copy will parse it).  CreateBucket
   decides itself (BucketAlreadyExists / BucketAlreadyOwnedByYou) and
   ListBuckets filters.  0, or replied 403 AccessDenied and -1. */
static int authz_request(struct req *r) {
  if (!r->has_bucket || is_create_bucket(r)) return 0;
  enum s3err e = authz_bucket(r, r->bucket);
  const char *src = req_header(r, "x-amz-copy-source");
  if (!e && src && r->key && !strcmp(r->method, "PUT")) {
    struct copy_src cs;
    /* An unparsable source is refused by the copy itself. */
    if (copy_source_parse(src, &cs) == S3E_NONE)
      e = authz_bucket(r, cs.bucket);
    copy_src_free(&cs);
  }
  if (e) {
    reply_error(r, e, NULL);
    return -1;
  }
  return 0;
}

static void route(struct req *r) {
  const char *m = r->method;
  int get = !strcmp(m, "GET"), head = !strcmp(m, "HEAD"),
      put = !strcmp(m, "PUT"), del = !strcmp(m, "DELETE"),
      post = !strcmp(m, "POST");

  if (!r->has_bucket) {
    if (get) return op_list_buckets(r);
    return reply_error(r, S3E_MethodNotAllowed, NULL);
  }
  if (has_unsupported_sub(r)) return reply_error(r, S3E_NotImplemented, NULL);

  if (!r->key) {
    if (put) {
      if (req_has_query(r, "tagging")) return op_put_bucket_tagging(r);
      if (req_has_query(r, "versioning")) return op_put_bucket_versioning(r);
      if (req_has_query(r, "acl")) return reply_error(r, S3E_NotImplemented, NULL);
      return op_create_bucket(r); /* is_create_bucket(r) */
    }
    if (get || head) {
      if (head) return op_head_bucket(r);
      if (req_has_query(r, "location")) return op_get_bucket_location(r);
      if (req_has_query(r, "tagging")) return op_get_bucket_tagging(r);
      if (req_has_query(r, "versioning")) return op_get_bucket_versioning(r);
      if (req_has_query(r, "versions")) return op_list_object_versions(r);
      if (req_has_query(r, "uploads")) return op_list_mpu(r);
      if (req_has_query(r, "acl")) return op_get_acl(r);
      const char *lt = req_query(r, "list-type");
      if (lt && !strcmp(lt, "2")) return op_list_objects_v2(r);
      return op_list_objects(r);
    }
    if (del) {
      if (req_has_query(r, "tagging")) return op_delete_bucket_tagging(r);
      return op_delete_bucket(r);
    }
    if (post) {
      if (req_has_query(r, "delete")) return op_delete_objects(r);
      return op_post_object(r);
    }
    return reply_error(r, S3E_MethodNotAllowed, NULL);
  }

  if (put) {
    if (req_has_query(r, "tagging")) return op_put_object_tagging(r);
    if (req_has_query(r, "acl")) return reply_error(r, S3E_NotImplemented, NULL);
    if (req_has_query(r, "uploadId") || req_has_query(r, "partNumber")) {
      if (req_header(r, "x-amz-copy-source")) return op_upload_part_copy(r);
      return op_upload_part(r);
    }
    if (req_header(r, "x-amz-copy-source")) return op_copy_object(r);
    return op_put_object(r);
  }
  if (get) {
    if (req_has_query(r, "tagging")) return op_get_object_tagging(r);
    if (req_has_query(r, "uploadId")) return op_list_parts(r);
    if (req_has_query(r, "attributes")) return op_get_object_attributes(r);
    if (req_has_query(r, "acl")) return op_get_acl(r);
    return op_get_object(r);
  }
  if (head) return op_head_object(r);
  if (del) {
    if (req_has_query(r, "tagging")) return op_delete_object_tagging(r);
    if (req_has_query(r, "uploadId")) return op_abort_mpu(r);
    return op_delete_object(r);
  }
  if (post) {
    if (req_has_query(r, "uploads")) return op_create_mpu(r);
    if (req_has_query(r, "uploadId")) return op_complete_mpu(r);
    return reply_error(r, S3E_NotImplemented, NULL);
  }
  return reply_error(r, S3E_MethodNotAllowed, NULL);
}

static int is_health(struct req *r) {
  if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) return 0;
  if (r->target_len != 7 || memcmp(r->target, "/health", 7)) return 0;
  return req_header(r, "authorization") == NULL;
}

/* A browser-form upload: authenticated by the policy inside the form. */
static int is_post_form(struct req *r) {
  if (strcmp(r->method, "POST") || !r->has_bucket || r->key || r->nq) return 0;
  const char *ct = req_header(r, "content-type");
  return ct && !strncasecmp(ct, "multipart/form-data", 19) &&
         !req_header(r, "authorization");
}

/* ------------------------------------------------------------------ */
/* libmicrohttpd callbacks.                                           */
/* ------------------------------------------------------------------ */
/* Whether a body follows the header (RFC 9112 6.3: Transfer-Encoding, or
   a Content-Length other than 0). */
static int has_body(struct req *r) {
  if (req_header(r, "transfer-encoding")) return 1;
  const char *cl = req_header(r, "content-length");
  if (!cl) return 0;
  while (*cl == ' ' || *cl == '\t') cl++;
  while (*cl == '0') cl++;
  while (*cl == ' ' || *cl == '\t') cl++;
  return *cl != 0;
}

/* The header is complete: parse, authenticate, authorise, route.  Either
   replies, or leaves an operation waiting for the body (op_end). */
static void dispatch(struct req *r) {
  if (is_health(r)) {
    struct MHD_Response *resp = resp_buf("ok\n", 3);
    if (resp) MHD_add_response_header(resp, "Content-Type", "text/plain");
    r->bytes_out = 3;
    reply(r, 200, resp);
    return;
  }
  if (parse_target(r)) return;
  if (is_post_form(r)) {
    r->anonymous = 1;
    op_post_object(r);
  } else if (!auth_request(r) && !authz_request(r)) {
    route(r);
  }
}

void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn);
void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)cls;
  struct conn_guard *g = guard_of(conn);
  guard_request_line(g);
  struct req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->conn = conn;
  r->guard = g;
  r->target_len = strlen(uri);
  r->target = strndup(uri, r->target_len);
  clock_gettime(CLOCK_MONOTONIC, &r->t0);
  random_hex(r->id, 16);
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr) {
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
      inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                r->remote, sizeof r->remote);
    else if (sa->sa_family == AF_INET6)
      inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                r->remote, sizeof r->remote);
  }
  if (!r->remote[0]) snprintf(r->remote, sizeof r->remote, "-");
  atomic_fetch_add(&g_inflight, 1);
  return r;
}

static void req_free(struct req *r) {
  if (r->op_free) r->op_free(r);
  body_free(&r->body);
  s3sig_auth_free(&r->auth);
  for (size_t i = 0; i < r->nq; i++) {
    free(r->q[i].name);
    free(r->q[i].value);
  }
  for (size_t i = 0; i < r->njoined; i++) free(r->joined[i]);
  free(r->path);
  free(r->key);
  free(r->target);
  free(r);
}

/* The access log: one line per request.  The path is logged without its
   query string, which for presigned URLs holds the credential and
   signature; headers (Authorization) are never logged. */
static void access_log(struct req *r, enum MHD_RequestTerminationCode toe,
                       int killed) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - r->t0.tv_sec) * 1e3 +
              (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e6;
  char when[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  size_t plen = strcspn(r->target ? r->target : "", "?");
  if (plen > 1024) plen = 1024;
  /* Control bytes could forge log lines: show them escaped. */
  char path[1024 * 4 + 1], *o = path;
  for (size_t i = 0; i < plen; i++) {
    unsigned char c = (unsigned char)r->target[i];
    if (c < 0x20 || c == 0x7f || c == ' ' || c == '"') {
      static const char hx[] = "0123456789ABCDEF";
      *o++ = '%';
      *o++ = hx[c >> 4];
      *o++ = hx[c & 15];
    } else {
      *o++ = (char)c;
    }
  }
  *o = 0;
  const char *end = killed == 1 ? " aborted:header-timeout"
                    : killed == 2 ? " aborted:slow-body"
                    : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                    : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN
                        ? " aborted:shutdown"
                    : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                        ? " aborted:timeout"
                    : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT
                        ? " aborted:client"
                        : " aborted:error";
  /* A streamed body cut off (read error, client gone, deadline): the bytes
     that went out, not the length announced. */
  uint64_t out = r->bytes_out;
  if (r->streamed && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
      r->bytes_streamed < out)
    out = r->bytes_streamed;
  fprintf(stderr, "%s %s %s %s \"%s\" %d %" PRIu64 " %" PRIu64 " %.1fms%s\n",
          when, r->id, r->remote, r->method ? r->method : "-", path,
          r->status ? r->status : 0, r->bytes_in, out, ms, end);
}

void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe);
void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe) {
  (void)cls;
  int killed = guard_request_done(guard_of(conn));
  struct req *r = *con_cls;
  if (!r) return;
  *con_cls = NULL;
  /* A body that did not arrive completely is never committed: the writer
     (if any) is aborted by body_free() below. */
  access_log(r, toe, killed);
  req_free(r);
  atomic_fetch_sub(&g_inflight, 1);
}

enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
                          const char *url, const char *method,
                          const char *version, const char *upload_data,
                          size_t *upload_data_size, void **con_cls);
enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
                          const char *url, const char *method,
                          const char *version, const char *upload_data,
                          size_t *upload_data_size, void **con_cls) {
  (void)cls;
  (void)url;
  (void)version;
  struct req *r = *con_cls;
  if (!r || !r->target) return MHD_NO; /* out of memory: drop it */

  if (!r->started) {
    r->started = 1;
    r->method = method;
    r->is_head = !strcmp(method, "HEAD");
    MHD_get_connection_values(conn, MHD_HEADER_KIND, copy_headers_cb, r);
    if (r->nhdrs >= S3D_MAX_HEADERS) {
      reply_error(r, S3E_InvalidRequest, "too many headers");
      return MHD_YES;
    }
    /* libmicrohttpd (0.9.75) closes the connection after a reply queued
       in this first call ("early": it will not read a body it has not
       been asked for), so a request without a body is answered in the
       final call, which follows at once, and keeps the connection. */
    if (!has_body(r)) {
      r->deferred = 1;
      guard_headers_done(r->guard, 0);
      return MHD_YES;
    }
    dispatch(r);
    /* Not answered yet: the operation waits for the body. */
    guard_headers_done(r->guard, !r->responded);
    return MHD_YES;
  }

  if (*upload_data_size) {
    size_t n = *upload_data_size;
    r->bytes_in += n;
    guard_body_begin(r->guard);
    if (!r->responded) {
      if (r->anonymous)
        post_feed(r, upload_data, n);
      else if (r->body.active)
        body_feed(r, upload_data, n);
    }
    guard_body_end(r->guard, n);
    *upload_data_size = 0;
    return MHD_YES;
  }

  guard_busy(r->guard); /* the body is complete */
  if (r->deferred) {
    r->deferred = 0;
    dispatch(r); /* an operation that expects a body gets an empty one */
  }
  if (!r->responded) {
    if (r->op_end)
      r->op_end(r);
    else
      reply_error(r, S3E_InternalError, NULL);
  }
  return MHD_YES;
}

/* ------------------------------------------------------------------ */
/* The connection guard: deadlines for request headers and bodies.    */
/* ------------------------------------------------------------------ */
/*
 * libmicrohttpd's --timeout counts idle time only.  A client that sends
 * one byte of its request header a second is never idle, and
 * --max-connections such clients starve everybody else (slowloris).  So
 * every connection has a guard (MHD_OPTION_NOTIFY_CONNECTION), the
 * connection's thread moves it from state to state, and a sweeper thread
 * looks at all of them four times a second:
 *
 *   G_HEADER  waiting for a request header: a new connection from its
 *             accept, a kept-alive one from the first byte of its next
 *             request.  Past --header-timeout the connection is closed.
 *   G_IDLE    a kept-alive connection between requests, nothing received
 *             since: --timeout (libmicrohttpd's) applies.  The sweeper
 *             compares the socket's byte count (TCP_INFO) with the one at
 *             the end of the last request to see a new request begin.
 *   G_BODY    s3d waits for the request body: each GUARD_BODY_WINDOW
 *             seconds of waiting must bring --min-body-rate bytes a second.
 *             Time s3d spends itself on a piece (writing it to the store,
 *             waiting for the catalog) does not count.
 *   G_BUSY    s3d has the request (handler, reply): no deadline here.
 *
 * "Closed" is shutdown(2) of the socket: the connection's own thread sees
 * the end of the stream and libmicrohttpd tears the connection down as it
 * does for a client that went away (the completion callback runs, an
 * unfinished upload is aborted).  The guard list is locked while a socket
 * is shut down and libmicrohttpd notifies (which unlinks the guard) before
 * it closes the socket, so the descriptor is still the connection's; its
 * peer address is compared as well.
 */
enum gstate { G_HEADER, G_IDLE, G_BODY, G_BUSY };
#define GUARD_BODY_WINDOW 30 /* seconds */
#define GUARD_SWEEP_MS 250

struct conn_guard {
  struct conn_guard *prev, *next;
  int fd;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  enum gstate st;
  int64_t since;    /* G_HEADER: the header clock; G_BODY: window start */
  uint64_t base;    /* G_IDLE: socket bytes; G_BODY: body bytes at since */
  uint64_t body;    /* G_BODY: body bytes so far */
  int in_handler;   /* G_BODY: s3d is working on a piece */
  int64_t handler_t0;
  int killed;       /* 1 header deadline, 2 body too slow */
};

static pthread_mutex_t g_guard_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_guard_cv;
static struct conn_guard *g_guards;
static pthread_t g_sweeper;
static int g_sweeper_on, g_guard_stop;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Bytes the kernel has received on the socket (TLS records included):
   0, or -1 when the kernel does not say. */
static int sock_bytes_received(int fd, uint64_t *out) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len)) return -1;
  if (len < offsetof(struct tcp_info, tcpi_bytes_received) +
                sizeof ti.tcpi_bytes_received)
    return -1;
  *out = ti.tcpi_bytes_received;
  return 0;
}

void guard_notify_cb(void *cls, struct MHD_Connection *conn,
                     void **socket_context,
                     enum MHD_ConnectionNotificationCode toe) {
  (void)cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    struct conn_guard *g = calloc(1, sizeof *g);
    *socket_context = g;
    if (!g) return; /* out of memory: this connection goes unguarded */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    g->fd = ci ? ci->connect_fd : -1;
    g->peer_len = sizeof g->peer;
    if (g->fd < 0 ||
        getpeername(g->fd, (struct sockaddr *)&g->peer, &g->peer_len))
      g->peer_len = 0;
    g->st = G_HEADER;
    g->since = mono_ns();
    pthread_mutex_lock(&g_guard_mu);
    g->next = g_guards;
    if (g_guards) g_guards->prev = g;
    g_guards = g;
    pthread_mutex_unlock(&g_guard_mu);
    return;
  }
  struct conn_guard *g = *socket_context;
  if (!g) return;
  *socket_context = NULL;
  pthread_mutex_lock(&g_guard_mu);
  if (g->prev) g->prev->next = g->next;
  else g_guards = g->next;
  if (g->next) g->next->prev = g->prev;
  pthread_mutex_unlock(&g_guard_mu);
  free(g);
}

static struct conn_guard *guard_of(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* A request line arrived (uri_log_cb). */
static void guard_request_line(struct conn_guard *g) {
  if (!g) return;
  pthread_mutex_lock(&g_guard_mu);
  if (g->st == G_IDLE) { /* the sweeper had not seen its first bytes yet */
    g->st = G_HEADER;
    g->since = mono_ns();
  }
  pthread_mutex_unlock(&g_guard_mu);
}

/* The header is complete and the first access_cb call is over. */
static void guard_headers_done(struct conn_guard *g, int body_expected) {
  if (!g) return;
  pthread_mutex_lock(&g_guard_mu);
  if (body_expected) {
    g->st = G_BODY;
    g->since = mono_ns();
    g->base = g->body = 0;
    g->in_handler = 0;
  } else {
    g->st = G_BUSY;
  }
  pthread_mutex_unlock(&g_guard_mu);
}

static void guard_body_begin(struct conn_guard *g) {
  if (!g) return;
  pthread_mutex_lock(&g_guard_mu);
  g->in_handler = 1;
  g->handler_t0 = mono_ns();
  pthread_mutex_unlock(&g_guard_mu);
}

static void guard_body_end(struct conn_guard *g, size_t n) {
  if (!g) return;
  pthread_mutex_lock(&g_guard_mu);
  g->in_handler = 0;
  g->body += n;
  g->since += mono_ns() - g->handler_t0; /* s3d's own time is not the
                                             client's */
  pthread_mutex_unlock(&g_guard_mu);
}

static void guard_busy(struct conn_guard *g) {
  if (!g) return;
  pthread_mutex_lock(&g_guard_mu);
  g->st = G_BUSY;
  pthread_mutex_unlock(&g_guard_mu);
}

/* The request is over (completed_cb): back to waiting for the next one.
   Returns why the guard closed the connection (0: it did not). */
static int guard_request_done(struct conn_guard *g) {
  if (!g) return 0;
  uint64_t b = 0;
  int known = sock_bytes_received(g->fd, &b) == 0;
  pthread_mutex_lock(&g_guard_mu);
  int killed = g->killed;
  g->since = mono_ns();
  g->base = b;
  /* Without the socket's byte count the next header's clock starts now. */
  g->st = known ? G_IDLE : G_HEADER;
  pthread_mutex_unlock(&g_guard_mu);
  return killed;
}

static int guard_same_peer(const struct conn_guard *g) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getpeername(g->fd, (struct sockaddr *)&ss, &sl)) return 0;
  return g->peer_len == 0 ||
         (sl == g->peer_len && !memcmp(&ss, &g->peer, sl));
}

static void *guard_main(void *arg) {
  (void)arg;
  int64_t hdr_ns = (int64_t)g_s3d.cfg.header_timeout_s * 1000000000;
  int64_t win_ns = (int64_t)GUARD_BODY_WINDOW * 1000000000;
  uint64_t win_min = (uint64_t)g_s3d.cfg.min_body_rate * GUARD_BODY_WINDOW;
  unsigned long n_hdr = 0, n_body = 0;
  int64_t last_note = 0;
  pthread_mutex_lock(&g_guard_mu);
  while (!g_guard_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += GUARD_SWEEP_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_guard_cv, &g_guard_mu, &ts);
    if (g_guard_stop) break;
    int64_t now = mono_ns();
    for (struct conn_guard *g = g_guards; g; g = g->next) {
      if (g->killed || g->fd < 0) continue;
      int kill = 0;
      uint64_t b;
      switch (g->st) {
      case G_IDLE:
        if (sock_bytes_received(g->fd, &b) == 0 && b > g->base) {
          g->st = G_HEADER; /* a new request is on its way */
          g->since = now;
        }
        break;
      case G_HEADER:
        if (hdr_ns && now - g->since > hdr_ns) kill = 1;
        break;
      case G_BODY:
        if (!win_min || g->in_handler || now - g->since < win_ns) break;
        if (g->body - g->base < win_min) {
          kill = 2;
        } else {
          g->since = now;
          g->base = g->body;
        }
        break;
      case G_BUSY:
        break;
      }
      if (kill && guard_same_peer(g)) {
        g->killed = kill;
        shutdown(g->fd, SHUT_RDWR);
        if (kill == 1) n_hdr++;
        else n_body++;
      }
    }
    /* A slowloris attack must not flood the log: a summary every 10 s. */
    if ((n_hdr || n_body) && now - last_note >= (int64_t)10 * 1000000000) {
      unsigned long h = n_hdr, bd = n_body;
      n_hdr = n_body = 0;
      last_note = now;
      pthread_mutex_unlock(&g_guard_mu);
      fprintf(stderr,
              "s3d: closed %lu connection(s) without a complete request "
              "header after %u s and %lu with a request body slower than "
              "%u bytes/s\n",
              h, g_s3d.cfg.header_timeout_s, bd, g_s3d.cfg.min_body_rate);
      pthread_mutex_lock(&g_guard_mu);
    }
  }
  pthread_mutex_unlock(&g_guard_mu);
  return NULL;
}

int guard_start(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g_guard_cv, &ca);
  pthread_condattr_destroy(&ca);
  g_guard_stop = 0;
  if (pthread_create(&g_sweeper, NULL, guard_main, NULL)) return -1;
  g_sweeper_on = 1;
  return 0;
}

void guard_stop(void) {
  if (!g_sweeper_on) return;
  pthread_mutex_lock(&g_guard_mu);
  g_guard_stop = 1;
  pthread_cond_signal(&g_guard_cv);
  pthread_mutex_unlock(&g_guard_mu);
  pthread_join(g_sweeper, NULL);
  g_sweeper_on = 0;
}
