/*
 * s3d.h -- shared declarations of the S3 daemon: the per-request state that
 * server.c owns and every operation file (ops_*.c) works on, the reply
 * helpers, the S3 error table (errors.c), the body pipeline (body.c) and the
 * request-XML readers (xmlin.c).
 *
 * Threading: libmicrohttpd runs one thread per connection, so a request and
 * everything hanging off it (store_writer, store_reader) stays on one thread
 * from its first byte to its completion callback.  The only shared state is
 * the global `g_s3d` (read-only after start-up) and the libstore handle,
 * which libstore makes safe to share.
 */
#ifndef S3D_S3D_H
#define S3D_S3D_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "checksum.h"
#include "chunked.h"
#include "dynbuf.h"
#include "libstore.h"
#include "sigv4.h"

#define S3D_VERSION STORE_VERSION

/* Request-body caps for XML documents (the bodies we buffer). */
#define S3D_XML_MAX (1u << 20)
#define S3D_XML_DELETE_MAX (2u << 20)
#define S3D_MAX_PUT ((uint64_t)5 << 30) /* single PUT / part: 5 GiB */
#define S3D_MAX_HEADERS 128
#define S3D_MAX_QUERY 64

/* ------------------------------------------------------------------ */
/* Configuration and the process-wide state.                          */
/* ------------------------------------------------------------------ */
struct s3d_config {
  char *store_dir;
  char *listen;
  char *tls_cert;
  char *tls_key;
  char *domain;      /* virtual-hosted style: Host: bucket.DOMAIN */
  char *region;      /* NULL: accept any region, report us-east-1 */
  unsigned max_conns;
  unsigned timeout_s;   /* idle connection timeout */
  unsigned shutdown_s;  /* how long SIGTERM waits for in-flight requests */
  int durability;       /* enum store_durability */
  unsigned header_timeout_s; /* time to send a complete request header */
  unsigned min_body_rate;    /* bytes/s a request body must keep up; 0 off */
  unsigned per_ip_conns;     /* connections per client address; 0 no limit */
  unsigned busy_timeout_ms;  /* libstore's wait for the catalog lock */
};

struct s3d_global {
  struct s3d_config cfg;
  store *st;
  const char *region_out; /* region reported by GetBucketLocation */
};
extern struct s3d_global g_s3d;

/* ------------------------------------------------------------------ */
/* S3 errors (errors.c): the one table.                               */
/* ------------------------------------------------------------------ */
enum s3err {
  S3E_NONE = 0,
  S3E_AccessDenied,
  S3E_BadDigest,
  S3E_BucketAlreadyExists,
  S3E_BucketAlreadyOwnedByYou,
  S3E_BucketNotEmpty,
  S3E_EntityTooLarge,
  S3E_EntityTooSmall,
  S3E_IncompleteBody,
  S3E_InternalError,
  S3E_InvalidAccessKeyId,
  S3E_InvalidArgument,
  S3E_InvalidBucketName,
  S3E_InvalidDigest,
  S3E_InvalidPart,
  S3E_InvalidPartOrder,
  S3E_InvalidRange,
  S3E_InvalidRequest,
  S3E_InvalidStorageClass,
  S3E_InvalidTag,
  S3E_InvalidURI,
  S3E_KeyTooLongError,
  S3E_MalformedPOSTRequest,
  S3E_MalformedXML,
  S3E_MaxMessageLengthExceeded,
  S3E_MetadataTooLarge,
  S3E_MethodNotAllowed,
  S3E_MissingContentLength,
  S3E_NoSuchBucket,
  S3E_NoSuchKey,
  S3E_NoSuchTagSet,
  S3E_NoSuchUpload,
  S3E_NotImplemented,
  S3E_NotModified,
  S3E_PreconditionFailed,
  S3E_RequestTimeTooSkewed,
  S3E_ServiceUnavailable,
  S3E_SignatureDoesNotMatch,
  S3E_SlowDown,
  S3E_XAmzContentSHA256Mismatch,
  S3E_InvalidChecksum, /* "InvalidRequest" with a checksum message in S3;
                          we answer BadDigest as S3 does for mismatches */
  S3E_InsufficientStorage,
  S3E_StoreReadOnly, /* 503 ServiceUnavailable: the store refuses writes */
  S3E__COUNT
};

struct s3err_info {
  const char *code;
  int status;
  const char *message;
};
const struct s3err_info *s3err_get(enum s3err e);
/* The libstore result -> S3 error table. */
enum s3err s3err_from_rc(int rc);

/* ------------------------------------------------------------------ */
/* Body pipeline (body.c).                                            */
/* ------------------------------------------------------------------ */
/* Where decoded body bytes go. */
enum body_sink { SINK_NONE = 0, SINK_WRITER, SINK_BUF, SINK_DISCARD };

struct body {
  int active;
  int chunked;            /* aws-chunked framing */
  struct s3chunk dec;
  int check_sha256;       /* x-amz-content-sha256 is a hash */
  struct sha256_ctx sha;
  char expect_sha[65];
  struct s3ck md5;        /* only for SINK_BUF (writer computes its own) */
  int have_md5;           /* Content-MD5 given */
  uint8_t want_md5[16];
  s3ck_alg ck_alg;        /* checksum being computed, S3CK_NONE if none */
  struct s3ck ck;
  char ck_header[S3CK_MAX_B64 + 1]; /* value from the header, "" if trailer */
  int ck_from_trailer;
  char ck_b64[S3CK_MAX_B64 + 1];    /* verified value after finish */
  uint64_t total;         /* decoded bytes */
  uint64_t limit;         /* refuse more decoded bytes than this */
  enum body_sink sink;
  store_writer *w;        /* SINK_WRITER; owned: aborted unless taken */
  struct s3buf buf;       /* SINK_BUF */
  enum s3err err;         /* first failure, sticky */
  const char *err_msg;
  int store_rc;           /* rc of a failed store_write */
};

struct req;
/* Set up decoding for the request body (framing, hashes and checks from
   the headers and the auth result). Returns S3E_NONE or the error to send
   without reading the body. */
enum s3err body_begin(struct req *r, enum body_sink sink, uint64_t limit);
/* Feed raw body bytes (after HTTP framing). Errors are recorded in
   r->body.err; the rest of the body is then discarded. */
void body_feed(struct req *r, const char *p, size_t n);
/* End of the body: verify framing, signatures, SHA-256, Content-MD5 and
   the checksum. Returns S3E_NONE when everything checked out. */
enum s3err body_finish(struct req *r);
/* Release everything (aborts an uncommitted writer). */
void body_free(struct body *b);
/* Move the writer out of the body (caller commits or aborts it). */
store_writer *body_take_writer(struct body *b);
/* The verified checksum to store: algo (store enum) and base64, or 0. */
int body_store_checksum(const struct body *b, const char **b64);
int s3ck_to_store(s3ck_alg a);
s3ck_alg s3ck_from_store(int a);

/* ------------------------------------------------------------------ */
/* One request.                                                       */
/* ------------------------------------------------------------------ */
struct hdr {
  const char *name; /* as sent; compared case-insensitively */
  const char *value;
};

struct qparam {
  char *name;
  char *value;
  int has_eq;
};

typedef void (*op_fn)(struct req *r);

struct conn_guard;

struct req {
  struct MHD_Connection *conn;
  struct conn_guard *guard; /* the connection's deadlines (server.c) */
  char *target;          /* raw request target */
  size_t target_len;
  const char *method;
  char id[17];           /* x-amz-request-id */
  char remote[64];
  struct timespec t0;
  int started;
  int deferred;          /* no body: dispatched in the last access_cb call */
  int responded;
  int status;
  uint64_t bytes_out;     /* the body's length as replied */
  uint64_t bytes_in;
  int streamed;           /* body produced by a reader callback: */
  uint64_t bytes_streamed; /* bytes of it handed to the socket so far */
  int is_head;

  struct hdr hdrs[S3D_MAX_HEADERS];
  size_t nhdrs;
  char *joined[8];       /* duplicated headers, joined with ',' */
  size_t njoined;

  char *path;            /* decoded path (without query) */
  char bucket[STORE_BUCKET_NAME_MAX + 2];
  int has_bucket;
  char *key;             /* decoded key or NULL */
  size_t key_len;
  struct qparam q[S3D_MAX_QUERY];
  size_t nq;

  struct s3sig_auth auth;
  int authed;
  int anonymous;         /* PostObject authenticates from the form */
  int user_looked_up;    /* is_admin below is known (auth_secret) */
  int is_admin;          /* the authenticated user is an administrator */

  /* The operation: `op_end` runs when the body has been received. */
  op_fn op_end;
  struct body body;
  void *op;              /* operation state */
  void (*op_free)(struct req *r);
};

/* Header lookup (name in lower case), NULL when absent. */
const char *req_header(struct req *r, const char *name);
/* Query parameter value (decoded), NULL when absent. */
const char *req_query(struct req *r, const char *name);
int req_has_query(struct req *r, const char *name);

/* ------------------------------------------------------------------ */
/* Replies (server.c).  Every request gets exactly one reply.         */
/* ------------------------------------------------------------------ */
/* Queue resp with status, adding the common headers; destroys resp. */
void reply(struct req *r, int status, struct MHD_Response *resp);
/* A body owned by the caller until the call, then by MHD (free()d). */
void reply_xml(struct req *r, int status, char *xml, size_t len);
void reply_empty(struct req *r, int status);
/* S3 error XML; msg may be NULL for the table's message. */
void reply_error(struct req *r, enum s3err e, const char *msg);
void reply_rc(struct req *r, int rc);
/* Error with extra XML fields (name, value pairs, NULL-terminated). */
void reply_error_ex(struct req *r, enum s3err e, const char *msg,
                    const char *const *extra);
struct MHD_Response *resp_buf(const void *p, size_t n);
struct MHD_Response *resp_take(char *p, size_t n);
void resp_add_etag(struct MHD_Response *resp, const char *etag);

/* ------------------------------------------------------------------ */
/* Authentication (auth.c).                                           */
/* ------------------------------------------------------------------ */
/* Verify the request's signature; on failure replies and returns -1. */
int auth_request(struct req *r);
/* Look up a secret for an access key (0 when unknown/revoked). */
size_t auth_secret(void *ctx, const char *access_key, char *secret,
                   size_t cap);
/* A 32-byte key derived from the user's secret for opaque tokens. */
int auth_token_key(const char *access_key, uint8_t key[32]);

/* Bucket ownership (docs/s3-compat.md, "Users and bucket ownership"): an
   administrator may use every bucket; any other user only the buckets it
   created.  These are the only places that decide it. */
/* May the request's (authenticated) user use a bucket described by bi? */
int authz_owns(struct req *r, const store_bucket_info *bi);
/* S3E_NONE when the request's user may use `bucket` or the bucket does not
   exist (the operation then answers NoSuchBucket), S3E_AccessDenied when it
   belongs to someone else, or the error that prevented the check. */
enum s3err authz_bucket(struct req *r, const char *bucket);

/* ------------------------------------------------------------------ */
/* Operations.                                                        */
/* ------------------------------------------------------------------ */
void op_list_buckets(struct req *r);
void op_create_bucket(struct req *r);
void op_delete_bucket(struct req *r);
void op_head_bucket(struct req *r);
void op_get_bucket_location(struct req *r);
void op_get_bucket_versioning(struct req *r);
void op_put_bucket_versioning(struct req *r);
void op_put_bucket_tagging(struct req *r);
void op_get_bucket_tagging(struct req *r);
void op_delete_bucket_tagging(struct req *r);

void op_put_object(struct req *r);
void op_get_object(struct req *r);
void op_head_object(struct req *r);
void op_delete_object(struct req *r);
void op_delete_objects(struct req *r);
void op_copy_object(struct req *r);
void op_put_object_tagging(struct req *r);
void op_get_object_tagging(struct req *r);
void op_delete_object_tagging(struct req *r);
void op_get_object_attributes(struct req *r);

void op_list_objects(struct req *r);
void op_list_objects_v2(struct req *r);
void op_list_object_versions(struct req *r);

void op_create_mpu(struct req *r);
void op_upload_part(struct req *r);
void op_upload_part_copy(struct req *r);
void op_complete_mpu(struct req *r);
void op_abort_mpu(struct req *r);
void op_list_mpu(struct req *r);
void op_list_parts(struct req *r);

void op_post_object(struct req *r);
/* PostObject receives its own body (multipart/form-data parser). */
void post_feed(struct req *r, const char *p, size_t n);
/* The pure parts of PostObject, which tests and fuzzers call directly. */
#define POST_FIELDS_MAX 64            /* form fields before `file` */
#define POST_FIELDS_BYTES (64 * 1024) /* their names and values together */
struct post_field {
  char *name;
  char *value; /* NUL-terminated, len bytes */
  size_t len;
};
/* Add one piece of form field `key` (not NULL) to f[0..*nf): libmicrohttpd
   hands a value over in pieces, off > 0 continuing the field last added
   under the same name. *fbytes counts names and values against
   POST_FIELDS_BYTES. Returns S3E_NONE, or the error that fails the request
   (*msg its message or NULL). The fields stay owned by the caller's f. */
enum s3err post_field_add(struct post_field *f, size_t *nf, size_t *fbytes,
                          const char *key, uint64_t off, const char *data,
                          size_t size, const char **msg);
/* The object key of form field key_field: its first "${filename}" replaced
   by the last path component of filename (NULL: ""). malloc'd; NULL when
   out of memory. */
char *post_object_key(const char *key_field, const char *filename);
/* What a policy allows of the upload's size. */
struct post_limits {
  int has_range;
  uint64_t min_len, max_len;
};
/* Check a policy document -- pol[0..n), the form's base64 `policy` field,
   its signature already verified -- against the form at time now: JSON,
   not expired, every condition holds for bucket, key and the fields
   f[0..nf) (nf <= POST_FIELDS_MAX), every field covered by a condition.
   Returns S3E_NONE and *lim, or the error and *msg. */
enum s3err post_policy_check(const char *pol, size_t n, time_t now,
                             const char *bucket, const char *key,
                             const struct post_field *f, size_t nf,
                             struct post_limits *lim, const char **msg);

/* Shared helpers of the operation files (ops_object.c). */
/* Build put options from the request headers (meta, system headers,
   tags, content type). Returns S3E_NONE or an error; frees with
   put_opts_free. */
struct put_attrs {
  store_put_opts o;
  store_kv meta[64];
  store_kv hdrs[8];
  store_kv *tags;
  size_t n_tags;
  char *tag_buf;
};
enum s3err put_attrs_from_headers(struct req *r, struct put_attrs *a,
                                  const char **msg);
void put_attrs_free(struct put_attrs *a);
/* Parse "k=v&k2=v2" (x-amz-tagging) into tags. */
enum s3err parse_tag_query(const char *s, store_kv **tags, size_t *n);
/* Add stored headers of an object to a response (ETag, Last-Modified,
   Content-Type, meta, system headers, checksum when asked). */
void resp_object_headers(struct req *r, struct MHD_Response *resp,
                         const store_object_info *info, int with_checksum);
/* x-amz-copy-source ("[/]bucket/key[?versionId=v]", URL-encoded), parsed
   once the same way for the ownership check and the copy (ops_object.c). */
struct copy_src {
  char bucket[STORE_BUCKET_NAME_MAX + 1];
  char *key;
  char *version;
};
enum s3err copy_source_parse(const char *v, struct copy_src *cs);
void copy_src_free(struct copy_src *cs);
/* Bucket must exist: else replies NoSuchBucket and returns -1. */
int need_bucket(struct req *r);
/* Buffered-XML-body operations: set up a SINK_BUF body and run `end`. */
void expect_xml_body(struct req *r, size_t cap, op_fn end);
/* In an `end` function: 0 when the body checked out, else replied. */
int xml_body_ok(struct req *r);

/* ------------------------------------------------------------------ */
/* Request XML (xmlin.c).                                             */
/* ------------------------------------------------------------------ */
void xmlin_init(void);
/* <CreateBucketConfiguration><LocationConstraint>: *loc malloc'd or NULL */
enum s3err xmlin_location(const char *p, size_t n, char **loc);
/* <Tagging><TagSet><Tag><Key/><Value/></Tag>...: validates keys/values */
enum s3err xmlin_tagging(const char *p, size_t n, store_kv **tags,
                         size_t *ntags, const char **msg);
struct del_key {
  char *key;
  char *version_id;
};
enum s3err xmlin_delete(const char *p, size_t n, struct del_key **keys,
                        size_t *nkeys, int *quiet);
void del_keys_free(struct del_key *k, size_t n);
struct cpart {
  uint32_t part_number;
  char *etag;
  char *checksum[6]; /* indexed by s3ck_alg CRC32..SHA256 */
};
enum s3err xmlin_complete(const char *p, size_t n, struct cpart **parts,
                          size_t *nparts);
void cparts_free(struct cpart *p, size_t n);
enum s3err xmlin_versioning(const char *p, size_t n, char **status);

/* ------------------------------------------------------------------ */
/* Connection deadlines (server.c): slow request headers and bodies.  */
/* ------------------------------------------------------------------ */
/* MHD_OPTION_NOTIFY_CONNECTION callback: tracks every connection. */
void guard_notify_cb(void *cls, struct MHD_Connection *conn,
                     void **socket_context,
                     enum MHD_ConnectionNotificationCode toe);
/* Start and stop the thread that closes connections past a deadline. */
int guard_start(void);
void guard_stop(void);

/* Misc utilities (server.c). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void random_hex(char *out, size_t nhex);
const char *header_or(struct req *r, const char *name, const char *dflt);

#endif
