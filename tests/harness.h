/*
 * harness.h -- the tiny test harness every C test program uses.
 *
 * A test program lists its tests in main() with T_RUN(fn).  Each test runs
 * in a forked child so that a crash or an abort fails that test alone; the
 * child gets a fresh scratch directory (t_dir()).  The program prints
 * "ok NAME" or "FAIL NAME: reason" per test and ends with the plain line
 * "N passed, N failed", which tests/run-all adds up.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static char t_scratch[4096];
static int t_passed, t_failed;
static const char *t_only; /* run one test: argv[1] */

/* The scratch directory of the running test (empty at start). */
static inline const char *t_dir(void) { return t_scratch; }

/* A path inside the scratch directory (static buffer rotation of 8). */
static inline const char *t_path(const char *fmt, ...) {
  static char bufs[8][4096];
  static int next;
  char *b = bufs[next++ & 7];
  int n = snprintf(b, 4096, "%s/", t_scratch);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, 4096 - (size_t)n, fmt, ap);
  va_end(ap);
  return b;
}

#define T_FAIL(...)                                                         \
  do {                                                                      \
    fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                       \
    fprintf(stderr, __VA_ARGS__);                                           \
    fprintf(stderr, "\n");                                                  \
    _exit(1);                                                               \
  } while (0)

#define T_ASSERT(cond)                                                      \
  do {                                                                      \
    if (!(cond)) T_FAIL("assertion failed: %s", #cond);                     \
  } while (0)

/* Assert a libstore call returns the expected code. */
#define T_RC(expected, call)                                                \
  do {                                                                      \
    int t_rc_ = (call);                                                     \
    if (t_rc_ != (expected))                                                \
      T_FAIL("%s returned %d (%s: %s), expected %d", #call, t_rc_,          \
             store_strerror(t_rc_), store_errmsg(), (int)(expected));       \
  } while (0)
#define T_OK(call) T_RC(STORE_OK, call)

#define T_EQ_U64(a, b)                                                      \
  do {                                                                      \
    unsigned long long t_a_ = (unsigned long long)(a),                      \
                       t_b_ = (unsigned long long)(b);                      \
    if (t_a_ != t_b_) T_FAIL("%s == %llu, expected %s == %llu", #a, t_a_,   \
                             #b, t_b_);                                     \
  } while (0)

#define T_EQ_STR(a, b)                                                      \
  do {                                                                      \
    const char *t_a_ = (a), *t_b_ = (b);                                    \
    if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                          \
      T_FAIL("%s == \"%s\", expected \"%s\"", #a, t_a_ ? t_a_ : "(null)",   \
             t_b_ ? t_b_ : "(null)");                                       \
  } while (0)

static inline void t_rmrf(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline void t_run(const char *name, void (*fn)(void)) {
  if (t_only && strcmp(t_only, name) != 0) return;
  const char *base = getenv("TEST_TMPDIR");
  snprintf(t_scratch, sizeof t_scratch, "%s/t-%s-%d", base ? base : "/tmp",
           name, (int)getpid());
  t_rmrf(t_scratch);
  if (mkdir(t_scratch, 0755) != 0) {
    printf("FAIL %s: cannot create %s: %s\n", name, t_scratch,
           strerror(errno));
    t_failed++;
    return;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    printf("ok %s\n", name);
    t_passed++;
    t_rmrf(t_scratch);
  } else {
    if (WIFSIGNALED(status))
      printf("FAIL %s: killed by signal %d (scratch kept: %s)\n", name,
             WTERMSIG(status), t_scratch);
    else
      printf("FAIL %s: exit %d (scratch kept: %s)\n", name,
             WEXITSTATUS(status), t_scratch);
    t_failed++;
  }
  fflush(stdout);
}

#define T_RUN(fn) t_run(#fn, fn)
#define T_MAIN_BEGIN(argc, argv)                                            \
  setvbuf(stdout, NULL, _IOLBF, 0);                                         \
  if ((argc) > 1) t_only = (argv)[1];
#define T_MAIN_END()                                                        \
  printf("%d passed, %d failed\n", t_passed, t_failed);                     \
  return t_failed ? 1 : 0;

#endif
