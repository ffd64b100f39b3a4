/*
 * internal.h -- what libstore's files share and nothing outside sees.
 *
 * Layers, one file each:
 *   util.c          result codes, error messages, UTF-8, kv encoding, hex
 *   backend_local.c chunk files: staging, leases, durable placement
 *   catalog.c       SQLite: schema, migrations, connection pool, group
 *                   commit, users, buckets
 *   object.c        writers, readers, delete, copy, rename, listing
 *   multipart.c     multipart uploads
 *   maint.c         stats, GC, fsck
 */
#ifndef LIBSTORE_INTERNAL_H
#define LIBSTORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>

#include "libstore.h"

#define CHUNK_SIZE (1u << 20)   /* grid of the chunking: 1 MiB cells */
#define INLINE_MAX_DEFAULT 4096 /* chunks up to this size live in SQLite */
#define HASH_LEN 32
#define HEX_LEN 64

/* ---- errors (util.c) ---- */
/* Record a detail message for the calling thread and return rc. */
int store__err(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Map an errno to a result code, with a message naming `what`. */
int store__errno(int err, const char *what);
/* Map a SQLite result code, with the connection's message. */
int store__sqlerr(sqlite3 *db, int src, const char *what);
void store__clear_err(void);

/* ---- small helpers (util.c) ---- */
int64_t store__now_ns(void);
void store__random(void *buf, size_t n);
void store__random_id(char *out, size_t nchars); /* [0-9a-f], NUL added */
bool store__utf8_valid(const char *s, size_t n);
/* kv lists are stored as a blob "name\0value\0name\0value\0". */
int store__kv_encode(const store_kv *kv, size_t n, char **blob, size_t *len);
int store__kv_decode(const void *blob, size_t len, store_kv **kv, size_t *n);
int store__kv_dup(const store_kv *kv, size_t n, store_kv **out);
size_t store__kv_size(const store_kv *kv, size_t n);
void store__sha256(const void *data, size_t n, uint8_t out[HASH_LEN]);
char *store__strdup(const char *s);
/* The smallest string greater than every string with prefix p: p+"\xff".
 * Valid UTF-8 never contains 0xFF, so this bounds a prefix range. */
char *store__prefix_end(const char *p);

/* ---- chunk backend (backend_local.c) ----
 * The seam for other chunk stores: chunk bytes are addressed by their
 * SHA-256.  A writer's lease is a hard link in the process's staging
 * directory that keeps the chunk's inode alive until the writer's commit,
 * whatever GC does to the public name meanwhile. */
typedef struct chunk_backend chunk_backend;

struct chunk_backend {
  /* Store `data` as chunk `id` in two steps so that writers can pipeline:
   * put_begin writes the bytes under a new lease (PATH_MAX) and starts
   * their writeback, returning an fd to finish (or -1 when identical
   * content was already present and merely leased); put_finish makes the
   * bytes durable, closes fd and gives them their public name.  Only
   * finished chunks have a public name. */
  int (*put_begin)(store *s, const uint8_t id[HASH_LEN], const void *data,
                   size_t n, char *lease, int *fd);
  int (*put_finish)(store *s, const uint8_t id[HASH_LEN], const char *lease,
                    int fd);
  /* Make the chunk's public name durable (directory fsync) before the
   * catalog commit that references it.  Called outside any transaction. */
  int (*sync_names)(store *s, const uint8_t (*ids)[HASH_LEN], size_t n);
  /* Inside the commit transaction: make sure the public name exists,
   * restoring it from the lease if GC removed it. */
  int (*ensure)(store *s, const uint8_t id[HASH_LEN], const char *lease);
  void (*release)(store *s, const char *lease);
  /* Hint that the chunk will be read soon (no error if it has no file). */
  void (*prefetch)(store *s, const uint8_t id[HASH_LEN]);
  /* Open for reading: returns an fd. */
  int (*open)(store *s, const uint8_t id[HASH_LEN], int *fd);
  int (*remove)(store *s, const uint8_t id[HASH_LEN]);
  /* Walk every chunk present: fn returns non-zero to stop. */
  int (*walk)(store *s, int (*fn)(void *arg, const uint8_t id[HASH_LEN],
                                  uint64_t size), void *arg);
  /* Remove staging leftovers of processes that are gone. */
  int (*clean_staging)(store *s, uint64_t *cleaned);
  int (*init_dir)(store *s);      /* create the layout in a new store */
  int (*attach)(store *s);        /* per-process setup on open */
  void (*detach)(store *s);
};
extern const chunk_backend store__backend_local;

/* ---- catalog (catalog.c) ---- */
enum stmt_id {
  ST_BUCKET_ID,
  ST_OBJ_HEAD,
  ST_EXT_RANGE,
  ST_CHUNK_INLINE,
  ST_CHUNK_REF,
  ST_CHUNK_ADD,
  ST_CHUNK_UNREF,
  ST_EXT_INSERT,
  ST_OBJ_INSERT,
  ST_OBJ_DELETE_ROW,
  ST_EXT_OF,
  ST_EXT_DELETE,
  ST_CHANGE_ADD,
  ST_LIST_BOUNDED,
  ST_LIST_OPEN,
  ST_BUCKET_HEAD,
  ST_USER_GET,
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_SAVEPOINT,
  ST_RELEASE,
  ST_ROLLBACK_TO,
  ST__COUNT
};

typedef struct conn {
  sqlite3 *db;
  uint64_t origin; /* the owning store's origin id, for the change feed */
  sqlite3_stmt *st[ST__COUNT];
  struct conn *next;
} conn;

/* A unit of work executed inside a group-commit transaction. */
typedef int (*commit_fn)(store *s, conn *c, void *arg);

typedef struct commit_req {
  commit_fn fn;
  void *arg;
  int rc;
  char errmsg[256];
  bool done;
  struct commit_req *next;
} commit_req;

struct store {
  char *dir;
  store_config cfg;
  const chunk_backend *be;
  int read_only;      /* asked for, or forced by a read-only filesystem */
  bool fs_read_only;  /* the filesystem itself is read-only */
  uint32_t inline_max;
  uint32_t part_min;
  /* connection pool */
  pthread_mutex_t pool_mu;
  conn *pool;
  /* group commit: the first waiter leads a batch */
  pthread_mutex_t commit_mu;
  pthread_cond_t commit_cv;
  commit_req *queue, **queue_tail;
  bool leader_active;
  /* reusable CHUNK_SIZE buffers (first touch of fresh pages is slow) */
  pthread_mutex_t buf_mu;
  void **bufs;
  size_t n_bufs;
  /* backend state */
  char *staging;     /* this process's staging directory */
  int staging_lock;  /* flock held for the life of the process's open */
  uint64_t lease_seq;
  pthread_mutex_t lease_mu;
  uint64_t origin; /* random id of this handle (store_origin) */
  /* Writers of all processes queue on an flock of catalog.lock before
   * BEGIN IMMEDIATE: SQLite's own busy handler sleeps up to 100 ms
   * between tries, which lets one process starve the others for seconds;
   * the flock is retried every millisecond at most.  wlock_mu orders the
   * threads of this process. */
  int wlock_fd;
  pthread_mutex_t wlock_mu;
};

int store__conn_get(store *s, conn **out);
void store__conn_put(store *s, conn *c);
sqlite3_stmt *store__stmt(conn *c, enum stmt_id id);
/* Run fn inside a write transaction, batched with concurrent callers of
 * the same process into one COMMIT (one fsync).  fn runs inside its own
 * savepoint: its failure rolls back only its work. */
int store__commit(store *s, commit_fn fn, void *arg);
/* Run fn in a plain BEGIN IMMEDIATE transaction of its own. */
int store__write_txn(store *s, commit_fn fn, void *arg);
/* The same for operations that free space (delete, abort, GC): on a full
 * disk they release the store's reserve file and try again, so that a
 * full store can always be emptied. */
int store__commit_freeing(store *s, commit_fn fn, void *arg);
int store__write_txn_freeing(store *s, commit_fn fn, void *arg);
/* Re-create the reserve file if it is missing (best effort). */
void store__reserve_ensure(store *s);
int store__bucket_id(conn *c, const char *name, int64_t *id);
int store__step_done(conn *c, sqlite3_stmt *st, const char *what);
void *store__buf_get(store *s);
void store__buf_put(store *s, void *buf);

/* Append to the change feed, inside the transaction making the change. */
int store__change(conn *c, int kind, const char *bucket, const char *key);

/* Chunk reference counting, inside a transaction. */
int store__chunk_ref(store *s, conn *c, const uint8_t id[HASH_LEN],
                     int64_t delta);

/* Extents: the ordered list of (off, len, chunk, chunk_off) of a content
 * id.  cid is object.id for objects and -part.id for upload parts. */
typedef struct extent {
  uint64_t off, len, coff;
  uint8_t id[HASH_LEN];
  bool hole;
} extent;

/* Copy the extents of cid overlapping [off, off+len) into a new content
 * (dst_cid), shifted so that `off` lands at dst_off; references counted. */
int store__extents_copy(store *s, conn *c, int64_t src_cid, uint64_t off,
                        uint64_t len, int64_t dst_cid, uint64_t dst_off);
/* Delete every extent of cid, dropping references. */
int store__extents_drop(conn *c, int64_t cid);

/* Object rows (object.c). */
/* Find the current object row (or a given version); info may be NULL. */
int store__find_object(conn *c, const char *bucket, const char *key,
                       const char *version_id, int64_t *oid,
                       store_object_info *info);
/* The current row of a key, checking put conditions (if-match...). */
int store__check_conditions(conn *c, int64_t bid, const char *key,
                            const store_put_opts *o, int64_t *cur_id,
                            uint64_t *cur_ino);
/* Insert a new current object row (ino 0 = take the new row id). */
int store__insert_object(conn *c, int64_t bid, const char *key, uint64_t ino,
                         uint64_t size, const char *etag, int64_t mtime_ns,
                         uint32_t parts, const char *content_type,
                         const void *meta, size_t meta_len,
                         const void *headers, size_t headers_len,
                         const void *tags, size_t tags_len, int ck_algo,
                         const char *ck, int ck_comp, const char *owner,
                         uint32_t mode, int64_t *new_id);
int store__object_row_delete(conn *c, int64_t object_id);
int store__info_from_row(sqlite3_stmt *st, int first, store_object_info *out);
int store__validate_put_opts(const store_put_opts *o);
int store__merge_meta(const store_put_opts *o, char **blob, size_t *len);
uint32_t store__mode_from_meta(const store_kv *kv, size_t n);
/* The same from an encoded meta blob (what the object row caches). */
uint32_t store__mode_from_blob(const void *blob, size_t len);
/* Does an If-Match style value (quoted or not, or "*") match etag? */
bool store__etag_match(const char *want, const char *etag);

/* Bytes of a chunk the catalog names (inline or file; fd cached). */
int store__read_chunk(store *s, conn *c, const uint8_t id[HASH_LEN],
                      uint64_t coff, void *buf, size_t n, int *fd_cache,
                      uint8_t *fd_id);

#endif
