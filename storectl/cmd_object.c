/*
 * cmd_object.c -- storectl verbs on single objects: put, get, ls, rm.
 *
 * Data always streams through the one CTL_BUFSZ buffer: put reads a file
 * (or stdin) in 1 MiB pieces into a store_writer, get reads a store_reader
 * in 1 MiB pieces into a file (or stdout).  A get into a regular file
 * writes a temporary file beside it and renames it into place, so a failed
 * get never leaves a half-written file (or truncates an existing one).
 */
#include "storectl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ctl_upload_fd(ctl *c, const char *what, const char *bucket,
                  const char *key, int fd, const char *src_name,
                  const store_posix *posix, uint64_t *bytes,
                  store_object_info *out) {
  store_writer *w = NULL;
  uint64_t total = 0;
  int rc = store_writer_open(c->st, bucket, key, &w);
  if (rc != STORE_OK) {
    ctl_fail(rc, "%s", what);
    return rc;
  }
  for (;;) {
    size_t got = 0;
    int err = ctl_read_full(fd, c->buf, CTL_BUFSZ, &got);
    if (err) {
      ctl_fail_os(err, "%s: reading %s", what, src_name);
      store_writer_abort(w);
      return STORE_ERR_IO;
    }
    if (got == 0) break;
    rc = store_write(w, c->buf, got);
    if (rc != STORE_OK) {
      ctl_fail(rc, "%s", what);
      store_writer_abort(w);
      return rc;
    }
    total += got;
    if (c->tick) c->tick(c->tick_arg, got);
    if (got < CTL_BUFSZ) break; /* ctl_read_full stops short only at EOF */
  }
  store_put_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.content_type = store_guess_content_type(key);
  opts.posix = posix;
  rc = store_writer_commit(w, &opts, out); /* frees w whatever happens */
  if (rc != STORE_OK) {
    ctl_fail(rc, "%s", what);
    return rc;
  }
  if (bytes) *bytes = total;
  return STORE_OK;
}

int ctl_download_fd(ctl *c, const char *what, store_reader *r, int fd,
                    const char *dst_name, uint64_t *bytes) {
  uint64_t off = 0, size = store_reader_size(r);
  for (;;) {
    size_t got = 0;
    int rc = store_read(r, c->buf, CTL_BUFSZ, off, &got);
    if (rc != STORE_OK) {
      ctl_fail(rc, "%s", what);
      return rc;
    }
    if (got > 0) {
      int err = ctl_write_all(fd, c->buf, got);
      if (err) {
        ctl_fail_os(err, "%s: writing %s", what, dst_name);
        /* A full disk is worth telling apart: a caller stops on it. */
        return err == ENOSPC || err == EDQUOT ? STORE_ERR_NOSPC : STORE_ERR_IO;
      }
    }
    off += got;
    if (c->tick && got) c->tick(c->tick_arg, got);
    if (got < CTL_BUFSZ) break; /* pread semantics: short only at the end */
  }
  if (off != size) {
    ctl_warn("%s: read %llu bytes of an object of %llu", what,
             (unsigned long long)off, (unsigned long long)size);
    return STORE_ERR_CORRUPT;
  }
  if (bytes) *bytes = off;
  return STORE_OK;
}

/* ------------------------------------------------------------------ */
int cmd_put(ctl *c) {
  const char *bucket = c->argv[0], *key = c->argv[1], *file = c->argv[2];
  char what[64 + PATH_MAX];
  snprintf(what, sizeof what, "put %s/%s", bucket, key);

  int fd = STDIN_FILENO;
  store_posix px, *ppx = NULL;
  if (strcmp(file, "-") != 0) {
    fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      ctl_fail_os(errno, "%s: %s", what, file);
      if (fd >= 0) close(fd);
      return EXIT_FAIL;
    }
    if (S_ISDIR(st.st_mode)) {
      ctl_fail_os(EISDIR, "%s: %s", what, file);
      close(fd);
      return EXIT_FAIL;
    }
    /* Only a regular file has attributes worth keeping (not a pipe). */
    if (S_ISREG(st.st_mode)) {
      ctl_posix_from_stat(&st, &px);
      ppx = &px;
    }
  }
  store_object_info info;
  memset(&info, 0, sizeof info);
  uint64_t bytes = 0;
  int rc = ctl_upload_fd(c, what, bucket, key, fd,
                         fd == STDIN_FILENO ? "standard input" : file, ppx,
                         &bytes, &info);
  if (fd != STDIN_FILENO) close(fd);
  if (rc != STORE_OK) return EXIT_FAIL;
  /* ETAG SIZE BUCKET/KEY */
  printf("%s %llu %s/", info.etag, (unsigned long long)bytes, bucket);
  ctl_print_key(stdout, key);
  putchar('\n');
  store_object_info_free(&info);
  return EXIT_OK;
}

/* ------------------------------------------------------------------ */
int cmd_get(ctl *c) {
  const char *bucket = c->argv[0], *key = c->argv[1], *file = c->argv[2];
  char what[64 + PATH_MAX];
  snprintf(what, sizeof what, "get %s/%s", bucket, key);

  /* Open the object first: a missing key must not touch FILE. */
  store_reader *r = NULL;
  store_object_info info;
  memset(&info, 0, sizeof info);
  int rc = store_reader_open(c->st, bucket, key, NULL, &r, &info);
  if (rc != STORE_OK) {
    ctl_fail(rc, "%s", what);
    return EXIT_FAIL;
  }
  store_object_info_free(&info);

  if (strcmp(file, "-") == 0) {
    rc = ctl_download_fd(c, what, r, STDOUT_FILENO, "standard output", NULL);
    store_reader_close(r);
    return rc == STORE_OK ? EXIT_OK : EXIT_FAIL;
  }

  struct stat st;
  memset(&st, 0, sizeof st);
  int exists = lstat(file, &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    /* A device, a pipe or a symlink: write through it, as cp does. */
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
      ctl_fail_os(errno, "%s: %s", what, file);
      store_reader_close(r);
      return EXIT_FAIL;
    }
    rc = ctl_download_fd(c, what, r, fd, file, NULL);
    store_reader_close(r);
    if (close(fd) != 0 && rc == STORE_OK) {
      ctl_fail_os(errno, "%s: closing %s", what, file);
      rc = STORE_ERR_IO;
    }
    return rc == STORE_OK ? EXIT_OK : EXIT_FAIL;
  }

  /* A regular file (or none yet): write beside it, then rename over it. */
  char tmp[PATH_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s.storectl-XXXXXX", file);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    ctl_fail_os(ENAMETOOLONG, "%s: %s", what, file);
    store_reader_close(r);
    return EXIT_FAIL;
  }
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    ctl_fail_os(errno, "%s: creating a temporary file beside %s", what, file);
    store_reader_close(r);
    return EXIT_FAIL;
  }
  mode_t mode = exists ? (st.st_mode & 07777) : (0666 & ~c->umask);
  if (fchmod(fd, mode) != 0) {
    ctl_fail_os(errno, "%s: chmod %s", what, tmp);
    rc = STORE_ERR_IO;
  } else {
    rc = ctl_download_fd(c, what, r, fd, file, NULL);
  }
  store_reader_close(r);
  if (close(fd) != 0 && rc == STORE_OK) {
    ctl_fail_os(errno, "%s: closing %s", what, tmp);
    rc = STORE_ERR_IO;
  }
  if (rc == STORE_OK && rename(tmp, file) != 0) {
    ctl_fail_os(errno, "%s: renaming %s to %s", what, tmp, file);
    rc = STORE_ERR_IO;
  }
  if (rc != STORE_OK) {
    unlink(tmp);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------ */
static void print_entry(const store_list_entry *e) {
  char when[32];
  ctl_format_time(e->mtime_ns, when, sizeof when);
  printf("%-20s %12llu ", when, (unsigned long long)e->size);
  ctl_print_key(stdout, e->key);
  putchar('\n');
}

static void print_prefix(const char *p) {
  printf("%-20s %12s ", "", "PRE");
  ctl_print_key(stdout, p);
  putchar('\n');
}

int cmd_ls(ctl *c) {
  const char *bucket = c->argv[0];
  const char *prefix = c->argc > 1 ? c->argv[1] : NULL;
  char *marker = NULL;
  int truncated, status = EXIT_OK;

  do {
    store_list_opts o;
    memset(&o, 0, sizeof o);
    o.prefix = prefix;
    o.delimiter = (c->opts & OPT_RECURSIVE) ? NULL : "/";
    o.start_after = marker;
    o.max_keys = 1000;
    store_list_result res;
    memset(&res, 0, sizeof res);
    int rc = store_list(c->st, bucket, &o, &res);
    if (rc != STORE_OK) {
      ctl_fail(rc, "ls %s", bucket);
      status = EXIT_FAIL;
      break;
    }
    /* Entries and prefixes are each sorted; print them merged in byte
     * order, which is the order of the listing. */
    size_t i = 0, j = 0;
    while (i < res.n_entries || j < res.n_prefixes) {
      if (j >= res.n_prefixes ||
          (i < res.n_entries && strcmp(res.entries[i].key, res.prefixes[j]) < 0))
        print_entry(&res.entries[i++]);
      else
        print_prefix(res.prefixes[j++]);
    }
    truncated = res.truncated;
    char *next = NULL;
    if (truncated) {
      /* A truncated page must move the marker forward, or we would loop. */
      if (!res.next_marker || (marker && strcmp(res.next_marker, marker) <= 0)) {
        ctl_warn("ls %s: the listing is truncated but its next marker does "
                 "not advance",
                 bucket);
        store_list_result_free(&res);
        status = EXIT_FAIL;
        break;
      }
      next = strdup(res.next_marker);
      if (!next) {
        ctl_fail_os(ENOMEM, "ls %s", bucket);
        store_list_result_free(&res);
        status = EXIT_FAIL;
        break;
      }
    }
    store_list_result_free(&res);
    free(marker);
    marker = next;
  } while (truncated);
  free(marker);
  return status;
}

/* ------------------------------------------------------------------ */
int cmd_rm(ctl *c) {
  int rc = store_delete(c->st, c->argv[0], c->argv[1]);
  if (rc != STORE_OK) {
    ctl_fail(rc, "rm %s/%s", c->argv[0], c->argv[1]);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}
