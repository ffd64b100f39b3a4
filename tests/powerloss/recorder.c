/*
 * recorder.c -- an LD_PRELOAD library that records every mutating
 * filesystem call made under one directory tree, for the power-loss model
 * (tests/powerloss/replay.py, docs/durability.md "Power-loss model").
 *
 * Environment:
 *   PL_ROOT  the directory tree to watch (an absolute, canonical path; it
 *            may not exist yet).  Unset: the library does nothing.
 *   PL_LOG   the log file, shared by every process that preloads us (and
 *            by the workload, which appends its own MARK records).
 *   PL_DROP  negative control only: fnmatch() pattern on the path (relative
 *            to PL_ROOT, as opened) of files and directories whose
 *            fsync/fdatasync are silently skipped -- neither performed nor
 *            logged -- as a lying disk or a missing fsync in the code would.
 *
 * What is intercepted (the glibc entry points: the program and SQLite's
 * unix VFS reach the kernel through these symbols, so interposition sees
 * every call; SQLite's syscall table holds the addresses of open64,
 * pwrite64, ftruncate64... resolved through the dynamic linker):
 *   open/open64/openat/openat64/creat (+ the _2 fortify variants),
 *   mkstemp family, write/pwrite/pwrite64/writev/pwritev/pwritev2,
 *   ftruncate/truncate, fallocate/posix_fallocate, rename/renameat/
 *   renameat2, link/linkat, unlink/unlinkat/remove, mkdir/mkdirat, rmdir,
 *   symlink/symlinkat, fsync/fdatasync/syncfs/sync/sync_file_range,
 *   close, dup/dup2/dup3/fcntl(F_DUPFD*), mmap/mmap64 (writable shared
 *   mappings: logged so the replay can refuse files it cannot model), and
 *   fopen/fopen64 for writing (stdio writes are not visible here: logged as
 *   UNTRACKED so the replay fails loudly rather than model them wrong).
 *
 * The log: binary records, each appended with one writev() on an O_APPEND
 * descriptor while holding both a process mutex and flock() on the log, so
 * all processes share one total order.  The lock is held across the real
 * call and its record, so the order of records is the order in which the
 * calls took effect (a call that another process observed is logged before
 * anything that process did afterwards).  Only successful calls are
 * logged; a short write logs the bytes actually written.
 *
 * Record layout (little endian, see replay.py):
 *   u32 total, u16 op, u16 flags, i32 pid, i32 fd, i64 ret, u64 ino,
 *   u64 a, u64 b, u32 len(p1), u32 len(p2), p1, p2, payload
 */
/* The project builds with -D_FILE_OFFSET_BITS=64, which renames open() to
 * open64() and so on in the headers: this file defines both names itself. */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
  OP_OPEN = 1,
  OP_WRITE = 2,
  OP_TRUNC = 3,
  OP_FALLOC = 4,
  OP_RENAME = 5,
  OP_LINK = 6,
  OP_UNLINK = 7,
  OP_MKDIR = 8,
  OP_RMDIR = 9,
  OP_SYMLINK = 10,
  OP_FSYNC = 11,
  OP_SYNCFS = 12,
  OP_SYNC = 13,
  OP_SFR = 14,
  OP_MMAP = 15,
  OP_UNTRACKED = 16,
  OP_DROPPED = 17,
  OP_MARK = 100,
};

#define FD_MAX 65536

struct rec_hdr {
  uint32_t total;
  uint16_t op;
  uint16_t flags;
  int32_t pid;
  int32_t fd;
  int64_t ret;
  uint64_t ino;
  uint64_t a;
  uint64_t b;
  uint32_t p1len;
  uint32_t p2len;
} __attribute__((packed));

struct fdinfo {
  uint64_t dev, ino;
  char *path; /* relative to the root, as opened */
  int tracked;
  int isdir;
};

static struct fdinfo fds[FD_MAX];
static int active; /* PL_ROOT and PL_LOG set and the log open */
static int log_fd = -1;
static char log_path[PATH_MAX];
static char root[PATH_MAX];
static size_t root_len;
static dev_t root_dev;
static int root_dev_known;
static char drop_pat[PATH_MAX];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int init_done;

/* The real functions. */
#define REAL(ret, name, ...)                  \
  typedef ret (*name##_fn)(__VA_ARGS__);      \
  static name##_fn real_##name
REAL(int, open, const char *, int, ...);
REAL(int, open64, const char *, int, ...);
REAL(int, openat, int, const char *, int, ...);
REAL(int, openat64, int, const char *, int, ...);
REAL(int, __open_2, const char *, int);
REAL(int, __open64_2, const char *, int);
REAL(int, __openat_2, int, const char *, int);
REAL(int, __openat64_2, int, const char *, int);
REAL(int, creat, const char *, mode_t);
REAL(int, creat64, const char *, mode_t);
REAL(int, mkstemp, char *);
REAL(int, mkstemp64, char *);
REAL(int, mkostemp, char *, int);
REAL(int, mkostemp64, char *, int);
REAL(int, mkstemps, char *, int);
REAL(int, mkostemps, char *, int, int);
REAL(ssize_t, write, int, const void *, size_t);
REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
REAL(ssize_t, pwrite64, int, const void *, size_t, off64_t);
REAL(ssize_t, writev, int, const struct iovec *, int);
REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
REAL(ssize_t, pwritev64, int, const struct iovec *, int, off64_t);
REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int);
REAL(int, ftruncate, int, off_t);
REAL(int, ftruncate64, int, off64_t);
REAL(int, truncate, const char *, off_t);
REAL(int, truncate64, const char *, off64_t);
REAL(int, fallocate, int, int, off_t, off_t);
REAL(int, fallocate64, int, int, off64_t, off64_t);
REAL(int, posix_fallocate, int, off_t, off_t);
REAL(int, posix_fallocate64, int, off64_t, off64_t);
REAL(int, rename, const char *, const char *);
REAL(int, renameat, int, const char *, int, const char *);
REAL(int, renameat2, int, const char *, int, const char *, unsigned);
REAL(int, link, const char *, const char *);
REAL(int, linkat, int, const char *, int, const char *, int);
REAL(int, unlink, const char *);
REAL(int, unlinkat, int, const char *, int);
REAL(int, remove, const char *);
REAL(int, mkdir, const char *, mode_t);
REAL(int, mkdirat, int, const char *, mode_t);
REAL(int, rmdir, const char *);
REAL(int, symlink, const char *, const char *);
REAL(int, symlinkat, const char *, int, const char *);
REAL(int, fsync, int);
REAL(int, fdatasync, int);
REAL(int, syncfs, int);
REAL(void, sync, void);
REAL(int, sync_file_range, int, off64_t, off64_t, unsigned);
REAL(int, close, int);
REAL(int, dup, int);
REAL(int, dup2, int, int);
REAL(int, dup3, int, int, int);
REAL(int, fcntl, int, int, ...);
REAL(int, fcntl64, int, int, ...);
REAL(void *, mmap, void *, size_t, int, int, int, off_t);
REAL(void *, mmap64, void *, size_t, int, int, int, off64_t);
REAL(FILE *, fopen, const char *, const char *);
REAL(FILE *, fopen64, const char *, const char *);

#define LOAD(name) real_##name = (name##_fn)dlsym(RTLD_NEXT, #name)

static void load_all(void) {
  LOAD(open); LOAD(open64); LOAD(openat); LOAD(openat64);
  LOAD(__open_2); LOAD(__open64_2); LOAD(__openat_2); LOAD(__openat64_2);
  LOAD(creat); LOAD(creat64);
  LOAD(mkstemp); LOAD(mkstemp64); LOAD(mkostemp); LOAD(mkostemp64);
  LOAD(mkstemps); LOAD(mkostemps);
  LOAD(write); LOAD(pwrite); LOAD(pwrite64); LOAD(writev); LOAD(pwritev);
  LOAD(pwritev64); LOAD(pwritev2);
  LOAD(ftruncate); LOAD(ftruncate64); LOAD(truncate); LOAD(truncate64);
  LOAD(fallocate); LOAD(fallocate64); LOAD(posix_fallocate);
  LOAD(posix_fallocate64);
  LOAD(rename); LOAD(renameat); LOAD(renameat2);
  LOAD(link); LOAD(linkat); LOAD(unlink); LOAD(unlinkat); LOAD(remove);
  LOAD(mkdir); LOAD(mkdirat); LOAD(rmdir); LOAD(symlink); LOAD(symlinkat);
  LOAD(fsync); LOAD(fdatasync); LOAD(syncfs); LOAD(sync);
  LOAD(sync_file_range);
  LOAD(close); LOAD(dup); LOAD(dup2); LOAD(dup3); LOAD(fcntl); LOAD(fcntl64);
  LOAD(mmap); LOAD(mmap64); LOAD(fopen); LOAD(fopen64);
}

static void open_log(void) {
  int (*o)(const char *, int, ...) = real_open64 ? real_open64 : real_open;
  log_fd = o(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  /* Keep it out of the range programs use, so that a program that closes
   * "all other fds" is the only way to lose it. */
  if (log_fd >= 0 && log_fd < 900) {
    int hi = real_fcntl(log_fd, F_DUPFD_CLOEXEC, 900);
    if (hi >= 0) {
      real_close(log_fd);
      log_fd = hi;
    }
  }
}

static void atfork_prepare(void) { pthread_mutex_lock(&mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&mu); }
static void atfork_child(void) {
  /* flock belongs to the open file description, shared with the parent:
   * the child needs its own to exclude the parent. */
  if (log_fd >= 0) {
    real_close(log_fd);
    log_fd = -1;
    open_log();
  }
  pthread_mutex_unlock(&mu);
}

extern char **environ;

static void init(void) {
  load_all();
  /* A sanitizer runtime may call an intercepted function before libc has
   * set up the environment: decide only once there is one. */
  if (!environ || !environ[0]) return;
  init_done = 1;
  const char *r = getenv("PL_ROOT"), *l = getenv("PL_LOG");
  const char *d = getenv("PL_DROP");
  if (!r || !l || r[0] != '/' || strlen(r) >= sizeof root - 1 ||
      strlen(l) >= sizeof log_path)
    return;
  snprintf(root, sizeof root, "%s", r);
  root_len = strlen(root);
  while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = 0;
  snprintf(log_path, sizeof log_path, "%s", l);
  if (d && strlen(d) < sizeof drop_pat) snprintf(drop_pat, sizeof drop_pat, "%s", d);
  open_log();
  if (log_fd < 0) return;
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  active = 1;
}

static void ensure_init(void) {
  if (init_done) return;
  pthread_mutex_lock(&init_mu);
  if (!init_done) init();
  pthread_mutex_unlock(&init_mu);
}

__attribute__((constructor)) static void ctor(void) { ensure_init(); }

/* ------------------------------------------------------------------ */
/* Paths                                                               */
/* ------------------------------------------------------------------ */

/* Collapse "//", "/./" and "/../" (lexically: the store has no symlinks). */
static void normalize(char *p) {
  char out[PATH_MAX];
  size_t o = 0;
  const char *s = p;
  while (*s) {
    while (*s == '/') s++;
    if (!*s) break;
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 1 && s[0] == '.') {
      /* skip */
    } else if (n == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && out[o - 1] != '/') o--;
      if (o > 0) o--;
    } else if (o + 1 + n < sizeof out) {
      out[o++] = '/';
      memcpy(out + o, s, n);
      o += n;
    }
    s += n;
  }
  if (o == 0) out[o++] = '/';
  out[o] = 0;
  memcpy(p, out, o + 1);
}

static int fd_dir_path(int dirfd, char *out, size_t cap) {
  if (dirfd == AT_FDCWD) return getcwd(out, cap) ? 0 : -1;
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
  ssize_t n = readlink(link, out, cap - 1);
  if (n < 0) return -1;
  out[n] = 0;
  return 0;
}

/* The path relative to the root ("" for the root itself) into rel, or -1
 * when `path` (relative to dirfd) is outside the root. */
static int rel_path(int dirfd, const char *path, char *rel, size_t cap) {
  if (!active || !path) return -1;
  char abs[PATH_MAX * 2];
  if (path[0] == '/') {
    snprintf(abs, sizeof abs, "%s", path);
  } else {
    char base[PATH_MAX];
    if (fd_dir_path(dirfd, base, sizeof base) != 0) return -1;
    snprintf(abs, sizeof abs, "%s/%s", base, path);
  }
  if (strlen(abs) >= PATH_MAX) return -1;
  normalize(abs);
  if (strncmp(abs, root, root_len) != 0) return -1;
  if (abs[root_len] == 0) {
    rel[0] = 0;
    return 0;
  }
  if (abs[root_len] != '/') return -1;
  snprintf(rel, cap, "%s", abs + root_len + 1);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The log                                                             */
/* ------------------------------------------------------------------ */
static void lock(void) {
  pthread_mutex_lock(&mu);
  if (log_fd >= 0) flock(log_fd, LOCK_EX);
}

static void unlock(void) {
  if (log_fd >= 0) flock(log_fd, LOCK_UN);
  pthread_mutex_unlock(&mu);
}

static void emit(uint16_t op, int fd, int64_t ret, uint64_t ino, uint64_t a,
                 uint64_t b, const char *p1, const char *p2,
                 const struct iovec *payload, int npay) {
  if (log_fd < 0) return;
  struct rec_hdr h;
  memset(&h, 0, sizeof h);
  h.op = op;
  h.pid = (int32_t)getpid();
  h.fd = fd;
  h.ret = ret;
  h.ino = ino;
  h.a = a;
  h.b = b;
  h.p1len = p1 ? (uint32_t)strlen(p1) : 0;
  h.p2len = p2 ? (uint32_t)strlen(p2) : 0;
  size_t total = sizeof h + h.p1len + h.p2len;
  for (int i = 0; i < npay; i++) total += payload[i].iov_len;
  h.total = (uint32_t)total;
  struct iovec stackv[16];
  struct iovec *v = stackv;
  int nv = 3 + npay;
  if (nv > 16) {
    v = malloc(sizeof *v * (size_t)nv);
    if (!v) abort(); /* a lost record would make the model lie */
  }
  v[0].iov_base = &h;
  v[0].iov_len = sizeof h;
  v[1].iov_base = (void *)(p1 ? p1 : "");
  v[1].iov_len = h.p1len;
  v[2].iov_base = (void *)(p2 ? p2 : "");
  v[2].iov_len = h.p2len;
  for (int i = 0; i < npay; i++) v[3 + i] = payload[i];
  /* Regular-file appends are written whole; loop anyway (never partial
   * in practice, and then only after a signal). */
  size_t done = 0;
  int first = 0;
  while (done < total) {
    ssize_t w = real_writev(log_fd, v + first, (nv - first) > 1024 ? 1024 : nv - first);
    if (w < 0) {
      if (errno == EINTR) continue;
      abort(); /* cannot record: the run is void */
    }
    done += (size_t)w;
    size_t k = (size_t)w;
    while (first < nv && k >= v[first].iov_len) {
      k -= v[first].iov_len;
      first++;
    }
    if (first < nv && k) {
      v[first].iov_base = (char *)v[first].iov_base + k;
      v[first].iov_len -= k;
    }
  }
  if (v != stackv) free(v);
}

/* ------------------------------------------------------------------ */
/* Descriptors                                                         */
/* ------------------------------------------------------------------ */
static void fd_forget(int fd) {
  if (fd < 0 || fd >= FD_MAX) return;
  free(fds[fd].path);
  memset(&fds[fd], 0, sizeof fds[fd]);
}

static void fd_track(int fd, const char *rel) {
  if (fd < 0 || fd >= FD_MAX) return;
  fd_forget(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  fds[fd].dev = st.st_dev;
  fds[fd].ino = st.st_ino;
  fds[fd].isdir = S_ISDIR(st.st_mode);
  fds[fd].path = strdup(rel);
  fds[fd].tracked = 1;
}

static void fd_copy(int from, int to) {
  if (to < 0 || to >= FD_MAX) return;
  fd_forget(to);
  if (from < 0 || from >= FD_MAX || !fds[from].tracked) return;
  fds[to] = fds[from];
  fds[to].path = strdup(fds[from].path ? fds[from].path : "");
}

static void learn_root_dev(void) {
  if (root_dev_known) return;
  struct stat st;
  if (stat(root, &st) == 0) {
    root_dev = st.st_dev;
    root_dev_known = 1;
    return;
  }
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", root);
  char *sl = strrchr(parent, '/');
  if (sl && sl != parent) *sl = 0;
  if (stat(parent, &st) == 0) root_dev = st.st_dev; /* not final */
}

/* Is fd one of ours?  Returns 1 and fills ino/isdir/path for a tracked fd
 * whose identity still matches; for an untracked regular file or directory
 * on the root's filesystem, looks at where it points: inside the root, the
 * fd is tracked from now on and *late is set. */
static int fd_lookup(int fd, uint64_t *ino, const char **path, int *late) {
  *late = 0;
  if (!active || fd < 0) return 0;
  struct stat st;
  if (fd < FD_MAX && fds[fd].tracked) {
    if (fstat(fd, &st) == 0 && st.st_dev == fds[fd].dev &&
        st.st_ino == fds[fd].ino) {
      *ino = fds[fd].ino;
      *path = fds[fd].path;
      return 1;
    }
    fd_forget(fd); /* closed behind our back (closedir, fclose) */
  }
  if (fstat(fd, &st) != 0) return 0;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return 0;
  learn_root_dev();
  if (st.st_dev != root_dev) return 0;
  char target[PATH_MAX], rel[PATH_MAX];
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = 0;
  if (rel_path(AT_FDCWD, target, rel, sizeof rel) != 0) return 0;
  if (fd >= FD_MAX) return 0;
  fd_track(fd, rel);
  *late = 1;
  *ino = fds[fd].ino;
  *path = fds[fd].path;
  return 1;
}

/* Cheap test without the lock: could fd be ours?  (A tracked fd, or a
 * regular file or directory on the root's filesystem.)  Sockets, pipes and
 * terminals -- most writes of s3d -- never take the lock. */
static int maybe_ours(int fd) {
  if (!active || fd < 0) return 0;
  if (fd < FD_MAX && fds[fd].tracked) return 1;
  struct stat st;
  if (fstat(fd, &st) != 0) return 0;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return 0;
  learn_root_dev();
  return st.st_dev == root_dev;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */
static int after_open(int fd, const char *rel, int flags, mode_t mode) {
  if (fd < 0) {
    return fd;
  }
  fd_track(fd, rel);
  if (fd < FD_MAX)
    emit(OP_OPEN, fd, fd, fds[fd].ino, (uint64_t)(unsigned)flags, mode, rel,
         NULL, NULL, 0);
  else
    emit(OP_UNTRACKED, fd, fd, 0, 0, 0, rel, "fd above the table", NULL, 0);
  return fd;
}

#define OPEN_BODY(CALL)                                              \
  ensure_init();                                                     \
  char rel[PATH_MAX];                                                \
  if (rel_path(dirfd, path, rel, sizeof rel) != 0) return CALL;      \
  lock();                                                            \
  int fd = CALL;                                                     \
  int e = errno;                                                     \
  after_open(fd, rel, flags, mode);                                  \
  unlock();                                                          \
  errno = e;                                                         \
  return fd;

static mode_t va_mode(int flags, va_list ap) {
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
    return (mode_t)va_arg(ap, int);
  return 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  int dirfd = AT_FDCWD;
  OPEN_BODY(real_open(path, flags, mode))
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  int dirfd = AT_FDCWD;
  OPEN_BODY(real_open64(path, flags, mode))
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  OPEN_BODY(real_openat(dirfd, path, flags, mode))
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  OPEN_BODY(real_openat64(dirfd, path, flags, mode))
}

int __open_2(const char *path, int flags) {
  int dirfd = AT_FDCWD;
  mode_t mode = 0;
  OPEN_BODY(real___open_2(path, flags))
}

int __open64_2(const char *path, int flags) {
  int dirfd = AT_FDCWD;
  mode_t mode = 0;
  OPEN_BODY(real___open64_2(path, flags))
}

int __openat_2(int dirfd, const char *path, int flags) {
  mode_t mode = 0;
  OPEN_BODY(real___openat_2(dirfd, path, flags))
}

int __openat64_2(int dirfd, const char *path, int flags) {
  mode_t mode = 0;
  OPEN_BODY(real___openat64_2(dirfd, path, flags))
}

int creat(const char *path, mode_t mode) {
  int dirfd = AT_FDCWD;
  int flags = O_CREAT | O_WRONLY | O_TRUNC;
  OPEN_BODY(real_creat(path, mode))
}

int creat64(const char *path, mode_t mode) {
  int dirfd = AT_FDCWD;
  int flags = O_CREAT | O_WRONLY | O_TRUNC;
  OPEN_BODY(real_creat64(path, mode))
}

/* mkstemp and friends open inside glibc (not through our open): record
 * the file they made afterwards, still under the lock. */
#define MKSTEMP_BODY(CALL)                                                 \
  ensure_init();                                                           \
  if (!active) return CALL;                                                \
  lock();                                                                  \
  int fd = CALL;                                                           \
  int e = errno;                                                           \
  char rel[PATH_MAX];                                                      \
  if (fd >= 0 && rel_path(AT_FDCWD, tmpl, rel, sizeof rel) == 0)           \
    after_open(fd, rel, O_RDWR | O_CREAT | O_EXCL, 0600);                  \
  unlock();                                                                \
  errno = e;                                                               \
  return fd;

int mkstemp(char *tmpl) { MKSTEMP_BODY(real_mkstemp(tmpl)) }
int mkstemp64(char *tmpl) { MKSTEMP_BODY(real_mkstemp64(tmpl)) }
int mkostemp(char *tmpl, int fl) { MKSTEMP_BODY(real_mkostemp(tmpl, fl)) }
int mkostemp64(char *tmpl, int fl) { MKSTEMP_BODY(real_mkostemp64(tmpl, fl)) }
int mkstemps(char *tmpl, int sl) { MKSTEMP_BODY(real_mkstemps(tmpl, sl)) }
int mkostemps(char *tmpl, int sl, int fl) {
  MKSTEMP_BODY(real_mkostemps(tmpl, sl, fl))
}

/* stdio writes bypass write(): a store file opened for writing with
 * fopen cannot be modelled, so say so in the log (the replay fails). */
static void fopen_check(const char *path, const char *mode) {
  char rel[PATH_MAX];
  if (!mode || (mode[0] == 'r' && !strchr(mode, '+'))) return;
  if (rel_path(AT_FDCWD, path, rel, sizeof rel) != 0) return;
  lock();
  emit(OP_UNTRACKED, -1, 0, 0, 0, 0, rel, "fopen for writing", NULL, 0);
  unlock();
}

FILE *fopen(const char *path, const char *mode) {
  ensure_init();
  fopen_check(path, mode);
  return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
  ensure_init();
  fopen_check(path, mode);
  return real_fopen64(path, mode);
}

/* ------------------------------------------------------------------ */
/* Data                                                                */
/* ------------------------------------------------------------------ */
static void log_write(int fd, uint64_t ino, const char *path, int late,
                      ssize_t n, uint64_t off, const struct iovec *iov,
                      int iovcnt) {
  if (late)
    emit(OP_UNTRACKED, fd, 0, ino, 0, 0, path, "write on an fd opened unseen",
         NULL, 0);
  /* The payload is the first n bytes of the vector. */
  struct iovec stackv[64];
  struct iovec *v = iovcnt <= 64 ? stackv : malloc(sizeof *v * (size_t)iovcnt);
  if (!v) abort();
  int nv = 0;
  size_t left = (size_t)n;
  for (int i = 0; i < iovcnt && left > 0; i++) {
    size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
    v[nv].iov_base = iov[i].iov_base;
    v[nv].iov_len = take;
    nv++;
    left -= take;
  }
  emit(OP_WRITE, fd, n, ino, off, (uint64_t)n, path, NULL, v, nv);
  if (v != stackv) free(v);
}

/* pos < 0: the write is at the descriptor's position (found afterwards:
 * the position moved by n, O_APPEND included). */
#define WRITE_BODY(CALL, POS, IOV, IOVCNT)                                 \
  ensure_init();                                                           \
  uint64_t ino;                                                            \
  const char *path;                                                        \
  int late;                                                                \
  if (!maybe_ours(fd)) return CALL;                                        \
  lock();                                                                  \
  if (!fd_lookup(fd, &ino, &path, &late)) {                                \
    unlock();                                                              \
    return CALL;                                                           \
  }                                                                        \
  ssize_t n = CALL;                                                        \
  int e = errno;                                                           \
  if (n > 0) {                                                             \
    int64_t pos = (POS);                                                   \
    if (pos < 0) pos = (int64_t)lseek(fd, 0, SEEK_CUR) - n;                \
    log_write(fd, ino, path, late, n, (uint64_t)pos, IOV, IOVCNT);         \
  }                                                                        \
  unlock();                                                                \
  errno = e;                                                               \
  return n;

ssize_t write(int fd, const void *buf, size_t count) {
  struct iovec one = {(void *)buf, count};
  WRITE_BODY(real_write(fd, buf, count), -1, &one, 1)
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
  struct iovec one = {(void *)buf, count};
  WRITE_BODY(real_pwrite(fd, buf, count, off), off, &one, 1)
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off) {
  struct iovec one = {(void *)buf, count};
  WRITE_BODY(real_pwrite64(fd, buf, count, off), off, &one, 1)
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  WRITE_BODY(real_writev(fd, iov, iovcnt), -1, iov, iovcnt)
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  WRITE_BODY(real_pwritev(fd, iov, iovcnt, off), off, iov, iovcnt)
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off) {
  WRITE_BODY(real_pwritev64(fd, iov, iovcnt, off), off, iov, iovcnt)
}

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off,
                 int fl) {
  WRITE_BODY(real_pwritev2(fd, iov, iovcnt, off, fl), off, iov, iovcnt)
}

#define FD_OP_BODY(CALL, RECORD)                                           \
  ensure_init();                                                           \
  uint64_t ino;                                                            \
  const char *path;                                                        \
  int late;                                                                \
  if (!maybe_ours(fd)) return CALL;                                        \
  lock();                                                                  \
  if (!fd_lookup(fd, &ino, &path, &late)) {                                \
    unlock();                                                              \
    return CALL;                                                           \
  }                                                                        \
  int r = CALL;                                                            \
  int e = errno;                                                           \
  if (r == 0) {                                                            \
    RECORD;                                                                \
  }                                                                        \
  unlock();                                                                \
  errno = e;                                                               \
  return r;

int ftruncate(int fd, off_t len) {
  FD_OP_BODY(real_ftruncate(fd, len),
             emit(OP_TRUNC, fd, 0, ino, 0, (uint64_t)len, path, NULL, NULL, 0))
}

int ftruncate64(int fd, off64_t len) {
  FD_OP_BODY(real_ftruncate64(fd, len),
             emit(OP_TRUNC, fd, 0, ino, 0, (uint64_t)len, path, NULL, NULL, 0))
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  FD_OP_BODY(real_fallocate(fd, mode, off, len),
             emit(OP_FALLOC, fd, mode, ino, (uint64_t)off, (uint64_t)len, path,
                  NULL, NULL, 0))
}

int fallocate64(int fd, int mode, off64_t off, off64_t len) {
  FD_OP_BODY(real_fallocate64(fd, mode, off, len),
             emit(OP_FALLOC, fd, mode, ino, (uint64_t)off, (uint64_t)len, path,
                  NULL, NULL, 0))
}

/* posix_fallocate returns the error number instead of setting errno. */
int posix_fallocate(int fd, off_t off, off_t len) {
  FD_OP_BODY(real_posix_fallocate(fd, off, len),
             emit(OP_FALLOC, fd, 0, ino, (uint64_t)off, (uint64_t)len, path,
                  NULL, NULL, 0))
}

int posix_fallocate64(int fd, off64_t off, off64_t len) {
  FD_OP_BODY(real_posix_fallocate64(fd, off, len),
             emit(OP_FALLOC, fd, 0, ino, (uint64_t)off, (uint64_t)len, path,
                  NULL, NULL, 0))
}

static int path_trunc(const char *p, off64_t len,
                      int (*call)(const char *, off64_t)) {
  ensure_init();
  char rel[PATH_MAX];
  if (rel_path(AT_FDCWD, p, rel, sizeof rel) != 0) return call(p, len);
  lock();
  int r = call(p, len);
  int e = errno;
  if (r == 0) {
    struct stat st;
    uint64_t ino = stat(p, &st) == 0 ? st.st_ino : 0;
    emit(OP_TRUNC, -1, 0, ino, 0, (uint64_t)len, rel, NULL, NULL, 0);
  }
  unlock();
  errno = e;
  return r;
}

static int t32(const char *p, off64_t l) { return real_truncate(p, (off_t)l); }
static int t64(const char *p, off64_t l) { return real_truncate64(p, l); }
int truncate(const char *p, off_t len) { return path_trunc(p, len, t32); }
int truncate64(const char *p, off64_t len) { return path_trunc(p, len, t64); }

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */
/* Two-path calls: logged when either side is inside the root; one side
 * outside is recorded as UNTRACKED (the replay cannot model it). */
static int two_paths(uint16_t op, int in1, const char *r1, int in2,
                     const char *r2, uint64_t flags, int r) {
  if (r != 0 || (!in1 && !in2)) return 0;
  if (in1 && in2)
    emit(op, -1, 0, 0, flags, 0, r1, r2, NULL, 0);
  else
    emit(OP_UNTRACKED, -1, 0, 0, op, 0, in1 ? r1 : r2,
         "rename/link across the root's boundary", NULL, 0);
  return 1;
}

#define TWO_BODY(OP, D1, A, D2, B, FLAGS, CALL)                              \
  ensure_init();                                                           \
  if (!active) return CALL;                                                \
  /* Paths are resolved before the call changes anything. */              \
  char c1[PATH_MAX], c2[PATH_MAX];                                         \
  int in1 = rel_path(D1, A, c1, sizeof c1) == 0;                           \
  int in2 = rel_path(D2, B, c2, sizeof c2) == 0;                           \
  if (!in1 && !in2) return CALL;                                           \
  lock();                                                                  \
  int r = CALL;                                                            \
  int e = errno;                                                           \
  two_paths(OP, in1, c1, in2, c2, FLAGS, r);                               \
  unlock();                                                                \
  errno = e;                                                               \
  return r;

int rename(const char *a, const char *b) {
  TWO_BODY(OP_RENAME, AT_FDCWD, a, AT_FDCWD, b, 0, real_rename(a, b))
}

int renameat(int d1, const char *a, int d2, const char *b) {
  TWO_BODY(OP_RENAME, d1, a, d2, b, 0, real_renameat(d1, a, d2, b))
}

int renameat2(int d1, const char *a, int d2, const char *b, unsigned fl) {
  TWO_BODY(OP_RENAME, d1, a, d2, b, fl, real_renameat2(d1, a, d2, b, fl))
}

int link(const char *a, const char *b) {
  TWO_BODY(OP_LINK, AT_FDCWD, a, AT_FDCWD, b, 0, real_link(a, b))
}

int linkat(int d1, const char *a, int d2, const char *b, int fl) {
  TWO_BODY(OP_LINK, d1, a, d2, b, (uint64_t)fl, real_linkat(d1, a, d2, b, fl))
}

#define ONE_BODY(OP, D, P, A, CALL)                                          \
  ensure_init();                                                           \
  char rel[PATH_MAX];                                                      \
  if (rel_path(D, P, rel, sizeof rel) != 0) return CALL;                   \
  lock();                                                                  \
  int r = CALL;                                                            \
  int e = errno;                                                           \
  if (r == 0) emit(OP, -1, 0, 0, (uint64_t)(A), 0, rel, NULL, NULL, 0);    \
  unlock();                                                                \
  errno = e;                                                               \
  return r;

int unlink(const char *p) { ONE_BODY(OP_UNLINK, AT_FDCWD, p, 0, real_unlink(p)) }

int unlinkat(int d, const char *p, int fl) {
  ONE_BODY((fl & AT_REMOVEDIR) ? OP_RMDIR : OP_UNLINK, d, p, 0,
           real_unlinkat(d, p, fl))
}

int remove(const char *p) {
  /* glibc's remove() calls unlink/rmdir internally, past our symbols. */
  ensure_init();
  char rel[PATH_MAX];
  if (rel_path(AT_FDCWD, p, rel, sizeof rel) != 0) return real_remove(p);
  lock();
  struct stat st;
  int isdir = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
  int r = real_remove(p);
  int e = errno;
  if (r == 0) emit(isdir ? OP_RMDIR : OP_UNLINK, -1, 0, 0, 0, 0, rel, NULL, NULL, 0);
  unlock();
  errno = e;
  return r;
}

int mkdir(const char *p, mode_t m) { ONE_BODY(OP_MKDIR, AT_FDCWD, p, m, real_mkdir(p, m)) }

int mkdirat(int d, const char *p, mode_t m) {
  ONE_BODY(OP_MKDIR, d, p, m, real_mkdirat(d, p, m))
}

int rmdir(const char *p) { ONE_BODY(OP_RMDIR, AT_FDCWD, p, 0, real_rmdir(p)) }

int symlink(const char *target, const char *p) {
  ensure_init();
  char rel[PATH_MAX];
  if (rel_path(AT_FDCWD, p, rel, sizeof rel) != 0) return real_symlink(target, p);
  lock();
  int r = real_symlink(target, p);
  int e = errno;
  if (r == 0) emit(OP_SYMLINK, -1, 0, 0, 0, 0, rel, target, NULL, 0);
  unlock();
  errno = e;
  return r;
}

int symlinkat(const char *target, int d, const char *p) {
  ensure_init();
  char rel[PATH_MAX];
  if (rel_path(d, p, rel, sizeof rel) != 0) return real_symlinkat(target, d, p);
  lock();
  int r = real_symlinkat(target, d, p);
  int e = errno;
  if (r == 0) emit(OP_SYMLINK, -1, 0, 0, 0, 0, rel, target, NULL, 0);
  unlock();
  errno = e;
  return r;
}

/* ------------------------------------------------------------------ */
/* Durability points                                                   */
/* ------------------------------------------------------------------ */
static int dropped(const char *path) {
  return drop_pat[0] && path && fnmatch(drop_pat, path, 0) == 0;
}

static int sync_common(int fd, int data_only) {
  ensure_init();
  uint64_t ino;
  const char *path;
  int late;
  int (*call)(int) = data_only ? real_fdatasync : real_fsync;
  if (!maybe_ours(fd)) return call(fd);
  lock();
  if (!fd_lookup(fd, &ino, &path, &late)) {
    unlock();
    return call(fd);
  }
  if (dropped(path)) {
    /* The negative control: a sync that never happens.  Logged as a
     * no-op marker only, so a reader of the log can see it was skipped. */
    emit(OP_DROPPED, fd, 0, ino, (uint64_t)data_only, 0, path, NULL, NULL, 0);
    unlock();
    return 0;
  }
  int r = call(fd);
  int e = errno;
  if (r == 0)
    emit(OP_FSYNC, fd, 0, ino, (uint64_t)data_only,
         (uint64_t)(fd < FD_MAX ? fds[fd].isdir : 0), path, NULL, NULL, 0);
  unlock();
  errno = e;
  return r;
}

int fsync(int fd) { return sync_common(fd, 0); }
int fdatasync(int fd) { return sync_common(fd, 1); }

int syncfs(int fd) {
  ensure_init();
  if (!active) return real_syncfs(fd);
  lock();
  int r = real_syncfs(fd);
  int e = errno;
  struct stat st;
  learn_root_dev();
  if (r == 0 && fstat(fd, &st) == 0 && st.st_dev == root_dev)
    emit(OP_SYNCFS, fd, 0, 0, 0, 0, NULL, NULL, NULL, 0);
  unlock();
  errno = e;
  return r;
}

void sync(void) {
  ensure_init();
  if (!active) {
    real_sync();
    return;
  }
  lock();
  real_sync();
  emit(OP_SYNC, -1, 0, 0, 0, 0, NULL, NULL, NULL, 0);
  unlock();
}

/* Starts writeback; guarantees nothing (not a durability point). */
int sync_file_range(int fd, off64_t off, off64_t n, unsigned fl) {
  FD_OP_BODY(real_sync_file_range(fd, off, n, fl),
             emit(OP_SFR, fd, 0, ino, (uint64_t)off, (uint64_t)n, path, NULL,
                  NULL, 0))
}

/* ------------------------------------------------------------------ */
/* Descriptor bookkeeping                                              */
/* ------------------------------------------------------------------ */
int close(int fd) {
  ensure_init();
  if (active && fd >= 0 && fd < FD_MAX && fds[fd].tracked) {
    lock();
    fd_forget(fd);
    int r = real_close(fd);
    int e = errno;
    unlock();
    errno = e;
    return r;
  }
  return real_close(fd);
}

int dup(int fd) {
  ensure_init();
  int r = real_dup(fd);
  if (active && r >= 0) {
    lock();
    fd_copy(fd, r);
    unlock();
  }
  return r;
}

int dup2(int fd, int to) {
  ensure_init();
  int r = real_dup2(fd, to);
  if (active && r >= 0 && fd != to) {
    lock();
    fd_copy(fd, r);
    unlock();
  }
  return r;
}

int dup3(int fd, int to, int fl) {
  ensure_init();
  int r = real_dup3(fd, to, fl);
  if (active && r >= 0) {
    lock();
    fd_copy(fd, r);
    unlock();
  }
  return r;
}

static int fcntl_common(int (*call)(int, int, ...), int fd, int cmd,
                        va_list ap) {
  /* Every fcntl command takes at most one argument, an int or a pointer;
   * pass it on as a pointer-sized value. */
  void *arg = va_arg(ap, void *);
  int r = call(fd, cmd, arg);
  if (active && r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
    int e = errno;
    lock();
    fd_copy(fd, r);
    unlock();
    errno = e;
  }
  return r;
}

int fcntl(int fd, int cmd, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_common(real_fcntl, fd, cmd, ap);
  va_end(ap);
  return r;
}

int fcntl64(int fd, int cmd, ...) {
  ensure_init();
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_common(real_fcntl64 ? real_fcntl64 : real_fcntl, fd, cmd, ap);
  va_end(ap);
  return r;
}

static void mmap_check(int fd, int prot, int flags) {
  uint64_t ino;
  const char *path;
  int late;
  if (!(prot & PROT_WRITE) || !(flags & MAP_SHARED) || !maybe_ours(fd))
    return;
  lock();
  if (fd_lookup(fd, &ino, &path, &late))
    emit(OP_MMAP, fd, 0, ino, (uint64_t)prot, (uint64_t)flags, path, NULL,
         NULL, 0);
  unlock();
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  ensure_init();
  mmap_check(fd, prot, flags);
  return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
             off64_t off) {
  ensure_init();
  mmap_check(fd, prot, flags);
  return real_mmap64(addr, len, prot, flags, fd, off);
}
