/*
 * inode.c -- the inode table: kernel node ids <-> (bucket, key).
 *
 * A node is what the kernel knows as an inode.  Its node id is the node's
 * address (the root is FUSE_ROOT_ID), as in libfuse's passthrough_ll.c.
 * The kernel counts lookups: every reply that hands out an entry
 * (lookup, create, mkdir, mknod, symlink) adds one, and forget subtracts
 * what the kernel says; a node is freed when the count and our own pins
 * are both zero.
 *
 * Nodes are found by path (bucket, key) while attached.  A rename re-keys
 * the node, so the node id and st_ino survive it; unlink or a replacing
 * rename detaches it (the kernel may still hold it for open files).
 *
 * st_ino: a file or symlink reports the object's ino, which libstore keeps
 * across renames and edits.  Directories have no object of their own, so
 * they get a synthetic number: a 63-bit hash of (bucket, prefix) with the
 * top bit set (object inos never have it), fixed when the node is created
 * and kept by the node through renames.  A hash already used by a live
 * directory node is probed to the next free value.
 *
 * Lock order: fs->ns_lock, then node->mu, then the table lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusefs.h"

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct node **by_path; /* chains by (bucket, key) */
static struct node **by_ino;  /* chains by st_ino, directories */
static size_t n_slots;        /* both tables have n_slots chains */
static size_t n_nodes;
static struct node root;
static struct node *all_nodes; /* every node but the root */

#define DIR_INO_BIT (UINT64_C(1) << 63)

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)s[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}

static uint64_t path_hash(const char *bucket, const char *key) {
  uint64_t h = UINT64_C(14695981039346656037);
  if (bucket) h = fnv1a(h, bucket, strlen(bucket) + 1);
  return fnv1a(h, key, strlen(key));
}

static uint64_t dir_hash(const char *bucket, const char *key) {
  return path_hash(bucket, key) | DIR_INO_BIT;
}

static int same_bucket(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

static struct node *find_path(const char *bucket, const char *key) {
  if (!n_slots) return NULL;
  size_t i = path_hash(bucket, key) & (n_slots - 1);
  for (struct node *n = by_path[i]; n; n = n->hnext)
    if (same_bucket(n->bucket, bucket) && strcmp(n->key, key) == 0) return n;
  return NULL;
}

static struct node *find_ino(uint64_t ino) {
  if (!n_slots) return NULL;
  for (struct node *n = by_ino[ino & (n_slots - 1)]; n; n = n->inext)
    if (n->ino == ino) return n;
  return NULL;
}

static void path_insert(struct node *n) {
  size_t i = path_hash(n->bucket, n->key) & (n_slots - 1);
  n->hnext = by_path[i];
  by_path[i] = n;
  n->attached = 1;
}

static void path_remove(struct node *n) {
  if (!n->attached) return;
  size_t i = path_hash(n->bucket, n->key) & (n_slots - 1);
  for (struct node **p = &by_path[i]; *p; p = &(*p)->hnext)
    if (*p == n) {
      *p = n->hnext;
      break;
    }
  n->hnext = NULL;
  n->attached = 0;
}

static void ino_insert(struct node *n) {
  size_t i = n->ino & (n_slots - 1);
  n->inext = by_ino[i];
  by_ino[i] = n;
}

static void ino_remove(struct node *n) {
  if (n->kind != NODE_DIR) return;
  size_t i = n->ino & (n_slots - 1);
  for (struct node **p = &by_ino[i]; *p; p = &(*p)->inext)
    if (*p == n) {
      *p = n->inext;
      break;
    }
  n->inext = NULL;
}

/* Double the tables when they get crowded (at most one node per chain on
 * average).  Detached nodes are in no path chain and stay out. */
static int grow(void) {
  if (n_nodes < n_slots) return 0;
  size_t ns = n_slots ? n_slots * 2 : 1024;
  struct node **np = calloc(ns, sizeof *np), **ni = calloc(ns, sizeof *ni);
  if (!np || !ni) {
    free(np);
    free(ni);
    return -1;
  }
  for (size_t i = 0; i < n_slots; i++) {
    for (struct node *n = by_path[i], *next; n; n = next) {
      next = n->hnext;
      size_t j = path_hash(n->bucket, n->key) & (ns - 1);
      n->hnext = np[j];
      np[j] = n;
    }
    for (struct node *n = by_ino[i], *next; n; n = next) {
      next = n->inext;
      size_t j = n->ino & (ns - 1);
      n->inext = ni[j];
      ni[j] = n;
    }
  }
  free(by_path);
  free(by_ino);
  by_path = np;
  by_ino = ni;
  n_slots = ns;
  return 0;
}

static uint64_t dir_ino_alloc(const char *bucket, const char *key) {
  uint64_t h = dir_hash(bucket, key);
  while (find_ino(h)) h = (h * UINT64_C(6364136223846793005) + 1) | DIR_INO_BIT;
  return h;
}

static void all_insert(struct node *n) {
  n->aprev = NULL;
  n->anext = all_nodes;
  if (all_nodes) all_nodes->aprev = n;
  all_nodes = n;
}

static void all_remove(struct node *n) {
  if (n->aprev) n->aprev->anext = n->anext;
  else all_nodes = n->anext;
  if (n->anext) n->anext->aprev = n->aprev;
}

static void node_free(struct node *n) {
  if (n->w) store_writer_abort(n->w); /* release committed what it could */
  pthread_mutex_destroy(&n->mu);
  free(n->bucket);
  free(n->key);
  free(n);
}

/* Free n if nobody refers to it any more.  Table lock held. */
static void maybe_free(struct node *n) {
  if (n == &root || n->nlookup > 0 || n->pins > 0) return;
  path_remove(n);
  ino_remove(n);
  all_remove(n);
  n_nodes--;
  node_free(n);
}

void nodes_init(void) {
  pthread_mutex_lock(&table_mu);
  grow();
  memset(&root, 0, sizeof root);
  pthread_mutex_init(&root.mu, NULL);
  root.kind = NODE_DIR;
  root.nlookup = 1;
  if (FS->bucket) {
    root.bucket = strdup(FS->bucket);
    root.key = strdup(FS->prefix);
  } else {
    root.is_store_root = 1;
    root.key = strdup("");
  }
  root.ino = dir_ino_alloc(root.bucket, root.key);
  ino_insert(&root);
  /* The bucket-mode root is found by path like any directory (the change
   * poller looks parents up that way); the store root has no path. */
  if (root.bucket) path_insert(&root);
  n_nodes++;
  pthread_mutex_unlock(&table_mu);
}

void nodes_shutdown(void) {
  pthread_mutex_lock(&table_mu);
  /* At unmount the kernel may not forget what it knew: free everything. */
  while (all_nodes) {
    struct node *n = all_nodes;
    all_nodes = n->anext;
    node_free(n);
  }
  free(by_path);
  free(by_ino);
  by_path = by_ino = NULL;
  n_slots = n_nodes = 0;
  free(root.bucket);
  free(root.key);
  pthread_mutex_unlock(&table_mu);
}

struct node *node_root(void) { return &root; }

struct node *node_of(fuse_ino_t nodeid) {
  if (nodeid == FUSE_ROOT_ID) return &root;
  return (struct node *)(uintptr_t)nodeid;
}

fuse_ino_t node_id(const struct node *n) {
  if (n == &root) return FUSE_ROOT_ID;
  return (fuse_ino_t)(uintptr_t)n;
}

void node_snapshot(struct node *n, struct nkey *out) {
  pthread_mutex_lock(&table_mu);
  out->kind = n->kind;
  out->is_store_root = n->is_store_root;
  out->ino = n->ino;
  snprintf(out->bucket, sizeof out->bucket, "%s", n->bucket ? n->bucket : "");
  snprintf(out->key, sizeof out->key, "%s", n->key);
  pthread_mutex_unlock(&table_mu);
}

struct node *node_ref(const char *bucket, const char *key, int kind,
                      uint64_t ino) {
  pthread_mutex_lock(&table_mu);
  struct node *n = find_path(bucket, key);
  if (n && n != &root &&
      (n->kind != kind || (kind != NODE_DIR && n->ino != ino))) {
    /* Another object now lives at this path: the old node keeps serving
     * the kernel's references to it, the path gets a new node. */
    path_remove(n);
    n = NULL;
  }
  if (!n) {
    if (grow() != 0 || !(n = calloc(1, sizeof *n))) {
      pthread_mutex_unlock(&table_mu);
      return NULL;
    }
    pthread_mutex_init(&n->mu, NULL);
    n->kind = kind;
    n->bucket = strdup(bucket);
    n->key = strdup(key);
    if (!n->bucket || !n->key) {
      free(n->bucket);
      free(n->key);
      pthread_mutex_destroy(&n->mu);
      free(n);
      pthread_mutex_unlock(&table_mu);
      return NULL;
    }
    n_nodes++;
    all_insert(n);
    if (kind == NODE_DIR) {
      /* a marker object's ino when there is one, else synthetic */
      n->ino = ino ? ino : dir_ino_alloc(bucket, key);
      ino_insert(n);
    } else {
      n->ino = ino;
    }
    path_insert(n);
  }
  n->nlookup++;
  pthread_mutex_unlock(&table_mu);
  return n;
}

int node_dir_ino_known(const char *bucket, const char *key, uint64_t *ino) {
  pthread_mutex_lock(&table_mu);
  struct node *n = find_path(bucket, key);
  int known = n && n->kind == NODE_DIR;
  if (known) *ino = n->ino;
  pthread_mutex_unlock(&table_mu);
  return known;
}

uint64_t node_dir_ino_synthetic(const char *bucket, const char *key) {
  return dir_hash(bucket, key);
}

void node_forget(struct node *n, uint64_t nlookup) {
  pthread_mutex_lock(&table_mu);
  n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
  maybe_free(n);
  pthread_mutex_unlock(&table_mu);
}

struct node *node_find_pin(const char *bucket, const char *key) {
  pthread_mutex_lock(&table_mu);
  struct node *n = find_path(bucket, key);
  if (n) n->pins++;
  pthread_mutex_unlock(&table_mu);
  return n;
}

void node_pin(struct node *n) {
  pthread_mutex_lock(&table_mu);
  n->pins++;
  pthread_mutex_unlock(&table_mu);
}

void node_unpin(struct node *n) {
  pthread_mutex_lock(&table_mu);
  n->pins--;
  maybe_free(n);
  pthread_mutex_unlock(&table_mu);
}

void node_detach(struct node *n) {
  pthread_mutex_lock(&table_mu);
  if (n != &root) path_remove(n);
  pthread_mutex_unlock(&table_mu);
}

void node_move(struct node *n, const char *new_key) {
  char *k = strdup(new_key);
  pthread_mutex_lock(&table_mu);
  if (!k) { /* out of memory: the node just stops being found by path */
    path_remove(n);
    pthread_mutex_unlock(&table_mu);
    return;
  }
  struct node *old = find_path(n->bucket, new_key);
  if (old && old != n) path_remove(old);
  path_remove(n);
  free(n->key);
  n->key = k;
  path_insert(n);
  pthread_mutex_unlock(&table_mu);
}

void nodes_move_prefix(const char *bucket, const char *src, const char *dst) {
  size_t sl = strlen(src), dl = strlen(dst);
  pthread_mutex_lock(&table_mu);
  /* Collect first: re-keying moves nodes between chains. */
  struct node **movers = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < n_slots; i++)
    for (struct node *x = by_path[i]; x; x = x->hnext) {
      if (x == &root || !same_bucket(x->bucket, bucket)) continue;
      if (strncmp(x->key, src, sl) != 0) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        struct node **nm = realloc(movers, cap * sizeof *nm);
        if (!nm) break;
        movers = nm;
      }
      movers[n++] = x;
    }
  for (size_t i = 0; i < n; i++) path_remove(movers[i]);
  for (size_t i = 0; i < n; i++) {
    struct node *x = movers[i];
    size_t rest = strlen(x->key) - sl;
    char *k = malloc(dl + rest + 1);
    if (!k) continue; /* stays detached */
    memcpy(k, dst, dl);
    memcpy(k + dl, x->key + sl, rest + 1);
    struct node *old = find_path(bucket, k);
    if (old) path_remove(old);
    free(x->key);
    x->key = k;
    path_insert(x);
  }
  free(movers);
  pthread_mutex_unlock(&table_mu);
}

void nodes_foreach(const char *bucket, const char *prefix,
                   void (*fn)(struct node *n, void *arg), void *arg) {
  size_t pl = prefix ? strlen(prefix) : 0;
  pthread_mutex_lock(&table_mu);
  for (size_t i = 0; i < n_slots; i++)
    for (struct node *x = by_path[i]; x; x = x->hnext) {
      if (bucket && !same_bucket(x->bucket, bucket)) continue;
      if (prefix && strncmp(x->key, prefix, pl) != 0) continue;
      fn(x, arg);
    }
  pthread_mutex_unlock(&table_mu);
}

fuse_ino_t node_find_id(const char *bucket, const char *key) {
  pthread_mutex_lock(&table_mu);
  struct node *n = find_path(bucket, key);
  fuse_ino_t id = n ? node_id(n) : 0;
  pthread_mutex_unlock(&table_mu);
  return id;
}
