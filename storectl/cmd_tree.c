/*
 * cmd_tree.c -- storectl import and export: a directory tree <-> a bucket.
 *
 * The mapping is the design's POSIX view of the flat namespace: a regular
 * file becomes the key of its relative path ('/' between components), an
 * empty directory becomes a zero-byte "dir/" marker object, and mode, uid,
 * gid and mtime travel as store_posix metadata.  Symbolic links and special
 * files are skipped and counted.
 *
 * Export is the reverse and must never write outside DESTDIR, whatever the
 * keys say: keys that cannot be paths (empty components, "." or "..",
 * components over NAME_MAX bytes) are skipped and counted, and every path
 * is walked one component at a time with openat(O_NOFOLLOW), so neither a
 * key nor a symlink already inside DESTDIR can lead out of it.
 *
 * Both walk with directory file descriptors (openat, fstatat, mkdirat), so
 * only the relative part of a path, at most a key long, is ever built.
 */
#include "storectl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Results that say the store (not one file) is in trouble: stop there. */
static int store_rc_fatal(int rc) {
  switch (rc) {
  case STORE_ERR_NOMEM:
  case STORE_ERR_NOSPC:
  case STORE_ERR_READONLY:
  case STORE_ERR_CORRUPT:
  case STORE_ERR_BUSY:
  case STORE_ERR_NO_STORE:
  case STORE_ERR_TOO_NEW:
  case STORE_ERR_NO_BUCKET:
    return 1;
  default:
    return 0;
  }
}

/* OS errors on the destination that would repeat for every file. */
static int os_err_fatal(int err) {
  return err == ENOSPC || err == EDQUOT || err == EROFS || err == ENOMEM ||
         err == EMFILE || err == ENFILE;
}

/* "storectl: <verb>: <msg> '<key>'" with the key escaped for a terminal. */
static void warn_key(const char *verb, const char *msg, const char *key) {
  fprintf(stderr, "storectl: %s: %s '", verb, msg);
  ctl_print_key(stderr, key);
  fputs("'\n", stderr);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* The entries of directory `dfd` (without . and ..), sorted in byte order
 * so that a run is deterministic.  0 or errno. */
static int read_names(int dfd, char ***out, size_t *n_out) {
  int lfd = dup(dfd);
  if (lfd < 0) return errno;
  DIR *d = fdopendir(lfd);
  if (!d) {
    int err = errno;
    close(lfd);
    return err;
  }
  rewinddir(d);
  char **names = NULL;
  size_t n = 0, cap = 0;
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      err = errno;
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 32;
      char **nn = realloc(names, ncap * sizeof *nn);
      if (!nn) {
        err = ENOMEM;
        break;
      }
      names = nn;
      cap = ncap;
    }
    names[n] = strdup(de->d_name);
    if (!names[n]) {
      err = ENOMEM;
      break;
    }
    n++;
  }
  closedir(d);
  if (err) {
    free_names(names, n);
    return err;
  }
  if (n > 1) qsort(names, n, sizeof *names, cmp_names);
  *out = names;
  *n_out = n;
  return 0;
}

/* ------------------------------------------------------------------ */
/* import                                                              */
/* ------------------------------------------------------------------ */
typedef struct import_state {
  ctl *c;
  const char *bucket;
  char key[STORE_KEY_MAX + 2]; /* relative path of the current entry */
  uint64_t files, markers, bytes;
  uint64_t moved; /* bytes read so far, partial files included */
  uint64_t symlinks, specials, errors;
  int fatal; /* the store failed: stop the walk */
  ctl_progress prog;
} import_state;

static void import_tick(void *arg, uint64_t n) {
  import_state *is = arg;
  is->moved += n;
  ctl_progress_show(&is->prog, "import: %llu files, %.1f MB",
                    (unsigned long long)is->files, (double)is->moved / 1e6);
}

/* Count a failed upload; a store-level failure stops the import. */
static void import_failed(import_state *is, int rc) {
  is->errors++;
  if (store_rc_fatal(rc)) is->fatal = 1;
}

static void import_file(import_state *is, int dfd, const char *name) {
  char what[STORE_KEY_MAX + 64];
  snprintf(what, sizeof what, "import %s", is->key);
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    ctl_fail_os(errno, "%s", what);
    if (fd >= 0) close(fd);
    is->errors++;
    return;
  }
  if (!S_ISREG(st.st_mode)) { /* replaced since we looked: skip it */
    close(fd);
    is->specials++;
    return;
  }
  store_posix px;
  ctl_posix_from_stat(&st, &px);
  uint64_t n = 0;
  int rc = ctl_upload_fd(is->c, what, is->bucket, is->key, fd, is->key, &px,
                         &n, NULL);
  close(fd);
  if (rc != STORE_OK) {
    import_failed(is, rc);
    return;
  }
  is->files++;
  is->bytes += n;
  import_tick(is, 0);
}

/* A zero-byte "dir/" object for an empty directory; key ends in '/'. */
static int import_marker(import_state *is, const struct stat *st) {
  store_posix px;
  ctl_posix_from_stat(st, &px);
  store_put_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.content_type = "application/x-directory"; /* as s3fs writes them */
  opts.posix = &px;
  int rc = store_put(is->c->st, is->bucket, is->key, "", 0, &opts, NULL);
  if (rc != STORE_OK) {
    ctl_fail(rc, "import %s", is->key);
    import_failed(is, rc);
    return 0;
  }
  is->markers++;
  return 1;
}

/* Import the entries of directory `dfd`, whose relative path is is->key
 * (length len, "" for the top).  *imported counts the objects written
 * beneath it, so an empty directory (or one whose entries were all
 * skipped) still leaves a marker behind. */
static void import_dir(import_state *is, int dfd, size_t len,
                       uint64_t *imported) {
  char **names = NULL;
  size_t n = 0;
  int err = read_names(dfd, &names, &n);
  if (err) {
    ctl_fail_os(err, "import: reading directory '%s'", len ? is->key : ".");
    is->errors++;
    if (os_err_fatal(err)) is->fatal = 1;
    return;
  }
  for (size_t i = 0; i < n && !is->fatal; i++) {
    const char *name = names[i];
    size_t nl = strlen(name), sep = len ? 1 : 0;
    if (len + sep + nl > STORE_KEY_MAX) {
      fprintf(stderr, "storectl: import: skipping '%.*s/%s': path longer "
                      "than a key (%d bytes)\n",
              (int)len, is->key, name, STORE_KEY_MAX);
      is->errors++;
      continue;
    }
    if (sep) is->key[len] = '/';
    memcpy(is->key + len + sep, name, nl + 1);
    size_t klen = len + sep + nl;

    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ctl_fail_os(errno, "import %s", is->key);
      is->errors++;
    } else if (S_ISLNK(st.st_mode)) {
      is->symlinks++;
    } else if (S_ISREG(st.st_mode)) {
      int krc = store_key_check(is->key, klen);
      if (krc != STORE_OK) {
        ctl_fail(krc, "import %s", is->key);
        is->errors++;
      } else {
        uint64_t before = is->files;
        import_file(is, dfd, name);
        *imported += is->files - before;
      }
    } else if (S_ISDIR(st.st_mode)) {
      int cfd = openat(dfd, name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) {
        ctl_fail_os(errno, "import %s", is->key);
        is->errors++;
      } else {
        uint64_t below = 0;
        import_dir(is, cfd, klen, &below);
        close(cfd);
        is->key[klen] = '\0'; /* the walk below reused the buffer */
        if (below == 0 && !is->fatal) {
          if (klen + 1 > STORE_KEY_MAX) {
            fprintf(stderr, "storectl: import: skipping empty directory "
                            "'%s': path longer than a key\n",
                    is->key);
            is->errors++;
          } else {
            is->key[klen] = '/';
            is->key[klen + 1] = '\0';
            below += (uint64_t)import_marker(is, &st);
          }
        }
        *imported += below;
      }
    } else {
      is->specials++; /* fifo, socket, device */
    }
    is->key[len] = '\0';
  }
  free_names(names, n);
}

/* Create the bucket unless it exists. */
static int ensure_bucket(ctl *c, const char *verb, const char *bucket) {
  store_bucket_info b;
  int rc = store_bucket_head(c->st, bucket, &b);
  if (rc == STORE_ERR_NO_BUCKET) {
    rc = store_bucket_name_check(bucket);
    if (rc == STORE_OK) rc = store_bucket_create(c->st, bucket, "");
    if (rc == STORE_ERR_BUCKET_EXISTS) rc = STORE_OK; /* raced: fine */
  }
  if (rc != STORE_OK) {
    ctl_fail(rc, "%s: bucket %s", verb, bucket);
    return -1;
  }
  return 0;
}

int cmd_import(ctl *c) {
  const char *src = c->argv[0], *bucket = c->argv[1];
  int dfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    ctl_fail_os(errno, "import: %s", src);
    return EXIT_FAIL;
  }
  if (ensure_bucket(c, "import", bucket) != 0) {
    close(dfd);
    return EXIT_FAIL;
  }
  import_state *is = calloc(1, sizeof *is);
  if (!is) {
    ctl_fail_os(ENOMEM, "import");
    close(dfd);
    return EXIT_FAIL;
  }
  is->c = c;
  is->bucket = bucket;
  ctl_progress_init(&is->prog, c);
  c->tick = import_tick;
  c->tick_arg = is;
  double t0 = ctl_now();
  uint64_t imported = 0;
  import_dir(is, dfd, 0, &imported);
  c->tick = NULL;
  close(dfd);
  double secs = ctl_now() - t0;
  ctl_progress_end(&is->prog);

  if (is->symlinks)
    ctl_warn("import: skipped %llu symbolic link(s)",
             (unsigned long long)is->symlinks);
  if (is->specials)
    ctl_warn("import: skipped %llu special file(s)",
             (unsigned long long)is->specials);
  printf("import %s -> %s: %llu files, %llu empty dirs, %llu bytes, "
         "%llu symlinks skipped, %llu special skipped, %llu errors "
         "in %.2f s (%.1f MB/s)\n",
         src, bucket, (unsigned long long)is->files,
         (unsigned long long)is->markers, (unsigned long long)is->bytes,
         (unsigned long long)is->symlinks, (unsigned long long)is->specials,
         (unsigned long long)is->errors, secs, ctl_rate(is->bytes, secs));
  int status = is->errors || is->fatal ? EXIT_FAIL : EXIT_OK;
  if (is->fatal) ctl_warn("import: stopped early");
  free(is);
  return status;
}

/* ------------------------------------------------------------------ */
/* export                                                              */
/* ------------------------------------------------------------------ */
typedef struct dir_attr {
  char *rel;
  store_posix px;
} dir_attr;

typedef struct export_state {
  ctl *c;
  const char *bucket;
  int rootfd;
  /* One-entry cache of the last parent directory opened: keys come in
   * byte order, so neighbours mostly share their directory. */
  char cache_rel[STORE_KEY_MAX + 1];
  size_t cache_len;
  int cache_fd; /* -1 when empty */
  /* Markers whose mode/mtime are applied at the end, deepest first, once
   * nothing more is created inside them. */
  dir_attr *dirs;
  size_t n_dirs, cap_dirs;
  uint64_t files, markers, bytes, skipped, vanished, errors;
  uint64_t moved; /* bytes written so far, partial files included */
  int fatal;
  ctl_progress prog;
} export_state;

/* NULL if the key (without a marker's trailing '/') can be a relative
 * path, else why not. */
static const char *path_problem(const char *rel, size_t len) {
  if (len == 0) return "empty path component";
  const char *p = rel, *end = rel + len;
  while (p <= end) {
    const char *slash = memchr(p, '/', (size_t)(end - p));
    size_t cl = slash ? (size_t)(slash - p) : (size_t)(end - p);
    if (cl == 0) return "empty path component";
    if ((cl == 1 && p[0] == '.') || (cl == 2 && p[0] == '.' && p[1] == '.'))
      return "'.' or '..' path component";
    if (cl > NAME_MAX) return "path component over 255 bytes";
    if (!slash) break;
    p = slash + 1;
  }
  return NULL;
}

/* Open (creating as needed) the directory `rel` (len bytes, already
 * checked by path_problem) below the root, one component at a time and
 * never through a symlink.  Returns a descriptor the caller must NOT
 * close (the root or the cache), or -1 with errno set. */
static int export_open_dir(export_state *es, const char *rel, size_t len) {
  if (len == 0) return es->rootfd;
  if (es->cache_fd >= 0 && es->cache_len == len &&
      memcmp(es->cache_rel, rel, len) == 0)
    return es->cache_fd;
  int fd = es->rootfd;
  const char *p = rel, *end = rel + len;
  while (p < end) {
    const char *slash = memchr(p, '/', (size_t)(end - p));
    size_t cl = slash ? (size_t)(slash - p) : (size_t)(end - p);
    char comp[NAME_MAX + 1];
    memcpy(comp, p, cl);
    comp[cl] = '\0';
    int err = 0;
    if (mkdirat(fd, comp, 0777) != 0 && errno != EEXIST) err = errno;
    int nfd = err ? -1
                  : openat(fd, comp,
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0 && !err) err = errno;
    if (fd != es->rootfd) close(fd);
    if (nfd < 0) {
      errno = err;
      return -1;
    }
    fd = nfd;
    p += cl + 1;
  }
  if (es->cache_fd >= 0) close(es->cache_fd);
  es->cache_fd = fd;
  memcpy(es->cache_rel, rel, len);
  es->cache_len = len;
  return fd;
}

/* A path that exists with the wrong type (a file where a directory must
 * go, a directory where a file must go, a symlink): skipped, not failed. */
static int path_conflict(int err) {
  return err == ENOTDIR || err == EISDIR || err == ELOOP || err == EEXIST;
}

static void export_os_error(export_state *es, int err, const char *msg,
                            const char *key) {
  if (path_conflict(err)) {
    warn_key("export", "skipping (path conflict)", key);
    es->skipped++;
    return;
  }
  fprintf(stderr, "storectl: export: %s '", msg);
  ctl_print_key(stderr, key);
  fprintf(stderr, "': %s\n", strerror(err));
  es->errors++;
  if (os_err_fatal(err)) es->fatal = 1;
}

static void export_tick(void *arg, uint64_t n) {
  export_state *es = arg;
  es->moved += n;
  ctl_progress_show(&es->prog, "export: %llu files, %.1f MB",
                    (unsigned long long)es->files, (double)es->moved / 1e6);
}

static void export_store_error(export_state *es, int rc, const char *key) {
  if (rc == STORE_ERR_NO_KEY) { /* deleted since the listing: fine */
    es->vanished++;
    return;
  }
  char what[STORE_KEY_MAX + 64];
  snprintf(what, sizeof what, "export %s", key);
  ctl_fail(rc, "%s", what);
  es->errors++;
  if (store_rc_fatal(rc)) es->fatal = 1;
}

static void set_times(int fd, const store_posix *px) {
  if (!px->has_mtime) return;
  struct timespec ts[2];
  ts[0].tv_sec = 0;
  ts[0].tv_nsec = UTIME_OMIT;
  ts[1].tv_sec = (time_t)(px->mtime_ns / 1000000000);
  ts[1].tv_nsec = (long)(px->mtime_ns % 1000000000);
  if (ts[1].tv_nsec < 0) {
    ts[1].tv_sec -= 1;
    ts[1].tv_nsec += 1000000000;
  }
  (void)futimens(fd, ts); /* best effort, like cp -p */
}

static void export_marker(export_state *es, const char *key, size_t len) {
  store_object_info info;
  memset(&info, 0, sizeof info);
  int rc = store_head(es->c->st, es->bucket, key, NULL, &info);
  if (rc != STORE_OK) {
    export_store_error(es, rc, key);
    return;
  }
  store_posix px;
  memset(&px, 0, sizeof px);
  store_posix_from_info(&info, &px);
  store_object_info_free(&info);

  if (export_open_dir(es, key, len - 1) < 0) {
    export_os_error(es, errno, "creating directory", key);
    return;
  }
  es->markers++;
  if (!px.has_mode && !px.has_mtime) return;
  if (es->n_dirs == es->cap_dirs) {
    size_t ncap = es->cap_dirs ? es->cap_dirs * 2 : 16;
    dir_attr *nd = realloc(es->dirs, ncap * sizeof *nd);
    if (!nd) {
      export_os_error(es, ENOMEM, "remembering directory", key);
      return;
    }
    es->dirs = nd;
    es->cap_dirs = ncap;
  }
  char *rel = strndup(key, len - 1);
  if (!rel) {
    export_os_error(es, ENOMEM, "remembering directory", key);
    return;
  }
  es->dirs[es->n_dirs].rel = rel;
  es->dirs[es->n_dirs].px = px;
  es->n_dirs++;
}

static void export_file(export_state *es, const char *key, size_t len) {
  store_reader *r = NULL;
  store_object_info info;
  memset(&info, 0, sizeof info);
  int rc = store_reader_open(es->c->st, es->bucket, key, NULL, &r, &info);
  if (rc != STORE_OK) {
    export_store_error(es, rc, key);
    return;
  }
  store_posix px;
  memset(&px, 0, sizeof px);
  store_posix_from_info(&info, &px);
  store_object_info_free(&info);

  const char *slash = memrchr(key, '/', len);
  size_t dlen = slash ? (size_t)(slash - key) : 0;
  const char *leaf = slash ? slash + 1 : key;
  int dfd = export_open_dir(es, key, dlen);
  if (dfd < 0) {
    export_os_error(es, errno, "creating directory for", key);
    store_reader_close(r);
    return;
  }
  int fd = openat(dfd, leaf,
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY |
                      O_CLOEXEC,
                  0666);
  if (fd < 0) {
    export_os_error(es, errno, "creating", key);
    store_reader_close(r);
    return;
  }
  char what[STORE_KEY_MAX + 64];
  snprintf(what, sizeof what, "export %s", key);
  uint64_t n = 0;
  rc = ctl_download_fd(es->c, what, r, fd, key, &n);
  store_reader_close(r);
  int failed = rc != STORE_OK;
  if (failed) { /* reported by ctl_download_fd */
    es->errors++;
    if (store_rc_fatal(rc)) es->fatal = 1;
  }
  if (!failed && px.has_mode && fchmod(fd, px.mode & 07777) != 0) {
    export_os_error(es, errno, "chmod", key);
    failed = 1;
  }
  if (!failed) set_times(fd, &px);
  if (close(fd) != 0 && !failed) {
    export_os_error(es, errno, "closing", key);
    failed = 1;
  }
  if (failed) return;
  es->files++;
  es->bytes += n;
  export_tick(es, 0);
}

static void export_key(export_state *es, const char *key) {
  export_tick(es, 0);
  size_t len = strlen(key);
  int marker = len > 0 && key[len - 1] == '/';
  const char *why = path_problem(key, marker ? len - 1 : len);
  if (why) {
    char msg[96];
    snprintf(msg, sizeof msg, "skipping key (%s)", why);
    warn_key("export", msg, key);
    es->skipped++;
    return;
  }
  if (marker)
    export_marker(es, key, len);
  else
    export_file(es, key, len);
}

/* Give the marker directories their mode and mtime, deepest first (the
 * listing is in byte order, so a directory comes before what is in it). */
static void export_dir_attrs(export_state *es) {
  for (size_t i = es->n_dirs; i-- > 0;) {
    dir_attr *d = &es->dirs[i];
    int fd = export_open_dir(es, d->rel, strlen(d->rel));
    if (fd >= 0) {
      if (d->px.has_mode) (void)fchmod(fd, d->px.mode & 07777);
      set_times(fd, &d->px);
    }
    free(d->rel);
  }
  free(es->dirs);
  es->dirs = NULL;
  es->n_dirs = es->cap_dirs = 0;
}

int cmd_export(ctl *c) {
  const char *bucket = c->argv[0], *dest = c->argv[1];
  store_bucket_info b;
  int rc = store_bucket_head(c->st, bucket, &b);
  if (rc != STORE_OK) {
    ctl_fail(rc, "export: bucket %s", bucket);
    return EXIT_FAIL;
  }
  if (mkdir(dest, 0777) != 0 && errno != EEXIST) {
    ctl_fail_os(errno, "export: %s", dest);
    return EXIT_FAIL;
  }
  int rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    ctl_fail_os(errno, "export: %s", dest);
    return EXIT_FAIL;
  }
  export_state *es = calloc(1, sizeof *es);
  if (!es) {
    ctl_fail_os(ENOMEM, "export");
    close(rootfd);
    return EXIT_FAIL;
  }
  es->c = c;
  es->bucket = bucket;
  es->rootfd = rootfd;
  es->cache_fd = -1;
  ctl_progress_init(&es->prog, c);
  c->tick = export_tick;
  c->tick_arg = es;
  double t0 = ctl_now();

  char *marker = NULL;
  int truncated = 0;
  do {
    store_list_opts o;
    memset(&o, 0, sizeof o);
    o.start_after = marker;
    o.max_keys = 1000;
    store_list_result res;
    memset(&res, 0, sizeof res);
    rc = store_list(c->st, bucket, &o, &res);
    if (rc != STORE_OK) {
      ctl_fail(rc, "export: listing %s", bucket);
      es->errors++;
      es->fatal = 1;
      break;
    }
    for (size_t i = 0; i < res.n_entries && !es->fatal; i++)
      export_key(es, res.entries[i].key);
    truncated = res.truncated;
    char *next = NULL;
    if (truncated && !es->fatal) {
      if (!res.next_marker ||
          (marker && strcmp(res.next_marker, marker) <= 0)) {
        ctl_warn("export: listing %s is truncated but its next marker does "
                 "not advance",
                 bucket);
        es->errors++;
        es->fatal = 1;
      } else if (!(next = strdup(res.next_marker))) {
        ctl_fail_os(ENOMEM, "export");
        es->errors++;
        es->fatal = 1;
      }
    }
    store_list_result_free(&res);
    free(marker);
    marker = next;
  } while (truncated && !es->fatal);
  free(marker);

  c->tick = NULL;
  export_dir_attrs(es);
  if (es->cache_fd >= 0) close(es->cache_fd);
  close(rootfd);
  double secs = ctl_now() - t0;
  ctl_progress_end(&es->prog);

  if (es->skipped)
    ctl_warn("export: skipped %llu key(s) that cannot be paths here",
             (unsigned long long)es->skipped);
  printf("export %s -> %s: %llu files, %llu dirs, %llu bytes, %llu skipped, "
         "%llu vanished, %llu errors in %.2f s (%.1f MB/s)\n",
         bucket, dest, (unsigned long long)es->files,
         (unsigned long long)es->markers, (unsigned long long)es->bytes,
         (unsigned long long)es->skipped, (unsigned long long)es->vanished,
         (unsigned long long)es->errors, secs, ctl_rate(es->bytes, secs));
  int status = es->errors ? EXIT_FAIL : EXIT_OK;
  if (es->fatal) ctl_warn("export: stopped early");
  free(es);
  return status;
}
