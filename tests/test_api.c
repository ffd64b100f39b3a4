/*
 * test_api.c -- every public libstore call, one behaviour at a time.
 */
#include <sys/statvfs.h>

#include "libstore.h"
#include "harness.h"
#include "tutil.h"

/* ------------------------------------------------------------------ */
static void create_open_close(void) {
  store *s = NULL;
  T_OK(store_create(t_store_dir(), NULL, &s));
  T_ASSERT(s);
  T_ASSERT(store_dir(s) != NULL);
  {
    /* store_dir names the directory the store was opened on */
    struct stat a, b;
    T_ASSERT(stat(store_dir(s), &a) == 0);
    T_ASSERT(stat(t_store_dir(), &b) == 0);
    T_ASSERT(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  }
  T_OK(store_bucket_create(s, "persist", NULL));
  t_put(s, "persist", "k", "hello", 5);
  store_close(s);

  /* The layout the design names. */
  struct stat st;
  T_ASSERT(stat(t_path("store/catalog.db"), &st) == 0);
  T_ASSERT(stat(t_path("store/chunks"), &st) == 0 && S_ISDIR(st.st_mode));

  s = NULL;
  T_OK(store_open(t_store_dir(), NULL, &s));
  T_CONTENT(s, "persist", "k", "hello", 5);
  store_close(s);

  /* Open twice in one process at once. */
  store *a = NULL, *b = NULL;
  T_OK(store_open(t_store_dir(), NULL, &a));
  T_OK(store_open(t_store_dir(), NULL, &b));
  t_put(a, "persist", "k2", "abc", 3);
  T_CONTENT(b, "persist", "k2", "abc", 3);
  store_close(a);
  store_close(b);

  /* NULL and zeroed structures are accepted by the *_free()/close. */
  store_close(NULL);
  store_reader_close(NULL);
  store_writer_abort(NULL);
  store_object_info_free(NULL);
  store_object_info info;
  memset(&info, 0, sizeof info);
  store_object_info_free(&info);
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  store_list_result_free(&lr);
  store_list_result_free(NULL);
  store_mpu_list_result ml;
  memset(&ml, 0, sizeof ml);
  store_mpu_list_result_free(&ml);
  store_user_list_free(NULL);
  store_bucket_list_free(NULL);
  store_kv_free(NULL, 0);
  store_part_info_free(NULL, 0);
}

static void read_only_open(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  t_put(s, "bkt", "k", "data", 4);
  store_close(s);

  store_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.read_only = 1;
  T_OK(store_open(t_store_dir(), &cfg, &s));
  T_CONTENT(s, "bkt", "k", "data", 4);
  T_RC(STORE_ERR_READONLY, store_put(s, "bkt", "k2", "x", 1, NULL, NULL));
  T_RC(STORE_ERR_READONLY, store_delete(s, "bkt", "k"));
  T_RC(STORE_ERR_READONLY, store_bucket_create(s, "cbk", NULL));
  store_close(s);
  s = t_open_store();
  T_CONTENT(s, "bkt", "k", "data", 4);
  store_object_info info;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k2", NULL, &info));
  store_close(s);
}

static void strerror_and_helpers(void) {
  for (int rc = 0; rc < STORE_ERR__COUNT; rc++) {
    const char *m = store_strerror(rc);
    T_ASSERT(m != NULL && m[0] != 0);
  }
  T_ASSERT(store_strerror(9999) != NULL);
  T_ASSERT(store_errmsg() != NULL);

  char hex[9];
  const uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff};
  store_hex(in, 4, hex);
  T_EQ_STR(hex, "00ab7fff");

  T_ASSERT(strncmp(store_guess_content_type("index.html"), "text/html", 9) ==
           0);
  T_EQ_STR(store_guess_content_type("a/b/c.unknownext"),
           "application/octet-stream");
  T_EQ_STR(store_guess_content_type("noext"), "application/octet-stream");
  T_EQ_STR(store_guess_content_type("x.json"), "application/json");
  T_EQ_STR(store_guess_content_type("p.png"), "image/png");

  T_OK(store_key_check("a", 1));
  T_OK(store_key_check("dir/sub/file.txt", 16));
  T_RC(STORE_ERR_BAD_KEY, store_key_check("", 0));
  T_OK(store_bucket_name_check("my-bucket.example"));
}

/* ------------------------------------------------------------------ */
static void users(void) {
  store *s = t_new_store();
  store_user u;
  memset(&u, 0, sizeof u);
  T_OK(store_user_add(s, "alice", "AKIAALICE00000000001",
                      "secretalice0000000000000000000000000000", 1, &u));
  T_EQ_STR(u.access_key, "AKIAALICE00000000001");
  T_EQ_STR(u.secret_key, "secretalice0000000000000000000000000000");
  T_EQ_STR(u.name, "alice");
  T_ASSERT(u.is_admin == 1);
  T_ASSERT(u.revoked == 0);

  /* Generated keys: 20 and 40 characters. */
  store_user g;
  memset(&g, 0, sizeof g);
  T_OK(store_user_add(s, "bob", NULL, NULL, 0, &g));
  T_EQ_U64(strlen(g.access_key), 20);
  T_EQ_U64(strlen(g.secret_key), 40);
  T_EQ_STR(g.name, "bob");
  T_ASSERT(g.is_admin == 0);
  store_user g2;
  memset(&g2, 0, sizeof g2);
  T_OK(store_user_add(s, "carol", NULL, NULL, 0, &g2));
  T_ASSERT(strcmp(g.access_key, g2.access_key) != 0);
  T_ASSERT(strcmp(g.secret_key, g2.secret_key) != 0);

  /* Duplicate access key. */
  T_RC(STORE_ERR_USER_EXISTS,
       store_user_add(s, "mallory", "AKIAALICE00000000001", "xxxxxxxxxxxxxxxxxxxxxxxx", 0, NULL));

  store_user got;
  memset(&got, 0, sizeof got);
  T_OK(store_user_get(s, "AKIAALICE00000000001", &got));
  T_EQ_STR(got.secret_key, "secretalice0000000000000000000000000000");
  T_EQ_STR(got.name, "alice");
  T_ASSERT(got.is_admin == 1);
  memset(&got, 0, sizeof got);
  T_OK(store_user_get(s, g.access_key, &got));
  T_EQ_STR(got.secret_key, g.secret_key);
  T_EQ_STR(got.name, "bob");
  T_RC(STORE_ERR_NO_USER, store_user_get(s, "AKIANOBODY", &got));

  store_user *list = NULL;
  size_t n = 0;
  T_OK(store_user_list(s, &list, &n));
  T_EQ_U64(n, 3);
  int seen = 0;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(list[i].access_key, "AKIAALICE00000000001")) seen |= 1;
    if (!strcmp(list[i].access_key, g.access_key)) seen |= 2;
    if (!strcmp(list[i].access_key, g2.access_key)) seen |= 4;
  }
  T_EQ_U64(seen, 7);
  store_user_list_free(list);

  T_OK(store_user_revoke(s, g.access_key));
  T_RC(STORE_ERR_NO_USER, store_user_get(s, g.access_key, &got));
  T_RC(STORE_ERR_NO_USER, store_user_revoke(s, "AKIANOBODY"));
  T_OK(store_user_get(s, g2.access_key, &got));

  /* A revoked user is either gone from the list or flagged revoked. */
  list = NULL;
  n = 0;
  T_OK(store_user_list(s, &list, &n));
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i].access_key, g.access_key))
      T_ASSERT(list[i].revoked == 1);
    else
      T_ASSERT(list[i].revoked == 0);
  store_user_list_free(list);

  /* Persisted. */
  store_close(s);
  s = t_open_store();
  T_OK(store_user_get(s, "AKIAALICE00000000001", &got));
  T_RC(STORE_ERR_NO_USER, store_user_get(s, g.access_key, &got));
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void buckets(void) {
  store *s = t_new_store();
  store_bucket_info bi;
  T_RC(STORE_ERR_NO_BUCKET, store_bucket_head(s, "nope", &bi));

  T_OK(store_bucket_create(s, "zeta", "AKIAOWNER"));
  T_OK(store_bucket_create(s, "alpha", NULL));
  T_OK(store_bucket_create(s, "mid.dle-1", ""));
  T_RC(STORE_ERR_BUCKET_EXISTS, store_bucket_create(s, "alpha", NULL));

  memset(&bi, 0, sizeof bi);
  T_OK(store_bucket_head(s, "zeta", &bi));
  T_EQ_STR(bi.name, "zeta");
  T_EQ_STR(bi.owner, "AKIAOWNER");
  T_ASSERT(bi.created_ns > 0);
  T_ASSERT(bi.versioning == 0);
  memset(&bi, 0, sizeof bi);
  T_OK(store_bucket_head(s, "alpha", &bi));
  T_EQ_STR(bi.owner, "");

  store_bucket_info *list = NULL;
  size_t n = 0;
  T_OK(store_bucket_list(s, &list, &n));
  T_EQ_U64(n, 3);
  T_EQ_STR(list[0].name, "alpha");
  T_EQ_STR(list[1].name, "mid.dle-1");
  T_EQ_STR(list[2].name, "zeta");
  store_bucket_list_free(list);

  /* Not empty: an object. */
  t_put(s, "alpha", "obj", "1", 1);
  T_RC(STORE_ERR_BUCKET_NOT_EMPTY, store_bucket_delete(s, "alpha"));
  T_OK(store_bucket_head(s, "alpha", &bi));
  T_OK(store_delete(s, "alpha", "obj"));
  T_OK(store_bucket_delete(s, "alpha"));
  T_RC(STORE_ERR_NO_BUCKET, store_bucket_head(s, "alpha", &bi));
  T_RC(STORE_ERR_NO_BUCKET, store_bucket_delete(s, "alpha"));

  /* Not empty: a multipart upload. */
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "zeta", "big", NULL, uid));
  T_RC(STORE_ERR_BUCKET_NOT_EMPTY, store_bucket_delete(s, "zeta"));
  T_OK(store_mpu_abort(s, "zeta", "big", uid));
  T_OK(store_bucket_delete(s, "zeta"));

  /* Recreate after delete. */
  T_OK(store_bucket_create(s, "zeta", NULL));

  /* Tags. */
  store_kv tags[3] = {{"env", "prod"}, {"team", "storage"}, {"empty", ""}};
  store_kv *got = NULL;
  size_t gn = 99;
  T_OK(store_bucket_tags_get(s, "zeta", &got, &gn));
  T_EQ_U64(gn, 0);
  store_kv_free(got, gn);
  T_OK(store_bucket_tags_set(s, "zeta", tags, 3));
  got = NULL;
  T_OK(store_bucket_tags_get(s, "zeta", &got, &gn));
  T_EQ_U64(gn, 3);
  T_EQ_STR(t_kv_find(got, gn, "env"), "prod");
  T_EQ_STR(t_kv_find(got, gn, "team"), "storage");
  T_EQ_STR(t_kv_find(got, gn, "empty"), "");
  store_kv_free(got, gn);
  /* Replace the set. */
  store_kv tags2[1] = {{"env", "dev"}};
  T_OK(store_bucket_tags_set(s, "zeta", tags2, 1));
  got = NULL;
  T_OK(store_bucket_tags_get(s, "zeta", &got, &gn));
  T_EQ_U64(gn, 1);
  T_EQ_STR(got[0].name, "env");
  T_EQ_STR(got[0].value, "dev");
  store_kv_free(got, gn);
  /* Remove all. */
  T_OK(store_bucket_tags_set(s, "zeta", NULL, 0));
  got = NULL;
  T_OK(store_bucket_tags_get(s, "zeta", &got, &gn));
  T_EQ_U64(gn, 0);
  store_kv_free(got, gn);
  T_RC(STORE_ERR_NO_BUCKET, store_bucket_tags_set(s, "nope", tags, 1));
  T_RC(STORE_ERR_NO_BUCKET, store_bucket_tags_get(s, "nope", &got, &gn));

  /* Stats count buckets. */
  store_stats st = t_stats(s);
  T_EQ_U64(st.buckets, 2);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void put_head_read_delete(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 3 * MiB + 12345;
  uint8_t *data = t_gen(n, 42);
  char md5[33];
  t_md5_hex(data, n, md5);

  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "dir/obj.bin", data, n, NULL, &out));
  T_EQ_STR(out.key, "dir/obj.bin");
  T_EQ_U64(out.size, n);
  T_EQ_STR(out.etag, md5);
  T_ASSERT(out.parts == 0);
  T_ASSERT(out.mtime_ns > 0);
  uint64_t ino = out.ino;
  store_object_info_free(&out);

  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "dir/obj.bin", NULL, &h));
  T_EQ_U64(h.size, n);
  T_EQ_STR(h.etag, md5);
  T_EQ_STR(h.key, "dir/obj.bin");
  T_EQ_U64(h.ino, ino);
  T_ASSERT(h.version_id[0] != 0);
  store_object_info_free(&h);
  /* The current version id names the current version. */
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "dir/obj.bin", NULL, &h));
  char vid[STORE_VERSION_ID_MAX];
  snprintf(vid, sizeof vid, "%s", h.version_id);
  store_object_info_free(&h);
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "dir/obj.bin", vid, &h));
  T_EQ_U64(h.size, n);
  store_object_info_free(&h);
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "dir/obj", NULL, &h));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "dir/", NULL, &h));

  T_CONTENT(s, "bkt", "dir/obj.bin", data, n);

  /* Ranges. */
  store_reader *r = NULL;
  store_object_info ri;
  memset(&ri, 0, sizeof ri);
  T_OK(store_reader_open(s, "bkt", "dir/obj.bin", NULL, &r, &ri));
  T_EQ_U64(store_reader_size(r), n);
  T_EQ_U64(ri.size, n);
  T_EQ_STR(ri.etag, md5);
  store_object_info_free(&ri);
  t_rng rng = t_rng_seed(7);
  uint8_t *buf = t_xmalloc(2 * MiB);
  for (int i = 0; i < 300; i++) {
    uint64_t off = t_rng_below(&rng, n + 10);
    size_t len = (size_t)t_rng_below(&rng, i % 3 == 0 ? 2 * MiB : 5000) + 1;
    size_t got = 0;
    T_OK(store_read(r, buf, len, off, &got));
    size_t expect = off >= n ? 0 : (n - off < len ? (size_t)(n - off) : len);
    if (got != expect)
      T_FAIL("read off %llu len %zu: got %zu, expected %zu",
             (unsigned long long)off, len, got, expect);
    if (got && memcmp(buf, data + off, got) != 0)
      T_FAIL("read off %llu len %zu: wrong bytes", (unsigned long long)off,
             len);
  }
  /* Boundaries: first byte, last byte, exactly to end, zero length. */
  size_t got = 0;
  T_OK(store_read(r, buf, 1, 0, &got));
  T_EQ_U64(got, 1);
  T_ASSERT(buf[0] == data[0]);
  T_OK(store_read(r, buf, 1, n - 1, &got));
  T_EQ_U64(got, 1);
  T_ASSERT(buf[0] == data[n - 1]);
  T_OK(store_read(r, buf, 100, n - 100, &got));
  T_EQ_U64(got, 100);
  T_ASSERT(memcmp(buf, data + n - 100, 100) == 0);
  T_OK(store_read(r, buf, 0, 10, &got));
  T_EQ_U64(got, 0);
  free(buf);

  /* A reader keeps the version current at open. */
  uint8_t *data2 = t_gen(n / 2, 43);
  t_put(s, "bkt", "dir/obj.bin", data2, n / 2);
  uint8_t *chk = t_xmalloc(4096);
  T_OK(store_read(r, chk, 4096, n - 4096, &got));
  T_EQ_U64(got, 4096);
  T_ASSERT(memcmp(chk, data + n - 4096, 4096) == 0);
  T_EQ_U64(store_reader_size(r), n);
  free(chk);
  store_reader_close(r);
  T_CONTENT(s, "bkt", "dir/obj.bin", data2, n / 2);

  /* Empty object. */
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "empty", "", 0, NULL, &out));
  T_EQ_U64(out.size, 0);
  T_EQ_STR(out.etag, "d41d8cd98f00b204e9800998ecf8427e");
  store_object_info_free(&out);
  T_CONTENT(s, "bkt", "empty", "", 0);

  /* Small object (may be inline). */
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "small", "hello world", 11, NULL, &out));
  T_EQ_STR(out.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
  store_object_info_free(&out);
  T_CONTENT(s, "bkt", "small", "hello world", 11);

  /* Streaming writer with odd piece sizes, and writer md5. */
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "streamed", &w));
  size_t off = 0, piece = 1;
  while (off < n) {
    size_t k = piece < n - off ? piece : n - off;
    T_OK(store_write(w, data + off, k));
    off += k;
    piece = piece * 3 + 7;
    if (piece > 700000) piece = 13;
  }
  T_EQ_U64(store_writer_size(w), n);
  uint8_t wmd5[16];
  T_OK(store_writer_md5(w, wmd5));
  char wmd5hex[33];
  t_tohex(wmd5, 16, wmd5hex);
  T_EQ_STR(wmd5hex, md5);
  /* Nothing visible before commit. */
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "streamed", NULL, &h));
  memset(&out, 0, sizeof out);
  T_OK(store_writer_commit(w, NULL, &out));
  T_EQ_STR(out.etag, md5);
  store_object_info_free(&out);
  T_CONTENT(s, "bkt", "streamed", data, n);

  /* Abort leaves nothing. */
  w = NULL;
  T_OK(store_writer_open(s, "bkt", "aborted", &w));
  T_OK(store_write(w, data, n));
  store_writer_abort(w);
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "aborted", NULL, &h));

  /* Stats. */
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, 4);
  T_EQ_U64(st.logical_bytes, n / 2 + 0 + 11 + n);

  /* Delete. */
  T_OK(store_delete(s, "bkt", "dir/obj.bin"));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "dir/obj.bin", NULL, &h));
  T_RC(STORE_ERR_NO_KEY, store_reader_open(s, "bkt", "dir/obj.bin", NULL, &r,
                                           NULL));
  T_RC(STORE_ERR_NO_KEY, store_delete(s, "bkt", "dir/obj.bin"));
  T_CONTENT(s, "bkt", "streamed", data, n);
  st = t_stats(s);
  T_EQ_U64(st.objects, 3);

  free(data);
  free(data2);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void metadata_roundtrip(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_kv meta[2] = {{"color", "blue"}, {"note", "h\xC3\xA9llo w\xC3\xB6rld"}};
  store_kv hdrs[2] = {{"Content-Encoding", "gzip"},
                      {"Cache-Control", "max-age=60"}};
  store_kv tags[2] = {{"k1", "v1"}, {"k2", ""}};
  store_posix px;
  memset(&px, 0, sizeof px);
  px.has_mode = px.has_uid = px.has_gid = px.has_mtime = 1;
  px.mode = 0100640;
  px.uid = 1234;
  px.gid = 5678;
  px.mtime_ns = 1700000000LL * 1000000000LL;
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.content_type = "text/plain; charset=utf-8";
  po.meta = meta;
  po.n_meta = 2;
  po.headers = hdrs;
  po.n_headers = 2;
  po.tags = tags;
  po.n_tags = 2;
  po.posix = &px;
  po.checksum_algo = STORE_CKSUM_SHA256;
  po.checksum = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
  uint8_t *data = t_gen(100000, 5);
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "m", data, 100000, &po, &out));
  uint64_t ino = out.ino;
  char etag[STORE_ETAG_MAX];
  snprintf(etag, sizeof etag, "%s", out.etag);
  store_object_info_free(&out);

  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "m", NULL, &h));
  T_EQ_STR(h.content_type, "text/plain; charset=utf-8");
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "color"), "blue");
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "note"), "h\xC3\xA9llo w\xC3\xB6rld");
  T_EQ_STR(t_kv_find(h.headers, h.n_headers, "Content-Encoding"), "gzip");
  T_EQ_STR(t_kv_find(h.headers, h.n_headers, "Cache-Control"), "max-age=60");
  T_EQ_U64(h.n_tags, 2);
  T_EQ_STR(t_kv_find(h.tags, h.n_tags, "k1"), "v1");
  T_EQ_STR(t_kv_find(h.tags, h.n_tags, "k2"), "");
  T_ASSERT(h.checksum_algo == STORE_CKSUM_SHA256);
  T_EQ_STR(h.checksum, "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=");
  T_ASSERT(h.checksum_composite == 0);
  /* POSIX attributes are stored as metadata under the s3fs names. */
  T_ASSERT(t_kv_find(h.meta, h.n_meta, "mode") != NULL);
  T_ASSERT(t_kv_find(h.meta, h.n_meta, "uid") != NULL);
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "uid"), "1234");
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "gid"), "5678");
  T_ASSERT(t_kv_find(h.meta, h.n_meta, "mtime") != NULL);
  T_ASSERT(t_kv_find(h.meta, h.n_meta, "atime") == NULL);
  store_posix gp;
  memset(&gp, 0, sizeof gp);
  store_posix_from_info(&h, &gp);
  T_ASSERT(gp.has_mode && gp.has_uid && gp.has_gid && gp.has_mtime);
  T_ASSERT(!gp.has_atime && !gp.has_ctime);
  T_EQ_U64(gp.mode, 0100640);
  T_EQ_U64(gp.uid, 1234);
  T_EQ_U64(gp.gid, 5678);
  T_EQ_U64(gp.mtime_ns, 1700000000LL * 1000000000LL);
  store_object_info_free(&h);

  /* The list entry carries the mode. */
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", NULL, &lr));
  T_EQ_U64(lr.n_entries, 1);
  T_EQ_U64(lr.entries[0].mode, 0100640);
  T_EQ_U64(lr.entries[0].ino, ino);
  T_EQ_STR(lr.entries[0].etag, etag);
  T_EQ_U64(lr.entries[0].size, 100000);
  store_list_result_free(&lr);

  /* Replace tags in place: same etag, same data, same meta. */
  store_kv ntags[1] = {{"only", "one"}};
  T_OK(store_object_tags_set(s, "bkt", "m", ntags, 1));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "m", NULL, &h));
  T_EQ_U64(h.n_tags, 1);
  T_EQ_STR(t_kv_find(h.tags, h.n_tags, "only"), "one");
  T_EQ_STR(h.etag, etag);
  T_EQ_U64(h.ino, ino);
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "color"), "blue");
  store_object_info_free(&h);
  T_OK(store_object_tags_set(s, "bkt", "m", NULL, 0));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "m", NULL, &h));
  T_EQ_U64(h.n_tags, 0);
  store_object_info_free(&h);

  /* Replace metadata in place. */
  store_kv nmeta[1] = {{"shape", "round"}};
  T_OK(store_object_meta_set(s, "bkt", "m", nmeta, 1));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "m", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "shape"), "round");
  T_ASSERT(t_kv_find(h.meta, h.n_meta, "color") == NULL);
  T_EQ_STR(h.etag, etag);
  T_EQ_U64(h.ino, ino);
  store_object_info_free(&h);

  /* Replace posix attributes in place. */
  store_posix np;
  memset(&np, 0, sizeof np);
  np.has_mode = np.has_mtime = np.has_uid = 1;
  np.mode = 0100755;
  np.uid = 42;
  np.mtime_ns = 1600000000LL * 1000000000LL;
  T_OK(store_object_posix_set(s, "bkt", "m", &np));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "m", NULL, &h));
  memset(&gp, 0, sizeof gp);
  store_posix_from_info(&h, &gp);
  T_ASSERT(gp.has_mode && gp.has_mtime && gp.has_uid);
  T_EQ_U64(gp.mode, 0100755);
  T_EQ_U64(gp.uid, 42);
  T_EQ_U64(gp.mtime_ns, 1600000000LL * 1000000000LL);
  T_EQ_STR(h.etag, etag);
  T_EQ_U64(h.ino, ino);
  store_object_info_free(&h);

  T_RC(STORE_ERR_NO_KEY, store_object_tags_set(s, "bkt", "nokey", ntags, 1));
  T_RC(STORE_ERR_NO_KEY, store_object_meta_set(s, "bkt", "nokey", nmeta, 1));
  T_RC(STORE_ERR_NO_KEY, store_object_posix_set(s, "bkt", "nokey", &np));
  T_CONTENT(s, "bkt", "m", data, 100000);

  /* Too many tags. */
  store_kv many[STORE_TAGS_MAX + 1];
  char names[STORE_TAGS_MAX + 1][8];
  for (int i = 0; i <= STORE_TAGS_MAX; i++) {
    snprintf(names[i], sizeof names[i], "t%d", i);
    many[i].name = names[i];
    many[i].value = "v";
  }
  T_OK(store_object_tags_set(s, "bkt", "m", many, STORE_TAGS_MAX));
  T_RC(STORE_ERR_TOO_LARGE,
       store_object_tags_set(s, "bkt", "m", many, STORE_TAGS_MAX + 1));

  free(data);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void copy_catalog_only(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "src", NULL));
  T_OK(store_bucket_create(s, "dst", NULL));
  const size_t n = 6 * MiB + 3;
  uint8_t *data = t_gen(n, 99);
  store_kv meta[1] = {{"origin", "first"}};
  store_kv tags[1] = {{"t", "1"}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.meta = meta;
  po.n_meta = 1;
  po.tags = tags;
  po.n_tags = 1;
  po.content_type = "application/x-test";
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "src", "a", data, n, &po, &out));
  char etag[STORE_ETAG_MAX];
  snprintf(etag, sizeof etag, "%s", out.etag);
  uint64_t src_ino = out.ino;
  store_object_info_free(&out);

  store_stats before = t_stats(s);
  t_du_acc du_before = t_du(t_path("store/chunks"));

  memset(&out, 0, sizeof out);
  T_OK(store_copy(s, "src", "a", "dst", "copy1", NULL, &out));
  T_EQ_STR(out.etag, etag);
  T_EQ_U64(out.size, n);
  T_ASSERT(out.ino != src_ino);
  store_object_info_free(&out);
  T_OK(store_copy(s, "src", "a", "src", "copy2", NULL, NULL));

  store_stats after = t_stats(s);
  T_EQ_U64(after.physical_bytes, before.physical_bytes);
  T_EQ_U64(after.logical_bytes, before.logical_bytes + 2 * n);
  T_EQ_U64(after.objects, before.objects + 2);
  t_du_acc du_after = t_du(t_path("store/chunks"));
  T_EQ_U64(du_after.bytes_size, du_before.bytes_size);

  T_CONTENT(s, "dst", "copy1", data, n);
  T_CONTENT(s, "src", "copy2", data, n);
  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "dst", "copy1", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "origin"), "first");
  T_EQ_STR(t_kv_find(h.tags, h.n_tags, "t"), "1");
  T_EQ_STR(h.content_type, "application/x-test");
  store_object_info_free(&h);

  /* Replace metadata and tags. */
  store_kv meta2[1] = {{"origin", "second"}};
  store_kv tags2[1] = {{"t", "2"}};
  store_put_opts po2;
  memset(&po2, 0, sizeof po2);
  po2.meta = meta2;
  po2.n_meta = 1;
  po2.tags = tags2;
  po2.n_tags = 1;
  po2.content_type = "text/x-other";
  store_copy_opts co;
  memset(&co, 0, sizeof co);
  co.replace_meta = 1;
  co.replace_tags = 1;
  co.put = &po2;
  T_OK(store_copy(s, "src", "a", "dst", "copy3", &co, NULL));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "dst", "copy3", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "origin"), "second");
  T_EQ_STR(t_kv_find(h.tags, h.n_tags, "t"), "2");
  T_EQ_STR(h.content_type, "text/x-other");
  T_EQ_STR(h.etag, etag);
  store_object_info_free(&h);

  /* Copy onto itself with replaced metadata (S3's metadata update). */
  T_OK(store_copy(s, "src", "a", "src", "a", &co, NULL));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "src", "a", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "origin"), "second");
  store_object_info_free(&h);
  T_CONTENT(s, "src", "a", data, n);

  /* Source conditions. */
  memset(&co, 0, sizeof co);
  co.src_if_match = "0123456789abcdef0123456789abcdef";
  T_RC(STORE_ERR_PRECONDITION, store_copy(s, "src", "a", "dst", "c4", &co,
                                          NULL));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "dst", "c4", NULL, &h));
  co.src_if_match = etag;
  T_OK(store_copy(s, "src", "a", "dst", "c4", &co, NULL));

  /* Destination conditions. */
  store_put_opts po3;
  memset(&po3, 0, sizeof po3);
  po3.if_none_match_star = 1;
  memset(&co, 0, sizeof co);
  co.put = &po3;
  T_RC(STORE_ERR_PRECONDITION, store_copy(s, "src", "a", "dst", "c4", &co,
                                          NULL));
  T_OK(store_copy(s, "src", "a", "dst", "c5", &co, NULL));

  T_RC(STORE_ERR_NO_KEY, store_copy(s, "src", "nokey", "dst", "x", NULL,
                                    NULL));
  T_RC(STORE_ERR_NO_BUCKET, store_copy(s, "nob", "a", "dst", "x", NULL,
                                       NULL));
  T_RC(STORE_ERR_NO_BUCKET, store_copy(s, "src", "a", "nob", "x", NULL,
                                       NULL));

  after = t_stats(s);
  T_EQ_U64(after.physical_bytes, before.physical_bytes);

  /* Deleting the source keeps the copies intact (even after GC). */
  T_OK(store_delete(s, "src", "a"));
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "dst", "copy1", data, n);
  T_CONTENT(s, "dst", "c5", data, n);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(data);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void rename_one(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t *d1 = t_gen(2 * MiB, 1), *d2 = t_gen(1000, 2);
  store_object_info out;
  memset(&out, 0, sizeof out);
  store_kv meta[1] = {{"m", "1"}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.meta = meta;
  po.n_meta = 1;
  T_OK(store_put(s, "bkt", "one", d1, 2 * MiB, &po, &out));
  uint64_t ino = out.ino;
  char etag[STORE_ETAG_MAX];
  snprintf(etag, sizeof etag, "%s", out.etag);
  store_object_info_free(&out);
  t_put(s, "bkt", "two", d2, 1000);

  T_OK(store_rename(s, "bkt", "one", "uno", 0));
  store_object_info h;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "one", NULL, &h));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "uno", NULL, &h));
  T_EQ_U64(h.ino, ino);
  T_EQ_STR(h.etag, etag);
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "m"), "1");
  store_object_info_free(&h);
  T_CONTENT(s, "bkt", "uno", d1, 2 * MiB);

  /* noreplace onto an existing key. */
  T_RC(STORE_ERR_EXISTS, store_rename(s, "bkt", "uno", "two", 1));
  T_CONTENT(s, "bkt", "uno", d1, 2 * MiB);
  T_CONTENT(s, "bkt", "two", d2, 1000);
  /* replace. */
  T_OK(store_rename(s, "bkt", "uno", "two", 0));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "uno", NULL, &h));
  T_CONTENT(s, "bkt", "two", d1, 2 * MiB);
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "two", NULL, &h));
  T_EQ_U64(h.ino, ino);
  store_object_info_free(&h);

  T_RC(STORE_ERR_NO_KEY, store_rename(s, "bkt", "missing", "x", 0));
  T_RC(STORE_ERR_NO_BUCKET, store_rename(s, "nob", "two", "x", 0));
  /* Rename into a deeper path. */
  T_OK(store_rename(s, "bkt", "two", "a/b/c/two", 1));
  T_CONTENT(s, "bkt", "a/b/c/two", d1, 2 * MiB);
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, 1);
  free(d1);
  free(d2);
  store_close(s);
}

static void list_all_keys(store *s, const char *bucket, const char *prefix,
                          char ***keys, size_t *n) {
  store_list_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.prefix = prefix;
  *keys = NULL;
  *n = 0;
  char *marker = NULL;
  for (;;) {
    lo.start_after = marker;
    store_list_result lr;
    memset(&lr, 0, sizeof lr);
    T_OK(store_list(s, bucket, &lo, &lr));
    *keys = realloc(*keys, (*n + lr.n_entries + 1) * sizeof(char *));
    for (size_t i = 0; i < lr.n_entries; i++)
      (*keys)[(*n)++] = strdup(lr.entries[i].key);
    free(marker);
    marker = NULL;
    if (lr.truncated) marker = strdup(lr.next_marker);
    store_list_result_free(&lr);
    if (!marker) break;
  }
}

static void free_keys(char **k, size_t n) {
  for (size_t i = 0; i < n; i++) free(k[i]);
  free(k);
}

static void rename_prefix(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t *d = t_gen(300000, 3);
  t_put(s, "bkt", "d1/", "", 0);
  t_put(s, "bkt", "d1/a", d, 300000);
  t_put(s, "bkt", "d1/b/c", d, 1000);
  t_put(s, "bkt", "d10/x", d, 10);
  t_put(s, "bkt", "d1", d, 5);
  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "d1/a", NULL, &h));
  uint64_t ino_a = h.ino;
  store_object_info_free(&h);

  uint64_t renamed = 0;
  T_OK(store_rename_prefix(s, "bkt", "d1/", "d2/", &renamed));
  T_EQ_U64(renamed, 3);
  char **keys;
  size_t n;
  list_all_keys(s, "bkt", NULL, &keys, &n);
  const char *want[] = {"d1", "d10/x", "d2/", "d2/a", "d2/b/c"};
  T_EQ_U64(n, 5);
  for (size_t i = 0; i < n; i++) T_EQ_STR(keys[i], want[i]);
  free_keys(keys, n);
  T_CONTENT(s, "bkt", "d2/a", d, 300000);
  T_CONTENT(s, "bkt", "d2/b/c", d, 1000);
  T_CONTENT(s, "bkt", "d1", d, 5);
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "d2/a", NULL, &h));
  T_EQ_U64(h.ino, ino_a);
  store_object_info_free(&h);

  /* Target holds a key: EXISTS, and nothing moved. */
  t_put(s, "bkt", "d3/z", d, 7);
  renamed = 99;
  T_RC(STORE_ERR_EXISTS, store_rename_prefix(s, "bkt", "d2/", "d3/", &renamed));
  list_all_keys(s, "bkt", NULL, &keys, &n);
  const char *want2[] = {"d1", "d10/x", "d2/", "d2/a", "d2/b/c", "d3/z"};
  T_EQ_U64(n, 6);
  for (size_t i = 0; i < n; i++) T_EQ_STR(keys[i], want2[i]);
  free_keys(keys, n);

  /* Target holds only its marker: allowed. */
  t_put(s, "bkt", "d4/", "", 0);
  T_OK(store_rename_prefix(s, "bkt", "d2/", "d4/", &renamed));
  T_EQ_U64(renamed, 3);
  list_all_keys(s, "bkt", NULL, &keys, &n);
  const char *want3[] = {"d1", "d10/x", "d3/z", "d4/", "d4/a", "d4/b/c"};
  T_EQ_U64(n, 6);
  for (size_t i = 0; i < n; i++) T_EQ_STR(keys[i], want3[i]);
  free_keys(keys, n);
  T_CONTENT(s, "bkt", "d4/a", d, 300000);

  /* A large directory moves in one go. */
  char k[64];
  for (int i = 0; i < 500; i++) {
    snprintf(k, sizeof k, "big/%03d/f%d", i % 17, i);
    t_put(s, "bkt", k, d + i, (size_t)(i * 7));
  }
  T_OK(store_rename_prefix(s, "bkt", "big/", "moved/big/", &renamed));
  T_EQ_U64(renamed, 500);
  list_all_keys(s, "bkt", "big/", &keys, &n);
  T_EQ_U64(n, 0);
  free_keys(keys, n);
  list_all_keys(s, "bkt", "moved/big/", &keys, &n);
  T_EQ_U64(n, 500);
  free_keys(keys, n);
  for (int i = 0; i < 500; i += 37) {
    snprintf(k, sizeof k, "moved/big/%03d/f%d", i % 17, i);
    T_CONTENT(s, "bkt", k, d + i, (size_t)(i * 7));
  }

  /* Nothing under the source: renames nothing. */
  renamed = 99;
  int rc = store_rename_prefix(s, "bkt", "nothing/", "else/", &renamed);
  T_ASSERT(rc == STORE_OK || rc == STORE_ERR_NO_KEY);
  if (rc == STORE_OK) T_EQ_U64(renamed, 0);
  free(d);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Edits: random writes and truncation against an in-memory reference. */
static void check_writer(store_writer *w, const uint8_t *ref, size_t size,
                         t_rng *rng) {
  T_EQ_U64(store_writer_size(w), size);
  uint8_t *buf = t_xmalloc(300000);
  for (int i = 0; i < 8; i++) {
    uint64_t off = t_rng_below(rng, size + 100);
    size_t len = (size_t)t_rng_below(rng, 300000) + 1;
    size_t got = 0;
    T_OK(store_pread_writer(w, buf, len, off, &got));
    size_t expect = off >= size ? 0 : (size - off < len ? size - off : len);
    if (got != expect)
      T_FAIL("pread_writer off %llu len %zu: got %zu expected %zu",
             (unsigned long long)off, len, got, expect);
    if (got && memcmp(buf, ref + off, got) != 0)
      T_FAIL("pread_writer off %llu len %zu: wrong bytes",
             (unsigned long long)off, len);
  }
  free(buf);
}

static void edit_random_writes(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 20 * MiB;
  const size_t cap = 26 * MiB;
  uint8_t *ref = t_xmalloc(cap);
  memset(ref, 0, cap);
  t_fill(ref, n, 2020);
  store_kv meta[1] = {{"keep", "me"}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.meta = meta;
  po.n_meta = 1;
  po.content_type = "application/x-edit";
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "big", ref, n, &po, &out));
  uint64_t ino = out.ino;
  store_object_info_free(&out);
  store_stats st0 = t_stats(s);

  size_t size = n;
  t_rng rng = t_rng_seed(77);
  uint8_t *piece = t_xmalloc(256 * KiB);
  for (int round = 0; round < 3; round++) {
    store_writer *w = NULL;
    T_OK(store_writer_open_edit(s, "bkt", "big", &w));
    T_EQ_U64(store_writer_size(w), size);
    check_writer(w, ref, size, &rng);
    for (int i = 0; i < 120; i++) {
      uint64_t op = t_rng_below(&rng, 100);
      if (op < 4 && round > 0) {
        /* truncate: shrink or grow (grown part reads as zeros) */
        size_t ns = (size_t)t_rng_below(&rng, cap - 1 * MiB);
        if (ns > size) memset(ref + size, 0, ns - size);
        else memset(ref + ns, 0, size - ns);
        T_OK(store_writer_truncate(w, ns));
        size = ns;
      } else {
        size_t len = (size_t)t_rng_below(&rng, 256 * KiB) + 1;
        if (op % 5 == 0) len = (size_t)t_rng_below(&rng, 16) + 1;
        uint64_t off = t_rng_below(&rng, size + 1 * MiB);
        if (off + len > cap) off = cap - len;
        t_fill(piece, len, t_rng_next(&rng));
        T_OK(store_pwrite(w, piece, len, off));
        if (off > size) memset(ref + size, 0, (size_t)off - size);
        memcpy(ref + off, piece, len);
        if (off + len > size) size = (size_t)(off + len);
      }
      if (i % 20 == 0) check_writer(w, ref, size, &rng);
    }
    check_writer(w, ref, size, &rng);
    T_ASSERT(store_writer_md5(w, (uint8_t[16]){0}) == STORE_ERR_INVALID);
    memset(&out, 0, sizeof out);
    T_OK(store_writer_commit(w, NULL, &out));
    T_EQ_U64(out.size, size);
    T_EQ_U64(out.ino, ino);
    store_object_info_free(&out);
    T_CONTENT(s, "bkt", "big", ref, size);
  }
  /* Metadata kept by edits. */
  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "big", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "keep"), "me");
  T_EQ_STR(h.content_type, "application/x-edit");
  T_EQ_U64(h.ino, ino);
  T_EQ_U64(h.size, size);
  store_object_info_free(&h);

  /* A small in-place edit costs chunks near the write, not the object. */
  memset(ref, 0, cap);
  t_fill(ref, n, 2121);
  t_put(s, "bkt", "big2", ref, n);
  T_OK(store_gc(s, NULL, NULL, NULL));
  st0 = t_stats(s);
  T_EQ_U64(st0.unreferenced_bytes, 0);
  t_du_acc du0 = t_du(t_path("store/chunks"));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "big2", NULL, &h));
  char etag_before[STORE_ETAG_MAX];
  snprintf(etag_before, sizeof etag_before, "%s", h.etag);
  store_object_info_free(&h);
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "big2", &w));
  T_OK(store_pwrite(w, "XYZ", 3, 10 * MiB + 5));
  memcpy(ref + 10 * MiB + 5, "XYZ", 3);
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "big2", ref, n);
  store_stats st1 = t_stats(s);
  t_du_acc du1 = t_du(t_path("store/chunks"));
  /* Only the chunks around the write were rewritten: what the edit
   * replaced (now unreferenced) and what it added on disk are far below
   * the object's 20 MiB. */
  if (st1.unreferenced_bytes >= 8 * MiB)
    T_FAIL("3-byte edit of a 20 MiB object left %llu unreferenced bytes",
           (unsigned long long)st1.unreferenced_bytes);
  if (du1.bytes_size >= du0.bytes_size + 8 * MiB)
    T_FAIL("3-byte edit of a 20 MiB object grew chunks/ by %llu bytes",
           (unsigned long long)(du1.bytes_size - du0.bytes_size));
  T_ASSERT(st1.physical_bytes < st0.physical_bytes + 8 * MiB);
  /* Changed content, changed etag (if-match must see the edit). */
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "big2", NULL, &h));
  T_ASSERT(strcmp(h.etag, etag_before) != 0);
  store_object_info_free(&h);

  /* Abort of an edit leaves the object as it was. */
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "big2", &w));
  T_OK(store_pwrite(w, "garbage", 7, 0));
  T_OK(store_writer_truncate(w, 5));
  store_writer_abort(w);
  T_CONTENT(s, "bkt", "big2", ref, n);

  free(piece);
  free(ref);
  store_close(s);
}

static void edit_sparse(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  /* Edit of an absent key makes a new object; the hole reads as zeros. */
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "sparse", &w));
  T_EQ_U64(store_writer_size(w), 0);
  const uint64_t off = 5 * MiB + 3;
  T_OK(store_pwrite(w, "hello", 5, off));
  T_EQ_U64(store_writer_size(w), off + 5);
  uint8_t buf[64];
  size_t got = 0;
  T_OK(store_pread_writer(w, buf, 10, off - 5, &got));
  T_EQ_U64(got, 10);
  T_ASSERT(memcmp(buf, "\0\0\0\0\0hello", 10) == 0);
  /* Grow by truncate: zeros. */
  T_OK(store_writer_truncate(w, off + 5 + 1 * MiB));
  T_OK(store_writer_commit(w, NULL, NULL));

  size_t total = (size_t)(off + 5 + 1 * MiB);
  uint8_t *ref = t_xmalloc(total);
  memset(ref, 0, total);
  memcpy(ref + off, "hello", 5);
  T_CONTENT(s, "bkt", "sparse", ref, total);

  /* Shrink into the data, then grow back: the cut bytes are zeros. */
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "sparse", &w));
  T_OK(store_writer_truncate(w, off + 2));
  T_OK(store_writer_truncate(w, off + 10));
  T_OK(store_pwrite(w, "!", 1, off + 20));
  T_OK(store_writer_commit(w, NULL, NULL));
  memset(ref + off + 2, 0, 3);
  ref[off + 20] = '!';
  T_CONTENT(s, "bkt", "sparse", ref, (size_t)(off + 21));

  /* Truncate to zero. */
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "sparse", &w));
  T_OK(store_writer_truncate(w, 0));
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "sparse", "", 0);

  /* A plain writer with pwrite: holes are zeros, md5 is then INVALID. */
  w = NULL;
  T_OK(store_writer_open(s, "bkt", "pw", &w));
  T_OK(store_write(w, "abc", 3));
  uint8_t md5[16];
  T_OK(store_writer_md5(w, md5));
  T_OK(store_pwrite(w, "Z", 1, 100));
  T_RC(STORE_ERR_INVALID, store_writer_md5(w, md5));
  T_OK(store_pwrite(w, "B", 1, 1));
  T_OK(store_writer_commit(w, NULL, NULL));
  uint8_t exp[101];
  memset(exp, 0, sizeof exp);
  memcpy(exp, "aBc", 3);
  exp[100] = 'Z';
  T_CONTENT(s, "bkt", "pw", exp, 101);
  free(ref);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void conditional_commits(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.if_none_match_star = 1;
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "k", "first", 5, &po, &out));
  char etag1[STORE_ETAG_MAX];
  snprintf(etag1, sizeof etag1, "%s", out.etag);
  store_object_info_free(&out);
  T_RC(STORE_ERR_PRECONDITION, store_put(s, "bkt", "k", "second", 6, &po,
                                         NULL));
  T_CONTENT(s, "bkt", "k", "first", 5);

  /* Through a streaming writer, with a large body. */
  uint8_t *big = t_gen(3 * MiB, 8);
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "k", &w));
  T_OK(store_write(w, big, 3 * MiB));
  T_RC(STORE_ERR_PRECONDITION, store_writer_commit(w, &po, NULL));
  T_CONTENT(s, "bkt", "k", "first", 5);

  /* if_match */
  memset(&po, 0, sizeof po);
  po.if_match = "ffffffffffffffffffffffffffffffff";
  T_RC(STORE_ERR_PRECONDITION, store_put(s, "bkt", "k", "third", 5, &po,
                                         NULL));
  T_CONTENT(s, "bkt", "k", "first", 5);
  po.if_match = etag1;
  memset(&out, 0, sizeof out);
  T_OK(store_put(s, "bkt", "k", big, 3 * MiB, &po, &out));
  char etag2[STORE_ETAG_MAX];
  snprintf(etag2, sizeof etag2, "%s", out.etag);
  store_object_info_free(&out);
  T_CONTENT(s, "bkt", "k", big, 3 * MiB);
  /* etag1 is stale now. */
  T_RC(STORE_ERR_PRECONDITION, store_put(s, "bkt", "k", "x", 1, &po, NULL));
  /* Edit writer with if_match. */
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "k", &w));
  T_OK(store_pwrite(w, "EDIT", 4, 0));
  po.if_match = etag1;
  T_RC(STORE_ERR_PRECONDITION, store_writer_commit(w, &po, NULL));
  T_CONTENT(s, "bkt", "k", big, 3 * MiB);
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "k", &w));
  T_OK(store_pwrite(w, "EDIT", 4, 0));
  po.if_match = etag2;
  T_OK(store_writer_commit(w, &po, NULL));
  memcpy(big, "EDIT", 4);
  T_CONTENT(s, "bkt", "k", big, 3 * MiB);

  /* The writer's view was taken before a concurrent overwrite: the
   * condition is checked at commit time, against the current etag. */
  w = NULL;
  T_OK(store_writer_open(s, "bkt", "race", &w));
  T_OK(store_write(w, "mine", 4));
  t_put(s, "bkt", "race", "theirs", 6);
  memset(&po, 0, sizeof po);
  po.if_none_match_star = 1;
  T_RC(STORE_ERR_PRECONDITION, store_writer_commit(w, &po, NULL));
  T_CONTENT(s, "bkt", "race", "theirs", 6);

  /* GC afterwards leaves everything consistent. */
  T_OK(store_gc(s, NULL, NULL, NULL));
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(big);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void list_basic(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const char *keys[] = {"a", "a/b", "a/c/d", "b", "c/", "c/x"};
  for (size_t i = 0; i < 6; i++) t_put(s, "bkt", keys[i], keys[i], strlen(keys[i]));
  store_list_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.delimiter = "/";
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_entries, 2);
  T_EQ_STR(lr.entries[0].key, "a");
  T_EQ_STR(lr.entries[1].key, "b");
  T_EQ_U64(lr.entries[1].size, 1);
  T_EQ_U64(lr.n_prefixes, 2);
  T_EQ_STR(lr.prefixes[0], "a/");
  T_EQ_STR(lr.prefixes[1], "c/");
  T_ASSERT(!lr.truncated);
  store_list_result_free(&lr);

  lo.prefix = "a/";
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_entries, 1);
  T_EQ_STR(lr.entries[0].key, "a/b");
  T_EQ_U64(lr.n_prefixes, 1);
  T_EQ_STR(lr.prefixes[0], "a/c/");
  store_list_result_free(&lr);

  /* The marker object c/ lists as itself under prefix c/. */
  lo.prefix = "c/";
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_entries, 2);
  T_EQ_STR(lr.entries[0].key, "c/");
  T_EQ_STR(lr.entries[1].key, "c/x");
  T_EQ_U64(lr.n_prefixes, 0);
  store_list_result_free(&lr);

  /* start_after beyond every key. */
  memset(&lo, 0, sizeof lo);
  lo.start_after = "zzz";
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_entries + lr.n_prefixes, 0);
  T_ASSERT(!lr.truncated);
  store_list_result_free(&lr);
  T_RC(STORE_ERR_NO_BUCKET, store_list(s, "nob", NULL, &lr));
  /* Empty bucket. */
  T_OK(store_bucket_create(s, "empty", NULL));
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "empty", NULL, &lr));
  T_EQ_U64(lr.n_entries, 0);
  T_EQ_U64(lr.n_prefixes, 0);
  T_ASSERT(!lr.truncated);
  store_list_result_free(&lr);
  store_close(s);
}

/* ------------------------------------------------------------------ */
static void stats_and_gc_basic(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t *d = t_gen(4 * MiB, 11);
  t_put(s, "bkt", "x", d, 4 * MiB);
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, 1);
  T_EQ_U64(st.logical_bytes, 4 * MiB);
  T_ASSERT(st.physical_bytes >= 4 * MiB);
  T_ASSERT(st.chunks >= 1);
  T_EQ_U64(st.unreferenced_bytes, 0);
  T_OK(store_delete(s, "bkt", "x"));
  st = t_stats(s);
  T_EQ_U64(st.objects, 0);
  T_EQ_U64(st.logical_bytes, 0);
  T_ASSERT(st.unreferenced_bytes >= 4 * MiB);
  store_gc_report gr;
  memset(&gr, 0, sizeof gr);
  T_OK(store_gc(s, NULL, NULL, &gr));
  T_ASSERT(gr.chunks_deleted >= 1);
  T_ASSERT(gr.bytes_freed >= 4 * MiB);
  st = t_stats(s);
  T_EQ_U64(st.unreferenced_bytes, 0);
  T_EQ_U64(st.unreferenced_chunks, 0);
  T_EQ_U64(st.physical_bytes, 0);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_ASSERT(fr.catalog_ok);
  T_EQ_U64(fr.chunks_corrupt, 0);
  T_EQ_U64(fr.chunks_missing, 0);
  T_EQ_U64(fr.objects_damaged, 0);
  free(d);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Reader of a version that is overwritten and garbage-collected: it
 * returns the old bytes or fails (docs/durability.md: NO_KEY), never other
 * bytes. */
static void reader_after_overwrite_and_gc(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 5 * MiB + 11;
  uint8_t *v1 = t_gen(n, 1001), *v2 = t_gen(n, 1002);
  t_put(s, "bkt", "k", v1, n);
  store_reader *r = NULL;
  T_OK(store_reader_open(s, "bkt", "k", NULL, &r, NULL));
  uint8_t *buf = t_xmalloc(n);
  size_t got = 0;
  T_OK(store_read(r, buf, 1000, 0, &got)); /* first chunk read already */
  T_EQ_U64(got, 1000);
  t_put(s, "bkt", "k", v2, n);
  T_OK(store_gc(s, NULL, NULL, NULL));
  uint64_t off = 0;
  int rc = STORE_OK;
  while (off < n) {
    got = 0;
    rc = store_read(r, buf + off, 700000, off, &got);
    if (rc != STORE_OK) break;
    if (got == 0) break;
    off += got;
  }
  if (rc == STORE_OK) {
    T_EQ_U64(off, n);
    if (memcmp(buf, v1, n) != 0)
      T_FAIL("reader of an overwritten, collected version returned bytes "
             "that are not the version it opened");
  } else if (rc != STORE_ERR_NO_KEY) {
    /* docs/durability.md: "later reads fail with STORE_ERR_NO_KEY" */
    T_FAIL("reader of a collected version: rc %d (%s: %s), expected NO_KEY",
           rc, store_strerror(rc), store_errmsg());
  }
  store_reader_close(r);
  T_CONTENT(s, "bkt", "k", v2, n);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(buf);
  free(v1);
  free(v2);
  store_close(s);
}

/* An edit that leaves holes: the zeros cost no chunk (docs/chunking.md). */
static void sparse_costs_nothing(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "sparse", &w));
  T_OK(store_writer_truncate(w, 64ull * MiB));
  T_OK(store_pwrite(w, "tail", 4, 64ull * MiB));
  T_OK(store_pwrite(w, "head", 4, 0));
  T_OK(store_writer_commit(w, NULL, NULL));
  store_stats st = t_stats(s);
  T_EQ_U64(st.logical_bytes, 64ull * MiB + 4);
  if (st.physical_bytes > 2 * MiB)
    T_FAIL("a 64 MiB sparse file with 8 bytes of data uses %llu physical "
           "bytes",
           (unsigned long long)st.physical_bytes);
  store_reader *r = NULL;
  T_OK(store_reader_open(s, "bkt", "sparse", NULL, &r, NULL));
  uint8_t buf[16];
  size_t got;
  T_OK(store_read(r, buf, 8, 0, &got));
  T_ASSERT(got == 8 && memcmp(buf, "head\0\0\0\0", 8) == 0);
  T_OK(store_read(r, buf, 8, 32ull * MiB, &got));
  T_ASSERT(got == 8 && memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0);
  T_OK(store_read(r, buf, 16, 64ull * MiB - 4, &got));
  T_ASSERT(got == 8 && memcmp(buf, "\0\0\0\0tail", 8) == 0);
  store_reader_close(r);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* The change feed. */
typedef struct feed {
  store_change *c;
  size_t n;
} feed;

static feed feed_since(store *s, uint64_t after) {
  feed f = {NULL, 0};
  int lost = -1;
  T_OK(store_changes_since(s, after, 0, &f.c, &f.n, &lost));
  T_ASSERT(lost == 0);
  uint64_t prev = after;
  for (size_t i = 0; i < f.n; i++) {
    if (f.c[i].seq <= prev)
      T_FAIL("change feed not ascending: seq %llu after %llu",
             (unsigned long long)f.c[i].seq, (unsigned long long)prev);
    prev = f.c[i].seq;
  }
  return f;
}

/* Is bucket/key covered by a record of one of the kinds in `kinds`? */
static int feed_covers(const feed *f, const char *bucket, const char *key,
                       int kind) {
  for (size_t i = 0; i < f->n; i++) {
    const store_change *c = &f->c[i];
    if (strcmp(c->bucket, bucket) != 0) continue;
    if (c->kind == STORE_CHANGE_PREFIX && c->key &&
        strncmp(key, c->key, strlen(c->key)) == 0)
      return 1;
    if (c->kind == kind && c->key && strcmp(c->key, key) == 0) return 1;
    if (kind == STORE_CHANGE_BUCKET && c->kind == kind) return 1;
  }
  return 0;
}

#define T_COVERED(f, b, k, kind)                                           \
  do {                                                                     \
    if (!feed_covers(&(f), b, k, kind))                                    \
      T_FAIL("change feed has no %s record for %s/%s (%zu records)",       \
             #kind, b, k, (f).n);                                          \
  } while (0)

static uint64_t feed_head(store *s) {
  uint64_t h = 99999999;
  T_OK(store_changes_head(s, &h));
  return h;
}

static void changes_feed(void) {
  store *s = t_new_store();
  uint64_t h0 = feed_head(s);
  T_OK(store_bucket_create(s, "bkt", NULL));
  feed f = feed_since(s, h0);
  T_ASSERT(f.n >= 1);
  T_COVERED(f, "bkt", "", STORE_CHANGE_BUCKET);
  uint64_t h1 = feed_head(s);
  T_EQ_U64(h1, f.c[f.n - 1].seq);
  store_changes_free(f.c, f.n);

  t_put(s, "bkt", "a/one", "1", 1);
  t_put(s, "bkt", "a/two", "2", 1);
  store_kv tags[1] = {{"t", "v"}};
  T_OK(store_object_tags_set(s, "bkt", "a/one", tags, 1));
  f = feed_since(s, h1);
  T_ASSERT(f.n >= 3);
  T_COVERED(f, "bkt", "a/one", STORE_CHANGE_PUT);
  T_COVERED(f, "bkt", "a/two", STORE_CHANGE_PUT);
  /* tags_set: the last record concerns a/one */
  T_ASSERT(f.c[f.n - 1].kind == STORE_CHANGE_PUT ||
           f.c[f.n - 1].kind == STORE_CHANGE_PREFIX);
  store_changes_free(f.c, f.n);

  uint64_t h2 = feed_head(s);
  T_OK(store_delete(s, "bkt", "a/two"));
  f = feed_since(s, h2);
  T_COVERED(f, "bkt", "a/two", STORE_CHANGE_DELETE);
  store_changes_free(f.c, f.n);

  uint64_t h3 = feed_head(s);
  T_OK(store_rename(s, "bkt", "a/one", "b/one", 0));
  f = feed_since(s, h3);
  T_COVERED(f, "bkt", "a/one", STORE_CHANGE_DELETE);
  T_COVERED(f, "bkt", "b/one", STORE_CHANGE_PUT);
  store_changes_free(f.c, f.n);

  uint64_t h4 = feed_head(s);
  t_put(s, "bkt", "b/two", "2", 1);
  uint64_t h5 = feed_head(s);
  T_OK(store_rename_prefix(s, "bkt", "b/", "c/", NULL));
  f = feed_since(s, h5);
  T_COVERED(f, "bkt", "b/one", STORE_CHANGE_DELETE);
  T_COVERED(f, "bkt", "b/two", STORE_CHANGE_DELETE);
  T_COVERED(f, "bkt", "c/one", STORE_CHANGE_PUT);
  T_COVERED(f, "bkt", "c/two", STORE_CHANGE_PUT);
  store_changes_free(f.c, f.n);

  uint64_t h6 = feed_head(s);
  T_OK(store_copy(s, "bkt", "c/one", "bkt", "d/copy", NULL, NULL));
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "c/two", &w));
  T_OK(store_pwrite(w, "X", 1, 5));
  T_OK(store_writer_commit(w, NULL, NULL));
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "e/mp", NULL, uid));
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_writer_open_part(s, "bkt", "e/mp", uid, 1, &w));
  T_OK(store_write(w, "part", 4));
  T_OK(store_writer_commit(w, NULL, &out));
  store_part_ref ref = {1, out.etag};
  T_OK(store_mpu_complete(s, "bkt", "e/mp", uid, &ref, 1, NULL));
  store_object_info_free(&out);
  f = feed_since(s, h6);
  T_COVERED(f, "bkt", "d/copy", STORE_CHANGE_PUT);
  T_COVERED(f, "bkt", "c/two", STORE_CHANGE_PUT);
  T_COVERED(f, "bkt", "e/mp", STORE_CHANGE_PUT);
  store_changes_free(f.c, f.n);

  /* Paging with max. */
  size_t total = 0;
  uint64_t after = h4;
  for (int i = 0; i < 100; i++) {
    store_change *c = NULL;
    size_t n = 0;
    int lost = -1;
    T_OK(store_changes_since(s, after, 2, &c, &n, &lost));
    T_ASSERT(n <= 2);
    T_ASSERT(lost == 0);
    if (n == 0) {
      store_changes_free(c, n);
      break;
    }
    T_ASSERT(c[0].seq > after);
    after = c[n - 1].seq;
    total += n;
    store_changes_free(c, n);
  }
  T_EQ_U64(after, feed_head(s));
  f = feed_since(s, h4);
  T_EQ_U64(total, f.n);
  store_changes_free(f.c, f.n);

  /* Another process's change is seen. */
  uint64_t h7 = feed_head(s);
  pid_t pid = fork();
  T_ASSERT(pid >= 0);
  if (pid == 0) {
    store *cs = NULL;
    if (store_open(t_store_dir(), NULL, &cs) != STORE_OK) _exit(1);
    if (store_put(cs, "bkt", "from/child", "c", 1, NULL, NULL) != STORE_OK)
      _exit(2);
    store_close(cs);
    _exit(0);
  }
  T_ASSERT(t_wait_ok(pid) == 0);
  f = feed_since(s, h7);
  T_COVERED(f, "bkt", "from/child", STORE_CHANGE_PUT);
  store_changes_free(f.c, f.n);

  /* Nothing after the head. */
  f = feed_since(s, feed_head(s));
  T_EQ_U64(f.n, 0);
  store_changes_free(f.c, f.n);

  /* Bucket deletion. */
  T_OK(store_bucket_create(s, "gone", NULL));
  uint64_t h8 = feed_head(s);
  T_OK(store_bucket_delete(s, "gone"));
  f = feed_since(s, h8);
  T_COVERED(f, "gone", "", STORE_CHANGE_BUCKET);
  store_changes_free(f.c, f.n);

  /* Survives reopen: the head does not go back. */
  uint64_t hz = feed_head(s);
  store_close(s);
  s = t_open_store();
  T_EQ_U64(feed_head(s), hz);
  store_changes_free(NULL, 0);
  store_close(s);
}

static void space(void) {
  store *s = t_new_store();
  store_space sp;
  memset(&sp, 0, sizeof sp);
  T_OK(store_space_get(s, &sp));
  T_ASSERT(sp.total_bytes > 0);
  T_ASSERT(sp.free_bytes <= sp.total_bytes);
  T_ASSERT(sp.avail_bytes <= sp.free_bytes);
  T_ASSERT(sp.free_files <= sp.total_files);
  struct statvfs v;
  T_ASSERT(statvfs(t_store_dir(), &v) == 0);
  T_EQ_U64(sp.total_bytes, (uint64_t)v.f_blocks * v.f_frsize);
  store_close(s);
}

/* Offsets past 4 GiB (holes cost no chunk; the commit still reads the
 * object once to compute its MD5, so keep it just over 4 GiB). */
static void offsets_past_4gib(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const uint64_t G4 = 4ull << 30;
  const uint64_t END = G4 + 3 * MiB;
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "huge", &w));
  T_OK(store_pwrite(w, "0123456789", 10, G4 - 5));
  T_OK(store_pwrite(w, "end", 3, END - 3));
  T_EQ_U64(store_writer_size(w), END);
  uint8_t buf[32];
  size_t got = 0;
  T_OK(store_pread_writer(w, buf, 12, G4 - 6, &got));
  T_EQ_U64(got, 12);
  T_ASSERT(memcmp(buf, "\0" "0123456789\0", 12) == 0);
  /* Truncate below 4 GiB and grow again, before the commit. */
  T_OK(store_writer_truncate(w, G4 - 2));
  T_OK(store_pread_writer(w, buf, 32, G4 - 6, &got));
  T_EQ_U64(got, 4);
  T_OK(store_pwrite(w, "end", 3, END - 3));
  T_OK(store_writer_commit(w, NULL, NULL));
  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "huge", NULL, &h));
  T_EQ_U64(h.size, END);
  store_object_info_free(&h);
  store_reader *r = NULL;
  T_OK(store_reader_open(s, "bkt", "huge", NULL, &r, NULL));
  T_EQ_U64(store_reader_size(r), END);
  T_OK(store_read(r, buf, 12, G4 - 6, &got));
  T_EQ_U64(got, 12);
  T_ASSERT(memcmp(buf, "\0" "012\0\0\0\0\0\0\0\0", 12) == 0);
  T_OK(store_read(r, buf, 32, END - 4, &got));
  T_EQ_U64(got, 4);
  T_ASSERT(memcmp(buf, "\0end", 4) == 0);
  /* The same bytes do not appear 4 GiB lower (no 32-bit wrap). */
  T_OK(store_read(r, buf, 10, 0, &got));
  T_EQ_U64(got, 10);
  T_ASSERT(memcmp(buf, "\0\0\0\0\0\0\0\0\0\0", 10) == 0);
  T_OK(store_read(r, buf, 10, 3 * MiB - 4, &got));
  T_ASSERT(memcmp(buf, "\0\0\0\0\0\0\0\0\0\0", 10) == 0);
  store_reader_close(r);
  store_stats st = t_stats(s);
  T_EQ_U64(st.logical_bytes, END);
  T_ASSERT(st.physical_bytes < 4 * MiB);
  store_close(s);
}

/* Degenerate writes. */
static void zero_length_ops(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "z", &w));
  T_OK(store_write(w, "", 0));
  T_OK(store_write(w, "abc", 3));
  T_OK(store_write(w, NULL, 0));
  T_OK(store_pwrite(w, "", 0, 1));
  T_EQ_U64(store_writer_size(w), 3);
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "z", "abc", 3);
  /* truncate to the same size, and an edit that changes nothing */
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "z", &w));
  T_OK(store_writer_truncate(w, 3));
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "z", "abc", 3);
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "z", &w));
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "z", "abc", 3);
  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "z", NULL, &h));
  T_EQ_STR(h.etag, "900150983cd24fb0d6963f7d28e17f72");
  store_object_info_free(&h);
  store_close(s);
}

/* Renames and copies of a key onto itself never lose it. */
static void self_rename_and_copy(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t *d = t_gen(2 * MiB, 5);
  t_put(s, "bkt", "x", d, 2 * MiB);
  t_put(s, "bkt", "dir/a", d, 1000);
  int rc = store_rename(s, "bkt", "x", "x", 0);
  T_ASSERT(rc == STORE_OK || rc == STORE_ERR_INVALID);
  T_CONTENT(s, "bkt", "x", d, 2 * MiB);
  rc = store_rename(s, "bkt", "x", "x", 1);
  T_ASSERT(rc == STORE_OK || rc == STORE_ERR_INVALID ||
           rc == STORE_ERR_EXISTS);
  T_CONTENT(s, "bkt", "x", d, 2 * MiB);
  rc = store_rename_prefix(s, "bkt", "dir/", "dir/", NULL);
  T_ASSERT(rc == STORE_OK || rc == STORE_ERR_INVALID ||
           rc == STORE_ERR_EXISTS);
  T_CONTENT(s, "bkt", "dir/a", d, 1000);
  rc = store_copy(s, "bkt", "x", "bkt", "x", NULL, NULL);
  T_ASSERT(rc == STORE_OK || rc == STORE_ERR_INVALID);
  T_CONTENT(s, "bkt", "x", d, 2 * MiB);
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "x", d, 2 * MiB);
  T_CONTENT(s, "bkt", "dir/a", d, 1000);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(d);
  store_close(s);
}

/* A writer whose bucket is deleted (while empty) before the commit. */
static void commit_into_deleted_bucket(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "tmpb", NULL));
  uint8_t *d = t_gen(2 * MiB, 6);
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "tmpb", "k", &w));
  T_OK(store_write(w, d, 2 * MiB));
  T_OK(store_bucket_delete(s, "tmpb"));
  T_RC(STORE_ERR_NO_BUCKET, store_writer_commit(w, NULL, NULL));
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, 0);
  T_EQ_U64(st.buckets, 0);
  /* A new bucket of the same name starts empty. */
  T_OK(store_bucket_create(s, "tmpb", NULL));
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "tmpb", NULL, &lr));
  T_EQ_U64(lr.n_entries, 0);
  store_list_result_free(&lr);
  store_object_info h;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "tmpb", "k", NULL, &h));
  /* Same with an edit writer and a copy target. */
  t_put(s, "tmpb", "src", d, 100);
  T_OK(store_bucket_create(s, "other", NULL));
  w = NULL;
  T_OK(store_writer_open_edit(s, "other", "e", &w));
  T_OK(store_pwrite(w, d, 100, 0));
  T_OK(store_bucket_delete(s, "other"));
  T_RC(STORE_ERR_NO_BUCKET, store_writer_commit(w, NULL, NULL));
  T_OK(store_bucket_create(s, "other", NULL));
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "other", NULL, &lr));
  T_EQ_U64(lr.n_entries, 0);
  store_list_result_free(&lr);
  T_OK(store_gc(s, NULL, NULL, NULL));
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(d);
  store_close(s);
}

/* A reader keeps the version it opened, whole, when the key is replaced
 * or deleted meanwhile (no GC in between). */
static void reader_survives_overwrite(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 5 * MiB + 3;
  uint8_t *v1 = t_gen(n, 11), *v2 = t_gen(n / 2, 12);
  t_put(s, "bkt", "k", v1, n);
  store_reader *r;
  T_OK(store_reader_open(s, "bkt", "k", NULL, &r, NULL));
  uint8_t *got = malloc(n);
  size_t g1 = 0;
  T_OK(store_read(r, got, 100000, 0, &g1)); /* started */
  t_put(s, "bkt", "k", v2, n / 2);           /* replaced */
  size_t off = g1;
  while (off < n) {
    size_t g;
    T_OK(store_read(r, got + off, 65536, off, &g));
    T_ASSERT(g > 0);
    off += g;
  }
  T_ASSERT(memcmp(got, v1, n) == 0);
  store_reader_close(r);
  /* and after a delete */
  T_OK(store_reader_open(s, "bkt", "k", NULL, &r, NULL));
  T_OK(store_delete(s, "bkt", "k"));
  size_t g;
  T_OK(store_read(r, got, n / 2, 0, &g));
  T_EQ_U64(g, n / 2);
  T_ASSERT(memcmp(got, v2, n / 2) == 0);
  store_reader_close(r);
  free(got);
  free(v1);
  free(v2);
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(create_open_close);
  T_RUN(read_only_open);
  T_RUN(strerror_and_helpers);
  T_RUN(users);
  T_RUN(buckets);
  T_RUN(put_head_read_delete);
  T_RUN(metadata_roundtrip);
  T_RUN(copy_catalog_only);
  T_RUN(rename_one);
  T_RUN(rename_prefix);
  T_RUN(edit_random_writes);
  T_RUN(edit_sparse);
  T_RUN(conditional_commits);
  T_RUN(list_basic);
  T_RUN(stats_and_gc_basic);
  T_RUN(reader_after_overwrite_and_gc);
  T_RUN(sparse_costs_nothing);
  T_RUN(changes_feed);
  T_RUN(space);
  T_RUN(offsets_past_4gib);
  T_RUN(zero_length_ops);
  T_RUN(self_rename_and_copy);
  T_RUN(commit_into_deleted_bucket);
  T_RUN(reader_survives_overwrite);
  T_MAIN_END();
}
