/*
 * xmlout.h -- a tiny bounded XML writer for S3 response bodies.
 *
 * Elements are written in document order into a capped s3buf. Text is
 * escaped as S3 escapes it: & < > " ' as entities, CR LF TAB as numeric
 * references (&#13; &#10; &#9;) so they survive XML whitespace
 * normalisation, and the other C0 controls and DEL as &#xNN; (not legal
 * XML 1.0 text, but what S3 emits; clients that care ask for
 * encoding-type=url). Element names are trusted program constants.
 *
 * Errors are sticky: write everything, then check s3xml_finish() once.
 */
#ifndef S3D_XMLOUT_H
#define S3D_XMLOUT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dynbuf.h"

#define S3XML_MAX_DEPTH 16
#define S3XML_NS "http://s3.amazonaws.com/doc/2006-03-01/"

struct s3xml {
  struct s3buf buf;
  const char *stack[S3XML_MAX_DEPTH]; /* open element names (not copied) */
  int depth;
  int err; /* 0, or -1 after overflow / misuse */
};

/* Start a document of at most cap bytes; writes the XML declaration. */
void s3xml_init(struct s3xml *x, size_t cap);
/* Open <name> (with xmlns="ns" when ns is not NULL). name must outlive x. */
void s3xml_open(struct s3xml *x, const char *name, const char *ns);
/* Close the innermost open element. */
void s3xml_close(struct s3xml *x);
/* <name>escaped text</name>; text may contain any bytes. */
void s3xml_elem(struct s3xml *x, const char *name, const char *text, size_t n);
void s3xml_elem_str(struct s3xml *x, const char *name, const char *text);
void s3xml_elem_u64(struct s3xml *x, const char *name, uint64_t v);
void s3xml_elem_bool(struct s3xml *x, const char *name, int v);
/* ISO 8601 with milliseconds, as S3 writes LastModified:
   2009-10-12T17:50:30.000Z */
void s3xml_elem_time(struct s3xml *x, const char *name, time_t t);
/* Append escaped text at the current position. */
void s3xml_text(struct s3xml *x, const char *text, size_t n);

/* Check all elements are closed and nothing failed. On success returns 0
   and hands the document to the caller (free() it); on failure returns -1
   and frees everything. */
int s3xml_finish(struct s3xml *x, char **out, size_t *out_len);
/* Discard a document (after an error path). */
void s3xml_free(struct s3xml *x);

/* Format t as "YYYY-MM-DDTHH:MM:SS.000Z" into out (>= 25 bytes).
   Returns the length (24) or 0 if out of range. */
size_t s3_iso8601_format(time_t t, char *out, size_t cap);

#endif
