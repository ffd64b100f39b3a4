/*
 * fuzz_post.c -- PostObject (s3d/ops_post.c): the policy document (base64,
 * JSON, expiration, conditions) and the multipart/form-data body, parsed
 * by libmicrohttpd's post processor exactly as s3d uses it, feeding the
 * form-field code s3d runs on what it delivers.
 *
 * Input: a mode byte, then
 *   0  JSON policy, NUL, form fields "name=value\n..."  (the harness
 *      base64-encodes the policy, as the form carries it)
 *   1  the same with the policy field given as sent (base64 or not)
 *   2  a slice byte, the boundary, '\n', then the multipart body
 *   3  a `key` field value, NUL, a file name: ${filename} expansion
 *
 * libmicrohttpd's post processor is created on a stand-in connection: it
 * only asks the connection for its Content-Type, through the exported
 * MHD_lookup_connection_value_n(), which this harness defines (the
 * library's own tests do the same). The iterator below does what
 * post_iter() in s3d/ops_post.c does before a byte is stored: reject an
 * unnamed part, route `file` and what follows it, hand every other piece
 * to post_field_add(). Keep the two in step.
 *
 * Checked beyond memory safety and leaks:
 *  - post_policy_check: S3E_NONE only if every form field is covered or
 *    exempt, and a content-length-range gives min/max;
 *  - post_field_add: never more than POST_FIELDS_MAX fields nor
 *    POST_FIELDS_BYTES bytes, and each field's value is exactly the
 *    concatenation of the pieces delivered for it (a shadow copy);
 *  - post_object_key agrees with a reference expansion.
 */
#include <microhttpd.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "checksum.h"
#include "fuzz.h"
#include "s3d.h"

#define NOW ((time_t)1735689600) /* 2025-01-01T00:00:00Z */

/* ---- the stand-in connection -------------------------------------------- */

static char g_content_type[512];

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *connection,
                                              enum MHD_ValueKind kind,
                                              const char *key, size_t key_size,
                                              const char **value_ptr,
                                              size_t *value_size_ptr) {
  (void)connection;
  (void)kind;
  if (key_size != 12 || strncasecmp(key, "Content-Type", 12)) return MHD_NO;
  *value_ptr = g_content_type;
  if (value_size_ptr) *value_size_ptr = strlen(g_content_type);
  return MHD_YES;
}

/* ---- policy ------------------------------------------------------------- */

static void free_fields(struct post_field *f, size_t nf) {
  for (size_t i = 0; i < nf; i++) {
    free(f[i].name);
    free(f[i].value);
  }
}

static int exempt(const char *n) {
  return !strcasecmp(n, "policy") || !strcasecmp(n, "x-amz-signature") ||
         !strcasecmp(n, "file") || !strncasecmp(n, "x-ignore-", 9) ||
         !strcasecmp(n, "bucket");
}

static void check_policy(const char *pol, size_t pl, struct fz *f) {
  struct post_field fields[POST_FIELDS_MAX];
  size_t nf = 0;
  while (f->n && nf < POST_FIELDS_MAX) {
    size_t ll;
    const char *line = fz_until(f, '\n', &ll);
    const char *eq = memchr(line, '=', ll);
    if (!eq || eq == line) continue;
    fields[nf].name = fz_strdup(line, (size_t)(eq - line));
    fields[nf].len = ll - (size_t)(eq - line) - 1;
    fields[nf].value = fz_strdup(eq + 1, fields[nf].len);
    nf++;
  }
  const char *key = NULL;
  for (size_t i = 0; i < nf; i++)
    if (!strcasecmp(fields[i].name, "key")) key = fields[i].value;
  char *pcopy = fz_dup(pol, pl);
  struct post_limits lim;
  const char *msg = (const char *)1;
  enum s3err e = post_policy_check(pcopy, pl, NOW, "bucket", key, fields, nf, &lim, &msg);
  if (e == S3E_NONE) {
    FZ_CHECK(msg == NULL);
    /* Every field is exempt or named by the policy: check the policy
       mentions it (a cheap necessary condition on the decoded text). */
    size_t dl;
    uint8_t *doc = (uint8_t *)fz_alloc(pl + 1);
    FZ_CHECK(s3_base64_decode(doc, pl, pcopy, pl, &dl) == 0);
    for (size_t i = 0; i < nf; i++) {
      if (exempt(fields[i].name) || !fields[i].name[0]) continue;
      /* JSON escapes (\u0041) can spell a name; only check plain ones. */
      if (memchr(doc, '\\', dl)) break;
      size_t k = strlen(fields[i].name);
      int found = 0;
      for (size_t j = 0; j + k <= dl && !found; j++)
        found = !strncasecmp((const char *)doc + j, fields[i].name, k);
      FZ_CHECK(found, "field \"%s\" passed a policy that never names it", fields[i].name);
    }
    free(doc);
  } else {
    FZ_CHECK(msg != NULL && msg != (const char *)1, "error %d without a message", e);
    FZ_CHECK(e == S3E_InvalidArgument || e == S3E_MalformedPOSTRequest ||
             e == S3E_AccessDenied, "policy error %d", e);
  }
  free(pcopy);
  free_fields(fields, nf);
}

/* ---- the form, through libmicrohttpd ------------------------------------ */

struct form {
  struct post_field f[POST_FIELDS_MAX];
  size_t nf, fbytes;
  int saw_file, file_done, failed;
  char *key;
  struct s3buf shadow[POST_FIELDS_MAX]; /* what each field should hold */
};

/* Mirrors post_iter() in s3d/ops_post.c up to the store. */
static enum MHD_Result iter(void *cls, enum MHD_ValueKind kind, const char *key,
                            const char *filename, const char *content_type,
                            const char *transfer_encoding, const char *data,
                            uint64_t off, size_t size) {
  (void)kind;
  (void)content_type;
  (void)transfer_encoding;
  struct form *fm = cls;
  FZ_CHECK(!fm->failed, "post processor went on after MHD_NO");
  FZ_CHECK(size == 0 || data != NULL);
  if (!key) { /* post_iter: "a form part has no name" */
    fm->failed = 1;
    return MHD_NO;
  }
  if (fm->file_done) return MHD_YES;
  if (!strcmp(key, "file")) {
    if (!fm->saw_file) {
      fm->saw_file = 1;
      const char *k = NULL;
      for (size_t i = 0; i < fm->nf; i++)
        if (!strcasecmp(fm->f[i].name, "key")) k = fm->f[i].value;
      if (k) {
        fm->key = post_object_key(k, filename);
        FZ_CHECK(fm->key != NULL);
      }
    }
    return MHD_YES;
  }
  if (fm->saw_file) {
    fm->file_done = 1;
    return MHD_YES;
  }
  size_t before = fm->nf;
  int cont = off > 0 && before && !strcmp(fm->f[before - 1].name, key);
  const char *msg = NULL;
  enum s3err e = post_field_add(fm->f, &fm->nf, &fm->fbytes, key, off, data, size, &msg);
  FZ_CHECK(fm->nf <= POST_FIELDS_MAX);
  if (e) {
    FZ_CHECK(e == S3E_MaxMessageLengthExceeded || e == S3E_MalformedPOSTRequest,
             "post_field_add: %d", e);
    fm->failed = 1;
    return MHD_NO;
  }
  FZ_CHECK(fm->fbytes <= POST_FIELDS_BYTES);
  size_t idx = cont ? before - 1 : before;
  FZ_CHECK(fm->nf == (cont ? before : before + 1));
  FZ_CHECK(!strcmp(fm->f[idx].name, key));
  s3buf_add(&fm->shadow[idx], data ? data : "", size);
  FZ_CHECK(!fm->shadow[idx].err);
  FZ_CHECK(fm->f[idx].len == fm->shadow[idx].len && fm->f[idx].value[fm->f[idx].len] == 0 &&
           (!fm->f[idx].len || !memcmp(fm->f[idx].value, fm->shadow[idx].p, fm->f[idx].len)),
           "field %s holds %zu bytes, %zu delivered", key, fm->f[idx].len,
           fm->shadow[idx].len);
  return MHD_YES;
}

static void check_form(struct fz *f) {
  size_t slice = 1 + fz_u8(f);
  size_t bl;
  const char *b = fz_until(f, '\n', &bl);
  if (bl > 200) bl = 200;
  snprintf(g_content_type, sizeof g_content_type, "multipart/form-data; boundary=%.*s",
           (int)bl, b);
  if (memchr(g_content_type, 0, strlen(g_content_type))) return;
  struct form *fm = calloc(1, sizeof *fm);
  if (!fm) abort();
  for (size_t i = 0; i < POST_FIELDS_MAX; i++) s3buf_init(&fm->shadow[i], 1u << 20);
  /* s3d: MHD_create_post_processor(r->conn, 64 * 1024, post_iter, r) */
  struct MHD_PostProcessor *pp =
      MHD_create_post_processor((struct MHD_Connection *)fm, 64 * 1024, iter, fm);
  if (pp) {
    size_t n;
    const char *body = fz_rest(f, &n);
    for (size_t i = 0; i < n && !fm->failed; i += slice) {
      size_t k = n - i < slice ? n - i : slice;
      char *piece = fz_dup(body + i, k);
      enum MHD_Result rc = MHD_post_process(pp, piece, k);
      free(piece);
      if (rc != MHD_YES) break;
    }
    MHD_destroy_post_processor(pp);
  }
  for (size_t i = 0; i < POST_FIELDS_MAX; i++) s3buf_free(&fm->shadow[i]);
  free_fields(fm->f, fm->nf);
  free(fm->key);
  free(fm);
}

/* ---- ${filename} -------------------------------------------------------- */

static void check_key(struct fz *f) {
  size_t kl, fl;
  const char *k = fz_until(f, 0, &kl);
  const char *fn = fz_rest(f, &fl);
  char *ks = fz_strdup(k, kl);
  char *fs = fz_strdup(fn, fl);
  int null_fn = fl == 0;
  char *got = post_object_key(ks, null_fn ? NULL : fs);
  FZ_CHECK(got);
  /* Reference: the first ${filename}, the part after the last '/'. */
  const char *base = fs, *sl = strrchr(fs, '/');
  if (sl) base = sl + 1;
  const char *ph = strstr(ks, "${filename}");
  struct s3buf want;
  s3buf_init(&want, 1u << 20);
  if (!ph) {
    s3buf_addstr(&want, ks);
  } else {
    s3buf_add(&want, ks, (size_t)(ph - ks));
    s3buf_addstr(&want, null_fn ? "" : base);
    s3buf_addstr(&want, ph + 11);
  }
  s3buf_addstr(&want, "");
  FZ_CHECK(!strcmp(got, want.p), "\"%s\" + \"%s\" -> \"%s\", want \"%s\"", ks, fs, got,
           want.p);
  s3buf_free(&want);
  free(got);
  free(fs);
  free(ks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz f = {data, size};
  uint8_t mode = fz_u8(&f) & 3;
  switch (mode) {
  case 0:
  case 1: {
    size_t pl;
    const char *pol = fz_until(&f, 0, &pl);
    if (mode == 0) {
      size_t cap = (pl + 2) / 3 * 4 + 1;
      char *b64 = fz_alloc(cap);
      size_t bl = s3_base64_encode(b64, cap, (const uint8_t *)pol, pl);
      FZ_CHECK(bl == cap - 1);
      check_policy(b64, bl, &f);
      free(b64);
    } else {
      check_policy(pol, pl, &f);
    }
    break;
  }
  case 2: check_form(&f); break;
  case 3: check_key(&f); break;
  }
  return 0;
}
