/*
 * catalog.c -- the SQLite catalog: schema and migrations, the connection
 * pool, group commit, users and buckets.
 *
 * Every process opens catalog.db in WAL mode with a busy timeout.  Writers
 * start with BEGIN IMMEDIATE so that the write lock is taken up front (a
 * deferred transaction that upgrades late is what produces "database is
 * locked" between processes), and no transaction is held across chunk I/O:
 * chunk bytes are written and fsynced before the transaction begins.
 *
 * Group commit: concurrent commits of one process queue up; the first
 * waiter becomes the leader, runs every queued unit of work inside one
 * transaction (each in its own savepoint) and pays one WAL fsync for all.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"

#define POOL_MAX_IDLE 16
#define BUF_POOL_MAX 32

/* ------------------------------------------------------------------ */
/* Schema.  Each entry of `migrations` moves user_version from i to i+1; */
/* never edit a released step, append a new one.                        */
/* ------------------------------------------------------------------ */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE config(name TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;"
    "CREATE TABLE user("
    "  access_key TEXT PRIMARY KEY,"
    "  secret_key TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  is_admin INTEGER NOT NULL DEFAULT 0,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  created_ns INTEGER NOT NULL);"
    "CREATE TABLE bucket("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL DEFAULT '',"
    "  created_ns INTEGER NOT NULL,"
    "  versioning INTEGER NOT NULL DEFAULT 0,"
    "  tags BLOB);"
    /* One row per object version; is_latest marks the current one.  The
     * version row is immutable once committed except for metadata/tags:
     * a new write makes a new row, so a reader of the old row never sees
     * a mix.  ino survives rename and edits. */
    "CREATE TABLE object("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  bucket_id INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  version_id TEXT NOT NULL DEFAULT 'null',"
    "  is_latest INTEGER NOT NULL DEFAULT 1,"
    "  ino INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  etag TEXT NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  parts INTEGER NOT NULL DEFAULT 0,"
    "  content_type TEXT,"
    "  meta BLOB,"
    "  headers BLOB,"
    "  tags BLOB,"
    "  checksum_algo INTEGER NOT NULL DEFAULT 0,"
    "  checksum TEXT,"
    "  checksum_composite INTEGER NOT NULL DEFAULT 0,"
    "  owner TEXT NOT NULL DEFAULT '',"
    "  mode INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX object_key ON object(bucket_id, key, version_id);"
    /* Extents of a content id (object.id, or -part.id for upload parts):
     * bytes [off, off+len) are bytes [chunk_off, chunk_off+len) of chunk
     * `chunk`, or zeros when chunk IS NULL (a hole). */
    "CREATE TABLE extent("
    "  cid INTEGER NOT NULL,"
    "  off INTEGER NOT NULL,"
    "  len INTEGER NOT NULL,"
    "  chunk BLOB,"
    "  chunk_off INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(cid, off)) WITHOUT ROWID;"
    /* Chunks: refs counts extent rows naming the chunk.  data holds the
     * bytes of small chunks inline; NULL means chunks/XX/<hash>. */
    "CREATE TABLE chunk("
    "  hash BLOB NOT NULL UNIQUE,"
    "  size INTEGER NOT NULL,"
    "  refs INTEGER NOT NULL,"
    "  data BLOB);"
    "CREATE INDEX chunk_unref ON chunk(refs) WHERE refs = 0;"
    "CREATE TABLE upload("
    "  id TEXT PRIMARY KEY,"
    "  bucket_id INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL,"
    "  owner TEXT NOT NULL DEFAULT '',"
    "  content_type TEXT,"
    "  meta BLOB,"
    "  headers BLOB,"
    "  tags BLOB,"
    "  checksum_algo INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX upload_key ON upload(bucket_id, key, id);"
    "CREATE TABLE part("
    "  id INTEGER PRIMARY KEY,"
    "  upload_id TEXT NOT NULL,"
    "  part_number INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  etag TEXT NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  checksum_algo INTEGER NOT NULL DEFAULT 0,"
    "  checksum TEXT,"
    "  UNIQUE(upload_id, part_number));"
    /* Part boundaries of a completed multipart object (partNumber GETs,
     * GetObjectAttributes). */
    "CREATE TABLE object_part("
    "  object_id INTEGER NOT NULL,"
    "  part_number INTEGER NOT NULL,"
    "  off INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  etag TEXT NOT NULL,"
    "  checksum TEXT,"
    "  PRIMARY KEY(object_id, part_number)) WITHOUT ROWID;",
    /* 1 -> 2: the change feed (libstore.h, store_changes_since) */
    "CREATE TABLE change("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind INTEGER NOT NULL,"
    "  bucket TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  at_ns INTEGER NOT NULL);",
    /* 2 -> 3: an upload remembers whether its checksum is composite */
    "ALTER TABLE upload ADD COLUMN checksum_composite INTEGER NOT NULL"
    " DEFAULT 0;",
    /* 3 -> 4: who made a change (store_origin) */
    "ALTER TABLE change ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BUCKET_ID] = "SELECT id FROM bucket WHERE name = ?1",
    [ST_OBJ_HEAD] =
        "SELECT id, key, version_id, size, etag, mtime_ns, iif(ino, ino, id),"
        " parts,"
        " content_type, meta, headers, tags, checksum_algo, checksum,"
        " checksum_composite FROM object"
        " WHERE bucket_id = ?1 AND key = ?2 AND is_latest",
    [ST_EXT_RANGE] =
        "SELECT off, len, chunk, chunk_off FROM extent"
        " WHERE cid = ?1 AND off + len > ?2 AND off < ?3 ORDER BY off",
    [ST_CHUNK_INLINE] = "SELECT data, size FROM chunk WHERE hash = ?1",
    [ST_CHUNK_REF] =
        "UPDATE chunk SET refs = refs + ?2 WHERE hash = ?1 RETURNING refs",
    [ST_CHUNK_ADD] =
        "INSERT INTO chunk(hash, size, refs, data) VALUES(?1, ?2, ?3, ?4)",
    [ST_CHUNK_UNREF] = "SELECT refs FROM chunk WHERE hash = ?1",
    [ST_EXT_INSERT] =
        "INSERT INTO extent(cid, off, len, chunk, chunk_off)"
        " VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_OBJ_INSERT] =
        "INSERT INTO object(bucket_id, key, version_id, is_latest, ino, size,"
        " etag, mtime_ns, parts, content_type, meta, headers, tags,"
        " checksum_algo, checksum, checksum_composite, owner, mode)"
        " VALUES(?1, ?2, 'null', 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
        " ?12, ?13, ?14, ?15, ?16)",
    [ST_OBJ_DELETE_ROW] = "DELETE FROM object WHERE id = ?1",
    [ST_EXT_OF] = "SELECT chunk FROM extent WHERE cid = ?1 AND chunk IS NOT NULL",
    [ST_EXT_DELETE] = "DELETE FROM extent WHERE cid = ?1",
    [ST_CHANGE_ADD] = "INSERT INTO change(kind, bucket, key, at_ns, origin)"
                      " VALUES(?1, ?2, ?3, ?4, ?5)",
    /* Two listing statements so that SQLite can use the prefix's upper
     * bound in the index range when there is one. */
    [ST_LIST_BOUNDED] =
        "SELECT key, version_id, size, etag, mtime_ns, iif(ino, ino, id), mode,"
        " owner FROM"
        " object WHERE bucket_id = ?1 AND key >= ?2 AND key < ?4"
        " AND is_latest ORDER BY key LIMIT ?5",
    [ST_BUCKET_HEAD] = "SELECT name, owner, created_ns, versioning FROM"
                       " bucket WHERE name = ?1",
    [ST_USER_GET] = "SELECT access_key, secret_key, name, is_admin, revoked,"
                    " created_ns FROM user WHERE access_key = ?1"
                    " AND revoked = 0",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT req",
    [ST_RELEASE] = "RELEASE req",
    [ST_ROLLBACK_TO] = "ROLLBACK TO req",
    [ST_LIST_OPEN] =
        "SELECT key, version_id, size, etag, mtime_ns, iif(ino, ino, id), mode,"
        " owner FROM"
        " object WHERE bucket_id = ?1 AND key >= ?2"
        " AND is_latest ORDER BY key LIMIT ?5",
};

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */
/* A file: URI for the catalog, percent-encoding what URIs reserve.  On a
 * read-only filesystem SQLite cannot create the WAL's -shm file, so the
 * catalog is opened as immutable (nothing can change it there anyway). */
static void catalog_uri(const store *s, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  const char *pre = "file:";
  for (const char *p = pre; *p && o + 1 < cap; p++) out[o++] = *p;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/catalog.db", s->dir);
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if (o + 4 >= cap) break;
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || strchr("/._~-", *p)) {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
  }
  out[o] = 0;
  static const char imm[] = "?immutable=1";
  if (s->fs_read_only && o + sizeof imm <= cap) memcpy(out + o, imm, sizeof imm);
}

static int conn_open(store *s, conn **out) {
  char path[PATH_MAX * 3 + 32];
  catalog_uri(s, path, sizeof path);
  conn *c = calloc(1, sizeof *c);
  if (!c) return STORE_ERR_NOMEM;
  int flags = (s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
              SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  int src = sqlite3_open_v2(path, &c->db, flags, NULL);
  if (src != SQLITE_OK) {
    int rc = store__sqlerr(c->db, src, "open");
    sqlite3_close(c->db);
    free(c);
    return rc;
  }
  sqlite3_busy_timeout(c->db, (int)s->cfg.busy_timeout_ms);
  char pragmas[256];
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
           " PRAGMA journal_size_limit=67108864;"
           " PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
           s->cfg.durability == STORE_DURABLE_FULL ? "FULL" : "NORMAL");
  src = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
  if (src != SQLITE_OK) {
    int rc = store__sqlerr(c->db, src, "pragmas");
    sqlite3_close(c->db);
    free(c);
    return rc;
  }
  c->origin = s->origin;
  *out = c;
  return STORE_OK;
}

static void conn_close(conn *c) {
  if (!c) return;
  for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(c->st[i]);
  sqlite3_close(c->db);
  free(c);
}

int store__conn_get(store *s, conn **out) {
  pthread_mutex_lock(&s->pool_mu);
  conn *c = s->pool;
  if (c) s->pool = c->next;
  pthread_mutex_unlock(&s->pool_mu);
  if (c) {
    c->next = NULL;
    *out = c;
    return STORE_OK;
  }
  return conn_open(s, out);
}

void store__conn_put(store *s, conn *c) {
  if (!c) return;
  /* Never return a connection with a transaction left open. */
  if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", 0, 0, 0);
  pthread_mutex_lock(&s->pool_mu);
  size_t n = 0;
  for (conn *p = s->pool; p; p = p->next) n++;
  if (n < POOL_MAX_IDLE) {
    c->next = s->pool;
    s->pool = c;
    c = NULL;
  }
  pthread_mutex_unlock(&s->pool_mu);
  conn_close(c);
}

sqlite3_stmt *store__stmt(conn *c, enum stmt_id id) {
  sqlite3_stmt *st = c->st[id];
  if (st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
  }
  if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                         &st, NULL) != SQLITE_OK) {
    store__sqlerr(c->db, sqlite3_errcode(c->db), "prepare");
    return NULL;
  }
  c->st[id] = st;
  return st;
}

int store__step_done(conn *c, sqlite3_stmt *st, const char *what) {
  int src = sqlite3_step(st);
  if (src != SQLITE_DONE && src != SQLITE_ROW)
    return store__sqlerr(c->db, src, what);
  return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */
/* ------------------------------------------------------------------ */
static int exec(conn *c, const char *sql) {
  int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  if (src != SQLITE_OK) return store__sqlerr(c->db, src, sql);
  return STORE_OK;
}

/* The cross-process writer lock (see struct store). */
static int writer_lock(store *s) {
  /* One deadline for the whole wait, this process's queue included: a
   * writer must not wait for each of its predecessors' full timeouts. */
  int64_t deadline = store__now_ns() + (int64_t)s->cfg.busy_timeout_ms * 1000000;
  struct timespec ts = {.tv_sec = deadline / 1000000000,
                        .tv_nsec = deadline % 1000000000};
  if (pthread_mutex_timedlock(&s->wlock_mu, &ts) != 0)
    return store__err(STORE_ERR_BUSY,
                      "catalog: waited %u ms for this process's writers",
                      s->cfg.busy_timeout_ms);
  if (s->wlock_fd < 0) return STORE_OK;
  useconds_t pause = 20;
  while (flock(s->wlock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return STORE_OK; /* SQLite still locks */
    if (store__now_ns() > deadline) {
      pthread_mutex_unlock(&s->wlock_mu);
      return store__err(STORE_ERR_BUSY,
                        "catalog: another process held the write lock for"
                        " over %u ms", s->cfg.busy_timeout_ms);
    }
    usleep(pause);
    if (pause < 1000) pause *= 2;
  }
  return STORE_OK;
}

static void writer_unlock(store *s) {
  if (s->wlock_fd >= 0) flock(s->wlock_fd, LOCK_UN);
  pthread_mutex_unlock(&s->wlock_mu);
}

/* Transaction control through cached statements (they run for every
 * commit, so they are not parsed each time). */
static int txn(conn *c, enum stmt_id id) {
  sqlite3_stmt *st = store__stmt(c, id);
  if (!st) return STORE_ERR_IO;
  int src = sqlite3_step(st);
  sqlite3_reset(st);
  if (src != SQLITE_DONE) return store__sqlerr(c->db, src, stmt_sql[id]);
  return STORE_OK;
}

int store__write_txn(store *s, commit_fn fn, void *arg) {
  if (s->read_only) return store__err(STORE_ERR_READONLY, "opened read-only");
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  rc = writer_lock(s);
  if (rc) {
    store__conn_put(s, c);
    return rc;
  }
  rc = txn(c, ST_BEGIN);
  if (!rc) {
    rc = fn(s, c, arg);
    if (rc) {
      char saved[512];
      snprintf(saved, sizeof saved, "%s", store_errmsg());
      txn(c, ST_ROLLBACK);
      store__err(rc, "%s", saved);
    } else {
      rc = txn(c, ST_COMMIT);
      if (rc) txn(c, ST_ROLLBACK);
    }
  }
  writer_unlock(s);
  store__conn_put(s, c);
  return rc;
}

/* The leader runs a batch: one transaction, one savepoint per request. */
static void run_batch(store *s, commit_req *batch) {
  conn *c = NULL;
  int rc = store__conn_get(s, &c);
  bool locked = false;
  if (!rc) {
    rc = writer_lock(s);
    locked = !rc;
  }
  if (!rc) rc = txn(c, ST_BEGIN);
  if (rc) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", store_errmsg());
    for (commit_req *r = batch; r; r = r->next) {
      r->rc = rc;
      snprintf(r->errmsg, sizeof r->errmsg, "%s", msg);
    }
    if (locked) writer_unlock(s);
    if (c) store__conn_put(s, c);
    return;
  }
  int ok = 0;
  for (commit_req *r = batch; r; r = r->next) {
    store__clear_err();
    r->rc = txn(c, ST_SAVEPOINT);
    if (!r->rc) {
      r->rc = r->fn(s, c, r->arg);
      snprintf(r->errmsg, sizeof r->errmsg, "%s", store_errmsg());
      if (r->rc) txn(c, ST_ROLLBACK_TO);
      txn(c, ST_RELEASE);
    }
    if (!r->rc) ok++;
  }
  rc = txn(c, ok ? ST_COMMIT : ST_ROLLBACK);
  if (rc) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", store_errmsg());
    txn(c, ST_ROLLBACK);
    for (commit_req *r = batch; r; r = r->next)
      if (!r->rc) {
        r->rc = rc;
        snprintf(r->errmsg, sizeof r->errmsg, "%s", msg);
      }
  }
  writer_unlock(s);
  store__conn_put(s, c);
}

int store__commit(store *s, commit_fn fn, void *arg) {
  if (s->read_only) return store__err(STORE_ERR_READONLY, "opened read-only");
  commit_req req = {.fn = fn, .arg = arg};
  pthread_mutex_lock(&s->commit_mu);
  *s->queue_tail = &req;
  s->queue_tail = &req.next;
  while (!req.done) {
    if (!s->leader_active) {
      /* Lead: take everything queued so far. */
      s->leader_active = true;
      commit_req *batch = s->queue;
      s->queue = NULL;
      s->queue_tail = &s->queue;
  store__random(&s->origin, sizeof s->origin);
  s->origin &= INT64_MAX; /* stored as a SQLite integer */
      pthread_mutex_unlock(&s->commit_mu);
      run_batch(s, batch);
      pthread_mutex_lock(&s->commit_mu);
      for (commit_req *r = batch, *next; r; r = next) {
        next = r->next;
        r->done = true;
      }
      s->leader_active = false;
      pthread_cond_broadcast(&s->commit_cv);
    } else {
      pthread_cond_wait(&s->commit_cv, &s->commit_mu);
    }
  }
  pthread_mutex_unlock(&s->commit_mu);
  if (req.rc) store__err(req.rc, "%s", req.errmsg);
  return req.rc;
}

/* ------------------------------------------------------------------ */
/* The reserve: a few MiB held back so that deletes work on a full disk  */
/* (each delete is a catalog transaction, and the WAL must grow by a     */
/* few pages to commit it).                                            */
/* ------------------------------------------------------------------ */
#define RESERVE_BYTES (8u << 20)

void store__reserve_ensure(store *s) {
  if (s->read_only) return;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/reserve", s->dir);
  struct stat st;
  if (stat(path, &st) == 0 && (uint64_t)st.st_size >= RESERVE_BYTES) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (posix_fallocate(fd, 0, RESERVE_BYTES) != 0) {
    close(fd);
    unlink(path); /* no room for it now; GC will try again */
    return;
  }
  close(fd);
}

static bool reserve_release(store *s) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/reserve", s->dir);
  return unlink(path) == 0;
}

int store__commit_freeing(store *s, commit_fn fn, void *arg) {
  int rc = store__commit(s, fn, arg);
  if (rc == STORE_ERR_NOSPC && reserve_release(s)) rc = store__commit(s, fn, arg);
  return rc;
}

int store__write_txn_freeing(store *s, commit_fn fn, void *arg) {
  int rc = store__write_txn(s, fn, arg);
  if (rc == STORE_ERR_NOSPC && reserve_release(s))
    rc = store__write_txn(s, fn, arg);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Buffer pool                                                         */
/* ------------------------------------------------------------------ */
void *store__buf_get(store *s) {
  void *b = NULL;
  pthread_mutex_lock(&s->buf_mu);
  if (s->n_bufs > 0) b = s->bufs[--s->n_bufs];
  pthread_mutex_unlock(&s->buf_mu);
  if (!b) b = malloc(CHUNK_SIZE);
  return b;
}

void store__buf_put(store *s, void *buf) {
  if (!buf) return;
  pthread_mutex_lock(&s->buf_mu);
  if (s->n_bufs < BUF_POOL_MAX) {
    s->bufs[s->n_bufs++] = buf;
    buf = NULL;
  }
  pthread_mutex_unlock(&s->buf_mu);
  free(buf);
}

/* ------------------------------------------------------------------ */
/* Open / create                                                       */
/* ------------------------------------------------------------------ */
static int migrate(store *s, conn *c) {
  sqlite3_stmt *st;
  int version = 0;
  if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) ==
      SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version > SCHEMA_VERSION)
    return store__err(STORE_ERR_TOO_NEW,
                      "catalog schema %d is newer than this build's %d",
                      version, SCHEMA_VERSION);
  if (version == SCHEMA_VERSION) return STORE_OK;
  if (s->read_only)
    return store__err(STORE_ERR_READONLY, "catalog needs a migration");
  int rc = writer_lock(s);
  if (rc) return rc;
  rc = exec(c, "BEGIN IMMEDIATE");
  if (rc) {
    writer_unlock(s);
    return rc;
  }
  /* Re-read under the lock: another process may have migrated. */
  if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) ==
      SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  for (int v = version; v < SCHEMA_VERSION && !rc; v++) {
    rc = exec(c, migrations[v]);
    if (!rc) {
      char sql[64];
      snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v + 1);
      rc = exec(c, sql);
    }
  }
  if (rc) exec(c, "ROLLBACK");
  else rc = exec(c, "COMMIT");
  writer_unlock(s);
  return rc;
}

static void store_free(store *s) {
  if (!s) return;
  while (s->pool) {
    conn *c = s->pool;
    s->pool = c->next;
    conn_close(c);
  }
  if (s->be) s->be->detach(s);
  for (size_t i = 0; i < s->n_bufs; i++) free(s->bufs[i]);
  free(s->bufs);
  pthread_mutex_destroy(&s->pool_mu);
  pthread_mutex_destroy(&s->commit_mu);
  pthread_cond_destroy(&s->commit_cv);
  pthread_mutex_destroy(&s->buf_mu);
  pthread_mutex_destroy(&s->lease_mu);
  pthread_mutex_destroy(&s->wlock_mu);
  if (s->wlock_fd >= 0) close(s->wlock_fd);
  free(s->dir);
  free(s);
}

/* Process-wide SQLite settings, once, before the first connection.  If the
 * application initialised SQLite itself, sqlite3_config refuses quietly. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void) {
  /* The memory statistics take a global mutex on every allocation, which
   * every thread of s3d then contends on; libstore does not use them. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static store *store_alloc(const char *dir, const store_config *cfg) {
  pthread_once(&sqlite_once, sqlite_setup);
  store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (cfg) s->cfg = *cfg;
  if (!s->cfg.busy_timeout_ms) s->cfg.busy_timeout_ms = 30000;
  s->read_only = s->cfg.read_only;
  s->inline_max = s->cfg.inline_max ? s->cfg.inline_max : INLINE_MAX_DEFAULT;
  s->part_min = s->cfg.part_min_size ? s->cfg.part_min_size
                                     : STORE_PART_MIN_DEFAULT;
  s->be = &store__backend_local;
  s->staging_lock = -1;
  pthread_mutex_init(&s->pool_mu, NULL);
  pthread_mutex_init(&s->commit_mu, NULL);
  pthread_cond_init(&s->commit_cv, NULL);
  pthread_mutex_init(&s->buf_mu, NULL);
  pthread_mutex_init(&s->lease_mu, NULL);
  pthread_mutex_init(&s->wlock_mu, NULL);
  s->wlock_fd = -1;
  s->queue_tail = &s->queue;
  s->bufs = calloc(BUF_POOL_MAX, sizeof *s->bufs);
  s->dir = realpath(dir, NULL);
  if (!s->dir || !s->bufs) {
    store_free(s);
    return NULL;
  }
  return s;
}

static int load_config(store *s, conn *c) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, "SELECT name, value FROM config", -1, &st,
                         NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "config");
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    if (name && !strcmp(name, "inline_max"))
      s->inline_max = (uint32_t)sqlite3_column_int(st, 1);
  }
  sqlite3_finalize(st);
  return STORE_OK;
}

static int open_common(store *s, bool create) {
  if (!s->read_only) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/catalog.lock", s->dir);
    s->wlock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    /* Without it (e.g. a read-only directory) SQLite's lock still rules. */
  }
  conn *c;
  int rc = conn_open(s, &c);
  if (rc) return rc;
  if (create) rc = exec(c, "PRAGMA journal_mode=WAL");
  if (!rc) rc = migrate(s, c);
  if (!rc && create) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT OR IGNORE INTO config VALUES('inline_max', %u);"
             "INSERT OR IGNORE INTO config VALUES('created_ns', %lld);",
             s->inline_max, (long long)store__now_ns());
    rc = exec(c, sql);
  }
  if (!rc) rc = load_config(s, c);
  if (rc) {
    conn_close(c);
    return rc;
  }
  store__conn_put(s, c);
  rc = s->be->attach(s);
  if (!rc) store__reserve_ensure(s);
  return rc;
}

/* fsync a directory, so that the names in it are on disk.  A parent we
 * may not read (mode --x) cannot be opened to sync: skipped. */
static int sync_dir(const char *path, bool may_skip) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (may_skip && (errno == EACCES || errno == EPERM)) return STORE_OK;
    return store__errno(errno, path);
  }
  int r = fsync(fd);
  int e = errno;
  close(fd);
  return r == 0 ? STORE_OK : store__errno(e, path);
}

/* The names store_create made must be durable before it reports success:
 * the store directory's own entry in its parent (when store_create made
 * the directory), and catalog.db, catalog.lock and reserve, created after
 * init_dir synced the store directory.  Without this a power loss after
 * `storectl init` returned could take the whole store, admin key and
 * everything committed since, with it: nothing ever synced the parent. */
static int sync_created(const store *s, bool made_dir) {
  int rc = sync_dir(s->dir, false);
  if (rc || !made_dir) return rc;
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", s->dir);
  char *slash = strrchr(parent, '/');
  if (!slash) return STORE_OK;
  if (slash == parent) slash[1] = 0; /* the store is /name */
  else *slash = 0;
  return sync_dir(parent, true);
}

int store_create(const char *dir, const store_config *cfg, store **out) {
  store__clear_err();
  *out = NULL;
  if (!dir || !*dir) return store__err(STORE_ERR_INVALID, "no directory");
  bool made_dir = mkdir(dir, 0700) == 0;
  if (!made_dir && errno != EEXIST) return store__errno(errno, dir);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/catalog.db", dir);
  if (access(path, F_OK) == 0)
    return store__err(STORE_ERR_STORE_EXISTS, "%s already holds a store",
                      dir);
  /* The catalog holds secret keys and the chunks hold everyone's data:
   * only the store's owner may look inside (the doors run as that user). */
  if (chmod(dir, 0700) != 0) return store__errno(errno, dir);
  store *s = store_alloc(dir, cfg);
  if (!s) return store__errno(errno ? errno : ENOMEM, dir);
  if (s->read_only) {
    store_free(s);
    return store__err(STORE_ERR_INVALID, "cannot create read-only");
  }
  int rc = s->be->init_dir(s);
  if (!rc) {
    /* Create the catalog file exclusively so two inits cannot race. */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      rc = errno == EEXIST ? store__err(STORE_ERR_STORE_EXISTS,
                                        "%s already holds a store", dir)
                           : store__errno(errno, path);
    else
      close(fd);
  }
  if (!rc) rc = open_common(s, true);
  if (!rc) rc = sync_created(s, made_dir);
  if (rc) {
    store_free(s);
    return rc;
  }
  *out = s;
  return STORE_OK;
}

int store_open(const char *dir, const store_config *cfg, store **out) {
  store__clear_err();
  *out = NULL;
  if (!dir || !*dir) return store__err(STORE_ERR_INVALID, "no directory");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/catalog.db", dir);
  struct stat st;
  if (stat(path, &st) != 0 || st.st_size == 0) {
    if (stat(path, &st) != 0 && errno != ENOENT)
      return store__errno(errno, path);
    return store__err(STORE_ERR_NO_STORE, "%s is not a store (no catalog)",
                      dir);
  }
  store *s = store_alloc(dir, cfg);
  if (!s) return store__errno(errno ? errno : ENOMEM, dir);
  /* A store on a read-only filesystem opens read-only: reads work, writes
   * fail with STORE_ERR_READONLY. */
  struct statvfs vfs;
  if (statvfs(s->dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
    s->fs_read_only = true;
    s->read_only = 1;
  }
  int rc = open_common(s, false);
  if (rc == STORE_ERR_READONLY && !s->read_only) {
    /* The filesystem refuses writes without saying so in statvfs (ext4
     * after errors=remount-ro): serve what it holds, read-only. */
    store_free(s);
    s = store_alloc(dir, cfg);
    if (!s) return store__errno(errno ? errno : ENOMEM, dir);
    s->fs_read_only = true;
    s->read_only = 1;
    rc = open_common(s, false);
  }
  if (rc) {
    store_free(s);
    return rc;
  }
  *out = s;
  return STORE_OK;
}

void store_close(store *s) { store_free(s); }

const char *store_dir(const store *s) { return s ? s->dir : NULL; }

uint64_t store_origin(const store *s) { return s ? s->origin : 0; }

/* ------------------------------------------------------------------ */
/* Users                                                               */
/* ------------------------------------------------------------------ */
static void random_key(char *out, size_t n, const char *alphabet) {
  size_t na = strlen(alphabet);
  uint8_t raw[128];
  store__random(raw, n);
  for (size_t i = 0; i < n; i++) out[i] = alphabet[raw[i] % na];
  out[n] = 0;
}

static bool key_chars_ok(const char *k, size_t maxlen) {
  size_t n = strlen(k);
  if (n < 3 || n >= maxlen) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)k[i];
    if (ch <= 0x20 || ch >= 0x7f) return false;
  }
  return true;
}

static int user_add_fn(store *s, conn *c, void *arg) {
  (void)s;
  store_user *u = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "INSERT INTO user(access_key, secret_key, name,"
                         " is_admin, created_ns) VALUES(?1,?2,?3,?4,?5)",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "user add");
  sqlite3_bind_text(st, 1, u->access_key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, u->secret_key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, u->name, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, u->is_admin);
  sqlite3_bind_int64(st, 5, u->created_ns);
  int src = sqlite3_step(st);
  sqlite3_finalize(st);
  if (src == SQLITE_CONSTRAINT)
    return store__err(STORE_ERR_USER_EXISTS, "access key %s already exists",
                      u->access_key);
  if (src != SQLITE_DONE) return store__sqlerr(c->db, src, "user add");
  return STORE_OK;
}

int store_user_add(store *s, const char *name, const char *access_key,
                   const char *secret_key, int is_admin, store_user *out) {
  store__clear_err();
  store_user u;
  memset(&u, 0, sizeof u);
  if (access_key) {
    if (!key_chars_ok(access_key, sizeof u.access_key))
      return store__err(STORE_ERR_INVALID,
                        "access key must be 3..63 printable characters");
    snprintf(u.access_key, sizeof u.access_key, "%s", access_key);
  } else {
    random_key(u.access_key, 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  }
  if (secret_key) {
    if (!key_chars_ok(secret_key, sizeof u.secret_key) ||
        strlen(secret_key) < 8)
      return store__err(STORE_ERR_INVALID,
                        "secret key must be 8..127 printable characters");
    snprintf(u.secret_key, sizeof u.secret_key, "%s", secret_key);
  } else {
    random_key(u.secret_key, 40,
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
  }
  snprintf(u.name, sizeof u.name, "%s", name ? name : "");
  u.is_admin = is_admin ? 1 : 0;
  u.created_ns = store__now_ns();
  int rc = store__write_txn(s, user_add_fn, &u);
  if (!rc && out) *out = u;
  return rc;
}

static void user_from_row(sqlite3_stmt *st, store_user *u) {
  memset(u, 0, sizeof *u);
  snprintf(u->access_key, sizeof u->access_key, "%s",
           (const char *)sqlite3_column_text(st, 0));
  snprintf(u->secret_key, sizeof u->secret_key, "%s",
           (const char *)sqlite3_column_text(st, 1));
  snprintf(u->name, sizeof u->name, "%s",
           (const char *)sqlite3_column_text(st, 2));
  u->is_admin = sqlite3_column_int(st, 3);
  u->revoked = sqlite3_column_int(st, 4);
  u->created_ns = sqlite3_column_int64(st, 5);
}

#define USER_COLS "access_key, secret_key, name, is_admin, revoked, created_ns"

int store_user_get(store *s, const char *access_key, store_user *out) {
  store__clear_err();
  if (!access_key) return store__err(STORE_ERR_NO_USER, "no access key");
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  /* On every authenticated request: a cached statement. */
  sqlite3_stmt *st = store__stmt(c, ST_USER_GET);
  rc = STORE_OK;
  if (!st) {
    rc = STORE_ERR_IO;
  } else {
    sqlite3_bind_text(st, 1, access_key, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) user_from_row(st, out);
    else if (src == SQLITE_DONE)
      rc = store__err(STORE_ERR_NO_USER, "access key not found");
    else rc = store__sqlerr(c->db, src, "user get");
    sqlite3_reset(st);
  }
  store__conn_put(s, c);
  return rc;
}

int store_user_list(store *s, store_user **out, size_t *n) {
  store__clear_err();
  *out = NULL;
  *n = 0;
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT " USER_COLS " FROM user ORDER BY created_ns,"
                         " access_key",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "user list");
    store__conn_put(s, c);
    return rc;
  }
  size_t cap = 0;
  store_user *list = NULL;
  int src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      store_user *nl = realloc(list, cap * sizeof *nl);
      if (!nl) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      list = nl;
    }
    user_from_row(st, &list[(*n)++]);
  }
  if (!rc && src != SQLITE_DONE) rc = store__sqlerr(c->db, src, "user list");
  sqlite3_finalize(st);
  store__conn_put(s, c);
  if (rc) {
    free(list);
    *n = 0;
    return rc;
  }
  *out = list;
  return STORE_OK;
}

void store_user_list_free(store_user *list) { free(list); }

static int user_revoke_fn(store *s, conn *c, void *arg) {
  (void)s;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "UPDATE user SET revoked = 1 WHERE access_key = ?1"
                         " AND revoked = 0",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "user revoke");
  sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  int src = sqlite3_step(st);
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) return store__sqlerr(c->db, src, "user revoke");
  if (sqlite3_changes(c->db) == 0)
    return store__err(STORE_ERR_NO_USER, "access key not found");
  return STORE_OK;
}

int store_user_revoke(store *s, const char *access_key) {
  store__clear_err();
  if (!access_key) return store__err(STORE_ERR_NO_USER, "no access key");
  return store__write_txn(s, user_revoke_fn, (void *)access_key);
}

/* ------------------------------------------------------------------ */
/* Buckets                                                             */
/* ------------------------------------------------------------------ */
int store_bucket_name_check(const char *name) {
  if (!name) return store__err(STORE_ERR_BAD_BUCKET_NAME, "no name");
  size_t n = strlen(name);
  if (n < 3 || n > STORE_BUCKET_NAME_MAX)
    return store__err(STORE_ERR_BAD_BUCKET_NAME,
                      "bucket names are 3 to 63 characters long");
  for (size_t i = 0; i < n; i++) {
    char ch = name[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
          ch == '.'))
      return store__err(STORE_ERR_BAD_BUCKET_NAME,
                        "bucket names use only a-z, 0-9, '.' and '-'");
  }
  if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')) ||
      !((name[n - 1] >= 'a' && name[n - 1] <= 'z') ||
        (name[n - 1] >= '0' && name[n - 1] <= '9')))
    return store__err(STORE_ERR_BAD_BUCKET_NAME,
                      "bucket names begin and end with a letter or digit");
  if (strstr(name, ".."))
    return store__err(STORE_ERR_BAD_BUCKET_NAME,
                      "bucket names have no two adjacent periods");
  if (!strncmp(name, "xn--", 4) || !strncmp(name, "sthree-", 7))
    return store__err(STORE_ERR_BAD_BUCKET_NAME,
                      "bucket names must not start with xn-- or sthree-");
  if ((n > 8 && !strcmp(name + n - 8, "-s3alias")) ||
      (n > 11 && !strcmp(name + n - 11, "--ol-s3")))
    return store__err(STORE_ERR_BAD_BUCKET_NAME,
                      "bucket names must not end with -s3alias or --ol-s3");
  /* Not formatted as an IPv4 address. */
  int dots = 0, digits_only = 1;
  for (size_t i = 0; i < n; i++) {
    if (name[i] == '.') dots++;
    else if (name[i] < '0' || name[i] > '9') digits_only = 0;
  }
  if (dots == 3 && digits_only)
    return store__err(STORE_ERR_BAD_BUCKET_NAME,
                      "bucket names must not look like an IP address");
  return STORE_OK;
}

int store__bucket_id(conn *c, const char *name, int64_t *id) {
  sqlite3_stmt *st = store__stmt(c, ST_BUCKET_ID);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return STORE_OK;
  }
  sqlite3_reset(st);
  if (src == SQLITE_DONE)
    return store__err(STORE_ERR_NO_BUCKET, "bucket %s does not exist", name);
  return store__sqlerr(c->db, src, "bucket lookup");
}

struct bucket_args {
  const char *name, *owner;
  const store_kv *tags;
  size_t n_tags;
};

static int bucket_create_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct bucket_args *a = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "INSERT INTO bucket(name, owner, created_ns)"
                         " VALUES(?1, ?2, ?3)",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "bucket create");
  sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, a->owner ? a->owner : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, store__now_ns());
  int src = sqlite3_step(st);
  sqlite3_finalize(st);
  if (src == SQLITE_CONSTRAINT)
    return store__err(STORE_ERR_BUCKET_EXISTS, "bucket %s already exists",
                      a->name);
  if (src != SQLITE_DONE) return store__sqlerr(c->db, src, "bucket create");
  return store__change(c, STORE_CHANGE_BUCKET, a->name, "");
}

int store_bucket_create(store *s, const char *name, const char *owner) {
  store__clear_err();
  int rc = store_bucket_name_check(name);
  if (rc) return rc;
  struct bucket_args a = {.name = name, .owner = owner};
  return store__write_txn(s, bucket_create_fn, &a);
}

static int bucket_delete_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct bucket_args *a = arg;
  int64_t id;
  int rc = store__bucket_id(c, a->name, &id);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT EXISTS(SELECT 1 FROM object WHERE bucket_id"
                         " = ?1) OR EXISTS(SELECT 1 FROM upload WHERE"
                         " bucket_id = ?1)",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "bucket delete");
  sqlite3_bind_int64(st, 1, id);
  int busy = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (busy)
    return store__err(STORE_ERR_BUCKET_NOT_EMPTY, "bucket %s is not empty",
                      a->name);
  char sql[64];
  snprintf(sql, sizeof sql, "DELETE FROM bucket WHERE id = %lld",
           (long long)id);
  rc = exec(c, sql);
  if (!rc) rc = store__change(c, STORE_CHANGE_BUCKET, a->name, "");
  return rc;
}

int store_bucket_delete(store *s, const char *name) {
  store__clear_err();
  if (!name) return store__err(STORE_ERR_NO_BUCKET, "no bucket name");
  struct bucket_args a = {.name = name};
  return store__write_txn_freeing(s, bucket_delete_fn, &a);
}

static void bucket_from_row(sqlite3_stmt *st, store_bucket_info *b) {
  memset(b, 0, sizeof *b);
  snprintf(b->name, sizeof b->name, "%s",
           (const char *)sqlite3_column_text(st, 0));
  snprintf(b->owner, sizeof b->owner, "%s",
           (const char *)sqlite3_column_text(st, 1));
  b->created_ns = sqlite3_column_int64(st, 2);
  b->versioning = sqlite3_column_int(st, 3);
}

int store_bucket_head(store *s, const char *name, store_bucket_info *out) {
  store__clear_err();
  if (!name) return store__err(STORE_ERR_NO_BUCKET, "no bucket name");
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_stmt *st = store__stmt(c, ST_BUCKET_HEAD);
  if (!st) {
    rc = STORE_ERR_IO;
  } else {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
      if (out) bucket_from_row(st, out);
    } else if (src == SQLITE_DONE) {
      rc = store__err(STORE_ERR_NO_BUCKET, "bucket %s does not exist", name);
    } else {
      rc = store__sqlerr(c->db, src, "bucket head");
    }
    sqlite3_reset(st);
  }
  store__conn_put(s, c);
  return rc;
}

int store_bucket_list(store *s, store_bucket_info **out, size_t *n) {
  store__clear_err();
  *out = NULL;
  *n = 0;
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT name, owner, created_ns, versioning FROM"
                         " bucket ORDER BY name",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "bucket list");
    store__conn_put(s, c);
    return rc;
  }
  size_t cap = 0;
  store_bucket_info *list = NULL;
  int src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      store_bucket_info *nl = realloc(list, cap * sizeof *nl);
      if (!nl) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      list = nl;
    }
    bucket_from_row(st, &list[(*n)++]);
  }
  if (!rc && src != SQLITE_DONE) rc = store__sqlerr(c->db, src, "bucket list");
  sqlite3_finalize(st);
  store__conn_put(s, c);
  if (rc) {
    free(list);
    *n = 0;
    return rc;
  }
  *out = list;
  return STORE_OK;
}

void store_bucket_list_free(store_bucket_info *list) { free(list); }

static int bucket_tags_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct bucket_args *a = arg;
  int64_t id;
  int rc = store__bucket_id(c, a->name, &id);
  if (rc) return rc;
  char *blob;
  size_t len;
  rc = store__kv_encode(a->tags, a->n_tags, &blob, &len);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, "UPDATE bucket SET tags = ?2 WHERE id = ?1",
                         -1, &st, NULL) != SQLITE_OK) {
    free(blob);
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "bucket tags");
  }
  sqlite3_bind_int64(st, 1, id);
  if (blob) sqlite3_bind_blob(st, 2, blob, (int)len, free);
  else sqlite3_bind_null(st, 2);
  rc = store__step_done(c, st, "bucket tags");
  sqlite3_finalize(st);
  return rc;
}

int store_bucket_tags_set(store *s, const char *name, const store_kv *tags,
                          size_t n) {
  store__clear_err();
  if (n > STORE_TAGS_MAX)
    return store__err(STORE_ERR_TOO_LARGE, "more than %d tags",
                      STORE_TAGS_MAX);
  struct bucket_args a = {.name = name, .tags = tags, .n_tags = n};
  return store__write_txn(s, bucket_tags_fn, &a);
}

int store_bucket_tags_get(store *s, const char *name, store_kv **tags,
                          size_t *n) {
  store__clear_err();
  *tags = NULL;
  *n = 0;
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, "SELECT tags FROM bucket WHERE name = ?1", -1,
                         &st, NULL) != SQLITE_OK) {
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "bucket tags");
  } else {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
      rc = store__kv_decode(sqlite3_column_blob(st, 0),
                            (size_t)sqlite3_column_bytes(st, 0), tags, n);
    else if (src == SQLITE_DONE)
      rc = store__err(STORE_ERR_NO_BUCKET, "bucket %s does not exist", name);
    else rc = store__sqlerr(c->db, src, "bucket tags");
    sqlite3_finalize(st);
  }
  store__conn_put(s, c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Change feed                                                         */
/* ------------------------------------------------------------------ */
#define CHANGE_KEEP 100000
#define CHANGE_KEEP_NS (3600LL * 1000000000)

int store__change(conn *c, int kind, const char *bucket, const char *key) {
  sqlite3_stmt *st = store__stmt(c, ST_CHANGE_ADD);
  if (!st) return STORE_ERR_IO;
  int64_t now = store__now_ns();
  sqlite3_bind_int(st, 1, kind);
  sqlite3_bind_text(st, 2, bucket ? bucket : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, key ? key : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_int64(st, 5, (int64_t)c->origin);
  int rc = store__step_done(c, st, "change feed");
  sqlite3_reset(st);
  if (rc) return rc;
  int64_t seq = sqlite3_last_insert_rowid(c->db);
  if ((seq & 1023) == 0) {
    /* Prune now and then, keeping both the last CHANGE_KEEP records and
     * the last hour. */
    char sql[160];
    snprintf(sql, sizeof sql,
             "DELETE FROM change WHERE seq <= %lld AND at_ns < %lld",
             (long long)(seq - CHANGE_KEEP), (long long)(now - CHANGE_KEEP_NS));
    int src = sqlite3_exec(c->db, sql, 0, 0, 0);
    if (src != SQLITE_OK) return store__sqlerr(c->db, src, "change prune");
  }
  return STORE_OK;
}

int store_changes_head(store *s, uint64_t *seq) {
  store__clear_err();
  *seq = 0;
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT coalesce((SELECT seq FROM sqlite_sequence"
                         " WHERE name = 'change'), 0)",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "change head");
  } else {
    if (sqlite3_step(st) == SQLITE_ROW) *seq = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  store__conn_put(s, c);
  return rc;
}

int store_changes_since(store *s, uint64_t after, uint32_t max,
                        store_change **out, size_t *n, int *lost) {
  store__clear_err();
  *out = NULL;
  *n = 0;
  if (lost) *lost = 0;
  if (!max || max > 1000) max = 1000;
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_exec(c->db, "BEGIN", 0, 0, 0);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT min(seq), coalesce((SELECT seq FROM"
                         " sqlite_sequence WHERE name = 'change'), 0)"
                         " FROM change",
                         -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW && lost) {
      uint64_t head = (uint64_t)sqlite3_column_int64(st, 1);
      bool empty = sqlite3_column_type(st, 0) == SQLITE_NULL;
      uint64_t lo = empty ? head + 1 : (uint64_t)sqlite3_column_int64(st, 0);
      if (head > after && lo > after + 1) *lost = 1;
    }
    sqlite3_finalize(st);
  }
  store_change *list = calloc(max, sizeof *list);
  if (!list) rc = STORE_ERR_NOMEM;
  if (!rc && sqlite3_prepare_v2(c->db,
                                "SELECT seq, kind, bucket, key, origin"
                                " FROM change"
                                " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                                -1, &st, NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "changes");
  if (!rc) {
    sqlite3_bind_int64(st, 1, (int64_t)after);
    sqlite3_bind_int(st, 2, (int)max);
    while (sqlite3_step(st) == SQLITE_ROW) {
      store_change *ch = &list[*n];
      ch->seq = (uint64_t)sqlite3_column_int64(st, 0);
      ch->kind = sqlite3_column_int(st, 1);
      ch->origin = (uint64_t)sqlite3_column_int64(st, 4);
      snprintf(ch->bucket, sizeof ch->bucket, "%s",
               (const char *)sqlite3_column_text(st, 2));
      ch->key = strdup((const char *)sqlite3_column_text(st, 3));
      if (!ch->key) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      (*n)++;
    }
    sqlite3_finalize(st);
  }
  sqlite3_exec(c->db, "COMMIT", 0, 0, 0);
  store__conn_put(s, c);
  if (rc) {
    store_changes_free(list, *n);
    *n = 0;
    return rc;
  }
  *out = list;
  return STORE_OK;
}

void store_changes_free(store_change *c, size_t n) {
  if (!c) return;
  for (size_t i = 0; i < n; i++) free(c[i].key);
  free(c);
}

int store_space_get(store *s, store_space *out) {
  store__clear_err();
  memset(out, 0, sizeof *out);
  struct statvfs v;
  if (statvfs(s->dir, &v) != 0) return store__errno(errno, s->dir);
  out->total_bytes = (uint64_t)v.f_blocks * v.f_frsize;
  out->free_bytes = (uint64_t)v.f_bfree * v.f_frsize;
  out->avail_bytes = (uint64_t)v.f_bavail * v.f_frsize;
  out->total_files = v.f_files;
  out->free_files = v.f_ffree;
  return STORE_OK;
}
