/*
 * object.c -- writing and reading object data.
 *
 * Chunking: an object is cut on a fixed 1 MiB grid of "cells".  A writer
 * keeps dirty cells in memory (pooled buffers) and turns each into one
 * chunk when it is complete or evicted; a random write into a large object
 * rewrites only the cells it touches, everything else stays a reference to
 * the chunks the object already had.  Multipart completion and copies make
 * objects whose extents are not on the grid; that is fine, because the
 * catalog records each extent's (offset, length, chunk, offset in chunk)
 * and a write splits extents where it needs to.
 *
 * One pass over the data: the caller's thread computes the MD5 of the
 * whole body as bytes arrive; full cells are handed to a flusher thread
 * that computes their SHA-256 and writes them (staging + fdatasync +
 * link), so the two hashes run on two cores.  Nothing is read back to
 * commit a streamed object.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_CELLS 16 /* dirty cells kept per writer before eviction */

enum writer_kind { W_NEW, W_EDIT, W_PART };

typedef struct wext {
  uint64_t off, len, coff;
  uint8_t id[HASH_LEN];
  bool hole;
  uint32_t fresh; /* 1 + index into w->fresh, or 0 for an existing chunk */
} wext;

typedef struct fresh_chunk {
  uint8_t id[HASH_LEN];
  uint64_t size;
  char *lease;   /* staging hard link of a file chunk */
  uint8_t *data; /* bytes of an inline chunk */
} fresh_chunk;

typedef struct cell {
  uint64_t idx;
  uint8_t *buf;
  uint32_t len; /* bytes [0, len) are defined; the rest reads as zeros */
} cell;

/* The streaming pipeline: full cells go through a ring of PIPE_DEPTH jobs.
 * The hasher thread computes each one's SHA-256 and writes it under a
 * lease (put_begin); the syncer thread makes it durable and public
 * (put_finish, the fdatasync); the caller collects finished jobs in order
 * and maps their chunks.  So MD5 (caller), SHA-256 + write (hasher) and
 * the wait for the disk (syncer) overlap. */
#define PIPE_DEPTH 8
#define SYNCERS 3 /* fdatasyncs of different files proceed in parallel */

enum job_state { JOB_FREE, JOB_QUEUED, JOB_WRITTEN, JOB_SYNCING, JOB_DONE };

typedef struct flush_job {
  int state;
  uint8_t *buf;
  uint64_t off;
  uint32_t len;
  int rc;
  int fd; /* from put_begin, for put_finish */
  char err[256];
  uint8_t id[HASH_LEN];
  char lease[PATH_MAX];
} flush_job;

struct store_writer {
  store *s;
  int kind;
  char *bucket, *key, *upload_id;
  uint32_t part_number;
  /* edit base */
  bool has_base;
  uint64_t base_ino;
  bool ino_set;      /* base_ino chosen by store_writer_set_ino */
  store_object_info base;
  /* flushed content: sorted, contiguous extents over [0, ext_end) */
  wext *ext;
  size_t n_ext, cap_ext;
  uint64_t size;
  cell cells[MAX_CELLS];
  size_t n_cells;
  fresh_chunk *fresh;
  size_t n_fresh, cap_fresh;
  struct md5_ctx md5;
  bool md5_ok;
  int error; /* sticky: once a write failed, commit fails */
  /* read cache for loading cells from existing chunks */
  int rfd;
  uint8_t rfd_id[HASH_LEN];
  /* the pipeline: jobs [tail, head) are in flight, in submission order */
  pthread_t hasher, syncer[SYNCERS];
  int n_syncers;
  bool th_started, th_quit;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  flush_job jobs[PIPE_DEPTH];
  unsigned head, tail, next_hash, next_sync;
};

static uint64_t ext_end(const store_writer *w) {
  return w->n_ext ? w->ext[w->n_ext - 1].off + w->ext[w->n_ext - 1].len : 0;
}

static int ext_reserve(store_writer *w, size_t more) {
  if (w->n_ext + more <= w->cap_ext) return STORE_OK;
  size_t cap = w->cap_ext ? w->cap_ext * 2 : 64;
  while (cap < w->n_ext + more) cap *= 2;
  wext *n = realloc(w->ext, cap * sizeof *n);
  if (!n) return STORE_ERR_NOMEM;
  w->ext = n;
  w->cap_ext = cap;
  return STORE_OK;
}

/* Index of the first extent whose end is beyond `off`. */
static size_t ext_find(const store_writer *w, uint64_t off) {
  size_t lo = 0, hi = w->n_ext;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (w->ext[mid].off + w->ext[mid].len <= off) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Replace [e.off, e.off+e.len) of the extent map by `e`; the map must
 * reach at least e.off (holes fill any gap before). */
static int ext_replace(store_writer *w, const wext *e) {
  uint64_t end0 = ext_end(w);
  if (e->off > end0) {
    wext hole = {.off = end0, .len = e->off - end0, .hole = true};
    int rc = ext_replace(w, &hole);
    if (rc) return rc;
    end0 = e->off;
  }
  int rc = ext_reserve(w, 2);
  if (rc) return rc;
  uint64_t a = e->off, b = e->off + e->len;
  size_t i = ext_find(w, a);
  if (i == w->n_ext) { /* append */
    w->ext[w->n_ext++] = *e;
    return STORE_OK;
  }
  /* Split the extent that straddles `a`. */
  if (w->ext[i].off < a) {
    wext left = w->ext[i], right = w->ext[i];
    left.len = a - left.off;
    right.len -= left.len;
    right.off = a;
    if (!right.hole) right.coff += left.len;
    memmove(&w->ext[i + 1], &w->ext[i], (w->n_ext - i) * sizeof *w->ext);
    w->n_ext++;
    w->ext[i] = left;
    w->ext[i + 1] = right;
    i++;
  }
  /* Remove the extents fully inside [a, b); trim the one straddling b. */
  size_t j = i;
  while (j < w->n_ext && w->ext[j].off + w->ext[j].len <= b) j++;
  if (j < w->n_ext && w->ext[j].off < b) {
    uint64_t cut = b - w->ext[j].off;
    w->ext[j].off = b;
    w->ext[j].len -= cut;
    if (!w->ext[j].hole) w->ext[j].coff += cut;
  }
  /* Now [i, j) are replaced by one extent. */
  if (j == i) {
    memmove(&w->ext[i + 1], &w->ext[i], (w->n_ext - i) * sizeof *w->ext);
    w->n_ext++;
  } else if (j > i + 1) {
    memmove(&w->ext[i + 1], &w->ext[j], (w->n_ext - j) * sizeof *w->ext);
    w->n_ext -= j - i - 1;
  }
  w->ext[i] = *e;
  return STORE_OK;
}

static void ext_truncate(store_writer *w, uint64_t size) {
  size_t i = ext_find(w, size);
  if (i < w->n_ext && w->ext[i].off < size) {
    w->ext[i].len = size - w->ext[i].off;
    i++;
  }
  w->n_ext = i;
}

/* ------------------------------------------------------------------ */
/* Reading chunk bytes                                                 */
/* ------------------------------------------------------------------ */
static int read_full(int fd, void *buf, size_t n, uint64_t off, size_t *got) {
  uint8_t *p = buf;
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return store__errno(errno, "read chunk");
    }
    if (r == 0) break;
    done += (size_t)r;
  }
  *got = done;
  return STORE_OK;
}

/* Bytes [coff, coff+n) of a chunk that the catalog already names: inline
 * data from its row, or the chunk file (fd cached by the caller). */
int store__read_chunk(store *s, conn *c, const uint8_t id[HASH_LEN],
                      uint64_t coff, void *buf, size_t n, int *fd_cache,
                      uint8_t *fd_id) {
  if (*fd_cache < 0 || memcmp(fd_id, id, HASH_LEN) != 0) {
    sqlite3_stmt *st = store__stmt(c, ST_CHUNK_INLINE);
    if (!st) return STORE_ERR_IO;
    sqlite3_bind_blob(st, 1, id, HASH_LEN, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB) {
      size_t len = (size_t)sqlite3_column_bytes(st, 0);
      const uint8_t *d = sqlite3_column_blob(st, 0);
      int rc = STORE_OK;
      if (coff + n > len)
        rc = store__err(STORE_ERR_CORRUPT, "inline chunk shorter than extent");
      else memcpy(buf, d + coff, n);
      sqlite3_reset(st);
      return rc;
    }
    sqlite3_reset(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
      return store__sqlerr(c->db, src, "chunk lookup");
    if (*fd_cache >= 0) close(*fd_cache);
    *fd_cache = -1;
    int rc = s->be->open(s, id, fd_cache);
    if (rc) return rc;
    memcpy(fd_id, id, HASH_LEN);
  }
  size_t got = 0;
  int rc = read_full(*fd_cache, buf, n, coff, &got);
  if (rc) return rc;
  if (got != n) return store__err(STORE_ERR_CORRUPT, "chunk file truncated");
  return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* The writer                                                          */
/* ------------------------------------------------------------------ */

static int fresh_add(store_writer *w, const uint8_t id[HASH_LEN], uint64_t size,
                     const char *lease, const uint8_t *data) {
  if (w->n_fresh == w->cap_fresh) {
    size_t cap = w->cap_fresh ? w->cap_fresh * 2 : 16;
    fresh_chunk *n = realloc(w->fresh, cap * sizeof *n);
    if (!n) return STORE_ERR_NOMEM;
    w->fresh = n;
    w->cap_fresh = cap;
  }
  fresh_chunk *f = &w->fresh[w->n_fresh];
  memset(f, 0, sizeof *f);
  memcpy(f->id, id, HASH_LEN);
  f->size = size;
  if (lease && !(f->lease = strdup(lease))) return STORE_ERR_NOMEM;
  if (data) {
    f->data = malloc(size ? size : 1);
    if (!f->data) {
      free(f->lease);
      return STORE_ERR_NOMEM;
    }
    memcpy(f->data, data, size);
  }
  w->n_fresh++;
  return STORE_OK;
}

static bool all_zero(const uint8_t *p, size_t n) {
  static const uint8_t z[256];
  while (n >= sizeof z) {
    if (memcmp(p, z, sizeof z)) return false;
    p += sizeof z;
    n -= sizeof z;
  }
  return n == 0 || memcmp(p, z, n) == 0;
}

/* Turn cell bytes [0, len) at `off` into a chunk and map them.  Runs on the
 * caller's thread (the flusher only does the asynchronous full cells). */
static int chunk_out(store_writer *w, const uint8_t *buf, uint64_t off,
                     uint32_t len) {
  store *s = w->s;
  wext e = {.off = off, .len = len};
  if (w->kind == W_EDIT && all_zero(buf, len)) {
    e.hole = true; /* sparse file: no chunk for a run of zeros */
    return ext_replace(w, &e);
  }
  store__sha256(buf, len, e.id);
  int rc;
  if (len <= s->inline_max) {
    rc = fresh_add(w, e.id, len, NULL, buf);
  } else {
    char lease[PATH_MAX];
    int fd;
    rc = s->be->put_begin(s, e.id, buf, len, lease, &fd);
    if (!rc) rc = s->be->put_finish(s, e.id, lease, fd);
    if (!rc) {
      rc = fresh_add(w, e.id, len, lease, NULL);
      if (rc) s->be->release(s, lease);
    }
  }
  if (rc) return rc;
  e.fresh = (uint32_t)w->n_fresh;
  return ext_replace(w, &e);
}

/* Wait for the oldest job in flight and map its chunk. */
static int job_collect_one(store_writer *w) {
  flush_job *j = &w->jobs[w->tail % PIPE_DEPTH];
  pthread_mutex_lock(&w->mu);
  while (j->state != JOB_DONE) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  int rc = j->rc;
  if (rc) {
    store__err(rc, "%s", j->err);
  } else {
    rc = fresh_add(w, j->id, j->len, j->lease, NULL);
    if (rc) {
      w->s->be->release(w->s, j->lease);
    } else {
      wext e = {.off = j->off, .len = j->len, .fresh = (uint32_t)w->n_fresh};
      memcpy(e.id, j->id, HASH_LEN);
      rc = ext_replace(w, &e);
    }
  }
  store__buf_put(w->s, j->buf);
  j->buf = NULL;
  pthread_mutex_lock(&w->mu);
  j->state = JOB_FREE;
  w->tail++;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

/* Wait for every job in flight (before anything reads the extent map). */
static int job_collect(store_writer *w) {
  int rc = STORE_OK;
  while (w->tail != w->head) {
    int r = job_collect_one(w);
    if (!rc) rc = r;
  }
  return rc;
}

static void *hasher_main(void *arg) {
  store_writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    flush_job *j = &w->jobs[w->next_hash % PIPE_DEPTH];
    while (!w->th_quit && j->state != JOB_QUEUED)
      pthread_cond_wait(&w->cv, &w->mu);
    if (w->th_quit) break;
    pthread_mutex_unlock(&w->mu);
    store__sha256(j->buf, j->len, j->id);
    store__clear_err();
    j->rc = w->s->be->put_begin(w->s, j->id, j->buf, j->len, j->lease, &j->fd);
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", store_errmsg());
    pthread_mutex_lock(&w->mu);
    j->state = JOB_WRITTEN;
    w->next_hash++;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void *syncer_main(void *arg) {
  store_writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    /* Each syncer claims the next written job; several run at once. */
    while (!w->th_quit &&
           w->jobs[w->next_sync % PIPE_DEPTH].state != JOB_WRITTEN)
      pthread_cond_wait(&w->cv, &w->mu);
    if (w->th_quit) break;
    flush_job *j = &w->jobs[w->next_sync % PIPE_DEPTH];
    j->state = JOB_SYNCING;
    w->next_sync++;
    pthread_mutex_unlock(&w->mu);
    if (!j->rc) {
      store__clear_err();
      j->rc = w->s->be->put_finish(w->s, j->id, j->lease, j->fd);
      if (j->rc) snprintf(j->err, sizeof j->err, "%s", store_errmsg());
    }
    j->fd = -1;
    pthread_mutex_lock(&w->mu);
    j->state = JOB_DONE;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Hand a full cell to the pipeline; the cell's buffer goes with it. */
static int job_submit(store_writer *w, cell *c) {
  int rc = STORE_OK;
  if (w->head - w->tail == PIPE_DEPTH) rc = job_collect_one(w);
  if (rc) return rc;
  if (!w->th_started) {
    if (pthread_create(&w->hasher, NULL, hasher_main, w) != 0) {
      /* No thread: flush on the caller's thread instead. */
      rc = chunk_out(w, c->buf, c->idx * CHUNK_SIZE, c->len);
      store__buf_put(w->s, c->buf);
      c->buf = NULL;
      return rc;
    }
    w->th_started = true;
    /* Syncers: at least one is needed; the pipeline works with fewer. */
    for (int i = 0; i < SYNCERS; i++) {
      if (pthread_create(&w->syncer[i], NULL, syncer_main, w) != 0) break;
      w->n_syncers++;
    }
    if (w->n_syncers == 0) {
      pthread_mutex_lock(&w->mu);
      w->th_quit = true;
      pthread_cond_broadcast(&w->cv);
      pthread_mutex_unlock(&w->mu);
      pthread_join(w->hasher, NULL);
      w->th_quit = false;
      w->th_started = false;
      rc = chunk_out(w, c->buf, c->idx * CHUNK_SIZE, c->len);
      store__buf_put(w->s, c->buf);
      c->buf = NULL;
      return rc;
    }
  }
  flush_job *j = &w->jobs[w->head % PIPE_DEPTH];
  pthread_mutex_lock(&w->mu);
  j->buf = c->buf;
  j->off = c->idx * CHUNK_SIZE;
  j->len = c->len;
  j->rc = STORE_OK;
  j->fd = -1;
  j->state = JOB_QUEUED;
  w->head++;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  c->buf = NULL;
  return STORE_OK;
}

static void cell_drop(store_writer *w, size_t i) {
  store__buf_put(w->s, w->cells[i].buf);
  w->cells[i] = w->cells[--w->n_cells];
}

static int cell_flush(store_writer *w, size_t i) {
  cell *c = &w->cells[i];
  uint64_t off = c->idx * CHUNK_SIZE;
  uint64_t len = w->size - off < CHUNK_SIZE ? w->size - off : CHUNK_SIZE;
  if (c->len < len) memset(c->buf + c->len, 0, len - c->len);
  c->len = (uint32_t)len;
  int rc = job_collect(w);
  if (!rc) rc = chunk_out(w, c->buf, off, (uint32_t)len);
  cell_drop(w, i);
  return rc;
}

static int cells_flush_all(store_writer *w) {
  int rc = job_collect(w);
  while (!rc && w->n_cells) {
    /* lowest offset first keeps the extent map appending */
    size_t lo = 0;
    for (size_t i = 1; i < w->n_cells; i++)
      if (w->cells[i].idx < w->cells[lo].idx) lo = i;
    rc = cell_flush(w, lo);
  }
  return rc;
}

/* Read bytes of the flushed map (ignoring dirty cells). */
static int map_read(store_writer *w, conn *c, uint64_t off, uint8_t *buf,
                    size_t n) {
  uint64_t end = ext_end(w);
  while (n > 0) {
    if (off >= end) {
      memset(buf, 0, n);
      return STORE_OK;
    }
    size_t i = ext_find(w, off);
    wext *e = &w->ext[i];
    uint64_t in = off - e->off;
    size_t take = e->len - in < n ? (size_t)(e->len - in) : n;
    if (e->hole) {
      memset(buf, 0, take);
    } else if (e->fresh) {
      fresh_chunk *f = &w->fresh[e->fresh - 1];
      if (f->data) {
        memcpy(buf, f->data + e->coff + in, take);
      } else {
        int fd = open(f->lease, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return store__errno(errno, "read staged chunk");
        size_t got = 0;
        int rc = read_full(fd, buf, take, e->coff + in, &got);
        close(fd);
        if (rc) return rc;
        if (got != take) return store__err(STORE_ERR_CORRUPT, "staged chunk short");
      }
    } else {
      int rc = store__read_chunk(w->s, c, e->id, e->coff + in, buf, take,
                                 &w->rfd, w->rfd_id);
      if (rc) return rc;
    }
    off += take;
    buf += take;
    n -= take;
  }
  return STORE_OK;
}

static int map_read_conn(store_writer *w, uint64_t off, uint8_t *buf,
                         size_t n) {
  conn *c;
  int rc = store__conn_get(w->s, &c);
  if (rc) return rc;
  rc = map_read(w, c, off, buf, n);
  store__conn_put(w->s, c);
  return rc;
}

static int cell_get(store_writer *w, uint64_t idx, cell **out) {
  for (size_t i = 0; i < w->n_cells; i++)
    if (w->cells[i].idx == idx) {
      *out = &w->cells[i];
      return STORE_OK;
    }
  int rc;
  if (w->n_cells == MAX_CELLS) {
    /* Evict the lowest cell: sequential writers never get here (they flush
     * full cells as they go), random writers write their oldest region. */
    size_t lo = 0;
    for (size_t i = 1; i < w->n_cells; i++)
      if (w->cells[i].idx < w->cells[lo].idx) lo = i;
    rc = cell_flush(w, lo);
    if (rc) return rc;
  }
  cell *c = &w->cells[w->n_cells];
  c->idx = idx;
  c->len = 0;
  c->buf = store__buf_get(w->s);
  if (!c->buf) return STORE_ERR_NOMEM;
  /* Existing content of this cell comes from the flushed map. */
  rc = job_collect(w);
  uint64_t off = idx * CHUNK_SIZE;
  uint64_t have = ext_end(w);
  if (have > w->size) have = w->size;
  if (!rc && have > off) {
    uint64_t len = have - off < CHUNK_SIZE ? have - off : CHUNK_SIZE;
    rc = map_read_conn(w, off, c->buf, (size_t)len);
    c->len = (uint32_t)len;
  }
  if (rc) {
    store__buf_put(w->s, c->buf);
    return rc;
  }
  w->n_cells++;
  *out = c;
  return STORE_OK;
}

static int writer_new(store *s, int kind, const char *bucket, const char *key,
                      store_writer **out) {
  *out = NULL;
  store__clear_err();
  if (s->read_only) return store__err(STORE_ERR_READONLY, "opened read-only");
  int rc = store_key_check(key, key ? strlen(key) : 0);
  if (rc) return rc;
  store_bucket_info bi;
  rc = store_bucket_head(s, bucket, &bi);
  if (rc) return rc;
  store_writer *w = calloc(1, sizeof *w);
  if (!w) return STORE_ERR_NOMEM;
  w->s = s;
  w->kind = kind;
  w->rfd = -1;
  w->md5_ok = true;
  md5_init(&w->md5);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->bucket = strdup(bucket);
  w->key = strdup(key);
  if (!w->bucket || !w->key) {
    store_writer_abort(w);
    return STORE_ERR_NOMEM;
  }
  *out = w;
  return STORE_OK;
}

int store_writer_open(store *s, const char *bucket, const char *key,
                      store_writer **out) {
  return writer_new(s, W_NEW, bucket, key, out);
}

int store_writer_open_edit(store *s, const char *bucket, const char *key,
                           store_writer **out) {
  store_writer *w;
  int rc = writer_new(s, W_EDIT, bucket, key, &w);
  if (rc) return rc;
  conn *c;
  rc = store__conn_get(s, &c);
  if (rc) {
    store_writer_abort(w);
    return rc;
  }
  /* Load the current version's extent list (one read transaction so the
   * row and its extents are consistent). */
  sqlite3_exec(c->db, "BEGIN", 0, 0, 0);
  int64_t bid, oid = 0;
  rc = store__bucket_id(c, bucket, &bid);
  if (!rc) {
    sqlite3_stmt *st = store__stmt(c, ST_OBJ_HEAD);
    if (!st) rc = STORE_ERR_IO;
    else {
      sqlite3_bind_int64(st, 1, bid);
      sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
      int src = sqlite3_step(st);
      if (src == SQLITE_ROW) {
        oid = sqlite3_column_int64(st, 0);
        rc = store__info_from_row(st, 1, &w->base);
        w->has_base = true;
        w->base_ino = w->base.ino;
        w->size = w->base.size;
      } else if (src != SQLITE_DONE) {
        rc = store__sqlerr(c->db, src, "edit open");
      }
      sqlite3_reset(st);
    }
  }
  if (!rc && oid) {
    sqlite3_stmt *st = store__stmt(c, ST_EXT_RANGE);
    sqlite3_bind_int64(st, 1, oid);
    sqlite3_bind_int64(st, 2, 0);
    sqlite3_bind_int64(st, 3, INT64_MAX);
    int src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
      rc = ext_reserve(w, 1);
      if (rc) break;
      wext *e = &w->ext[w->n_ext++];
      memset(e, 0, sizeof *e);
      e->off = (uint64_t)sqlite3_column_int64(st, 0);
      e->len = (uint64_t)sqlite3_column_int64(st, 1);
      if (sqlite3_column_type(st, 2) == SQLITE_NULL) e->hole = true;
      else memcpy(e->id, sqlite3_column_blob(st, 2), HASH_LEN);
      e->coff = (uint64_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    if (!rc && ext_end(w) != w->size)
      rc = store__err(STORE_ERR_CORRUPT, "extents of %s do not cover it", key);
  }
  sqlite3_exec(c->db, "COMMIT", 0, 0, 0);
  store__conn_put(s, c);
  if (rc) {
    store_writer_abort(w);
    return rc;
  }
  /* A streamed MD5 is valid only while the writer appends to nothing. */
  w->md5_ok = w->size == 0;
  *out = w;
  return STORE_OK;
}

int store_writer_set_ino(store_writer *w, uint64_t ino) {
  if (!w || w->kind == W_PART || w->has_base || ino == 0)
    return store__err(STORE_ERR_INVALID, "set_ino needs a writer of a new object");
  w->base_ino = ino;
  w->ino_set = true;
  return STORE_OK;
}

int store_writer_open_part(store *s, const char *bucket, const char *key,
                           const char *upload_id, uint32_t part_number,
                           store_writer **out) {
  if (part_number < 1 || part_number > STORE_PARTS_MAX)
    return store__err(STORE_ERR_INVALID, "part number must be 1..%d",
                      STORE_PARTS_MAX);
  if (!upload_id) return store__err(STORE_ERR_NO_UPLOAD, "no upload id");
  store_object_info tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = store_mpu_head(s, bucket, key, upload_id, &tmp);
  store_object_info_free(&tmp);
  if (rc) return rc;
  store_writer *w;
  rc = writer_new(s, W_PART, bucket, key, &w);
  if (rc) return rc;
  w->upload_id = strdup(upload_id);
  w->part_number = part_number;
  if (!w->upload_id) {
    store_writer_abort(w);
    return STORE_ERR_NOMEM;
  }
  *out = w;
  return STORE_OK;
}

int store_pwrite(store_writer *w, const void *data, size_t n, uint64_t off) {
  if (!w) return STORE_ERR_INVALID;
  if (w->error) return w->error;
  if (n == 0) return STORE_OK;
  if (off + n < off) return store__err(STORE_ERR_TOO_LARGE, "offset overflow");
  if (off != w->size) w->md5_ok = false;
  else if (w->md5_ok) md5_update(&w->md5, n, data);
  const uint8_t *p = data;
  int rc = STORE_OK;
  while (n > 0) {
    uint64_t idx = off / CHUNK_SIZE;
    uint32_t in = (uint32_t)(off % CHUNK_SIZE);
    size_t take = CHUNK_SIZE - in < n ? CHUNK_SIZE - in : n;
    cell *c;
    rc = cell_get(w, idx, &c);
    if (rc) break;
    if (in > c->len) memset(c->buf + c->len, 0, in - c->len);
    memcpy(c->buf + in, p, take);
    if (in + take > c->len) c->len = (uint32_t)(in + take);
    off += take;
    p += take;
    n -= take;
    if (off > w->size) w->size = off;
    /* A full cell at the end of the data streams out at once. */
    if (c->len == CHUNK_SIZE && off == w->size && in + take == CHUNK_SIZE) {
      rc = job_submit(w, c);
      if (rc) break;
      w->cells[c - w->cells] = w->cells[--w->n_cells];
    }
  }
  if (rc) w->error = rc;
  return rc;
}

int store_write(store_writer *w, const void *buf, size_t n) {
  if (!w) return STORE_ERR_INVALID;
  return store_pwrite(w, buf, n, w->size);
}

int store_pread_writer(store_writer *w, void *buf, size_t n, uint64_t off,
                       size_t *got) {
  *got = 0;
  if (w->error) return w->error;
  int rc = job_collect(w);
  if (rc) return w->error = rc;
  if (off >= w->size) return STORE_OK;
  if (n > w->size - off) n = (size_t)(w->size - off);
  uint8_t *p = buf;
  size_t left = n;
  while (left > 0) {
    uint64_t idx = off / CHUNK_SIZE;
    uint32_t in = (uint32_t)(off % CHUNK_SIZE);
    size_t take = CHUNK_SIZE - in < left ? CHUNK_SIZE - in : left;
    cell *c = NULL;
    for (size_t i = 0; i < w->n_cells; i++)
      if (w->cells[i].idx == idx) c = &w->cells[i];
    if (c) {
      size_t from = 0;
      if (in < c->len) {
        from = c->len - in < take ? c->len - in : take;
        memcpy(p, c->buf + in, from);
      }
      memset(p + from, 0, take - from);
    } else {
      rc = map_read_conn(w, off, p, take);
      if (rc) return rc;
    }
    off += take;
    p += take;
    left -= take;
  }
  *got = n;
  return STORE_OK;
}

int store_writer_truncate(store_writer *w, uint64_t size) {
  if (w->error) return w->error;
  int rc = job_collect(w);
  if (rc) return w->error = rc;
  if (size == 0) {
    md5_init(&w->md5);
    w->md5_ok = true;
  } else if (size != w->size) {
    w->md5_ok = false;
  }
  if (size < w->size) {
    for (size_t i = 0; i < w->n_cells;) {
      cell *c = &w->cells[i];
      uint64_t off = c->idx * CHUNK_SIZE;
      if (off >= size) {
        cell_drop(w, i);
        continue;
      }
      if (off + c->len > size) c->len = (uint32_t)(size - off);
      i++;
    }
    if (ext_end(w) > size) ext_truncate(w, size);
  }
  w->size = size;
  return STORE_OK;
}

uint64_t store_writer_size(const store_writer *w) { return w ? w->size : 0; }

int store_writer_md5(store_writer *w, uint8_t md5[16]) {
  if (!w->md5_ok)
    return store__err(STORE_ERR_INVALID, "writer did not only append");
  struct md5_ctx copy = w->md5;
  md5_digest(&copy, 16, md5);
  return STORE_OK;
}

static void writer_free(store_writer *w, bool release_leases) {
  if (!w) return;
  if (w->th_started) {
    /* Let jobs in flight finish, then drop what they produced. */
    pthread_mutex_lock(&w->mu);
    while (w->tail != w->head) {
      flush_job *j = &w->jobs[w->tail % PIPE_DEPTH];
      while (j->state != JOB_DONE) pthread_cond_wait(&w->cv, &w->mu);
      if (!j->rc) w->s->be->release(w->s, j->lease);
      store__buf_put(w->s, j->buf);
      j->buf = NULL;
      j->state = JOB_FREE;
      w->tail++;
    }
    w->th_quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->hasher, NULL);
    for (int i = 0; i < w->n_syncers; i++) pthread_join(w->syncer[i], NULL);
  }
  for (size_t i = 0; i < w->n_cells; i++) store__buf_put(w->s, w->cells[i].buf);
  for (size_t i = 0; i < w->n_fresh; i++) {
    if (release_leases) w->s->be->release(w->s, w->fresh[i].lease);
    free(w->fresh[i].lease);
    free(w->fresh[i].data);
  }
  if (w->rfd >= 0) close(w->rfd);
  free(w->fresh);
  free(w->ext);
  free(w->bucket);
  free(w->key);
  free(w->upload_id);
  store_object_info_free(&w->base);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

void store_writer_abort(store_writer *w) { writer_free(w, true); }

/* ------------------------------------------------------------------ */
/* Commit                                                              */
/* ------------------------------------------------------------------ */
/* Add `delta` to a chunk's reference count.  STORE_ERR_NO_KEY (without a
 * message) when it has no row.  *revived (may be NULL) is set when the row
 * was at refs 0 and names a file: GC unlinks the files of a batch inside
 * its transaction, so a GC killed before its COMMIT leaves rows at refs 0
 * whose file is gone, and whoever takes such a row back into use must
 * make sure the file is there. */
static int chunk_bump(conn *c, const uint8_t id[HASH_LEN], int64_t delta,
                      bool *revived) {
  sqlite3_stmt *st = store__stmt(c, ST_CHUNK_REF);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_blob(st, 1, id, HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, delta);
  bool found = false;
  int64_t refs = 0;
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    found = true;
    refs = sqlite3_column_int64(st, 0);
    src = sqlite3_step(st);
  }
  int rc = src == SQLITE_DONE ? STORE_OK
                              : store__sqlerr(c->db, src, "chunk ref");
  sqlite3_reset(st);
  if (rc) return rc;
  if (!found) return STORE_ERR_NO_KEY;
  if (!revived) return STORE_OK;
  *revived = false;
  if (delta <= 0 || refs != delta) return STORE_OK;
  /* Was at refs 0: a file or an inline chunk?  (Not asked in RETURNING:
   * SQLite 3.40 answers "data IS NULL" there wrongly, 0 for a NULL.) */
  st = store__stmt(c, ST_CHUNK_INLINE);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_blob(st, 1, id, HASH_LEN, SQLITE_STATIC);
  src = sqlite3_step(st);
  if (src == SQLITE_ROW) *revived = sqlite3_column_type(st, 0) == SQLITE_NULL;
  else rc = store__sqlerr(c->db, src, "chunk ref");
  sqlite3_reset(st);
  return rc;
}

static int chunk_gone(const uint8_t id[HASH_LEN]) {
  char hex[HEX_LEN + 1];
  store_hex(id, HASH_LEN, hex);
  return store__err(STORE_ERR_NO_KEY,
                    "chunk %s is no longer in the store (object replaced"
                    " and collected meanwhile)", hex);
}

int store__chunk_ref(store *s, conn *c, const uint8_t id[HASH_LEN],
                     int64_t delta) {
  bool revived = false;
  int rc = chunk_bump(c, id, delta, &revived);
  /* A row at refs 0 whose file a killed GC removed: referencing it would
   * make an object of a chunk that is not there. */
  if (!rc && revived && s->be->ensure(s, id, NULL) != STORE_OK)
    rc = STORE_ERR_NO_KEY;
  return rc == STORE_ERR_NO_KEY ? chunk_gone(id) : rc;
}

static int insert_extent(conn *c, int64_t cid, uint64_t off, uint64_t len,
                         const uint8_t *id, uint64_t coff) {
  sqlite3_stmt *st = store__stmt(c, ST_EXT_INSERT);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_int64(st, 1, cid);
  sqlite3_bind_int64(st, 2, (int64_t)off);
  sqlite3_bind_int64(st, 3, (int64_t)len);
  if (id) sqlite3_bind_blob(st, 4, id, HASH_LEN, SQLITE_STATIC);
  else sqlite3_bind_null(st, 4);
  sqlite3_bind_int64(st, 5, (int64_t)coff);
  int rc = store__step_done(c, st, "extent insert");
  sqlite3_reset(st);
  return rc;
}

/* Reference a chunk this writer produced: create its row if needed. */
static int ref_fresh(store *s, conn *c, const fresh_chunk *f) {
  bool revived = false;
  int rc = chunk_bump(c, f->id, 1, &revived);
  /* A row at refs 0 may have lost its file to a GC killed mid-batch (see
   * chunk_bump): the lease puts it back. */
  if (!rc) return revived && !f->data ? s->be->ensure(s, f->id, f->lease)
                                      : STORE_OK;
  if (rc != STORE_ERR_NO_KEY) return rc;
  /* No row: make sure the bytes are in place (GC may have removed the
   * public name of an unreferenced file: the lease restores it). */
  if (!f->data) {
    rc = s->be->ensure(s, f->id, f->lease);
    if (rc) return rc;
  }
  sqlite3_stmt *st = store__stmt(c, ST_CHUNK_ADD);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_blob(st, 1, f->id, HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (int64_t)f->size);
  sqlite3_bind_int64(st, 3, 1);
  if (f->data) sqlite3_bind_blob(st, 4, f->data, (int)f->size, SQLITE_STATIC);
  else sqlite3_bind_null(st, 4);
  rc = store__step_done(c, st, "chunk insert");
  sqlite3_reset(st);
  return rc;
}

/* Write w's extent map as the extents of cid, counting references. */
static int writer_store_extents(store *s, conn *c, store_writer *w,
                                int64_t cid) {
  for (size_t i = 0; i < w->n_ext; i++) {
    wext *e = &w->ext[i];
    int rc;
    if (e->hole) {
      rc = insert_extent(c, cid, e->off, e->len, NULL, 0);
    } else {
      rc = e->fresh ? ref_fresh(s, c, &w->fresh[e->fresh - 1])
                    : store__chunk_ref(s, c, e->id, 1);
      if (!rc) rc = insert_extent(c, cid, e->off, e->len, e->id, e->coff);
    }
    if (rc) return rc;
  }
  return STORE_OK;
}

int store__extents_drop(conn *c, int64_t cid) {
  sqlite3_stmt *st = store__stmt(c, ST_EXT_OF);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_int64(st, 1, cid);
  int src, rc = STORE_OK;
  /* Collect first: updating chunk while stepping extent is fine in SQLite,
   * but a separate pass keeps the statements independent. */
  uint8_t(*ids)[HASH_LEN] = NULL;
  size_t n = 0, cap = 0;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      void *nn = realloc(ids, cap * HASH_LEN);
      if (!nn) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      ids = nn;
    }
    memcpy(ids[n++], sqlite3_column_blob(st, 0), HASH_LEN);
  }
  if (!rc && src != SQLITE_DONE) rc = store__sqlerr(c->db, src, "extents");
  sqlite3_reset(st);
  for (size_t i = 0; !rc && i < n; i++) {
    rc = chunk_bump(c, ids[i], -1, NULL);
    if (rc == STORE_ERR_NO_KEY) rc = STORE_OK; /* already gone: nothing to drop */
  }
  free(ids);
  if (rc) return rc;
  st = store__stmt(c, ST_EXT_DELETE);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_int64(st, 1, cid);
  rc = store__step_done(c, st, "extent delete");
  sqlite3_reset(st);
  return rc;
}

int store__object_row_delete(conn *c, int64_t object_id) {
  int rc = store__extents_drop(c, object_id);
  if (rc) return rc;
  char sql[96];
  snprintf(sql, sizeof sql, "DELETE FROM object_part WHERE object_id = %lld",
           (long long)object_id);
  int src = sqlite3_exec(c->db, sql, 0, 0, 0);
  if (src != SQLITE_OK) return store__sqlerr(c->db, src, "object delete");
  sqlite3_stmt *st = store__stmt(c, ST_OBJ_DELETE_ROW);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_int64(st, 1, object_id);
  rc = store__step_done(c, st, "object delete");
  sqlite3_reset(st);
  return rc;
}

int store__validate_put_opts(const store_put_opts *o) {
  if (!o) return STORE_OK;
  if (store__kv_size(o->meta, o->n_meta) > STORE_META_MAX)
    return store__err(STORE_ERR_TOO_LARGE,
                      "user metadata is over %d bytes", STORE_META_MAX);
  if (o->n_tags > STORE_TAGS_MAX)
    return store__err(STORE_ERR_TOO_LARGE, "more than %d tags",
                      STORE_TAGS_MAX);
  for (size_t i = 0; i < o->n_meta; i++)
    if (!o->meta[i].name || !o->meta[i].name[0])
      return store__err(STORE_ERR_INVALID, "metadata with an empty name");
  return STORE_OK;
}

static const char *const posix_names[] = {"mode", "uid", "gid",
                                          "mtime", "atime", "ctime"};

/* Is `n` the metadata name of a POSIX field that `p` sets? */
static bool posix_overrides(const store_posix *p, const char *n) {
  const int has[6] = {p->has_mode,  p->has_uid,   p->has_gid,
                      p->has_mtime, p->has_atime, p->has_ctime};
  for (size_t i = 0; i < 6; i++)
    if (has[i] && !strcasecmp(n, posix_names[i])) return true;
  return false;
}

static void fmt_time(char *out, size_t cap, int64_t ns) {
  int64_t sec = ns / 1000000000, frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    sec--;
  }
  if (frac) snprintf(out, cap, "%lld.%09lld", (long long)sec, (long long)frac);
  else snprintf(out, cap, "%lld", (long long)sec);
}

/* User metadata with the POSIX attributes merged in under their s3fs
 * names: a field the posix struct sets replaces the same-named entry, the
 * others are kept. */
int store__merge_meta(const store_put_opts *o, char **blob, size_t *len) {
  store_kv kv[6 + 64] = {{0}};
  store_kv *all = kv;
  size_t n = 0, cap = sizeof kv / sizeof kv[0];
  const store_posix *p = o ? o->posix : NULL;
  size_t n_meta = o ? o->n_meta : 0;
  if (n_meta + 6 > cap) {
    all = malloc((n_meta + 6) * sizeof *all);
    if (!all) return STORE_ERR_NOMEM;
  }
  char vals[6][32];
  for (size_t i = 0; i < n_meta; i++) {
    if (p && posix_overrides(p, o->meta[i].name)) continue;
    all[n++] = o->meta[i];
  }
  if (p) {
    if (p->has_mode) {
      snprintf(vals[0], 32, "%u", p->mode);
      all[n++] = (store_kv){(char *)"mode", vals[0]};
    }
    if (p->has_uid) {
      snprintf(vals[1], 32, "%u", p->uid);
      all[n++] = (store_kv){(char *)"uid", vals[1]};
    }
    if (p->has_gid) {
      snprintf(vals[2], 32, "%u", p->gid);
      all[n++] = (store_kv){(char *)"gid", vals[2]};
    }
    if (p->has_mtime) {
      fmt_time(vals[3], 32, p->mtime_ns);
      all[n++] = (store_kv){(char *)"mtime", vals[3]};
    }
    if (p->has_atime) {
      fmt_time(vals[4], 32, p->atime_ns);
      all[n++] = (store_kv){(char *)"atime", vals[4]};
    }
    if (p->has_ctime) {
      fmt_time(vals[5], 32, p->ctime_ns);
      all[n++] = (store_kv){(char *)"ctime", vals[5]};
    }
  }
  int rc = store__kv_encode(all, n, blob, len);
  if (all != kv) free(all);
  return rc;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static bool parse_time(const char *s, int64_t *ns) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  long long sec = strtoll(s, &end, 10);
  if (errno) return false;
  int64_t frac = 0;
  if (*end == '.') {
    const char *f = end + 1;
    int digits = 0;
    while (*f >= '0' && *f <= '9') {
      if (digits < 9) {
        frac = frac * 10 + (*f - '0');
        digits++;
      }
      f++;
    }
    while (digits++ < 9) frac *= 10;
    end = (char *)f;
  }
  if (*end) return false;
  *ns = (int64_t)sec * 1000000000 + frac;
  return true;
}

uint32_t store__mode_from_blob(const void *blob, size_t len) {
  store_kv *kv;
  size_t n;
  uint32_t mode = 0;
  if (store__kv_decode(blob, len, &kv, &n) == STORE_OK) {
    mode = store__mode_from_meta(kv, n);
    store_kv_free(kv, n);
  }
  return mode;
}

uint32_t store__mode_from_meta(const store_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcasecmp(kv[i].name, "mode")) {
      uint64_t v;
      if (parse_u64(kv[i].value, &v)) return (uint32_t)v;
    }
  return 0;
}

void store_posix_from_info(const store_object_info *info, store_posix *out) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < info->n_meta; i++) {
    const char *n = info->meta[i].name, *v = info->meta[i].value;
    uint64_t u;
    if (!strcasecmp(n, "mode") && parse_u64(v, &u)) {
      out->has_mode = 1;
      out->mode = (uint32_t)u;
    } else if (!strcasecmp(n, "uid") && parse_u64(v, &u)) {
      out->has_uid = 1;
      out->uid = (uint32_t)u;
    } else if (!strcasecmp(n, "gid") && parse_u64(v, &u)) {
      out->has_gid = 1;
      out->gid = (uint32_t)u;
    } else if (!strcasecmp(n, "mtime")) {
      out->has_mtime = parse_time(v, &out->mtime_ns);
    } else if (!strcasecmp(n, "atime")) {
      out->has_atime = parse_time(v, &out->atime_ns);
    } else if (!strcasecmp(n, "ctime")) {
      out->has_ctime = parse_time(v, &out->ctime_ns);
    }
  }
}

/* What a commit needs besides the writer. */
struct commit_args {
  store_writer *w;
  const store_put_opts *opts;
  char etag[STORE_ETAG_MAX];
  int64_t mtime_ns;
  int64_t new_id;
  uint64_t ino;
};

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

static void bind_blob_or_null(sqlite3_stmt *st, int i, const void *b,
                              size_t n) {
  if (b && n) sqlite3_bind_blob(st, i, b, (int)n, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

/* Look up the current row of (bucket_id, key): id, etag, ino. */
static int current_row(conn *c, int64_t bid, const char *key, int64_t *id,
                       char etag[STORE_ETAG_MAX], uint64_t *ino) {
  sqlite3_stmt *st = store__stmt(c, ST_OBJ_HEAD);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_int64(st, 1, bid);
  sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
  int src = sqlite3_step(st);
  int rc = STORE_OK;
  *id = 0;
  if (src == SQLITE_ROW) {
    *id = sqlite3_column_int64(st, 0);
    if (etag)
      snprintf(etag, STORE_ETAG_MAX, "%s",
               (const char *)sqlite3_column_text(st, 4));
    if (ino) *ino = (uint64_t)sqlite3_column_int64(st, 6);
  } else if (src != SQLITE_DONE) {
    rc = store__sqlerr(c->db, src, "object lookup");
  }
  sqlite3_reset(st);
  return rc;
}

bool store__etag_match(const char *want, const char *etag) {
  size_t wl = strlen(want);
  if (wl >= 2 && want[0] == '"' && want[wl - 1] == '"') {
    want++;
    wl -= 2;
  }
  if (wl == 1 && want[0] == '*') return true;
  return strlen(etag) == wl && strncmp(etag, want, wl) == 0;
}

int store__check_conditions(conn *c, int64_t bid, const char *key,
                            const store_put_opts *o, int64_t *cur_id,
                            uint64_t *cur_ino) {
  char etag[STORE_ETAG_MAX] = "";
  int rc = current_row(c, bid, key, cur_id, etag, cur_ino);
  if (rc || !o) return rc;
  if (o->if_none_match_star && *cur_id)
    return store__err(STORE_ERR_PRECONDITION, "key %s exists", key);
  if (o->if_match) {
    if (!*cur_id) return store__err(STORE_ERR_NO_KEY, "key %s not found", key);
    if (!store__etag_match(o->if_match, etag))
      return store__err(STORE_ERR_PRECONDITION, "etag of %s differs", key);
  }
  return STORE_OK;
}

int store__insert_object(conn *c, int64_t bid, const char *key, uint64_t ino,
                         uint64_t size, const char *etag, int64_t mtime_ns,
                         uint32_t parts, const char *content_type,
                         const void *meta, size_t meta_len,
                         const void *headers, size_t headers_len,
                         const void *tags, size_t tags_len, int ck_algo,
                         const char *ck, int ck_comp, const char *owner,
                         uint32_t mode, int64_t *new_id) {
  sqlite3_stmt *st = store__stmt(c, ST_OBJ_INSERT);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_int64(st, 1, bid);
  sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, (int64_t)ino);
  sqlite3_bind_int64(st, 4, (int64_t)size);
  sqlite3_bind_text(st, 5, etag, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 6, mtime_ns);
  sqlite3_bind_int(st, 7, (int)parts);
  bind_text_or_null(st, 8, content_type);
  bind_blob_or_null(st, 9, meta, meta_len);
  bind_blob_or_null(st, 10, headers, headers_len);
  bind_blob_or_null(st, 11, tags, tags_len);
  sqlite3_bind_int(st, 12, ck_algo);
  bind_text_or_null(st, 13, ck);
  sqlite3_bind_int(st, 14, ck_comp);
  sqlite3_bind_text(st, 15, owner ? owner : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 16, (int)mode);
  int rc = store__step_done(c, st, "object insert");
  sqlite3_reset(st);
  if (rc) return rc;
  /* ino 0 means "the row's own id" (read as iif(ino, ino, id)): a new
   * object needs no second statement to learn its id. */
  *new_id = sqlite3_last_insert_rowid(c->db);
  return STORE_OK;
}

static int commit_object_fn(store *s, conn *c, void *arg) {
  struct commit_args *a = arg;
  store_writer *w = a->w;
  const store_put_opts *o = a->opts;
  int64_t bid, cur = 0;
  uint64_t cur_ino = 0;
  int rc = store__bucket_id(c, w->bucket, &bid);
  if (!rc) rc = store__check_conditions(c, bid, w->key, o, &cur, &cur_ino);
  if (rc) return rc;

  /* Attributes: the commit's, or for an edit without new ones the base's. */
  char *meta = NULL, *headers = NULL, *tags = NULL;
  size_t meta_len = 0, headers_len = 0, tags_len = 0;
  const char *ctype = o ? o->content_type : NULL;
  const store_object_info *b = w->has_base ? &w->base : NULL;
  store_put_opts eff = o ? *o : (store_put_opts){0};
  if (b && !eff.meta && !eff.n_meta) {
    eff.meta = b->meta;
    eff.n_meta = b->n_meta;
  }
  if (b && !eff.headers && !eff.n_headers) {
    eff.headers = b->headers;
    eff.n_headers = b->n_headers;
  }
  if (b && !eff.tags && !eff.n_tags) {
    eff.tags = b->tags;
    eff.n_tags = b->n_tags;
  }
  if (b && !ctype) ctype = b->content_type;
  rc = store__merge_meta(&eff, &meta, &meta_len);
  if (!rc) rc = store__kv_encode(eff.headers, eff.n_headers, &headers, &headers_len);
  if (!rc) rc = store__kv_encode(eff.tags, eff.n_tags, &tags, &tags_len);
  uint32_t mode = rc ? 0 : store__mode_from_blob(meta, meta_len);
  /* ino: an edit keeps its identity; a new object gets a new one. */
  uint64_t ino = (w->kind == W_EDIT && w->has_base) || w->ino_set ? w->base_ino : 0;
  /* Replace the current row inside this transaction: readers see the old
   * object or the new one, never neither (the transaction is atomic).
   * Dropping first keeps (bucket, key, version) unique; chunks the new
   * version shares with the old keep their rows at refs 0 meanwhile. */
  if (!rc && cur) rc = store__object_row_delete(c, cur);
  if (!rc)
    rc = store__insert_object(c, bid, w->key, ino, w->size, a->etag,
                              a->mtime_ns, 0, ctype, meta, meta_len, headers,
                              headers_len, tags, tags_len, eff.checksum_algo,
                              eff.checksum, eff.checksum_composite, eff.owner,
                              mode, &a->new_id);
  free(meta);
  free(headers);
  free(tags);
  if (!rc) rc = writer_store_extents(s, c, w, a->new_id);
  if (!rc) rc = store__change(c, STORE_CHANGE_PUT, w->bucket, w->key);
  if (!rc) a->ino = ino ? ino : (uint64_t)a->new_id;
  return rc;
}

static int commit_part_fn(store *s, conn *c, void *arg);

/* Flush everything, compute the MD5, make chunk names durable. */
static int writer_finish(store_writer *w, uint8_t md5[16]) {
  int rc = cells_flush_all(w);
  if (rc) return rc;
  if (w->size > ext_end(w)) {
    wext hole = {.off = ext_end(w), .len = w->size - ext_end(w), .hole = true};
    rc = ext_replace(w, &hole);
    if (rc) return rc;
  }
  if (w->md5_ok) {
    md5_digest(&w->md5, 16, md5);
  } else {
    /* Random writes happened: the ETag needs one pass over the result. */
    struct md5_ctx m;
    md5_init(&m);
    uint8_t *buf = store__buf_get(w->s);
    if (!buf) return STORE_ERR_NOMEM;
    for (uint64_t off = 0; off < w->size && !rc;) {
      size_t n = w->size - off < CHUNK_SIZE ? (size_t)(w->size - off) : CHUNK_SIZE;
      rc = map_read_conn(w, off, buf, n);
      if (!rc) md5_update(&m, n, buf);
      off += n;
    }
    store__buf_put(w->s, buf);
    if (rc) return rc;
    md5_digest(&m, 16, md5);
  }
  /* Directory entries of new chunk files must be durable before the
   * catalog names them. */
  size_t nf = 0;
  uint8_t(*ids)[HASH_LEN] = malloc((w->n_fresh ? w->n_fresh : 1) * HASH_LEN);
  if (!ids) return STORE_ERR_NOMEM;
  for (size_t i = 0; i < w->n_fresh; i++)
    if (w->fresh[i].lease) memcpy(ids[nf++], w->fresh[i].id, HASH_LEN);
  rc = w->s->be->sync_names(w->s, (const uint8_t(*)[HASH_LEN])ids, nf);
  free(ids);
  return rc;
}

int store_writer_commit(store_writer *w, const store_put_opts *opts,
                        store_object_info *out) {
  if (!w) return STORE_ERR_INVALID;
  store__clear_err();
  if (out) memset(out, 0, sizeof *out);
  int rc = w->error;
  if (!rc) rc = store__validate_put_opts(opts);
  uint8_t md5[16];
  if (!rc) rc = writer_finish(w, md5);
  struct commit_args a = {.w = w, .opts = opts, .mtime_ns = store__now_ns()};
  if (!rc) {
    store_hex(md5, 16, a.etag);
    /* Persist before replying: store__commit returns after the COMMIT's
     * fsync, and only then does the caller acknowledge the write. */
    rc = store__commit(w->s, w->kind == W_PART ? commit_part_fn
                                               : commit_object_fn, &a);
  }
  if (!rc && out) {
    out->key = strdup(w->key);
    snprintf(out->version_id, sizeof out->version_id, "null");
    out->size = w->size;
    snprintf(out->etag, sizeof out->etag, "%s", a.etag);
    out->mtime_ns = a.mtime_ns;
    out->ino = a.ino;
    if (opts && opts->content_type) out->content_type = strdup(opts->content_type);
    else if (w->has_base && w->base.content_type)
      out->content_type = strdup(w->base.content_type);
    if (opts) {
      out->checksum_algo = opts->checksum_algo;
      out->checksum = store__strdup(opts->checksum);
      out->checksum_composite = opts->checksum_composite;
    }
  }
  /* Committed chunks are referenced by rows now; leases can go. */
  writer_free(w, true);
  return rc;
}

int store_put(store *s, const char *bucket, const char *key, const void *buf,
              size_t n, const store_put_opts *opts, store_object_info *out) {
  store_writer *w;
  int rc = store_writer_open(s, bucket, key, &w);
  if (rc) return rc;
  rc = store_write(w, buf, n);
  if (rc) {
    store_writer_abort(w);
    return rc;
  }
  return store_writer_commit(w, opts, out);
}

/* ------------------------------------------------------------------ */
/* Parts (the upload row itself lives in multipart.c)                  */
/* ------------------------------------------------------------------ */
static int commit_part_fn(store *s, conn *c, void *arg) {
  struct commit_args *a = arg;
  store_writer *w = a->w;
  const store_put_opts *o = a->opts;
  sqlite3_stmt *st;
  int rc = STORE_OK;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT u.id FROM upload u JOIN bucket b ON"
                         " b.id = u.bucket_id WHERE u.id = ?1 AND b.name = ?2"
                         " AND u.key = ?3",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "part commit");
  sqlite3_bind_text(st, 1, w->upload_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, w->bucket, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, w->key, -1, SQLITE_STATIC);
  int src = sqlite3_step(st);
  sqlite3_finalize(st);
  if (src == SQLITE_DONE)
    return store__err(STORE_ERR_NO_UPLOAD, "upload %s not found",
                      w->upload_id);
  if (src != SQLITE_ROW) return store__sqlerr(c->db, src, "part commit");
  /* Replace an earlier upload of the same part number. */
  if (sqlite3_prepare_v2(c->db,
                         "SELECT id FROM part WHERE upload_id = ?1 AND"
                         " part_number = ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "part commit");
  sqlite3_bind_text(st, 1, w->upload_id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)w->part_number);
  int64_t old = 0;
  if (sqlite3_step(st) == SQLITE_ROW) old = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (old) {
    rc = store__extents_drop(c, -old);
    if (rc) return rc;
    char sql[64];
    snprintf(sql, sizeof sql, "DELETE FROM part WHERE id = %lld",
             (long long)old);
    src = sqlite3_exec(c->db, sql, 0, 0, 0);
    if (src != SQLITE_OK) return store__sqlerr(c->db, src, "part replace");
  }
  if (sqlite3_prepare_v2(c->db,
                         "INSERT INTO part(upload_id, part_number, size, etag,"
                         " mtime_ns, checksum_algo, checksum)"
                         " VALUES(?1,?2,?3,?4,?5,?6,?7)",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "part insert");
  sqlite3_bind_text(st, 1, w->upload_id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)w->part_number);
  sqlite3_bind_int64(st, 3, (int64_t)w->size);
  sqlite3_bind_text(st, 4, a->etag, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, a->mtime_ns);
  sqlite3_bind_int(st, 6, o ? o->checksum_algo : 0);
  bind_text_or_null(st, 7, o ? o->checksum : NULL);
  rc = store__step_done(c, st, "part insert");
  sqlite3_finalize(st);
  if (rc) return rc;
  int64_t pid = sqlite3_last_insert_rowid(c->db);
  return writer_store_extents(s, c, w, -pid);
}

/* ------------------------------------------------------------------ */
/* Readers                                                             */
/* ------------------------------------------------------------------ */
#define READ_WINDOW 1024 /* extents loaded per catalog query */
#define PIN_EXTENTS 16384 /* extents loaded at open (see store_reader_open) */
#define VA_SLOTS 4
#define AHEAD_THREADS 2 /* chunks verified in parallel ahead of the reader */

enum va_state { VA_QUEUED = 1, VA_BUSY, VA_READY };

typedef struct va_slot {
  int state;
  uint8_t id[HASH_LEN];
  uint8_t *buf; /* CHUNK_SIZE, from the store's pool */
  uint64_t size;
  int rc;
  char err[256];
} va_slot;

struct store_reader {
  store *s;
  int64_t oid;
  uint64_t size;
  extent *win;
  size_t n_win, win_cap;
  uint64_t win_lo, win_hi; /* byte range the window covers */
  /* one verified chunk held in memory */
  uint8_t *cbuf;
  uint8_t cid[HASH_LEN];
  uint64_t clen;
  bool chave;
  size_t pf_next; /* window index up to which chunks were prefetched */
  uint64_t seq_end; /* where the last read ended: reads from there are a
                       stream worth prefetching; random reads are not */
  int fd;
  uint8_t fd_id[HASH_LEN];
  /* verify-ahead: a sequential reader gets a helper thread that loads and
   * checks the next chunks (ring [va_head, va_tail) in order) while the
   * caller copies out the current one, so SHA-256 runs on another core */
  va_slot va[VA_SLOTS];
  unsigned va_head, va_tail;
  size_t va_next; /* window index of the next extent to queue */
  bool va_on, va_quit, va_failed;
  pthread_t va_th[AHEAD_THREADS];
  int va_threads;
  pthread_mutex_t va_mu;
  pthread_cond_t va_cv;
};

int store__info_from_row(sqlite3_stmt *st, int first, store_object_info *out) {
  /* Columns from `first`: key, version_id, size, etag, mtime_ns, ino, parts,
   * content_type, meta, headers, tags, checksum_algo, checksum, composite */
  memset(out, 0, sizeof *out);
  int i = first;
  out->key = strdup((const char *)sqlite3_column_text(st, i));
  snprintf(out->version_id, sizeof out->version_id, "%s",
           (const char *)sqlite3_column_text(st, i + 1));
  out->size = (uint64_t)sqlite3_column_int64(st, i + 2);
  snprintf(out->etag, sizeof out->etag, "%s",
           (const char *)sqlite3_column_text(st, i + 3));
  out->mtime_ns = sqlite3_column_int64(st, i + 4);
  out->ino = (uint64_t)sqlite3_column_int64(st, i + 5);
  out->parts = (uint32_t)sqlite3_column_int(st, i + 6);
  if (sqlite3_column_type(st, i + 7) != SQLITE_NULL)
    out->content_type = strdup((const char *)sqlite3_column_text(st, i + 7));
  int rc = store__kv_decode(sqlite3_column_blob(st, i + 8),
                            (size_t)sqlite3_column_bytes(st, i + 8), &out->meta,
                            &out->n_meta);
  if (!rc)
    rc = store__kv_decode(sqlite3_column_blob(st, i + 9),
                          (size_t)sqlite3_column_bytes(st, i + 9),
                          &out->headers, &out->n_headers);
  if (!rc)
    rc = store__kv_decode(sqlite3_column_blob(st, i + 10),
                          (size_t)sqlite3_column_bytes(st, i + 10), &out->tags,
                          &out->n_tags);
  out->checksum_algo = sqlite3_column_int(st, i + 11);
  if (sqlite3_column_type(st, i + 12) != SQLITE_NULL)
    out->checksum = strdup((const char *)sqlite3_column_text(st, i + 12));
  out->checksum_composite = sqlite3_column_int(st, i + 13);
  if (!rc && !out->key) rc = STORE_ERR_NOMEM;
  if (rc) store_object_info_free(out);
  return rc;
}

void store_object_info_free(store_object_info *info) {
  if (!info) return;
  free(info->key);
  free(info->content_type);
  store_kv_free(info->meta, info->n_meta);
  store_kv_free(info->headers, info->n_headers);
  store_kv_free(info->tags, info->n_tags);
  free(info->checksum);
  memset(info, 0, sizeof *info);
}

int store__find_object(conn *c, const char *bucket, const char *key,
                       const char *version_id, int64_t *oid,
                       store_object_info *info) {
  int64_t bid;
  int rc = store__bucket_id(c, bucket, &bid);
  if (rc) return rc;
  if (!key) return store__err(STORE_ERR_NO_KEY, "no key");
  sqlite3_stmt *st;
  bool own = false;
  if (version_id && strcmp(version_id, "null") != 0) {
    if (sqlite3_prepare_v2(c->db,
                           "SELECT id, key, version_id, size, etag, mtime_ns,"
                           " iif(ino, ino, id), parts, content_type, meta,"
                           " headers, tags,"
                           " checksum_algo, checksum, checksum_composite FROM"
                           " object WHERE bucket_id = ?1 AND key = ?2 AND"
                           " version_id = ?3",
                           -1, &st, NULL) != SQLITE_OK)
      return store__sqlerr(c->db, sqlite3_errcode(c->db), "object lookup");
    sqlite3_bind_text(st, 3, version_id, -1, SQLITE_STATIC);
    own = true;
  } else {
    st = store__stmt(c, ST_OBJ_HEAD);
    if (!st) return STORE_ERR_IO;
  }
  sqlite3_bind_int64(st, 1, bid);
  sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    *oid = sqlite3_column_int64(st, 0);
    if (info) rc = store__info_from_row(st, 1, info);
  } else if (src == SQLITE_DONE) {
    rc = store__err(STORE_ERR_NO_KEY, "key %s not found", key);
  } else {
    rc = store__sqlerr(c->db, src, "object lookup");
  }
  if (own) sqlite3_finalize(st);
  else sqlite3_reset(st);
  return rc;
}

static int load_window_cap(store_reader *r, conn *c, uint64_t off, size_t cap);

int store_reader_open(store *s, const char *bucket, const char *key,
                      const char *version_id, store_reader **out,
                      store_object_info *info) {
  store__clear_err();
  *out = NULL;
  if (info) memset(info, 0, sizeof *info);
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  store_object_info tmp;
  memset(&tmp, 0, sizeof tmp);
  int64_t oid;
  store_reader *r = calloc(1, sizeof *r);
  if (!r) {
    store__conn_put(s, c);
    return STORE_ERR_NOMEM;
  }
  r->s = s;
  r->fd = -1;
  /* The row and its extents in one snapshot: a replace deletes the old
   * version's extent rows at once, so a reader that looked them up later
   * would lose its version mid-read.  Objects of up to PIN_EXTENTS
   * extents (16 GiB of grid chunks) are pinned whole at open; larger ones
   * are read in windows and can still be cut off by an overwrite. */
  sqlite3_exec(c->db, "BEGIN", 0, 0, 0);
  rc = store__find_object(c, bucket, key, version_id, &oid, &tmp);
  if (!rc) {
    r->oid = oid;
    r->size = tmp.size;
    if (r->size > 0) rc = load_window_cap(r, c, 0, PIN_EXTENTS);
  }
  sqlite3_exec(c->db, "COMMIT", 0, 0, 0);
  store__conn_put(s, c);
  if (rc) {
    store_object_info_free(&tmp);
    store_reader_close(r);
    return rc;
  }
  if (info) *info = tmp;
  else store_object_info_free(&tmp);
  *out = r;
  return STORE_OK;
}

uint64_t store_reader_size(const store_reader *r) { return r ? r->size : 0; }

/* Load up to `cap` extents from `off` on into the window. */
static int load_window_cap(store_reader *r, conn *c, uint64_t off, size_t cap) {
  sqlite3_stmt *st = store__stmt(c, ST_EXT_RANGE);
  if (!st) return STORE_ERR_IO;
  if (r->win_cap < cap) {
    extent *nw = realloc(r->win, cap * sizeof *r->win);
    if (!nw) return STORE_ERR_NOMEM;
    r->win = nw;
    r->win_cap = cap;
  }
  sqlite3_bind_int64(st, 1, r->oid);
  sqlite3_bind_int64(st, 2, (int64_t)off);
  sqlite3_bind_int64(st, 3, INT64_MAX);
  r->n_win = 0;
  int src;
  while (r->n_win < cap && (src = sqlite3_step(st)) == SQLITE_ROW) {
    extent *e = &r->win[r->n_win++];
    e->off = (uint64_t)sqlite3_column_int64(st, 0);
    e->len = (uint64_t)sqlite3_column_int64(st, 1);
    e->hole = sqlite3_column_type(st, 2) == SQLITE_NULL;
    if (!e->hole) memcpy(e->id, sqlite3_column_blob(st, 2), HASH_LEN);
    e->coff = (uint64_t)sqlite3_column_int64(st, 3);
  }
  sqlite3_reset(st);
  if (r->n_win == 0 || r->win[0].off > off)
    return store__err(STORE_ERR_NO_KEY,
                      "object changed while being read (extents gone)");
  r->win_lo = r->win[0].off;
  r->win_hi = r->win[r->n_win - 1].off + r->win[r->n_win - 1].len;
  r->pf_next = 0;
  return STORE_OK;
}

static int load_window(store_reader *r, conn *c, uint64_t off) {
  return load_window_cap(r, c, off, READ_WINDOW);
}

/* A chunk the reader needs is gone: if its object is gone too, that is a
 * delete (and GC) racing the read, not damage. */
static int reader_missing(store_reader *r, conn *c, int rc) {
  char sql[80];
  snprintf(sql, sizeof sql, "SELECT 1 FROM object WHERE id = %lld",
           (long long)r->oid);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) return rc;
  bool exists = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (!exists)
    return store__err(STORE_ERR_NO_KEY,
                      "object changed while being read (deleted)");
  return rc;
}

/* Load a whole chunk and check it against its name. */
/* Ask the kernel to start reading the next chunk files of the window:
 * its read-ahead never crosses from one file to the next, so without this
 * nothing is in flight while a chunk is hashed and copied. */
#define PREFETCH_AHEAD 8

static void prefetch(store_reader *r, size_t from) {
  if (from < r->pf_next) from = r->pf_next;
  size_t upto = from + PREFETCH_AHEAD;
  if (upto > r->n_win) upto = r->n_win;
  for (size_t i = from; i < upto; i++) {
    if (!r->win[i].hole) r->s->be->prefetch(r->s, r->win[i].id);
  }
  if (upto > r->pf_next) r->pf_next = upto;
}

/* Load a whole chunk into dst (which has room for `want` bytes; 0 = the
 * reader's own buffer, any size) and check it against its name.  When dst
 * is the caller's buffer and the chunk is not exactly `want` bytes, nothing
 * is loaded and *fits is cleared. */
static int load_chunk_into(store_reader *r, conn *c, const uint8_t id[HASH_LEN],
                           uint8_t *dst, size_t want, bool *fits,
                           uint64_t *size_out);

static int load_chunk(store_reader *r, conn *c, const uint8_t id[HASH_LEN]) {
  if (r->chave && !memcmp(r->cid, id, HASH_LEN)) return STORE_OK;
  r->chave = false;
  if (!r->cbuf && !(r->cbuf = store__buf_get(r->s))) return STORE_ERR_NOMEM;
  bool fits = true;
  int rc = load_chunk_into(r, c, id, r->cbuf, 0, &fits, &r->clen);
  if (!rc) {
    memcpy(r->cid, id, HASH_LEN);
    r->chave = true;
  }
  return rc;
}

static int load_chunk_into(store_reader *r, conn *c, const uint8_t id[HASH_LEN],
                           uint8_t *dst, size_t want, bool *fits,
                           uint64_t *size_out) {
  sqlite3_stmt *st = store__stmt(c, ST_CHUNK_INLINE);
  if (!st) return STORE_ERR_IO;
  sqlite3_bind_blob(st, 1, id, HASH_LEN, SQLITE_STATIC);
  int src = sqlite3_step(st);
  int rc = STORE_OK;
  uint64_t size = 0;
  bool inl = false;
  if (src == SQLITE_ROW) {
    size = (uint64_t)sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 0) == SQLITE_BLOB) {
      inl = true;
      size_t n = (size_t)sqlite3_column_bytes(st, 0);
      if (n != size || n > CHUNK_SIZE)
        rc = store__err(STORE_ERR_CORRUPT, "inline chunk has wrong size");
      else if (want && n != want)
        *fits = false;
      else memcpy(dst, sqlite3_column_blob(st, 0), n);
    }
  } else if (src == SQLITE_DONE) {
    rc = store__err(STORE_ERR_NO_KEY, "object changed while being read");
  } else {
    rc = store__sqlerr(c->db, src, "chunk lookup");
  }
  sqlite3_reset(st);
  if (rc) return rc;
  if (size > CHUNK_SIZE)
    return store__err(STORE_ERR_CORRUPT, "chunk larger than the grid");
  if (want && size != want) *fits = false;
  if (!*fits) return STORE_OK;
  if (!inl) {
    int fd;
    rc = r->s->be->open(r->s, id, &fd);
    if (rc == STORE_ERR_CORRUPT) return reader_missing(r, c, rc);
    if (rc) return rc;
    size_t got = 0;
    /* One byte more than expected (when there is room) tells a file that
     * grew from one that is right. */
    size_t room = want ? want : CHUNK_SIZE;
    rc = read_full(fd, dst, size + 1 <= room ? size + 1 : size, 0, &got);
    if (!rc && got == size && size == room) {
      uint8_t extra;
      size_t more = 0;
      rc = read_full(fd, &extra, 1, size, &more);
      got += more;
    }
    close(fd);
    if (rc) return rc;
    if (got != size) {
      char hex[HEX_LEN + 1];
      store_hex(id, HASH_LEN, hex);
      return store__err(STORE_ERR_CORRUPT, "chunk %s has the wrong size", hex);
    }
  }
  if (!r->s->cfg.skip_read_verify) {
    uint8_t h[HASH_LEN];
    store__sha256(dst, size, h);
    if (memcmp(h, id, HASH_LEN) != 0) {
      char hex[HEX_LEN + 1];
      store_hex(id, HASH_LEN, hex);
      return store__err(STORE_ERR_CORRUPT,
                        "chunk %s does not match its hash", hex);
    }
  }
  if (size_out) *size_out = size;
  return STORE_OK;
}

static void *ahead_main(void *arg) {
  store_reader *r = arg;
  pthread_mutex_lock(&r->va_mu);
  for (;;) {
    va_slot *v = NULL;
    for (unsigned i = r->va_head; i != r->va_tail; i++)
      if (r->va[i % VA_SLOTS].state == VA_QUEUED) {
        v = &r->va[i % VA_SLOTS];
        break;
      }
    if (r->va_quit) break;
    if (!v) {
      pthread_cond_wait(&r->va_cv, &r->va_mu);
      continue;
    }
    v->state = VA_BUSY;
    pthread_mutex_unlock(&r->va_mu);
    conn *c;
    store__clear_err();
    int rc = store__conn_get(r->s, &c);
    if (!rc) {
      bool fits = true;
      rc = load_chunk_into(r, c, v->id, v->buf, 0, &fits, &v->size);
      store__conn_put(r->s, c);
    }
    v->rc = rc;
    if (rc) snprintf(v->err, sizeof v->err, "%s", store_errmsg());
    pthread_mutex_lock(&r->va_mu);
    v->state = VA_READY;
    pthread_cond_broadcast(&r->va_cv);
  }
  pthread_mutex_unlock(&r->va_mu);
  return NULL;
}

/* Queue the chunks after window index `from` while the ring has room. */
static void ahead_fill(store_reader *r, size_t from) {
  if (r->va_next < from) r->va_next = from;
  pthread_mutex_lock(&r->va_mu);
  while (r->va_tail - r->va_head < VA_SLOTS && r->va_next < r->n_win) {
    extent *e = &r->win[r->va_next++];
    if (e->hole) continue;
    unsigned last = r->va_tail - 1;
    if (r->va_tail != r->va_head &&
        !memcmp(r->va[last % VA_SLOTS].id, e->id, HASH_LEN))
      continue; /* the same chunk again (a multipart slice) */
    va_slot *v = &r->va[r->va_tail % VA_SLOTS];
    if (!v->buf && !(v->buf = store__buf_get(r->s))) break;
    memcpy(v->id, e->id, HASH_LEN);
    v->state = VA_QUEUED;
    v->rc = STORE_OK;
    r->va_tail++;
  }
  pthread_cond_broadcast(&r->va_cv);
  pthread_mutex_unlock(&r->va_mu);
}

/* The verified bytes of chunk `id` from the ring, waiting for them if they
 * are being loaded; NULL when the ring does not hold that chunk (slots
 * before it are dropped: the reader has moved past them). */
static va_slot *ahead_take(store_reader *r, const uint8_t id[HASH_LEN]) {
  pthread_mutex_lock(&r->va_mu);
  va_slot *hit = NULL;
  while (r->va_head != r->va_tail) {
    va_slot *v = &r->va[r->va_head % VA_SLOTS];
    while (v->state != VA_READY) pthread_cond_wait(&r->va_cv, &r->va_mu);
    if (!memcmp(v->id, id, HASH_LEN)) {
      hit = v;
      break;
    }
    v->state = 0;
    r->va_head++;
  }
  pthread_mutex_unlock(&r->va_mu);
  return hit;
}

static void ahead_start(store_reader *r) {
  if (r->va_on || r->va_failed) return;
  pthread_mutex_init(&r->va_mu, NULL);
  pthread_cond_init(&r->va_cv, NULL);
  for (int i = 0; i < AHEAD_THREADS; i++)
    if (pthread_create(&r->va_th[r->va_threads], NULL, ahead_main, r) == 0)
      r->va_threads++;
  if (r->va_threads == 0) {
    pthread_mutex_destroy(&r->va_mu);
    pthread_cond_destroy(&r->va_cv);
    r->va_failed = true; /* verify on the caller's thread instead */
    return;
  }
  r->va_on = true;
}

static void ahead_stop(store_reader *r) {
  if (!r->va_on) return;
  pthread_mutex_lock(&r->va_mu);
  r->va_quit = true;
  pthread_cond_broadcast(&r->va_cv);
  pthread_mutex_unlock(&r->va_mu);
  for (int i = 0; i < r->va_threads; i++) pthread_join(r->va_th[i], NULL);
  for (int i = 0; i < VA_SLOTS; i++) store__buf_put(r->s, r->va[i].buf);
  pthread_mutex_destroy(&r->va_mu);
  pthread_cond_destroy(&r->va_cv);
  r->va_on = false;
}

int store_read(store_reader *r, void *buf, size_t n, uint64_t off,
               size_t *got) {
  *got = 0;
  if (!r) return STORE_ERR_INVALID;
  if (off >= r->size || n == 0) return STORE_OK;
  if (n > r->size - off) n = (size_t)(r->size - off);
  conn *c;
  int rc = store__conn_get(r->s, &c);
  if (rc) return rc;
  uint8_t *p = buf;
  size_t done = 0;
  while (done < n) {
    uint64_t pos = off + done;
    if (!r->n_win || pos < r->win_lo || pos >= r->win_hi) {
      rc = load_window(r, c, pos);
      if (rc) break;
    }
    /* binary search the window */
    size_t lo = 0, hi = r->n_win;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (r->win[mid].off + r->win[mid].len <= pos) lo = mid + 1;
      else hi = mid;
    }
    extent *e = &r->win[lo];
    uint64_t in = pos - e->off;
    size_t take = e->len - in < n - done ? (size_t)(e->len - in) : n - done;
    bool stream = off == r->seq_end && off > 0;
    if (stream) prefetch(r, lo + 1);
    bool direct = false;
    if (stream && !e->hole && !r->s->cfg.skip_read_verify) {
      /* A stream: chunks are verified ahead on the helper thread. */
      ahead_start(r);
      if (r->va_on) {
        va_slot *v = ahead_take(r, e->id);
        if (!v) {
          /* Not queued yet (a new window, or the first read): queue from
           * here and take it when ready. */
          r->va_next = lo;
          ahead_fill(r, lo);
          v = ahead_take(r, e->id);
        }
        if (v) {
          ahead_fill(r, lo + 1);
          if (v->rc) {
            rc = store__err(v->rc, "%s", v->err);
            break;
          }
          if (e->coff + in + take > v->size) {
            rc = store__err(STORE_ERR_CORRUPT, "extent beyond its chunk");
            break;
          }
          memcpy(p + done, v->buf + e->coff + in, take);
          direct = true;
        }
      }
    }
    if (!direct && !e->hole && !r->s->cfg.skip_read_verify && e->coff == 0 && in == 0 &&
        take == e->len && !(r->chave && !memcmp(r->cid, e->id, HASH_LEN))) {
      /* The read covers the whole chunk: load and verify it right in the
       * caller's buffer, no copy. */
      bool fits = true;
      rc = load_chunk_into(r, c, e->id, p + done, take, &fits, NULL);
      if (rc) break;
      direct = fits;
    }
    if (direct) {
      /* done */
    } else if (e->hole) {
      memset(p + done, 0, take);
    } else if (r->s->cfg.skip_read_verify) {
      rc = store__read_chunk(r->s, c, e->id, e->coff + in, p + done, take,
                             &r->fd, r->fd_id);
      if (rc == STORE_ERR_CORRUPT) rc = reader_missing(r, c, rc);
      if (rc) break;
    } else {
      rc = load_chunk(r, c, e->id);
      if (rc) break;
      if (e->coff + in + take > r->clen) {
        rc = store__err(STORE_ERR_CORRUPT, "extent beyond its chunk");
        break;
      }
      memcpy(p + done, r->cbuf + e->coff + in, take);
    }
    done += take;
  }
  store__conn_put(r->s, c);
  *got = done;
  r->seq_end = off + done;
  return rc;
}

void store_reader_close(store_reader *r) {
  if (!r) return;
  ahead_stop(r);
  if (r->fd >= 0) close(r->fd);
  store__buf_put(r->s, r->cbuf);
  free(r->win);
  free(r);
}
