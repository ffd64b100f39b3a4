/*
 * ops.c -- the filesystem operations of fusefs (libfuse low-level API).
 *
 * Every request gets exactly one reply: each handler ends in exactly one
 * fuse_reply_*() call, usually `return (void)fuse_reply_err(req, e)`.
 *
 * Data path: an open file reads through a per-handle store_reader; the
 * first write (or truncate) opens one store_writer_open_edit() per node,
 * shared by all of the node's handles, and reads then go through the
 * writer.  The writer is committed -- made visible and durable in one
 * catalog transaction -- at flush (close) of a handle that changed the
 * file, at fsync, at release of the last handle, and before anything that
 * needs the object's current row (rename, attribute changes).  A commit
 * bumps node->gen so the handles' readers reopen on the new version.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fusefs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* One open file handle (fi->fh). */
struct fh {
  struct node *n;
  int flags;           /* open flags */
  int wrote;           /* this handle changed the file: flush commits */
  pthread_mutex_t mu;  /* a store_reader belongs to one thread at a time */
  store_reader *r;
  uint64_t gen;        /* node->gen when r was opened */
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void ns_shared(void) { pthread_rwlock_rdlock(&FS->ns_lock); }
static void ns_exclusive(void) { pthread_rwlock_wrlock(&FS->ns_lock); }
static void ns_unlock(void) { pthread_rwlock_unlock(&FS->ns_lock); }

/* errno of a libstore call, logging unexpected failures once. */
static int store_err(int rc, const char *what, const char *key) {
  if (rc == STORE_OK) return 0;
  int e = fs_errno(rc);
  if (e == EIO || e == ENOSPC || e == EBUSY || e == ENOMEM || FS->debug)
    fs_log("%s %s: %s: %s", what, key ? key : "", store_strerror(rc),
           store_errmsg());
  return e;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                          */
/* ------------------------------------------------------------------ */
/* RFC 3339 time (rclone's metadata form) to ns; 0 on failure. */
static int parse_rfc3339(const char *s, int64_t *ns) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return 0;
  int64_t frac = 0;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
      if (digits < 9) {
        frac = frac * 10 + (*p - '0');
        digits++;
      }
    while (digits++ < 9) frac *= 10;
  }
  int64_t off = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
    off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
          ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
    if (*p == '-') off = -off;
    p += 6;
  } else {
    return 0;
  }
  if (*p) return 0;
  *ns = ((int64_t)timegm(&tm) - off) * 1000000000 + frac;
  return 1;
}

/* The POSIX attributes of an object: libstore's decoding of the s3fs
 * convention, plus rclone's forms (octal "mode" with a leading 0, RFC 3339
 * times). */
static void posix_decode(const store_object_info *info, store_posix *p) {
  store_posix_from_info(info, p);
  for (size_t i = 0; i < info->n_meta; i++) {
    const char *n = info->meta[i].name, *v = info->meta[i].value;
    if (!v) continue;
    if (!strcasecmp(n, "mode") && v[0] == '0' && v[1]) {
      char *end;
      unsigned long m = strtoul(v, &end, 8);
      if (!*end) {
        p->has_mode = 1;
        p->mode = (uint32_t)m;
      }
    } else if (!strcasecmp(n, "mtime") && !p->has_mtime) {
      p->has_mtime = parse_rfc3339(v, &p->mtime_ns);
    } else if (!strcasecmp(n, "atime") && !p->has_atime) {
      p->has_atime = parse_rfc3339(v, &p->atime_ns);
    } else if (!strcasecmp(n, "ctime") && !p->has_ctime) {
      p->has_ctime = parse_rfc3339(v, &p->ctime_ns);
    }
  }
}

static void ts_set(struct timespec *ts, int64_t ns) {
  ts->tv_sec = (time_t)(ns / 1000000000);
  ts->tv_nsec = (long)(ns % 1000000000);
  if (ts->tv_nsec < 0) {
    ts->tv_nsec += 1000000000;
    ts->tv_sec--;
  }
}

static int node_type_bits(int kind) {
  return kind == NODE_DIR ? S_IFDIR : kind == NODE_LINK ? S_IFLNK : S_IFREG;
}

/* Defaults for a directory that has no marker object. */
static void stat_dir_default(struct stat *st, uint64_t ino, int64_t t_ns) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_mode = S_IFDIR | (0777 & ~FS->umask);
  st->st_nlink = 2;
  st->st_uid = FS->uid;
  st->st_gid = FS->gid;
  st->st_size = 4096;
  st->st_blksize = 4096;
  ts_set(&st->st_mtim, t_ns);
  st->st_ctim = st->st_atim = st->st_mtim;
}

static void stat_apply_posix(struct stat *st, const store_posix *p, int kind) {
  if (p->has_mode) st->st_mode = node_type_bits(kind) | (p->mode & 07777);
  if (p->has_uid) st->st_uid = p->uid;
  if (p->has_gid) st->st_gid = p->gid;
  if (p->has_mtime) ts_set(&st->st_mtim, p->mtime_ns);
  st->st_ctim = st->st_atim = st->st_mtim;
  if (p->has_atime) ts_set(&st->st_atim, p->atime_ns);
  if (p->has_ctime) ts_set(&st->st_ctim, p->ctime_ns);
}

static int kind_of_info(const store_object_info *info) {
  store_posix p;
  posix_decode(info, &p);
  return p.has_mode && S_ISLNK(p.mode) ? NODE_LINK : NODE_FILE;
}

/* Attributes of a file or symlink object. */
static void stat_object(const store_object_info *info, int kind, uint64_t ino,
                        struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_mode = kind == NODE_LINK ? S_IFLNK | 0777
                                  : S_IFREG | (0666 & ~FS->umask);
  st->st_nlink = 1;
  st->st_uid = FS->uid;
  st->st_gid = FS->gid;
  st->st_size = (off_t)info->size;
  st->st_blksize = 128 * 1024;
  st->st_blocks = (blkcnt_t)((info->size + 511) / 512);
  ts_set(&st->st_mtim, info->mtime_ns);
  store_posix p;
  posix_decode(info, &p);
  stat_apply_posix(st, &p, kind);
}

/* Attributes of a directory with marker object `info`. */
static void stat_marker(const store_object_info *info, uint64_t ino,
                        struct stat *st) {
  stat_dir_default(st, ino, info->mtime_ns);
  store_posix p;
  posix_decode(info, &p);
  stat_apply_posix(st, &p, NODE_DIR);
}

/* ------------------------------------------------------------------ */
/* Store queries                                                       */
/* ------------------------------------------------------------------ */
/* Does any key start with directory prefix `prefix` ("p/d/")?
 * *only_marker (may be NULL) is set when the one key found is `prefix`
 * itself and nothing follows it.  Used where emptiness matters (rmdir,
 * rename onto a directory, keep_dir). */
static int prefix_exists(const char *bucket, const char *prefix, int *exists,
                         int *only_marker) {
  store_list_opts o = {.prefix = prefix, .max_keys = 2};
  store_list_result r;
  int rc = store_list(FS->st, bucket, &o, &r);
  if (rc) return store_err(rc, "list", prefix);
  *exists = r.n_entries > 0;
  if (only_marker)
    *only_marker = r.n_entries == 1 && !strcmp(r.entries[0].key, prefix);
  store_list_result_free(&r);
  return 0;
}

/* Is "p/d/" a directory, i.e. does any key start with it?  Asked as "what
 * follows p/d in the listing of p/": store_list stops at the first row of
 * p/ at or after p/d/, where a listing with prefix p/d/ that matches
 * nothing reads on to the end of the bucket (libstore's range has no upper
 * bound in the index; see the library requests in docs/fusefs.md).
 * start_after is "p/d." + 0xFF, just below every key >= "p/d/" (no UTF-8
 * key holds the byte 0xFF). */
static int dir_exists(const char *bucket, const char *dkey, int *exists) {
  size_t dl = strlen(dkey), pl = dl ? dl - 1 : 0;
  *exists = 0;
  if (!dl || dkey[dl - 1] != '/') return EINVAL;
  while (pl && dkey[pl - 1] != '/') pl--;
  char parent[STORE_KEY_MAX + 2], after[STORE_KEY_MAX + 4];
  memcpy(parent, dkey, pl);
  parent[pl] = '\0';
  memcpy(after, dkey, dl - 1);
  after[dl - 1] = '.';
  after[dl] = (char)0xff;
  after[dl + 1] = '\0';
  store_list_opts o = {.prefix = parent, .delimiter = "/",
                       .start_after = after, .max_keys = 1};
  store_list_result r;
  int rc = store_list(FS->st, bucket, &o, &r);
  if (rc) return store_err(rc, "list", dkey);
  *exists = r.n_prefixes > 0 && !strcmp(r.prefixes[0], dkey);
  store_list_result_free(&r);
  return 0;
}

static int head(const char *bucket, const char *key, store_object_info *info) {
  int rc = store_head(FS->st, bucket, key, NULL, info);
  if (rc == STORE_ERR_NO_KEY || rc == STORE_ERR_NO_BUCKET ||
      rc == STORE_ERR_BAD_KEY || rc == STORE_ERR_KEY_TOO_LONG)
    return ENOENT;
  return store_err(rc, "head", key);
}

/* st_ino of directory (bucket, dkey): the node's if the kernel knows it,
 * else its marker object's ino (kept by renames), else synthetic.
 * `marker_ino` is the marker's ino if the caller has it (0: look). */
static uint64_t dir_ino(const char *bucket, const char *dkey,
                        uint64_t marker_ino, int look) {
  uint64_t ino;
  if (node_dir_ino_known(bucket, dkey, &ino)) return ino;
  if (marker_ino) return marker_ino;
  store_object_info info;
  if (look && dkey[0] && head(bucket, dkey, &info) == 0) {
    ino = info.ino;
    store_object_info_free(&info);
    return ino;
  }
  return node_dir_ino_synthetic(bucket, dkey);
}

/* The key of a directory prefix without its '/' ("a/b/" -> "a/b"). */
static void dir_base_key(const char *dkey, char *out, size_t cap) {
  size_t n = strlen(dkey);
  if (n && dkey[n - 1] == '/') n--;
  snprintf(out, cap, "%.*s", (int)n, dkey);
}

/* An old-style marker of directory `dkey`: "d_$folder$" or an s3fs
 * directory object "d" (mode S_IFDIR, no data).  Fills info if found. */
static int legacy_marker_ex(const char *bucket, const char *dkey,
                            store_object_info *info, char *which, size_t cap,
                            int folder_only) {
  char base[STORE_KEY_MAX + 16];
  dir_base_key(dkey, base, sizeof base);
  if (!*base) return ENOENT;
  char k[STORE_KEY_MAX + 32];
  snprintf(k, sizeof k, "%s%s", base, PATHMAP_FOLDER_SUFFIX);
  int e = head(bucket, k, info);
  if (e == 0 && info->size == 0) {
    if (which) snprintf(which, cap, "%s", k);
    return 0;
  }
  if (e == 0) store_object_info_free(info);
  if (e && e != ENOENT) return e;
  if (folder_only) return ENOENT;
  e = head(bucket, base, info);
  if (e) return e;
  store_posix p;
  posix_decode(info, &p);
  if (info->size == 0 && p.has_mode && S_ISDIR(p.mode)) {
    if (which) snprintf(which, cap, "%s", base);
    return 0;
  }
  store_object_info_free(info);
  return ENOENT;
}

static int legacy_marker(const char *bucket, const char *dkey,
                         store_object_info *info, char *which, size_t cap) {
  return legacy_marker_ex(bucket, dkey, info, which, cap, 0);
}

/* Attributes of directory node k; ENOENT when it no longer exists. */
static int dir_stat(const struct nkey *k, struct stat *st) {
  if (k->is_store_root) {
    stat_dir_default(st, k->ino, FS->start_ns);
    return 0;
  }
  store_object_info info;
  if (!k->key[0]) { /* a bucket */
    store_bucket_info bi;
    int rc = store_bucket_head(FS->st, k->bucket, &bi);
    if (rc) return rc == STORE_ERR_NO_BUCKET ? ENOENT : store_err(rc, "bucket", k->bucket);
    stat_dir_default(st, k->ino, bi.created_ns);
    return 0;
  }
  int e = head(k->bucket, k->key, &info);
  if (e == 0) {
    stat_marker(&info, k->ino, st);
    store_object_info_free(&info);
    return 0;
  }
  if (e != ENOENT) return e;
  int exists = 0;
  e = dir_exists(k->bucket, k->key, &exists);
  if (e) return e;
  if (exists || (FS->bucket && !strcmp(k->key, FS->prefix))) {
    stat_dir_default(st, k->ino, FS->start_ns);
    return 0;
  }
  e = legacy_marker(k->bucket, k->key, &info, NULL, 0);
  if (e) return e;
  stat_marker(&info, k->ino, st);
  store_object_info_free(&info);
  return 0;
}

/* What name `name` in directory `dir` is. */
struct child {
  int kind; /* 0: nothing */
  char bucket[STORE_BUCKET_NAME_MAX + 1];
  char key[STORE_KEY_MAX + 2]; /* file key, or directory prefix */
  uint64_t ino;                /* store ino of a file */
  char etag[STORE_ETAG_MAX];   /* of a file */
  struct stat st;
};

static int pending_child(const char *bucket, const char *key,
                         struct child *c);

static int resolve(const struct nkey *dir, const char *name, struct child *c) {
  memset(c, 0, sizeof *c);
  if (dir->is_store_root) {
    store_bucket_info bi;
    if (strlen(name) > STORE_BUCKET_NAME_MAX) return ENOENT;
    int rc = store_bucket_head(FS->st, name, &bi);
    if (rc == STORE_ERR_NO_BUCKET || rc == STORE_ERR_BAD_BUCKET_NAME ||
        rc == STORE_ERR_INVALID)
      return ENOENT;
    if (rc) return store_err(rc, "bucket", name);
    c->kind = NODE_DIR;
    snprintf(c->bucket, sizeof c->bucket, "%s", name);
    stat_dir_default(&c->st, dir_ino(name, "", 0, 0), bi.created_ns);
    return 0;
  }
  snprintf(c->bucket, sizeof c->bucket, "%s", dir->bucket);
  char dkey[STORE_KEY_MAX + 2], fkey[STORE_KEY_MAX + 2];
  int e = pathmap_child_key(dir->key, name, 1, dkey, sizeof dkey);
  if (e) return e == EINVAL ? ENOENT : e;
  e = pathmap_child_key(dir->key, name, 0, fkey, sizeof fkey);
  if (e) return e == EINVAL ? ENOENT : e;

  /* 1. A directory wins over a file of the same name. */
  int exists = 0;
  e = dir_exists(dir->bucket, dkey, &exists);
  if (e) return e;
  store_object_info info;
  if (exists) {
    c->kind = NODE_DIR;
    snprintf(c->key, sizeof c->key, "%s", dkey);
    if (head(dir->bucket, dkey, &info) == 0) {
      c->ino = info.ino;
      stat_marker(&info, dir_ino(dir->bucket, dkey, info.ino, 0), &c->st);
      store_object_info_free(&info);
    } else {
      stat_dir_default(&c->st, dir_ino(dir->bucket, dkey, 0, 0),
                       FS->start_ns);
    }
    return 0;
  }
  /* 2. A file, a symlink, or an old-style directory marker; first a file
   * created here and not committed yet. */
  if (pending_child(dir->bucket, fkey, c)) return 0;
  int legacy = 0;
  e = head(dir->bucket, fkey, &info);
  if (e && e != ENOENT) return e;
  if (e == ENOENT) { /* head(fkey) just said there is no "d" object */
    e = legacy_marker_ex(dir->bucket, dkey, &info, NULL, 0, 1);
    legacy = e == 0;
  } else {
    store_posix p;
    posix_decode(&info, &p);
    legacy = info.size == 0 && p.has_mode && S_ISDIR(p.mode);
  }
  if (e == 0) {
    if (legacy) {
      c->kind = NODE_DIR;
      snprintf(c->key, sizeof c->key, "%s", dkey);
      c->ino = info.ino;
      stat_marker(&info, dir_ino(dir->bucket, dkey, info.ino, 0), &c->st);
    } else {
      c->kind = kind_of_info(&info);
      snprintf(c->key, sizeof c->key, "%s", fkey);
      snprintf(c->etag, sizeof c->etag, "%s", info.etag);
      c->ino = info.ino;
      stat_object(&info, c->kind, info.ino, &c->st);
    }
    store_object_info_free(&info);
    return 0;
  }
  if (e != ENOENT) return e;
  /* 3. NAME.~file: a file NAME hidden by a directory NAME. */
  size_t bl = pathmap_conflict_base(name);
  if (bl) {
    char base[FUSEFS_NAME_MAX + 1];
    snprintf(base, sizeof base, "%.*s", (int)bl, name);
    e = pathmap_child_key(dir->key, base, 0, fkey, sizeof fkey);
    if (e) return ENOENT;
    e = pathmap_child_key(dir->key, base, 1, dkey, sizeof dkey);
    if (e) return ENOENT;
    e = dir_exists(dir->bucket, dkey, &exists);
    if (e) return e;
    if (exists && head(dir->bucket, fkey, &info) == 0) {
      c->kind = kind_of_info(&info);
      snprintf(c->key, sizeof c->key, "%s", fkey);
      snprintf(c->etag, sizeof c->etag, "%s", info.etag);
      c->ino = info.ino;
      stat_object(&info, c->kind, info.ino, &c->st);
      store_object_info_free(&info);
      return 0;
    }
  }
  return ENOENT;
}

static void fill_entry(struct fuse_entry_param *e, struct node *n,
                       const struct stat *st) {
  memset(e, 0, sizeof *e);
  e->ino = node_id(n);
  e->attr = *st;
  e->attr.st_ino = n->ino;
  e->attr_timeout = FS->attr_timeout;
  e->entry_timeout = FS->entry_timeout;
}

/* Reply with the entry for child c, counting one lookup. */
static void reply_child(fuse_req_t req, const struct child *c) {
  struct node *n = node_ref(c->bucket, c->key, c->kind, c->ino);
  if (!n) return (void)fuse_reply_err(req, ENOMEM);
  struct fuse_entry_param e;
  fill_entry(&e, n, &c->st);
  pthread_mutex_lock(&n->mu);
  n->last_st = e.attr;
  n->has_last_st = 1;
  n->last_st_at = mono_ns();
  pthread_mutex_unlock(&n->mu);
  if (fuse_reply_entry(req, &e) != 0) node_forget(n, 1);
}

/* A directory must not vanish because its last entry went away through
 * the mount: give an implicit directory its "dir/" marker. */
static void keep_dir(const char *bucket, const char *dkey) {
  if (!dkey[0]) return;
  int exists = 0;
  if (prefix_exists(bucket, dkey, &exists, NULL) || exists) return;
  store_put_opts o = {.content_type = PATHMAP_DIR_CONTENT_TYPE,
                      .if_none_match_star = 1};
  int rc = store_put(FS->st, bucket, dkey, "", 0, &o, NULL);
  if (rc && rc != STORE_ERR_PRECONDITION) store_err(rc, "keep dir", dkey);
}

/* The parent prefix of key ("a/b/c" -> "a/b/", "a/b/" -> "a/"). */
static void parent_prefix(const char *key, char *out, size_t cap) {
  size_t n = strlen(key);
  if (n && key[n - 1] == '/') n--;
  while (n && key[n - 1] != '/') n--;
  snprintf(out, cap, "%.*s", (int)n, key);
}

/* The group a new entry in directory `dir` (attributes dst) gets, and
 * whether it inherits the setgid bit (directories only). */
static gid_t new_gid(fuse_req_t req, const struct stat *dst) {
  if (dst && (dst->st_mode & S_ISGID)) return dst->st_gid;
  return fuse_req_ctx(req)->gid;
}

/* ------------------------------------------------------------------ */
/* Writers                                                             */
/* ------------------------------------------------------------------ */
/* Files created here and not yet committed (op_create): lookups and
 * readdir consult the node table only while there are some. */
static long pending_count;

static int any_pending(void) {
  return __atomic_load_n(&pending_count, __ATOMIC_RELAXED) > 0;
}

/* n stops being pending (committed, or gone).  n->mu held.  (n->pending
 * is also read under the table lock alone, by nodes_foreach callbacks that
 * may not take n->mu: hence the atomics.) */
static void pending_clear(struct node *n) {
  if (!n->pending) return;
  __atomic_store_n(&n->pending, 0, __ATOMIC_RELAXED);
  __atomic_sub_fetch(&pending_count, 1, __ATOMIC_RELAXED);
}

static int is_pending(struct node *n) {
  return __atomic_load_n(&n->pending, __ATOMIC_RELAXED);
}

static void pending_any_cb(struct node *n, void *arg) {
  if (n->kind == NODE_FILE && is_pending(n)) *(int *)arg = 1;
}

/* Is a pending file anywhere under directory prefix `prefix`? */
static int pending_under(const char *bucket, const char *prefix) {
  int found = 0;
  if (any_pending()) nodes_foreach(bucket, prefix, pending_any_cb, &found);
  return found;
}

/* The pending file at (bucket, key), as a child for lookups. */
static int pending_child(const char *bucket, const char *key,
                         struct child *c) {
  if (!any_pending()) return 0;
  struct node *n = node_find_pin(bucket, key);
  if (!n) return 0;
  int found = 0;
  pthread_mutex_lock(&n->mu);
  if (n->pending && n->kind == NODE_FILE && n->w && n->has_last_st) {
    c->kind = NODE_FILE;
    snprintf(c->bucket, sizeof c->bucket, "%s", bucket);
    snprintf(c->key, sizeof c->key, "%s", key);
    c->etag[0] = 0;
    c->ino = n->ino;
    c->st = n->last_st;
    uint64_t size = store_writer_size(n->w);
    c->st.st_size = (off_t)size;
    c->st.st_blocks = (blkcnt_t)((size + 511) / 512);
    found = 1;
  }
  pthread_mutex_unlock(&n->mu);
  node_unpin(n);
  return found;
}

/* Open n's shared writer if it has none.  n->mu held.
 *
 * A writable open() opens it at once (writer_get in op_open/op_create), so
 * an edit applies to the version that was current when the file was opened,
 * not to whatever another process committed before the first write: the
 * result of a commit is always "that version plus this handle's changes",
 * never another writer's bytes patched.  A writer that has not been written
 * to (wdirty 0) only pins its base; it is rebased when the key changes
 * under it and dropped, without a commit, when the last writable handle
 * closes. */
static int writer_get(struct node *n, const struct nkey *k) {
  if (n->w) return 0;
  if (FS->read_only) return EROFS;
  store_object_info info;
  memset(&n->wposix, 0, sizeof n->wposix);
  n->wbase[0] = 0;
  if (head(k->bucket, k->key, &info) == 0) {
    posix_decode(&info, &n->wposix);
    snprintf(n->wbase, sizeof n->wbase, "%s", info.etag);
    n->wbase_ns = info.mtime_ns;
    store_object_info_free(&info);
  }
  int rc = store_writer_open_edit(FS->st, k->bucket, k->key, &n->w);
  if (rc) {
    n->w = NULL;
    return store_err(rc, "open writer", k->key);
  }
  n->wdirty = 0;
  n->dirty_ns = now_ns();
  return 0;
}

/* Drop n's writer if it holds no changes.  n->mu held. */
static void writer_drop_clean(struct node *n) {
  if (n->w && !n->wdirty) {
    store_writer_abort(n->w);
    n->w = NULL;
  }
}

/* Commit n's writer, if it holds changes (a clean one is dropped: nothing
 * to commit, and its base may be stale by the time it is written to).
 * n->mu and ns_lock (shared) held.
 * Persist before replying: the caller answers flush/fsync/close only after
 * store_writer_commit has returned, and it returns after the durable
 * catalog commit. */
static int node_commit(struct node *n) {
  if (!n->w || n->unlinked) return 0;
  if (!n->wdirty) {
    writer_drop_clean(n);
    return 0;
  }
  store_posix p = n->wposix; /* the whole set: commit replaces it */
  p.has_mtime = p.has_ctime = 1;
  p.mtime_ns = p.ctime_ns = n->dirty_ns ? n->dirty_ns : now_ns();
  store_put_opts o = {.posix = &p};
  if (n->pending) o.content_type = n->wctype;
  store_writer *w = n->w;
  n->w = NULL;
  n->wdirty = 0;
  n->gen++;
  store_object_info info;
  int rc = store_writer_commit(w, &o, &info);
  if (rc == STORE_OK) {
    pending_clear(n);
    snprintf(n->own, sizeof n->own, "%s", info.etag);
    store_object_info_free(&info);
  } else if (n->pending) {
    /* The bytes are lost (ENOSPC...) but the file stays, empty, as a
     * local filesystem's would: a new writer for the next commit. */
    struct nkey k;
    node_snapshot(n, &k);
    if (store_writer_open_edit(FS->st, k.bucket, k.key, &n->w) == STORE_OK &&
        store_writer_set_ino(n->w, n->ino) == STORE_OK) {
      n->wdirty = 1;
    } else {
      store_writer_abort(n->w);
      n->w = NULL;
      pending_clear(n);
    }
  }
  return store_err(rc, "commit", NULL);
}

/* Should a handle on version (etag, committed at mtime_ns) bypass the page
 * cache?  The kernel clips reads to the size it has cached for the inode
 * and serves pages it cached from earlier opens; both may come from the
 * version this one replaced if another process committed it less than an
 * attribute timeout ago (the change poller's invalidation can arrive after
 * this open).  Such a handle reads with direct I/O, straight from the
 * version it pinned: whole, never clipped or mixed.  Versions this mount
 * wrote itself are exempt (the kernel's size came from our own writes), so
 * write-then-read keeps the page cache and readahead.  n->mu held. */
static int version_is_fresh(const struct node *n, const char *etag,
                            int64_t mtime_ns) {
  if (!etag[0] || !strcmp(etag, n->own)) return 0;
  int64_t window = (int64_t)(FS->attr_timeout * 1e9) + 1000000000;
  return now_ns() - mtime_ns < window;
}

static void node_mark_dirty(struct node *n) {
  n->dirty_ns = now_ns();
  n->wdirty = 1;
}

/* n is about to stop being at its key (unlink, replaced by rename): if
 * handles are open, keep its bytes for them in an edit writer (opened
 * before the key goes).  Returns 1 if it opened one.  n->mu held. */
static int node_keep_open_bytes(struct node *n, const struct nkey *k) {
  if (n->open_count == 0 || n->w) return 0;
  return writer_get(n, k) == 0;
}

/* The removal failed after node_keep_open_bytes opened a writer. */
static void node_drop_kept(struct node *n, int kept) {
  if (kept && n->w) {
    store_writer_abort(n->w);
    n->w = NULL;
  }
}

/* ------------------------------------------------------------------ */
/* lookup, forget, getattr                                             */
/* ------------------------------------------------------------------ */
static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  fs_readahead_once();
  struct nkey dir;
  node_snapshot(node_of(parent), &dir);
  if (dir.kind != NODE_DIR) return (void)fuse_reply_err(req, ENOTDIR);
  struct child c;
  int e = resolve(&dir, name, &c);
  if (e) return (void)fuse_reply_err(req, e);
  reply_child(req, &c);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  node_forget(node_of(ino), nlookup);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++)
    node_forget(node_of(forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

/* Current attributes of node n. */
static int node_stat(struct node *n, struct stat *st) {
  struct nkey k;
  node_snapshot(n, &k);
  int e;
  if (k.kind == NODE_DIR) {
    e = dir_stat(&k, st);
  } else {
    store_object_info info;
    e = head(k.bucket, k.key, &info);
    if (e == 0) {
      stat_object(&info, kind_of_info(&info) == NODE_LINK ? NODE_LINK : k.kind,
                  k.ino, st);
      store_object_info_free(&info);
    }
  }
  st->st_ino = k.ino;
  pthread_mutex_lock(&n->mu);
  if (e == ENOENT && (n->unlinked || n->w) && n->has_last_st) {
    *st = n->last_st; /* open but unlinked: fstat still works */
    if (n->unlinked) st->st_nlink = 0;
    e = 0;
  }
  if (e == 0 && n->w && n->wdirty) { /* pending writes: the writer knows */
    uint64_t size = store_writer_size(n->w);
    st->st_size = (off_t)size;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
    ts_set(&st->st_mtim, n->dirty_ns);
    st->st_ctim = st->st_mtim;
  }
  if (e == 0) {
    n->last_st = *st;
    n->has_last_st = 1;
    n->last_st_at = mono_ns();
  }
  pthread_mutex_unlock(&n->mu);
  return e;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  fs_readahead_once();
  struct stat st;
  int e = node_stat(node_of(ino), &st);
  /* Gone (deleted by another process) while the kernel still had the
   * name: ESTALE makes the kernel redo the walk with a real lookup (a
   * stat then says ENOENT, an open(O_CREAT) creates), where ENOENT here
   * would fail the open(O_CREAT) on its permission check.  Not for an
   * open file's own getattr (fi set: fstat, a read's size check), which
   * no retry follows. */
  if (e == ENOENT && !fi) e = ESTALE;
  if (e) return (void)fuse_reply_err(req, e);
  fuse_reply_attr(req, &st, FS->attr_timeout);
}

/* ------------------------------------------------------------------ */
/* setattr: truncate, chmod, chown, utimens                            */
/* ------------------------------------------------------------------ */
static int in_group(fuse_req_t req, gid_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return 1;
  gid_t list[64];
  int n = fuse_req_getgroups(req, 64, list);
  for (int i = 0; i < n && i < 64; i++)
    if (list[i] == gid) return 1;
  return 0;
}

/* Ownership rules of chmod/chown/utimes (the kernel checks them too under
 * default_permissions; without it, these are the only checks). */
static int attr_permitted(fuse_req_t req, const struct stat *cur,
                          const struct stat *want, int valid) {
  uid_t uid = fuse_req_ctx(req)->uid;
  if (uid == 0) return 0;
  int owner = uid == cur->st_uid;
  if ((valid & FUSE_SET_ATTR_MODE) && !owner) return EPERM;
  if ((valid & FUSE_SET_ATTR_UID) && want->st_uid != cur->st_uid) return EPERM;
  if ((valid & FUSE_SET_ATTR_GID) && want->st_gid != cur->st_gid &&
      (!owner || !in_group(req, want->st_gid)))
    return EPERM;
  if ((valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) &&
      !(valid & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) && !owner)
    return EPERM;
  return 0;
}

/* Store POSIX attributes p on the object behind node k (a directory's
 * marker, created if the directory is implicit). */
static int posix_store(const struct nkey *k, const store_posix *p) {
  if (k->kind != NODE_DIR) {
    int rc = store_object_posix_set(FS->st, k->bucket, k->key, p);
    return store_err(rc, "setattr", k->key);
  }
  int rc = store_object_posix_set(FS->st, k->bucket, k->key, p);
  if (rc != STORE_ERR_NO_KEY) return store_err(rc, "setattr", k->key);
  /* An implicit directory gets a marker holding its attributes: the
   * defaults it showed, with the change applied. */
  struct stat st;
  int e = dir_stat(k, &st);
  if (e) return e;
  store_posix full = {.has_mode = 1, .has_uid = 1, .has_gid = 1,
                      .has_mtime = 1, .has_ctime = 1,
                      .mode = st.st_mode, .uid = st.st_uid, .gid = st.st_gid,
                      .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
                                  st.st_mtim.tv_nsec};
  full.ctime_ns = full.mtime_ns;
  if (p->has_mode) full.mode = p->mode;
  if (p->has_uid) full.uid = p->uid;
  if (p->has_gid) full.gid = p->gid;
  if (p->has_mtime) full.mtime_ns = p->mtime_ns;
  if (p->has_ctime) full.ctime_ns = p->ctime_ns;
  if (p->has_atime) {
    full.has_atime = 1;
    full.atime_ns = p->atime_ns;
  }
  store_put_opts o = {.content_type = PATHMAP_DIR_CONTENT_TYPE, .posix = &full};
  rc = store_put(FS->st, k->bucket, k->key, "", 0, &o, NULL);
  return store_err(rc, "marker", k->key);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int valid, struct fuse_file_info *fi) {
  struct node *n = node_of(ino);
  struct nkey k;
  node_snapshot(n, &k);
  if (FS->read_only) return (void)fuse_reply_err(req, EROFS);
  int e = 0;
  int64_t now = now_ns();
  ns_shared();
  if (valid & FUSE_SET_ATTR_SIZE) {
    if (k.kind != NODE_FILE) {
      e = k.kind == NODE_DIR ? EISDIR : EINVAL;
      goto out;
    }
    pthread_mutex_lock(&n->mu);
    e = writer_get(n, &k);
    if (!e) e = store_err(store_writer_truncate(n->w, (uint64_t)attr->st_size),
                          "truncate", k.key);
    if (!e) node_mark_dirty(n);
    if (!e && fi) ((struct fh *)(uintptr_t)fi->fh)->wrote = 1;
    /* truncate(2) by path has no close to wait for: commit now. */
    if (!e && !fi) e = node_commit(n);
    pthread_mutex_unlock(&n->mu);
    if (e) goto out;
  }
  int other = valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
                       FUSE_SET_ATTR_GID | FUSE_SET_ATTR_ATIME |
                       FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME);
  if (other) {
    struct stat cur;
    e = node_stat(n, &cur);
    if (e) goto out;
    e = attr_permitted(req, &cur, attr, valid);
    if (e) goto out;
    if (k.is_store_root || !k.key[0]) {
      /* The store root and bucket roots have no object to hold
       * attributes: ownership and mode are fixed, times are ignored. */
      e = valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)
              ? EPERM : 0;
      goto out;
    }
    store_posix p = {.has_ctime = 1, .ctime_ns = now};
    if (valid & FUSE_SET_ATTR_MODE) {
      p.has_mode = 1;
      p.mode = (uint32_t)(node_type_bits(k.kind) | (attr->st_mode & 07777));
    }
    if (valid & FUSE_SET_ATTR_UID) {
      p.has_uid = 1;
      p.uid = attr->st_uid;
    }
    if (valid & FUSE_SET_ATTR_GID) {
      p.has_gid = 1;
      p.gid = attr->st_gid;
    }
    if (valid & FUSE_SET_ATTR_ATIME) {
      p.has_atime = 1;
      p.atime_ns = valid & FUSE_SET_ATTR_ATIME_NOW
                       ? now
                       : (int64_t)attr->st_atim.tv_sec * 1000000000 +
                             attr->st_atim.tv_nsec;
    }
    if (valid & FUSE_SET_ATTR_MTIME) {
      p.has_mtime = 1;
      p.mtime_ns = valid & FUSE_SET_ATTR_MTIME_NOW
                       ? now
                       : (int64_t)attr->st_mtim.tv_sec * 1000000000 +
                             attr->st_mtim.tv_nsec;
    }
    if (k.kind == NODE_DIR) {
      e = posix_store(&k, &p);
    } else {
      /* Pending writes first, so the attributes land on the new version
       * and the commit's own mtime does not overwrite an explicit one. */
      pthread_mutex_lock(&n->mu);
      e = node_commit(n);
      if (!e && !n->unlinked) e = posix_store(&k, &p);
      pthread_mutex_unlock(&n->mu);
    }
  }
out:
  ns_unlock();
  if (e) return (void)fuse_reply_err(req, e);
  struct stat st;
  e = node_stat(n, &st);
  if (e) return (void)fuse_reply_err(req, e);
  fuse_reply_attr(req, &st, FS->attr_timeout);
}

/* ------------------------------------------------------------------ */
/* Creating: create, mknod, mkdir, symlink                             */
/* ------------------------------------------------------------------ */
/* Attributes of directory node n for a child about to be created (its
 * setgid bit and group): what we last told the kernel, if recent. */
static int parent_stat(struct node *n, const struct nkey *k, struct stat *st) {
  int64_t t = mono_ns();
  pthread_mutex_lock(&n->mu);
  int fresh = n->has_last_st && t - n->last_st_at < 1000000000;
  if (fresh) *st = n->last_st;
  pthread_mutex_unlock(&n->mu);
  if (fresh) return 0;
  int e = dir_stat(k, st);
  if (!e) {
    pthread_mutex_lock(&n->mu);
    n->last_st = *st;
    n->has_last_st = 1;
    n->last_st_at = t;
    pthread_mutex_unlock(&n->mu);
  }
  return e;
}

/* Common checks for a new entry `name` in directory node `parent`, and
 * the key it gets.  Existence is the caller's: mkdir, symlink and mknod
 * put with if-none-match, which settles races on the same key; create
 * resolves the name itself (its file is committed only at close).  (A
 * race between "a" and "a/" created at once by two processes ends in the
 * documented conflict view, nothing is lost.) */
static int new_entry_prepare(fuse_req_t req, fuse_ino_t parent,
                             const char *name, int dir, struct nkey *pk,
                             char *key, struct stat *pst) {
  (void)req;
  struct node *pn = node_of(parent);
  node_snapshot(pn, pk);
  if (FS->read_only) return EROFS;
  if (pk->kind != NODE_DIR) return ENOTDIR;
  if (pk->is_store_root) return dir ? 0 : EPERM; /* files need a bucket */
  int e = pathmap_child_key(pk->key, name, dir, key, STORE_KEY_MAX + 2);
  if (!e) e = parent_stat(pn, pk, pst);
  /* An implicit directory whose last key was deleted over S3 is gone from
   * the catalog but still open or cached here: a new entry in it brings
   * the prefix back, as a PUT of such a key over S3 would. */
  if (e == ENOENT && pk->key[0]) {
    stat_dir_default(pst, pk->ino, now_ns());
    e = 0;
  }
  return e;
}

/* The entry of a child we just created with attributes p. */
static void reply_new(fuse_req_t req, const struct nkey *pk, const char *key,
                      int kind, uint64_t ino, const store_posix *p,
                      uint64_t size) {
  struct child c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  snprintf(c.bucket, sizeof c.bucket, "%s", pk->bucket);
  snprintf(c.key, sizeof c.key, "%s", key);
  c.ino = ino;
  if (kind == NODE_DIR) {
    stat_dir_default(&c.st, 0, p->mtime_ns);
  } else {
    memset(&c.st, 0, sizeof c.st);
    c.st.st_nlink = 1;
    c.st.st_size = (off_t)size;
    c.st.st_blksize = 128 * 1024;
    c.st.st_blocks = (blkcnt_t)((size + 511) / 512);
  }
  stat_apply_posix(&c.st, p, kind);
  reply_child(req, &c);
}

static int open_fh(struct node *n, int flags, struct fh **out) {
  struct fh *fh = calloc(1, sizeof *fh);
  if (!fh) return ENOMEM;
  fh->n = n;
  fh->flags = flags;
  pthread_mutex_init(&fh->mu, NULL);
  *out = fh;
  return 0;
}

static void fh_free(struct fh *fh) {
  if (!fh) return;
  store_reader_close(fh->r);
  pthread_mutex_destroy(&fh->mu);
  free(fh);
}

static void open_existing(fuse_req_t req, fuse_ino_t parent, const char *name,
                          mode_t mode, struct fuse_file_info *fi, int tries);
static void create_try(fuse_req_t req, fuse_ino_t parent, const char *name,
                       mode_t mode, struct fuse_file_info *fi, int tries);

/* Inos of files created here before they are in the catalog: random,
 * with bit 62 set, so they never meet the catalog's own (row ids) nor the
 * synthetic directory inos (bit 63). */
static uint64_t pending_ino(void) {
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint64_t)now_ns() * UINT64_C(6364136223846793005) + (uint64_t)getpid();
  return (r & ((UINT64_C(1) << 62) - 1)) | (UINT64_C(1) << 62);
}

/* create() makes no catalog write: the file is a node with an edit writer
 * (marked pending) until its first commit, at close, fsync, or an
 * operation that needs the object (rename, chmod, xattr...).  So a create
 * never waits for the catalog's writer lock while the kernel holds the
 * directory's lock, and a new file costs one durable commit, not two.
 * Lookups and readdir of this mount see pending files; S3 sees the file
 * when it is closed (close-to-open).  A pending file dies with a killed
 * mount, like any write not yet closed or fsynced. */
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi) {
  create_try(req, parent, name, mode, fi, 3);
}

/* create, or open what another process created meanwhile; if that goes
 * before we open it, create again (at most `tries` rounds). */
static void create_try(fuse_req_t req, fuse_ino_t parent, const char *name,
                       mode_t mode, struct fuse_file_info *fi, int tries) {
  struct nkey pk;
  char key[STORE_KEY_MAX + 2];
  struct stat pst;
  ns_shared();
  int e = new_entry_prepare(req, parent, name, 0, &pk, key, &pst);
  if (!e) { /* exists (in the catalog or pending here)? */
    struct child c;
    int re = resolve(&pk, name, &c);
    if (re == 0) e = c.kind == NODE_DIR ? EISDIR : EEXIST;
    else if (re != ENOENT) e = re;
  }
  if (e == EEXIST && !(fi->flags & O_EXCL)) {
    ns_unlock();
    return open_existing(req, parent, name, mode, fi, tries); /* exists */
  }
  if (e == EISDIR && (fi->flags & O_EXCL)) e = EEXIST;
  if (e) {
    ns_unlock();
    return (void)fuse_reply_err(req, e);
  }
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  int64_t now = now_ns();
  store_posix p = {.has_mode = 1, .has_uid = 1, .has_gid = 1, .has_mtime = 1,
                   .has_atime = 1, .has_ctime = 1,
                   .mode = S_IFREG | (mode & 07777), .uid = ctx->uid,
                   .gid = new_gid(req, &pst),
                   .mtime_ns = now, .atime_ns = now, .ctime_ns = now};
  store_writer *w = NULL;
  int rc = store_writer_open_edit(FS->st, pk.bucket, key, &w);
  uint64_t ino = pending_ino();
  if (!rc) rc = store_writer_set_ino(w, ino);
  if (rc == STORE_ERR_INVALID && !(fi->flags & O_EXCL)) {
    /* an S3 PUT of this key got in since resolve(): open that */
    store_writer_abort(w);
    ns_unlock();
    return open_existing(req, parent, name, mode, fi, tries);
  }
  if (rc) {
    store_writer_abort(w);
    ns_unlock();
    return (void)fuse_reply_err(req, rc == STORE_ERR_INVALID ? EEXIST
                                        : store_err(rc, "create", key));
  }
  struct node *n = node_ref(pk.bucket, key, NODE_FILE, ino);
  struct fh *fh = NULL;
  if (!n || open_fh(n, fi->flags, &fh)) {
    store_writer_abort(w);
    if (n) node_forget(n, 1);
    ns_unlock();
    return (void)fuse_reply_err(req, ENOMEM);
  }
  int acc = fi->flags & O_ACCMODE;
  int writable = acc == O_WRONLY || acc == O_RDWR;
  pthread_mutex_lock(&n->mu);
  if (n->w) store_writer_abort(n->w); /* a node just made has none */
  n->w = w;
  n->wposix = p;
  n->wbase[0] = 0;
  n->wctype = store_guess_content_type(key);
  __atomic_store_n(&n->pending, 1, __ATOMIC_RELAXED);
  n->dirty_ns = now;
  n->wdirty = 1; /* the file itself is the change: commit even if empty */
  n->open_count++;
  if (writable) n->wopen++;
  pthread_mutex_unlock(&n->mu);
  __atomic_add_fetch(&pending_count, 1, __ATOMIC_RELAXED);
  ns_unlock();
  fh->wrote = 1; /* close (flush) commits: S3 sees the file at once */
  struct stat st;
  memset(&st, 0, sizeof st);
  st.st_mode = S_IFREG | (mode & 07777);
  st.st_nlink = 1;
  st.st_uid = p.uid;
  st.st_gid = p.gid;
  st.st_blksize = 128 * 1024;
  ts_set(&st.st_mtim, now);
  st.st_atim = st.st_ctim = st.st_mtim;
  struct fuse_entry_param ent;
  fill_entry(&ent, n, &st);
  pthread_mutex_lock(&n->mu);
  n->last_st = ent.attr;
  n->has_last_st = 1;
  n->last_st_at = mono_ns();
  pthread_mutex_unlock(&n->mu);
  fi->fh = (uint64_t)(uintptr_t)fh;
  fi->keep_cache = 0;
  if (fuse_reply_create(req, &ent, fi) != 0) {
    pthread_mutex_lock(&n->mu); /* interrupted: the file was never seen */
    n->open_count--;
    if (writable && n->wopen) n->wopen--;
    if (n->pending && n->open_count == 0) {
      store_writer_abort(n->w);
      n->w = NULL;
      pending_clear(n);
      n->unlinked = 1;
      node_detach(n);
    }
    pthread_mutex_unlock(&n->mu);
    fh_free(fh);
    node_forget(n, 1);
  }
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev) {
  (void)rdev;
  /* Only regular files: devices, FIFOs and sockets have no object form. */
  if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);
  struct nkey pk;
  char key[STORE_KEY_MAX + 2];
  struct stat pst;
  ns_shared();
  int e = new_entry_prepare(req, parent, name, 0, &pk, key, &pst);
  if (e) {
    ns_unlock();
    return (void)fuse_reply_err(req, e);
  }
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  int64_t now = now_ns();
  store_posix p = {.has_mode = 1, .has_uid = 1, .has_gid = 1, .has_mtime = 1,
                   .has_atime = 1, .has_ctime = 1,
                   .mode = S_IFREG | (mode & 07777), .uid = ctx->uid,
                   .gid = new_gid(req, &pst),
                   .mtime_ns = now, .atime_ns = now, .ctime_ns = now};
  store_put_opts o = {.content_type = store_guess_content_type(key),
                      .posix = &p, .if_none_match_star = 1};
  store_object_info info;
  int rc = store_put(FS->st, pk.bucket, key, "", 0, &o, &info);
  ns_unlock();
  if (rc) return (void)fuse_reply_err(req, store_err(rc, "mknod", key));
  uint64_t ino = info.ino;
  store_object_info_free(&info);
  reply_new(req, &pk, key, NODE_FILE, ino, &p, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode) {
  struct nkey pk;
  char key[STORE_KEY_MAX + 2];
  struct stat pst;
  ns_shared();
  int e = new_entry_prepare(req, parent, name, 1, &pk, key, &pst);
  if (e) {
    ns_unlock();
    return (void)fuse_reply_err(req, e);
  }
  int rc;
  if (pk.is_store_root) {
    /* A top-level directory of a whole-store mount is a bucket. */
    rc = store_bucket_create(FS->st, name, "");
    ns_unlock();
    if (rc) return (void)fuse_reply_err(req, store_err(rc, "mkdir", name));
  } else {
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int64_t now = now_ns();
    uint32_t m = S_IFDIR | (mode & 07777);
    if (pst.st_mode & S_ISGID) m |= S_ISGID; /* setgid directories spread */
    store_posix p = {.has_mode = 1, .has_uid = 1, .has_gid = 1,
                     .has_mtime = 1, .has_atime = 1, .has_ctime = 1,
                     .mode = m, .uid = ctx->uid, .gid = new_gid(req, &pst),
                     .mtime_ns = now, .atime_ns = now, .ctime_ns = now};
    store_put_opts o = {.content_type = PATHMAP_DIR_CONTENT_TYPE,
                        .posix = &p, .if_none_match_star = 1};
    store_object_info info;
    rc = store_put(FS->st, pk.bucket, key, "", 0, &o, &info);
    ns_unlock();
    if (rc) return (void)fuse_reply_err(req, store_err(rc, "mkdir", key));
    uint64_t ino = info.ino;
    store_object_info_free(&info);
    return reply_new(req, &pk, key, NODE_DIR, ino, &p, 0);
  }
  struct child c;
  e = resolve(&pk, name, &c);
  if (e) return (void)fuse_reply_err(req, e);
  reply_child(req, &c);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name) {
  struct nkey pk;
  char key[STORE_KEY_MAX + 2];
  struct stat pst;
  size_t tl = strlen(link);
  if (tl >= PATH_MAX) return (void)fuse_reply_err(req, ENAMETOOLONG);
  ns_shared();
  int e = new_entry_prepare(req, parent, name, 0, &pk, key, &pst);
  if (e) {
    ns_unlock();
    return (void)fuse_reply_err(req, e);
  }
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  int64_t now = now_ns();
  /* s3fs convention: the body is the target, the mode says S_IFLNK. */
  store_posix p = {.has_mode = 1, .has_uid = 1, .has_gid = 1, .has_mtime = 1,
                   .has_atime = 1, .has_ctime = 1, .mode = S_IFLNK | 0777,
                   .uid = ctx->uid, .gid = new_gid(req, &pst),
                   .mtime_ns = now, .atime_ns = now, .ctime_ns = now};
  store_put_opts o = {.posix = &p, .if_none_match_star = 1};
  store_object_info info;
  int rc = store_put(FS->st, pk.bucket, key, link, tl, &o, &info);
  ns_unlock();
  if (rc) return (void)fuse_reply_err(req, store_err(rc, "symlink", key));
  uint64_t ino = info.ino;
  store_object_info_free(&info);
  reply_new(req, &pk, key, NODE_LINK, ino, &p, tl);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  struct nkey k;
  node_snapshot(node_of(ino), &k);
  if (k.kind != NODE_LINK) return (void)fuse_reply_err(req, EINVAL);
  store_reader *r;
  int rc = store_reader_open(FS->st, k.bucket, k.key, NULL, &r, NULL);
  if (rc) return (void)fuse_reply_err(req, store_err(rc, "readlink", k.key));
  char buf[PATH_MAX];
  size_t got = 0;
  rc = store_read(r, buf, sizeof buf - 1, 0, &got);
  store_reader_close(r);
  if (rc) return (void)fuse_reply_err(req, store_err(rc, "readlink", k.key));
  buf[got] = '\0';
  fuse_reply_readlink(req, buf);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname) {
  (void)ino;
  (void)newparent;
  (void)newname;
  /* An object has one key: no hard links. */
  fuse_reply_err(req, EPERM);
}

/* ------------------------------------------------------------------ */
/* Removing: unlink, rmdir                                             */
/* ------------------------------------------------------------------ */
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct nkey pk;
  node_snapshot(node_of(parent), &pk);
  if (FS->read_only) return (void)fuse_reply_err(req, EROFS);
  if (pk.is_store_root) return (void)fuse_reply_err(req, EISDIR);
  ns_shared();
  struct child c;
  int e = resolve(&pk, name, &c);
  if (!e && c.kind == NODE_DIR) e = EISDIR;
  if (e) {
    ns_unlock();
    return (void)fuse_reply_err(req, e);
  }
  struct node *n = node_find_pin(c.bucket, c.key);
  struct nkey k;
  int kept = 0, pending = 0;
  if (n) {
    node_snapshot(n, &k);
    pthread_mutex_lock(&n->mu);
    pending = n->pending; /* nothing in the catalog to delete */
    if (!pending) kept = node_keep_open_bytes(n, &k);
  }
  int rc = pending ? STORE_OK : store_delete(FS->st, c.bucket, c.key);
  if (n) {
    if (!rc) {
      n->unlinked = 1; /* never committed again; freed at last close */
      pending_clear(n);
      node_detach(n);
    } else {
      node_drop_kept(n, kept);
    }
    pthread_mutex_unlock(&n->mu);
    node_unpin(n);
  }
  if (!rc && !pending) keep_dir(pk.bucket, pk.key);
  ns_unlock();
  fuse_reply_err(req, store_err(rc, "unlink", c.key));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct nkey pk;
  node_snapshot(node_of(parent), &pk);
  if (FS->read_only) return (void)fuse_reply_err(req, EROFS);
  ns_shared();
  int e = 0;
  if (pk.is_store_root) {
    int rc = pending_under(name, "") ? STORE_ERR_BUCKET_NOT_EMPTY
                                     : store_bucket_delete(FS->st, name);
    ns_unlock();
    return (void)fuse_reply_err(req, store_err(rc, "rmdir", name));
  }
  struct child c;
  e = resolve(&pk, name, &c);
  if (!e && c.kind != NODE_DIR) e = ENOTDIR;
  if (e) goto out;
  /* Empty means no key under the prefix but the marker itself: keys the
   * mount hides (a//b, over-long names) count, so they are never lost. */
  int exists = 0, only_marker = 0;
  e = prefix_exists(c.bucket, c.key, &exists, &only_marker);
  if (e) goto out;
  if ((exists && !only_marker) || pending_under(c.bucket, c.key)) {
    e = ENOTEMPTY;
    goto out;
  }
  int removed = 0;
  if (exists) {
    int rc = store_delete(FS->st, c.bucket, c.key);
    if (rc && rc != STORE_ERR_NO_KEY) {
      e = store_err(rc, "rmdir", c.key);
      goto out;
    }
    removed += rc == 0;
  }
  store_object_info info;
  char which[STORE_KEY_MAX + 32];
  while (legacy_marker(c.bucket, c.key, &info, which, sizeof which) == 0) {
    store_object_info_free(&info);
    if (store_delete(FS->st, c.bucket, which) != STORE_OK) break;
    removed++;
  }
  if (!removed) {
    e = ENOENT;
    goto out;
  }
  struct node *n = node_find_pin(c.bucket, c.key);
  if (n) {
    node_detach(n);
    node_unpin(n);
  }
  keep_dir(pk.bucket, pk.key);
out:
  ns_unlock();
  fuse_reply_err(req, e);
}

/* ------------------------------------------------------------------ */
/* rename                                                              */
/* ------------------------------------------------------------------ */
/* After a file rename: a Content-Type we guessed from the old name is
 * re-guessed from the new one ("x.tmp" renamed to "x.html"). */
static void fix_content_type(const char *bucket, const char *old_key,
                             const char *new_key) {
  const char *was = store_guess_content_type(old_key);
  const char *now = store_guess_content_type(new_key);
  if (!strcmp(was, now)) return;
  store_object_info info;
  if (head(bucket, new_key, &info) != 0) return;
  if (info.content_type && !strcmp(info.content_type, was)) {
    store_put_opts po = {.content_type = now, .meta = info.meta,
                         .n_meta = info.n_meta, .headers = info.headers,
                         .n_headers = info.n_headers};
    store_copy_opts co = {.replace_meta = 1, .put = &po};
    int rc = store_copy(FS->st, bucket, new_key, bucket, new_key, &co, NULL);
    if (rc) store_err(rc, "content type", new_key);
  }
  store_object_info_free(&info);
}

struct pinlist {
  struct node **v;
  size_t n, cap;
};

static void pin_collect(struct node *n, void *arg) {
  struct pinlist *l = arg;
  if (n->kind == NODE_DIR) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct node **v = realloc(l->v, cap * sizeof *v);
    if (!v) return;
    l->v = v;
    l->cap = cap;
  }
  n->pins++; /* table lock is held by nodes_foreach */
  l->v[l->n++] = n;
}

static int rename_dir(const struct child *src, const struct child *dst,
                      unsigned flags) {
  if (dst->kind && dst->kind != NODE_DIR) return ENOTDIR;
  if (dst->kind && (flags & RENAME_NOREPLACE)) return EEXIST;
  if (!strncmp(dst->key, src->key, strlen(src->key))) return EINVAL;
  /* Files below with pending writes commit under their old keys first;
   * the exclusive ns_lock keeps new writers out until the re-keying. */
  struct pinlist l = {0};
  nodes_foreach(src->bucket, src->key, pin_collect, &l);
  int e = 0;
  for (size_t i = 0; i < l.n; i++) {
    pthread_mutex_lock(&l.v[i]->mu);
    int ce = node_commit(l.v[i]);
    pthread_mutex_unlock(&l.v[i]->mu);
    if (ce && !e) e = ce;
  }
  for (size_t i = 0; i < l.n; i++) node_unpin(l.v[i]);
  free(l.v);
  if (e) return e;
  uint64_t count = 0;
  int rc = store_rename_prefix(FS->st, src->bucket, src->key, dst->key, &count);
  if (rc == STORE_ERR_EXISTS) return ENOTEMPTY; /* POSIX: target not empty */
  if (rc && rc != STORE_ERR_NO_KEY) return store_err(rc, "rename", src->key);
  /* Old-style markers of the source become a "dst/" marker. */
  store_object_info info;
  char which[STORE_KEY_MAX + 32];
  int legacy = 0;
  while (legacy_marker(src->bucket, src->key, &info, which, sizeof which) == 0) {
    store_posix p;
    posix_decode(&info, &p);
    p.has_mode = 1;
    p.mode = S_IFDIR | (p.mode & 07777 ? p.mode & 07777 : 0777 & ~FS->umask);
    store_object_info_free(&info);
    store_put_opts o = {.content_type = PATHMAP_DIR_CONTENT_TYPE, .posix = &p,
                        .if_none_match_star = 1};
    int prc = store_put(FS->st, src->bucket, dst->key, "", 0, &o, NULL);
    if (prc && prc != STORE_ERR_PRECONDITION)
      return store_err(prc, "rename", dst->key);
    if (store_delete(FS->st, src->bucket, which) != STORE_OK) break;
    legacy = 1;
  }
  if (rc == STORE_ERR_NO_KEY && !legacy) return ENOENT;
  nodes_move_prefix(src->bucket, src->key, dst->key);
  return 0;
}

static int rename_file(const struct child *src, const struct child *dst,
                       unsigned flags) {
  if (dst->kind == NODE_DIR) return EISDIR;
  if (dst->kind && (flags & RENAME_NOREPLACE)) return EEXIST;
  struct node *sn = node_find_pin(src->bucket, src->key);
  struct node *dn = dst->kind ? node_find_pin(dst->bucket, dst->key) : NULL;
  if (dn == sn) {
    if (dn) node_unpin(dn);
    dn = NULL;
  }
  /* Two node locks: in address order. */
  struct node *first = sn, *second = dn;
  if (first && second && (uintptr_t)second < (uintptr_t)first) {
    first = dn;
    second = sn;
  }
  if (first) pthread_mutex_lock(&first->mu);
  if (second) pthread_mutex_lock(&second->mu);
  int e = 0, kept = 0;
  if (sn) e = node_commit(sn); /* pending bytes go with the name */
  if (!e && dn) {
    struct nkey dk;
    node_snapshot(dn, &dk);
    kept = node_keep_open_bytes(dn, &dk);
  }
  if (!e) {
    int rc = store_rename(FS->st, src->bucket, src->key, dst->key,
                          (flags & RENAME_NOREPLACE) != 0);
    e = store_err(rc, "rename", src->key);
  }
  if (dn && !e) { /* the replaced file lives on for its open handles */
    dn->unlinked = 1;
    node_detach(dn);
  } else if (dn) {
    node_drop_kept(dn, kept);
  }
  if (!e && sn) node_move(sn, dst->key);
  if (second) pthread_mutex_unlock(&second->mu);
  if (first) pthread_mutex_unlock(&first->mu);
  if (sn) node_unpin(sn);
  if (dn) node_unpin(dn);
  if (!e) fix_content_type(src->bucket, src->key, dst->key);
  return e;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  if (flags & ~RENAME_NOREPLACE) /* RENAME_EXCHANGE, RENAME_WHITEOUT */
    return (void)fuse_reply_err(req, EINVAL);
  if (FS->read_only) return (void)fuse_reply_err(req, EROFS);
  struct nkey pk, npk;
  node_snapshot(node_of(parent), &pk);
  node_snapshot(node_of(newparent), &npk);
  /* Buckets are not renamed and keys do not move between buckets: EXDEV
   * makes mv(1) copy instead. */
  if (pk.is_store_root || npk.is_store_root || strcmp(pk.bucket, npk.bucket))
    return (void)fuse_reply_err(req, EXDEV);
  struct child src, dst;
  ns_shared();
  int e = resolve(&pk, name, &src);
  if (!e && src.kind == NODE_DIR) {
    /* A directory rename re-keys nodes: take the lock exclusively and
     * look again, since things may have changed meanwhile. */
    ns_unlock();
    ns_exclusive();
    node_snapshot(node_of(parent), &pk);
    node_snapshot(node_of(newparent), &npk);
    e = resolve(&pk, name, &src);
  }
  if (e) goto out;
  char nkey[STORE_KEY_MAX + 2];
  e = pathmap_child_key(npk.key, newname, src.kind == NODE_DIR, nkey,
                        sizeof nkey);
  if (e) goto out;
  e = resolve(&npk, newname, &dst);
  if (e == ENOENT) {
    memset(&dst, 0, sizeof dst);
    snprintf(dst.bucket, sizeof dst.bucket, "%s", npk.bucket);
    snprintf(dst.key, sizeof dst.key, "%s", nkey);
    e = 0;
  } else if (e) {
    goto out;
  }
  if (dst.kind == src.kind && !strcmp(dst.key, src.key)) goto out; /* same */
  if (src.kind == NODE_DIR) {
    if (!strncmp(nkey, src.key, strlen(src.key))) {
      e = EINVAL; /* into itself */
      goto out;
    }
    if (dst.kind == NODE_DIR) { /* an existing target must be empty */
      int exists = 0, only_marker = 0;
      e = flags & RENAME_NOREPLACE ? EEXIST : 0;
      if (!e) e = prefix_exists(dst.bucket, dst.key, &exists, &only_marker);
      if (!e && exists && !only_marker) e = ENOTEMPTY;
      if (e) goto out;
    }
    if (dst.kind != NODE_DIR && dst.kind) {
      e = ENOTDIR;
      goto out;
    }
    struct child d2 = dst;
    snprintf(d2.key, sizeof d2.key, "%s", nkey);
    e = rename_dir(&src, &d2, flags);
  } else {
    if (dst.kind && dst.kind != NODE_DIR) /* keep the conflict key */
      snprintf(nkey, sizeof nkey, "%s", dst.key);
    struct child d2 = dst;
    snprintf(d2.key, sizeof d2.key, "%s", nkey);
    e = rename_file(&src, &d2, flags);
  }
  if (!e) {
    char pp[STORE_KEY_MAX + 2];
    parent_prefix(src.key, pp, sizeof pp);
    keep_dir(src.bucket, pp);
  }
out:
  ns_unlock();
  fuse_reply_err(req, e);
}

/* ------------------------------------------------------------------ */
/* open, read, write, flush, release, fsync                            */
/* ------------------------------------------------------------------ */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct node *n = node_of(ino);
  struct nkey k;
  node_snapshot(n, &k);
  if (k.kind == NODE_DIR) return (void)fuse_reply_err(req, EISDIR);
  if (k.kind != NODE_FILE) return (void)fuse_reply_err(req, ELOOP);
  int acc = fi->flags & O_ACCMODE;
  int writable = acc == O_WRONLY || acc == O_RDWR;
  if (writable && FS->read_only) return (void)fuse_reply_err(req, EROFS);
  struct fh *fh;
  int e = open_fh(n, fi->flags, &fh);
  if (e) return (void)fuse_reply_err(req, e);
  ns_shared();
  pthread_mutex_lock(&n->mu);
  int stale = 0;
  if (!n->unlinked && !(n->w && n->wdirty)) {
    /* Deleted or replaced by another process since the kernel cached the
     * name?  Deleted: ENOENT.  Replaced: the kernel's size and mtime must
     * go (pages go anyway: no keep_cache), so this open reads the new
     * version whole, before the change poller gets to it; and a writer
     * that only pins the old version is rebased on the new one. */
    store_object_info info;
    e = head(k.bucket, k.key, &info);
    /* Deleted elsewhere while the kernel still had the name: ESTALE makes
     * the kernel redo the path walk with a real lookup (LOOKUP_REVAL),
     * after which open() fails with ENOENT -- or, with O_CREAT (which
     * FUSE does not pass to OPEN), creates the file as POSIX says. */
    if (e == ENOENT) e = ESTALE;
    if (!e) {
      struct stat cur;
      stat_object(&info, k.kind, k.ino, &cur);
      stale = !n->has_last_st || cur.st_size != n->last_st.st_size ||
              cur.st_mtim.tv_sec != n->last_st.st_mtim.tv_sec ||
              cur.st_mtim.tv_nsec != n->last_st.st_mtim.tv_nsec;
      if (n->w && strcmp(info.etag, n->wbase) != 0) writer_drop_clean(n);
      store_object_info_free(&info);
    }
  }
  /* A writable handle edits the version current now (see writer_get). */
  if (!e && writable) e = writer_get(n, &k);
  if (!e && writable && (fi->flags & O_TRUNC)) {
    e = store_err(store_writer_truncate(n->w, 0), "truncate", k.key);
    if (!e) {
      node_mark_dirty(n);
      fh->wrote = 1;
    }
  }
  if (!e) {
    n->open_count++;
    if (writable) n->wopen++;
  }
  uint64_t gen = n->gen;
  int has_writer = n->w != NULL;
  int direct = !e && n->w && !n->wdirty &&
               version_is_fresh(n, n->wbase, n->wbase_ns);
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  if (!e && !writable && !has_writer) {
    /* Pin the version being opened: the kernel clips reads to the size it
     * cached at open, so the bytes must come from that same version even
     * if another process replaces the key before the first read.  (read()
     * opens the reader itself when this fails, and reports the error.) */
    store_object_info info;
    if (store_reader_open(FS->st, k.bucket, k.key, NULL, &fh->r, &info) == 0) {
      fh->gen = gen;
      pthread_mutex_lock(&n->mu);
      direct = version_is_fresh(n, info.etag, info.mtime_ns);
      pthread_mutex_unlock(&n->mu);
      store_object_info_free(&info);
    } else {
      fh->r = NULL;
    }
  }
  fi->direct_io = direct;
  if (e) {
    fh_free(fh);
    return (void)fuse_reply_err(req, e);
  }
  fi->fh = (uint64_t)(uintptr_t)fh;
  fi->keep_cache = 0; /* another process may have changed it: reread */
  /* Attributes only (offset < 0): takes no lock an open could hold. */
  if (stale) fuse_lowlevel_notify_inval_inode(FS->se, ino, -1, 0);
  if (fuse_reply_open(req, fi) != 0) {
    pthread_mutex_lock(&n->mu);
    n->open_count--;
    if (writable && n->wopen) n->wopen--;
    if (n->wopen == 0) writer_drop_clean(n);
    pthread_mutex_unlock(&n->mu);
    fh_free(fh);
  }
}

/* create() lost a race with another creator: open what is there. */
static void open_existing(fuse_req_t req, fuse_ino_t parent, const char *name,
                          mode_t mode, struct fuse_file_info *fi, int tries) {
  struct nkey pk;
  node_snapshot(node_of(parent), &pk);
  struct child c;
  int e = resolve(&pk, name, &c);
  if (e == ENOENT && tries > 1) /* deleted since create() saw it */
    return create_try(req, parent, name, mode, fi, tries - 1);
  if (!e && c.kind == NODE_DIR) e = EISDIR;
  if (e) return (void)fuse_reply_err(req, e);
  struct node *n = node_ref(c.bucket, c.key, c.kind, c.ino);
  if (!n) return (void)fuse_reply_err(req, ENOMEM);
  struct fh *fh;
  if (open_fh(n, fi->flags, &fh)) {
    node_forget(n, 1);
    return (void)fuse_reply_err(req, ENOMEM);
  }
  struct nkey k;
  node_snapshot(n, &k);
  int acc = fi->flags & O_ACCMODE;
  int writable = acc == O_WRONLY || acc == O_RDWR;
  ns_shared();
  pthread_mutex_lock(&n->mu);
  if (writable) {
    if (n->w && !n->wdirty && strcmp(c.etag, n->wbase) != 0)
      writer_drop_clean(n); /* pins a version that is gone: rebase */
    e = writer_get(n, &k);
  }
  if (!e && writable && (fi->flags & O_TRUNC)) {
    e = store_err(store_writer_truncate(n->w, 0), "truncate", k.key);
    if (!e) {
      node_mark_dirty(n);
      fh->wrote = 1;
      c.st.st_size = 0;
    }
  }
  if (!e) {
    n->open_count++;
    if (writable) n->wopen++;
  }
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  if (e) {
    fh_free(fh);
    node_forget(n, 1);
    return (void)fuse_reply_err(req, e);
  }
  struct fuse_entry_param ent;
  fill_entry(&ent, n, &c.st);
  pthread_mutex_lock(&n->mu);
  n->last_st = ent.attr;
  n->has_last_st = 1;
  n->last_st_at = mono_ns();
  pthread_mutex_unlock(&n->mu);
  fi->fh = (uint64_t)(uintptr_t)fh;
  fi->keep_cache = 0;
  if (fuse_reply_create(req, &ent, fi) != 0) {
    pthread_mutex_lock(&n->mu);
    n->open_count--;
    if (writable && n->wopen) n->wopen--;
    if (n->wopen == 0) writer_drop_clean(n);
    pthread_mutex_unlock(&n->mu);
    fh_free(fh);
    node_forget(n, 1);
  }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  struct node *n = node_of(ino);
  struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
  char *buf = malloc(size ? size : 1);
  if (!buf) return (void)fuse_reply_err(req, ENOMEM);
  size_t got = 0;
  int rc = STORE_OK;
  pthread_mutex_lock(&n->mu);
  if (n->w) { /* pending writes: the writer has the current bytes */
    rc = store_pread_writer(n->w, buf, size, (uint64_t)off, &got);
    pthread_mutex_unlock(&n->mu);
  } else {
    uint64_t gen = n->gen;
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_lock(&fh->mu);
    for (int attempt = 0; attempt < 2; attempt++) {
      if (!fh->r || fh->gen != gen || attempt) {
        struct nkey k;
        node_snapshot(n, &k);
        store_reader_close(fh->r);
        fh->r = NULL;
        rc = store_reader_open(FS->st, k.bucket, k.key, NULL, &fh->r, NULL);
        if (rc) break;
        fh->gen = gen;
      }
      rc = store_read(fh->r, buf, size, (uint64_t)off, &got);
      /* Replaced under us (by a commit of ours or another process):
       * read the current version instead. */
      if (rc != STORE_ERR_NO_KEY) break;
    }
    pthread_mutex_unlock(&fh->mu);
  }
  if (rc) {
    free(buf);
    return (void)fuse_reply_err(req, store_err(rc, "read", NULL));
  }
  fuse_reply_buf(req, buf, got);
  free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi) {
  struct node *n = node_of(ino);
  struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
  struct nkey k;
  node_snapshot(n, &k);
  ns_shared();
  pthread_mutex_lock(&n->mu);
  int e = writer_get(n, &k);
  if (!e) {
    uint64_t at = (fh->flags & O_APPEND) ? store_writer_size(n->w) : (uint64_t)off;
    e = store_err(store_pwrite(n->w, buf, size, at), "write", k.key);
  }
  if (!e) {
    node_mark_dirty(n);
    fh->wrote = 1;
  }
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  if (e) return (void)fuse_reply_err(req, e);
  fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino,
                     struct fuse_file_info *fi) {
  struct node *n = node_of(ino);
  struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
  int e = 0;
  if (fh->wrote) {
    ns_shared();
    pthread_mutex_lock(&n->mu);
    e = node_commit(n);
    fh->wrote = 0;
    pthread_mutex_unlock(&n->mu);
    ns_unlock();
  }
  fuse_reply_err(req, e);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi) {
  (void)datasync;
  (void)fi;
  struct node *n = node_of(ino);
  struct nkey k;
  node_snapshot(n, &k);
  ns_shared();
  pthread_mutex_lock(&n->mu);
  int e = node_commit(n);
  /* Writable handles stay open: go on editing the version just committed
   * (an S3 PUT after this fsync must not become the base of later writes). */
  if (!e && n->wopen && !n->unlinked) writer_get(n, &k);
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  fuse_reply_err(req, e);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  struct node *n = node_of(ino);
  struct fh *fh = (struct fh *)(uintptr_t)fi->fh;
  int acc = fh->flags & O_ACCMODE;
  ns_shared();
  pthread_mutex_lock(&n->mu);
  if (n->open_count) n->open_count--;
  if ((acc == O_WRONLY || acc == O_RDWR) && n->wopen) n->wopen--;
  if (n->w && n->unlinked) {
    if (n->open_count == 0) { /* removed while open: the bytes go */
      store_writer_abort(n->w);
      n->w = NULL;
    }
  } else if (n->w && n->wdirty) {
    if (n->open_count == 0) node_commit(n); /* nobody to tell: logged */
  } else if (n->wopen == 0) {
    writer_drop_clean(n); /* opened for writing, never written */
  }
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  fh_free(fh);
  fuse_reply_err(req, 0);
}

/* ------------------------------------------------------------------ */
/* Directories: opendir, readdir, releasedir                           */
/* ------------------------------------------------------------------ */
struct dent {
  char *name;
  unsigned type; /* S_IFDIR, S_IFREG, S_IFLNK */
  uint64_t ino;
};

/* A directory stream: one page of the listing at a time, so a directory
 * of any size costs one page of memory.  Offsets: 1 ".", 2 "..", and the
 * i-th (0-based) entry of the whole listing is i + 3. */
struct dirh {
  pthread_mutex_t mu;
  struct nkey k;
  struct dent *ents;
  size_t n;
  uint64_t base;  /* listing index of ents[0] */
  char *marker;   /* listing resumes after this key */
  int started, eof;
};

static void dirh_clear(struct dirh *d) {
  for (size_t i = 0; i < d->n; i++) free(d->ents[i].name);
  free(d->ents);
  d->ents = NULL;
  d->n = 0;
}

static void dirh_reset(struct dirh *d) {
  dirh_clear(d);
  free(d->marker);
  d->marker = NULL;
  d->base = 0;
  d->started = d->eof = 0;
}

static int dent_push(struct dirh *d, size_t *cap, const char *name, size_t nl,
                     unsigned type, uint64_t ino) {
  if (d->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    struct dent *ne = realloc(d->ents, nc * sizeof *ne);
    if (!ne) return ENOMEM;
    d->ents = ne;
    *cap = nc;
  }
  char *s = malloc(nl + 1);
  if (!s) return ENOMEM;
  memcpy(s, name, nl);
  s[nl] = '\0';
  d->ents[d->n++] = (struct dent){s, type, ino};
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is there a key under `target` (a prefix)?  The page answers when it
 * covers that part of the key space; else one more query. */
static int page_has_prefix(const struct nkey *k, const store_list_result *r,
                           const char *target) {
  const char *t = target;
  if (r->n_prefixes &&
      bsearch(&t, r->prefixes, r->n_prefixes, sizeof *r->prefixes, cmp_str))
    return 1;
  if (!r->truncated || (r->next_marker && strcmp(target, r->next_marker) < 0))
    return 0;
  int exists = 0;
  dir_exists(k->bucket, target, &exists);
  return exists;
}

static int key_exists(const char *bucket, const char *key) {
  store_object_info info;
  if (head(bucket, key, &info) != 0) return 0;
  store_object_info_free(&info);
  return 1;
}

/* Load the next page of the listing into d->ents. */
struct pending_scan {
  size_t dl;     /* length of the directory's prefix */
  char **names;  /* pending direct children (malloc'd) */
  uint64_t *inos;
  size_t n, cap;
  int e;
};

/* Under the table lock: note the pending direct children (no SQL here). */
static void pending_dent_cb(struct node *n, void *arg) {
  struct pending_scan *ps = arg;
  if (ps->e || n->kind != NODE_FILE || !is_pending(n)) return;
  const char *name = n->key + ps->dl;
  if (!*name || strchr(name, '/')) return; /* not a direct child */
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 16;
    char **nn = realloc(ps->names, cap * sizeof *nn);
    if (nn) ps->names = nn;
    uint64_t *ni = nn ? realloc(ps->inos, cap * sizeof *ni) : NULL;
    if (ni) ps->inos = ni;
    if (!nn || !ni) {
      ps->e = ENOMEM;
      return;
    }
    ps->cap = cap;
  }
  if (!(ps->names[ps->n] = strdup(name))) {
    ps->e = ENOMEM;
    return;
  }
  ps->inos[ps->n++] = n->ino;
}

/* The last page of a listing: add the files created here and not committed
 * yet, unless the catalog has them by now (then the listing showed them). */
static int dirh_add_pending(struct dirh *d, size_t *cap) {
  struct pending_scan ps = {.dl = strlen(d->k.key)};
  nodes_foreach(d->k.bucket, d->k.key, pending_dent_cb, &ps);
  int e = ps.e;
  char key[2 * STORE_KEY_MAX + 8];
  for (size_t i = 0; i < ps.n; i++) {
    snprintf(key, sizeof key, "%s%s", d->k.key, ps.names[i]);
    if (!e && !key_exists(d->k.bucket, key))
      e = dent_push(d, cap, ps.names[i], strlen(ps.names[i]), S_IFREG,
                    ps.inos[i]);
    free(ps.names[i]);
  }
  free(ps.names);
  free(ps.inos);
  return e;
}

static int dirh_load(struct dirh *d) {
  d->base += d->n;
  dirh_clear(d);
  size_t cap = 0;
  int e = 0;
  if (d->k.is_store_root) {
    store_bucket_info *bl;
    size_t nb;
    int rc = store_bucket_list(FS->st, &bl, &nb);
    if (rc) return store_err(rc, "list buckets", NULL);
    for (size_t i = 0; i < nb && !e; i++)
      e = dent_push(d, &cap, bl[i].name, strlen(bl[i].name), S_IFDIR,
                    dir_ino(bl[i].name, "", 0, 0));
    store_bucket_list_free(bl);
    d->eof = 1;
    return e;
  }
  const char *dk = d->k.key;
  store_list_opts o = {.prefix = dk, .delimiter = "/",
                       .start_after = d->marker, .max_keys = 1000};
  store_list_result r;
  int rc = store_list(FS->st, d->k.bucket, &o, &r);
  if (rc) return store_err(rc, "list", dk);
  char tmp[STORE_KEY_MAX + 64];
  size_t ie = 0, ip = 0;
  while (!e && (ie < r.n_entries || ip < r.n_prefixes)) {
    int take_prefix = ie == r.n_entries ||
        (ip < r.n_prefixes && strcmp(r.prefixes[ip], r.entries[ie].key) < 0);
    size_t off, len;
    if (take_prefix) {
      const char *cp = r.prefixes[ip++];
      if (pathmap_common_prefix(dk, cp, &off, &len) == PM_DIR)
        e = dent_push(d, &cap, cp + off, len, S_IFDIR,
                      dir_ino(d->k.bucket, cp, 0, 1));
      continue;
    }
    const store_list_entry *en = &r.entries[ie++];
    int kind = pathmap_entry(dk, en->key, en->size, en->mode, &off, &len);
    if (kind == PM_LEGACY_DIR) {
      /* "d/" sorts before "d_$folder$", maybe on an earlier page: ask. */
      snprintf(tmp, sizeof tmp, "%s%.*s/", dk, (int)len, en->key + off);
      int exists = 0;
      dir_exists(d->k.bucket, tmp, &exists);
      if (exists) continue; /* shown as the common prefix */
      size_t tl = strlen(tmp);
      tmp[tl - 1] = '\0';
      /* "d_$folder$" beside a file "d": the file is shown */
      if (strcmp(tmp, en->key) && key_exists(d->k.bucket, tmp)) continue;
      tmp[tl - 1] = '/';
      e = dent_push(d, &cap, en->key + off, len, S_IFDIR,
                    dir_ino(d->k.bucket, tmp, en->ino, 0));
    } else if (kind == PM_FILE) {
      unsigned type = S_ISLNK(en->mode) ? S_IFLNK : S_IFREG;
      snprintf(tmp, sizeof tmp, "%s/", en->key);
      if (!page_has_prefix(&d->k, &r, tmp)) {
        e = dent_push(d, &cap, en->key + off, len, type, en->ino);
        continue;
      }
      /* file "a" and directory "a/": the file shows as "a.~file",
       * unless a key of that name exists (it is listed itself). */
      snprintf(tmp, sizeof tmp, "%.*s%s", (int)len, en->key + off,
               PATHMAP_CONFLICT_SUFFIX);
      if (strlen(tmp) > FUSEFS_NAME_MAX) continue;
      char full[2 * STORE_KEY_MAX + 128];
      snprintf(full, sizeof full, "%s%s", dk, tmp);
      if (key_exists(d->k.bucket, full)) continue;
      e = dent_push(d, &cap, tmp, strlen(tmp), type, en->ino);
    }
  }
  if (!e) {
    free(d->marker);
    d->marker = NULL;
    if (r.truncated && r.next_marker) {
      d->marker = strdup(r.next_marker);
      if (!d->marker) e = ENOMEM;
    } else {
      d->eof = 1;
      if (any_pending()) e = dirh_add_pending(d, &cap);
    }
  }
  store_list_result_free(&r);
  return e;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  struct dirh *d = calloc(1, sizeof *d);
  if (!d) return (void)fuse_reply_err(req, ENOMEM);
  pthread_mutex_init(&d->mu, NULL);
  node_snapshot(node_of(ino), &d->k);
  if (d->k.kind != NODE_DIR) {
    free(d);
    return (void)fuse_reply_err(req, ENOTDIR);
  }
  fi->fh = (uint64_t)(uintptr_t)d;
  if (fuse_reply_open(req, fi) != 0) {
    pthread_mutex_destroy(&d->mu);
    free(d);
  }
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
  (void)ino;
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  char *buf = malloc(size);
  if (!buf) return (void)fuse_reply_err(req, ENOMEM);
  size_t used = 0;
  int e = 0;
  struct stat st;
  memset(&st, 0, sizeof st);
  pthread_mutex_lock(&d->mu);
  uint64_t pos = off < 0 ? 0 : (uint64_t)off;
  if (pos == 0) {
    st.st_ino = d->k.ino;
    st.st_mode = S_IFDIR;
    size_t need = fuse_add_direntry(req, buf + used, size - used, ".", &st, 1);
    if (need > size - used) goto done;
    used += need;
    pos = 1;
  }
  if (pos == 1) {
    st.st_ino = d->k.ino;
    st.st_mode = S_IFDIR;
    size_t need = fuse_add_direntry(req, buf + used, size - used, "..", &st, 2);
    if (need > size - used) goto done;
    used += need;
    pos = 2;
  }
  uint64_t want = pos - 2;
  if (!d->started || want < d->base) { /* first call, rewind or seek back */
    dirh_reset(d);
    d->started = 1;
    e = dirh_load(d);
  }
  while (!e) {
    while (!e && want >= d->base + d->n && !d->eof) e = dirh_load(d);
    if (e || want >= d->base + d->n) break;
    const struct dent *de = &d->ents[want - d->base];
    st.st_ino = de->ino;
    st.st_mode = de->type;
    size_t need = fuse_add_direntry(req, buf + used, size - used, de->name,
                                    &st, (off_t)(want + 3));
    if (need > size - used) break;
    used += need;
    want++;
  }
done:
  pthread_mutex_unlock(&d->mu);
  if (e && used == 0) {
    free(buf);
    return (void)fuse_reply_err(req, e);
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi) {
  (void)ino;
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  dirh_reset(d);
  pthread_mutex_destroy(&d->mu);
  free(d);
  fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi) {
  (void)ino;
  (void)datasync;
  (void)fi;
  fuse_reply_err(req, 0); /* every namespace change is durable already */
}

/* ------------------------------------------------------------------ */
/* statfs                                                              */
/* ------------------------------------------------------------------ */
static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  store_space sp;
  int rc = store_space_get(FS->st, &sp);
  if (rc) return (void)fuse_reply_err(req, store_err(rc, "statfs", NULL));
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  sv.f_bsize = 4096;
  sv.f_frsize = 4096;
  sv.f_blocks = sp.total_bytes / 4096;
  sv.f_bfree = sp.free_bytes / 4096;
  sv.f_bavail = sp.avail_bytes / 4096;
  sv.f_files = sp.total_files;
  sv.f_ffree = sp.free_files;
  sv.f_favail = sp.free_files;
  sv.f_namemax = FUSEFS_NAME_MAX;
  fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------------ */
/* Extended attributes: user.* <-> user metadata                       */
/* ------------------------------------------------------------------ */
static int is_posix_meta(const char *name) {
  static const char *const names[] = {"mode", "uid", "gid",
                                      "mtime", "atime", "ctime"};
  for (size_t i = 0; i < 6; i++)
    if (!strcasecmp(name, names[i])) return 1;
  return 0;
}

/* The metadata name of xattr `name`, or an errno. */
static int xattr_meta_name(const char *name, const char **out) {
  if (strncmp(name, "user.", 5) != 0) return ENOTSUP;
  const char *m = name + 5;
  if (!*m) return EINVAL;
  /* A metadata name travels as an HTTP header name (x-amz-meta-NAME). */
  for (const char *p = m; *p; p++)
    if (*p <= ' ' || *p >= 127 || strchr("()<>@,;:\\\"/[]?={}", *p))
      return EINVAL;
  if (is_posix_meta(m)) return EPERM; /* those are chmod/chown/utimens */
  *out = m;
  return 0;
}

/* The object that holds node k's metadata: a file's object or a
 * directory's marker. */
static int xattr_target(const struct nkey *k) {
  if (k->is_store_root || !k->key[0]) return ENOTSUP;
  return 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags) {
  struct node *n = node_of(ino);
  struct nkey k;
  node_snapshot(n, &k);
  const char *mname;
  int e = xattr_meta_name(name, &mname);
  if (!e) e = xattr_target(&k);
  if (e) return (void)fuse_reply_err(req, e);
  if (FS->read_only) return (void)fuse_reply_err(req, EROFS);
  /* Metadata values are text: no NUL, no line breaks. */
  for (size_t i = 0; i < size; i++)
    if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n')
      return (void)fuse_reply_err(req, EINVAL);
  char *v = malloc(size + 1);
  if (!v) return (void)fuse_reply_err(req, ENOMEM);
  memcpy(v, value, size);
  v[size] = '\0';
  ns_shared();
  pthread_mutex_lock(&n->mu);
  e = node_commit(n); /* the new version must carry the change */
  store_object_info info;
  memset(&info, 0, sizeof info);
  if (!e) {
    e = head(k.bucket, k.key, &info);
    if (e == ENOENT && k.kind == NODE_DIR) {
      /* an implicit directory: give it a marker to hold the metadata */
      store_posix none = {0};
      e = posix_store(&k, &none);
      if (!e) e = head(k.bucket, k.key, &info);
    }
  }
  store_kv *kv = NULL;
  if (!e) {
    kv = calloc(info.n_meta + 1, sizeof *kv);
    if (!kv) e = ENOMEM;
  }
  if (!e) {
    size_t nk = 0;
    int found = 0;
    for (size_t i = 0; i < info.n_meta; i++) {
      kv[nk] = info.meta[i];
      if (!strcasecmp(info.meta[i].name, mname)) {
        found = 1;
        kv[nk].name = (char *)mname;
        kv[nk].value = v;
      }
      nk++;
    }
    if (found && (flags & XATTR_CREATE)) e = EEXIST;
    else if (!found && (flags & XATTR_REPLACE)) e = ENODATA;
    if (!e && !found) kv[nk++] = (store_kv){(char *)mname, v};
    if (!e) {
      int rc = store_object_meta_set(FS->st, k.bucket, k.key, kv, nk);
      /* All user metadata of an object fits in 2 KiB (S3's limit). */
      e = rc == STORE_ERR_TOO_LARGE ? ENOSPC : store_err(rc, "setxattr", k.key);
    }
  }
  free(kv);
  store_object_info_free(&info);
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  free(v);
  fuse_reply_err(req, e);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size) {
  struct nkey k;
  node_snapshot(node_of(ino), &k);
  const char *mname;
  int e = xattr_meta_name(name, &mname);
  if (e == EPERM) e = ENODATA;
  if (!e && xattr_target(&k)) e = ENODATA;
  if (e) return (void)fuse_reply_err(req, e);
  store_object_info info;
  e = head(k.bucket, k.key, &info);
  if (e) return (void)fuse_reply_err(req, e == ENOENT ? ENODATA : e);
  const char *val = NULL;
  for (size_t i = 0; i < info.n_meta && !val; i++)
    if (!strcasecmp(info.meta[i].name, mname)) val = info.meta[i].value;
  if (!val) e = ENODATA;
  else if (size == 0) fuse_reply_xattr(req, strlen(val));
  else if (strlen(val) > size) e = ERANGE;
  else fuse_reply_buf(req, val, strlen(val));
  store_object_info_free(&info);
  if (e) fuse_reply_err(req, e);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  struct nkey k;
  node_snapshot(node_of(ino), &k);
  store_object_info info;
  memset(&info, 0, sizeof info);
  if (xattr_target(&k) || head(k.bucket, k.key, &info) != 0) {
    if (size == 0) return (void)fuse_reply_xattr(req, 0);
    return (void)fuse_reply_buf(req, NULL, 0);
  }
  size_t need = 0;
  for (size_t i = 0; i < info.n_meta; i++)
    if (!is_posix_meta(info.meta[i].name))
      need += 5 + strlen(info.meta[i].name) + 1;
  if (size == 0) {
    store_object_info_free(&info);
    return (void)fuse_reply_xattr(req, need);
  }
  if (need > size) {
    store_object_info_free(&info);
    return (void)fuse_reply_err(req, ERANGE);
  }
  char *buf = malloc(need ? need : 1), *p = buf;
  if (!buf) {
    store_object_info_free(&info);
    return (void)fuse_reply_err(req, ENOMEM);
  }
  for (size_t i = 0; i < info.n_meta; i++)
    if (!is_posix_meta(info.meta[i].name)) {
      size_t l = strlen(info.meta[i].name) + 1;
      memcpy(p, "user.", 5);
      memcpy(p + 5, info.meta[i].name, l);
      p += 5 + l;
    }
  store_object_info_free(&info);
  fuse_reply_buf(req, buf, need);
  free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  struct node *n = node_of(ino);
  struct nkey k;
  node_snapshot(n, &k);
  const char *mname;
  int e = xattr_meta_name(name, &mname);
  if (e == EPERM) e = ENODATA;
  if (!e && xattr_target(&k)) e = ENODATA;
  if (e) return (void)fuse_reply_err(req, e);
  if (FS->read_only) return (void)fuse_reply_err(req, EROFS);
  ns_shared();
  pthread_mutex_lock(&n->mu);
  e = node_commit(n);
  store_object_info info;
  memset(&info, 0, sizeof info);
  if (!e) e = head(k.bucket, k.key, &info);
  if (e == ENOENT) e = ENODATA;
  store_kv *kv = NULL;
  if (!e && !(kv = calloc(info.n_meta + 1, sizeof *kv))) e = ENOMEM;
  if (!e) {
    size_t nk = 0;
    int found = 0;
    for (size_t i = 0; i < info.n_meta; i++) {
      if (!strcasecmp(info.meta[i].name, mname)) found = 1;
      else kv[nk++] = info.meta[i];
    }
    if (!found) e = ENODATA;
    else
      e = store_err(store_object_meta_set(FS->st, k.bucket, k.key, kv, nk),
                    "removexattr", k.key);
  }
  free(kv);
  store_object_info_free(&info);
  pthread_mutex_unlock(&n->mu);
  ns_unlock();
  fuse_reply_err(req, e);
}

/* ------------------------------------------------------------------ */
/* init / destroy                                                      */
/* ------------------------------------------------------------------ */
static void op_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  /* open(O_TRUNC) arrives as one open, not a setattr and an open. */
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
    conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  /* The kernel must not cache writes: a write reaches us (and so the
   * writer) before write(2) returns. */
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  /* Invalidate cached pages when the size or mtime we report changes. */
  if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
    conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
}

void ops_commit_all(void) {
  struct pinlist l = {0};
  nodes_foreach(NULL, NULL, pin_collect, &l);
  for (size_t i = 0; i < l.n; i++) {
    pthread_mutex_lock(&l.v[i]->mu);
    if (l.v[i]->unlinked && l.v[i]->w) {
      store_writer_abort(l.v[i]->w);
      l.v[i]->w = NULL;
    }
    node_commit(l.v[i]);
    pthread_mutex_unlock(&l.v[i]->mu);
    node_unpin(l.v[i]);
  }
  free(l.v);
}

static void op_destroy(void *userdata) {
  (void)userdata;
  ops_commit_all();
}

const struct fuse_lowlevel_ops fusefs_ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .create = op_create,
};
