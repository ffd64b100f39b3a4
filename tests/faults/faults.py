#!/usr/bin/env python3
"""faults.py BUILD_DIR TMPDIR -- fault injection against the three doors.

Sections (FAULT_TESTS selects some; default all):
  diskfull   the store on a 64 MiB tmpfs filled up by s3d and the mount
  readonly   the filesystem under a running store turns read-only (ext4
             errors=remount-ro on a loop image), then cold starts on a
             read-only store (that image, and a tmpfs remounted ro)
  corrupt    chunk files overwritten, truncated and removed behind the
             daemons' backs
  locked     another process holds the catalog's write lock (BEGIN
             IMMEDIATE) for 8 s, then for longer than s3d's busy timeout

Run by run.sh (root, env -i, FAULT_PIDS set).  Prints `ok NAME` /
`FAIL NAME: reason` and ends with `N passed, N failed`.
"""
import glob
import hashlib
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcommon import (Build, Fail, Fuse, Results, S3d, data, eq, md5, posix,  # noqa: E402
                     put, get, register_pid, request, scrub_environment, sh, want,
                     sanitizer_scan)

MiB = 1 << 20
B = "bkt"


def is_ok(res):
    return res.startswith("OK")


def errname(res):
    m = re.match(r"ERR (\w+)", res)
    return m.group(1) if m else res


def list_keys(host, bucket):
    """Every key and ETag of a bucket (ListObjectsV2, all pages)."""
    out = {}
    token = None
    for _ in range(100):
        q = [("list-type", "2"), ("max-keys", "1000")]
        if token:
            q.append(("continuation-token", token))
        r = request(host, "GET", "/" + bucket, query=q)
        want(r, 200, what="list")
        body = r.body.decode()
        for k, e in re.findall(r"<Key>(.*?)</Key>.*?<ETag>(.*?)</ETag>", body, re.S):
            out[k] = e.replace("&quot;", "").replace('"', "")
        m = re.search(r"<NextContinuationToken>(.*?)</NextContinuationToken>", body)
        if not m:
            break
        token = m.group(1)
    return out


def clear_error(r):
    """A write refused the S3 way: an error status with an S3 error body,
    never 500 InternalError, never a dropped connection."""
    if r.status is None:
        return False, "no response: %s" % r.aborted
    if 200 <= r.status < 300:
        return False, "succeeded (%d)" % r.status
    if r.status == 500 or r.code() in (None, "InternalError"):
        return False, "unclear error %s %s" % (r.status, r.code())
    return True, "%d %s" % (r.status, r.code())


def mount_tmpfs(d, size):
    os.makedirs(d, exist_ok=True)
    p = sh(["mount", "-t", "tmpfs", "-o", "size=%s,mode=755" % size, "tmpfs", d])
    return p.returncode == 0


def umount(d):
    if os.path.ismount(d):
        p = sh(["umount", d], timeout=60)
        if p.returncode != 0:
            sh(["umount", "-l", d], timeout=60)


def statvfs_avail(d):
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize


def files_size(d):
    n = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                n += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return n


def chunk_file(store, content):
    h = hashlib.sha256(content).hexdigest()
    return os.path.join(store, "chunks", h[:2], h)


class Reader(threading.Thread):
    """GETs and HEADs known objects in a loop; records every failure and
    the slowest answer."""

    def __init__(self, host, objs):
        super().__init__(daemon=True)
        self.host, self.objs = host, objs
        self.stop = threading.Event()
        self.errors = []
        self.n = 0
        self.slowest = 0.0

    def run(self):
        while not self.stop.is_set():
            for k, v in self.objs.items():
                r = get(self.host, B, k, timeout=20)
                self.slowest = max(self.slowest, r.seconds)
                if r.status != 200 or not r.complete or md5(r.body) != md5(v):
                    self.errors.append("GET %s: %r" % (k, r))
                r = request(self.host, "HEAD", "/%s/%s" % (B, k), timeout=20)
                self.slowest = max(self.slowest, r.seconds)
                if r.status != 200:
                    self.errors.append("HEAD %s: %r" % (k, r))
                self.n += 2
            self.stop.wait(0.05)


# =================================================================== disk full
def sec_diskfull(R, b, T):
    d = os.path.join(T, "full")
    if not mount_tmpfs(d, "64m"):
        R.fail("full/setup", "cannot mount a tmpfs")
        return
    srv = fs = None
    try:
        store = os.path.join(d, "store")
        b.init_store(store)
        srv = S3d(b, store, os.path.join(T, "s3d-full.log"))
        if not R.check("full/s3d_up", srv.up, srv.logtext()[-300:]):
            return
        mnt = os.path.join(T, "mnt-full")
        fs = Fuse(b, store, mnt, os.path.join(T, "fusefs-full.log"))
        if not R.check("full/mount_up", fs.up, fs.logtext()[-300:]):
            return
        H = srv.host
        keep = {"keep-big": data(1, 3 * MiB + 17), "keep-mid": data(2, 200 * 1024 + 3),
                "keep-small": data(3, 1000)}
        for k, v in keep.items():
            want(put(H, B, k, v), 200, what="PUT " + k)
        mfile = data(4, 1500000)
        res, _ = posix("write", mnt + "/bkt/mfile.bin", 4, len(mfile))
        if not is_ok(res):
            raise Fail("mount write mfile.bin: " + res)
        avail0 = statvfs_avail(d)

        reader = Reader(H, keep)
        reader.start()

        # Fill the filesystem: big objects, then smaller and smaller ones,
        # until each size is refused, so the disk ends up really full.
        failures, stored = [], []
        t0 = time.time()
        for size in (8 * MiB, MiB, 128 * 1024, 16 * 1024, 2048, 300):
            for i in range(80):
                k = "fill-%d-%d" % (size, i)
                r = put(H, B, k, os.urandom(size), timeout=60)
                if r.status == 200:
                    stored.append(k)
                    continue
                failures.append((k, r))
                break
            if time.time() - t0 > 60:
                break
        bad = [(k, r) for k, r in failures if r.status != 507 or r.code() != "InsufficientStorage"]
        R.check("full/put_overflow_507_InsufficientStorage", failures and not bad,
                "no PUT failed (disk never filled)" if not failures else
                "unexpected replies: %s" % bad[:3],
                note="%d stored, %d refused, avail %d bytes" % (len(stored), len(failures),
                                                                statvfs_avail(d)))

        def boto3_sees_insufficient_storage():
            from fcommon import boto3_client
            c = boto3_client(srv.endpoint)
            try:
                c.put_object(Bucket=B, Key="boto3-full", Body=os.urandom(MiB))
            except Exception as e:  # noqa: BLE001
                code = getattr(e, "response", {}).get("Error", {}).get("Code")
                if code != "InsufficientStorage":
                    raise Fail("boto3 got %s: %s" % (type(e).__name__, e))
                failures.append(("boto3-full", None))
                return
            raise Fail("boto3 PUT of 1 MiB succeeded on a full disk")
        if failures:
            R.run("full/boto3_put_raises_InsufficientStorage", boto3_sees_insufficient_storage)

        def failed_invisible():
            for k, _ in failures:
                r = request(H, "HEAD", "/%s/%s" % (B, k))
                eq(r.status, 404, "HEAD of refused " + k)
            keys = list_keys(H, B)
            leaked = [k for k, _ in failures if k in keys]
            eq(leaked, [], "refused keys listed")
            missing = [k for k in list(keep) + stored if k not in keys]
            eq(missing, [], "stored keys missing from the listing")
        R.run("full/refused_puts_leave_no_object", failed_invisible)

        def existing_identical():
            for k, v in keep.items():
                r = get(H, B, k)
                if r.status != 200 or md5(r.body) != md5(v):
                    raise Fail("GET %s: %r" % (k, r))
            r = get(H, B, "mfile.bin")
            if r.status != 200 or md5(r.body) != md5(mfile):
                raise Fail("GET mfile.bin: %r" % r)
        R.run("full/get_existing_while_full", existing_identical)

        def listing_while_full():
            want(request(H, "GET", "/"), 200, what="ListBuckets")
            want(request(H, "GET", "/" + B, query=[("prefix", "keep")]), 200, what="ListObjects")
        R.run("full/list_while_full", listing_while_full)

        def multipart_while_full():
            r = request(H, "POST", "/%s/mpu-full" % B, query=[("uploads", None)])
            if r.status != 200:
                ok, why = clear_error(r)
                if not ok or r.status != 507:
                    raise Fail("CreateMultipartUpload: " + why)
                return
            uid = re.search(rb"<UploadId>(.*?)</UploadId>", r.body).group(1).decode()
            r = request(H, "PUT", "/%s/mpu-full" % B, os.urandom(5 * MiB),
                        query=[("partNumber", "1"), ("uploadId", uid)])
            if r.status != 507 or r.code() != "InsufficientStorage":
                raise Fail("UploadPart on a full disk: %r" % r)
            request(H, "DELETE", "/%s/mpu-full" % B, query=[("uploadId", uid)])
        R.run("full/multipart_part_507", multipart_while_full)

        # The mount: a new file and an overwrite both fail with ENOSPC and
        # leave nothing partial behind.
        res, secs = posix("write", mnt + "/bkt/newfile.bin", 6, 3 * MiB, timeout=60)
        R.check("full/mount_write_enospc", errname(res) == "ENOSPC",
                "new 3 MiB file on a full store: %s" % res, note=res)
        res2, _ = posix("read", mnt + "/bkt/newfile.bin")
        R.check("full/mount_failed_write_not_partial",
                errname(res2) == "ENOENT" or res2.endswith(" 0"),
                "after a failed write the file reads as %s" % res2, note=res2)
        res, _ = posix("write", mnt + "/bkt/mfile.bin", 7, 2 * MiB, timeout=60)
        R.check("full/mount_overwrite_enospc", errname(res) == "ENOSPC",
                "overwrite on a full store: %s" % res, note=res)
        res2, _ = posix("read", mnt + "/bkt/mfile.bin")
        r = get(H, B, "mfile.bin")
        R.check("full/mount_failed_overwrite_keeps_old",
                res2 == "OK %s %d" % (md5(mfile), len(mfile)) and r.status == 200
                and md5(r.body) == md5(mfile),
                "mfile.bin after a failed overwrite: mount %s, S3 %s %d bytes md5 %s "
                "(old md5 %s)" % (res2, r.status, len(r.body), md5(r.body), md5(mfile)))
        res, _ = posix("read", mnt + "/bkt/keep-big")
        R.check("full/mount_read_existing", res == "OK %s %d" % (md5(keep["keep-big"]),
                                                                len(keep["keep-big"])), res)

        p = b.sc(store, "fsck")
        R.check("full/fsck_while_full", p.returncode == 0,
                "exit %d: %s" % (p.returncode, (p.out + p.err).strip()[-300:]))

        reader.stop.set()
        reader.join(30)
        R.check("full/s3d_serves_reads_while_puts_fail", not reader.errors and reader.n > 0
                and reader.slowest < 2.0,
                "%d requests, slowest %.2fs, errors: %s" % (reader.n, reader.slowest,
                                                             reader.errors[:3]),
                note="%d GET/HEAD, slowest %.2fs" % (reader.n, reader.slowest))

        # Recovery: delete what filled the disk (through each door, while the
        # disk is still full), gc, write again.
        refused = []
        if len(stored) >= 3:
            k1, k2, k3 = stored[:3]
            stored = stored[3:]
            r = request(H, "DELETE", "/%s/%s" % (B, k1))
            if not R.check("full/s3_delete_while_full", r.status == 204,
                           "DELETE on a full disk: %r" % r):
                refused.append(k1)
            res, _ = posix("unlink", mnt + "/bkt/" + k2)
            if not R.check("full/mount_unlink_while_full", is_ok(res),
                           "unlink on a full disk: " + res):
                refused.append(k2)
            p = b.sc(store, "rm", B, k3)
            if not R.check("full/storectl_rm_while_full", p.returncode == 0,
                           "storectl rm on a full disk: exit %d: %s" % (p.returncode,
                                                                        p.err.strip())):
                refused.append(k3)
            if refused:
                # what an operator can do then: gc frees the orphans of the
                # refused writes, and that makes room for the deletes
                b.sc(store, "gc")
                stored += refused
        errs = []
        for k in stored:
            r = request(H, "DELETE", "/%s/%s" % (B, k))
            if r.status != 204:
                errs.append("%s: %r" % (k, r))
        posix("unlink", mnt + "/bkt/newfile.bin")
        R.check("full/delete_fill_objects", not errs, errs[:3])
        p = b.sc(store, "gc")
        R.check("full/gc", p.returncode == 0, "exit %d: %s" % (p.returncode, p.err[-300:]),
                note=p.out.strip()[-150:])
        p = b.sc(store, "fsck")
        m = re.search(r"orphan files:\s+(\d+)", p.out)
        staging = files_size(os.path.join(store, "staging"))
        R.check("full/no_stray_chunks_after_gc",
                p.returncode == 0 and m and m.group(1) == "0" and staging == 0,
                "fsck exit %d, orphan files %s, %d bytes in staging"
                % (p.returncode, m.group(1) if m else "?", staging))
        avail1 = statvfs_avail(d)
        # (the catalog's WAL keeps the size it grew to: up to ~4 MiB)
        R.check("full/space_reclaimed", avail1 >= avail0 - 5 * MiB,
                "%d bytes free after delete+gc, %d before filling" % (avail1, avail0),
                note="%d -> %d bytes free" % (avail0, avail1))

        big = data(8, 8 * MiB)
        r = put(H, B, "after-recovery", big)
        r2 = get(H, B, "after-recovery")
        R.check("full/put_after_recovery", r.status == 200 and r2.status == 200
                and md5(r2.body) == md5(big), "PUT %r / GET %r" % (r, r2))
        res, _ = posix("write", mnt + "/bkt/after-recovery.bin", 9, 2 * MiB, timeout=60)
        r = get(H, B, "after-recovery.bin")
        R.check("full/mount_write_after_recovery", is_ok(res) and r.status == 200
                and md5(r.body) == md5(data(9, 2 * MiB)), "%s / GET %r" % (res, r))
        R.run("full/old_objects_intact", existing_identical)
        p = b.sc(store, "fsck")
        R.check("full/fsck_after", p.returncode == 0 and "healthy" in p.out,
                "exit %d: %s" % (p.returncode, (p.out + p.err).strip()[-300:]))
        R.check("full/s3d_alive", srv.alive() and srv.health(), "s3d died: " + srv.logtext()[-300:])
        R.check("full/mount_alive", fs.mounted() and fs.proc.poll() is None,
                "fusefs died: " + fs.logtext()[-300:])
    finally:
        if fs:
            fs.stop()
        if srv:
            srv.stop()
        umount(d)


# =================================================================== read-only
S3_WRITES = [
    # name, method, path, query, body, headers
    ("put_small", "PUT", "/bkt/ro-new-small", (), b"x" * 100, {}),
    ("put_large", "PUT", "/bkt/ro-new-large", (), None, {}),
    ("delete", "DELETE", "/bkt/del-me", (), b"", {}),
    ("create_bucket", "PUT", "/ro-newbucket", (), b"", {}),
    ("delete_bucket", "DELETE", "/emptyb", (), b"", {}),
    ("create_multipart", "POST", "/bkt/ro-mpu", (("uploads", None),), b"", {}),
    ("put_tagging", "PUT", "/bkt/obj", (("tagging", None),),
     b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>", {}),
    ("copy", "PUT", "/bkt/ro-copy", (), b"", {"x-amz-copy-source": "/bkt/obj"}),
]


def s3_snapshot(H):
    return {b_: list_keys(H, b_) for b_ in ("bkt", "emptyb")}


def ro_s3_checks(R, tag, H, objs, writes=True):
    """Reads work and are byte-identical; every write is refused clearly;
    nothing changes."""
    def reads():
        for k, v in objs.items():
            r = get(H, B, k)
            if r.status != 200 or not r.complete or md5(r.body) != md5(v):
                raise Fail("GET %s: %r" % (k, r))
            want(request(H, "HEAD", "/%s/%s" % (B, k)), 200, what="HEAD " + k)
        want(request(H, "GET", "/"), 200, what="ListBuckets")
        want(request(H, "GET", "/" + B), 200, what="ListObjects")
        keys = list_keys(H, B)
        if not set(objs) <= set(keys):
            raise Fail("listing %s lacks %s" % (sorted(keys), sorted(objs)))
    R.run(tag + "/s3_reads", reads)
    if not writes:
        return
    before = s3_snapshot(H)
    seen, bad = [], []
    for name, method, path, query, body, hdrs in S3_WRITES:
        if body is None:
            body = data(11, 2 * MiB)
        r = request(H, method, path, body, headers=hdrs, query=query)
        ok, why = clear_error(r)
        seen.append("%s: %s" % (name, why))
        if not ok:
            bad.append("%s: %s" % (name, why))
    R.check(tag + "/s3_writes_refused_clearly", not bad,
            "%d of %d writes not refused clearly: %s" % (len(bad), len(S3_WRITES), "; ".join(bad)),
            note="; ".join(seen))
    after = s3_snapshot(H)
    R.check(tag + "/s3_store_unchanged", before == after,
            "before %s after %s" % (before, after))


def ro_mount_checks(R, tag, mnt, objs):
    for k, v in objs.items():
        res, _ = posix("read", "%s/bkt/%s" % (mnt, k))
        R.check("%s/mount_read_%s" % (tag, k), res == "OK %s %d" % (md5(v), len(v)), res)
    ops = [("create", ("create", mnt + "/bkt/ro-created")),
           ("write_new", ("write", mnt + "/bkt/ro-new2", 1, 300000)),
           ("overwrite", ("write", mnt + "/bkt/obj", 2, 1000)),
           ("unlink", ("unlink", mnt + "/bkt/del-me")),
           ("mkdir", ("mkdir", mnt + "/bkt/ro-dir")),
           ("rename", ("rename", mnt + "/bkt/obj", mnt + "/bkt/obj2")),
           ("chmod", ("chmod", mnt + "/bkt/obj", "600"))]
    seen, bad = [], []
    for name, args in ops:
        res, _ = posix(*args)
        seen.append("%s: %s" % (name, res))
        if errname(res) not in ("EROFS", "EACCES"):
            bad.append("%s: %s" % (name, res))
    R.check(tag + "/mount_writes_erofs", not bad,
            "want EROFS or EACCES from every write; got %s" % "; ".join(bad),
            note="; ".join(seen))


def sec_readonly(R, b, T):
    objs = {"obj": data(20, 2 * MiB + 5), "del-me": data(21, 700), "small": data(22, 3000)}

    def populate(store):
        b.init_store(store, buckets=("bkt", "emptyb"))
        for k, v in objs.items():
            p = b.sc(store, "put", B, k, "-", input=v)
            if p.returncode:
                raise Fail("storectl put: " + p.err)

    # --- 1. live: ext4 with errors=remount-ro turns read-only under s3d and
    # the mount (what a disk error does to a real server).
    img, d = os.path.join(T, "ro.img"), os.path.join(T, "ro")
    os.makedirs(d)
    with open(img, "wb") as f:
        f.truncate(64 * MiB)
    ok = sh(["mkfs.ext4", "-q", "-F", img]).returncode == 0 and \
        sh(["mount", "-o", "loop,errors=remount-ro", img, d]).returncode == 0
    trigger = None
    if ok:
        dev = sh(["findmnt", "-n", "-o", "SOURCE", d]).stdout.decode().strip()
        trigger = "/sys/fs/ext4/%s/trigger_fs_error" % os.path.basename(dev)
        if not os.path.exists(trigger):
            trigger = None
    if not ok or not trigger:
        R.ok("ro/live", "SKIP no loop-mounted ext4 with trigger_fs_error here")
        umount(d)
    else:
        srv = fs = None
        try:
            store = os.path.join(d, "store")
            populate(store)
            srv = S3d(b, store, os.path.join(T, "s3d-ro.log"))
            fs = Fuse(b, store, os.path.join(T, "mnt-ro"), os.path.join(T, "fusefs-ro.log"))
            if not (srv.up and fs.up):
                raise Fail("s3d up %s, fusefs up %s: %s %s" % (srv.up, fs.up, srv.logtext()[-200:],
                                                                fs.logtext()[-200:]))
            with open(trigger, "w") as f:
                f.write("faults.py: make the store read-only\n")
            try:
                open(os.path.join(d, "probe"), "w").close()
                raise Fail("the filesystem did not turn read-only")
            except OSError:
                pass
            ro_s3_checks(R, "ro/live", srv.host, objs)
            ro_mount_checks(R, "ro/live", fs.mnt, objs)
            R.check("ro/live/s3d_alive", srv.alive() and srv.health(), srv.logtext()[-300:])
            R.check("ro/live/mount_alive", fs.mounted() and fs.proc.poll() is None,
                    fs.logtext()[-300:])
            fs.stop()
            fs = None
            srv.stop()
            srv = None
            # --- 2. cold start on that (dirty) read-only store
            cold_checks(R, b, T, "ro/cold_dirty", store, objs)
        finally:
            if fs:
                fs.stop()
            if srv:
                srv.stop()
            umount(d)

    # --- 3. cold start on a cleanly closed store whose filesystem is ro
    d = os.path.join(T, "roc")
    if not mount_tmpfs(d, "32m"):
        R.fail("ro/cold_clean/setup", "cannot mount a tmpfs")
        return
    try:
        store = os.path.join(d, "store")
        populate(store)
        p = sh(["mount", "-o", "remount,ro", d])
        if p.returncode:
            raise Fail("remount ro: " + p.stderr.decode())
        cold_checks(R, b, T, "ro/cold_clean", store, objs)
    finally:
        umount(d)


def cold_checks(R, b, T, tag, store, objs):
    p = b.sc(store, "ls", B)
    R.check(tag + "/storectl_ls", p.returncode == 0 and "obj" in p.out,
            "exit %d: %s" % (p.returncode, p.err.strip()[-300:]))
    p = b.sc(store, "fsck")
    R.check(tag + "/storectl_fsck", p.returncode == 0,
            "exit %d: %s" % (p.returncode, (p.err or p.out).strip()[-300:]))
    srv = S3d(b, store, os.path.join(T, "s3d-%s.log" % tag.replace("/", "-")))
    try:
        if R.check(tag + "/s3d_starts", srv.up,
                   "s3d does not serve a read-only store: exit %s: %s"
                   % (srv.proc.poll(), srv.logtext().strip()[-300:])):
            ro_s3_checks(R, tag, srv.host, objs)
    finally:
        srv.stop()
    fs = Fuse(b, store, os.path.join(T, "mnt-" + tag.replace("/", "-")),
              os.path.join(T, "fusefs-%s.log" % tag.replace("/", "-")), opts=["-o", "ro"])
    try:
        if R.check(tag + "/fusefs_ro_mounts", fs.up,
                   "fusefs -o ro does not mount a read-only store: exit %s: %s"
                   % (fs.proc.poll(), fs.logtext().strip()[-300:])):
            for k, v in objs.items():
                res, _ = posix("read", "%s/bkt/%s" % (fs.mnt, k))
                R.check("%s/fusefs_ro_read_%s" % (tag, k), res == "OK %s %d" % (md5(v), len(v)),
                        res)
    finally:
        fs.stop()


# =================================================================== corrupt
def classify_get(r, body_md5_want):
    """'error' (an error status), 'aborted' (the body was cut), 'wrong'
    (a complete success with other bytes) or 'correct'."""
    if r.status is None:
        return "aborted"
    if r.status >= 400:
        return "error"
    if not r.complete:
        return "aborted"
    return "correct" if md5(r.body) == body_md5_want else "wrong"


def sec_corrupt(R, b, T):
    store = os.path.join(T, "corrupt", "store")
    b.init_store(store)
    srv = S3d(b, store, os.path.join(T, "s3d-corrupt.log"))
    fs = Fuse(b, store, os.path.join(T, "mnt-corrupt"), os.path.join(T, "fusefs-corrupt.log"))
    try:
        if not (srv.up and fs.up):
            raise Fail("s3d up %s, fusefs up %s" % (srv.up, fs.up))
        H, mnt = srv.host, fs.mnt
        objs = {"victim": data(30, 3 * MiB + 5), "gone": data(31, 2 * MiB + 7),
                "trunc": data(32, 2 * MiB + 9), "other": data(33, 2 * MiB + 3),
                "inline": data(34, 999)}
        for k, v in objs.items():
            want(put(H, B, k, v), 200, what="PUT " + k)
        want(request(H, "PUT", "/bkt/victim-copy", headers={"x-amz-copy-source": "/bkt/victim"}),
             200, what="CopyObject")
        objs["victim-copy"] = objs["victim"]
        # damage: overwrite 16 bytes inside chunk 1 of victim, remove chunk 0
        # of gone, truncate chunk 1 of trunc
        v1 = chunk_file(store, objs["victim"][MiB:2 * MiB])
        g0 = chunk_file(store, objs["gone"][:MiB])
        t1 = chunk_file(store, objs["trunc"][MiB:2 * MiB])
        for f in (v1, g0, t1):
            if not os.path.exists(f):
                raise Fail("chunk file %s not found (layout changed?)" % f)
        with open(v1, "r+b") as f:
            f.seek(4000)
            f.write(b"\xde\xad\xbe\xef" * 4)
        os.unlink(g0)
        os.truncate(t1, 1000)
        damaged = ["victim", "victim-copy", "gone", "trunc"]

        for k in damaged:
            r = get(H, B, k)
            c = classify_get(r, md5(objs[k]))
            R.check("corrupt/s3_get_%s_fails_cleanly" % k, c in ("error", "aborted"),
                    "GET of a damaged object: %s (%r)" % (c, r),
                    note="%s, status %s, %d of %d bytes" % (c, r.status, len(r.body), len(objs[k])))
        r = get(H, B, "victim", headers={"Range": "bytes=%d-%d" % (MiB, MiB + 99)})
        c = classify_get(r, md5(objs["victim"][MiB:MiB + 100]))
        R.check("corrupt/s3_range_get_over_damage_fails", c in ("error", "aborted"),
                "%s (%r)" % (c, r))
        r = get(H, B, "victim", headers={"Range": "bytes=0-%d" % (MiB - 1)})
        R.check("corrupt/s3_range_get_intact_part", r.status == 206 and r.complete and
                md5(r.body) == md5(objs["victim"][:MiB]), "%r" % r)
        try:
            from fcommon import boto3_client
            c3 = boto3_client(srv.endpoint)
            got = None
            try:
                got = c3.get_object(Bucket=B, Key="victim")["Body"].read()
            except Exception as e:  # noqa: BLE001
                got = e
            R.check("corrupt/boto3_get_raises", isinstance(got, Exception),
                    "boto3 read %s bytes without an error"
                    % (len(got) if isinstance(got, bytes) else got),
                    note=type(got).__name__)
        except ImportError:
            R.ok("corrupt/boto3_get_raises", "SKIP no boto3")
        for k in ("other", "inline"):
            r = get(H, B, k)
            R.check("corrupt/s3_get_%s_still_fine" % k, r.status == 200 and r.complete
                    and md5(r.body) == md5(objs[k]), "%r" % r)
        R.check("corrupt/s3d_alive", srv.alive() and srv.health(), srv.logtext()[-300:])
        r = put(H, B, "new-after", data(35, 1500000))
        R.check("corrupt/s3d_still_writes", r.status == 200, "%r" % r)

        for k in damaged:
            res, secs = posix("read", "%s/bkt/%s" % (mnt, k), timeout=30)
            R.check("corrupt/mount_read_%s_eio" % k, errname(res) == "EIO",
                    "want EIO, got " + res, note=res)
        for k in ("other", "inline"):
            res, _ = posix("read", "%s/bkt/%s" % (mnt, k))
            R.check("corrupt/mount_read_%s_fine" % k,
                    res == "OK %s %d" % (md5(objs[k]), len(objs[k])), res)
        R.check("corrupt/mount_alive", fs.mounted() and fs.proc.poll() is None,
                fs.logtext()[-300:])

        dest = os.path.join(T, "corrupt", "get-victim.out")
        p = b.sc(store, "get", B, "victim", dest)
        R.check("corrupt/storectl_get_fails_no_partial_file",
                p.returncode == 1 and not os.path.exists(dest) and
                not glob.glob(dest + "*") and not [f for f in os.listdir(os.path.dirname(dest))
                                                    if f.startswith(".get-victim")],
                "exit %d, files %s" % (p.returncode, os.listdir(os.path.dirname(dest))))

        p = b.sc(store, "fsck")
        nums = {k: int(v) for k, v in re.findall(r"^(chunks corrupt|chunks missing|objects damaged):\s+(\d+)",
                                                 p.out, re.M)}
        R.check("corrupt/fsck_reports_damage",
                p.returncode == 1 and "DAMAGED" in p.out and
                nums.get("chunks corrupt", 0) + nums.get("chunks missing", 0) == 3 and
                nums.get("chunks missing", 0) >= 1 and nums.get("objects damaged") == 4,
                "exit %d, %s: %s" % (p.returncode, nums, p.out.strip()[-300:]), note=str(nums))

        # Uploading the same content again must give a readable object: a
        # 200 to a PUT promises the bytes are stored.
        r = put(H, B, "gone-again", objs["gone"])
        r2 = get(H, B, "gone-again")
        r3 = get(H, B, "gone")
        R.check("corrupt/reupload_after_missing_chunk_readable",
                r.status == 200 and classify_get(r2, md5(objs["gone"])) == "correct",
                "PUT %s, then GET: %s %r" % (r.status, classify_get(r2, md5(objs["gone"])), r2),
                note="and the old object reads %s" % classify_get(r3, md5(objs["gone"])))
        r = put(H, B, "victim-again", objs["victim"])
        r2 = get(H, B, "victim-again")
        R.check("corrupt/reupload_after_corrupt_chunk_readable",
                r.status == 200 and classify_get(r2, md5(objs["victim"])) == "correct",
                "PUT answered %s but GET of the new object is %s (%r): the new object "
                "was deduplicated onto the corrupt chunk file"
                % (r.status, classify_get(r2, md5(objs["victim"])), r2))
        r = put(H, B, "trunc-again", objs["trunc"])
        r2 = get(H, B, "trunc-again")
        R.check("corrupt/reupload_after_truncated_chunk_readable",
                r.status == 200 and classify_get(r2, md5(objs["trunc"])) == "correct",
                "PUT answered %s but GET of the new object is %s (%r)"
                % (r.status, classify_get(r2, md5(objs["trunc"])), r2))
    finally:
        fs.stop()
        srv.stop()


# =================================================================== locked
LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=20)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
print("released", flush=True)
"""


class Bg(threading.Thread):
    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = None
        self.t0 = time.time()
        self.seconds = None

    def run(self):
        try:
            self.result = self.fn()
        except Exception as e:  # noqa: BLE001
            self.result = e
        self.seconds = time.time() - self.t0


def hold_lock(store, seconds):
    p = subprocess.Popen([sys.executable, "-c", LOCKER, os.path.join(store, "catalog.db"),
                          str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    register_pid(p.pid)
    line = p.stdout.readline().strip()
    if line != "locked":
        raise Fail("locker: %s %s" % (line, p.stderr.read()))
    return p


def sec_locked(R, b, T):
    store = os.path.join(T, "locked", "store")
    b.init_store(store, buckets=("bkt", "bkt2"))
    srv = S3d(b, store, os.path.join(T, "s3d-locked.log"))
    fa = Fuse(b, store, os.path.join(T, "mnt-lockA"), os.path.join(T, "fusefs-lockA.log"))
    fb = Fuse(b, store, os.path.join(T, "mnt-lockB"), os.path.join(T, "fusefs-lockB.log"),
              opts=["-o", "busy_timeout=2000"])
    try:
        if not (srv.up and fa.up and fb.up):
            raise Fail("s3d up %s, fusefs up %s %s" % (srv.up, fa.up, fb.up))
        H = srv.host
        big, small = data(40, 2 * MiB + 1), data(41, 500)
        for k, v in (("big", big), ("small", small), ("del-during", b"x")):
            want(put(H, B, k, v), 200, what="PUT " + k)

        def reads_s3(tag):
            slow = []
            for k, v in (("big", big), ("small", small)):
                r = get(H, B, k, timeout=10)
                if r.status != 200 or md5(r.body) != md5(v) or r.seconds > 2:
                    slow.append("GET %s %r %.2fs" % (k, r, r.seconds))
            for method, path, q in (("HEAD", "/bkt/big", ()), ("GET", "/", ()),
                                    ("GET", "/bkt", (("list-type", "2"),))):
                r = request(H, method, path, query=q, timeout=10)
                if r.status != 200 or r.seconds > 2:
                    slow.append("%s %s %r %.2fs" % (method, path, r, r.seconds))
            t0 = time.time()
            p = b.sc(store, "ls", B, timeout=15)
            if p.returncode or time.time() - t0 > 5:
                slow.append("storectl ls exit %d %.2fs" % (p.returncode, time.time() - t0))
            R.check(tag, not slow, "; ".join(slow))

        def reads_mount(tag, d, name, content, what=""):
            slow = []
            res, secs = posix("read", "%s/%s" % (d, name), timeout=10)
            if res != "OK %s %d" % (md5(content), len(content)) or secs > 3:
                slow.append("read %s: %s after %.1fs" % (name, res, secs))
            res, secs = posix("listdir", d, timeout=10)
            if not is_ok(res) or secs > 3:
                slow.append("listdir: %s after %.1fs" % (res, secs))
            R.check(tag, not slow, what + "; ".join(slow))

        other = data(39, 100000)
        want(put(H, "bkt2", "other", other), 200, what="PUT bkt2/other")

        # --- an 8 s hold: writers wait and then succeed
        hold = 8
        locker = hold_lock(store, hold)
        t_locked = time.time()
        jobs = {
            "put_small": Bg(lambda: put(H, B, "during-small", data(42, 100), timeout=60)),
            "put_big": Bg(lambda: put(H, B, "during-big", data(43, 2 * MiB), timeout=60)),
            "delete": Bg(lambda: request(H, "DELETE", "/bkt/del-during", timeout=60)),
            "mountA": Bg(lambda: posix("write", fa.mnt + "/bkt/wA", 44, 300000, timeout=60)),
            "mountB": Bg(lambda: posix("write", fb.mnt + "/bkt/wB", 45, 1000, timeout=40)),
        }
        for j in jobs.values():
            j.start()
        time.sleep(1)
        reads_s3("locked/s3_reads_not_blocked_by_held_lock")
        reads_mount("locked/mount_reads_not_blocked_by_held_lock", fa.mnt + "/bkt2", "other",
                    other)
        reads_mount("locked/mount_same_dir_reads_while_a_create_waits", fa.mnt + "/bkt", "big",
                    big, "a create waiting for the catalog lock in this directory blocks "
                    "it (the kernel holds the directory's lock during FUSE CREATE): ")
        for j in jobs.values():
            j.join(90)
        locker.wait(30)
        r = jobs["put_small"].result
        R.check("locked/put_waits_then_succeeds", getattr(r, "status", None) == 200,
                "%r" % r, note="%.1fs" % (jobs["put_small"].seconds or -1))
        r = jobs["put_big"].result
        R.check("locked/put_big_waits_then_succeeds", getattr(r, "status", None) == 200,
                "%r" % r, note="%.1fs" % (jobs["put_big"].seconds or -1))
        r = jobs["delete"].result
        R.check("locked/delete_waits_then_succeeds", getattr(r, "status", None) == 204 and
                request(H, "HEAD", "/bkt/del-during").status == 404, "%r" % r)
        res, secs = jobs["mountA"].result
        R.check("locked/mount_write_waits_then_succeeds", is_ok(res),
                "%s after %.1fs" % (res, secs), note="%.1fs" % secs)
        res, secs = jobs["mountB"].result
        R.check("locked/mount_busy_timeout_gives_ebusy", errname(res) == "EBUSY" and secs < 15,
                "with -o busy_timeout=2000 and an %d s lock: %s after %.1fs" % (hold, res, secs),
                note="%s after %.1fs" % (res, secs))
        def written():
            for k, v in (("during-small", data(42, 100)), ("during-big", data(43, 2 * MiB)),
                         ("wA", data(44, 300000))):
                r = get(H, B, k)
                if r.status != 200 or md5(r.body) != md5(v):
                    raise Fail("GET %s: %r" % (k, r))
        R.run("locked/waited_writes_stored", written)

        # --- a hold longer than s3d's busy timeout (30 s)
        hold = 34
        locker = hold_lock(store, hold)
        t_locked = time.time()
        jobs = {
            "put": Bg(lambda: put(H, B, "long-small", data(46, 100), timeout=90)),
            "mountA": Bg(lambda: posix("write", fa.mnt + "/bkt/wA2", 47, 1000, timeout=90)),
        }
        for j in jobs.values():
            j.start()
        time.sleep(1)
        reads_s3("locked/s3_reads_not_blocked_by_long_lock")
        reads_mount("locked/mount_reads_not_blocked_by_long_lock", fa.mnt + "/bkt2", "other",
                    other)
        jobs["put"].join(90)
        if time.time() - t_locked < hold - 1:
            reads_s3("locked/s3_reads_fine_after_busy_timeout")
        jobs["mountA"].join(90)
        locker.wait(60)
        r, secs = jobs["put"].result, jobs["put"].seconds or -1
        body = getattr(r, "body", b"").lower()
        R.check("locked/put_past_busy_timeout_503",
                getattr(r, "status", None) == 503 and r.code() in ("SlowDown", "ServiceUnavailable")
                and b"database" not in body and b"sqlite" not in body,
                "%r after %.1fs" % (r, secs), note="%s %s after %.1fs" % (
                    getattr(r, "status", None), r.code() if hasattr(r, "code") else "", secs))
        R.check("locked/refused_put_invisible", request(H, "HEAD", "/bkt/long-small").status == 404,
                "the refused object exists")
        res, secs = jobs["mountA"].result
        R.check("locked/mount_no_hang_past_busy_timeout", res != "HANG" and
                (is_ok(res) or errname(res) == "EBUSY"),
                "%s after %.1fs" % (res, secs), note="%s after %.1fs" % (res, secs))
        r = put(H, B, "after-lock", data(48, 1000), timeout=10)
        R.check("locked/put_after_release", r.status == 200 and r.seconds < 5, "%r" % r)
        res, _ = posix("write", fa.mnt + "/bkt/wA3", 49, 1000, timeout=20)
        R.check("locked/mount_write_after_release", is_ok(res), res)
        res, _ = posix("write", fb.mnt + "/bkt/wB2", 50, 1000, timeout=20)
        R.check("locked/mount_b_write_after_release", is_ok(res), res)
        p = b.sc(store, "fsck")
        R.check("locked/fsck_after", p.returncode == 0, (p.out + p.err).strip()[-300:])
        log = srv.logtext()
        R.check("locked/s3d_alive", srv.alive() and srv.health(), log[-300:])
        R.check("locked/mounts_alive", fa.mounted() and fb.mounted(), "a mount died")
    finally:
        fa.stop()
        fb.stop()
        srv.stop()


# =================================================================== main
def main():
    build, T = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    b = Build(build, T)
    scrub_environment(b.home)
    R = Results()
    sections = {"diskfull": sec_diskfull, "readonly": sec_readonly,
                "corrupt": sec_corrupt, "locked": sec_locked}
    chosen = os.environ.get("FAULT_TESTS", "diskfull readonly corrupt locked").split()
    for name in chosen:
        t0 = time.time()
        R.section(name, sections[name], b, T)
        print("# %s: %.0fs" % (name, time.time() - t0), flush=True)
    sanitizer_scan(R, T)
    R.finish()


if __name__ == "__main__":
    main()
