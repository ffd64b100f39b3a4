/*
 * fusefs_ops -- the file-operation loops of bench/fusefs_bench.sh, in C so
 * that the figures measure the filesystem, not an interpreter.  Any
 * filesystem: the script runs each loop on the fusefs mount, on the local
 * filesystem below it and on an s3fs mount, and prints the ratios.
 *
 *   fusefs_ops gen BYTES
 *       write BYTES of incompressible, never-repeating data to stdout
 *       (xoshiro256**, each 1 MiB stamped with its number: no dedup)
 *   fusefs_ops small DIR N SIZE [PHASES]
 *       in DIR (created, must not exist): create N files of SIZE bytes
 *       (open O_CREAT|O_EXCL, write, close), stat each, read the
 *       directory (twice), unlink each.  PHASES: a comma list of
 *       create,stat,readdir,unlink (default all of them).
 *   fusefs_ops randread FILE SECONDS [SEED]
 *       4 KiB preads at random 4 KiB-aligned offsets of FILE for SECONDS
 *       (the fallback when fio is not installed)
 *
 * Output: one line per measurement,
 *   RESULT <name> n=<ops> secs=<seconds> rate=<ops per second>
 * Exit status 0, or 1 with a message on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *arg) {
  fprintf(stderr, "fusefs_ops: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(1);
}

static void result(const char *name, uint64_t n, double secs) {
  printf("RESULT %s n=%" PRIu64 " secs=%.4f rate=%.1f\n", name, n, secs,
         secs > 0 ? (double)n / secs : 0.0);
  fflush(stdout);
}

/* xoshiro256** */
static uint64_t xs[4] = {0x9E3779B97F4A7C15u, 0xBF58476D1CE4E5B9u,
                         0x94D049BB133111EBu, 0x2545F4914F6CDD1Du};
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rnd(void) {
  uint64_t r = rotl(xs[1] * 5, 7) * 9, t = xs[1] << 17;
  xs[2] ^= xs[0];
  xs[3] ^= xs[1];
  xs[1] ^= xs[2];
  xs[0] ^= xs[3];
  xs[2] ^= t;
  xs[3] = rotl(xs[3], 45);
  return r;
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

#define MIB (1024u * 1024u)

static int cmd_gen(uint64_t bytes) {
  /* A 64 MiB pool, each 1 MiB piece made unique by a stamp. */
  size_t pool_n = 64 * MIB;
  uint64_t *pool = malloc(pool_n);
  if (!pool) die("malloc", NULL);
  for (size_t i = 0; i < pool_n / 8; i++) pool[i] = rnd();
  char *piece = malloc(MIB);
  if (!piece) die("malloc", NULL);
  uint64_t done = 0, no = 0;
  while (done < bytes) {
    size_t n = bytes - done < MIB ? (size_t)(bytes - done) : MIB;
    memcpy(piece, (char *)pool + (no % 64) * MIB, n);
    uint64_t stamp[2] = {0x66757365667342u, no};
    memcpy(piece, stamp, n < sizeof stamp ? n : sizeof stamp);
    if (write_all(1, piece, n)) die("write", "stdout");
    done += n;
    no++;
  }
  return 0;
}

static int has_phase(const char *list, const char *p) {
  size_t l = strlen(p);
  for (const char *s = list; (s = strstr(s, p)); s += l)
    if ((s == list || s[-1] == ',') && (s[l] == ',' || s[l] == 0)) return 1;
  return 0;
}

static int cmd_small(const char *dir, long n, long size, const char *phases) {
  char path[4096];
  char *buf = malloc(size > 0 ? (size_t)size : 1);
  if (!buf) die("malloc", NULL);
  for (long i = 0; i < size; i++) buf[i] = (char)rnd();
  if (has_phase(phases, "create")) {
    if (mkdir(dir, 0755) && errno != EEXIST) die("mkdir", dir);
    double t0 = now();
    for (long i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s/f%06ld.dat", dir, i);
      memcpy(buf, &i, size >= (long)sizeof i ? sizeof i : (size_t)size);
      int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd < 0) die("create", path);
      if (size && write_all(fd, buf, (size_t)size)) die("write", path);
      if (close(fd)) die("close", path);
    }
    result("create", (uint64_t)n, now() - t0);
  }
  if (has_phase(phases, "stat")) {
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s/f%06ld.dat", dir, i);
      if (stat(path, &st)) die("stat", path);
      if (st.st_size != size) {
        fprintf(stderr, "fusefs_ops: %s: size %lld, expected %ld\n", path,
                (long long)st.st_size, size);
        return 1;
      }
    }
    result("stat", (uint64_t)n, now() - t0);
  }
  if (has_phase(phases, "readdir")) {
    for (int round = 1; round <= 2; round++) {
      double t0 = now();
      DIR *d = opendir(dir);
      if (!d) die("opendir", dir);
      long cnt = 0;
      struct dirent *e;
      errno = 0;
      while ((e = readdir(d)))
        if (e->d_name[0] != '.') cnt++;
      if (errno) die("readdir", dir);
      closedir(d);
      double secs = now() - t0;
      if (cnt != n) {
        fprintf(stderr, "fusefs_ops: readdir %s: %ld entries, expected %ld\n", dir, cnt, n);
        return 1;
      }
      result(round == 1 ? "readdir1" : "readdir2", (uint64_t)cnt, secs);
    }
  }
  if (has_phase(phases, "unlink")) {
    double t0 = now();
    for (long i = 0; i < n; i++) {
      snprintf(path, sizeof path, "%s/f%06ld.dat", dir, i);
      if (unlink(path)) die("unlink", path);
    }
    result("unlink", (uint64_t)n, now() - t0);
    rmdir(dir);
  }
  free(buf);
  return 0;
}

static int cmd_randread(const char *file, double secs, uint64_t seed) {
  int fd = open(file, O_RDONLY);
  if (fd < 0) die("open", file);
  struct stat st;
  if (fstat(fd, &st)) die("fstat", file);
  uint64_t blocks = (uint64_t)st.st_size / 4096;
  if (!blocks) {
    fprintf(stderr, "fusefs_ops: %s is smaller than 4 KiB\n", file);
    return 1;
  }
  xs[0] ^= seed;
  char buf[4096];
  uint64_t n = 0;
  double t0 = now(), t;
  do {
    for (int i = 0; i < 16; i++, n++) {
      uint64_t b = rnd() % blocks;
      if (pread(fd, buf, sizeof buf, (off_t)(b * 4096)) != (ssize_t)sizeof buf)
        die("pread", file);
    }
    t = now() - t0;
  } while (t < secs);
  close(fd);
  result("randread", n, t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "gen"))
    return cmd_gen(strtoull(argv[2], NULL, 10));
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "small"))
    return cmd_small(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10),
                     argc == 6 ? argv[5] : "create,stat,readdir,unlink");
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "randread"))
    return cmd_randread(argv[2], strtod(argv[3], NULL),
                        argc == 5 ? strtoull(argv[4], NULL, 10) : 1);
  fprintf(stderr,
          "usage: fusefs_ops gen BYTES\n"
          "       fusefs_ops small DIR N SIZE [create,stat,readdir,unlink]\n"
          "       fusefs_ops randread FILE SECONDS [SEED]\n");
  return 2;
}
