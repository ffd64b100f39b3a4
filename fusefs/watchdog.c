/*
 * watchdog.c -- make `kill -9` of fusefs always end it.
 *
 * SIGKILL ends a process only when every one of its threads has left the
 * kernel.  The change poller's fuse_lowlevel_notify_inval_entry() takes
 * the parent directory's lock in the kernel, uninterruptibly; if a request
 * holding that lock (a CREATE in that directory, say) waits for an answer
 * from the threads SIGKILL just ended, the poller waits forever, the
 * process never exits, its /dev/fuse descriptor is never closed, and every
 * process touching the mount hangs with it (tests/torture found this in
 * about 1 kill of 13).  Only aborting the FUSE connection frees it.
 *
 * So fusefs forks a small watchdog process (no descriptor of the mount, no
 * store) that the kernel signals when fusefs's main thread dies
 * (PR_SET_PDEATHSIG).  If the rest of fusefs has not gone 2 s later, the
 * watchdog aborts the connection -- through /sys/fs/fuse/connections/N/
 * abort when fusectl is mounted, else as `umount -f` does (umount2 with
 * MNT_FORCE, once mountinfo says the mount there is still ours): every
 * pending request fails, the stuck thread gets its lock, and the process
 * ends.  The dead mount is then left for `fusermount3 -u` (as after any
 * crash of a FUSE daemon).  A clean unmount stops the watchdog first.
 * Only root gets a watchdog.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fusefs.h"

static pid_t watchdog;

/* Does process `pid` still have a thread that is not a zombie?  (Its main
 * thread is one by then: look at every task.) */
static int running(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int live = 0;
  struct dirent *e;
  while (!live && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char sp[128], buf[512];
    snprintf(sp, sizeof sp, "/proc/%d/task/%.20s/stat", (int)pid, e->d_name);
    int fd = open(sp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* "tid (comm) S ..." */
    if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X') live = 1;
  }
  closedir(d);
  return live;
}

static void child(pid_t parent, const char *abort_path) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  /* A terminal's ^C or systemd's SIGTERM is for fusefs, which stops us. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0) _exit(0);
  /* Hold nothing of fusefs: not /dev/fuse (or the connection could never
   * close), not the catalog. */
  if (close_range(3, ~0U, 0) != 0) {
    long maxfd = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (maxfd > 0 ? maxfd : 1024); fd++) close((int)fd);
  }
  if (getppid() == parent) {
    int sig;
    sigwait(&set, &sig);
  }
  for (int i = 0; i < 20; i++) {
    if (!running(parent)) _exit(0);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  int fd = open(abort_path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    int ok = write(fd, "1", 1) == 1;
    close(fd);
    if (ok) _exit(0);
  }
  char dev[32];
  fs_mount_dev(FS->mnt, dev, sizeof dev);
  if (!strcmp(dev, FS->bdi)) umount2(FS->mnt, MNT_FORCE);
  _exit(0);
}

void watchdog_start(void) {
  const char *colon = strchr(FS->bdi, ':');
  if (!colon || !FS->mnt[0] || geteuid() != 0) return;
  char abort_path[96];
  snprintf(abort_path, sizeof abort_path, "/sys/fs/fuse/connections/%s/abort",
           colon + 1);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) child(parent, abort_path);
  if (pid > 0) watchdog = pid;
}

void watchdog_stop(void) {
  if (watchdog <= 0) return;
  kill(watchdog, SIGKILL);
  while (waitpid(watchdog, NULL, 0) < 0 && errno == EINTR) {
  }
  watchdog = 0;
}
