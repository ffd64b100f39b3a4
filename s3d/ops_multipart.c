/*
 * ops_multipart.c -- multipart uploads: Create, UploadPart, UploadPartCopy,
 * Complete (with COMPOSITE or FULL_OBJECT checksums), Abort,
 * ListMultipartUploads and ListParts.  Completion assembles parts by
 * reference in libstore: no data is copied.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "range.h"
#include "s3d.h"
#include "xmlout.h"

static time_t ns_to_s(int64_t ns) { return (time_t)(ns / 1000000000); }

static const char *k_ck_elem[] = {NULL, "ChecksumCRC32", "ChecksumCRC32C",
                                  "ChecksumCRC64NVME", "ChecksumSHA1",
                                  "ChecksumSHA256"};

/* store_mpu_* uses the object key and upload id; both are required. */
static const char *upload_id(struct req *r) {
  const char *u = req_query(r, "uploadId");
  return u && *u && strlen(u) < STORE_UPLOAD_ID_MAX ? u : NULL;
}

static int part_number(struct req *r, uint32_t *pn) {
  const char *p = req_query(r, "partNumber");
  if (!p) return -1;
  char *end;
  unsigned long v = strtoul(p, &end, 10);
  if (end == p || *end || v < 1 || v > STORE_PARTS_MAX) return -1;
  *pn = (uint32_t)v;
  return 0;
}

static void send_doc(struct req *r, struct s3xml *x) {
  char *doc;
  size_t len;
  if (s3xml_finish(x, &doc, &len))
    return reply_error(r, S3E_InternalError, "response too large");
  reply_xml(r, 200, doc, len);
}

/* ------------------------------------------------------------------ */
void op_create_mpu(struct req *r) {
  struct put_attrs a;
  const char *msg;
  enum s3err e = put_attrs_from_headers(r, &a, &msg);
  if (e) {
    put_attrs_free(&a);
    return reply_error(r, e, msg);
  }
  /* Conditions belong to CompleteMultipartUpload, not here. */
  free((char *)a.o.if_match);
  a.o.if_match = NULL;
  a.o.if_none_match_star = 0;
  const char *ca = req_header(r, "x-amz-checksum-algorithm");
  s3ck_alg alg = S3CK_NONE;
  if (ca) {
    alg = s3ck_from_name(ca, strlen(ca));
    if (alg == S3CK_NONE || alg == S3CK_MD5) {
      put_attrs_free(&a);
      return reply_error(r, S3E_InvalidRequest,
                         "Checksum algorithm provided is unsupported.");
    }
  }
  const char *ct = req_header(r, "x-amz-checksum-type");
  int full = alg == S3CK_CRC64NVME;
  if (ct) {
    if (!strcasecmp(ct, "FULL_OBJECT")) {
      if (alg == S3CK_SHA1 || alg == S3CK_SHA256 || alg == S3CK_NONE) {
        put_attrs_free(&a);
        return reply_error(r, S3E_InvalidRequest,
                           "The FULL_OBJECT checksum type needs a CRC "
                           "algorithm");
      }
      full = 1;
    } else if (!strcasecmp(ct, "COMPOSITE")) {
      if (alg == S3CK_CRC64NVME || alg == S3CK_NONE) {
        put_attrs_free(&a);
        return reply_error(r, S3E_InvalidRequest,
                           "The COMPOSITE checksum type is not supported "
                           "with this algorithm");
      }
      full = 0;
    } else {
      put_attrs_free(&a);
      return reply_error(r, S3E_InvalidRequest, "Invalid x-amz-checksum-type");
    }
  }
  a.o.checksum_algo = s3ck_to_store(alg);
  /* The checksum type is kept as the composite flag of the upload's
     attributes (see docs/s3-compat.md). */
  a.o.checksum_composite = alg != S3CK_NONE && !full;
  char uid[STORE_UPLOAD_ID_MAX];
  int rc = store_mpu_create(g_s3d.st, r->bucket, r->key, &a.o, uid);
  put_attrs_free(&a);
  if (rc) return reply_rc(r, rc);
  struct s3xml x;
  s3xml_init(&x, 8192);
  s3xml_open(&x, "InitiateMultipartUploadResult", S3XML_NS);
  s3xml_elem_str(&x, "Bucket", r->bucket);
  s3xml_elem_str(&x, "Key", r->key);
  s3xml_elem_str(&x, "UploadId", uid);
  s3xml_close(&x);
  char *doc;
  size_t len;
  if (s3xml_finish(&x, &doc, &len))
    return reply_error(r, S3E_InternalError, NULL);
  struct MHD_Response *resp = resp_take(doc, len);
  if (resp) {
    MHD_add_response_header(resp, "Content-Type", "application/xml");
    if (alg != S3CK_NONE) {
      MHD_add_response_header(resp, "x-amz-checksum-algorithm",
                              s3ck_name(alg));
      MHD_add_response_header(resp, "x-amz-checksum-type",
                              full ? "FULL_OBJECT" : "COMPOSITE");
    }
  }
  r->bytes_out = len;
  reply(r, 200, resp);
}

/* ------------------------------------------------------------------ */
static void upload_part_end(struct req *r) {
  enum s3err e = body_finish(r);
  if (e) return reply_error(r, e, r->body.err_msg);
  store_put_opts o = {0};
  const char *ck = NULL;
  o.checksum_algo = body_store_checksum(&r->body, &ck);
  o.checksum = ck;
  store_object_info info = {0};
  /* persist before you reply: the part is durable when commit returns. */
  int rc = store_writer_commit(body_take_writer(&r->body), &o, &info);
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }
  struct MHD_Response *resp = resp_buf("", 0);
  if (resp) {
    resp_add_etag(resp, info.etag);
    s3ck_alg a = s3ck_from_store(o.checksum_algo);
    if (a != S3CK_NONE && ck) MHD_add_response_header(resp, s3ck_header(a), ck);
  }
  store_object_info_free(&info);
  reply(r, 200, resp);
}

void op_upload_part(struct req *r) {
  uint32_t pn;
  const char *uid = upload_id(r);
  if (!uid) return reply_error(r, S3E_NoSuchUpload, NULL);
  if (part_number(r, &pn))
    return reply_error(r, S3E_InvalidArgument,
                       "Part number must be an integer between 1 and 10000, "
                       "inclusive");
  store_object_info up = {0};
  int rc = store_mpu_head(g_s3d.st, r->bucket, r->key, uid, &up);
  int upalg = up.checksum_algo;
  store_object_info_free(&up);
  if (rc) return reply_rc(r, rc);
  enum s3err e = body_begin(r, SINK_WRITER, S3D_MAX_PUT);
  if (e) return reply_error(r, e, NULL);
  /* An upload created with a checksum algorithm gets that checksum on
     every part (computed here when the client sent none), so completion
     can combine them. */
  s3ck_alg ua = s3ck_from_store(upalg);
  if (ua != S3CK_NONE && r->body.ck_alg == S3CK_NONE) {
    r->body.ck_alg = ua;
    s3ck_init(&r->body.ck, ua);
  } else if (ua != S3CK_NONE && r->body.ck_alg != ua) {
    return reply_error(r, S3E_InvalidRequest,
                       "Checksum Type mismatch occurred, expected checksum "
                       "Type differs from the one of the upload");
  }
  rc = store_writer_open_part(g_s3d.st, r->bucket, r->key, uid, pn,
                              &r->body.w);
  if (rc) return reply_rc(r, rc);
  r->op_end = upload_part_end;
}

/* ------------------------------------------------------------------ */
enum s3err copy_source_for_part(struct req *r, char *bucket, char **key,
                                char **version, store_object_info *src);
int copy_source_check(struct req *r, const store_object_info *src);

void op_upload_part_copy(struct req *r) {
  uint32_t pn;
  const char *uid = upload_id(r);
  if (!uid) return reply_error(r, S3E_NoSuchUpload, NULL);
  if (part_number(r, &pn))
    return reply_error(r, S3E_InvalidArgument,
                       "Part number must be an integer between 1 and 10000, "
                       "inclusive");
  char sb[STORE_BUCKET_NAME_MAX + 1];
  char *sk = NULL, *sv = NULL;
  store_object_info src = {0};
  enum s3err e = copy_source_for_part(r, sb, &sk, &sv, &src);
  if (e) {
    store_object_info_free(&src);
    return reply_error(r, e, NULL);
  }
  uint64_t off = 0, len = UINT64_MAX;
  const char *rg = req_header(r, "x-amz-copy-source-range");
  int bad = 0;
  if (rg) {
    /* bytes=first-last, both required and within the source. */
    unsigned long long a, b;
    const char *p = rg;
    char *end;
    if (strncmp(p, "bytes=", 6)) bad = 1;
    else {
      p += 6;
      a = strtoull(p, &end, 10);
      if (end == p || *end != '-') bad = 1;
      else {
        p = end + 1;
        b = strtoull(p, &end, 10);
        if (end == p || *end || b < a || b >= src.size) bad = 1;
        else {
          off = a;
          len = b - a + 1;
        }
      }
    }
  }
  if (bad) {
    store_object_info_free(&src);
    free(sk);
    free(sv);
    return reply_error(r, S3E_InvalidArgument,
                       "The x-amz-copy-source-range value must be of the form "
                       "bytes=first-last where first and last are the "
                       "zero-based offsets of the first and last bytes to "
                       "copy");
  }
  if (copy_source_check(r, &src)) {
    store_object_info_free(&src);
    free(sk);
    free(sv);
    return;
  }
  store_object_info_free(&src);
  store_object_info out = {0};
  /* persist before you reply: the part is committed by store_part_copy. */
  int rc = store_part_copy(g_s3d.st, r->bucket, r->key, uid, pn, sb, sk, sv,
                           off, len, &out);
  free(sk);
  if (rc) {
    free(sv);
    store_object_info_free(&out);
    return reply_rc(r, rc);
  }
  struct s3xml x;
  s3xml_init(&x, 4096);
  s3xml_open(&x, "CopyPartResult", S3XML_NS);
  char q[STORE_ETAG_MAX + 3];
  snprintf(q, sizeof q, "\"%s\"", out.etag);
  s3xml_elem_str(&x, "ETag", q);
  s3xml_elem_time(&x, "LastModified",
                  out.mtime_ns ? ns_to_s(out.mtime_ns) : time(NULL));
  s3xml_close(&x);
  store_object_info_free(&out);
  char *doc;
  size_t dl;
  if (s3xml_finish(&x, &doc, &dl)) {
    free(sv);
    return reply_error(r, S3E_InternalError, NULL);
  }
  struct MHD_Response *resp = resp_take(doc, dl);
  if (resp) {
    MHD_add_response_header(resp, "Content-Type", "application/xml");
    if (sv) MHD_add_response_header(resp, "x-amz-copy-source-version-id", sv);
  }
  free(sv);
  r->bytes_out = dl;
  reply(r, 200, resp);
}

/* ------------------------------------------------------------------ */
/* The whole-object checksum from the parts' checksums.  Returns 0 and
   out[] ("" when the upload has none), or an S3 error. */
static enum s3err mpu_checksum(struct req *r, const char *uid,
                               const struct cpart *cp, size_t n, s3ck_alg alg,
                               int full, char *out, size_t cap) {
  out[0] = 0;
  if (alg == S3CK_NONE) return S3E_NONE;
  size_t dl = s3ck_len(alg);
  uint8_t *dig = calloc(n ? n : 1, dl);
  uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
  int *have = calloc(n ? n : 1, sizeof *have);
  if (!dig || !sizes || !have) {
    free(dig);
    free(sizes);
    free(have);
    return S3E_SlowDown;
  }
  /* Walk the stored parts (ascending) alongside the requested ones. */
  uint32_t marker = 0;
  size_t j = 0;
  enum s3err e = S3E_NONE;
  for (;;) {
    store_part_info *pi = NULL;
    size_t np = 0;
    int trunc = 0;
    int rc = store_mpu_parts(g_s3d.st, r->bucket, r->key, uid, marker, 1000,
                             &pi, &np, &trunc);
    if (rc) {
      e = s3err_from_rc(rc);
      break;
    }
    for (size_t i = 0; i < np; i++) {
      while (j < n && cp[j].part_number < pi[i].part_number) j++;
      if (j < n && cp[j].part_number == pi[i].part_number) {
        size_t got = 0;
        if (pi[i].checksum && s3ck_from_store(pi[i].checksum_algo) == alg &&
            !s3_base64_decode(dig + j * dl, dl, pi[i].checksum,
                              strlen(pi[i].checksum), &got) &&
            got == dl) {
          have[j] = 1;
          sizes[j] = pi[i].size;
          const char *sent = cp[j].checksum[alg];
          if (sent && strcmp(sent, pi[i].checksum)) e = S3E_InvalidPart;
        }
      }
      marker = pi[i].part_number;
    }
    store_part_info_free(pi, np);
    if (!trunc || np == 0 || e) break;
  }
  for (size_t i = 0; !e && i < n; i++)
    if (!have[i]) e = S3E_InvalidPart; /* a part without its checksum */
  if (!e) {
    if (full) {
      uint64_t crc = 0;
      for (size_t i = 0; i < n; i++) {
        uint64_t c = 0;
        for (size_t b = 0; b < dl; b++) c = c << 8 | dig[i * dl + b];
        crc = i == 0 ? c : s3ck_crc_combine(alg, crc, c, sizes[i]);
      }
      uint8_t be[8];
      for (size_t b = 0; b < dl; b++) be[b] = (uint8_t)(crc >> (8 * (dl - 1 - b)));
      if (!s3_base64_encode(out, cap, be, dl)) e = S3E_InternalError;
    } else if (!s3ck_composite(alg, dig, n, out, cap)) {
      e = S3E_InternalError;
    }
  }
  free(dig);
  free(sizes);
  free(have);
  return e;
}

static void complete_mpu_end(struct req *r) {
  if (xml_body_ok(r)) return;
  const char *uid = upload_id(r);
  struct cpart *cp;
  size_t n;
  enum s3err e = xmlin_complete(r->body.buf.p, r->body.buf.len, &cp, &n);
  if (e) return reply_error(r, e, NULL);
  for (size_t i = 1; i < n; i++)
    if (cp[i].part_number <= cp[i - 1].part_number) {
      cparts_free(cp, n);
      return reply_error(r, S3E_InvalidPartOrder, NULL);
    }
  store_object_info up = {0};
  int rc = store_mpu_head(g_s3d.st, r->bucket, r->key, uid, &up);
  s3ck_alg alg = s3ck_from_store(up.checksum_algo);
  /* libstore keeps the upload's algorithm but not its checksum type: CRC64NVME
     is FULL_OBJECT (the only type S3 allows for it), the others COMPOSITE
     unless the completion asks otherwise. */
  int full = alg == S3CK_CRC64NVME;
  store_object_info_free(&up);
  if (rc) {
    cparts_free(cp, n);
    return reply_rc(r, rc);
  }
  const char *ct = req_header(r, "x-amz-checksum-type");
  if (ct && !strcasecmp(ct, "FULL_OBJECT")) full = 1;
  if (ct && !strcasecmp(ct, "COMPOSITE")) full = 0;
  if (alg == S3CK_SHA1 || alg == S3CK_SHA256) full = 0;

  char ck[S3CK_MAX_B64 + 16];
  e = mpu_checksum(r, uid, cp, n, alg, full, ck, sizeof ck);
  if (e) {
    cparts_free(cp, n);
    return reply_error(r, e, NULL);
  }
  store_part_ref *refs = calloc(n, sizeof *refs);
  if (!refs) {
    cparts_free(cp, n);
    return reply_error(r, S3E_SlowDown, NULL);
  }
  for (size_t i = 0; i < n; i++) {
    refs[i].part_number = cp[i].part_number;
    refs[i].etag = cp[i].etag;
  }
  struct put_attrs a;
  const char *msg;
  e = put_attrs_from_headers(r, &a, &msg);
  if (e) {
    free(refs);
    cparts_free(cp, n);
    put_attrs_free(&a);
    return reply_error(r, e, msg);
  }
  store_put_opts o = {0};
  o.if_match = a.o.if_match;
  o.if_none_match_star = a.o.if_none_match_star;
  if (ck[0]) {
    o.checksum_algo = s3ck_to_store(alg);
    o.checksum = ck;
    o.checksum_composite = !full;
  }
  store_object_info info = {0};
  /* persist before you reply: the object is durable when this returns. */
  rc = store_mpu_complete_ex(g_s3d.st, r->bucket, r->key, uid, refs, n, &o,
                             &info);
  free(refs);
  cparts_free(cp, n);
  put_attrs_free(&a);
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }
  struct s3xml x;
  s3xml_init(&x, 16384);
  s3xml_open(&x, "CompleteMultipartUploadResult", S3XML_NS);
  char loc[2048];
  snprintf(loc, sizeof loc, "/%s/%s", r->bucket, r->key);
  s3xml_elem_str(&x, "Location", loc);
  s3xml_elem_str(&x, "Bucket", r->bucket);
  s3xml_elem_str(&x, "Key", r->key);
  char q[STORE_ETAG_MAX + 3];
  snprintf(q, sizeof q, "\"%s\"", info.etag);
  s3xml_elem_str(&x, "ETag", q);
  if (ck[0]) {
    s3xml_elem_str(&x, k_ck_elem[alg], ck);
    s3xml_elem_str(&x, "ChecksumType", full ? "FULL_OBJECT" : "COMPOSITE");
  }
  s3xml_close(&x);
  store_object_info_free(&info);
  send_doc(r, &x);
}

void op_complete_mpu(struct req *r) {
  if (!upload_id(r)) return reply_error(r, S3E_NoSuchUpload, NULL);
  expect_xml_body(r, S3D_XML_DELETE_MAX, complete_mpu_end);
}

void op_abort_mpu(struct req *r) {
  const char *uid = upload_id(r);
  if (!uid) return reply_error(r, S3E_NoSuchUpload, NULL);
  int rc = store_mpu_abort(g_s3d.st, r->bucket, r->key, uid);
  if (rc) return reply_rc(r, rc);
  reply_empty(r, 204);
}

/* ------------------------------------------------------------------ */
void op_list_mpu(struct req *r) {
  store_mpu_list_opts o = {0};
  o.prefix = req_query(r, "prefix");
  o.delimiter = req_query(r, "delimiter");
  if (o.delimiter && !*o.delimiter) o.delimiter = NULL;
  o.key_marker = req_query(r, "key-marker");
  o.upload_id_marker = req_query(r, "upload-id-marker");
  uint32_t max = 1000;
  const char *mu = req_query(r, "max-uploads");
  if (mu) {
    char *end;
    long long v = strtoll(mu, &end, 10);
    if (end == mu || *end || v < 0)
      return reply_error(r, S3E_InvalidArgument, "Invalid max-uploads");
    max = v > 1000 ? 1000 : (uint32_t)v;
  }
  o.max_uploads = max ? max : 1;
  store_mpu_list_result lr = {0};
  int rc = store_mpu_list(g_s3d.st, r->bucket, &o, &lr);
  if (rc) return reply_rc(r, rc);
  if (max == 0) {
    store_mpu_list_result_free(&lr);
    memset(&lr, 0, sizeof lr);
  }
  struct s3xml x;
  s3xml_init(&x, 8u << 20);
  s3xml_open(&x, "ListMultipartUploadsResult", S3XML_NS);
  s3xml_elem_str(&x, "Bucket", r->bucket);
  s3xml_elem_str(&x, "KeyMarker", o.key_marker ? o.key_marker : "");
  s3xml_elem_str(&x, "UploadIdMarker",
                 o.upload_id_marker ? o.upload_id_marker : "");
  if (lr.truncated) {
    s3xml_elem_str(&x, "NextKeyMarker",
                   lr.next_key_marker ? lr.next_key_marker : "");
    s3xml_elem_str(&x, "NextUploadIdMarker", lr.next_upload_id_marker);
  }
  s3xml_elem_str(&x, "Prefix", o.prefix ? o.prefix : "");
  if (o.delimiter) s3xml_elem_str(&x, "Delimiter", o.delimiter);
  s3xml_elem_u64(&x, "MaxUploads", max);
  s3xml_elem_bool(&x, "IsTruncated", lr.truncated);
  for (size_t i = 0; i < lr.n_uploads; i++) {
    store_upload *u = &lr.uploads[i];
    s3xml_open(&x, "Upload", NULL);
    s3xml_elem_str(&x, "Key", u->key);
    s3xml_elem_str(&x, "UploadId", u->upload_id);
    s3xml_open(&x, "Initiator", NULL);
    s3xml_elem_str(&x, "ID", u->owner);
    s3xml_elem_str(&x, "DisplayName", u->owner);
    s3xml_close(&x);
    s3xml_open(&x, "Owner", NULL);
    s3xml_elem_str(&x, "ID", u->owner);
    s3xml_elem_str(&x, "DisplayName", u->owner);
    s3xml_close(&x);
    s3xml_elem_str(&x, "StorageClass", "STANDARD");
    s3xml_elem_time(&x, "Initiated", ns_to_s(u->created_ns));
    s3xml_close(&x);
  }
  for (size_t i = 0; i < lr.n_prefixes; i++) {
    s3xml_open(&x, "CommonPrefixes", NULL);
    s3xml_elem_str(&x, "Prefix", lr.prefixes[i]);
    s3xml_close(&x);
  }
  s3xml_close(&x);
  store_mpu_list_result_free(&lr);
  send_doc(r, &x);
}

void op_list_parts(struct req *r) {
  const char *uid = upload_id(r);
  if (!uid) return reply_error(r, S3E_NoSuchUpload, NULL);
  uint32_t marker = 0, max = 1000;
  const char *pm = req_query(r, "part-number-marker");
  const char *mp = req_query(r, "max-parts");
  char *end;
  if (pm) {
    unsigned long v = strtoul(pm, &end, 10);
    if (end == pm || *end || v > STORE_PARTS_MAX)
      return reply_error(r, S3E_InvalidArgument, "Invalid part-number-marker");
    marker = (uint32_t)v;
  }
  if (mp) {
    long long v = strtoll(mp, &end, 10);
    if (end == mp || *end || v < 0)
      return reply_error(r, S3E_InvalidArgument, "Invalid max-parts");
    max = v > 1000 ? 1000 : (uint32_t)v;
  }
  store_object_info up = {0};
  int rc = store_mpu_head(g_s3d.st, r->bucket, r->key, uid, &up);
  if (rc) {
    store_object_info_free(&up);
    return reply_rc(r, rc);
  }
  store_part_info *pi = NULL;
  size_t np = 0;
  int trunc = 0;
  if (max) {
    rc = store_mpu_parts(g_s3d.st, r->bucket, r->key, uid, marker, max, &pi,
                         &np, &trunc);
    if (rc) {
      store_object_info_free(&up);
      return reply_rc(r, rc);
    }
  }
  struct s3xml x;
  s3xml_init(&x, 8u << 20);
  s3xml_open(&x, "ListPartsResult", S3XML_NS);
  s3xml_elem_str(&x, "Bucket", r->bucket);
  s3xml_elem_str(&x, "Key", r->key);
  s3xml_elem_str(&x, "UploadId", uid);
  s3xml_open(&x, "Initiator", NULL);
  s3xml_elem_str(&x, "ID", r->auth.access_key);
  s3xml_elem_str(&x, "DisplayName", r->auth.access_key);
  s3xml_close(&x);
  s3xml_open(&x, "Owner", NULL);
  s3xml_elem_str(&x, "ID", r->auth.access_key);
  s3xml_elem_str(&x, "DisplayName", r->auth.access_key);
  s3xml_close(&x);
  s3xml_elem_str(&x, "StorageClass", "STANDARD");
  s3xml_elem_u64(&x, "PartNumberMarker", marker);
  s3xml_elem_u64(&x, "NextPartNumberMarker",
                 np ? pi[np - 1].part_number : marker);
  s3xml_elem_u64(&x, "MaxParts", max);
  s3xml_elem_bool(&x, "IsTruncated", trunc);
  s3ck_alg ua = s3ck_from_store(up.checksum_algo);
  if (ua != S3CK_NONE) {
    s3xml_elem_str(&x, "ChecksumAlgorithm", s3ck_name(ua));
    s3xml_elem_str(&x, "ChecksumType",
                   ua == S3CK_CRC64NVME ? "FULL_OBJECT" : "COMPOSITE");
  }
  for (size_t i = 0; i < np; i++) {
    s3xml_open(&x, "Part", NULL);
    s3xml_elem_u64(&x, "PartNumber", pi[i].part_number);
    s3xml_elem_time(&x, "LastModified", ns_to_s(pi[i].mtime_ns));
    char q[STORE_ETAG_MAX + 3];
    snprintf(q, sizeof q, "\"%s\"", pi[i].etag);
    s3xml_elem_str(&x, "ETag", q);
    s3xml_elem_u64(&x, "Size", pi[i].size);
    s3ck_alg pa = s3ck_from_store(pi[i].checksum_algo);
    if (pa != S3CK_NONE && pi[i].checksum)
      s3xml_elem_str(&x, k_ck_elem[pa], pi[i].checksum);
    s3xml_close(&x);
  }
  s3xml_close(&x);
  store_part_info_free(pi, np);
  store_object_info_free(&up);
  send_doc(r, &x);
}
