/*
 * namespace.c -- the key space: head, delete, copy, rename (one key or a
 * whole prefix), in-place attribute updates and listing.
 *
 * Every change here is one catalog transaction and moves no chunk bytes:
 * a copy adds extent rows that name the source's chunks, a rename rewrites
 * keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"


int store_head(store *s, const char *bucket, const char *key,
               const char *version_id, store_object_info *out) {
  store__clear_err();
  if (out) memset(out, 0, sizeof *out);
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t oid;
  rc = store__find_object(c, bucket, key, version_id, &oid, out);
  store__conn_put(s, c);
  return rc;
}

int store_part_range(store *s, const char *bucket, const char *key,
                     uint32_t part_number, uint64_t *off, uint64_t *len,
                     char etag[STORE_ETAG_MAX]) {
  store__clear_err();
  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t oid;
  store_object_info info;
  rc = store__find_object(c, bucket, key, NULL, &oid, &info);
  if (!rc) {
    if (info.parts == 0) {
      /* A single-part object: part 1 is the whole object. */
      if (part_number == 1) {
        *off = 0;
        *len = info.size;
        if (etag) snprintf(etag, STORE_ETAG_MAX, "%s", info.etag);
      } else {
        rc = store__err(STORE_ERR_RANGE, "object has no part %u", part_number);
      }
    } else {
      sqlite3_stmt *st;
      if (sqlite3_prepare_v2(c->db,
                             "SELECT off, size, etag FROM object_part WHERE"
                             " object_id = ?1 AND part_number = ?2",
                             -1, &st, NULL) != SQLITE_OK) {
        rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "part range");
      } else {
        sqlite3_bind_int64(st, 1, oid);
        sqlite3_bind_int(st, 2, (int)part_number);
        if (sqlite3_step(st) == SQLITE_ROW) {
          *off = (uint64_t)sqlite3_column_int64(st, 0);
          *len = (uint64_t)sqlite3_column_int64(st, 1);
          if (etag)
            snprintf(etag, STORE_ETAG_MAX, "%s",
                     (const char *)sqlite3_column_text(st, 2));
        } else {
          rc = store__err(STORE_ERR_RANGE, "object has no part %u",
                          part_number);
        }
        sqlite3_finalize(st);
      }
    }
    store_object_info_free(&info);
  }
  store__conn_put(s, c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Delete                                                              */
/* ------------------------------------------------------------------ */
struct key_args {
  const char *bucket, *key, *key2;
  int flag;
  uint64_t count;
  const store_kv *kv;
  size_t n;
  const store_posix *posix;
};

static int delete_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct key_args *a = arg;
  int64_t oid;
  int rc = store__find_object(c, a->bucket, a->key, NULL, &oid, NULL);
  if (rc) return rc;
  rc = store__object_row_delete(c, oid);
  if (!rc) rc = store__change(c, STORE_CHANGE_DELETE, a->bucket, a->key);
  return rc;
}

int store_delete(store *s, const char *bucket, const char *key) {
  store__clear_err();
  if (!key) return store__err(STORE_ERR_NO_KEY, "no key");
  struct key_args a = {.bucket = bucket, .key = key};
  return store__commit_freeing(s, delete_fn, &a);
}

/* ------------------------------------------------------------------ */
/* Extent copies                                                       */
/* ------------------------------------------------------------------ */
int store__extents_copy(store *s, conn *c, int64_t src_cid, uint64_t off,
                        uint64_t len, int64_t dst_cid, uint64_t dst_off) {
  if (len == 0) return STORE_OK;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT off, len, chunk, chunk_off FROM extent"
                         " WHERE cid = ?1 AND off + len > ?2 AND off < ?3"
                         " ORDER BY off",
                         -1, &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "extent copy");
  sqlite3_bind_int64(st, 1, src_cid);
  sqlite3_bind_int64(st, 2, (int64_t)off);
  sqlite3_bind_int64(st, 3, (int64_t)(off + len));
  sqlite3_stmt *ins;
  if (sqlite3_prepare_v2(c->db,
                         "INSERT INTO extent(cid, off, len, chunk, chunk_off)"
                         " VALUES(?1, ?2, ?3, ?4, ?5)",
                         -1, &ins, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "extent copy");
  }
  int rc = STORE_OK, src;
  uint64_t covered = off;
  while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t eo = (uint64_t)sqlite3_column_int64(st, 0);
    uint64_t el = (uint64_t)sqlite3_column_int64(st, 1);
    bool hole = sqlite3_column_type(st, 2) == SQLITE_NULL;
    uint8_t id[HASH_LEN];
    if (!hole) memcpy(id, sqlite3_column_blob(st, 2), HASH_LEN);
    uint64_t co = (uint64_t)sqlite3_column_int64(st, 3);
    if (eo != covered && !(eo < covered)) {
      rc = store__err(STORE_ERR_CORRUPT, "extent gap in source");
      break;
    }
    uint64_t a = eo < off ? off : eo;
    uint64_t b = eo + el > off + len ? off + len : eo + el;
    if (!hole) {
      rc = store__chunk_ref(s, c, id, 1);
      if (rc) break;
    }
    sqlite3_reset(ins);
    sqlite3_bind_int64(ins, 1, dst_cid);
    sqlite3_bind_int64(ins, 2, (int64_t)(dst_off + (a - off)));
    sqlite3_bind_int64(ins, 3, (int64_t)(b - a));
    if (hole) sqlite3_bind_null(ins, 4);
    else sqlite3_bind_blob(ins, 4, id, HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 5, (int64_t)(hole ? 0 : co + (a - eo)));
    src = sqlite3_step(ins);
    if (src != SQLITE_DONE) rc = store__sqlerr(c->db, src, "extent copy");
    covered = b;
  }
  if (!rc && covered != off + len)
    rc = store__err(STORE_ERR_CORRUPT, "source extents end early");
  sqlite3_finalize(st);
  sqlite3_finalize(ins);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Copy                                                                */
/* ------------------------------------------------------------------ */
struct copy_args {
  const char *sb, *sk, *db, *dk;
  const store_copy_opts *o;
  store_object_info *out;
  char etag[STORE_ETAG_MAX];
  int64_t mtime_ns;
  uint64_t ino, size;
};

static int copy_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct copy_args *a = arg;
  const store_copy_opts *o = a->o;
  const store_put_opts *p = o ? o->put : NULL;
  int64_t soid;
  store_object_info src;
  int rc = store__find_object(c, a->sb, a->sk, o ? o->src_version_id : NULL,
                              &soid, &src);
  if (rc) return rc;
  if (o && o->src_if_match && !store__etag_match(o->src_if_match, src.etag)) {
    store_object_info_free(&src);
    return store__err(STORE_ERR_PRECONDITION, "source etag differs");
  }
  int64_t dbid, cur = 0;
  uint64_t cur_ino = 0;
  rc = store__bucket_id(c, a->db, &dbid);
  if (!rc) rc = store__check_conditions(c, dbid, a->dk, p, &cur, &cur_ino);
  bool self = !rc && cur == soid;
  /* Attributes: copied, or replaced. */
  store_put_opts eff = {0};
  if (!rc) {
    bool rm = o && o->replace_meta;
    bool rt = o && o->replace_tags;
    eff.content_type = rm && p ? p->content_type : src.content_type;
    eff.meta = rm && p ? p->meta : src.meta;
    eff.n_meta = rm && p ? p->n_meta : src.n_meta;
    eff.headers = rm && p ? p->headers : src.headers;
    eff.n_headers = rm && p ? p->n_headers : src.n_headers;
    eff.posix = rm && p ? p->posix : NULL;
    eff.tags = rt && p ? p->tags : src.tags;
    eff.n_tags = rt && p ? p->n_tags : src.n_tags;
    rc = store__validate_put_opts(&eff);
  }
  char *meta = NULL, *headers = NULL, *tags = NULL;
  size_t ml = 0, hl = 0, tl = 0;
  if (!rc) rc = store__merge_meta(&eff, &meta, &ml);
  if (!rc) rc = store__kv_encode(eff.headers, eff.n_headers, &headers, &hl);
  if (!rc) rc = store__kv_encode(eff.tags, eff.n_tags, &tags, &tl);
  int64_t nid = 0;
  uint32_t mode = rc ? 0 : store__mode_from_blob(meta, ml);
  a->mtime_ns = store__now_ns();
  if (!rc && self) {
    /* Copy onto itself: a metadata change in place, same data and ino. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "UPDATE object SET content_type = ?2, meta = ?3,"
                           " headers = ?4, tags = ?5, mode = ?6,"
                           " mtime_ns = ?7 WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
      rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "copy");
    } else {
      sqlite3_bind_int64(st, 1, soid);
      if (eff.content_type)
        sqlite3_bind_text(st, 2, eff.content_type, -1, SQLITE_TRANSIENT);
      if (meta) sqlite3_bind_blob(st, 3, meta, (int)ml, SQLITE_TRANSIENT);
      if (headers) sqlite3_bind_blob(st, 4, headers, (int)hl, SQLITE_TRANSIENT);
      if (tags) sqlite3_bind_blob(st, 5, tags, (int)tl, SQLITE_TRANSIENT);
      sqlite3_bind_int(st, 6, (int)mode);
      sqlite3_bind_int64(st, 7, a->mtime_ns);
      rc = store__step_done(c, st, "copy");
      sqlite3_finalize(st);
    }
    nid = soid;
  } else if (!rc) {
    if (cur) rc = store__object_row_delete(c, cur);
    if (!rc)
      rc = store__insert_object(c, dbid, a->dk, 0, src.size, src.etag,
                                a->mtime_ns, src.parts, eff.content_type,
                                meta, ml, headers, hl, tags, tl,
                                src.checksum_algo, src.checksum,
                                src.checksum_composite, p ? p->owner : NULL,
                                mode, &nid);
    if (!rc) rc = store__extents_copy(s, c, soid, 0, src.size, nid, 0);
    if (!rc && src.parts) {
      char sql[256];
      snprintf(sql, sizeof sql,
               "INSERT INTO object_part SELECT %lld, part_number, off, size,"
               " etag, checksum FROM object_part WHERE object_id = %lld",
               (long long)nid, (long long)soid);
      int src2 = sqlite3_exec(c->db, sql, 0, 0, 0);
      if (src2 != SQLITE_OK) rc = store__sqlerr(c->db, src2, "copy parts");
    }
  }
  free(meta);
  free(headers);
  free(tags);
  if (!rc) rc = store__change(c, STORE_CHANGE_PUT, a->db, a->dk);
  if (!rc) {
    snprintf(a->etag, sizeof a->etag, "%s", src.etag);
    a->ino = self ? cur_ino : (uint64_t)nid;
    (void)nid;
    a->size = src.size;
  }
  store_object_info_free(&src);
  return rc;
}

int store_copy(store *s, const char *src_bucket, const char *src_key,
               const char *dst_bucket, const char *dst_key,
               const store_copy_opts *opts, store_object_info *out) {
  store__clear_err();
  if (out) memset(out, 0, sizeof *out);
  int rc = store_key_check(dst_key, dst_key ? strlen(dst_key) : 0);
  if (rc) return rc;
  if (opts && opts->put) {
    rc = store__validate_put_opts(opts->put);
    if (rc) return rc;
  }
  struct copy_args a = {.sb = src_bucket, .sk = src_key, .db = dst_bucket,
                        .dk = dst_key, .o = opts};
  rc = store__commit(s, copy_fn, &a);
  if (!rc && out) rc = store_head(s, dst_bucket, dst_key, NULL, out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Rename                                                              */
/* ------------------------------------------------------------------ */
static int rename_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct key_args *a = arg;
  int64_t bid, src, dst = 0;
  uint64_t ino;
  int rc = store__bucket_id(c, a->bucket, &bid);
  if (!rc) rc = store__find_object(c, a->bucket, a->key, NULL, &src, NULL);
  if (!rc) rc = store__check_conditions(c, bid, a->key2, NULL, &dst, &ino);
  if (rc) return rc;
  if (src == dst) return STORE_OK;
  if (dst) {
    if (a->flag)
      return store__err(STORE_ERR_EXISTS, "%s already exists", a->key2);
    rc = store__object_row_delete(c, dst);
    if (rc) return rc;
  }
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, "UPDATE object SET key = ?2 WHERE id = ?1", -1,
                         &st, NULL) != SQLITE_OK)
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "rename");
  sqlite3_bind_int64(st, 1, src);
  sqlite3_bind_text(st, 2, a->key2, -1, SQLITE_STATIC);
  rc = store__step_done(c, st, "rename");
  sqlite3_finalize(st);
  if (!rc) rc = store__change(c, STORE_CHANGE_DELETE, a->bucket, a->key);
  if (!rc) rc = store__change(c, STORE_CHANGE_PUT, a->bucket, a->key2);
  return rc;
}

int store_rename(store *s, const char *bucket, const char *src,
                 const char *dst, int noreplace) {
  store__clear_err();
  int rc = store_key_check(dst, dst ? strlen(dst) : 0);
  if (rc) return rc;
  struct key_args a = {.bucket = bucket, .key = src, .key2 = dst,
                       .flag = noreplace};
  return store__commit(s, rename_fn, &a);
}

static int rename_prefix_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct key_args *a = arg;
  int64_t bid;
  int rc = store__bucket_id(c, a->bucket, &bid);
  if (rc) return rc;
  char *src_end = store__prefix_end(a->key);
  char *dst_end = store__prefix_end(a->key2);
  sqlite3_stmt *st = NULL;
  if (!src_end || !dst_end) {
    rc = STORE_ERR_NOMEM;
    goto out;
  }
  /* The target may hold only its own marker (an empty directory). */
  if (sqlite3_prepare_v2(c->db,
                         "SELECT 1 FROM object WHERE bucket_id = ?1 AND"
                         " key > ?2 AND key < ?3 LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "rename prefix");
    goto out;
  }
  sqlite3_bind_int64(st, 1, bid);
  sqlite3_bind_text(st, 2, a->key2, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, dst_end, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    rc = store__err(STORE_ERR_EXISTS, "target %s is not empty", a->key2);
    goto out;
  }
  sqlite3_finalize(st);
  st = NULL;
  int64_t marker = 0;
  rc = store__check_conditions(c, bid, a->key2, NULL, &marker, NULL);
  if (!rc && marker) rc = store__object_row_delete(c, marker);
  if (rc) goto out;
  if (sqlite3_prepare_v2(c->db,
                         "UPDATE object SET key = ?4 || substr(key,"
                         " length(?2) + 1) WHERE bucket_id = ?1 AND"
                         " key >= ?2 AND key < ?3",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = store__sqlerr(c->db, sqlite3_errcode(c->db), "rename prefix");
    goto out;
  }
  sqlite3_bind_int64(st, 1, bid);
  sqlite3_bind_text(st, 2, a->key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, src_end, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, a->key2, -1, SQLITE_STATIC);
  rc = store__step_done(c, st, "rename prefix");
  if (!rc) a->count = (uint64_t)sqlite3_changes(c->db);
  if (!rc && a->count == 0)
    rc = store__err(STORE_ERR_NO_KEY, "nothing under %s", a->key);
  if (!rc) rc = store__change(c, STORE_CHANGE_PREFIX, a->bucket, a->key);
  if (!rc) rc = store__change(c, STORE_CHANGE_PREFIX, a->bucket, a->key2);
out:
  sqlite3_finalize(st);
  free(src_end);
  free(dst_end);
  return rc;
}

int store_rename_prefix(store *s, const char *bucket, const char *src_prefix,
                        const char *dst_prefix, uint64_t *renamed) {
  store__clear_err();
  if (renamed) *renamed = 0;
  if (!src_prefix || !dst_prefix || !*src_prefix || !*dst_prefix)
    return store__err(STORE_ERR_INVALID, "empty prefix");
  int rc = store_key_check(dst_prefix, strlen(dst_prefix));
  if (rc) return rc;
  size_t sl = strlen(src_prefix);
  if (!strncmp(dst_prefix, src_prefix, sl))
    return store__err(STORE_ERR_INVALID, "cannot move %s into itself",
                      src_prefix);
  struct key_args a = {.bucket = bucket, .key = src_prefix, .key2 = dst_prefix};
  rc = store__commit(s, rename_prefix_fn, &a);
  if (!rc && renamed) *renamed = a.count;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Attribute updates in place                                          */
/* ------------------------------------------------------------------ */
enum { SET_TAGS, SET_META, SET_POSIX, SET_CTYPE };

static int attr_set_fn(store *s, conn *c, void *arg) {
  (void)s;
  struct key_args *a = arg;
  int64_t oid;
  store_object_info info;
  int rc = store__find_object(c, a->bucket, a->key, NULL, &oid, &info);
  if (rc) return rc;
  char *blob = NULL;
  size_t len = 0;
  const char *col = "tags";
  store_put_opts o = {0};
  if (a->flag == SET_CTYPE) {
    store_object_info_free(&info);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "UPDATE object SET content_type = ?2 WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
      return store__sqlerr(c->db, sqlite3_errcode(c->db), "content type");
    sqlite3_bind_int64(st, 1, oid);
    if (a->key2) sqlite3_bind_text(st, 2, a->key2, -1, SQLITE_STATIC);
    rc = store__step_done(c, st, "content type");
    sqlite3_finalize(st);
    if (!rc) rc = store__change(c, STORE_CHANGE_PUT, a->bucket, a->key);
    return rc;
  }
  if (a->flag == SET_TAGS) {
    rc = store__kv_encode(a->kv, a->n, &blob, &len);
  } else {
    col = "meta";
    if (a->flag == SET_META) {
      o.meta = a->kv;
      o.n_meta = a->n;
      rc = store__validate_put_opts(&o);
    } else {
      o.meta = info.meta;
      o.n_meta = info.n_meta;
      /* keep existing POSIX fields the update leaves out */
      store_posix merged;
      store_posix_from_info(&info, &merged);
      const store_posix *p = a->posix;
      if (p->has_mode) { merged.has_mode = 1; merged.mode = p->mode; }
      if (p->has_uid) { merged.has_uid = 1; merged.uid = p->uid; }
      if (p->has_gid) { merged.has_gid = 1; merged.gid = p->gid; }
      if (p->has_mtime) { merged.has_mtime = 1; merged.mtime_ns = p->mtime_ns; }
      if (p->has_atime) { merged.has_atime = 1; merged.atime_ns = p->atime_ns; }
      if (p->has_ctime) { merged.has_ctime = 1; merged.ctime_ns = p->ctime_ns; }
      o.posix = &merged;
      rc = store__merge_meta(&o, &blob, &len);
      o.posix = NULL;
      goto store_it;
    }
    if (!rc) rc = store__merge_meta(&o, &blob, &len);
  }
store_it:
  store_object_info_free(&info);
  if (rc) return rc;
  char sql[96];
  snprintf(sql, sizeof sql, "UPDATE object SET %s = ?2, mode = ?3 WHERE id = ?1",
           col);
  if (a->flag == SET_TAGS)
    snprintf(sql, sizeof sql, "UPDATE object SET tags = ?2 WHERE id = ?1");
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
    free(blob);
    return store__sqlerr(c->db, sqlite3_errcode(c->db), "attributes");
  }
  sqlite3_bind_int64(st, 1, oid);
  if (blob) sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, 2);
  if (a->flag != SET_TAGS)
    sqlite3_bind_int(st, 3, (int)store__mode_from_blob(blob, len));
  rc = store__step_done(c, st, "attributes");
  sqlite3_finalize(st);
  free(blob);
  if (!rc) rc = store__change(c, STORE_CHANGE_PUT, a->bucket, a->key);
  return rc;
}

int store_object_tags_set(store *s, const char *bucket, const char *key,
                          const store_kv *tags, size_t n) {
  store__clear_err();
  if (n > STORE_TAGS_MAX)
    return store__err(STORE_ERR_TOO_LARGE, "more than %d tags",
                      STORE_TAGS_MAX);
  struct key_args a = {.bucket = bucket, .key = key, .flag = SET_TAGS,
                       .kv = tags, .n = n};
  return store__commit(s, attr_set_fn, &a);
}

int store_object_meta_set(store *s, const char *bucket, const char *key,
                          const store_kv *meta, size_t n) {
  store__clear_err();
  struct key_args a = {.bucket = bucket, .key = key, .flag = SET_META,
                       .kv = meta, .n = n};
  return store__commit(s, attr_set_fn, &a);
}

int store_object_content_type_set(store *s, const char *bucket,
                                  const char *key, const char *content_type) {
  store__clear_err();
  struct key_args a = {.bucket = bucket, .key = key, .flag = SET_CTYPE,
                       .key2 = content_type};
  return store__commit(s, attr_set_fn, &a);
}

int store_object_posix_set(store *s, const char *bucket, const char *key,
                           const store_posix *posix) {
  store__clear_err();
  if (!posix) return store__err(STORE_ERR_INVALID, "no attributes");
  struct key_args a = {.bucket = bucket, .key = key, .flag = SET_POSIX,
                       .posix = posix};
  return store__commit(s, attr_set_fn, &a);
}

/* ------------------------------------------------------------------ */
/* Listing                                                             */
/* ------------------------------------------------------------------ */
static int push_prefix(store_list_result *r, size_t *cap, const char *p,
                       size_t n) {
  if (r->n_prefixes == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    char **np = realloc(r->prefixes, *cap * sizeof *np);
    if (!np) return STORE_ERR_NOMEM;
    r->prefixes = np;
  }
  char *d = malloc(n + 1);
  if (!d) return STORE_ERR_NOMEM;
  memcpy(d, p, n);
  d[n] = 0;
  r->prefixes[r->n_prefixes++] = d;
  return STORE_OK;
}

static char *mem_dup(const char *p, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, p, n);
    d[n] = 0;
  }
  return d;
}

/* Lower bound for a listing that resumes after `marker`: if the marker is
 * inside a common prefix (or is one), everything under that prefix was
 * already reported, so resume after the whole prefix. */
static char *resume_bound(const char *prefix, const char *delim,
                          const char *marker) {
  size_t pl = strlen(prefix), ml = strlen(marker);
  if (delim && *delim && ml >= pl && !strncmp(marker, prefix, pl)) {
    const char *d = strstr(marker + pl, delim);
    if (d) {
      size_t cl = (size_t)(d - marker) + strlen(delim);
      char *b = malloc(cl + 2);
      if (!b) return NULL;
      memcpy(b, marker, cl);
      b[cl] = (char)0xff;
      b[cl + 1] = 0;
      return b;
    }
  }
  return strdup(marker);
}

/* Bind the single inclusive lower bound of a listing query: the larger of
 * `prefix` and the smallest key after the exclusive bound `after` (that is
 * after + NUL: keys never contain NUL).  One bound lets SQLite seek the
 * index straight to it. */
static void bind_lower(sqlite3_stmt *st, const char *after,
                       const char *prefix) {
  size_t al = strlen(after) + 1, pl = strlen(prefix);
  size_t n = al < pl ? al : pl;
  int c = memcmp(after, prefix, n);
  if (c > 0 || (c == 0 && al > pl))
    sqlite3_bind_text(st, 2, after, (int)al, SQLITE_TRANSIENT);
  else
    sqlite3_bind_text(st, 2, prefix, (int)pl, SQLITE_STATIC);
}

int store_list(store *s, const char *bucket, const store_list_opts *opts,
               store_list_result *out) {
  store__clear_err();
  memset(out, 0, sizeof *out);
  const char *prefix = opts && opts->prefix ? opts->prefix : "";
  const char *delim = opts && opts->delimiter && *opts->delimiter
                          ? opts->delimiter : NULL;
  const char *marker = opts && opts->start_after ? opts->start_after : "";
  uint32_t max = opts && opts->max_keys ? opts->max_keys : 1000;
  if (max > 1000) max = 1000;
  size_t pl = strlen(prefix), dl = delim ? strlen(delim) : 0;

  conn *c;
  int rc = store__conn_get(s, &c);
  if (rc) return rc;
  int64_t bid;
  rc = store__bucket_id(c, bucket, &bid);
  if (rc) {
    store__conn_put(s, c);
    return rc;
  }
  char *lower = resume_bound(prefix, delim, marker);
  char *upper = pl ? store__prefix_end(prefix) : NULL;
  if (!lower || (pl && !upper)) {
    free(lower);
    free(upper);
    store__conn_put(s, c);
    return STORE_ERR_NOMEM;
  }
  sqlite3_stmt *st = store__stmt(c, upper ? ST_LIST_BOUNDED : ST_LIST_OPEN);
  if (!st) {
    free(lower);
    free(upper);
    store__conn_put(s, c);
    return STORE_ERR_IO;
  }
  size_t cap_e = 0, cap_p = 0, count = 0;
  const char *last = NULL;
  size_t last_len = 0;
  bool restart = true, more = false;
  /* A read transaction gives the whole page one snapshot. */
  sqlite3_exec(c->db, "BEGIN", 0, 0, 0);
  while (restart && !rc) {
    restart = false;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, bid);
    bind_lower(st, lower, prefix);
    if (upper) sqlite3_bind_text(st, 4, upper, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, (int)(max - count) + 1);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
      const char *key = (const char *)sqlite3_column_text(st, 0);
      size_t kl = (size_t)sqlite3_column_bytes(st, 0);
      if (count == max) {
        more = true;
        break;
      }
      const char *d = delim && kl > pl ? strstr(key + pl, delim) : NULL;
      if (d) {
        size_t cl = (size_t)(d - key) + dl;
        rc = push_prefix(out, &cap_p, key, cl);
        if (rc) break;
        count++;
        last = out->prefixes[out->n_prefixes - 1];
        last_len = cl;
        /* Skip everything under this prefix and query again. */
        char *nb = malloc(cl + 2);
        if (!nb) {
          rc = STORE_ERR_NOMEM;
          break;
        }
        memcpy(nb, key, cl);
        nb[cl] = (char)0xff;
        nb[cl + 1] = 0;
        free(lower);
        lower = nb;
        restart = true;
        break;
      }
      if (out->n_entries == cap_e) {
        cap_e = cap_e ? cap_e * 2 : 64;
        store_list_entry *ne = realloc(out->entries, cap_e * sizeof *ne);
        if (!ne) {
          rc = STORE_ERR_NOMEM;
          break;
        }
        out->entries = ne;
      }
      store_list_entry *e = &out->entries[out->n_entries];
      memset(e, 0, sizeof *e);
      e->key = mem_dup(key, kl);
      if (!e->key) {
        rc = STORE_ERR_NOMEM;
        break;
      }
      out->n_entries++;
      snprintf(e->version_id, sizeof e->version_id, "%s",
               (const char *)sqlite3_column_text(st, 1));
      e->size = (uint64_t)sqlite3_column_int64(st, 2);
      snprintf(e->etag, sizeof e->etag, "%s",
               (const char *)sqlite3_column_text(st, 3));
      e->mtime_ns = sqlite3_column_int64(st, 4);
      e->ino = (uint64_t)sqlite3_column_int64(st, 5);
      e->mode = (uint32_t)sqlite3_column_int(st, 6);
      snprintf(e->owner, sizeof e->owner, "%s",
               (const char *)sqlite3_column_text(st, 7));
      count++;
      last = e->key;
      last_len = kl;
    }
    if (!rc && src != SQLITE_ROW && src != SQLITE_DONE)
      rc = store__sqlerr(c->db, src, "list");
    if (count == max && restart && !rc) {
      /* Page full after a prefix: is there anything beyond it? */
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, bid);
      bind_lower(st, lower, prefix);
      if (upper) sqlite3_bind_text(st, 4, upper, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 5, 1);
      more = sqlite3_step(st) == SQLITE_ROW;
      restart = false;
    }
  }
  sqlite3_reset(st);
  sqlite3_exec(c->db, "COMMIT", 0, 0, 0);
  store__conn_put(s, c);
  free(lower);
  free(upper);
  if (!rc && more) {
    out->truncated = 1;
    out->next_marker = mem_dup(last, last_len);
    if (!out->next_marker) rc = STORE_ERR_NOMEM;
  }
  if (rc) store_list_result_free(out);
  return rc;
}

void store_list_result_free(store_list_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_entries; i++) free(r->entries[i].key);
  free(r->entries);
  for (size_t i = 0; i < r->n_prefixes; i++) free(r->prefixes[i]);
  free(r->prefixes);
  free(r->next_marker);
  memset(r, 0, sizeof *r);
}
