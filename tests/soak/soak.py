"""soak.py BUILD_DIR TMPDIR -- the soak of s3d and fusefs on one store.

Starts a store, s3d (127.0.0.1, a free port) and a fusefs mount of the
whole store (tests/faults/fcommon.py: Build, S3d, Fuse), runs four short
deterministic probes of open bugs (fusefs, and gc vs. a GET), then
BUILD_DIR/bench/s3_soak
(many S3 connections and mount workers on shared keys, every byte checked,
then a verification pass), then stops both daemons, runs `storectl fsck`
and judges everything from s3_soak's JSON report.

Environment:
  SOAK_SECONDS (40), SOAK_CONNS (32), SOAK_MOUNT_WORKERS (6), SOAK_SCALE (2),
  SOAK_LARGE_MAX_MIB (16), SOAK_SEED (1), SOAK_GC_EVERY (seconds; 0: no gc
  during the load; default 15), SOAK_MEM_EVERY (2)
  SOAK_KNOWN        checks that fail today (in some runs) because of open
                    bugs: reported as "ok NAME # known bug..." either way
  SOAK_REPORT=1     print s3_soak's whole report (the long form does)
  SOAK_RSS_{GROWTH,PEAK,LATE}_{S3D,FUSEFS}   memory bounds in MiB
                    (see check_memory and bench/soak_README.md)

Prints `ok NAME` / `FAIL NAME: reason`, then `N passed, N failed`.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))
import fcommon as F  # noqa: E402  (shared with tests/faults, tests/security)

BUCKET = "soak"
PROBES = "probes"
KNOWN = set(filter(None, os.environ.get("SOAK_KNOWN", "").split(",")))


def env_num(name, default):
    v = os.environ.get(name, "")
    return type(default)(v) if v else default


class Results(F.Results):
    """fcommon's results, with this suite's known-bug list (SOAK_KNOWN)."""
    KNOWN = KNOWN

    def check(self, name, cond, reason="condition false", note=""):
        if name in self.KNOWN:
            # races show in some runs only: report, never fail the run
            self.ok(name, ("known bug, not seen this run (%s)" % note) if cond
                    else "known bug: " + str(reason)[:400])
            return bool(cond)
        if cond:
            self.ok(name, note)
        else:
            self.fail(name, reason)
        return bool(cond)


# ------------------------------------------------------------ probes
# Each probe drives one exact op sequence of an open fusefs bug with S3
# from another process in the middle.  They run before the load, in a
# bucket of their own.  Returns a list of what went wrong ([] when the
# mount behaves).

def probe_edit_base(s3, mnt):
    """Known bug: an edit through the mount applies to the version current
    at the first write rather than at open.  (a) create a file (the empty
    object is committed at once), PUT over S3, then write and close: the
    result must be the file as written, not the write laid over the PUT.
    (b) open an existing file O_RDWR, read, PUT over S3, write at 0 and
    close: the result must be the opened version edited."""
    bad = []
    d = os.path.join(mnt, PROBES, "edit")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "create")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        F.want(F.put(s3.host, PROBES, "edit/create", b"S" * 200000), 200, what="PUT")
        os.write(fd, b"M" * 1000)
    finally:
        os.close(fd)
    got = F.get(s3.host, PROBES, "edit/create").body
    if got != b"M" * 1000:
        bad.append("create, S3 PUT of 200000 bytes, write 1000, close: %d bytes, %d"
                   " of them the PUT's" % (len(got), got.count(b"S")))
    p = os.path.join(d, "edit")
    with open(p, "wb") as f:
        f.write(b"A" * 5000)
    fd = os.open(p, os.O_RDWR)
    try:
        os.read(fd, 10)
        F.want(F.put(s3.host, PROBES, "edit/edit", b"S" * 200000), 200, what="PUT")
        os.pwrite(fd, b"M" * 1000, 0)
    finally:
        os.close(fd)
    got = F.get(s3.host, PROBES, "edit/edit").body
    if got != b"M" * 1000 + b"A" * 4000:
        bad.append("open O_RDWR a 5000-byte file, S3 PUT of 200000 bytes, write 1000"
                   " at 0, close: %d bytes (%d from the PUT), want the opened version"
                   " edited (5000 bytes)" % (len(got), got.count(b"S")))
    return bad


def probe_read_size(s3, mnt):
    """Known bug: a mount read sees the size of one version and the bytes
    of another.  stat (the kernel caches v1's size), PUT v2 (3 MiB), open
    (the handle reads v2), PUT v3 (2 MiB), read to EOF: the bytes read
    must be one whole version.  PUT v1, open A, PUT v2, open B, read A,
    read B: each handle reads the version it opened.  And: open, read 1 MiB,
    DELETE over S3, read on: the open file must stay readable to its end."""
    bad = []
    mib = 1024 * 1024
    d = os.path.join(mnt, PROBES, "size")
    os.makedirs(d, exist_ok=True)
    for i in range(3):
        key = "size/k%d" % i
        p = os.path.join(mnt, PROBES, key)
        versions = {b"1" * mib, b"2" * (3 * mib), b"3" * (2 * mib)}
        F.want(F.put(s3.host, PROBES, key, b"1" * mib), 200, what="PUT v1")
        os.stat(p)
        F.want(F.put(s3.host, PROBES, key, b"2" * (3 * mib)), 200, what="PUT v2")
        with open(p, "rb") as f:
            F.want(F.put(s3.host, PROBES, key, b"3" * (2 * mib)), 200, what="PUT v3")
            got = f.read()
        if got not in versions:
            kinds = sorted(set(got))
            bad.append("stat, PUT 3 MiB, open, PUT 2 MiB, read: %d bytes of version(s)"
                       " %s" % (len(got), "/".join(chr(c) for c in kinds)))
    # Two handles on two versions: each reads the version it opened (the
    # kernel's page cache is per file).
    for i in range(2):
        key = "size/two%d" % i
        p = os.path.join(mnt, PROBES, key)
        F.want(F.put(s3.host, PROBES, key, b"5" * (4 * mib)), 200, what="PUT v1")
        with open(p, "rb") as a:
            F.want(F.put(s3.host, PROBES, key, b"6" * (4 * mib)), 200, what="PUT v2")
            with open(p, "rb") as b:
                da = a.read()
                db = b.read()
        if da != b"5" * (4 * mib) or db != b"6" * (4 * mib):
            bad.append("PUT v1, open A, PUT v2, open B, read A, read B: A %d bytes of %s,"
                       " B %d bytes of %s (B opened v2)" % (
                           len(da), "/".join(sorted(set(chr(c) for c in da))),
                           len(db), "/".join(sorted(set(chr(c) for c in db)))))
    # An open file stays readable when its key is deleted meanwhile.
    key = "size/deleted"
    p = os.path.join(mnt, PROBES, key)
    F.want(F.put(s3.host, PROBES, key, b"4" * (3 * mib)), 200, what="PUT")
    with open(p, "rb") as f:
        got = f.read(mib)
        F.want(F.request(s3.host, "DELETE", "/%s/%s" % (PROBES, key)), 204, what="DELETE")
        time.sleep(1.3)  # past the attribute timeout
        try:
            got += f.read()
        except OSError as e:
            bad.append("open, read 1 MiB, S3 DELETE, read on: %s" % e)
        else:
            if got != b"4" * (3 * mib):
                bad.append("open, read 1 MiB, S3 DELETE, read on: %d bytes, want the"
                           " 3 MiB opened" % len(got))
    return bad


def probe_create_after_delete(b, store, mnt):
    """open(O_CREAT) of a name another process deleted a moment ago must
    create the file.  (The kernel trusts its cached name for the entry
    timeout; fusefs answers the open with ENOENT.)"""
    bad = []
    d = os.path.join(mnt, PROBES, "recreate")
    os.makedirs(d, exist_ok=True)
    for i in range(5):
        p = os.path.join(d, "f%d" % i)
        with open(p, "wb") as f:
            f.write(b"x" * 100)
        os.stat(p)
        b.sc(store, "rm", PROBES, "recreate/f%d" % i, check=True)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"y")
            os.close(fd)
        except OSError as e:
            bad.append("write, stat, storectl rm, open(O_CREAT|O_TRUNC): %s" % e)
    return bad


def probe_gc_during_get(b, s3, store):
    """A GET in progress delivers the version it started with, whole, even
    when the key is overwritten meanwhile and `storectl gc` runs (libstore
    pins the version's extents at open; gc deletes the chunks that nothing
    references any more)."""
    bad = []
    mib = 1024 * 1024
    key = "gc/big"
    path = "/%s/%s" % (PROBES, key)
    v1 = os.urandom(32 * mib)  # unique chunks: nothing dedups with v2
    F.want(F.put(s3.host, PROBES, key, v1), 200, what="PUT v1")
    host, port = s3.host.rsplit(":", 1)
    h, _ = F.sign_headers("GET", s3.host, path)
    h["Host"] = h.pop("host")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        c.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        if r.status != 200:
            return ["GET: HTTP %d" % r.status]
        got = r.read(mib)
        F.want(F.put(s3.host, PROBES, key, os.urandom(32 * mib)), 200, what="PUT v2")
        g = b.sc(store, "gc", timeout=300)
        if g.returncode != 0:
            bad.append("storectl gc: %s" % g.err.strip()[-200:])
        try:
            got += r.read()
        except (http.client.IncompleteRead, OSError) as e:
            got += getattr(e, "partial", b"")
            bad.append("GET 32 MiB, read 1 MiB, PUT over it, storectl gc, read on: the"
                       " body stopped after %d bytes (%s)" % (len(got), type(e).__name__))
        if not bad and got != v1:
            bad.append("GET 32 MiB, PUT over it, gc: %d bytes, not the version the GET"
                       " started with" % len(got))
    finally:
        c.close()
    return bad


# ------------------------------------------------------------ the soak
def run_soak(b, T, s3, fs):
    secs = env_num("SOAK_SECONDS", 40.0)
    out = os.path.join(T, "soak.out")
    js = os.path.join(T, "soak.json")
    exe = os.path.join(b.build, "bench", "s3_soak")
    gc_every = env_num("SOAK_GC_EVERY", 15.0)
    drain = env_num("SOAK_DRAIN", 120.0)
    cmd = [exe, "run", "--s3", s3.host, "--access-key", F.ACCESS, "--secret-key", F.SECRET,
           "--bucket", BUCKET, "--mount", fs.mnt, "--seconds", str(secs),
           "--conns", str(env_num("SOAK_CONNS", 32)),
           "--mount-workers", str(env_num("SOAK_MOUNT_WORKERS", 6)),
           "--scale", str(env_num("SOAK_SCALE", 2)),
           "--large-max-mib", str(env_num("SOAK_LARGE_MAX_MIB", 16)),
           "--seed", str(env_num("SOAK_SEED", 1)),
           "--s3d-pid", str(s3.proc.pid), "--fusefs-pid", str(fs.proc.pid),
           "--mem-every", str(env_num("SOAK_MEM_EVERY", 2.0)),
           "--drain-secs", str(drain), "--json", js]
    if gc_every > 0:
        cmd += ["--gc-cmd", "%s --store %s gc" % (b.storectl, s3.store),
                "--gc-every", str(gc_every)]
    t0 = time.time()
    with open(out, "wb") as fo:
        p = subprocess.Popen(cmd, stdout=fo, stderr=subprocess.STDOUT,
                             env=F.tool_env(b.home))
        F.register_pid(p.pid)
        try:
            rc = p.wait(timeout=secs + drain + 600)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = -9
    with open(out, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    rep = None
    if os.path.exists(js):
        with open(js) as f:
            rep = json.load(f)
    return rc, text, rep, time.time() - t0


def fault_count(rep, door=None, kinds=None, classes=None, exclude=()):
    n = 0
    for f in rep["faults"]:
        if door and f["door"] not in (door if isinstance(door, tuple) else (door,)):
            continue
        if kinds and f["kind"] not in kinds:
            continue
        if classes and f["class"] not in classes:
            continue
        if f["kind"] in exclude:
            continue
        n += f["count"]
    return n


def examples(rep, door=None, kinds=None, exclude=(), k=3):
    out = []
    for e in rep["examples"]:
        if door and e["door"] not in (door if isinstance(door, tuple) else (door,)):
            continue
        if kinds and e["kind"] not in kinds:
            continue
        if e["kind"] in exclude:
            continue
        out.append("%s %s: %s" % (e["door"], e["kind"], e["text"]))
    return " | ".join(out[:k])


# The known fusefs bugs' signatures (s3_soak.c: classify_tear).
SIG_SIZE = ("mount_torn_read",)
SIG_EDIT = ("mount_edit_on_other_version",)
SIG_CREATE = ("mount_create_enoent",)
SIGS = SIG_SIZE + SIG_EDIT + SIG_CREATE


GC_CUT = "object changed while being read"


def judge(R, rep, probes, s3d_log):
    ops = rep["ops"]
    # GETs cut off mid-body because gc deleted the chunks of the version
    # they were reading (s3d logs why); the probe's GET is one of them.
    gc_cuts = s3d_log.count(GC_CUT)
    if any("stopped after" in x for x in probes.get("gc", [])):
        gc_cuts = max(gc_cuts - 1, 0)
    cuts = fault_count(rep, kinds=("get_cut_off",))
    explained = min(cuts, gc_cuts)

    def total(op):
        o = ops[op]
        return o["ok"] + o["expected"] + o["fault"]

    # Progress: every op kind ran, and the bulk of them succeeded.
    slow = [op for op, o in ops.items() if o["ok"] == 0]
    R.check("load_every_op_ran", not slow, "ops that never succeeded: %s" % slow)
    R.check("load_no_hang", rep["hung"] == 0 and not fault_count(rep, kinds=("hung",)),
            examples(rep, kinds=("hung",)))

    # S3: no server faults at all.
    server = ("http_5xx", "connection_reset", "unexpected_4xx", "gc_failed")
    n = fault_count(rep, door="s3", kinds=server) + cuts - explained
    R.check("s3_no_server_errors", n == 0, "%d: %s" % (
        n, examples(rep, "s3", server + ("get_cut_off",))))
    n503 = fault_count(rep, kinds=("http_503",))
    R.check("s3_no_overload_503", n503 == 0, "%d 503 SlowDown: %s" % (
        n503, examples(rep, kinds=("http_503",))))
    # S3 reads: one whole legal generation, sizes, ETags, listings.
    n = fault_count(rep, door="s3", exclude=server + ("http_503", "get_cut_off") + SIGS)
    R.check("s3_reads_whole_generations", n == 0, "%d: %s" % (
        n, examples(rep, "s3", exclude=server + ("http_503", "get_cut_off") + SIGS)))

    # Mount: no unexpected errno, reads whole and fresh, readdir sane.
    n = fault_count(rep, door="mount", kinds=("unexpected_errno",))
    R.check("mount_no_unexpected_errors", n == 0, "%d: %s" % (
        n, examples(rep, "mount", ("unexpected_errno",))))
    n = fault_count(rep, door="mount", exclude=("unexpected_errno", "hung") + SIGS)
    R.check("mount_reads_whole_generations", n == 0, "%d: %s" % (
        n, examples(rep, "mount", exclude=("unexpected_errno", "hung") + SIGS)))

    # Verification pass: S3 and the mount agree on every key.
    v = rep["verify"]
    n = fault_count(rep, door="verify", exclude=SIGS + ("get_cut_off",))
    R.check("verify_every_key_one_generation_both_doors",
            n == 0 and v["checked"] > 0 and v["agree"] == v["checked"],
            "%d faults, %d of %d keys agree: %s" % (n, v["agree"], v["checked"],
                                                  examples(rep, "verify", exclude=SIGS)))
    R.check("verify_listings_agree", v["s3_entries"] > 0 and not fault_count(
        rep, door="verify", kinds=("listing",)), examples(rep, "verify", ("listing",)))

    # The open fusefs bugs: the deterministic probe and the signature in
    # the load, under one name each.
    for name, sig, pr in (
            ("mount_edit_applies_to_version_opened", SIG_EDIT, "edit"),
            ("mount_read_sees_one_version", SIG_SIZE, "size"),
            ("mount_create_after_remote_delete", SIG_CREATE, "create")):
        n = fault_count(rep, kinds=sig)
        bad = probes.get(pr, ["probe did not run"])
        R.check(name, n == 0 and not bad, "probe: %s; in the load: %d, e.g. %s" % (
            "; ".join(bad) or "ok", n, examples(rep, kinds=sig, k=2)))
    bad = probes.get("gc", ["probe did not run"])
    R.check("s3_get_survives_overwrite_during_gc", explained == 0 and not bad,
            "probe: %s; in the load: %d GETs cut off, s3d: '%s ... (deleted)', e.g. %s" % (
                "; ".join(bad) or "ok", explained, GC_CUT,
                examples(rep, kinds=("get_cut_off",), k=2)))
    return total


def check_memory(R, rep, asan):
    """Bounds on s3d's and fusefs's memory (bench/soak_README.md explains
    them): growth from idle before the load to idle after the verification
    pass, and the peak (VmHWM)."""
    mem = rep["mem"]
    start = next(m for m in mem if m["phase"] == "start")
    end = [m for m in mem if m["phase"] == "end"][-1]
    mib = 1024.0
    # ASan keeps freed memory in quarantine (256 MiB by default) and its
    # shadow memory grows with the heap: the bounds are wider there.
    # Defaults for the short form (40 s); bench/soak.sh sets its own.
    growth = {"s3d": env_num("SOAK_RSS_GROWTH_S3D", 448.0 if asan else 160.0),
              "fusefs": env_num("SOAK_RSS_GROWTH_FUSEFS", 448.0 if asan else 96.0)}
    peak = {"s3d": env_num("SOAK_RSS_PEAK_S3D", 768.0 if asan else 384.0),
            "fusefs": env_num("SOAK_RSS_PEAK_FUSEFS", 768.0 if asan else 256.0)}
    for who in ("s3d", "fusefs"):
        g = (end[who + "_rss_kb"] - start[who + "_rss_kb"]) / mib
        hwm = end[who + "_hwm_kb"] / mib
        R.check("memory_%s_growth_bounded" % who, end[who + "_rss_kb"] > 0 and g < growth[who],
                "VmRSS %.1f MiB at start, %.1f MiB at the end: +%.1f MiB (bound %.0f)" % (
                    start[who + "_rss_kb"] / mib, end[who + "_rss_kb"] / mib, g, growth[who]),
                note="VmRSS %.1f -> %.1f MiB, bound +%.0f" % (
                    start[who + "_rss_kb"] / mib, end[who + "_rss_kb"] / mib, growth[who]))
        R.check("memory_%s_peak_bounded" % who, 0 < hwm < peak[who],
                "VmHWM %.1f MiB (bound %.0f)" % (hwm, peak[who]),
                note="VmHWM %.1f MiB, bound %.0f" % (hwm, peak[who]))
    # Growth once warm: the highest VmRSS of the last quarter of the load
    # against the highest of its second quarter (caches, allocator arenas
    # and thread stacks have settled by then; a leak keeps going).
    load = [m for m in mem if m["phase"] == "load"]
    q = len(load) // 4
    late_bound = {"s3d": env_num("SOAK_RSS_LATE_S3D", 160.0 if asan else 64.0),
                  "fusefs": env_num("SOAK_RSS_LATE_FUSEFS", 96.0 if asan else 32.0)}
    for who in ("s3d", "fusefs"):
        if q < 2:
            R.check("memory_%s_flat_once_warm" % who, False, "only %d samples" % len(load))
            continue
        warm = max(m[who + "_rss_kb"] for m in load[q:2 * q]) / mib
        late = max(m[who + "_rss_kb"] for m in load[-q:]) / mib
        R.check("memory_%s_flat_once_warm" % who, late - warm < late_bound[who],
                "VmRSS peak %.1f MiB in the 2nd quarter of the load, %.1f MiB in the"
                " last: +%.1f MiB (bound %.0f)" % (warm, late, late - warm, late_bound[who]),
                note="VmRSS peak %.1f MiB in the 2nd quarter, %.1f MiB in the last,"
                " bound +%.0f" % (warm, late, late_bound[who]))


def main():
    build, T = sys.argv[1], sys.argv[2]
    F.scrub_environment(os.path.join(T, "home"))
    R = Results()
    b = F.Build(build, T)
    store = os.path.join(T, "store")
    exe = os.path.join(build, "bench", "s3_soak")
    if not os.access(exe, os.X_OK):
        R.fail("setup", "%s not built" % exe)
        R.finish()
    asan = b"__asan_init" in subprocess.run(["nm", "-D", b.s3d], stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL).stdout
    b.init_store(store, buckets=(BUCKET, PROBES))
    s3 = F.S3d(b, store, os.path.join(T, "s3d.log"))
    if not R.check("s3d_up", s3.up, s3.logtext()[-300:]):
        R.finish()
    fs = F.Fuse(b, store, os.path.join(T, "mnt"), os.path.join(T, "fusefs.log"))
    if not R.check("fusefs_mount", fs.up and os.path.isdir(os.path.join(fs.mnt, BUCKET)),
                   fs.logtext()[-300:]):
        s3.stop()
        R.finish()

    probes = {}
    for name, fn, args in (("edit", probe_edit_base, (s3, fs.mnt)),
                           ("size", probe_read_size, (s3, fs.mnt)),
                           ("create", probe_create_after_delete, (b, store, fs.mnt)),
                           ("gc", probe_gc_during_get, (b, s3, store))):
        try:
            probes[name] = fn(*args)
        except Exception as e:  # noqa: BLE001 - a probe that breaks is a finding
            probes[name] = ["probe raised %s: %s" % (type(e).__name__, e)]

    rc, text, rep, secs = run_soak(b, T, s3, fs)
    if os.environ.get("SOAK_REPORT") == "1":
        print(text, end="", flush=True)
    else:
        for line in text.splitlines():
            if line.startswith("S3:") or line.startswith("verification:"):
                print("# " + line)
    R.check("soak_ran", rep is not None and rc in (0, 1),
                  "s3_soak exit %d after %.0f s: %s" % (rc, secs, text[-600:]))

    # Shut down: fusefs unmounts cleanly, s3d stops on SIGTERM.
    frc = fs.stop()
    R.check("fusefs_clean_exit", frc == 0 and not fs.mounted(), "exit %s" % frc)
    src = s3.stop()
    R.check("s3d_clean_exit", src == 0, "exit %s" % src)
    with open(s3.logpath, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    if rep is not None:
        judge(R, rep, probes, log)
        check_memory(R, rep, asan)
    # 503 SlowDown is s3_no_overload_503's.
    five = [ln for ln in log.splitlines() if re.search(r'" 5(?!03)\d\d \d+ \d+ ', ln)]
    # Responses broken off mid-body: only those s3_get_survives_overwrite_
    # during_gc explains (s3d logs the reason of each).
    broken = [ln for ln in log.splitlines() if "aborted:error" in ln]
    R.check("s3d_log_no_5xx", not five and len(broken) <= log.count(GC_CUT),
            "%d 5xx, %d aborted:error (%d of them gc cutting a GET): %s" % (
                len(five), len(broken), log.count(GC_CUT), (five + broken)[:2]))
    with open(fs.logpath, "rb") as f:
        flog = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    R.check("fusefs_log_clean", not flog, " | ".join(flog[:3]))
    p = b.sc(store, "fsck", timeout=600)
    R.check("store_fsck_clean", p.returncode == 0, (p.out + p.err).strip()[-400:],
            note=(p.out.strip().splitlines() or [""])[-1][:200])
    F.sanitizer_scan(R, T)
    R.finish()


if __name__ == "__main__":
    main()
