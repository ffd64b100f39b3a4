/*
 * multipart.c -- multipart uploads: create, list, list parts, complete,
 * abort, and UploadPartCopy.
 *
 * A part is written like an object (object.c's writer) and its extents are
 * stored under cid = -part.id.  Completion moves those extent rows to the
 * new object (shifting offsets) in one transaction: no chunk byte is read
 * or written, and reference counts do not change for the parts used.
 */
#include <nettle/md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"


struct mpu_args {
  const char *bucket, *key, *upload_id;
  const store_put_opts *opts;
  const store_put_opts *copts; /* completion options */
  const store_part_ref *parts;
  size_t n;
  char id[STORE_UPLOAD_ID_MAX];
  store_object_info *out;
  /* part copy */
  uint32_t part_number;
  int64_t src_oid;
  uint64_t off, len;
  char etag[STORE_ETAG_MAX];
  int64_t mtime_ns;
};

static int mpu_create_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct mpu_args *a = arg;
  const store_put_opts *o = a->opts;
  int64_t bid;
  int rc = store__bucket_id(c, a->bucket, &bid);
  if (rc) return rc;
  char *meta = NULL, *headers = NULL, *tags = NULL;
  size_t ml = 0, hl = 0, tl = 0;
  rc = store__merge_meta(o, &meta, &ml);
  if (!rc && o) rc = store__kv_encode(o->headers, o->n_headers, &headers, &hl);
  if (!rc && o) rc = store__kv_encode(o->tags, o->n_tags, &tags, &tl);
  sqlite3_stmt *st = NULL;
  if (!rc && sqlite3_prepare_v2(c->db,
                                "INSERT INTO upload(id, bucket_id, key,"
                                " created_ns, owner, content_type, meta,"
                                " headers, tags, checksum_algo,"
                                " checksum_composite)"
                                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                                -1, &st, NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "upload create");
  if (!rc) {
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, bid);
    sqlite3_bind_text(st, 3, a->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, store__now_ns());
    sqlite3_bind_text(st, 5, o && o->owner ? o->owner : "", -1, SQLITE_STATIC);
    if (o && o->content_type)
      sqlite3_bind_text(st, 6, o->content_type, -1, SQLITE_STATIC);
    if (meta) sqlite3_bind_blob(st, 7, meta, (int)ml, SQLITE_STATIC);
    if (headers) sqlite3_bind_blob(st, 8, headers, (int)hl, SQLITE_STATIC);
    if (tags) sqlite3_bind_blob(st, 9, tags, (int)tl, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, o ? o->checksum_algo : 0);
    sqlite3_bind_int(st, 11, o ? o->checksum_composite : 0);
    rc = store__step_done(c, st, "upload create");
  }
  sqlite3_finalize(st);
  free(meta);
  free(headers);
  free(tags);
  return rc;
}

int store_mpu_create(store *s, const char *bucket, const char *key,
                     const store_put_opts *opts,
                     char upload_id[STORE_UPLOAD_ID_MAX]) {
  store__clear_err();
  int rc = store_key_check(key, key ? strlen(key) : 0);
  if (!rc) rc = store__validate_put_opts(opts);
  if (rc) return rc;
  struct mpu_args a = {.bucket = bucket, .key = key, .opts = opts};
  /* Time-ordered ids: listing by id is listing by initiation. */
  char rnd[17];
  store__random_id(rnd, 16);
  snprintf(a.id, sizeof a.id, "%016llx%s",
           (unsigned long long)store__now_ns(), rnd);
  rc = store__commit(s, mpu_create_fn, &a);
  if (!rc) snprintf(upload_id, STORE_UPLOAD_ID_MAX, "%s", a.id);
  return rc;
}

/* The upload row of (bucket, key, id): bucket id, or NO_UPLOAD. */
static int upload_find(conn *c, const char *bucket, const char *key,
                       const char *id, int64_t *bid, store_object_info *info) {
  int rc = store__bucket_id(c, bucket, bid);
  if (rc) return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT key, created_ns, content_type, meta, headers,"
                         " tags, checksum_algo, owner, checksum_composite"
                         " FROM upload WHERE"
                         " id = ?1 AND bucket_id = ?2 AND key = ?3",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "upload lookup");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, *bid);
  sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    if (info) {
      memset(info, 0, sizeof *info);
      info->key = strdup((const char *)sqlite3_column_text(st, 0));
      info->mtime_ns = sqlite3_column_int64(st, 1);
      if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        info->content_type = strdup((const char *)sqlite3_column_text(st, 2));
      rc = store__kv_decode(sqlite3_column_blob(st, 3),
                            (size_t)sqlite3_column_bytes(st, 3), &info->meta,
                            &info->n_meta);
      if (!rc)
        rc = store__kv_decode(sqlite3_column_blob(st, 4),
                              (size_t)sqlite3_column_bytes(st, 4),
                              &info->headers, &info->n_headers);
      if (!rc)
        rc = store__kv_decode(sqlite3_column_blob(st, 5),
                              (size_t)sqlite3_column_bytes(st, 5), &info->tags,
                              &info->n_tags);
      info->checksum_algo = sqlite3_column_int(st, 6);
      info->checksum_composite = sqlite3_column_int(st, 8);
      snprintf(info->version_id, sizeof info->version_id, "null");
    }
  } else if (src == SQLITE_DONE) {
    rc = store__err(STORE_ERR_NO_UPLOAD, "upload %s not found", id);
  } else {
    rc = store__sqlerr(c->db, src, "upload lookup");
  }
  sqlite3_finalize(st);
  return rc;
}

int store_mpu_head(store *s, const char *bucket, const char *key,
                   const char *upload_id, store_object_info *out) {
  store__clear_err();
  if (out) memset(out, 0, sizeof *out);
  if (!upload_id || !key) return store__err(STORE_ERR_NO_UPLOAD, "no upload");
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t bid;
  rc = upload_find(c, bucket, key, upload_id, &bid, out);
  store__conn_put(s, c);
  return rc;
}

/* Drop every part of an upload (or those not in `keep`). */
static int drop_parts(conn *c, const char *upload_id, const int64_t *keep,
                      size_t n_keep) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, "SELECT id FROM part WHERE upload_id = ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "parts");
  sqlite3_bind_text(st, 1, upload_id, -1, SQLITE_STATIC);
  int64_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc = STORE_OK;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    bool kept = false;
    for (size_t i = 0; i < n_keep && !kept; i++) kept = keep[i] == id;
    if (kept) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      int64_t *ni = realloc(ids, cap * sizeof *ni);
      if (!ni) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      ids = ni;
    }
    ids[n++] = id;
  }
  sqlite3_finalize(st);
  for (size_t i = 0; !rc && i < n; i++) rc = store__extents_drop(c, -ids[i]);
  free(ids);
  if (rc) return rc;
  if (sqlite3_prepare_v2(c->db, "DELETE FROM part WHERE upload_id = ?1", -1,
                         &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "parts");
  sqlite3_bind_text(st, 1, upload_id, -1, SQLITE_STATIC);
  rc = store__step_done(c, st, "parts delete");
  sqlite3_finalize(st);
  if (rc) return rc;
  if (sqlite3_prepare_v2(c->db, "DELETE FROM upload WHERE id = ?1", -1, &st,
                         NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "upload delete");
  sqlite3_bind_text(st, 1, upload_id, -1, SQLITE_STATIC);
  rc = store__step_done(c, st, "upload delete");
  sqlite3_finalize(st);
  return rc;
}

static int hexnib(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Normalise a client-sent etag: strip quotes, lower-case. */
static void etag_norm(const char *in, char *out, size_t cap) {
  size_t n = strlen(in);
  if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
    in++;
    n -= 2;
  }
  size_t i = 0;
  for (; i < n && i + 1 < cap; i++) {
    char ch = in[i];
    out[i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
  }
  out[i] = 0;
}

static int complete_fn(store *s, conn *c, void *arg) {
  struct mpu_args *a = arg;
  int64_t bid;
  store_object_info up;
  int rc = upload_find(c, a->bucket, a->key, a->upload_id, &bid, &up);
  if (rc) return rc;
  int64_t *pids = calloc(a->n, sizeof *pids);
  uint64_t *sizes = calloc(a->n, sizeof *sizes);
  char (*ptags)[STORE_ETAG_MAX] = calloc(a->n, STORE_ETAG_MAX);
  char (*pck)[128] = calloc(a->n, 128);
  sqlite3_stmt *st = NULL;
  struct md5_ctx m;
  md5_init(&m);
  uint64_t total = 0;
  if (!pids || !sizes || !ptags || !pck) rc = STORE_ERR_NOMEM;
  if (!rc && sqlite3_prepare_v2(c->db,
                                "SELECT id, size, etag, checksum FROM part"
                                " WHERE upload_id = ?1 AND part_number = ?2",
                                -1, &st, NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "complete");
  for (size_t i = 0; !rc && i < a->n; i++) {
    const store_part_ref *p = &a->parts[i];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, a->upload_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)p->part_number);
    if (sqlite3_step(st) != SQLITE_ROW) {
      rc = store__err(STORE_ERR_INVALID_PART, "part %u was not uploaded",
                      p->part_number);
      break;
    }
    pids[i] = sqlite3_column_int64(st, 0);
    sizes[i] = (uint64_t)sqlite3_column_int64(st, 1);
    snprintf(ptags[i], STORE_ETAG_MAX, "%s",
             (const char *)sqlite3_column_text(st, 2));
    if (sqlite3_column_type(st, 3) != SQLITE_NULL)
      snprintf(pck[i], 128, "%s", (const char *)sqlite3_column_text(st, 3));
    char want[STORE_ETAG_MAX + 8];
    etag_norm(p->etag ? p->etag : "", want, sizeof want);
    if (strcmp(want, ptags[i]) != 0) {
      rc = store__err(STORE_ERR_INVALID_PART, "part %u has etag %s, not %s",
                      p->part_number, ptags[i], want);
      break;
    }
    if (i + 1 < a->n && sizes[i] < s->part_min) {
      rc = store__err(STORE_ERR_ENTITY_TOO_SMALL,
                      "part %u is %llu bytes, under the %u minimum",
                      p->part_number, (unsigned long long)sizes[i],
                      s->part_min);
      break;
    }
    uint8_t bin[16];
    for (int k = 0; k < 16; k++)
      bin[k] = (uint8_t)(hexnib(ptags[i][2 * k]) << 4 | hexnib(ptags[i][2 * k + 1]));
    md5_update(&m, 16, bin);
    total += sizes[i];
  }
  sqlite3_finalize(st);
  st = NULL;
  int64_t cur = 0, nid = 0;
  char etag[STORE_ETAG_MAX];
  if (!rc) {
    uint8_t d[16];
    md5_digest(&m, 16, d);
    char hex[33];
    store_hex(d, 16, hex);
    snprintf(etag, sizeof etag, "%s-%zu", hex, a->n);
    rc = store__check_conditions(c, bid, a->key, a->copts, &cur, NULL);
  }
  if (!rc && cur) rc = store__object_row_delete(c, cur);
  char *meta = NULL, *headers = NULL, *tags = NULL;
  size_t ml = 0, hl = 0, tl = 0;
  if (!rc) rc = store__kv_encode(up.meta, up.n_meta, &meta, &ml);
  if (!rc) rc = store__kv_encode(up.headers, up.n_headers, &headers, &hl);
  if (!rc) rc = store__kv_encode(up.tags, up.n_tags, &tags, &tl);
  a->mtime_ns = store__now_ns();
  if (!rc)
    rc = store__insert_object(c, bid, a->key, 0, total, etag, a->mtime_ns,
                              (uint32_t)a->n, up.content_type, meta, ml,
                              headers, hl, tags, tl,
                              a->copts && a->copts->checksum
                                  ? a->copts->checksum_algo : up.checksum_algo,
                              a->copts ? a->copts->checksum : NULL,
                              a->copts ? a->copts->checksum_composite : 0,
                              NULL, store__mode_from_meta(up.meta, up.n_meta),
                              &nid);
  free(meta);
  free(headers);
  free(tags);
  /* Move each part's extents into the object, shifted to its offset. */
  sqlite3_stmt *mv = NULL, *op = NULL;
  if (!rc && (sqlite3_prepare_v2(c->db,
                                 "UPDATE extent SET cid = ?1, off = off + ?2"
                                 " WHERE cid = ?3",
                                 -1, &mv, NULL) != SQLITE_OK ||
              sqlite3_prepare_v2(c->db,
                                 "INSERT INTO object_part VALUES(?1, ?2, ?3,"
                                 " ?4, ?5, ?6)",
                                 -1, &op, NULL) != SQLITE_OK))
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "complete");
  uint64_t off = 0;
  for (size_t i = 0; !rc && i < a->n; i++) {
    sqlite3_reset(mv);
    sqlite3_bind_int64(mv, 1, nid);
    sqlite3_bind_int64(mv, 2, (int64_t)off);
    sqlite3_bind_int64(mv, 3, -pids[i]);
    rc = store__step_done(c, mv, "complete move");
    if (rc) break;
    sqlite3_reset(op);
    sqlite3_bind_int64(op, 1, nid);
    sqlite3_bind_int(op, 2, (int)a->parts[i].part_number);
    sqlite3_bind_int64(op, 3, (int64_t)off);
    sqlite3_bind_int64(op, 4, (int64_t)sizes[i]);
    sqlite3_bind_text(op, 5, ptags[i], -1, SQLITE_STATIC);
    if (pck[i][0]) sqlite3_bind_text(op, 6, pck[i], -1, SQLITE_STATIC);
    else sqlite3_bind_null(op, 6);
    rc = store__step_done(c, op, "complete parts");
    off += sizes[i];
  }
  sqlite3_finalize(mv);
  sqlite3_finalize(op);
  /* Parts not named are discarded; the upload ends. */
  if (!rc) rc = drop_parts(c, a->upload_id, pids, a->n);
  if (!rc) rc = store__change(c, STORE_CHANGE_PUT, a->bucket, a->key);
  if (!rc) {
    snprintf(a->etag, sizeof a->etag, "%s", etag);
    if (a->out) {
      store_object_info *o = a->out;
      memset(o, 0, sizeof *o);
      o->key = strdup(a->key);
      snprintf(o->version_id, sizeof o->version_id, "null");
      o->size = total;
      snprintf(o->etag, sizeof o->etag, "%s", etag);
      o->mtime_ns = a->mtime_ns;
      o->ino = (uint64_t)nid;
      o->parts = (uint32_t)a->n;
      o->content_type = store__strdup(up.content_type);
      if (a->copts && a->copts->checksum) {
        o->checksum_algo = a->copts->checksum_algo;
        o->checksum = store__strdup(a->copts->checksum);
        o->checksum_composite = a->copts->checksum_composite;
      }
    }
  }
  store_object_info_free(&up);
  free(pids);
  free(sizes);
  free(ptags);
  free(pck);
  return rc;
}

int store_mpu_complete(store *s, const char *bucket, const char *key,
                       const char *upload_id, const store_part_ref *parts,
                       size_t n, store_object_info *out) {
  return store_mpu_complete_ex(s, bucket, key, upload_id, parts, n, NULL, out);
}

int store_mpu_complete_ex(store *s, const char *bucket, const char *key,
                          const char *upload_id, const store_part_ref *parts,
                          size_t n, const store_put_opts *opts,
                          store_object_info *out) {
  store__clear_err();
  if (out) memset(out, 0, sizeof *out);
  if (!upload_id || !key) return store__err(STORE_ERR_NO_UPLOAD, "no upload");
  if (n == 0) return store__err(STORE_ERR_INVALID, "no parts named");
  if (n > STORE_PARTS_MAX)
    return store__err(STORE_ERR_TOO_LARGE, "more than %d parts",
                      STORE_PARTS_MAX);
  for (size_t i = 0; i < n; i++) {
    if (parts[i].part_number < 1 || parts[i].part_number > STORE_PARTS_MAX)
      return store__err(STORE_ERR_INVALID_PART, "part number %u out of range",
                        parts[i].part_number);
    if (i && parts[i].part_number <= parts[i - 1].part_number)
      return store__err(STORE_ERR_INVALID_PART_ORDER,
                        "part numbers must ascend");
  }
  struct mpu_args a = {.bucket = bucket, .key = key, .upload_id = upload_id,
                       .parts = parts, .n = n, .out = out, .copts = opts};
  int rc = store__commit(s, complete_fn, &a);
  if (rc && out) store_object_info_free(out);
  return rc;
}

static int abort_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct mpu_args *a = arg;
  int64_t bid;
  int rc = upload_find(c, a->bucket, a->key, a->upload_id, &bid, NULL);
  if (rc) return rc;
  return drop_parts(c, a->upload_id, NULL, 0);
}

int store_mpu_abort(store *s, const char *bucket, const char *key,
                    const char *upload_id) {
  store__clear_err();
  if (!upload_id || !key) return store__err(STORE_ERR_NO_UPLOAD, "no upload");
  struct mpu_args a = {.bucket = bucket, .key = key, .upload_id = upload_id};
  return store__commit_freeing(s, abort_fn, &a);
}

/* ------------------------------------------------------------------ */
/* UploadPartCopy                                                      */
/* ------------------------------------------------------------------ */
static int part_copy_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct mpu_args *a = arg;
  int64_t bid;
  int rc = upload_find(c, a->bucket, a->key, a->upload_id, &bid, NULL);
  if (rc) return rc;
  /* The source must still be the version that was hashed. */
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT 1 FROM object WHERE id = %lld",
           (long long)a->src_oid);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "part copy");
  bool still = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (!still)
    return store__err(STORE_ERR_PRECONDITION,
                      "source object changed during the copy");
  if (sqlite3_prepare_v2(c->db,
                         "SELECT id FROM part WHERE upload_id = ?1 AND"
                         " part_number = ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "part copy");
  sqlite3_bind_text(st, 1, a->upload_id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)a->part_number);
  int64_t old = 0;
  if (sqlite3_step(st) == SQLITE_ROW) old = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (old) {
    rc = store__extents_drop(c, -old);
    snprintf(sql, sizeof sql, "DELETE FROM part WHERE id = %lld",
             (long long)old);
    if (!rc && sqlite3_exec(c->db, sql, 0, 0, 0) != SQLITE_OK)
      rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "part copy");
    if (rc) return rc;
  }
  if (sqlite3_prepare_v2(c->db,
                         "INSERT INTO part(upload_id, part_number, size, etag,"
                         " mtime_ns) VALUES(?1,?2,?3,?4,?5)",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "part copy");
  a->mtime_ns = store__now_ns();
  sqlite3_bind_text(st, 1, a->upload_id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)a->part_number);
  sqlite3_bind_int64(st, 3, (int64_t)a->len);
  sqlite3_bind_text(st, 4, a->etag, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, a->mtime_ns);
  rc = store__step_done(c, st, "part copy");
  sqlite3_finalize(st);
  if (rc) return rc;
  int64_t pid = sqlite3_last_insert_rowid(c->db);
  return store__extents_copy(s, c, a->src_oid, a->off, a->len, -pid, 0);
}

int store_part_copy(store *s, const char *bucket, const char *key,
                    const char *upload_id, uint32_t part_number,
                    const char *src_bucket, const char *src_key,
                    const char *src_version_id, uint64_t off, uint64_t len,
                    store_object_info *out) {
  store__clear_err();
  if (out) memset(out, 0, sizeof *out);
  if (part_number < 1 || part_number > STORE_PARTS_MAX)
    return store__err(STORE_ERR_INVALID, "part number must be 1..%d",
                      STORE_PARTS_MAX);
  store_object_info up;
  int rc = store_mpu_head(s, bucket, key, upload_id, &up);
  store_object_info_free(&up);
  if (rc) return rc;
  /* Hash the source range once, outside any write transaction. */
  conn *c;
  rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t soid;
  store_object_info src;
  rc = store__find_object(c, src_bucket, src_key, src_version_id, &soid, &src);
  store__conn_put(s, c);
  if (rc) return rc;
  uint64_t size = src.size;
  store_object_info_free(&src);
  if (len == UINT64_MAX) len = off <= size ? size - off : 0;
  if (off > size || len > size - off)
    return store__err(STORE_ERR_RANGE, "range beyond the source's %llu bytes",
                      (unsigned long long)size);
  store_reader *r;
  rc = store_reader_open(s, src_bucket, src_key, src_version_id, &r, NULL);
  if (rc) return rc;
  struct md5_ctx m;
  md5_init(&m);
  uint8_t *buf = store__buf_get(s);
  if (!buf) rc = STORE_ERR_NOMEM;
  for (uint64_t pos = off; !rc && pos < off + len;) {
    size_t want = off + len - pos < CHUNK_SIZE ? (size_t)(off + len - pos)
                                                : CHUNK_SIZE;
    size_t got = 0;
    rc = store_read(r, buf, want, pos, &got);
    if (!rc && got != want)
      rc = store__err(STORE_ERR_NO_KEY, "source shrank during the copy");
    if (!rc) md5_update(&m, got, buf);
    pos += got;
  }
  store__buf_put(s, buf);
  store_reader_close(r);
  if (rc) return rc;
  uint8_t d[16];
  md5_digest(&m, 16, d);
  struct mpu_args a = {.bucket = bucket, .key = key, .upload_id = upload_id,
                       .part_number = part_number, .src_oid = soid,
                       .off = off, .len = len};
  store_hex(d, 16, a.etag);
  rc = store__commit(s, part_copy_fn, &a);
  if (!rc && out) {
    out->key = strdup(key);
    out->size = len;
    snprintf(out->etag, sizeof out->etag, "%s", a.etag);
    out->mtime_ns = a.mtime_ns;
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* Listing uploads and parts                                           */
/* ------------------------------------------------------------------ */
int store_mpu_list(store *s, const char *bucket,
                   const store_mpu_list_opts *opts,
                   store_mpu_list_result *out) {
  store__clear_err();
  memset(out, 0, sizeof *out);
  const char *prefix = opts && opts->prefix ? opts->prefix : "";
  const char *delim = opts && opts->delimiter && *opts->delimiter
                          ? opts->delimiter : NULL;
  const char *km = opts && opts->key_marker ? opts->key_marker : "";
  const char *um = opts && opts->upload_id_marker && *km
                       ? opts->upload_id_marker : "";
  uint32_t max = opts && opts->max_uploads ? opts->max_uploads : 1000;
  if (max > 1000) max = 1000;
  size_t pl = strlen(prefix);
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t bid;
  rc = store__bucket_id(c, bucket, &bid);
  sqlite3_stmt *st = NULL;
  if (!rc && sqlite3_prepare_v2(c->db,
                                "SELECT key, id, created_ns, owner FROM upload"
                                " WHERE bucket_id = ?1 AND key >= ?2 AND"
                                " (key > ?3 OR (key = ?3 AND ?4 <> '' AND"
                                " id > ?4)) ORDER BY key, id",
                                -1, &st, NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "list uploads");
  if (!rc) {
    sqlite3_bind_int64(st, 1, bid);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, km, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, um, -1, SQLITE_STATIC);
  }
  /* A marker inside (or equal to) a common prefix: that prefix was
   * reported already, skip every key under it. */
  size_t skip_len = 0;
  if (delim && !strncmp(km, prefix, pl)) {
    const char *d = strstr(km + pl, delim);
    if (d) skip_len = (size_t)(d - km) + strlen(delim);
  }
  size_t cap_u = 0, cap_p = 0, count = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(st, 0);
    if (strncmp(key, prefix, pl) != 0) break; /* past the prefix range */
    if (skip_len && !strncmp(key, km, skip_len)) continue;
    const char *d = delim ? strstr(key + pl, delim) : NULL;
    if (d) {
      size_t cl = (size_t)(d - key) + strlen(delim);
      if (out->n_prefixes &&
          strlen(out->prefixes[out->n_prefixes - 1]) == cl &&
          !strncmp(out->prefixes[out->n_prefixes - 1], key, cl))
        continue;
      if (count == max) {
        out->truncated = 1;
        break;
      }
      if (out->n_prefixes == cap_p) {
        cap_p = cap_p ? cap_p * 2 : 16;
        char **np = realloc(out->prefixes, cap_p * sizeof *np);
        if (!np) {
          rc = STORE_ERR_NOMEM;
          break;
        }
        out->prefixes = np;
      }
      char *p = malloc(cl + 1);
      if (!p) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      memcpy(p, key, cl);
      p[cl] = 0;
      out->prefixes[out->n_prefixes++] = p;
      count++;
      free(out->next_key_marker);
      out->next_key_marker = strdup(p);
      out->next_upload_id_marker[0] = 0;
      continue;
    }
    if (count == max) {
      out->truncated = 1;
      break;
    }
    if (out->n_uploads == cap_u) {
      cap_u = cap_u ? cap_u * 2 : 16;
      store_upload *nu = realloc(out->uploads, cap_u * sizeof *nu);
      if (!nu) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      out->uploads = nu;
    }
    store_upload *u = &out->uploads[out->n_uploads++];
    memset(u, 0, sizeof *u);
    u->key = strdup(key);
    snprintf(u->upload_id, sizeof u->upload_id, "%s",
             (const char *)sqlite3_column_text(st, 1));
    u->created_ns = sqlite3_column_int64(st, 2);
    snprintf(u->owner, sizeof u->owner, "%s",
             (const char *)sqlite3_column_text(st, 3));
    count++;
    free(out->next_key_marker);
    out->next_key_marker = strdup(key);
    snprintf(out->next_upload_id_marker, sizeof out->next_upload_id_marker,
             "%s", u->upload_id);
  }
  sqlite3_finalize(st);
  store__conn_put(s, c);
  if (rc) store_mpu_list_result_free(out);
  return rc;
}

void store_mpu_list_result_free(store_mpu_list_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_uploads; i++) free(r->uploads[i].key);
  free(r->uploads);
  for (size_t i = 0; i < r->n_prefixes; i++) free(r->prefixes[i]);
  free(r->prefixes);
  free(r->next_key_marker);
  memset(r, 0, sizeof *r);
}

int store_mpu_parts(store *s, const char *bucket, const char *key,
                    const char *upload_id, uint32_t part_marker,
                    uint32_t max_parts, store_part_info **out, size_t *n,
                    int *truncated) {
  store__clear_err();
  *out = NULL;
  *n = 0;
  if (truncated) *truncated = 0;
  if (!upload_id || !key) return store__err(STORE_ERR_NO_UPLOAD, "no upload");
  if (!max_parts || max_parts > 1000) max_parts = 1000;
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t bid;
  rc = upload_find(c, bucket, key, upload_id, &bid, NULL);
  sqlite3_stmt *st = NULL;
  if (!rc && sqlite3_prepare_v2(c->db,
                                "SELECT part_number, size, etag, mtime_ns,"
                                " checksum_algo, checksum FROM part WHERE"
                                " upload_id = ?1 AND part_number > ?2 ORDER BY"
                                " part_number LIMIT ?3",
                                -1, &st, NULL) != SQLITE_OK)
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "list parts");
  store_part_info *list = NULL;
  if (!rc) {
    list = calloc(max_parts, sizeof *list);
    if (!list) rc = STORE_ERR_NOMEM;
  }
  if (!rc) {
    sqlite3_bind_text(st, 1, upload_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)part_marker);
    sqlite3_bind_int(st, 3, (int)max_parts + 1);
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (*n == max_parts) {
        if (truncated) *truncated = 1;
        break;
      }
      store_part_info *p = &list[(*n)++];
      p->part_number = (uint32_t)sqlite3_column_int(st, 0);
      p->size = (uint64_t)sqlite3_column_int64(st, 1);
      snprintf(p->etag, sizeof p->etag, "%s",
               (const char *)sqlite3_column_text(st, 2));
      p->mtime_ns = sqlite3_column_int64(st, 3);
      p->checksum_algo = sqlite3_column_int(st, 4);
      if (sqlite3_column_type(st, 5) != SQLITE_NULL)
        p->checksum = strdup((const char *)sqlite3_column_text(st, 5));
    }
  }
  sqlite3_finalize(st);
  store__conn_put(s, c);
  if (rc) {
    store_part_info_free(list, *n);
    *n = 0;
    return rc;
  }
  *out = list;
  return STORE_OK;
}

void store_part_info_free(store_part_info *p, size_t n) {
  if (!p) return;
  for (size_t i = 0; i < n; i++) free(p[i].checksum);
  free(p);
}
