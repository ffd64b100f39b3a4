#!/usr/bin/env python3
"""tests/fuse/fusefs_checks.py -- POSIX checks of a running fusefs mount.

Called by test_fusefs.sh (which creates the store, mounts and unmounts):

    fusefs_checks.py SECTION MOUNT STORE STORECTL [ARGS...]

Prints "ok NAME" or "FAIL NAME: reason" per check.  Plain python3 stdlib.
Every errno result is checked exactly (EEXIST, ENOTEMPTY, ...).
"""
import ctypes
import errno
import hashlib
import os
import random
import stat
import subprocess
import sys
import threading
import time

MIB = 1024 * 1024
SECTION, MNT, STORE, STORECTL = sys.argv[1:5]
EXTRA = sys.argv[5:]
os.umask(0o022)


def out(line):
    print(line, flush=True)


def check(name, fn, *args):
    """Run fn; an exception is a failure with its text."""
    try:
        fn(*args)
        out("ok " + name)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        out("FAIL %s: %s" % (name, repr(e)[:300]))


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_errno(want, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        if e.errno != want:
            raise AssertionError("errno %s, expected %s" % (
                errno.errorcode.get(e.errno, e.errno), errno.errorcode[want]))
        return
    raise AssertionError("succeeded, expected %s" % errno.errorcode[want])


def sc(*args, check_rc=True, stdin=None):
    r = subprocess.run([STORECTL, "--store", STORE] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       input=stdin, timeout=120)
    if check_rc and r.returncode != 0:
        raise AssertionError("storectl %s: exit %d: %s" % (
            " ".join(args), r.returncode, r.stderr.decode()[:200]))
    return r


def sc_get(bucket, key):
    r = sc("get", bucket, key, "-", check_rc=False)
    return r.stdout if r.returncode == 0 else None


def sc_keys(bucket, prefix=""):
    """Every key under prefix (storectl ls -r), as {key: size}."""
    r = sc("ls", "-r", bucket, prefix) if prefix else sc("ls", "-r", bucket)
    keys = {}
    for line in r.stdout.decode().splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and not line.lstrip().startswith("PRE"):
            keys[parts[2]] = int(parts[1])
    return keys


def sc_put(bucket, key, data):
    sc("put", bucket, key, "-", stdin=data)


def wbytes(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def rbytes(path):
    with open(path, "rb") as f:
        return f.read()


def eventually(fn, timeout=4.0):
    """Poll fn until it returns true (changes from other processes)."""
    end = time.time() + timeout
    while True:
        try:
            if fn():
                return True
        except OSError:
            pass
        if time.time() > end:
            return False
        time.sleep(0.05)


libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def as_user(uid, gid, fn, *args):
    """Run fn(*args) in a child with uid/gid; returns 0 or the errno."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            fn(*args)
        except OSError as e:
            code = e.errno or 255
        except BaseException:  # noqa: BLE001
            code = 254
        os._exit(code)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


def drop_caches():
    """Make the kernel forget unused inodes (root only); False if not."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# basic: the whole-store mount, bucket "bkt1" exists
# --------------------------------------------------------------------------
def section_basic():
    B = os.path.join(MNT, "bkt1")

    def buckets():
        expect("bkt1" in os.listdir(MNT), "bkt1 not listed at top")
        os.mkdir(os.path.join(MNT, "newbkt"))
        expect("newbkt" in sc("bucket", "list").stdout.decode(), "no bucket")
        expect_errno(errno.EEXIST, os.mkdir, os.path.join(MNT, "newbkt"))
        expect_errno(errno.EINVAL, os.mkdir, os.path.join(MNT, "Bad_Name"))
        expect_errno(errno.EPERM, wbytes, os.path.join(MNT, "topfile"), b"x")
        wbytes(os.path.join(MNT, "newbkt", "f"), b"x")
        expect_errno(errno.ENOTEMPTY, os.rmdir, os.path.join(MNT, "newbkt"))
        os.unlink(os.path.join(MNT, "newbkt", "f"))
        os.rmdir(os.path.join(MNT, "newbkt"))
        expect("newbkt" not in sc("bucket", "list").stdout.decode(), "kept")
        expect_errno(errno.ENOENT, os.rmdir, os.path.join(MNT, "nobkt"))
    check("buckets_as_dirs", buckets)

    def create_read():
        p = os.path.join(B, "hello.txt")
        wbytes(p, b"hello world\n")
        expect(rbytes(p) == b"hello world\n", "content")
        st = os.stat(p)
        expect(st.st_size == 12 and stat.S_ISREG(st.st_mode), "stat %r" % (st,))
        expect(stat.S_IMODE(st.st_mode) == 0o644, "mode %o" % st.st_mode)
        expect(sc_get("bkt1", "hello.txt") == b"hello world\n", "storectl get")
        expect(sc_keys("bkt1").get("hello.txt") == 12, "storectl ls")
        expect("hello.txt" in os.listdir(B), "readdir")
    check("create_write_read", create_read)

    def create_is_lazy():
        """A created file is there for this mount at once (lookup, stat,
        readdir, rmdir of its directory) and reaches the catalog at close,
        in one commit; unlinked or renamed before that, it never did."""
        d = os.path.join(B, "lazy")
        os.mkdir(d)
        p = os.path.join(d, "f.json")
        # The writer is another process: a fork of this one while it held
        # the descriptor would close a copy of it (a FUSE flush) at exec.
        w = subprocess.Popen([sys.executable, "-c", """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
os.write(fd, b'{"a": 1}')
print("ready", flush=True)
sys.stdin.readline()
os.close(fd)
print("closed", flush=True)
""", p], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            expect(w.stdout.readline() == b"ready\n", "writer did not start")
            expect(os.stat(p).st_size == 8, "stat of an open new file")
            expect("f.json" in os.listdir(d), "readdir of an open new file")
            expect("lazy/f.json" not in sc_keys("bkt1", "lazy/"), "in the catalog before close")
            expect_errno(errno.EEXIST, os.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            expect_errno(errno.ENOTEMPTY, os.rmdir, d)
            with open(p, "rb") as f2:          # a second handle reads the pending bytes
                expect(f2.read() == b'{"a": 1}', "second handle")
            ino = os.stat(p).st_ino
        finally:
            w.stdin.write(b"close\n")
            w.stdin.flush()
            expect(w.stdout.readline() == b"closed\n", "writer did not close")
            w.wait(30)
        expect(sc_get("bkt1", "lazy/f.json") == b'{"a": 1}', "storectl get after close")
        st = os.stat(p)
        expect(st.st_ino == ino and stat.S_IMODE(st.st_mode) == 0o640, "ino/mode after commit")
        # unlinked while pending: nothing ever reaches the catalog
        q = os.path.join(d, "gone")
        fd = os.open(q, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * 1000)
        os.unlink(q)
        expect_errno(errno.ENOENT, os.stat, q)
        os.close(fd)
        expect("lazy/gone" not in sc_keys("bkt1", "lazy/"), "unlinked pending file stored")
        # renamed while pending: the bytes go with the name
        r1, r2 = os.path.join(d, "r1"), os.path.join(d, "r2")
        fd = os.open(r1, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"renamed")
        os.rename(r1, r2)
        os.write(fd, b"+more")
        os.close(fd)
        expect(sc_get("bkt1", "lazy/r2") == b"renamed+more", "renamed pending file")
        expect("lazy/r1" not in sc_keys("bkt1", "lazy/"), "old name kept")
        for n in ("f.json", "r2"):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)
    check("create_is_lazy", create_is_lazy)

    def excl():
        p = os.path.join(B, "hello.txt")
        expect_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        expect_errno(errno.ENOENT, os.open, os.path.join(B, "nope"), os.O_RDONLY)
        expect_errno(errno.ENOENT, os.stat, os.path.join(B, "nope"))
        expect_errno(errno.ENOTDIR, os.stat, os.path.join(B, "hello.txt", "x"))
    check("o_excl_enoent", excl)

    def sparse():
        p = os.path.join(B, "sparse.bin")
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, b"X", 5 * MIB)
        expect(os.fstat(fd).st_size == 5 * MIB + 1, "size before close")
        expect(os.pread(fd, 4096, 4096) == bytes(4096), "hole reads zeros")
        os.close(fd)
        expect(os.stat(p).st_size == 5 * MIB + 1, "size")
        d = sc_get("bkt1", "sparse.bin")
        expect(d is not None and len(d) == 5 * MIB + 1 and d[-1:] == b"X"
               and d[:5 * MIB] == bytes(5 * MIB), "storectl bytes")
    check("sparse_file", sparse)

    def random_writes():
        p = os.path.join(B, "large.bin")
        rnd = random.Random(7)
        ref = bytearray(rnd.randbytes(8 * MIB))
        wbytes(p, bytes(ref))
        fd = os.open(p, os.O_RDWR)
        for _ in range(5):
            off = rnd.randrange(0, 8 * MIB - 4096)
            chunk = rnd.randbytes(4096)
            os.pwrite(fd, chunk, off)
            ref[off:off + 4096] = chunk
        expect(os.pread(fd, 8 * MIB, 0) == bytes(ref), "read before close")
        os.close(fd)
        expect(rbytes(p) == bytes(ref), "read after close")
        expect(sc_get("bkt1", "large.bin") == bytes(ref), "storectl bytes")
    check("random_writes_large_file", random_writes)

    def shared_writer():
        p = os.path.join(B, "shared.txt")
        fd1 = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        fd2 = os.open(p, os.O_RDWR)
        os.pwrite(fd1, b"aaaa", 0)
        expect(os.pread(fd2, 10, 0) == b"aaaa", "fd2 sees fd1's write")
        os.close(fd1)  # commits
        os.pwrite(fd2, b"bb", 4)
        os.close(fd2)
        expect(sc_get("bkt1", "shared.txt") == b"aaaabb", "both writes")
        # Only fsync or close publishes: a writer in another process keeps
        # its descriptor (ours would be closed, and so flushed, by every
        # storectl we start).
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r1)
            os.close(w2)
            fd = os.open(p, os.O_RDWR)
            os.pwrite(fd, b"cc", 6)
            os.write(w1, b"1")
            os.read(r2, 1)
            os.fsync(fd)
            os.write(w1, b"2")
            os.read(r2, 1)
            os.close(fd)
            os._exit(0)
        os.close(w1)
        os.close(r2)
        try:
            os.read(r1, 1)
            expect(sc_get("bkt1", "shared.txt") == b"aaaabb", "before fsync")
            os.write(w2, b"x")
            os.read(r1, 1)
            expect(sc_get("bkt1", "shared.txt") == b"aaaabbcc", "after fsync")
            os.write(w2, b"x")
        finally:
            os.waitpid(pid, 0)
            os.close(r1)
            os.close(w2)
    check("one_writer_per_inode_fsync", shared_writer)

    def truncate():
        p = os.path.join(B, "trunc.bin")
        data = bytes(range(256)) * 1024  # 256 KiB
        wbytes(p, data)
        os.truncate(p, 100)
        expect(os.stat(p).st_size == 100, "down")
        expect(sc_get("bkt1", "trunc.bin") == data[:100], "committed down")
        os.truncate(p, 3 * MIB)
        d = rbytes(p)
        expect(len(d) == 3 * MIB and d[:100] == data[:100] and
               d[100:] == bytes(3 * MIB - 100), "up")
        fd = os.open(p, os.O_RDWR)
        os.ftruncate(fd, 10)
        expect(os.fstat(fd).st_size == 10, "ftruncate size")
        os.close(fd)
        expect(sc_get("bkt1", "trunc.bin") == data[:10], "ftruncate committed")
        expect_errno(errno.EISDIR, os.truncate, B, 0)
    check("truncate_up_down", truncate)

    def append_trunc():
        p = os.path.join(B, "app.txt")
        wbytes(p, b"a")
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"b")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"c")  # O_APPEND: still at the end
        os.close(fd)
        expect(rbytes(p) == b"abc", "append %r" % rbytes(p))
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        expect(os.stat(p).st_size == 0, "O_TRUNC size")
        expect(sc_get("bkt1", "app.txt") == b"", "O_TRUNC committed")
    check("o_append_o_trunc", append_trunc)

    def unlink():
        p = os.path.join(B, "gone.txt")
        wbytes(p, b"x")
        os.unlink(p)
        expect_errno(errno.ENOENT, os.stat, p)
        expect_errno(errno.ENOENT, os.unlink, p)
        expect(sc_get("bkt1", "gone.txt") is None, "still in store")
        os.mkdir(os.path.join(B, "adir"))
        expect_errno(errno.EISDIR, os.unlink, os.path.join(B, "adir"))
        os.rmdir(os.path.join(B, "adir"))
    check("unlink", unlink)

    def unlink_open():
        p = os.path.join(B, "tmpfile")
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
        os.write(fd, b"scratch")
        os.unlink(p)
        expect_errno(errno.ENOENT, os.stat, p)
        expect(os.pread(fd, 100, 0) == b"scratch", "read after unlink")
        os.pwrite(fd, b"S", 0)
        expect(os.pread(fd, 100, 0) == b"Scratch", "write after unlink")
        expect(os.fstat(fd).st_size == 7, "fstat after unlink")
        os.close(fd)
        expect(sc_get("bkt1", "tmpfile") is None, "resurrected")
    check("unlink_while_open", unlink_open)

    def mkdir_rmdir():
        d = os.path.join(B, "d1")
        os.mkdir(d, 0o750)
        st = os.stat(d)
        expect(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750,
               "mode %o" % st.st_mode)
        expect("d1/" in sc_keys("bkt1"), "marker d1/ missing")
        expect(os.listdir(d) == [], "not empty")
        expect_errno(errno.EEXIST, os.mkdir, d)
        expect_errno(errno.EEXIST, os.mkdir, os.path.join(B, "hello.txt"))
        wbytes(os.path.join(d, "f"), b"1")
        expect_errno(errno.ENOTEMPTY, os.rmdir, d)
        expect_errno(errno.ENOTDIR, os.rmdir, os.path.join(d, "f"))
        expect_errno(errno.ENOENT, os.rmdir, os.path.join(B, "nodir"))
        os.unlink(os.path.join(d, "f"))
        expect(os.listdir(d) == [], "dir kept after last unlink")
        os.rmdir(d)
        expect_errno(errno.ENOENT, os.stat, d)
        expect(not any(k.startswith("d1/") for k in sc_keys("bkt1")), "left")
        # a directory that exists only as a prefix survives losing its last
        # file through the mount
        sc_put("bkt1", "implicit/only", b"1")
        os.unlink(os.path.join(B, "implicit", "only"))
        expect(os.path.isdir(os.path.join(B, "implicit")), "implicit vanished")
        os.rmdir(os.path.join(B, "implicit"))
        os.makedirs(os.path.join(B, "deep", "er", "est"))
        expect(os.path.isdir(os.path.join(B, "deep/er/est")), "makedirs")
    check("mkdir_rmdir", mkdir_rmdir)

    def rename_files():
        a, b = os.path.join(B, "ra.txt"), os.path.join(B, "rb.txt")
        wbytes(a, b"A")
        ino = os.stat(a).st_ino
        os.rename(a, b)
        expect_errno(errno.ENOENT, os.stat, a)
        expect(os.stat(b).st_ino == ino and rbytes(b) == b"A", "moved")
        wbytes(a, b"AA")
        ino_a = os.stat(a).st_ino
        os.rename(a, b)  # replacing
        expect(rbytes(b) == b"AA" and os.stat(b).st_ino == ino_a, "replaced")
        expect(sc_get("bkt1", "rb.txt") == b"AA" and
               sc_get("bkt1", "ra.txt") is None, "store view")
        wbytes(a, b"new")
        expect_errno(errno.EEXIST, renameat2, a, b, RENAME_NOREPLACE)
        expect_errno(errno.EINVAL, renameat2, a, b, RENAME_EXCHANGE)
        renameat2(a, os.path.join(B, "rc.txt"), RENAME_NOREPLACE)
        expect(rbytes(os.path.join(B, "rc.txt")) == b"new", "noreplace ok")
        expect_errno(errno.ENOENT, os.rename, a, b)
        os.mkdir(os.path.join(B, "rdir"))
        expect_errno(errno.EISDIR, os.rename, b, os.path.join(B, "rdir"))
        # pending writes follow the file to its new name
        fd = os.open(os.path.join(B, "rc.txt"), os.O_WRONLY)
        os.pwrite(fd, b"NEW", 0)
        os.rename(os.path.join(B, "rc.txt"), os.path.join(B, "rd.txt"))
        os.pwrite(fd, b"!", 3)
        os.close(fd)
        expect(sc_get("bkt1", "rd.txt") == b"NEW!" and
               sc_get("bkt1", "rc.txt") is None, "open file renamed")
        # the Content-Type guessed from the name follows a rename; not
        # visible through storectl, so only the data is checked here
        os.rename(os.path.join(B, "rd.txt"), os.path.join(B, "rd.html"))
        expect(rbytes(os.path.join(B, "rd.html")) == b"NEW!", "html")
    check("rename_files", rename_files)

    def rename_dirs():
        src = os.path.join(B, "srcdir")
        os.makedirs(os.path.join(src, "sub"))
        for i in range(5):
            wbytes(os.path.join(src, "sub", "f%d" % i), b"%d" % i)
        dino = os.stat(src).st_ino
        fino = os.stat(os.path.join(src, "sub", "f1")).st_ino
        dst = os.path.join(B, "dstdir")
        os.rename(src, dst)
        expect_errno(errno.ENOENT, os.stat, src)
        expect(os.stat(dst).st_ino == dino, "dir ino kept")
        expect(os.stat(os.path.join(dst, "sub", "f1")).st_ino == fino,
               "file ino kept")
        expect(rbytes(os.path.join(dst, "sub", "f3")) == b"3", "content")
        # and after the kernel forgot them (the marker keeps the number)
        if drop_caches():
            expect(os.stat(dst).st_ino == dino, "dir ino after forget")
            expect(os.stat(os.path.join(dst, "sub", "f1")).st_ino == fino,
                   "file ino after forget")
            ents = {e.name: e.inode() for e in os.scandir(B)}
            expect(ents["dstdir"] == dino, "readdir d_ino of a directory")
        keys = sc_keys("bkt1")
        expect(not any(k.startswith("srcdir/") for k in keys), "old keys")
        expect(sum(k.startswith("dstdir/sub/f") for k in keys) == 5, "new keys")
        expect_errno(errno.EINVAL, os.rename, dst, os.path.join(dst, "sub", "in"))
        os.mkdir(os.path.join(B, "full"))
        wbytes(os.path.join(B, "full", "x"), b"x")
        expect_errno(errno.ENOTEMPTY, os.rename, dst, os.path.join(B, "full"))
        os.mkdir(os.path.join(B, "empty"))
        expect_errno(errno.EEXIST, renameat2, dst, os.path.join(B, "empty"),
                     RENAME_NOREPLACE)
        os.rename(dst, os.path.join(B, "empty"))  # replaces the empty dir
        expect(rbytes(os.path.join(B, "empty", "sub", "f0")) == b"0", "over")
        expect_errno(errno.ENOTDIR, os.rename, os.path.join(B, "empty"),
                     os.path.join(B, "hello.txt"))
        expect_errno(errno.EXDEV, os.rename, os.path.join(B, "hello.txt"),
                     os.path.join(MNT, "bkt2", "hello.txt"))
        # an implicit source directory (no marker) keeps existing
        sc_put("bkt1", "imp/a/x", b"x")
        os.rename(os.path.join(B, "imp", "a"), os.path.join(B, "imp", "b"))
        expect(os.listdir(os.path.join(B, "imp")) == ["b"], "imp")
    check("rename_dirs", rename_dirs)

    def inode_stable():
        p = os.path.join(B, "ino.txt")
        wbytes(p, b"1")
        ino = os.stat(p).st_ino
        with open(p, "ab") as f:
            f.write(b"2")
        os.truncate(p, 1)
        os.chmod(p, 0o600)
        expect(os.stat(p).st_ino == ino, "ino changed by edits")
        inos = {os.stat(os.path.join(B, n)).st_ino for n in os.listdir(B)}
        expect(len(inos) == len(os.listdir(B)), "duplicate st_ino")
        ents = {e.name: e.inode() for e in os.scandir(B)}
        expect(ents["ino.txt"] == ino, "readdir d_ino differs from st_ino")
    check("inode_numbers", inode_stable)

    def attrs():
        p = os.path.join(B, "attr.txt")
        wbytes(p, b"x")
        os.chmod(p, 0o640)
        expect(stat.S_IMODE(os.stat(p).st_mode) == 0o640, "chmod")
        uid, gid = (1234, 5678) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
        os.chown(p, uid, gid)
        st = os.stat(p)
        expect((st.st_uid, st.st_gid) == (uid, gid), "chown")
        os.utime(p, ns=(1500000000123456789, 1600000000987654321))
        st = os.stat(p)
        expect(st.st_mtime_ns == 1600000000987654321, "mtime %d" % st.st_mtime_ns)
        expect(st.st_atime_ns == 1500000000123456789, "atime %d" % st.st_atime_ns)
        t0 = time.time_ns()
        time.sleep(0.02)
        with open(p, "ab") as f:
            f.write(b"y")
        st = os.stat(p)
        expect(st.st_mtime_ns >= t0 and st.st_ctime_ns >= t0, "write mtime")
        expect(stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == uid,
               "attrs lost by a write: %o %d" % (st.st_mode, st.st_uid))
        time.sleep(0.02)
        t1 = time.time_ns()
        os.chmod(p, 0o644)
        expect(os.stat(p).st_ctime_ns >= t1, "chmod ctime")
        d = os.path.join(B, "attrdir")
        os.mkdir(d)
        os.chmod(d, 0o700)
        os.utime(d, ns=(1, 1700000000000000000))
        st = os.stat(d)
        expect(stat.S_IMODE(st.st_mode) == 0o700 and
               st.st_mtime_ns == 1700000000000000000, "dir attrs")
    check("chmod_chown_utimens", attrs)

    def symlinks():
        p = os.path.join(B, "lnk")
        os.symlink("hello.txt", p)
        expect(os.readlink(p) == "hello.txt", "readlink")
        expect(stat.S_ISLNK(os.lstat(p).st_mode), "lstat")
        expect(rbytes(p) == b"hello world\n", "follow")
        expect_errno(errno.EEXIST, os.symlink, "x", p)
        expect_errno(errno.EINVAL, os.readlink, os.path.join(B, "hello.txt"))
        expect(sc_get("bkt1", "lnk") == b"hello.txt", "body is the target")
        os.unlink(p)
    check("symlink_readlink", symlinks)

    def statfs():
        m, s = os.statvfs(MNT), os.statvfs(STORE)
        expect(m.f_namemax == 255, "namemax")
        fm, fs_ = m.f_bavail * m.f_frsize, s.f_bavail * s.f_frsize
        expect(abs(fm - fs_) <= max(fs_ // 20, 64 * MIB), "free %d vs %d" % (fm, fs_))
        expect(m.f_blocks * m.f_frsize > 0, "total")
    check("statfs", statfs)

    def xattrs():
        p = os.path.join(B, "hello.txt")
        os.setxattr(p, "user.color", b"blue")
        expect(os.getxattr(p, "user.color") == b"blue", "get")
        expect("user.color" in os.listxattr(p), "list %r" % os.listxattr(p))
        expect_errno(errno.EEXIST, os.setxattr, p, "user.color", b"x",
                     os.XATTR_CREATE)
        os.setxattr(p, "user.color", b"red", os.XATTR_REPLACE)
        expect(os.getxattr(p, "user.color") == b"red", "replace")
        expect_errno(errno.ENODATA, os.setxattr, p, "user.none", b"x",
                     os.XATTR_REPLACE)
        expect_errno(errno.ENODATA, os.getxattr, p, "user.none")
        expect_errno(errno.ENOTSUP, os.setxattr, p, "trusted.x", b"1")
        expect_errno(errno.ENOTSUP, os.setxattr, p, "security.x", b"1")
        expect_errno(errno.EPERM, os.setxattr, p, "user.mode", b"1")
        expect(rbytes(p) == b"hello world\n", "data kept")
        os.removexattr(p, "user.color")
        expect_errno(errno.ENODATA, os.getxattr, p, "user.color")
        expect_errno(errno.ENODATA, os.removexattr, p, "user.color")
        expect_errno(errno.ENOSPC, os.setxattr, p, "user.big", b"v" * 3000)
        d = os.path.join(B, "xdir")
        os.mkdir(d)
        os.setxattr(d, "user.k", b"v")
        expect(os.getxattr(d, "user.k") == b"v", "dir xattr")
        # xattrs survive a data change and a rename
        os.setxattr(p, "user.keep", b"1")
        with open(p, "ab") as f:
            f.write(b"!")
        os.rename(p, p + ".2")
        expect(os.getxattr(p + ".2", "user.keep") == b"1", "kept")
        os.rename(p + ".2", p)
    check("xattrs_user_namespace", xattrs)

    def unsupported():
        p = os.path.join(B, "hello.txt")
        expect_errno(errno.EPERM, os.link, p, os.path.join(B, "hard"))
        expect_errno(errno.EPERM, os.mkfifo, os.path.join(B, "fifo"))
        expect_errno(errno.EPERM, os.mknod, os.path.join(B, "dev"),
                     stat.S_IFCHR | 0o600, os.makedev(1, 3))
        os.mknod(os.path.join(B, "regular"), stat.S_IFREG | 0o600)
        expect(os.stat(os.path.join(B, "regular")).st_size == 0, "mknod reg")
        bad = os.path.join(B, "bad").encode() + b"\xff"
        expect_errno(errno.ENOENT, os.stat, bad)
        expect_errno(errno.EILSEQ, wbytes, bad, b"")
        expect_errno(errno.EILSEQ, os.mkdir, bad)
        long = "n" * 256
        expect_errno(errno.ENAMETOOLONG, wbytes, os.path.join(B, long), b"")
        deep = os.path.join(B, *(["d" * 200] * 6), "f")
        expect_errno(errno.ENAMETOOLONG, os.makedirs, os.path.dirname(deep))
    check("unsupported_and_limits", unsupported)

    def permissions():
        nobody = 65534
        root_dir = os.path.join(B, "rootonly")
        os.mkdir(root_dir, 0o755)
        secret = os.path.join(B, "secret.txt")
        wbytes(secret, b"s")
        os.chmod(secret, 0o600)
        expect(as_user(nobody, nobody, wbytes, os.path.join(root_dir, "x"),
                       b"x") == errno.EACCES, "create in 0755 root dir")
        expect(as_user(nobody, nobody, rbytes, secret) == errno.EACCES, "read")
        expect(as_user(nobody, nobody, os.chmod, secret, 0o777) == errno.EPERM,
               "chmod by non-owner")
        expect(as_user(nobody, nobody, os.chown, secret, nobody, nobody)
               == errno.EPERM, "chown by non-owner")
        pub = os.path.join(B, "pub")
        os.mkdir(pub)
        os.chmod(pub, 0o777)
        mine = os.path.join(pub, "mine")
        expect(as_user(nobody, nobody, wbytes, mine, b"m") == 0, "create")
        st = os.stat(mine)
        expect((st.st_uid, st.st_gid) == (nobody, nobody), "owner %d:%d" % (
            st.st_uid, st.st_gid))
        expect(as_user(nobody, nobody, os.chmod, mine, 0o600) == 0, "own chmod")
        sg = os.path.join(B, "sgid")
        os.mkdir(sg)
        os.chown(sg, 0, 4242)
        os.chmod(sg, 0o2777)
        expect(as_user(nobody, nobody, wbytes, os.path.join(sg, "f"), b"")
               == 0, "create in setgid dir")
        expect(os.stat(os.path.join(sg, "f")).st_gid == 4242, "setgid group")
        expect(as_user(nobody, nobody, os.mkdir, os.path.join(sg, "sub")) == 0,
               "mkdir in setgid dir")
        st = os.stat(os.path.join(sg, "sub"))
        expect(st.st_gid == 4242 and st.st_mode & stat.S_ISGID, "sub setgid")
        expect(os.stat(os.path.join(B, "hello.txt")).st_uid == 0, "root owns")
    if os.geteuid() == 0:
        check("ownership_permissions", permissions)
    else:
        out("ok ownership_permissions # SKIP not root")

    def keys_not_paths():
        sc("bucket", "create", "oddkeys")
        O = os.path.join(MNT, "oddkeys")
        sc_put("oddkeys", "c", b"file-c")
        sc_put("oddkeys", "c/x", b"x")
        sc_put("oddkeys", "a//b", b"ab")
        sc_put("oddkeys", "p/./x", b"px")
        sc_put("oddkeys", "q/../y", b"qy")
        sc_put("oddkeys", "l/" + "L" * 300 + "/z", b"long")
        sc_put("oddkeys", "e/", b"")
        sc_put("oddkeys", "old_$folder$", b"")
        names = sorted(os.listdir(O))
        expect(names == ["a", "c", "c.~file", "e", "l", "old", "p", "q"],
               "listing %r" % names)
        expect(os.path.isdir(os.path.join(O, "c")), "c is the directory")
        expect(rbytes(os.path.join(O, "c.~file")) == b"file-c", "c.~file")
        expect(os.listdir(os.path.join(O, "c")) == ["x"], "c/")
        for d in ("a", "p", "q", "l", "e", "old"):
            expect(os.listdir(os.path.join(O, d)) == [], "%s not empty" % d)
        expect_errno(errno.ENOTEMPTY, os.rmdir, os.path.join(O, "a"))
        expect_errno(errno.ENOTEMPTY, os.rmdir, os.path.join(O, "l"))
        os.rename(os.path.join(O, "a"), os.path.join(O, "a2"))
        keys = sc_keys("oddkeys")
        expect("a2//b" in keys and "a//b" not in keys, "moved along %r" % keys)
        expect(sc_get("oddkeys", "a2//b") == b"ab", "bytes kept")
        os.unlink(os.path.join(O, "c.~file"))
        keys = sc_keys("oddkeys")
        expect("c" not in keys and "c/x" in keys, "unlink c.~file")
        os.rmdir(os.path.join(O, "e"))
        os.rmdir(os.path.join(O, "old"))
        keys = sc_keys("oddkeys")
        expect("e/" not in keys and "old_$folder$" not in keys, "markers")
        for k in ("p/./x", "q/../y", "l/" + "L" * 300 + "/z"):
            expect(k in keys, "%s lost" % k)
        # a real key named like the conflict name wins
        sc_put("oddkeys", "c", b"again")
        sc_put("oddkeys", "c.~file", b"real")
        expect(eventually(lambda: rbytes(os.path.join(O, "c.~file")) == b"real"),
               "real key wins")
        expect(sorted(os.listdir(O)).count("c.~file") == 1, "duplicate")
        # the s3fs mode of an object put by a tool
        sc_put("oddkeys", "s3fs/dir/", b"")
        expect(os.path.isdir(os.path.join(O, "s3fs", "dir")), "marker dir")
    check("keys_that_are_not_paths", keys_not_paths)

    def interop():
        p = os.path.join(B, "interop.txt")
        sc_put("bkt1", "interop.txt", b"from storectl")
        expect(rbytes(p) == b"from storectl", "put then read")
        sc_put("bkt1", "interop.txt", b"replaced by storectl, longer")
        # seen at the next open, before the change poller's invalidation
        got = rbytes(p)
        expect(got == b"replaced by storectl, longer", "next open: %r" % got)
        sc_put("bkt1", "interop.txt", b"short")
        got = rbytes(p)
        expect(got == b"short", "next open, shorter: %r" % got)
        sc("rm", "bkt1", "interop.txt")
        expect(eventually(lambda: not os.path.exists(p)), "delete not seen")
        sc_put("bkt1", "newdir/inside.txt", b"in")
        expect(eventually(lambda: "newdir" in os.listdir(B)), "new dir")
        expect(rbytes(os.path.join(B, "newdir", "inside.txt")) == b"in", "in")
        wbytes(os.path.join(B, "w.txt"), b"written on the mount")
        expect(sc_get("bkt1", "w.txt") == b"written on the mount", "get")
        expect(sc_keys("bkt1").get("w.txt") == 20, "ls size")
        # an object with POSIX metadata from a tool: storectl put keeps the
        # local file's mode
        src = os.path.join(os.environ.get("T", "/tmp"), "mode640")
        wbytes(src, b"m")
        os.chmod(src, 0o640)
        sc("put", "bkt1", "mode640", src)
        expect(stat.S_IMODE(os.stat(os.path.join(B, "mode640")).st_mode)
               == 0o640, "s3fs mode metadata")
    check("interop_storectl", interop)

    def cache_coherence():
        p = os.path.join(B, "coh.txt")
        wbytes(p, b"v1")
        with open(p, "rb") as f:  # cached by the kernel now
            expect(f.read() == b"v1", "v1")
        os.stat(p)
        sc_put("bkt1", "coh.txt", b"version2")
        t0 = time.time()
        expect(eventually(lambda: os.stat(p).st_size == 8, 3.0), "size stale")
        expect(rbytes(p) == b"version2", "data stale")
        expect(time.time() - t0 < 3.0, "slow")
    check("coherence_with_other_writers", cache_coherence)


# --------------------------------------------------------------------------
# fsx: bounded random operations on a ~20 MiB file against a local copy
# --------------------------------------------------------------------------
def section_fsx():
    seed = int(EXTRA[0]) if EXTRA else 1
    nops = int(EXTRA[1]) if len(EXTRA) > 1 else 1500
    budget = float(EXTRA[2]) if len(EXTRA) > 2 else 60.0
    refdir = EXTRA[3] if len(EXTRA) > 3 else "/tmp"
    rnd = random.Random(seed)
    p = os.path.join(MNT, "bkt1", "fsx.bin")
    ref = os.path.join(refdir, "fsx.ref")
    size = 20 * MIB
    data = rnd.randbytes(size)
    wbytes(p, data)
    wbytes(ref, data)
    fd = os.open(p, os.O_RDWR)
    rf = os.open(ref, os.O_RDWR)
    t0 = time.time()
    done = 0
    log = []
    try:
        for i in range(nops):
            if time.time() - t0 > budget:
                break
            op = rnd.random()
            cur = os.fstat(rf).st_size
            if op < 0.40:
                off = rnd.randrange(0, cur + MIB)
                n = rnd.randrange(1, 256 * 1024)
                buf = rnd.randbytes(n)
                log.append("write %d+%d" % (off, n))
                os.pwrite(fd, buf, off)
                os.pwrite(rf, buf, off)
            elif op < 0.50:
                ns = rnd.randrange(0, 24 * MIB)
                log.append("truncate %d" % ns)
                os.ftruncate(fd, ns)
                os.ftruncate(rf, ns)
            elif op < 0.80:
                off = rnd.randrange(0, cur + 1)
                n = rnd.randrange(1, MIB)
                log.append("read %d+%d" % (off, n))
                a, b = os.pread(fd, n, off), os.pread(rf, n, off)
                if a != b:
                    raise AssertionError("read %d+%d differs (op %d, after %s)"
                                         % (off, n, i, log[-6:]))
            elif op < 0.88:
                log.append("fsync")
                os.fsync(fd)
            elif op < 0.96:
                log.append("reopen")
                os.close(fd)
                fd = os.open(p, os.O_RDWR)
            else:
                log.append("stat")
                if os.fstat(fd).st_size != cur:
                    raise AssertionError("size %d != %d (op %d)" % (
                        os.fstat(fd).st_size, cur, i))
            done += 1
        os.close(fd)
        fd = -1
        want = rbytes(ref)
        if rbytes(p) != want:
            raise AssertionError("final content differs")
        got = sc_get("bkt1", "fsx.bin")
        if got != want:
            raise AssertionError("storectl get differs")
        out("ok fsx_random_ops (seed %d, %d ops, %.1f s)" % (
            seed, done, time.time() - t0))
    except Exception as e:  # noqa: BLE001
        out("FAIL fsx_random_ops: seed %d: %s" % (seed, repr(e)[:400]))
    finally:
        if fd >= 0:
            os.close(fd)
        os.close(rf)


# --------------------------------------------------------------------------
# atomic directory rename under concurrent readers
# --------------------------------------------------------------------------
def section_atomic():
    B = os.path.join(MNT, "bkt1")
    base = os.path.join(B, "atom")
    nfiles = 300
    os.makedirs(os.path.join(base, "src"))
    for i in range(nfiles):
        os.mknod(os.path.join(base, "src", "f%04d" % i), stat.S_IFREG | 0o644)
    stop = threading.Event()
    bad = []
    seen = {"store": 0, "mount": 0}

    def store_reader():
        while not stop.is_set():
            keys = sc_keys("bkt1", "atom/")
            a = sum(k.startswith("atom/src/f") for k in keys)
            b = sum(k.startswith("atom/dst/f") for k in keys)
            if (a, b) not in ((nfiles, 0), (0, nfiles)):
                bad.append("store saw src=%d dst=%d" % (a, b))
            seen["store"] += 1

    def mount_reader():
        while not stop.is_set():
            for d in ("src", "dst"):
                try:
                    n = len(os.listdir(os.path.join(base, d)))
                except FileNotFoundError:
                    continue
                if n not in (0, nfiles):
                    bad.append("mount saw %s with %d" % (d, n))
                seen["mount"] += 1

    ths = [threading.Thread(target=store_reader),
           threading.Thread(target=mount_reader)]
    for t in ths:
        t.start()
    try:
        names = ["src", "dst"]
        for i in range(10):
            os.rename(os.path.join(base, names[i % 2]),
                      os.path.join(base, names[(i + 1) % 2]))
            time.sleep(0.05)
    finally:
        stop.set()
        for t in ths:
            t.join()
    if bad:
        out("FAIL dir_rename_atomic: %s" % bad[:3])
    elif seen["store"] < 2 or seen["mount"] < 2:
        out("FAIL dir_rename_atomic: readers did not run (%r)" % seen)
    else:
        out("ok dir_rename_atomic (%d store, %d mount listings)" % (
            seen["store"], seen["mount"]))


# --------------------------------------------------------------------------
# a 100,000-entry directory
# --------------------------------------------------------------------------
def section_bigdir():
    n = int(EXTRA[0]) if EXTRA else 100000
    pid = int(EXTRA[1]) if len(EXTRA) > 1 else 0
    budget = float(EXTRA[2]) if len(EXTRA) > 2 else 120.0
    d = os.path.join(MNT, "bkt1", "big")
    os.mkdir(d)
    t0 = time.time()
    # The kernel serialises creations in one directory: one thread.
    made = 0
    try:
        for i in range(n):
            os.mknod(os.path.join(d, "f%06d" % i), stat.S_IFREG | 0o644)
            made += 1
            if made % 1000 == 0 and time.time() - t0 > budget:
                break
    except OSError as e:
        out("FAIL readdir_100k: creating entry %d: %r" % (made, e))
        return
    t1 = time.time()

    def rss():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0
    before = rss()
    count, peak = 0, before
    names = set()
    with os.scandir(d) as it:
        for e in it:
            count += 1
            names.add(e.name)
            if count % 10000 == 0:
                peak = max(peak, rss())
    t2 = time.time()
    grew = peak - before
    want = {"f%06d" % i for i in range(made)}
    name = "readdir_100k" if made == n else "readdir_large_dir"
    if count != made or names != want:
        out("FAIL %s: saw %d entries (%d distinct), expected %d" % (
            name, count, len(names), made))
    elif pid and grew > 128 * MIB:
        out("FAIL %s: daemon RSS grew by %d MiB" % (name, grew // MIB))
    elif made < min(n, 20000):
        out("FAIL %s: only %d of %d entries created in %.0f s" % (
            name, made, n, budget))
    else:
        out("ok %s (%d entries: created in %.1f s, listed in %.1f s,"
            " daemon RSS +%d KiB)" % (name, made, t1 - t0, t2 - t1,
                                      grew // 1024))
    # seekdir/rewind: a second listing from the start agrees
    expect(len(os.listdir(d)) == made, "second listing")


# --------------------------------------------------------------------------
# defaults: objects without POSIX metadata, with uid=, gid=, umask=
# --------------------------------------------------------------------------
def section_defaults():
    def defaults():
        sc_put("bkt1", "nometa/plain", b"plain")  # from stdin: no metadata
        st = os.stat(os.path.join(MNT, "bkt1", "nometa", "plain"))
        expect((st.st_uid, st.st_gid) == (4321, 8765), "owner %d:%d" % (
            st.st_uid, st.st_gid))
        expect(stat.S_IMODE(st.st_mode) == 0o640, "mode %o" % st.st_mode)
        st = os.stat(os.path.join(MNT, "bkt1", "nometa"))
        expect(stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == 4321,
               "implicit dir %o" % st.st_mode)
    check("mount_option_defaults", defaults)


# --------------------------------------------------------------------------
# prefix: a bucket mounted below a prefix (--bucket bkt1/pre/sub)
# --------------------------------------------------------------------------
def section_prefix():
    def prefix_mount():
        wbytes(os.path.join(MNT, "inpre.txt"), b"p")
        expect(sc_get("bkt1", "pre/sub/inpre.txt") == b"p", "key")
        sc_put("bkt1", "pre/sub/d/x", b"x")
        sc_put("bkt1", "pre/other", b"o")
        expect(sorted(os.listdir(MNT)) == ["d", "inpre.txt"],
               "listing %r" % sorted(os.listdir(MNT)))
        os.mkdir(os.path.join(MNT, "m"))
        expect("pre/sub/m/" in sc_keys("bkt1", "pre/"), "marker")
        os.rename(os.path.join(MNT, "d"), os.path.join(MNT, "d2"))
        expect(sc_get("bkt1", "pre/sub/d2/x") == b"x", "rename in prefix")
    check("bucket_prefix_mount", prefix_mount)


# --------------------------------------------------------------------------
# ro: a read-only mount
# --------------------------------------------------------------------------
def section_ro():
    def ro():
        B = os.path.join(MNT, "bkt1")
        expect(rbytes(os.path.join(B, "hello.txt")).startswith(b"hello"), "r")
        expect_errno(errno.EROFS, wbytes, os.path.join(B, "rofile"), b"x")
        expect_errno(errno.EROFS, os.mkdir, os.path.join(B, "rodir"))
        expect_errno(errno.EROFS, os.unlink, os.path.join(B, "hello.txt"))
        expect_errno(errno.EROFS, os.open, os.path.join(B, "hello.txt"),
                     os.O_WRONLY)
    check("read_only_mount", ro)


# --------------------------------------------------------------------------
# enospc: a store on a small filesystem
# --------------------------------------------------------------------------
def section_enospc():
    def enospc():
        p = os.path.join(MNT, "bkt1", "fill.bin")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
        err = None
        try:
            for _ in range(64):  # distinct chunks: no deduplication
                os.write(fd, os.urandom(MIB))
            os.fsync(fd)
        except OSError as e:
            err = e.errno
        try:
            os.close(fd)
        except OSError as e:
            err = err or e.errno
        expect(err == errno.ENOSPC, "errno %r, expected ENOSPC" % err)
        # the mount keeps serving; a small file still fits after removal
        os.unlink(p)
        wbytes(os.path.join(MNT, "bkt1", "small"), b"ok")
        expect(rbytes(os.path.join(MNT, "bkt1", "small")) == b"ok", "after")
    check("enospc", enospc)


SECTIONS = {"basic": section_basic, "fsx": section_fsx, "atomic": section_atomic,
            "bigdir": section_bigdir, "defaults": section_defaults, "prefix": section_prefix, "ro": section_ro,
            "enospc": section_enospc}

if __name__ == "__main__":
    SECTIONS[SECTION]()
