/*
 * storectl.c -- the admin command-line tool: argv in, libstore calls out.
 *
 * This file holds main(), the option parser, the verb table and the small
 * helpers every verb shares (error lines, progress, time formatting, full
 * reads and writes).  The verbs themselves are in cmd_*.c.  The contract
 * (verb names, exit statuses 0/1/2, --help, --version) is fixed by the
 * design's "Command-line contract" and documented in docs/storectl.md.
 */
#include "storectl.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Error lines.                                                        */
/* ------------------------------------------------------------------ */
/* Error text carries keys and names from the store, which anyone with an
 * S3 key can choose: control bytes are shown as \xNN so that they cannot
 * drive the terminal or split the one-line message. */
static void put_escaped(const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      fprintf(stderr, "\\x%02x", *p);
    else
      fputc(*p, stderr);
  }
}

static void vsay(const char *fmt, va_list ap) {
  char line[4096];
  vsnprintf(line, sizeof line, fmt, ap);
  fputs("storectl: ", stderr);
  put_escaped(line);
}

void ctl_fail(int rc, const char *fmt, ...) {
  /* Take the detail first: it belongs to the last libstore call. */
  const char *detail = store_errmsg();
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
  fprintf(stderr, ": %s", store_strerror(rc));
  if (detail && *detail) {
    fputs(": ", stderr);
    put_escaped(detail);
  }
  fputc('\n', stderr);
}

void ctl_fail_os(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
  fprintf(stderr, ": %s\n", strerror(err));
}

void ctl_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Shared helpers.                                                     */
/* ------------------------------------------------------------------ */
void ctl_print_key(FILE *f, const char *key) {
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\x%02x", *p);
    else if (*p == '\\')
      fputs("\\\\", f);
    else
      fputc(*p, f);
  }
}

void ctl_format_time(int64_t ns, char *out, size_t n) {
  time_t t = (time_t)(ns / 1000000000);
  struct tm tm;
  if (ns < 0 || !gmtime_r(&t, &tm) ||
      strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, n, "%s", "-");
}

double ctl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ctl_rate(uint64_t bytes, double seconds) {
  if (seconds < 1e-6) return 0.0;
  return (double)bytes / 1e6 / seconds;
}

int ctl_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int ctl_read_full(int fd, void *buf, size_t n, size_t *got) {
  char *p = buf;
  size_t have = 0;
  while (have < n) {
    ssize_t r = read(fd, p + have, n - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      *got = have;
      return errno;
    }
    if (r == 0) break;
    have += (size_t)r;
  }
  *got = have;
  return 0;
}

void ctl_posix_from_stat(const struct stat *st, store_posix *out) {
  memset(out, 0, sizeof *out);
  out->has_mode = out->has_uid = out->has_gid = out->has_mtime = 1;
  out->mode = (uint32_t)st->st_mode;
  out->uid = (uint32_t)st->st_uid;
  out->gid = (uint32_t)st->st_gid;
  out->mtime_ns =
      (int64_t)st->st_mtim.tv_sec * 1000000000 + (int64_t)st->st_mtim.tv_nsec;
}

void ctl_progress_init(ctl_progress *p, const ctl *c) {
  p->enabled = c->progress;
  p->shown = 0;
  p->last = 0.0;
}

void ctl_progress_show(ctl_progress *p, const char *fmt, ...) {
  if (!p->enabled) return;
  double now = ctl_now();
  if (p->shown && now - p->last < 0.2) return; /* a few redraws a second */
  p->last = now;
  p->shown = 1;
  va_list ap;
  va_start(ap, fmt);
  fputc('\r', stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\033[K", stderr); /* erase what a longer line left behind */
  va_end(ap);
  fflush(stderr);
}

void ctl_progress_end(ctl_progress *p) {
  if (p->enabled && p->shown) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  p->shown = 0;
}

int ctl_progress_cb(void *arg, const char *phase, uint64_t done,
                    uint64_t total) {
  ctl_progress *p = arg;
  if (total)
    ctl_progress_show(p, "%s: %llu/%llu (%.0f%%)", phase ? phase : "",
                      (unsigned long long)done, (unsigned long long)total,
                      100.0 * (double)done / (double)total);
  else
    ctl_progress_show(p, "%s: %llu", phase ? phase : "",
                      (unsigned long long)done);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Verbs and usage.                                                    */
/* ------------------------------------------------------------------ */
enum open_mode { OPEN_NONE, OPEN_RO, OPEN_RW };

typedef struct verb {
  const char *name;
  const char *sub; /* second word ("user add"), or NULL */
  int min_args, max_args;
  unsigned opts; /* enum ctl_opt accepted */
  enum open_mode open;
  int (*fn)(ctl *c);
  const char *args; /* for usage lines */
} verb;

static const verb verbs[] = {
    {"init", NULL, 0, 0, OPT_ACCESS_KEY | OPT_SECRET_KEY, OPEN_NONE, cmd_init,
     "[--access-key K --secret-key S]"},
    {"user", "add", 1, 1, OPT_ACCESS_KEY | OPT_SECRET_KEY | OPT_ADMIN, OPEN_RW,
     cmd_user_add, "NAME [--access-key K --secret-key S] [--admin]"},
    {"user", "list", 0, 0, 0, OPEN_RO, cmd_user_list, ""},
    {"user", "revoke", 1, 1, 0, OPEN_RW, cmd_user_revoke, "ACCESS_KEY"},
    {"bucket", "create", 1, 1, 0, OPEN_RW, cmd_bucket_create, "NAME"},
    {"bucket", "delete", 1, 1, 0, OPEN_RW, cmd_bucket_delete, "NAME"},
    {"bucket", "list", 0, 1, 0, OPEN_RO, cmd_bucket_list, "[NAME]"},
    {"put", NULL, 3, 3, 0, OPEN_RW, cmd_put, "BUCKET KEY FILE|-"},
    {"get", NULL, 3, 3, 0, OPEN_RO, cmd_get, "BUCKET KEY FILE|-"},
    {"ls", NULL, 1, 2, OPT_RECURSIVE, OPEN_RO, cmd_ls, "[-r] BUCKET [PREFIX]"},
    {"rm", NULL, 2, 2, 0, OPEN_RW, cmd_rm, "BUCKET KEY"},
    {"import", NULL, 2, 2, 0, OPEN_RW, cmd_import, "SRCDIR BUCKET"},
    {"export", NULL, 2, 2, 0, OPEN_RO, cmd_export, "BUCKET DESTDIR"},
    {"gc", NULL, 0, 0, 0, OPEN_RW, cmd_gc, ""},
    {"fsck", NULL, 0, 0, OPT_REPAIR, OPEN_RW, cmd_fsck, "[--repair]"},
    {"stats", NULL, 0, 0, 0, OPEN_RO, cmd_stats, ""},
};
#define N_VERBS (sizeof verbs / sizeof verbs[0])

static void print_usage(FILE *f) {
  fputs("Usage: storectl [--store DIR] VERB [ARGS...]\n"
        "Administer a store directory (catalog + chunks) directly.\n\n"
        "Verbs:\n",
        f);
  for (size_t i = 0; i < N_VERBS; i++) {
    const verb *v = &verbs[i];
    fprintf(f, "  %s%s%s%s%s\n", v->name, v->sub ? " " : "",
            v->sub ? v->sub : "", *v->args ? " " : "", v->args);
  }
  fputs("\nOptions:\n"
        "  --store DIR        the store directory (default: $STORE_DIR)\n"
        "  --access-key K     access key for init / user add\n"
        "                     (init also reads $STORE_ACCESS_KEY)\n"
        "  --secret-key S     secret key for init / user add\n"
        "                     (init also reads $STORE_SECRET_KEY)\n"
        "  --admin            user add: the new user is an administrator\n"
        "  -r, --recursive    ls: list every key, without rolling up on '/'\n"
        "  --repair           fsck: rewrite wrong reference counts\n"
        "  -h, --help         show this help and exit\n"
        "  -V, --version      show the version and exit\n\n"
        "FILE '-' is standard input (put) or standard output (get).\n"
        "Exit status: 0 success, 1 failure, 2 usage error.\n"
        "See docs/storectl.md for details.\n",
        f);
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
  fputs("\nTry 'storectl --help' for more information.\n", stderr);
  return EXIT_USAGE;
}

static const char *opt_name(unsigned bit) {
  switch (bit) {
  case OPT_ACCESS_KEY: return "--access-key";
  case OPT_SECRET_KEY: return "--secret-key";
  case OPT_ADMIN: return "--admin";
  case OPT_RECURSIVE: return "--recursive";
  case OPT_REPAIR: return "--repair";
  default: return "?";
  }
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */
enum {
  LOPT_STORE = 256,
  LOPT_ACCESS_KEY,
  LOPT_SECRET_KEY,
  LOPT_ADMIN,
  LOPT_REPAIR,
};

static const struct option long_opts[] = {
    {"store", required_argument, NULL, LOPT_STORE},
    {"access-key", required_argument, NULL, LOPT_ACCESS_KEY},
    {"secret-key", required_argument, NULL, LOPT_SECRET_KEY},
    {"admin", no_argument, NULL, LOPT_ADMIN},
    {"recursive", no_argument, NULL, 'r'},
    {"repair", no_argument, NULL, LOPT_REPAIR},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv, ctl *c) {
  /* Options may come anywhere (before or after the verb); "--" ends them,
   * so a key that starts with '-' can be given as "-- -key".  The leading
   * '-' in the option string keeps positionals in place, whatever
   * POSIXLY_CORRECT says. */
  char **pos = calloc((size_t)argc + 1, sizeof *pos);
  int npos = 0, help = 0, version = 0;
  if (!pos) {
    ctl_fail_os(ENOMEM, "starting");
    return EXIT_FAIL;
  }
  opterr = 0;
  for (;;) {
    int ch = getopt_long(argc, argv, "-rhV", long_opts, NULL);
    if (ch == -1) break;
    switch (ch) {
    case 1: pos[npos++] = optarg; break;
    case LOPT_STORE: c->store_dir = optarg; break;
    case LOPT_ACCESS_KEY:
      c->access_key = optarg;
      c->opts |= OPT_ACCESS_KEY;
      break;
    case LOPT_SECRET_KEY:
      c->secret_key = optarg;
      c->opts |= OPT_SECRET_KEY;
      break;
    case LOPT_ADMIN: c->opts |= OPT_ADMIN; break;
    case LOPT_REPAIR: c->opts |= OPT_REPAIR; break;
    case 'r': c->opts |= OPT_RECURSIVE; break;
    case 'h': help = 1; break;
    case 'V': version = 1; break;
    default: {
      int rc;
      if (optopt && optopt < 256)
        rc = usage_error("unknown option '-%c'", optopt);
      else if (optopt)
        rc = usage_error("option '%s' needs an argument", argv[optind - 1]);
      else
        rc = usage_error("unknown option '%s'", argv[optind - 1]);
      free(pos);
      return rc;
    }
    }
  }
  while (optind < argc) pos[npos++] = argv[optind++];

  if (help) {
    print_usage(stdout);
    free(pos);
    return EXIT_OK;
  }
  if (version) {
    printf("storectl %s\n", STORE_VERSION);
    free(pos);
    return EXIT_OK;
  }
  int rc = EXIT_USAGE;
  if (npos == 0) {
    rc = usage_error("no verb given");
    goto out;
  }

  /* Find the verb (and its sub-command for "user" and "bucket"). */
  const verb *v = NULL;
  int known_name = 0, used = 1;
  for (size_t i = 0; i < N_VERBS; i++) {
    if (strcmp(verbs[i].name, pos[0]) != 0) continue;
    known_name = 1;
    if (!verbs[i].sub) {
      v = &verbs[i];
      break;
    }
    if (npos > 1 && strcmp(verbs[i].sub, pos[1]) == 0) {
      v = &verbs[i];
      used = 2;
      break;
    }
  }
  if (!v) {
    if (!known_name)
      rc = usage_error("unknown verb '%s'", pos[0]);
    else if (npos < 2)
      rc = usage_error("%s: missing sub-command", pos[0]);
    else
      rc = usage_error("%s: unknown sub-command '%s'", pos[0], pos[1]);
    goto out;
  }
  char vname[64];
  snprintf(vname, sizeof vname, "%s%s%s", v->name, v->sub ? " " : "",
           v->sub ? v->sub : "");

  unsigned extra = c->opts & ~v->opts;
  if (extra) {
    rc = usage_error("%s: option %s does not apply", vname,
                     opt_name(extra & -extra));
    goto out;
  }
  c->argc = npos - used;
  c->argv = pos + used;
  if (c->argc < v->min_args || c->argc > v->max_args) {
    rc = usage_error("%s: %s arguments (usage: storectl %s %s)", vname,
                     c->argc < v->min_args ? "missing" : "too many", vname,
                     v->args);
    goto out;
  }
  if (!c->store_dir || !*c->store_dir) c->store_dir = getenv("STORE_DIR");
  if (!c->store_dir || !*c->store_dir) {
    rc = usage_error("%s: no store given (use --store DIR or set STORE_DIR)",
                     vname);
    goto out;
  }

  c->buf = malloc(CTL_BUFSZ);
  if (!c->buf) {
    ctl_fail_os(ENOMEM, "allocating the I/O buffer");
    rc = EXIT_FAIL;
    goto out;
  }
  if (v->open != OPEN_NONE) {
    store_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.read_only = v->open == OPEN_RO;
    int src = store_open(c->store_dir, &cfg, &c->st);
    if (src != STORE_OK) {
      ctl_fail(src, "open store %s", c->store_dir);
      rc = EXIT_FAIL;
      goto out;
    }
  }
  rc = v->fn(c);

out:
  store_close(c->st);
  c->st = NULL;
  free(c->buf);
  c->buf = NULL;
  free(pos);
  return rc;
}

int main(int argc, char **argv) {
  ctl c;
  memset(&c, 0, sizeof c);
  c.progress = isatty(STDERR_FILENO);
  c.umask = umask(0);
  umask(c.umask);

  int rc = run(argc, argv, &c);

  /* A full disk or a closed pipe on stdout is a failure, not a success. */
  if (fflush(stdout) != 0 || ferror(stdout)) {
    if (rc == EXIT_OK) {
      ctl_fail_os(errno ? errno : EIO, "writing standard output");
      rc = EXIT_FAIL;
    }
  }
  return rc;
}
