/*
 * backend_local.c -- chunk files in a local directory.
 *
 * Layout under the store directory:
 *   chunks/XX/<64 hex>      a chunk, named by the SHA-256 of its bytes,
 *                           XX = first two hex digits (256 fan-out dirs)
 *   staging/P.lock          held with flock() by a live process P
 *   staging/P/              P's writes in progress and its leases
 *
 * Writing a chunk: the bytes go to staging/P/N (fdatasync when durable),
 * then link() gives them their public name.  The staging name stays as
 * the writer's *lease* until its catalog commit: GC may unlink the public
 * name of a chunk no row references, but the inode lives on through the
 * lease, and the commit restores the public name from it (ensure()).  So
 * GC never loses a chunk a concurrent writer is about to commit, and no
 * catalog transaction is held while chunk bytes are written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void chunk_path(store *s, const uint8_t id[HASH_LEN], char *out,
                       size_t cap) {
  char hex[HEX_LEN + 1];
  store_hex(id, HASH_LEN, hex);
  snprintf(out, cap, "%s/chunks/%.2s/%s", s->dir, hex, hex);
}

static void fanout_path(store *s, const uint8_t id[HASH_LEN], char *out,
                        size_t cap) {
  char hex[HEX_LEN + 1];
  store_hex(id, HASH_LEN, hex);
  snprintf(out, cap, "%s/chunks/%.2s", s->dir, hex);
}

static int fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return store__errno(errno, path);
  int r = fsync(fd);
  int e = errno;
  close(fd);
  if (r != 0) return store__errno(e, path);
  return STORE_OK;
}

static int write_all(int fd, const void *data, size_t n) {
  const uint8_t *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Does the file at `path` hold exactly these n bytes? */
static bool same_content(const char *path, const void *data, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool same = fstat(fd, &st) == 0 && (uint64_t)st.st_size == n;
  uint8_t buf[65536];
  const uint8_t *p = data;
  for (size_t off = 0; same && off < n;) {
    size_t want = n - off < sizeof buf ? n - off : sizeof buf;
    ssize_t r = pread(fd, buf, want, (off_t)off);
    if (r <= 0) same = false;
    else if (memcmp(buf, p + off, (size_t)r) != 0) same = false;
    else off += (size_t)r;
  }
  close(fd);
  return same;
}

static int local_put_begin(store *s, const uint8_t id[HASH_LEN],
                           const void *data, size_t n, char *lease, int *fdp) {
  char final[PATH_MAX];
  chunk_path(s, id, final, sizeof final);
  pthread_mutex_lock(&s->lease_mu);
  uint64_t seq = ++s->lease_seq;
  pthread_mutex_unlock(&s->lease_mu);
  snprintf(lease, PATH_MAX, "%s/%llu", s->staging, (unsigned long long)seq);
  *fdp = -1;

  /* Identical content already present: lease it and write nothing --
   * but only after checking the leased bytes really are ours.  A chunk
   * damaged on disk must not absorb new writes of its content (the write
   * would be acknowledged and never stored): it is moved aside, and the
   * fresh bytes below take its name, which also heals older objects. */
  if (link(final, lease) == 0) {
    if (same_content(lease, data, n)) return STORE_OK;
    unlink(lease);
    char aside[PATH_MAX + 32];
    snprintf(aside, sizeof aside, "%s.corrupt-%llu", final,
             (unsigned long long)seq);
    if (rename(final, aside) != 0 && errno != ENOENT)
      return store__errno(errno, "move damaged chunk aside");
  } else if (errno != ENOENT) {
    return store__errno(errno, "chunk lease");
  }

  int fd = open(lease, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return store__errno(errno, "staging chunk");
  int err = write_all(fd, data, n);
  if (err) {
    close(fd);
    unlink(lease);
    return store__errno(err, "write chunk");
  }
  /* Start writeback now, so that put_finish's fdatasync mostly waits for
   * I/O that is already under way. */
  if (s->cfg.durability == STORE_DURABLE_FULL)
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  *fdp = fd;
  return STORE_OK;
}

static int local_put_finish(store *s, const uint8_t id[HASH_LEN],
                            const char *lease, int fd) {
  if (fd < 0) return STORE_OK; /* a lease on an existing chunk */
  int err = 0;
  if (s->cfg.durability == STORE_DURABLE_FULL && fdatasync(fd) != 0)
    err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (err) {
    unlink(lease);
    return store__errno(err, "write chunk");
  }
  char final[PATH_MAX];
  chunk_path(s, id, final, sizeof final);
  if (link(lease, final) != 0 && errno != EEXIST) {
    int e = errno;
    unlink(lease);
    return store__errno(e, "place chunk");
  }
  return STORE_OK;
}

static int local_sync_names(store *s, const uint8_t (*ids)[HASH_LEN],
                            size_t n) {
  if (s->cfg.durability != STORE_DURABLE_FULL) return STORE_OK;
  /* One fsync per fan-out directory touched. */
  uint8_t seen[256] = {0};
  for (size_t i = 0; i < n; i++) {
    if (seen[ids[i][0]]) continue;
    seen[ids[i][0]] = 1;
    char dir[PATH_MAX];
    fanout_path(s, ids[i], dir, sizeof dir);
    int rc = fsync_dir(dir);
    if (rc) return rc;
  }
  return STORE_OK;
}

static int local_ensure(store *s, const uint8_t id[HASH_LEN],
                        const char *lease) {
  char final[PATH_MAX];
  chunk_path(s, id, final, sizeof final);
  if (access(final, F_OK) == 0) return STORE_OK;
  if (!lease || !lease[0])
    return store__err(STORE_ERR_CORRUPT, "chunk vanished and no lease");
  if (link(lease, final) != 0 && errno != EEXIST)
    return store__errno(errno, "restore chunk from lease");
  if (s->cfg.durability == STORE_DURABLE_FULL) {
    char dir[PATH_MAX];
    fanout_path(s, id, dir, sizeof dir);
    return fsync_dir(dir);
  }
  return STORE_OK;
}

static void local_release(store *s, const char *lease) {
  (void)s;
  if (lease && lease[0]) unlink(lease);
}

static int local_open(store *s, const uint8_t id[HASH_LEN], int *fd) {
  char final[PATH_MAX];
  chunk_path(s, id, final, sizeof final);
  *fd = open(final, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) {
    if (errno == ENOENT) {
      char hex[HEX_LEN + 1];
      store_hex(id, HASH_LEN, hex);
      return store__err(STORE_ERR_CORRUPT, "chunk %s is missing", hex);
    }
    return store__errno(errno, "open chunk");
  }
  return STORE_OK;
}

static void local_prefetch(store *s, const uint8_t id[HASH_LEN]) {
  char final[PATH_MAX];
  chunk_path(s, id, final, sizeof final);
  int fd = open(final, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return; /* inline chunks have no file */
  /* Read-ahead is queued now and survives the close. */
  posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  close(fd);
}

static int local_remove(store *s, const uint8_t id[HASH_LEN]) {
  char final[PATH_MAX];
  chunk_path(s, id, final, sizeof final);
  if (unlink(final) != 0 && errno != ENOENT)
    return store__errno(errno, "remove chunk");
  return STORE_OK;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static int local_walk(store *s,
                      int (*fn)(void *arg, const uint8_t id[HASH_LEN],
                                uint64_t size),
                      void *arg) {
  char dir[PATH_MAX];
  for (int x = 0; x < 256; x++) {
    snprintf(dir, sizeof dir, "%s/chunks/%02x", s->dir, x);
    DIR *d = opendir(dir);
    if (!d) {
      if (errno == ENOENT) continue;
      return store__errno(errno, dir);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strlen(e->d_name) != HEX_LEN) continue;
      uint8_t id[HASH_LEN];
      bool ok = true;
      for (int i = 0; i < HASH_LEN && ok; i++) {
        int hi = hexval(e->d_name[2 * i]), lo = hexval(e->d_name[2 * i + 1]);
        if (hi < 0 || lo < 0) ok = false;
        else id[i] = (uint8_t)(hi << 4 | lo);
      }
      if (!ok) continue;
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, 0) != 0) continue;
      int stop = fn(arg, id, (uint64_t)st.st_size);
      if (stop) {
        closedir(d);
        return stop < 0 ? STORE_ERR_IO : STORE_OK;
      }
    }
    closedir(d);
  }
  return STORE_OK;
}

static int rm_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) return errno == ENOENT ? 0 : -1;
  struct dirent *e;
  char sub[PATH_MAX];
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    if (e->d_type == DT_DIR) rm_tree(sub);
    else unlink(sub);
  }
  closedir(d);
  return rmdir(path);
}

static int local_clean_staging(store *s, uint64_t *cleaned) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/staging", s->dir);
  DIR *d = opendir(dir);
  if (!d) return store__errno(errno, dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".lock") != 0) continue;
    char lock[PATH_MAX], sub[PATH_MAX];
    if (snprintf(lock, sizeof lock, "%s/%s", dir, e->d_name) >= PATH_MAX ||
        snprintf(sub, sizeof sub, "%s/%.*s", dir, (int)(len - 5),
                 e->d_name) >= PATH_MAX)
      continue;
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    /* A live process holds its lock: only the dead can be cleaned.  Our
     * own lock conflicts too (flock is per open file description). */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      rm_tree(sub);
      unlink(lock);
      if (cleaned) (*cleaned)++;
    }
    close(fd);
  }
  closedir(d);
  return STORE_OK;
}

static int local_init_dir(store *s) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/chunks", s->dir);
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return store__errno(errno, path);
  for (int x = 0; x < 256; x++) {
    snprintf(path, sizeof path, "%s/chunks/%02x", s->dir, x);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return store__errno(errno, path);
  }
  snprintf(path, sizeof path, "%s/staging", s->dir);
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return store__errno(errno, path);
  snprintf(path, sizeof path, "%s/chunks", s->dir);
  int rc = fsync_dir(path);
  if (!rc) rc = fsync_dir(s->dir);
  return rc;
}

static int local_attach(store *s) {
  if (s->read_only) return STORE_OK;
  char id[17], lock[PATH_MAX], dir[PATH_MAX];
  store__random_id(id, 16);
  if (snprintf(dir, sizeof dir, "%s/staging/%d-%s", s->dir, (int)getpid(),
               id) >= PATH_MAX - 8 ||
      snprintf(lock, sizeof lock, "%s.lock", dir) >= PATH_MAX)
    return store__err(STORE_ERR_INVALID, "store path too long");
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return store__errno(errno, lock);
  if (flock(fd, LOCK_EX) != 0) {
    int e = errno;
    close(fd);
    return store__errno(e, lock);
  }
  if (mkdir(dir, 0755) != 0) {
    int e = errno;
    close(fd);
    unlink(lock);
    return store__errno(e, dir);
  }
  s->staging = strdup(dir);
  s->staging_lock = fd;
  return s->staging ? STORE_OK : STORE_ERR_NOMEM;
}

static void local_detach(store *s) {
  if (!s->staging) return;
  rm_tree(s->staging);
  char lock[PATH_MAX];
  snprintf(lock, sizeof lock, "%s.lock", s->staging);
  unlink(lock);
  close(s->staging_lock);
  free(s->staging);
  s->staging = NULL;
}

const chunk_backend store__backend_local = {
    .put_begin = local_put_begin,
    .put_finish = local_put_finish,
    .sync_names = local_sync_names,
    .ensure = local_ensure,
    .release = local_release,
    .prefetch = local_prefetch,
    .open = local_open,
    .remove = local_remove,
    .walk = local_walk,
    .clean_staging = local_clean_staging,
    .init_dir = local_init_dir,
    .attach = local_attach,
    .detach = local_detach,
};
