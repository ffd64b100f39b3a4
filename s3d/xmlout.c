/*
 * xmlout.c -- bounded XML writer for S3 responses (see xmlout.h).
 */
#include "xmlout.h"

#include <stdlib.h>
#include <string.h>

#include "range.h"

static void put(struct s3xml *x, const char *s, size_t n) {
  if (x->err) return;
  if (s3buf_add(&x->buf, s, n) != S3BUF_OK) x->err = -1;
}

static void puts_(struct s3xml *x, const char *s) { put(x, s, strlen(s)); }

void s3xml_init(struct s3xml *x, size_t cap) {
  s3buf_init(&x->buf, cap);
  x->depth = 0;
  x->err = 0;
  puts_(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void s3xml_open(struct s3xml *x, const char *name, const char *ns) {
  if (x->err) return;
  if (x->depth == S3XML_MAX_DEPTH) {
    x->err = -1;
    return;
  }
  x->stack[x->depth++] = name;
  puts_(x, "<");
  puts_(x, name);
  if (ns) {
    puts_(x, " xmlns=\"");
    s3xml_text(x, ns, strlen(ns));
    puts_(x, "\"");
  }
  puts_(x, ">");
}

void s3xml_close(struct s3xml *x) {
  if (x->err) return;
  if (x->depth == 0) {
    x->err = -1;
    return;
  }
  const char *name = x->stack[--x->depth];
  puts_(x, "</");
  puts_(x, name);
  puts_(x, ">");
}

void s3xml_text(struct s3xml *x, const char *text, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t run = 0; /* start of the pending run of plain bytes */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    const char *ent = NULL;
    char num[7];
    switch (c) {
    case '&': ent = "&amp;"; break;
    case '<': ent = "&lt;"; break;
    case '>': ent = "&gt;"; break;
    case '"': ent = "&quot;"; break;
    case '\'': ent = "&apos;"; break;
    case '\r': ent = "&#13;"; break;
    case '\n': ent = "&#10;"; break;
    case '\t': ent = "&#9;"; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        num[0] = '&';
        num[1] = '#';
        num[2] = 'x';
        num[3] = hex[c >> 4];
        num[4] = hex[c & 15];
        num[5] = ';';
        num[6] = '\0';
        ent = num;
      }
    }
    if (ent) {
      put(x, text + run, i - run);
      puts_(x, ent);
      run = i + 1;
    }
  }
  put(x, text + run, n - run);
}

void s3xml_elem(struct s3xml *x, const char *name, const char *text, size_t n) {
  puts_(x, "<");
  puts_(x, name);
  puts_(x, ">");
  s3xml_text(x, text, n);
  puts_(x, "</");
  puts_(x, name);
  puts_(x, ">");
}

void s3xml_elem_str(struct s3xml *x, const char *name, const char *text) {
  s3xml_elem(x, name, text ? text : "", text ? strlen(text) : 0);
}

void s3xml_elem_u64(struct s3xml *x, const char *name, uint64_t v) {
  char num[24];
  size_t k = sizeof num;
  do {
    num[--k] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  s3xml_elem(x, name, num + k, sizeof num - k);
}

void s3xml_elem_bool(struct s3xml *x, const char *name, int v) {
  s3xml_elem_str(x, name, v ? "true" : "false");
}

static void put2(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10 % 10);
  p[1] = (char)('0' + v % 10);
}

size_t s3_iso8601_format(time_t t, char *out, size_t cap) {
  int64_t tt = (int64_t)t;
  if (cap < 25 || tt < 0 || tt > 253402300799LL) return 0;
  int64_t days = tt / 86400, secs = tt % 86400;
  int64_t y;
  unsigned m, d;
  s3_civil_from_days(days, &y, &m, &d);
  put2(out, (unsigned)(y / 100));
  put2(out + 2, (unsigned)(y % 100));
  out[4] = '-';
  put2(out + 5, m);
  out[7] = '-';
  put2(out + 8, d);
  out[10] = 'T';
  put2(out + 11, (unsigned)(secs / 3600));
  out[13] = ':';
  put2(out + 14, (unsigned)(secs / 60 % 60));
  out[16] = ':';
  put2(out + 17, (unsigned)(secs % 60));
  memcpy(out + 19, ".000Z", 6); /* includes the NUL */
  return 24;
}

void s3xml_elem_time(struct s3xml *x, const char *name, time_t t) {
  char buf[32];
  size_t n = s3_iso8601_format(t, buf, sizeof buf);
  if (!n) {
    x->err = -1;
    return;
  }
  s3xml_elem(x, name, buf, n);
}

int s3xml_finish(struct s3xml *x, char **out, size_t *out_len) {
  if (!x->err && x->depth != 0) x->err = -1;
  if (!x->err) puts_(x, "\n");
  if (x->err) {
    s3buf_free(&x->buf);
    return -1;
  }
  *out = s3buf_take(&x->buf, out_len);
  if (!*out) return -1;
  return 0;
}

void s3xml_free(struct s3xml *x) { s3buf_free(&x->buf); }
