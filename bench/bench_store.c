/*
 * bench_store.c -- libstore throughput and commit-rate benchmark.
 *
 *   bench_store [--dir DIR] [--size-mb N] [--quick] [--runs N]
 *               [--small-secs S] [--only PHASES] [--keep]
 *
 * Measures, in one run and on the filesystem of DIR, the machine's own
 * limits (durable sequential write, fdatasync rate, single-core SHA-256 and
 * MD5, cold and warm sequential read) and then libstore against them:
 * one large streamed object written and read back, and 4 KiB commits from
 * 1 and 16 threads of one process, with and without inline chunks, and
 * from 16 processes.  Every measurement runs once per round and the rounds
 * repeat (--runs, default 2), so a burst of other work on the machine
 * spoils one run of a measurement, not all; the best run is reported.
 * bench/README.md explains every line of the output.
 *
 * MB/s means 10^6 bytes per second; sizes are in MiB (2^20 bytes).
 * Not a meson test: benchmarks never run in CI.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libstore.h"

#define MIB (1024u * 1024u)
#define GEN_MIB 64u /* size of the pre-filled random buffer */
#define SMALL_SIZE 4096u
#define BUCKET "bench"
#define NB 160 /* latency histogram buckets: 4 per power of two of us */

/* ------------------------------------------------------------------ */
/* Options and small helpers                                           */
/* ------------------------------------------------------------------ */
static struct {
  const char *parent; /* where the work directory is created */
  uint64_t size_mb;
  int runs;
  double small_secs;
  double fsync_secs;
  int threads, procs;
  bool keep;
} opt = {"/var/tmp", 1024, 2, 3.0, 2.0, 16, 16, false};

static char workdir[PATH_MAX]; /* removed at exit unless --keep */
static pid_t main_pid;
static uint8_t *gen;   /* GEN_MIB MiB of PRNG output, filled once */
static uint8_t *iobuf; /* 1 MiB buffer for plain file I/O */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU seconds (user + system) of the whole process so far. */
static double cpu_secs(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_store: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void check(int rc, const char *what) {
  if (rc != STORE_OK)
    die("%s: %s (%s)", what, store_strerror(rc), store_errmsg());
}

static double mbs(uint64_t bytes, double secs) {
  return secs > 0 ? (double)bytes / secs / 1e6 : 0;
}

static double maxd(double a, double b) { return a > b ? a : b; }
static double mind(double a, double b) { return a < b ? a : b; }

static void path_in(char *out, const char *name) {
  if (snprintf(out, PATH_MAX, "%s/%s", workdir, name) >= PATH_MAX)
    die("path too long");
}

static int rm_cb(const char *p, const struct stat *sb, int flag,
                 struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP) rmdir(p);
  else unlink(p);
  return 0;
}

static void rm_tree(const char *p) {
  nftw(p, rm_cb, 64, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void) {
  if (getpid() != main_pid || !workdir[0]) return;
  if (opt.keep) {
    printf("kept %s\n", workdir);
    return;
  }
  rm_tree(workdir);
}

static void write_all(int fd, const void *buf, size_t n, const char *what) {
  const uint8_t *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("%s: %s", what, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
}

/* ------------------------------------------------------------------ */
/* The data generator: xoshiro256** fills a 64 MiB buffer once; each    */
/* 1 MiB piece is made unique by a 16-byte stamp at its start.          */
/* ------------------------------------------------------------------ */
static uint64_t rs[4];

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro(void) {
  uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
  rs[2] ^= rs[0];
  rs[3] ^= rs[1];
  rs[1] ^= rs[2];
  rs[0] ^= rs[3];
  rs[2] ^= t;
  rs[3] = rotl(rs[3], 45);
  return r;
}

static void seed(uint64_t s) {
  for (int i = 0; i < 4; i++) { /* splitmix64 */
    uint64_t z = (s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    rs[i] = z ^ (z >> 31);
  }
}

static void stamp(uint8_t *p, uint64_t a, uint64_t b) {
  memcpy(p, &a, 8);
  memcpy(p + 8, &b, 8);
}

/* Piece i of a stream tagged `tag`: unique across tags and pieces. */
static uint8_t *piece(uint64_t tag, uint64_t i) {
  uint8_t *p = gen + (i % GEN_MIB) * MIB;
  stamp(p, tag, i);
  return p;
}

static double gen_fill_mbs, gen_stream_mbs;

static void gen_setup(void) {
  gen = malloc((size_t)GEN_MIB * MIB);
  iobuf = aligned_alloc(4096, MIB);
  if (!gen || !iobuf) die("out of memory");
  memset(gen, 0, (size_t)GEN_MIB * MIB); /* fault the pages in first */
  seed((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
  double t0 = now();
  uint64_t *w = (uint64_t *)gen;
  for (size_t i = 0; i < (size_t)GEN_MIB * MIB / 8; i++) w[i] = xoshiro();
  gen_fill_mbs = mbs((uint64_t)GEN_MIB * MIB, now() - t0);
  /* What a consumer sees: stamp + copy each piece out (store_write copies
   * into its cell at least once).  Best of a few passes over 1 GiB. */
  for (int r = 0; r < 2; r++) {
    t0 = now();
    for (uint64_t i = 0; i < 1024; i++) {
      memcpy(iobuf, piece(0, i), MIB);
      __asm__ volatile("" ::"r"(iobuf) : "memory");
    }
    gen_stream_mbs = maxd(gen_stream_mbs, mbs(1024ull * MIB, now() - t0));
  }
}

/* ------------------------------------------------------------------ */
/* Page cache control                                                  */
/* ------------------------------------------------------------------ */
static bool drop_caches_ok = true; /* false once a write was refused */

static int fadv_cb(const char *p, const struct stat *sb, int flag,
                   struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag != FTW_F) return 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  return 0;
}

static uint64_t res_pages, all_pages;

static int res_cb(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)ftw;
  if (flag != FTW_F || sb->st_size == 0) return 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t len = (size_t)sb->st_size;
  void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return 0;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = (len + pg - 1) / pg;
  unsigned char *v = malloc(n);
  if (v && mincore(m, len, v) == 0) {
    for (size_t i = 0; i < n; i++) res_pages += v[i] & 1;
    all_pages += n;
  }
  free(v);
  munmap(m, len);
  return 0;
}

/* Fraction of the bytes of `path` (file or tree) in the page cache. */
static double resident(const char *path) {
  res_pages = all_pages = 0;
  nftw(path, res_cb, 64, FTW_PHYS);
  return all_pages ? (double)res_pages / (double)all_pages : 0;
}

/* Evict `path` (file or tree) from the page cache; returns how. */
static const char *make_cold(const char *path) {
  int dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    syncfs(dfd); /* only clean pages can be dropped */
    close(dfd);
  }
  nftw(path, fadv_cb, 64, FTW_PHYS);
  if (drop_caches_ok) {
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1", 1) != 1) drop_caches_ok = false;
    if (fd >= 0) close(fd);
  }
  return drop_caches_ok ? "fadvise(DONTNEED)+drop_caches"
                        : "fadvise(DONTNEED) only";
}

/* Flush the filesystem (journal, discards of deleted files) so that the
 * next measurement does not pay for the previous one's cleanup. */
static void settle(void) {
  int dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    syncfs(dfd);
    close(dfd);
  }
}

/* This machine is a VM that hands idle guest memory back to its host:
 * the first write into page-cache pages that were idle for ~10 s runs
 * at ~400 MB/s (the host faults the memory back in) instead of several
 * GB/s.  Before every large write, write and delete a scratch file of the
 * same size, so that the measured write reuses memory the guest holds.
 * The speed of that scratch write is reported: far below the warm read
 * speed means the host had taken the memory back. */
static double prime_mbs_min;

static double prime_memory(void) {
  char f[PATH_MAX];
  path_in(f, "prime.dat");
  int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", f, strerror(errno));
  uint64_t n = opt.size_mb + 64;
  double t0 = now();
  for (uint64_t i = 0; i < n; i++)
    write_all(fd, gen + (i % GEN_MIB) * MIB, MIB, "prime write");
  double v = mbs(n * MIB, now() - t0);
  close(fd);
  unlink(f); /* dirty pages are dropped, never written */
  if (prime_mbs_min == 0 || v < prime_mbs_min) prime_mbs_min = v;
  return v;
}

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */
static struct {
  double disk_w, fsync_rate, fsync_p50_us, sha, md5, disk_r_cold, disk_r_warm;
  double disk_cold_res; /* resident fraction before the cold read */
  double disk_w_each;   /* 1 MiB chunk files, each made durable */
  const char *cold_how;
  double st_w, st_w_cpu;
  double st_r_cold, st_r_warm, st_rnv_cold, st_rnv_warm;
  double st_r_cpu[4];
  double st_w_proc, st_w_proc_cpu; /* diagnostic: durability PROCESS */
  double round_disk_w;             /* this round's disk write */
} R;

typedef struct small_res {
  uint64_t ok, busy, err;
  uint64_t hist[NB];
  double elapsed, cpu;
  int first_rc;
  char first_msg[160];
} small_res;

enum { SM_T1, SM_TN, SM_NI_T1, SM_NI_TN, SM_PN, SM__N };
static small_res SM[SM__N];
static const char *sm_name[SM__N] = {
    "1 thread", "16 threads", "1 thread, inline_max=1",
    "16 threads, inline_max=1", "16 processes"};

static int hbucket(uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us < 1) us = 1;
  int e = 63 - __builtin_clzll(us);
  int sub = e >= 2 ? (int)((us >> (e - 2)) & 3) : (int)((us << (2 - e)) & 3);
  int b = e * 4 + sub;
  return b < NB ? b : NB - 1;
}

/* Upper bound (us) of the latency below which fraction q of commits fell. */
static double hist_q(const uint64_t *h, double q) {
  uint64_t n = 0, acc = 0;
  for (int i = 0; i < NB; i++) n += h[i];
  if (!n) return 0;
  for (int i = 0; i < NB; i++) {
    acc += h[i];
    if ((double)acc >= q * (double)n) {
      int e = i / 4, sub = i % 4;
      return (double)(1ull << e) * (1.0 + (sub + 1) / 4.0);
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* 1. The machine's limits                                             */
/* ------------------------------------------------------------------ */
static double bench_disk_write(const char *file, uint64_t tag) {
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", file, strerror(errno));
  double t0 = now();
  for (uint64_t i = 0; i < opt.size_mb; i++) {
    write_all(fd, piece(tag, i), MIB, "disk write");
  }
  if (fdatasync(fd) != 0) die("fdatasync: %s", strerror(errno));
  double t = now() - t0;
  close(fd);
  return mbs(opt.size_mb * MIB, t);
}

/* The floor of a store that keeps every 1 MiB chunk durable in a file of
 * its own, as libstore's local backend does: create in a staging
 * directory, write, fdatasync, close, link into one of 256 fan-out
 * directories; at the end fsync the directories.  No hashing. */
static double bench_chunk_files(uint64_t tag) {
  char top[PATH_MAX], stg[PATH_MAX], f[PATH_MAX + 32], g[PATH_MAX + 32];
  path_in(top, "chunkfiles");
  if (snprintf(stg, sizeof stg, "%s/staging", top) >= (int)sizeof stg)
    die("path too long");
  if (mkdir(top, 0755) || mkdir(stg, 0755)) die("mkdir: %s", strerror(errno));
  for (int d = 0; d < 256; d++) {
    snprintf(f, sizeof f, "%s/%02x", top, d);
    if (mkdir(f, 0755)) die("mkdir: %s", strerror(errno));
  }
  settle();
  double t0 = now();
  for (uint64_t i = 0; i < opt.size_mb; i++) {
    snprintf(f, sizeof f, "%s/%" PRIu64, stg, i);
    int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) die("%s: %s", f, strerror(errno));
    write_all(fd, piece(tag, i), MIB, "chunk file write");
    if (fdatasync(fd) != 0) die("fdatasync: %s", strerror(errno));
    close(fd);
    /* spread like SHA-256 names: a pseudo-random fan-out directory */
    snprintf(g, sizeof g, "%s/%02x/%" PRIu64, top,
             (unsigned)((i * 0x9e3779b97f4a7c15u) >> 56), i);
    if (link(f, g) != 0) die("link: %s", strerror(errno));
  }
  for (int d = 0; d < 256; d++) {
    snprintf(f, sizeof f, "%s/%02x", top, d);
    int fd = open(f, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) die("fsync dir: %s", strerror(errno));
    close(fd);
  }
  double t = now() - t0;
  rm_tree(top);
  return mbs(opt.size_mb * MIB, t);
}

static double bench_fsync(const char *file, double *p50_us) {
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", file, strerror(errno));
  /* Allocate the block first so the loop measures overwrite + flush. */
  if (pwrite(fd, gen, 4096, 0) != 4096 || fsync(fd) != 0)
    die("fsync file: %s", strerror(errno));
  uint64_t h[NB] = {0};
  uint64_t n = 0;
  double t0 = now(), end = t0 + opt.fsync_secs, t;
  do {
    uint64_t a = now_ns();
    stamp(iobuf, 0xf5, n);
    if (pwrite(fd, iobuf, 4096, 0) != 4096) die("pwrite: %s", strerror(errno));
    if (fdatasync(fd) != 0) die("fdatasync: %s", strerror(errno));
    h[hbucket(now_ns() - a)]++;
    n++;
  } while ((t = now()) < end);
  close(fd);
  unlink(file);
  *p50_us = hist_q(h, 0.5);
  return (double)n / (t - t0);
}

static double bench_hash(bool sha) {
  static uint8_t buf[MIB];
  memcpy(buf, gen, MIB); /* warm */
  struct sha256_ctx s;
  struct md5_ctx m;
  uint8_t out[32];
  uint64_t n = 0;
  double t0 = now(), t;
  if (sha) sha256_init(&s);
  else md5_init(&m);
  do {
    for (int i = 0; i < 32; i++, n++) {
      if (sha) sha256_update(&s, MIB, buf);
      else md5_update(&m, MIB, buf);
    }
  } while ((t = now()) - t0 < 0.5);
  if (sha) sha256_digest(&s, SHA256_DIGEST_SIZE, out);
  else md5_digest(&m, MD5_DIGEST_SIZE, out);
  __asm__ volatile("" ::"r"(out) : "memory");
  return mbs(n * MIB, t - t0);
}

static double bench_disk_read(const char *file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("%s: %s", file, strerror(errno));
  uint64_t total = 0;
  double t0 = now();
  for (;;) {
    ssize_t r = read(fd, iobuf, MIB);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read: %s", strerror(errno));
    }
    if (r == 0) break;
    total += (uint64_t)r;
  }
  double t = now() - t0;
  close(fd);
  if (total != opt.size_mb * MIB) die("disk read: short file");
  return mbs(total, t);
}

/* ------------------------------------------------------------------ */
/* 2-3. libstore: one large object                                     */
/* ------------------------------------------------------------------ */
static double store_big_write(store *s, const char *key, uint64_t tag,
                              double *cpu) {
  double c0 = cpu_secs(), t0 = now();
  store_writer *w;
  check(store_writer_open(s, BUCKET, key, &w), "store_writer_open");
  for (uint64_t i = 0; i < opt.size_mb; i++)
    check(store_write(w, piece(tag, i), MIB), "store_write");
  store_object_info info;
  check(store_writer_commit(w, NULL, &info), "store_writer_commit");
  double t = now() - t0;
  *cpu = (cpu_secs() - c0) / t;
  if (info.size != opt.size_mb * MIB) die("committed size is wrong");
  store_object_info_free(&info);
  return mbs(opt.size_mb * MIB, t);
}

static double store_big_read(store *s, const char *key, uint64_t tag,
                             double *cpu) {
  double c0 = cpu_secs(), t0 = now();
  store_reader *r;
  check(store_reader_open(s, BUCKET, key, NULL, &r, NULL), "store_reader_open");
  uint64_t off = 0;
  for (uint64_t i = 0;; i++) {
    size_t got;
    check(store_read(r, iobuf, MIB, off, &got), "store_read");
    if (got == 0) break;
    if (got != MIB) die("store_read: short read at %" PRIu64, off);
    uint64_t a, b;
    memcpy(&a, iobuf, 8);
    memcpy(&b, iobuf + 8, 8);
    if (a != tag || b != i) die("store_read: wrong data at piece %" PRIu64, i);
    off += got;
  }
  store_reader_close(r);
  double t = now() - t0;
  *cpu = (cpu_secs() - c0) / t;
  if (off != opt.size_mb * MIB) die("store_read: object has the wrong size");
  return mbs(off, t);
}

/* ------------------------------------------------------------------ */
/* 4. Small commits                                                    */
/* ------------------------------------------------------------------ */
typedef struct small_job {
  store *s;
  const char *prefix;
  int id;
  double secs;
  pthread_barrier_t *bar;
  small_res res;
} small_job;

/* Commit unique 4 KiB objects for `secs` seconds. */
static void small_loop(store *s, const char *prefix, int id, double secs,
                       small_res *res) {
  uint8_t buf[SMALL_SIZE];
  char key[128];
  uint64_t tag = ((uint64_t)getpid() << 24) ^ ((uint64_t)id << 8) ^ 0x5a;
  double end = now() + secs;
  for (uint64_t seq = 0; now() < end; seq++) {
    size_t off = (size_t)((seq * 7919 + (uint64_t)id * 104729) %
                          (GEN_MIB * MIB / SMALL_SIZE)) * SMALL_SIZE;
    memcpy(buf, gen + off, SMALL_SIZE);
    stamp(buf, tag, seq);
    snprintf(key, sizeof key, "%s/%d-%d/%08" PRIu64, prefix, (int)getpid(),
             id, seq);
    uint64_t a = now_ns();
    int rc = store_put(s, BUCKET, key, buf, SMALL_SIZE, NULL, NULL);
    res->hist[hbucket(now_ns() - a)]++;
    if (rc == STORE_OK) {
      res->ok++;
      continue;
    }
    if (rc == STORE_ERR_BUSY) res->busy++;
    else res->err++;
    if (!res->first_rc) {
      res->first_rc = rc;
      snprintf(res->first_msg, sizeof res->first_msg, "%s", store_errmsg());
    }
  }
}

static void res_merge(small_res *to, const small_res *from) {
  to->ok += from->ok;
  to->busy += from->busy;
  to->err += from->err;
  for (int i = 0; i < NB; i++) to->hist[i] += from->hist[i];
  if (!to->first_rc && from->first_rc) {
    to->first_rc = from->first_rc;
    memcpy(to->first_msg, from->first_msg, sizeof to->first_msg);
  }
}

static void *small_thread(void *arg) {
  small_job *j = arg;
  pthread_barrier_wait(j->bar);
  small_loop(j->s, j->prefix, j->id, j->secs, &j->res);
  return NULL;
}

static small_res small_threads(store *s, int n, const char *prefix) {
  small_job *jobs = calloc((size_t)n, sizeof *jobs);
  pthread_t *th = calloc((size_t)n, sizeof *th);
  pthread_barrier_t bar;
  if (!jobs || !th) die("out of memory");
  pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    jobs[i] = (small_job){.s = s, .prefix = prefix, .id = i,
                          .secs = opt.small_secs, .bar = &bar};
    if (pthread_create(&th[i], NULL, small_thread, &jobs[i]) != 0)
      die("pthread_create failed");
  }
  pthread_barrier_wait(&bar);
  double c0 = cpu_secs(), t0 = now();
  small_res res = {0};
  for (int i = 0; i < n; i++) {
    pthread_join(th[i], NULL);
    res_merge(&res, &jobs[i].res);
  }
  res.elapsed = now() - t0;
  res.cpu = (cpu_secs() - c0) / res.elapsed;
  pthread_barrier_destroy(&bar);
  free(jobs);
  free(th);
  return res;
}

/* n processes, each with its own store_open of `sdir`. */
static small_res small_procs(const char *sdir, int n, const char *prefix) {
  int ready[2], start[2], out[2];
  if (pipe(ready) || pipe(start) || pipe(out)) die("pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  if (!pids) die("out of memory");
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p < 0) die("fork: %s", strerror(errno));
    if (p == 0) {
      close(ready[0]);
      close(start[1]);
      close(out[0]);
      small_res res = {0};
      store *s = NULL;
      int rc = store_open(sdir, NULL, &s);
      if (rc) {
        res.err = 1;
        res.first_rc = rc;
        snprintf(res.first_msg, sizeof res.first_msg, "store_open: %s",
                 store_errmsg());
      }
      char c = 'r', x;
      if (write(ready[1], &c, 1) != 1) _exit(2);
      while (read(start[0], &x, 1) < 0 && errno == EINTR) {
      }
      if (s) small_loop(s, prefix, i, opt.small_secs, &res);
      /* sizeof res < PIPE_BUF: the write is atomic */
      if (write(out[1], &res, sizeof res) != (ssize_t)sizeof res) _exit(2);
      store_close(s);
      _exit(0);
    }
    pids[i] = p;
  }
  close(ready[1]);
  close(start[0]);
  close(out[1]);
  for (int i = 0; i < n; i++) {
    char c;
    if (read(ready[0], &c, 1) != 1) die("a child died before starting");
  }
  double t0 = now();
  close(start[1]); /* go */
  small_res res = {0};
  for (int i = 0; i < n; i++) {
    small_res one;
    size_t got = 0;
    while (got < sizeof one) {
      ssize_t r = read(out[0], (char *)&one + got, sizeof one - got);
      if (r <= 0) die("a child died without a result");
      got += (size_t)r;
    }
    res_merge(&res, &one);
  }
  res.elapsed = now() - t0;
  struct rusage ru;
  double cpu = 0;
  for (int i = 0; i < n; i++) {
    int st;
    if (wait4(pids[i], &st, 0, &ru) < 0) die("wait: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("a child failed");
    cpu += (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  }
  res.cpu = cpu / res.elapsed;
  close(ready[0]);
  close(out[0]);
  free(pids);
  return res;
}

static void report_small(int which, int run, const small_res *r) {
  double rate = (double)r->ok / r->elapsed;
  printf("  [%d] 4  %-24s: %5.0f commits/s", run, sm_name[which], rate);
  if (R.fsync_rate > 0) printf(" = %4.2f x fsync rate", rate / R.fsync_rate);
  printf(" (latency p50 %.1f ms, p99 %.1f ms, max %.0f ms; CPU %.2f cores;"
         " BUSY %" PRIu64 ", errors %" PRIu64 ")\n", hist_q(r->hist, 0.5) / 1e3,
         hist_q(r->hist, 0.99) / 1e3, hist_q(r->hist, 1.0) / 1e3, r->cpu,
         r->busy, r->err);
  if (r->first_rc)
    printf("    first error: %s: %s\n", store_strerror(r->first_rc),
           r->first_msg);
}

static void keep_best(int which, int run, const small_res *r) {
  report_small(which, run, r);
  small_res *b = &SM[which];
  uint64_t busy = b->busy + r->busy, err = b->err + r->err;
  int frc = b->first_rc;
  char fmsg[sizeof b->first_msg];
  memcpy(fmsg, b->first_msg, sizeof fmsg);
  if (!b->elapsed || (double)r->ok / r->elapsed > (double)b->ok / b->elapsed)
    *b = *r;
  /* Errors of every run count, not only of the best one. */
  b->busy = busy;
  b->err = err;
  if (frc) {
    b->first_rc = frc;
    memcpy(b->first_msg, fmsg, sizeof fmsg);
  }
}

/* ------------------------------------------------------------------ */
/* Rounds: every measurement once per round, rounds repeated --runs    */
/* times, so that a burst of other work on the machine hits one run of */
/* a measurement rather than all of them.  Best run reported.          */
/* ------------------------------------------------------------------ */
enum { PH_LIMITS = 1, PH_LARGE = 2, PH_SMALL = 4, PH_PROCS = 8, PH_ALL = 15 };
static unsigned phases = PH_ALL;
static char sdir[PATH_MAX], ndir[PATH_MAX]; /* default and inline_max=1 */

static void round_limits(int r) {
  char file[PATH_MAX];
  double sha = bench_hash(true), md5 = bench_hash(false);
  printf("  [%d] 1c hash, 1 core, warm 1 MiB buffer: SHA-256 %5.0f MB/s,"
         " MD5 %5.0f MB/s\n", r, sha, md5);
  R.sha = maxd(R.sha, sha);
  R.md5 = maxd(R.md5, md5);

  path_in(file, "fsync.dat");
  double p50, v = bench_fsync(file, &p50);
  printf("  [%d] 1b fsync rate, 4 KiB pwrite + fdatasync: %5.0f /s"
         " (p50 %.0f us)\n", r, v, p50);
  if (v > R.fsync_rate) {
    R.fsync_rate = v;
    R.fsync_p50_us = p50;
  }

  path_in(file, "disk.dat");
  double pr = prime_memory();
  v = bench_disk_write(file, 0xd15c0000u + (uint64_t)r);
  printf("  [%d] 1a sequential write, %" PRIu64 " x 1 MiB write + fdatasync:"
         " %5.0f MB/s (memory primed at %.0f MB/s)\n", r, opt.size_mb, v, pr);
  R.disk_w = maxd(R.disk_w, v);
  R.round_disk_w = v;

  R.cold_how = make_cold(file);
  double res = resident(file);
  double c = bench_disk_read(file);
  double w = bench_disk_read(file);
  printf("  [%d] 1d sequential read, 1 MiB reads: cold %5.0f MB/s (%s,"
         " %.0f%% cached before), warm %5.0f MB/s\n",
         r, c, R.cold_how, res * 100, w);
  if (c > R.disk_r_cold) {
    R.disk_r_cold = c;
    R.disk_cold_res = res;
  }
  R.disk_r_warm = maxd(R.disk_r_warm, w);

  unlink(file);
  settle();

  /* What a store that makes every 1 MiB chunk durable on its own pays. */
  prime_memory();
  v = bench_chunk_files(0xd15d0000u + (uint64_t)r);
  printf("  [%d] 1e 1 MiB chunk files (create, write, fdatasync, link):"
         " %5.0f MB/s\n", r, v);
  R.disk_w_each = maxd(R.disk_w_each, v);
  settle();
}

static void round_large(int r) {
  store *s;
  check(store_open(sdir, NULL, &s), "store_open");
  char key[64];
  uint64_t tag = 0xb16000u + (uint64_t)r;
  snprintf(key, sizeof key, "big/full%d", r);
  double pr = prime_memory();
  double cpu, v = store_big_write(s, key, tag, &cpu);
  printf("  [%d] 2  store write, FULL: %5.0f MB/s (CPU %.2f cores", r, v, cpu);
  if (R.round_disk_w > 0)
    printf("; %.2f x this round's disk write", v / R.round_disk_w);
  printf("; memory primed at %.0f MB/s)\n", pr);
  if (v > R.st_w) {
    R.st_w = v;
    R.st_w_cpu = cpu;
  }

  store *nv;
  store_config cfg = {0};
  cfg.skip_read_verify = 1;
  check(store_open(sdir, &cfg, &nv), "store_open skip_read_verify");
  struct {
    store *s;
    const char *name;
    double *cold, *warm;
    int cpu_i;
  } modes[2] = {{s, "verify (default)", &R.st_r_cold, &R.st_r_warm, 0},
                {nv, "skip_read_verify", &R.st_rnv_cold, &R.st_rnv_warm, 2}};
  for (int m = 0; m < 2; m++) {
    make_cold(sdir);
    double res = resident(sdir);
    double cc, cw;
    double c = store_big_read(modes[m].s, key, tag, &cc);
    double w = store_big_read(modes[m].s, key, tag, &cw);
    printf("  [%d] 3  store read, %-16s: cold %5.0f MB/s (%.0f%% cached"
           " before, CPU %.2f), warm %5.0f MB/s (CPU %.2f)\n",
           r, modes[m].name, c, res * 100, cc, w, cw);
    if (c > *modes[m].cold) {
      *modes[m].cold = c;
      R.st_r_cpu[modes[m].cpu_i] = cc;
    }
    if (w > *modes[m].warm) {
      *modes[m].warm = w;
      R.st_r_cpu[modes[m].cpu_i + 1] = cw;
    }
  }
  store_close(nv);
  /* Leave the disk as we found it: one large object at a time. */
  check(store_delete(s, BUCKET, key), "store_delete");
  check(store_gc(s, NULL, NULL, NULL), "store_gc");
  store_close(s);
  settle();

  /* Diagnostic: the same write without any fdatasync of chunks. */
  store *ps;
  store_config pc = {0};
  pc.durability = STORE_DURABLE_PROCESS;
  check(store_open(sdir, &pc, &ps), "store_open durability PROCESS");
  snprintf(key, sizeof key, "big/process%d", r);
  prime_memory();
  v = store_big_write(ps, key, 0xb17000u + (uint64_t)r, &cpu);
  printf("  [%d] 2x store write, PROCESS (diagnostic): %5.0f MB/s (CPU %.2f"
         " cores)\n", r, v, cpu);
  if (v > R.st_w_proc) {
    R.st_w_proc = v;
    R.st_w_proc_cpu = cpu;
  }
  check(store_delete(ps, BUCKET, key), "store_delete");
  check(store_gc(ps, NULL, NULL, NULL), "store_gc");
  store_close(ps);
  settle();
}

static void round_small(int r) {
  char prefix[64];
  small_res x;
  if (phases & PH_SMALL) {
    store *s, *ni;
    check(store_open(sdir, NULL, &s), "store_open");
    check(store_open(ndir, NULL, &ni), "store_open inline_max=1");
    snprintf(prefix, sizeof prefix, "t1-r%d", r);
    x = small_threads(s, 1, prefix);
    keep_best(SM_T1, r, &x);
    snprintf(prefix, sizeof prefix, "tn-r%d", r);
    x = small_threads(s, opt.threads, prefix);
    keep_best(SM_TN, r, &x);
    snprintf(prefix, sizeof prefix, "ni1-r%d", r);
    x = small_threads(ni, 1, prefix);
    keep_best(SM_NI_T1, r, &x);
    snprintf(prefix, sizeof prefix, "nin-r%d", r);
    x = small_threads(ni, opt.threads, prefix);
    keep_best(SM_NI_TN, r, &x);
    store_close(ni);
    store_close(s);
  }
  if (phases & PH_PROCS) {
    /* No store is open in this process while the children run. */
    snprintf(prefix, sizeof prefix, "pn-r%d", r);
    x = small_procs(sdir, opt.procs, prefix);
    keep_best(SM_PN, r, &x);
  }
}

/* ------------------------------------------------------------------ */
/* 5. Summary                                                          */
/* ------------------------------------------------------------------ */
static const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

static double rate_of(int i) {
  return SM[i].elapsed > 0 ? (double)SM[i].ok / SM[i].elapsed : 0;
}

static void summary(void) {
  double hash_lim = mind(R.sha, R.md5);
  double lim = mind(hash_lim, R.disk_w);
  const char *lim_name = lim == R.disk_w ? "disk write"
                         : lim == R.md5  ? "MD5"
                                         : "SHA-256";
  printf("\nwrite %.0f MB/s = %.2f x SHA-256 limit, %.2f x MD5 limit,"
         " %.2f x disk limit\n", R.st_w, R.st_w / R.sha, R.st_w / R.md5,
         R.st_w / R.disk_w);
  printf("write limit = min(SHA-256 %.0f, MD5 %.0f, disk %.0f) = %.0f MB/s"
         " (%s): write = %.2f x limit\n", R.sha, R.md5, R.disk_w, lim,
         lim_name, R.st_w / lim);
  printf("read  %.0f MB/s cold = %.2f x disk cold read; %.0f MB/s warm ="
         " %.2f x disk warm read\n", R.st_r_cold, R.st_r_cold / R.disk_r_cold,
         R.st_r_warm, R.st_r_warm / R.disk_r_warm);
  printf("small %.0f commits/s with %d threads = %.2f x fsync rate (%.0f/s);"
         " 1 thread %.2f x\n", rate_of(SM_TN), opt.threads,
         rate_of(SM_TN) / R.fsync_rate, R.fsync_rate,
         rate_of(SM_T1) / R.fsync_rate);

  printf("\nSUMMARY  %" PRIu64 " MiB, best of %d run%s, MB/s = 10^6 B/s,"
         " %ld cores, %s\n", opt.size_mb, opt.runs, opt.runs > 1 ? "s" : "",
         sysconf(_SC_NPROCESSORS_ONLN), opt.parent);
  printf("%-42s %12s  %s\n", "measurement", "value", "ratio / aim");
  printf("%-42s %12s  %s\n", "------------------------------------------",
         "------------", "-----------------------------------------------");
#define ROW(name, fmt, val, ...) \
  do { \
    char v_[32]; \
    snprintf(v_, sizeof v_, fmt, val); \
    printf("%-42s %12s  ", name, v_); \
    printf(__VA_ARGS__); \
    printf("\n"); \
  } while (0)
  ROW("generator: PRNG fill (once, 64 MiB)", "%.0f MB/s", gen_fill_mbs, "%s",
      "");
  ROW("generator: stamp + memcpy 1 MiB pieces", "%.0f MB/s", gen_stream_mbs,
      "%.0f x store write: not the bottleneck", gen_stream_mbs / R.st_w);
  ROW("memory priming (scratch page-cache write)", "%.0f MB/s",
      prime_mbs_min, "%s", "slowest of the runs; see README (VM memory)");
  ROW("1a disk seq. write, 1 MiB + fdatasync", "%.0f MB/s", R.disk_w, "%s",
      "");
  ROW("1e 1 MiB chunk files, fdatasync each", "%.0f MB/s", R.disk_w_each,
      "%.2f x 1a: floor of a file per durable chunk", R.disk_w_each / R.disk_w);
  ROW("1b disk fsyncs (4 KiB pwrite+fdatasync)", "%.0f /s", R.fsync_rate,
      "p50 latency %.0f us", R.fsync_p50_us);
  ROW("1c SHA-256, 1 core", "%.0f MB/s", R.sha, "%s", "");
  ROW("1c MD5, 1 core", "%.0f MB/s", R.md5, "%s", "");
  ROW("1d disk seq. read, cold", "%.0f MB/s", R.disk_r_cold,
      "%s, %.0f%% cached before", R.cold_how, R.disk_cold_res * 100);
  ROW("1d disk seq. read, warm (page cache)", "%.0f MB/s", R.disk_r_warm,
      "%s", "");
  ROW("2  store write, FULL", "%.0f MB/s", R.st_w,
      "%.2f x SHA-256, %.2f x MD5, %.2f x disk, %.2f x 1e; CPU %.2f",
      R.st_w / R.sha, R.st_w / R.md5, R.st_w / R.disk_w,
      R.st_w / R.disk_w_each, R.st_w_cpu);
  ROW("   aim >= 0.70 x hash limit min(SHA,MD5)", "%.2f x", R.st_w / hash_lim,
      "%s", verdict(R.st_w >= 0.7 * hash_lim));
  ROW("   ... x min(SHA, MD5, disk)", "%.2f x", R.st_w / lim, "%s (%s limit)",
      verdict(R.st_w >= 0.7 * lim), lim_name);
  ROW("2x store write, PROCESS (diagnostic)", "%.0f MB/s", R.st_w_proc,
      "%.2f x hash limit, %.2f x FULL; CPU %.2f cores",
      R.st_w_proc / hash_lim, R.st_w_proc / R.st_w, R.st_w_proc_cpu);
  ROW("3  store read, verify, cold", "%.0f MB/s", R.st_r_cold,
      "%.2f x disk cold: aim >= 0.80 %s; CPU %.2f",
      R.st_r_cold / R.disk_r_cold,
      verdict(R.st_r_cold >= 0.8 * R.disk_r_cold), R.st_r_cpu[0]);
  ROW("3  store read, verify, warm", "%.0f MB/s", R.st_r_warm,
      "%.2f x disk warm; %.2f x SHA-256 (its bound); CPU %.2f",
      R.st_r_warm / R.disk_r_warm, R.st_r_warm / R.sha, R.st_r_cpu[1]);
  ROW("3  store read, skip_read_verify, cold", "%.0f MB/s", R.st_rnv_cold,
      "%.2f x disk cold: aim >= 0.80 %s; CPU %.2f",
      R.st_rnv_cold / R.disk_r_cold,
      verdict(R.st_rnv_cold >= 0.8 * R.disk_r_cold), R.st_r_cpu[2]);
  ROW("3  store read, skip_read_verify, warm", "%.0f MB/s", R.st_rnv_warm,
      "%.2f x disk warm; CPU %.2f", R.st_rnv_warm / R.disk_r_warm,
      R.st_r_cpu[3]);
  for (int i = 0; i < SM__N; i++) {
    char name[64];
    double rate = rate_of(i);
    snprintf(name, sizeof name, "4  4 KiB commits, %s", sm_name[i]);
    if (i == SM_TN)
      ROW(name, "%.0f /s", rate,
          "%.2f x fsyncs: aim well above (>= 2) %s; %.2f x 1 thread",
          rate / R.fsync_rate, verdict(rate >= 2 * R.fsync_rate),
          rate / rate_of(SM_T1));
    else if (i == SM_PN)
      ROW(name, "%.0f /s", rate,
          "%.2f x fsyncs; BUSY %" PRIu64 " (aim 0: %s); max latency %.0f ms",
          rate / R.fsync_rate, SM[i].busy, verdict(SM[i].busy == 0),
          hist_q(SM[i].hist, 1.0) / 1e3);
    else if (i == SM_NI_T1 || i == SM_NI_TN)
      ROW(name, "%.0f /s", rate, "%.2f x fsyncs; inline is %.2f x faster",
          rate / R.fsync_rate, rate_of(i == SM_NI_T1 ? SM_T1 : SM_TN) / rate);
    else
      ROW(name, "%.0f /s", rate, "%.2f x fsyncs", rate / R.fsync_rate);
    if (i != SM_PN && SM[i].busy + SM[i].err)
      printf("%-42s %12s  BUSY %" PRIu64 ", other errors %" PRIu64 "\n", "",
             "", SM[i].busy, SM[i].err);
  }
#undef ROW
  for (int i = 0; i < SM__N; i++)
    if (SM[i].first_rc)
      printf("first error (%s): %s: %s\n", sm_name[i],
             store_strerror(SM[i].first_rc), SM[i].first_msg);
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: bench_store [--dir DIR] [--size-mb N] [--quick] [--runs N]\n"
    "                   [--small-secs S] [--only PHASES] [--keep]\n"
    "  --dir DIR       measure the filesystem of DIR (default /var/tmp): a\n"
    "                  fresh DIR/bench_store.XXXXXX is used, removed at exit\n"
    "  --size-mb N     size of the sequential file and object (default 1024)\n"
    "  --quick         256 MiB (unless --size-mb), 1 s per small-commit test,\n"
    "                  1 s of fsyncs\n"
    "  --runs N        rounds of every measurement, best reported (default 2)\n"
    "  --small-secs S  seconds per small-commit test (default 3)\n"
    "  --only PHASES   comma list of limits,large,small,procs (for profiling;\n"
    "                  the summary table needs them all)\n"
    "  --keep          keep the work directory\n");
}

static bool parse_phases(const char *arg) {
  static const char *const names[] = {"limits", "large", "small", "procs"};
  phases = 0;
  for (const char *p = arg; *p;) {
    size_t n = strcspn(p, ",");
    unsigned bit = 0;
    for (unsigned i = 0; i < 4; i++)
      if (strlen(names[i]) == n && !strncmp(p, names[i], n)) bit = 1u << i;
    if (!bit) return false;
    phases |= bit;
    p += n;
    if (*p == ',') p++;
  }
  return phases != 0;
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
      {"dir", required_argument, 0, 'd'},
      {"size-mb", required_argument, 0, 's'},
      {"runs", required_argument, 0, 'r'},
      {"small-secs", required_argument, 0, 'S'},
      {"only", required_argument, 0, 'o'},
      {"quick", no_argument, 0, 'q'},
      {"keep", no_argument, 0, 'k'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  bool size_given = false, quick = false;
  double small_secs = 0;
  int c;
  while ((c = getopt_long(argc, argv, "d:s:r:S:o:qkh", lo, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 'd': opt.parent = optarg; break;
    case 's':
      opt.size_mb = strtoull(optarg, &end, 10);
      if (*end || opt.size_mb == 0) goto bad;
      size_given = true;
      break;
    case 'r':
      opt.runs = (int)strtol(optarg, &end, 10);
      if (*end || opt.runs < 1) goto bad;
      break;
    case 'S':
      small_secs = strtod(optarg, &end);
      if (*end || small_secs <= 0) goto bad;
      break;
    case 'o':
      if (!parse_phases(optarg)) goto bad;
      break;
    case 'q': quick = true; break;
    case 'k': opt.keep = true; break;
    case 'h': usage(stdout); return 0;
    default: goto bad;
    }
  }
  if (optind != argc) goto bad;
  if (quick) {
    opt.small_secs = 1.0;
    opt.fsync_secs = 1.0;
    if (!size_given) opt.size_mb = 256;
  }
  if (small_secs > 0) opt.small_secs = small_secs;

  setvbuf(stdout, NULL, _IOLBF, 0);
  main_pid = getpid();
  if (snprintf(workdir, sizeof workdir, "%s/bench_store.XXXXXX",
               opt.parent) >= (int)sizeof workdir)
    die("--dir too long");
  if (!mkdtemp(workdir)) {
    int e = errno;
    workdir[0] = 0;
    die("mkdtemp in %s: %s", opt.parent, strerror(e));
  }
  atexit(cleanup);

  time_t t = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&t));
  printf("bench_store %s: libstore %s, %ld cores, %s, %" PRIu64
         " MiB, %d round%s\n", date, STORE_VERSION,
         sysconf(_SC_NPROCESSORS_ONLN), workdir, opt.size_mb, opt.runs,
         opt.runs > 1 ? "s" : "");
  double t0 = now();
  gen_setup();
  printf("  generator: PRNG fill %.0f MB/s, stamp + memcpy of 1 MiB pieces"
         " %.0f MB/s\n", gen_fill_mbs, gen_stream_mbs);

  path_in(sdir, "store");
  path_in(ndir, "store-noinline");
  store *s;
  check(store_create(sdir, NULL, &s), "store_create");
  check(store_bucket_create(s, BUCKET, NULL), "bucket create");
  store_close(s);
  store_config cfg = {0};
  cfg.inline_max = 1;
  check(store_create(ndir, &cfg, &s), "store_create inline_max=1");
  check(store_bucket_create(s, BUCKET, NULL), "bucket create");
  store_close(s);

  for (int r = 1; r <= opt.runs; r++) {
    printf("round %d/%d\n", r, opt.runs);
    if (phases & PH_LIMITS) round_limits(r);
    if (phases & PH_LARGE) round_large(r);
    if (phases & (PH_SMALL | PH_PROCS)) round_small(r);
  }
  if (phases == PH_ALL) summary();
  else printf("(summary table only when every phase runs)\n");
  printf("total time %.0f s\n", now() - t0);
  return 0;
bad:
  usage(stderr);
  return 2;
}
