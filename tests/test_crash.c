/*
 * test_crash.c -- kill -9 at random moments.
 *
 * A forked writer child performs a deterministic sequence of operations and
 * reports each one that returned STORE_OK on a pipe (the acknowledgement).
 * The parent SIGKILLs it after a varying delay (sometimes during
 * store_open, sometimes mid-write, sometimes mid-commit), then opens the
 * store and checks:
 *   - store_fsck returns STORE_OK (orphan chunks are not damage);
 *   - every acknowledged operation is visible and intact;
 *   - nothing is half-visible: each object is exactly one version (its
 *     size, content and metadata agree), either the acknowledged one or the
 *     one in flight when the child died;
 *   - store_gc afterwards leaves fsck clean and no stray chunk.
 */
#include <nettle/sha2.h>
#include <signal.h>
#include <sys/stat.h>

#include "libstore.h"
#include "harness.h"
#include "tutil.h"

#define SLOTS 37

static void child_fail(const char *what, int rc) {
  fprintf(stderr, "  writer child: %s: rc %d (%s: %s)\n", what, rc,
          store_strerror(rc), store_errmsg());
  _exit(1);
}

static void ack(int fd, uint32_t idx) {
  if (t_write_full(fd, &idx, sizeof idx) != 0) _exit(7);
}

/* Read every acknowledgement after the child died. */
static uint32_t *read_acks(int fd, size_t *n) {
  size_t cap = 1024;
  uint32_t *a = t_xmalloc(cap * sizeof *a);
  *n = 0;
  for (;;) {
    uint32_t v;
    ssize_t r = t_read_full(fd, &v, sizeof v);
    if (r == 0) break;
    if (r != (ssize_t)sizeof v) T_FAIL("torn acknowledgement");
    if (*n == cap) {
      cap *= 2;
      a = realloc(a, cap * sizeof *a);
    }
    a[(*n)++] = v;
  }
  return a;
}

/* Kill the child after `us` microseconds; fail if it died by itself with
 * an error. Returns 1 if it was killed, 0 if it finished. */
static int kill_after(pid_t pid, long us) {
  t_sleep_us(us);
  kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) return 1;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFEXITED(st)) T_FAIL("writer child exited %d", WEXITSTATUS(st));
  T_FAIL("writer child died of signal %d", WTERMSIG(st));
  return 0;
}

/* A one-line summary per test of (delay in us : acknowledged operations)
 * per round, so the log shows where the kills landed. */
static char sum_buf[2048];
static void sum_add(long delay, size_t acks) {
  size_t l = strlen(sum_buf);
  if (l + 40 < sizeof sum_buf)
    snprintf(sum_buf + l, sizeof sum_buf - l, " %ld:%zu", delay, acks);
}
static void sum_print(const char *what) {
  fprintf(stderr, "  (%s rounds, delay_us:acks:%s)\n", what, sum_buf);
  sum_buf[0] = 0;
}

static long pick_delay(t_rng *r, int round) {
  static const long base[] = {200,   3000,  12000,  25000,  40000,
                              60000, 90000, 130000, 200000, 350000};
  long b = base[round % (int)(sizeof base / sizeof base[0])];
  return b + (long)t_rng_below(r, (uint64_t)b);
}

static void fsck_ok(store *s, const char *when) {
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  int rc = store_fsck(s, 0, NULL, NULL, &fr);
  if (rc != STORE_OK || !fr.catalog_ok || fr.chunks_corrupt ||
      fr.chunks_missing || fr.objects_damaged)
    T_FAIL("fsck %s: rc %d (%s: %s) catalog_ok %d corrupt %llu missing "
           "%llu refcount_wrong %llu damaged %llu orphans %llu",
           when, rc, store_strerror(rc), store_errmsg(), fr.catalog_ok,
           (unsigned long long)fr.chunks_corrupt,
           (unsigned long long)fr.chunks_missing,
           (unsigned long long)fr.refcount_wrong,
           (unsigned long long)fr.objects_damaged,
           (unsigned long long)fr.orphan_files);
}

static void final_gc_clean(store *s) {
  store_gc_report gr;
  memset(&gr, 0, sizeof gr);
  T_OK(store_gc(s, NULL, NULL, &gr));
  fsck_ok(s, "after the final gc");
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  if (fr.orphan_files)
    T_FAIL("after GC with no writer alive, fsck still counts %llu orphan "
           "chunk files (stray chunks of killed writers)",
           (unsigned long long)fr.orphan_files);
  store_stats st = t_stats(s);
  T_EQ_U64(st.unreferenced_bytes, 0);
}

/* ------------------------------------------------------------------ */
/* Whole-object writes.  Operation idx: slot idx % SLOTS; every 11th
 * operation deletes the slot, the others write version idx. */
static int op_is_delete(uint32_t idx) { return idx % 11 == 5; }
static unsigned op_slot(uint32_t idx) { return (idx * 7u) % SLOTS; }
static size_t op_size(uint32_t idx) {
  t_rng r = t_rng_seed(0xC0000000u + idx);
  if (t_rng_below(&r, 5) == 0) return (size_t)t_rng_below(&r, 4096);
  return (size_t)t_rng_below(&r, 3 * MiB + 1);
}
static uint64_t op_seed(uint32_t idx) { return 0xD0000000ull + idx; }

static void put_child(uint32_t first, uint32_t count, int ack_fd) {
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open", rc);
  char key[32], ver[16];
  for (uint32_t idx = first; idx < first + count; idx++) {
    snprintf(key, sizeof key, "obj/%02u", op_slot(idx));
    if (op_is_delete(idx)) {
      rc = store_delete(s, "bkt", key);
      if (rc && rc != STORE_ERR_NO_KEY) child_fail("delete", rc);
      ack(ack_fd, idx);
      continue;
    }
    size_t n = op_size(idx);
    uint8_t *d = t_gen(n, op_seed(idx));
    snprintf(ver, sizeof ver, "%u", idx);
    store_kv meta[1] = {{"idx", ver}};
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.meta = meta;
    po.n_meta = 1;
    if (idx % 2) {
      rc = store_put(s, "bkt", key, d, n, &po, NULL);
      if (rc) child_fail("put", rc);
    } else {
      store_writer *w = NULL;
      rc = store_writer_open(s, "bkt", key, &w);
      if (rc) child_fail("writer_open", rc);
      size_t off = 0;
      while (off < n) {
        size_t k = n - off < 300000 ? n - off : 300000;
        rc = store_write(w, d + off, k);
        if (rc) child_fail("write", rc);
        off += k;
      }
      rc = store_writer_commit(w, &po, NULL);
      if (rc) child_fail("commit", rc);
    }
    free(d);
    ack(ack_fd, idx);
  }
  store_close(s);
  _exit(0);
}

/* state per slot: -1 absent, else idx of the version */
static void apply_op(int64_t *state, uint32_t idx) {
  state[op_slot(idx)] = op_is_delete(idx) ? -1 : (int64_t)idx;
}

static void verify_slots(store *s, const int64_t *state, int has_inflight,
                         uint32_t inflight) {
  char key[32];
  int present = 0;
  for (unsigned slot = 0; slot < SLOTS; slot++) {
    snprintf(key, sizeof key, "obj/%02u", slot);
    int64_t allowed[2] = {state[slot], state[slot]};
    if (has_inflight && op_slot(inflight) == slot)
      allowed[1] = op_is_delete(inflight) ? -1 : (int64_t)inflight;
    store_object_info h;
    memset(&h, 0, sizeof h);
    int rc = store_head(s, "bkt", key, NULL, &h);
    if (rc == STORE_ERR_NO_KEY) {
      if (allowed[0] != -1 && allowed[1] != -1)
        T_FAIL("%s is missing; acknowledged version %lld", key,
               (long long)allowed[0]);
      continue;
    }
    if (rc != STORE_OK)
      T_FAIL("head %s: rc %d (%s: %s)", key, rc, store_strerror(rc),
             store_errmsg());
    present++;
    const char *v = t_kv_find(h.meta, h.n_meta, "idx");
    if (!v) T_FAIL("%s has no idx metadata", key);
    int64_t idx = strtoll(v, NULL, 10);
    if (idx != allowed[0] && idx != allowed[1])
      T_FAIL("%s holds version %lld; acknowledged %lld, in flight %lld",
             key, (long long)idx, (long long)allowed[0],
             (long long)allowed[1]);
    size_t n = op_size((uint32_t)idx);
    if (h.size != n)
      T_FAIL("%s version %lld: head size %llu, expected %zu (half-visible)",
             key, (long long)idx, (unsigned long long)h.size, n);
    uint8_t *d = t_gen(n, op_seed((uint32_t)idx));
    char md5[33];
    t_md5_hex(d, n, md5);
    T_EQ_STR(h.etag, md5);
    T_CONTENT(s, "bkt", key, d, n);
    free(d);
    store_object_info_free(&h);
  }
  /* The listing agrees with the heads. */
  store_list_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.prefix = "obj/";
  store_list_result lr;
  memset(&lr, 0, sizeof lr);
  T_OK(store_list(s, "bkt", &lo, &lr));
  T_EQ_U64(lr.n_entries, present);
  store_list_result_free(&lr);
}

static void crash_put_rounds(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_close(s);
  int64_t state[SLOTS];
  for (int i = 0; i < SLOTS; i++) state[i] = -1;
  t_rng r = t_rng_seed(2024);
  const int ROUNDS = 28;
  int killed = 0;
  for (int round = 0; round < ROUNDS; round++) {
    uint32_t first = (uint32_t)round * 10000u + 1u;
    uint32_t count = 600;
    int p[2];
    T_ASSERT(pipe(p) == 0);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      put_child(first, count, p[1]);
    }
    close(p[1]);
    long delay = pick_delay(&r, round);
    killed += kill_after(pid, delay);
    size_t na = 0;
    uint32_t *acks = read_acks(p[0], &na);
    close(p[0]);
    sum_add(delay, na);
    for (size_t i = 0; i < na; i++) {
      if (acks[i] != first + i) T_FAIL("acks out of sequence");
      apply_op(state, acks[i]);
    }
    int has_inflight = na < count;
    uint32_t inflight = first + (uint32_t)na;
    free(acks);

    s = t_open_store();
    fsck_ok(s, "after kill");
    verify_slots(s, state, has_inflight, inflight);
    /* Fix the state to what is visible now (the in-flight op may or may
     * not have landed), so later rounds compare against it. */
    if (has_inflight) {
      unsigned slot = op_slot(inflight);
      char key[32];
      snprintf(key, sizeof key, "obj/%02u", slot);
      store_object_info h;
      memset(&h, 0, sizeof h);
      int rc = store_head(s, "bkt", key, NULL, &h);
      if (rc == STORE_ERR_NO_KEY) state[slot] = -1;
      else {
        T_OK(rc);
        state[slot] = strtoll(t_kv_find(h.meta, h.n_meta, "idx"), NULL, 10);
        store_object_info_free(&h);
      }
    }
    if (round % 3 == 2) {
      T_OK(store_gc(s, NULL, NULL, NULL));
      fsck_ok(s, "after gc");
      verify_slots(s, state, 0, 0);
    }
    store_close(s);
  }
  T_ASSERT(killed > 0);
  sum_print("put");
  s = t_open_store();
  final_gc_clean(s);
  verify_slots(s, state, 0, 0);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Edits of one object: version v = base with edits 1..v applied; each
 * commit records "ver" = v in its metadata. */
#define EDIT_BASE (4u * MiB)
#define EDIT_CAP (6u * MiB)

typedef struct edit_model {
  uint8_t *buf;
  size_t size;
} edit_model;

static void model_init(edit_model *m) {
  m->buf = t_xmalloc(EDIT_CAP);
  memset(m->buf, 0, EDIT_CAP);
  t_fill(m->buf, EDIT_BASE, 4711);
  m->size = EDIT_BASE;
}

/* Apply edit number v to the model, and to a writer if given. */
static int apply_edit(edit_model *m, uint32_t v, store_writer *w) {
  t_rng r = t_rng_seed(0xE0000000u + v);
  int nops = 1 + (int)t_rng_below(&r, 4);
  uint8_t piece[70000];
  for (int i = 0; i < nops; i++) {
    if (t_rng_below(&r, 8) == 0) {
      size_t ns = EDIT_BASE / 2 + (size_t)t_rng_below(&r, EDIT_CAP / 2);
      if (ns > m->size) memset(m->buf + m->size, 0, ns - m->size);
      else memset(m->buf + ns, 0, m->size - ns);
      m->size = ns;
      if (w) {
        int rc = store_writer_truncate(w, ns);
        if (rc) return rc;
      }
    } else {
      size_t len = 1 + (size_t)t_rng_below(&r, sizeof piece);
      uint64_t off = t_rng_below(&r, m->size + 4096);
      if (off + len > EDIT_CAP) off = EDIT_CAP - len;
      t_fill(piece, len, t_rng_next(&r));
      if (off > m->size) memset(m->buf + m->size, 0, (size_t)off - m->size);
      memcpy(m->buf + off, piece, len);
      if (off + len > m->size) m->size = (size_t)(off + len);
      if (w) {
        int rc = store_pwrite(w, piece, len, off);
        if (rc) return rc;
      }
    }
  }
  return 0;
}

static void edit_child(uint32_t first, uint32_t count, int ack_fd) {
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open", rc);
  /* Bring the model to version first - 1 (what the store holds): the
   * offsets of later edits depend on the size at that point. */
  edit_model m;
  model_init(&m);
  for (uint32_t k = 1; k < first; k++) apply_edit(&m, k, NULL);
  char ver[16];
  for (uint32_t v = first; v < first + count; v++) {
    store_writer *w = NULL;
    rc = store_writer_open_edit(s, "bkt", "edited", &w);
    if (rc) child_fail("open_edit", rc);
    rc = apply_edit(&m, v, w);
    if (rc) child_fail("edit", rc);
    snprintf(ver, sizeof ver, "%u", v);
    store_kv meta[1] = {{"ver", ver}};
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.meta = meta;
    po.n_meta = 1;
    rc = store_writer_commit(w, &po, NULL);
    if (rc) child_fail("commit edit", rc);
    ack(ack_fd, v);
  }
  store_close(s);
  _exit(0);
}

static void crash_edit_rounds(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  edit_model m;
  model_init(&m);
  store_kv meta[1] = {{"ver", "0"}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.meta = meta;
  po.n_meta = 1;
  T_OK(store_put(s, "bkt", "edited", m.buf, m.size, &po, NULL));
  store_close(s);

  /* m is the model at version `visible`. */
  uint32_t visible = 0;
  t_rng r = t_rng_seed(99);
  int killed = 0;
  for (int round = 0; round < 12; round++) {
    uint32_t first = visible + 1;
    int p[2];
    T_ASSERT(pipe(p) == 0);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      edit_child(first, 400, p[1]);
    }
    close(p[1]);
    long delay = pick_delay(&r, round + 2);
    killed += kill_after(pid, delay);
    size_t na = 0;
    uint32_t *acks = read_acks(p[0], &na);
    close(p[0]);
    free(acks);
    sum_add(delay, na);
    uint32_t acked = first + (uint32_t)na - 1; /* == visible when na == 0 */

    s = t_open_store();
    fsck_ok(s, "after kill during edits");
    store_object_info h;
    memset(&h, 0, sizeof h);
    T_OK(store_head(s, "bkt", "edited", NULL, &h));
    const char *vs = t_kv_find(h.meta, h.n_meta, "ver");
    T_ASSERT(vs != NULL);
    uint32_t v = (uint32_t)strtoul(vs, NULL, 10);
    if (v != acked && v != acked + 1)
      T_FAIL("edited object is at version %u; acknowledged %u", v, acked);
    /* Bring the model to version v and compare. */
    for (uint32_t k = visible + 1; k <= v; k++) apply_edit(&m, k, NULL);
    visible = v;
    T_EQ_U64(h.size, m.size);
    store_object_info_free(&h);
    T_CONTENT(s, "bkt", "edited", m.buf, m.size);
    if (round % 3 == 1) {
      T_OK(store_gc(s, NULL, NULL, NULL));
      fsck_ok(s, "after gc");
      T_CONTENT(s, "bkt", "edited", m.buf, m.size);
    }
    store_close(s);
  }
  T_ASSERT(killed > 0);
  sum_print("edit");
  s = t_open_store();
  final_gc_clean(s);
  T_CONTENT(s, "bkt", "edited", m.buf, m.size);
  store_close(s);
  free(m.buf);
}

/* ------------------------------------------------------------------ */
/* Directory renames back and forth: the whole directory is always under
 * exactly one of the two prefixes. */
#define DIR_FILES 60

static void rename_child(int ack_fd) {
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open", rc);
  for (uint32_t i = 0; i < 100000; i++) {
    /* find where the directory is now */
    store_list_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.prefix = "A/";
    store_list_result lr;
    memset(&lr, 0, sizeof lr);
    rc = store_list(s, "bkt", &lo, &lr);
    if (rc) child_fail("list", rc);
    int in_a = lr.n_entries > 0;
    store_list_result_free(&lr);
    uint64_t n = 0;
    rc = store_rename_prefix(s, "bkt", in_a ? "A/" : "B/", in_a ? "B/" : "A/",
                             &n);
    if (rc) child_fail("rename_prefix", rc);
    if (n != DIR_FILES + 1) {
      fprintf(stderr, "  renamed %llu keys, expected %d\n",
              (unsigned long long)n, DIR_FILES + 1);
      _exit(1);
    }
    ack(ack_fd, in_a ? 1u : 0u); /* 1: now in B; 0: now in A */
  }
  _exit(0);
}

static void crash_rename_prefix_rounds(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  char key[64];
  t_put(s, "bkt", "A/", "", 0);
  for (int i = 0; i < DIR_FILES; i++) {
    snprintf(key, sizeof key, "A/sub%d/file%02d", i % 4, i);
    t_put(s, "bkt", key, key, strlen(key));
  }
  store_close(s);
  t_rng r = t_rng_seed(7);
  int killed = 0;
  int where = 0; /* 0: A, 1: B */
  for (int round = 0; round < 10; round++) {
    int p[2];
    T_ASSERT(pipe(p) == 0);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      rename_child(p[1]);
    }
    close(p[1]);
    long delay = pick_delay(&r, round + 1);
    killed += kill_after(pid, delay);
    size_t na = 0;
    uint32_t *acks = read_acks(p[0], &na);
    close(p[0]);
    sum_add(delay, na);
    if (na) where = (int)acks[na - 1];
    free(acks);

    s = t_open_store();
    fsck_ok(s, "after kill during renames");
    int count[2] = {0, 0};
    for (int side = 0; side < 2; side++) {
      store_list_opts lo;
      memset(&lo, 0, sizeof lo);
      lo.prefix = side ? "B/" : "A/";
      store_list_result lr;
      memset(&lr, 0, sizeof lr);
      T_OK(store_list(s, "bkt", &lo, &lr));
      count[side] = (int)lr.n_entries;
      for (size_t i = 0; i < lr.n_entries; i++) {
        /* content is the original key (under A/); the marker is empty */
        const char *k = lr.entries[i].key;
        if (k[2] == 0) {
          T_CONTENT(s, "bkt", k, "", 0);
        } else {
          snprintf(key, sizeof key, "A/%s", k + 2);
          T_CONTENT(s, "bkt", k, key, strlen(key));
        }
      }
      store_list_result_free(&lr);
    }
    if (!((count[0] == DIR_FILES + 1 && count[1] == 0) ||
          (count[1] == DIR_FILES + 1 && count[0] == 0)))
      T_FAIL("directory split by a crash: %d keys under A/, %d under B/",
             count[0], count[1]);
    /* Every acknowledged rename flips the side, and the one in flight may
     * have landed: either side is legal, a split never is. */
    (void)where;
    store_close(s);
  }
  T_ASSERT(killed > 0);
  sum_print("rename");
  s = t_open_store();
  final_gc_clean(s);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* GC killed mid-run (while the same process deletes and writes). */
#define GOBJ 80

static size_t g_size(int t, int64_t v) {
  t_rng r = t_rng_seed(0x90000000ull + (uint64_t)t * 100000u + (uint64_t)v);
  return 50 * KiB + (size_t)t_rng_below(&r, 1500 * KiB);
}
static uint64_t g_seed(int t, int64_t v) {
  return 0xA0000000ull + (uint64_t)t * 100000u + (uint64_t)v;
}

/* Operation j of round `round` given the state: target and new state. */
static void g_op(int round, uint32_t j, const int64_t *state, int *target,
                 int64_t *next) {
  *target = (int)(((uint32_t)round * 31u + j * 7u) % GOBJ);
  *next = state[*target] >= 0 ? -1 : (int64_t)round * 1000 + j + 1;
}

static void g_write(store *s, int t, int64_t v, int child) {
  char key[32], vs[24];
  snprintf(key, sizeof key, "g/%03d", t);
  snprintf(vs, sizeof vs, "%lld", (long long)v);
  size_t n = g_size(t, v);
  uint8_t *d = t_gen(n, g_seed(t, v));
  store_kv meta[1] = {{"v", vs}};
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.meta = meta;
  po.n_meta = 1;
  int rc = store_put(s, "bkt", key, d, n, &po, NULL);
  if (rc) {
    if (child) child_fail("put", rc);
    T_FAIL("put %s: %s", key, store_strerror(rc));
  }
  free(d);
}

static void gc_child(int round, const int64_t *state0, int ack_fd) {
  store *s = NULL;
  int rc = store_open(t_store_dir(), NULL, &s);
  if (rc) child_fail("store_open", rc);
  int64_t state[GOBJ];
  memcpy(state, state0, sizeof state);
  for (uint32_t j = 0; j < 10000; j++) {
    int t;
    int64_t next;
    g_op(round, j, state, &t, &next);
    if (next < 0) {
      char key[32];
      snprintf(key, sizeof key, "g/%03d", t);
      rc = store_delete(s, "bkt", key);
      if (rc) child_fail("delete", rc);
    } else {
      g_write(s, t, next, 1);
    }
    state[t] = next;
    ack(ack_fd, j);
    store_gc_report gr;
    rc = store_gc(s, NULL, NULL, &gr);
    if (rc) child_fail("gc", rc);
  }
  _exit(0);
}

static void g_verify(store *s, const int64_t *state, int has_inflight,
                     int in_t, int64_t in_next) {
  char key[32];
  for (int t = 0; t < GOBJ; t++) {
    snprintf(key, sizeof key, "g/%03d", t);
    int64_t a0 = state[t], a1 = state[t];
    if (has_inflight && in_t == t) a1 = in_next;
    store_object_info h;
    memset(&h, 0, sizeof h);
    int rc = store_head(s, "bkt", key, NULL, &h);
    if (rc == STORE_ERR_NO_KEY) {
      if (a0 >= 0 && a1 >= 0)
        T_FAIL("%s missing, acknowledged version %lld", key, (long long)a0);
      continue;
    }
    T_OK(rc);
    const char *vs = t_kv_find(h.meta, h.n_meta, "v");
    T_ASSERT(vs != NULL);
    int64_t v = strtoll(vs, NULL, 10);
    store_object_info_free(&h);
    if (v != a0 && v != a1)
      T_FAIL("%s holds version %lld, acknowledged %lld, in flight %lld", key,
             (long long)v, (long long)a0, (long long)a1);
    size_t n = g_size(t, v);
    uint8_t *d = t_gen(n, g_seed(t, v));
    T_CONTENT(s, "bkt", key, d, n);
    free(d);
  }
}

static void crash_gc_rounds(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  int64_t state[GOBJ];
  for (int t = 0; t < GOBJ; t++) {
    state[t] = t % 3 ? 0 : -1;
    if (state[t] >= 0) g_write(s, t, 0, 0);
  }
  store_close(s);
  t_rng r = t_rng_seed(31);
  int killed = 0;
  for (int round = 0; round < 10; round++) {
    int p[2];
    T_ASSERT(pipe(p) == 0);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      gc_child(round + 1, state, p[1]);
    }
    close(p[1]);
    long delay = pick_delay(&r, round + 1);
    killed += kill_after(pid, delay);
    size_t na = 0;
    uint32_t *acks = read_acks(p[0], &na);
    close(p[0]);
    sum_add(delay, na);
    for (size_t j = 0; j < na; j++) {
      if (acks[j] != j) T_FAIL("acks out of sequence");
      int t;
      int64_t next;
      g_op(round + 1, (uint32_t)j, state, &t, &next);
      state[t] = next;
    }
    free(acks);
    int in_t;
    int64_t in_next;
    g_op(round + 1, (uint32_t)na, state, &in_t, &in_next);
    s = t_open_store();
    fsck_ok(s, "after kill during gc");
    g_verify(s, state, 1, in_t, in_next);
    /* settle the in-flight op to what is visible */
    char key[32];
    snprintf(key, sizeof key, "g/%03d", in_t);
    store_object_info h;
    memset(&h, 0, sizeof h);
    int rc = store_head(s, "bkt", key, NULL, &h);
    if (rc == STORE_ERR_NO_KEY) state[in_t] = -1;
    else {
      T_OK(rc);
      state[in_t] = strtoll(t_kv_find(h.meta, h.n_meta, "v"), NULL, 10);
      store_object_info_free(&h);
    }
    store_close(s);
  }
  T_ASSERT(killed > 0);
  sum_print("gc");
  s = t_open_store();
  final_gc_clean(s);
  g_verify(s, state, 0, 0, 0);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* Multipart uploads killed anywhere: completion is atomic. */
#define MPKEYS 5
#define MP_MIN (1u * MiB)

static size_t mp_part_size(uint32_t v, int part) {
  if (part == 3) return 1000 + (v % 13) * 3000; /* last part, small */
  return MP_MIN + (v % 7) * 1000 + (size_t)part * 77;
}
static uint64_t mp_seed(uint32_t v, int part) {
  return 0xB0000000ull + (uint64_t)v * 10u + (uint64_t)part;
}
static size_t mp_total(uint32_t v) {
  return mp_part_size(v, 1) + mp_part_size(v, 2) + mp_part_size(v, 3);
}
static uint8_t *mp_content(uint32_t v) {
  size_t n = mp_total(v), o = 0;
  uint8_t *d = t_xmalloc(n);
  for (int p = 1; p <= 3; p++) {
    t_fill(d + o, mp_part_size(v, p), mp_seed(v, p));
    o += mp_part_size(v, p);
  }
  return d;
}
static int mp_is_abort(uint32_t v) { return v % 6 == 0; }

static store *mp_open(void) {
  store_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.part_min_size = MP_MIN;
  store *s = NULL;
  T_OK(store_open(t_store_dir(), &cfg, &s));
  return s;
}

static void mp_child(uint32_t first, int ack_fd) {
  store_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.part_min_size = MP_MIN;
  store *s = NULL;
  int rc = store_open(t_store_dir(), &cfg, &s);
  if (rc) child_fail("store_open", rc);
  char key[32], vs[16];
  for (uint32_t v = first; v < first + 10000; v++) {
    snprintf(key, sizeof key, "mp/%u", v % MPKEYS);
    snprintf(vs, sizeof vs, "%u", v);
    store_kv meta[1] = {{"idx", vs}};
    store_put_opts po;
    memset(&po, 0, sizeof po);
    po.meta = meta;
    po.n_meta = 1;
    char uid[STORE_UPLOAD_ID_MAX];
    rc = store_mpu_create(s, "bkt", key, &po, uid);
    if (rc) child_fail("mpu_create", rc);
    char etags[3][STORE_ETAG_MAX];
    for (int p = 1; p <= 3; p++) {
      size_t n = mp_part_size(v, p);
      uint8_t *d = t_gen(n, mp_seed(v, p));
      store_writer *w = NULL;
      rc = store_writer_open_part(s, "bkt", key, uid, (uint32_t)p, &w);
      if (rc) child_fail("open_part", rc);
      rc = store_write(w, d, n);
      if (rc) child_fail("write part", rc);
      store_object_info out;
      memset(&out, 0, sizeof out);
      rc = store_writer_commit(w, NULL, &out);
      if (rc) child_fail("commit part", rc);
      snprintf(etags[p - 1], STORE_ETAG_MAX, "%s", out.etag);
      store_object_info_free(&out);
      free(d);
    }
    if (mp_is_abort(v)) {
      rc = store_mpu_abort(s, "bkt", key, uid);
      if (rc) child_fail("abort", rc);
    } else {
      store_part_ref refs[3] = {
          {1, etags[0]}, {2, etags[1]}, {3, etags[2]}};
      rc = store_mpu_complete(s, "bkt", key, uid, refs, 3, NULL);
      if (rc) child_fail("complete", rc);
    }
    ack(ack_fd, v);
  }
  _exit(0);
}

static void mp_verify(store *s, const int64_t *state, int has_inflight,
                      uint32_t inflight) {
  char key[32];
  for (unsigned k = 0; k < MPKEYS; k++) {
    snprintf(key, sizeof key, "mp/%u", k);
    int64_t a0 = state[k], a1 = state[k];
    if (has_inflight && inflight % MPKEYS == k && !mp_is_abort(inflight))
      a1 = inflight;
    store_object_info h;
    memset(&h, 0, sizeof h);
    int rc = store_head(s, "bkt", key, NULL, &h);
    if (rc == STORE_ERR_NO_KEY) {
      if (a0 >= 0 && a1 >= 0)
        T_FAIL("%s missing, acknowledged version %lld", key, (long long)a0);
      continue;
    }
    T_OK(rc);
    const char *vs = t_kv_find(h.meta, h.n_meta, "idx");
    T_ASSERT(vs != NULL);
    int64_t v = strtoll(vs, NULL, 10);
    if (v != a0 && v != a1)
      T_FAIL("%s holds version %lld, acknowledged %lld, in flight %lld", key,
             (long long)v, (long long)a0, (long long)a1);
    T_EQ_U64(h.parts, 3);
    T_EQ_U64(h.size, mp_total((uint32_t)v));
    T_ASSERT(strstr(h.etag, "-3") != NULL);
    store_object_info_free(&h);
    uint8_t *d = mp_content((uint32_t)v);
    T_CONTENT(s, "bkt", key, d, mp_total((uint32_t)v));
    free(d);
  }
  /* Every upload left behind is coherent: its parts list works. */
  store_mpu_list_result ml;
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", NULL, &ml));
  for (size_t i = 0; i < ml.n_uploads; i++) {
    store_part_info *pi = NULL;
    size_t np = 0;
    int tr = 0;
    T_OK(store_mpu_parts(s, "bkt", ml.uploads[i].key, ml.uploads[i].upload_id,
                         0, 0, &pi, &np, &tr));
    T_ASSERT(np <= 3);
    store_part_info_free(pi, np);
  }
  store_mpu_list_result_free(&ml);
}

static void crash_multipart_rounds(void) {
  /* inline_max = 1: even the small last parts are chunk files */
  store_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.inline_max = 1;
  cfg.part_min_size = MP_MIN;
  store *s = NULL;
  T_OK(store_create(t_store_dir(), &cfg, &s));
  T_OK(store_bucket_create(s, "bkt", NULL));
  store_close(s);
  int64_t state[MPKEYS];
  for (int k = 0; k < MPKEYS; k++) state[k] = -1;
  t_rng r = t_rng_seed(55);
  uint32_t next = 1;
  int killed = 0;
  for (int round = 0; round < 10; round++) {
    int p[2];
    T_ASSERT(pipe(p) == 0);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      mp_child(next, p[1]);
    }
    close(p[1]);
    long delay = pick_delay(&r, round + 2);
    killed += kill_after(pid, delay);
    size_t na = 0;
    uint32_t *acks = read_acks(p[0], &na);
    close(p[0]);
    sum_add(delay, na);
    for (size_t i = 0; i < na; i++) {
      if (acks[i] != next + i) T_FAIL("acks out of sequence");
      if (!mp_is_abort(acks[i])) state[acks[i] % MPKEYS] = acks[i];
    }
    free(acks);
    uint32_t inflight = next + (uint32_t)na;
    s = mp_open();
    fsck_ok(s, "after kill during multipart");
    mp_verify(s, state, 1, inflight);
    /* settle */
    char key[32];
    snprintf(key, sizeof key, "mp/%u", inflight % MPKEYS);
    store_object_info h;
    memset(&h, 0, sizeof h);
    if (store_head(s, "bkt", key, NULL, &h) == STORE_OK) {
      state[inflight % MPKEYS] =
          strtoll(t_kv_find(h.meta, h.n_meta, "idx"), NULL, 10);
      store_object_info_free(&h);
    }
    if (round % 4 == 3) {
      T_OK(store_gc(s, NULL, NULL, NULL));
      fsck_ok(s, "after gc");
      mp_verify(s, state, 0, 0);
    }
    store_close(s);
    next = inflight + 1;
  }
  T_ASSERT(killed > 0);
  sum_print("multipart");
  s = mp_open();
  /* Abort what the killed writers left, then nothing may stay behind. */
  store_mpu_list_result ml;
  memset(&ml, 0, sizeof ml);
  T_OK(store_mpu_list(s, "bkt", NULL, &ml));
  for (size_t i = 0; i < ml.n_uploads; i++)
    T_OK(store_mpu_abort(s, "bkt", ml.uploads[i].key,
                         ml.uploads[i].upload_id));
  store_mpu_list_result_free(&ml);
  final_gc_clean(s);
  mp_verify(s, state, 0, 0);
  store_stats st = t_stats(s);
  T_EQ_U64(st.uploads, 0);
  store_close(s);
}

/* ------------------------------------------------------------------ */
/* GC killed in the middle of a batch.  GC unlinks the files of chunks at
 * refs 0 inside its write transaction and deletes their rows in the same
 * transaction; killed before its COMMIT, the rows come back (still at
 * refs 0) without their files.  A later commit that references such a
 * row -- a writer whose lease dedups against the old file, or an edit
 * keeping a chunk of a version replaced meanwhile -- must never end up
 * pointing at a missing file.  Found by tests/torture (SIGKILL of a
 * running `storectl gc`); simulated here exactly, by unlinking the file
 * the way the killed batch did. */
static void chunk_path_of(store *s, const void *data, size_t n, char *out,
                          size_t cap) {
  uint8_t h[SHA256_DIGEST_SIZE];
  char hex[2 * SHA256_DIGEST_SIZE + 1];
  struct sha256_ctx c;
  sha256_init(&c);
  sha256_update(&c, n, (const uint8_t *)data);
  sha256_digest(&c, sizeof h, h);
  t_tohex(h, sizeof h, hex);
  snprintf(out, cap, "%s/chunks/%.2s/%s", store_dir(s), hex, hex);
}

static void unlink_as_killed_gc(const char *path) {
  if (unlink(path) != 0) T_FAIL("unlink %s: %s", path, strerror(errno));
}

static void gc_killed_mid_batch_lease(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  size_t n = 2 * MiB + 5;
  uint8_t *x = t_gen(n, 0x6C0001);
  T_OK(store_put(s, "bkt", "a", x, n, NULL, NULL));
  T_OK(store_delete(s, "bkt", "a")); /* rows at refs 0, files still there */
  char path[4400];
  chunk_path_of(s, x, MiB, path, sizeof path);
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "b", &w));
  T_OK(store_write(w, x, n));
  /* the writer's pipeline takes its lease on the existing file */
  struct stat sb;
  for (int i = 0; !(stat(path, &sb) == 0 && sb.st_nlink >= 2); i++) {
    if (i > 20000) T_FAIL("the writer never leased %s", path);
    t_sleep_us(500);
  }
  unlink_as_killed_gc(path);
  T_OK(store_writer_commit(w, NULL, NULL));
  T_CONTENT(s, "bkt", "b", x, n);
  fsck_ok(s, "after a commit onto a row a killed GC left without its file");
  final_gc_clean(s);
  T_CONTENT(s, "bkt", "b", x, n);
  free(x);
  store_close(s);
}

static void gc_killed_mid_batch_edit(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  size_t n = 2 * MiB;
  uint8_t *y = t_gen(n, 0x6C0002);
  uint8_t *z = t_gen(1000, 0x6C0003);
  T_OK(store_put(s, "bkt", "e", y, n, NULL, NULL));
  store_writer *w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "e", &w));
  T_OK(store_pwrite(w, "edit", 4, MiB + 100)); /* keeps the first chunk */
  /* replaced by another writer: y's chunks drop to refs 0 */
  T_OK(store_put(s, "bkt", "e", z, 1000, NULL, NULL));
  char path[4400];
  chunk_path_of(s, y, MiB, path, sizeof path);
  unlink_as_killed_gc(path);
  int rc = store_writer_commit(w, NULL, NULL);
  if (rc == STORE_OK) {
    memcpy(y + MiB + 100, "edit", 4);
    T_CONTENT(s, "bkt", "e", y, n);
  } else {
    /* Refused (the commit's MD5 pass reads the kept chunk and finds it
     * missing: CORRUPT; a GC killed after that pass is caught inside the
     * transaction: NO_KEY): nothing may have changed. */
    if (rc != STORE_ERR_CORRUPT && rc != STORE_ERR_NO_KEY)
      T_FAIL("edit commit: rc %d (%s: %s)", rc, store_strerror(rc),
             store_errmsg());
    T_CONTENT(s, "bkt", "e", z, 1000);
  }
  fsck_ok(s, "after an edit kept a chunk a killed GC had unlinked");
  final_gc_clean(s);
  free(y);
  free(z);
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  T_RUN(crash_put_rounds);
  T_RUN(crash_edit_rounds);
  T_RUN(crash_rename_prefix_rounds);
  T_RUN(crash_gc_rounds);
  T_RUN(crash_multipart_rounds);
  T_RUN(gc_killed_mid_batch_lease);
  T_RUN(gc_killed_mid_batch_edit);
  T_MAIN_END();
}
