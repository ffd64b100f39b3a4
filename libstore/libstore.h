/*
 * libstore.h -- the public contract of libstore.
 *
 * libstore owns every byte and every catalog row of a store: a directory
 * holding catalog.db (SQLite, WAL), chunks/ (immutable files named by the
 * SHA-256 of their bytes) and staging/.  s3d, fusefs and storectl are clients
 * of this header and of nothing else in libstore.
 *
 * Conventions (read once, they hold everywhere below):
 *  - Every function that can fail returns an int result code from
 *    `enum store_rc`; STORE_OK (0) is success.  `store_strerror(rc)` names it
 *    and `store_errmsg()` gives a one-line detail for the last failure on the
 *    calling thread (valid until that thread's next libstore call).
 *  - Strings are NUL-terminated UTF-8.  Object keys are compared as bytes
 *    (memcmp order), which is the order every listing returns.
 *  - Output structures are filled by the library and owned by the caller,
 *    who releases them with the matching *_free() function.  Every *_free()
 *    and *_close() accepts NULL and zeroed structures.
 *  - A `store *` may be shared by any number of threads of one process.
 *    A `store_writer *` or `store_reader *` belongs to one thread at a time.
 *  - Several processes may open one store at once (s3d, fusefs, storectl):
 *    writers serialise on SQLite's write lock with a busy timeout, and no
 *    transaction is ever held across chunk I/O or caller I/O.
 *  - Durability: when a commit function returns STORE_OK with the default
 *    durability, the data and the catalog row are on stable storage.
 */
#ifndef LIBSTORE_H
#define LIBSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STORE_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* Result codes: the one error type of the library.                   */
/* ------------------------------------------------------------------ */
enum store_rc {
  STORE_OK = 0,
  STORE_ERR_NOMEM,           /* out of memory */
  STORE_ERR_IO,              /* an I/O error from the OS (see errmsg) */
  STORE_ERR_NOSPC,           /* disk full */
  STORE_ERR_READONLY,        /* store opened read-only, or filesystem is */
  STORE_ERR_CORRUPT,         /* a chunk or catalog row failed verification */
  STORE_ERR_BUSY,            /* catalog locked by another process too long */
  STORE_ERR_INVALID,         /* a bad argument (see errmsg) */
  STORE_ERR_NO_STORE,        /* directory is not a store */
  STORE_ERR_STORE_EXISTS,    /* init on a directory that already holds one */
  STORE_ERR_TOO_NEW,         /* store was written by a newer build */
  STORE_ERR_BAD_BUCKET_NAME, /* violates the S3 bucket naming rules */
  STORE_ERR_BAD_KEY,         /* empty or not valid UTF-8 */
  STORE_ERR_KEY_TOO_LONG,    /* key over STORE_KEY_MAX bytes */
  STORE_ERR_NO_BUCKET,       /* bucket does not exist */
  STORE_ERR_BUCKET_EXISTS,   /* bucket already exists */
  STORE_ERR_BUCKET_NOT_EMPTY,/* delete of a bucket that holds objects/uploads */
  STORE_ERR_NO_KEY,          /* object (or version) does not exist */
  STORE_ERR_EXISTS,          /* target exists and the call forbids replacing */
  STORE_ERR_PRECONDITION,    /* an if-match / if-none-match condition failed */
  STORE_ERR_NO_UPLOAD,       /* multipart upload id unknown */
  STORE_ERR_INVALID_PART,    /* completion names a missing part or wrong etag */
  STORE_ERR_INVALID_PART_ORDER, /* part numbers not strictly ascending */
  STORE_ERR_ENTITY_TOO_SMALL,/* a non-last part below the minimum size */
  STORE_ERR_TOO_LARGE,       /* object, metadata or part count over a limit */
  STORE_ERR_BAD_DIGEST,      /* data does not match the digest it was sent with */
  STORE_ERR_RANGE,           /* byte range not satisfiable */
  STORE_ERR_NO_USER,         /* access key unknown or revoked */
  STORE_ERR_USER_EXISTS,     /* access key already in use */
  STORE_ERR_NOT_SUPPORTED,   /* the operation is not supported (see errmsg) */
  STORE_ERR__COUNT
};

const char *store_strerror(int rc);
const char *store_errmsg(void);

/* Limits.  Keys follow S3 (1024 bytes); user metadata follows S3 (2 KiB). */
#define STORE_KEY_MAX 1024
#define STORE_BUCKET_NAME_MAX 63
#define STORE_META_MAX 2048
#define STORE_TAGS_MAX 50 /* object tags; bucket tags allow 50 too */
#define STORE_PARTS_MAX 10000
#define STORE_PART_MIN_DEFAULT (5u * 1024 * 1024)
#define STORE_ETAG_MAX 48       /* "32 hex" or "32 hex-NNNNN", plus NUL */
#define STORE_VERSION_ID_MAX 40 /* "null" or a 32-char id, plus NUL */
#define STORE_UPLOAD_ID_MAX 40

/* A name/value pair: user metadata, system headers, tags. */
typedef struct store_kv {
  char *name;
  char *value;
} store_kv;

/* ------------------------------------------------------------------ */
/* Opening a store.                                                   */
/* ------------------------------------------------------------------ */
typedef struct store store;

enum store_durability {
  STORE_DURABLE_FULL = 0, /* fsync chunks and catalog: survives power loss */
  STORE_DURABLE_PROCESS,  /* survives kill -9 of any process, not power loss */
};

typedef struct store_config {
  int read_only;            /* open without write access */
  int durability;           /* enum store_durability; 0 = FULL */
  uint32_t busy_timeout_ms; /* wait for another process's lock; 0 = 30000 */
  uint32_t part_min_size;   /* minimum non-last part; 0 = 5 MiB */
  uint32_t inline_max;      /* at create only: chunks up to this many bytes
                               live in the catalog, not in files; 0 = the
                               default (docs/chunking.md), 1 = none */
  int skip_read_verify;     /* do not hash chunks as they are read (fsck
                               still verifies); default is to verify */
} store_config;

/* Create a new store in `dir` (created if missing; must hold no store).
 * `cfg` may be NULL for defaults. */
int store_create(const char *dir, const store_config *cfg, store **out);
/* Open an existing store; migrates an older catalog schema forward. */
int store_open(const char *dir, const store_config *cfg, store **out);
void store_close(store *s);
/* The directory the store was opened on. */
const char *store_dir(const store *s);

/* ------------------------------------------------------------------ */
/* Users and access keys.                                             */
/* ------------------------------------------------------------------ */
typedef struct store_user {
  char access_key[64];
  char secret_key[128];
  char name[128];
  int is_admin;
  int revoked;
  int64_t created_ns;
} store_user;

/* Add a user.  access_key/secret_key may be NULL to generate random ones
 * (20 and 40 characters, as AWS shapes them); the result is in *out. */
int store_user_add(store *s, const char *name, const char *access_key,
                   const char *secret_key, int is_admin, store_user *out);
/* Look up an active (not revoked) key: STORE_ERR_NO_USER otherwise. */
int store_user_get(store *s, const char *access_key, store_user *out);
int store_user_list(store *s, store_user **out, size_t *n);
int store_user_revoke(store *s, const char *access_key);
void store_user_list_free(store_user *list);

/* ------------------------------------------------------------------ */
/* Buckets.                                                           */
/* ------------------------------------------------------------------ */
typedef struct store_bucket_info {
  char name[STORE_BUCKET_NAME_MAX + 1];
  char owner[64]; /* access key of the creator, "" if created by the CLI */
  int64_t created_ns;
  int versioning; /* 0 = never enabled (the only state for now) */
} store_bucket_info;

/* STORE_OK if `name` follows the S3 bucket naming rules, else
 * STORE_ERR_BAD_BUCKET_NAME with the broken rule in store_errmsg(). */
int store_bucket_name_check(const char *name);
int store_bucket_create(store *s, const char *name, const char *owner);
/* Only an empty bucket (no objects, no multipart uploads) is deleted. */
int store_bucket_delete(store *s, const char *name);
int store_bucket_head(store *s, const char *name, store_bucket_info *out);
/* All buckets in name order. */
int store_bucket_list(store *s, store_bucket_info **out, size_t *n);
void store_bucket_list_free(store_bucket_info *list);
/* Replace the bucket's tag set (n == 0 removes all). */
int store_bucket_tags_set(store *s, const char *name, const store_kv *tags,
                          size_t n);
int store_bucket_tags_get(store *s, const char *name, store_kv **tags,
                          size_t *n);
void store_kv_free(store_kv *kv, size_t n);

/* ------------------------------------------------------------------ */
/* Objects.                                                           */
/* ------------------------------------------------------------------ */
enum store_checksum_algo {
  STORE_CKSUM_NONE = 0,
  STORE_CKSUM_CRC32,
  STORE_CKSUM_CRC32C,
  STORE_CKSUM_CRC64NVME,
  STORE_CKSUM_SHA1,
  STORE_CKSUM_SHA256,
};

/* POSIX attributes, stored as user metadata under the names s3fs and
 * rclone use ("mode", "uid", "gid", "mtime" in seconds, "atime", "ctime"),
 * so every tool that shares the convention agrees.  Fields with their
 * `has_` flag clear are left out. */
typedef struct store_posix {
  int has_mode, has_uid, has_gid, has_mtime, has_atime, has_ctime;
  uint32_t mode, uid, gid;
  int64_t mtime_ns, atime_ns, ctime_ns;
} store_posix;

typedef struct store_object_info {
  char *key;
  char version_id[STORE_VERSION_ID_MAX];
  uint64_t size;
  char etag[STORE_ETAG_MAX]; /* without quotes */
  int64_t mtime_ns;          /* Last-Modified */
  uint64_t ino;              /* stable identity: kept by rename and edits */
  uint32_t parts;            /* part count of a multipart object, else 0 */
  char *content_type;        /* may be NULL */
  store_kv *meta;            /* user metadata (without x-amz-meta-) */
  size_t n_meta;
  store_kv *headers;         /* stored system headers (Content-Encoding...) */
  size_t n_headers;
  store_kv *tags;
  size_t n_tags;
  int checksum_algo;         /* enum store_checksum_algo */
  char *checksum;            /* as the client sent it (base64), may be NULL */
  int checksum_composite;    /* 1 if checksum is "<b64>-N" of parts */
} store_object_info;

void store_object_info_free(store_object_info *info);
/* Decode the POSIX attributes found in info->meta. */
void store_posix_from_info(const store_object_info *info, store_posix *out);

/* STORE_OK if `key` is a valid object key (1..1024 bytes of UTF-8). */
int store_key_check(const char *key, size_t len);

/* What a commit stores besides the data.  Every field may be zero/NULL. */
typedef struct store_put_opts {
  const char *content_type;
  const store_kv *meta;       /* user metadata; total over 2 KiB: TOO_LARGE */
  size_t n_meta;
  const store_kv *headers;    /* system headers to store and return */
  size_t n_headers;
  const store_kv *tags;
  size_t n_tags;
  const store_posix *posix;   /* merged into meta (see store_posix) */
  int checksum_algo;          /* a checksum the caller verified, to store */
  const char *checksum;
  int checksum_composite;
  /* Conditions checked atomically with the commit: */
  int if_none_match_star;     /* fail with PRECONDITION if the key exists */
  const char *if_match;       /* fail with PRECONDITION unless current etag */
  const char *owner;          /* access key recorded on the upload */
} store_put_opts;

/* Streaming writes.  A writer gathers bytes (any piece size), hashing them
 * as they pass (SHA-256 per chunk, MD5 of the whole), and makes them visible
 * only at commit, in one catalog transaction.  Until then nothing is
 * visible; abort (or a crash) leaves nothing visible and GC reclaims the
 * chunks.  The commit is durable when it returns. */
typedef struct store_writer store_writer;

/* A new object (replaces the current one at commit). */
int store_writer_open(store *s, const char *bucket, const char *key,
                      store_writer **out);
/* An edit of the current object `key` (or a new one if absent): random
 * writes and truncation change only the chunks they touch.  The object
 * keeps its ino and metadata unless the commit's opts give new ones. */
int store_writer_open_edit(store *s, const char *bucket, const char *key,
                           store_writer **out);
/* The ino the object of a writer that has no current version to edit (a
 * new object) gets at commit, instead of a fresh one: lets a caller hand
 * out the identity before the object exists (fusefs creates files lazily).
 * The caller keeps such inos apart from the catalog's own (which are the
 * object row ids, below 2^62).  STORE_ERR_INVALID for a part writer or an
 * edit of an existing object. */
int store_writer_set_ino(store_writer *w, uint64_t ino);
/* One part of multipart upload `upload_id`. */
int store_writer_open_part(store *s, const char *bucket, const char *key,
                           const char *upload_id, uint32_t part_number,
                           store_writer **out);
/* Append at the end. */
int store_write(store_writer *w, const void *buf, size_t n);
/* Write at any offset; a hole before it reads back as zeros. */
int store_pwrite(store_writer *w, const void *buf, size_t n, uint64_t off);
/* Read back what the writer holds now (its base plus its writes). */
int store_pread_writer(store_writer *w, void *buf, size_t n, uint64_t off,
                       size_t *got);
int store_writer_truncate(store_writer *w, uint64_t size);
uint64_t store_writer_size(const store_writer *w);
/* MD5 of the data written so far: valid for a writer that only appended
 * (returns STORE_ERR_INVALID otherwise).  Use it to check Content-MD5
 * before committing. */
int store_writer_md5(store_writer *w, uint8_t md5[16]);
/* Commit: the object (or part) becomes visible atomically.  `opts` may be
 * NULL.  `out` (may be NULL) receives the committed object's info; for a
 * part, out->etag is the part's etag and out->size its size.  The writer is
 * freed whatever the result. */
int store_writer_commit(store_writer *w, const store_put_opts *opts,
                        store_object_info *out);
/* Discard everything written; frees the writer. */
void store_writer_abort(store_writer *w);

/* Whole-object shortcut: write `n` bytes and commit. */
int store_put(store *s, const char *bucket, const char *key, const void *buf,
              size_t n, const store_put_opts *opts, store_object_info *out);

/* Reading.  A reader sees the version current at open; reads of any byte
 * range find their chunks through the catalog's offset index. */
typedef struct store_reader store_reader;
/* version_id NULL = current version. */
int store_reader_open(store *s, const char *bucket, const char *key,
                      const char *version_id, store_reader **out,
                      store_object_info *info);
/* pread semantics: *got < n only at end of object. */
int store_read(store_reader *r, void *buf, size_t n, uint64_t off, size_t *got);
uint64_t store_reader_size(const store_reader *r);
void store_reader_close(store_reader *r);

/* Whole-object info without data (HEAD); out may be NULL (existence). */
int store_head(store *s, const char *bucket, const char *key,
               const char *version_id, store_object_info *out);
/* Byte range of part `part_number` (1-based) of a multipart object. */
int store_part_range(store *s, const char *bucket, const char *key,
                     uint32_t part_number, uint64_t *off, uint64_t *len,
                     char etag[STORE_ETAG_MAX]);

/* Delete: STORE_ERR_NO_KEY if absent (S3 callers treat it as success). */
int store_delete(store *s, const char *bucket, const char *key);

/* Copy without copying data: the destination references the source's
 * chunks.  Metadata and tags are copied unless replaced through `opts`. */
typedef struct store_copy_opts {
  int replace_meta;               /* use opts->content_type/meta/headers */
  int replace_tags;               /* use opts->tags */
  const store_put_opts *put;      /* new attributes and dest conditions */
  const char *src_if_match;       /* atomically require the source's etag */
  const char *src_version_id;
} store_copy_opts;
int store_copy(store *s, const char *src_bucket, const char *src_key,
               const char *dst_bucket, const char *dst_key,
               const store_copy_opts *opts, store_object_info *out);

/* Rename one key, replacing `dst` unless `noreplace`. */
int store_rename(store *s, const char *bucket, const char *src,
                 const char *dst, int noreplace);
/* Rename every key under `src_prefix` to `dst_prefix` in one transaction
 * (a directory rename).  Fails with STORE_ERR_EXISTS when a key under
 * dst_prefix, other than the marker `dst_prefix` itself, already exists. */
int store_rename_prefix(store *s, const char *bucket, const char *src_prefix,
                        const char *dst_prefix, uint64_t *renamed);

/* In-place attribute updates of the current version: no new data, same
 * etag and ino, one change-feed record.  tags_set replaces the tag set;
 * meta_set replaces the user metadata; posix_set changes only the fields
 * whose has_ flag is set and keeps the rest. */
int store_object_tags_set(store *s, const char *bucket, const char *key,
                          const store_kv *tags, size_t n);
int store_object_posix_set(store *s, const char *bucket, const char *key,
                           const store_posix *posix);
int store_object_meta_set(store *s, const char *bucket, const char *key,
                          const store_kv *meta, size_t n);
/* Change the Content-Type in place (NULL removes it); same etag and ino. */
int store_object_content_type_set(store *s, const char *bucket,
                                  const char *key, const char *content_type);

/* Listing, in strict byte order of keys. */
typedef struct store_list_opts {
  const char *prefix;      /* only keys starting with it */
  const char *delimiter;   /* roll keys up to common prefixes */
  const char *start_after; /* exclusive marker (also continuation) */
  uint32_t max_keys;       /* 0 = 1000; at most 1000 entries+prefixes */
} store_list_opts;

typedef struct store_list_entry {
  char *key;
  char version_id[STORE_VERSION_ID_MAX];
  uint64_t size;
  char etag[STORE_ETAG_MAX];
  int64_t mtime_ns;
  uint64_t ino;
  uint32_t mode; /* from the "mode" metadata, 0 when absent */
  char owner[64];
} store_list_entry;

typedef struct store_list_result {
  store_list_entry *entries;
  size_t n_entries;
  char **prefixes; /* common prefixes, interleaved in order with entries */
  size_t n_prefixes;
  int truncated;
  char *next_marker; /* last key or prefix returned, when truncated */
} store_list_result;

int store_list(store *s, const char *bucket, const store_list_opts *opts,
               store_list_result *out);
void store_list_result_free(store_list_result *r);

/* ------------------------------------------------------------------ */
/* Multipart uploads.                                                 */
/* ------------------------------------------------------------------ */
/* The opts given here are what the completed object will carry;
 * opts->checksum_algo and checksum_composite are remembered and returned
 * by store_mpu_head (the checksum type the parts will be checked with). */
int store_mpu_create(store *s, const char *bucket, const char *key,
                     const store_put_opts *opts,
                     char upload_id[STORE_UPLOAD_ID_MAX]);

typedef struct store_part_ref {
  uint32_t part_number;
  const char *etag; /* as returned by the part commit (quotes tolerated) */
} store_part_ref;

/* Assemble the named parts (ascending numbers) into one object without
 * copying data.  ETag = MD5(concatenated part MD5s) "-N".  Parts not named
 * are discarded. */
int store_mpu_complete(store *s, const char *bucket, const char *key,
                       const char *upload_id, const store_part_ref *parts,
                       size_t n, store_object_info *out);
/* The same with options: opts->checksum (with checksum_algo and
 * checksum_composite) is stored on the object, and opts->if_none_match_star
 * / opts->if_match are checked atomically against the current object.
 * Other fields of opts are ignored (the upload's attributes are used). */
int store_mpu_complete_ex(store *s, const char *bucket, const char *key,
                          const char *upload_id, const store_part_ref *parts,
                          size_t n, const store_put_opts *opts,
                          store_object_info *out);
int store_mpu_abort(store *s, const char *bucket, const char *key,
                    const char *upload_id);
/* The attributes recorded when the upload was created. */
int store_mpu_head(store *s, const char *bucket, const char *key,
                   const char *upload_id, store_object_info *out);
/* UploadPartCopy: bytes [off, off+len) of the source become a part, by
 * reference; len == UINT64_MAX means to the end.  The part's etag is the
 * MD5 of those bytes (computed by reading them once). */
int store_part_copy(store *s, const char *bucket, const char *key,
                    const char *upload_id, uint32_t part_number,
                    const char *src_bucket, const char *src_key,
                    const char *src_version_id, uint64_t off, uint64_t len,
                    store_object_info *out);

typedef struct store_upload {
  char *key;
  char upload_id[STORE_UPLOAD_ID_MAX];
  int64_t created_ns;
  char owner[64];
} store_upload;

typedef struct store_mpu_list_opts {
  const char *prefix;
  const char *delimiter;
  const char *key_marker;
  const char *upload_id_marker;
  uint32_t max_uploads; /* 0 = 1000 */
} store_mpu_list_opts;

typedef struct store_mpu_list_result {
  store_upload *uploads;
  size_t n_uploads;
  char **prefixes;
  size_t n_prefixes;
  int truncated;
  char *next_key_marker;
  char next_upload_id_marker[STORE_UPLOAD_ID_MAX];
} store_mpu_list_result;

int store_mpu_list(store *s, const char *bucket,
                   const store_mpu_list_opts *opts, store_mpu_list_result *out);
void store_mpu_list_result_free(store_mpu_list_result *r);

typedef struct store_part_info {
  uint32_t part_number;
  uint64_t size;
  char etag[STORE_ETAG_MAX];
  int64_t mtime_ns;
  int checksum_algo;
  char *checksum;
} store_part_info;

/* Parts above part_marker, ascending, at most max_parts (0 = 1000). */
int store_mpu_parts(store *s, const char *bucket, const char *key,
                    const char *upload_id, uint32_t part_marker,
                    uint32_t max_parts, store_part_info **out, size_t *n,
                    int *truncated);
void store_part_info_free(store_part_info *p, size_t n);

/* ------------------------------------------------------------------ */
/* Change feed: how one process learns what others changed.           */
/* ------------------------------------------------------------------ */
/* Every committed change to the namespace appends a record (in the same
 * transaction as the change).  fusefs polls it to invalidate the kernel's
 * caches when s3d or storectl change something.  Records are kept for a
 * while (at least the last 100,000 and the last hour) and then pruned. */
enum store_change_kind {
  STORE_CHANGE_PUT = 1,     /* key created or replaced (data or attrs) */
  STORE_CHANGE_DELETE,      /* key removed */
  STORE_CHANGE_PREFIX,      /* every key under `key` (a prefix) changed */
  STORE_CHANGE_BUCKET,      /* bucket created or deleted (key is "") */
};

typedef struct store_change {
  uint64_t seq;
  uint64_t origin; /* store_origin() of the handle that made the change */
  int kind;
  char bucket[STORE_BUCKET_NAME_MAX + 1];
  char *key;
} store_change;

/* A random id of this open handle, recorded with each change it makes, so
 * that a process can tell its own changes from others'. */
uint64_t store_origin(const store *s);
/* The newest sequence number (0 for an empty feed). */
int store_changes_head(store *s, uint64_t *seq);
/* Changes with seq > after, oldest first, at most max (0 = 1000).
 * *lost is set when records after `after` were already pruned: the
 * caller must then treat everything as changed. */
int store_changes_since(store *s, uint64_t after, uint32_t max,
                        store_change **out, size_t *n, int *lost);
void store_changes_free(store_change *c, size_t n);

/* Capacity of the filesystem holding the store (for statfs). */
typedef struct store_space {
  uint64_t total_bytes, free_bytes, avail_bytes;
  uint64_t total_files, free_files;
} store_space;
int store_space_get(store *s, store_space *out);

/* ------------------------------------------------------------------ */
/* Maintenance: statistics, garbage collection, verification.         */
/* ------------------------------------------------------------------ */
typedef struct store_stats {
  uint64_t buckets, objects, uploads;
  uint64_t logical_bytes;  /* sum of object sizes */
  uint64_t physical_bytes; /* sum of referenced chunk sizes */
  uint64_t chunks, inline_chunks;
  uint64_t unreferenced_chunks, unreferenced_bytes; /* what GC would free */
} store_stats;
int store_stats_get(store *s, store_stats *out);

/* Progress callback for long operations: done out of total (total 0 if
 * unknown).  Return non-zero to stop early. */
typedef int (*store_progress_fn)(void *arg, const char *phase, uint64_t done,
                                 uint64_t total);

typedef struct store_gc_report {
  uint64_t chunks_deleted, bytes_freed;
  uint64_t orphan_files_deleted; /* files with no catalog row */
  uint64_t staging_cleaned;      /* leftovers of dead writers */
  uint64_t uploads_expired;
} store_gc_report;
/* Reclaim unreferenced chunks.  Safe against concurrent writers in any
 * process: a chunk a writer is about to commit is never lost. */
int store_gc(store *s, store_progress_fn fn, void *arg, store_gc_report *out);

typedef struct store_fsck_report {
  uint64_t chunks_checked, bytes_checked;
  uint64_t chunks_corrupt;  /* content does not hash to its name */
  uint64_t chunks_missing;  /* referenced but absent */
  uint64_t refcount_wrong;  /* stored count differs from references */
  uint64_t objects_checked;
  uint64_t objects_damaged; /* extents inconsistent or chunks bad */
  uint64_t orphan_files;    /* chunk files with no catalog row (GC frees) */
  int catalog_ok;           /* SQLite integrity_check passed */
} store_fsck_report;
/* Verify every chunk against its name and every reference.  Returns
 * STORE_OK when healthy, STORE_ERR_CORRUPT when damage was found.
 * `repair_refcounts` rewrites wrong reference counts. */
int store_fsck(store *s, int repair_refcounts, store_progress_fn fn, void *arg,
               store_fsck_report *out);

/* ------------------------------------------------------------------ */
/* Helpers shared by the tools.                                       */
/* ------------------------------------------------------------------ */
/* Guess a Content-Type from a key's extension ("application/octet-stream"
 * when unknown). */
const char *store_guess_content_type(const char *key);
/* Lower-case hex of `n` bytes into out (2n+1 bytes). */
void store_hex(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif /* LIBSTORE_H */
