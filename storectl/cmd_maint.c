/*
 * cmd_maint.c -- storectl maintenance verbs: gc, fsck, stats.
 *
 * They report in numbers: gc and fsck end with one summary line (counts,
 * bytes, seconds, MB/s) and fsck prints its full report, so a cron job's
 * mail or a test can read what happened.  fsck's exit status is the
 * health of the store: 0 only when healthy, 1 when damage was found.
 */
#include "storectl.h"

#include <string.h>

int cmd_gc(ctl *c) {
  ctl_progress prog;
  ctl_progress_init(&prog, c);
  store_gc_report rep;
  memset(&rep, 0, sizeof rep);
  double t0 = ctl_now();
  int rc = store_gc(c->st, ctl_progress_cb, &prog, &rep);
  double secs = ctl_now() - t0;
  ctl_progress_end(&prog);
  if (rc != STORE_OK) {
    ctl_fail(rc, "gc");
    return EXIT_FAIL;
  }
  printf("gc: %llu chunks deleted, %llu bytes freed, %llu orphan files "
         "deleted, %llu staging files cleaned, %llu uploads expired "
         "in %.2f s (%.1f MB/s)\n",
         (unsigned long long)rep.chunks_deleted,
         (unsigned long long)rep.bytes_freed,
         (unsigned long long)rep.orphan_files_deleted,
         (unsigned long long)rep.staging_cleaned,
         (unsigned long long)rep.uploads_expired, secs,
         ctl_rate(rep.bytes_freed, secs));
  return EXIT_OK;
}

int cmd_fsck(ctl *c) {
  int repair = (c->opts & OPT_REPAIR) != 0;
  ctl_progress prog;
  ctl_progress_init(&prog, c);
  store_fsck_report rep;
  memset(&rep, 0, sizeof rep);
  double t0 = ctl_now();
  int rc = store_fsck(c->st, repair, ctl_progress_cb, &prog, &rep);
  double secs = ctl_now() - t0;
  ctl_progress_end(&prog);
  if (rc != STORE_OK && rc != STORE_ERR_CORRUPT) {
    /* fsck could not run to the end: not a verdict on the store. */
    ctl_fail(rc, "fsck");
    return EXIT_FAIL;
  }
  printf("catalog integrity:  %s\n", rep.catalog_ok ? "ok" : "FAILED");
  printf("chunks checked:     %llu\n", (unsigned long long)rep.chunks_checked);
  printf("bytes checked:      %llu\n", (unsigned long long)rep.bytes_checked);
  printf("chunks corrupt:     %llu\n", (unsigned long long)rep.chunks_corrupt);
  printf("chunks missing:     %llu\n", (unsigned long long)rep.chunks_missing);
  printf("refcounts wrong:    %llu%s\n",
         (unsigned long long)rep.refcount_wrong,
         repair && rep.refcount_wrong ? " (repaired)" : "");
  printf("objects checked:    %llu\n",
         (unsigned long long)rep.objects_checked);
  printf("objects damaged:    %llu\n",
         (unsigned long long)rep.objects_damaged);
  printf("orphan files:       %llu (gc frees them)\n",
         (unsigned long long)rep.orphan_files);
  printf("fsck: %s: %llu chunks, %llu bytes, %llu objects checked in %.2f s "
         "(%.1f MB/s)\n",
         rc == STORE_OK ? "healthy" : "DAMAGED",
         (unsigned long long)rep.chunks_checked,
         (unsigned long long)rep.bytes_checked,
         (unsigned long long)rep.objects_checked, secs,
         ctl_rate(rep.bytes_checked, secs));
  if (rc != STORE_OK) {
    fflush(stdout);
    ctl_fail(rc, "fsck");
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

int cmd_stats(ctl *c) {
  store_stats st;
  memset(&st, 0, sizeof st);
  int rc = store_stats_get(c->st, &st);
  if (rc != STORE_OK) {
    ctl_fail(rc, "stats");
    return EXIT_FAIL;
  }
  printf("buckets:            %llu\n", (unsigned long long)st.buckets);
  printf("objects:            %llu\n", (unsigned long long)st.objects);
  printf("uploads:            %llu\n", (unsigned long long)st.uploads);
  printf("logical bytes:      %llu\n", (unsigned long long)st.logical_bytes);
  printf("physical bytes:     %llu\n", (unsigned long long)st.physical_bytes);
  if (st.physical_bytes)
    printf("dedup ratio:        %.2f\n",
           (double)st.logical_bytes / (double)st.physical_bytes);
  else
    printf("dedup ratio:        -\n");
  printf("chunks:             %llu\n", (unsigned long long)st.chunks);
  printf("inline chunks:      %llu\n", (unsigned long long)st.inline_chunks);
  printf("unreferenced:       %llu chunks, %llu bytes\n",
         (unsigned long long)st.unreferenced_chunks,
         (unsigned long long)st.unreferenced_bytes);
  return EXIT_OK;
}
