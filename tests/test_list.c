/*
 * test_list.c -- listing in byte order, delimiters, pagination.
 *
 * Thousands of keys (ASCII, bytes that sort before '/', 0x7f, multi-byte
 * UTF-8) are stored, and every listing is compared to a reference computed
 * here: keys sorted with memcmp, then S3 delimiter semantics applied.
 * Pagination continues with start_after = next_marker and must neither
 * repeat nor skip anything; a common prefix appears exactly once.
 */
#include "libstore.h"
#include "harness.h"
#include "tutil.h"

static int cmp_str(const void *a, const void *b) {
  /* strcmp compares as unsigned char: memcmp order for C strings */
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct item {
  const char *s;
  int is_prefix;
} item;

typedef struct keyset {
  char **k;
  size_t n;
} keyset;

/* Reference listing: items (keys and common prefixes) in order. */
static item *ref_list(const keyset *ks, const char *prefix,
                      const char *delim, size_t *nout) {
  item *it = t_xmalloc((ks->n + 1) * sizeof *it);
  size_t n = 0;
  size_t pl = prefix ? strlen(prefix) : 0;
  size_t dl = delim ? strlen(delim) : 0;
  char *lastp = NULL;
  for (size_t i = 0; i < ks->n; i++) {
    const char *k = ks->k[i];
    if (pl && strncmp(k, prefix, pl) != 0) continue;
    const char *d = dl ? strstr(k + pl, delim) : NULL;
    if (d) {
      size_t cl = (size_t)(d - k) + dl;
      if (lastp && strlen(lastp) == cl && strncmp(lastp, k, cl) == 0)
        continue;
      lastp = strndup(k, cl);
      it[n].s = lastp;
      it[n].is_prefix = 1;
      n++;
    } else {
      it[n].s = k;
      it[n].is_prefix = 0;
      n++;
    }
  }
  for (size_t i = 1; i < n; i++)
    if (strcmp(it[i - 1].s, it[i].s) >= 0)
      T_FAIL("reference not sorted at %zu (test bug)", i);
  *nout = n;
  return it;
}

static void show(const char *what, const char *s) {
  fprintf(stderr, "  %s: \"", what);
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
    if (*p >= 0x20 && *p < 0x7f) fputc(*p, stderr);
    else fprintf(stderr, "\\x%02x", *p);
  fprintf(stderr, "\"\n");
}

/* Page through store_list and compare with the reference. */
static void check_listing(store *s, const char *bucket, const keyset *ks,
                          const char *prefix, const char *delim,
                          uint32_t max_keys) {
  size_t rn = 0;
  item *ref = ref_list(ks, prefix, delim, &rn);
  uint32_t cap = max_keys == 0 || max_keys > 1000 ? 1000 : max_keys;
  size_t pos = 0;
  char *marker = NULL;
  int pages = 0;
  for (;;) {
    store_list_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.prefix = prefix;
    lo.delimiter = delim;
    lo.start_after = marker;
    lo.max_keys = max_keys;
    store_list_result lr;
    memset(&lr, 0, sizeof lr);
    int rc = store_list(s, bucket, &lo, &lr);
    if (rc != STORE_OK) {
      show("prefix", prefix);
      show("delimiter", delim);
      show("start_after", marker);
      T_FAIL("store_list = %d (%s: %s)", rc, store_strerror(rc),
             store_errmsg());
    }
    pages++;
    size_t got = lr.n_entries + lr.n_prefixes;
    if (got > cap) {
      show("prefix", prefix);
      show("delimiter", delim);
      T_FAIL("page %d has %zu items, max_keys %u", pages, got, max_keys);
    }
    /* Merge entries and prefixes (each sorted) and compare in order. */
    size_t ie = 0, ip = 0;
    const char *last = NULL;
    while (ie < lr.n_entries || ip < lr.n_prefixes) {
      int take_prefix;
      if (ie == lr.n_entries) take_prefix = 1;
      else if (ip == lr.n_prefixes) take_prefix = 0;
      else take_prefix = strcmp(lr.prefixes[ip], lr.entries[ie].key) < 0;
      const char *cur =
          take_prefix ? lr.prefixes[ip++] : lr.entries[ie++].key;
      if (last && strcmp(last, cur) >= 0) {
        show("prefix", prefix);
        show("delimiter", delim);
        show("previous", last);
        show("current", cur);
        T_FAIL("page %d not in strictly ascending byte order", pages);
      }
      if (pos >= rn) {
        show("prefix", prefix);
        show("delimiter", delim);
        show("extra item", cur);
        T_FAIL("listing returned more than the %zu expected items", rn);
      }
      if (strcmp(cur, ref[pos].s) != 0 ||
          take_prefix != ref[pos].is_prefix) {
        show("prefix", prefix);
        show("delimiter", delim);
        show("start_after", marker);
        show("got", cur);
        show("expected", ref[pos].s);
        T_FAIL("item %zu (page %d, max_keys %u): got %s, expected %s", pos,
               pages, max_keys, take_prefix ? "prefix" : "key",
               ref[pos].is_prefix ? "prefix" : "key");
      }
      if (!take_prefix) {
        /* Each key's content is the key itself. */
        const store_list_entry *e = &lr.entries[ie - 1];
        char md5[33];
        t_md5_hex(cur, strlen(cur), md5);
        if (e->size != strlen(cur) || strcmp(e->etag, md5) != 0) {
          show("key", cur);
          T_FAIL("entry size %llu etag %s, expected %zu %s",
                 (unsigned long long)e->size, e->etag, strlen(cur), md5);
        }
      }
      last = cur;
      pos++;
    }
    free(marker);
    marker = NULL;
    if (!lr.truncated) {
      store_list_result_free(&lr);
      break;
    }
    if (got == 0) {
      show("prefix", prefix);
      show("delimiter", delim);
      T_FAIL("truncated page %d with no items", pages);
    }
    if (!lr.next_marker || strcmp(lr.next_marker, last) != 0) {
      show("prefix", prefix);
      show("delimiter", delim);
      show("next_marker", lr.next_marker);
      show("last item", last);
      T_FAIL("next_marker is not the last item returned");
    }
    marker = strdup(lr.next_marker);
    store_list_result_free(&lr);
    if (pages > 100000) T_FAIL("pagination does not end");
  }
  if (pos != rn) {
    show("prefix", prefix);
    show("delimiter", delim);
    if (pos < rn) show("first missing", ref[pos].s);
    T_FAIL("listing (max_keys %u) returned %zu items over %d pages, "
           "expected %zu",
           max_keys, pos, pages, rn);
  }
  for (size_t i = 0; i < rn; i++)
    if (ref[i].is_prefix) free((char *)ref[i].s);
  free(ref);
}

static const char *pool[] = {
    "a",        "b",      "dir",     "dir!",  "dir ",       "dir\x7f",
    "dir.x",    "dir-",   "dir0",    "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
    "\xF0\x9F\x98\x80",   "A",       "Z",     "~",          "x y",
    "",         "d\xC3\xA9j\xC3\xA0", "%2F",   "+plus",
};
#define NPOOL (sizeof pool / sizeof pool[0])

static keyset make_keys(size_t want, uint64_t seed) {
  keyset ks;
  ks.k = t_xmalloc((want + 16) * sizeof(char *));
  ks.n = 0;
  t_rng r = t_rng_seed(seed);
  for (size_t i = 0; i < want; i++) {
    char buf[256] = "";
    int depth = 1 + (int)t_rng_below(&r, 4);
    for (int d = 0; d < depth; d++) {
      if (d) strcat(buf, "/");
      strcat(buf, pool[t_rng_below(&r, NPOOL)]);
    }
    if (t_rng_below(&r, 10) == 0) strcat(buf, "/"); /* directory marker */
    if (!buf[0]) strcpy(buf, "e");
    ks.k[ks.n++] = strdup(buf);
  }
  /* Fixed ones that matter for the order around '/'. */
  const char *fixed[] = {"dir", "dir/", "dir/a", "dir!", "dir ", "dir\x7f",
                         "dir/\xC3\xA9", "dir//double", "/leading"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    ks.k[ks.n++] = strdup(fixed[i]);
  qsort(ks.k, ks.n, sizeof(char *), cmp_str);
  size_t w = 0;
  for (size_t i = 0; i < ks.n; i++) {
    if (w && strcmp(ks.k[w - 1], ks.k[i]) == 0) {
      free(ks.k[i]);
      continue;
    }
    ks.k[w++] = ks.k[i];
  }
  ks.n = w;
  return ks;
}

static store *fast_store(void) {
  store_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.durability = STORE_DURABLE_PROCESS;
  store *s = NULL;
  T_OK(store_create(t_store_dir(), &cfg, &s));
  return s;
}

static void fill_bucket(store *s, const char *bucket, const keyset *ks) {
  /* insert in a scrambled order */
  size_t step = 7919;
  while (ks->n % step == 0) step++;
  for (size_t i = 0; i < ks->n; i++) {
    const char *k = ks->k[(i * step) % ks->n];
    int rc = store_put(s, bucket, k, k, strlen(k), NULL, NULL);
    if (rc != STORE_OK) {
      show("key", k);
      T_FAIL("store_put = %d (%s: %s)", rc, store_strerror(rc),
             store_errmsg());
    }
  }
}

static void byte_order_small(void) {
  store *s = fast_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  /* Exact expected order, written out by hand. */
  const char *sorted[] = {
      " space", "!bang", "/root", "A", "Z", "a", "a b", "a!", "a-", "a.",
      "a/",     "a/b",   "a0",    "a~", "a\x7f", "a\xC3\xA9",
      "a\xEF\xBF\xBD", "a\xF0\x9F\x98\x80", "b",
  };
  size_t n = sizeof sorted / sizeof sorted[0];
  for (size_t i = n; i-- > 0;) t_put(s, "bkt", sorted[i], sorted[i],
                                     strlen(sorted[i]));
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", NULL, &lr));
  T_EQ_U64(lr.n_entries, n);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(lr.entries[i].key, sorted[i]) != 0) {
      show("got", lr.entries[i].key);
      show("expected", sorted[i]);
      T_FAIL("order differs at %zu", i);
    }
  }
  store_list_result_free(&lr);

  /* With delimiter "/": "a/" and "a/b" roll up into prefix "a/", which
   * sorts between "a." and "a0". */
  store_list_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.delimiter = "/";
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_prefixes, 2);
  T_EQ_STR(lr.prefixes[0], "/");
  T_EQ_STR(lr.prefixes[1], "a/");
  T_EQ_U64(lr.n_entries, n - 3);
  store_list_result_free(&lr);

  /* Paging by one across the prefix. */
  keyset ks = {(char **)sorted, n};
  check_listing(s, "bkt", &ks, NULL, "/", 1);
  check_listing(s, "bkt", &ks, "a", "/", 1);
  check_listing(s, "bkt", &ks, "a", NULL, 2);
  store_close(s);
}

static void many_keys_paged(void) {
  store *s = fast_store();
  T_OK(store_bucket_create(s, "big", NULL));
  T_OK(store_bucket_create(s, "other", NULL));
  keyset ks = make_keys(3000, 1234);
  fill_bucket(s, "big", &ks);
  /* Another bucket's keys never leak into listings of "big". */
  t_put(s, "other", "dir/zzz", "x", 1);
  t_put(s, "other", "a", "y", 1);

  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, ks.n + 2);

  check_listing(s, "big", &ks, NULL, NULL, 0);
  check_listing(s, "big", &ks, NULL, NULL, 7);
  check_listing(s, "big", &ks, NULL, NULL, 1000);
  check_listing(s, "big", &ks, NULL, NULL, 5000); /* capped at 1000 */
  check_listing(s, "big", &ks, NULL, "/", 0);
  check_listing(s, "big", &ks, NULL, "/", 1);
  check_listing(s, "big", &ks, NULL, "/", 3);
  check_listing(s, "big", &ks, "dir", "/", 5);
  check_listing(s, "big", &ks, "dir/", "/", 4);
  check_listing(s, "big", &ks, "dir/", NULL, 333);
  check_listing(s, "big", &ks, "d", "/", 2);
  check_listing(s, "big", &ks, "\xC3\xA9", "/", 3);
  check_listing(s, "big", &ks, "dir\xC3\xA9", NULL, 50);
  check_listing(s, "big", &ks, "\xE6\x97\xA5\xE6\x9C\xAC/", "/", 6);
  check_listing(s, "big", &ks, "\xF0\x9F\x98\x80", "/", 9);
  check_listing(s, "big", &ks, "a/", "/", 11);
  check_listing(s, "big", &ks, "a/b/", "/", 0);
  check_listing(s, "big", &ks, NULL, "!", 13);
  check_listing(s, "big", &ks, NULL, " ", 17);
  check_listing(s, "big", &ks, NULL, "ir", 19);   /* multi-byte delimiter */
  check_listing(s, "big", &ks, NULL, "/d", 23);
  check_listing(s, "big", &ks, "dir", "\x7f", 4);
  check_listing(s, "big", &ks, NULL, "\xC3\xA9", 29);
  check_listing(s, "big", &ks, "nothing-here", "/", 10);
  check_listing(s, "big", &ks, "~", NULL, 1);
  check_listing(s, "big", &ks, "/", "/", 2);
  check_listing(s, "big", &ks, "", "/", 100);

  /* Arbitrary start_after values (existing or not) without delimiter:
   * the listing continues strictly after them. */
  t_rng r = t_rng_seed(99);
  for (int i = 0; i < 60; i++) {
    char mk[300];
    const char *base = ks.k[t_rng_below(&r, ks.n)];
    snprintf(mk, sizeof mk, "%s", base);
    if (i % 3 == 1) strcat(mk, "\x01");
    if (i % 3 == 2 && strlen(mk) > 1 &&
        (unsigned char)mk[strlen(mk) - 1] < 0x80)
      mk[strlen(mk) - 1] = 0;
    store_list_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.start_after = mk;
    lo.max_keys = 10;
    store_list_result lr;
    memset(&lr, 0, sizeof lr);
    T_OK(store_list(s, "big", &lo, &lr));
    size_t j = 0;
    while (j < ks.n && strcmp(ks.k[j], mk) <= 0) j++;
    size_t expect = ks.n - j < 10 ? ks.n - j : 10;
    T_EQ_U64(lr.n_entries, expect);
    for (size_t e = 0; e < lr.n_entries; e++)
      if (strcmp(lr.entries[e].key, ks.k[j + e]) != 0) {
        show("start_after", mk);
        show("got", lr.entries[e].key);
        show("expected", ks.k[j + e]);
        T_FAIL("start_after listing differs at %zu", e);
      }
    store_list_result_free(&lr);
  }

  /* Delete a third of the keys and list again. */
  keyset rest;
  rest.k = t_xmalloc(ks.n * sizeof(char *));
  rest.n = 0;
  for (size_t i = 0; i < ks.n; i++) {
    if (i % 3 == 0) T_OK(store_delete(s, "big", ks.k[i]));
    else rest.k[rest.n++] = ks.k[i];
  }
  check_listing(s, "big", &rest, NULL, NULL, 0);
  check_listing(s, "big", &rest, NULL, "/", 7);
  check_listing(s, "big", &rest, "dir", "/", 3);

  /* Survives reopen. */
  store_close(s);
  s = t_open_store();
  check_listing(s, "big", &rest, NULL, "/", 250);
  free(rest.k);
  for (size_t i = 0; i < ks.n; i++) free(ks.k[i]);
  free(ks.k);
  store_close(s);
}

/* A directory with many children and sub-directories, paged by small
 * pages: each sub-directory's prefix appears once although it covers
 * many more keys than a page holds. */
static void wide_prefixes(void) {
  store *s = fast_store();
  T_OK(store_bucket_create(s, "wide", NULL));
  keyset ks;
  ks.k = t_xmalloc(4000 * sizeof(char *));
  ks.n = 0;
  char k[128];
  for (int d = 0; d < 12; d++)
    for (int f = 0; f < 150; f++) {
      snprintf(k, sizeof k, "top/sub%02d/file%04d", d, f);
      ks.k[ks.n++] = strdup(k);
    }
  for (int f = 0; f < 40; f++) {
    snprintf(k, sizeof k, "top/file%02d", f);
    ks.k[ks.n++] = strdup(k);
    snprintf(k, sizeof k, "top/sub%02d!", f % 12); /* sorts before sub/ */
    ks.k[ks.n++] = strdup(k);
  }
  ks.k[ks.n++] = strdup("top/");
  qsort(ks.k, ks.n, sizeof(char *), cmp_str);
  size_t w = 0;
  for (size_t i = 0; i < ks.n; i++) {
    if (w && strcmp(ks.k[w - 1], ks.k[i]) == 0) {
      free(ks.k[i]);
      continue;
    }
    ks.k[w++] = ks.k[i];
  }
  ks.n = w;
  fill_bucket(s, "wide", &ks);
  check_listing(s, "wide", &ks, "top/", "/", 1);
  check_listing(s, "wide", &ks, "top/", "/", 2);
  check_listing(s, "wide", &ks, "top/", "/", 5);
  check_listing(s, "wide", &ks, "top/", "/", 0);
  check_listing(s, "wide", &ks, NULL, "/", 1);
  check_listing(s, "wide", &ks, "top/sub0", "/", 3);
  check_listing(s, "wide", &ks, "top/sub03/", "/", 40);
  for (size_t i = 0; i < ks.n; i++) free(ks.k[i]);
  free(ks.k);
  store_close(s);
}

/* Prefixes and keys holding characters that are wildcards in SQL LIKE or
 * GLOB, and letters that differ only in case: prefix matching is plain
 * byte comparison. */
static void wildcard_and_case_prefixes(void) {
  store *s = fast_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const char *keys[] = {
      "a%b",  "a%%",  "a_b",  "aXb",  "axb",  "ab",   "a*b",  "a?b",
      "a[b]", "a\\b", "A_b",  "A%b",  "abc/", "ABC/", "abc/x", "ABC/y",
      "e\xCC\x81", "\xC3\xA9", "E", "e", "a ", "a",
  };
  size_t n = sizeof keys / sizeof keys[0];
  keyset ks;
  ks.k = t_xmalloc(n * sizeof(char *));
  ks.n = n;
  for (size_t i = 0; i < n; i++) ks.k[i] = strdup(keys[i]);
  qsort(ks.k, ks.n, sizeof(char *), cmp_str);
  fill_bucket(s, "bkt", &ks);
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, n);
  /* Each key is its own object: heads of case or normalization variants
   * find their own bytes. */
  for (size_t i = 0; i < n; i++) T_CONTENT(s, "bkt", keys[i], keys[i],
                                           strlen(keys[i]));
  const char *prefixes[] = {"a_", "a%", "a*", "a?", "a[", "a\\", "A",
                            "a",  "ABC/", "abc/", "e", "E", "A_", "A%",
                            "a ", "%", "_", "*"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    check_listing(s, "bkt", &ks, prefixes[i], NULL, 0);
    check_listing(s, "bkt", &ks, prefixes[i], "/", 0);
    check_listing(s, "bkt", &ks, prefixes[i], "b", 2);
  }
  /* Delimiters that are wildcards too. */
  check_listing(s, "bkt", &ks, NULL, "%", 0);
  check_listing(s, "bkt", &ks, NULL, "_", 3);
  check_listing(s, "bkt", &ks, NULL, "*", 0);
  check_listing(s, "bkt", &ks, "a", "%", 1);

  /* Multipart listings with such prefixes. */
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "a_b", NULL, uid));
  T_OK(store_mpu_create(s, "bkt", "axb", NULL, uid));
  T_OK(store_mpu_create(s, "bkt", "A_b", NULL, uid));
  store_mpu_list_opts mo;
  memset(&mo, 0, sizeof mo);
  mo.prefix = "a_";
  store_mpu_list_result ml;
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", &mo, &ml));
  T_EQ_U64(ml.n_uploads, 1);
  T_EQ_STR(ml.uploads[0].key, "a_b");
  store_mpu_list_result_free(&ml);

  /* rename_prefix moves only what starts with the bytes of the prefix. */
  uint64_t moved = 0;
  T_OK(store_rename_prefix(s, "bkt", "a_", "moved_", &moved));
  T_EQ_U64(moved, 1);
  T_CONTENT(s, "bkt", "moved_b", "a_b", 3);
  T_CONTENT(s, "bkt", "axb", "axb", 3);
  T_CONTENT(s, "bkt", "A_b", "A_b", 3);
  T_OK(store_rename_prefix(s, "bkt", "abc/", "lower/", &moved));
  T_EQ_U64(moved, 2);
  T_CONTENT(s, "bkt", "ABC/y", "ABC/y", 5);
  T_CONTENT(s, "bkt", "lower/x", "abc/x", 5);
  for (size_t i = 0; i < ks.n; i++) free(ks.k[i]);
  free(ks.k);
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(byte_order_small);
  T_RUN(many_keys_paged);
  T_RUN(wide_prefixes);
  T_RUN(wildcard_and_case_prefixes);
  T_MAIN_END();
}
