/*
 * test_concurrency.c -- several processes (and threads) on one store.
 *
 * Processes are forked after the parent has closed its store handle; each
 * child opens its own (SQLite connections must not cross fork()).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include "libstore.h"
#include "harness.h"
#include "tutil.h"

/* Content of object (proc, i): deterministic, size 0..~300 KiB. */
static size_t obj_size(int proc, int i) {
  t_rng r = t_rng_seed((uint64_t)proc * 100000u + (uint64_t)i);
  uint64_t k = t_rng_below(&r, 10);
  if (k == 0) return 0;
  if (k < 5) return (size_t)t_rng_below(&r, 4096);
  return (size_t)t_rng_below(&r, 300 * KiB);
}

static uint8_t *obj_data(int proc, int i, size_t *n) {
  *n = obj_size(proc, i);
  return t_gen(*n, 0xABCD0000u + (uint64_t)proc * 100000u + (uint64_t)i);
}

static void child_fail(const char *what, int rc) {
  fprintf(stderr, "  child %d: %s: rc %d (%s: %s)\n", (int)getpid(), what, rc,
          store_strerror(rc), store_errmsg());
  _exit(1);
}

static void wait_go(int fd) {
  char c;
  if (t_read_full(fd, &c, 1) != 1) _exit(3);
}

/* A writer process: open the store, write `count` objects. */
static void writer_proc(int proc, int count, int go_fd) {
  wait_go(go_fd);
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open", rc);
  char key[64];
  for (int i = 0; i < count; i++) {
    size_t n;
    uint8_t *d = obj_data(proc, i, &n);
    snprintf(key, sizeof key, "p%d/obj%04d", proc, i);
    if (i % 3 == 0) {
      store_writer *w = NULL;
      rc = store_writer_open(s, "bkt", key, &w);
      if (rc) child_fail("store_writer_open", rc);
      size_t h = n / 2;
      rc = store_write(w, d, h);
      if (!rc) rc = store_write(w, d + h, n - h);
      if (rc) child_fail("store_write", rc);
      rc = store_writer_commit(w, NULL, NULL);
      if (rc) child_fail("store_writer_commit", rc);
    } else {
      rc = store_put(s, "bkt", key, d, n, NULL, NULL);
      if (rc) child_fail(key, rc);
    }
    free(d);
  }
  store_close(s);
  _exit(0);
}

/* A reader process: keep listing and reading what is there until it has
 * seen `expect` objects; everything listed must read back intact. */
static void reader_proc(int nprocs, int expect, int go_fd) {
  wait_go(go_fd);
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open (reader)", rc);
  t_rng r = t_rng_seed(5);
  for (int loop = 0; loop < 100000; loop++) {
    store_list_opts lo;
    memset(&lo, 0, sizeof lo);
    int total = 0;
    char *marker = NULL;
    for (;;) {
      lo.start_after = marker;
      store_list_result lr;
      memset(&lr, 0, sizeof lr);
      rc = store_list(s, "bkt", &lo, &lr);
      if (rc) child_fail("store_list (reader)", rc);
      total += (int)lr.n_entries;
      if (lr.n_entries) {
        const store_list_entry *e =
            &lr.entries[t_rng_below(&r, lr.n_entries)];
        int p, i;
        if (sscanf(e->key, "p%d/obj%d", &p, &i) != 2 || p < 0 ||
            p >= nprocs) {
          fprintf(stderr, "  reader: unexpected key %s\n", e->key);
          _exit(1);
        }
        size_t n;
        uint8_t *want = obj_data(p, i, &n);
        uint8_t *got = NULL;
        size_t gn = 0;
        rc = t_read_all(s, "bkt", e->key, &got, &gn);
        if (rc) child_fail(e->key, rc);
        if (gn != n || memcmp(got, want, n) != 0) {
          fprintf(stderr, "  reader: %s content differs\n", e->key);
          _exit(1);
        }
        free(got);
        free(want);
      }
      free(marker);
      marker = lr.truncated ? strdup(lr.next_marker) : NULL;
      store_list_result_free(&lr);
      if (!marker) break;
    }
    if (total == expect) break;
    t_sleep_us(1000);
    if (total > expect) {
      fprintf(stderr, "  reader: listed %d objects, max %d\n", total, expect);
      _exit(1);
    }
  }
  store_close(s);
  _exit(0);
}

static void verify_all(store *s, int nprocs, int count) {
  char key[64];
  for (int p = 0; p < nprocs; p++)
    for (int i = 0; i < count; i++) {
      size_t n;
      uint8_t *d = obj_data(p, i, &n);
      snprintf(key, sizeof key, "p%d/obj%04d", p, i);
      T_CONTENT(s, "bkt", key, d, n);
      free(d);
    }
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, (uint64_t)nprocs * (uint64_t)count);
}

static void two_processes_writing(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_close(s);
  int go[2];
  T_ASSERT(pipe(go) == 0);
  pid_t pids[3];
  for (int p = 0; p < 2; p++) {
    pids[p] = fork();
    T_ASSERT(pids[p] >= 0);
    if (pids[p] == 0) {
      close(go[1]);
      writer_proc(p, 200, go[0]);
    }
  }
  pids[2] = fork();
  T_ASSERT(pids[2] >= 0);
  if (pids[2] == 0) {
    close(go[1]);
    reader_proc(2, 400, go[0]);
  }
  close(go[0]);
  T_ASSERT(write(go[1], "ggg", 3) == 3);
  close(go[1]);
  int bad = 0;
  for (int p = 0; p < 3; p++) bad |= t_wait_ok(pids[p]);
  T_ASSERT(bad == 0);

  s = t_open_store();
  verify_all(s, 2, 200);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_ASSERT(fr.objects_checked >= 400);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Threads sharing one store *. */
typedef struct thr_arg {
  store *s;
  int id;
  int rc;
  char why[200];
} thr_arg;

static void *thr_main(void *p) {
  thr_arg *a = p;
  char key[64];
  for (int i = 0; i < 60; i++) {
    size_t n;
    uint8_t *d = obj_data(10 + a->id, i, &n);
    snprintf(key, sizeof key, "p%d/obj%04d", 10 + a->id, i);
    int rc = store_put(a->s, "bkt", key, d, n, NULL, NULL);
    if (rc) {
      a->rc = rc;
      snprintf(a->why, sizeof a->why, "put %s: %s: %s", key,
               store_strerror(rc), store_errmsg());
      free(d);
      return NULL;
    }
    /* a commit that fails (metadata too large) in the middle of the
     * others: it alone is rolled back */
    if (i % 5 == 2) {
      static char bigval[STORE_META_MAX + 10];
      if (!bigval[0]) memset(bigval, 'm', sizeof bigval - 1);
      store_kv meta[1] = {{"big", bigval}};
      store_put_opts po;
      memset(&po, 0, sizeof po);
      po.meta = meta;
      po.n_meta = 1;
      char bad[64];
      snprintf(bad, sizeof bad, "bad/%d/%d", a->id, i);
      rc = store_put(a->s, "bkt", bad, d, n, &po, NULL);
      if (rc != STORE_ERR_TOO_LARGE) {
        a->rc = rc ? rc : -1;
        snprintf(a->why, sizeof a->why, "oversized put %s: rc %d", bad, rc);
        free(d);
        return NULL;
      }
    }
    /* read back something written earlier by this thread */
    int j = i / 2;
    size_t jn;
    uint8_t *jd = obj_data(10 + a->id, j, &jn);
    snprintf(key, sizeof key, "p%d/obj%04d", 10 + a->id, j);
    uint8_t *got = NULL;
    size_t gn = 0;
    rc = t_read_all(a->s, "bkt", key, &got, &gn);
    if (rc || gn != jn || memcmp(got, jd, jn) != 0) {
      a->rc = rc ? rc : -1;
      snprintf(a->why, sizeof a->why, "read back %s: rc %d", key, rc);
      free(got);
      free(jd);
      free(d);
      return NULL;
    }
    free(got);
    free(jd);
    free(d);
    if (i % 20 == 19) {
      store_stats st;
      rc = store_stats_get(a->s, &st);
      if (rc) {
        a->rc = rc;
        snprintf(a->why, sizeof a->why, "stats: %s", store_strerror(rc));
        return NULL;
      }
    }
  }
  return NULL;
}

static void threads_sharing_store(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  pthread_t th[4];
  thr_arg args[4];
  for (int i = 0; i < 4; i++) {
    memset(&args[i], 0, sizeof args[i]);
    args[i].s = s;
    args[i].id = i;
    T_ASSERT(pthread_create(&th[i], NULL, thr_main, &args[i]) == 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++)
    if (args[i].rc) T_FAIL("thread %d: %s", i, args[i].why);
  char key[64];
  for (int t = 0; t < 4; t++)
    for (int i = 0; i < 60; i++) {
      size_t n;
      uint8_t *d = obj_data(10 + t, i, &n);
      snprintf(key, sizeof key, "p%d/obj%04d", 10 + t, i);
      T_CONTENT(s, "bkt", key, d, n);
      free(d);
    }
  /* None of the failed commits is visible. */
  store_list_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.prefix = "bad/";
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_entries, 0);
  store_list_result_free(&lr);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* GC racing writers. */
static size_t gc_obj_size(int w, int i) {
  t_rng r = t_rng_seed(777u + (uint64_t)w * 1000u + (uint64_t)i);
  return 200 * KiB + (size_t)t_rng_below(&r, 900 * KiB);
}
static uint64_t gc_obj_seed(int w, int i) {
  return 0x6C000000u + (uint64_t)w * 1000u + (uint64_t)i;
}

static void gc_writer_proc(int w, int count, int go_fd) {
  wait_go(go_fd);
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open (gc writer)", rc);
  char tmp[64], keep[64];
  t_rng r = t_rng_seed(4000u + (uint64_t)w);
  for (int i = 0; i < count; i++) {
    size_t n = gc_obj_size(w, i);
    uint8_t *d = t_gen(n, gc_obj_seed(w, i));
    snprintf(tmp, sizeof tmp, "tmp/w%d-%03d", w, i);
    snprintf(keep, sizeof keep, "keep/w%d-%03d", w, i);
    /* Write the content, drop it (its chunks become garbage), and write
     * the same content again, slowly, while GC runs. */
    rc = store_put(s, "bkt", tmp, d, n, NULL, NULL);
    if (rc) child_fail(tmp, rc);
    rc = store_delete(s, "bkt", tmp);
    if (rc) child_fail("delete tmp", rc);
    if (i % 4 == 3) t_sleep_us((long)t_rng_below(&r, 3000));
    store_writer *wr = NULL;
    rc = store_writer_open(s, "bkt", keep, &wr);
    if (rc) child_fail("writer_open keep", rc);
    size_t off = 0;
    int pieces = 0;
    while (off < n) {
      size_t k = 64 * KiB + (size_t)t_rng_below(&r, 128 * KiB);
      if (k > n - off) k = n - off;
      rc = store_write(wr, d + off, k);
      if (rc) child_fail("write keep", rc);
      off += k;
      if (pieces++ % 3 == 1) t_sleep_us((long)t_rng_below(&r, 2000));
    }
    rc = store_writer_commit(wr, NULL, NULL);
    if (rc) child_fail(keep, rc);
    /* Also a plain copy-by-content of an earlier, now deleted object. */
    if (i > 0 && i % 5 == 0) {
      size_t pn = gc_obj_size(w, i - 1);
      uint8_t *pd = t_gen(pn, gc_obj_seed(w, i - 1));
      char k2[64];
      snprintf(k2, sizeof k2, "keep/w%d-%03d-again", w, i - 1);
      rc = store_put(s, "bkt", k2, pd, pn, NULL, NULL);
      if (rc) child_fail(k2, rc);
      free(pd);
    }
    free(d);
  }
  store_close(s);
  _exit(0);
}

static void gc_loop_proc(int stop_fd, int go_fd) {
  wait_go(go_fd);
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open (gc)", rc);
  int runs = 0;
  for (;;) {
    store_gc_report gr;
    memset(&gr, 0, sizeof gr);
    rc = store_gc(s, NULL, NULL, &gr);
    if (rc) child_fail("store_gc", rc);
    runs++;
    struct pollfd pf = {stop_fd, POLLIN, 0};
    if (poll(&pf, 1, 0) > 0) break;
    t_sleep_us(200);
  }
  fprintf(stderr, "  (gc ran %d times)\n", runs);
  store_close(s);
  _exit(0);
}

static void verify_gc_objects(store *s, int nw, int count) {
  char keep[64];
  for (int w = 0; w < nw; w++)
    for (int i = 0; i < count; i++) {
      size_t n = gc_obj_size(w, i);
      uint8_t *d = t_gen(n, gc_obj_seed(w, i));
      snprintf(keep, sizeof keep, "keep/w%d-%03d", w, i);
      T_CONTENT(s, "bkt", keep, d, n);
      if (i + 1 < count && (i + 1) % 5 == 0) {
        snprintf(keep, sizeof keep, "keep/w%d-%03d-again", w, i);
        T_CONTENT(s, "bkt", keep, d, n);
      }
      free(d);
    }
}

static void gc_racing_writers(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_close(s);
  const int NW = 2, COUNT = 40;
  int go[2], stop[2];
  T_ASSERT(pipe(go) == 0 && pipe(stop) == 0);
  pid_t gcpid = fork();
  T_ASSERT(gcpid >= 0);
  if (gcpid == 0) {
    close(go[1]);
    close(stop[1]);
    gc_loop_proc(stop[0], go[0]);
  }
  close(stop[0]);
  pid_t wp[2];
  for (int w = 0; w < NW; w++) {
    wp[w] = fork();
    T_ASSERT(wp[w] >= 0);
    if (wp[w] == 0) {
      close(go[1]);
      close(stop[1]);
      gc_writer_proc(w, COUNT, go[0]);
    }
  }
  close(go[0]);
  T_ASSERT(write(go[1], "ggg", 3) == 3);
  close(go[1]);
  int bad = 0;
  for (int w = 0; w < NW; w++) bad |= t_wait_ok(wp[w]);
  T_ASSERT(write(stop[1], "s", 1) == 1);
  close(stop[1]);
  bad |= t_wait_ok(gcpid);
  T_ASSERT(bad == 0);

  s = t_open_store();
  verify_gc_objects(s, NW, COUNT);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.chunks_missing, 0);
  T_EQ_U64(fr.objects_damaged, 0);
  T_EQ_U64(fr.refcount_wrong, 0);
  T_OK(store_gc(s, NULL, NULL, NULL));
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.orphan_files, 0);
  verify_gc_objects(s, NW, COUNT);
  store_stats st = t_stats(s);
  T_EQ_U64(st.unreferenced_bytes, 0);
  store_close(s);
}

/* Deterministic: a writer holds bytes identical to a deleted object's when
 * GC runs, in the same process, then commits. */
static void gc_during_open_writer_same_process(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 6 * MiB + 5;
  uint8_t *d = t_gen(n, 61);
  t_put(s, "bkt", "victim", d, n);
  T_OK(store_delete(s, "bkt", "victim"));
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "survivor", &w));
  T_OK(store_write(w, d, n / 2));
  T_OK(store_gc(s, NULL, NULL, NULL)); /* deleted object's chunks go */
  T_OK(store_write(w, d + n / 2, n - n / 2));
  T_OK(store_gc(s, NULL, NULL, NULL)); /* the writer's must not */
  store_stats st = t_stats(s);
  (void)st;
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "survivor", d, n);
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "survivor", d, n);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));

  /* Same with an edit writer and a part writer. */
  t_put(s, "bkt", "victim2", d, n);
  T_OK(store_delete(s, "bkt", "victim2"));
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "edited", &w));
  T_OK(store_pwrite(w, d, n, 0));
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_OK(store_writer_commit(w, NULL, NULL));
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "edited", d, n);

  t_put(s, "bkt", "victim3", d, n);
  T_OK(store_delete(s, "bkt", "victim3"));
  char uid[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "bkt", "mp", NULL, uid));
  w = NULL;
  T_OK(store_writer_open_part(s, "bkt", "mp", uid, 1, &w));
  T_OK(store_write(w, d, n));
  T_OK(store_gc(s, NULL, NULL, NULL));
  store_object_info out;
  memset(&out, 0, sizeof out);
  T_OK(store_writer_commit(w, NULL, &out));
  T_OK(store_gc(s, NULL, NULL, NULL)); /* a committed part is not garbage */
  store_part_ref ref = {1, out.etag};
  T_OK(store_mpu_complete(s, "bkt", "mp", uid, &ref, 1, NULL));
  store_object_info_free(&out);
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "mp", d, n);
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(d);
  store_close(s);
}

/* Same, across processes: the child holds an open writer, the parent
 * collects garbage through its own handle, then the child commits. */
static void gc_during_open_writer_other_process(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 5 * MiB + 77;
  uint8_t *d = t_gen(n, 62);
  t_put(s, "bkt", "victim", d, n);
  T_OK(store_delete(s, "bkt", "victim"));
  store_close(s);

  int to_child[2], to_parent[2];
  T_ASSERT(pipe(to_child) == 0 && pipe(to_parent) == 0);
  pid_t pid = fork();
  T_ASSERT(pid >= 0);
  if (pid == 0) {
    close(to_child[1]);
    close(to_parent[0]);
    store *cs = NULL;
    int rc = store_open(t_store_dir(), NULL, &cs);
    if (rc) child_fail("store_open", rc);
    store_writer *w = NULL;
    rc = store_writer_open(cs, "bkt", "survivor", &w);
    if (rc) child_fail("writer_open", rc);
    rc = store_write(w, d, n);
    if (rc) child_fail("write", rc);
    if (write(to_parent[1], "w", 1) != 1) _exit(4);
    char c;
    if (t_read_full(to_child[0], &c, 1) != 1) _exit(5);
    rc = store_writer_commit(w, NULL, NULL);
    if (rc) child_fail("commit", rc);
    store_close(cs);
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);
  char c;
  T_ASSERT(t_read_full(to_parent[0], &c, 1) == 1);
  s = t_open_store();
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_ASSERT(write(to_child[1], "c", 1) == 1);
  T_ASSERT(t_wait_ok(pid) == 0);
  T_CONTENT(s, "bkt", "survivor", d, n);
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "survivor", d, n);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(d);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Conditional commits racing: if-none-match lets exactly one writer win;
 * if-match read-modify-write loops lose no increment. */
#define RACE_KEYS 40
#define RACE_THREADS 4
#define INCS 25

typedef struct race_arg {
  store *s;
  int id;
  int won[RACE_KEYS];
  int rc;
  char why[200];
} race_arg;

static int counter_increment(store *s, const char *key, char *why,
                             size_t whylen) {
  for (int attempt = 0; attempt < 100000; attempt++) {
    store_object_info h;
    memset(&h, 0, sizeof h);
    int rc = store_head(s, "bkt", key, NULL, &h);
    if (rc) {
      snprintf(why, whylen, "head counter: %s: %s", store_strerror(rc),
               store_errmsg());
      return rc;
    }
    char etag[STORE_ETAG_MAX];
    snprintf(etag, sizeof etag, "%s", h.etag);
    store_object_info_free(&h);
    uint8_t *d = NULL;
    size_t n = 0;
    rc = t_read_all(s, "bkt", key, &d, &n);
    if (rc == STORE_ERR_NO_KEY) continue; /* replaced under us: retry */
    if (rc) {
      snprintf(why, whylen, "read counter: %d", rc);
      return rc;
    }
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(n < 31 ? n : 31), (char *)d);
    free(d);
    long v = strtol(num, NULL, 10);
    char nv[32];
    int nl = snprintf(nv, sizeof nv, "%ld", v + 1);
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.if_match = etag;
    rc = store_put(s, "bkt", key, nv, (size_t)nl, &po, NULL);
    if (rc == STORE_OK) return 0;
    if (rc != STORE_ERR_PRECONDITION) {
      snprintf(why, whylen, "put counter: %s: %s", store_strerror(rc),
               store_errmsg());
      return rc;
    }
  }
  snprintf(why, whylen, "counter: no progress");
  return -1;
}

static void *race_main(void *p) {
  race_arg *a = p;
  char key[32], val[64];
  for (int k = 0; k < RACE_KEYS; k++) {
    snprintf(key, sizeof key, "race/%02d", k);
    int n = snprintf(val, sizeof val, "thread %d wins key %d", a->id, k);
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.if_none_match_star = 1;
    int rc = store_put(a->s, "bkt", key, val, (size_t)n, &po, NULL);
    if (rc == STORE_OK) a->won[k] = 1;
    else if (rc != STORE_ERR_PRECONDITION) {
      a->rc = rc;
      snprintf(a->why, sizeof a->why, "put %s: %s: %s", key,
               store_strerror(rc), store_errmsg());
      return NULL;
    }
  }
  for (int i = 0; i < INCS; i++) {
    int rc = counter_increment(a->s, "counter", a->why, sizeof a->why);
    if (rc) {
      a->rc = rc;
      return NULL;
    }
  }
  return NULL;
}

static void check_counter(store *s, long want) {
  uint8_t *d = NULL;
  size_t n = 0;
  T_OK(t_read_all(s, "bkt", "counter", &d, &n));
  char num[32];
  snprintf(num, sizeof num, "%.*s", (int)(n < 31 ? n : 31), (char *)d);
  free(d);
  if (strtol(num, NULL, 10) != want)
    T_FAIL("counter is %s after %ld acknowledged if-match increments", num,
           want);
}

static void conditional_races_threads(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  t_put(s, "bkt", "counter", "0", 1);
  pthread_t th[RACE_THREADS];
  race_arg args[RACE_THREADS];
  for (int i = 0; i < RACE_THREADS; i++) {
    memset(&args[i], 0, sizeof args[i]);
    args[i].s = s;
    args[i].id = i;
    T_ASSERT(pthread_create(&th[i], NULL, race_main, &args[i]) == 0);
  }
  for (int i = 0; i < RACE_THREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < RACE_THREADS; i++)
    if (args[i].rc) T_FAIL("thread %d: %s", i, args[i].why);
  char key[32], val[64];
  for (int k = 0; k < RACE_KEYS; k++) {
    int winners = 0, who = -1;
    for (int i = 0; i < RACE_THREADS; i++)
      if (args[i].won[k]) {
        winners++;
        who = i;
      }
    if (winners != 1)
      T_FAIL("race/%02d: %d writers succeeded with if-none-match *", k,
             winners);
    snprintf(key, sizeof key, "race/%02d", k);
    int n = snprintf(val, sizeof val, "thread %d wins key %d", who, k);
    T_CONTENT(s, "bkt", key, val, (size_t)n);
  }
  check_counter(s, RACE_THREADS * INCS);
  store_close(s);
}

static void conditional_races_processes(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  t_put(s, "bkt", "counter", "0", 1);
  store_close(s);
  const int NP = 3;
  int go[2], res[2];
  T_ASSERT(pipe(go) == 0 && pipe(res) == 0);
  pid_t pids[3];
  for (int p = 0; p < NP; p++) {
    pids[p] = fork();
    T_ASSERT(pids[p] >= 0);
    if (pids[p] == 0) {
      close(go[1]);
      close(res[0]);
      wait_go(go[0]);
      store *cs = NULL;
      int rc = store_open(t_store_dir(), NULL, &cs);
      if (rc) child_fail("store_open", rc);
      race_arg a;
      memset(&a, 0, sizeof a);
      a.s = cs;
      a.id = p;
      race_main(&a);
      if (a.rc) {
        fprintf(stderr, "  process %d: %s\n", p, a.why);
        _exit(1);
      }
      /* report wins: RACE_KEYS bytes */
      char w[RACE_KEYS];
      for (int k = 0; k < RACE_KEYS; k++) w[k] = (char)a.won[k];
      if (t_write_full(res[1], w, sizeof w) != 0) _exit(6);
      store_close(cs);
      _exit(0);
    }
  }
  close(go[0]);
  close(res[1]);
  T_ASSERT(write(go[1], "ggg", 3) == 3);
  close(go[1]);
  int wins[RACE_KEYS];
  memset(wins, 0, sizeof wins);
  for (int p = 0; p < NP; p++) {
    char w[RACE_KEYS];
    if (t_read_full(res[0], w, sizeof w) != (ssize_t)sizeof w) break;
    for (int k = 0; k < RACE_KEYS; k++) wins[k] += w[k];
  }
  close(res[0]);
  int bad = 0;
  for (int p = 0; p < NP; p++) bad |= t_wait_ok(pids[p]);
  T_ASSERT(bad == 0);
  for (int k = 0; k < RACE_KEYS; k++)
    if (wins[k] != 1)
      T_FAIL("race/%02d: %d processes succeeded with if-none-match *", k,
             wins[k]);
  s = t_open_store();
  check_counter(s, NP * INCS);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Readers against a process that keeps overwriting one key and another
 * that collects garbage: every read returns exactly the version the
 * reader opened (its metadata names it) or, once that version has been
 * collected, fails cleanly; never a mix. One-page listings taken while a
 * directory is renamed back and forth never show it split. */
#define HOT_FILES 30

static size_t hot_size(uint32_t v) { return 100 * KiB + (v % 17) * 150 * KiB; }

static void overwriter_proc(int go_fd, int stop_fd) {
  wait_go(go_fd);
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open (overwriter)", rc);
  char vs[16];
  for (uint32_t v = 1;; v++) {
    size_t n = hot_size(v);
    uint8_t *d = t_gen(n, 0x40000000u + v);
    snprintf(vs, sizeof vs, "%u", v);
    store_kv meta[1] = {{"v", vs}};
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.meta = meta;
    po.n_meta = 1;
    rc = store_put(s, "bkt", "hot", d, n, &po, NULL);
    if (rc) child_fail("overwrite hot", rc);
    free(d);
    /* and a directory rename */
    int in_a = v % 2; /* starts in A/ */
    uint64_t moved = 0;
    rc = store_rename_prefix(s, "bkt", in_a ? "A/" : "B/", in_a ? "B/" : "A/",
                             &moved);
    if (rc) child_fail("rename_prefix", rc);
    struct pollfd pf = {stop_fd, POLLIN, 0};
    if (poll(&pf, 1, 0) > 0) break;
  }
  store_close(s);
  _exit(0);
}

static void hot_reader_proc(int go_fd, int loops) {
  wait_go(go_fd);
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open (hot reader)", rc);
  uint8_t *buf = t_xmalloc(3 * MiB);
  int ok = 0, gone = 0, splits_checked = 0;
  for (int i = 0; i < loops; i++) {
    store_reader *r = NULL;
    store_object_info info;
    memset(&info, 0, sizeof info);
    rc = store_reader_open(s, "bkt", "hot", NULL, &r, &info);
    if (rc) child_fail("reader_open hot", rc);
    const char *vs = t_kv_find(info.meta, info.n_meta, "v");
    if (!vs) {
      fprintf(stderr, "  hot reader: no version metadata\n");
      _exit(1);
    }
    uint32_t v = (uint32_t)strtoul(vs, NULL, 10);
    size_t n = hot_size(v);
    if (store_reader_size(r) != n || info.size != n) {
      fprintf(stderr, "  hot reader: version %u size %llu, expected %zu\n", v,
              (unsigned long long)store_reader_size(r), n);
      _exit(1);
    }
    store_object_info_free(&info);
    uint64_t off = 0;
    while (off < n) {
      size_t got = 0;
      rc = store_read(r, buf + off, 64 * KiB + 3, off, &got);
      if (rc) break;
      if (!got) break;
      off += got;
      if (off < n && (off / (64 * KiB)) % 4 == 0) t_sleep_us(200);
    }
    store_reader_close(r);
    if (rc == STORE_ERR_NO_KEY) {
      gone++; /* docs/durability.md: a collected version reads as NO_KEY */
    } else if (rc) {
      child_fail("read of an overwritten version while GC runs (expected "
                 "the bytes or STORE_ERR_NO_KEY)",
                 rc);
    } else {
      uint8_t *want = t_gen(n, 0x40000000u + v);
      if (off != n || memcmp(buf, want, n) != 0) {
        fprintf(stderr, "  hot reader: version %u read back wrong bytes\n",
                v);
        _exit(1);
      }
      free(want);
      ok++;
    }
    /* one-page listing of the whole bucket: the directory is whole */
    store_list_result lr;
    memset(&lr, 0, sizeof lr);
    rc = store_list(s, "bkt", NULL, &lr);
    if (rc) child_fail("list", rc);
    int a = 0, b = 0;
    for (size_t j = 0; j < lr.n_entries; j++) {
      if (!strncmp(lr.entries[j].key, "A/", 2)) a++;
      if (!strncmp(lr.entries[j].key, "B/", 2)) b++;
    }
    store_list_result_free(&lr);
    if (!((a == HOT_FILES && b == 0) || (b == HOT_FILES && a == 0))) {
      fprintf(stderr, "  listing shows the directory split: %d in A/, %d in "
                      "B/\n", a, b);
      _exit(1);
    }
    splits_checked++;
  }
  fprintf(stderr, "  (hot reader %d: %d intact reads, %d collected, %d "
                  "listings)\n",
          (int)getpid(), ok, gone, splits_checked);
  free(buf);
  store_close(s);
  _exit(ok > 0 ? 0 : 1);
}

static void readers_vs_overwriter_and_gc(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char key[32];
  for (int i = 0; i < HOT_FILES; i++) {
    snprintf(key, sizeof key, "A/f%02d", i);
    t_put(s, "bkt", key, key, strlen(key));
  }
  {
    size_t n = hot_size(0);
    uint8_t *d = t_gen(n, 0x40000000u);
    store_kv meta[1] = {{"v", "0"}};
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.meta = meta;
    po.n_meta = 1;
    T_OK(store_put(s, "bkt", "hot", d, n, &po, NULL));
    free(d);
  }
  store_close(s);
  int go[2], stop[2];
  T_ASSERT(pipe(go) == 0 && pipe(stop) == 0);
  pid_t ow = fork();
  T_ASSERT(ow >= 0);
  if (ow == 0) {
    close(go[1]);
    close(stop[1]);
    overwriter_proc(go[0], stop[0]);
  }
  pid_t gc = fork();
  T_ASSERT(gc >= 0);
  if (gc == 0) {
    close(go[1]);
    close(stop[1]);
    gc_loop_proc(stop[0], go[0]);
  }
  close(stop[0]);
  pid_t rd[2];
  for (int i = 0; i < 2; i++) {
    rd[i] = fork();
    T_ASSERT(rd[i] >= 0);
    if (rd[i] == 0) {
      close(go[1]);
      close(stop[1]);
      hot_reader_proc(go[0], 300);
    }
  }
  close(go[0]);
  T_ASSERT(write(go[1], "gggg", 4) == 4);
  close(go[1]);
  int bad = 0;
  for (int i = 0; i < 2; i++) bad |= t_wait_ok(rd[i]);
  T_ASSERT(write(stop[1], "ss", 2) == 2);
  close(stop[1]);
  bad |= t_wait_ok(ow);
  bad |= t_wait_ok(gc);
  T_ASSERT(bad == 0);
  s = t_open_store();
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  T_RUN(two_processes_writing);
  T_RUN(threads_sharing_store);
  T_RUN(gc_racing_writers);
  T_RUN(gc_during_open_writer_same_process);
  T_RUN(gc_during_open_writer_other_process);
  T_RUN(conditional_races_threads);
  T_RUN(conditional_races_processes);
  T_RUN(readers_vs_overwriter_and_gc);
  T_MAIN_END();
}
