/*
 * s3_soak.c -- a bounded soak of s3d and fusefs on one store, with every
 * byte checked.
 *
 *   s3_soak run --s3 127.0.0.1:PORT --access-key K --secret-key S
 *               --bucket B --mount MNT [--seconds N] [--conns N]
 *               [--mount-workers N] [--scale N] [--large-max-mib N]
 *               [--s3d-pid P] [--fusefs-pid P] [--mem-every S]
 *               [--gc-cmd CMD --gc-every S] [--json FILE] [--seed N]
 *               [--drain-secs N] [--settle-ms N]
 *   s3_soak freeport
 *
 * For --seconds, --conns S3 connections (one blocking thread each) and
 * --mount-workers POSIX workers on MNT/B run a random mix on one key space:
 *
 *   s/...  keys written only over S3, read over both
 *   m/...  keys written only through the mount, read over both
 *   x/...  keys written by both doors (coherence)
 *   tmp/wNN  each mount worker's staging file for rename-into-place
 *
 * S3 ops: PUT (small <= 64 KiB, large 1..--large-max-mib MiB), multipart
 * uploads (some aborted), GET whole and ranged, HEAD, ListObjectsV2 (paged,
 * some with a delimiter), DELETE.  Mount ops: create/O_TRUNC overwrite +
 * write + close, read whole file, readdir, unlink, write-to-staging +
 * rename over the key.
 *
 * Content: a body is a function of (generation, size): every 4 KiB block
 * starts with a 32-byte stamp (magic, generation, size, block number,
 * check) and the rest comes from a 16 MiB PRNG buffer at an offset that
 * depends on the generation.  Every generation is registered before its
 * bytes leave, with the key it is for and the time interval of the write.
 * Every read (GET, ranged GET, HEAD's size, a listing's sizes, a mount
 * read) must then be exactly one whole generation of that key, and that
 * generation must be legal for a linearizable register: written by an op
 * that had started before the read ended and that no completed op had
 * superseded before the read began (likewise for "absent" and for the
 * empty file a mount create commits at once).  A tear (bytes of two
 * generations, or the size of one and the bytes of another) is reported
 * with the generations involved.
 *
 * The mount workers of this one process keep the rules a local program
 * would: a reader never overlaps a writer of the same file *on the mount*
 * (a per-key lock), since a read racing a write() on the same open file may
 * see part of it on any POSIX filesystem.  S3 writers never take that lock:
 * S3 against the mount is exactly what is checked.
 *
 * After the load: a settle pause (the mount's 1 s attribute timeout), then
 * the verification pass: the whole bucket listed over S3 and walked through
 * the mount (the two must agree), every key read over both doors (one whole
 * legal generation, the same on both sides).
 *
 * Memory: VmRSS and VmHWM of --s3d-pid and --fusefs-pid are sampled before
 * the load, every --mem-every seconds, after the load and at the end.
 * --gc-cmd (e.g. "storectl --store DIR gc") runs every --gc-every seconds
 * during the load (it keeps the disk from filling with overwritten chunks,
 * and checks that gc is safe under writers).
 *
 * Output: a report on stdout, and with --json a machine-readable one for
 * tests/soak/soak.py.  Exit 0 when nothing failed, 1 on any fault, 2 on a
 * usage error, 3 when in-flight operations did not drain in time.
 * Only loopback addresses are accepted.  See bench/soak_README.md.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/md5.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "s3sign.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define BLK 4096u          /* stamp interval */
#define STAMP 32u          /* stamp length */
#define RS (16u * MIB)     /* PRNG buffer */
#define SMALL_MIN 32u
#define SMALL_MAX (64u * KIB)
#define IOBUF MIB          /* per-thread I/O buffer */
#define PART_MIN (5u * MIB)
#define HDR_CAP 16384
#define TIMEOUT_S 60
#define MAX_EX 12          /* examples kept per fault kind */
#define INF 1e300

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */
static struct {
  const char *s3, *ak, *sk, *region, *bucket, *mount, *json, *gc_cmd;
  double seconds, mem_every, gc_every, drain_secs, settle_ms;
  int conns, mworkers, scale, large_max_mib;
  pid_t s3d_pid, fusefs_pid;
  uint64_t seed;
} opt = {.region = "us-east-1", .seconds = 600, .mem_every = 5,
         .gc_every = 60, .drain_secs = 180, .settle_ms = 1500, .conns = 48,
         .mworkers = 8, .scale = 4, .large_max_mib = 32, .seed = 1};

static struct sockaddr_in s3_addr;
static char s3_host[80];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double T0; /* start of the run: every time is printed relative */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "s3_soak: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory");
  return p;
}
static void *xcalloc(size_t a, size_t b) {
  void *p = calloc(a ? a : 1, b ? b : 1);
  if (!p) die("out of memory");
  return p;
}

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Per-thread PRNG. */
typedef struct { uint64_t s; } rng;
static uint64_t rnext(rng *r) { return mix64(r->s++); }
static uint64_t rbelow(rng *r, uint64_t n) { return n ? rnext(r) % n : 0; }
static double runit(rng *r) { return (double)(rnext(r) >> 11) * (1.0 / 9007199254740992.0); }
static uint64_t rrange(rng *r, uint64_t lo, uint64_t hi) { /* [lo, hi] */
  return lo + rbelow(r, hi - lo + 1);
}

/* ------------------------------------------------------------------ */
/* Content of a generation                                             */
/* ------------------------------------------------------------------ */
static uint8_t *R; /* RS + BLK bytes: the tail repeats the head (no wrap) */
static const uint8_t MAGIC[8] = {'S', 'o', 'A', 'k', 'G', 'e', 'N', '1'};

static void r_setup(void) {
  R = xmalloc(RS + BLK);
  uint64_t *w = (uint64_t *)R;
  for (size_t i = 0; i < RS / 8; i++) w[i] = mix64(0x50a4ull * 1000003u + i);
  memcpy(R + RS, R, BLK);
}

static uint32_t stamp_check(uint64_t g, uint64_t size, uint32_t blk) {
  return (uint32_t)mix64(g * 0x2545f4914f6cdd1dull ^ size ^ ((uint64_t)blk << 40));
}

static void mkstamp(uint8_t st[STAMP], uint64_t g, uint64_t size, uint32_t blk) {
  uint32_t c = stamp_check(g, size, blk);
  memcpy(st, MAGIC, 8);
  memcpy(st + 8, &g, 8);
  memcpy(st + 16, &size, 8);
  memcpy(st + 24, &blk, 4);
  memcpy(st + 28, &c, 4);
}

/* A stamp at s: true and its fields when it is well formed. */
static bool parse_stamp(const uint8_t *s, uint64_t *g, uint64_t *size, uint32_t *blk) {
  uint32_t c;
  if (memcmp(s, MAGIC, 8)) return false;
  memcpy(g, s + 8, 8);
  memcpy(size, s + 16, 8);
  memcpy(blk, s + 24, 4);
  memcpy(&c, s + 28, 4);
  return c == stamp_check(*g, *size, *blk);
}

static size_t gen_base(uint64_t g) { return (size_t)(mix64(g ^ 0xfeedull) & (RS - 1)); }

/* Bytes [off, off + n) of generation g (of `size` bytes) into buf. */
static void gen_fill(uint64_t g, uint64_t size, uint64_t off, uint8_t *buf, size_t n) {
  size_t base = gen_base(g);
  while (n) {
    uint64_t b = off / BLK, o = off % BLK;
    size_t l = (size_t)(BLK - o) < n ? (size_t)(BLK - o) : n;
    size_t done = 0;
    if (o < STAMP) {
      uint8_t st[STAMP];
      mkstamp(st, g, size, (uint32_t)b);
      size_t s = STAMP - (size_t)o < l ? STAMP - (size_t)o : l;
      memcpy(buf, st + o, s);
      done = s;
    }
    if (done < l) {
      size_t at = (base + (size_t)(off + done)) & (RS - 1);
      memcpy(buf + done, R + at, l - done);
    }
    buf += l;
    off += l;
    n -= l;
  }
}

/* Compare buf with bytes [off, off + n) of g: index of the first
 * difference, or -1. */
static int64_t gen_cmp(uint64_t g, uint64_t size, uint64_t off, const uint8_t *buf,
                       size_t n) {
  size_t base = gen_base(g), pos = 0;
  while (pos < n) {
    uint64_t b = off / BLK, o = off % BLK;
    size_t l = (size_t)(BLK - o) < n - pos ? (size_t)(BLK - o) : n - pos;
    size_t done = 0;
    if (o < STAMP) {
      uint8_t st[STAMP];
      mkstamp(st, g, size, (uint32_t)b);
      size_t s = STAMP - (size_t)o < l ? STAMP - (size_t)o : l;
      if (memcmp(buf + pos, st + o, s)) {
        for (size_t i = 0; i < s; i++)
          if (buf[pos + i] != st[o + i]) return (int64_t)(pos + i);
      }
      done = s;
    }
    if (done < l) {
      size_t at = (base + (size_t)(off + done)) & (RS - 1);
      if (memcmp(buf + pos + done, R + at, l - done)) {
        for (size_t i = done; i < l; i++)
          if (buf[pos + i] != R[at + i - done]) return (int64_t)(pos + i);
      }
    }
    pos += l;
    off += l;
  }
  return -1;
}

/* ------------------------------------------------------------------ */
/* Keys, generations, histories                                        */
/* ------------------------------------------------------------------ */
enum { C_S, C_M, C_X, C_T, C__N };
static const char *cls_name[] = {"s3-only", "mount-only", "shared", "staging"};
enum { K_PUT, K_DEL, K_EMPTY };
enum { ST_PENDING, ST_OK, ST_FAILED, ST_UNKNOWN };

typedef struct kop {
  double t0, t1;  /* t1 = INF while pending or when the outcome is unknown */
  uint64_t gen;   /* K_PUT */
  uint8_t kind, status;
} kop;

typedef struct key {
  char name[40];
  uint8_t cls, large;
  pthread_mutex_t mu;
  kop *ops;
  uint32_t nops, cap;
  uint32_t n_unknown;  /* ops whose outcome is unknown (t1 = INF) */
  double maxdur;       /* longest finished op */
  pthread_rwlock_t mlk; /* mount side: readers shared, writers exclusive */
} key;

static key *keys;
static int nkeys;
static char **dirs; /* directories the key space needs (created at start) */
static int ndirs;
static int *by_cls[C__N], n_by_cls[C__N], *large_by_cls[C__N], n_large_by_cls[C__N];

typedef struct geninfo {
  uint32_t key, op;
  uint32_t size; /* bytes (<= 4 GiB) */
  uint8_t origin; /* 0 S3 PUT, 1 S3 multipart, 2 mount write, 3 mount rename */
} geninfo;
static const char *origin_name[] = {"s3 PUT", "s3 multipart", "mount write",
                                    "mount rename"};
#define GCHUNK 65536u
#define GCHUNKS 8192u
static geninfo *gtab[GCHUNKS];
static _Atomic uint64_t gnext = 1;
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;

static geninfo *ginfo(uint64_t g) {
  if (g == 0 || g >= atomic_load(&gnext)) return NULL;
  geninfo *c = __atomic_load_n(&gtab[g / GCHUNK], __ATOMIC_ACQUIRE);
  return c ? &c[g % GCHUNK] : NULL;
}

static uint64_t gen_new(void) {
  uint64_t g = atomic_fetch_add(&gnext, 1);
  if (g / GCHUNK >= GCHUNKS) die("too many generations");
  if (!__atomic_load_n(&gtab[g / GCHUNK], __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&gmu);
    if (!gtab[g / GCHUNK])
      __atomic_store_n(&gtab[g / GCHUNK], xcalloc(GCHUNK, sizeof(geninfo)),
                       __ATOMIC_RELEASE);
    pthread_mutex_unlock(&gmu);
  }
  return g;
}

static int key_cmp(const void *a, const void *b) {
  return strcmp(((const key *)a)->name, ((const key *)b)->name);
}

static int key_find(const char *name) {
  int lo = 0, hi = nkeys - 1;
  while (lo <= hi) {
    int m = (lo + hi) / 2, c = strcmp(keys[m].name, name);
    if (!c) return m;
    if (c < 0) lo = m + 1;
    else hi = m - 1;
  }
  return -1;
}

static void add_dir(const char *d) {
  for (int i = 0; i < ndirs; i++)
    if (!strcmp(dirs[i], d)) return;
  dirs = realloc(dirs, sizeof *dirs * (size_t)(ndirs + 1));
  if (!dirs) die("out of memory");
  dirs[ndirs++] = strdup(d);
}

static void keys_setup(void) {
  int sc = opt.scale;
  int n_s_small = 150 * sc, n_s_large = 4 * sc, n_m_dirs = 4 + sc, n_m_per = 25,
      n_m_large = 2 * sc, n_x_small = 30 * sc, n_x_large = 2 * sc;
  int total = n_s_small + n_s_large + n_m_dirs * n_m_per + n_m_large + n_x_small +
              n_x_large + opt.mworkers;
  keys = xcalloc((size_t)total, sizeof *keys);
  int n = 0;
#define ADD(cl, lg, ...)                                            \
  do {                                                              \
    snprintf(keys[n].name, sizeof keys[n].name, __VA_ARGS__);       \
    keys[n].cls = (cl);                                             \
    keys[n].large = (lg);                                           \
    n++;                                                            \
  } while (0)
  for (int i = 0; i < n_s_small; i++) ADD(C_S, 0, "s/small/%04d", i);
  for (int i = 0; i < n_s_large; i++) ADD(C_S, 1, "s/large/%03d", i);
  for (int d = 0; d < n_m_dirs; d++)
    for (int i = 0; i < n_m_per; i++) ADD(C_M, 0, "m/d%02d/f%03d", d, i);
  for (int i = 0; i < n_m_large; i++) ADD(C_M, 1, "m/big/f%02d", i);
  for (int i = 0; i < n_x_small; i++) ADD(C_X, 0, "x/small/%03d", i);
  for (int i = 0; i < n_x_large; i++) ADD(C_X, 1, "x/large/%02d", i);
  for (int i = 0; i < opt.mworkers; i++) ADD(C_T, 0, "tmp/w%02d", i);
#undef ADD
  nkeys = n;
  qsort(keys, (size_t)nkeys, sizeof *keys, key_cmp);
  for (int i = 0; i < nkeys; i++) {
    key *k = &keys[i];
    pthread_mutex_init(&k->mu, NULL);
    pthread_rwlock_init(&k->mlk, NULL);
    k->cap = 64;
    k->ops = xmalloc(sizeof(kop) * k->cap);
    /* The initial state: absent. */
    k->ops[0] = (kop){.t0 = -1, .t1 = -1, .kind = K_DEL, .status = ST_OK};
    k->nops = 1;
    /* Every ancestor directory of the key. */
    char d[64];
    snprintf(d, sizeof d, "%s", k->name);
    for (char *p = strchr(d, '/'); p; p = strchr(p + 1, '/')) {
      *p = 0;
      add_dir(d);
      *p = '/';
    }
  }
  for (int c = 0; c < C__N; c++) {
    by_cls[c] = xcalloc((size_t)nkeys, sizeof(int));
    large_by_cls[c] = xcalloc((size_t)nkeys, sizeof(int));
  }
  for (int i = 0; i < nkeys; i++) {
    int c = keys[i].cls;
    if (keys[i].large) large_by_cls[c][n_large_by_cls[c]++] = i;
    else by_cls[c][n_by_cls[c]++] = i;
  }
}

/* Register an op on key ki (its start time taken under the key's lock, so
 * the history is in start order).  Returns its index. */
static uint32_t op_begin(int ki, int kind, uint64_t gen, uint32_t size, int origin) {
  key *k = &keys[ki];
  pthread_mutex_lock(&k->mu);
  if (k->nops == k->cap) {
    k->cap *= 2;
    k->ops = realloc(k->ops, sizeof(kop) * k->cap);
    if (!k->ops) die("out of memory");
  }
  uint32_t i = k->nops++;
  k->ops[i] = (kop){.t0 = now(), .t1 = INF, .gen = gen, .kind = (uint8_t)kind,
                    .status = ST_PENDING};
  if (gen) {
    geninfo *gi = ginfo(gen);
    gi->key = (uint32_t)ki;
    gi->op = i;
    gi->size = size;
    gi->origin = (uint8_t)origin;
  }
  pthread_mutex_unlock(&k->mu);
  return i;
}

static void op_end(int ki, uint32_t i, int status) {
  key *k = &keys[ki];
  pthread_mutex_lock(&k->mu);
  kop *o = &k->ops[i];
  o->status = (uint8_t)status;
  if (status == ST_UNKNOWN) {
    o->t1 = INF;
    k->n_unknown++;
  } else {
    o->t1 = now();
    if (o->t1 - o->t0 > k->maxdur) k->maxdur = o->t1 - o->t0;
  }
  pthread_mutex_unlock(&k->mu);
}

/* What a read found. */
enum { V_GEN, V_ABSENT, V_EMPTY };

/* Latest start of a completed op that ended before r0 and certainly
 * changed the key.  A mount create (K_EMPTY) may or may not have committed
 * anything (an O_TRUNC open of an existing file commits nothing until
 * close), so it never supersedes.  k->mu held. */
static double superseded_before(const key *k, double r0) {
  for (uint32_t i = k->nops; i-- > 0;) {
    const kop *o = &k->ops[i];
    if (o->status == ST_OK && o->kind != K_EMPTY && o->t1 < r0) return o->t0;
  }
  return -INF;
}

/* Is an op that produced the value legal for a read over [r0, r1]? */
static bool op_legal(const kop *o, double r1, double X) {
  return o->status != ST_FAILED && o->t0 <= r1 && o->t1 >= X;
}

/* Legality of a value read from key ki over [r0, r1].  For V_GEN, gen's
 * registry must name ki.  Returns NULL when legal, else why (static). */
static const char *check_value(int ki, int what, uint64_t gen, double r0, double r1,
                               char *why, size_t cap) {
  key *k = &keys[ki];
  const char *res = NULL;
  pthread_mutex_lock(&k->mu);
  double X = superseded_before(k, r0);
  if (what == V_GEN) {
    geninfo *gi = ginfo(gen);
    if (!gi || gi->key != (uint32_t)ki) {
      snprintf(why, cap, "generation %" PRIu64 " belongs to %s", gen,
               gi ? keys[gi->key].name : "no key");
      res = why;
    } else {
      const kop *o = &k->ops[gi->op];
      if (o->status == ST_FAILED) {
        snprintf(why, cap, "generation %" PRIu64 " (%s) was refused, yet is"
                 " visible", gen, origin_name[gi->origin]);
        res = why;
      } else if (o->t0 > r1) {
        snprintf(why, cap, "generation %" PRIu64 " read before it was written", gen);
        res = why;
      } else if (o->t1 < X) {
        snprintf(why, cap, "stale: generation %" PRIu64 " (%s, done at %.3f s)"
                 " was superseded by a write started at %.3f s and finished"
                 " before the read began at %.3f s", gen, origin_name[gi->origin],
                 o->t1 - T0, X - T0, r0 - T0);
        res = why;
      }
    }
  } else {
    int kind = what == V_ABSENT ? K_DEL : K_EMPTY;
    bool ok = false;
    for (uint32_t i = k->nops; i-- > 0 && !ok;) {
      const kop *o = &k->ops[i];
      if (o->kind == kind && op_legal(o, r1, X)) ok = true;
    }
    if (!ok) {
      snprintf(why, cap, "%s, but no legal %s (a write finished before the"
               " read began at %.3f s)", what == V_ABSENT ? "absent" : "empty",
               what == V_ABSENT ? "delete" : "create", r0 - T0);
      res = why;
    }
  }
  pthread_mutex_unlock(&k->mu);
  return res;
}

/* Is `size` the size of some legal value of ki over [r0, r1]? */
static bool size_legal(int ki, uint64_t size, double r0, double r1) {
  key *k = &keys[ki];
  bool ok = false;
  pthread_mutex_lock(&k->mu);
  double X = superseded_before(k, r0);
  for (uint32_t i = k->nops; i-- > 0 && !ok;) {
    const kop *o = &k->ops[i];
    if (!op_legal(o, r1, X)) continue;
    if (o->kind == K_EMPTY && size == 0) ok = true;
    if (o->kind == K_PUT && ginfo(o->gen)->size == size) ok = true;
  }
  pthread_mutex_unlock(&k->mu);
  return ok;
}

/* A size that no legal generation has, explained by the mount's edit bug:
 * a legal generation written by the mount is shorter, and some write of
 * the key had exactly this size (the object the mount write was laid
 * over). */
static bool edit_base_explains(int ki, uint64_t size, double r0, double r1) {
  key *k = &keys[ki];
  bool shorter_mount = false, had = false;
  pthread_mutex_lock(&k->mu);
  double X = superseded_before(k, r0);
  for (uint32_t i = k->nops; i-- > 0;) {
    const kop *o = &k->ops[i];
    if (o->kind != K_PUT) continue;
    geninfo *gi = ginfo(o->gen);
    if (gi->size == size) had = true;
    if ((gi->origin == 2 || gi->origin == 3) && gi->size < size && op_legal(o, r1, X))
      shorter_mount = true;
  }
  pthread_mutex_unlock(&k->mu);
  return had && shorter_mount;
}

/* The size of the latest op that wrote ki (a hint for ranged GETs). */
static uint64_t size_hint(int ki) {
  key *k = &keys[ki];
  uint64_t s = 0;
  pthread_mutex_lock(&k->mu);
  for (uint32_t i = k->nops; i-- > 0;)
    if (k->ops[i].kind == K_PUT && k->ops[i].status == ST_OK) {
      s = ginfo(k->ops[i].gen)->size;
      break;
    }
  pthread_mutex_unlock(&k->mu);
  return s;
}

/* Sizes of the writes of ki whose size is `size`, for diagnostics. */
static void describe_size(int ki, uint64_t size, char *out, size_t cap) {
  key *k = &keys[ki];
  out[0] = 0;
  pthread_mutex_lock(&k->mu);
  for (uint32_t i = k->nops; i-- > 0;) {
    const kop *o = &k->ops[i];
    if (o->kind == K_PUT && ginfo(o->gen)->size == size) {
      snprintf(out, cap, "generation %" PRIu64 " (%s at %.3f s) has that size",
               o->gen, origin_name[ginfo(o->gen)->origin], o->t0 - T0);
      break;
    }
    if (o->kind == K_EMPTY && size == 0) {
      snprintf(out, cap, "a mount create at %.3f s", o->t0 - T0);
      break;
    }
  }
  pthread_mutex_unlock(&k->mu);
}

/* ------------------------------------------------------------------ */
/* Op kinds, statistics, faults                                        */
/* ------------------------------------------------------------------ */
enum {
  O_PUT_S, O_PUT_L, O_MPU, O_MPU_ABORT, O_GET_S, O_GET_L, O_RANGE, O_HEAD,
  O_LIST, O_DEL,
  O_FW_S, O_FW_L, O_FR_S, O_FR_L, O_READDIR, O_UNLINK, O_RENAME,
  O__N
};
static const char *op_name[O__N] = {
  "s3 PUT <=64KiB", "s3 PUT 1-32MiB", "s3 multipart", "s3 multipart abort",
  "s3 GET <=64KiB", "s3 GET 1-32MiB", "s3 GET range", "s3 HEAD",
  "s3 LIST", "s3 DELETE",
  "fs write <=64KiB", "fs write 1-32MiB", "fs read <=64KiB", "fs read 1-32MiB",
  "fs readdir", "fs unlink", "fs rename"};
static const char *op_id[O__N] = {
  "s3_put_small", "s3_put_large", "s3_multipart", "s3_multipart_abort",
  "s3_get_small", "s3_get_large", "s3_get_range", "s3_head", "s3_list",
  "s3_delete", "fs_write_small", "fs_write_large", "fs_read_small",
  "fs_read_large", "fs_readdir", "fs_unlink", "fs_rename"};

/* Fault kinds.  Server faults must be 0; F_503 is documented overload. */
enum {
  F_5XX, F_503, F_RESET, F_4XX, F_BYTES, F_TORN, F_STALE, F_SIZE, F_ETAG,
  F_LIST, F_ERRNO, F_HANG, F_GC, F_MOUNT_TORN, F_EDIT_BASE, F_CREATE_ENOENT,
  F_CUT, F__N
};
static const char *fault_id[F__N] = {
  "http_5xx", "http_503", "connection_reset", "unexpected_4xx", "wrong_bytes",
  "torn_read", "stale_or_illegal", "wrong_size", "wrong_etag", "listing",
  "unexpected_errno", "hung", "gc_failed",
  /* Signatures of the open fusefs bugs (see classify_tear): */
  "mount_torn_read",            /* a mount read: the bytes of one generation
                                   and the size of another, or bytes of two
                                   generations of the key */
  "mount_edit_on_other_version", /* a mount-written generation continued by
                                    the bytes of another (the edit applied
                                    to the version current at the first
                                    write, not the one opened) */
  "mount_create_enoent",         /* open(O_CREAT) of a name deleted by
                                    another process gave ENOENT */
  "get_cut_off"};                /* a GET's body ended early (200 sent) */
enum { D_S3, D_FS, D_VERIFY, D__N };
static const char *door_id[D__N] = {"s3", "mount", "verify"};

static _Atomic uint64_t faults[D__N][C__N + 1][F__N]; /* C__N: no key */
static pthread_mutex_t ex_mu = PTHREAD_MUTEX_INITIALIZER;
static char *examples[D__N][F__N][MAX_EX];
static int nex[D__N][F__N];

static void fault(int door, int cls, int f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fault(int door, int cls, int f, const char *fmt, ...) {
  atomic_fetch_add(&faults[door][cls < 0 ? C__N : cls][f], 1);
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(buf, sizeof buf, "[%.3f s] ", now() - T0);
  vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  va_end(ap);
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\') *p = ' ';
  pthread_mutex_lock(&ex_mu);
  if (nex[door][f] < MAX_EX) examples[door][f][nex[door][f]++] = strdup(buf);
  pthread_mutex_unlock(&ex_mu);
}

typedef struct lat { uint32_t *v; size_t n, cap; } lat;
typedef struct stats {
  uint64_t ok[O__N], expected[O__N], bad[O__N], bytes[O__N];
  lat l[O__N];
} stats;

static void lat_add(lat *l, double secs) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (!l->v) die("out of memory");
  }
  double us = secs * 1e6;
  l->v[l->n++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

/* One finished op: outcome 0 ok, 1 expected (404 etc.), 2 fault. */
static void account(stats *st, int op, int outcome, uint64_t bytes, double t0) {
  double t = now() - t0;
  if (outcome == 0) st->ok[op]++;
  else if (outcome == 1) st->expected[op]++;
  else st->bad[op]++;
  st->bytes[op] += bytes;
  lat_add(&st->l[op], t);
}

/* ------------------------------------------------------------------ */
/* A blocking HTTP/1.1 connection                                      */
/* ------------------------------------------------------------------ */
typedef struct hconn {
  int fd;
  double last;   /* when the last response ended: s3d closes idle
                    connections (--timeout), so a long-idle one is
                    replaced before use */
  char hdr[HDR_CAP];
  size_t have;   /* bytes in hdr after the header (start of the body) */
  size_t hstart; /* where those bytes start in hdr */
} hconn;

typedef struct hresp {
  int status;
  int64_t clen;      /* body length (0 for HEAD, 204, 304) */
  int64_t hdr_clen;  /* the Content-Length header (HEAD: the object's) */
  bool chunked, close;
  char etag[80], crange[96], upload_id[200];
  int err; /* 0, or errno of a transport failure */
  const char *err_what;
} hresp;

static int connect_s3(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&s3_addr, sizeof s3_addr) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void hc_close(hconn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->have = 0;
}

static int send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EPIPE;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Body source of a request. */
typedef struct hbody {
  uint64_t gen, size, off, len; /* gen != 0: bytes [off, off+len) of gen */
  const void *raw;               /* else raw bytes */
  size_t raw_len;
  struct md5_ctx *md5;           /* fed the body if set */
} hbody;

/* Send a request: method, raw path (encoded), canonical query, extra
 * signed headers, extra unsigned header lines, body.  Opens the connection
 * if needed.  Returns 0 or errno. */
static int hc_send(hconn *c, uint8_t *iobuf, const char *method, const char *path,
                   const char *query, const s3sign_hdr *sh, int nsh,
                   const char *extra, const hbody *body) {
  if (c->fd >= 0 && now() - c->last > 20) hc_close(c);
  if (c->fd < 0) {
    c->fd = connect_s3();
    if (c->fd < 0) return errno ? errno : ECONNREFUSED;
    c->have = 0;
  }
  char req[12288];
  int n = snprintf(req, sizeof req, "%s %s%s%s HTTP/1.1\r\n", method, path,
                   query[0] ? "?" : "", query);
  n += s3sign_lines(req + n, sizeof req - (size_t)n, opt.ak, opt.sk, opt.region,
                    method, path, query, s3_host, sh, nsh);
  uint64_t blen = body ? (body->gen ? body->len : body->raw_len) : 0;
  if ((size_t)n < sizeof req && (body || !strcmp(method, "PUT") || !strcmp(method, "POST")))
    n += snprintf(req + n, sizeof req - (size_t)n, "Content-Length: %" PRIu64 "\r\n", blen);
  if ((size_t)n < sizeof req && extra)
    n += snprintf(req + n, sizeof req - (size_t)n, "%s", extra);
  if ((size_t)n < sizeof req) n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
  if ((size_t)n >= sizeof req) die("request too long");
  int e = send_all(c->fd, req, (size_t)n);
  if (e) return e;
  if (body && body->gen) {
    for (uint64_t o = 0; o < body->len;) {
      size_t l = body->len - o < IOBUF ? (size_t)(body->len - o) : IOBUF;
      gen_fill(body->gen, body->size, body->off + o, iobuf, l);
      if (body->md5) md5_update(body->md5, l, iobuf);
      e = send_all(c->fd, iobuf, l);
      if (e) return e;
      o += l;
    }
  } else if (body && body->raw_len) {
    if (body->md5) md5_update(body->md5, body->raw_len, body->raw);
    e = send_all(c->fd, body->raw, body->raw_len);
    if (e) return e;
  }
  return 0;
}

static void hdr_val(const char *h, char *out, size_t cap) {
  while (*h == ' ' || *h == '\t') h++;
  size_t n = strcspn(h, "\r\n");
  while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
  if (n >= cap) n = cap - 1;
  memcpy(out, h, n);
  out[n] = 0;
}

/* Read the status line and headers. */
static int hc_head(hconn *c, hresp *r, bool is_head) {
  memset(r, 0, sizeof *r);
  r->clen = -1;
  size_t got = 0;
  char *end = NULL;
  for (;;) {
    ssize_t k = recv(c->fd, c->hdr + got, HDR_CAP - 1 - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return errno == EAGAIN ? ETIMEDOUT : errno;
    if (k == 0) return got ? ECONNRESET : ENOTCONN; /* closed */
    got += (size_t)k;
    c->hdr[got] = 0;
    end = strstr(c->hdr, "\r\n\r\n");
    if (end) break;
    if (got >= HDR_CAP - 1) return E2BIG;
  }
  size_t hlen = (size_t)(end - c->hdr) + 4;
  c->hstart = hlen;
  c->have = got - hlen;
  end[2] = 0;
  if (strncmp(c->hdr, "HTTP/1.", 7)) return EPROTO;
  c->last = now();
  r->status = (int)strtol(c->hdr + 9, NULL, 10);
  for (char *l = strstr(c->hdr, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
    char *h = l + 2;
    if (!strncasecmp(h, "content-length:", 15)) r->clen = strtoll(h + 15, NULL, 10);
    else if (!strncasecmp(h, "transfer-encoding:", 18)) r->chunked = strcasestr(h, "chunked") != NULL;
    else if (!strncasecmp(h, "connection:", 11)) {
      char v[40];
      hdr_val(h + 11, v, sizeof v);
      r->close = !strcasecmp(v, "close");
    }
    else if (!strncasecmp(h, "etag:", 5)) hdr_val(h + 5, r->etag, sizeof r->etag);
    else if (!strncasecmp(h, "content-range:", 14)) hdr_val(h + 14, r->crange, sizeof r->crange);
  }
  r->hdr_clen = r->clen;
  if (is_head || r->status == 204 || r->status == 304 || r->status < 200) {
    r->clen = 0;
    r->chunked = false;
  }
  return 0;
}

/* Read up to n body bytes (from the header leftovers first). */
static ssize_t hc_read(hconn *c, void *buf, size_t n) {
  if (c->have) {
    size_t l = c->have < n ? c->have : n;
    memcpy(buf, c->hdr + c->hstart, l);
    c->hstart += l;
    c->have -= l;
    return (ssize_t)l;
  }
  for (;;) {
    ssize_t k = recv(c->fd, buf, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno == EAGAIN) errno = ETIMEDOUT;
    return k;
  }
}

static int hc_read_full(hconn *c, void *buf, size_t n) {
  uint8_t *b = buf;
  while (n) {
    ssize_t k = hc_read(c, b, n);
    if (k == 0) return ECONNRESET;
    if (k < 0) return errno;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

/* A whole small body (XML, errors) into a malloc'd NUL-terminated buffer,
 * Content-Length or chunked. */
static int hc_body_small(hconn *c, const hresp *r, char **out, size_t *outn) {
  size_t cap = 65536, n = 0;
  char *b = xmalloc(cap + 1);
  int e = 0;
  if (r->chunked) {
    for (;;) {
      char line[64];
      size_t ln = 0;
      for (;;) { /* chunk size line */
        char ch;
        ssize_t k = hc_read(c, &ch, 1);
        if (k <= 0) { e = k == 0 ? ECONNRESET : errno; goto out; }
        if (ch == '\n') break;
        if (ln < sizeof line - 1) line[ln++] = ch;
      }
      line[ln] = 0;
      size_t cl = (size_t)strtoull(line, NULL, 16);
      if (cl == 0) { /* trailer: read to the empty line */
        char tail[2] = {0, 0};
        for (;;) {
          char ch;
          ssize_t k = hc_read(c, &ch, 1);
          if (k <= 0) { e = k == 0 ? ECONNRESET : errno; goto out; }
          if (ch == '\n' && tail[1] == '\r' && tail[0] == '\n') break;
          if (ch == '\n' && tail[1] == '\r' && ln == 0) break;
          tail[0] = tail[1];
          tail[1] = ch;
          ln = 0;
        }
        break;
      }
      if (n + cl > 64 * MIB) { e = E2BIG; goto out; }
      if (n + cl > cap) {
        cap = (n + cl) * 2;
        b = realloc(b, cap + 1);
        if (!b) die("out of memory");
      }
      if ((e = hc_read_full(c, b + n, cl))) goto out;
      n += cl;
      char crlf[2];
      if ((e = hc_read_full(c, crlf, 2))) goto out;
    }
  } else if (r->clen > 0) {
    if (r->clen > 64 * (int64_t)MIB) { e = E2BIG; goto out; }
    if ((size_t)r->clen > cap) {
      cap = (size_t)r->clen;
      b = realloc(b, cap + 1);
      if (!b) die("out of memory");
    }
    e = hc_read_full(c, b, (size_t)r->clen);
    if (!e) n = (size_t)r->clen;
  }
out:
  b[n] = 0;
  *out = b;
  *outn = n;
  return e;
}

/* ------------------------------------------------------------------ */
/* Verifying a body as it arrives                                      */
/* ------------------------------------------------------------------ */
/* Identify the generation of a body from its bytes: the first whole stamp
 * at or after object offset `off` in buf[0..n).  Returns false when there
 * is none. */
static bool find_stamp(const uint8_t *buf, size_t n, uint64_t off, uint64_t *g,
                       uint64_t *size, uint32_t *blk, uint64_t *at) {
  uint64_t p = (off + BLK - 1) / BLK * BLK;
  for (; p + STAMP <= off + n; p += BLK) {
    if (parse_stamp(buf + (p - off), g, size, blk) && *blk == p / BLK) {
      *at = p;
      return true;
    }
    break; /* the first boundary only: a bad stamp there is a fault */
  }
  return false;
}

/* Describe what the bytes at object offset `off` (buf[0..n)) are: which
 * generation's stamps they carry. */
static void describe_bytes(const uint8_t *buf, size_t n, uint64_t off, char *out,
                           size_t cap) {
  uint64_t g, size;
  uint32_t blk;
  size_t o = 0;
  out[0] = 0;
  for (uint64_t p = (off + BLK - 1) / BLK * BLK; p + STAMP <= off + n; p += BLK) {
    if (parse_stamp(buf + (p - off), &g, &size, &blk)) {
      geninfo *gi = ginfo(g);
      o += (size_t)snprintf(out + o, cap - o, "block at %" PRIu64 " holds block %u"
                            " of generation %" PRIu64 " (%" PRIu64 " bytes, %s of"
                            " %s)", p, blk, g, size, gi ? origin_name[gi->origin] : "?",
                            gi ? keys[gi->key].name : "?");
      return;
    }
    o += (size_t)snprintf(out + o, cap - o, "no stamp at %" PRIu64 "; ", p);
    if (o > cap / 2) return;
  }
}

typedef struct vstate {
  int ki;            /* key read */
  uint64_t off;      /* object offset of the next byte */
  uint64_t total;    /* object size as the response says */
  bool known;        /* gen identified */
  uint64_t gen, gsize;
  bool bad;          /* a fault was reported */
  int door;
  const char *what;  /* "GET", "mount read", ... */
  uint8_t *pend;     /* bytes before the first stamp (ranged reads) */
  size_t npend;
  struct md5_ctx md5;
  bool want_md5;
  bool via_mount;    /* read through the mount (not S3) */
} vstate;

/* A tear: byte `at` of the object (the first that is not generation
 * v->gen) is piece[at - poff], the piece holding [poff, poff + npiece).
 * Which kind of fault it is:
 *  - past the end of a generation the mount wrote, the rest another
 *    generation's: the stored object is that write laid over another
 *    version (F_EDIT_BASE, the "edit applies to the version current at the
 *    first write" bug), whichever door reads it;
 *  - read through the mount: zeros past the generation's end (the
 *    kernel's size of another version), or at `at` the bytes of another
 *    generation of the same key (pages another handle of the file cached
 *    from the version it opened): F_MOUNT_TORN, the mount's torn-read
 *    bug;
 *  - anything else: F_TORN. */
static int classify_tear(const vstate *v, uint64_t at, const uint8_t *piece,
                         uint64_t poff, size_t npiece) {
  const uint8_t *tail = piece + (at - poff);
  size_t ntail = npiece - (size_t)(at - poff);
  geninfo *gi = ginfo(v->gen);
  bool mount_gen = gi && (gi->origin == 2 || gi->origin == 3);
  /* Whose bytes follow: the stamp of at's block (else of the next one)
   * names another generation of the same key, and the bytes from `at` to
   * the end of that block are that generation's. */
  uint64_t other = 0;
  for (uint64_t b = at / BLK * BLK; b <= at + BLK && !other; b += BLK) {
    uint64_t g, size;
    uint32_t blk;
    if (b < poff || b + STAMP > poff + npiece) continue;
    if (!parse_stamp(piece + (b - poff), &g, &size, &blk) || blk != b / BLK) break;
    if (g == v->gen) continue; /* at's block began as ours: try the next */
    uint64_t from = at > b ? at : b;
    size_t upto = (size_t)(b + BLK - from);
    if (from - at + upto > ntail) upto = ntail - (size_t)(from - at);
    if (ginfo(g) && ginfo(g)->key == (uint32_t)v->ki &&
        gen_cmp(g, size, from, tail + (from - at), upto) < 0)
      other = g;
    break;
  }
  if (at >= v->gsize && mount_gen && other) return F_EDIT_BASE;
  if (v->via_mount) {
    bool zeros = true;
    for (size_t i = 0; i < ntail && zeros; i++) zeros = tail[i] == 0;
    if ((at >= v->gsize && zeros) || other) return F_MOUNT_TORN;
  }
  return F_TORN;
}

/* Feed bytes [v->off, v->off + n). */
static void v_feed(vstate *v, const uint8_t *buf, size_t n) {
  if (v->want_md5) md5_update(&v->md5, n, buf);
  if (v->bad || !n) {
    v->off += n;
    return;
  }
  const key *k = &keys[v->ki];
  if (!v->known) {
    /* Collect up to the end of the first block boundary's stamp. */
    uint64_t start = v->off - v->npend;
    uint64_t first = (start + BLK - 1) / BLK * BLK, need = first + STAMP;
    size_t take = v->off + n > need ? (size_t)(need - v->off) : n;
    memcpy(v->pend + v->npend, buf, take);
    v->npend += take;
    v->off += take;
    buf += take;
    n -= take;
    if (v->off < need) return; /* more to come, or v_end decides */
    uint64_t g, size, at;
    uint32_t blk;
    if (!find_stamp(v->pend, v->npend, start, &g, &size, &blk, &at)) {
      char d[300];
      describe_bytes(v->pend, v->npend, start, d, sizeof d);
      fault(v->door, k->cls, F_BYTES, "%s %s: no valid stamp at offset %" PRIu64
            " (%s)", v->what, k->name, first, d);
      v->bad = true;
      v->off += n;
      return;
    }
    v->known = true;
    v->gen = g;
    v->gsize = size;
    int64_t d = gen_cmp(g, size, start, v->pend, v->npend);
    if (d >= 0) {
      char desc[300];
      describe_bytes(v->pend, v->npend, start, desc, sizeof desc);
      fault(v->door, k->cls,
            classify_tear(v, start + (uint64_t)d, v->pend, start, v->npend),
            "%s %s: bytes at %" PRIu64 " differ from"
            " generation %" PRIu64 " named by the stamp (%s)", v->what, k->name,
            start + (uint64_t)d, g, desc);
      v->bad = true;
      v->off += n;
      return;
    }
    if (!n) return;
  }
  int64_t d = gen_cmp(v->gen, v->gsize, v->off, buf, n);
  if (d >= 0) {
    char desc[300];
    uint64_t at = v->off + (uint64_t)d;
    uint64_t from = at / BLK * BLK;
    if (from < v->off) from = v->off;
    describe_bytes(buf + (from - v->off), n - (size_t)(from - v->off), from, desc,
                   sizeof desc);
    geninfo *gi = ginfo(v->gen);
    fault(v->door, k->cls, classify_tear(v, at, buf, v->off, n),
          "%s %s: torn: starts as generation %" PRIu64
          " (%" PRIu64 " bytes, %s), differs from byte %" PRIu64 ": %s", v->what,
          k->name, v->gen, v->gsize, gi ? origin_name[gi->origin] : "?", at, desc);
    v->bad = true;
  }
  v->off += n;
}

/* The body ended at v->off.  r0/r1: the read's interval.  Checks the size
 * and the legality of the generation.  Returns true when all is well. */
static bool v_end(vstate *v, double r0, double r1, const char *etag) {
  const key *k = &keys[v->ki];
  char why[600];
  if (v->bad) return false;
  if (!v->known) {
    if (v->total == 0) {
      const char *w = check_value(v->ki, V_EMPTY, 0, r0, r1, why, sizeof why);
      if (w) {
        fault(v->door, k->cls, F_STALE, "%s %s: empty body: %s", v->what, k->name, w);
        return false;
      }
      return true;
    }
    /* A range too short to hold a stamp: try every legal generation. */
    key *kk = &keys[v->ki];
    bool ok = false;
    pthread_mutex_lock(&kk->mu);
    double X = superseded_before(kk, r0);
    for (uint32_t i = kk->nops; i-- > 0 && !ok;) {
      const kop *o = &kk->ops[i];
      if (o->kind != K_PUT || !op_legal(o, r1, X)) continue;
      geninfo *gi = ginfo(o->gen);
      if (gi->size == v->total &&
          gen_cmp(o->gen, gi->size, v->off - v->npend, v->pend, v->npend) < 0)
        ok = true;
    }
    pthread_mutex_unlock(&kk->mu);
    if (!ok) {
      char d[300];
      describe_bytes(v->pend, v->npend, v->off - v->npend, d, sizeof d);
      fault(v->door, k->cls, F_BYTES, "%s %s: %zu bytes at %" PRIu64 " (object %"
            PRIu64 " bytes) match no legal generation (%s)", v->what, k->name,
            v->npend, v->off - v->npend, v->total, d);
    }
    return ok;
  }
  if (v->gsize != v->total) {
    char d[300];
    describe_size(v->ki, v->total, d, sizeof d);
    /* Every byte is the generation's, the size is not: through the mount,
     * the kernel's size of another version (or a read cut short); over
     * S3, a mount write shorter than the object it was laid over. */
    geninfo *gi = ginfo(v->gen);
    int kind = v->via_mount ? F_MOUNT_TORN
               : gi && (gi->origin == 2 || gi->origin == 3) && v->total > v->gsize
                   ? F_EDIT_BASE
                   : F_TORN;
    fault(v->door, k->cls, kind,
          "%s %s: size %" PRIu64 " but the bytes are"
          " generation %" PRIu64 " of %" PRIu64 " bytes (%s%s)", v->what, k->name,
          v->total, v->gen, v->gsize, d[0] ? "" : "no write had that size", d);
    return false;
  }
  const char *w = check_value(v->ki, V_GEN, v->gen, r0, r1, why, sizeof why);
  if (w) {
    fault(v->door, k->cls, strstr(w, "belongs") ? F_BYTES : F_STALE, "%s %s: %s",
          v->what, k->name, w);
    return false;
  }
  if (v->want_md5 && etag && etag[0] && !strchr(etag, '-')) {
    uint8_t d[16];
    char hx[33];
    md5_digest(&v->md5, 16, d);
    s3sign_hex(d, 16, hx);
    const char *e = etag[0] == '"' ? etag + 1 : etag;
    if (strncmp(e, hx, 32)) {
      fault(v->door, k->cls, F_ETAG, "%s %s: ETag %s but the body's MD5 is %s"
            " (generation %" PRIu64 ")", v->what, k->name, etag, hx, v->gen);
      return false;
    }
  }
  return true;
}

static void v_init(vstate *v, int ki, int door, const char *what, uint64_t off,
                   uint64_t total, uint8_t *pend, bool want_md5) {
  memset(v, 0, sizeof *v);
  v->ki = ki;
  v->door = door;
  v->what = what;
  v->off = off;
  v->total = total;
  v->pend = pend;
  v->want_md5 = want_md5;
  if (want_md5) md5_init(&v->md5);
}

/* ------------------------------------------------------------------ */
/* S3 operations                                                       */
/* ------------------------------------------------------------------ */
typedef struct worker {
  int id;
  rng r;
  hconn c;
  uint8_t *io;     /* IOBUF */
  uint8_t *pend;   /* 2 * BLK + STAMP */
  stats st;
  pthread_t th;
  _Atomic double busy_since; /* 0 when idle: for the hang report */
  _Atomic int cur_op;
  bool verifier;   /* faults go to the "verify" door */
} worker;

static int wdoor(const worker *w, int door) { return w->verifier ? D_VERIFY : door; }

static void key_path(int ki, char *out, size_t cap) {
  snprintf(out, cap, "/%s/%s", opt.bucket, keys[ki].name);
}

/* A transport failure or an unexpected status: count it; the connection
 * is dropped. */
static void s3_fail(worker *w, int ki, const char *what, int e, const hresp *r,
                    const char *body) {
  int cls = ki >= 0 ? keys[ki].cls : -1;
  const char *kn = ki >= 0 ? keys[ki].name : "-";
  if (e) {
    fault(wdoor(w, D_S3), cls, F_RESET, "%s %s: %s", what, kn, strerror(e));
    hc_close(&w->c);
    return;
  }
  int f = r->status == 503 ? F_503 : r->status >= 500 ? F_5XX : F_4XX;
  char b[240] = "";
  if (body) snprintf(b, sizeof b, "%s", body);
  fault(wdoor(w, D_S3), cls, f, "%s %s: HTTP %d %s", what, kn, r->status, b);
}

/* Finish a response whose body we do not check; returns the transport
 * error.  Drops the connection when the server asked. */
static int s3_finish(worker *w, const hresp *r, char **body) {
  char *b = NULL;
  size_t n;
  int e = hc_body_small(&w->c, r, &b, &n);
  if (body) *body = b;
  else free(b);
  if (e || r->close) hc_close(&w->c);
  return e;
}

static uint64_t small_size(rng *r) {
  return runit(r) < 0.3 ? rrange(r, SMALL_MIN, KIB) : rrange(r, KIB, SMALL_MAX);
}
static uint64_t large_size(rng *r, uint64_t lo) {
  uint64_t hi = (uint64_t)opt.large_max_mib * MIB;
  if (lo > hi) lo = hi;
  /* log-uniform: as many 1-2 MiB as 16-32 MiB objects */
  double a = log((double)lo), b = log((double)hi);
  return (uint64_t)exp(a + (b - a) * runit(r));
}

/* PUT one generation. */
static void s3_put(worker *w, int ki) {
  const key *k = &keys[ki];
  int op = k->large ? O_PUT_L : O_PUT_S;
  uint64_t size = k->large ? large_size(&w->r, MIB) : small_size(&w->r);
  uint64_t g = gen_new();
  char path[96];
  key_path(ki, path, sizeof path);
  double t0 = now();
  uint32_t oi = op_begin(ki, K_PUT, g, (uint32_t)size, 0);
  struct md5_ctx m;
  md5_init(&m);
  hbody b = {.gen = g, .size = size, .off = 0, .len = size, .md5 = &m};
  hresp r;
  int e = hc_send(&w->c, w->io, "PUT", path, "", NULL, 0, NULL, &b);
  if (!e) e = hc_head(&w->c, &r, false);
  char *body = NULL;
  if (!e) e = s3_finish(w, &r, &body);
  if (e || r.status != 200) {
    /* A 4xx refusal is clean; anything else may or may not have landed. */
    op_end(ki, oi, !e && r.status >= 400 && r.status < 500 ? ST_FAILED : ST_UNKNOWN);
    s3_fail(w, ki, "PUT", e, &r, body);
    account(&w->st, op, 2, size, t0);
  } else {
    op_end(ki, oi, ST_OK);
    uint8_t d[16];
    char hx[33];
    md5_digest(&m, 16, d);
    s3sign_hex(d, 16, hx);
    const char *et = r.etag[0] == '"' ? r.etag + 1 : r.etag;
    if (strncmp(et, hx, 32)) {
      fault(D_S3, k->cls, F_ETAG, "PUT %s: ETag %s, want %s (generation %" PRIu64
            ", %" PRIu64 " bytes)", k->name, r.etag, hx, g, size);
      account(&w->st, op, 2, size, t0);
    } else {
      account(&w->st, op, 0, size, t0);
    }
  }
  free(body);
}

static bool xml_tag(const char *x, const char *tag, char *out, size_t cap) {
  char open[64], close_[64];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close_, sizeof close_, "</%s>", tag);
  const char *a = strstr(x, open);
  if (!a) return false;
  a += strlen(open);
  const char *b = strstr(a, close_);
  if (!b || (size_t)(b - a) >= cap) return false;
  /* unescape the five XML entities */
  size_t o = 0;
  for (const char *p = a; p < b; p++) {
    if (*p == '&') {
      static const struct { const char *e; char c; } ent[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool done = false;
      for (int i = 0; i < 5 && !done; i++)
        if (!strncmp(p, ent[i].e, strlen(ent[i].e))) {
          out[o++] = ent[i].c;
          p += strlen(ent[i].e) - 1;
          done = true;
        }
      if (done) continue;
    }
    out[o++] = *p;
  }
  out[o] = 0;
  return true;
}

/* A multipart upload of one generation, 2..6 parts, or aborted midway. */
static void s3_mpu(worker *w, int ki) {
  const key *k = &keys[ki];
  uint64_t maxb = (uint64_t)opt.large_max_mib * MIB;
  if (maxb < 2 * PART_MIN) maxb = 2 * PART_MIN;
  uint64_t size = rrange(&w->r, 2 * PART_MIN, maxb);
  int nparts = (int)(size / PART_MIN);
  if (nparts > 6) nparts = 6;
  if (nparts > 2) nparts = (int)rrange(&w->r, 2, (uint64_t)nparts);
  uint64_t psize = size / (uint64_t)nparts; /* the last part takes the rest */
  bool abort_it = runit(&w->r) < 0.1;
  uint64_t g = gen_new();
  char path[96], q[800], *body = NULL;
  key_path(ki, path, sizeof path);
  double t0 = now();
  uint32_t oi = op_begin(ki, K_PUT, g, (uint32_t)size, 1);
  hresp r;
  int op = abort_it ? O_MPU_ABORT : O_MPU;
  int e = hc_send(&w->c, w->io, "POST", path, "uploads=", NULL, 0, NULL, NULL);
  if (!e) e = hc_head(&w->c, &r, false);
  if (!e) e = s3_finish(w, &r, &body);
  char uid[256];
  if (e || r.status != 200 || !xml_tag(body, "UploadId", uid, sizeof uid)) {
    op_end(ki, oi, ST_FAILED);
    s3_fail(w, ki, "CreateMultipartUpload", e, &r, body);
    account(&w->st, op, 2, 0, t0);
    free(body);
    return;
  }
  free(body);
  body = NULL;
  char euid[512];
  s3sign_uri_encode(uid, 0, euid, sizeof euid);
  char complete[4096];
  int cn = snprintf(complete, sizeof complete, "<CompleteMultipartUpload>");
  uint64_t sent = 0;
  int parts_to_send = abort_it ? (int)rrange(&w->r, 0, (uint64_t)nparts - 1) : nparts;
  for (int p = 1; p <= parts_to_send; p++) {
    uint64_t off = (uint64_t)(p - 1) * psize;
    uint64_t len = p == nparts ? size - off : psize;
    snprintf(q, sizeof q, "partNumber=%d&uploadId=%s", p, euid);
    hbody b = {.gen = g, .size = size, .off = off, .len = len};
    e = hc_send(&w->c, w->io, "PUT", path, q, NULL, 0, NULL, &b);
    if (!e) e = hc_head(&w->c, &r, false);
    if (!e) e = s3_finish(w, &r, &body);
    if (e || r.status != 200 || !r.etag[0]) {
      op_end(ki, oi, ST_FAILED); /* never completed: must never be visible */
      s3_fail(w, ki, "UploadPart", e, &r, body);
      account(&w->st, op, 2, sent, t0);
      free(body);
      return;
    }
    free(body);
    body = NULL;
    sent += len;
    cn += snprintf(complete + cn, sizeof complete - (size_t)cn,
                   "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", p, r.etag);
  }
  snprintf(q, sizeof q, "uploadId=%s", euid);
  if (abort_it) {
    e = hc_send(&w->c, w->io, "DELETE", path, q, NULL, 0, NULL, NULL);
    if (!e) e = hc_head(&w->c, &r, false);
    if (!e) e = s3_finish(w, &r, &body);
    op_end(ki, oi, ST_FAILED);
    if (e || r.status != 204) {
      s3_fail(w, ki, "AbortMultipartUpload", e, &r, body);
      account(&w->st, op, 2, sent, t0);
    } else {
      account(&w->st, op, 0, sent, t0);
    }
    free(body);
    return;
  }
  cn += snprintf(complete + cn, sizeof complete - (size_t)cn, "</CompleteMultipartUpload>");
  hbody b = {.raw = complete, .raw_len = (size_t)cn};
  e = hc_send(&w->c, w->io, "POST", path, q, NULL, 0, NULL, &b);
  if (!e) e = hc_head(&w->c, &r, false);
  if (!e) e = s3_finish(w, &r, &body);
  /* CompleteMultipartUpload may answer 200 with an error document. */
  if (e || r.status != 200 || (body && strstr(body, "<Error>"))) {
    op_end(ki, oi, !e && r.status >= 400 && r.status < 500 ? ST_FAILED : ST_UNKNOWN);
    s3_fail(w, ki, "CompleteMultipartUpload", e, &r, body);
    if (!e && r.status == 200)
      fault(D_S3, k->cls, F_5XX, "CompleteMultipartUpload %s: error document in a 200",
            k->name);
    account(&w->st, op, 2, sent, t0);
  } else {
    op_end(ki, oi, ST_OK);
    char et[100];
    if (!xml_tag(body, "ETag", et, sizeof et) || !strstr(et, "-")) {
      fault(D_S3, k->cls, F_ETAG, "CompleteMultipartUpload %s: ETag %s is not"
            " a multipart ETag", k->name, et);
      account(&w->st, op, 2, sent, t0);
    } else {
      account(&w->st, op, 0, sent, t0);
    }
  }
  free(body);
}

/* "bytes X-Y/T" (Content-Range of a 206). */
static bool parse_crange(const char *s, uint64_t *x, uint64_t *y, uint64_t *t) {
  char *e;
  if (strncmp(s, "bytes ", 6)) return false;
  s += 6;
  if (*s < '0' || *s > '9') return false;
  *x = strtoull(s, &e, 10);
  if (*e != '-' || e[1] < '0' || e[1] > '9') return false;
  *y = strtoull(e + 1, &e, 10);
  if (*e != '/' || e[1] < '0' || e[1] > '9') return false;
  *t = strtoull(e + 1, &e, 10);
  return *e == 0 && *x <= *y;
}

/* GET (whole, or a range [a, a + len)).  In the verification pass, *out
 * receives what was found (V_GEN with gen, V_ABSENT, V_EMPTY), -1 on a
 * fault. */
static int s3_get(worker *w, int ki, bool range, int door, int *out_what,
                  uint64_t *out_gen) {
  const key *k = &keys[ki];
  int op = range ? O_RANGE : k->large ? O_GET_L : O_GET_S;
  char path[96], rh[96] = "";
  key_path(ki, path, sizeof path);
  uint64_t a = 0, want_len = 0;
  if (range) {
    uint64_t hint = size_hint(ki);
    if (hint < 2 * BLK) hint = 2 * BLK;
    a = rbelow(&w->r, hint);
    uint64_t len = rrange(&w->r, BLK + STAMP, hint > MIB ? MIB : hint);
    want_len = len;
    snprintf(rh, sizeof rh, "Range: bytes=%" PRIu64 "-%" PRIu64 "\r\n", a, a + len - 1);
  }
  if (out_what) *out_what = -1;
  double t0 = now();
  hresp r;
  int e = hc_send(&w->c, w->io, "GET", path, "", NULL, 0, range ? rh : NULL, NULL);
  if (!e) e = hc_head(&w->c, &r, false);
  double r0 = t0;
  if (e) {
    s3_fail(w, ki, range ? "GET range" : "GET", e, &r, NULL);
    account(&w->st, op, 2, 0, t0);
    return -1;
  }
  if (r.status == 404 || (range && r.status == 416)) {
    char *body = NULL;
    e = s3_finish(w, &r, &body);
    double r1 = now();
    char why[600];
    const char *bad = NULL;
    if (e) {
      s3_fail(w, ki, "GET", e, &r, NULL);
      free(body);
      account(&w->st, op, 2, 0, t0);
      return -1;
    }
    if (r.status == 404) {
      if (!strstr(body, "NoSuchKey")) {
        fault(door, k->cls, F_4XX, "GET %s: 404 without NoSuchKey: %.200s", k->name, body);
        free(body);
        account(&w->st, op, 2, 0, t0);
        return -1;
      }
      bad = check_value(ki, V_ABSENT, 0, r0, r1, why, sizeof why);
      if (out_what) *out_what = V_ABSENT;
    } else { /* 416: the range starts past the end: size must be legal */
      uint64_t tot = 0;
      const char *sl = strchr(r.crange, '/');
      if (sl) tot = strtoull(sl + 1, NULL, 10);
      if (!sl || tot > a) {
        fault(door, k->cls, F_4XX, "GET range %s bytes=%" PRIu64 "-: 416 with"
              " Content-Range '%s'", k->name, a, r.crange);
        free(body);
        account(&w->st, op, 2, 0, t0);
        return -1;
      }
      if (!size_legal(ki, tot, r0, r1)) {
        snprintf(why, sizeof why, "416 says the size is %" PRIu64 ", no legal"
                 " generation has that size", tot);
        bad = why;
      }
    }
    free(body);
    if (bad) {
      fault(door, k->cls, F_STALE, "GET %s: %s", k->name, bad);
      account(&w->st, op, 2, 0, t0);
      return -1;
    }
    account(&w->st, op, 1, 0, t0);
    return 0;
  }
  if (r.status != (range ? 206 : 200)) {
    char *body = NULL;
    e = s3_finish(w, &r, &body);
    s3_fail(w, ki, range ? "GET range" : "GET", e, &r, body);
    free(body);
    account(&w->st, op, 2, 0, t0);
    return -1;
  }
  if (r.chunked || r.clen < 0) {
    fault(door, k->cls, F_BYTES, "GET %s: no Content-Length", k->name);
    hc_close(&w->c);
    account(&w->st, op, 2, 0, t0);
    return -1;
  }
  uint64_t total = (uint64_t)r.clen, start = 0;
  if (r.status == 206) {
    uint64_t x, y, t;
    if (!parse_crange(r.crange, &x, &y, &t) || x != a || y - x + 1 != (uint64_t)r.clen || y >= t ||
        (y != a + want_len - 1 && y != t - 1)) {
      fault(door, k->cls, F_SIZE, "GET %s bytes=%" PRIu64 "-%" PRIu64 ": 206 with"
            " Content-Range '%s', Content-Length %" PRId64, k->name, a,
            a + want_len - 1, r.crange, r.clen);
      hc_close(&w->c);
      account(&w->st, op, 2, 0, t0);
      return -1;
    }
    start = x;
    total = t;
  }
  vstate v;
  v_init(&v, ki, door, range ? "GET range" : "GET", start, total, w->pend,
         !range && total <= MIB);
  uint64_t left = (uint64_t)r.clen;
  while (left) {
    ssize_t n = hc_read(&w->c, w->io, left < IOBUF ? (size_t)left : IOBUF);
    if (n <= 0) {
      e = n == 0 ? ECONNRESET : errno;
      fault(door, k->cls, F_CUT, "GET %s: body cut off after %" PRIu64 " of %"
            PRId64 " bytes: %s", k->name, (uint64_t)r.clen - left, r.clen, strerror(e));
      hc_close(&w->c);
      account(&w->st, op, 2, (uint64_t)r.clen - left, t0);
      return -1;
    }
    v_feed(&v, w->io, (size_t)n);
    left -= (uint64_t)n;
  }
  if (r.close) hc_close(&w->c);
  double r1 = now();
  if (!v_end(&v, r0, r1, range ? NULL : r.etag)) {
    account(&w->st, op, 2, (uint64_t)r.clen, t0);
    return -1;
  }
  if (out_what) {
    *out_what = v.known ? V_GEN : V_EMPTY;
    *out_gen = v.known ? v.gen : 0;
  }
  account(&w->st, op, 0, (uint64_t)r.clen, t0);
  return 0;
}

static void s3_head(worker *w, int ki) {
  const key *k = &keys[ki];
  char path[96];
  key_path(ki, path, sizeof path);
  double t0 = now();
  hresp r;
  int e = hc_send(&w->c, w->io, "HEAD", path, "", NULL, 0, NULL, NULL);
  if (!e) e = hc_head(&w->c, &r, true);
  if (e) {
    s3_fail(w, ki, "HEAD", e, &r, NULL);
    account(&w->st, O_HEAD, 2, 0, t0);
    return;
  }
  if (r.close) hc_close(&w->c);
  double r1 = now();
  char why[600];
  if (r.status == 404) {
    const char *bad = check_value(ki, V_ABSENT, 0, t0, r1, why, sizeof why);
    if (bad) {
      fault(D_S3, k->cls, F_STALE, "HEAD %s: %s", k->name, bad);
      account(&w->st, O_HEAD, 2, 0, t0);
    } else {
      account(&w->st, O_HEAD, 1, 0, t0);
    }
    return;
  }
  if (r.status != 200) {
    s3_fail(w, ki, "HEAD", 0, &r, NULL);
    account(&w->st, O_HEAD, 2, 0, t0);
    return;
  }
  /* HEAD carries the size of the version (Content-Length). */
  uint64_t size = r.hdr_clen < 0 ? 0 : (uint64_t)r.hdr_clen;
  if (r.hdr_clen < 0 || !size_legal(ki, size, t0, r1)) {
    char d[300];
    describe_size(ki, size, d, sizeof d);
    fault(D_S3, k->cls, r.hdr_clen >= 0 && edit_base_explains(ki, size, t0, r1) ? F_EDIT_BASE : F_SIZE,
          "HEAD %s: Content-Length %" PRIu64 " is the size"
          " of no legal generation (%s)", k->name, size, d[0] ? d : "of none at all");
    account(&w->st, O_HEAD, 2, 0, t0);
    return;
  }
  account(&w->st, O_HEAD, 0, 0, t0);
}

static void s3_delete(worker *w, int ki) {
  char path[96], *body = NULL;
  key_path(ki, path, sizeof path);
  double t0 = now();
  uint32_t oi = op_begin(ki, K_DEL, 0, 0, 0);
  hresp r;
  int e = hc_send(&w->c, w->io, "DELETE", path, "", NULL, 0, NULL, NULL);
  if (!e) e = hc_head(&w->c, &r, false);
  if (!e) e = s3_finish(w, &r, &body);
  if (e || r.status != 204) {
    op_end(ki, oi, !e && r.status >= 400 && r.status < 500 ? ST_FAILED : ST_UNKNOWN);
    s3_fail(w, ki, "DELETE", e, &r, body);
    account(&w->st, O_DEL, 2, 0, t0);
  } else {
    op_end(ki, oi, ST_OK);
    account(&w->st, O_DEL, 0, 0, t0);
  }
  free(body);
}

/* One listed entry. */
typedef struct lentry {
  char key[300];
  uint64_t size;
} lentry;

/* ListObjectsV2 of prefix (all pages), checking each page: keys ascending
 * and under the prefix, each known, each size legal, and no key missing
 * that must be there.  With delimiter: common prefixes are known dirs.
 * If out is set, every entry is appended there (verification). */
static int s3_list(worker *w, const char *prefix, bool delim, int maxkeys, int door,
                   lentry **out, size_t *nout) {
  char token[600] = "", last[300] = "", span_lo[300] = "";
  int pages = 0, rc = 0;
  int *page_keys = xmalloc(sizeof(int) * 1001);
  double t0 = now();
  uint64_t bytes = 0;
  for (;;) {
    char q[1800], ep[300], et[1300];
    s3sign_uri_encode(prefix, 0, ep, sizeof ep);
    s3sign_uri_encode(token, 0, et, sizeof et);
    snprintf(q, sizeof q, "%s%s%s%slist-type=2&max-keys=%d&prefix=%s",
             token[0] ? "continuation-token=" : "", token[0] ? et : "",
             token[0] ? "&" : "", delim ? "delimiter=%2F&" : "", maxkeys, ep);
    char path[80];
    snprintf(path, sizeof path, "/%s", opt.bucket);
    double r0 = now();
    hresp r;
    char *body = NULL;
    int e = hc_send(&w->c, w->io, "GET", path, q, NULL, 0, NULL, NULL);
    if (!e) e = hc_head(&w->c, &r, false);
    if (!e) e = s3_finish(w, &r, &body);
    double r1 = now();
    if (e || r.status != 200) {
      s3_fail(w, -1, "LIST", e, &r, body);
      free(body);
      rc = -1;
      break;
    }
    bytes += strlen(body);
    pages++;
    /* Entries, in order. */
    int n = 0, npage = 0;
    for (const char *c = strstr(body, "<Contents>"); c; c = strstr(c + 1, "<Contents>")) {
      const char *ce = strstr(c, "</Contents>");
      if (!ce) break;
      size_t cl = (size_t)(ce - c);
      char *blk = strndup(c, cl);
      lentry le;
      char sz[32];
      if (!blk || !xml_tag(blk, "Key", le.key, sizeof le.key) || !xml_tag(blk, "Size", sz, sizeof sz)) {
        fault(door, -1, F_LIST, "LIST %s: unparsable entry", prefix);
        free(blk);
        rc = -1;
        break;
      }
      free(blk);
      le.size = strtoull(sz, NULL, 10);
      if (strncmp(le.key, prefix, strlen(prefix)))
        fault(door, -1, F_LIST, "LIST %s: key %s is outside the prefix", prefix, le.key);
      if (last[0] && strcmp(le.key, last) <= 0)
        fault(door, -1, F_LIST, "LIST %s: key %s after %s (not ascending)", prefix,
              le.key, last);
      snprintf(last, sizeof last, "%s", le.key);
      n++;
      size_t kl = strlen(le.key);
      int ki = key_find(le.key);
      if (ki >= 0 && npage < 1001) page_keys[npage++] = ki;
      if (kl && le.key[kl - 1] == '/') {
        /* a directory marker: one of our directories */
        bool known = false;
        for (int i = 0; i < ndirs && !known; i++)
          known = strlen(dirs[i]) == kl - 1 && !strncmp(dirs[i], le.key, kl - 1);
        if (!known || le.size != 0)
          fault(door, -1, F_LIST, "LIST %s: unexpected marker %s (%" PRIu64 " bytes)",
                prefix, le.key, le.size);
      } else if (ki < 0) {
        fault(door, -1, F_LIST, "LIST %s: unknown key %s", prefix, le.key);
      } else if (keys[ki].cls != C_T && !size_legal(ki, le.size, r0, r1)) {
        char d[300];
        describe_size(ki, le.size, d, sizeof d);
        fault(door, keys[ki].cls,
              edit_base_explains(ki, le.size, r0, r1) ? F_EDIT_BASE : F_LIST,
              "LIST %s: %s listed with %" PRIu64
              " bytes, the size of no legal generation (%s)", prefix, le.key,
              le.size, d[0] ? d : "none has it");
      }
      if (out) {
        *out = realloc(*out, sizeof(lentry) * (*nout + 1));
        if (!*out) die("out of memory");
        (*out)[(*nout)++] = le;
      }
    }
    if (delim) {
      for (const char *c = strstr(body, "<CommonPrefixes>"); c;
           c = strstr(c + 1, "<CommonPrefixes>")) {
        char pfx[300];
        if (!xml_tag(c, "Prefix", pfx, sizeof pfx)) break;
        size_t pl = strlen(pfx);
        bool known = false;
        for (int i = 0; i < ndirs && !known; i++)
          known = strlen(dirs[i]) == pl - 1 && !strncmp(dirs[i], pfx, pl - 1);
        if (!known || strncmp(pfx, prefix, strlen(prefix)))
          fault(door, -1, F_LIST, "LIST %s (delimiter): unexpected common prefix %s",
                prefix, pfx);
      }
    }
    char trunc[16] = "false";
    xml_tag(body, "IsTruncated", trunc, sizeof trunc);
    bool more = !strcmp(trunc, "true");
    /* Keys of ours in this page's span, (previous page's last key, this
     * page's last key] (to the end if it is the last page), that are not
     * listed: each must be legally absent (no write finished before the
     * page's request without a delete after it).  Without a delimiter only
     * (with one, keys below a subdirectory are rolled up). */
    if (!delim) {
      size_t pl = strlen(prefix);
      for (int ki = 0; ki < nkeys; ki++) {
        const char *kn = keys[ki].name;
        if (strncmp(kn, prefix, pl) || keys[ki].cls == C_T) continue;
        if (span_lo[0] && strcmp(kn, span_lo) <= 0) continue;
        if (more && strcmp(kn, last) > 0) continue;
        bool listed = false;
        for (int x = 0; x < npage && !listed; x++) listed = page_keys[x] == ki;
        if (listed) continue;
        char why[600];
        const char *bad = check_value(ki, V_ABSENT, 0, r0, r1, why, sizeof why);
        if (bad)
          fault(door, keys[ki].cls, F_LIST, "LIST %s: %s missing: %s", prefix, kn, bad);
      }
    }
    snprintf(span_lo, sizeof span_lo, "%s", last);
    if (!more) {
      free(body);
      break;
    }
    if (!xml_tag(body, "NextContinuationToken", token, sizeof token) || !token[0]) {
      fault(door, -1, F_LIST, "LIST %s: truncated without a continuation token", prefix);
      free(body);
      rc = -1;
      break;
    }
    free(body);
    if (pages > 10000) {
      fault(door, -1, F_LIST, "LIST %s: more than 10000 pages", prefix);
      rc = -1;
      break;
    }
  }
  free(page_keys);
  if (door == D_S3) account(&w->st, O_LIST, rc ? 2 : 0, bytes, t0);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Mount operations                                                    */
/* ------------------------------------------------------------------ */
static void mpath(int ki, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s/%s", opt.mount, opt.bucket, keys[ki].name);
}

static void fs_fail(const worker *w, int ki, const char *what, int e) {
  fault(wdoor(w, D_FS), ki >= 0 ? keys[ki].cls : -1, F_ERRNO, "%s %s: %s", what,
        ki >= 0 ? keys[ki].name : "-", strerror(e));
}

static int write_full(int fd, const uint8_t *b, size_t n) {
  while (n) {
    ssize_t k = write(fd, b, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return errno;
    if (k == 0) return EIO;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Write generation g of `size` bytes to the file of key ki (O_CREAT |
 * O_TRUNC), registering the ops on `as_ki` (the key the generation is
 * for; the staging key when as_ki != ki is written with no registration
 * of g there but an empty-create op).  Returns 0 or errno. */
static int fs_write_gen(worker *w, int ki, uint64_t g, uint64_t size, int origin,
                        bool register_gen) {
  char p[PATH_MAX];
  mpath(ki, p, sizeof p);
  /* The create commits an empty object at once (docs/fusefs.md); an
   * O_TRUNC open of an existing file does not commit until close. */
  uint32_t ei = op_begin(ki, K_EMPTY, 0, 0, 0);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    op_end(ki, ei, ST_UNKNOWN);
    return e;
  }
  op_end(ki, ei, ST_OK);
  uint32_t oi = 0;
  if (register_gen) oi = op_begin(ki, K_PUT, g, (uint32_t)size, origin);
  int e = 0;
  for (uint64_t o = 0; o < size && !e;) {
    size_t l = size - o < IOBUF ? (size_t)(size - o) : IOBUF;
    gen_fill(g, size, o, w->io, l);
    e = write_full(fd, w->io, l);
    o += l;
  }
  if (close(fd) != 0 && !e) e = errno;
  if (register_gen) op_end(ki, oi, e ? ST_UNKNOWN : ST_OK);
  return e;
}

static void fs_write(worker *w, int ki) {
  const key *k = &keys[ki];
  int op = k->large ? O_FW_L : O_FW_S;
  uint64_t size = k->large ? large_size(&w->r, MIB) : small_size(&w->r);
  if (k->large && size > 16 * MIB) size = rrange(&w->r, MIB, 16 * MIB);
  uint64_t g = gen_new();
  double t0 = now();
  pthread_rwlock_wrlock(&keys[ki].mlk);
  int e = fs_write_gen(w, ki, g, size, 2, true);
  pthread_rwlock_unlock(&keys[ki].mlk);
  if (e == ENOENT) {
    /* The directory exists (its marker is never deleted): O_CREAT must
     * create.  ENOENT here is the mount trusting a name another process
     * has deleted. */
    fault(wdoor(w, D_FS), k->cls, F_CREATE_ENOENT, "open(O_CREAT|O_TRUNC) %s:"
          " ENOENT", k->name);
    account(&w->st, op, 2, 0, t0);
  } else if (e) {
    fs_fail(w, ki, "write", e);
    account(&w->st, op, 2, 0, t0);
  } else {
    account(&w->st, op, 0, size, t0);
  }
}

/* Read the whole file of ki through the mount and check it.  out_what as
 * for s3_get. */
static int fs_read(worker *w, int ki, int door, int *out_what, uint64_t *out_gen) {
  const key *k = &keys[ki];
  int op = k->large ? O_FR_L : O_FR_S;
  char p[PATH_MAX];
  mpath(ki, p, sizeof p);
  if (out_what) *out_what = -1;
  pthread_rwlock_rdlock(&keys[ki].mlk);
  double t0 = now();
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    double r1 = now();
    pthread_rwlock_unlock(&keys[ki].mlk);
    if (e != ENOENT) {
      fs_fail(w, ki, "open", e);
      account(&w->st, op, 2, 0, t0);
      return -1;
    }
    char why[600];
    const char *bad = check_value(ki, V_ABSENT, 0, t0, r1, why, sizeof why);
    if (bad) {
      fault(door, k->cls, F_STALE, "mount open %s: ENOENT: %s", k->name, bad);
      account(&w->st, op, 2, 0, t0);
      return -1;
    }
    if (out_what) *out_what = V_ABSENT;
    account(&w->st, op, 1, 0, t0);
    return 0;
  }
  struct stat sb;
  int e = fstat(fd, &sb) ? errno : 0;
  vstate v;
  /* The size is what read() returns until EOF; st_size is checked too. */
  v_init(&v, ki, door, "mount read", 0, 0, w->pend, false);
  v.via_mount = true;
  uint64_t got = 0;
  /* Read to EOF in IOBUF pieces; the total is known only at EOF, so the
   * check runs with total = "unknown" (max) and is fixed at the end. */
  v.total = UINT64_MAX;
  while (!e) {
    ssize_t n = read(fd, w->io, IOBUF);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      e = errno;
      break;
    }
    if (n == 0) break;
    v_feed(&v, w->io, (size_t)n);
    got += (uint64_t)n;
    if (got > (uint64_t)(opt.large_max_mib + 1) * MIB) {
      fault(door, k->cls, F_SIZE, "mount read %s: more than %d MiB", k->name,
            opt.large_max_mib + 1);
      v.bad = true;
      break;
    }
  }
  close(fd);
  double r1 = now();
  pthread_rwlock_unlock(&keys[ki].mlk);
  if (e == ENOENT) {
    /* read() of an open file: the file stays readable whatever happens
     * to its name.  ENOENT is the kernel refreshing the size from the
     * key's current state (deleted) while the handle reads the version it
     * opened: the torn-read signature. */
    fault(door, k->cls, F_MOUNT_TORN, "mount read %s: read() of the open file"
          " failed with ENOENT after %" PRIu64 " bytes of generation %" PRIu64,
          k->name, got, v.gen);
    account(&w->st, op, 2, got, t0);
    return -1;
  }
  if (e) {
    fs_fail(w, ki, "read", e);
    account(&w->st, op, 2, got, t0);
    return -1;
  }
  v.total = got;
  bool ok = v_end(&v, t0, r1, NULL);
  if (ok && (uint64_t)sb.st_size != got) {
    /* fstat right after open: the size the kernel had for this open. */
    char d[300];
    describe_size(ki, (uint64_t)sb.st_size, d, sizeof d);
    fault(door, k->cls, F_MOUNT_TORN, "mount read %s: fstat size %" PRIu64 " but read"
          " %" PRIu64 " bytes of generation %" PRIu64 " (%s)", k->name,
          (uint64_t)sb.st_size, got, v.gen, d[0] ? d : "no write had that size");
    ok = false;
  }
  if (!ok) {
    account(&w->st, op, 2, got, t0);
    return -1;
  }
  if (out_what) {
    *out_what = v.known ? V_GEN : V_EMPTY;
    *out_gen = v.gen;
  }
  account(&w->st, op, 0, got, t0);
  return 0;
}

static void fs_unlink(worker *w, int ki) {
  const key *k = &keys[ki];
  char p[PATH_MAX];
  mpath(ki, p, sizeof p);
  pthread_rwlock_wrlock(&keys[ki].mlk);
  double t0 = now();
  uint32_t oi = op_begin(ki, K_DEL, 0, 0, 0);
  int e = unlink(p) ? errno : 0;
  if (e == ENOENT) {
    op_end(ki, oi, ST_FAILED); /* changed nothing */
    double r1 = now();
    char why[600];
    const char *bad = check_value(ki, V_ABSENT, 0, t0, r1, why, sizeof why);
    pthread_rwlock_unlock(&keys[ki].mlk);
    if (bad) {
      fault(D_FS, k->cls, F_STALE, "unlink %s: ENOENT: %s", k->name, bad);
      account(&w->st, O_UNLINK, 2, 0, t0);
    } else {
      account(&w->st, O_UNLINK, 1, 0, t0);
    }
    return;
  }
  op_end(ki, oi, e ? ST_UNKNOWN : ST_OK);
  pthread_rwlock_unlock(&keys[ki].mlk);
  if (e) {
    fs_fail(w, ki, "unlink", e);
    account(&w->st, O_UNLINK, 2, 0, t0);
  } else {
    account(&w->st, O_UNLINK, 0, 0, t0);
  }
}

/* Write a generation to this worker's staging file, then rename it over
 * the key. */
static void fs_rename(worker *w, int ki) {
  const key *k = &keys[ki];
  int ti = by_cls[C_T][w->id % n_by_cls[C_T]];
  uint64_t size = k->large ? rrange(&w->r, MIB, 8 * MIB) : small_size(&w->r);
  uint64_t g = gen_new();
  /* The staging file holds g first: register it there as the rename's
   * target gen only (the staging key sees an empty create, g, a delete). */
  pthread_rwlock_wrlock(&keys[ti].mlk);
  double tw = now();
  int e = fs_write_gen(w, ti, g, size, 3, false);
  if (e) {
    pthread_rwlock_unlock(&keys[ti].mlk);
    fs_fail(w, ti, "write (staging)", e);
    account(&w->st, k->large ? O_FW_L : O_FW_S, 2, 0, tw);
    return;
  }
  account(&w->st, k->large ? O_FW_L : O_FW_S, 0, size, tw);
  char from[PATH_MAX], to[PATH_MAX];
  mpath(ti, from, sizeof from);
  mpath(ki, to, sizeof to);
  pthread_rwlock_wrlock(&keys[ki].mlk);
  double t0 = now();
  uint32_t oi = op_begin(ki, K_PUT, g, (uint32_t)size, 3);
  uint32_t di = op_begin(ti, K_DEL, 0, 0, 0);
  e = rename(from, to) ? errno : 0;
  op_end(ki, oi, e ? ST_UNKNOWN : ST_OK);
  op_end(ti, di, e ? ST_UNKNOWN : ST_OK);
  pthread_rwlock_unlock(&keys[ki].mlk);
  pthread_rwlock_unlock(&keys[ti].mlk);
  if (e) {
    fs_fail(w, ki, "rename", e);
    account(&w->st, O_RENAME, 2, 0, t0);
  } else {
    account(&w->st, O_RENAME, 0, 0, t0);
  }
}

/* readdir of one directory: every entry must be a key or a directory of
 * ours, no name twice. */
static void fs_readdir(worker *w, const char *dir) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s/%s", opt.mount, opt.bucket, dir);
  double t0 = now();
  DIR *d = opendir(p);
  if (!d) {
    fs_fail(w, -1, "opendir", errno);
    account(&w->st, O_READDIR, 2, 0, t0);
    return;
  }
  char **seen = NULL;
  size_t ns = 0;
  bool bad = false;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char full[600];
    snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
    bool known = key_find(full) >= 0;
    for (int i = 0; i < ndirs && !known; i++) known = !strcmp(dirs[i], full);
    if (!known) {
      fault(D_FS, -1, F_LIST, "readdir %s: unknown entry %s", dir, de->d_name);
      bad = true;
    }
    for (size_t i = 0; i < ns; i++)
      if (!strcmp(seen[i], de->d_name)) {
        fault(D_FS, -1, F_LIST, "readdir %s: %s listed twice", dir, de->d_name);
        bad = true;
      }
    seen = realloc(seen, sizeof *seen * (ns + 1));
    if (!seen) die("out of memory");
    seen[ns++] = strdup(de->d_name);
    errno = 0;
  }
  int e = errno;
  closedir(d);
  for (size_t i = 0; i < ns; i++) free(seen[i]);
  free(seen);
  if (e) {
    fs_fail(w, -1, "readdir", e);
    bad = true;
  }
  account(&w->st, O_READDIR, bad ? 2 : 0, 0, t0);
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */
/* ------------------------------------------------------------------ */
static double t_end_load;
static _Atomic int workers_left;

static int pick(rng *r, int cls, bool large) {
  int n = large ? n_large_by_cls[cls] : n_by_cls[cls];
  if (!n) return -1;
  return large ? large_by_cls[cls][rbelow(r, (uint64_t)n)] : by_cls[cls][rbelow(r, (uint64_t)n)];
}

/* A key of one of the classes in mask (bit per class), small or large. */
static int pick_any(rng *r, unsigned mask, bool large) {
  int c;
  for (int tries = 0; tries < 64; tries++) {
    c = (int)rbelow(r, C__N);
    if (!(mask & (1u << c))) continue;
    int ki = pick(r, c, large);
    if (ki >= 0) return ki;
  }
  return pick(r, C_S, large);
}

/* The S3 mix, in percent of requests (multipart: whole uploads). */
static const struct { int op; double pct; } s3_mix[] = {
    {O_GET_S, 42}, {O_PUT_S, 20}, {O_RANGE, 10}, {O_DEL, 10}, {O_HEAD, 10},
    {O_LIST, 6},   {O_MPU, 2}};
#define S_RW (1u << C_S | 1u << C_X)             /* keys S3 writes */
#define S_RO (1u << C_S | 1u << C_M | 1u << C_X) /* keys S3 reads */

static void *s3_worker(void *arg) {
  worker *w = arg;
  static const char *prefixes[] = {"s/small/", "s/large/", "m/", "x/small/", "x/large/",
                                   "m/d01/", "x/", ""};
  double total = 0;
  for (size_t i = 0; i < sizeof s3_mix / sizeof *s3_mix; i++) total += s3_mix[i].pct;
  while (now() < t_end_load) {
    double x = runit(&w->r) * total;
    int op = O_GET_S;
    for (size_t i = 0; i < sizeof s3_mix / sizeof *s3_mix; i++) {
      if (x < s3_mix[i].pct) {
        op = s3_mix[i].op;
        break;
      }
      x -= s3_mix[i].pct;
    }
    /* 8% of object ops are on large keys (1..--large-max-mib MiB). */
    bool large = runit(&w->r) < 0.08;
    atomic_store(&w->busy_since, now());
    atomic_store(&w->cur_op, op);
    switch (op) {
    case O_GET_S: s3_get(w, pick_any(&w->r, S_RO, large), false, D_S3, NULL, NULL); break;
    case O_PUT_S: s3_put(w, pick_any(&w->r, S_RW, large)); break;
    case O_RANGE: s3_get(w, pick_any(&w->r, S_RO, runit(&w->r) < 0.5), true, D_S3, NULL, NULL); break;
    case O_DEL: s3_delete(w, pick_any(&w->r, S_RW, large)); break;
    case O_HEAD: s3_head(w, pick_any(&w->r, S_RO, large)); break;
    case O_LIST: {
      const char *p = prefixes[rbelow(&w->r, sizeof prefixes / sizeof *prefixes)];
      bool delim = runit(&w->r) < 0.3 || !p[0];
      s3_list(w, p, delim, runit(&w->r) < 0.3 ? 100 : 1000, D_S3, NULL, NULL);
      break;
    }
    case O_MPU: s3_mpu(w, pick_any(&w->r, S_RW, true)); break;
    }
    atomic_store(&w->busy_since, 0.0);
  }
  hc_close(&w->c);
  atomic_fetch_sub(&workers_left, 1);
  return NULL;
}

static void *fs_worker(void *arg) {
  worker *w = arg;
  while (now() < t_end_load) {
    double x = runit(&w->r) * 100;
    bool large = runit(&w->r) < 0.06;
    atomic_store(&w->busy_since, now());
    if (x < 28) {
      atomic_store(&w->cur_op, large ? O_FW_L : O_FW_S);
      fs_write(w, pick_any(&w->r, 1u << C_M | 1u << C_X, large));
    } else if (x < 68) {
      atomic_store(&w->cur_op, large ? O_FR_L : O_FR_S);
      fs_read(w, pick_any(&w->r, 1u << C_S | 1u << C_M | 1u << C_X, large), D_FS, NULL,
              NULL);
    } else if (x < 78) {
      atomic_store(&w->cur_op, O_READDIR);
      fs_readdir(w, dirs[rbelow(&w->r, (uint64_t)ndirs)]);
    } else if (x < 88) {
      atomic_store(&w->cur_op, O_UNLINK);
      fs_unlink(w, pick_any(&w->r, 1u << C_M | 1u << C_X, large));
    } else {
      atomic_store(&w->cur_op, O_RENAME);
      fs_rename(w, pick_any(&w->r, 1u << C_M | 1u << C_X, large));
    }
    atomic_store(&w->busy_since, 0.0);
  }
  atomic_fetch_sub(&workers_left, 1);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Memory sampling and gc                                              */
/* ------------------------------------------------------------------ */
typedef struct msample {
  double t;
  long rss_kb[2], hwm_kb[2], threads[2];
  char phase[12];
} msample;
static msample *ms;
static size_t nms, capms;
static pthread_mutex_t ms_mu = PTHREAD_MUTEX_INITIALIZER;

static void proc_status(pid_t pid, long *rss, long *hwm, long *thr) {
  *rss = *hwm = *thr = -1;
  if (pid <= 0) return;
  char p[64], line[256];
  snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
  FILE *f = fopen(p, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "VmRSS:", 6)) *rss = strtol(line + 6, NULL, 10);
    else if (!strncmp(line, "VmHWM:", 6)) *hwm = strtol(line + 6, NULL, 10);
    else if (!strncmp(line, "Threads:", 8)) *thr = strtol(line + 8, NULL, 10);
  }
  fclose(f);
}

static void mem_sample(const char *phase) {
  msample s = {.t = now() - T0};
  snprintf(s.phase, sizeof s.phase, "%s", phase);
  proc_status(opt.s3d_pid, &s.rss_kb[0], &s.hwm_kb[0], &s.threads[0]);
  proc_status(opt.fusefs_pid, &s.rss_kb[1], &s.hwm_kb[1], &s.threads[1]);
  pthread_mutex_lock(&ms_mu);
  if (nms == capms) {
    capms = capms ? capms * 2 : 256;
    ms = realloc(ms, capms * sizeof *ms);
    if (!ms) die("out of memory");
  }
  ms[nms++] = s;
  pthread_mutex_unlock(&ms_mu);
}

static _Atomic bool sampler_stop;
static void *sampler(void *arg) {
  (void)arg;
  double next = now() + opt.mem_every;
  while (!atomic_load(&sampler_stop)) {
    usleep(100000);
    if (now() >= next) {
      mem_sample("load");
      next += opt.mem_every;
    }
  }
  return NULL;
}

static struct {
  int runs, failed;
  double max_s, total_s;
} gcst;

/* The gc command runs in a helper process forked at start, before any
 * file on the mount is open: a fork (and the exec after it) while a mount
 * worker holds a file open for writing would close the child's copy of the
 * descriptor, and a close on the mount commits the file as written so far
 * (docs/fusefs.md) -- a partial file visible over S3, made by this
 * program, not by the system under test. */
static int gc_req = -1, gc_resp = -1;
static pid_t gc_pid;

static void gc_helper_start(void) {
  int req[2], resp[2];
  if (pipe2(req, O_CLOEXEC) || pipe2(resp, O_CLOEXEC)) die("pipe: %s", strerror(errno));
  gc_pid = fork();
  if (gc_pid < 0) die("fork: %s", strerror(errno));
  if (gc_pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(req[1]);
    close(resp[0]);
    char ch;
    while (read(req[0], &ch, 1) == 1) {
      int st = -1;
      pid_t p = fork();
      if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
          dup2(fd, 1);
          close(fd);
        }
        execl("/bin/sh", "sh", "-c", opt.gc_cmd, (char *)NULL);
        _exit(127);
      }
      if (p > 0) waitpid(p, &st, 0);
      if (write(resp[1], &st, sizeof st) != sizeof st) _exit(1);
    }
    _exit(0);
  }
  close(req[0]);
  close(resp[1]);
  gc_req = req[1];
  gc_resp = resp[0];
}

static void *gc_thread(void *arg) {
  (void)arg;
  double next = now() + opt.gc_every;
  while (now() < t_end_load) {
    usleep(100000);
    if (now() < next || now() >= t_end_load) continue;
    double t0 = now();
    int st = -1;
    char ch = 'g';
    if (write(gc_req, &ch, 1) != 1 || read(gc_resp, &st, sizeof st) != sizeof st) st = -1;
    double d = now() - t0;
    gcst.runs++;
    gcst.total_s += d;
    if (d > gcst.max_s) gcst.max_s = d;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      gcst.failed++;
      fault(D_S3, -1, F_GC, "gc command failed (status %d)", st);
    }
    next = now() + opt.gc_every;
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Verification pass                                                   */
/* ------------------------------------------------------------------ */
typedef struct vres {
  size_t s3_keys, fs_files, checked, agree, absent;
  uint64_t s3_bytes, fs_bytes;
  double secs;
} vres;
static vres VR;

static int lentry_cmp(const void *a, const void *b) {
  return strcmp(((const lentry *)a)->key, ((const lentry *)b)->key);
}

/* Walk dir (relative to MNT/B) collecting files and dirs. */
static void walk(const char *rel, lentry **files, size_t *nf, char ***dl, size_t *nd) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s%s%s", opt.mount, opt.bucket, rel[0] ? "/" : "", rel);
  DIR *d = opendir(p);
  if (!d) {
    fault(D_VERIFY, -1, F_ERRNO, "opendir %s: %s", p, strerror(errno));
    return;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char r2[600], full[PATH_MAX];
    if (snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
            (int)sizeof r2 ||
        snprintf(full, sizeof full, "%s/%s", p, de->d_name) >= (int)sizeof full) {
      fault(D_VERIFY, -1, F_LIST, "name too long under %s", p);
      continue;
    }
    struct stat sb;
    if (lstat(full, &sb)) {
      fault(D_VERIFY, -1, F_ERRNO, "stat %s: %s", full, strerror(errno));
      continue;
    }
    if (S_ISDIR(sb.st_mode)) {
      *dl = realloc(*dl, sizeof **dl * (*nd + 1));
      (*dl)[(*nd)++] = strdup(r2);
      walk(r2, files, nf, dl, nd);
    } else {
      *files = realloc(*files, sizeof **files * (*nf + 1));
      lentry *e = &(*files)[(*nf)++];
      if (snprintf(e->key, sizeof e->key, "%s", r2) >= (int)sizeof e->key)
        fault(D_VERIFY, -1, F_LIST, "name too long: %s", r2);
      e->size = (uint64_t)sb.st_size;
    }
  }
  closedir(d);
}

static void verify(worker *w) {
  double t0 = now();
  lentry *le = NULL, *fe = NULL;
  size_t nl = 0, nf = 0, nd = 0;
  char **dl = NULL;
  if (s3_list(w, "", false, 1000, D_VERIFY, &le, &nl)) {
    fault(D_VERIFY, -1, F_LIST, "the final listing failed");
  }
  walk("", &fe, &nf, &dl, &nd);
  qsort(fe, nf, sizeof *fe, lentry_cmp);
  VR.fs_files = nf;
  /* Listing vs mount: files = keys not ending in '/'; dirs = markers or
   * prefixes of keys. */
  size_t i = 0, j = 0;
  while (i < nl || j < nf) {
    if (i < nl && le[i].key[strlen(le[i].key) - 1] == '/') {
      const char *m = le[i].key;
      size_t ml = strlen(m);
      bool have = false;
      for (size_t x = 0; x < nd && !have; x++)
        have = strlen(dl[x]) == ml - 1 && !strncmp(dl[x], m, ml - 1);
      if (!have)
        fault(D_VERIFY, -1, F_LIST, "marker %s listed over S3, no such directory on"
              " the mount", m);
      i++;
      continue;
    }
    int c = i >= nl ? 1 : j >= nf ? -1 : strcmp(le[i].key, fe[j].key);
    if (c < 0) {
      int ki = key_find(le[i].key);
      fault(D_VERIFY, ki >= 0 ? keys[ki].cls : -1, F_LIST, "%s listed over S3"
            " (%" PRIu64 " bytes), not on the mount", le[i].key, le[i].size);
      i++;
    } else if (c > 0) {
      int ki = key_find(fe[j].key);
      fault(D_VERIFY, ki >= 0 ? keys[ki].cls : -1, F_LIST, "%s on the mount"
            " (%" PRIu64 " bytes), not listed over S3", fe[j].key, fe[j].size);
      j++;
    } else {
      if (le[i].size != fe[j].size) {
        int ki = key_find(le[i].key);
        fault(D_VERIFY, ki >= 0 ? keys[ki].cls : -1, F_SIZE, "%s: %" PRIu64
              " bytes over S3, %" PRIu64 " on the mount", le[i].key, le[i].size,
              fe[j].size);
      }
      VR.s3_bytes += le[i].size;
      i++;
      j++;
    }
    VR.s3_keys++;
  }
  for (size_t x = 0; x < nd; x++) {
    bool known = false;
    for (int y = 0; y < ndirs && !known; y++) known = !strcmp(dirs[y], dl[x]);
    if (!known) fault(D_VERIFY, -1, F_LIST, "unknown directory %s on the mount", dl[x]);
  }
  /* Every key over both doors: one whole legal generation, the same. */
  double fin = now();
  for (int ki = 0; ki < nkeys; ki++) {
    int a = -1, b = -1;
    uint64_t ga = 0, gb = 0;
    s3_get(w, ki, false, D_VERIFY, &a, &ga);
    fs_read(w, ki, D_VERIFY, &b, &gb);
    VR.checked++;
    if (a < 0 || b < 0) continue; /* reported */
    if (a != b || ga != gb) {
      fault(D_VERIFY, keys[ki].cls, F_LIST, "%s: S3 has %s %" PRIu64 ", the mount"
            " %s %" PRIu64, keys[ki].name, a == V_GEN ? "generation" : a == V_ABSENT ?
            "absent" : "empty", ga, b == V_GEN ? "generation" : b == V_ABSENT ?
            "absent" : "empty", gb);
      continue;
    }
    VR.agree++;
    if (a == V_ABSENT) VR.absent++;
    /* The final value must be legal with every op finished: the read
     * checks above already used the history as of their start, after the
     * load; nothing else runs. */
    (void)fin;
  }
  for (size_t x = 0; x < nd; x++) free(dl[x]);
  free(dl);
  free(le);
  free(fe);
  VR.secs = now() - t0;
}

/* Delete every object (not directory markers) of the bucket. */
static int empty_bucket(worker *w) {
  char path[96], q[1400], et[1300], token[600] = "";
  snprintf(path, sizeof path, "/%s", opt.bucket);
  for (int pages = 0; pages < 100000; pages++) {
    s3sign_uri_encode(token, 0, et, sizeof et);
    snprintf(q, sizeof q, "%s%s%slist-type=2&max-keys=1000",
             token[0] ? "continuation-token=" : "", token[0] ? et : "", token[0] ? "&" : "");
    hresp r;
    char *body = NULL;
    int e = hc_send(&w->c, w->io, "GET", path, q, NULL, 0, NULL, NULL);
    if (!e) e = hc_head(&w->c, &r, false);
    if (!e) e = s3_finish(w, &r, &body);
    if (e || r.status != 200) {
      fprintf(stderr, "s3_soak: listing %s: %s %d\n", opt.bucket, e ? strerror(e) : "HTTP",
              e ? 0 : r.status);
      free(body);
      return -1;
    }
    for (const char *c = strstr(body, "<Key>"); c; c = strstr(c + 1, "<Key>")) {
      char k[600], kp[1900], kd[2000];
      if (!xml_tag(c, "Key", k, sizeof k) || !k[0] || k[strlen(k) - 1] == '/') continue;
      s3sign_uri_encode(k, 1, kp, sizeof kp);
      snprintf(kd, sizeof kd, "/%s/%s", opt.bucket, kp);
      hresp d;
      char *db = NULL;
      e = hc_send(&w->c, w->io, "DELETE", kd, "", NULL, 0, NULL, NULL);
      if (!e) e = hc_head(&w->c, &d, false);
      if (!e) e = s3_finish(w, &d, &db);
      free(db);
      if (e || d.status != 204) {
        fprintf(stderr, "s3_soak: DELETE %s: %s %d\n", k, e ? strerror(e) : "HTTP",
                e ? 0 : d.status);
        free(body);
        return -1;
      }
    }
    char trunc[16] = "false";
    xml_tag(body, "IsTruncated", trunc, sizeof trunc);
    token[0] = 0;
    if (!strcmp(trunc, "true")) xml_tag(body, "NextContinuationToken", token, sizeof token);
    free(body);
    if (!token[0]) return 0;
  }
  return -1;
}

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */
static int u32cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct opsum {
  uint64_t ok, expected, bad, bytes, n;
  double p50, p90, p99, p999, max;
} opsum;

static double pct(const uint32_t *v, size_t n, double q) {
  if (!n) return 0;
  size_t i = (size_t)ceil(q * (double)n);
  if (i) i--;
  if (i >= n) i = n - 1;
  return v[i] / 1000.0;
}

static void summarize(worker *ws, int nw, opsum *out) {
  for (int op = 0; op < O__N; op++) {
    opsum *s = &out[op];
    memset(s, 0, sizeof *s);
    size_t n = 0;
    for (int i = 0; i < nw; i++) n += ws[i].st.l[op].n;
    uint32_t *v = xmalloc(sizeof *v * (n ? n : 1));
    size_t k = 0;
    for (int i = 0; i < nw; i++) {
      stats *st = &ws[i].st;
      s->ok += st->ok[op];
      s->expected += st->expected[op];
      s->bad += st->bad[op];
      s->bytes += st->bytes[op];
      if (st->l[op].n) memcpy(v + k, st->l[op].v, st->l[op].n * sizeof *v);
      k += st->l[op].n;
    }
    qsort(v, n, sizeof *v, u32cmp);
    s->n = n;
    s->p50 = pct(v, n, 0.5);
    s->p90 = pct(v, n, 0.9);
    s->p99 = pct(v, n, 0.99);
    s->p999 = pct(v, n, 0.999);
    s->max = n ? v[n - 1] / 1000.0 : 0;
    free(v);
  }
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if ((unsigned char)*s < 0x20) fputc(' ', f);
    else fputc(*s, f);
  }
  fputc('"', f);
}

static void report(worker *ws, int nw, double load_secs, int hung) {
  opsum S[O__N];
  summarize(ws, nw, S);
  printf("\n== soak report: %.0f s of load, %d S3 connections, %d mount workers,"
         " %d keys, %" PRIu64 " generations written\n", load_secs, opt.conns,
         opt.mworkers, nkeys, atomic_load(&gnext) - 1);
  printf("%-20s %9s %8s %6s %8s %8s %8s %8s %8s %8s %9s\n", "op", "ok", "expected",
         "fault", "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
  uint64_t tot_s3 = 0, tot_fs = 0, bytes_s3 = 0, bytes_fs = 0;
  for (int op = 0; op < O__N; op++) {
    opsum *s = &S[op];
    uint64_t all = s->ok + s->expected + s->bad;
    if (op < O_FW_S) {
      tot_s3 += all;
      bytes_s3 += s->bytes;
    } else {
      tot_fs += all;
      bytes_fs += s->bytes;
    }
    printf("%-20s %9" PRIu64 " %8" PRIu64 " %6" PRIu64 " %8.1f %8.1f %8.2f %8.2f %8.2f"
           " %8.2f %9.1f\n", op_name[op], s->ok, s->expected, s->bad,
           (double)all / load_secs, (double)s->bytes / load_secs / 1e6, s->p50, s->p90,
           s->p99, s->p999, s->max);
  }
  printf("S3: %.0f requests/s, %.1f MB/s; mount: %.0f ops/s, %.1f MB/s\n",
         (double)tot_s3 / load_secs, (double)bytes_s3 / load_secs / 1e6,
         (double)tot_fs / load_secs, (double)bytes_fs / load_secs / 1e6);
  uint64_t server_faults = 0;
  printf("faults (door / key class / kind):\n");
  for (int d = 0; d < D__N; d++)
    for (int c = 0; c <= C__N; c++)
      for (int f = 0; f < F__N; f++) {
        uint64_t n = atomic_load(&faults[d][c][f]);
        if (!n) continue;
        if (f != F_503) server_faults += n;
        printf("  %-7s %-10s %-18s %" PRIu64 "\n", door_id[d], c < C__N ? cls_name[c] : "-",
               fault_id[f], n);
      }
  if (!server_faults) printf("  none\n");
  for (int d = 0; d < D__N; d++)
    for (int f = 0; f < F__N; f++)
      for (int i = 0; i < nex[d][f]; i++)
        printf("  e.g. %s %s: %s\n", door_id[d], fault_id[f], examples[d][f][i]);
  printf("verification: %zu entries listed over S3, %zu files on the mount, %zu keys"
         " read over both doors, %zu agree (%zu absent), %.1f s\n", VR.s3_keys,
         VR.fs_files, VR.checked, VR.agree, VR.absent, VR.secs);
  if (gcst.runs)
    printf("gc: %d runs during the load, %d failed, longest %.2f s\n", gcst.runs,
           gcst.failed, gcst.max_s);
  printf("memory (MiB; VmRSS / VmHWM):\n");
  for (size_t i = 0; i < nms; i++) {
    if (strcmp(ms[i].phase, "load") && i + 1 < nms && 0) continue;
    bool show = strcmp(ms[i].phase, "load") || nms < 30 || i % (nms / 20 + 1) == 0;
    if (!show) continue;
    printf("  %8.1f s %-8s s3d %7.1f / %7.1f (%ld threads)  fusefs %7.1f / %7.1f (%ld"
           " threads)\n", ms[i].t, ms[i].phase, ms[i].rss_kb[0] / 1024.0,
           ms[i].hwm_kb[0] / 1024.0, ms[i].threads[0], ms[i].rss_kb[1] / 1024.0,
           ms[i].hwm_kb[1] / 1024.0, ms[i].threads[1]);
  }
  if (hung) printf("HUNG: %d workers did not finish within %.0f s of the end\n", hung,
                   opt.drain_secs);

  if (!opt.json) return;
  FILE *f = fopen(opt.json, "w");
  if (!f) die("%s: %s", opt.json, strerror(errno));
  fprintf(f, "{\n \"config\": {\"seconds\": %.1f, \"conns\": %d, \"mount_workers\": %d,"
          " \"keys\": %d, \"scale\": %d, \"large_max_mib\": %d, \"seed\": %" PRIu64 "},\n",
          opt.seconds, opt.conns, opt.mworkers, nkeys, opt.scale, opt.large_max_mib,
          opt.seed);
  fprintf(f, " \"load_seconds\": %.3f, \"generations\": %" PRIu64 ", \"hung\": %d,\n",
          load_secs, atomic_load(&gnext) - 1, hung);
  fprintf(f, " \"ops\": {");
  for (int op = 0; op < O__N; op++)
    fprintf(f, "%s\n  \"%s\": {\"name\": \"%s\", \"ok\": %" PRIu64 ", \"expected\": %"
            PRIu64 ", \"fault\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"p50_ms\": %.3f,"
            " \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f}",
            op ? "," : "", op_id[op], op_name[op], S[op].ok, S[op].expected, S[op].bad,
            S[op].bytes, S[op].p50, S[op].p90, S[op].p99, S[op].p999, S[op].max);
  fprintf(f, "},\n \"faults\": [");
  bool first = true;
  for (int d = 0; d < D__N; d++)
    for (int c = 0; c <= C__N; c++)
      for (int ff = 0; ff < F__N; ff++) {
        uint64_t n = atomic_load(&faults[d][c][ff]);
        if (!n) continue;
        fprintf(f, "%s\n  {\"door\": \"%s\", \"class\": \"%s\", \"kind\": \"%s\","
                " \"count\": %" PRIu64 "}", first ? "" : ",", door_id[d],
                c < C__N ? cls_name[c] : "-", fault_id[ff], n);
        first = false;
      }
  fprintf(f, "],\n \"examples\": [");
  first = true;
  for (int d = 0; d < D__N; d++)
    for (int ff = 0; ff < F__N; ff++)
      for (int i = 0; i < nex[d][ff]; i++) {
        fprintf(f, "%s\n  {\"door\": \"%s\", \"kind\": \"%s\", \"text\": ", first ? "" : ",",
                door_id[d], fault_id[ff]);
        json_str(f, examples[d][ff][i]);
        fputc('}', f);
        first = false;
      }
  fprintf(f, "],\n \"verify\": {\"s3_entries\": %zu, \"mount_files\": %zu, \"checked\":"
          " %zu, \"agree\": %zu, \"absent\": %zu, \"seconds\": %.2f},\n", VR.s3_keys,
          VR.fs_files, VR.checked, VR.agree, VR.absent, VR.secs);
  fprintf(f, " \"gc\": {\"runs\": %d, \"failed\": %d, \"max_s\": %.3f},\n", gcst.runs,
          gcst.failed, gcst.max_s);
  fprintf(f, " \"mem\": [");
  for (size_t i = 0; i < nms; i++)
    fprintf(f, "%s\n  {\"t\": %.2f, \"phase\": \"%s\", \"s3d_rss_kb\": %ld, \"s3d_hwm_kb\":"
            " %ld, \"s3d_threads\": %ld, \"fusefs_rss_kb\": %ld, \"fusefs_hwm_kb\": %ld,"
            " \"fusefs_threads\": %ld}", i ? "," : "", ms[i].t, ms[i].phase,
            ms[i].rss_kb[0], ms[i].hwm_kb[0], ms[i].threads[0], ms[i].rss_kb[1],
            ms[i].hwm_kb[1], ms[i].threads[1]);
  fprintf(f, "]\n}\n");
  fclose(f);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */
static void parse_addr(const char *spec) {
  char host[64];
  const char *c = strrchr(spec, ':');
  if (!c || (size_t)(c - spec) >= sizeof host) die("want HOST:PORT: %s", spec);
  memcpy(host, spec, (size_t)(c - spec));
  host[c - spec] = 0;
  char *end;
  unsigned long port = strtoul(c + 1, &end, 10);
  if (*end || port == 0 || port > 65535) die("bad port in %s", spec);
  s3_addr.sin_family = AF_INET;
  s3_addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &s3_addr.sin_addr) != 1)
    die("%s: only numeric IPv4 loopback addresses", spec);
  if ((ntohl(s3_addr.sin_addr.s_addr) >> 24) != 127)
    die("%s: not a loopback address (127.0.0.0/8 only)", spec);
  snprintf(s3_host, sizeof s3_host, "%s:%lu", host, port);
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: s3_soak run --s3 127.0.0.1:PORT --access-key K --secret-key S\n"
    "                   --bucket B --mount MNT [options]\n"
    "       s3_soak freeport\n"
    "  --seconds N        load duration (default 600)\n"
    "  --conns N          S3 connections, one thread each (default 48)\n"
    "  --mount-workers N  POSIX workers on MNT/B (default 8)\n"
    "  --scale N          key space size: 150N small + 4N large S3 keys, ...\n"
    "                     (default 4)\n"
    "  --large-max-mib N  largest object (default 32; multipart needs >= 10)\n"
    "  --s3d-pid P, --fusefs-pid P   processes whose memory is sampled\n"
    "  --mem-every S      memory sample interval (default 5)\n"
    "  --gc-cmd CMD, --gc-every S    run CMD every S s during the load\n"
    "  --drain-secs S     how long in-flight ops may take after the end (180)\n"
    "  --settle-ms MS     pause before the verification pass (1500)\n"
    "  --json FILE        machine-readable report\n"
    "  --seed N           PRNG seed (default 1)\n"
    "Exit: 0 no fault, 1 faults, 2 usage, 3 operations hung.\n"
    "See bench/soak_README.md.\n");
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "freeport")) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
      die("freeport: %s", strerror(errno));
    printf("%u\n", ntohs(a.sin_port));
    close(fd);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "run")) {
    bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    usage(help ? stdout : stderr);
    return help ? 0 : 2;
  }
  static const struct option lo[] = {
      {"s3", 1, 0, 's'}, {"access-key", 1, 0, 'a'}, {"secret-key", 1, 0, 'k'},
      {"region", 1, 0, 'g'}, {"bucket", 1, 0, 'b'}, {"mount", 1, 0, 'm'},
      {"seconds", 1, 0, 't'}, {"conns", 1, 0, 'c'}, {"mount-workers", 1, 0, 'w'},
      {"scale", 1, 0, 'x'}, {"large-max-mib", 1, 0, 'L'}, {"s3d-pid", 1, 0, 'p'},
      {"fusefs-pid", 1, 0, 'f'}, {"mem-every", 1, 0, 'M'}, {"gc-cmd", 1, 0, 'G'},
      {"gc-every", 1, 0, 'E'}, {"drain-secs", 1, 0, 'D'}, {"settle-ms", 1, 0, 'S'},
      {"json", 1, 0, 'j'}, {"seed", 1, 0, 'r'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 's': opt.s3 = optarg; break;
    case 'a': opt.ak = optarg; break;
    case 'k': opt.sk = optarg; break;
    case 'g': opt.region = optarg; break;
    case 'b': opt.bucket = optarg; break;
    case 'm': opt.mount = optarg; break;
    case 't': opt.seconds = strtod(optarg, &end); if (*end || opt.seconds <= 0 || opt.seconds > 86400) goto bad; break;
    case 'c': opt.conns = (int)strtol(optarg, &end, 10); if (*end || opt.conns < 1 || opt.conns > 512) goto bad; break;
    case 'w': opt.mworkers = (int)strtol(optarg, &end, 10); if (*end || opt.mworkers < 0 || opt.mworkers > 128) goto bad; break;
    case 'x': opt.scale = (int)strtol(optarg, &end, 10); if (*end || opt.scale < 1 || opt.scale > 100) goto bad; break;
    case 'L': opt.large_max_mib = (int)strtol(optarg, &end, 10); if (*end || opt.large_max_mib < 2 || opt.large_max_mib > 1024) goto bad; break;
    case 'p': opt.s3d_pid = (pid_t)strtol(optarg, &end, 10); if (*end) goto bad; break;
    case 'f': opt.fusefs_pid = (pid_t)strtol(optarg, &end, 10); if (*end) goto bad; break;
    case 'M': opt.mem_every = strtod(optarg, &end); if (*end || opt.mem_every < 0.2) goto bad; break;
    case 'G': opt.gc_cmd = optarg; break;
    case 'E': opt.gc_every = strtod(optarg, &end); if (*end || opt.gc_every < 1) goto bad; break;
    case 'D': opt.drain_secs = strtod(optarg, &end); if (*end || opt.drain_secs < 1) goto bad; break;
    case 'S': opt.settle_ms = strtod(optarg, &end); if (*end || opt.settle_ms < 0) goto bad; break;
    case 'j': opt.json = optarg; break;
    case 'r': opt.seed = strtoull(optarg, &end, 10); if (*end) goto bad; break;
    case 'h': usage(stdout); return 0;
    default: goto bad;
    }
  }
  if (optind != argc || !opt.s3 || !opt.ak || !opt.sk || !opt.bucket || !opt.mount)
    goto bad;
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  parse_addr(opt.s3);
  T0 = now();
  r_setup();
  keys_setup();
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", opt.mount, opt.bucket);
  struct stat sb;
  if (stat(p, &sb) || !S_ISDIR(sb.st_mode)) die("%s: not a directory (bucket not on the mount)", p);
  if (opt.gc_cmd) gc_helper_start();
  /* The directories, through the mount (markers: S3 deletes never make
   * them vanish under a mount create). */
  for (int i = 0; i < ndirs; i++) {
    snprintf(p, sizeof p, "%s/%s/%s", opt.mount, opt.bucket, dirs[i]);
    if (mkdir(p, 0755) && errno != EEXIST) die("mkdir %s: %s", p, strerror(errno));
  }
  int nw = opt.conns + opt.mworkers;
  worker *ws = xcalloc((size_t)nw + 1, sizeof *ws);
  for (int i = 0; i <= nw; i++) {
    ws[i].id = i < opt.conns ? i : i - opt.conns;
    ws[i].r.s = mix64(opt.seed * 1000003u + (uint64_t)i);
    ws[i].c.fd = -1;
    ws[i].io = xmalloc(IOBUF);
    ws[i].pend = xmalloc(2 * BLK + STAMP);
  }
  /* Start from an empty bucket: the histories begin with "absent". */
  if (empty_bucket(&ws[nw])) die("could not empty bucket %s over S3", opt.bucket);
  char gcs[64] = "";
  if (opt.gc_cmd) snprintf(gcs, sizeof gcs, ", gc every %.0f s", opt.gc_every);
  printf("s3_soak: %s, bucket %s, mount %s: %.0f s, %d S3 connections, %d mount"
         " workers, %d keys, objects up to %d MiB%s\n", s3_host, opt.bucket, opt.mount,
         opt.seconds, opt.conns, opt.mworkers, nkeys, opt.large_max_mib, gcs);
  mem_sample("start");
  pthread_t smp, gct;
  pthread_create(&smp, NULL, sampler, NULL);
  double tl0 = now();
  t_end_load = tl0 + opt.seconds;
  atomic_store(&workers_left, nw);
  for (int i = 0; i < nw; i++) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024);
    if (pthread_create(&ws[i].th, &a, i < opt.conns ? s3_worker : fs_worker, &ws[i]))
      die("pthread_create failed");
    pthread_attr_destroy(&a);
  }
  if (opt.gc_cmd) pthread_create(&gct, NULL, gc_thread, NULL);
  /* Progress lines, then the drain. */
  double next_print = tl0 + (opt.seconds > 120 ? 60 : 10);
  while (atomic_load(&workers_left) > 0) {
    usleep(100000);
    double t = now();
    if (t >= next_print && t < t_end_load) {
      uint64_t nf = 0;
      for (int d = 0; d < D__N; d++)
        for (int c2 = 0; c2 <= C__N; c2++)
          for (int f = 0; f < F__N; f++) nf += atomic_load(&faults[d][c2][f]);
      printf("  %.0f s: %" PRIu64 " generations written, %" PRIu64 " faults\n", t - tl0,
             atomic_load(&gnext) - 1, nf);
      next_print += opt.seconds > 120 ? 60 : 10;
    }
    if (t > t_end_load + opt.drain_secs) break;
  }
  double load_secs = now() - tl0;
  if (load_secs > opt.seconds) load_secs = opt.seconds;
  int hung = atomic_load(&workers_left);
  if (opt.gc_cmd) pthread_join(gct, NULL);
  atomic_store(&sampler_stop, true);
  pthread_join(smp, NULL);
  mem_sample("after");
  if (hung) {
    for (int i = 0; i < nw; i++) {
      double b = atomic_load(&ws[i].busy_since);
      if (b > 0)
        fault(i < opt.conns ? D_S3 : D_FS, -1, F_HANG, "%s worker %d: %s running"
              " for %.0f s", i < opt.conns ? "S3" : "mount", ws[i].id,
              op_name[atomic_load(&ws[i].cur_op)], now() - b);
    }
    report(ws, nw, load_secs, hung);
    fflush(stdout);
    _exit(3); /* workers are stuck in syscalls: do not join them */
  }
  for (int i = 0; i < nw; i++) pthread_join(ws[i].th, NULL);
  usleep((useconds_t)(opt.settle_ms * 1000));
  ws[nw].verifier = true;
  verify(&ws[nw]);
  mem_sample("end");
  /* The verification worker's ops are not part of the load figures. */
  report(ws, nw, load_secs, 0);
  uint64_t nf = 0;
  for (int d = 0; d < D__N; d++)
    for (int c2 = 0; c2 <= C__N; c2++)
      for (int f = 0; f < F__N; f++)
        if (f != F_503) nf += atomic_load(&faults[d][c2][f]);
  return nf ? 1 : 0;
bad:
  usage(stderr);
  return 2;
}
