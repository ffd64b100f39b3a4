/*
 * maint.c -- statistics, garbage collection and verification (fsck).
 *
 * GC and writers in other processes: a chunk row with refs = 0 is deleted
 * together with its file inside one write transaction, so a committing
 * writer (which holds the same lock) either sees the row and bumps it, or
 * sees no row and restores the file from its lease (backend_local.c).
 * Files that no row names are either leftovers of dead writers or chunks a
 * live writer has not committed yet; GC removes their public name only,
 * and a live writer's lease brings it back at commit.
 */
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define GC_BATCH 256

/* Pause between two of gc's write transactions.  A writer of another
 * process waits for the cross-process write lock by polling it (catalog.c,
 * writer_lock: at most ~1.3 ms between tries); a gc that takes the lock
 * back at once after each batch would find it free every time, and every
 * PUT and DELETE of s3d or fusefs would wait for the whole gc (seconds to
 * tens of seconds, measured by bench/soak.sh).  Each pause lets the
 * waiters in: they then wait for one batch at most. */
#define GC_YIELD_US 10000

static int64_t one_int(conn *c, const char *sql, int *rc) {
  sqlite3_stmt *st;
  int64_t v = 0;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
    *rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "stats");
    return 0;
  }
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int store_stats_get(store *s, store_stats *out) {
  store__clear_err();
  memset(out, 0, sizeof *out);
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  sqlite3_exec(c->db, "BEGIN", 0, 0, 0);
  out->buckets = (uint64_t)one_int(c, "SELECT count(*) FROM bucket", &rc);
  out->objects = (uint64_t)one_int(c, "SELECT count(*) FROM object", &rc);
  out->uploads = (uint64_t)one_int(c, "SELECT count(*) FROM upload", &rc);
  out->logical_bytes =
      (uint64_t)one_int(c, "SELECT total(size) FROM object", &rc);
  out->physical_bytes =
      (uint64_t)one_int(c, "SELECT total(size) FROM chunk WHERE refs > 0", &rc);
  out->chunks = (uint64_t)one_int(c, "SELECT count(*) FROM chunk", &rc);
  out->inline_chunks =
      (uint64_t)one_int(c, "SELECT count(*) FROM chunk WHERE data IS NOT NULL", &rc);
  out->unreferenced_chunks =
      (uint64_t)one_int(c, "SELECT count(*) FROM chunk WHERE refs = 0", &rc);
  out->unreferenced_bytes =
      (uint64_t)one_int(c, "SELECT total(size) FROM chunk WHERE refs = 0", &rc);
  sqlite3_exec(c->db, "COMMIT", 0, 0, 0);
  store__conn_put(s, c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* GC                                                                  */
/* ------------------------------------------------------------------ */
struct gc_state {
  store_gc_report *rep;
  int64_t deleted_rows;
};

static int gc_batch_fn(store *s, conn *c, void *arg) {
  struct gc_state *g = arg;
  sqlite3_stmt *sel, *del;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT hash, size, data IS NULL FROM chunk"
                         " WHERE refs = 0 LIMIT ?1",
                         -1, &sel, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "gc");
  if (sqlite3_prepare_v2(c->db, "DELETE FROM chunk WHERE hash = ?1", -1, &del,
                         NULL) != SQLITE_OK) {
    sqlite3_finalize(sel);
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "gc");
  }
  sqlite3_bind_int(sel, 1, GC_BATCH);
  uint8_t ids[GC_BATCH][HASH_LEN];
  uint64_t sizes[GC_BATCH];
  bool files[GC_BATCH];
  int n = 0, rc = STORE_OK;
  while (n < GC_BATCH && sqlite3_step(sel) == SQLITE_ROW) {
    memcpy(ids[n], sqlite3_column_blob(sel, 0), HASH_LEN);
    sizes[n] = (uint64_t)sqlite3_column_int64(sel, 1);
    files[n] = sqlite3_column_int(sel, 2) != 0;
    n++;
  }
  sqlite3_finalize(sel);
  g->deleted_rows = n;
  for (int i = 0; i < n && !rc; i++) {
    /* The file goes while we hold the write lock: no writer can be
     * between "row seen" and "refs bumped" right now. */
    if (files[i]) rc = s->be->remove(s, ids[i]);
    if (rc) break;
    sqlite3_reset(del);
    sqlite3_bind_blob(del, 1, ids[i], HASH_LEN, SQLITE_STATIC);
    rc = store__step_done(c, del, "gc delete");
    g->rep->chunks_deleted++;
    g->rep->bytes_freed += sizes[i];
  }
  sqlite3_finalize(del);
  return rc;
}

struct orphan_walk {
  store *s;
  conn *c;
  uint8_t (*ids)[HASH_LEN];
  uint64_t *sizes;
  size_t n, cap;
  int rc;
};

static int orphan_cb(void *arg, const uint8_t id[HASH_LEN], uint64_t size) {
  struct orphan_walk *o = arg;
  sqlite3_stmt *st = store__stmt(o->c, ST_CHUNK_UNREF);
  if (!st) {
    o->rc = STORE_ERR_IO;
    return -1;
  }
  sqlite3_bind_blob(st, 1, id, HASH_LEN, SQLITE_STATIC);
  int src = sqlite3_step(st);
  sqlite3_reset(st);
  if (src == SQLITE_ROW) return 0;
  if (src != SQLITE_DONE) {
    o->rc = store__sqlerr(o->c->db, src, "gc walk");
    return -1;
  }
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 256;
    void *ni = realloc(o->ids, o->cap * HASH_LEN);
    void *ns = realloc(o->sizes, o->cap * sizeof *o->sizes);
    if (ni) o->ids = ni;
    if (ns) o->sizes = ns;
    if (!ni || !ns) {
      o->rc = STORE_ERR_NOMEM;
      return -1;
    }
  }
  memcpy(o->ids[o->n], id, HASH_LEN);
  o->sizes[o->n++] = size;
  return 0;
}

struct orphan_del {
  struct orphan_walk *w;
  size_t from, to;
  store_gc_report *rep;
};

static int orphan_del_fn(store *s, conn *c, void *arg) {
  struct orphan_del *d = arg;
  sqlite3_stmt *st = store__stmt(c, ST_CHUNK_UNREF);
  if (!st) return STORE_ERR_IO;
  for (size_t i = d->from; i < d->to; i++) {
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, d->w->ids[i], HASH_LEN, SQLITE_STATIC);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src == SQLITE_ROW) continue; /* committed meanwhile: keep */
    if (src != SQLITE_DONE) return store__sqlerr(c->db, src, "gc orphans");
    int rc = s->be->remove(s, d->w->ids[i]);
    if (rc) return rc;
    d->rep->orphan_files_deleted++;
    d->rep->bytes_freed += d->w->sizes[i];
  }
  return STORE_OK;
}

int store_gc(store *s, store_progress_fn fn, void *arg, store_gc_report *out) {
  store__clear_err();
  store_gc_report rep;
  memset(&rep, 0, sizeof rep);
  if (s->read_only) return store__err(STORE_ERR_READONLY, "opened read-only");
  int rc = s->be->clean_staging(s, &rep.staging_cleaned);
  struct gc_state g = {.rep = &rep};
  while (!rc) {
    rc = store__write_txn_freeing(s, gc_batch_fn, &g);
    if (fn && fn(arg, "chunks", rep.chunks_deleted, 0)) break;
    if (g.deleted_rows < GC_BATCH) break;
    usleep(GC_YIELD_US);
  }
  /* Files with no row at all. */
  if (!rc) {
    conn *c;
    rc = store__conn_get(s, &c);
    if (!rc) {
      struct orphan_walk w = {.s = s, .c = c};
      rc = s->be->walk(s, orphan_cb, &w);
      if (!rc) rc = w.rc;
      store__conn_put(s, c);
      for (size_t i = 0; !rc && i < w.n; i += GC_BATCH) {
        struct orphan_del d = {.w = &w, .from = i,
                               .to = i + GC_BATCH < w.n ? i + GC_BATCH : w.n,
                               .rep = &rep};
        if (i) usleep(GC_YIELD_US);
        rc = store__write_txn_freeing(s, orphan_del_fn, &d);
        if (fn && fn(arg, "orphans", d.to, w.n)) break;
      }
      free(w.ids);
      free(w.sizes);
    }
  }
  if (!rc) store__reserve_ensure(s); /* space was freed: hold some back */
  if (out) *out = rep;
  return rc;
}

/* ------------------------------------------------------------------ */
/* fsck                                                                */
/* ------------------------------------------------------------------ */
static int hash_file(store *s, const uint8_t id[HASH_LEN], uint8_t *buf,
                     uint8_t out[HASH_LEN], uint64_t *got) {
  int fd;
  int rc = s->be->open(s, id, &fd);
  if (rc) return rc;
  struct sha256_ctx h;
  sha256_init(&h);
  uint64_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf, CHUNK_SIZE);
    if (r < 0) {
      close(fd);
      return store__err(STORE_ERR_IO, "read chunk");
    }
    if (r == 0) break;
    sha256_update(&h, (size_t)r, buf);
    total += (uint64_t)r;
  }
  close(fd);
  sha256_digest(&h, HASH_LEN, out);
  *got = total;
  return STORE_OK;
}

static int cmp_hash(const void *a, const void *b) {
  return memcmp(a, b, HASH_LEN);
}

static int bad_add(uint8_t (**bad)[HASH_LEN], size_t *n, size_t *cap,
                   const uint8_t id[HASH_LEN]) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    void *nb = realloc(*bad, *cap * HASH_LEN);
    if (!nb) return -1;
    *bad = nb;
  }
  memcpy((*bad)[(*n)++], id, HASH_LEN);
  return 0;
}

int store_fsck(store *s, int repair_refcounts, store_progress_fn fn, void *arg,
               store_fsck_report *out) {
  store__clear_err();
  store_fsck_report rep;
  memset(&rep, 0, sizeof rep);
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  uint8_t *buf = store__buf_get(s);
  if (!buf) {
    store__conn_put(s, c);
    return STORE_ERR_NOMEM;
  }
  /* 1. SQLite's own structure. */
  sqlite3_stmt *st;
  rep.catalog_ok = 0;
  if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &st, NULL) ==
      SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) {
      const char *r = (const char *)sqlite3_column_text(st, 0);
      rep.catalog_ok = r && !strcmp(r, "ok");
    }
    sqlite3_finalize(st);
  }
  /* One snapshot for the catalog checks. */
  sqlite3_exec(c->db, "BEGIN", 0, 0, 0);
  uint64_t total = (uint64_t)one_int(c, "SELECT count(*) FROM chunk", &rc);

  /* 2. Every chunk against its name; bad ones are remembered (sorted
   * below) so that step 4 can count the objects that use them. */
  uint8_t (*bad)[HASH_LEN] = NULL;
  size_t n_bad = 0, cap_bad = 0;
  bool stopped = false;
  if (!rc && sqlite3_prepare_v2(c->db,
                                "SELECT hash, size, data, refs FROM chunk", -1, &st,
                                NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "fsck");
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    uint8_t id[HASH_LEN], h[HASH_LEN];
    if (sqlite3_column_bytes(st, 0) != HASH_LEN) {
      rep.chunks_corrupt++;
      continue;
    }
    memcpy(id, sqlite3_column_blob(st, 0), HASH_LEN);
    uint64_t size = (uint64_t)sqlite3_column_int64(st, 1), got = 0;
    if (sqlite3_column_type(st, 2) == SQLITE_BLOB) {
      got = (uint64_t)sqlite3_column_bytes(st, 2);
      store__sha256(sqlite3_column_blob(st, 2), (size_t)got, h);
    } else {
      int r2 = hash_file(s, id, buf, h, &got);
      if (r2 == STORE_ERR_CORRUPT) { /* missing file */
        /* refs = 0: GC may be removing it right now; not damage. */
        if (sqlite3_column_int64(st, 3) > 0) {
          rep.chunks_missing++;
          if (bad_add(&bad, &n_bad, &cap_bad, id)) rc = STORE_ERR_NOMEM;
        }
        rep.chunks_checked++;
        continue;
      }
      if (r2) {
        rc = r2;
        break;
      }
    }
    rep.chunks_checked++;
    rep.bytes_checked += got;
    if (got != size || memcmp(h, id, HASH_LEN) != 0) {
      rep.chunks_corrupt++;
      if (bad_add(&bad, &n_bad, &cap_bad, id)) rc = STORE_ERR_NOMEM;
    }
    if (fn && (rep.chunks_checked & 63) == 0 &&
        fn(arg, "chunks", rep.chunks_checked, total)) {
      stopped = true;
      break;
    }
  }
  sqlite3_finalize(st);
  if (n_bad > 1) qsort(bad, n_bad, HASH_LEN, cmp_hash);

  /* 3. Reference counts against the extents that name each chunk, and
   * extents naming chunks that have no row. */
  if (!rc) {
    rep.refcount_wrong = (uint64_t)one_int(
        c,
        "SELECT count(*) FROM chunk c LEFT JOIN (SELECT chunk, count(*) AS n"
        " FROM extent WHERE chunk IS NOT NULL GROUP BY chunk) e"
        " ON e.chunk = c.hash WHERE c.refs <> coalesce(e.n, 0)",
        &rc);
    rep.chunks_missing += (uint64_t)one_int(
        c,
        "SELECT count(DISTINCT chunk) FROM extent WHERE chunk IS NOT NULL"
        " AND chunk NOT IN (SELECT hash FROM chunk)",
        &rc);
  }
  /* 4. Every object: extents contiguous from 0 to its size, chunks sound. */
  if (!rc && sqlite3_prepare_v2(
                 c->db,
                 "SELECT o.id, o.size, e.off, e.len, e.chunk, e.chunk_off,"
                 " c.size, c.hash IS NULL FROM object o LEFT JOIN extent e"
                 " ON e.cid = o.id LEFT JOIN chunk c ON c.hash = e.chunk"
                 " ORDER BY o.id, e.off",
                 -1, &st, NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "fsck objects");
  int64_t cur = -1;
  uint64_t expect = 0, size = 0;
  bool damaged = false;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    int64_t oid = sqlite3_column_int64(st, 0);
    if (oid != cur) {
      if (cur >= 0) {
        if (damaged || expect != size) rep.objects_damaged++;
        rep.objects_checked++;
      }
      cur = oid;
      size = (uint64_t)sqlite3_column_int64(st, 1);
      expect = 0;
      damaged = false;
    }
    if (sqlite3_column_type(st, 2) == SQLITE_NULL) continue; /* no extents */
    uint64_t off = (uint64_t)sqlite3_column_int64(st, 2);
    uint64_t len = (uint64_t)sqlite3_column_int64(st, 3);
    if (off != expect) damaged = true;
    expect = off + len;
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
      if (n_bad && sqlite3_column_bytes(st, 4) == HASH_LEN &&
          bsearch(sqlite3_column_blob(st, 4), bad, n_bad, HASH_LEN, cmp_hash))
        damaged = true; /* uses a corrupt or missing chunk */
      if (sqlite3_column_int(st, 7)) damaged = true; /* chunk row missing */
      else if ((uint64_t)sqlite3_column_int64(st, 5) + len >
               (uint64_t)sqlite3_column_int64(st, 6))
        damaged = true;
    }
  }
  if (cur >= 0) {
    if (damaged || expect != size) rep.objects_damaged++;
    rep.objects_checked++;
  }
  free(bad);
  sqlite3_finalize(st);
  sqlite3_exec(c->db, "COMMIT", 0, 0, 0);

  /* 5. Files no row names (GC reclaims them; not damage). */
  if (!rc) {
    struct orphan_walk w = {.s = s, .c = c};
    int r2 = s->be->walk(s, orphan_cb, &w);
    if (!r2) rep.orphan_files = w.n;
    free(w.ids);
    free(w.sizes);
  }
  store__buf_put(s, buf);
  store__conn_put(s, c);
  if (!rc && repair_refcounts && rep.refcount_wrong && !s->read_only) {
    conn *wc;
    rc = store__conn_get(s, &wc);
    if (!rc) {
      int src = sqlite3_exec(
          wc->db,
          "BEGIN IMMEDIATE;"
          "UPDATE chunk SET refs = (SELECT count(*) FROM extent"
          " WHERE extent.chunk = chunk.hash);"
          "COMMIT;",
          0, 0, 0);
      if (src != SQLITE_OK) rc = store__sqlerr(wc->db, src, "fsck repair");
      else rep.refcount_wrong = 0;
      store__conn_put(s, wc);
    }
  }
  if (out) *out = rep;
  if (rc) return rc;
  if (stopped) return store__err(STORE_ERR_INVALID, "fsck stopped before the end");
  if (!rep.catalog_ok || rep.chunks_corrupt || rep.chunks_missing ||
      rep.refcount_wrong || rep.objects_damaged)
    return store__err(STORE_ERR_CORRUPT,
                      "%llu corrupt, %llu missing chunks, %llu wrong refcounts,"
                      " %llu damaged objects%s",
                      (unsigned long long)rep.chunks_corrupt,
                      (unsigned long long)rep.chunks_missing,
                      (unsigned long long)rep.refcount_wrong,
                      (unsigned long long)rep.objects_damaged,
                      rep.catalog_ok ? "" : ", catalog check failed");
  return STORE_OK;
}
