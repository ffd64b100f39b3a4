/*
 * dynbuf.h -- a growable byte buffer with a hard size cap.
 *
 * Every buffer that untrusted input can grow (canonical requests, XML
 * responses, trailer blocks) is an s3buf: it never holds more than the cap
 * given at init, it is always NUL-terminated after a successful add, and on
 * any failure (cap exceeded or out of memory) it frees its memory and stays
 * failed, so a caller can add many pieces and check once at the end.
 *
 * Not thread-safe; one owner at a time.
 */
#ifndef S3D_DYNBUF_H
#define S3D_DYNBUF_H

#include <stddef.h>

typedef enum {
  S3BUF_OK = 0,
  S3BUF_TOO_BIG, /* the cap would be exceeded; the buffer is now freed */
  S3BUF_NOMEM    /* allocation failed; the buffer is now freed */
} s3buf_result;

struct s3buf {
  char *p;      /* contents, NUL-terminated, or NULL when empty/failed */
  size_t len;   /* bytes used, excluding the terminating NUL */
  size_t alloc; /* bytes allocated */
  size_t cap;   /* hard maximum for len */
  int err;      /* sticky s3buf_result of the first failure */
};

/* Start an empty buffer that may hold up to cap bytes (cap > 0). */
void s3buf_init(struct s3buf *b, size_t cap);

/* Append n bytes. Returns S3BUF_OK or the (sticky) failure. */
s3buf_result s3buf_add(struct s3buf *b, const void *p, size_t n);
s3buf_result s3buf_addstr(struct s3buf *b, const char *s);
s3buf_result s3buf_addc(struct s3buf *b, char c);

/* Empty the buffer but keep its memory and clear a failure. */
void s3buf_reset(struct s3buf *b);

/* Free the memory; the buffer may be reused after s3buf_init(). NULL ok. */
void s3buf_free(struct s3buf *b);

/* Hand the contents to the caller (who free()s them); the buffer becomes
   empty. Returns NULL on a failed buffer. *len_out may be NULL. An empty
   buffer yields an allocated "". */
char *s3buf_take(struct s3buf *b, size_t *len_out);

#endif
