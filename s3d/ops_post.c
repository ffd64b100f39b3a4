/*
 * ops_post.c -- PostObject: browser uploads to a bucket with
 * multipart/form-data, authenticated by a SigV4-signed policy document.
 *
 * The form is parsed as it streams (libmicrohttpd's post processor).  S3
 * requires the `file` field to come last, so when its first bytes arrive
 * every other field is known: the policy signature and conditions are
 * checked then, before one byte is written.  The file streams into a
 * store_writer; it is committed only after the whole body arrived and
 * content-length-range holds (otherwise the writer is aborted).  Fields
 * after `file` are ignored, as S3 does.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/memops.h>

#include "range.h"
#include "s3d.h"
#include "urlenc.h"
#include "xmlout.h"

#define POLICY_MAX (64 * 1024)

struct post_state {
  struct MHD_PostProcessor *pp;
  struct post_field f[POST_FIELDS_MAX]; /* POST_FIELDS_MAX: s3d.h */
  size_t nf;
  size_t fbytes;
  int saw_file;
  int file_done;
  char *key;
  uint64_t size;
  int has_range;
  uint64_t min_len, max_len;
  enum s3err err;
  const char *err_msg;
  char *file_ct; /* Content-Type of the file part */
};

static void post_state_free(struct req *r) {
  struct post_state *ps = r->op;
  if (!ps) return;
  if (ps->pp) MHD_destroy_post_processor(ps->pp);
  for (size_t i = 0; i < ps->nf; i++) {
    free(ps->f[i].name);
    free(ps->f[i].value);
  }
  free(ps->key);
  free(ps->file_ct);
  free(ps);
  r->op = NULL;
}

static const char *form_value(const struct post_field *f, size_t nf,
                              const char *name) {
  for (size_t i = 0; i < nf; i++)
    if (!strcasecmp(f[i].name, name)) return f[i].value;
  return NULL;
}

static const char *field(struct post_state *ps, const char *name) {
  return form_value(ps->f, ps->nf, name);
}

static void post_fail(struct post_state *ps, enum s3err e, const char *msg) {
  if (ps->err) return;
  ps->err = e;
  ps->err_msg = msg;
}

/* ------------------------------------------------------------------ */
/* A minimal JSON reader for policy documents.                        */
/* ------------------------------------------------------------------ */
enum jt { J_NULL, J_STR, J_NUM, J_ARR, J_OBJ, J_BOOL };
struct jv {
  enum jt t;
  char *s;          /* J_STR; for J_NUM the literal */
  struct jv *items; /* J_ARR / J_OBJ values */
  char **keys;      /* J_OBJ */
  size_t n;
};

static void jv_free(struct jv *v) {
  if (!v) return;
  free(v->s);
  for (size_t i = 0; i < v->n; i++) {
    jv_free(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

struct jp {
  const char *p, *end;
  int depth;
};

static void ws(struct jp *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
                           *j->p == '\r'))
    j->p++;
}

static int jstr(struct jp *j, char **out) {
  if (j->p >= j->end || *j->p != '"') return -1;
  j->p++;
  struct s3buf b;
  s3buf_init(&b, POLICY_MAX);
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if ((unsigned char)c < 0x20) break;
    if (c == '\\') {
      if (j->p >= j->end) break;
      char e = *j->p++;
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case '/': case '\\': case '"': c = e; break;
      case 'u': {
        if (j->end - j->p < 4) goto bad;
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
          char h = *j->p++;
          v <<= 4;
          if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
          else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
          else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
          else goto bad;
        }
        if (v == 0) goto bad;
        char u[3];
        size_t ul;
        if (v < 0x80) { u[0] = (char)v; ul = 1; }
        else if (v < 0x800) {
          u[0] = (char)(0xC0 | (v >> 6));
          u[1] = (char)(0x80 | (v & 0x3F));
          ul = 2;
        } else {
          u[0] = (char)(0xE0 | (v >> 12));
          u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
          u[2] = (char)(0x80 | (v & 0x3F));
          ul = 3;
        }
        s3buf_add(&b, u, ul);
        continue;
      }
      default: goto bad;
      }
    }
    s3buf_addc(&b, c);
  }
  if (j->p >= j->end || *j->p != '"') goto bad;
  j->p++;
  *out = s3buf_take(&b, NULL);
  return *out ? 0 : -1;
bad:
  s3buf_free(&b);
  return -1;
}

static int jvalue(struct jp *j, struct jv *v) {
  memset(v, 0, sizeof *v);
  ws(j);
  if (j->p >= j->end || ++j->depth > 8) return -1;
  int rc = 0;
  char c = *j->p;
  if (c == '"') {
    v->t = J_STR;
    rc = jstr(j, &v->s);
  } else if (c == '[' || c == '{') {
    int obj = c == '{';
    v->t = obj ? J_OBJ : J_ARR;
    j->p++;
    size_t cap = 0;
    ws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
      j->p++;
    } else {
      for (;;) {
        if (v->n >= 256) { rc = -1; break; }
        if (v->n == cap) {
          cap = cap ? cap * 2 : 8;
          struct jv *ni = realloc(v->items, cap * sizeof *ni);
          if (!ni) { rc = -1; break; }
          v->items = ni;
          if (obj) {
            char **nk = realloc(v->keys, cap * sizeof *nk);
            if (!nk) { rc = -1; break; }
            v->keys = nk;
          }
        }
        char *k = NULL;
        if (obj) {
          ws(j);
          if (jstr(j, &k)) { rc = -1; break; }
          ws(j);
          if (j->p >= j->end || *j->p != ':') { free(k); rc = -1; break; }
          j->p++;
        }
        if (obj) v->keys[v->n] = k;
        rc = jvalue(j, &v->items[v->n]);
        v->n++;
        if (rc) break;
        ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) { j->p++; break; }
        rc = -1;
        break;
      }
    }
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    const char *s = j->p;
    while (j->p < j->end && (*j->p == '-' || *j->p == '+' || *j->p == '.' ||
                             *j->p == 'e' || *j->p == 'E' ||
                             (*j->p >= '0' && *j->p <= '9')))
      j->p++;
    v->t = J_NUM;
    v->s = strndup(s, (size_t)(j->p - s));
    if (!v->s) rc = -1;
  } else if (j->end - j->p >= 4 && !memcmp(j->p, "true", 4)) {
    v->t = J_BOOL; j->p += 4;
  } else if (j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) {
    v->t = J_BOOL; j->p += 5;
  } else if (j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
    v->t = J_NULL; j->p += 4;
  } else {
    rc = -1;
  }
  j->depth--;
  return rc;
}

/* "2030-01-01T00:00:00[.fff]Z" -> time_t; -1 when malformed. */
static int parse_iso8601(const char *s, time_t *out) {
  size_t n = strlen(s);
  if (n < 20) return -1;
  int v[6];
  static const int pos[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
  for (int i = 0; i < 6; i++) {
    v[i] = 0;
    for (int k = 0; k < len[i]; k++) {
      char c = s[pos[i] + k];
      if (c < '0' || c > '9') return -1;
      v[i] = v[i] * 10 + (c - '0');
    }
  }
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[n - 1] != 'Z' || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
      v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
    return -1;
  int64_t days = s3_days_from_civil(v[0], (unsigned)v[1], (unsigned)v[2]);
  *out = (time_t)(days * 86400 + v[3] * 3600 + v[4] * 60 + v[5]);
  return 0;
}

static int is_num(const struct jv *v, uint64_t *out) {
  const char *s = v->t == J_NUM || v->t == J_STR ? v->s : NULL;
  if (!s || !*s) return 0;
  char *end;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || s[0] == '-') return 0;
  *out = x;
  return 1;
}

/* The form value a policy condition names ("$key" -> field key). */
static const char *cond_value(const char *bucket, const char *key,
                              const struct post_field *f, size_t nf,
                              const char *name) {
  if (name[0] == '$') name++;
  if (!strcasecmp(name, "bucket")) return bucket;
  if (!strcasecmp(name, "key")) return key;
  return form_value(f, nf, name);
}

enum s3err post_policy_check(const char *pol, size_t pl, time_t now,
                             const char *bucket, const char *key,
                             const struct post_field *f, size_t nf,
                             struct post_limits *lim, const char **msg) {
  memset(lim, 0, sizeof *lim);
  *msg = NULL;
  size_t dl = 0;
  if (pl > POLICY_MAX) {
    *msg = "policy too large";
    return S3E_InvalidArgument;
  }
  char *doc = malloc(pl + 1);
  if (!doc || s3_base64_decode((uint8_t *)doc, pl, pol, pl, &dl)) {
    free(doc);
    *msg = "Invalid Policy: Invalid base64";
    return S3E_InvalidArgument;
  }
  struct jp j = {doc, doc + dl, 0};
  struct jv root;
  int bad = jvalue(&j, &root);
  free(doc);
  if (bad || root.t != J_OBJ) {
    jv_free(&root);
    *msg = "Invalid Policy: Invalid JSON";
    return S3E_MalformedPOSTRequest;
  }
  const struct jv *exp = NULL, *conds = NULL;
  for (size_t i = 0; i < root.n; i++) {
    if (!strcmp(root.keys[i], "expiration")) exp = &root.items[i];
    if (!strcmp(root.keys[i], "conditions")) conds = &root.items[i];
  }
  time_t et;
  if (!exp || exp->t != J_STR || parse_iso8601(exp->s, &et) || !conds ||
      conds->t != J_ARR) {
    jv_free(&root);
    *msg = "Invalid Policy: expiration and conditions are required";
    return S3E_MalformedPOSTRequest;
  }
  if (now > et) {
    jv_free(&root);
    *msg = "Invalid according to Policy: Policy expired.";
    return S3E_AccessDenied;
  }
  /* Every condition must hold; every field must be covered by one. */
  int covered[POST_FIELDS_MAX] = {0};
  const char *fail = NULL;
  for (size_t i = 0; i < conds->n && !fail; i++) {
    const struct jv *c = &conds->items[i];
    const char *name = NULL, *op = "eq", *val = NULL;
    if (c->t == J_OBJ && c->n == 1 && c->items[0].t == J_STR) {
      name = c->keys[0];
      val = c->items[0].s;
    } else if (c->t == J_ARR && c->n == 3 && c->items[0].t == J_STR) {
      op = c->items[0].s;
      if (!strcasecmp(op, "content-length-range")) {
        if (!is_num(&c->items[1], &lim->min_len) ||
            !is_num(&c->items[2], &lim->max_len)) {
          fail = "Invalid Policy: bad content-length-range";
          break;
        }
        lim->has_range = 1;
        continue;
      }
      if (c->items[1].t != J_STR || c->items[2].t != J_STR) {
        fail = "Invalid Policy: bad condition";
        break;
      }
      name = c->items[1].s;
      val = c->items[2].s;
    } else {
      fail = "Invalid Policy: bad condition";
      break;
    }
    const char *bare = name[0] == '$' ? name + 1 : name;
    for (size_t k = 0; k < nf; k++)
      if (!strcasecmp(f[k].name, bare)) covered[k] = 1;
    const char *have = cond_value(bucket, key, f, nf, name);
    if (!strcasecmp(op, "eq")) {
      if (!have || strcmp(have, val)) fail = "Invalid according to Policy: "
                                             "Policy Condition failed";
    } else if (!strcasecmp(op, "starts-with")) {
      if (!have || strncmp(have, val, strlen(val)))
        fail = "Invalid according to Policy: Policy Condition failed";
    } else {
      fail = "Invalid Policy: unknown condition operator";
    }
  }
  for (size_t k = 0; k < nf && !fail; k++) {
    const char *n = f[k].name;
    if (covered[k] || !strcasecmp(n, "policy") ||
        !strcasecmp(n, "x-amz-signature") || !strcasecmp(n, "file") ||
        !strncasecmp(n, "x-ignore-", 9) || !strcasecmp(n, "bucket"))
      continue;
    fail = "Invalid according to Policy: Extra input fields";
  }
  jv_free(&root);
  if (fail) {
    *msg = fail;
    return S3E_AccessDenied;
  }
  return S3E_NONE;
}

/* Check the policy and its signature; 0 or sets ps->err. */
static int check_policy(struct req *r, struct post_state *ps) {
  const char *pol = field(ps, "policy");
  const char *alg = field(ps, "x-amz-algorithm");
  const char *cred = field(ps, "x-amz-credential");
  const char *date = field(ps, "x-amz-date");
  const char *sig = field(ps, "x-amz-signature");
  if (!pol) {
    post_fail(ps, S3E_AccessDenied, "Anonymous POST uploads are not allowed");
    return -1;
  }
  if (!alg || strcmp(alg, "AWS4-HMAC-SHA256") || !cred || !date || !sig ||
      strlen(sig) != 64) {
    post_fail(ps, S3E_InvalidArgument,
              "POST requires x-amz-algorithm AWS4-HMAC-SHA256, "
              "x-amz-credential, x-amz-date and x-amz-signature");
    return -1;
  }
  /* Credential: AK/YYYYMMDD/region/s3/aws4_request (split from the right) */
  char cb[512];
  if (strlen(cred) >= sizeof cb) {
    post_fail(ps, S3E_InvalidArgument, "x-amz-credential is too long");
    return -1;
  }
  memcpy(cb, cred, strlen(cred) + 1);
  char *parts[5];
  for (int i = 4; i > 0; i--) {
    char *sl = strrchr(cb, '/');
    if (!sl) {
      post_fail(ps, S3E_InvalidArgument, "malformed x-amz-credential");
      return -1;
    }
    *sl = 0;
    parts[i] = sl + 1;
  }
  parts[0] = cb;
  if (strlen(parts[1]) != 8 || strcmp(parts[3], "s3") ||
      strcmp(parts[4], "aws4_request") || strncmp(date, parts[1], 8) ||
      (g_s3d.cfg.region && strcmp(parts[2], g_s3d.cfg.region))) {
    post_fail(ps, S3E_InvalidArgument, "malformed x-amz-credential scope");
    return -1;
  }
  char secret[S3SIG_MAX_SECRET + 1];
  size_t sl = auth_secret(NULL, parts[0], secret, sizeof secret);
  if (!sl) {
    post_fail(ps, S3E_InvalidAccessKeyId, NULL);
    return -1;
  }
  uint8_t key[32];
  s3sig_signing_key(secret, sl, parts[1], parts[2], "s3", key);
  memset(secret, 0, sizeof secret);
  char want[65], got[65];
  s3sig_hmac_hex(key, pol, strlen(pol), want);
  memset(key, 0, sizeof key);
  for (int i = 0; i < 64; i++) got[i] = (char)tolower((unsigned char)sig[i]);
  got[64] = 0;
  if (!memeql_sec(want, got, 64)) {
    post_fail(ps, S3E_SignatureDoesNotMatch, NULL);
    return -1;
  }
  snprintf(r->auth.access_key, sizeof r->auth.access_key, "%s", parts[0]);
  /* Bucket ownership, now that the form's signer is known (server.c's
     authz_request() does this for every other operation). */
  enum s3err oe = authz_bucket(r, r->bucket);
  if (oe) {
    post_fail(ps, oe, NULL);
    return -1;
  }

  /* The policy document. */
  struct post_limits lim;
  const char *msg;
  enum s3err e = post_policy_check(pol, strlen(pol), time(NULL), r->bucket,
                                   ps->key, ps->f, ps->nf, &lim, &msg);
  if (e) {
    post_fail(ps, e, msg);
    return -1;
  }
  ps->has_range = lim.has_range;
  ps->min_len = lim.min_len;
  ps->max_len = lim.max_len;
  return 0;
}

char *post_object_key(const char *k, const char *filename) {
  /* ${filename} is replaced by the uploaded file's name. */
  const char *fn = filename ? filename : "";
  const char *sl = strrchr(fn, '/');
  if (sl) fn = sl + 1;
  const char *ph = strstr(k, "${filename}");
  if (!ph) return strdup(k);
  size_t n = strlen(k) - 11 + strlen(fn);
  char *key = malloc(n + 1);
  if (key) snprintf(key, n + 1, "%.*s%s%s", (int)(ph - k), k, fn, ph + 11);
  return key;
}

/* The first bytes of `file`: all fields are in; authorise and open. */
static int start_file(struct req *r, struct post_state *ps,
                      const char *filename) {
  const char *k = field(ps, "key");
  if (!k) {
    post_fail(ps, S3E_InvalidArgument, "Bucket POST must contain a field "
                                       "named 'key'.");
    return -1;
  }
  ps->key = post_object_key(k, filename);
  if (!ps->key) {
    post_fail(ps, S3E_SlowDown, NULL);
    return -1;
  }
  if (strlen(ps->key) > STORE_KEY_MAX) {
    post_fail(ps, S3E_KeyTooLongError, NULL);
    return -1;
  }
  if (check_policy(r, ps)) return -1;
  r->body.active = 1; /* owns the writer: aborted unless committed */
  r->body.sink = SINK_WRITER;
  int rc = store_writer_open(g_s3d.st, r->bucket, ps->key, &r->body.w);
  if (rc) {
    post_fail(ps, s3err_from_rc(rc), NULL);
    return -1;
  }
  return 0;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *filename,
                                 const char *content_type,
                                 const char *transfer_encoding,
                                 const char *data, uint64_t off, size_t size) {
  (void)kind;
  (void)transfer_encoding;
  struct req *r = cls;
  struct post_state *ps = r->op;
  if (ps->err) return MHD_NO;
  if (!key) { /* MHD passes NULL for a part without a name="..." */
    post_fail(ps, S3E_MalformedPOSTRequest, "a form part has no name");
    return MHD_NO;
  }
  if (ps->file_done) return MHD_YES; /* fields after the file: ignored */
  if (!strcmp(key, "file")) {
    if (!ps->saw_file) {
      ps->saw_file = 1;
      if (content_type) ps->file_ct = strdup(content_type);
      if (start_file(r, ps, filename)) return MHD_NO;
    }
    if (size) {
      if (ps->size + size > S3D_MAX_PUT ||
          (ps->has_range && ps->size + size > ps->max_len)) {
        post_fail(ps, S3E_EntityTooLarge, "Your proposed upload exceeds the "
                                          "maximum allowed size");
        return MHD_NO;
      }
      int rc = store_write(r->body.w, data, size);
      if (rc) {
        post_fail(ps, s3err_from_rc(rc), NULL);
        return MHD_NO;
      }
      ps->size += size;
    }
    return MHD_YES;
  }
  if (ps->saw_file) {
    ps->file_done = 1;
    return MHD_YES;
  }
  const char *msg = NULL;
  enum s3err e =
      post_field_add(ps->f, &ps->nf, &ps->fbytes, key, off, data, size, &msg);
  if (e) {
    post_fail(ps, e, msg);
    return MHD_NO;
  }
  return MHD_YES;
}

enum s3err post_field_add(struct post_field *f, size_t *nf, size_t *fbytes,
                          const char *key, uint64_t off, const char *data,
                          size_t size, const char **msg) {
  *msg = NULL;
  *fbytes += size + strlen(key);
  if (*fbytes > POST_FIELDS_BYTES) {
    *msg = "form fields too large";
    return S3E_MaxMessageLengthExceeded;
  }
  struct post_field *cur = NULL;
  if (off > 0 && *nf && !strcmp(f[*nf - 1].name, key)) cur = &f[*nf - 1];
  if (!cur) {
    if (*nf >= POST_FIELDS_MAX) {
      *msg = "too many form fields";
      return S3E_MalformedPOSTRequest;
    }
    cur = &f[(*nf)++];
    cur->name = strdup(key);
    cur->value = calloc(1, 1);
    cur->len = 0;
    if (!cur->name || !cur->value) return S3E_SlowDown;
  }
  char *nv = realloc(cur->value, cur->len + size + 1);
  if (!nv) return S3E_SlowDown;
  memcpy(nv + cur->len, data, size);
  cur->len += size;
  nv[cur->len] = 0;
  cur->value = nv;
  return S3E_NONE;
}

void post_feed(struct req *r, const char *p, size_t n) {
  struct post_state *ps = r->op;
  if (!ps || !ps->pp || ps->err) return;
  if (MHD_post_process(ps->pp, p, n) != MHD_YES && !ps->err)
    post_fail(ps, S3E_MalformedPOSTRequest, NULL);
}

static void post_end(struct req *r) {
  struct post_state *ps = r->op;
  if (ps->pp) {
    if (MHD_destroy_post_processor(ps->pp) != MHD_YES && !ps->err)
      post_fail(ps, S3E_MalformedPOSTRequest, NULL);
    ps->pp = NULL;
  }
  if (ps->err) return reply_error(r, ps->err, ps->err_msg);
  if (!ps->saw_file)
    return reply_error(r, S3E_InvalidArgument,
                       "POST requires exactly one file upload per request.");
  if (ps->has_range && (ps->size < ps->min_len || ps->size > ps->max_len))
    return reply_error(r, ps->size < ps->min_len ? S3E_EntityTooSmall
                                                 : S3E_EntityTooLarge,
                       NULL);
  /* Object attributes from the form (fields named like the headers). */
  store_kv meta[64], hdrs[8];
  size_t nm = 0, nh = 0, mbytes = 0;
  static const char *sys[] = {"Content-Encoding", "Content-Disposition",
                              "Content-Language", "Cache-Control", "Expires",
                              NULL};
  for (size_t i = 0; i < ps->nf; i++) {
    if (!strncasecmp(ps->f[i].name, "x-amz-meta-", 11) && nm < 64) {
      meta[nm].name = ps->f[i].name + 11;
      meta[nm].value = ps->f[i].value;
      mbytes += strlen(meta[nm].name) + ps->f[i].len;
      nm++;
    }
    for (size_t k = 0; sys[k]; k++)
      if (!strcasecmp(ps->f[i].name, sys[k]) && nh < 8) {
        hdrs[nh].name = (char *)sys[k];
        hdrs[nh].value = ps->f[i].value;
        nh++;
      }
  }
  if (mbytes > STORE_META_MAX) return reply_error(r, S3E_MetadataTooLarge, NULL);
  for (size_t i = 0; i < nm; i++)
    for (char *c = meta[i].name; *c; c++) *c = (char)tolower((unsigned char)*c);
  store_put_opts o = {0};
  o.content_type = field(ps, "Content-Type");
  if (!o.content_type) o.content_type = ps->file_ct;
  o.meta = meta;
  o.n_meta = nm;
  o.headers = hdrs;
  o.n_headers = nh;
  o.owner = r->auth.access_key;
  store_kv *tags = NULL;
  size_t nt = 0;
  const char *tg = field(ps, "tagging");
  (void)tg; /* S3 takes an XML Tagging document here; not supported */
  store_object_info info = {0};
  /* persist before you reply: committed and durable before the answer. */
  int rc = store_writer_commit(body_take_writer(&r->body), &o, &info);
  store_kv_free(tags, nt);
  if (rc) {
    store_object_info_free(&info);
    return reply_rc(r, rc);
  }
  const char *redir = field(ps, "success_action_redirect");
  const char *sas = field(ps, "success_action_status");
  char q[STORE_ETAG_MAX + 3];
  snprintf(q, sizeof q, "\"%s\"", info.etag);
  if (redir && *redir) {
    size_t n = strlen(redir) + 3 * (strlen(r->bucket) + strlen(ps->key) +
                                    strlen(q)) + 64;
    char *loc = malloc(n);
    if (loc) {
      size_t o2 = (size_t)snprintf(loc, n, "%s%sbucket=", redir,
                                   strchr(redir, '?') ? "&" : "?");
      size_t w;
      s3url_encode(loc + o2, n - o2, r->bucket, strlen(r->bucket), 0, &w);
      o2 += w;
      o2 += (size_t)snprintf(loc + o2, n - o2, "&key=");
      s3url_encode(loc + o2, n - o2, ps->key, strlen(ps->key), 0, &w);
      o2 += w;
      o2 += (size_t)snprintf(loc + o2, n - o2, "&etag=");
      s3url_encode(loc + o2, n - o2, q, strlen(q), 0, &w);
      struct MHD_Response *resp = resp_buf("", 0);
      if (resp) MHD_add_response_header(resp, "Location", loc);
      free(loc);
      store_object_info_free(&info);
      return reply(r, 303, resp);
    }
  }
  int status = 204;
  if (sas && !strcmp(sas, "200")) status = 200;
  if (sas && !strcmp(sas, "201")) status = 201;
  struct MHD_Response *resp;
  if (status == 201) {
    struct s3xml x;
    s3xml_init(&x, 8192);
    s3xml_open(&x, "PostResponse", NULL);
    char loc[2048];
    snprintf(loc, sizeof loc, "/%s/%s", r->bucket, ps->key);
    s3xml_elem_str(&x, "Location", loc);
    s3xml_elem_str(&x, "Bucket", r->bucket);
    s3xml_elem_str(&x, "Key", ps->key);
    s3xml_elem_str(&x, "ETag", q);
    s3xml_close(&x);
    char *doc;
    size_t len;
    if (s3xml_finish(&x, &doc, &len)) {
      store_object_info_free(&info);
      return reply_error(r, S3E_InternalError, NULL);
    }
    resp = resp_take(doc, len);
    if (resp) MHD_add_response_header(resp, "Content-Type", "application/xml");
    r->bytes_out = len;
  } else {
    resp = resp_buf("", 0);
  }
  if (resp) {
    resp_add_etag(resp, info.etag);
    char loc[2048];
    snprintf(loc, sizeof loc, "/%s/%s", r->bucket, ps->key);
    MHD_add_response_header(resp, "Location", loc);
  }
  store_object_info_free(&info);
  reply(r, status, resp);
}

void op_post_object(struct req *r) {
  if (!r->anonymous) {
    /* A signed POST to a bucket without ?delete: not an S3 operation. */
    return reply_error(r, S3E_MethodNotAllowed, NULL);
  }
  store_bucket_info bi;
  int rc = store_bucket_head(g_s3d.st, r->bucket, &bi);
  if (rc) return reply_rc(r, rc);
  struct post_state *ps = calloc(1, sizeof *ps);
  if (!ps) return reply_error(r, S3E_SlowDown, NULL);
  r->op = ps;
  r->op_free = post_state_free;
  ps->pp = MHD_create_post_processor(r->conn, 64 * 1024, post_iter, r);
  if (!ps->pp) return reply_error(r, S3E_MalformedPOSTRequest, NULL);
  r->op_end = post_end;
}
