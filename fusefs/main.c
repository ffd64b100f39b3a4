/*
 * main.c -- fusefs: mount a store (or one bucket of it) as a filesystem.
 *
 *   fusefs --store DIR [--bucket B[/PREFIX]] MOUNTPOINT [-f] [-o OPTIONS]
 *   fusefs DIR MOUNTPOINT -o OPTIONS          (the form mount(8) uses)
 *
 * Parses the command line, opens the store, mounts, becomes a daemon
 * unless -f, and runs libfuse's multi-threaded session loop until the
 * filesystem is unmounted or a SIGTERM/SIGINT/SIGHUP arrives (then it
 * commits pending writes and unmounts cleanly).
 *
 * Exit status: 0 after a clean unmount, 2 on a usage error, 1 on any other
 * failure with one line on stderr.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fusefs.h"

struct fs *FS;
static struct fs the_fs;

void fs_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (FS && !FS->foreground) {
    vsyslog(LOG_ERR, fmt, ap);
  } else {
    fputs("fusefs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  }
  va_end(ap);
}

static void usage(FILE *f) {
  fprintf(f,
    "Usage: fusefs --store DIR [--bucket BUCKET[/PREFIX]] MOUNTPOINT [-f] [-o OPTIONS]\n"
    "       fusefs DIR MOUNTPOINT [-o OPTIONS]        (mount(8) / fstab form)\n"
    "\n"
    "Mount a store: top-level directories are buckets (mkdir/rmdir there\n"
    "creates/deletes a bucket).  With --bucket, mount one bucket, optionally\n"
    "only the keys below PREFIX/.\n"
    "\n"
    "  --store DIR           the store directory (or -o store=DIR)\n"
    "  --bucket B[/PREFIX]   mount one bucket (or -o bucket=B[/PREFIX])\n"
    "  -f                    stay in the foreground\n"
    "  -d                    foreground, with libfuse debug output\n"
    "  -s                    single-threaded\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n"
    "\n"
    "Options (-o, comma-separated):\n"
    "  ro, rw                read-only or read-write mount (default rw)\n"
    "  allow_other           let other users in (needs user_allow_other in\n"
    "                        /etc/fuse.conf unless root), allow_root\n"
    "  default_permissions   the kernel checks mode bits (the default);\n"
    "  no_default_permissions  turn that off\n"
    "  uid=N, gid=N          owner of objects without uid/gid metadata\n"
    "                        (default: the mounting user)\n"
    "  umask=OCTAL           mode of objects without mode metadata (022)\n"
    "  attr_timeout=SECS     kernel attribute cache (default 1)\n"
    "  entry_timeout=SECS    kernel name cache (default 1)\n"
    "  poll_ms=MS            change-feed poll interval (default 200, 0 off)\n"
    "  durability=full|process  fsync policy of commits (default full)\n"
    "  busy_timeout=MS       wait for another process's catalog lock\n"
    "  readahead_kb=N        kernel readahead of the mount (default 1024;\n"
    "                        0 leaves the kernel's 128)\n"
    "  verify=on|off         hash every chunk read against its id (default\n"
    "                        on; off: faster small random reads, damage is\n"
    "                        then found by storectl fsck, not by reads)\n"
    "  fsname=, subtype=, auto_unmount, max_threads=N, and the generic mount\n"
    "  options (dev, suid, exec, noatime, ...)\n"
    "\n"
    "Unmount with: fusermount3 -u MOUNTPOINT (or SIGTERM to the process).\n");
}

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fusefs: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  return 2;
}

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fusefs: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

/* Options handed to libfuse's mount ("-o a,b,c"). */
struct optbuf {
  char s[4096];
  size_t n;
};

static int opt_add(struct optbuf *b, const char *o) {
  size_t l = strlen(o);
  if (b->n + l + 2 >= sizeof b->s) return -1;
  if (b->n) b->s[b->n++] = ',';
  memcpy(b->s + b->n, o, l + 1);
  b->n += l;
  return 0;
}

struct settings {
  const char *store_dir;
  const char *bucket_arg;
  const char *mountpoint;
  const char *fsname;
  int default_permissions;
  int single_thread;
  unsigned max_threads;
  int durability;
  uint32_t busy_timeout;
  int no_verify;
  struct optbuf fuse_opts;
};

static int parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < 0) return -1;
  *out = v;
  return 0;
}

static int parse_ulong(const char *s, int base, unsigned long max,
                       unsigned long *out) {
  char *end;
  errno = 0;
  if (*s == '-') return -1;
  unsigned long v = strtoul(s, &end, base);
  if (errno || end == s || *end || v > max) return -1;
  *out = v;
  return 0;
}

/* Generic mount options passed through to the kernel. */
static const char *const pass_opts[] = {
    "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime",
    "relatime", "norelatime", "strictatime", "nostrictatime", "diratime",
    "nodiratime", "lazytime", "nolazytime", "sync", "async", "dirsync",
    "allow_other", "allow_root", "auto_unmount", NULL};
/* Options mount(8) or fstab may hand us that mean nothing here. */
static const char *const ignored_opts[] = {
    "defaults", "_netdev", "nofail", "auto", "noauto", "user", "nouser",
    "users", "owner", "group", "comment", NULL};

static int in_list(const char *const *l, const char *o) {
  for (; *l; l++)
    if (!strcmp(*l, o)) return 1;
  return 0;
}

static int parse_one_opt(struct settings *set, char *o) {
  char *v = strchr(o, '=');
  if (v) *v++ = '\0';
  unsigned long u;
#define NEED_VALUE \
  if (!v || !*v) return usage_error("option %s needs a value", o)
  if (!*o) return 0;
  if (!strcmp(o, "store")) {
    NEED_VALUE;
    set->store_dir = v;
  } else if (!strcmp(o, "bucket")) {
    NEED_VALUE;
    set->bucket_arg = v;
  } else if (!strcmp(o, "ro")) {
    FS->read_only = 1;
  } else if (!strcmp(o, "rw")) {
    FS->read_only = 0;
  } else if (!strcmp(o, "default_permissions")) {
    set->default_permissions = 1;
  } else if (!strcmp(o, "no_default_permissions")) {
    set->default_permissions = 0;
  } else if (!strcmp(o, "uid")) {
    NEED_VALUE;
    if (parse_ulong(v, 10, UINT32_MAX - 1, &u)) return usage_error("bad uid=%s", v);
    FS->uid = (uid_t)u;
  } else if (!strcmp(o, "gid")) {
    NEED_VALUE;
    if (parse_ulong(v, 10, UINT32_MAX - 1, &u)) return usage_error("bad gid=%s", v);
    FS->gid = (gid_t)u;
  } else if (!strcmp(o, "umask")) {
    NEED_VALUE;
    if (parse_ulong(v, 8, 0777, &u)) return usage_error("bad umask=%s", v);
    FS->umask = (mode_t)u;
  } else if (!strcmp(o, "attr_timeout")) {
    NEED_VALUE;
    if (parse_double(v, &FS->attr_timeout)) return usage_error("bad attr_timeout=%s", v);
  } else if (!strcmp(o, "entry_timeout")) {
    NEED_VALUE;
    if (parse_double(v, &FS->entry_timeout)) return usage_error("bad entry_timeout=%s", v);
  } else if (!strcmp(o, "poll_ms")) {
    NEED_VALUE;
    if (parse_ulong(v, 10, 60000, &u)) return usage_error("bad poll_ms=%s", v);
    FS->poll_ms = (unsigned)u;
  } else if (!strcmp(o, "max_threads")) {
    NEED_VALUE;
    if (parse_ulong(v, 10, 1024, &u) || u == 0) return usage_error("bad max_threads=%s", v);
    set->max_threads = (unsigned)u;
  } else if (!strcmp(o, "readahead_kb")) {
    NEED_VALUE;
    if (parse_ulong(v, 10, 65536, &u)) return usage_error("bad readahead_kb=%s", v);
    FS->readahead_kb = (unsigned)u;
  } else if (!strcmp(o, "verify")) {
    NEED_VALUE;
    if (!strcmp(v, "on")) set->no_verify = 0;
    else if (!strcmp(v, "off")) set->no_verify = 1;
    else return usage_error("bad verify=%s (on or off)", v);
  } else if (!strcmp(o, "busy_timeout")) {
    NEED_VALUE;
    if (parse_ulong(v, 10, 3600000, &u) || u == 0) return usage_error("bad busy_timeout=%s", v);
    set->busy_timeout = (uint32_t)u;
  } else if (!strcmp(o, "durability")) {
    NEED_VALUE;
    if (!strcmp(v, "full")) set->durability = STORE_DURABLE_FULL;
    else if (!strcmp(v, "process")) set->durability = STORE_DURABLE_PROCESS;
    else return usage_error("bad durability=%s (full or process)", v);
  } else if (!strcmp(o, "fsname")) {
    NEED_VALUE;
    set->fsname = v;
  } else if (!strcmp(o, "subtype") || !strcmp(o, "max_read")) {
    NEED_VALUE;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s=%s", o, v);
    if (opt_add(&set->fuse_opts, tmp)) return usage_error("too many options");
  } else if (in_list(pass_opts, o)) {
    if (v) return usage_error("option %s takes no value", o);
    if (opt_add(&set->fuse_opts, o)) return usage_error("too many options");
  } else if (in_list(ignored_opts, o) || !strncmp(o, "x-", 2)) {
    /* fstab-only */
  } else {
    return usage_error("unknown option '%s'", o);
  }
  return 0;
#undef NEED_VALUE
}

/* Copies of -o lists: option values point into them until exit. */
static char *opt_copies[64];
static size_t n_opt_copies;

static void free_opt_copies(void) {
  while (n_opt_copies) free(opt_copies[--n_opt_copies]);
}

static int parse_opts(struct settings *set, const char *list) {
  if (n_opt_copies == sizeof opt_copies / sizeof opt_copies[0])
    return usage_error("too many -o options");
  char *copy = strdup(list), *save = NULL;
  if (!copy) return fail("out of memory");
  opt_copies[n_opt_copies++] = copy;
  int rc = 0;
  for (char *o = strtok_r(copy, ",", &save); o && !rc;
       o = strtok_r(NULL, ",", &save))
    rc = parse_one_opt(set, o);
  /* Values point into copy: keep it for the process's life. */
  return rc;
}

/* Parse argv into set and FS.  Returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, struct settings *set) {
  const char *pos[2];
  int npos = 0, only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || !a[1]) {
      if (npos == 2) return usage_error("unexpected argument '%s'", a);
      pos[npos++] = a;
    } else if (!strcmp(a, "--")) {
      only_pos = 1;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
      printf("fusefs %s (libstore %s, libfuse %s)\n", STORE_VERSION,
             STORE_VERSION, fuse_pkgversion());
      return 0;
    } else if (!strcmp(a, "-f")) {
      FS->foreground = 1;
    } else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
      FS->foreground = 1;
      FS->debug = 1;
    } else if (!strcmp(a, "-s")) {
      set->single_thread = 1;
    } else if (!strcmp(a, "--store") || !strcmp(a, "--bucket") ||
               !strcmp(a, "-o")) {
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--store")) set->store_dir = v;
      else if (!strcmp(a, "--bucket")) set->bucket_arg = v;
      else {
        int rc = parse_opts(set, v);
        if (rc) return rc;
      }
    } else if (!strncmp(a, "--store=", 8)) {
      set->store_dir = a + 8;
    } else if (!strncmp(a, "--bucket=", 9)) {
      set->bucket_arg = a + 9;
    } else if (!strncmp(a, "-o", 2)) {
      int rc = parse_opts(set, a + 2);
      if (rc) return rc;
    } else {
      return usage_error("unknown option '%s'", a);
    }
  }
  if (npos == 2) {
    if (set->store_dir) return usage_error("the store is given twice");
    set->store_dir = pos[0];
    set->mountpoint = pos[1];
  } else if (npos == 1) {
    set->mountpoint = pos[0];
  } else {
    return usage_error("no mountpoint given");
  }
  if (!set->store_dir) set->store_dir = getenv("STORE_DIR");
  if (!set->store_dir || !*set->store_dir)
    return usage_error("no store given (--store DIR)");
  if (set->bucket_arg) {
    const char *b = set->bucket_arg;
    const char *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl == 0 || bl > STORE_BUCKET_NAME_MAX)
      return usage_error("bad bucket '%s'", b);
    FS->bucket = strndup(b, bl);
    /* The prefix, normalised to "" or "a/b/" (no empty components). */
    const char *p = slash ? slash + 1 : "";
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/') pl--;
    if (pl && (strstr(p, "//") || p[0] == '/'))
      return usage_error("bad prefix in '%s'", b);
    FS->prefix = malloc(pl + 2);
    if (!FS->bucket || !FS->prefix) return fail("out of memory");
    memcpy(FS->prefix, p, pl);
    if (pl) FS->prefix[pl++] = '/';
    FS->prefix[pl] = '\0';
    if (pl > STORE_KEY_MAX) return usage_error("prefix too long");
  } else {
    FS->prefix = strdup("");
  }
  return -1;
}

/* The "MAJ:MIN" of the last mount at `mnt` (absolute) into out ("" if
 * none), from mountinfo: touches no file of the mount itself, so it works
 * on a mount whose daemon is dead or stuck. */
void fs_mount_dev(const char *mnt, char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return;
  char line[8192];
  while (fgets(line, sizeof line, f)) {
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... (octal escapes in paths) */
    char *save = NULL, *tok[5];
    int n = 0;
    for (char *t = strtok_r(line, " ", &save); t && n < 5;
         t = strtok_r(NULL, " ", &save))
      tok[n++] = t;
    if (n < 5) continue;
    char path[4096];
    size_t o = 0;
    for (const char *c = tok[4]; *c && o + 1 < sizeof path; c++) {
      if (c[0] == '\\' && c[1] >= '0' && c[1] <= '3' && c[2] >= '0' &&
          c[2] <= '7' && c[3] >= '0' && c[3] <= '7') {
        path[o++] = (char)((c[1] - '0') * 64 + (c[2] - '0') * 8 + (c[3] - '0'));
        c += 3;
      } else {
        path[o++] = *c;
      }
    }
    path[o] = '\0';
    if (!strcmp(path, mnt)) snprintf(out, cap, "%s", tok[2]);
  }
  fclose(f);
}

static pthread_once_t readahead_once = PTHREAD_ONCE_INIT;

static void readahead_apply(void) {
  if (!FS->readahead_kb || !FS->bdi[0]) return;
  char path[96];
  snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", FS->bdi);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return; /* not root, or no sysfs: the kernel's default stays */
  char v[16];
  int n = snprintf(v, sizeof v, "%u", FS->readahead_kb);
  if (write(fd, v, (size_t)n) != n)
    fs_log("cannot set %s: %s", path, strerror(errno));
  close(fd);
}

void fs_readahead_once(void) { pthread_once(&readahead_once, readahead_apply); }

static void free_globals(void) {
  free(the_fs.bucket);
  free(the_fs.prefix);
  free(the_fs.store_dir);
  the_fs.bucket = the_fs.prefix = the_fs.store_dir = NULL;
}

static int open_store(const struct settings *set, store **out) {
  store_config cfg = {.read_only = FS->read_only,
                      .durability = set->durability,
                      .busy_timeout_ms = set->busy_timeout,
                      .skip_read_verify = set->no_verify};
  return store_open(FS->store_dir, &cfg, out);
}

int main(int argc, char **argv) {
  FS = &the_fs;
  FS->uid = getuid();
  FS->gid = getgid();
  FS->umask = 022;
  FS->attr_timeout = 1.0;
  FS->entry_timeout = 1.0;
  FS->poll_ms = 200;
  FS->readahead_kb = 1024;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  FS->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  /* A directory rename must not starve behind a stream of writes. */
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&FS->ns_lock, &ra);
  pthread_rwlockattr_destroy(&ra);

  struct settings set = {.default_permissions = 1, .max_threads = 16};
  atexit(free_opt_copies);
  atexit(free_globals);
  int rc = parse_args(argc, argv, &set);
  if (rc >= 0) return rc;

  /* Check everything we can before mounting, while stderr is ours. */
  char *dir = realpath(set.store_dir, NULL);
  if (!dir) return fail("%s: %s", set.store_dir, strerror(errno));
  FS->store_dir = dir;
  char *mnt = realpath(set.mountpoint, NULL);
  struct stat st;
  if (!mnt || stat(mnt, &st) != 0) {
    rc = fail("%s: %s", set.mountpoint, strerror(errno));
    free(mnt);
    return rc;
  }
  if (!S_ISDIR(st.st_mode)) {
    free(mnt);
    return fail("%s: %s", set.mountpoint, strerror(ENOTDIR));
  }
  rc = open_store(&set, &FS->st);
  if (rc) {
    free(mnt);
    return fail("%s: %s: %s", dir, store_strerror(rc), store_errmsg());
  }
  if (FS->bucket) {
    store_bucket_info bi;
    rc = store_bucket_head(FS->st, FS->bucket, &bi);
    if (rc) {
      fail("bucket %s: %s: %s", FS->bucket, store_strerror(rc), store_errmsg());
      store_close(FS->st);
      free(mnt);
      return 1;
    }
  }
  store_changes_head(FS->st, &FS->feed_seq);
  if (!FS->foreground) { /* reopened in the daemon: no SQLite across fork */
    store_close(FS->st);
    FS->st = NULL;
  }

  /* libfuse's own arguments: the mount options. */
  char fsname[PATH_MAX + 16];
  snprintf(fsname, sizeof fsname, "fsname=%s", set.fsname ? set.fsname : dir);
  for (char *p = fsname; *p; p++)
    if (*p == ',') *p = '_';
  struct optbuf mo = set.fuse_opts;
  if (opt_add(&mo, fsname) ||
      (!strstr(mo.s, "subtype=") && opt_add(&mo, "subtype=fusefs")) ||
      (set.default_permissions && opt_add(&mo, "default_permissions")) ||
      (FS->read_only && opt_add(&mo, "ro"))) {
    if (FS->st) store_close(FS->st);
    free(mnt);
    return fail("too many options");
  }
  char *fargv[5];
  int fargc = 0;
  fargv[fargc++] = argv[0];
  fargv[fargc++] = "-o";
  fargv[fargc++] = mo.s;
  if (FS->debug) fargv[fargc++] = "-d";
  fargv[fargc] = NULL;
  struct fuse_args args = FUSE_ARGS_INIT(fargc, fargv);

  nodes_init();
  FS->se = fuse_session_new(&args, &fusefs_ops, sizeof fusefs_ops, NULL);
  fuse_opt_free_args(&args);
  if (!FS->se) {
    if (FS->st) store_close(FS->st);
    nodes_shutdown();
    free(mnt);
    return fail("cannot create the FUSE session (options: %s)", mo.s);
  }
  if (fuse_set_signal_handlers(FS->se) != 0) {
    fuse_session_destroy(FS->se);
    if (FS->st) store_close(FS->st);
    nodes_shutdown();
    free(mnt);
    return fail("cannot install signal handlers");
  }
  if (fuse_session_mount(FS->se, mnt) != 0) {
    fuse_remove_signal_handlers(FS->se);
    fuse_session_destroy(FS->se);
    if (FS->st) store_close(FS->st);
    nodes_shutdown();
    rc = fail("%s: mount failed", mnt);
    free(mnt);
    return rc;
  }
  fs_mount_dev(mnt, FS->bdi, sizeof FS->bdi);
  snprintf(FS->mnt, sizeof FS->mnt, "%s", mnt);
  fuse_daemonize(FS->foreground);
  if (!FS->st) {
    rc = open_store(&set, &FS->st);
    if (rc) {
      fs_log("%s: %s: %s", dir, store_strerror(rc), store_errmsg());
      fuse_session_unmount(FS->se);
      fuse_remove_signal_handlers(FS->se);
      fuse_session_destroy(FS->se);
      nodes_shutdown();
      free(mnt);
      return 1;
    }
  }
  watchdog_start(); /* after fuse_daemonize: a child of the final process */
  if (invalidate_start() != 0) fs_log("cannot start the change poller");

  if (set.single_thread) {
    rc = fuse_session_loop(FS->se);
  } else {
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    /* Idle threads are kept (libfuse's default): creating and destroying
     * one per request costs more than the request. */
    fuse_loop_cfg_set_max_threads(lc, set.max_threads);
    rc = fuse_session_loop_mt(FS->se, lc);
    fuse_loop_cfg_destroy(lc);
  }
  invalidate_stop();
  watchdog_stop();
  fuse_session_unmount(FS->se);
  fuse_remove_signal_handlers(FS->se);
  fuse_session_destroy(FS->se); /* runs destroy: commits pending writers */
  ops_commit_all();
  nodes_shutdown();
  store_close(FS->st);
  free(mnt);
  /* A signal ends the loop with its number; that is a clean unmount. */
  return rc < 0 ? 1 : 0;
}
