/*
 * storectl.h -- what the files of the admin tool share.
 *
 * storectl is a client of libstore.h and of nothing else in libstore
 * (the curl tool / libcurl split).  storectl.c parses argv and dispatches
 * to one function per verb; the verbs live by concern in cmd_admin.c
 * (init, users, buckets), cmd_object.c (put, get, ls, rm), cmd_tree.c
 * (import, export) and cmd_maint.c (gc, fsck, stats).  Every verb returns
 * the process exit status: EXIT_OK, EXIT_FAIL or EXIT_USAGE.
 */
#ifndef STORECTL_H
#define STORECTL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "libstore.h"

#define EXIT_OK 0
#define EXIT_FAIL 1  /* anything that is not a usage error */
#define EXIT_USAGE 2 /* unknown verb or option, missing argument */

/* The one I/O buffer of the process: every copy goes through it in pieces
 * of this size, so no file is ever read whole into memory. */
#define CTL_BUFSZ ((size_t)1 << 20)

/* Options, as a bitmask so each verb can say which ones it accepts. */
enum ctl_opt {
  OPT_ACCESS_KEY = 1 << 0,
  OPT_SECRET_KEY = 1 << 1,
  OPT_ADMIN = 1 << 2,
  OPT_RECURSIVE = 1 << 3,
  OPT_REPAIR = 1 << 4,
};

/* What one run of the tool works with. */
typedef struct ctl {
  const char *store_dir; /* --store or $STORE_DIR */
  store *st;             /* open store (NULL for init until created) */
  char *buf;             /* the I/O buffer, CTL_BUFSZ bytes */
  int progress;          /* stderr is a terminal: show progress */
  mode_t umask;          /* the process umask, for files we create */
  unsigned opts;         /* enum ctl_opt flags given */
  const char *access_key, *secret_key;
  /* Called after each piece of an upload or download (may be NULL): how
   * import/export keep their progress line moving inside a large file. */
  void (*tick)(void *arg, uint64_t bytes);
  void *tick_arg;
  int argc;              /* positional arguments after the verb */
  char **argv;
} ctl;

/* Errors: one line on stderr.
 * ctl_fail:    "storectl: <what>: <store_strerror(rc)>: <store_errmsg()>"
 * ctl_fail_os: "storectl: <what>: <strerror(err)>"
 * ctl_warn:    "storectl: <what>" (a note that does not change the status)
 * Call ctl_fail right after the failing libstore call: store_errmsg() is
 * only valid until the thread's next libstore call. */
void ctl_fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ctl_fail_os(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a key (or any store string) for humans: control bytes become
 * \xNN and a backslash becomes \\, so a hostile key cannot drive the
 * terminal and every key prints on one line. */
void ctl_print_key(FILE *f, const char *key);

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC) into out (at least 21 bytes). */
void ctl_format_time(int64_t ns, char *out, size_t n);

/* Seconds from a monotonic clock. */
double ctl_now(void);

/* Write all of buf to fd, retrying short writes and EINTR.  0 or errno. */
int ctl_write_all(int fd, const void *buf, size_t n);
/* Read up to n bytes, looping until n or end of file.  0 or errno. */
int ctl_read_full(int fd, void *buf, size_t n, size_t *got);

/* Progress on stderr, only when it is a terminal, redrawn at most a few
 * times a second; ctl_progress_end() erases the line. */
typedef struct ctl_progress {
  int enabled;
  int shown;
  double last;
} ctl_progress;
void ctl_progress_init(ctl_progress *p, const ctl *c);
void ctl_progress_show(ctl_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ctl_progress_end(ctl_progress *p);
/* A store_progress_fn whose arg is a ctl_progress. */
int ctl_progress_cb(void *arg, const char *phase, uint64_t done,
                    uint64_t total);

/* Megabytes (10^6) per second, 0 when the time is too short to tell. */
double ctl_rate(uint64_t bytes, double seconds);

/* The POSIX attributes of a stat result (mode, uid, gid, mtime). */
void ctl_posix_from_stat(const struct stat *st, store_posix *out);

/* Stream fd (named src_name in messages) into a new object bucket/key in
 * CTL_BUFSZ pieces and commit it with the Content-Type guessed from the
 * key and `posix` (may be NULL).  *bytes gets the size; `out` (may be NULL)
 * the committed object.  Failures are reported on stderr, prefixed with
 * `what`; returns the libstore result, or STORE_ERR_IO after an OS error
 * reading fd. */
int ctl_upload_fd(ctl *c, const char *what, const char *bucket,
                  const char *key, int fd, const char *src_name,
                  const store_posix *posix, uint64_t *bytes,
                  store_object_info *out);
/* Stream an open reader into fd (named dst_name in messages) in CTL_BUFSZ
 * pieces.  Failures are reported, prefixed with `what`; returns the
 * libstore result, or STORE_ERR_IO (STORE_ERR_NOSPC for ENOSPC/EDQUOT)
 * after an OS error writing fd. */
int ctl_download_fd(ctl *c, const char *what, store_reader *r, int fd,
                    const char *dst_name, uint64_t *bytes);

/* The verbs. */
int cmd_init(ctl *c);
int cmd_user_add(ctl *c);
int cmd_user_list(ctl *c);
int cmd_user_revoke(ctl *c);
int cmd_bucket_create(ctl *c);
int cmd_bucket_delete(ctl *c);
int cmd_bucket_list(ctl *c);
int cmd_put(ctl *c);
int cmd_get(ctl *c);
int cmd_ls(ctl *c);
int cmd_rm(ctl *c);
int cmd_import(ctl *c);
int cmd_export(ctl *c);
int cmd_gc(ctl *c);
int cmd_fsck(ctl *c);
int cmd_stats(ctl *c);

#endif
