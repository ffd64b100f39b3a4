#!/usr/bin/env python3
"""powerloss.py BUILD_DIR TMPDIR -- prove the fsync order under power loss.

Each workload runs real binaries (storectl; s3d with boto3 as its client)
with the recorder (recorder.c, LD_PRELOAD) logging every mutating
filesystem call under a "disk" directory that holds the store.  The
workload logs its own START/ACK/FAIL marks into the same ordered log: an
ACK is written only after the command exited 0 (storectl) or the 200
arrived (boto3), so "acknowledged before crash point P" is exact.

Then, for each chosen crash point P, replay.py builds what a power loss at
P may leave on disk under the strict model (a file's bytes are durable as
of its last fsync; a directory entry as of its directory's last fsync; see
replay.py and docs/durability.md), and the store found there is checked
with storectl:
  1. `storectl fsck` exits 0: SQLite's quick_check passes, no chunk a row
     references is missing or corrupt, reference counts match, every
     object's extents are contiguous and name sound chunks.  Orphan chunk
     files (no row) are allowed: gc reclaims them.
  2. Every object ACKed before P reads back byte-identical (export +
     sha256); a key whose last ACKed operation was a delete is absent.
     Keys with an operation in progress at P hold the ACKed state or the
     attempted one, nothing else; no key that was never written exists.
     Buckets likewise.
  3. The store still takes a new write (put, then get it back), gc runs,
     and fsck is still clean afterwards.
Crash points: just after every ACK, just before and just after every
fsync/fdatasync, and random ones; capped (PL_POINTS, default 300 over all
workloads).  Some points are also checked as "variants": a random subset
of the not-yet-durable changes survived too.

Negative controls re-run small workloads with PL_DROP making the recorder
skip one kind of sync (as a missing fsync in the code, or a lying disk,
would); the replay MUST find losses there, else the checker is broken.

Environment: PL_POINTS (crash points over all workloads, default 300),
PL_SEED (default 1), PL_VARIANTS (share of points also checked as a
variant, default 0.4), PL_SCALE (workload size multiplier, default 1),
PL_WORKLOADS (names, default all), PL_KEEP=1 keep failing states.

Prints `ok NAME` / `FAIL NAME: reason`, the line
`powerloss: workloads W, crash points P, objects checked N, losses L`
and `N passed, N failed`.
"""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import fcommon as fc  # noqa: E402
import replay as rp  # noqa: E402

MiB = 1 << 20
BKT = "bkt"


def blob(seed, n):
    return fc.data(seed, n)


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- recording
class Recorded:
    """One workload: a disk directory watched by the recorder, its
    snapshot, its log, and the expectations the workload's marks make."""

    def __init__(self, ctx, name, drop=None):
        self.ctx = ctx
        self.name = name
        self.dir = os.path.join(ctx.tmp, name)
        self.disk = os.path.join(self.dir, "disk")
        self.snap = os.path.join(self.dir, "snap")
        self.log = os.path.join(self.dir, "log")
        self.store = os.path.join(self.disk, "st")
        self.files = os.path.join(self.dir, "files")
        self.drop = drop
        self.base_effects = []  # what the snapshot already holds
        self.next_id = 0
        self.id_lock = threading.Lock()
        for d in (self.disk, self.files):
            os.makedirs(d)

    def env(self, preload=True):
        e = fc.tool_env(self.ctx.home)
        if preload:
            e["LD_PRELOAD"] = self.ctx.preload
            e["PL_ROOT"] = self.disk
            e["PL_LOG"] = self.log
            if self.drop:
                e["PL_DROP"] = self.drop
        return e

    def sc(self, *args, preload=True, extra_env=None, timeout=120):
        env = self.env(preload)
        if extra_env:
            env.update(extra_env)
        p = subprocess.run([self.ctx.storectl, "--store", self.store] + list(args),
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        return p

    def snapshot(self):
        """The tree before the recorded part (cp -a keeps hard links)."""
        r = subprocess.run(["cp", "-a", self.disk, self.snap], stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise fc.Fail("snapshot: %s" % r.stderr.decode()[-200:])

    def mark(self, payload):
        rp.append_mark(self.log, payload)

    def op(self, what, effects, fn):
        """Run fn (True on success) between a START and an ACK/FAIL mark.
        effects: [["obj", bucket, key, sha-or-None], ["bucket", name, bool],
        ["store", True]] -- the state the operation leaves when it lands."""
        with self.id_lock:  # workload threads share the numbering
            self.next_id += 1
            i = self.next_id
        self.mark({"ev": "start", "id": i, "what": what, "effects": effects})
        try:
            ok, why = fn()
        except Exception as e:  # noqa: BLE001
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        self.mark({"ev": "ack" if ok else "fail", "id": i, "why": why or ""})
        if not ok:
            raise fc.Fail("workload step %s failed: %s" % (what, why))
        return i

    # storectl steps -------------------------------------------------
    def put(self, bucket, key, content):
        path = os.path.join(self.files, "f%d" % (self.next_id + 1))
        with open(path, "wb") as fh:
            fh.write(content)

        def run():
            p = self.sc("put", bucket, key, path)
            return p.returncode == 0, p.err.strip()[-300:]
        return self.op("put %s/%s (%d B)" % (bucket, key, len(content)),
                       [["obj", bucket, key, sha(content)]], run)

    def rm(self, bucket, key):
        def run():
            p = self.sc("rm", bucket, key)
            return p.returncode == 0, p.err.strip()[-300:]
        return self.op("rm %s/%s" % (bucket, key), [["obj", bucket, key, None]], run)

    def simple(self, what, effects, *args, env=None):
        def run():
            p = self.sc(*args, extra_env=env)
            return p.returncode == 0, (p.err.strip() or p.out.strip())[-300:]
        return self.op(what, effects, run)


# ---------------------------------------------------------------- expectations
class Expect:
    """What the marks before a crash point promise.  State of a key:
    a sha256 hex or None (absent)."""

    def __init__(self):
        self.acked = {}      # key -> state (last ACKed)
        self.maybe = {}      # key -> {op id: state} of ops not ACKed
        self.ops = {}        # op id -> effects
        self.finished = set()

    @staticmethod
    def key(eff):
        return tuple(eff[:-1])

    def feed(self, m):
        """START: effects (the state each key has once the op lands) and
        "also" (states a key may show while the op runs, e.g. the empty
        object a create over FUSE commits before the data).  ACK: the
        effects are promised.  FAIL: they may or may not have landed."""
        ev = m.get("ev")
        i = m.get("id")
        if ev == "start":
            self.ops[i] = m["effects"]
            for n, eff in enumerate(m["effects"] + m.get("also", [])):
                self.maybe.setdefault(self.key(eff), {})[(i, n)] = eff[-1]
        elif ev == "ack":
            for eff in self.ops.get(i, []):
                self.acked[self.key(eff)] = eff[-1]
            for k, mb in self.maybe.items():
                # This op's states are settled; so are those of a failed op
                # that ended before this one began.
                for t in [t for t in mb if t[0] == i or
                          (t[0] < i and t[0] in self.finished and
                           k in map(self.key, self.ops.get(i, [])))]:
                    del mb[t]
            self.finished.add(i)
        elif ev == "fail":
            self.finished.add(m["id"])

    def allowed(self, k, default=None):
        s = {self.acked.get(k, default)}
        s.update(self.maybe.get(k, {}).values())
        return s

    def signature(self):
        return json.dumps([sorted((repr(k), v) for k, v in self.acked.items()),
                           sorted((repr(k), sorted(map(repr, v.values())))
                                  for k, v in self.maybe.items() if v)])

    def store_acked(self):
        return self.acked.get(("store",)) is True

    def keys_of(self, kind):
        ks = set(k for k in self.acked if k[0] == kind)
        ks.update(k for k, v in self.maybe.items() if k[0] == kind and v)
        return ks


# ---------------------------------------------------------------- checking
class Checker:
    def __init__(self, ctx):
        self.ctx = ctx
        self.env = fc.tool_env(ctx.home)

    def sc(self, store, *args, timeout=120):
        p = subprocess.run([self.ctx.storectl, "--store", store] + list(args),
                           env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        return p

    @staticmethod
    def brief(p):
        lines = (p.err.strip() or p.out.strip()).splitlines()
        return (lines[-1] if lines else "exit %d" % p.returncode)[:300]

    def check(self, state, exp):
        """Problems found in the store under `state` (a list of strings)
        and how many objects were compared."""
        store = os.path.join(state, "st")
        probs = []
        checked = 0
        if not exp.store_acked():
            return self.pre_init(store), 0
        if not os.path.isdir(store):
            return ["the store directory itself is gone (init was acknowledged)"], 0
        p = self.sc(store, "fsck")
        if p.returncode != 0:
            probs.append("fsck: " + self.brief(p))
            if "not a store" in p.err or not os.path.isdir(store):
                return probs, 0
        # Buckets.
        p = self.sc(store, "bucket", "list")
        if p.returncode != 0:
            probs.append("bucket list: " + self.brief(p))
            return probs, 0
        present = set()
        for line in p.out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                present.add(parts[1])
        for k in exp.keys_of("bucket"):
            ok = exp.allowed(k, False)
            if (k[1] in present) not in ok:
                probs.append("bucket %s %s after the crash (allowed: %s)" % (
                    k[1], "present" if k[1] in present else "missing", sorted(ok)))
        for b in present:
            if ("bucket", b) not in exp.acked and not exp.maybe.get(("bucket", b)):
                probs.append("bucket %s exists but was never created" % b)
        # Objects.
        found = {}
        for b in sorted(present):
            dest = os.path.join(state, "export-" + b)
            p = self.sc(store, "export", b, dest)
            if p.returncode != 0:
                probs.append("export %s: %s" % (b, self.brief(p)))
                continue
            for root, _dirs, files in os.walk(dest):
                for f in files:
                    path = os.path.join(root, f)
                    key = os.path.relpath(path, dest)
                    with open(path, "rb") as fh:
                        found[("obj", b, key)] = sha(fh.read())
        for k in exp.keys_of("obj"):
            allowed = exp.allowed(k)
            got = found.get(k)
            checked += 1
            if got not in allowed:
                acked = exp.acked.get(k, "never written")
                if got is None:
                    probs.append("%s/%s missing (acked %s)" % (k[1], k[2], acked))
                else:
                    probs.append("%s/%s holds %s, allowed %s" % (
                        k[1], k[2], got[:12], sorted(str(a)[:12] for a in allowed)))
        for k in found:
            if k not in exp.acked and not exp.maybe.get(k):
                probs.append("%s/%s exists but was never written" % (k[1], k[2]))
        # A new write (into a new bucket if the crash left none), gc, and
        # still clean.
        bucket = BKT
        if BKT not in present:
            bucket = "probe-bucket"
            p = self.sc(store, "bucket", "create", bucket)
            if p.returncode != 0:
                probs.append("new bucket refused: " + self.brief(p))
        probe = os.path.join(state, "probe")
        body = os.urandom(5000) + b"probe"
        with open(probe, "wb") as fh:
            fh.write(body)
        p = self.sc(store, "put", bucket, "__probe__", probe)
        if p.returncode != 0:
            probs.append("new write refused: " + self.brief(p))
        else:
            g = self.sc(store, "get", bucket, "__probe__", "-")
            if g.returncode != 0 or g.stdout != body:
                probs.append("new write does not read back: " + self.brief(g))
        p = self.sc(store, "gc")
        if p.returncode != 0:
            probs.append("gc: " + self.brief(p))
        p = self.sc(store, "fsck")
        if p.returncode != 0:
            probs.append("fsck after a new write and gc: " + self.brief(p))
        return probs, checked

    def pre_init(self, store):
        """Before `init` was acknowledged nothing is promised; note what a
        crash there leaves (counted, not a failure)."""
        if not os.path.isdir(store):
            self.ctx.preinit["no store dir"] = self.ctx.preinit.get("no store dir", 0) + 1
            return []
        p = self.sc(store, "fsck")
        if p.returncode == 0:
            kind = "opens clean"
        else:
            kind = "not a store" if "not a store" in p.err else "does not open"
            env = dict(self.env, STORE_ACCESS_KEY=fc.ACCESS, STORE_SECRET_KEY=fc.SECRET)
            q = subprocess.run([self.ctx.storectl, "--store", store, "init"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            kind += (", init again works" if q.returncode == 0 else
                     ", init again refused (%s)" % re.sub(
                         r"/\S*/", "", q.stderr.decode("utf-8", "replace").strip()
                         .split(": ")[-1])[:60])
        self.ctx.preinit[kind] = self.ctx.preinit.get(kind, 0) + 1
        return []


# ---------------------------------------------------------------- replaying
def choose_points(recs, cap, rng):
    """Crash points (P = records [0, P) happened), most telling first."""
    syncs, acks = [], []
    for r in recs:
        if r.op in (rp.OP["FSYNC"], rp.OP["SYNC"], rp.OP["SYNCFS"]):
            syncs.append(r.i)
        elif r.op == rp.OP["MARK"] and b'"ev": "ack"' in bytes(r.data):
            acks.append(r.i)
    first = sorted(set(a + 1 for a in acks) | {len(recs)})
    rest = set()
    for s in syncs:
        rest.add(s)
        rest.add(s + 1)
    n_random = max(4, len(syncs) // 4)
    for _ in range(n_random):
        rest.add(rng.randrange(0, len(recs) + 1))
    rest -= set(first)
    rest = sorted(rest)
    if len(first) >= cap:
        pts = sorted(rng.sample(first, cap))
    else:
        room = cap - len(first)
        pts = first + (rest if len(rest) <= room else rng.sample(rest, room))
    return sorted(set(pts)), len(syncs), len(acks)


def coverage(recs):
    """What the recorder saw, by kind: proof that interposition reached
    SQLite (its WAL writes and syncs, its directory sync) and libstore."""
    c = {}

    def bump(k):
        c[k] = c.get(k, 0) + 1
    for r in recs:
        op = rp.OPS.get(r.op, "?")
        p = r.p1
        if op == "WRITE" and p.endswith("catalog.db-wal"):
            bump("wal writes")
        elif op == "FSYNC" and p.endswith("catalog.db-wal"):
            bump("wal syncs")
        elif op == "FSYNC" and r.b and p == "st":
            bump("store dir syncs")
        elif op == "FSYNC" and r.b and "/chunks/" in p:
            bump("fan-out dir syncs")
        elif op == "WRITE" and "/staging/" in p:
            bump("chunk writes")
        elif op == "FSYNC" and "/staging/" in p:
            bump("chunk syncs")
        elif op == "LINK":
            bump("links")
        elif op == "MMAP":
            bump("shm mmaps")
        elif op == "SFR":
            bump("sync_file_range")
    return c


def replay_workload(ctx, w, cap, variants):
    """Check crash points of one recorded workload.  Returns a dict of
    figures and the list of losses (point, problems)."""
    recs = rp.read_log(w.log)
    rng = random.Random(ctx.seed * 7919 + len(w.name))
    points, n_syncs, n_acks = choose_points(recs, cap, rng)
    model = rp.Model(w.snap if os.path.isdir(w.snap) else None)
    exp = Expect()
    exp.feed({"ev": "start", "id": 0, "effects": w.base_effects})
    exp.feed({"ev": "ack", "id": 0})
    checker = Checker(ctx)
    cache = os.path.join(w.dir, "cache")
    os.makedirs(cache, exist_ok=True)
    seen = {}
    fig = {"records": len(recs), "syncs": n_syncs, "acks": n_acks, "points": 0,
           "states": 0, "variants": 0, "objects": 0, "dedup": 0}
    losses = []
    kept = 0
    pi = 0
    share = lambda rel: "/chunks/" in rel or "/staging/" in rel  # noqa: E731
    for idx in range(len(recs) + 1):
        while pi < len(points) and points[pi] == idx:
            pi += 1
            # (seed, share of the unsynced changes that survive): the strict
            # state, and sometimes a variant -- a random half of the unsynced
            # changes survived, or all of them (as after kill -9 of every
            # process: the page cache was written back whole).
            tries = [(None, 0)]
            if variants and rng.random() < variants and any(model.unsynced()):
                tries.append((rng.randrange(1 << 30), 1.0 if rng.random() < 0.25 else 0.5))
            fig["points"] += 1
            for seed, p_extra in tries:
                label = "P%d%s" % (idx, "" if seed is None else
                                   "v%d" % seed if p_extra < 1 else "all")
                state = os.path.join(w.dir, "state-" + label)
                digest = model.materialise(
                    state, random.Random(seed) if seed is not None else None,
                    cache=cache, share=share, p_extra=p_extra)
                sig = (digest, exp.signature())
                if sig in seen:
                    fig["dedup"] += 1
                    shutil.rmtree(state)
                    continue
                seen[sig] = label
                fig["states"] += 1
                if seed is not None:
                    fig["variants"] += 1
                probs, n = checker.check(state, exp)
                fig["objects"] += n
                if probs:
                    losses.append((label, probs))
                    if ctx.keep and kept < 3:
                        kept += 1
                        continue
                shutil.rmtree(state, ignore_errors=True)
        if idx == len(recs):
            fig["model_diffs"] = rp.compare_volatile(model, w.disk)
            break
        r = recs[idx]
        if r.op == rp.OP["MARK"]:
            exp.feed(json.loads(bytes(r.data)))
        model.apply(r)
    fig["coverage"] = coverage(recs)
    bad = rp.verify_cache(cache)
    if bad:
        raise fc.Fail("a shared chunk file was changed in place by a check: %s" % bad[:3])
    shutil.rmtree(cache, ignore_errors=True)
    fig["dropped"] = model.dropped
    return fig, losses


# ---------------------------------------------------------------- workloads
def wl_cli(ctx, w):
    """storectl: init, buckets, inline / boundary / multi-chunk puts,
    overwrites (partly deduplicated), whole-object dedup, delete, gc
    (which unlinks chunk files), re-put of collected content, import."""
    s = ctx.scale
    w.snapshot()  # an empty disk: init itself is recorded
    env = {"STORE_ACCESS_KEY": fc.ACCESS, "STORE_SECRET_KEY": fc.SECRET}
    w.simple("init", [["store", True]], "init", env=env)
    w.simple("bucket create", [["bucket", BKT, True]], "bucket", "create", BKT)
    big1 = blob(1, int(2.5 * MiB * s))
    big2 = big1[:MiB] + blob(2, int(1.2 * MiB * s))  # first chunk shared
    w.put(BKT, "inline", blob(3, 100))
    w.put(BKT, "edge", blob(4, 4096))
    w.put(BKT, "edge+1", blob(5, 4097))
    w.put(BKT, "big", big1)
    w.put(BKT, "dir/twin", big1)              # whole-object dedup
    w.put(BKT, "inline", blob(6, 300))        # overwrite, inline
    w.put(BKT, "big", big2)                   # overwrite, one chunk shared
    w.rm(BKT, "edge+1")
    w.rm(BKT, "dir/twin")                     # big1's tail chunks unreferenced
    w.simple("gc", [], "gc")                  # ...and their files unlinked
    w.put(BKT, "again", big1)                 # the collected chunks again
    w.simple("bucket create bkt2", [["bucket", "bkt2", True]], "bucket", "create", "bkt2")
    w.put("bkt2", "x", blob(7, 2 * MiB + 17))
    w.rm("bkt2", "x")
    w.simple("bucket delete bkt2", [["bucket", "bkt2", False]], "bucket", "delete", "bkt2")
    # import: several commits in one command
    src = os.path.join(w.files, "tree")
    os.makedirs(os.path.join(src, "sub"))
    effects = []
    for i, (name, n) in enumerate([("a.txt", 10), ("sub/b.bin", MiB + 5),
                                   ("sub/c.bin", 7000)]):
        b = blob(20 + i, n)
        with open(os.path.join(src, name), "wb") as fh:
            fh.write(b)
        effects.append(["obj", BKT, name, sha(b)])
    w.simple("import", effects, "import", src, BKT)
    for i in range(int(3 * s)):
        w.put(BKT, "more/%d" % i, blob(30 + i, (i + 1) * 300 * 1024))
    put_racing_gc(w)


def put_racing_gc(w):
    """A put whose chunk files are written while gc runs: storectl put
    reads stdin, so its first chunks are on disk (linked, no row yet) while
    it waits for the rest; gc then removes their public names as orphans,
    and the commit must restore them from the writer's leases (link +
    fsync of the fan-out directory, backend_local.c ensure())."""
    body = blob(90, 2 * MiB + 5000)
    first = [body[:MiB], body[MiB:2 * MiB]]
    names = [os.path.join(w.store, "chunks", h[:2], h) for h in map(sha, first)]
    w.next_id += 1
    i = w.next_id
    w.mark({"ev": "start", "id": i, "what": "put raced (stdin) while gc runs",
            "effects": [["obj", BKT, "raced", sha(body)]]})
    p = subprocess.Popen([w.ctx.storectl, "--store", w.store, "put", BKT, "raced", "-"],
                         env=w.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    fc.register_pid(p.pid)
    try:
        p.stdin.write(body[:2 * MiB + 100])
        p.stdin.flush()
        t_end = time.time() + 30
        while not all(map(os.path.exists, names)) and time.time() < t_end:
            time.sleep(0.02)
        if not all(map(os.path.exists, names)):
            raise fc.Fail("the racing put's chunks never appeared")
        g = w.sc("gc")
        w.next_id += 1
        w.mark({"ev": "start", "id": w.next_id, "what": "gc", "effects": []})
        w.mark({"ev": "ack" if g.returncode == 0 else "fail", "id": w.next_id,
                "why": g.out.strip()})
        if g.returncode != 0:
            raise fc.Fail("gc during a put: " + g.err[-200:])
        if any(map(os.path.exists, names)):
            raise fc.Fail("gc left the racing put's chunk names: the race did not "
                          "happen (%s)" % g.out.strip())
        p.stdin.write(body[2 * MiB + 100:])
        p.stdin.close()
        p.wait(timeout=60)
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    ok = p.returncode == 0
    w.mark({"ev": "ack" if ok else "fail", "id": i, "why": err.decode()[-200:]})
    if not ok:
        raise fc.Fail("racing put: " + err.decode()[-300:])
    if not all(map(os.path.exists, names)):
        raise fc.Fail("the racing put committed without restoring its chunk names")


class PreloadS3d(fc.S3d):
    """fcommon's S3d, started with the recorder preloaded."""

    def __init__(self, b, w, log):
        self.b = b
        self.store = w.store
        self.port = fc.free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.endpoint = "http://" + self.host
        self.logpath = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [b.s3d, "--store", w.store, "--listen", self.host], stdout=self.log,
            stderr=self.log, env=w.env())
        fc.register_pid(self.proc.pid)
        self.up = self.wait_up(60)


def s3_setup(ctx, w):
    env = {"STORE_ACCESS_KEY": fc.ACCESS, "STORE_SECRET_KEY": fc.SECRET}
    p = w.sc("init", preload=False, extra_env=env)
    if p.returncode != 0:
        raise fc.Fail("init: " + p.err[-200:])
    p = w.sc("bucket", "create", BKT, preload=False)
    if p.returncode != 0:
        raise fc.Fail("bucket create: " + p.err[-200:])
    w.snapshot()
    w.base_effects = [["store", True], ["bucket", BKT, True]]
    srv = PreloadS3d(ctx.build, w, os.path.join(w.dir, "s3d.log"))
    if not srv.up:
        srv.stop()
        raise fc.Fail("s3d did not start under the recorder: %s" % srv.logtext()[-300:])
    return srv, fc.boto3_client(srv.endpoint)


def s3_put(w, c, key, body):
    def run():
        r = c.put_object(Bucket=BKT, Key=key, Body=body)
        return r["ResponseMetadata"]["HTTPStatusCode"] == 200, ""
    return w.op("s3 put %s (%d B)" % (key, len(body)), [["obj", BKT, key, sha(body)]], run)


def wl_s3(ctx, w):
    """s3d under the recorder, boto3 as the client: puts, copy, multipart,
    delete, overwrite, and a storectl put racing an s3d put of the same
    bytes (deduplication across processes)."""
    s = ctx.scale
    srv, c = s3_setup(ctx, w)
    try:
        small = blob(40, 1000)
        big = blob(41, int(2.5 * MiB * s))
        s3_put(w, c, "s-small", small)
        s3_put(w, c, "s-big", big)

        def copy():
            r = c.copy_object(Bucket=BKT, Key="s-copy",
                              CopySource={"Bucket": BKT, "Key": "s-big"})
            return r["ResponseMetadata"]["HTTPStatusCode"] == 200, ""
        w.op("s3 copy s-big s-copy", [["obj", BKT, "s-copy", sha(big)]], copy)
        p1 = blob(42, 5 * MiB)
        p2 = blob(43, 300 * 1024)

        def mpu():
            up = c.create_multipart_upload(Bucket=BKT, Key="s-mpu")["UploadId"]
            e1 = c.upload_part(Bucket=BKT, Key="s-mpu", UploadId=up, PartNumber=1,
                               Body=p1)["ETag"]
            e2 = c.upload_part(Bucket=BKT, Key="s-mpu", UploadId=up, PartNumber=2,
                               Body=p2)["ETag"]
            r = c.complete_multipart_upload(
                Bucket=BKT, Key="s-mpu", UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                           {"PartNumber": 2, "ETag": e2}]})
            return r["ResponseMetadata"]["HTTPStatusCode"] == 200, ""
        w.op("s3 multipart s-mpu", [["obj", BKT, "s-mpu", sha(p1 + p2)]], mpu)

        def delete():
            r = c.delete_object(Bucket=BKT, Key="s-small")
            return r["ResponseMetadata"]["HTTPStatusCode"] == 204, ""
        w.op("s3 delete s-small", [["obj", BKT, "s-small", None]], delete)
        s3_put(w, c, "s-big", blob(44, int(1.5 * MiB * s)))
        # The same bytes through two processes at once.
        same = blob(45, 2 * MiB + 3)
        errs = []

        def via_s3():
            try:
                s3_put(w, c2, "s-conc-a", same)
            except Exception as e:  # noqa: BLE001
                errs.append(e)
        c2 = fc.boto3_client(srv.endpoint)
        t = threading.Thread(target=via_s3)
        t.start()
        try:
            w.put(BKT, "s-conc-b", same)
        finally:
            t.join()
        if errs:
            raise errs[0]
        # Concurrent PUTs: s3d's group commit shares one WAL fsync between
        # them, and none may be answered before it.
        clients = [fc.boto3_client(srv.endpoint) for _ in range(4)]
        threads = []

        def one(cl, n):
            try:
                s3_put(w, cl, "g-%d" % n, blob(80 + n, 3000 if n % 2 else 300 * 1024))
            except Exception as e:  # noqa: BLE001
                errs.append(e)
        for n, cl in enumerate(clients):
            threads.append(threading.Thread(target=one, args=(cl, n)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errs:
            raise errs[0]
        s3_put(w, c, "s-small", blob(46, 2000))
    finally:
        rc = srv.stop()
    if rc != 0:
        raise fc.Fail("s3d exited %s: %s" % (rc, srv.logtext()[-300:]))


class PreloadFuse(fc.Fuse):
    """fcommon's Fuse, started with the recorder preloaded."""

    def __init__(self, b, w, mnt, log, opts=()):
        self.b = b
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        self.logpath = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [b.fusefs, "--store", w.store, mnt, "-f"] + list(opts),
            stdout=self.log, stderr=self.log, env=w.env())
        fc.register_pid(self.proc.pid)
        self.up = False
        t_end = time.time() + 30
        while time.time() < t_end:
            if self.proc.poll() is not None:
                break
            if os.path.ismount(mnt):
                self.up = True
                break
            time.sleep(0.1)


def fuse_usable(ctx):
    return (os.geteuid() == 0 and os.path.exists("/dev/fuse")
            and shutil.which("fusermount3") is not None
            and os.path.exists(ctx.build.fusefs))


def wl_fuse(ctx, w):
    """fusefs under the recorder (one bucket mounted): create and write,
    an edit in the middle of a multi-chunk file, truncate, rename over an
    existing file, unlink, a directory rename, and fsync before close."""
    s = ctx.scale
    env = {"STORE_ACCESS_KEY": fc.ACCESS, "STORE_SECRET_KEY": fc.SECRET}
    if w.sc("init", preload=False, extra_env=env).returncode != 0:
        raise fc.Fail("init")
    if w.sc("bucket", "create", BKT, preload=False).returncode != 0:
        raise fc.Fail("bucket create")
    w.snapshot()
    w.base_effects = [["store", True], ["bucket", BKT, True]]
    mnt = os.path.join(w.dir, "mnt")
    fs = PreloadFuse(ctx.build, w, mnt, os.path.join(w.dir, "fusefs.log"),
                     ["--bucket", BKT])
    if not fs.up:
        fs.stop()
        raise fc.Fail("fusefs did not mount under the recorder: %s" % fs.logtext()[-300:])
    cur = {}
    empty = sha(b"")

    def fsop(*args, env=None):
        def run():
            e = dict(fc.tool_env(ctx.home))
            if env:
                e.update(env)
            p = subprocess.run([sys.executable, os.path.join(HERE, "fsop.py")]
                               + [str(a) for a in args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60, env=e)
            out = p.stdout.decode("utf-8", "replace").strip()
            return p.returncode == 0 and out.endswith("OK"), out[-300:]
        return run

    def op(what, effects, run, also=()):
        w.next_id += 1
        i = w.next_id
        w.mark({"ev": "start", "id": i, "what": what, "effects": effects,
                "also": list(also)})
        ok, why = run()
        w.mark({"ev": "ack" if ok else "fail", "id": i, "why": why})
        if not ok:
            raise fc.Fail("workload step %s failed: %s" % (what, why))

    def write(key, seed, n):
        old = cur.get(key)
        cur[key] = blob(seed, n)
        # A new file is committed empty at create, then whole at close.
        also = [] if old is not None else [["obj", BKT, key, empty]]
        op("write %s (%d B)" % (key, n), [["obj", BKT, key, sha(cur[key])]],
           fsop("write", os.path.join(mnt, key), seed, n), also)

    try:
        write("a.bin", 70, int(2.5 * MiB * s))
        write("plain", 71, 100 * 1024)
        write("small", 72, 500)
        # an edit across a chunk boundary of a.bin
        off, n = MiB - 7, 20
        b = bytearray(cur["a.bin"])
        b[off:off + n] = blob(73, n)
        cur["a.bin"] = bytes(b)
        op("pwrite a.bin", [["obj", BKT, "a.bin", sha(cur["a.bin"])]],
           fsop("pwrite", os.path.join(mnt, "a.bin"), off, 73, n))
        cur["a.bin"] = cur["a.bin"][:int(1.7 * MiB)]
        op("truncate a.bin", [["obj", BKT, "a.bin", sha(cur["a.bin"])]],
           fsop("truncate", os.path.join(mnt, "a.bin"), int(1.7 * MiB)))
        op("rename plain renamed", [["obj", BKT, "plain", None],
                                    ["obj", BKT, "renamed", sha(cur["plain"])]],
           fsop("rename", os.path.join(mnt, "plain"), os.path.join(mnt, "renamed")))
        cur["renamed"] = cur.pop("plain")
        op("rename renamed over small", [["obj", BKT, "renamed", None],
                                         ["obj", BKT, "small", sha(cur["renamed"])]],
           fsop("rename", os.path.join(mnt, "renamed"), os.path.join(mnt, "small")))
        cur["small"] = cur.pop("renamed")
        op("mkdir d", [], fsop("mkdir", os.path.join(mnt, "d")))
        write("d/one", 74, MiB + 1)
        write("d/two", 75, 3000)
        op("rename d e", [["obj", BKT, "d/one", None], ["obj", BKT, "d/two", None],
                          ["obj", BKT, "e/one", sha(cur["d/one"])],
                          ["obj", BKT, "e/two", sha(cur["d/two"])]],
           fsop("rename", os.path.join(mnt, "d"), os.path.join(mnt, "e")))
        op("unlink small", [["obj", BKT, "small", None]],
           fsop("unlink", os.path.join(mnt, "small")))
        # fsync, then more writes and close: the fsync'ed content is promised
        # as soon as fsync returns (the child marks it there).
        first = blob(76, int(1.2 * MiB))
        whole = first + blob(77, 700 * 1024)
        w.next_id += 2
        i1, i2 = w.next_id - 1, w.next_id
        w.mark({"ev": "start", "id": i1, "what": "write synced, fsync",
                "effects": [["obj", BKT, "synced", sha(first)]],
                "also": [["obj", BKT, "synced", empty]]})
        ok, why = fsop("fsync-then", os.path.join(mnt, "synced"), 76, len(first), 77,
                       len(whole) - len(first), w.log, i1, i2,
                       env={"PL_EFFECTS": json.dumps([["obj", BKT, "synced",
                                                       sha(whole)]])})()
        w.mark({"ev": "ack" if ok else "fail", "id": i2, "why": why})
        if not ok:
            raise fc.Fail("fsync-then: %s" % why)
    finally:
        rc = fs.stop()
    if rc != 0:
        raise fc.Fail("fusefs exited %s: %s" % (rc, fs.logtext()[-300:]))


def wl_neg_cli(ctx, w):
    """A small storectl workload for the negative controls."""
    w.snapshot()
    env = {"STORE_ACCESS_KEY": fc.ACCESS, "STORE_SECRET_KEY": fc.SECRET}
    w.simple("init", [["store", True]], "init", env=env)
    w.simple("bucket create", [["bucket", BKT, True]], "bucket", "create", BKT)
    w.put(BKT, "big", blob(50, 2 * MiB + 100))
    w.put(BKT, "small", blob(51, 200))
    w.put(BKT, "big2", blob(52, MiB + 100))


def wl_neg_s3(ctx, w):
    srv, c = s3_setup(ctx, w)
    try:
        s3_put(w, c, "n1", blob(60, 3000))
        s3_put(w, c, "n2", blob(61, MiB + 1))
    finally:
        srv.stop()


WORKLOADS = [
    # name, function, PL_DROP pattern, share of crash points
    ("cli", wl_cli, None, 0.5),
    ("s3", wl_s3, None, 0.25),
    ("fuse", wl_fuse, None, 0.25),
]
NEGATIVE = [
    # name, function, PL_DROP, what is skipped, what a loss must say
    ("neg-fanout-dirsync", wl_neg_cli, "st/chunks/??",
     "fsync of the chunk fan-out directories skipped", "missing chunks"),
    ("neg-chunk-datasync", wl_neg_cli, "st/staging/*/*",
     "fdatasync of chunk files skipped", "corrupt, "),
    ("neg-wal-sync", wl_neg_s3, "st/catalog.db-wal",
     "fsync of SQLite's WAL skipped", "missing (acked"),
]


# ---------------------------------------------------------------- main
class Ctx:
    pass


def preload_for(binary, recorder):
    """The recorder, after the ASan runtime when the binary uses one (ASan
    insists on being first in the initial library list)."""
    libs = []
    try:
        out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode()
    except OSError:
        out = ""
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libasan") and "=>" in parts:
            libs.append(parts[parts.index("=>") + 1])
    return " ".join(libs + [recorder])


def main():
    build, tmp = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    R = fc.Results()
    ctx = Ctx()
    ctx.build = fc.Build(build, tmp)
    ctx.home = ctx.build.home
    fc.scrub_environment(ctx.home)
    ctx.tmp = tmp
    ctx.storectl = ctx.build.storectl
    ctx.recorder = os.path.join(build, "tests", "powerloss", "libplrecorder.so")
    ctx.preload = preload_for(ctx.storectl, ctx.recorder)
    ctx.seed = int(os.environ.get("PL_SEED", "1"))
    ctx.scale = float(os.environ.get("PL_SCALE", "1"))
    ctx.keep = os.environ.get("PL_KEEP") == "1"
    ctx.preinit = {}
    # Under ASan every storectl of the checks is several times slower; the
    # model is the same, so fewer points prove as much about the recorder
    # and the binaries there.
    asan = "libasan" in ctx.preload
    cap_total = int(os.environ.get("PL_POINTS") or (60 if asan else 300))
    variants = float(os.environ.get("PL_VARIANTS") or "0.4")
    only = set(os.environ.get("PL_WORKLOADS", "").split())
    totals = {"workloads": 0, "points": 0, "objects": 0, "losses": 0, "states": 0}
    t0 = time.time()

    def run_workload(name, fn, drop, cap, negative, note="", must_say=""):
        w = Recorded(ctx, name, drop)
        t1 = time.time()
        try:
            fn(ctx, w)
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc().strip().splitlines()
            R.fail(name + "/workload", "%s: %s [%s]" % (type(e).__name__, e,
                                                        " / ".join(tb[-3:-1])))
            return
        t2 = time.time()
        try:
            fig, losses = replay_workload(ctx, w, cap, 0 if negative else variants)
        except rp.ModelError as e:
            R.fail(name + "/model", "the replay cannot follow the log: %s" % e)
            return
        t3 = time.time()
        totals["workloads"] += 1
        desc = ("%d records, %d syncs, %d acks; %d crash points, %d states checked "
                "(%d variants, %d duplicates skipped), %d objects; record %.1fs, "
                "replay %.1fs" % (fig["records"], fig["syncs"], fig["acks"],
                                  fig["points"], fig["states"], fig["variants"],
                                  fig["dedup"], fig["objects"], t2 - t1, t3 - t2))
        if negative:
            if fig["dropped"] == 0:
                R.fail(name, "the recorder never skipped a sync (%s): control did not run"
                       % drop)
            elif losses:
                right = [(lab, p) for lab, ps in losses for p in ps if must_say in p]
                if not right:
                    R.fail(name, "losses found, but none says %r (%s): %s" % (
                        must_say, note, losses[0][1][0][:300]))
                else:
                    R.ok(name, "%d of %d states lost data, as they must (%s); e.g. "
                         "%s: %s" % (len(losses), fig["states"], note, right[0][0],
                                     right[0][1][:160]))
            else:
                R.fail(name, "no loss found although %s (%d skipped): the checker "
                       "cannot fail" % (note, fig["dropped"]))
            return
        if fig["model_diffs"]:
            R.fail(name + "/model-matches-disk", "after the workload the model differs "
                   "from the real tree (the recorder missed something): %s"
                   % "; ".join(fig["model_diffs"][:5]))
        else:
            R.ok(name + "/model-matches-disk")
        need = ["wal writes", "wal syncs", "store dir syncs"]
        if name in ("cli", "s3", "fuse"):
            need += ["fan-out dir syncs", "chunk writes", "chunk syncs", "links",
                     "shm mmaps"]
        missing = [k for k in need if not fig["coverage"].get(k)]
        if missing:
            R.fail(name + "/recorder-coverage", "never saw: %s (saw %s)" % (
                ", ".join(missing), fig["coverage"]))
        else:
            R.ok(name + "/recorder-coverage", ", ".join(
                "%s %d" % kv for kv in sorted(fig["coverage"].items())))
        totals["points"] += fig["points"]
        totals["states"] += fig["states"]
        totals["objects"] += fig["objects"]
        totals["losses"] += len(losses)
        if losses:
            detail = "; ".join("%s: %s" % (lab, " | ".join(p[:2])) for lab, p in losses[:3])
            R.fail(name, "%d of %d crash states lost data: %s [%s]" % (
                len(losses), fig["states"], detail[:900], desc))
        else:
            R.ok(name, desc)

    for name, fn, drop, share in WORKLOADS:
        if only and name not in only:
            continue
        if name == "fuse" and not fuse_usable(ctx):
            R.ok(name, "SKIP needs root, /dev/fuse, fusermount3 and fusefs built")
            continue
        run_workload(name, fn, drop, max(10, int(cap_total * share)), False)
    for name, fn, drop, note, must_say in NEGATIVE:
        if only and name not in only and "negative" not in only:
            continue
        run_workload(name, fn, drop, max(8, int(cap_total * 0.05)), True, note,
                     must_say)
    # s3d and fusefs ran with the recorder (and, in the ASan build, the
    # sanitizers): their logs must hold no report.
    fc.sanitizer_scan(R, tmp)
    if ctx.preinit:
        print("# crash during init (nothing promised): %s" % ", ".join(
            "%s %d" % kv for kv in sorted(ctx.preinit.items())), flush=True)
    print("powerloss: workloads %d, crash points %d, objects checked %d, losses %d "
          "(%d states, %.0f s)" % (totals["workloads"], totals["points"],
                                   totals["objects"], totals["losses"], totals["states"],
                                   time.time() - t0), flush=True)
    R.finish()


if __name__ == "__main__":
    main()
