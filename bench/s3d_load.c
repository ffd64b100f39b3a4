/*
 * s3d_load.c -- S3 load generator and limit meter for the s3d benchmark.
 *
 *   s3d_load freeport
 *   s3d_load bench --s3 127.0.0.1:PORT --access-key K --secret-key S
 *                  [--s3d-pid PID] [--static 127.0.0.1:PORT --static-root DIR
 *                  --static-pids P,P,...] --work DIR [--gc-cmd CMD]
 *                  [--size-mb N] [--streams N] [--conc N] [--small-secs S]
 *                  [--runs N] [--quick] [--only LIST] [--client-threads N]
 *
 * Measures, in one run: the machine's limits (durable sequential write and
 * fdatasync rate of the filesystem of --work, single-core SHA-256 and MD5
 * with Nettle, loopback TCP), the client's own ceiling (against a null HTTP
 * responder that this program forks), a static file server (nginx, started
 * by bench/s3d_bench.sh) serving the same 4 KiB and 1 GiB content, and then
 * s3d: a 1 GiB object in one stream, 8 parallel streams of 128 MiB, and
 * 4 KiB PUT/GET/HEAD/DELETE at concurrency 16.  Every measurement runs once
 * per round; the rounds repeat (--runs) and the best run is reported, with
 * its ratio to the limit it is judged against.  bench/s3d_README.md explains
 * every line.
 *
 * The client: one epoll event loop per client thread (default 1), HTTP/1.1
 * keep-alive, SigV4 header signing (HMAC-SHA256 from Nettle, signing key
 * cached per day) with UNSIGNED-PAYLOAD, bodies sent with writev straight
 * from a pre-filled buffer, received bodies checked (a 16-byte stamp at the
 * start of every MiB).  Only loopback addresses are accepted.  Every loop is
 * bounded in count and time.
 *
 * MB/s means 10^6 bytes per second; sizes are in MiB (2^20 bytes).
 * Not a meson test: benchmarks never run in CI.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
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
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "s3sign.h"

#define MIB (1024u * 1024u)
#define GEN_MIB 64u     /* size of the pre-filled random buffer */
#define SMALL_SIZE 4096u
#define NB 160          /* latency histogram: 4 buckets per power of two */
#define HDR_CAP 16384   /* response header buffer */
#define MAX_CONN 256
#define MAX_PIDS 16

/* Content tags: the data of a "stream" (tag, piece0, len) is a run of 1 MiB
 * pieces; piece j is stamp(tag, piece0 + j) (16 bytes) followed by bytes
 * 16.. of PRNG buffer slot (piece0 + j) % GEN_MIB.  Every object, file and
 * null-server body in this benchmark is such a stream, so every received
 * body can be checked, and every stored chunk is unique (no dedup). */
#define TAG_BIG 0xb1600000u       /* the 1 GiB object and the static file */
#define TAG_PAR 0xa1100000u       /* + stream number: the parallel objects */
#define TAG_SMALLFILE 0x5f110000u /* the static 4 KiB file */
#define TAG_SMALL 0x5a000000u     /* + round << 8 + op: 4 KiB objects */

/* ------------------------------------------------------------------ */
/* Options and small helpers                                           */
/* ------------------------------------------------------------------ */
static struct {
  const char *s3, *stat, *work, *gc_cmd, *static_root;
  const char *ak, *sk, *region, *bucket;
  pid_t s3d_pid;
  pid_t static_pids[MAX_PIDS];
  int n_static_pids;
  uint64_t size_mb;
  int streams, conc, runs, client_threads;
  double small_secs, fsync_secs;
  unsigned only;
} opt = {.region = "us-east-1", .bucket = "bench", .size_mb = 1024,
         .streams = 8, .conc = 16, .runs = 2, .client_threads = 1,
         .small_secs = 3.0, .fsync_secs = 2.0};

enum { PH_LIMITS = 1, PH_NULL = 2, PH_STATIC = 4, PH_S3BIG = 8,
       PH_S3SMALL = 16, PH_ALL = 31 };

static uint8_t *gen; /* GEN_MIB MiB of PRNG output, filled once */

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

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "s3d_load: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static double mbs(uint64_t bytes, double secs) {
  return secs > 0 ? (double)bytes / secs / 1e6 : 0;
}

static double mind(double a, double b) { return a < b ? a : b; }
static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

/* CPU seconds (user + system) of this process so far. */
static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* CPU seconds of other processes (all their threads), from /proc. */
static double cpu_pids(const pid_t *pids, int n) {
  double t = 0, tck = (double)sysconf(_SC_CLK_TCK);
  for (int i = 0; i < n; i++) {
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pids[i]);
    FILE *f = fopen(p, "r");
    if (!f) continue;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    char *s = strrchr(buf, ')'); /* comm may hold spaces */
    if (!s) continue;
    unsigned long ut = 0, st = 0;
    /* fields after comm: state(3) ... utime(14) stime(15) */
    int field = 2;
    for (char *q = s + 1; *q && field < 15; q++) {
      if (*q != ' ') continue;
      field++;
      if (field == 14) ut = strtoul(q + 1, NULL, 10);
      if (field == 15) st = strtoul(q + 1, NULL, 10);
    }
    t += (double)(ut + st) / tck;
  }
  return t;
}

static void loadavg(char *out, size_t cap) {
  FILE *f = fopen("/proc/loadavg", "r");
  out[0] = 0;
  if (!f) return;
  double a = 0, b = 0, c = 0;
  if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
    snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
  fclose(f);
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
/* The data: xoshiro256** fills a 64 MiB buffer once (fixed seed, so    */
/* the forked null server has the same bytes); streams as above.        */
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

static void gen_setup(void) {
  gen = aligned_alloc(4096, (size_t)GEN_MIB * MIB);
  if (!gen) die("out of memory");
  uint64_t s = 0x5eed3d10adull;
  for (int i = 0; i < 4; i++) { /* splitmix64 */
    uint64_t z = (s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    rs[i] = z ^ (z >> 31);
  }
  uint64_t *w = (uint64_t *)gen;
  for (size_t i = 0; i < (size_t)GEN_MIB * MIB / 8; i++) w[i] = xoshiro();
}

static void stamp(uint8_t *p, uint64_t a, uint64_t b) {
  memcpy(p, &a, 8);
  memcpy(p + 8, &b, 8);
}

/* Bytes [off, off + n) of stream (tag, p0), cut at the next piece end, as
 * at most two iovecs.  `sb` (16 bytes) holds the stamp while it is sent. */
static int stream_iov(uint64_t tag, uint64_t p0, uint64_t off, uint64_t n,
                      uint8_t *sb, struct iovec *iov, size_t *len) {
  uint64_t j = p0 + off / MIB, o = off % MIB;
  size_t l = (size_t)(n < MIB - o ? n : MIB - o);
  uint8_t *slot = gen + (size_t)(j % GEN_MIB) * MIB;
  int k = 0;
  *len = l;
  if (o < 16) {
    stamp(sb, tag, j);
    size_t s = 16 - (size_t)o < l ? 16 - (size_t)o : l;
    iov[k].iov_base = sb + o;
    iov[k++].iov_len = s;
    o += s;
    l -= s;
  }
  if (l) {
    iov[k].iov_base = slot + o;
    iov[k++].iov_len = l;
  }
  return k;
}

/* ------------------------------------------------------------------ */
/* Addresses (loopback only)                                           */
/* ------------------------------------------------------------------ */
typedef struct target {
  const char *name;
  struct sockaddr_in addr;
  char host[80]; /* HOST:PORT, the Host header */
  int kind;      /* T_S3, T_STATIC, T_NULL */
  pid_t pids[MAX_PIDS];
  int npids;
} target;
enum { T_S3, T_STATIC, T_NULL };

static void parse_addr(const char *spec, target *t) {
  char host[64];
  const char *c = strrchr(spec, ':');
  if (!c || (size_t)(c - spec) >= sizeof host) die("want HOST:PORT: %s", spec);
  memcpy(host, spec, (size_t)(c - spec));
  host[c - spec] = 0;
  char *end;
  unsigned long port = strtoul(c + 1, &end, 10);
  if (*end || port == 0 || port > 65535) die("bad port in %s", spec);
  memset(&t->addr, 0, sizeof t->addr);
  t->addr.sin_family = AF_INET;
  t->addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &t->addr.sin_addr) != 1)
    die("%s: only numeric IPv4 loopback addresses", spec);
  if ((ntohl(t->addr.sin_addr.s_addr) >> 24) != 127)
    die("%s: not a loopback address (127.0.0.0/8 only)", spec);
  snprintf(t->host, sizeof t->host, "%s:%lu", host, port);
}

static int listen_loopback(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 512) ||
      getsockname(fd, (struct sockaddr *)&a, &al))
    die("listen on loopback: %s", strerror(errno));
  *port = ntohs(a.sin_port);
  return fd;
}

static int connect_to(const struct sockaddr_in *a) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (const struct sockaddr *)a, sizeof *a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void set_nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* ------------------------------------------------------------------ */
/* SigV4 (header auth, UNSIGNED-PAYLOAD): bench/s3sign.c               */
/* ------------------------------------------------------------------ */
#define hexs s3sign_hex

/* Append the Host, x-amz-* and Authorization lines for METHOD PATH. */
static int sign_lines(char *out, size_t cap, const char *method,
                      const char *path, const char *host) {
  return s3sign_lines(out, cap, opt.ak, opt.sk, opt.region, method, path, "",
                      host, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Latency histogram (as bench_store)                                  */
/* ------------------------------------------------------------------ */
static int hbucket(uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us < 1) us = 1;
  int e = 63 - __builtin_clzll(us);
  int sub = e >= 2 ? (int)((us >> (e - 2)) & 3) : (int)((us << (2 - e)) & 3);
  int b = e * 4 + sub;
  return b < NB ? b : NB - 1;
}

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
/* A job: one measurement, run by the client's event loops             */
/* ------------------------------------------------------------------ */
enum { OP_PUT, OP_GET, OP_HEAD, OP_DELETE };
static const char *op_method[] = {"PUT", "GET", "HEAD", "DELETE"};

typedef struct job {
  const target *t;
  int op;
  int big;           /* 1: one request per connection (stream k = conn k) */
  int nconn;
  uint64_t size;     /* body bytes per request */
  double secs;       /* small: issue requests for this long */
  uint64_t nkeys;    /* small GET/HEAD: cycle over keys 0..nkeys-1;
                        DELETE: delete each once; PUT: 0 = unbounded */
  uint64_t tag;      /* big: stream k has tag + k; small: key i has (tag, i) */
  char prefix[64];   /* small object keys: PREFIX/%08 */
  const char *path;  /* static target: the file (big: ranges of it) */
  const uint8_t *want_md5; /* big single PUT: expected ETag */
  /* shared state */
  _Atomic uint64_t next;
  double t0, t_issue_end, t_hard_end;
  /* results (merged from the workers) */
  uint64_t ok, err, bad, bytes;
  uint64_t hist[NB];
  uint64_t closes; /* responses after which the server closed */
  double t_last;
  char first_err[300];
  double elapsed, cpu_client, cpu_server;
} job;

typedef struct conn {
  int fd, state, idx_conn;
  struct worker *w;
  /* request */
  char req[2048];
  size_t req_len, req_off;
  uint64_t blen, boff, btag, bp0; /* body: stream (btag, bp0) */
  uint8_t sb[16];
  /* response */
  char hdr[HDR_CAP];
  size_t hdr_len;
  int status, close_after, is_head, check;
  int64_t clen;
  uint64_t got, rtag, rp0;
  uint8_t *rbuf; /* 1 MiB: body byte i lands at rbuf[i % MIB] */
  char etag[80];
  uint64_t t_start;
  uint64_t key;
  bool busy;
} conn;
enum { C_IDLE, C_SEND, C_HDR, C_BODY };

typedef struct worker {
  job *j;
  int ep;
  conn *c[MAX_CONN];
  int nc, active;
  pthread_barrier_t *bar;
  uint64_t ok, err, bad, bytes, hist[NB], closes;
  double t_last;
  char first_err[300];
} worker;

static void note_err(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_err(worker *w, const char *fmt, ...) {
  w->err++;
  if (w->first_err[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->first_err, sizeof w->first_err, fmt, ap);
  va_end(ap);
  for (char *p = w->first_err; *p; p++)
    if ((unsigned char)*p < 0x20) *p = ' ';
}

static void key_path(const job *j, const conn *c, char *path, size_t cap) {
  const target *t = j->t;
  if (t->kind == T_STATIC) {
    snprintf(path, cap, "%s", j->path);
  } else if (j->big) {
    if (j->nconn == 1) snprintf(path, cap, "/%s/big", opt.bucket);
    else snprintf(path, cap, "/%s/par-%d", opt.bucket, c->idx_conn);
  } else {
    snprintf(path, cap, "/%s/%s/%08" PRIu64, opt.bucket, j->prefix, c->key);
  }
}

/* Pick the next request for c; false when the job is done for c. */
static bool next_request(conn *c) {
  worker *w = c->w;
  job *j = w->j;
  if (j->big) {
    if (c->busy) return false; /* one request per stream */
    c->key = (uint64_t)c->idx_conn;
  } else {
    if (now() >= j->t_issue_end) return false;
    uint64_t i = atomic_fetch_add(&j->next, 1);
    if (j->op == OP_DELETE || (j->op == OP_PUT && j->nkeys)) {
      if (i >= j->nkeys) return false;
      c->key = i;
    } else if (j->op == OP_PUT) {
      c->key = i;
    } else {
      c->key = j->nkeys ? i % j->nkeys : 0;
    }
  }
  c->busy = true;

  /* What the body is (sent or expected). */
  uint64_t tag, p0 = 0;
  if (j->big) {
    if (j->t->kind == T_STATIC) {
      tag = j->tag;
      p0 = c->key * (j->size / MIB); /* range k of the file */
    } else {
      tag = j->tag + c->key;
    }
  } else {
    tag = j->tag;
    p0 = j->t->kind == T_STATIC ? 0 : c->key;
  }

  char path[256];
  key_path(j, c, path, sizeof path);
  const char *m = op_method[j->op];
  int n = snprintf(c->req, sizeof c->req, "%s %s HTTP/1.1\r\n", m, path);
  n += sign_lines(c->req + n, sizeof c->req - (size_t)n, m, path, j->t->host);
  if (j->op == OP_PUT)
    n += snprintf(c->req + n, sizeof c->req - (size_t)n,
                  "Content-Length: %" PRIu64 "\r\n", j->size);
  if (j->t->kind == T_STATIC && j->big && j->nconn > 1)
    n += snprintf(c->req + n, sizeof c->req - (size_t)n,
                  "Range: bytes=%" PRIu64 "-%" PRIu64 "\r\n", p0 * MIB,
                  p0 * MIB + j->size - 1);
  if (j->t->kind == T_NULL)
    n += snprintf(c->req + n, sizeof c->req - (size_t)n,
                  "x-bench-size: %" PRIu64 "\r\nx-bench-tag: %" PRIu64
                  "\r\nx-bench-piece0: %" PRIu64 "\r\n",
                  j->op == OP_PUT ? 0 : j->size, tag, p0);
  n += snprintf(c->req + n, sizeof c->req - (size_t)n, "\r\n");
  if ((size_t)n >= sizeof c->req) die("request too long");
  c->req_len = (size_t)n;
  c->req_off = 0;
  c->blen = j->op == OP_PUT ? j->size : 0;
  c->boff = 0;
  c->btag = tag;
  c->bp0 = p0;
  c->rtag = tag;
  c->rp0 = p0;
  c->hdr_len = 0;
  c->got = 0;
  c->status = 0;
  c->clen = -1;
  c->close_after = 0;
  c->etag[0] = 0;
  c->is_head = j->op == OP_HEAD;
  c->state = C_SEND;
  c->t_start = now_ns();
  return true;
}

static void conn_events(conn *c, uint32_t ev) {
  struct epoll_event e = {.events = ev, .data.ptr = c};
  if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
    die("epoll_ctl: %s", strerror(errno));
}

static bool conn_open(conn *c) {
  c->fd = connect_to(&c->w->j->t->addr);
  if (c->fd < 0) return false;
  set_nonblock(c->fd);
  struct epoll_event e = {.events = 0, .data.ptr = c};
  if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &e) != 0)
    die("epoll_ctl add: %s", strerror(errno));
  return true;
}

static void conn_close(conn *c) {
  if (c->fd >= 0) {
    epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
}

/* Start the next request on c, or retire it. */
static void conn_next(conn *c) {
  worker *w = c->w;
  if (!next_request(c)) {
    c->state = C_IDLE;
    w->active--;
    return;
  }
  if (c->fd < 0 && !conn_open(c)) {
    note_err(w, "connect to %s: %s", w->j->t->host, strerror(errno));
    c->state = C_IDLE;
    w->active--;
    return;
  }
  conn_events(c, EPOLLOUT);
}

/* The request on c failed at the transport level: count it, reconnect. */
static void conn_fail(conn *c, const char *what) {
  note_err(c->w, "%s %s: %s", op_method[c->w->j->op], what,
           c->hdr_len ? c->hdr : "no response");
  conn_close(c);
  conn_next(c);
}

static void body_in(conn *c, size_t n) {
  uint64_t p = c->got % MIB;
  if (c->check && p < 16 && p + n >= 16) {
    uint8_t want[16];
    stamp(want, c->rtag, c->rp0 + c->got / MIB);
    if (memcmp(c->rbuf, want, 16)) c->check = 2; /* wrong bytes */
  }
  c->got += n;
}

static void request_done(conn *c) {
  worker *w = c->w;
  job *j = w->j;
  uint64_t t = now_ns();
  int want = j->op == OP_DELETE ? 204
             : (j->t->kind == T_STATIC && j->big && j->nconn > 1) ? 206
                                                                 : 200;
  if (c->status != want) {
    char body[200] = "";
    if (c->got && c->clen > 0) {
      size_t l = c->got < sizeof body - 1 ? (size_t)c->got : sizeof body - 1;
      memcpy(body, c->rbuf, l);
      body[l] = 0;
    }
    note_err(w, "%s status %d (want %d): %s", op_method[j->op], c->status,
             want, body);
  } else if (c->check == 2) {
    w->bad++;
    note_err(w, "%s: wrong bytes in the body", op_method[j->op]);
  } else if (j->op == OP_GET && (uint64_t)c->clen != j->size) {
    note_err(w, "GET: %" PRId64 " bytes, want %" PRIu64, c->clen, j->size);
  } else if (j->want_md5 && j->t->kind == T_S3) {
    char hx[33], q[40];
    hexs(j->want_md5, 16, hx);
    snprintf(q, sizeof q, "\"%s\"", hx);
    if (strcmp(c->etag, q) && strcmp(c->etag, hx)) {
      w->bad++;
      note_err(w, "PUT: ETag %s, want %s", c->etag, q);
    } else {
      w->ok++;
    }
  } else {
    w->ok++;
  }
  w->bytes += j->op == OP_PUT ? j->size : c->got;
  w->hist[hbucket(t - c->t_start)]++;
  w->t_last = now();
  if (c->close_after) {
    w->closes++;
    conn_close(c);
  }
  conn_next(c);
}

/* Parse the status line and the headers we need. */
static void parse_head(conn *c, size_t hlen) {
  c->hdr[hlen - 1] = 0;
  if (strncmp(c->hdr, "HTTP/1.", 7) == 0)
    c->status = (int)strtol(c->hdr + 9, NULL, 10);
  c->check = 0;
  for (char *l = strstr(c->hdr, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
    char *h = l + 2;
    if (!strncasecmp(h, "content-length:", 15)) {
      c->clen = strtoll(h + 15, NULL, 10);
    } else if (!strncasecmp(h, "connection:", 11)) {
      char *v = h + 11;
      while (*v == ' ') v++;
      if (!strncasecmp(v, "close", 5)) c->close_after = 1;
    } else if (!strncasecmp(h, "transfer-encoding:", 18)) {
      c->clen = -2; /* chunked responses are not expected here */
    } else if (!strncasecmp(h, "etag:", 5)) {
      char *v = h + 5;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r");
      if (n >= sizeof c->etag) n = sizeof c->etag - 1;
      memcpy(c->etag, v, n);
      c->etag[n] = 0;
    }
  }
  /* No body: HEAD, 1xx, 204 and 304 (RFC 9112 6.3), whatever the headers. */
  if (c->is_head || c->status < 200 || c->status == 204 || c->status == 304)
    c->clen = 0;
  c->check = (c->status == 200 || c->status == 206) && !c->is_head;
}

static void on_readable(conn *c) {
  for (int loops = 0; loops < 64; loops++) {
    if (c->state == C_HDR) {
      ssize_t r = recv(c->fd, c->hdr + c->hdr_len, HDR_CAP - 1 - c->hdr_len, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (r <= 0) return conn_fail(c, "connection closed");
      size_t old = c->hdr_len;
      c->hdr_len += (size_t)r;
      c->hdr[c->hdr_len] = 0;
      char *e = strstr(c->hdr + (old > 3 ? old - 3 : 0), "\r\n\r\n");
      if (!e) {
        if (c->hdr_len >= HDR_CAP - 1) return conn_fail(c, "headers too long");
        continue;
      }
      size_t hlen = (size_t)(e - c->hdr) + 4;
      size_t extra = c->hdr_len - hlen;
      parse_head(c, hlen);
      if (c->clen == -2) return conn_fail(c, "chunked response");
      if (c->clen < 0) return conn_fail(c, "no Content-Length");
      c->state = C_BODY;
      /* Body bytes that came with the headers. */
      const char *b = c->hdr + hlen;
      if (extra > (uint64_t)c->clen) extra = (size_t)c->clen;
      while (extra) {
        size_t p = (size_t)(c->got % MIB), n = MIB - p;
        if (n > extra) n = extra;
        memcpy(c->rbuf + p, b, n);
        body_in(c, n);
        b += n;
        extra -= n;
      }
    }
    if (c->state == C_BODY) {
      if (c->got >= (uint64_t)c->clen) return request_done(c);
      size_t p = (size_t)(c->got % MIB), n = MIB - p;
      if (n > (uint64_t)c->clen - c->got) n = (size_t)((uint64_t)c->clen - c->got);
      ssize_t r = recv(c->fd, c->rbuf + p, n, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (r <= 0) return conn_fail(c, "connection closed in the body");
      body_in(c, (size_t)r);
      if (c->got >= (uint64_t)c->clen) return request_done(c);
    } else {
      return;
    }
  }
}

static void on_writable(conn *c) {
  for (int loops = 0; loops < 64; loops++) {
    struct iovec iov[3];
    int k = 0;
    if (c->req_off < c->req_len) {
      iov[k].iov_base = c->req + c->req_off;
      iov[k++].iov_len = c->req_len - c->req_off;
    }
    size_t bl = 0;
    if (c->boff < c->blen)
      k += stream_iov(c->btag, c->bp0, c->boff, c->blen - c->boff, c->sb,
                      iov + k, &bl);
    if (k == 0) {
      c->state = C_HDR;
      conn_events(c, EPOLLIN);
      return on_readable(c);
    }
    ssize_t r = writev(c->fd, iov, k);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r < 0) return conn_fail(c, strerror(errno));
    size_t rr = (size_t)r;
    size_t hq = c->req_len - c->req_off;
    if (rr <= hq) {
      c->req_off += rr;
    } else {
      c->req_off = c->req_len;
      c->boff += rr - hq;
    }
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  job *j = w->j;
  pthread_barrier_wait(w->bar); /* connections are open */
  pthread_barrier_wait(w->bar); /* go: j->t0 is set */
  w->active = w->nc;
  for (int i = 0; i < w->nc; i++) conn_next(w->c[i]);
  struct epoll_event ev[64];
  while (w->active > 0) {
    int n = epoll_wait(w->ep, ev, 64, 200);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      conn *c = ev[i].data.ptr;
      if (c->state == C_SEND) on_writable(c);
      else if (c->state == C_HDR || c->state == C_BODY) on_readable(c);
    }
    if (now() > j->t_hard_end) {
      int left = 0;
      for (int i = 0; i < w->nc; i++)
        if (w->c[i]->state != C_IDLE) {
          left++;
          conn_close(w->c[i]);
          w->c[i]->state = C_IDLE;
        }
      note_err(w, "time limit: %d requests still open", left);
      break;
    }
  }
  return NULL;
}

/* Run job j with nthreads event loops; fills the results. */
static void run_job(job *j, int nthreads) {
  if (nthreads > j->nconn) nthreads = j->nconn;
  if (nthreads < 1) nthreads = 1;
  worker *ws = calloc((size_t)nthreads, sizeof *ws);
  conn **cs = calloc((size_t)j->nconn, sizeof *cs);
  pthread_t *th = calloc((size_t)nthreads, sizeof *th);
  if (!ws || !cs || !th) die("out of memory");
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
  atomic_store(&j->next, 0);
  for (int i = 0; i < nthreads; i++) {
    ws[i].j = j;
    ws[i].bar = &bar;
    ws[i].ep = epoll_create1(EPOLL_CLOEXEC);
    if (ws[i].ep < 0) die("epoll_create1: %s", strerror(errno));
  }
  for (int i = 0; i < j->nconn; i++) {
    conn *c = cs[i] = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->rbuf = aligned_alloc(4096, MIB);
    if (!c->rbuf) die("out of memory");
    memset(c->rbuf, 0, MIB); /* fault the pages in before timing */
    worker *w = &ws[i % nthreads];
    c->w = w;
    c->idx_conn = i;
    c->fd = -1;
    w->c[w->nc++] = c;
    if (!conn_open(c)) die("connect to %s: %s", j->t->host, strerror(errno));
  }
  for (int i = 0; i < nthreads; i++)
    if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0)
      die("pthread_create failed");
  pthread_barrier_wait(&bar);
  double c0 = cpu_self(), s0 = cpu_pids(j->t->pids, j->t->npids);
  j->t0 = now();
  j->t_issue_end = j->t0 + (j->big ? 1e9 : j->secs);
  double limit = j->big ? 60 + (double)j->size * j->nconn / 20e6 : j->secs + 60;
  j->t_hard_end = j->t0 + limit;
  pthread_barrier_wait(&bar);
  j->ok = j->err = j->bad = j->bytes = j->closes = 0;
  memset(j->hist, 0, sizeof j->hist);
  j->first_err[0] = 0;
  j->t_last = j->t0;
  for (int i = 0; i < nthreads; i++) {
    pthread_join(th[i], NULL);
    worker *w = &ws[i];
    j->ok += w->ok;
    j->err += w->err;
    j->bad += w->bad;
    j->bytes += w->bytes;
    j->closes += w->closes;
    for (int b = 0; b < NB; b++) j->hist[b] += w->hist[b];
    if (w->t_last > j->t_last) j->t_last = w->t_last;
    if (!j->first_err[0] && w->first_err[0])
      memcpy(j->first_err, w->first_err, sizeof j->first_err);
  }
  double t1 = now();
  j->elapsed = j->t_last - j->t0;
  j->cpu_client = (cpu_self() - c0) / (t1 - j->t0);
  j->cpu_server = (cpu_pids(j->t->pids, j->t->npids) - s0) / (t1 - j->t0);
  for (int i = 0; i < j->nconn; i++) {
    conn_close(cs[i]);
    free(cs[i]->rbuf);
    free(cs[i]);
  }
  for (int i = 0; i < nthreads; i++) close(ws[i].ep);
  pthread_barrier_destroy(&bar);
  free(ws);
  free(cs);
  free(th);
}

static double job_rate(const job *j) {
  return j->elapsed > 0 ? (double)j->ok / j->elapsed : 0;
}
static double job_mbs(const job *j) {
  return j->err ? 0 : mbs(j->bytes, j->elapsed);
}

/* ------------------------------------------------------------------ */
/* The helper process: a null HTTP responder and a raw TCP sink/source */
/* ------------------------------------------------------------------ */
typedef struct nconn {
  int fd, state; /* 0 headers, 1 discard body, 2 send */
  char hdr[HDR_CAP];
  size_t hl;
  uint64_t body_left;
  char resp[256];
  size_t rl, ro;
  uint64_t blen, boff, tag, p0;
  uint8_t sb[16];
} nconn;

static uint64_t hdr_u64(const char *h, const char *name) {
  const char *p = strcasestr(h, name);
  return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static void null_request(nconn *n, size_t hlen) {
  n->hdr[hlen - 1] = 0;
  bool put = !strncmp(n->hdr, "PUT ", 4), head = !strncmp(n->hdr, "HEAD ", 5),
       del = !strncmp(n->hdr, "DELETE ", 7);
  n->body_left = hdr_u64(n->hdr, "\ncontent-length:");
  uint64_t size = hdr_u64(n->hdr, "\nx-bench-size:");
  n->tag = hdr_u64(n->hdr, "\nx-bench-tag:");
  n->p0 = hdr_u64(n->hdr, "\nx-bench-piece0:");
  n->blen = (put || head || del) ? 0 : size;
  n->boff = 0;
  n->rl = (size_t)snprintf(n->resp, sizeof n->resp,
                           "HTTP/1.1 %s\r\nContent-Length: %" PRIu64
                           "\r\nETag: \"0\"\r\nServer: null\r\n\r\n",
                           del ? "204 No Content" : "200 OK",
                           del || put ? 0 : size);
  n->ro = 0;
}

static void *null_thread(void *arg) {
  int lfd = (int)(intptr_t)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
  static __thread uint8_t sink[256 * 1024];
  for (;;) {
    struct epoll_event ev[64];
    int k = epoll_wait(ep, ev, 64, -1);
    for (int i = 0; i < k; i++) {
      nconn *n = ev[i].data.ptr;
      if (!n) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        n = calloc(1, sizeof *n);
        if (!n) _exit(3);
        n->fd = fd;
        struct epoll_event ce = {.events = EPOLLIN, .data.ptr = n};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
        continue;
      }
      bool dead = false;
      for (int loops = 0; loops < 64 && !dead; loops++) {
        if (n->state == 0) {
          ssize_t r = recv(n->fd, n->hdr + n->hl, HDR_CAP - 1 - n->hl, 0);
          if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
          if (r <= 0) { dead = true; break; }
          size_t old = n->hl;
          n->hl += (size_t)r;
          n->hdr[n->hl] = 0;
          char *end = strstr(n->hdr + (old > 3 ? old - 3 : 0), "\r\n\r\n");
          if (!end) {
            if (n->hl >= HDR_CAP - 1) dead = true;
            continue;
          }
          size_t hlen = (size_t)(end - n->hdr) + 4, extra = n->hl - hlen;
          null_request(n, hlen);
          if (extra > n->body_left) extra = (size_t)n->body_left; /* no pipelining */
          n->body_left -= extra;
          n->hl = 0;
          n->state = 1;
        }
        if (n->state == 1) {
          while (n->body_left) {
            size_t want = n->body_left < sizeof sink ? (size_t)n->body_left : sizeof sink;
            ssize_t r = recv(n->fd, sink, want, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
            if (r <= 0) { dead = true; break; }
            n->body_left -= (uint64_t)r;
          }
          if (dead || n->body_left) break;
          n->state = 2;
          struct epoll_event ce = {.events = EPOLLOUT, .data.ptr = n};
          epoll_ctl(ep, EPOLL_CTL_MOD, n->fd, &ce);
        }
        if (n->state == 2) {
          struct iovec iov[3];
          int c = 0;
          if (n->ro < n->rl) {
            iov[c].iov_base = n->resp + n->ro;
            iov[c++].iov_len = n->rl - n->ro;
          }
          size_t bl;
          if (n->boff < n->blen)
            c += stream_iov(n->tag, n->p0, n->boff, n->blen - n->boff, n->sb,
                            iov + c, &bl);
          if (c == 0) {
            n->state = 0;
            struct epoll_event ce = {.events = EPOLLIN, .data.ptr = n};
            epoll_ctl(ep, EPOLL_CTL_MOD, n->fd, &ce);
            continue;
          }
          ssize_t r = writev(n->fd, iov, c);
          if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
          if (r < 0) { dead = true; break; }
          size_t rr = (size_t)r, hq = n->rl - n->ro;
          if (rr <= hq) n->ro += rr;
          else {
            n->ro = n->rl;
            n->boff += rr - hq;
          }
        }
      }
      if (dead) {
        epoll_ctl(ep, EPOLL_CTL_DEL, n->fd, NULL);
        close(n->fd);
        free(n);
      }
    }
  }
  return NULL;
}

/* Raw TCP: the client sends 'W' + 8-byte length then the bytes (we ack
 * with one byte), or 'R' + length (we send the bytes). */
static void *tcp_conn_thread(void *arg) {
  int fd = (int)(intptr_t)arg;
  static __thread uint8_t buf[MIB];
  uint8_t cmd[9];
  size_t got = 0;
  while (got < 9) {
    ssize_t r = recv(fd, cmd + got, 9 - got, 0);
    if (r <= 0) goto out;
    got += (size_t)r;
  }
  uint64_t len;
  memcpy(&len, cmd + 1, 8);
  if (cmd[0] == 'W') {
    while (len) {
      ssize_t r = recv(fd, buf, len < MIB ? (size_t)len : MIB, 0);
      if (r <= 0) goto out;
      len -= (uint64_t)r;
    }
    char a = 'k';
    if (write(fd, &a, 1) != 1) goto out;
  } else {
    for (uint64_t off = 0; off < len;) {
      size_t n = len - off < MIB ? (size_t)(len - off) : MIB;
      ssize_t w = send(fd, gen + (size_t)((off / MIB) % GEN_MIB) * MIB, n,
                       MSG_NOSIGNAL);
      if (w <= 0) goto out;
      off += (uint64_t)w;
    }
  }
out:
  close(fd);
  return NULL;
}

static void *tcp_accept_thread(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, tcp_conn_thread, (void *)(intptr_t)fd)) close(fd);
    pthread_attr_destroy(&a);
  }
  return NULL;
}

static pid_t helper_pid;
static target null_t;
static struct sockaddr_in tcp_addr;

/* Fork the helper; it dies with us (PR_SET_PDEATHSIG) or on SIGTERM. */
static void helper_start(void) {
  uint16_t np, tp;
  int nfd = listen_loopback(&np), tfd = listen_loopback(&tp);
  pid_t parent = getpid();
  pid_t p = fork();
  if (p < 0) die("fork: %s", strerror(errno));
  if (p == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    signal(SIGPIPE, SIG_IGN);
    pthread_t t;
    for (int i = 0; i < 2; i++) /* one event loop per core */
      if (pthread_create(&t, NULL, null_thread, (void *)(intptr_t)nfd)) _exit(3);
    if (pthread_create(&t, NULL, tcp_accept_thread, (void *)(intptr_t)tfd)) _exit(3);
    for (int i = 0; i < 36000; i++) sleep(1); /* bounded: 10 h at most */
    _exit(0);
  }
  close(nfd);
  close(tfd);
  helper_pid = p;
  null_t.name = "null responder";
  null_t.kind = T_NULL;
  null_t.addr.sin_family = AF_INET;
  null_t.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  null_t.addr.sin_port = htons(np);
  snprintf(null_t.host, sizeof null_t.host, "127.0.0.1:%u", np);
  null_t.pids[0] = p;
  null_t.npids = 1;
  tcp_addr = null_t.addr;
  tcp_addr.sin_port = htons(tp);
}

static void helper_stop(void) {
  if (helper_pid <= 0) return;
  kill(helper_pid, SIGKILL);
  waitpid(helper_pid, NULL, 0);
  helper_pid = 0;
}

typedef struct tcp_job {
  char dir;
  uint64_t len;
  pthread_barrier_t *bar;
  bool ok;
} tcp_job;

static void *tcp_client(void *arg) {
  tcp_job *t = arg;
  static __thread uint8_t buf[MIB];
  int fd = connect_to(&tcp_addr);
  pthread_barrier_wait(t->bar);
  if (fd < 0) return NULL;
  uint8_t cmd[9];
  cmd[0] = (uint8_t)t->dir;
  memcpy(cmd + 1, &t->len, 8);
  if (send(fd, cmd, 9, MSG_NOSIGNAL) != 9) goto out;
  if (t->dir == 'W') {
    for (uint64_t off = 0; off < t->len;) {
      size_t n = t->len - off < MIB ? (size_t)(t->len - off) : MIB;
      ssize_t w = send(fd, gen + (size_t)((off / MIB) % GEN_MIB) * MIB, n,
                       MSG_NOSIGNAL);
      if (w <= 0) goto out;
      off += (uint64_t)w;
    }
    char a;
    if (recv(fd, &a, 1, 0) != 1) goto out;
  } else {
    for (uint64_t got = 0; got < t->len;) {
      ssize_t r = recv(fd, buf, MIB, 0);
      if (r <= 0) goto out;
      got += (uint64_t)r;
    }
  }
  t->ok = true;
out:
  close(fd);
  return NULL;
}

/* Loopback TCP: n streams of len bytes each, in direction dir. */
static double tcp_bench(char dir, int n, uint64_t len) {
  pthread_t th[64];
  tcp_job tj[64];
  pthread_barrier_t bar;
  if (n > 64) n = 64;
  pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    tj[i] = (tcp_job){.dir = dir, .len = len, .bar = &bar};
    if (pthread_create(&th[i], NULL, tcp_client, &tj[i])) die("pthread_create");
  }
  pthread_barrier_wait(&bar);
  double t0 = now();
  bool ok = true;
  for (int i = 0; i < n; i++) {
    pthread_join(th[i], NULL);
    ok = ok && tj[i].ok;
  }
  double t = now() - t0;
  pthread_barrier_destroy(&bar);
  if (!ok) die("loopback TCP test failed");
  return mbs(len * (uint64_t)n, t);
}

/* ------------------------------------------------------------------ */
/* Disk and hashing limits (as bench_store's 1a, 1b, 1c)               */
/* ------------------------------------------------------------------ */
static char workdir[PATH_MAX];
static double prime_min;

static void path_in(char *out, const char *name) {
  if (snprintf(out, PATH_MAX, "%s/%s", workdir, name) >= PATH_MAX)
    die("path too long");
}

static void settle(void) {
  int dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    syncfs(dfd);
    close(dfd);
  }
}

/* See bench/README.md "Memory priming": write and delete a scratch file
 * of the size about to be written, so the measured write reuses page-cache
 * memory the guest holds.  Returns the scratch write's speed. */
static double prime_memory(uint64_t mib) {
  char f[PATH_MAX];
  path_in(f, "prime.dat");
  int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", f, strerror(errno));
  mib += 64;
  double t0 = now();
  for (uint64_t i = 0; i < mib; i++)
    write_all(fd, gen + (i % GEN_MIB) * MIB, MIB, "prime write");
  double v = mbs(mib * MIB, now() - t0);
  close(fd);
  unlink(f);
  if (prime_min == 0 || v < prime_min) prime_min = v;
  return v;
}

/* Write stream (tag, 0) of `mib` MiB to `file`; fdatasync when durable.
 * Returns MB/s; md5 (if not NULL) gets the MD5 of the content. */
static double write_stream_file(const char *file, uint64_t tag, uint64_t mib,
                                bool durable, uint8_t *md5) {
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", file, strerror(errno));
  struct md5_ctx m;
  md5_init(&m);
  double t0 = now();
  for (uint64_t i = 0; i < mib; i++) {
    struct iovec iov[2];
    uint8_t sb[16];
    size_t len;
    int k = stream_iov(tag, 0, i * MIB, MIB, sb, iov, &len);
    for (int x = 0; x < k; x++) {
      if (md5) md5_update(&m, iov[x].iov_len, iov[x].iov_base);
      write_all(fd, iov[x].iov_base, iov[x].iov_len, "write");
    }
  }
  if (durable && fdatasync(fd) != 0) die("fdatasync: %s", strerror(errno));
  double t = now() - t0;
  close(fd);
  if (md5) md5_digest(&m, 16, md5);
  return mbs(mib * MIB, t);
}

static double bench_fsync(double *p50_us) {
  char file[PATH_MAX];
  path_in(file, "fsync.dat");
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", file, strerror(errno));
  uint8_t buf[4096];
  memcpy(buf, gen, sizeof buf);
  if (pwrite(fd, buf, 4096, 0) != 4096 || fsync(fd) != 0)
    die("fsync file: %s", strerror(errno));
  uint64_t h[NB] = {0}, n = 0;
  double t0 = now(), end = t0 + opt.fsync_secs, t;
  do {
    uint64_t a = now_ns();
    stamp(buf, 0xf5, n);
    if (pwrite(fd, buf, 4096, 0) != 4096) die("pwrite: %s", strerror(errno));
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
  memcpy(buf, gen, MIB);
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

/* ------------------------------------------------------------------ */
/* Results: best of the rounds                                         */
/* ------------------------------------------------------------------ */
typedef struct best {
  double v;          /* MB/s or ops/s */
  double cpu_s, cpu_c;
  double p50, p99, pmax; /* ms, small ops */
  double closed;         /* share of responses that closed the connection */
  uint64_t errs;     /* over every run */
  char first_err[300];
  bool ran;
} best;

enum {
  /* limits */
  B_DISK, B_FSYNC, B_SHA, B_MD5, B_TCP_W1, B_TCP_R1, B_TCP_WN, B_TCP_RN,
  /* static server */
  B_ST_GET1, B_ST_GETN, B_ST_SGET, B_ST_SHEAD,
  /* null responder: the client's ceiling */
  B_NU_PUT1, B_NU_GET1, B_NU_PUTN, B_NU_GETN, B_NU_SPUT, B_NU_SGET,
  B_NU_SHEAD, B_NU_SDEL,
  /* s3d */
  B_S3_PUT1, B_S3_GET1, B_S3_PUTN, B_S3_GETN, B_S3_SPUT, B_S3_SGET,
  B_S3_SHEAD, B_S3_SDEL,
  B__N
};
static best B[B__N];
static double fsync_p50_us;

static void keep(int i, double v, const job *j) {
  best *b = &B[i];
  b->ran = true;
  if (j) {
    b->errs += j->err;
    if (!b->first_err[0] && j->first_err[0])
      memcpy(b->first_err, j->first_err, sizeof b->first_err);
    if (j->err) return; /* a run with errors never counts as the best */
  }
  if (v <= b->v) return;
  b->v = v;
  if (j) {
    b->cpu_s = j->cpu_server;
    b->cpu_c = j->cpu_client;
    b->p50 = hist_q(j->hist, 0.5) / 1e3;
    b->p99 = hist_q(j->hist, 0.99) / 1e3;
    b->pmax = hist_q(j->hist, 1.0) / 1e3;
    b->closed = j->ok ? (double)j->closes / (double)j->ok : 0;
  }
}

/* CPU cost of the work: seconds per GB (10^9 B) or microseconds per op.
 * Unlike a rate it hardly depends on how busy the machine is. */
static double cpu_per(double cores, double v, bool mb) {
  return v > 0 ? cores / v * (mb ? 1e3 : 1e6) : 0;
}

static void report_big(int r, const char *what, const job *j) {
  printf("  [%d] %-34s: %6.0f MB/s in %.2f s (server CPU %.2f cores = %.2f"
         " s/GB, client CPU %.2f)", r, what, job_mbs(j), j->elapsed,
         j->cpu_server, cpu_per(j->cpu_server, job_mbs(j), true),
         j->cpu_client);
  if (j->err) printf("  ERRORS %" PRIu64 ": %s", j->err, j->first_err);
  printf("\n");
}

static void report_small(int r, const char *what, const job *j) {
  printf("  [%d] %-34s: %6.0f /s (%" PRIu64 " ops; p50 %.2f ms, p99 %.2f ms,"
         " max %.0f ms; server CPU %.2f cores = %.0f us/op, client CPU %.2f)",
         r, what, job_rate(j), j->ok, hist_q(j->hist, 0.5) / 1e3,
         hist_q(j->hist, 0.99) / 1e3, hist_q(j->hist, 1.0) / 1e3,
         j->cpu_server, cpu_per(j->cpu_server, job_rate(j), false),
         j->cpu_client);
  if (j->closes)
    printf(" [server closed the connection after %.0f%% of responses]",
           j->ok ? 100.0 * (double)j->closes / (double)j->ok : 0);
  if (j->err) printf("  ERRORS %" PRIu64 ": %s", j->err, j->first_err);
  printf("\n");
}

/* ------------------------------------------------------------------ */
/* The measurements of one round                                       */
/* ------------------------------------------------------------------ */
static target s3_t, static_t;
static uint8_t big_md5[16];
static uint64_t par_mib;

static job *new_job(const target *t, int op) {
  job *j = calloc(1, sizeof *j);
  if (!j) die("out of memory");
  j->t = t;
  j->op = op;
  return j;
}

static job *run_big(const target *t, int op, int streams, uint64_t mib,
                    uint64_t tag, const char *path) {
  job *j = new_job(t, op);
  j->big = 1;
  j->nconn = streams;
  j->size = mib * MIB;
  j->tag = tag;
  j->path = path;
  if (op == OP_PUT && streams == 1 && tag == TAG_BIG) j->want_md5 = big_md5;
  run_job(j, opt.client_threads);
  return j;
}

static job *run_small(const target *t, int op, const char *prefix,
                      uint64_t nkeys, uint64_t tag, const char *path) {
  job *j = new_job(t, op);
  j->nconn = opt.conc;
  j->size = SMALL_SIZE;
  j->secs = opt.small_secs;
  j->nkeys = nkeys;
  j->tag = tag;
  j->path = path;
  snprintf(j->prefix, sizeof j->prefix, "%s", prefix ? prefix : "x");
  run_job(j, opt.client_threads);
  return j;
}

static void round_limits(int r) {
  double sha = bench_hash(true), md5 = bench_hash(false);
  printf("  [%d] hash, 1 core, warm 1 MiB buffer     : SHA-256 %5.0f MB/s,"
         " MD5 %5.0f MB/s\n", r, sha, md5);
  keep(B_SHA, sha, NULL);
  keep(B_MD5, md5, NULL);

  double p50, v = bench_fsync(&p50);
  printf("  [%d] fsyncs, 4 KiB pwrite + fdatasync      : %6.0f /s (p50 %.0f us)\n",
         r, v, p50);
  if (v > B[B_FSYNC].v) fsync_p50_us = p50;
  keep(B_FSYNC, v, NULL);

  char file[PATH_MAX];
  path_in(file, "disk.dat");
  double pr = prime_memory(opt.size_mb);
  v = write_stream_file(file, 0xd15c0000u + (uint64_t)r, opt.size_mb, true, NULL);
  unlink(file);
  settle();
  printf("  [%d] disk seq. write, %4" PRIu64 " x 1 MiB + fdatasync: %6.0f MB/s"
         " (memory primed at %.0f MB/s)\n", r, opt.size_mb, v, pr);
  keep(B_DISK, v, NULL);

  uint64_t len = opt.size_mb * MIB, plen = par_mib * MIB;
  double w1 = tcp_bench('W', 1, len), r1 = tcp_bench('R', 1, len);
  double wn = tcp_bench('W', opt.streams, plen), rn = tcp_bench('R', opt.streams, plen);
  printf("  [%d] loopback TCP, 1 MiB send()/recv()   : 1 stream send %5.0f,"
         " recv %5.0f MB/s; %d streams send %5.0f, recv %5.0f MB/s\n",
         r, w1, r1, opt.streams, wn, rn);
  keep(B_TCP_W1, w1, NULL);
  keep(B_TCP_R1, r1, NULL);
  keep(B_TCP_WN, wn, NULL);
  keep(B_TCP_RN, rn, NULL);
}

static void round_null(int r) {
  char what[64];
  job *j = run_big(&null_t, OP_PUT, 1, opt.size_mb, TAG_BIG, NULL);
  report_big(r, "null: PUT 1 stream", j);
  keep(B_NU_PUT1, job_mbs(j), j);
  free(j);
  j = run_big(&null_t, OP_GET, 1, opt.size_mb, TAG_BIG, NULL);
  report_big(r, "null: GET 1 stream", j);
  keep(B_NU_GET1, job_mbs(j), j);
  free(j);
  snprintf(what, sizeof what, "null: PUT %d streams", opt.streams);
  j = run_big(&null_t, OP_PUT, opt.streams, par_mib, TAG_PAR, NULL);
  report_big(r, what, j);
  keep(B_NU_PUTN, job_mbs(j), j);
  free(j);
  snprintf(what, sizeof what, "null: GET %d streams", opt.streams);
  j = run_big(&null_t, OP_GET, opt.streams, par_mib, TAG_PAR, NULL);
  report_big(r, what, j);
  keep(B_NU_GETN, job_mbs(j), j);
  free(j);
  static const int ops[] = {OP_PUT, OP_GET, OP_HEAD, OP_DELETE};
  for (int i = 0; i < 4; i++) {
    j = run_small(&null_t, ops[i], "null", ops[i] == OP_DELETE ? 1000000000 : 0,
                  TAG_SMALL, NULL);
    snprintf(what, sizeof what, "null: 4 KiB %s, %d conns", op_method[ops[i]],
             opt.conc);
    report_small(r, what, j);
    keep(B_NU_SPUT + i, job_rate(j), j);
    free(j);
  }
}

static void round_static(int r) {
  char what[64];
  job *j = run_big(&static_t, OP_GET, 1, opt.size_mb, TAG_BIG, "/big.bin");
  report_big(r, "static: GET 1 stream", j);
  keep(B_ST_GET1, job_mbs(j), j);
  free(j);
  snprintf(what, sizeof what, "static: GET %d ranges in parallel", opt.streams);
  j = run_big(&static_t, OP_GET, opt.streams, par_mib, TAG_BIG, "/big.bin");
  report_big(r, what, j);
  keep(B_ST_GETN, job_mbs(j), j);
  free(j);
  j = run_small(&static_t, OP_GET, NULL, 1, TAG_SMALLFILE, "/small.bin");
  snprintf(what, sizeof what, "static: 4 KiB GET, %d conns", opt.conc);
  report_small(r, what, j);
  keep(B_ST_SGET, job_rate(j), j);
  free(j);
  j = run_small(&static_t, OP_HEAD, NULL, 1, TAG_SMALLFILE, "/small.bin");
  snprintf(what, sizeof what, "static: 4 KiB HEAD, %d conns", opt.conc);
  report_small(r, what, j);
  keep(B_ST_SHEAD, job_rate(j), j);
  free(j);
}

static void run_gc(void) {
  if (!opt.gc_cmd) return;
  fflush(stdout);
  double t0 = now();
  pid_t p = fork();
  if (p < 0) die("fork: %s", strerror(errno));
  if (p == 0) {
    char log[PATH_MAX];
    path_in(log, "gc.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl("/bin/sh", "sh", "-c", opt.gc_cmd, (char *)NULL);
    _exit(127);
  }
  int st;
  for (int i = 0; i < 3000; i++) { /* 5 min at most */
    if (waitpid(p, &st, WNOHANG) == p) {
      if (!WIFEXITED(st) || WEXITSTATUS(st))
        die("gc command failed (see %s/gc.log)", workdir);
      printf("      gc between rounds: %.1f s\n", now() - t0);
      return;
    }
    usleep(100000);
  }
  kill(p, SIGKILL);
  waitpid(p, NULL, 0);
  die("gc command took more than 5 minutes");
}

static void round_s3big(int r) {
  char what[64];
  double pr = prime_memory(opt.size_mb);
  job *j = run_big(&s3_t, OP_PUT, 1, opt.size_mb, TAG_BIG, NULL);
  snprintf(what, sizeof what, "s3d: PUT 1 stream");
  report_big(r, what, j);
  printf("      (memory primed at %.0f MB/s; ETag %s)\n", pr,
         j->bad ? "WRONG" : j->err ? "?" : "= MD5 of the content");
  keep(B_S3_PUT1, job_mbs(j), j);
  free(j);
  j = run_big(&s3_t, OP_GET, 1, opt.size_mb, TAG_BIG, NULL);
  report_big(r, "s3d: GET 1 stream", j);
  keep(B_S3_GET1, job_mbs(j), j);
  free(j);

  pr = prime_memory(par_mib * (uint64_t)opt.streams);
  snprintf(what, sizeof what, "s3d: PUT %d streams", opt.streams);
  j = run_big(&s3_t, OP_PUT, opt.streams, par_mib, TAG_PAR, NULL);
  report_big(r, what, j);
  printf("      (memory primed at %.0f MB/s)\n", pr);
  keep(B_S3_PUTN, job_mbs(j), j);
  free(j);
  snprintf(what, sizeof what, "s3d: GET %d streams", opt.streams);
  j = run_big(&s3_t, OP_GET, opt.streams, par_mib, TAG_PAR, NULL);
  report_big(r, what, j);
  keep(B_S3_GETN, job_mbs(j), j);
  free(j);
}

static void round_s3small(int r) {
  char prefix[32], what[64];
  snprintf(prefix, sizeof prefix, "small-r%d", r);
  uint64_t tag = TAG_SMALL + ((uint64_t)r << 8);
  job *j = run_small(&s3_t, OP_PUT, prefix, 0, tag, NULL);
  uint64_t nkeys = atomic_load(&j->next);
  snprintf(what, sizeof what, "s3d: 4 KiB PUT, %d conns", opt.conc);
  report_small(r, what, j);
  keep(B_S3_SPUT, job_rate(j), j);
  /* Keys that were issued but failed would make GETs fail: use only the
     run's keys if all succeeded. */
  bool put_ok = j->err == 0;
  free(j);
  if (!put_ok) {
    printf("      (PUT errors: GET/HEAD/DELETE skipped this round)\n");
    return;
  }
  static const int ops[] = {OP_GET, OP_HEAD, OP_DELETE};
  for (int i = 0; i < 3; i++) {
    j = run_small(&s3_t, ops[i], prefix, nkeys, tag, NULL);
    snprintf(what, sizeof what, "s3d: 4 KiB %s, %d conns", op_method[ops[i]],
             opt.conc);
    report_small(r, what, j);
    if (ops[i] == OP_DELETE && j->ok < nkeys && j->err == 0)
      printf("      (%" PRIu64 " of %" PRIu64 " keys deleted in the time)\n",
             j->ok, nkeys);
    keep(B_S3_SGET + i, job_rate(j), j);
    free(j);
  }
}

/* Delete the large objects and collect their chunks, so that the next
 * round writes the same content into an empty store (no dedup). */
static void s3_cleanup_big(void) {
  job *j = new_job(&s3_t, OP_DELETE);
  j->big = 1;
  j->nconn = 1;
  run_job(j, 1);
  uint64_t err = j->err;
  free(j);
  j = new_job(&s3_t, OP_DELETE);
  j->big = 1;
  j->nconn = opt.streams;
  run_job(j, 1);
  err += j->err;
  free(j);
  if (err) die("deleting the large objects failed");
  run_gc();
}

static void s3_make_bucket(void) {
  int fd = connect_to(&s3_t.addr);
  if (fd < 0) die("connect to s3d %s: %s", s3_t.host, strerror(errno));
  char req[2048], path[128], resp[4096];
  snprintf(path, sizeof path, "/%s", opt.bucket);
  int n = snprintf(req, sizeof req, "PUT %s HTTP/1.1\r\n", path);
  n += sign_lines(req + n, sizeof req - (size_t)n, "PUT", path, s3_t.host);
  n += snprintf(req + n, sizeof req - (size_t)n,
                "Content-Length: 0\r\nConnection: close\r\n\r\n");
  write_all(fd, req, (size_t)n, "send");
  size_t got = 0;
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (;;) {
    ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
    if (got >= sizeof resp - 1) break;
  }
  close(fd);
  resp[got] = 0;
  if (strncmp(resp, "HTTP/1.1 200", 12) && !strstr(resp, "BucketAlreadyOwnedByYou"))
    die("create bucket %s: %.300s", opt.bucket, resp);
}

/* ------------------------------------------------------------------ */
/* Summary                                                             */
/* ------------------------------------------------------------------ */
static const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

#define ROW(name, fmt, val, ...)                \
  do {                                          \
    char v_[32];                                \
    snprintf(v_, sizeof v_, fmt, val);          \
    printf("%-44s %12s  ", name, v_);           \
    printf(__VA_ARGS__);                        \
    printf("\n");                               \
  } while (0)

static void cpu_note(char *out, size_t cap, const best *b, const best *ceil_b,
                     bool mb) {
  snprintf(out, cap, "s3d CPU %.2f cores = %.*f %s, client CPU %.2f; %.2f x"
           " client ceiling (%.0f %s)", b->cpu_s, mb ? 2 : 0,
           cpu_per(b->cpu_s, b->v, mb), mb ? "s/GB" : "us/op", b->cpu_c,
           ratio(b->v, ceil_b->v), ceil_b->v, mb ? "MB/s" : "/s");
}

static void summary(const char *la0, const char *la1) {
  double hash_lim = mind(B[B_SHA].v, B[B_MD5].v);
  double put_lim = mind(hash_lim, B[B_DISK].v);
  const char *put_lim_name = put_lim == B[B_DISK].v ? "disk"
                             : put_lim == B[B_MD5].v ? "MD5"
                                                     : "SHA-256";
  char n[64], note[256];
  printf("\nSUMMARY  s3d: %" PRIu64 " MiB in 1 stream, %d x %" PRIu64
         " MiB, 4 KiB ops at %d conns; best of %d run%s; MB/s = 10^6 B/s;"
         " %ld cores\n", opt.size_mb, opt.streams, par_mib, opt.conc, opt.runs,
         opt.runs > 1 ? "s" : "", sysconf(_SC_NPROCESSORS_ONLN));
  printf("load average (1, 5, 15 min): %s at start, %s at end\n", la0, la1);
  printf("%-44s %12s  %s\n", "measurement", "value", "ratio / aim");
  printf("%-44s %12s  %s\n", "--------------------------------------------",
         "------------", "-------------------------------------------------");
  printf("limits of this machine, measured in this run\n");
  ROW("L1 disk durable seq. write (1 MiB+fdatasync)", "%.0f MB/s", B[B_DISK].v,
      "filesystem of %s; memory primed, slowest %.0f MB/s", opt.work, prime_min);
  ROW("L2 disk fsyncs (4 KiB pwrite+fdatasync)", "%.0f /s", B[B_FSYNC].v,
      "p50 latency %.0f us", fsync_p50_us);
  ROW("L3 SHA-256, 1 core (Nettle)", "%.0f MB/s", B[B_SHA].v, "%s", "");
  ROW("L3 MD5, 1 core (Nettle)", "%.0f MB/s", B[B_MD5].v,
      "hash limit min(SHA-256, MD5) = %.0f MB/s", hash_lim);
  ROW("L4 loopback TCP, 1 stream, send / recv", "%.0f MB/s", B[B_TCP_W1].v,
      "recv %.0f MB/s", B[B_TCP_R1].v);
  snprintf(n, sizeof n, "L4 loopback TCP, %d streams, send / recv", opt.streams);
  ROW(n, "%.0f MB/s", B[B_TCP_WN].v, "recv %.0f MB/s", B[B_TCP_RN].v);
  snprintf(note, sizeof note, "nginx CPU %.2f cores = %.2f s/GB, client CPU"
           " %.2f", B[B_ST_GET1].cpu_s,
           cpu_per(B[B_ST_GET1].cpu_s, B[B_ST_GET1].v, true), B[B_ST_GET1].cpu_c);
  snprintf(n, sizeof n, "L5 static: GET %" PRIu64 " MiB file, 1 stream", opt.size_mb);
  ROW(n, "%.0f MB/s", B[B_ST_GET1].v, "%s; %.2f x TCP recv", note,
      ratio(B[B_ST_GET1].v, B[B_TCP_R1].v));
  snprintf(n, sizeof n, "L5 static: GET %d x %" PRIu64 " MiB ranges", opt.streams,
           par_mib);
  ROW(n, "%.0f MB/s", B[B_ST_GETN].v, "nginx CPU %.2f cores = %.2f s/GB,"
      " client CPU %.2f", B[B_ST_GETN].cpu_s,
      cpu_per(B[B_ST_GETN].cpu_s, B[B_ST_GETN].v, true), B[B_ST_GETN].cpu_c);
  snprintf(n, sizeof n, "L5 static: 4 KiB GET, %d conns", opt.conc);
  ROW(n, "%.0f /s", B[B_ST_SGET].v, "p99 %.2f ms; nginx CPU %.2f cores = %.0f"
      " us/op, client CPU %.2f", B[B_ST_SGET].p99, B[B_ST_SGET].cpu_s,
      cpu_per(B[B_ST_SGET].cpu_s, B[B_ST_SGET].v, false), B[B_ST_SGET].cpu_c);
  snprintf(n, sizeof n, "L5 static: 4 KiB HEAD, %d conns", opt.conc);
  ROW(n, "%.0f /s", B[B_ST_SHEAD].v, "p99 %.2f ms; nginx CPU %.2f cores = %.0f"
      " us/op, client CPU %.2f", B[B_ST_SHEAD].p99, B[B_ST_SHEAD].cpu_s,
      cpu_per(B[B_ST_SHEAD].cpu_s, B[B_ST_SHEAD].v, false), B[B_ST_SHEAD].cpu_c);

  printf("the client's own ceiling (against a null HTTP responder)\n");
  static const char *nu[] = {"PUT 1 stream", "GET 1 stream", "PUT %d streams",
                             "GET %d streams", "4 KiB PUT", "4 KiB GET",
                             "4 KiB HEAD", "4 KiB DELETE"};
  for (int i = 0; i < 8; i++) {
    char nm[48];
    snprintf(nm, sizeof nm, nu[i], opt.streams);
    snprintf(n, sizeof n, "C  null: %s", nm);
    const best *b = &B[B_NU_PUT1 + i];
    if (i < 4)
      ROW(n, "%.0f MB/s", b->v, "client CPU %.2f, responder CPU %.2f cores",
          b->cpu_c, b->cpu_s);
    else
      ROW(n, "%.0f /s", b->v, "client CPU %.2f (%.1f us/op), responder CPU"
          " %.2f cores", b->cpu_c, b->v > 0 ? b->cpu_c / b->v * 1e6 : 0,
          b->cpu_s);
  }

  printf("s3d\n");
  const best *b = &B[B_S3_PUT1];
  snprintf(n, sizeof n, "S1 PUT %" PRIu64 " MiB, 1 stream, durable", opt.size_mb);
  cpu_note(note, sizeof note, b, &B[B_NU_PUT1], true);
  ROW(n, "%.0f MB/s", b->v, "%.2f x disk, %.2f x MD5, %.2f x SHA-256; %s",
      ratio(b->v, B[B_DISK].v), ratio(b->v, B[B_MD5].v),
      ratio(b->v, B[B_SHA].v), note);
  ROW("   aim >= 0.80 x min(disk, SHA-256, MD5)", "%.2f x", ratio(b->v, put_lim),
      "%s (limit: %s %.0f MB/s)", verdict(b->v >= 0.8 * put_lim), put_lim_name,
      put_lim);
  b = &B[B_S3_GET1];
  snprintf(n, sizeof n, "S2 GET %" PRIu64 " MiB, 1 stream", opt.size_mb);
  cpu_note(note, sizeof note, b, &B[B_NU_GET1], true);
  ROW(n, "%.0f MB/s", b->v, "%.2f x SHA-256; %s", ratio(b->v, B[B_SHA].v), note);
  ROW("   aim >= 0.70 x static server's GET", "%.2f x",
      ratio(b->v, B[B_ST_GET1].v), "%s (nginx %.0f MB/s)",
      verdict(b->v >= 0.7 * B[B_ST_GET1].v), B[B_ST_GET1].v);
  b = &B[B_S3_PUTN];
  snprintf(n, sizeof n, "S3 PUT %d x %" PRIu64 " MiB, durable", opt.streams, par_mib);
  cpu_note(note, sizeof note, b, &B[B_NU_PUTN], true);
  ROW(n, "%.0f MB/s", b->v, "%.2f x disk, %.2f x 2 cores of MD5, %.2f x S1; %s",
      ratio(b->v, B[B_DISK].v), ratio(b->v, 2 * B[B_MD5].v),
      ratio(b->v, B[B_S3_PUT1].v), note);
  b = &B[B_S3_GETN];
  snprintf(n, sizeof n, "S4 GET %d x %" PRIu64 " MiB", opt.streams, par_mib);
  cpu_note(note, sizeof note, b, &B[B_NU_GETN], true);
  ROW(n, "%.0f MB/s", b->v, "%.2f x static (%.0f), %.2f x 2 cores of SHA-256;"
      " %s", ratio(b->v, B[B_ST_GETN].v), B[B_ST_GETN].v,
      ratio(b->v, 2 * B[B_SHA].v), note);
  static const char *sm[] = {"PUT", "GET", "HEAD", "DELETE"};
  for (int i = 0; i < 4; i++) {
    b = &B[B_S3_SPUT + i];
    snprintf(n, sizeof n, "S%d 4 KiB %s, %d conns%s", 5 + i, sm[i], opt.conc,
             i == 0 || i == 3 ? ", durable" : "");
    cpu_note(note, sizeof note, b, &B[B_NU_SPUT + i], false);
    ROW(n, "%.0f /s", b->v, "p50 %.2f ms, p99 %.2f ms, max %.0f ms; %s",
        b->p50, b->p99, b->pmax, note);
    if (b->closed > 0)
      ROW("", "%s", "", "s3d closed the connection after %.0f%% of these"
          " responses (no keep-alive)", 100 * b->closed);
    if (i == 0)
      ROW("   aim well above 1 fsync/request (>= 2 x)", "%.2f x",
          ratio(b->v, B[B_FSYNC].v), "%s (fsync rate %.0f/s)",
          verdict(b->v >= 2 * B[B_FSYNC].v), B[B_FSYNC].v);
    if (i == 1)
      ROW("   aim >= 0.50 x static server's 4 KiB GET", "%.2f x",
          ratio(b->v, B[B_ST_SGET].v), "%s (nginx %.0f/s)",
          verdict(b->v >= 0.5 * B[B_ST_SGET].v), B[B_ST_SGET].v);
    if (i == 2)
      ROW("   (no aim) vs static server's 4 KiB HEAD", "%.2f x",
          ratio(b->v, B[B_ST_SHEAD].v), "nginx %.0f/s", B[B_ST_SHEAD].v);
    if (i == 3)
      ROW("   (no aim) vs 1 fsync/request", "%.2f x",
          ratio(b->v, B[B_FSYNC].v), "fsync rate %.0f/s", B[B_FSYNC].v);
  }
  uint64_t errs = 0;
  for (int i = 0; i < B__N; i++) errs += B[i].errs;
  printf("errors over all runs: %" PRIu64 "\n", errs);
  for (int i = 0; i < B__N; i++)
    if (B[i].errs) printf("  first error (row %d): %s\n", i, B[i].first_err);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */
static void usage(FILE *f) {
  fprintf(f,
    "usage: s3d_load freeport\n"
    "       s3d_load bench --s3 127.0.0.1:PORT --access-key K --secret-key S\n"
    "                      --work DIR [--s3d-pid PID] [--gc-cmd CMD]\n"
    "                      [--static 127.0.0.1:PORT --static-root DIR\n"
    "                       --static-pids P,P,...] [--size-mb N] [--streams N]\n"
    "                      [--conc N] [--small-secs S] [--runs N] [--quick]\n"
    "                      [--client-threads N] [--only LIST]\n"
    "  --work DIR        measure the disk of DIR (the store's filesystem);\n"
    "                    scratch files go there\n"
    "  --static-root DIR where the static server's root is: big.bin and\n"
    "                    small.bin are written there\n"
    "  --gc-cmd CMD      run between rounds after the large objects are\n"
    "                    deleted (needed for --runs > 1: no dedup)\n"
    "  --only LIST       limits,null,static,s3big,s3small (for profiling)\n"
    "bench/s3d_bench.sh starts s3d and nginx and runs this; see\n"
    "bench/s3d_README.md.\n");
}

static unsigned parse_only(const char *arg) {
  static const char *const names[] = {"limits", "null", "static", "s3big",
                                      "s3small"};
  unsigned ph = 0;
  for (const char *p = arg; *p;) {
    size_t n = strcspn(p, ",");
    unsigned bit = 0;
    for (unsigned i = 0; i < 5; i++)
      if (strlen(names[i]) == n && !strncmp(p, names[i], n)) bit = 1u << i;
    if (!bit) return 0;
    ph |= bit;
    p += n;
    if (*p == ',') p++;
  }
  return ph;
}

static int parse_pids(const char *s, pid_t *out) {
  int n = 0;
  while (*s && n < MAX_PIDS) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s) break;
    if (v > 0) out[n++] = (pid_t)v;
    s = end;
    while (*s == ',' || *s == ' ') s++;
  }
  return n;
}

static void write_static_files(void) {
  char f[PATH_MAX];
  if (snprintf(f, sizeof f, "%s/big.bin", opt.static_root) >= (int)sizeof f)
    die("path too long");
  double v = write_stream_file(f, TAG_BIG, opt.size_mb, false, big_md5);
  snprintf(f, sizeof f, "%s/small.bin", opt.static_root);
  int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("%s: %s", f, strerror(errno));
  struct iovec iov[2];
  uint8_t sb[16];
  size_t len;
  int k = stream_iov(TAG_SMALLFILE, 0, 0, SMALL_SIZE, sb, iov, &len);
  for (int i = 0; i < k; i++)
    write_all(fd, iov[i].iov_base, iov[i].iov_len, "write small.bin");
  close(fd);
  char hx[33];
  hexs(big_md5, 16, hx);
  printf("  static files written (%.0f MB/s, with MD5): big.bin %" PRIu64
         " MiB (MD5 %s, the ETag the 1-stream PUT must return), small.bin"
         " 4 KiB\n", v, opt.size_mb, hx);
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "freeport")) {
    uint16_t p;
    int fd = listen_loopback(&p);
    close(fd);
    printf("%u\n", p);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "bench")) {
    usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
  }
  static const struct option lo[] = {
      {"s3", required_argument, 0, 's'},
      {"access-key", required_argument, 0, 'a'},
      {"secret-key", required_argument, 0, 'k'},
      {"region", required_argument, 0, 'g'},
      {"s3d-pid", required_argument, 0, 'p'},
      {"static", required_argument, 0, 't'},
      {"static-root", required_argument, 0, 'R'},
      {"static-pids", required_argument, 0, 'P'},
      {"work", required_argument, 0, 'w'},
      {"gc-cmd", required_argument, 0, 'G'},
      {"size-mb", required_argument, 0, 'm'},
      {"streams", required_argument, 0, 'n'},
      {"conc", required_argument, 0, 'c'},
      {"small-secs", required_argument, 0, 'S'},
      {"runs", required_argument, 0, 'r'},
      {"client-threads", required_argument, 0, 'T'},
      {"only", required_argument, 0, 'o'},
      {"quick", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  bool quick = false, size_given = false, secs_given = false;
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 's': opt.s3 = optarg; break;
    case 'a': opt.ak = optarg; break;
    case 'k': opt.sk = optarg; break;
    case 'g': opt.region = optarg; break;
    case 'p': opt.s3d_pid = (pid_t)strtol(optarg, NULL, 10); break;
    case 't': opt.stat = optarg; break;
    case 'R': opt.static_root = optarg; break;
    case 'P': opt.n_static_pids = parse_pids(optarg, opt.static_pids); break;
    case 'w': opt.work = optarg; break;
    case 'G': opt.gc_cmd = optarg; break;
    case 'm':
      opt.size_mb = strtoull(optarg, &end, 10);
      if (*end || opt.size_mb < 8 || opt.size_mb > 65536) goto bad;
      size_given = true;
      break;
    case 'n':
      opt.streams = (int)strtol(optarg, &end, 10);
      if (*end || opt.streams < 1 || opt.streams > 64) goto bad;
      break;
    case 'c':
      opt.conc = (int)strtol(optarg, &end, 10);
      if (*end || opt.conc < 1 || opt.conc > MAX_CONN) goto bad;
      break;
    case 'S':
      opt.small_secs = strtod(optarg, &end);
      if (*end || opt.small_secs <= 0 || opt.small_secs > 600) goto bad;
      secs_given = true;
      break;
    case 'r':
      opt.runs = (int)strtol(optarg, &end, 10);
      if (*end || opt.runs < 1 || opt.runs > 20) goto bad;
      break;
    case 'T':
      opt.client_threads = (int)strtol(optarg, &end, 10);
      if (*end || opt.client_threads < 1 || opt.client_threads > 64) goto bad;
      break;
    case 'o':
      opt.only = parse_only(optarg);
      if (!opt.only) goto bad;
      break;
    case 'q': quick = true; break;
    case 'h': usage(stdout); return 0;
    default: goto bad;
    }
  }
  if (optind != argc || !opt.s3 || !opt.ak || !opt.sk || !opt.work) goto bad;
  if (opt.stat && !opt.static_root) goto bad;
  if (quick) {
    if (!size_given) opt.size_mb = 256;
    if (!secs_given) opt.small_secs = 1.0;
    opt.fsync_secs = 1.0;
  }
  unsigned phases = opt.only ? opt.only : PH_ALL;
  if (!opt.stat) phases &= ~(unsigned)PH_STATIC;
  if (opt.runs > 1 && (phases & PH_S3BIG) && !opt.gc_cmd)
    die("--runs > 1 needs --gc-cmd (the large objects are rewritten with the"
        " same content each round; without gc they would dedup)");
  par_mib = opt.size_mb / (uint64_t)opt.streams;
  if (par_mib == 0) die("--size-mb must be at least --streams");

  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  parse_addr(opt.s3, &s3_t);
  s3_t.name = "s3d";
  s3_t.kind = T_S3;
  if (opt.s3d_pid > 0) s3_t.pids[s3_t.npids++] = opt.s3d_pid;
  if (opt.stat) {
    parse_addr(opt.stat, &static_t);
    static_t.name = "static";
    static_t.kind = T_STATIC;
    memcpy(static_t.pids, opt.static_pids, sizeof static_t.pids);
    static_t.npids = opt.n_static_pids;
  }
  if (snprintf(workdir, sizeof workdir, "%s", opt.work) >= (int)sizeof workdir)
    die("--work too long");

  char la0[64], la1[64];
  loadavg(la0, sizeof la0);
  time_t tt = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&tt));
  printf("s3d_load %s: s3d %s, static %s, %ld cores, %" PRIu64 " MiB, %d x %"
         PRIu64 " MiB, %d conns x 4 KiB for %.1f s, %d round%s, %d client"
         " thread%s; load average %s\n", date, s3_t.host,
         opt.stat ? static_t.host : "-", sysconf(_SC_NPROCESSORS_ONLN),
         opt.size_mb, opt.streams, par_mib, opt.conc, opt.small_secs,
         opt.runs, opt.runs > 1 ? "s" : "", opt.client_threads,
         opt.client_threads > 1 ? "s" : "", la0);
  double t0 = now();
  gen_setup();
  if (opt.stat) write_static_files();
  else {
    /* The expected ETag of the 1-stream PUT, without writing a file. */
    struct md5_ctx m;
    md5_init(&m);
    for (uint64_t i = 0; i < opt.size_mb; i++) {
      struct iovec iov[2];
      uint8_t sb[16];
      size_t len;
      int k = stream_iov(TAG_BIG, 0, i * MIB, MIB, sb, iov, &len);
      for (int x = 0; x < k; x++) md5_update(&m, iov[x].iov_len, iov[x].iov_base);
    }
    md5_digest(&m, 16, big_md5);
  }
  helper_start();
  atexit(helper_stop);
  if (phases & (PH_S3BIG | PH_S3SMALL)) s3_make_bucket();

  for (int r = 1; r <= opt.runs; r++) {
    char la[64];
    loadavg(la, sizeof la);
    printf("round %d/%d (load average %s)\n", r, opt.runs, la);
    if (phases & PH_LIMITS) round_limits(r);
    if (phases & PH_NULL) round_null(r);
    if (phases & PH_STATIC) round_static(r);
    if (phases & PH_S3BIG) round_s3big(r);
    if (phases & PH_S3SMALL) round_s3small(r);
    if (phases & PH_S3BIG) s3_cleanup_big(); /* the next run starts empty */
  }
  loadavg(la1, sizeof la1);
  if (phases == PH_ALL) summary(la0, la1);
  else printf("(summary table only when every phase runs)\n");
  printf("total time %.0f s\n", now() - t0);
  helper_stop();
  return 0;
bad:
  usage(stderr);
  return 2;
}
