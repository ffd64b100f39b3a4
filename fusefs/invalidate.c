/*
 * invalidate.c -- the change-feed poller: how changes made by s3d, storectl
 * or another mount reach this kernel's caches.
 *
 * Every FS->poll_ms (200 ms) a background thread reads libstore's change
 * feed (store_changes_since) from where it left off and, for each changed
 * key that the kernel may have cached, calls
 *   fuse_lowlevel_notify_inval_inode(node, 0, 0)  attributes and pages
 *   fuse_lowlevel_notify_inval_entry(dir, name)   the name -> node binding
 * When the feed says records were lost (pruned before we read them), every
 * cached node is invalidated.
 *
 * Directory entries themselves are not invalidated (only their attributes):
 * unhashing a directory's dentry would break getcwd() of processes inside
 * it.  A directory that disappears stays visible for at most the entry
 * timeout (1 s by default).
 *
 * The thread holds no lock while notifying (the kernel may need a
 * directory lock that a running request holds) and no catalog transaction
 * beyond one store_changes_since call.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusefs.h"

static pthread_t poller;
static int started;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int stopping;
static uint64_t seq;

static void inval_inode(fuse_ino_t id) {
  if (id) fuse_lowlevel_notify_inval_inode(FS->se, id, 0, 0);
}

static void inval_entry(fuse_ino_t parent, const char *name, size_t len) {
  if (parent && len) fuse_lowlevel_notify_inval_entry(FS->se, parent, name, len);
}

/* The node id of directory prefix `p` of `bucket` on this mount, or 0. */
static fuse_ino_t dir_id(const char *bucket, const char *p) {
  if (FS->bucket) {
    if (strcmp(bucket, FS->bucket) != 0) return 0;
    if (strncmp(p, FS->prefix, strlen(FS->prefix)) != 0) return 0;
  }
  return node_find_id(bucket, p);
}

/* Key `key` of `bucket` changed (created, replaced or deleted). */
static void inval_key(const char *bucket, const char *key) {
  size_t kl = strlen(key);
  char buf[STORE_KEY_MAX + 32];
  if (kl > STORE_KEY_MAX) return;
  inval_inode(dir_id(bucket, key));
  /* A cached file that is now shadowed by a new directory of the same name
   * ("a" when "a/b" appears) must be looked up again: it becomes a.~file. */
  for (size_t i = 0; i < kl; i++) {
    if (key[i] != '/') continue;
    size_t start = i;
    while (start > 0 && key[start - 1] != '/') start--;
    memcpy(buf, key, i);
    buf[i] = '\0';
    if (i > start && node_find_id(bucket, buf)) {
      buf[start] = '\0';
      inval_entry(dir_id(bucket, buf), key + start, i - start);
    }
  }
  if (kl == 0 || key[kl - 1] == '/') return; /* a directory marker */
  size_t start = kl;
  while (start > 0 && key[start - 1] != '/') start--;
  memcpy(buf, key, start);
  buf[start] = '\0';
  fuse_ino_t parent = dir_id(bucket, buf);
  if (!parent) return;
  const char *name = key + start;
  size_t nl = kl - start;
  inval_entry(parent, name, nl);
  /* the same file under its conflict name */
  snprintf(buf, sizeof buf, "%s%s", name, PATHMAP_CONFLICT_SUFFIX);
  inval_entry(parent, buf, strlen(buf));
}

struct keys {
  char **v;
  size_t n, cap;
};

static void collect(struct node *n, void *arg) {
  struct keys *k = arg;
  if (!n->bucket) return;
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 64;
    char **v = realloc(k->v, cap * sizeof *v);
    if (!v) return;
    k->v = v;
    k->cap = cap;
  }
  /* "bucket\0key" */
  size_t bl = strlen(n->bucket), kl = strlen(n->key);
  char *s = malloc(bl + kl + 2);
  if (!s) return;
  memcpy(s, n->bucket, bl + 1);
  memcpy(s + bl + 1, n->key, kl + 1);
  k->v[k->n++] = s;
}

/* Every cached node of `bucket` (all when NULL) under `prefix`. */
static void inval_under(const char *bucket, const char *prefix) {
  struct keys k = {0};
  nodes_foreach(bucket, prefix, collect, &k);
  for (size_t i = 0; i < k.n; i++) {
    const char *b = k.v[i], *key = k.v[i] + strlen(k.v[i]) + 1;
    inval_key(b, key);
    free(k.v[i]);
  }
  free(k.v);
}

static void handle(const store_change *c) {
  if (FS->bucket && strcmp(c->bucket, FS->bucket) != 0) return;
  /* Our own changes reached the kernel through our replies already:
   * invalidating them would only throw away good caches. */
  if (c->origin == store_origin(FS->st)) return;
  switch (c->kind) {
  case STORE_CHANGE_PUT:
  case STORE_CHANGE_DELETE:
    inval_key(c->bucket, c->key);
    break;
  case STORE_CHANGE_PREFIX:
    inval_under(c->bucket, c->key);
    inval_key(c->bucket, c->key);
    break;
  case STORE_CHANGE_BUCKET:
    if (!FS->bucket) {
      store_bucket_info bi;
      /* Only a deleted bucket's entry goes (see the top comment). */
      if (store_bucket_head(FS->st, c->bucket, &bi) == STORE_ERR_NO_BUCKET)
        inval_entry(FUSE_ROOT_ID, c->bucket, strlen(c->bucket));
    }
    break;
  default:
    inval_under(c->bucket, NULL);
  }
}

/* One pass over the feed. */
static void poll_once(void) {
  for (;;) {
    store_change *ch = NULL;
    size_t n = 0;
    int lost = 0;
    int rc = store_changes_since(FS->st, seq, 1000, &ch, &n, &lost);
    if (rc) {
      if (FS->debug)
        fs_log("change feed: %s: %s", store_strerror(rc), store_errmsg());
      return;
    }
    if (lost) { /* records pruned before we read them: everything */
      inval_under(NULL, NULL);
      if (n == 0) store_changes_head(FS->st, &seq);
    }
    for (size_t i = 0; i < n; i++) {
      handle(&ch[i]);
      seq = ch[i].seq;
    }
    store_changes_free(ch, n);
    if (n < 1000) return;
  }
}

static void *poll_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  while (!stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)FS->poll_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&cv, &mu, &ts);
    if (stopping) break;
    pthread_mutex_unlock(&mu);
    poll_once();
    pthread_mutex_lock(&mu);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

int invalidate_start(void) {
  if (FS->poll_ms == 0) return 0;
  seq = FS->feed_seq;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&cv, &ca);
  pthread_condattr_destroy(&ca);
  /* Signals (SIGTERM: unmount) belong to the main thread. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int e = pthread_create(&poller, NULL, poll_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) return e;
  started = 1;
  return 0;
}

void invalidate_stop(void) {
  if (!started) return;
  pthread_mutex_lock(&mu);
  stopping = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(poller, NULL);
  started = 0;
}
