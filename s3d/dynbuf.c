/*
 * dynbuf.c -- growable byte buffer with a hard cap (see dynbuf.h).
 */
#include "dynbuf.h"

#include <stdlib.h>
#include <string.h>

void s3buf_init(struct s3buf *b, size_t cap) {
  b->p = NULL;
  b->len = 0;
  b->alloc = 0;
  b->cap = cap;
  b->err = S3BUF_OK;
}

static s3buf_result fail(struct s3buf *b, s3buf_result why) {
  free(b->p);
  b->p = NULL;
  b->len = 0;
  b->alloc = 0;
  b->err = why;
  return why;
}

s3buf_result s3buf_add(struct s3buf *b, const void *p, size_t n) {
  if (b->err) return (s3buf_result)b->err;
  if (n > b->cap || b->len > b->cap - n) return fail(b, S3BUF_TOO_BIG);
  size_t need = b->len + n + 1;
  if (need > b->alloc) {
    size_t a = b->alloc ? b->alloc : 64;
    while (a < need) a = (a > ((size_t)-1) / 2) ? need : a * 2;
    if (a > b->cap + 1) a = b->cap + 1;
    char *np = realloc(b->p, a);
    if (!np) return fail(b, S3BUF_NOMEM);
    b->p = np;
    b->alloc = a;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return S3BUF_OK;
}

s3buf_result s3buf_addstr(struct s3buf *b, const char *s) {
  return s3buf_add(b, s, strlen(s));
}

s3buf_result s3buf_addc(struct s3buf *b, char c) { return s3buf_add(b, &c, 1); }

void s3buf_reset(struct s3buf *b) {
  b->len = 0;
  b->err = S3BUF_OK;
  if (b->p) b->p[0] = '\0';
}

void s3buf_free(struct s3buf *b) {
  if (!b) return;
  free(b->p);
  b->p = NULL;
  b->len = 0;
  b->alloc = 0;
}

char *s3buf_take(struct s3buf *b, size_t *len_out) {
  if (b->err) return NULL;
  if (!b->p && s3buf_add(b, "", 0) != S3BUF_OK) return NULL;
  char *p = b->p;
  if (len_out) *len_out = b->len;
  b->p = NULL;
  b->len = 0;
  b->alloc = 0;
  return p;
}
