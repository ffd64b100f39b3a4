/*
 * fuzz_xmlin.c -- the request-body XML readers (s3d/xmlin.c, libxml2):
 * CreateBucketConfiguration, Tagging, Delete, CompleteMultipartUpload and
 * VersioningConfiguration -- every input goes to all five -- and the XML
 * writer (s3d/xmlout.c) that echoes what they extracted back to clients.
 *
 * Input: the request body.
 * Checked beyond memory safety and leaks:
 *  - each reader returns S3E_NONE with its documented limits holding
 *    (tags: at most STORE_TAGS_MAX, keys 1..128 bytes, values <= 256, no
 *    duplicate keys; Delete: 1..1000 objects; Complete: 1..10000 parts
 *    numbered 1..10000, each with an ETag), or an error and no output;
 *  - a document with a DTD is refused by all of them;
 *  - every string extracted, written into a response with s3xml_* (as
 *    DeleteResult, GetObjectTagging, CompleteMultipartUploadResult and
 *    GetBucketLocation do), parses back with libxml2 to the same text.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "s3d.h"
#include "xmlout.h"

static void quiet(void *ctx, const char *fmt, ...) {
  (void)ctx;
  (void)fmt;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  xmlin_init();
  /* libxml2 prints encoding errors through its generic handler even with
     XML_PARSE_NOERROR; keep the fuzzer's output readable. */
  xmlSetGenericErrorFunc(NULL, quiet);
  return 0;
}

/* The strings echoed into one response document. */
#define MAX_ECHO 64
struct echo {
  const char *s[MAX_ECHO];
  size_t n;
};

static void echo_add(struct echo *e, const char *s) {
  if (s && e->n < MAX_ECHO) e->s[e->n++] = s;
}

/* Write the strings as <Key> elements, parse the result back and compare. */
static void echo_check(const struct echo *e) {
  if (!e->n) return;
  struct s3xml x;
  s3xml_init(&x, 1u << 22);
  s3xml_open(&x, "DeleteResult", S3XML_NS);
  for (size_t i = 0; i < e->n; i++) {
    s3xml_open(&x, "Deleted", NULL);
    s3xml_elem_str(&x, "Key", e->s[i]);
    s3xml_close(&x);
  }
  s3xml_close(&x);
  char *doc;
  size_t len;
  FZ_CHECK(s3xml_finish(&x, &doc, &len) == 0, "xml writer failed");
  FZ_CHECK(strlen(doc) == len);
  xmlDocPtr d = xmlReadMemory(doc, (int)len, "response.xml", NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  FZ_CHECK(d, "our response does not parse:\n%s", doc);
  xmlNodePtr root = xmlDocGetRootElement(d);
  FZ_CHECK(root && !strcmp((const char *)root->name, "DeleteResult"));
  size_t i = 0;
  for (xmlNodePtr c = root->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    FZ_CHECK(i < e->n && c->children);
    xmlChar *t = xmlNodeGetContent(c->children);
    FZ_CHECK(t && !strcmp((const char *)t, e->s[i]), "\"%s\" came back as \"%s\"",
             e->s[i], t ? (const char *)t : "(null)");
    xmlFree(t);
    i++;
  }
  FZ_CHECK(i == e->n);
  xmlFreeDoc(d);
  free(doc);
}

/* Whether libxml2 reads p as a document with a DTD. */
static int has_dtd(const char *p, size_t n) {
  xmlDocPtr d = xmlReadMemory(p, (int)n, "request.xml", NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR |
                                  XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
  int dtd = d && (d->intSubset || d->extSubset);
  xmlFreeDoc(d);
  return dtd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *p = fz_dup(data, size);
  struct echo e = {{0}, 0};
  int dtd = size && has_dtd(p, size);
  int accepted = 0;

  char *loc = (char *)1;
  enum s3err r = xmlin_location(p, size, &loc);
  FZ_CHECK(r == S3E_NONE || r == S3E_MalformedXML);
  if (r) FZ_CHECK(loc == NULL);
  echo_add(&e, loc);

  store_kv *tags = (store_kv *)1;
  size_t ntags = 7;
  const char *msg = NULL;
  r = xmlin_tagging(p, size, &tags, &ntags, &msg);
  if (r == S3E_NONE) {
    FZ_CHECK(ntags <= STORE_TAGS_MAX && (ntags == 0 || tags));
    for (size_t i = 0; i < ntags; i++) {
      size_t kl = strlen(tags[i].name), vl = strlen(tags[i].value);
      FZ_CHECK(kl >= 1 && kl <= 128 && vl <= 256, "tag %zu: key %zu value %zu bytes", i,
               kl, vl);
      for (size_t j = 0; j < i; j++) FZ_CHECK(strcmp(tags[i].name, tags[j].name) != 0);
      echo_add(&e, tags[i].name);
      echo_add(&e, tags[i].value);
    }
  } else {
    FZ_CHECK(r == S3E_MalformedXML || r == S3E_InvalidTag, "tagging: %d", r);
    FZ_CHECK(tags == NULL && ntags == 0);
    if (r == S3E_InvalidTag) FZ_CHECK(msg != NULL);
  }

  struct del_key *keys = (struct del_key *)1;
  size_t nkeys = 7;
  int quiet = 7;
  r = xmlin_delete(p, size, &keys, &nkeys, &quiet);
  if (r == S3E_NONE) {
    FZ_CHECK(nkeys >= 1 && nkeys <= 1000 && keys && (quiet == 0 || quiet == 1));
    for (size_t i = 0; i < nkeys; i++) {
      FZ_CHECK(keys[i].key != NULL);
      echo_add(&e, keys[i].key);
      echo_add(&e, keys[i].version_id);
    }
  } else {
    FZ_CHECK(r == S3E_MalformedXML, "delete: %d", r);
    FZ_CHECK(keys == NULL && nkeys == 0);
  }

  struct cpart *parts = (struct cpart *)1;
  size_t nparts = 7;
  r = xmlin_complete(p, size, &parts, &nparts);
  if (r == S3E_NONE) {
    FZ_CHECK(nparts >= 1 && nparts <= STORE_PARTS_MAX && parts);
    for (size_t i = 0; i < nparts; i++) {
      FZ_CHECK(parts[i].part_number >= 1 && parts[i].part_number <= STORE_PARTS_MAX);
      FZ_CHECK(parts[i].etag != NULL);
      echo_add(&e, parts[i].etag);
      for (int j = 1; j < 6; j++) echo_add(&e, parts[i].checksum[j]);
    }
  } else {
    FZ_CHECK(r == S3E_MalformedXML || r == S3E_InvalidArgument, "complete: %d", r);
    FZ_CHECK(parts == NULL && nparts == 0);
  }

  char *status = (char *)1;
  r = xmlin_versioning(p, size, &status);
  FZ_CHECK(r == S3E_NONE || r == S3E_MalformedXML);
  if (r) FZ_CHECK(status == NULL);
  echo_add(&e, status);
  accepted = (loc != NULL && loc != (char *)1) || ntags || nkeys || nparts || status;
  if (dtd) FZ_CHECK(!accepted && r != S3E_NONE, "a document with a DTD was read");

  echo_check(&e);

  if (r == S3E_NONE) free(status);
  if (parts != (struct cpart *)1) cparts_free(parts, nparts);
  if (keys != (struct del_key *)1) del_keys_free(keys, nkeys);
  if (tags != (store_kv *)1) store_kv_free(tags, ntags);
  free(loc == (char *)1 ? NULL : loc);
  free(p);
  return 0;
}
