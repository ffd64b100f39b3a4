/* test_migrate.c -- a store written by an older build opens in this one.
 *
 * The catalog is rolled back to schema 1 (what the first release wrote:
 * no change feed, no upload.checksum_composite) with plain SQL, then opened
 * through the library, which must migrate it forward and keep every object.
 */
#include <sqlite3.h>

#include "harness.h"
#include "libstore.h"

static void exec_sql(const char *db, const char *sql) {
  sqlite3 *h;
  T_ASSERT(sqlite3_open(db, &h) == SQLITE_OK);
  char *err = NULL;
  if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
    T_FAIL("sql: %s", err ? err : "?");
  sqlite3_close(h);
}

static int user_version(const char *db) {
  sqlite3 *h;
  sqlite3_stmt *st;
  int v = -1;
  T_ASSERT(sqlite3_open(db, &h) == SQLITE_OK);
  T_ASSERT(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) ==
           SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

static void old_store_migrates(void) {
  const char *dir = t_path("store");
  store *s;
  T_OK(store_create(dir, NULL, &s));
  T_OK(store_bucket_create(s, "old-bucket", NULL));
  T_OK(store_put(s, "old-bucket", "kept.txt", "still here", 10, NULL, NULL));
  char up[STORE_UPLOAD_ID_MAX];
  T_OK(store_mpu_create(s, "old-bucket", "pending", NULL, up));
  store_close(s);
  int newest = user_version(t_path("store/catalog.db"));
  T_ASSERT(newest >= 3);

  /* Back to schema 1. */
  exec_sql(t_path("store/catalog.db"),
           "DROP TABLE change;"
           "ALTER TABLE upload DROP COLUMN checksum_composite;"
           "PRAGMA user_version = 1;");
  T_EQ_U64(user_version(t_path("store/catalog.db")), 1);

  T_OK(store_open(dir, NULL, &s));
  T_EQ_U64(user_version(t_path("store/catalog.db")), newest);
  store_object_info info;
  T_OK(store_head(s, "old-bucket", "kept.txt", NULL, &info));
  T_EQ_U64(info.size, 10);
  store_object_info_free(&info);
  /* What the migrations added works. */
  uint64_t seq;
  T_OK(store_changes_head(s, &seq));
  T_OK(store_put(s, "old-bucket", "new.txt", "x", 1, NULL, NULL));
  uint64_t seq2;
  T_OK(store_changes_head(s, &seq2));
  T_ASSERT(seq2 > seq);
  T_OK(store_mpu_head(s, "old-bucket", "pending", up, &info));
  T_EQ_U64(info.checksum_composite, 0);
  store_object_info_free(&info);
  store_fsck_report rep;
  T_OK(store_fsck(s, 0, NULL, NULL, &rep));
  store_close(s);
}

static void newer_store_refused(void) {
  const char *dir = t_path("store");
  store *s;
  T_OK(store_create(dir, NULL, &s));
  store_close(s);
  exec_sql(t_path("store/catalog.db"), "PRAGMA user_version = 999;");
  T_RC(STORE_ERR_TOO_NEW, store_open(dir, NULL, &s));
}

int main(int argc, char **argv) {
  T_MAIN_BEGIN(argc, argv);
  T_RUN(old_store_migrates);
  T_RUN(newer_store_refused);
  T_MAIN_END();
}
