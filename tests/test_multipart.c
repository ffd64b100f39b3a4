/*
 * test_multipart.c -- multipart uploads: parts, listing, completion, errors,
 * part copy, part ranges.
 */
#include <stdint.h>

#include "libstore.h"
#include "harness.h"
#include "tutil.h"

#define PART (5u * MiB)

/* Upload one part through a part writer (in odd pieces); returns etag. */
static void upload_part(store *s, const char *bucket, const char *key,
                        const char *uid, uint32_t pn, const uint8_t *data,
                        size_t n, char etag[STORE_ETAG_MAX]) {
  store_writer *w = NULL;
  T_OK(store_writer_open_part(s, bucket, key, uid, pn, &w));
  size_t off = 0;
  while (off < n) {
    size_t k = n - off < 777777 ? n - off : 777777;
    T_OK(store_write(w, data + off, k));
    off += k;
  }
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_writer_commit(w, NULL, &out));
  char md5[33];
  t_md5_hex(data, n, md5);
  T_EQ_STR(out.etag, md5);
  T_EQ_U64(out.size, n);
  snprintf(etag, STORE_ETAG_MAX, "%s", out.etag);
  store_object_info_free(&out);
}

/* Expected multipart etag from part etags (hex). */
static void mpu_etag(char etags[][STORE_ETAG_MAX], size_t n,
                     char out[STORE_ETAG_MAX]) {
  struct md5_ctx c;
  md5_init(&c);
  for (size_t i = 0; i < n; i++) {
    uint8_t d[16];
    T_ASSERT(t_unhex16(etags[i], d) == 0);
    md5_update(&c, 16, d);
  }
  uint8_t d[16];
  md5_digest(&c, 16, d);
  char hx[33];
  t_tohex(d, 16, hx);
  snprintf(out, STORE_ETAG_MAX, "%s-%zu", hx, n);
}

static void mpu_basic(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_kv meta[1] = {{"purpose", "test"}};
  store_kv tags[1] = {{"tk", "tv"}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.content_type = "video/mp4";
  po.meta = meta;
  po.n_meta = 1;
  po.tags = tags;
  po.n_tags = 1;
  po.owner = "AKIAOWNER";
  char uid[STORE_UPLOAD_ID_MAX];
  memset(uid, 0, sizeof uid);
  T_OK(store_mpu_create(s, "bkt", "movie.mp4", &po, uid));
  T_ASSERT(uid[0] != 0);
  T_ASSERT(strlen(uid) < STORE_UPLOAD_ID_MAX);

  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_mpu_head(s, "bkt", "movie.mp4", uid, &h));
  T_EQ_STR(h.content_type, "video/mp4");
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "purpose"), "test");
  store_object_info_free(&h);

  store_stats st = t_stats(s);
  T_EQ_U64(st.uploads, 1);
  T_EQ_U64(st.objects, 0);

  const size_t sizes[3] = {PART, PART, 1234};
  const size_t total = 2 * PART + 1234;
  uint8_t *all = t_gen(total, 500);
  char etags[3][STORE_ETAG_MAX];
  /* Upload out of order. */
  upload_part(s, "bkt", "movie.mp4", uid, 3, all + 2 * PART, sizes[2], etags[2]);
  upload_part(s, "bkt", "movie.mp4", uid, 1, all, sizes[0], etags[0]);
  upload_part(s, "bkt", "movie.mp4", uid, 2, all + PART, sizes[1], etags[1]);
  /* Not visible before completion. */
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "movie.mp4", NULL, &h));

  store_part_info *pi = NULL;
  size_t np = 0;
  int trunc = -1;
  T_OK(store_mpu_parts(s, "bkt", "movie.mp4", uid, 0, 0, &pi, &np, &trunc));
  T_EQ_U64(np, 3);
  T_ASSERT(trunc == 0);
  for (size_t i = 0; i < 3; i++) {
    T_EQ_U64(pi[i].part_number, i + 1);
    T_EQ_U64(pi[i].size, sizes[i]);
    T_EQ_STR(pi[i].etag, etags[i]);
    T_ASSERT(pi[i].mtime_ns > 0);
  }
  store_part_info_free(pi, np);

  char quoted[STORE_ETAG_MAX + 2];
  snprintf(quoted, sizeof quoted, "\"%s\"", etags[1]);
  store_part_ref refs[3] = {{1, etags[0]}, {2, quoted}, {3, etags[2]}};
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_mpu_complete(s, "bkt", "movie.mp4", uid, refs, 3, &out));
  char want_etag[STORE_ETAG_MAX];
  mpu_etag(etags, 3, want_etag);
  T_EQ_STR(out.etag, want_etag);
  T_EQ_U64(out.size, total);
  T_EQ_U64(out.parts, 3);
  store_object_info_free(&out);

  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "movie.mp4", NULL, &h));
  T_EQ_STR(h.etag, want_etag);
  T_EQ_U64(h.size, total);
  T_EQ_U64(h.parts, 3);
  T_EQ_STR(h.content_type, "video/mp4");
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "purpose"), "test");
  T_EQ_STR(t_kv_find(h.tags, h.n_tags, "tk"), "tv");
  store_object_info_free(&h);
  T_CONTENT(s, "bkt", "movie.mp4", all, total);

  /* Part ranges. */
  uint64_t off = 0;
  for (uint32_t p = 1; p <= 3; p++) {
    uint64_t o = 99, l = 99;
    char e[STORE_ETAG_MAX] = "";
    T_OK(store_part_range(s, "bkt", "movie.mp4", p, &o, &l, e));
    T_EQ_U64(o, off);
    T_EQ_U64(l, sizes[p - 1]);
    T_EQ_STR(e, etags[p - 1]);
    off += l;
  }
  uint64_t o, l;
  char e[STORE_ETAG_MAX];
  T_ASSERT(store_part_range(s, "bkt", "movie.mp4", 4, &o, &l, e) != STORE_OK);
  T_ASSERT(store_part_range(s, "bkt", "movie.mp4", 0, &o, &l, e) != STORE_OK);
  T_RC(STORE_ERR_NO_KEY, store_part_range(s, "bkt", "nokey", 1, &o, &l, e));

  /* The upload is gone. */
  pi = NULL;
  T_RC(STORE_ERR_NO_UPLOAD,
       store_mpu_parts(s, "bkt", "movie.mp4", uid, 0, 0, &pi, &np, &trunc));
  T_RC(STORE_ERR_NO_UPLOAD, store_mpu_abort(s, "bkt", "movie.mp4", uid));
  T_RC(STORE_ERR_NO_UPLOAD,
       store_mpu_complete(s, "bkt", "movie.mp4", uid, refs, 3, NULL));
  st = t_stats(s);
  T_EQ_U64(st.uploads, 0);
  T_EQ_U64(st.objects, 1);
  T_EQ_U64(st.logical_bytes, total);
  /* Completion did not copy data. */
  T_ASSERT(st.physical_bytes < total + 1 * MiB);
  T_RC(STORE_ERR_BUCKET_NOT_EMPTY, store_bucket_delete(s, "bkt"));

  /* Survives reopen, fsck clean after GC. */
  store_close(s);
  s = t_open_store();
  T_CONTENT(s, "bkt", "movie.mp4", all, total);
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "movie.mp4", all, total);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(all);
  store_close(s);
}

static void mpu_single_small_part(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "tiny", NULL, uid));
  char etags[1][STORE_ETAG_MAX];
  upload_part(s, "bkt", "tiny", uid, 1, (const uint8_t *)"tiny!", 5, etags[0]);
  store_part_ref refs[1] = {{1, etags[0]}};
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_mpu_complete(s, "bkt", "tiny", uid, refs, 1, &out));
  char want[STORE_ETAG_MAX];
  mpu_etag(etags, 1, want);
  T_EQ_STR(out.etag, want);
  T_EQ_U64(out.parts, 1);
  store_object_info_free(&out);
  T_CONTENT(s, "bkt", "tiny", "tiny!", 5);

  /* An empty part as the only part. */
  T_OK(store_mpu_create(s, "bkt", "zero", NULL, uid));
  upload_part(s, "bkt", "zero", uid, 1, (const uint8_t *)"", 0, etags[0]);
  refs[0].etag = etags[0];
  T_OK(store_mpu_complete(s, "bkt", "zero", uid, refs, 1, NULL));
  T_CONTENT(s, "bkt", "zero", "", 0);

  /* Completion replaces an existing object. */
  T_OK(store_mpu_create(s, "bkt", "tiny", NULL, uid));
  upload_part(s, "bkt", "tiny", uid, 7, (const uint8_t *)"again", 5, etags[0]);
  store_part_ref r7[1] = {{7, etags[0]}};
  T_OK(store_mpu_complete(s, "bkt", "tiny", uid, r7, 1, NULL));
  T_CONTENT(s, "bkt", "tiny", "again", 5);
  store_close(s);
}

static void mpu_errors(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char uid[STORE_UPLOAD_ID_MAX];
  T_RC(STORE_ERR_NO_BUCKET, store_mpu_create(s, "nob", "k", NULL, uid));
  T_RC(STORE_ERR_BAD_KEY, store_mpu_create(s, "bkt", "", NULL, uid));
  T_OK(store_mpu_create(s, "bkt", "k", NULL, uid));

  uint8_t *d = t_gen(PART + 10, 9);
  store_writer *w = NULL;
  T_RC(STORE_ERR_NO_UPLOAD,
       store_writer_open_part(s, "bkt", "k", "no-such-upload", 1, &w));
  T_RC(STORE_ERR_NO_UPLOAD, store_mpu_abort(s, "bkt", "k", "no-such-upload"));
  T_ASSERT(store_writer_open_part(s, "bkt", "k", uid, 0, &w) != STORE_OK);
  T_ASSERT(store_writer_open_part(s, "bkt", "k", uid, STORE_PARTS_MAX + 1,
                                  &w) != STORE_OK);

  char etags[3][STORE_ETAG_MAX];
  /* Part 1 too small for a non-last part. */
  upload_part(s, "bkt", "k", uid, 1, d, 1 * MiB, etags[0]);
  upload_part(s, "bkt", "k", uid, 2, d + 100, 1000, etags[1]);
  store_part_ref refs[2] = {{1, etags[0]}, {2, etags[1]}};
  T_RC(STORE_ERR_ENTITY_TOO_SMALL,
       store_mpu_complete(s, "bkt", "k", uid, refs, 2, NULL));
  store_object_info h;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k", NULL, &h));
  /* The upload survives a failed completion: re-upload part 1. */
  upload_part(s, "bkt", "k", uid, 1, d, PART, etags[0]);

  /* Wrong etag. */
  store_part_ref bad[2] = {{1, "00000000000000000000000000000000"},
                           {2, etags[1]}};
  T_RC(STORE_ERR_INVALID_PART,
       store_mpu_complete(s, "bkt", "k", uid, bad, 2, NULL));
  /* The etag of the replaced (first) part 1 is stale too. */
  char small_etag[33];
  t_md5_hex(d, 1 * MiB, small_etag);
  store_part_ref stale[2] = {{1, small_etag}, {2, etags[1]}};
  T_RC(STORE_ERR_INVALID_PART,
       store_mpu_complete(s, "bkt", "k", uid, stale, 2, NULL));
  /* A part never uploaded. */
  store_part_ref missing[2] = {{1, etags[0]}, {3, etags[1]}};
  T_RC(STORE_ERR_INVALID_PART,
       store_mpu_complete(s, "bkt", "k", uid, missing, 2, NULL));
  /* Order. */
  store_part_ref rev[2] = {{2, etags[1]}, {1, etags[0]}};
  T_RC(STORE_ERR_INVALID_PART_ORDER,
       store_mpu_complete(s, "bkt", "k", uid, rev, 2, NULL));
  store_part_ref dup[2] = {{1, etags[0]}, {1, etags[0]}};
  T_RC(STORE_ERR_INVALID_PART_ORDER,
       store_mpu_complete(s, "bkt", "k", uid, dup, 2, NULL));
  /* No parts at all. */
  T_ASSERT(store_mpu_complete(s, "bkt", "k", uid, refs, 0, NULL) != STORE_OK);
  /* Wrong key for this upload id. */
  T_RC(STORE_ERR_NO_UPLOAD,
       store_mpu_complete(s, "bkt", "other", uid, refs, 2, NULL));
  T_RC(STORE_ERR_NO_UPLOAD,
       store_mpu_complete(s, "bkt", "k", "no-such-upload", refs, 2, NULL));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k", NULL, &h));

  /* Finally a good completion. */
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_mpu_complete(s, "bkt", "k", uid, refs, 2, &out));
  T_EQ_U64(out.size, PART + 1000);
  store_object_info_free(&out);
  uint8_t *want = t_xmalloc(PART + 1000);
  memcpy(want, d, PART);
  memcpy(want + PART, d + 100, 1000);
  T_CONTENT(s, "bkt", "k", want, PART + 1000);

  /* Abort of an unknown or finished upload. */
  T_RC(STORE_ERR_NO_UPLOAD, store_mpu_abort(s, "bkt", "k", uid));
  free(want);
  free(d);
  store_close(s);
}

static void mpu_replace_skip_and_gc(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "k", NULL, uid));
  uint8_t *p1a = t_gen(PART, 1), *p1b = t_gen(PART + 5, 2),
          *p2 = t_gen(PART, 3), *p3 = t_gen(333333, 4);
  char etags[4][STORE_ETAG_MAX];
  upload_part(s, "bkt", "k", uid, 1, p1a, PART, etags[0]);
  upload_part(s, "bkt", "k", uid, 1, p1b, PART + 5, etags[1]); /* replaces */
  upload_part(s, "bkt", "k", uid, 2, p2, PART, etags[2]);
  upload_part(s, "bkt", "k", uid, 3, p3, 333333, etags[3]);
  store_part_info *pi = NULL;
  size_t np = 0;
  int tr = 0;
  T_OK(store_mpu_parts(s, "bkt", "k", uid, 0, 0, &pi, &np, &tr));
  T_EQ_U64(np, 3);
  T_EQ_STR(pi[0].etag, etags[1]);
  T_EQ_U64(pi[0].size, PART + 5);
  store_part_info_free(pi, np);

  /* Skip part 2. */
  store_part_ref refs[2] = {{1, etags[1]}, {3, etags[3]}};
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_mpu_complete(s, "bkt", "k", uid, refs, 2, &out));
  char sel[2][STORE_ETAG_MAX];
  memcpy(sel[0], etags[1], STORE_ETAG_MAX);
  memcpy(sel[1], etags[3], STORE_ETAG_MAX);
  char want[STORE_ETAG_MAX];
  mpu_etag(sel, 2, want);
  T_EQ_STR(out.etag, want);
  T_EQ_U64(out.parts, 2);
  store_object_info_free(&out);
  size_t total = PART + 5 + 333333;
  uint8_t *all = t_xmalloc(total);
  memcpy(all, p1b, PART + 5);
  memcpy(all + PART + 5, p3, 333333);
  T_CONTENT(s, "bkt", "k", all, total);

  /* Part 2's and the replaced part 1's chunks are garbage now. */
  store_gc_report gr;
  memset(&gr, 0, sizeof gr);
  T_OK(store_gc(s, NULL, NULL, &gr));
  T_ASSERT(gr.bytes_freed >= 2 * PART - 1 * MiB);
  store_stats st = t_stats(s);
  T_EQ_U64(st.unreferenced_bytes, 0);
  T_ASSERT(st.physical_bytes < total + 1 * MiB);
  t_du_acc du = t_du(t_path("store/chunks"));
  T_ASSERT(du.bytes_size < total + 2 * MiB);
  T_CONTENT(s, "bkt", "k", all, total);
  uint64_t o, l;
  char e[STORE_ETAG_MAX];
  /* The second part of the object was uploaded as part 3: whether part
   * numbers are kept (3) or the object's parts are counted (2), the range
   * is the same. */
  if (store_part_range(s, "bkt", "k", 3, &o, &l, e) != STORE_OK)
    T_OK(store_part_range(s, "bkt", "k", 2, &o, &l, e));
  T_EQ_U64(o, PART + 5);
  T_EQ_U64(l, 333333);
  T_EQ_STR(e, etags[3]);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(p1a);
  free(p1b);
  free(p2);
  free(p3);
  free(all);
  store_close(s);
}

static void mpu_abort_frees(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "k", NULL, uid));
  uint8_t *d = t_gen(2 * PART, 77);
  char etags[2][STORE_ETAG_MAX];
  upload_part(s, "bkt", "k", uid, 1, d, PART, etags[0]);
  upload_part(s, "bkt", "k", uid, 2, d + PART, PART, etags[1]);
  /* A part writer that is aborted leaves nothing either. */
  store_writer *w = NULL;
  T_OK(store_writer_open_part(s, "bkt", "k", uid, 3, &w));
  T_OK(store_write(w, d, PART));
  store_writer_abort(w);
  store_part_info *pi = NULL;
  size_t np = 0;
  int tr = 0;
  T_OK(store_mpu_parts(s, "bkt", "k", uid, 0, 0, &pi, &np, &tr));
  T_EQ_U64(np, 2);
  store_part_info_free(pi, np);

  T_OK(store_mpu_abort(s, "bkt", "k", uid));
  T_RC(STORE_ERR_NO_UPLOAD,
       store_mpu_parts(s, "bkt", "k", uid, 0, 0, &pi, &np, &tr));
  T_RC(STORE_ERR_NO_UPLOAD, store_mpu_abort(s, "bkt", "k", uid));
  store_object_info h;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k", NULL, &h));
  T_RC(STORE_ERR_NO_UPLOAD, store_mpu_head(s, "bkt", "k", uid, &h));
  store_mpu_list_result ml;
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", NULL, &ml));
  T_EQ_U64(ml.n_uploads, 0);
  store_mpu_list_result_free(&ml);
  store_stats st = t_stats(s);
  T_EQ_U64(st.uploads, 0);

  T_OK(store_gc(s, NULL, NULL, NULL));
  st = t_stats(s);
  T_EQ_U64(st.physical_bytes, 0);
  T_EQ_U64(st.unreferenced_bytes, 0);
  t_du_acc du = t_du(t_path("store/chunks"));
  T_ASSERT(du.bytes_size < 64 * KiB);
  t_du_acc sd = t_du(t_path("store/staging"));
  T_ASSERT(sd.bytes_size < 64 * KiB);
  T_OK(store_bucket_delete(s, "bkt"));
  free(d);
  store_close(s);
}

static void mpu_list_uploads(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  T_OK(store_bucket_create(s, "other", NULL));
  const char *keys[] = {"a/1", "a/2", "b", "b", "b", "c/x", "c/y", "d"};
  const size_t nk = sizeof keys / sizeof keys[0];
  char uids[8][STORE_UPLOAD_ID_MAX];
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.owner = "AKIAOWNER";
  for (size_t i = 0; i < nk; i++) {
    T_OK(store_mpu_create(s, "bkt", keys[i], &po, uids[i]));
    for (size_t j = 0; j < i; j++) T_ASSERT(strcmp(uids[i], uids[j]) != 0);
  }
  char ou[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "other", "a/1", NULL, ou));

  /* The full listing: keys in byte order; uploads of one key in a
   * consistent order (S3: initiation time) that the markers follow. */
  store_mpu_list_result ml;
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", NULL, &ml));
  T_EQ_U64(ml.n_uploads, nk);
  T_ASSERT(!ml.truncated);
  char full_ids[8][STORE_UPLOAD_ID_MAX];
  for (size_t i = 0; i < nk; i++) {
    T_EQ_STR(ml.uploads[i].key, keys[i]);
    T_EQ_STR(ml.uploads[i].owner, "AKIAOWNER");
    T_ASSERT(ml.uploads[i].created_ns > 0);
    snprintf(full_ids[i], STORE_UPLOAD_ID_MAX, "%s", ml.uploads[i].upload_id);
  }
  /* Every upload exactly once. */
  for (size_t i = 0; i < nk; i++) {
    int found = 0;
    for (size_t j = 0; j < nk; j++)
      if (!strcmp(full_ids[j], uids[i])) {
        found++;
        T_EQ_STR(keys[j], keys[i]);
      }
    T_EQ_U64(found, 1);
  }
  store_mpu_list_result_free(&ml);

  /* prefix */
  store_mpu_list_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.prefix = "c/";
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", &lo, &ml));
  T_EQ_U64(ml.n_uploads, 2);
  T_EQ_STR(ml.uploads[0].key, "c/x");
  T_EQ_STR(ml.uploads[1].key, "c/y");
  store_mpu_list_result_free(&ml);

  /* delimiter */
  memset(&lo, 0, sizeof lo);
  lo.delimiter = "/";
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", &lo, &ml));
  T_EQ_U64(ml.n_prefixes, 2);
  T_EQ_STR(ml.prefixes[0], "a/");
  T_EQ_STR(ml.prefixes[1], "c/");
  T_EQ_U64(ml.n_uploads, 4);
  T_EQ_STR(ml.uploads[0].key, "b");
  T_EQ_STR(ml.uploads[3].key, "d");
  store_mpu_list_result_free(&ml);

  /* prefix + delimiter */
  memset(&lo, 0, sizeof lo);
  lo.prefix = "a/";
  lo.delimiter = "/";
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", &lo, &ml));
  T_EQ_U64(ml.n_prefixes, 0);
  T_EQ_U64(ml.n_uploads, 2);
  store_mpu_list_result_free(&ml);

  /* key_marker alone: keys strictly after it. */
  memset(&lo, 0, sizeof lo);
  lo.key_marker = "b";
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", &lo, &ml));
  T_EQ_U64(ml.n_uploads, 3);
  T_EQ_STR(ml.uploads[0].key, "c/x");
  store_mpu_list_result_free(&ml);

  /* key_marker + upload_id_marker (the first "b" upload of the listing):
   * the rest of that key, then later keys. */
  memset(&lo, 0, sizeof lo);
  lo.key_marker = "b";
  lo.upload_id_marker = full_ids[2];
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", &lo, &ml));
  T_EQ_U64(ml.n_uploads, 5);
  T_EQ_STR(ml.uploads[0].upload_id, full_ids[3]);
  T_EQ_STR(ml.uploads[1].upload_id, full_ids[4]);
  T_EQ_STR(ml.uploads[2].key, "c/x");
  store_mpu_list_result_free(&ml);

  /* Pagination by every page size: each upload exactly once, in order. */
  for (uint32_t max = 1; max <= 4; max++) {
    char km[64] = "", um[STORE_UPLOAD_ID_MAX] = "";
    size_t seen = 0;
    int pages = 0;
    for (;;) {
      memset(&lo, 0, sizeof lo);
      lo.max_uploads = max;
      if (pages) {
        lo.key_marker = km;
        lo.upload_id_marker = um;
      }
      memset(&ml, 0, sizeof ml);
      T_OK(store_mpu_list(s, "bkt", &lo, &ml));
      pages++;
      T_ASSERT(ml.n_uploads <= max);
      for (size_t i = 0; i < ml.n_uploads; i++) {
        T_ASSERT(seen < nk);
        T_EQ_STR(ml.uploads[i].key, keys[seen]);
        T_EQ_STR(ml.uploads[i].upload_id, full_ids[seen]);
        seen++;
      }
      int more = ml.truncated;
      if (more) {
        T_ASSERT(ml.n_uploads > 0);
        T_ASSERT(ml.next_key_marker != NULL);
        T_EQ_STR(ml.next_key_marker, ml.uploads[ml.n_uploads - 1].key);
        T_EQ_STR(ml.next_upload_id_marker,
                 ml.uploads[ml.n_uploads - 1].upload_id);
        snprintf(km, sizeof km, "%s", ml.next_key_marker);
        snprintf(um, sizeof um, "%s", ml.next_upload_id_marker);
      }
      store_mpu_list_result_free(&ml);
      if (!more) break;
      T_ASSERT(pages < 100);
    }
    T_EQ_U64(seen, nk);
  }

  /* Pagination with a delimiter: each prefix and upload once. */
  for (uint32_t max = 1; max <= 3; max++) {
    char km[64] = "", um[STORE_UPLOAD_ID_MAX] = "";
    char seen[16][64];
    size_t ns = 0;
    int pages = 0;
    for (;;) {
      memset(&lo, 0, sizeof lo);
      lo.delimiter = "/";
      lo.max_uploads = max;
      if (pages) {
        lo.key_marker = km;
        lo.upload_id_marker = um[0] ? um : NULL;
      }
      memset(&ml, 0, sizeof ml);
      T_OK(store_mpu_list(s, "bkt", &lo, &ml));
      pages++;
      T_ASSERT(ml.n_uploads + ml.n_prefixes <= max);
      for (size_t i = 0; i < ml.n_prefixes && ns < 16; i++)
        snprintf(seen[ns++], 64, "P:%s", ml.prefixes[i]);
      for (size_t i = 0; i < ml.n_uploads && ns < 16; i++)
        snprintf(seen[ns++], 64, "U:%s:%s", ml.uploads[i].key,
                 ml.uploads[i].upload_id);
      int more = ml.truncated;
      if (more) {
        T_ASSERT(ml.n_uploads + ml.n_prefixes > 0);
        T_ASSERT(ml.next_key_marker != NULL);
        snprintf(km, sizeof km, "%s", ml.next_key_marker);
        snprintf(um, sizeof um, "%s", ml.next_upload_id_marker);
      }
      store_mpu_list_result_free(&ml);
      if (!more) break;
      if (pages >= 50)
        T_FAIL("delimited upload listing (max_uploads %u) does not end: "
               "key_marker \"%s\" (a common prefix) returns that prefix "
               "again",
               max, km);
    }
    /* a/, c/ and the 4 uploads of b and d: 6 items, no duplicates */
    if (ns != 6) {
      for (size_t i = 0; i < ns; i++) fprintf(stderr, "  item %s\n", seen[i]);
      T_FAIL("delimited upload listing with max_uploads %u gave %zu items, "
             "expected 6 (a/, c/, 3 x b, d)",
             max, ns);
    }
    for (size_t i = 0; i < ns; i++)
      for (size_t j = i + 1; j < ns; j++)
        if (!strcmp(seen[i], seen[j])) T_FAIL("duplicate item %s", seen[i]);
  }

  T_RC(STORE_ERR_NO_BUCKET, store_mpu_list(s, "nob", NULL, &ml));
  /* Abort one, it disappears from the list. */
  T_OK(store_mpu_abort(s, "bkt", "b", uids[3]));
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", NULL, &ml));
  T_EQ_U64(ml.n_uploads, nk - 1);
  for (size_t i = 0; i < ml.n_uploads; i++)
    T_ASSERT(strcmp(ml.uploads[i].upload_id, uids[3]) != 0);
  store_mpu_list_result_free(&ml);
  store_close(s);
}

static void mpu_parts_listing_small_min(void) {
  store_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.part_min_size = 1000;
  store *s = NULL;
  T_OK(store_create(t_store_dir(), &cfg, &s));
  T_OK(store_bucket_create(s, "bkt", NULL));
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "k", NULL, uid));
  const int NP = 12;
  char etags[12][STORE_ETAG_MAX];
  uint8_t *d = t_gen(12 * 2000, 55);
  const int order[12] = {7, 3, 12, 1, 5, 9, 2, 11, 4, 8, 10, 6};
  for (int i = 0; i < NP; i++) {
    int pn = order[i];
    size_t sz = pn == NP ? 10 : 2000;
    upload_part(s, "bkt", "k", uid, (uint32_t)pn, d + (pn - 1) * 2000, sz,
                etags[pn - 1]);
  }
  uint32_t marker = 0;
  int expect_next = 1, pages = 0;
  for (;;) {
    store_part_info *pi = NULL;
    size_t np = 0;
    int tr = -1;
    T_OK(store_mpu_parts(s, "bkt", "k", uid, marker, 5, &pi, &np, &tr));
    pages++;
    T_ASSERT(np <= 5);
    for (size_t i = 0; i < np; i++) {
      T_EQ_U64(pi[i].part_number, expect_next);
      T_EQ_STR(pi[i].etag, etags[expect_next - 1]);
      T_EQ_U64(pi[i].size, expect_next == NP ? 10 : 2000);
      expect_next++;
    }
    if (np) marker = pi[np - 1].part_number;
    store_part_info_free(pi, np);
    if (!tr) break;
    T_ASSERT(np > 0);
    T_ASSERT(pages < 20);
  }
  T_EQ_U64(expect_next, NP + 1);
  T_EQ_U64(pages, 3);

  /* Parts above a marker in the middle. */
  store_part_info *pi = NULL;
  size_t np = 0;
  int tr = -1;
  T_OK(store_mpu_parts(s, "bkt", "k", uid, 10, 0, &pi, &np, &tr));
  T_EQ_U64(np, 2);
  T_EQ_U64(pi[0].part_number, 11);
  T_ASSERT(tr == 0);
  store_part_info_free(pi, np);

  /* With a 1000-byte minimum, 2000-byte parts complete. */
  store_part_ref refs[12];
  for (int i = 0; i < NP; i++) {
    refs[i].part_number = (uint32_t)(i + 1);
    refs[i].etag = etags[i];
  }
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_mpu_complete(s, "bkt", "k", uid, refs, (size_t)NP, &out));
  char want[STORE_ETAG_MAX];
  mpu_etag(etags, (size_t)NP, want);
  T_EQ_STR(out.etag, want);
  T_EQ_U64(out.size, 11 * 2000 + 10);
  T_EQ_U64(out.parts, 12);
  store_object_info_free(&out);
  T_CONTENT(s, "bkt", "k", d, 11 * 2000 + 10);
  for (uint32_t p = 1; p <= 12; p++) {
    uint64_t o, l;
    char e[STORE_ETAG_MAX];
    T_OK(store_part_range(s, "bkt", "k", p, &o, &l, e));
    T_EQ_U64(o, (p - 1) * 2000);
    T_EQ_U64(l, p == 12 ? 10 : 2000);
  }

  /* A part below the configured minimum is still too small. */
  T_OK(store_mpu_create(s, "bkt", "k2", NULL, uid));
  char e2[2][STORE_ETAG_MAX];
  upload_part(s, "bkt", "k2", uid, 1, d, 999, e2[0]);
  upload_part(s, "bkt", "k2", uid, 2, d, 999, e2[1]);
  store_part_ref r2[2] = {{1, e2[0]}, {2, e2[1]}};
  T_RC(STORE_ERR_ENTITY_TOO_SMALL,
       store_mpu_complete(s, "bkt", "k2", uid, r2, 2, NULL));
  T_OK(store_mpu_abort(s, "bkt", "k2", uid));
  free(d);
  store_close(s);
}

static void mpu_part_copy(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "src", NULL));
  T_OK(store_bucket_create(s, "dst", NULL));
  const size_t sn = 12 * MiB + 99;
  uint8_t *src = t_gen(sn, 314);
  t_put(s, "src", "big", src, sn);
  uint8_t *small = t_gen(4321, 315);
  t_put(s, "src", "small", small, 4321);

  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "dst", "assembled", NULL, uid));
  char etags[4][STORE_ETAG_MAX];
  /* Part 1: an unaligned 5 MiB range of big. */
  const uint64_t off1 = 1 * MiB + 7;
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_part_copy(s, "dst", "assembled", uid, 1, "src", "big", NULL,
                       off1, PART, &out));
  char md5[33];
  t_md5_hex(src + off1, PART, md5);
  T_EQ_STR(out.etag, md5);
  T_EQ_U64(out.size, PART);
  snprintf(etags[0], STORE_ETAG_MAX, "%s", out.etag);
  store_object_info_free(&out);
  /* Part 2: the tail of big, len = UINT64_MAX ("to the end"). */
  const uint64_t off2 = sn - PART - 3;
  memset(&out, 0, sizeof out);
  T_OK(store_part_copy(s, "dst", "assembled", uid, 2, "src", "big", NULL,
                       off2, UINT64_MAX, &out));
  t_md5_hex(src + off2, sn - off2, md5);
  T_EQ_STR(out.etag, md5);
  T_EQ_U64(out.size, sn - off2);
  snprintf(etags[1], STORE_ETAG_MAX, "%s", out.etag);
  store_object_info_free(&out);
  /* Part 3: uploaded data. */
  uint8_t *p3 = t_gen(PART, 316);
  upload_part(s, "dst", "assembled", uid, 3, p3, PART, etags[2]);
  /* Part 4: all of small. */
  memset(&out, 0, sizeof out);
  T_OK(store_part_copy(s, "dst", "assembled", uid, 4, "src", "small", NULL,
                       0, UINT64_MAX, &out));
  t_md5_hex(small, 4321, md5);
  T_EQ_STR(out.etag, md5);
  snprintf(etags[3], STORE_ETAG_MAX, "%s", out.etag);
  store_object_info_free(&out);

  /* Bad ranges and sources. */
  T_RC(STORE_ERR_RANGE,
       store_part_copy(s, "dst", "assembled", uid, 5, "src", "big", NULL,
                       sn + 1, 10, NULL));
  T_RC(STORE_ERR_RANGE,
       store_part_copy(s, "dst", "assembled", uid, 5, "src", "big", NULL,
                       sn - 10, 11, NULL));
  T_RC(STORE_ERR_NO_KEY,
       store_part_copy(s, "dst", "assembled", uid, 5, "src", "nokey", NULL, 0,
                       UINT64_MAX, NULL));
  T_RC(STORE_ERR_NO_UPLOAD,
       store_part_copy(s, "dst", "assembled", "bogus", 5, "src", "big", NULL,
                       0, 10, NULL));

  /* The source may change before completion: parts keep their bytes. */
  uint8_t *src2 = t_gen(sn, 999);
  t_put(s, "src", "big", src2, sn);
  T_OK(store_gc(s, NULL, NULL, NULL));

  store_part_ref refs[4] = {
      {1, etags[0]}, {2, etags[1]}, {3, etags[2]}, {4, etags[3]}};
  memset(&out, 0, sizeof out);
  T_OK(store_mpu_complete(s, "dst", "assembled", uid, refs, 4, &out));
  char want[STORE_ETAG_MAX];
  mpu_etag(etags, 4, want);
  T_EQ_STR(out.etag, want);
  size_t total = PART + (sn - off2) + PART + 4321;
  T_EQ_U64(out.size, total);
  store_object_info_free(&out);
  uint8_t *all = t_xmalloc(total);
  size_t o = 0;
  memcpy(all + o, src + off1, PART);
  o += PART;
  memcpy(all + o, src + off2, sn - off2);
  o += sn - off2;
  memcpy(all + o, p3, PART);
  o += PART;
  memcpy(all + o, small, 4321);
  T_CONTENT(s, "dst", "assembled", all, total);

  /* Part ranges. */
  uint64_t po, pl;
  char e[STORE_ETAG_MAX];
  T_OK(store_part_range(s, "dst", "assembled", 2, &po, &pl, e));
  T_EQ_U64(po, PART);
  T_EQ_U64(pl, sn - off2);
  T_EQ_STR(e, etags[1]);
  T_OK(store_part_range(s, "dst", "assembled", 4, &po, &pl, e));
  T_EQ_U64(po, total - 4321);
  T_EQ_U64(pl, 4321);

  /* Random ranges of the assembled (not grid-aligned) object. */
  store_reader *rd = NULL;
  T_OK(store_reader_open(s, "dst", "assembled", NULL, &rd, NULL));
  t_rng rng = t_rng_seed(12);
  uint8_t *rb = t_xmalloc(3 * MiB);
  for (int i = 0; i < 200; i++) {
    uint64_t ro = t_rng_below(&rng, total);
    size_t rl = 1 + (size_t)t_rng_below(&rng, i % 4 ? 70000 : 3 * MiB);
    size_t got = 0;
    T_OK(store_read(rd, rb, rl, ro, &got));
    size_t ex = total - ro < rl ? (size_t)(total - ro) : rl;
    T_EQ_U64(got, ex);
    if (memcmp(rb, all + ro, got) != 0)
      T_FAIL("range %llu+%zu of the assembled object differs",
             (unsigned long long)ro, rl);
  }
  free(rb);
  store_reader_close(rd);

  /* Deleting the sources and collecting garbage keeps the result. */
  T_OK(store_delete(s, "src", "big"));
  T_OK(store_delete(s, "src", "small"));
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "dst", "assembled", all, total);

  /* Edit the assembled object across part boundaries, then cut it in the
   * middle of part 3. */
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "dst", "assembled", &w));
  uint8_t patch[5000];
  t_fill(patch, sizeof patch, 4040);
  T_OK(store_pwrite(w, patch, sizeof patch, PART - 2500));
  memcpy(all + PART - 2500, patch, sizeof patch);
  uint64_t b2 = PART + (sn - off2);
  T_OK(store_pwrite(w, patch, 10, b2 - 5));
  memcpy(all + b2 - 5, patch, 10);
  size_t cut = (size_t)b2 + PART / 2 + 3;
  T_OK(store_writer_truncate(w, cut));
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "dst", "assembled", all, cut);
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "dst", "assembled", all, cut);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(all);
  free(p3);
  free(src);
  free(src2);
  free(small);
  store_close(s);
}

/* Two uploads to the same key complete independently; the last wins. */
static void mpu_two_uploads_same_key(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char u1[STORE_UPLOAD_ID_MAX], u2[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "k", NULL, u1));
  T_OK(store_mpu_create(s, "bkt", "k", NULL, u2));
  T_ASSERT(strcmp(u1, u2) != 0);
  char e1[1][STORE_ETAG_MAX], e2[1][STORE_ETAG_MAX];
  upload_part(s, "bkt", "k", u1, 1, (const uint8_t *)"one", 3, e1[0]);
  upload_part(s, "bkt", "k", u2, 1, (const uint8_t *)"two!", 4, e2[0]);
  store_part_ref r1[1] = {{1, e1[0]}}, r2[1] = {{1, e2[0]}};
  /* u2's parts are not u1's. */
  T_RC(STORE_ERR_INVALID_PART, store_mpu_complete(s, "bkt", "k", u1, r2, 1,
                                                  NULL));
  T_OK(store_mpu_complete(s, "bkt", "k", u2, r2, 1, NULL));
  T_CONTENT(s, "bkt", "k", "two!", 4);
  T_OK(store_mpu_complete(s, "bkt", "k", u1, r1, 1, NULL));
  T_CONTENT(s, "bkt", "k", "one", 3);
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(mpu_basic);
  T_RUN(mpu_single_small_part);
  T_RUN(mpu_errors);
  T_RUN(mpu_replace_skip_and_gc);
  T_RUN(mpu_abort_frees);
  T_RUN(mpu_list_uploads);
  T_RUN(mpu_parts_listing_small_min);
  T_RUN(mpu_part_copy);
  T_RUN(mpu_two_uploads_same_key);
  T_MAIN_END();
}
