/*
 * ops_bucket.c -- bucket operations: ListBuckets, CreateBucket,
 * DeleteBucket, HeadBucket, GetBucketLocation, Get/PutBucketVersioning and
 * bucket tagging; plus the helpers for operations whose request body is an
 * XML document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3d.h"
#include "xmlout.h"

static time_t ns_to_s(int64_t ns) { return (time_t)(ns / 1000000000); }

int need_bucket(struct req *r) {
  store_bucket_info bi;
  int rc = store_bucket_head(g_s3d.st, r->bucket, &bi);
  if (rc) {
    reply_rc(r, rc);
    return -1;
  }
  return 0;
}

static void send_doc(struct req *r, struct s3xml *x) {
  char *doc;
  size_t len;
  if (s3xml_finish(x, &doc, &len))
    return reply_error(r, S3E_InternalError, "response too large");
  reply_xml(r, 200, doc, len);
}

/* The body is read into a capped buffer and checked (signature, SHA-256,
   Content-MD5, checksum) before `end` sees it. */
void expect_xml_body(struct req *r, size_t cap, op_fn end) {
  enum s3err e = body_begin(r, SINK_BUF, cap);
  if (e) return reply_error(r, e, NULL);
  r->op_end = end;
}

/* Common start of an `end` function: returns 0 with the body verified, or
   replies and returns -1. */
int xml_body_ok(struct req *r) {
  enum s3err e = body_finish(r);
  if (e) {
    reply_error(r, e, r->body.err_msg);
    return -1;
  }
  return 0;
}

void op_list_buckets(struct req *r) {
  store_bucket_info *bl = NULL;
  size_t n = 0;
  int rc = store_bucket_list(g_s3d.st, &bl, &n);
  if (rc) return reply_rc(r, rc);
  struct s3xml x;
  s3xml_init(&x, 64 * 1024 + n * 256);
  s3xml_open(&x, "ListAllMyBucketsResult", S3XML_NS);
  s3xml_open(&x, "Owner", NULL);
  s3xml_elem_str(&x, "ID", r->auth.access_key);
  s3xml_elem_str(&x, "DisplayName", r->auth.access_key);
  s3xml_close(&x);
  s3xml_open(&x, "Buckets", NULL);
  for (size_t i = 0; i < n; i++) {
    if (!authz_owns(r, &bl[i])) continue; /* someone else's */
    s3xml_open(&x, "Bucket", NULL);
    s3xml_elem_str(&x, "Name", bl[i].name);
    s3xml_elem_time(&x, "CreationDate", ns_to_s(bl[i].created_ns));
    s3xml_close(&x);
  }
  s3xml_close(&x);
  s3xml_close(&x);
  store_bucket_list_free(bl);
  send_doc(r, &x);
}

static void create_bucket_end(struct req *r) {
  if (xml_body_ok(r)) return;
  char *loc = NULL;
  enum s3err e = xmlin_location(r->body.buf.p, r->body.buf.len, &loc);
  free(loc); /* any location is accepted: the store has one */
  if (e) return reply_error(r, e, NULL);
  int rc = store_bucket_create(g_s3d.st, r->bucket, r->auth.access_key);
  if (rc == STORE_ERR_BUCKET_EXISTS) {
    /* Yours: you created it, or you are an administrator and storectl did
       (owner ""), as authz_owns() decides access.  Anyone else's name is
       taken. */
    store_bucket_info bi;
    rc = store_bucket_head(g_s3d.st, r->bucket, &bi);
    if (rc == STORE_OK &&
        (!strcmp(bi.owner, r->auth.access_key) ||
         (!bi.owner[0] && authz_owns(r, &bi))))
      return reply_error(r, S3E_BucketAlreadyOwnedByYou, NULL);
    if (rc == STORE_OK || rc == STORE_ERR_NO_BUCKET)
      return reply_error(r, S3E_BucketAlreadyExists, NULL);
    return reply_rc(r, rc);
  }
  if (rc) return reply_rc(r, rc);
  /* persist before you reply: store_bucket_create has committed. */
  struct MHD_Response *resp = resp_buf("", 0);
  char loc_hdr[STORE_BUCKET_NAME_MAX + 8];
  snprintf(loc_hdr, sizeof loc_hdr, "/%s", r->bucket);
  if (resp) MHD_add_response_header(resp, "Location", loc_hdr);
  reply(r, 200, resp);
}

void op_create_bucket(struct req *r) {
  int rc = store_bucket_name_check(r->bucket);
  if (rc) return reply_error(r, S3E_InvalidBucketName, store_errmsg());
  expect_xml_body(r, S3D_XML_MAX, create_bucket_end);
}

void op_delete_bucket(struct req *r) {
  int rc = store_bucket_delete(g_s3d.st, r->bucket);
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 204);
}

void op_head_bucket(struct req *r) {
  store_bucket_info bi;
  int rc = store_bucket_head(g_s3d.st, r->bucket, &bi);
  if (rc) return reply_rc(r, rc);
  struct MHD_Response *resp = resp_buf("", 0);
  if (resp)
    MHD_add_response_header(resp, "x-amz-bucket-region", g_s3d.region_out);
  reply(r, 200, resp);
}

void op_get_bucket_location(struct req *r) {
  if (need_bucket(r)) return;
  struct s3xml x;
  s3xml_init(&x, 1024);
  /* us-east-1 is reported as an empty constraint, as S3 does. */
  const char *reg = g_s3d.region_out;
  s3xml_open(&x, "LocationConstraint", S3XML_NS);
  if (strcmp(reg, "us-east-1")) s3xml_text(&x, reg, strlen(reg));
  s3xml_close(&x);
  send_doc(r, &x);
}

void op_get_bucket_versioning(struct req *r) {
  if (need_bucket(r)) return;
  struct s3xml x;
  s3xml_init(&x, 1024);
  s3xml_open(&x, "VersioningConfiguration", S3XML_NS);
  s3xml_close(&x);
  send_doc(r, &x);
}

static void put_versioning_end(struct req *r) {
  if (xml_body_ok(r)) return;
  char *status = NULL;
  enum s3err e = xmlin_versioning(r->body.buf.p, r->body.buf.len, &status);
  if (e) return reply_error(r, e, NULL);
  int enabled = status && !strcmp(status, "Enabled");
  int ok = !status || !strcmp(status, "Suspended") || enabled;
  free(status);
  if (!ok) return reply_error(r, S3E_MalformedXML, NULL);
  if (enabled)
    return reply_error(r, S3E_NotImplemented, "Versioning is not supported");
  reply_empty(r, 200); /* Suspended on a never-versioned bucket: no-op */
}

void op_put_bucket_versioning(struct req *r) {
  if (need_bucket(r)) return;
  expect_xml_body(r, S3D_XML_MAX, put_versioning_end);
}

static void put_bucket_tagging_end(struct req *r) {
  if (xml_body_ok(r)) return;
  store_kv *tags;
  size_t n;
  const char *msg;
  enum s3err e = xmlin_tagging(r->body.buf.p, r->body.buf.len, &tags, &n, &msg);
  if (e) return reply_error(r, e, msg);
  int rc = store_bucket_tags_set(g_s3d.st, r->bucket, tags, n);
  store_kv_free(tags, n);
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 204);
}

void op_put_bucket_tagging(struct req *r) {
  if (need_bucket(r)) return;
  expect_xml_body(r, S3D_XML_MAX, put_bucket_tagging_end);
}

void op_get_bucket_tagging(struct req *r) {
  store_kv *tags = NULL;
  size_t n = 0;
  int rc = store_bucket_tags_get(g_s3d.st, r->bucket, &tags, &n);
  if (rc) return reply_rc(r, rc);
  if (n == 0) {
    store_kv_free(tags, n);
    return reply_error(r, S3E_NoSuchTagSet, NULL);
  }
  struct s3xml x;
  s3xml_init(&x, 64 * 1024);
  s3xml_open(&x, "Tagging", S3XML_NS);
  s3xml_open(&x, "TagSet", NULL);
  for (size_t i = 0; i < n; i++) {
    s3xml_open(&x, "Tag", NULL);
    s3xml_elem_str(&x, "Key", tags[i].name);
    s3xml_elem_str(&x, "Value", tags[i].value);
    s3xml_close(&x);
  }
  s3xml_close(&x);
  s3xml_close(&x);
  store_kv_free(tags, n);
  send_doc(r, &x);
}

void op_delete_bucket_tagging(struct req *r) {
  int rc = store_bucket_tags_set(g_s3d.st, r->bucket, NULL, 0);
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 204);
}
