/*
 * test_dedup.c -- content addressing: identical content is stored once,
 * measured both through store_stats_get and on disk (st_blocks of the
 * files under DIR/chunks); GC gives the bytes back.
 */
#include "libstore.h"
#include "harness.h"
#include "tutil.h"

#define OBJ (8u * MiB)

static void dedup_ten_keys(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  T_OK(store_bucket_create(s, "cbk", NULL));
  t_du_acc du_empty = t_du(t_path("store/chunks"));
  uint8_t *data = t_gen(OBJ, 8888);
  char key[32];
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "copy-%d", i);
    const char *bucket = i % 3 == 2 ? "cbk" : "bkt";
    if (i % 2 == 0) {
      t_put(s, bucket, key, data, OBJ);
    } else {
      /* Streamed in piece sizes that differ per key: chunking must not
       * depend on how the bytes arrived. */
      store_writer *w = NULL;
      T_OK(store_writer_open(s, bucket, key, &w));
      size_t off = 0, piece = 1000 + (size_t)i * 37777;
      while (off < OBJ) {
        size_t k = OBJ - off < piece ? OBJ - off : piece;
        T_OK(store_write(w, data + off, k));
        off += k;
      }
      T_OK(store_writer_commit(w, NULL, NULL));
    }
  }
  store_stats st = t_stats(s);
  T_EQ_U64(st.objects, 10);
  T_EQ_U64(st.logical_bytes, 10ull * OBJ);
  if (st.physical_bytes < OBJ || st.physical_bytes > OBJ + OBJ / 8)
    T_FAIL("physical_bytes %llu for 10 copies of %u bytes (expected ~%u)",
           (unsigned long long)st.physical_bytes, OBJ, OBJ);
  T_EQ_U64(st.unreferenced_bytes, 0);

  t_du_acc du = t_du(t_path("store/chunks"));
  uint64_t used = du.bytes_alloc - du_empty.bytes_alloc;
  if (used > OBJ + OBJ / 4 || du.bytes_size > OBJ + OBJ / 8)
    T_FAIL("chunks/ uses %llu bytes on disk (%llu apparent) for 10 copies of "
           "%u bytes",
           (unsigned long long)used, (unsigned long long)du.bytes_size, OBJ);
  if (du.bytes_size < OBJ / 2)
    T_FAIL("chunks/ holds only %llu bytes: where is the data?",
           (unsigned long long)du.bytes_size);

  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "copy-%d", i);
    T_CONTENT(s, i % 3 == 2 ? "cbk" : "bkt", key, data, OBJ);
  }

  /* Deleting some copies frees nothing: the others still reference it. */
  for (int i = 0; i < 9; i++) {
    snprintf(key, sizeof key, "copy-%d", i);
    T_OK(store_delete(s, i % 3 == 2 ? "cbk" : "bkt", key));
  }
  store_gc_report gr;
  memset(&gr, 0, sizeof gr);
  T_OK(store_gc(s, NULL, NULL, &gr));
  T_EQ_U64(gr.bytes_freed, 0);
  T_CONTENT(s, "bkt", "copy-9", data, OBJ);
  st = t_stats(s);
  T_ASSERT(st.physical_bytes >= OBJ);

  /* Delete the last one: GC frees the bytes, in the catalog and on disk. */
  T_OK(store_delete(s, "bkt", "copy-9"));
  st = t_stats(s);
  T_ASSERT(st.unreferenced_bytes >= OBJ);
  memset(&gr, 0, sizeof gr);
  T_OK(store_gc(s, NULL, NULL, &gr));
  T_ASSERT(gr.bytes_freed >= OBJ);
  st = t_stats(s);
  T_EQ_U64(st.physical_bytes, 0);
  T_EQ_U64(st.unreferenced_bytes, 0);
  T_EQ_U64(st.objects, 0);
  du = t_du(t_path("store/chunks"));
  if (du.bytes_size > 64 * KiB)
    T_FAIL("after deleting everything and GC, chunks/ still holds %llu "
           "bytes in %llu files",
           (unsigned long long)du.bytes_size, (unsigned long long)du.files);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  T_EQ_U64(fr.orphan_files, 0);
  free(data);
  store_close(s);
}

static void dedup_near_identical(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 16 * MiB;
  uint8_t *data = t_gen(n, 4242);
  t_put(s, "bkt", "orig", data, n);
  store_stats st0 = t_stats(s);
  t_du_acc du0 = t_du(t_path("store/chunks"));
  /* The same bytes but one, in the middle. */
  data[n / 2 + 1] ^= 0x5a;
  t_put(s, "bkt", "changed", data, n);
  store_stats st1 = t_stats(s);
  t_du_acc du1 = t_du(t_path("store/chunks"));
  if (st1.physical_bytes - st0.physical_bytes >= n / 2)
    T_FAIL("a one-byte change of a 16 MiB object added %llu physical bytes",
           (unsigned long long)(st1.physical_bytes - st0.physical_bytes));
  if (du1.bytes_size - du0.bytes_size >= n / 2)
    T_FAIL("a one-byte change of a 16 MiB object added %llu bytes on disk",
           (unsigned long long)(du1.bytes_size - du0.bytes_size));
  T_CONTENT(s, "bkt", "changed", data, n);
  data[n / 2 + 1] ^= 0x5a;
  T_CONTENT(s, "bkt", "orig", data, n);
  free(data);
  store_close(s);
}

static void abort_and_failed_leave_nothing(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t *keep = t_gen(3 * MiB, 1);
  t_put(s, "bkt", "keep", keep, 3 * MiB);
  t_du_acc du0 = t_du(t_path("store"));
  t_du_acc ch0 = t_du(t_path("store/chunks"));

  uint8_t *data = t_gen(OBJ, 2);
  /* Aborted writer. */
  store_writer *w = NULL;
  T_OK(store_writer_open(s, "bkt", "gone", &w));
  T_OK(store_write(w, data, OBJ));
  store_writer_abort(w);
  /* A commit that fails its precondition. */
  store_put_opts po;
  memset(&po, 0, sizeof po);
  po.if_none_match_star = 1;
  T_RC(STORE_ERR_PRECONDITION, store_put(s, "bkt", "keep", data, OBJ, &po,
                                         NULL));
  /* An aborted edit. */
  w = NULL;
  T_OK(store_writer_open_edit(s, "bkt", "keep", &w));
  T_OK(store_pwrite(w, data, OBJ, 1 * MiB));
  store_writer_abort(w);

  store_object_info h;
  T_RC(STORE_ERR_NO_KEY, store_head(s, "bkt", "gone", NULL, &h));
  T_CONTENT(s, "bkt", "keep", keep, 3 * MiB);

  store_gc_report gr;
  memset(&gr, 0, sizeof gr);
  T_OK(store_gc(s, NULL, NULL, &gr));
  t_du_acc ch1 = t_du(t_path("store/chunks"));
  if (ch1.bytes_size > ch0.bytes_size)
    T_FAIL("chunks/ grew from %llu to %llu bytes after aborted writes + GC",
           (unsigned long long)ch0.bytes_size,
           (unsigned long long)ch1.bytes_size);
  t_du_acc stg = t_du(t_path("store/staging"));
  T_ASSERT(stg.bytes_size < 64 * KiB);
  /* The whole store (catalog included) has not grown by the data size. */
  t_du_acc du1 = t_du(t_path("store"));
  if (du1.bytes_size > du0.bytes_size + 2 * MiB)
    T_FAIL("store grew from %llu to %llu bytes after aborted writes + GC",
           (unsigned long long)du0.bytes_size,
           (unsigned long long)du1.bytes_size);
  store_stats st = t_stats(s);
  T_EQ_U64(st.unreferenced_bytes, 0);
  T_CONTENT(s, "bkt", "keep", keep, 3 * MiB);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  free(keep);
  free(data);
  store_close(s);
}

/* Objects sharing a prefix of content share its chunks. */
static void dedup_shared_prefix(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  const size_t n = 12 * MiB;
  uint8_t *data = t_gen(n + 1 * MiB, 31337);
  t_put(s, "bkt", "base", data, n);
  store_stats st0 = t_stats(s);
  /* Appended to: the unchanged leading bytes are shared. */
  t_put(s, "bkt", "longer", data, n + 1 * MiB);
  store_stats st1 = t_stats(s);
  if (st1.physical_bytes - st0.physical_bytes >= n / 2)
    T_FAIL("appending 1 MiB to a 12 MiB object added %llu physical bytes",
           (unsigned long long)(st1.physical_bytes - st0.physical_bytes));
  T_CONTENT(s, "bkt", "longer", data, n + 1 * MiB);
  T_CONTENT(s, "bkt", "base", data, n);
  free(data);
  store_close(s);
}

/* Inline (small) content is shared and reference-counted too. */
static void inline_dedup(void) {
  store *s = t_new_store();
  T_OK(store_bucket_create(s, "bkt", NULL));
  uint8_t small[1000];
  t_fill(small, sizeof small, 3);
  for (int i = 0; i < 20; i++) {
    char k[16];
    snprintf(k, sizeof k, "s%02d", i);
    t_put(s, "bkt", k, small, sizeof small);
  }
  store_stats st = t_stats(s);
  T_EQ_U64(st.logical_bytes, 20 * sizeof small);
  T_ASSERT(st.physical_bytes <= sizeof small);
  for (int i = 0; i < 19; i++) {
    char k[16];
    snprintf(k, sizeof k, "s%02d", i);
    T_OK(store_delete(s, "bkt", k));
  }
  T_OK(store_gc(s, NULL, NULL, NULL));
  T_CONTENT(s, "bkt", "s19", small, sizeof small);
  T_OK(store_delete(s, "bkt", "s19"));
  T_OK(store_gc(s, NULL, NULL, NULL));
  st = t_stats(s);
  T_EQ_U64(st.physical_bytes, 0);
  T_EQ_U64(st.chunks, 0);
  store_fsck_report fr;
  memset(&fr, 0, sizeof fr);
  T_OK(store_fsck(s, 0, NULL, NULL, &fr));
  store_close(s);
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(dedup_ten_keys);
  T_RUN(dedup_near_identical);
  T_RUN(abort_and_failed_leave_nothing);
  T_RUN(dedup_shared_prefix);
  T_RUN(inline_dedup);
  T_MAIN_END();
}
