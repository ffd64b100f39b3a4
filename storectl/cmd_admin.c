/*
 * cmd_admin.c -- storectl verbs that shape a store: init, users, buckets.
 *
 * Secrets are printed exactly once, when a key is created (init, user add);
 * listings never show them, and copies in our memory are wiped after use.
 */
#include "storectl.h"

#include <stdlib.h>
#include <string.h>

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static void print_new_user(const store_user *u, int generated) {
  printf("user:       %s\n", u->name);
  printf("admin:      %s\n", u->is_admin ? "yes" : "no");
  printf("access key: %s\n", u->access_key);
  printf("secret key: %s\n", u->secret_key);
  fflush(stdout);
  if (generated)
    ctl_warn("note: the secret key is shown only now; keep it safe");
}

int cmd_init(ctl *c) {
  /* Command-line options win over the environment. */
  const char *ak = c->access_key ? c->access_key
                                 : env_nonempty("STORE_ACCESS_KEY");
  const char *sk = c->secret_key ? c->secret_key
                                 : env_nonempty("STORE_SECRET_KEY");
  int rc = store_create(c->store_dir, NULL, &c->st);
  if (rc != STORE_OK) {
    ctl_fail(rc, "init %s", c->store_dir);
    return EXIT_FAIL;
  }
  store_user u;
  memset(&u, 0, sizeof u);
  rc = store_user_add(c->st, "admin", ak, sk, 1, &u);
  if (rc != STORE_OK) {
    ctl_fail(rc, "init %s: adding the admin key (the store exists; use "
                 "'user add --admin')",
             c->store_dir);
    return EXIT_FAIL;
  }
  printf("store:      %s\n", c->store_dir);
  print_new_user(&u, !sk);
  explicit_bzero(&u, sizeof u);
  return EXIT_OK;
}

int cmd_user_add(ctl *c) {
  const char *name = c->argv[0];
  if (!*name) {
    ctl_warn("user add: NAME must not be empty");
    return EXIT_USAGE;
  }
  store_user u;
  memset(&u, 0, sizeof u);
  int rc = store_user_add(c->st, name, c->access_key, c->secret_key,
                          (c->opts & OPT_ADMIN) != 0, &u);
  if (rc != STORE_OK) {
    ctl_fail(rc, "user add %s", name);
    return EXIT_FAIL;
  }
  print_new_user(&u, !c->secret_key);
  explicit_bzero(&u, sizeof u);
  return EXIT_OK;
}

int cmd_user_list(ctl *c) {
  store_user *list = NULL;
  size_t n = 0;
  int rc = store_user_list(c->st, &list, &n);
  if (rc != STORE_OK) {
    ctl_fail(rc, "user list");
    return EXIT_FAIL;
  }
  /* ACCESS_KEY ROLE STATUS CREATED NAME -- never the secret. */
  for (size_t i = 0; i < n; i++) {
    char when[32];
    ctl_format_time(list[i].created_ns, when, sizeof when);
    printf("%-20s %-5s %-7s %s ", list[i].access_key,
           list[i].is_admin ? "admin" : "user",
           list[i].revoked ? "revoked" : "active", when);
    ctl_print_key(stdout, list[i].name);
    putchar('\n');
  }
  for (size_t i = 0; i < n; i++)
    explicit_bzero(list[i].secret_key, sizeof list[i].secret_key);
  store_user_list_free(list);
  return EXIT_OK;
}

int cmd_user_revoke(ctl *c) {
  int rc = store_user_revoke(c->st, c->argv[0]);
  if (rc != STORE_OK) {
    ctl_fail(rc, "user revoke %s", c->argv[0]);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

int cmd_bucket_create(ctl *c) {
  const char *name = c->argv[0];
  /* Check the name first: the error then names the rule that broke. */
  int rc = store_bucket_name_check(name);
  if (rc == STORE_OK) rc = store_bucket_create(c->st, name, "");
  if (rc != STORE_OK) {
    ctl_fail(rc, "bucket create %s", name);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

int cmd_bucket_delete(ctl *c) {
  int rc = store_bucket_delete(c->st, c->argv[0]);
  if (rc != STORE_OK) {
    ctl_fail(rc, "bucket delete %s", c->argv[0]);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static void print_bucket(const store_bucket_info *b) {
  char when[32];
  ctl_format_time(b->created_ns, when, sizeof when);
  /* CREATED NAME OWNER ("-" when the CLI created it) */
  printf("%s  %-24s %s\n", when, b->name, *b->owner ? b->owner : "-");
}

int cmd_bucket_list(ctl *c) {
  if (c->argc == 1) {
    store_bucket_info b;
    memset(&b, 0, sizeof b);
    int rc = store_bucket_head(c->st, c->argv[0], &b);
    if (rc != STORE_OK) {
      ctl_fail(rc, "bucket list %s", c->argv[0]);
      return EXIT_FAIL;
    }
    print_bucket(&b);
    return EXIT_OK;
  }
  store_bucket_info *list = NULL;
  size_t n = 0;
  int rc = store_bucket_list(c->st, &list, &n);
  if (rc != STORE_OK) {
    ctl_fail(rc, "bucket list");
    return EXIT_FAIL;
  }
  for (size_t i = 0; i < n; i++) print_bucket(&list[i]);
  store_bucket_list_free(list);
  return EXIT_OK;
}
