/*
 * auth.c -- SigV4 glue: describe a request to s3sig_verify() (raw target,
 * headers, secrets from libstore's user table) and turn a refusal into the
 * S3 error reply.  The verification itself lives in sigv4.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nettle/hmac.h>

#include "s3d.h"
#include "xmlout.h"

/* ctx: NULL, or the struct req being authenticated, which then learns
   whether its user is an administrator without a second look-up. */
size_t auth_secret(void *ctx, const char *access_key, char *secret,
                   size_t cap) {
  store_user u;
  /* Unknown and revoked keys both give STORE_ERR_NO_USER:
     InvalidAccessKeyId. */
  if (store_user_get(g_s3d.st, access_key, &u) != STORE_OK) return 0;
  if (ctx) {
    struct req *r = ctx;
    r->is_admin = u.is_admin != 0;
    r->user_looked_up = 1;
  }
  size_t n = strlen(u.secret_key);
  if (n == 0 || n + 1 > cap) {
    memset(&u, 0, sizeof u);
    return 0;
  }
  memcpy(secret, u.secret_key, n + 1);
  memset(&u, 0, sizeof u);
  return n;
}

static const char *header_cb(void *ctx, const char *name, size_t *len) {
  const char *v = req_header(ctx, name);
  if (v && len) *len = strlen(v);
  return v;
}

int auth_request(struct req *r) {
  struct s3sig_request sr = {
    .method = r->method,
    .target = r->target,
    .target_len = r->target_len,
    .header = header_cb,
    .header_ctx = r,
    .secret = auth_secret,
    .secret_ctx = r,
    .now = time(NULL),
    .region = g_s3d.cfg.region,
  };
  s3sig_result rc = s3sig_verify(&sr, &r->auth);
  if (rc == S3SIG_OK) {
    r->authed = 1;
    return 0;
  }
  struct s3sig_error e = s3sig_error(rc);
  const char *extra[9] = {0};
  size_t k = 0;
  if (rc == S3SIG_SIGNATURE_MISMATCH) {
    extra[k++] = "AWSAccessKeyId";
    extra[k++] = r->auth.access_key;
    if (r->auth.string_to_sign) {
      extra[k++] = "StringToSign";
      extra[k++] = r->auth.string_to_sign;
    }
    if (r->auth.canonical_request) {
      extra[k++] = "CanonicalRequest";
      extra[k++] = r->auth.canonical_request;
    }
  } else if (rc == S3SIG_INVALID_ACCESS_KEY) {
    extra[k++] = "AWSAccessKeyId";
    extra[k++] = r->auth.access_key;
  }
  /* Map through the S3 error vocabulary by code name so the reply has the
     same shape as every other error. */
  enum s3err se = S3E_AccessDenied;
  for (int i = 1; i < S3E__COUNT; i++) {
    const struct s3err_info *ei = s3err_get((enum s3err)i);
    if (!strcmp(ei->code, e.code) && ei->status == e.status) {
      se = (enum s3err)i;
      break;
    }
  }
  if (strcmp(s3err_get(se)->code, e.code) || s3err_get(se)->status != e.status) {
    /* A code without an entry in our table (AuthorizationHeaderMalformed,
       AuthorizationQueryParametersError...): send it as sigv4.c names it. */
    struct s3xml x;
    s3xml_init(&x, 64 * 1024);
    s3xml_open(&x, "Error", NULL);
    s3xml_elem_str(&x, "Code", e.code);
    s3xml_elem_str(&x, "Message", e.message);
    if (r->path) s3xml_elem_str(&x, "Resource", r->path);
    s3xml_elem_str(&x, "RequestId", r->id);
    s3xml_close(&x);
    char *doc;
    size_t len;
    if (s3xml_finish(&x, &doc, &len)) {
      reply_empty(r, e.status);
      return -1;
    }
    reply_xml(r, e.status, doc, len);
    return -1;
  }
  reply_error_ex(r, se, e.message, extra);
  return -1;
}

/* ------------------------------------------------------------------ */
/* Bucket ownership.                                                  */
/* ------------------------------------------------------------------ */
/* A bucket belongs to the access key that created it (store_bucket_info
   .owner; "" for buckets made with storectl).  Administrators may use every
   bucket, other users only their own.  The request's key is the one its
   signature (or, for PostObject, its policy signature) was verified with. */
int authz_owns(struct req *r, const store_bucket_info *bi) {
  if (!r->auth.access_key[0]) return 0;
  if (!r->user_looked_up) {
    store_user u;
    if (store_user_get(g_s3d.st, r->auth.access_key, &u) != STORE_OK)
      return 0; /* revoked since the signature check: nothing is allowed */
    r->is_admin = u.is_admin != 0;
    r->user_looked_up = 1;
    memset(&u, 0, sizeof u);
  }
  if (r->is_admin) return 1;
  return bi->owner[0] && !strcmp(bi->owner, r->auth.access_key);
}

enum s3err authz_bucket(struct req *r, const char *bucket) {
  store_bucket_info bi;
  int rc = store_bucket_head(g_s3d.st, bucket, &bi);
  if (rc == STORE_ERR_NO_BUCKET || rc == STORE_ERR_BAD_BUCKET_NAME)
    return S3E_NONE; /* nothing to protect: the operation says why */
  if (rc) return s3err_from_rc(rc); /* fail closed */
  return authz_owns(r, &bi) ? S3E_NONE : S3E_AccessDenied;
}

/* Opaque listing tokens are protected by an HMAC keyed from the user's
   secret: stable across restarts, useless to anyone without the secret. */
int auth_token_key(const char *access_key, uint8_t key[32]) {
  char secret[S3SIG_MAX_SECRET + 1];
  size_t n = auth_secret(NULL, access_key, secret, sizeof secret);
  if (!n) return -1;
  struct hmac_sha256_ctx h;
  hmac_sha256_set_key(&h, n, (const uint8_t *)secret);
  hmac_sha256_update(&h, 22, (const uint8_t *)"s3d continuation token");
  hmac_sha256_digest(&h, 32, key);
  memset(secret, 0, sizeof secret);
  memset(&h, 0, sizeof h);
  return 0;
}
