#!/usr/bin/env python3
"""tests/interop/interop_checks.py -- fusefs and s3d on one store, checked
from both sides with real clients.  Run by run.sh (which creates the store,
starts s3d, the fusefs mount and an s3fs mount, and stops them); it is
started with env -i and reads its settings from INTEROP_* variables:

  INTEROP_ENDPOINT  http://127.0.0.1:PORT of s3d
  INTEROP_ACCESS / INTEROP_SECRET   the store's admin key pair
  INTEROP_BUCKET    the test bucket (exists)
  INTEROP_MNT       fusefs mount of the whole store (the bucket is a dir)
  INTEROP_S3FS      s3fs mount of the bucket through s3d ("" if none)
  INTEROP_WORK      scratch directory
  INTEROP_S3D_LOG / INTEROP_FUSEFS_LOG   the daemons' logs
  INTEROP_LOAD_SECONDS   length of the mixed load (default 20)

Every client program (aws, rclone) gets its own clean environment: HOME
in a temp dir, explicit AWS_* variables, config and credentials files in
that dir.  boto3 gets explicit credentials, and this process's own
environment is scrubbed of AWS_* before boto3 is imported.

Prints "ok NAME" or "FAIL NAME: reason" per check.
"""
import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

E = os.environ
ENDPOINT = E["INTEROP_ENDPOINT"]
ACCESS = E["INTEROP_ACCESS"]
SECRET = E["INTEROP_SECRET"]
BUCKET = E["INTEROP_BUCKET"]
MROOT = E["INTEROP_MNT"]
MNT = os.path.join(MROOT, BUCKET)          # the bucket on our mount
S3FS = E.get("INTEROP_S3FS", "")
WORK = E["INTEROP_WORK"]
S3D_LOG = E["INTEROP_S3D_LOG"]
FUSEFS_LOG = E["INTEROP_FUSEFS_LOG"]
STORE = E["INTEROP_STORE"]
STORECTL = E["INTEROP_STORECTL"]
LOAD_SECONDS = float(E.get("INTEROP_LOAD_SECONDS", "20"))
PYBIN = os.path.dirname(sys.executable)
MIB = 1024 * 1024
RNG = random.Random(20261121)

# Nothing of the machine's AWS configuration may reach boto3.
for _k in list(os.environ):
    if _k.startswith("AWS_") or _k.lower().endswith("_proxy"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.path.join(WORK, "no-aws-config")
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(WORK, "no-aws-credentials")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.umask(0o022)


# ---------------------------------------------------------------- reporting
def out(line):
    print(line, flush=True)


# Checks that fail today because of open bugs named in the notes of the
# fusefs issue: reported as known (and counted as passed) while they fail,
# and as a failure the day they pass, so the list stays true.
KNOWN = set(filter(None, os.environ.get("INTEROP_KNOWN", "").split(",")))


def check(name, fn, *args):
    """Run fn; ok unless it raises."""
    try:
        fn(*args)
        if name in KNOWN:
            out("FAIL %s: passes now: remove it from INTEROP_KNOWN" % name)
            return False
        out("ok %s" % name)
        return True
    except Exception as e:  # noqa: BLE001 - every failure is reported
        tb = traceback.extract_tb(e.__traceback__)
        where = "line %d" % tb[-1].lineno if tb else ""
        reason = ("%s: %s [%s]" % (type(e).__name__, e, where)).replace("\n", " | ")
        if name in KNOWN:
            out("ok %s # known bug: %s" % (name, reason[:400]))
            return True
        out("FAIL %s: %s" % (name, reason[:700]))
        return False


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s%r != %r" % (what + ": " if what else "", got, want))


def md5(b):
    return hashlib.md5(b).hexdigest()


def rand_bytes(n):
    return RNG.randbytes(n)


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def spit(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- clients
def client_home(tag):
    """A clean HOME with aws config and credentials for one client."""
    home = tempfile.mkdtemp(prefix="home-%s-" % tag, dir=WORK)
    cfg = os.path.join(home, "aws-config")
    cred = os.path.join(home, "aws-credentials")
    with open(cfg, "w") as f:
        # Single PUT up to 64 MiB by default; profile "mp" uploads in 8 MiB
        # parts from 8 MiB on.  aws CLI v1 presigns with SigV2 unless told.
        f.write("[default]\nregion = us-east-1\ns3 =\n"
                "    signature_version = s3v4\n"
                "    multipart_threshold = 64MB\n"
                "[profile mp]\nregion = us-east-1\ns3 =\n"
                "    signature_version = s3v4\n"
                "    multipart_threshold = 8MB\n"
                "    multipart_chunksize = 8MB\n")
    with open(cred, "w") as f:
        f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                "[mp]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                % (ACCESS, SECRET, ACCESS, SECRET))
    env = {
        "PATH": PYBIN + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TMPDIR": WORK,
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": cfg,
        "AWS_SHARED_CREDENTIALS_FILE": cred,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return env


AWS_ENV = client_home("aws")
AWS_MP_ENV = dict(AWS_ENV, AWS_PROFILE="mp")
# With a profile selected, the explicit keys still win; the profile's s3
# settings (8 MiB parts) apply.
RCLONE_ENV = dict(client_home("rclone"), **{
    "RCLONE_CONFIG": "/nonexistent/rclone.conf",
    "RCLONE_CONFIG_S3D_TYPE": "s3",
    "RCLONE_CONFIG_S3D_PROVIDER": "Other",
    "RCLONE_CONFIG_S3D_ACCESS_KEY_ID": ACCESS,
    "RCLONE_CONFIG_S3D_SECRET_ACCESS_KEY": SECRET,
    "RCLONE_CONFIG_S3D_ENDPOINT": ENDPOINT,
    "RCLONE_CONFIG_S3D_REGION": "us-east-1",
    "RCLONE_CONFIG_S3D_FORCE_PATH_STYLE": "true",
    "RCLONE_CONFIG_S3D_UPLOAD_CUTOFF": "5M",
    "RCLONE_CONFIG_S3D_CHUNK_SIZE": "5M",
})
PLAIN_ENV = {"PATH": "/usr/bin:/bin", "HOME": WORK, "LANG": "C.UTF-8"}


def run(cmd, env=None, check_rc=True, timeout=120, input=None):
    p = subprocess.run(cmd, env=env or PLAIN_ENV, input=input, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check_rc and p.returncode != 0:
        raise AssertionError("%s -> exit %d: %s %s" % (
            " ".join(cmd[:5]), p.returncode, p.stdout[-300:].decode("utf-8", "replace"),
            p.stderr[-500:].decode("utf-8", "replace")))
    return p


def aws(*args, env=None, check_rc=True, timeout=120):
    return run(["aws", "--endpoint-url", ENDPOINT] + list(args), env=env or AWS_ENV,
               check_rc=check_rc, timeout=timeout)


def aws_json(*args, **kw):
    p = aws(*args, "--output", "json", **kw)
    txt = p.stdout.decode()
    return json.loads(txt) if txt.strip() else {}


def head(key):
    return aws_json("s3api", "head-object", "--bucket", BUCKET, "--key", key)


def list_keys(prefix):
    """Every key under prefix, via aws s3api list-objects-v2."""
    r = aws_json("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", prefix)
    return sorted(c["Key"] for c in r.get("Contents", []))


def rclone(*args, check_rc=True, timeout=120):
    return run(["rclone", "-q"] + list(args), env=RCLONE_ENV, check_rc=check_rc,
               timeout=timeout)


_S3 = None


def s3():
    """A boto3 client for s3d, isolated from the machine's environment."""
    global _S3
    if _S3 is None:
        import boto3
        from botocore.config import Config
        sess = boto3.session.Session(aws_access_key_id=ACCESS,
                                     aws_secret_access_key=SECRET,
                                     region_name="us-east-1")
        _S3 = sess.client("s3", endpoint_url=ENDPOINT, config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 1},
            max_pool_connections=20))
    return _S3


def s3_get(key):
    return s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def s3_put(key, data, **kw):
    return s3().put_object(Bucket=BUCKET, Key=key, Body=data, **kw)


def etag(h):
    return h["ETag"].strip('"')


def ctype(h):
    return h.get("ContentType", "").split(";")[0].strip()


def local(name, data):
    p = os.path.join(WORK, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    spit(p, data)
    return p


def wait_until(fn, seconds, step=0.02):
    """Poll fn() until true; returns the seconds it took, or None."""
    t0 = time.monotonic()
    while True:
        if fn():
            return time.monotonic() - t0
        if time.monotonic() - t0 > seconds:
            return None
        time.sleep(step)


def gone(path):
    try:
        os.stat(path)
        return False
    except FileNotFoundError:
        return True


def expect_enoent_open(path):
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        return
    raise AssertionError("open(%s) succeeded after the object was deleted" % path)


# ================================================================ aws -> mount
A2M = "a2m"
SMALL = rand_bytes(1234)
BIG = rand_bytes(20 * MIB)
MPART = rand_bytes(20 * MIB + 123)


def aws_cp_small():
    aws("s3", "cp", local("small.bin", SMALL), "s3://%s/%s/small.bin" % (BUCKET, A2M))
    p = os.path.join(MNT, A2M, "small.bin")
    eq(os.stat(p).st_size, len(SMALL), "size on the mount")
    expect(slurp(p) == SMALL, "bytes differ on the mount")


def aws_cp_20mib():
    aws("s3", "cp", local("big.bin", BIG), "s3://%s/%s/big.bin" % (BUCKET, A2M))
    p = os.path.join(MNT, A2M, "big.bin")
    eq(os.stat(p).st_size, len(BIG), "size on the mount")
    expect(slurp(p) == BIG, "bytes differ on the mount")
    h = head(A2M + "/big.bin")
    eq(etag(h), md5(BIG), "ETag of a single-PUT object")


def aws_cp_multipart():
    aws("s3", "cp", local("mpart.bin", MPART), "s3://%s/%s/mpart.bin" % (BUCKET, A2M),
        env=AWS_MP_ENV)
    h = head(A2M + "/mpart.bin")
    expect(etag(h).endswith("-3"), "not uploaded in 3 parts of 8 MiB: ETag %s" % etag(h))
    p = os.path.join(MNT, A2M, "mpart.bin")
    eq(os.stat(p).st_size, len(MPART), "size on the mount")
    expect(slurp(p) == MPART, "bytes differ on the mount")


def aws_nested():
    data = rand_bytes(5000)
    aws("s3", "cp", local("deep.bin", data), "s3://%s/%s/n1/n2/n3/deep.bin" % (BUCKET, A2M))
    d = os.path.join(MNT, A2M)
    for part in ("n1", "n2", "n3"):
        d = os.path.join(d, part)
        expect(os.path.isdir(d), "%s is not a directory on the mount" % d)
    eq(os.listdir(d), ["deep.bin"])
    expect(slurp(os.path.join(d, "deep.bin")) == data, "bytes differ")


NAMES = ["with space/file name.txt", "ünïcödé/日本語 ファイル.bin", "emoji 😀/ß é.dat",
         "punct/a+b%20c#d?e&f=g;h'i\"j<k>.txt"]


def aws_names():
    for i, name in enumerate(NAMES):
        data = ("%d:%s\n" % (i, name)).encode() * 100
        aws("s3", "cp", local("name%d" % i, data), "s3://%s/%s/names/%s" % (BUCKET, A2M, name))
        p = os.path.join(MNT, A2M, "names", name)
        expect(slurp(p) == data, "bytes differ for %r" % name)
        d, base = os.path.split(name)
        expect(base in os.listdir(os.path.join(MNT, A2M, "names", d)),
               "%r not listed" % base)
    eq(sorted(os.listdir(os.path.join(MNT, A2M, "names"))),
       sorted(n.split("/")[0] for n in NAMES), "top names")


def aws_rm():
    p = os.path.join(MNT, A2M, "small.bin")
    expect(os.path.exists(p), "small.bin is not there before rm")
    aws("s3", "rm", "s3://%s/%s/small.bin" % (BUCKET, A2M))
    expect_enoent_open(p)
    expect("small.bin" not in os.listdir(os.path.join(MNT, A2M)), "still listed")
    took = wait_until(lambda: gone(p), 1.5)
    expect(took is not None, "stat still finds it 1.5 s after aws s3 rm")
    # A whole prefix, recursively: the implicit directories go too.
    aws("s3", "rm", "--recursive", "s3://%s/%s/n1/" % (BUCKET, A2M))
    took = wait_until(lambda: gone(os.path.join(MNT, A2M, "n1")), 1.5)
    expect(took is not None, "directory n1 still there 1.5 s after aws s3 rm --recursive")


def aws_posix_meta():
    data = b"#!/bin/sh\necho meta\n"
    aws("s3api", "put-object", "--bucket", BUCKET, "--key", A2M + "/meta.sh",
        "--body", local("meta.sh", data),
        "--metadata", "mode=%d,uid=1234,gid=2345,mtime=1600000000" % (stat.S_IFREG | 0o751))
    st = os.stat(os.path.join(MNT, A2M, "meta.sh"))
    eq(oct(st.st_mode), oct(stat.S_IFREG | 0o751), "mode")
    eq((st.st_uid, st.st_gid), (1234, 2345), "uid/gid")
    eq(int(st.st_mtime), 1600000000, "mtime")
    eq(st.st_size, len(data), "size")


def aws_meta_to_xattr():
    aws("s3api", "put-object", "--bucket", BUCKET, "--key", A2M + "/xattr.txt",
        "--body", local("xattr.txt", b"x"), "--metadata", "flavour=mint,batch=42")
    p = os.path.join(MNT, A2M, "xattr.txt")
    eq(sorted(os.listxattr(p)), ["user.batch", "user.flavour"], "listxattr")
    eq(os.getxattr(p, "user.flavour"), b"mint", "getxattr")


def aws_mb_bucket():
    aws("s3", "mb", "s3://interop-mb")
    expect(os.path.isdir(os.path.join(MROOT, "interop-mb")), "bucket is no directory on the mount")
    os.mkdir(os.path.join(MROOT, "interop-mkdir"))
    ls = aws("s3", "ls").stdout.decode()
    expect("interop-mkdir" in ls, "bucket made by mkdir not listed: " + ls)
    aws("s3", "rb", "s3://interop-mkdir")
    os.rmdir(os.path.join(MROOT, "interop-mb"))
    ls = aws("s3", "ls").stdout.decode()
    expect("interop-mb" not in ls, "bucket removed by rmdir still listed")


# ================================================================ mount -> aws
M2A = "m2a"


def mount_cp_txt():
    data = b"plain text from the mount\n" * 50
    src = local("cp-src.txt", data)
    os.makedirs(os.path.join(MNT, M2A), exist_ok=True)
    run(["cp", src, os.path.join(MNT, M2A, "copied.txt")])
    h = head(M2A + "/copied.txt")
    eq(h["ContentLength"], len(data), "ContentLength")
    eq(etag(h), md5(data), "ETag")
    eq(ctype(h), "text/plain", "Content-Type")
    # touch: an empty object at once
    run(["touch", os.path.join(MNT, M2A, "empty.txt")])
    h = head(M2A + "/empty.txt")
    eq((h["ContentLength"], etag(h)), (0, md5(b"")), "empty file")


def mount_dd_json():
    data = json.dumps({"k": list(range(2000))}).encode()
    src = local("dd-src", data)
    run(["dd", "if=" + src, "of=" + os.path.join(MNT, M2A, "data.json"), "bs=4k",
         "status=none"])
    h = head(M2A + "/data.json")
    eq(h["ContentLength"], len(data), "ContentLength")
    eq(etag(h), md5(data), "ETag")
    eq(ctype(h), "application/json", "Content-Type")


BIGW = rand_bytes(20 * MIB + 7)


def mount_dd_big():
    src = local("bigw", BIGW)
    run(["dd", "if=" + src, "of=" + os.path.join(MNT, M2A, "bigw.bin"), "bs=1M",
         "status=none"])
    h = head(M2A + "/bigw.bin")
    eq(h["ContentLength"], len(BIGW), "ContentLength")
    eq(etag(h), md5(BIGW), "ETag")
    expect(s3_get(M2A + "/bigw.bin") == BIGW, "GET bytes differ")


def mount_pwrite():
    p = os.path.join(MNT, M2A, "bigw.bin")
    before = etag(head(M2A + "/bigw.bin"))
    data = bytearray(BIGW)
    fd = os.open(p, os.O_RDWR)
    try:
        for off in (0, 5 * MIB + 4095, 13 * MIB + 1, len(data) - 100):
            patch = rand_bytes(4096)
            os.pwrite(fd, patch, off)
            end = off + len(patch)
            if end > len(data):
                data.extend(b"\0" * (end - len(data)))
            data[off:end] = patch
    finally:
        os.close(fd)
    data = bytes(data)
    h = head(M2A + "/bigw.bin")
    expect(etag(h) != before, "ETag unchanged after in-place writes")
    eq(h["ContentLength"], len(data), "ContentLength")
    eq(etag(h), md5(data), "ETag after in-place writes")
    expect(s3_get(M2A + "/bigw.bin") == data, "GET bytes differ after in-place writes")


def mount_truncate():
    p = os.path.join(MNT, M2A, "trunc.bin")
    data = rand_bytes(300000)
    spit(p, data)
    os.truncate(p, 1000)                    # truncate(path) commits at once
    h = head(M2A + "/trunc.bin")
    eq((h["ContentLength"], etag(h)), (1000, md5(data[:1000])), "after truncate(path)")
    fd = os.open(p, os.O_RDWR)
    try:
        os.ftruncate(fd, 5000)              # a hole, committed at close
    finally:
        os.close(fd)
    h = head(M2A + "/trunc.bin")
    want = data[:1000] + b"\0" * 4000
    eq((h["ContentLength"], etag(h)), (5000, md5(want)), "after ftruncate up + close")


def mount_xattr_to_meta():
    p = os.path.join(MNT, M2A, "renamed.txt")
    os.setxattr(p, "user.color", b"blue")
    md = head(M2A + "/renamed.txt").get("Metadata", {})
    eq(md.get("color"), "blue", "x-amz-meta-color")
    os.removexattr(p, "user.color")
    md = head(M2A + "/renamed.txt").get("Metadata", {})
    expect("color" not in md, "x-amz-meta-color still there: %r" % md)


def mount_attrs():
    p = os.path.join(MNT, M2A, "copied.txt")
    run(["chmod", "640", p])
    run(["chown", "1001:1002", p])
    run(["touch", "-d", "2019-03-08 05:06:07 UTC", p])
    md = head(M2A + "/copied.txt").get("Metadata", {})
    eq(md.get("mode"), str(stat.S_IFREG | 0o640), "mode metadata")
    eq((md.get("uid"), md.get("gid")), ("1001", "1002"), "uid/gid metadata")
    expect("mtime" in md, "no mtime metadata: %r" % md)
    eq(int(float(md["mtime"])), 1552021567, "mtime metadata")
    # The same through a directory: its marker holds them.
    d = os.path.join(MNT, M2A, "attrdir")
    os.mkdir(d)
    run(["chmod", "710", d])
    run(["touch", "-d", "2018-01-01 00:00:00 UTC", d])
    md = head(M2A + "/attrdir/").get("Metadata", {})
    eq(md.get("mode"), str(stat.S_IFDIR | 0o710), "directory mode metadata")
    eq(int(float(md.get("mtime", "0"))), 1514764800, "directory mtime metadata")


def mount_mkdir():
    os.mkdir(os.path.join(MNT, M2A, "newdir"))
    run(["mkdir", "-p", os.path.join(MNT, M2A, "p1", "p2", "p3")])
    r = aws_json("s3api", "list-objects", "--bucket", BUCKET, "--prefix", M2A + "/")
    keys = [c["Key"] for c in r.get("Contents", [])]     # ListObjects (v1)
    for k in ("newdir/", "p1/", "p1/p2/", "p1/p2/p3/"):
        expect(M2A + "/" + k in keys, "marker %s missing: %r" % (k, keys))
    h = head(M2A + "/newdir/")
    eq(h["ContentLength"], 0, "marker size")


def mount_rename_file():
    before = head(M2A + "/copied.txt")
    run(["mv", os.path.join(MNT, M2A, "copied.txt"), os.path.join(MNT, M2A, "renamed.txt")])
    keys = list_keys(M2A + "/")
    expect(M2A + "/copied.txt" not in keys, "old key still listed")
    expect(M2A + "/renamed.txt" in keys, "new key not listed")
    eq(etag(head(M2A + "/renamed.txt")), etag(before), "ETag after rename")
    # a Content-Type guessed from the old name is guessed again
    spit(os.path.join(MNT, M2A, "guess.txt"), b'{"a": 1}')
    os.rename(os.path.join(MNT, M2A, "guess.txt"), os.path.join(MNT, M2A, "guess.json"))
    eq(ctype(head(M2A + "/guess.json")), "application/json", "Content-Type after rename")


def mount_rename_dir():
    base = os.path.join(MNT, M2A, "dirA")
    files = {"x.txt": b"x" * 10, "sub/y.bin": rand_bytes(70000), "sub/deeper/z": b"z"}
    for rel, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(base, rel)), exist_ok=True)
        spit(os.path.join(base, rel), data)
    os.mkdir(os.path.join(base, "emptydir"))
    old = [k for k in list_keys(M2A + "/dirA/")]
    expect(M2A + "/dirA/emptydir/" in old, "no marker for emptydir: %r" % old)
    run(["mv", base, os.path.join(MNT, M2A, "dirB")])
    after_a = list_keys(M2A + "/dirA")
    eq(after_a, [], "keys left under dirA")
    new = list_keys(M2A + "/dirB/")
    want = sorted(k.replace("/dirA/", "/dirB/", 1) for k in old)
    eq(new, want, "keys under dirB")
    for rel, data in files.items():
        expect(s3_get(M2A + "/dirB/" + rel) == data, "content of dirB/%s" % rel)


# ================================================================ s3fs <-> mount
def need_s3fs():
    expect(S3FS and os.path.ismount(S3FS), "no s3fs mount (see s3fs_mount)")


def s3fs_to_mount():
    need_s3fs()
    base = os.path.join(S3FS, "s3fsw")
    os.makedirs(os.path.join(base, "d1", "d2"))
    files = {"a.txt": b"from s3fs\n", "d1/b.bin": rand_bytes(3 * MIB + 17),
             "d1/d2/c.bin": rand_bytes(100)}
    for rel, data in files.items():
        spit(os.path.join(base, rel), data)
    os.chmod(os.path.join(base, "a.txt"), 0o600)
    os.chmod(os.path.join(base, "d1"), 0o750)
    os.mkdir(os.path.join(base, "empty"))
    os.symlink("d1/b.bin", os.path.join(base, "link"))
    ours = os.path.join(MNT, "s3fsw")
    for rel, data in files.items():
        p = os.path.join(ours, rel)
        eq(os.stat(p).st_size, len(data), "size of " + rel)
        expect(slurp(p) == data, "bytes of " + rel)
    for d in ("d1", "d1/d2", "empty"):
        expect(os.path.isdir(os.path.join(ours, d)), d + " is no directory on our mount")
    eq(sorted(os.listdir(ours)), ["a.txt", "d1", "empty", "link"], "listing")
    expect(os.path.islink(os.path.join(ours, "link")), "s3fs symlink is no symlink here")
    eq(os.readlink(os.path.join(ours, "link")), "d1/b.bin", "readlink")
    expect(slurp(os.path.join(ours, "link")) == files["d1/b.bin"], "read through the link")
    eq(oct(stat.S_IMODE(os.stat(os.path.join(ours, "a.txt")).st_mode)), oct(0o600), "a.txt mode")
    st = os.stat(os.path.join(ours, "d1"))
    expect(stat.S_ISDIR(st.st_mode), "d1 mode has no S_IFDIR")
    eq(oct(stat.S_IMODE(st.st_mode)), oct(0o750), "d1 mode")


def mount_to_s3fs():
    need_s3fs()
    base = os.path.join(MNT, "ours")
    os.makedirs(os.path.join(base, "d1"))
    f1 = rand_bytes(2 * MIB + 5)
    f2 = b"second\n"
    spit(os.path.join(base, "f1.bin"), f1)
    spit(os.path.join(base, "d1", "f2.txt"), f2)
    os.chmod(os.path.join(base, "f1.bin"), 0o751)
    os.chown(os.path.join(base, "f1.bin"), 1234, 2345)
    os.chmod(os.path.join(base, "d1"), 0o700)
    os.mkdir(os.path.join(base, "empty"))
    os.symlink("f1.bin", os.path.join(base, "lnk"))
    ls = run(["ls", "-ln", "--time-style=+%s", os.path.join(S3FS, "ours")]).stdout.decode()
    rows = {}
    for line in ls.splitlines()[1:]:
        f = line.split(None, 6)
        if len(f) == 7:
            rows[f[6]] = (f[0], f[2], f[3], int(f[4]))
    eq(sorted(rows), ["d1", "empty", "f1.bin", "lnk -> f1.bin"], "s3fs ls -l names")
    eq(os.readlink(os.path.join(S3FS, "ours", "lnk")), "f1.bin", "readlink via s3fs")
    eq(rows["f1.bin"], ("-rwxr-x--x", "1234", "2345", len(f1)), "f1.bin via s3fs ls -l")
    eq(rows["d1"][0], "drwx------", "d1 via s3fs ls -l")
    expect(rows["empty"][0].startswith("d"), "empty is no directory via s3fs")
    ls = run(["ls", "-ln", os.path.join(S3FS, "ours", "d1")]).stdout.decode()
    expect(re.search(r"^-rw-r--r-- .* %d .* f2\.txt$" % len(f2), ls, re.M),
           "d1/f2.txt via s3fs ls -l: " + ls)
    expect(slurp(os.path.join(S3FS, "ours", "f1.bin")) == f1, "f1.bin bytes via s3fs")
    expect(slurp(os.path.join(S3FS, "ours", "d1", "f2.txt")) == f2, "f2.txt bytes via s3fs")


# ================================================================ rclone <-> mount
def rclone_to_mount():
    src = os.path.join(WORK, "rclone-src")
    files = {"r1.txt": b"rclone one\n", "dir/r2.bin": rand_bytes(300000),
             "dir/sub/r3.bin": rand_bytes(6 * MIB + 1)}   # multipart (5M parts)
    mt = {}
    for i, (rel, data) in enumerate(files.items()):
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        spit(p, data)
        mt[rel] = 1500000000_000000000 + i * 1000_000_000 + 123456789
        os.utime(p, ns=(mt[rel], mt[rel]))
    rclone("copy", src, "s3d:%s/rcl" % BUCKET)
    ours = os.path.join(MNT, "rcl")
    for rel, data in files.items():
        p = os.path.join(ours, rel)
        st = os.stat(p)
        eq(st.st_size, len(data), "size of " + rel)
        expect(slurp(p) == data, "bytes of " + rel)
        expect(abs(st.st_mtime_ns - mt[rel]) < 1000,
               "mtime of %s: %d, rclone set %d" % (rel, st.st_mtime_ns, mt[rel]))
    expect(os.path.isdir(os.path.join(ours, "dir", "sub")), "dir/sub is no directory")
    rclone("check", src, ours)


def mount_to_rclone():
    base = os.path.join(MNT, "ours2")
    files = {"a.txt": b"mount file a\n", "d/b.bin": rand_bytes(1 * MIB + 3),
             "d/e/c.json": b'{"c": 3}'}
    for rel, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(base, rel)), exist_ok=True)
        spit(os.path.join(base, rel), data)
    os.utime(os.path.join(base, "a.txt"), ns=(1400000000_500000000, 1400000000_500000000))
    lsl = rclone("lsl", "s3d:%s/ours2" % BUCKET).stdout.decode()
    got = {}
    for line in lsl.splitlines():
        f = line.split(None, 3)
        got[f[3]] = (int(f[0]), f[1] + " " + f[2])
    eq(sorted(got), sorted(files), "rclone lsl names")
    for rel, data in files.items():
        st = os.stat(os.path.join(base, rel))
        eq(got[rel][0], len(data), "rclone size of " + rel)
        want = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(st.st_mtime_ns // 10**9))
        want += ".%09d" % (st.st_mtime_ns % 10**9)
        # rclone keeps its mtime as float seconds: compare to the microsecond
        expect(got[rel][1][:26] == want[:26], "rclone mtime of %s: %s, mount %s"
               % (rel, got[rel][1], want))
    sums = rclone("md5sum", "s3d:%s/ours2" % BUCKET).stdout.decode()
    got = dict(reversed(line.split(None, 1)) for line in sums.splitlines())
    eq(got, {rel: md5(data) for rel, data in files.items()}, "rclone md5sum")
    rclone("check", base, "s3d:%s/ours2" % BUCKET)
    rclone("check", "--download", base, "s3d:%s/ours2" % BUCKET)


# ================================================================ coherence
def coherence_next_open():
    key = "coh/next-open.bin"
    p = os.path.join(MNT, key)
    for size in (100000, 100000, 3 * MIB, 777):   # same size first: pages, not size
        old = rand_bytes(size)
        s3_put(key, old)
        expect(slurp(p) == old, "first version not read (size %d)" % size)
        new = rand_bytes(size if size != 777 else 4000)
        s3_put(key, new)
        got = slurp(p)
        expect(got == new, "next open read %s (size %d)" % (
            "the old content" if got == old else "%d other bytes" % len(got), size))


def coherence_open_then_put():
    """A handle opened before an S3 PUT and read after it reads one whole
    version: the old or the new, not the new bytes cut to the old size."""
    key = "coh/open-put.bin"
    p = os.path.join(MNT, key)
    bad = []
    for rnd in range(3):
        old, new = b"1" * 1000, b"2" * 5000
        s3_put(key, old)
        wait_until(lambda: os.stat(p).st_size == len(old), 3)
        fd = os.open(p, os.O_RDONLY)
        try:
            s3_put(key, new)
            got = os.read(fd, 100000)
        finally:
            os.close(fd)
        if got not in (old, new):
            bad.append("round %d: read %d bytes of %r (old: 1000 x '1', new: 5000 x '2')"
                       % (rnd, len(got), bytes(sorted(set(got)))))
    expect(not bad, "; ".join(bad))


def get_survives_overwrite():
    """An S3 GET that has begun returns the whole version it began with,
    even if the mount replaces the object meanwhile.  The object has more
    than 1024 extents (1100 MiB of zeros: one 1 MiB chunk, deduplicated),
    so s3d's reader must look up its second window of extents after the
    overwrite."""
    key = "huge/zeros.bin"
    size = 1100 * MIB
    sparse = os.path.join(WORK, "sparse.bin")
    with open(sparse, "wb") as f:
        f.truncate(size)
    try:
        run([STORECTL, "--store", STORE, "put", BUCKET, key, sparse], timeout=120)
    finally:
        os.unlink(sparse)
    try:
        r = s3().get_object(Bucket=BUCKET, Key=key)
        eq(r["ContentLength"], size, "ContentLength")
        body = r["Body"]
        got = len(body.read(8 * MIB))
        with open(os.path.join(MNT, key), "wb") as f:     # the mount replaces it
            f.write(b"replaced by the mount")
        err = None
        nonzero = False
        try:
            for _ in range(1000):
                b = body.read(8 * MIB)
                if not b:
                    break
                got += len(b)
                nonzero = nonzero or bool(b.strip(b"\0"))
        except Exception as e:  # noqa: BLE001
            err = e
        expect(err is None and got == size,
               "the GET broke off after %d of %d bytes (%s)" % (got, size, err))
        expect(not nonzero, "the GET returned bytes of the new version")
    finally:
        s3().delete_object(Bucket=BUCKET, Key=key)


def coherence_attr_staleness():
    key = "coh/attr.bin"
    p = os.path.join(MNT, key)
    worst = 0.0
    for i in range(4):
        s3_put(key, b"a" * (1000 + i))
        wait_until(lambda: os.stat(p).st_size == 1000 + i, 3)
        os.stat(p)                       # cached now
        if i % 2:
            slurp(p)                     # and pages too
        s3_put(key, b"b" * (5000 + i))
        took = wait_until(lambda: os.stat(p).st_size == 5000 + i, 1.5, step=0.01)
        expect(took is not None, "stat still shows the old size 1.5 s after the PUT (round %d)" % i)
        worst = max(worst, took)
    out("# attribute staleness after an S3 PUT: worst %.3f s" % worst)


def coherence_two_writers_ordered():
    """Mount writes between open and close while S3 PUTs: the later commit wins."""
    key = "coh/two.bin"
    p = os.path.join(MNT, key)
    for rnd in range(3):
        A = rand_bytes(2 * MIB + rnd)
        B = rand_bytes(1 * MIB + 11 * rnd)
        s3_put(key, b"v0" * 1000)
        with open(p, "wb") as f:            # O_TRUNC
            f.write(A[:MIB])
            s3_put(key, B)                  # commits while the mount has A pending
            f.write(A[MIB:])
        # the mount committed last
        got_m, got_s = slurp(p), s3_get(key)
        expect(got_s == A, "round %d: S3 has %s, expected the mount's content (last commit)"
               % (rnd, "B" if got_s == B else "%d mixed bytes" % len(got_s)))
        expect(got_m == got_s, "round %d: mount and S3 disagree" % rnd)
        # and now S3 commits last
        s3_put(key, B)
        expect(slurp(p) == B, "round %d: mount does not read the S3 PUT after its own commit" % rnd)


def coherence_two_writers_edit():
    """An in-place edit on the mount races an S3 PUT: the result is the
    mount's whole view (old + patch) or S3's, never S3's body patched."""
    key = "coh/edit.bin"
    p = os.path.join(MNT, key)
    v0 = rand_bytes(3 * MIB)
    s3_put(key, v0)
    patch = b"P" * 4096
    fd = os.open(p, os.O_RDWR)
    try:
        os.pwrite(fd, patch, MIB)
        B = rand_bytes(3 * MIB)
        s3_put(key, B)
        view = os.pread(fd, 3 * MIB + 10, 0)   # what this writer sees
    finally:
        os.close(fd)
    mine = v0[:MIB] + patch + v0[MIB + 4096:]
    got = s3_get(key)
    mixed = B[:MIB] + patch + B[MIB + 4096:]
    expect(view == mine, "the open writer's own view changed under it")
    expect(got != mixed, "S3's body with the mount's patch applied (mixed)")
    expect(got in (mine, B), "neither version (%d bytes)" % len(got))
    expect(got == mine, "the mount committed last but S3 still has S3's body")
    expect(slurp(p) == got, "mount and S3 disagree")


def runs(b):
    """b as runs: b"aab" -> "2 x 'a', 1 x 'b'"."""
    out, i = [], 0
    while i < len(b) and len(out) < 6:
        j = i
        while j < len(b) and b[j] == b[i]:
            j += 1
        out.append("%d x %r" % (j - i, chr(b[i])))
        i = j
    return ", ".join(out) or "empty"


def coherence_two_writers_create():
    """A file created on the mount (the empty object is committed at once),
    then an S3 PUT of the same key, then the mount writes and closes: the
    mount committed last, so its file (only what it wrote) wins; S3's body
    with the mount's bytes over its start is neither version."""
    key = "coh/create.bin"
    p = os.path.join(MNT, key)
    bad = []
    for rnd in range(2):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        mine, theirs = b"m" * 1000, b"b" * 200000
        with open(p, "wb") as f:              # O_CREAT|O_TRUNC: a new file
            s3_put(key, theirs)
            f.write(mine)
        got = s3_get(key)
        if got != mine:
            bad.append("round %d: S3 has %s (mount wrote %s; S3 PUT %s)"
                       % (rnd, runs(got), runs(mine), runs(theirs)))
    expect(not bad, "; ".join(bad))


def coherence_two_writers_read_then_edit():
    """A handle reads the file, an S3 PUT replaces it, the handle writes a
    patch and closes: the result is the version the handle read plus its
    patch, or S3's version; not S3's version with the patch applied."""
    key = "coh/read-edit.bin"
    p = os.path.join(MNT, key)
    v0, theirs, patch = b"o" * 100000, b"b" * 200000, b"m" * 1000
    s3_put(key, v0)
    wait_until(lambda: os.stat(p).st_size == len(v0), 3)
    fd = os.open(p, os.O_RDWR)
    try:
        seen = os.pread(fd, 300000, 0)
        s3_put(key, theirs)
        os.pwrite(fd, patch, 5000)
        view = os.pread(fd, 300000, 0)
    finally:
        os.close(fd)
    got = s3_get(key)
    mine = seen[:5000] + patch + seen[6000:]
    expect(seen == v0, "the handle did not read the first version: %s" % runs(seen))
    expect(got in (mine, theirs),
           "S3 has %s: neither the handle's file with its patch (%s) nor S3's PUT (%s); "
           "the handle saw %s after its pwrite" % (runs(got), runs(mine), runs(theirs), runs(view)))


def coherence_open_rw_without_write_commits_nothing():
    """open(O_RDWR) + read + close, with no write, leaves the object alone:
    same ETag and Last-Modified over S3 (no empty commit)."""
    key = "coh/rw-nowrite.bin"
    p = os.path.join(MNT, key)
    s3_put(key, b"x" * 70000)
    wait_until(lambda: os.path.exists(p), 3)
    before = head(key)
    time.sleep(1.1)                       # Last-Modified has 1 s resolution
    fd = os.open(p, os.O_RDWR)
    try:
        eq(os.pread(fd, 100, 0), b"x" * 100, "read through the writable handle")
    finally:
        os.close(fd)
    after = head(key)
    eq(etag(after), etag(before), "ETag")
    eq(after["LastModified"], before["LastModified"], "Last-Modified")


def coherence_write_fsync_put_write():
    """write, fsync, S3 PUT, write more, close: the handle goes on editing
    the version its fsync committed, so the result is that version plus the
    later write (the mount commits last), never S3's body patched."""
    key = "coh/fsync-edit.bin"
    p = os.path.join(MNT, key)
    A, B, more = b"a" * 50000, b"b" * 90000, b"m" * 1000
    s3_put(key, b"v0")
    fd = os.open(p, os.O_RDWR | os.O_TRUNC)
    try:
        os.pwrite(fd, A, 0)
        os.fsync(fd)
        expect(s3_get(key) == A, "fsync did not commit the handle's bytes")
        s3_put(key, B)
        os.pwrite(fd, more, 10000)
    finally:
        os.close(fd)
    got = s3_get(key)
    mine = A[:10000] + more + A[11000:]
    expect(got != B[:10000] + more + B[11000:], "S3's body with the mount's patch (mixed)")
    expect(got == mine, "S3 has %s, expected the handle's version + patch" % runs(got))


def coherence_two_writers_race():
    """Both sides write the whole object at random times: exactly one wins."""
    key = "coh/race.bin"
    p = os.path.join(MNT, key)
    bad = []
    for rnd in range(8):
        # either may be the longer: a mix would show
        A = b"A%02d" % rnd + rand_bytes(RNG.randrange(64 * 1024, 2 * MIB))
        B = b"B%02d" % rnd + rand_bytes(RNG.randrange(64 * 1024, 2 * MIB))
        s3_put(key, b"v0")       # exists: the mount's open truncates, not creates
        delay_a, delay_b = RNG.random() * 0.05, RNG.random() * 0.05
        errs = []

        def wa():
            try:
                time.sleep(delay_a)
                with open(p, "wb") as f:
                    for i in range(0, len(A), 65536):
                        f.write(A[i:i + 65536])
            except Exception as e:  # noqa: BLE001
                errs.append("mount: %r" % e)

        def wb():
            try:
                time.sleep(delay_b)
                s3_put(key, B)
            except Exception as e:  # noqa: BLE001
                errs.append("s3: %r" % e)
        ts = [threading.Thread(target=wa), threading.Thread(target=wb)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        got = s3_get(key)
        if errs:
            bad.append("round %d: %s" % (rnd, errs))
        if got not in (A, B):
            bad.append("round %d: S3 has %d bytes that are neither version (starts %r)"
                       % (rnd, len(got), got[:3]))
        m = slurp(p)
        if m != got:
            bad.append("round %d: mount reads %d bytes (%r), S3 %d (%r)"
                       % (rnd, len(m), m[:3], len(got), got[:3]))
    expect(not bad, "; ".join(bad))


# ================================================================ mixed load
def payload(tag, n):
    """Self-checking body: header with length and SHA-256 of the rest."""
    body = tag.encode() + rand_bytes(n)
    return b"%08d:%s:" % (len(body), hashlib.sha256(body).hexdigest().encode()) + body


def payload_ok(b):
    try:
        n, h, body = b.split(b":", 2)
        return int(n) == len(body) and hashlib.sha256(body).hexdigest().encode() == h
    except ValueError:
        return False


LOAD = {}   # mixed_load's findings, judged by two checks


def mixed_load():
    """LOAD_SECONDS of boto3 and aws CLI PUT/GET/DELETE plus a mount writer
    and reader, all on the same keys.  Keys s*: written over S3 only; m*:
    by the mount only; x*: by both.  Judged by mixed_load_no_errors (no
    client error, no lock error in any log, progress, both sides agree at
    the end) and mixed_load_reads_whole_versions (every GET, and every mount
    read of a key only S3 writes, is one whole version)."""
    import botocore.exceptions
    skeys = ["load/s%d.bin" % i for i in range(3)]
    mkeys = ["load/m%d.bin" % i for i in range(3)]
    xkeys = ["load/x%d.bin" % i for i in range(3)]
    os.makedirs(os.path.join(MNT, "load"), exist_ok=True)
    log_start = os.path.getsize(S3D_LOG)
    flog_start = os.path.getsize(FUSEFS_LOG)
    deadline = time.monotonic() + LOAD_SECONDS
    lock = threading.Lock()
    stats = {}
    errors = []
    torn = []
    benign = {}

    def note(what, d=stats):
        with lock:
            d[what] = d.get(what, 0) + 1

    def err(what, lst=errors):
        with lock:
            if len(lst) < 20:
                lst.append(what)
            else:
                note("more " + ("errors" if lst is errors else "torn"))

    def verify(who, k, b):
        if payload_ok(b):
            return
        if not b and (k in mkeys or k in xkeys):
            # create() commits the empty object at once (docs/fusefs.md)
            note(who + " empty (mount create)", benign)
            return
        n = b.split(b":", 1)[0] if b else b""
        err("%s %s: %d bytes, header says %r, tag %r" % (
            who, k, len(b), n, b[74:80] if len(b) > 74 else b""), torn)

    def s3_loop(seed):
        r = random.Random(seed)
        c = s3()
        for _ in range(100000):
            if time.monotonic() > deadline:
                return
            op = r.random()
            try:
                if op < 0.45:
                    k = r.choice(skeys + xkeys)
                    c.put_object(Bucket=BUCKET, Key=k,
                                 Body=payload("s3-%d" % seed, r.randrange(1, 60000)))
                    note("s3 put")
                elif op < 0.85:
                    k = r.choice(skeys + mkeys + xkeys)
                    verify("boto3 GET", k, c.get_object(Bucket=BUCKET, Key=k)["Body"].read())
                    note("s3 get")
                else:
                    k = r.choice(skeys + xkeys)
                    c.delete_object(Bucket=BUCKET, Key=k)
                    note("s3 delete")
            except botocore.exceptions.ClientError as e:
                code = e.response.get("Error", {}).get("Code")
                if code in ("NoSuchKey", "404"):
                    note("s3 NoSuchKey", benign)
                else:
                    err("boto3 %s: %s" % (k, e))
            except Exception as e:  # noqa: BLE001
                err("boto3 %s: %r" % (k, e))

    def aws_loop():
        r = random.Random(7)
        src = local("load-aws.bin", payload("aws", 30000))
        dst = os.path.join(WORK, "load-aws-get.bin")
        for _ in range(200):
            if time.monotonic() > deadline - 1:
                return
            op = r.random()
            if op < 0.5:
                k = r.choice(skeys + xkeys)
                p = aws("s3", "cp", src, "s3://%s/%s" % (BUCKET, k), check_rc=False, timeout=30)
                what = "aws cp up"
            elif op < 0.85:
                k = r.choice(skeys + mkeys + xkeys)
                p = aws("s3", "cp", "s3://%s/%s" % (BUCKET, k), dst, check_rc=False, timeout=30)
                what = "aws cp down"
                if p.returncode == 0:
                    verify("aws GET", k, slurp(dst))
            else:
                k = r.choice(skeys + xkeys)
                p = aws("s3", "rm", "s3://%s/%s" % (BUCKET, k), check_rc=False, timeout=30)
                what = "aws rm"
            if p.returncode == 0:
                note(what)
            elif b"404" in p.stderr or b"Not Found" in p.stderr or b"NoSuchKey" in p.stderr:
                note("aws 404", benign)
            else:
                err("%s %s: exit %d: %s" % (what, k, p.returncode,
                                           p.stderr[-300:].decode("utf-8", "replace")))

    def mount_writer(seed):
        r = random.Random(seed)
        for _ in range(100000):
            if time.monotonic() > deadline:
                return
            k = r.choice(mkeys + xkeys)
            p = os.path.join(MNT, k)
            op = r.random()
            what = "write" if op < 0.6 else "unlink" if op < 0.8 else "rename"
            try:
                if what == "write":
                    with open(p, "wb") as f:
                        f.write(payload("mnt-%d" % seed, r.randrange(1, 60000)))
                elif what == "unlink":
                    os.unlink(p)
                else:
                    tmp = os.path.join(MNT, "load", "tmp%d" % seed)
                    with open(tmp, "wb") as f:
                        f.write(payload("mnt-rename", r.randrange(1, 60000)))
                    os.rename(tmp, p)
                note("mount " + what)
            except FileNotFoundError:
                note("mount ENOENT", benign)
            except OSError as e:
                err("mount %s %s: %s" % (what, k, e))

    def mount_reader():
        r = random.Random(99)
        for _ in range(200000):
            if time.monotonic() > deadline:
                return
            k = r.choice(skeys + mkeys + xkeys)
            try:
                if r.random() < 0.1:
                    os.listdir(os.path.join(MNT, "load"))
                    note("mount readdir")
                    continue
                b = slurp(os.path.join(MNT, k))
                # Only keys no process on this mount writes: a read racing a
                # write() on the same file may see part of it (as on any
                # local filesystem).
                if k in skeys:
                    verify("mount read", k, b)
                note("mount read")
            except FileNotFoundError:
                note("mount ENOENT", benign)
            except OSError as e:
                err("mount read %s: %s" % (k, e))

    ts = [threading.Thread(target=s3_loop, args=(1,)), threading.Thread(target=s3_loop, args=(2,)),
          threading.Thread(target=aws_loop), threading.Thread(target=mount_writer, args=(3,)),
          threading.Thread(target=mount_reader)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(LOAD_SECONDS + 90)
    LOAD["stuck"] = any(t.is_alive() for t in ts)
    out("# load %.0f s: %s; benign: %s" % (LOAD_SECONDS, dict(sorted(stats.items())),
                                          dict(sorted(benign.items()))))
    with open(S3D_LOG, "rb") as f:
        f.seek(log_start)
        log = f.read().decode("utf-8", "replace").splitlines()
    with open(FUSEFS_LOG, "rb") as f:
        f.seek(flog_start)
        flog = [l for l in f.read().decode("utf-8", "replace").splitlines() if l.strip()]
    LOAD.update(stats=stats, errors=errors, torn=torn, log=log, flog=flog)
    # Quiet now: both sides agree on every key within the attribute timeout.
    time.sleep(1.2)
    LOAD["disagree"] = []
    for k in skeys + mkeys + xkeys:
        try:
            sb = s3_get(k)
        except botocore.exceptions.ClientError:
            sb = None
        try:
            mb = slurp(os.path.join(MNT, k))
        except FileNotFoundError:
            mb = None
        if sb != mb:
            LOAD["disagree"].append("%s: S3 %s, mount %s" % (
                k, None if sb is None else len(sb), None if mb is None else len(mb)))


LOCK_RE = r"database is locked|database table is locked|catalog is busy|SQLITE_BUSY|SlowDown|EBUSY|Device or resource busy"


def mixed_load_no_database_locked():
    """No lock error anywhere: s3d's and fusefs's logs, every client."""
    if "stats" not in LOAD:
        mixed_load()
    expect(not LOAD["stuck"], "a load thread is stuck")
    locked = [l for l in LOAD["log"] + LOAD["flog"] + LOAD["errors"] if re.search(LOCK_RE, l)]
    slow = [l for l in LOAD["log"] if re.search(r'" 503 \d+ \d+ ', l)]
    expect(not locked and not slow, "lock errors: %s %s" % (locked[:3], slow[:2]))
    st = LOAD["stats"]
    expect(st.get("s3 put", 0) >= 20 and st.get("mount write", 0) >= 20,
           "too little progress: %r" % st)


def mixed_load_no_errors():
    """No other error either, and both sides agree once the load stops."""
    if "stats" not in LOAD:
        mixed_load()
    five = [l for l in LOAD["log"] if re.search(r'" 5\d\d \d+ \d+ ', l)]
    broken = [l for l in LOAD["log"] if re.search(r"aborted:error|failed mid-response", l)]
    problems = []
    if broken:
        problems.append("s3d broke off %d responses: %s" % (
            len([l for l in broken if "aborted:error" in l]), broken[:2]))
    if LOAD["errors"]:
        problems.append("client errors: %s" % LOAD["errors"][:4])
    if five:
        problems.append("s3d 5xx: %d, e.g. %s" % (len(five), five[:2]))
    if LOAD["flog"]:
        problems.append("fusefs log: %s" % LOAD["flog"][:3])
    if LOAD["disagree"]:
        problems.append("S3 and mount disagree after the load: %s" % LOAD["disagree"])
    expect(not problems, "; ".join(problems))


def mixed_load_reads_whole_versions():
    if "stats" not in LOAD:
        mixed_load()
    expect(not LOAD["torn"], "%d torn reads, e.g. %s" % (
        len(LOAD["torn"]) + LOAD["stats"].get("more torn", 0), LOAD["torn"][:4]))


# ================================================================ main
def main():
    for tool in ("aws", "rclone"):
        if not shutil.which(tool, path=AWS_ENV["PATH"]):
            out("FAIL tool_%s: not installed" % tool)
    t0 = time.time()
    tests = [
        ("aws_cp_small_to_mount", aws_cp_small),
        ("aws_cp_20mib_to_mount", aws_cp_20mib),
        ("aws_cp_multipart_8mib_parts_to_mount", aws_cp_multipart),
        ("aws_nested_keys_to_mount", aws_nested),
        ("aws_keys_spaces_unicode_to_mount", aws_names),
        ("aws_rm_gone_from_mount", aws_rm),
        ("aws_put_object_posix_meta_to_stat", aws_posix_meta),
        ("aws_metadata_to_xattr", aws_meta_to_xattr),
        ("aws_mb_rb_buckets_as_dirs", aws_mb_bucket),
        ("mount_cp_txt_head_object", mount_cp_txt),
        ("mount_dd_json_head_object", mount_dd_json),
        ("mount_dd_20mib_etag", mount_dd_big),
        ("mount_pwrite_new_etag", mount_pwrite),
        ("mount_truncate_head_object", mount_truncate),
        ("mount_chmod_chown_touch_to_metadata", mount_attrs),
        ("mount_mkdir_markers_listed", mount_mkdir),
        ("mount_rename_file_over_s3", mount_rename_file),
        ("mount_rename_dir_over_s3", mount_rename_dir),
        ("mount_xattr_to_metadata", mount_xattr_to_meta),
        ("s3fs_writes_seen_on_mount", s3fs_to_mount),
        ("mount_writes_seen_via_s3fs", mount_to_s3fs),
        ("rclone_copy_seen_on_mount", rclone_to_mount),
        ("mount_writes_seen_via_rclone", mount_to_rclone),
        ("coherence_next_open_reads_new", coherence_next_open),
        ("coherence_open_then_put_one_version", coherence_open_then_put),
        ("coherence_attr_stale_at_most_1s", coherence_attr_staleness),
        ("coherence_s3_get_survives_mount_overwrite", get_survives_overwrite),
        ("coherence_two_writers_last_commit_wins", coherence_two_writers_ordered),
        ("coherence_two_writers_edit_not_mixed", coherence_two_writers_edit),
        ("coherence_two_writers_create_not_mixed", coherence_two_writers_create),
        ("coherence_two_writers_read_then_edit_not_mixed", coherence_two_writers_read_then_edit),
        ("coherence_two_writers_race_one_wins", coherence_two_writers_race),
        ("coherence_open_rw_without_write_commits_nothing",
         coherence_open_rw_without_write_commits_nothing),
        ("coherence_write_fsync_put_write_not_mixed", coherence_write_fsync_put_write),
        ("mixed_load_no_database_locked", mixed_load_no_database_locked),
        ("mixed_load_no_errors", mixed_load_no_errors),
        ("mixed_load_reads_whole_versions", mixed_load_reads_whole_versions),
    ]
    only = os.environ.get("INTEROP_ONLY")
    for name, fn in tests:
        if only and not re.search(only, name):
            continue
        check(name, fn)
    out("# checks took %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
