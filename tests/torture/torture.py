#!/usr/bin/env python3
"""torture.py BUILD_DIR TMPDIR -- crash torture of one store reached as S3
(s3d) and as a FUSE mount (fusefs) at once.

Each round runs concurrent writers for a few seconds:
  s3small  PUTs of inline objects (0..4 KiB) over S3, deletes over S3 and
           through the mount, small writes through the mount
  s3big    PUTs of 1..5 MiB (multi-chunk, partly from a shared pool so that
           chunks are deduplicated and freed again), deletes over S3 and the
           mount, overwrites through the mount
  mpu      multipart uploads (one part, or 5 MiB + a short last part),
           completed or aborted, and deletes
  mount    files written through the mount (create/write/fsync/close),
           renamed (replacing or not), unlinked, deleted over S3, and a
           small directory written into and renamed back and forth
  mount2   mid-size files through the mount, overwritten over S3, renamed,
           deleted over S3
  gc       `storectl gc` again and again
while a killer SIGKILLs one of {s3d, fusefs, the running storectl gc} at a
random moment and restarts it (fusefs: `fusermount3 -u -z`, then mount
again).  Then every writer is stopped and joined and the round is checked:

  - every acknowledged write (a 200 to a PUT or a completion, a 204 to a
    DELETE, fsync + close, unlink, rename returning 0) reads back exactly
    over S3, and a sample of keys reads back through the mount;
  - an operation that was not acknowledged (in flight at the kill) left
    its keys either as they were or exactly as the operation would have
    made them -- never a mix, never a wrong size.  A write through the
    mount may also leave the file empty (its create/O_TRUNC is a step a
    POSIX filesystem makes visible) or holding what was written before a
    failed write() (the close after it commits); a rename moves both names
    or neither;
  - no object, no multipart upload exists that nobody made;
  - `storectl gc` with nothing in flight, then `storectl fsck` is clean,
    every chunk file is referenced by the catalog and every referenced
    chunk file exists (checked here from the chunk directory and the
    catalog, independently of fsck), `staging/` holds only the live
    daemons' empty directories;
  - an operation failed only when the process serving it was being killed
    (open(O_CREAT) answered ENOENT through the mount is reported on its own,
    as mount_open_creat_never_enoent: a name the kernel still caches after
    its object was deleted over S3).

The state observed after a round is the next round's baseline.

Environment (run.sh passes them on): TORTURE_SECONDS (60) and
TORTURE_ROUNDS (12) bound the loop, whichever comes first; TORTURE_SEED
repeats a run's random choices (timing still varies); TORTURE_LOAD
("2.5-5") is the range of a round's load phase in seconds; TORTURE_TARGETS
("s3d fusefs gc") what the killer may pick.

Prints `ok NAME` / `FAIL NAME: reason`, a line
`torture: rounds R, kills K (s3d a, fusefs b, gc c), objects checked N, losses L`
and ends with `N passed, N failed`.
"""
import collections
import errno
import hashlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))
import fcommon as fc  # noqa: E402
from fcommon import Build, Fail, Fuse, Results, S3d, md5, register_pid  # noqa: E402

MiB = 1 << 20
KiB = 1 << 10
B = "bkt"
TOPS = ("s", "b", "u", "m", "n")  # one directory (with its marker) per worker
EMPTY = (md5(b""), 0)
TARGETS = ("s3d", "fusefs", "gc")


def st(content):
    """The state of a key holding `content`: (MD5, size).  None = absent."""
    return (md5(content), len(content))


def show(state):
    if state is None:
        return "absent"
    if state == "ERR":
        return "unreadable"
    return "%s..(%d B)" % (state[0][:8], state[1])


def proc_threads(pid):
    """The threads of a process that will not die, with the top of their
    kernel stacks (where they are stuck)."""
    out = []
    try:
        for t in sorted(os.listdir("/proc/%d/task" % pid)):
            d = "/proc/%d/task/%s/" % (pid, t)
            try:
                with open(d + "stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open(d + "stack") as f:
                    stack = [ln.split("]", 1)[-1].strip().split("+")[0]
                             for ln in f.read().splitlines()[:4]]
            except OSError:
                continue
            out.append("thread %s %s in %s" % (t, state, " < ".join(stack) or "user space"))
    except OSError as e:
        return "(%s)" % e
    return "; ".join(out) or "(no threads)"


# =================================================================== mount agents
# Every operation on the mount runs in an agent: a child process that does
# nothing else (one per writer, one for checking).  The driver itself never
# holds a descriptor on the mount: a fork by any of its threads (starting
# storectl, s3d, fusefs) would otherwise close the child's copies of the
# writers' descriptors, and fusefs commits a file at every close (FLUSH) --
# a half-written file would become visible because of the test, not of the
# store.  An agent that hangs in a FUSE request is killed after AGENT_TIMEOUT.
AGENT_TIMEOUT = 90


def agent_main():
    """`torture.py --agent`: one JSON request a line on stdin (followed by
    `n` bytes of data), one JSON answer a line on stdout."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer

    def en(e):
        return errno.errorcode.get(e.errno, str(e.errno))

    while True:
        line = inp.readline()
        if not line:
            return
        q = json.loads(line)
        data = inp.read(q["n"]) if q.get("n") else b""
        op, a = q["op"], {"ok": True}
        try:
            if op == "write":  # create/O_TRUNC, write 1 MiB at a time, fsync, close
                a.update(opened=False, off=0)
                try:
                    fd = os.open(q["path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                except OSError as e:
                    a.update(ok=False, err="open: " + en(e))
                else:
                    a["opened"] = True
                    mv = memoryview(data)
                    try:
                        while a["off"] < len(data):
                            a["off"] += os.write(fd, mv[a["off"]:a["off"] + MiB])
                        os.fsync(fd)
                    except OSError as e:
                        a.update(ok=False, err="write/fsync@%d: %s" % (a["off"], en(e)))
                    try:
                        os.close(fd)
                    except OSError as e:
                        if a["ok"]:
                            a.update(ok=False, err="close: " + en(e))
            elif op == "unlink":
                os.unlink(q["path"])
            elif op == "rename":
                os.rename(q["src"], q["dst"])
            elif op == "mkdir":
                os.mkdir(q["path"])
            elif op == "stat":
                os.stat(q["path"])
            elif op == "listdir":
                a["names"] = sorted(os.listdir(q["path"]))
            elif op == "read":
                h, n = hashlib.md5(), 0
                with open(q["path"], "rb", buffering=0) as f:
                    while True:
                        b = f.read(MiB)
                        if not b:
                            break
                        h.update(b)
                        n += len(b)
                a.update(md5=h.hexdigest(), size=n)
            else:
                a.update(ok=False, err="bad op " + op)
        except OSError as e:
            a.update(ok=False, err="%s: %s" % (op, en(e)))
        out.write((json.dumps(a) + "\n").encode())
        out.flush()


class Agent:
    """The driver's side of one mount agent."""

    def __init__(self, ctx, name):
        self.ctx, self.name = ctx, name
        self.p = None
        self.buf = b""

    def start(self):
        log = open(os.path.join(self.ctx.T, "agent-%s.log" % self.name), "ab")
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--agent"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                  env=fc.tool_env(self.ctx.b.home), close_fds=True)
        log.close()
        register_pid(self.p.pid)
        self.buf = b""

    def kill(self):
        if self.p is not None:
            self.p.kill()
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self.p = None

    def call(self, q, data=b"", timeout=AGENT_TIMEOUT):
        """Send one request; the answer dict (ok, err, ...).  A hang is
        answered {"ok": False, "err": "hung ..."} and the agent killed."""
        if self.p is None or self.p.poll() is not None:
            self.start()
        q = dict(q, n=len(data))
        try:
            self.p.stdin.write(json.dumps(q).encode() + b"\n")
            if data:
                self.p.stdin.write(data)
            self.p.stdin.flush()
        except OSError as e:
            self.kill()
            return {"ok": False, "err": "%s: agent gone (%s)" % (q["op"], e)}
        fd = self.p.stdout.fileno()
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                self.kill()
                return {"ok": False, "err": "%s: hung for more than %d s" % (q["op"], timeout),
                        "hung": True}
            r, _, _ = select.select([fd], [], [], left)
            if r:
                b = os.read(fd, 65536)
                if not b:
                    self.kill()
                    return {"ok": False, "err": "%s: agent died" % q["op"]}
                self.buf += b
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


# =================================================================== ledger
class Group:
    """One operation that was not acknowledged: the keys it touches and the
    states it would have left them in (`worlds`: each a {key: state}, keys
    left out keep their acknowledged state)."""

    def __init__(self, what, keys, worlds):
        self.what, self.keys, self.worlds = what, set(keys), worlds


class Ledger:
    """Per key: the last acknowledged state, plus the operation in flight at
    a failure since then.  A worker never touches a key again in the round
    once an operation on it was not acknowledged (the key is `tainted`), so
    each key is in at most one group and every request on it is over when
    the round is checked."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}  # key -> (md5, size); absent keys are not in it
        self.known = set()
        self.groups = []
        self.taint = {}
        # multipart: upload id -> [key, "open" | "done" | "maybe"]
        self.uploads = {}
        self.unknown_creates = collections.Counter()  # key -> creates in doubt

    def get(self, key):
        with self.lock:
            return self.acked.get(key)

    def free(self, *keys):
        with self.lock:
            return not any(k in self.taint for k in keys)

    def present(self, keys):
        with self.lock:
            return [k for k in keys if k in self.acked and k not in self.taint]

    def under(self, prefix):
        with self.lock:
            return {k: v for k, v in self.acked.items() if k.startswith(prefix)}

    def tainted_under(self, prefix):
        with self.lock:
            return any(k.startswith(prefix) for k in self.taint)

    def ack(self, changes):
        with self.lock:
            for k, v in changes.items():
                self.known.add(k)
                if v is None:
                    self.acked.pop(k, None)
                else:
                    self.acked[k] = v

    def unacked(self, what, worlds, keys=()):
        keys = set(keys)
        for w in worlds:
            keys |= set(w)
        with self.lock:
            g = Group(what, keys, worlds)
            self.groups.append(g)
            for k in keys:
                self.known.add(k)
                self.taint[k] = g

    def upload(self, uid, key, state):
        with self.lock:
            self.uploads[uid] = [key, state]

    def unknown_create(self, key):
        with self.lock:
            self.unknown_creates[key] += 1


# =================================================================== context
class Ctx:
    def __init__(self, b, T, seed):
        self.b, self.T = b, T
        self.store = os.path.join(T, "store")
        self.mnt = os.path.join(T, "mnt")
        self.L = Ledger()
        self.lock = threading.Lock()
        self.s3 = None
        self.fs = None
        self.n_s3 = self.n_fs = 0
        self.windows = []   # (door, t_from, t_to): the door was being killed
        self.failures = []  # (door, t0, t1, text): operations that failed
        self.bad_etags = []
        self.creates = 0
        self.kill_t = None
        self.hung_kills = []
        self.gc_proc = None
        self.gc_started = 0.0
        self.gc_avg = 0.05
        self.gc_killed = set()
        rng = random.Random(seed ^ 0x5eed)
        # A shared pool of contents: objects cut from it share chunks, so
        # chunks are deduplicated, dropped to refs 0 and leased again
        # while GC runs (durability.md, "GC and writers").
        self.pool = [rng.randbytes(6 * MiB) for _ in range(6)]
        self.agents = {}
        self.small_pool = [rng.randbytes(4 * KiB) for _ in range(8)]

    # ---------------------------------------------------------- daemons
    def start_s3d(self):
        self.n_s3 += 1
        s = S3d(self.b, self.store, os.path.join(self.T, "s3d-%d.log" % self.n_s3))
        if not s.up:
            raise Fail("s3d did not start: %s" % s.logtext()[-400:])
        self.s3 = s

    def start_fusefs(self):
        self.n_fs += 1
        f = Fuse(self.b, self.store, self.mnt, os.path.join(self.T, "fusefs-%d.log" % self.n_fs))
        if not f.up:
            raise Fail("fusefs did not mount: %s" % f.logtext()[-400:])
        self.fs = f

    def host(self):
        return self.s3.host

    def agent(self, name):
        with self.lock:
            if name not in self.agents:
                self.agents[name] = Agent(self, name)
            return self.agents[name]

    def path(self, key):
        return os.path.join(self.mnt, B, key)

    def kill_s3d(self):
        t = self.kill_t = time.time()
        old = self.s3
        old.proc.send_signal(signal.SIGKILL)
        try:
            old.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise Fail("s3d still alive 30 s after SIGKILL: %s" % proc_threads(old.proc.pid))
        old.log.close()
        self.start_s3d()
        self.windows.append(("s3", t, time.time()))
        return old.proc.returncode == -signal.SIGKILL, time.time() - t

    def kill_fusefs(self):
        """SIGKILL fusefs, lazy-unmount the dead mount, mount again.  A
        fusefs that does not exit (a thread stuck in the kernel) is
        recorded, and its FUSE connection is aborted (umount -f) so that the
        run can go on."""
        t = self.kill_t = time.time()
        old = self.fs
        old.proc.send_signal(signal.SIGKILL)
        try:
            old.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with self.lock:
                self.hung_kills.append("pid %d still there 10 s after SIGKILL: %s" % (
                    old.proc.pid, proc_threads(old.proc.pid)))
            # MNT_FORCE makes the kernel abort the FUSE connection first
            # (fuse_umount_begin): every request waiting on it fails, so
            # the stuck thread can finish dying; the unmount itself may
            # fail (busy), the lazy one below does it.
            fc.sh(["umount", "-f", self.mnt], timeout=30)
            try:
                old.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise Fail("fusefs survives SIGKILL and umount -f: %s"
                           % proc_threads(old.proc.pid))
        old.log.close()
        fc.sh(["fusermount3", "-u", "-z", self.mnt], timeout=30)
        self.start_fusefs()
        self.windows.append(("fs", t, time.time()))
        return old.proc.returncode == -signal.SIGKILL, time.time() - t

    def kill_gc(self, deadline, rng):
        """SIGKILL the running `storectl gc` at a random moment of its run."""
        while time.time() < deadline:
            with self.lock:
                p, t0, avg = self.gc_proc, self.gc_started, self.gc_avg
            if p is None or p.poll() is not None:
                time.sleep(0.005)
                continue
            delay = rng.uniform(0, 1.3 * avg) - (time.time() - t0)
            if delay > 0:
                time.sleep(delay)
            with self.lock:
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    self.gc_killed.add(p.pid)
            if p.wait() == -signal.SIGKILL:
                return True, time.time() - t0
        return False, 0.0

    # ---------------------------------------------------------- operations
    def failed(self, door, t0, text):
        with self.lock:
            self.failures.append((door, t0, time.time(), text))

    def s3_put(self, key, content):
        t0 = time.time()
        r = fc.put(self.host(), B, key, content, timeout=120)
        s = st(content)
        if r.status == 200:
            etag = r.headers.get("etag", "").strip('"')
            if etag != s[0]:
                with self.lock:
                    self.bad_etags.append("PUT %s: ETag %s, MD5 %s" % (key, etag, s[0]))
            self.L.ack({key: s})
            return True
        self.failed("s3", t0, "PUT %s (%d B): %r" % (key, len(content), r))
        if r.status is None:  # no answer: it may or may not have happened
            self.L.unacked("S3 PUT %s" % key, [{key: s}])
        # an error answer: nothing happened (the ledger keeps the key as is)
        return False

    def s3_delete(self, key):
        t0 = time.time()
        r = fc.request(self.host(), "DELETE", "/%s/%s" % (B, fc.q_path(key)), timeout=120)
        if r.status == 204:
            self.L.ack({key: None})
            return True
        self.failed("s3", t0, "DELETE %s: %r" % (key, r))
        if r.status is None:
            self.L.unacked("S3 DELETE %s" % key, [{key: None}])
        return False

    def s3_mpu(self, key, parts, complete):
        """Create, upload `parts`, then complete or abort."""
        H = self.host()
        path = "/%s/%s" % (B, fc.q_path(key))
        t0 = time.time()
        r = fc.request(H, "POST", path, query=[("uploads", None)], timeout=120)
        uid = None
        if r.status == 200 and r.complete:
            try:
                uid = fc._xml_children(r.body).findtext("UploadId")
            except Exception:  # noqa: BLE001
                uid = None
        if not uid:
            self.failed("s3", t0, "CreateMultipartUpload %s: %r" % (key, r))
            if r.status is None or r.status == 200:
                self.L.unknown_create(key)
            return False
        self.L.upload(uid, key, "open")
        etags = []
        for i, p in enumerate(parts, 1):
            t0 = time.time()
            r = fc.request(self.host(), "PUT", path, p, timeout=120,
                           query=[("partNumber", str(i)), ("uploadId", uid)])
            if r.status != 200:
                self.failed("s3", t0, "UploadPart %s #%d: %r" % (key, i, r))
                return False
            etags.append(r.headers.get("etag", "").strip('"'))
            if etags[-1] != md5(p):
                with self.lock:
                    self.bad_etags.append("UploadPart %s #%d: ETag %s, MD5 %s"
                                          % (key, i, etags[-1], md5(p)))
        whole = b"".join(parts)
        t0 = time.time()
        if complete:
            xml = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
                "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>" % (i, e)
                for i, e in enumerate(etags, 1))
            r = fc.request(self.host(), "POST", path, xml.encode(), timeout=120,
                           query=[("uploadId", uid)])
            if r.status == 200 and r.complete and b"<Error>" not in r.body:
                want = md5(b"".join(bytes.fromhex(e) for e in etags)) + "-%d" % len(parts)
                got = fc._xml_children(r.body).findtext("ETag", "").strip('"')
                if got != want:
                    with self.lock:
                        self.bad_etags.append("Complete %s: ETag %s, want %s" % (key, got, want))
                self.L.ack({key: st(whole)})
                self.L.upload(uid, key, "done")
                return True
            self.failed("s3", t0, "CompleteMultipartUpload %s: %r" % (key, r))
            if r.status is None or r.status == 200:  # 200 + <Error>: in doubt too
                self.L.unacked("S3 CompleteMultipartUpload %s" % key, [{key: st(whole)}])
                self.L.upload(uid, key, "maybe")
            return False
        r = fc.request(self.host(), "DELETE", path, query=[("uploadId", uid)], timeout=120)
        if r.status == 204:
            self.L.upload(uid, key, "done")
            return True
        self.failed("s3", t0, "AbortMultipartUpload %s: %r" % (key, r))
        if r.status is None:
            self.L.upload(uid, key, "maybe")
        return False

    def fs_write(self, agent, key, content):
        """create/open O_TRUNC, write, fsync, close: acknowledged when all
        of them returned 0."""
        t0 = time.time()
        self.creates += 1
        a = agent.call({"op": "write", "path": self.path(key)}, content)
        s = st(content)
        if a["ok"]:
            self.L.ack({key: s})
            return True
        self.failed("fs", t0, "write %s (%d B): %s" % (key, len(content), a["err"]))
        # The create (or O_TRUNC) may have been committed; the data only
        # once the file was open; and a close after a failed write commits
        # what was written before it (fusefs commits at every close), so
        # any prefix written is a possible state too (never a mix).
        worlds = [{key: EMPTY}]
        if a.get("opened", True):
            worlds.append({key: s})
            done = a.get("off", len(content)) if not a.get("hung") else len(content)
            worlds += [{key: st(content[:k])} for k in range(MiB, done, MiB)]
            if done % MiB:
                worlds.append({key: st(content[:done])})
        self.L.unacked("mount write %s" % key, worlds)
        return False

    def fs_unlink(self, agent, key):
        t0 = time.time()
        a = agent.call({"op": "unlink", "path": self.path(key)})
        if a["ok"]:
            self.L.ack({key: None})
            return True
        self.failed("fs", t0, "unlink %s: %s" % (key, a["err"]))
        self.L.unacked("mount unlink %s" % key, [{key: None}])
        return False

    def fs_rename(self, agent, src, dst, moves):
        """rename(2) of a file or a directory; `moves` is {key: state} of
        the keys the rename leaves behind (the old names absent, the new
        ones holding the old content)."""
        t0 = time.time()
        a = agent.call({"op": "rename", "src": self.path(src), "dst": self.path(dst)})
        if a["ok"]:
            self.L.ack(moves)
            return True
        self.failed("fs", t0, "rename %s %s: %s" % (src, dst, a["err"]))
        self.L.unacked("mount rename %s -> %s" % (src, dst), [moves])
        return False

    def content(self, rng, size, pooled):
        if pooled:
            p = rng.choice(self.pool if size > 4 * KiB else self.small_pool)
            return p[:size]
        return rng.randbytes(size)


# =================================================================== workers
class Worker(threading.Thread):
    def __init__(self, ctx, name, seed):
        super().__init__(daemon=True, name=name)
        self.ctx, self.L = ctx, ctx.L
        self.agent = ctx.agent(name)
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.ops = collections.Counter()
        self.exc = []

    def run(self):
        while not self.stop.is_set():
            try:
                what, ok = self.step()
            except Exception:  # noqa: BLE001 - reported as a failure of the suite
                self.exc.append(traceback.format_exc().strip().splitlines()[-3:])
                self.stop.wait(0.2)
                continue
            if what is None:
                self.stop.wait(0.02)
                continue
            self.ops[what + ("" if ok else " failed")] += 1

    def free_key(self, keys):
        keys = [k for k in keys if self.L.free(k)]
        return self.rng.choice(keys) if keys else None


class S3Small(Worker):
    KEYS = ["s/k%02d" % i for i in range(16)]

    def step(self):
        c, r = self.ctx, self.rng.random()
        if r < 0.70:
            k = self.free_key(self.KEYS)
            if not k:
                return None, False
            n = self.rng.choice((0, 1, self.rng.randrange(1, 4097), 4096))
            return "s3 put small", c.s3_put(k, c.content(self.rng, n, self.rng.random() < 0.4))
        present = self.L.present(self.KEYS)
        if not present:
            return None, False
        k = self.rng.choice(present)
        if r < 0.85:
            return "s3 delete", c.s3_delete(k)
        if r < 0.95:
            return "mount unlink", c.fs_unlink(self.agent, k)
        return "mount write", c.fs_write(self.agent, k, c.content(self.rng, self.rng.randrange(1, 4097), False))


class S3Big(Worker):
    KEYS = ["b/k%02d" % i for i in range(8)]

    def step(self):
        c, r = self.ctx, self.rng.random()
        if r < 0.65 or r >= 0.90:
            k = self.free_key(self.KEYS)
            if not k:
                return None, False
            if r < 0.65:
                n = self.rng.choice((MiB, 2 * MiB + 1, self.rng.randrange(MiB, 5 * MiB + 1),
                                     5 * MiB))
                return "s3 put big", c.s3_put(k, c.content(self.rng, n, self.rng.random() < 0.4))
            n = self.rng.randrange(MiB, 2 * MiB + 1)
            return "mount write", c.fs_write(self.agent, k, c.content(self.rng, n, self.rng.random() < 0.4))
        present = self.L.present(self.KEYS)
        if not present:
            return None, False
        k = self.rng.choice(present)
        if r < 0.80:
            return "s3 delete", c.s3_delete(k)
        return "mount unlink", c.fs_unlink(self.agent, k)


class Mpu(Worker):
    KEYS = ["u/k%d" % i for i in range(4)]

    def step(self):
        c, r = self.ctx, self.rng.random()
        if r < 0.1:
            present = self.L.present(self.KEYS)
            if not present:
                return None, False
            return "s3 delete", c.s3_delete(self.rng.choice(present))
        k = self.free_key(self.KEYS)
        if not k:
            return None, False
        pooled = self.rng.random() < 0.4
        if self.rng.random() < 0.5:
            parts = [c.content(self.rng, self.rng.randrange(MiB, 3 * MiB), pooled)]
        else:
            parts = [c.content(self.rng, 5 * MiB, pooled),
                     c.content(self.rng, self.rng.randrange(100 * KiB, 1536 * KiB), False)]
        complete = self.rng.random() < 0.75
        return ("mpu complete" if complete else "mpu abort"), c.s3_mpu(k, parts, complete)


class Mount(Worker):
    """Files of m/ through the mount, and the small directory m/dA <-> m/dB."""
    FILES = ["m/f%02d" % i for i in range(10)]
    DIRFILES = ["x0", "x1", "x2"]

    def size(self):
        r = self.rng.random()
        if r < 0.55:
            return self.rng.randrange(0, 4097)
        if r < 0.85:
            return self.rng.randrange(4097, 300 * KiB)
        return self.rng.randrange(MiB, 3 * MiB)

    def dir_state(self):
        """'m/dA/' or 'm/dB/' when the directory is where the ledger says
        and nothing under either name is in doubt, else None."""
        if self.L.tainted_under("m/dA/") or self.L.tainted_under("m/dB/"):
            return None
        a, b_ = self.L.under("m/dA/"), self.L.under("m/dB/")
        if "m/dA/" in a and not b_:
            return "m/dA/"
        if "m/dB/" in b_ and not a:
            return "m/dB/"
        return None

    def step(self):
        c, r = self.ctx, self.rng.random()
        if r < 0.42:
            k = self.free_key(self.FILES)
            if not k:
                return None, False
            return "mount write", c.fs_write(self.agent, k, c.content(self.rng, self.size(),
                                                          self.rng.random() < 0.3))
        if r < 0.72:
            present = self.L.present(self.FILES)
            if not present:
                return None, False
            src = self.rng.choice(present)
            if r < 0.57:
                dst = self.free_key([k for k in self.FILES if k != src])
                if not dst:
                    return None, False
                return "mount rename", c.fs_rename(self.agent, src, dst, {src: None, dst: self.L.get(src)})
            if r < 0.66:
                return "mount unlink", c.fs_unlink(self.agent, src)
            return "s3 delete", c.s3_delete(src)
        d = self.dir_state()
        if d is None:
            return None, False
        if r < 0.82:
            other = "m/dB/" if d == "m/dA/" else "m/dA/"
            moves = {}
            for k, v in self.L.under(d).items():
                moves[k] = None
                moves[other + k[len(d):]] = v
            return "mount dir rename", c.fs_rename(self.agent, d[:-1], other[:-1], moves)
        k = d + self.rng.choice(self.DIRFILES)
        if r < 0.95 or not self.L.get(k):
            return "mount write", c.fs_write(self.agent, k, c.content(self.rng, self.size(), False))
        return "mount unlink", c.fs_unlink(self.agent, k)


class Mount2(Worker):
    KEYS = ["n/f%02d" % i for i in range(8)]

    def step(self):
        c, r = self.ctx, self.rng.random()
        if r < 0.55 or (0.70 <= r < 0.80):
            k = self.free_key(self.KEYS)
            if not k:
                return None, False
            if r < 0.55:
                n = self.rng.randrange(64 * KiB, 2 * MiB)
                return "mount write", c.fs_write(self.agent, k, c.content(self.rng, n, self.rng.random() < 0.3))
            return "s3 put", c.s3_put(k, c.content(self.rng, self.rng.randrange(0, 600 * KiB),
                                                   False))
        present = self.L.present(self.KEYS)
        if not present:
            return None, False
        src = self.rng.choice(present)
        if r < 0.70:
            dst = self.free_key([k for k in self.KEYS if k != src])
            if not dst:
                return None, False
            return "mount rename", c.fs_rename(self.agent, src, dst, {src: None, dst: self.L.get(src)})
        return "s3 delete", c.s3_delete(src)


class Gc(threading.Thread):
    """`storectl gc` in a loop, concurrently with everything else."""

    def __init__(self, ctx, seed):
        super().__init__(daemon=True, name="gc")
        self.ctx = ctx
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.runs = self.killed = 0
        self.errors = []
        self.log = open(os.path.join(ctx.T, "gc.log"), "ab")

    def run(self):
        c = self.ctx
        while not self.stop.is_set():
            t0 = time.time()
            with c.lock:
                p = subprocess.Popen([c.b.storectl, "--store", c.store, "gc"],
                                     stdout=self.log, stderr=self.log,
                                     env=fc.tool_env(c.b.home))
                register_pid(p.pid)
                c.gc_proc, c.gc_started = p, t0
            rc = p.wait()
            with c.lock:
                c.gc_proc = None
                killed = p.pid in c.gc_killed
                if rc == 0:
                    c.gc_avg = 0.7 * c.gc_avg + 0.3 * (time.time() - t0)
            self.runs += 1
            if rc == -signal.SIGKILL and killed:
                self.killed += 1
            elif rc != 0:
                self.errors.append("storectl gc exited %s under load" % rc)
            self.stop.wait(self.rng.uniform(0.02, 0.3))
        self.log.close()


# =================================================================== checks
class Tally:
    """Checks accumulated over the rounds: each becomes one ok/FAIL line."""
    ORDER = ["setup", "kills_hit_every_target", "daemons_restart", "workers_stop",
             "fusefs_exits_on_sigkill", "driver_no_exceptions", "acked_writes_read_back", "unacked_all_or_nothing",
             "no_unknown_objects", "reads_complete", "listing_matches_objects",
             "etags_are_md5", "mount_reads_match_s3", "mount_listing_matches_s3",
             "uploads_accounted", "gc_under_load_no_errors", "gc_idle_ok", "fsck_clean",
             "stats_nothing_unreferenced", "chunk_files_match_catalog", "staging_clean",
             "no_errors_without_a_kill", "mount_open_creat_never_enoent",
             "daemons_never_died_unkilled", "shutdown_clean",
             "final_offline_gc_fsck"]

    def __init__(self):
        self.fails = collections.defaultdict(list)
        self.counts = collections.Counter()
        self.notes = {}

    def count(self, name, n=1):
        self.counts[name] += n

    def fail(self, name, rnd, text):
        self.fails[name].append("r%s: %s" % (rnd, text))
        print("# FAIL in round %s: %s: %s" % (rnd, name, str(text)[:400]), flush=True)

    def report(self, R):
        # TORTURE_KNOWN=a,b: checks of open bugs that fail only sometimes
        # (races): reported "ok NAME # known ..." either way, with the count.
        known = set(filter(None, os.environ.get("TORTURE_KNOWN", "").split(",")))
        for name in self.ORDER:
            f = self.fails.get(name)
            note = self.notes.get(name, "")
            if not note:
                note = ("%d checked" % self.counts[name] if self.counts.get(name)
                        else "nothing to check")
            if name in known:
                R.ok(name, "known bug (TORTURE_KNOWN): %s" % (
                    "%d failures this run, e.g. %s" % (len(f), f[0][:200]) if f
                    else "no failure this run"))
                continue
            R.check(name, not f, "%d: %s" % (len(f), " ; ".join(f[:4])) if f else "",
                    note=note)


def chunk_dir_check(ctx):
    """After a GC with nothing in flight: every chunk file is named by a
    catalog row that is referenced, every referenced non-inline chunk has
    its file of the right size, no row is left at refs 0, nothing else
    lies in chunks/.  Returns a list of problems."""
    probs = []
    files = {}
    cdir = os.path.join(ctx.store, "chunks")
    for x in sorted(os.listdir(cdir)):
        sub = os.path.join(cdir, x)
        if not os.path.isdir(sub) or len(x) != 2:
            probs.append("stray entry chunks/%s" % x)
            continue
        for f in os.listdir(sub):
            if len(f) != 64 or f[:2] != x or any(ch not in "0123456789abcdef" for ch in f):
                probs.append("stray file chunks/%s/%s" % (x, f))
                continue
            files[f] = os.lstat(os.path.join(sub, f)).st_size
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(ctx.store, "catalog.db"),
                         uri=True, timeout=30)
    try:
        rows = db.execute("SELECT lower(hex(hash)), size, refs, data IS NULL FROM chunk"
                          ).fetchall()
        ext = dict(db.execute("SELECT lower(hex(chunk)), count(*) FROM extent"
                              " WHERE chunk IS NOT NULL GROUP BY chunk").fetchall())
    finally:
        db.close()
    rowmap = {}
    for h, size, refs, is_file in rows:
        rowmap[h] = (size, refs, is_file)
        if refs == 0:
            probs.append("row %s.. at refs 0 after GC" % h[:12])
        if refs != ext.get(h, 0):
            probs.append("row %s.. refs %d, %d extents" % (h[:12], refs, ext.get(h, 0)))
        if is_file and refs > 0:
            if h not in files:
                probs.append("chunk %s.. (refs %d) has no file" % (h[:12], refs))
            elif files[h] != size:
                probs.append("chunk %s.. file %d B, row %d B" % (h[:12], files[h], size))
    for h in files:
        if h not in rowmap:
            probs.append("file %s.. has no row (stray)" % h[:12])
        elif not rowmap[h][2]:
            probs.append("file %s.. of an inline chunk" % h[:12])
    for h in ext:
        if h not in rowmap:
            probs.append("extents name chunk %s.. that has no row" % h[:12])
    return probs, len(files), len(rows)


def staging_check(ctx, live_pids):
    """staging/ holds a lock and an empty directory per live store process
    (no leases left, no dead process's leftovers)."""
    probs = []
    sdir = os.path.join(ctx.store, "staging")
    names = os.listdir(sdir)
    seen = collections.Counter()
    for n in names:
        base = n[:-5] if n.endswith(".lock") else n
        pid = base.split("-", 1)[0]
        if not pid.isdigit() or int(pid) not in live_pids:
            probs.append("leftover staging/%s" % n)
            continue
        seen[int(pid)] += 1
        p = os.path.join(sdir, n)
        if os.path.isdir(p) and os.listdir(p):
            probs.append("staging/%s holds %d files" % (n, len(os.listdir(p))))
    for pid in live_pids:
        if seen[pid] != 2:
            probs.append("pid %d has %d staging entries, want lock + dir" % (pid, seen[pid]))
    return probs


# =================================================================== the run
class Torture:
    def __init__(self, b, T, R):
        self.b, self.T, self.R = b, T, R
        self.seconds = float(os.environ.get("TORTURE_SECONDS") or 60)
        self.max_rounds = int(os.environ.get("TORTURE_ROUNDS") or 12)
        seed = os.environ.get("TORTURE_SEED") or ""
        self.seed = int(seed) if seed else int.from_bytes(os.urandom(4), "big")
        lo, _, hi = (os.environ.get("TORTURE_LOAD") or "2.5-5").partition("-")
        self.load = (float(lo), float(hi or lo))
        self.targets = [t for t in TARGETS if t in (
            os.environ.get("TORTURE_TARGETS") or " ".join(TARGETS)).replace(",", " ").split()]
        if not self.targets:
            raise SystemExit("TORTURE_TARGETS: choose among %s" % " ".join(TARGETS))
        self.rng = random.Random(self.seed)
        self.ctx = Ctx(b, T, self.seed)
        self.tally = Tally()
        self.kills = collections.Counter()
        self.objects_checked = 0
        self.mount_checked = 0
        self.losses = 0
        self.torn = 0
        self.outcomes = collections.Counter()
        self.ops = collections.Counter()
        self.rounds = 0
        self.gc_runs = 0
        self.at_kill = 0

    # ------------------------------------------------------------ setup
    def setup(self):
        c = self.ctx
        self.b.init_store(c.store, buckets=(B,))
        c.start_s3d()
        c.start_fusefs()
        # one directory marker per worker, made through the mount (so that
        # removing a directory's last entry never has to create one)
        ag = c.agent("check")
        for d in TOPS + ("m/dA",):
            a = ag.call({"op": "mkdir", "path": c.path(d)})
            if not a["ok"]:
                raise Fail("setup mkdir %s: %s" % (d, a["err"]))
            c.L.ack({d + "/": EMPTY})
        for x in Mount.DIRFILES:
            content = os.urandom(300)
            if not c.fs_write(ag, "m/dA/" + x, content):
                raise Fail("setup write m/dA/%s failed" % x)

    # ------------------------------------------------------------ a round
    def round(self, n, target):
        c, tal = self.ctx, self.tally
        t_round = time.time()
        c.failures = []
        c.windows = []
        c.kill_t = None
        load = self.rng.uniform(*self.load)
        seeds = [self.rng.randrange(1 << 30) for _ in range(8)]
        workers = [S3Small(c, "s3small", seeds[0]), S3Big(c, "s3big", seeds[1]),
                   Mpu(c, "mpu", seeds[2]), Mount(c, "mount", seeds[3]),
                   Mount2(c, "mount2", seeds[4])]
        gc = Gc(c, seeds[5])
        krng = random.Random(seeds[6])
        kill_at = krng.uniform(0.15, 0.85) * load
        kinfo = {}

        def killer():
            time.sleep(kill_at)
            try:
                if target == "s3d":
                    kinfo["ok"], kinfo["back"] = c.kill_s3d()
                elif target == "fusefs":
                    kinfo["ok"], kinfo["back"] = c.kill_fusefs()
                else:
                    kinfo["ok"], kinfo["back"] = c.kill_gc(t_round + load + 3, krng)
            except Exception as e:  # noqa: BLE001
                kinfo["err"] = "%s: %s" % (type(e).__name__, e)

        for w in workers:
            w.start()
        gc.start()
        kt = threading.Thread(target=killer, daemon=True)
        kt.start()
        try:
            time.sleep(load)
            kt.join(150)
            if kt.is_alive() or "err" in kinfo:
                tal.fail("daemons_restart", n, "kill/restart of %s: %s" % (
                    target, kinfo.get("err", "did not finish in 150 s")))
                raise Fail("cannot go on without %s" % target)
        finally:
            # stop and join every writer: nothing may be in flight while
            # checking (nor while shutting down after a failure)
            for w in workers:
                w.stop.set()
            gc.stop.set()
            t_stop = time.time()
            hung = []
            for w in workers + [gc]:
                w.join(max(1, 120 - (time.time() - t_stop)))
                if w.is_alive():
                    hung.append(w.name)
            if hung:
                tal.fail("workers_stop", n, "still running 120 s after stop: %s" % hung)
                # a request hung in fusefs: killing it ends every FUSE request
                c.kill_fusefs()
                for w in workers + [gc]:
                    w.join(60)
                if any(w.is_alive() for w in workers + [gc]):
                    raise Fail("workers hung even after fusefs was killed")
            with c.lock:
                for h in c.hung_kills:
                    tal.fail("fusefs_exits_on_sigkill", n, h)
                c.hung_kills = []
        if kinfo.get("ok"):
            self.kills[target] += 1
        elif target != "gc":
            tal.fail("daemons_restart", n, "%s was not killed by SIGKILL" % target)
        tal.count("daemons_restart", 1 if target != "gc" else 0)
        tal.count("workers_stop")
        tal.count("fusefs_exits_on_sigkill", 1 if target == "fusefs" else 0)
        for w in workers:
            for e in w.exc:
                tal.fail("driver_no_exceptions", n, "%s: %s" % (w.name, " / ".join(e)))
            for k, v in w.ops.items():
                self.ops[k] += v
        for e in gc.errors:
            tal.fail("gc_under_load_no_errors", n, e)
        tal.count("gc_under_load_no_errors", gc.runs)
        self.gc_runs += gc.runs

        # the daemons are alive: none died without being killed
        if not c.s3.alive() or not c.s3.health():
            tal.fail("daemons_never_died_unkilled", n, "s3d is down: %s" % c.s3.logtext()[-400:])
            c.kill_s3d()
        if c.fs.proc.poll() is not None or not c.fs.mounted():
            tal.fail("daemons_never_died_unkilled", n, "fusefs is down: %s"
                     % c.fs.logtext()[-400:])
            c.kill_fusefs()
        tal.count("daemons_never_died_unkilled")

        unexplained = [f for f in c.failures if not any(
            d == f[0] and a <= f[2] + 0.2 and f[1] - 0.2 <= z for d, a, z in c.windows)]
        # open(O_CREAT) refused with ENOENT has its own check: a name the
        # kernel still caches after its object was deleted over S3
        creat = [f for f in unexplained if f[0] == "fs" and f[3].endswith("open: ENOENT")]
        for door, t0, t1, text in creat[:3]:
            tal.fail("mount_open_creat_never_enoent", n, "at +%.2fs: %s" % (t0 - t_round, text))
        for door, t0, t1, text in [f for f in unexplained if f not in creat][:5]:
            tal.fail("no_errors_without_a_kill", n, "%s at +%.2fs..+%.2fs: %s" % (
                door, t0 - t_round, t1 - t_round, text))
        tal.count("no_errors_without_a_kill", len(c.failures))
        tal.count("mount_open_creat_never_enoent", c.creates)
        c.creates = 0
        with c.lock:
            for e in c.bad_etags:
                tal.fail("etags_are_md5", n, e)
            c.bad_etags = []

        # operations that were under way at the kill itself (the others
        # failed against a daemon that was already down)
        door = {"s3d": "s3", "fusefs": "fs"}.get(target)
        at_kill = sum(1 for f in c.failures if f[0] == door and c.kill_t and f[1] <= c.kill_t)
        self.at_kill += at_kill
        summary = self.verify(n)
        self.rounds += 1
        ops = sum(w.ops[k] for w in workers for k in w.ops)
        fails = sum(w.ops[k] for w in workers for k in w.ops if k.endswith("failed"))
        print("# round %d: kill %s at %.1fs of %.1fs%s; %d operations (%d failed), gc %d runs;"
              " %d under way at the kill; %s; %.1fs" % (
                  n, target, kill_at, load,
                  " (back in %.2fs)" % kinfo["back"] if kinfo.get("ok") and target != "gc" else
                  (" (gc had run %.2fs)" % kinfo["back"] if kinfo.get("ok") else " (missed)"),
                  ops, fails, gc.runs, at_kill, summary, time.time() - t_round), flush=True)

    # ------------------------------------------------------------ checking
    def verify(self, n):
        c, L, tal = self.ctx, self.ctx.L, self.tally
        H = c.host()
        listing = fc.list_objects(H, B)
        keys = set(listing) | set(L.acked) | set(L.known)
        observed = {}
        for k in sorted(keys):
            r = fc.get(H, B, k, timeout=180)
            if r.status == 200 and r.complete:
                observed[k] = st(r.body)
            elif r.status == 404:
                observed[k] = None
            else:
                observed[k] = "ERR"
                tal.fail("reads_complete", n, "GET %s: %r" % (k, r))
                continue
            tal.count("reads_complete")
            lv = listing.get(k)
            if (lv is None) != (observed[k] is None) or (lv and lv[1] != observed[k][1]):
                tal.fail("listing_matches_objects", n, "%s: listed %s, GET %s" % (
                    k, lv, show(observed[k])))
            elif lv and "-" not in lv[0] and lv[0] != observed[k][0]:
                tal.fail("etags_are_md5", n, "%s: listed ETag %s, MD5 %s" % (
                    k, lv[0], observed[k][0]))
            tal.count("listing_matches_objects")
        self.objects_checked += len(observed)

        # acknowledged keys, and keys no one wrote
        grouped = set()
        for g in L.groups:
            grouped |= g.keys
        losses = torn = 0
        for k in sorted(keys - grouped):
            want, got = L.acked.get(k), observed[k]
            if k not in L.known:
                tal.fail("no_unknown_objects", n, "%s (%s) was never written" % (k, show(got)))
            elif got != want:
                losses += 1
                tal.fail("acked_writes_read_back", n, "%s: acknowledged %s, reads %s" % (
                    k, show(want), show(got)))
        tal.count("acked_writes_read_back", len(keys - grouped))
        tal.count("no_unknown_objects", len(keys))
        # operations in flight at a failure: all or nothing
        for g in L.groups:
            before = {k: L.acked.get(k) for k in g.keys}
            seen = {k: observed.get(k) for k in g.keys}
            worlds = [before] + [dict(before, **w) for w in g.worlds]
            if seen in worlds:
                if seen == before:
                    kind = "as before"
                elif g.what.startswith("mount write") and all(
                        v == EMPTY for v in seen.values()) and worlds[-1] != seen:
                    kind = "empty"
                else:
                    kind = "as the operation left them"
                self.outcomes[kind] += 1
            else:
                torn += 1
                tal.fail("unacked_all_or_nothing", n, "%s left %s; allowed: %s" % (
                    g.what, {k: show(v) for k, v in seen.items()},
                    " | ".join(str({k: show(v) for k, v in w.items()}) for w in worlds)))
        tal.count("unacked_all_or_nothing", len(L.groups))
        self.losses += losses
        self.torn += torn
        n_groups = len(L.groups)

        # through the mount: a sample of the objects, absent keys, listings
        present = sorted(k for k, v in observed.items() if v not in (None, "ERR"))
        absent = sorted(k for k, v in observed.items() if v is None)
        files = [k for k in present if not k.endswith("/")]  # markers are directories
        sample = self.rng.sample(files, min(16, len(files)))
        ag = c.agent("check")
        for k in sample:
            a = ag.call({"op": "read", "path": c.path(k)})
            got = (a["md5"], a["size"]) if a["ok"] else a["err"]
            if got != observed[k]:
                tal.fail("mount_reads_match_s3", n, "%s: S3 %s, mount %s" % (
                    k, show(observed[k]), show(got) if isinstance(got, tuple) else got))
        for k in self.rng.sample(absent, min(8, len(absent))):
            a = ag.call({"op": "stat", "path": c.path(k)})
            if a["ok"]:
                tal.fail("mount_reads_match_s3", n, "%s: absent over S3, exists on the mount"
                         % k)
            elif a["err"] != "stat: ENOENT":
                tal.fail("mount_reads_match_s3", n, "stat %s: %s" % (k, a["err"]))
        tal.count("mount_reads_match_s3", len(sample) + min(8, len(absent)))
        self.mount_checked += len(sample)
        dirs = {"": set()}
        for k in present:
            parts = k.split("/")
            for i in range(len(parts) - 1):
                d = "/".join(parts[:i])
                dirs.setdefault(d, set()).add(parts[i])
                dirs.setdefault("/".join(parts[:i + 1]), set())
            if parts[-1]:
                dirs.setdefault("/".join(parts[:-1]), set()).add(parts[-1])
        for d, names in sorted(dirs.items()):
            a = ag.call({"op": "listdir", "path": os.path.join(c.mnt, B, d)})
            got = set(a["names"]) if a["ok"] else a["err"]
            if got != names:
                tal.fail("mount_listing_matches_s3", n, "%s/: mount %s, S3 %s" % (
                    d, sorted(got) if isinstance(got, set) else got, sorted(names)))
        tal.count("mount_listing_matches_s3", len(dirs))

        # multipart uploads: none completed or aborted is listed, every one
        # acknowledged open is; then abort what is left
        ups = fc.list_uploads(H, B)
        listed = set()
        for k, uid in ups:
            listed.add(uid)
            u = L.uploads.get(uid)
            if u is None:
                if L.unknown_creates[k] > 0:
                    L.unknown_creates[k] -= 1
                else:
                    tal.fail("uploads_accounted", n, "upload %s of %s was never created"
                             % (uid, k))
            elif u[1] == "done":
                tal.fail("uploads_accounted", n, "upload %s of %s was completed/aborted,"
                         " still listed" % (uid, k))
        for uid, (k, state) in L.uploads.items():
            if state == "open" and uid not in listed:
                tal.fail("uploads_accounted", n, "upload %s of %s is gone" % (uid, k))
        for k, uid in ups:
            r = fc.request(H, "DELETE", "/%s/%s" % (B, fc.q_path(k)), query=[("uploadId", uid)])
            if r.status != 204:
                tal.fail("uploads_accounted", n, "abort leftover %s: %r" % (uid, r))
        if fc.list_uploads(H, B):
            tal.fail("uploads_accounted", n, "uploads left after aborting them all")
        tal.count("uploads_accounted", len(ups) + len(L.uploads))

        # the observed state is the next baseline
        with L.lock:
            L.acked = {k: v for k, v in observed.items() if v not in (None, "ERR")}
            L.groups = []
            L.taint = {}
            L.uploads = {}
            L.unknown_creates = collections.Counter()

        # GC with nothing in flight, then fsck and the chunk directory
        p = self.b.sc(c.store, "gc", timeout=300)
        if p.returncode != 0:
            tal.fail("gc_idle_ok", n, (p.out + p.err).strip()[-300:])
        tal.count("gc_idle_ok")
        p = self.b.sc(c.store, "fsck", timeout=600)
        if p.returncode != 0 or "orphan files:       0 " not in p.out:
            tal.fail("fsck_clean", n, "exit %d: %s" % (p.returncode, " | ".join(
                (p.out + p.err).strip().splitlines()[-9:])))
        tal.count("fsck_clean")
        p = self.b.sc(c.store, "stats", timeout=120)
        if p.returncode != 0 or "unreferenced:       0 chunks" not in p.out:
            tal.fail("stats_nothing_unreferenced", n, (p.out + p.err).strip()[-300:])
        tal.count("stats_nothing_unreferenced")
        probs, nfiles, nrows = chunk_dir_check(c)
        for pr in probs[:5]:
            tal.fail("chunk_files_match_catalog", n, pr)
        tal.count("chunk_files_match_catalog", nfiles)
        for pr in staging_check(c, {c.s3.proc.pid, c.fs.proc.pid})[:5]:
            tal.fail("staging_clean", n, pr)
        tal.count("staging_clean")
        return ("%d objects checked (%d through the mount), %d in doubt, %d lost, %d torn,"
                " %d chunk files" % (len(observed), len(sample), n_groups, losses, torn, nfiles))

    # ------------------------------------------------------------ end
    def shutdown(self):
        c, tal = self.ctx, self.tally
        for ag in c.agents.values():
            ag.kill()
        rc_fs = c.fs.stop()
        rc_s3 = c.s3.stop()
        if rc_fs != 0 or rc_s3 != 0:
            tal.fail("shutdown_clean", "end", "fusefs exit %s, s3d exit %s" % (rc_fs, rc_s3))
        tal.count("shutdown_clean")
        # with no process on the store: GC, fsck, chunk files, empty staging
        p = self.b.sc(c.store, "gc", timeout=300)
        q = self.b.sc(c.store, "fsck", timeout=600)
        if p.returncode != 0 or q.returncode != 0 or "orphan files:       0 " not in q.out:
            tal.fail("final_offline_gc_fsck", "end", "gc %d, fsck %d: %s" % (
                p.returncode, q.returncode, (q.out + q.err + p.err).strip()[-400:]))
        probs, _, _ = chunk_dir_check(c)
        probs += staging_check(c, set())
        for pr in probs[:5]:
            tal.fail("final_offline_gc_fsck", "end", pr)
        tal.count("final_offline_gc_fsck")

    def run(self):
        R, tal = self.R, self.tally
        print("# seed %d (TORTURE_SEED=%d repeats the choices); at most %d rounds, %.0f s"
              % (self.seed, self.seed, self.max_rounds, self.seconds), flush=True)
        try:
            self.setup()
        except Exception as e:  # noqa: BLE001
            tal.fail("setup", "setup", "%s: %s" % (type(e).__name__, e))
            tal.report(R)
            return
        tal.count("setup")
        t0 = time.time()
        longest = 0.0
        order = []
        n = 0
        try:
            while n < self.max_rounds:
                el = time.time() - t0
                if n and el + longest > self.seconds:
                    break
                if not order:
                    order = list(self.targets)
                    self.rng.shuffle(order)
                n += 1
                tr = time.time()
                self.round(n, order.pop())
                longest = max(longest, time.time() - tr)
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc().strip().splitlines()
            tal.fail("driver_no_exceptions", n, "%s: %s [%s]" % (
                type(e).__name__, e, " / ".join(x.strip() for x in tb[-4:-1])))
        self.elapsed = time.time() - t0
        try:
            self.shutdown()
        except Exception as e:  # noqa: BLE001
            tal.fail("shutdown_clean", "end", "%s: %s" % (type(e).__name__, e))
        k = self.kills
        if self.rounds >= len(self.targets):
            missing = [t for t in self.targets if not k[t]]
            if missing:
                tal.fail("kills_hit_every_target", "end", "never killed: %s" % missing)
        else:
            tal.notes["kills_hit_every_target"] = "only %d rounds" % self.rounds
        tal.notes.setdefault("kills_hit_every_target", "s3d %d, fusefs %d, gc %d" % (
            k["s3d"], k["fusefs"], k["gc"]))
        tal.report(R)
        R.check("losses_zero", self.losses == 0 and self.torn == 0,
                "%d acknowledged writes lost, %d half-visible" % (self.losses, self.torn))
        fc.sanitizer_scan(R, self.T)
        print("# operations: %s" % ", ".join("%s %d" % kv for kv in sorted(self.ops.items())))
        print("# operations in doubt (failed while a daemon was killed): %d, %d of them under"
              " way at the kill itself; found afterwards: %s" % (
                  sum(self.outcomes.values()) + self.torn, self.at_kill, ", ".join(
                      "%s %d" % kv for kv in sorted(self.outcomes.items())) or "none"))
        print("torture: rounds %d, kills %d (s3d %d, fusefs %d, gc %d), objects checked %d"
              " (and %d through the mount), losses %d, torn %d, gc runs %d, %.0f s" % (
                  self.rounds, sum(k.values()), k["s3d"], k["fusefs"], k["gc"],
                  self.objects_checked, self.mount_checked, self.losses, self.torn,
                  self.gc_runs, self.elapsed), flush=True)


def main():
    if sys.argv[1:] == ["--agent"]:
        agent_main()
        return
    build, T = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    b = Build(build, T)
    fc.scrub_environment(b.home)
    R = Results()
    Torture(b, T, R).run()
    R.finish()


if __name__ == "__main__":
    main()
