/*
 * test_badinput.c -- invalid names, keys, sizes, missing things, corrupt
 * chunks, and stores that are not stores.
 */
#include <fcntl.h>

#include "libstore.h"
#include "harness.h"
#include "tutil.h"

static void bucket_names(void) {
  store *s = t_new_store();
  static const char *bad[] = {
      "",                     /* empty */
      "ab",                   /* too short */
      "a",                    /* too short */
      "ABC",                  /* upper case */
      "myBucket",             /* upper case */
      "my_bucket",            /* underscore */
      "192.168.1.1",          /* IP address form */
      "10.0.0.255",           /* IP address form */
      "-bucket",              /* starts with '-' */
      "bucket-",              /* ends with '-' */
      ".bucket",              /* starts with '.' */
      "bucket.",              /* ends with '.' */
      "xn--bucket",           /* reserved prefix */
      "my..bucket",           /* two adjacent periods */
      "my bucket",            /* space */
      "my/bucket",            /* slash */
      "bucket!",              /* punctuation */
      "b\xC3\xA9 t",          /* non-ASCII */
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64 */
  };
  static const char *good[] = {
      "abc",
      "my-bucket",
      "my.bucket.example",
      "1bucket",
      "bucket1",
      "a-b.c-d",
      "192.168.1.x",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 63 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = store_bucket_name_check(bad[i]);
    if (rc != STORE_ERR_BAD_BUCKET_NAME)
      T_FAIL("store_bucket_name_check(\"%s\") = %d (%s), expected "
             "BAD_BUCKET_NAME",
             bad[i], rc, store_strerror(rc));
    rc = store_bucket_create(s, bad[i], NULL);
    if (rc != STORE_ERR_BAD_BUCKET_NAME)
      T_FAIL("store_bucket_create(\"%s\") = %d (%s), expected "
             "BAD_BUCKET_NAME",
             bad[i], rc, store_strerror(rc));
    T_ASSERT(store_errmsg() != NULL && store_errmsg()[0] != 0);
  }
  T_EQ_U64(strlen(good[7]), 63);
  T_EQ_U64(strlen(bad[18]), 64);
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int rc = store_bucket_name_check(good[i]);
    if (rc != STORE_OK)
      T_FAIL("store_bucket_name_check(\"%s\") = %d (%s: %s), expected OK",
             good[i], rc, store_strerror(rc), store_errmsg());
    rc = store_bucket_create(s, good[i], NULL);
    if (rc != STORE_OK)
      T_FAIL("store_bucket_create(\"%s\") = %d (%s: %s)", good[i], rc,
             store_strerror(rc), store_errmsg());
  }
  store_bucket_info *list = NULL;
  size_t n = 0;
  T_OK(store_bucket_list(s, &list, &n));
  T_EQ_U64(n, sizeof good / sizeof good[0]);
  store_bucket_list_free(list);
  store_close(s);
}

static void keys(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char k[1100];
  /* 1024 bytes: fine (also with multi-byte characters). */
  memset(k, 'k', 1024);
  k[1024] = 0;
  T_OK(store_key_check(k, 1024));
  t_put(s, "bkt", k, "x", 1);
  T_CONTENT(s, "bkt", k, "x", 1);
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", NULL, &lr));
  T_EQ_U64(lr.n_entries, 1);
  T_EQ_U64(strlen(lr.entries[0].key), 1024);
  store_list_result_free(&lr);
  for (int i = 0; i < 1024; i += 2) memcpy(k + i, "\xC3\xA9", 2);
  k[1024] = 0;
  t_put(s, "bkt", k, "y", 1);
  T_CONTENT(s, "bkt", k, "y", 1);
  /* 1025 bytes. */
  memset(k, 'k', 1025);
  k[1025] = 0;
  T_RC(STORE_ERR_KEY_TOO_LONG, store_key_check(k, 1025));
  T_RC(STORE_ERR_KEY_TOO_LONG, store_put(s, "bkt", k, "x", 1, NULL, NULL));
  store_writer *w = NULL;
  T_RC(STORE_ERR_KEY_TOO_LONG, store_writer_open(s, "bkt", k, &w));
  char uid[STORE_UPLOAD_ID_MAX];
  T_RC(STORE_ERR_KEY_TOO_LONG, store_mpu_create(s, "bkt", k, NULL, uid));
  t_put(s, "bkt", "short", "s", 1);
  T_RC(STORE_ERR_KEY_TOO_LONG, store_rename(s, "bkt", "short", k, 0));
  T_RC(STORE_ERR_KEY_TOO_LONG, store_copy(s, "bkt", "short", "bkt", k, NULL,
                                          NULL));
  T_CONTENT(s, "bkt", "short", "s", 1);

  /* Invalid UTF-8. */
  static const char *bad[] = {
      "\xC0\xAF",             /* overlong '/' */
      "a\xE0\x80\xAF",        /* overlong 3-byte */
      "\xF0\x80\x80\xAF",     /* overlong 4-byte */
      "\x80",                 /* lone continuation */
      "abc\xBF",              /* lone continuation at end */
      "\xFF",                 /* never valid */
      "x\xFE",                /* never valid */
      "\xED\xA0\x80",         /* UTF-16 surrogate D800 */
      "\xED\xBF\xBF",         /* surrogate DFFF */
      "\xC3",                 /* truncated sequence */
      "a\xE6\x97",            /* truncated sequence */
      "\xF4\x90\x80\x80",     /* above U+10FFFF */
      "\xC3\x28",             /* bad continuation */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = store_key_check(bad[i], strlen(bad[i]));
    if (rc != STORE_ERR_BAD_KEY)
      T_FAIL("store_key_check(bad[%zu]) = %d (%s), expected BAD_KEY", i, rc,
             store_strerror(rc));
    rc = store_put(s, "bkt", bad[i], "x", 1, NULL, NULL);
    if (rc != STORE_ERR_BAD_KEY)
      T_FAIL("store_put(bad[%zu]) = %d (%s), expected BAD_KEY", i, rc,
             store_strerror(rc));
    w = NULL;
    rc = store_writer_open(s, "bkt", bad[i], &w);
    if (rc != STORE_ERR_BAD_KEY)
      T_FAIL("store_writer_open(bad[%zu]) = %d, expected BAD_KEY", i, rc);
    rc = store_mpu_create(s, "bkt", bad[i], NULL, uid);
    if (rc != STORE_ERR_BAD_KEY)
      T_FAIL("store_mpu_create(bad[%zu]) = %d, expected BAD_KEY", i, rc);
  }
  /* Valid edge cases. */
  static const char *good[] = {
      "\xF4\x8F\xBF\xBF",     /* U+10FFFF */
      "\xEF\xBF\xBF",         /* U+FFFF */
      "\xEE\x80\x80",         /* U+E000 (after the surrogates) */
      "\xED\x9F\xBF",         /* U+D7FF (before the surrogates) */
      "\x7f",                 /* DEL */
      "tab\there",
      " ",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int rc = store_key_check(good[i], strlen(good[i]));
    if (rc != STORE_OK)
      T_FAIL("store_key_check(good[%zu]) = %d (%s), expected OK", i, rc,
             store_strerror(rc));
    t_put(s, "bkt", good[i], good[i], strlen(good[i]));
    T_CONTENT(s, "bkt", good[i], good[i], strlen(good[i]));
  }
  /* Empty key. */
  T_RC(STORE_ERR_BAD_KEY, store_key_check("", 0));
  T_RC(STORE_ERR_BAD_KEY, store_put(s, "bkt", "", "x", 1, NULL, NULL));
  store_close(s);
}

static void missing_things(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_object_info h;
  store_reader *r = NULL;
  store_writer *w = NULL;
  store_list_result lr;
  T_RC(STORE_ERR_NO_BUCKET, store_put(s, "nob", "k", "x", 1, NULL, NULL));
  T_RC(STORE_ERR_NO_BUCKET, store_writer_open(s, "nob", "k", &w));
  T_RC(STORE_ERR_NO_BUCKET, store_writer_open_edit(s, "nob", "k", &w));
  T_RC(STORE_ERR_NO_BUCKET, store_head(s, "nob", "k", NULL, &h));
  T_RC(STORE_ERR_NO_BUCKET, store_reader_open(s, "nob", "k", NULL, &r, NULL));
  T_RC(STORE_ERR_NO_BUCKET, store_delete(s, "nob", "k"));
  T_RC(STORE_ERR_NO_BUCKET, store_list(s, "nob", NULL, &lr));
  T_RC(STORE_ERR_NO_BUCKET, store_bucket_delete(s, "nob"));
  T_RC(STORE_ERR_NO_BUCKET, store_rename_prefix(s, "nob", "a/", "b/", NULL));

  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k", NULL, &h));
  T_RC(STORE_ERR_NO_KEY, store_reader_open(s, "bkt", "k", NULL, &r, NULL));
  T_RC(STORE_ERR_NO_KEY, store_delete(s, "bkt", "k"));
  T_RC(STORE_ERR_NO_KEY, store_copy(s, "bkt", "k", "bkt", "k2", NULL, NULL));
  T_RC(STORE_ERR_NO_KEY, store_rename(s, "bkt", "k", "k2", 0));
  T_RC(STORE_ERR_NO_KEY, store_object_tags_set(s, "bkt", "k", NULL, 0));
  /* A key that is only a prefix of other keys does not exist. */
  t_put(s, "bkt", "dir/file", "x", 1);
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "dir", NULL, &h));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "dir/", NULL, &h));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "dir/fil", NULL, &h));
  /* Missing in one bucket, present in another. */
  T_OK(store_bucket_create(s, "cbk", NULL));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "cbk", "dir/file", NULL, &h));
  /* Unknown version. */
  T_RC(STORE_ERR_NO_KEY,
       store_head(s, "bkt", "dir/file", "0123456789abcdef0123456789abcdef", &h));
  store_close(s);
}

static void metadata_limits(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char *big = t_xmalloc(STORE_META_MAX + 100);
  memset(big, 'v', STORE_META_MAX + 99);
  big[STORE_META_MAX + 99] = 0;
  store_kv meta[1] = {{"big", big}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.meta = meta;
  po.n_meta = 1;
  T_RC(STORE_ERR_TOO_LARGE, store_put(s, "bkt", "k", "x", 1, &po, NULL));
  store_object_info h;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k", NULL, &h));
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "k", &w));
  T_OK(store_write(w, "x", 1));
  T_RC(STORE_ERR_TOO_LARGE, store_writer_commit(w, &po, NULL));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "k", NULL, &h));
  char uid[STORE_UPLOAD_ID_MAX];
  T_RC(STORE_ERR_TOO_LARGE, store_mpu_create(s, "bkt", "k", &po, uid));

  /* Many small pairs over the limit in total. */
  store_kv many[40];
  char names[40][16];
  char val[64];
  memset(val, 'w', 63);
  val[63] = 0;
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof names[i], "name%02d", i);
    many[i].name = names[i];
    many[i].value = val;
  }
  po.meta = many;
  po.n_meta = 40; /* 40 * (6 + 63) = 2760 bytes */
  T_RC(STORE_ERR_TOO_LARGE, store_put(s, "bkt", "k", "x", 1, &po, NULL));
  /* Well under the limit. */
  po.n_meta = 20; /* 1380 bytes */
  T_OK(store_put(s, "bkt", "k", "x", 1, &po, NULL));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "k", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "name19"), val);
  store_object_info_free(&h);
  /* meta_set enforces it too, and leaves the object as it was. */
  T_RC(STORE_ERR_TOO_LARGE, store_object_meta_set(s, "bkt", "k", many, 40));
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", "k", NULL, &h));
  T_EQ_STR(t_kv_find(h.meta, h.n_meta, "name19"), val);
  T_ASSERT(t_kv_find(h.meta, h.n_meta, "name30") == NULL);
  store_object_info_free(&h);
  /* Tags: at most STORE_TAGS_MAX on objects and buckets. */
  store_kv tags[STORE_TAGS_MAX + 1];
  char tn[STORE_TAGS_MAX + 1][8];
  for (int i = 0; i <= STORE_TAGS_MAX; i++) {
    snprintf(tn[i], sizeof tn[i], "t%d", i);
    tags[i].name = tn[i];
    tags[i].value = "v";
  }
  memset(&po, 0, sizeof po);
  po.tags = tags;
  po.n_tags = STORE_TAGS_MAX + 1;
  T_RC(STORE_ERR_TOO_LARGE, store_put(s, "bkt", "tagged", "x", 1, &po, NULL));
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "tagged", NULL, &h));
  po.n_tags = STORE_TAGS_MAX;
  T_OK(store_put(s, "bkt", "tagged", "x", 1, &po, NULL));
  T_RC(STORE_ERR_TOO_LARGE,
       store_bucket_tags_set(s, "bkt", tags, STORE_TAGS_MAX + 1));
  T_OK(store_bucket_tags_set(s, "bkt", tags, STORE_TAGS_MAX));
  free(big);
  store_close(s);
}

/* Overwrite bytes in the middle of the largest chunk file. */
static void corrupt_largest_chunk(char *which, size_t whichsz) {
  t_du_acc a = t_du(t_path("store/chunks"));
  if (a.largest_size < 4096)
    T_FAIL("no chunk file of at least 4 KiB under store/chunks (largest "
           "%llu bytes)",
           (unsigned long long)a.largest_size);
  snprintf(which, whichsz, "%s", a.largest);
  chmod(a.largest, 0644);
  int fd = open(a.largest, O_WRONLY);
  if (fd < 0) T_FAIL("open %s: %s", a.largest, strerror(errno));
  uint8_t junk[64];
  for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(0xA5 ^ i);
  off_t off = (off_t)(a.largest_size / 2);
  if (pwrite(fd, junk, sizeof junk, off) != (ssize_t)sizeof junk)
    T_FAIL("pwrite %s: %s", a.largest, strerror(errno));
  close(fd);
}

static int read_rc(store *s, const char *bucket, const char *key) {
  uint8_t *d = NULL;
  size_t n = 0;
  int rc = t_read_all(s, bucket, key, &d, &n);
  free(d);
  return rc;
}

static void corrupt_chunk(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 6 * MiB + 1;
  uint8_t *d1 = t_gen(n, 1), *d2 = t_gen(n, 2), *d3 = t_gen(100, 3);
  t_put(s, "bkt", "one", d1, n);
  t_put(s, "bkt", "two", d2, n);
  t_put(s, "bkt", "small", d3, 100);
  store_close(s);

  char which[4200];
  corrupt_largest_chunk(which, sizeof which);

  s = t_open_store();
  int r1 = read_rc(s, "bkt", "one"), r2 = read_rc(s, "bkt", "two");
  if (!((r1 == STORE_ERR_CORRUPT && r2 == STORE_OK) ||
        (r2 == STORE_ERR_CORRUPT && r1 == STORE_OK)))
    T_FAIL("after corrupting %s: reading one = %d, two = %d; expected "
           "exactly one STORE_ERR_CORRUPT (%d)",
           which, r1, r2, STORE_ERR_CORRUPT);
  const char *bad = r1 ? "one" : "two";
  const char *goodk = r1 ? "two" : "one";
  T_CONTENT(s, "bkt", goodk, r1 ? d2 : d1, n);
  T_CONTENT(s, "bkt", "small", d3, 100);
  /* Reading again still fails (no bad bytes cached as good). */
  T_RC(STORE_ERR_CORRUPT, read_rc(s, "bkt", bad));
  /* The store keeps working: new writes, other reads. */
  t_put(s, "bkt", "after", "fine", 4);
  T_CONTENT(s, "bkt", "after", "fine", 4);
  /* HEAD and listing still work for the damaged object. */
  store_object_info h;
  memset(&h, 0, sizeof h);
  T_OK(store_head(s, "bkt", bad, NULL, &h));
  store_object_info_free(&h);

  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_RC(STORE_ERR_CORRUPT, store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.chunks_corrupt, 1);
  T_EQ_U64(fr.chunks_missing, 0);
  T_ASSERT(fr.objects_damaged >= 1);
  T_ASSERT(fr.chunks_checked >= 2);
  T_ASSERT(fr.catalog_ok);

  /* Deleting the damaged object and collecting garbage removes the bad
   * chunk: the store is healthy again. */
  T_OK(store_delete(s, "bkt", bad));
  T_OK(store_gc(s, NULL, NULL, NULL));
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.chunks_corrupt, 0);
  T_CONTENT(s, "bkt", goodk, r1 ? d2 : d1, n);
  free(d1);
  free(d2);
  free(d3);
  store_close(s);
}

/* Writing content whose chunk is damaged on disk must store the content
 * for real (not lean on the damaged file), and heals the older object. */
static void rewrite_over_corrupt_chunk(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 3 * MiB;
  uint8_t *d = t_gen(n, 7);
  t_put(s, "bkt", "old", d, n);
  store_close(s);
  char which[4200];
  corrupt_largest_chunk(which, sizeof which);
  s = t_open_store();
  T_RC(STORE_ERR_CORRUPT, read_rc(s, "bkt", "old"));
  t_put(s, "bkt", "new", d, n); /* same bytes again */
  T_CONTENT(s, "bkt", "new", d, n);
  T_CONTENT(s, "bkt", "old", d, n); /* healed: the name has good bytes */
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.chunks_corrupt, 0);
  free(d);
  store_close(s);
}

static void missing_chunk_file(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 5 * MiB;
  uint8_t *d = t_gen(n, 17);
  t_put(s, "bkt", "victim", d, n);
  store_close(s);
  t_du_acc a = t_du(t_path("store/chunks"));
  T_ASSERT(a.largest_size > 4096);
  T_ASSERT(unlink(a.largest) == 0);
  s = t_open_store();
  int rc = read_rc(s, "bkt", "victim");
  T_ASSERT(rc != STORE_OK && rc != -1);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_RC(STORE_ERR_CORRUPT, store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.chunks_missing, 1);
  T_ASSERT(fr.objects_damaged >= 1);
  free(d);
  store_close(s);
}

static void not_a_store(void) {
  store *s = NULL;
  /* An empty directory. */
  T_ASSERT(mkdir(t_path("empty"), 0755) == 0);
  T_RC(STORE_ERR_NO_STORE, store_open(t_path("empty"), NULL, &s));
  /* A directory with unrelated files. */
  T_ASSERT(mkdir(t_path("other"), 0755) == 0);
  FILE *f = fopen(t_path("other/readme.txt"), "w");
  T_ASSERT(f);
  fputs("not a store\n", f);
  fclose(f);
  T_RC(STORE_ERR_NO_STORE, store_open(t_path("other"), NULL, &s));
  /* A file where the catalog should be that is not SQLite. */
  T_ASSERT(mkdir(t_path("fake"), 0755) == 0);
  f = fopen(t_path("fake/catalog.db"), "w");
  T_ASSERT(f);
  fputs("this is not an SQLite database, just some text to fill a page\n",
        f);
  fclose(f);
  int rc = store_open(t_path("fake"), NULL, &s);
  T_ASSERT(rc == STORE_ERR_NO_STORE || rc == STORE_ERR_CORRUPT ||
           rc == STORE_ERR_IO);
  /* A path that does not exist is not created by open. */
  rc = store_open(t_path("nonexistent"), NULL, &s);
  T_ASSERT(rc != STORE_OK);
  struct stat st;
  T_ASSERT(stat(t_path("nonexistent"), &st) != 0);
  /* store_open did not turn the empty directory into a store. */
  T_RC(STORE_ERR_NO_STORE, store_open(t_path("empty"), NULL, &s));

  /* create twice. */
  T_OK(store_create(t_path("st"), NULL, &s));
  store *s2 = NULL;
  T_RC(STORE_ERR_STORE_EXISTS, store_create(t_path("st"), NULL, &s2));
  store_close(s);
  T_RC(STORE_ERR_STORE_EXISTS, store_create(t_path("st"), NULL, &s2));
  /* And the existing store is intact. */
  T_OK(store_open(t_path("st"), NULL, &s));
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_close(s);
  /* create in an existing empty directory is fine */
  T_OK(store_create(t_path("empty"), NULL, &s));
  store_close(s);
}

static void bad_arguments(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t *d = t_gen(10000, 4);
  t_put(s, "bkt", "k", d, 10000);
  store_reader *r = NULL;
  T_OK(store_reader_open(s, "bkt", "k", NULL, &r, NULL));
  size_t got = 99;
  uint8_t buf[16];
  /* Reading past the end is not an error: it returns 0 bytes. */
  T_OK(store_read(r, buf, sizeof buf, 10000, &got));
  T_EQ_U64(got, 0);
  T_OK(store_read(r, buf, sizeof buf, 1ull << 40, &got));
  T_EQ_U64(got, 0);
  store_reader_close(r);
  /* Part copy ranges that are not satisfiable. */
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "m", NULL, uid));
  T_RC(STORE_ERR_RANGE, store_part_copy(s, "bkt", "m", uid, 1, "bkt", "k", NULL,
                                        10001, 5, NULL));
  T_OK(store_mpu_abort(s, "bkt", "m", uid));
  /* A part number above the maximum. */
  store_writer *w = NULL;
  T_OK(store_mpu_create(s, "bkt", "m", NULL, uid));
  T_ASSERT(store_writer_open_part(s, "bkt", "m", uid, 10001, &w) != STORE_OK);
  T_OK(store_mpu_abort(s, "bkt", "m", uid));
  free(d);
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(bucket_names);
  T_RUN(keys);
  T_RUN(missing_things);
  T_RUN(metadata_limits);
  T_RUN(corrupt_chunk);
  T_RUN(missing_chunk_file);
  T_RUN(rewrite_over_corrupt_chunk);
  T_RUN(not_a_store);
  T_RUN(bad_arguments);
  T_MAIN_END();
}
