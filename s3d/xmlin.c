/*
 * xmlin.c -- request XML (CreateBucketConfiguration, Tagging, Delete,
 * CompleteMultipartUpload, VersioningConfiguration) read with libxml2.
 *
 * The caller has already capped the body (1 MiB, 2 MiB for Delete).  The
 * parser runs with XML_PARSE_NONET and without XML_PARSE_NOENT/DTDLOAD, so
 * no external entity or DTD is ever fetched or expanded; a document with a
 * DTD at all is refused.  Element names are matched by local name, so a
 * body with or without the S3 namespace is accepted, as S3 does.
 */
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3d.h"

void xmlin_init(void) { xmlInitParser(); }

static xmlDocPtr parse(const char *p, size_t n) {
  if (n > INT32_MAX) return NULL;
  xmlDocPtr doc =
      xmlReadMemory(p, (int)n, "request.xml", NULL,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                        XML_PARSE_NOCDATA);
  if (!doc) return NULL;
  if (doc->intSubset || doc->extSubset) { /* no DTDs, no entities */
    xmlFreeDoc(doc);
    return NULL;
  }
  return doc;
}

static int is(xmlNodePtr n, const char *name) {
  return n && n->type == XML_ELEMENT_NODE &&
         !strcmp((const char *)n->name, name);
}

static xmlNodePtr child(xmlNodePtr n, const char *name) {
  for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
    if (is(c, name)) return c;
  return NULL;
}

/* Text content (malloc'd, via libxml's allocator copied to ours). */
static char *text(xmlNodePtr n) {
  if (!n) return NULL;
  xmlChar *t = xmlNodeGetContent(n);
  char *s = strdup(t ? (const char *)t : "");
  xmlFree(t);
  return s;
}

enum s3err xmlin_location(const char *p, size_t n, char **loc) {
  *loc = NULL;
  if (n == 0) return S3E_NONE;
  xmlDocPtr doc = parse(p, n);
  if (!doc) return S3E_MalformedXML;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (!is(root, "CreateBucketConfiguration")) {
    xmlFreeDoc(doc);
    return S3E_MalformedXML;
  }
  xmlNodePtr l = child(root, "LocationConstraint");
  if (l) *loc = text(l);
  xmlFreeDoc(doc);
  return S3E_NONE;
}

static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2
            : (*p >> 3) == 30 ? 3 : -1;
    if (n < 0) return 0;
    p++;
    while (n--) {
      if ((*p & 0xC0) != 0x80) return 0;
      p++;
    }
  }
  return 1;
}

enum s3err xmlin_tagging(const char *p, size_t n, store_kv **tags,
                         size_t *ntags, const char **msg) {
  *tags = NULL;
  *ntags = 0;
  *msg = NULL;
  xmlDocPtr doc = parse(p, n);
  if (!doc) return S3E_MalformedXML;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr set = is(root, "Tagging") ? child(root, "TagSet") : NULL;
  if (!set) {
    xmlFreeDoc(doc);
    return S3E_MalformedXML;
  }
  enum s3err e = S3E_NONE;
  store_kv *kv = calloc(STORE_TAGS_MAX, sizeof *kv);
  size_t k = 0;
  if (!kv) e = S3E_SlowDown;
  for (xmlNodePtr t = set->children; !e && t; t = t->next) {
    if (t->type != XML_ELEMENT_NODE) continue;
    if (!is(t, "Tag")) { e = S3E_MalformedXML; break; }
    xmlNodePtr kn = child(t, "Key"), vn = child(t, "Value");
    if (!kn) { e = S3E_MalformedXML; break; }
    if (k >= STORE_TAGS_MAX) {
      e = S3E_InvalidTag;
      *msg = "Object tags cannot be greater than 10";
      break;
    }
    char *key = text(kn), *val = vn ? text(vn) : strdup("");
    kv[k].name = key;
    kv[k].value = val;
    k++;
    if (!key || !val) { e = S3E_SlowDown; break; }
    if (!*key || strlen(key) > 128 || strlen(val) > 256 || !valid_utf8(key) ||
        !valid_utf8(val)) {
      e = S3E_InvalidTag;
      *msg = "The TagKey or TagValue you have provided is invalid";
      break;
    }
    for (size_t i = 0; i + 1 < k; i++)
      if (!strcmp(kv[i].name, key)) {
        e = S3E_InvalidTag;
        *msg = "Cannot provide multiple Tags with the same key";
        break;
      }
  }
  xmlFreeDoc(doc);
  if (e) {
    store_kv_free(kv, k);
    return e;
  }
  *tags = kv;
  *ntags = k;
  return S3E_NONE;
}

void del_keys_free(struct del_key *k, size_t n) {
  if (!k) return;
  for (size_t i = 0; i < n; i++) {
    free(k[i].key);
    free(k[i].version_id);
  }
  free(k);
}

enum s3err xmlin_delete(const char *p, size_t n, struct del_key **keys,
                        size_t *nkeys, int *quiet) {
  *keys = NULL;
  *nkeys = 0;
  *quiet = 0;
  xmlDocPtr doc = parse(p, n);
  if (!doc) return S3E_MalformedXML;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (!is(root, "Delete")) {
    xmlFreeDoc(doc);
    return S3E_MalformedXML;
  }
  size_t cap = 0, k = 0;
  struct del_key *v = NULL;
  enum s3err e = S3E_NONE;
  for (xmlNodePtr c = root->children; c; c = c->next) {
    if (is(c, "Quiet")) {
      char *t = text(c);
      *quiet = t && !strcmp(t, "true");
      free(t);
    } else if (is(c, "Object")) {
      if (k >= 1000) { e = S3E_MalformedXML; break; }
      if (k == cap) {
        cap = cap ? cap * 2 : 64;
        struct del_key *nv = realloc(v, cap * sizeof *v);
        if (!nv) { e = S3E_SlowDown; break; }
        v = nv;
      }
      xmlNodePtr kn = child(c, "Key"), vn = child(c, "VersionId");
      if (!kn) { e = S3E_MalformedXML; break; }
      v[k].key = text(kn);
      v[k].version_id = vn ? text(vn) : NULL;
      k++;
    }
  }
  xmlFreeDoc(doc);
  if (!e && k == 0) e = S3E_MalformedXML;
  if (e) {
    del_keys_free(v, k);
    return e;
  }
  *keys = v;
  *nkeys = k;
  return S3E_NONE;
}

void cparts_free(struct cpart *p, size_t n) {
  if (!p) return;
  for (size_t i = 0; i < n; i++) {
    free(p[i].etag);
    for (int j = 0; j < 6; j++) free(p[i].checksum[j]);
  }
  free(p);
}

enum s3err xmlin_complete(const char *p, size_t n, struct cpart **parts,
                          size_t *nparts) {
  static const char *ck_names[6] = {NULL, "ChecksumCRC32", "ChecksumCRC32C",
                                    "ChecksumCRC64NVME", "ChecksumSHA1",
                                    "ChecksumSHA256"};
  *parts = NULL;
  *nparts = 0;
  xmlDocPtr doc = parse(p, n);
  if (!doc) return S3E_MalformedXML;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (!is(root, "CompleteMultipartUpload")) {
    xmlFreeDoc(doc);
    return S3E_MalformedXML;
  }
  size_t cap = 0, k = 0;
  struct cpart *v = NULL;
  enum s3err e = S3E_NONE;
  for (xmlNodePtr c = root->children; c; c = c->next) {
    if (!is(c, "Part")) continue;
    if (k >= STORE_PARTS_MAX) { e = S3E_MalformedXML; break; }
    if (k == cap) {
      cap = cap ? cap * 2 : 64;
      struct cpart *nv = realloc(v, cap * sizeof *v);
      if (!nv) { e = S3E_SlowDown; break; }
      v = nv;
    }
    memset(&v[k], 0, sizeof v[k]);
    xmlNodePtr pn = child(c, "PartNumber"), en = child(c, "ETag");
    k++;
    if (!pn || !en) { e = S3E_MalformedXML; break; }
    char *t = text(pn), *end = NULL;
    unsigned long num = t ? strtoul(t, &end, 10) : 0;
    int bad = !t || end == t || *end || num < 1 || num > STORE_PARTS_MAX;
    free(t);
    if (bad) { e = S3E_InvalidArgument; break; }
    v[k - 1].part_number = (uint32_t)num;
    v[k - 1].etag = text(en);
    for (int j = 1; j < 6; j++) {
      xmlNodePtr cn = child(c, ck_names[j]);
      if (cn) v[k - 1].checksum[j] = text(cn);
    }
  }
  xmlFreeDoc(doc);
  if (!e && k == 0) e = S3E_MalformedXML;
  if (e) {
    cparts_free(v, k);
    return e;
  }
  *parts = v;
  *nparts = k;
  return S3E_NONE;
}

enum s3err xmlin_versioning(const char *p, size_t n, char **status) {
  *status = NULL;
  xmlDocPtr doc = parse(p, n);
  if (!doc) return S3E_MalformedXML;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (!is(root, "VersioningConfiguration")) {
    xmlFreeDoc(doc);
    return S3E_MalformedXML;
  }
  xmlNodePtr s = child(root, "Status");
  if (s) *status = text(s);
  xmlFreeDoc(doc);
  return S3E_NONE;
}
