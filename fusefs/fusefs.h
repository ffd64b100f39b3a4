/*
 * fusefs.h -- shared declarations of the FUSE mount (fusefs).
 *
 * fusefs is a libfuse3 low-level filesystem and a client of libstore.h only.
 * The files, top to bottom:
 *   main.c       options, mount, daemon, signals
 *   inode.c      the inode table: kernel node id <-> (bucket, key), lookup
 *                counts, forget; stable st_ino numbers
 *   ops.c        the filesystem operations
 *   pathmap.c    the key <-> path rule (pure functions)
 *   errmap.c     libstore result code -> errno, the one table
 *   invalidate.c the change-feed poller that invalidates the kernel's caches
 */
#ifndef FUSEFS_H
#define FUSEFS_H

/* 312: the fuse_loop_config API of libfuse >= 3.12.  With 34,
 * fuse_session_loop_mt reads the new config struct as the old one, turns
 * clone_fd on and max_idle_threads to 0, and so creates and destroys a
 * worker thread for every request. */
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "libstore.h"

#define FUSEFS_NAME_MAX 255

/* ------------------------------------------------------------------ */
/* Global state of one mount.                                          */
/* ------------------------------------------------------------------ */
struct fs {
  store *st;
  struct fuse_session *se;
  char *store_dir;     /* absolute */
  char *bucket;        /* NULL: whole store, top-level dirs are buckets */
  char *prefix;        /* "" or "dir/sub/" below the bucket */
  int read_only;
  int foreground;
  int debug;
  uid_t uid;           /* owner of objects without "uid" metadata */
  gid_t gid;
  mode_t umask;        /* for objects without "mode" metadata */
  double attr_timeout; /* kernel attribute cache, seconds */
  double entry_timeout;/* kernel name cache, seconds */
  unsigned poll_ms;    /* change-feed poll interval */
  int64_t start_ns;    /* mount time: times of directories without marker */
  uint64_t feed_seq;   /* change feed position at mount */
  unsigned readahead_kb; /* kernel readahead for the mount (0: leave it) */
  char bdi[32];        /* "MAJ:MIN" of the mount, for /sys/class/bdi */
  char mnt[4096];      /* the mountpoint, absolute */
  /* Serialises directory renames (exclusive) against every other
   * namespace or data change (shared): a directory rename re-keys nodes
   * and must not race with a writer committing under the old key. */
  pthread_rwlock_t ns_lock;
};

extern struct fs *FS;

void fs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Apply readahead_kb once the kernel has taken our INIT reply (its INIT
 * processing lowers the readahead to what we replied): called by the
 * first requests that follow INIT. */
void fs_readahead_once(void);
void fs_mount_dev(const char *mnt, char *out, size_t cap);
/* watchdog.c: end the process even when SIGKILL cannot (see there). */
void watchdog_start(void);
void watchdog_stop(void);

/* ------------------------------------------------------------------ */
/* errmap.c                                                            */
/* ------------------------------------------------------------------ */
/* The errno for a libstore result code (0 for STORE_OK). */
int fs_errno(int rc);

/* ------------------------------------------------------------------ */
/* pathmap.c: which keys are which paths (docs/fusefs.md, "key to path") */
/* ------------------------------------------------------------------ */
/* A file whose name is also a directory is shown under NAME + this. */
#define PATHMAP_CONFLICT_SUFFIX ".~file"
/* The old s3fs / Hadoop directory marker: "dir_$folder$". */
#define PATHMAP_FOLDER_SUFFIX "_$folder$"
/* Content-Type of the "dir/" marker objects we create. */
#define PATHMAP_DIR_CONTENT_TYPE "application/x-directory"

/* 1 if `name` (n bytes) can be a path component: 1..255 bytes, not "."
 * or "..", no '/' and no NUL. */
int pathmap_name_ok(const char *name, size_t n);

enum pathmap_kind {
  PM_HIDDEN = 0, /* not shown on the mount (reachable over S3 only) */
  PM_SELF,       /* the directory's own marker object */
  PM_FILE,       /* a file (or symlink) named `name` */
  PM_DIR,        /* a directory named `name` */
  PM_LEGACY_DIR, /* an old-style marker ("name_$folder$") of directory name */
};

/* Classify listing entry `key` (an object of `size` bytes whose "mode"
 * metadata is `mode`, 0 if none) found under directory prefix `prefix`.  On PM_FILE / PM_DIR / PM_LEGACY_DIR the
 * shown name is key[*name_off .. *name_off + *name_len). */
int pathmap_entry(const char *prefix, const char *key, uint64_t size,
                  uint32_t mode, size_t *name_off, size_t *name_len);
/* Classify common prefix `cp` (ends with '/') found under `prefix`. */
int pathmap_common_prefix(const char *prefix, const char *cp, size_t *name_off,
                          size_t *name_len);
/* If `name` is NAME + PATHMAP_CONFLICT_SUFFIX with a valid NAME, return
 * strlen(NAME), else 0. */
size_t pathmap_conflict_base(const char *name);
/* Build the key of child `name` of directory prefix `prefix`, with a
 * trailing '/' when `dir`.  Returns 0, ENAMETOOLONG (component over 255 or
 * key over STORE_KEY_MAX) or EINVAL (not a valid component). */
int pathmap_child_key(const char *prefix, const char *name, int dir,
                      char *out, size_t cap);

/* ------------------------------------------------------------------ */
/* inode.c: the inode table                                            */
/* ------------------------------------------------------------------ */
enum node_kind { NODE_DIR = 1, NODE_FILE, NODE_LINK };

struct node {
  /* Table links and identity: guarded by the table lock. */
  struct node *hnext;  /* chain by (bucket, key), when attached */
  struct node *inext;  /* chain by st_ino, directories only */
  struct node *anext, *aprev; /* every node, attached or not */
  uint64_t nlookup;    /* the kernel's lookup count */
  unsigned pins;       /* our own temporary references */
  int attached;        /* reachable by path (else unlinked or replaced) */
  int kind;            /* enum node_kind */
  int is_store_root;   /* whole-store root: bucket == NULL */
  uint64_t ino;        /* st_ino: the object's ino, or synthetic for dirs */
  char *bucket;
  char *key;           /* file: its key; dir: prefix ("" or ends in '/') */

  /* Open-file state: guarded by mu. */
  pthread_mutex_t mu;
  store_writer *w;     /* one edit writer shared by all handles, or NULL */
  int wdirty;          /* w holds changes (else it only pins its base) */
  int pending;         /* created here, not in the catalog until commit */
  const char *wctype;  /* Content-Type of a pending file's first commit */
  char wbase[STORE_ETAG_MAX]; /* etag of w's base version ("" = none) */
  int64_t wbase_ns;    /* its Last-Modified */
  char own[STORE_ETAG_MAX]; /* etag of the last version this mount wrote */
  unsigned open_count;
  unsigned wopen;      /* handles open for writing */
  uint64_t gen;        /* bumped by each local commit: readers reopen */
  int unlinked;        /* removed while open: never commit again */
  int64_t dirty_ns;    /* time of the last change through w */
  store_posix wposix;  /* the object's POSIX attributes when w was opened */
  struct stat last_st; /* last attributes replied (fstat after unlink) */
  int has_last_st;
  int64_t last_st_at;  /* CLOCK_MONOTONIC ns of last_st */
};

/* A consistent copy of a node's identity, taken under the table lock. */
struct nkey {
  int kind;
  int is_store_root;
  uint64_t ino;
  char bucket[STORE_BUCKET_NAME_MAX + 1];
  char key[STORE_KEY_MAX + 2];
};

void nodes_init(void);
void nodes_shutdown(void);
struct node *node_root(void);
struct node *node_of(fuse_ino_t nodeid);
fuse_ino_t node_id(const struct node *n);
void node_snapshot(struct node *n, struct nkey *out);
/* Find or create the attached node for (bucket, key) with this kind, and
 * count one kernel lookup.  A node attached there with another kind or
 * (files) another store ino is detached first.  `ino` is the store ino:
 * of the object for files, of the marker object for directories (0: none,
 * the node gets a synthetic number).  Returns NULL when out of memory. */
struct node *node_ref(const char *bucket, const char *key, int kind,
                      uint64_t ino);
/* The st_ino of the directory node at (bucket, key), if there is one. */
int node_dir_ino_known(const char *bucket, const char *key, uint64_t *ino);
/* The synthetic st_ino a directory without marker at (bucket, key) gets. */
uint64_t node_dir_ino_synthetic(const char *bucket, const char *key);
void node_forget(struct node *n, uint64_t nlookup);
/* Pin an attached node at (bucket, key) so it is not freed; NULL if none. */
struct node *node_find_pin(const char *bucket, const char *key);
void node_pin(struct node *n);
/* The node id of the attached node at (bucket, key), or 0. */
fuse_ino_t node_find_id(const char *bucket, const char *key);
void node_unpin(struct node *n);
/* Make n unreachable by path (unlink, replaced by rename). */
void node_detach(struct node *n);
/* Re-key a file node after a rename (detaching whatever is at new_key). */
void node_move(struct node *n, const char *new_key);
/* Re-key every attached node whose key starts with src (a prefix). */
void nodes_move_prefix(const char *bucket, const char *src, const char *dst);
/* Call fn(n, arg) under the table lock for each attached node of `bucket`
 * (all when NULL) whose key starts with `prefix` (all when NULL).  fn must
 * not block or call back into the table. */
void nodes_foreach(const char *bucket, const char *prefix,
                   void (*fn)(struct node *n, void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* ops.c / invalidate.c                                                */
/* ------------------------------------------------------------------ */
extern const struct fuse_lowlevel_ops fusefs_ops;
/* Commit every pending writer (at unmount). */
void ops_commit_all(void);

int invalidate_start(void);
void invalidate_stop(void);

#endif /* FUSEFS_H */
