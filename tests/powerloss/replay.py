#!/usr/bin/env python3
"""replay.py -- rebuild what a power loss may leave on disk, from the log
of the LD_PRELOAD recorder (recorder.c) and a snapshot of the tree taken
before the workload started.

The strict model (docs/durability.md, "Power-loss model"):
  - A file's bytes (and size) are durable as of its last fsync/fdatasync
    before the crash point; every write, truncate or fallocate after it is
    lost.  A file created during the workload and never synced is empty.
  - A directory entry change (create, link, unlink, rename, mkdir, rmdir,
    symlink) is durable only once the directory that holds the entry was
    fsynced (or fdatasynced) after it.  A rename touching two directories
    is durable only when both were; until then the old names stand (a
    rename is atomic: it never leaves both names or neither).
  - sync()/syncfs() make everything durable.  sync_file_range() makes
    nothing durable.
  - SQLite's -shm file is never durable (it is rebuilt from the WAL by the
    first connection after a crash).  Any other writable shared mapping of
    a file in the tree cannot be modelled and is reported as an error.
Files are tracked by identity (the inode number the recorder saw at open,
rebound on each create), so hard links and renames carry the same file.

"Variants" go the other way: on top of the strict state, a random subset
of the operations that were not yet durable survived as well (unsynced
data writes, in order, each kept or not; unsynced directory changes, each
kept or not) -- the states a real filesystem may leave when it persists
more than it promised, which catches code that relies on a missing write
*not* surviving.

Command line (for looking at one crash point by hand):
  replay.py dump LOG                      print the records
  replay.py points LOG                    the sync and mark positions
  replay.py state LOG SNAPSHOT P OUTDIR [--variant SEED]
                                          materialise the state at P
                                          (records [0, P) happened)
"""
import hashlib
import json
import os
import random
import stat
import struct
import sys

HDR = struct.Struct("<IHHiiqQQQII")
OPS = {1: "OPEN", 2: "WRITE", 3: "TRUNC", 4: "FALLOC", 5: "RENAME", 6: "LINK",
       7: "UNLINK", 8: "MKDIR", 9: "RMDIR", 10: "SYMLINK", 11: "FSYNC",
       12: "SYNCFS", 13: "SYNC", 14: "SFR", 15: "MMAP", 16: "UNTRACKED",
       17: "DROPPED", 100: "MARK"}
OP = {v: k for k, v in OPS.items()}

O_CREAT = 0o100
O_EXCL = 0o200
O_TRUNC = 0o1000
O_TMPFILE = 0o20000000 | 0o200000
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_EMPTY_PATH = 0x1000
FALLOC_FL_KEEP_SIZE = 1


class Rec:
    __slots__ = ("i", "op", "pid", "fd", "ret", "ino", "a", "b", "p1", "p2", "data")

    def __repr__(self):
        extra = ""
        if self.op == OP["MARK"]:
            extra = " " + bytes(self.data).decode("utf-8", "replace")
        elif self.data is not None and len(self.data):
            extra = " +%dB" % len(self.data)
        return "#%d %s pid=%d fd=%d ino=%d a=%d b=%d %s%s%s" % (
            self.i, OPS.get(self.op, self.op), self.pid, self.fd, self.ino, self.a,
            self.b, self.p1, (" -> " + self.p2) if self.p2 else "", extra)


def read_log(path):
    with open(path, "rb") as f:
        buf = f.read()
    mv = memoryview(buf)
    recs = []
    o = 0
    while o < len(buf):
        if o + HDR.size > len(buf):
            raise ValueError("log truncated at %d" % o)
        total, op, _fl, pid, fd, ret, ino, a, b, l1, l2 = HDR.unpack_from(buf, o)
        if total < HDR.size + l1 + l2 or o + total > len(buf):
            raise ValueError("bad record at %d" % o)
        r = Rec()
        r.i = len(recs)
        r.op, r.pid, r.fd, r.ret, r.ino, r.a, r.b = op, pid, fd, ret, ino, a, b
        p = o + HDR.size
        r.p1 = buf[p:p + l1].decode("utf-8", "surrogateescape")
        r.p2 = buf[p + l1:p + l1 + l2].decode("utf-8", "surrogateescape")
        r.data = mv[p + l1 + l2:o + total]
        recs.append(r)
        o += total
    return recs


def mark_record(payload):
    """The bytes of one MARK record (payload: a JSON-able dict)."""
    data = json.dumps(payload, sort_keys=True).encode()
    return HDR.pack(HDR.size + len(data), OP["MARK"], 0, os.getpid(), -1, 0, 0, 0, 0,
                    0, 0) + data


def append_mark(log_path, payload):
    """Append a MARK under the recorder's lock protocol (flock on the log,
    one write), so it is ordered with every recorded call."""
    import fcntl
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rec = mark_record(payload)
        if os.write(fd, rec) != len(rec):
            raise OSError("short write of a mark")
    finally:
        os.close(fd)


class ModelError(Exception):
    """The log says something the model cannot follow: the run is void."""


class Inode:
    __slots__ = ("id", "kind", "vol", "dur", "pend", "entries", "base", "nodur",
                 "target", "real_ino", "pending_ops", "mode", "dur_sha")
    _next = [0]

    def __init__(self, kind, mode=0o644):
        Inode._next[0] += 1
        self.id = Inode._next[0]
        self.kind = kind            # 'f', 'd', 'l'
        self.mode = mode
        self.vol = bytearray()      # file bytes now
        self.dur = b""              # file bytes as of the last sync
        self.pend = []              # data ops since the last sync
        self.entries = {}           # dir: name -> Inode, now
        self.base = {}              # dir: entries in the snapshot
        self.nodur = False          # never durable (-shm)
        self.target = ""            # symlink target
        self.real_ino = None
        self.pending_ops = []       # dir: entry changes waiting for a sync
        self.dur_sha = None         # sha256 of dur, once computed


class DirOp:
    __slots__ = ("seq", "changes", "remaining", "durable", "what")

    def __init__(self, seq, changes, what):
        self.seq = seq
        self.changes = changes      # [(dir Inode, name, Inode or None)]
        self.remaining = {id(d): d for d, _n, _t in changes}
        self.durable = False
        self.what = what


def apply_data(buf, op):
    kind = op[0]
    if kind == "w":
        _k, off, data = op
        end = off + len(data)
        if off > len(buf):
            buf.extend(b"\0" * (off - len(buf)))
        buf[off:end] = data
    elif kind == "t":
        size = op[1]
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(b"\0" * (size - len(buf)))
    elif kind == "f":
        _k, off, n = op
        if off + n > len(buf):
            buf.extend(b"\0" * (off + n - len(buf)))


class Model:
    """The volatile tree (what the processes saw) and, beside it, what was
    durable; advanced one record at a time with apply()."""

    def __init__(self, snapshot=None, never_durable=lambda rel: rel.endswith("-shm")):
        self.never_durable = never_durable
        self.root = Inode("d", 0o755)
        self.by_ino = {}
        self.dirops = []
        self.all_dirs = [self.root]
        self.files = []
        self.dropped = 0
        self.seq = 0
        if snapshot:
            self._load(snapshot, self.root, {}, "")
        for d in self.all_dirs:
            d.base = dict(d.entries)

    # ------------------------------------------------------------ snapshot
    def _load(self, path, node, seen, rel):
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            st = os.lstat(p)
            r = rel + "/" + name if rel else name
            if stat.S_ISDIR(st.st_mode):
                d = Inode("d", stat.S_IMODE(st.st_mode))
                self.all_dirs.append(d)
                node.entries[name] = d
                self._load(p, d, seen, r)
            elif stat.S_ISLNK(st.st_mode):
                s = Inode("l")
                s.target = os.readlink(p)
                node.entries[name] = s
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    node.entries[name] = seen[key]
                    continue
                f = Inode("f", stat.S_IMODE(st.st_mode))
                with open(p, "rb") as fh:
                    f.vol = bytearray(fh.read())
                f.dur = bytes(f.vol)
                f.nodur = self.never_durable(r)
                seen[key] = f
                self.files.append(f)
                node.entries[name] = f
            else:
                raise ModelError("snapshot holds a special file: %s" % r)

    # ------------------------------------------------------------ paths
    def lookup(self, rel, must_parent=True):
        """(parent Inode, name, Inode or None) of rel in the volatile tree."""
        if rel == "":
            return None, "", self.root
        parts = rel.split("/")
        d = self.root
        for comp in parts[:-1]:
            nxt = d.entries.get(comp)
            if nxt is None or nxt.kind != "d":
                if must_parent:
                    raise ModelError("no directory %r on the way to %r" % (comp, rel))
                return None, parts[-1], None
            d = nxt
        return d, parts[-1], d.entries.get(parts[-1])

    def by_ino_or_path(self, r):
        node = self.by_ino.get(r.ino)
        if node is None and r.p1:
            _p, _n, node = self.lookup(r.p1)
        if node is None:
            raise ModelError("record %r names a file the model does not know" % r)
        return node

    # ------------------------------------------------------------ changes
    def _dirop(self, changes, what):
        op = DirOp(self.seq, changes, what)
        for d, name, tgt in changes:
            if tgt is None:
                d.entries.pop(name, None)
            else:
                d.entries[name] = tgt
        for d in op.remaining.values():
            d.pending_ops.append(op)
        self.dirops.append(op)
        return op

    def _data(self, node, op):
        if node.kind != "f":
            raise ModelError("data change on a non-file (%s)" % node.kind)
        apply_data(node.vol, op)
        if not node.nodur:
            node.pend.append(op)

    def _sync_file(self, node):
        if node.nodur:
            return
        node.dur = bytes(node.vol)
        node.dur_sha = None
        node.pend = []

    def _sync_dir(self, d):
        for op in d.pending_ops:
            op.remaining.pop(id(d), None)
            if not op.remaining:
                op.durable = True
        d.pending_ops = []

    def _sync_all(self):
        for f in self.files:
            self._sync_file(f)
        for d in self.all_dirs:
            self._sync_dir(d)

    def apply(self, r):
        """Advance the model past record r."""
        self.seq = r.i
        op = r.op
        if op == OP["OPEN"]:
            flags = r.a
            if flags & O_TMPFILE == O_TMPFILE:
                raise ModelError("O_TMPFILE is not modelled: %r" % r)
            parent, name, node = self.lookup(r.p1)
            if node is None:
                if not flags & O_CREAT:
                    raise ModelError("open of %r, which the model does not have" % r.p1)
                node = Inode("f", r.b & 0o7777)
                node.nodur = self.never_durable(r.p1)
                self.files.append(node)
                self._dirop([(parent, name, node)], "create " + r.p1)
            else:
                if flags & O_CREAT and flags & O_EXCL:
                    raise ModelError("O_EXCL open of %r succeeded but the model has it"
                                     % r.p1)
                if node.real_ino is not None and node.real_ino != r.ino:
                    raise ModelError("%r is inode %d, the model thought %d"
                                     % (r.p1, r.ino, node.real_ino))
                if flags & O_TRUNC and node.kind == "f":
                    self._data(node, ("t", 0))
            node.real_ino = r.ino
            self.by_ino[r.ino] = node
        elif op == OP["WRITE"]:
            node = self.by_ino_or_path(r)
            self._data(node, ("w", r.a, bytes(r.data)))
        elif op == OP["TRUNC"]:
            node = self.by_ino_or_path(r)
            self._data(node, ("t", r.b))
        elif op == OP["FALLOC"]:
            node = self.by_ino_or_path(r)
            if r.ret & ~FALLOC_FL_KEEP_SIZE:
                raise ModelError("fallocate mode %d is not modelled" % r.ret)
            if not r.ret & FALLOC_FL_KEEP_SIZE:
                self._data(node, ("f", r.a, r.b))
        elif op == OP["RENAME"]:
            sp, sn, src = self.lookup(r.p1)
            dp, dn, dst = self.lookup(r.p2)
            if src is None:
                raise ModelError("rename of %r, which the model does not have" % r.p1)
            if r.a & RENAME_EXCHANGE:
                if dst is None:
                    raise ModelError("exchange with a missing %r" % r.p2)
                self._dirop([(sp, sn, dst), (dp, dn, src)], "exchange %s %s" % (r.p1, r.p2))
            elif r.a & ~RENAME_NOREPLACE:
                raise ModelError("rename flags %d are not modelled" % r.a)
            elif src is dst:
                pass  # same file: POSIX says nothing happens
            else:
                self._dirop([(sp, sn, None), (dp, dn, src)], "rename %s %s" % (r.p1, r.p2))
        elif op == OP["LINK"]:
            if r.a & AT_EMPTY_PATH:
                raise ModelError("linkat(AT_EMPTY_PATH) is not modelled")
            _sp, _sn, src = self.lookup(r.p1)
            dp, dn, dst = self.lookup(r.p2)
            if src is None:
                raise ModelError("link of %r, which the model does not have" % r.p1)
            if dst is not None:
                raise ModelError("link onto existing %r succeeded" % r.p2)
            self._dirop([(dp, dn, src)], "link %s %s" % (r.p1, r.p2))
        elif op in (OP["UNLINK"], OP["RMDIR"]):
            parent, name, node = self.lookup(r.p1)
            if node is None:
                raise ModelError("unlink of %r, which the model does not have" % r.p1)
            if op == OP["RMDIR"] and (node.kind != "d" or node.entries):
                raise ModelError("rmdir of %r: not an empty directory in the model" % r.p1)
            self._dirop([(parent, name, None)], "unlink " + r.p1)
        elif op == OP["MKDIR"]:
            parent, name, node = self.lookup(r.p1)
            if node is not None:
                raise ModelError("mkdir of %r succeeded but the model has it" % r.p1)
            d = Inode("d", r.a & 0o7777)
            self.all_dirs.append(d)
            self._dirop([(parent, name, d)], "mkdir " + r.p1)
        elif op == OP["SYMLINK"]:
            parent, name, node = self.lookup(r.p1)
            s = Inode("l")
            s.target = r.p2
            self._dirop([(parent, name, s)], "symlink " + r.p1)
        elif op == OP["FSYNC"]:
            node = self.by_ino_or_path(r)
            if node.kind == "d":
                self._sync_dir(node)
            else:
                self._sync_file(node)
        elif op in (OP["SYNC"], OP["SYNCFS"]):
            self._sync_all()
        elif op == OP["MMAP"]:
            node = self.by_ino_or_path(r)
            if not node.nodur:
                raise ModelError("writable shared mmap of %r: not modelled" % r.p1)
        elif op == OP["UNTRACKED"]:
            raise ModelError("the recorder saw a change it cannot log: %s (%s)"
                             % (r.p1, r.p2))
        elif op == OP["DROPPED"]:
            self.dropped += 1
        # SFR and MARK change nothing on disk.

    # ------------------------------------------------------------ crash state
    def durable_entries(self, rng=None, p_extra=0.5):
        """{dir id: {name: Inode}} after a crash now.  With rng, each dir
        change that was not yet durable survives with probability p_extra."""
        ents = {d.id: dict(d.base) for d in self.all_dirs}
        for op in self.dirops:
            if op.durable or (rng is not None and rng.random() < p_extra):
                for d, name, tgt in op.changes:
                    e = ents.setdefault(d.id, {})
                    if tgt is None:
                        e.pop(name, None)
                    else:
                        e[name] = tgt
        return ents

    def file_bytes(self, node, rng=None, p_extra=0.5):
        if rng is None or not node.pend:
            return node.dur
        buf = bytearray(node.dur)
        for op in node.pend:
            if rng.random() < p_extra:
                apply_data(buf, op)
        return bytes(buf)

    def unsynced(self):
        """How many changes are not durable now (files with pending data,
        pending dir changes)."""
        return (sum(1 for f in self.files if f.pend),
                sum(1 for op in self.dirops if not op.durable))

    def materialise(self, out, rng=None, cache=None, share=lambda rel: False,
                    p_extra=0.5):
        """Write the crash state into the new directory `out`.  Returns a
        digest of the state (names, kinds, bytes) for de-duplication.

        cache: a directory on the same filesystem; files for which
        share(rel) is true are hard links to content-named files there
        (the store never changes a chunk file in place), the rest are
        private copies."""
        ents = self.durable_entries(rng, p_extra)
        h = hashlib.sha256()
        placed = {}
        os.makedirs(out)
        stack = [(self.root, out, "")]
        seen_dirs = set()
        while stack:
            d, path, rel = stack.pop()
            if d.id in seen_dirs:
                raise ModelError("directory reachable twice: %s" % rel)
            seen_dirs.add(d.id)
            for name in sorted(ents.get(d.id, {})):
                node = ents[d.id][name]
                p = os.path.join(path, name)
                r = rel + "/" + name if rel else name
                if node.kind == "d":
                    os.mkdir(p, 0o700)
                    h.update(b"D" + r.encode() + b"\0")
                    stack.append((node, p, r))
                elif node.kind == "l":
                    os.symlink(node.target, p)
                    h.update(b"L" + r.encode() + b"\0" + node.target.encode() + b"\0")
                elif node.id in placed:
                    os.link(placed[node.id][0], p)
                    h.update(b"H" + r.encode() + b"\0" + placed[node.id][1].encode() + b"\0")
                else:
                    data = self.file_bytes(node, rng, p_extra)
                    if data is node.dur:
                        if node.dur_sha is None:
                            node.dur_sha = hashlib.sha256(data).hexdigest()
                        digest = node.dur_sha
                    else:
                        digest = hashlib.sha256(data).hexdigest()
                    if cache and share(r):
                        c = os.path.join(cache, digest)
                        if not os.path.exists(c):
                            with open(c + ".tmp", "wb") as fh:
                                fh.write(data)
                            os.rename(c + ".tmp", c)
                        os.link(c, p)
                    else:
                        with open(p, "wb") as fh:
                            fh.write(data)
                    os.chmod(p, node.mode & 0o777 or 0o600)
                    placed[node.id] = (p, r)
                    h.update(b"F" + r.encode() + b"\0" + digest.encode())
        return h.hexdigest()


def compare_volatile(model, path):
    """Differences between the model's volatile tree (every recorded change
    applied) and the real directory `path` after the workload: a
    self-check of the recorder and the model -- a call the recorder missed
    shows up here.  The content of never-durable files is not compared."""
    diffs = []

    def walk(node, p, rel):
        real = set(os.listdir(p))
        model_names = set(node.entries)
        for n in sorted(real - model_names):
            diffs.append("on disk, not in the model: " + (rel + "/" + n).lstrip("/"))
        for n in sorted(model_names - real):
            diffs.append("in the model, not on disk: " + (rel + "/" + n).lstrip("/"))
        for n in sorted(real & model_names):
            child = node.entries[n]
            cp = os.path.join(p, n)
            r = (rel + "/" + n).lstrip("/")
            st = os.lstat(cp)
            if child.kind == "d":
                if not stat.S_ISDIR(st.st_mode):
                    diffs.append("not a directory on disk: " + r)
                else:
                    walk(child, cp, r)
            elif child.kind == "l":
                if not stat.S_ISLNK(st.st_mode) or os.readlink(cp) != child.target:
                    diffs.append("symlink differs: " + r)
            elif not stat.S_ISREG(st.st_mode):
                diffs.append("not a file on disk: " + r)
            elif not child.nodur:
                with open(cp, "rb") as fh:
                    real_bytes = fh.read()
                if real_bytes != bytes(child.vol):
                    diffs.append("content differs: %s (disk %d B, model %d B)"
                                 % (r, len(real_bytes), len(child.vol)))
    walk(model.root, path, "")
    return diffs


def verify_cache(cache):
    """Every shared file still holds the bytes it is named by."""
    bad = []
    for name in os.listdir(cache):
        if name.endswith(".tmp"):
            continue
        with open(os.path.join(cache, name), "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != name:
                bad.append(name)
    return bad


# ---------------------------------------------------------------- CLI
def main(argv):
    if len(argv) >= 2 and argv[0] == "dump":
        for r in read_log(argv[1]):
            print(r)
        return 0
    if len(argv) >= 2 and argv[0] == "points":
        recs = read_log(argv[1])
        for r in recs:
            if r.op in (OP["FSYNC"], OP["SYNC"], OP["SYNCFS"], OP["MARK"], OP["DROPPED"]):
                print(r)
        return 0
    if len(argv) >= 5 and argv[0] == "state":
        recs = read_log(argv[1])
        snap = argv[2] if argv[2] != "-" else None
        point = int(argv[3])
        rng = None
        if "--variant" in argv:
            rng = random.Random(int(argv[argv.index("--variant") + 1]))
        m = Model(snap)
        for r in recs[:point]:
            m.apply(r)
        print(m.materialise(argv[4], rng))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
