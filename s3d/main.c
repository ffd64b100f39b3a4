/*
 * main.c -- s3d's entry point: options (command line > environment >
 * config file), the store, libmicrohttpd, signals and a clean shutdown.
 *
 * Worker model: one thread per connection (MHD_USE_THREAD_PER_CONNECTION)
 * with a connection limit.  libstore calls block (a commit waits for
 * fsync), and libstore batches the commits of concurrent threads into one
 * transaction, so many requests must be able to wait at once: a thread each
 * is the simplest model that gives that, and keeps both cores busy.
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting (MHD_quiesce_daemon), let the
 * requests in flight finish (up to --shutdown-timeout seconds), then stop
 * the daemon.  A request still receiving its body at that point is cut off;
 * its writer is aborted in the completion callback, so nothing half-written
 * becomes visible.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3d.h"

extern atomic_int g_inflight;
void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn);
void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe);
enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
                          const char *url, const char *method,
                          const char *version, const char *upload_data,
                          size_t *upload_data_size, void **con_cls);

static void usage(FILE *f) {
  fprintf(f,
    "Usage: s3d --store DIR --listen HOST:PORT [options]\n"
    "\n"
    "Serve the store in DIR over the S3 protocol.\n"
    "\n"
    "  --store DIR            the store directory (env S3D_STORE)\n"
    "  --listen HOST:PORT     address to listen on (env S3D_LISTEN;\n"
    "                         default 127.0.0.1:9000)\n"
    "  --tls-cert FILE        PEM certificate: serve HTTPS (env S3D_TLS_CERT)\n"
    "  --tls-key FILE         PEM private key (env S3D_TLS_KEY)\n"
    "  --domain D             accept virtual-hosted style Host: BUCKET.D\n"
    "                         (env S3D_DOMAIN)\n"
    "  --region R             the region clients must sign for; default:\n"
    "                         accept any, report us-east-1 (env S3D_REGION)\n"
    "  --max-connections N    connection limit (default 256;\n"
    "                         env S3D_MAX_CONNECTIONS)\n"
    "  --timeout SECONDS      idle connection timeout (default 120)\n"
    "  --header-timeout S     a request header must be complete this long\n"
    "                         after the connection opened or the request's\n"
    "                         first byte, else the connection is closed\n"
    "                         (default 10, at most --timeout; 0: no limit)\n"
    "  --min-body-rate B      a request body must bring B bytes a second,\n"
    "                         counted over 30 s windows, else the connection\n"
    "                         is closed (default 1024; 0: no limit)\n"
    "  --max-connections-per-ip N\n"
    "                         connections from one address (default 0: only\n"
    "                         --max-connections)\n"
    "  --busy-timeout MS      how long a write waits for another process's\n"
    "                         lock on the catalog before 503 SlowDown\n"
    "                         (default 30000)\n"
    "  --shutdown-timeout S   on SIGTERM, wait this long for requests in\n"
    "                         flight (default 30)\n"
    "  --durability full|process\n"
    "                         fsync policy of commits (default full)\n"
    "  --config FILE          read `key = value` lines (keys as the long\n"
    "                         options without --) (env S3D_CONFIG)\n"
    "  --help                 show this help\n"
    "  --version              show the version\n"
    "\n"
    "Precedence: command line, then environment, then config file.\n"
    "Exit status: 0 after a clean shutdown, 2 on a usage error, 1 otherwise.\n");
}

/* One option value with its source precedence. */
struct opt {
  const char *name;
  const char *env;
  char *val;
  int prio; /* 3 cli, 2 env, 1 file */
};

static struct opt g_opts[] = {
  {"store", "S3D_STORE", NULL, 0},
  {"listen", "S3D_LISTEN", NULL, 0},
  {"tls-cert", "S3D_TLS_CERT", NULL, 0},
  {"tls-key", "S3D_TLS_KEY", NULL, 0},
  {"domain", "S3D_DOMAIN", NULL, 0},
  {"region", "S3D_REGION", NULL, 0},
  {"max-connections", "S3D_MAX_CONNECTIONS", NULL, 0},
  {"timeout", "S3D_TIMEOUT", NULL, 0},
  {"header-timeout", "S3D_HEADER_TIMEOUT", NULL, 0},
  {"min-body-rate", "S3D_MIN_BODY_RATE", NULL, 0},
  {"max-connections-per-ip", "S3D_MAX_CONNECTIONS_PER_IP", NULL, 0},
  {"busy-timeout", "S3D_BUSY_TIMEOUT", NULL, 0},
  {"shutdown-timeout", "S3D_SHUTDOWN_TIMEOUT", NULL, 0},
  {"durability", "S3D_DURABILITY", NULL, 0},
  {NULL, NULL, NULL, 0},
};

static int set_opt(const char *name, const char *val, int prio) {
  for (struct opt *o = g_opts; o->name; o++)
    if (!strcmp(o->name, name)) {
      if (o->prio > prio) return 0;
      free(o->val);
      o->val = strdup(val);
      o->prio = prio;
      return 0;
    }
  return -1;
}

static const char *get_opt(const char *name) {
  for (struct opt *o = g_opts; o->name; o++)
    if (!strcmp(o->name, name)) return o->val;
  return NULL;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
               s[n - 1] == '\r'))
    s[--n] = 0;
  return s;
}

/* Returns 0, 1 (I/O error) or 2 (syntax). */
static int read_config(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "s3d: cannot read config %s: %s\n", path, strerror(errno));
    return 1;
  }
  char line[4096];
  int lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "s3d: %s:%d: expected `key = value`\n", path, lineno);
      fclose(f);
      return 2;
    }
    *eq = 0;
    char *k = trim(s), *v = trim(eq + 1);
    size_t vl = strlen(v);
    if (vl >= 2 && ((v[0] == '"' && v[vl - 1] == '"') ||
                    (v[0] == '\'' && v[vl - 1] == '\''))) {
      v[vl - 1] = 0;
      v++;
    }
    for (char *c = k; *c; c++)
      if (*c == '_') *c = '-';
    if (set_opt(k, v, 1)) {
      fprintf(stderr, "s3d: %s:%d: unknown key '%s'\n", path, lineno, k);
      fclose(f);
      return 2;
    }
  }
  fclose(f);
  return 0;
}

static char *read_file(const char *path, size_t max) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(max + 1);
  size_t n = buf ? fread(buf, 1, max, f) : 0;
  int bad = !buf || ferror(f) || !feof(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  return buf;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = (unsigned)v;
  return 0;
}

/* HOST:PORT, [V6]:PORT or :PORT. */
static int resolve_listen(const char *spec, struct sockaddr_storage *ss,
                          socklen_t *sl) {
  char host[256];
  const char *port;
  if (spec[0] == '[') {
    const char *rb = strchr(spec, ']');
    if (!rb || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof host)
      return -1;
    memcpy(host, spec + 1, (size_t)(rb - spec - 1));
    host[rb - spec - 1] = 0;
    port = rb + 2;
  } else {
    const char *c = strrchr(spec, ':');
    if (!c || (size_t)(c - spec) >= sizeof host) return -1;
    memcpy(host, spec, (size_t)(c - spec));
    host[c - spec] = 0;
    port = c + 1;
  }
  unsigned pn;
  if (parse_uint(port, 0, 65535, &pn)) return -1;
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) || !ai) return -2;
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *sl = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

static void mhd_panic(void *cls, const char *file, unsigned int line,
                      const char *reason) {
  (void)cls;
  fprintf(stderr, "s3d: libmicrohttpd panic at %s:%u: %s\n", file, line,
          reason ? reason : "?");
  abort();
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[1024];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && line[n - 1] == '\n') line[--n] = 0;
  fprintf(stderr, "s3d: mhd: %s\n", line);
}

int main(int argc, char **argv) {
  static const struct option lopts[] = {
    {"store", required_argument, 0, 's'},
    {"listen", required_argument, 0, 'l'},
    {"tls-cert", required_argument, 0, 'c'},
    {"tls-key", required_argument, 0, 'k'},
    {"domain", required_argument, 0, 'd'},
    {"region", required_argument, 0, 'r'},
    {"max-connections", required_argument, 0, 'm'},
    {"timeout", required_argument, 0, 't'},
    {"header-timeout", required_argument, 0, 'H'},
    {"min-body-rate", required_argument, 0, 'R'},
    {"max-connections-per-ip", required_argument, 0, 'P'},
    {"busy-timeout", required_argument, 0, 'B'},
    {"shutdown-timeout", required_argument, 0, 'T'},
    {"durability", required_argument, 0, 'D'},
    {"config", required_argument, 0, 'C'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
  };
  const char *config = getenv("S3D_CONFIG");
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case 'V': printf("s3d %s\n", S3D_VERSION); return 0;
    case 'C': config = optarg; break;
    case '?':
      fprintf(stderr, "s3d: unknown or incomplete option '%s' (see --help)\n",
              argv[optind - 1]);
      return 2;
    default:
      for (const struct option *o = lopts; o->name; o++)
        if (o->val == c) set_opt(o->name, optarg, 3);
      break;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "s3d: unexpected argument '%s' (see --help)\n",
            argv[optind]);
    return 2;
  }
  for (struct opt *o = g_opts; o->name; o++) {
    const char *v = getenv(o->env);
    if (v && *v) set_opt(o->name, v, 2);
  }
  if (config) {
    int rc = read_config(config);
    if (rc) return rc;
  }

  struct s3d_config *cfg = &g_s3d.cfg;
  cfg->store_dir = (char *)get_opt("store");
  cfg->listen = (char *)(get_opt("listen") ? get_opt("listen")
                                           : "127.0.0.1:9000");
  cfg->tls_cert = (char *)get_opt("tls-cert");
  cfg->tls_key = (char *)get_opt("tls-key");
  cfg->domain = (char *)get_opt("domain");
  cfg->region = (char *)get_opt("region");
  cfg->max_conns = 256;
  cfg->timeout_s = 120;
  cfg->shutdown_s = 30;
  if (!cfg->store_dir) {
    fprintf(stderr, "s3d: --store DIR is required (see --help)\n");
    return 2;
  }
  if (!cfg->tls_cert != !cfg->tls_key) {
    fprintf(stderr, "s3d: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (get_opt("max-connections") &&
      parse_uint(get_opt("max-connections"), 1, 100000, &cfg->max_conns)) {
    fprintf(stderr, "s3d: bad --max-connections value\n");
    return 2;
  }
  if (get_opt("timeout") &&
      parse_uint(get_opt("timeout"), 1, 86400, &cfg->timeout_s)) {
    fprintf(stderr, "s3d: bad --timeout value\n");
    return 2;
  }
  cfg->header_timeout_s = cfg->timeout_s < 10 ? cfg->timeout_s : 10;
  if (get_opt("header-timeout") &&
      parse_uint(get_opt("header-timeout"), 0, 86400, &cfg->header_timeout_s)) {
    fprintf(stderr, "s3d: bad --header-timeout value\n");
    return 2;
  }
  cfg->min_body_rate = 1024;
  if (get_opt("min-body-rate") &&
      parse_uint(get_opt("min-body-rate"), 0, 1u << 30, &cfg->min_body_rate)) {
    fprintf(stderr, "s3d: bad --min-body-rate value\n");
    return 2;
  }
  if (get_opt("max-connections-per-ip") &&
      parse_uint(get_opt("max-connections-per-ip"), 0, 100000,
                 &cfg->per_ip_conns)) {
    fprintf(stderr, "s3d: bad --max-connections-per-ip value\n");
    return 2;
  }
  if (get_opt("busy-timeout") &&
      parse_uint(get_opt("busy-timeout"), 1, 3600 * 1000,
                 &cfg->busy_timeout_ms)) {
    fprintf(stderr, "s3d: bad --busy-timeout value (milliseconds, 1 to "
                    "3600000)\n");
    return 2;
  }
  if (get_opt("shutdown-timeout") &&
      parse_uint(get_opt("shutdown-timeout"), 0, 86400, &cfg->shutdown_s)) {
    fprintf(stderr, "s3d: bad --shutdown-timeout value\n");
    return 2;
  }
  if (get_opt("durability")) {
    const char *d = get_opt("durability");
    if (!strcmp(d, "full")) cfg->durability = STORE_DURABLE_FULL;
    else if (!strcmp(d, "process")) cfg->durability = STORE_DURABLE_PROCESS;
    else {
      fprintf(stderr, "s3d: --durability is full or process\n");
      return 2;
    }
  }
  if (cfg->domain && cfg->domain[0] == '.') cfg->domain++;
  g_s3d.region_out = cfg->region ? cfg->region : "us-east-1";

  struct sockaddr_storage ss;
  socklen_t sl = 0;
  int lr = resolve_listen(cfg->listen, &ss, &sl);
  if (lr == -1) {
    fprintf(stderr, "s3d: --listen wants HOST:PORT, got '%s'\n", cfg->listen);
    return 2;
  }
  if (lr) {
    fprintf(stderr, "s3d: cannot resolve listen address '%s'\n", cfg->listen);
    return 1;
  }

  char *cert = NULL, *key = NULL;
  if (cfg->tls_cert) {
    if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
      fprintf(stderr, "s3d: this libmicrohttpd has no TLS support\n");
      return 1;
    }
    cert = read_file(cfg->tls_cert, 1 << 20);
    key = read_file(cfg->tls_key, 1 << 20);
    if (!cert || !key) {
      fprintf(stderr, "s3d: cannot read %s: %s\n",
              cert ? cfg->tls_key : cfg->tls_cert, strerror(errno));
      return 1;
    }
  }

  store_config scfg = {0};
  scfg.durability = cfg->durability;
  scfg.busy_timeout_ms = cfg->busy_timeout_ms; /* 0: libstore's default */
  int rc = store_open(cfg->store_dir, &scfg, &g_s3d.st);
  if (rc) {
    fprintf(stderr, "s3d: cannot open store %s: %s: %s\n", cfg->store_dir,
            store_strerror(rc), store_errmsg());
    return 1;
  }
  xmlin_init();

  /* Signals are taken synchronously by the main thread (sigwait); every
     other thread, MHD's included, inherits the blocked mask. */
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  MHD_set_panic_func(mhd_panic, NULL);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
                   MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                   MHD_USE_ERROR_LOG;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  if (cert) flags |= MHD_USE_TLS;
  struct MHD_OptionItem tls_opts[] = {
    {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
    {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
    {MHD_OPTION_END, 0, NULL},
  };
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, 0, NULL, NULL, access_cb, NULL,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
      MHD_OPTION_NOTIFY_CONNECTION, guard_notify_cb, NULL,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_conns,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
      /* Request headers plus the upload slice MHD hands us per call. */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
      MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
      MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
      MHD_OPTION_ARRAY, cert ? tls_opts : tls_opts + 2,
      MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "s3d: cannot listen on %s: %s\n", cfg->listen,
            errno ? strerror(errno) : "libmicrohttpd refused to start");
    store_close(g_s3d.st);
    return 1;
  }
  if (guard_start()) {
    fprintf(stderr, "s3d: cannot start the connection guard thread\n");
    MHD_stop_daemon(d);
    store_close(g_s3d.st);
    return 1;
  }
  fprintf(stderr, "s3d %s: serving %s on %s://%s\n", S3D_VERSION,
          cfg->store_dir, cert ? "https" : "http", cfg->listen);

  int sig = 0;
  for (;;) {
    if (sigwait(&set, &sig)) continue;
    if (sig == SIGHUP) continue; /* reopen nothing: logs go to stderr */
    break;
  }
  fprintf(stderr, "s3d: signal %d: shutting down (%d requests in flight)\n",
          sig, atomic_load(&g_inflight));
  MHD_quiesce_daemon(d);
  for (unsigned i = 0; i < cfg->shutdown_s * 10; i++) {
    if (atomic_load(&g_inflight) == 0) break;
    usleep(100 * 1000);
  }
  guard_stop();
  MHD_stop_daemon(d);
  store_close(g_s3d.st);
  free(cert);
  free(key);
  fprintf(stderr, "s3d: stopped\n");
  return 0;
}
