#!/usr/bin/env python3
"""test_tools.py -- s3d against s3cmd, rclone, curl --aws-sigv4 and s3fs-fuse
(HTTP and TLS for the first three; s3fs over HTTP).  A tool that is not
installed is reported as a failure, not skipped: CI must have them.

Usage: test_tools.py BUILD_DIR
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3common as C  # noqa: E402


def eq(a, b):
    if a != b:
        raise AssertionError("%r != %r" % (a, b))


def need(tool):
    if not shutil.which(tool):
        raise RuntimeError("%s is not installed" % tool)


def make_tree(d):
    files = {"a.txt": b"alpha\n", "dir/b.bin": os.urandom(200000),
             "dir/sub/c": b"c" * 3, "big.bin": os.urandom(12 * 1024 * 1024 + 3)}
    for k, v in files.items():
        p = os.path.join(d, k)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(v)
    return files


def check_tree(d, files):
    for k, v in files.items():
        with open(os.path.join(d, k), "rb") as f:
            if f.read() != v:
                raise AssertionError("content differs: " + k)


def s3cmd_suite(R, srv, tag):
    t = lambda n: "%s/s3cmd_%s" % (tag, n)  # noqa: E731
    env = srv.client_env()
    cfg = os.path.join(env["HOME"], ".s3cfg")
    host = "127.0.0.1:%d" % srv.port
    with open(cfg, "w") as f:
        f.write("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\n"
                "host_bucket = %s\nuse_https = %s\nsignature_v2 = False\n"
                "bucket_location = us-east-1\nmultipart_chunk_size_mb = 5\n"
                "check_ssl_certificate = True\n%s"
                % (C.ACCESS, C.SECRET, host, host, "True" if srv.tls else "False",
                   ("ca_certs_file = %s\n" % srv.cert) if srv.tls else ""))
    work = tempfile.mkdtemp(dir=srv.dir)
    src = os.path.join(work, "src")
    files = make_tree(src)
    b = "s3cmd-" + tag

    def s3cmd(*a, check=True):
        return C.run(["s3cmd", "-c", cfg, "--no-progress"] + list(a), env, check=check)

    def basic():
        need("s3cmd")
        s3cmd("mb", "s3://" + b)
        s3cmd("put", os.path.join(src, "a.txt"), "s3://%s/a.txt" % b)
        s3cmd("put", os.path.join(src, "big.bin"), "s3://%s/big.bin" % b)  # multipart
        out = os.path.join(work, "got")
        s3cmd("get", "--force", "s3://%s/big.bin" % b, out)
        eq(open(out, "rb").read(), files["big.bin"])
        ls = s3cmd("ls", "s3://%s/" % b).stdout.decode()
        if "a.txt" not in ls or "big.bin" not in ls:
            raise AssertionError(ls)
        la = s3cmd("la").stdout.decode()
        if "a.txt" not in la:
            raise AssertionError(la)
    R.run(t("mb_put_get_ls"), basic)

    def sync():
        s3cmd("sync", src + "/", "s3://%s/tree/" % b)
        dst = os.path.join(work, "back")
        s3cmd("sync", "s3://%s/tree/" % b, dst + "/")
        check_tree(dst, files)
        # nothing to do the second time (etags match the local MD5s)
        out = s3cmd("sync", src + "/", "s3://%s/tree/" % b).stdout.decode()
        if "upload:" in out:
            raise AssertionError(out)
    R.run(t("sync"), sync)

    def cleanup():
        s3cmd("del", "--recursive", "--force", "s3://%s/" % b)
        s3cmd("rb", "s3://" + b)
        p = s3cmd("ls", "s3://%s/" % b, check=False)
        if p.returncode == 0:
            raise AssertionError("bucket still there")
    R.run(t("del_rb"), cleanup)


def rclone_suite(R, srv, tag):
    t = lambda n: "%s/rclone_%s" % (tag, n)  # noqa: E731
    env = srv.client_env({
        "RCLONE_CONFIG": "/nonexistent/rclone.conf",
        "RCLONE_CONFIG_S3D_TYPE": "s3",
        "RCLONE_CONFIG_S3D_PROVIDER": "Other",
        "RCLONE_CONFIG_S3D_ACCESS_KEY_ID": C.ACCESS,
        "RCLONE_CONFIG_S3D_SECRET_ACCESS_KEY": C.SECRET,
        "RCLONE_CONFIG_S3D_ENDPOINT": srv.endpoint,
        "RCLONE_CONFIG_S3D_REGION": "us-east-1",
        "RCLONE_CONFIG_S3D_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_S3D_UPLOAD_CUTOFF": "5M",
        "RCLONE_CONFIG_S3D_CHUNK_SIZE": "5M",
    })
    extra = ["--ca-cert", srv.cert] if srv.tls else []
    env.pop("AWS_CA_BUNDLE", None)  # rclone's own --ca-cert is used instead
    work = tempfile.mkdtemp(dir=srv.dir)
    src = os.path.join(work, "src")
    files = make_tree(src)
    b = "rclone-" + tag

    def rclone(*a, check=True):
        return C.run(["rclone", "-q"] + extra + list(a), env, check=check)

    def copy():
        need("rclone")
        rclone("mkdir", "s3d:" + b)
        rclone("copy", src, "s3d:%s/tree" % b)
        dst = os.path.join(work, "back")
        rclone("copy", "s3d:%s/tree" % b, dst)
        check_tree(dst, files)
    R.run(t("copy"), copy)

    def check():
        rclone("check", src, "s3d:%s/tree" % b)  # size + md5 (etag)
        rclone("check", "--download", src, "s3d:%s/tree" % b)
    R.run(t("check"), check)

    def sync():
        os.remove(os.path.join(src, "a.txt"))
        with open(os.path.join(src, "new.txt"), "wb") as f:
            f.write(b"new")
        rclone("sync", src, "s3d:%s/tree" % b)
        ls = rclone("lsf", "-R", "s3d:%s/tree" % b).stdout.decode().split()
        eq(sorted(ls), sorted(["big.bin", "dir/", "dir/b.bin", "dir/sub/", "dir/sub/c",
                               "new.txt"]))
        rclone("check", src, "s3d:%s/tree" % b)
    R.run(t("sync"), sync)

    def purge():
        rclone("purge", "s3d:" + b)
        p = rclone("lsd", "s3d:", check=False)
        if b in p.stdout.decode():
            raise AssertionError(p.stdout)
    R.run(t("purge"), purge)


def curl_suite(R, srv, tag):
    t = lambda n: "%s/curl_%s" % (tag, n)  # noqa: E731
    env = srv.client_env()
    work = tempfile.mkdtemp(dir=srv.dir)
    # S3 requires x-amz-content-sha256 and curl 7.x does not add it.
    base = ["curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:s3",
            "--user", "%s:%s" % (C.ACCESS, C.SECRET),
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    if srv.tls:
        base += ["--cacert", srv.cert]
    b = "curl-" + tag

    def curl(*a):
        p = C.run(base + ["-w", "\n%{http_code}"] + list(a), env)
        body, _, code = p.stdout.rpartition(b"\n")
        return int(code), body

    def ops():
        need("curl")
        eq(curl("-X", "PUT", "%s/%s" % (srv.endpoint, b))[0], 200)
        f = os.path.join(work, "up")
        with open(f, "wb") as fh:
            fh.write(b"curl body " * 100)
        code, body = curl("-T", f, "%s/%s/k%%20ey" % (srv.endpoint, b))
        eq(code, 200)
        code, body = curl("%s/%s/k%%20ey" % (srv.endpoint, b))
        eq((code, body), (200, b"curl body " * 100))
        code, body = curl("%s/%s?list-type=2" % (srv.endpoint, b))
        if code != 200 or b"<Key>k ey</Key>" not in body:
            raise AssertionError(body)
        code, body = curl("-r", "0-3", "%s/%s/k%%20ey" % (srv.endpoint, b))
        eq((code, body), (206, b"curl"))
        code, body = curl("-X", "DELETE", "%s/%s/k%%20ey" % (srv.endpoint, b))
        eq(code, 204)
        code, body = curl("-X", "DELETE", "%s/%s" % (srv.endpoint, b))
        eq(code, 204)
    R.run(t("put_get_list_delete"), ops)

    def health():
        p = C.run(["curl", "-sS", "-i"] + (["--cacert", srv.cert] if srv.tls else []) +
                  [srv.endpoint + "/health"], env)
        if b" 200 " not in p.stdout.split(b"\r\n")[0] or not p.stdout.endswith(b"ok\n"):
            raise AssertionError(p.stdout)
        if b"x-amz-request-id" not in p.stdout.lower():
            raise AssertionError("no request id")
        p = C.run(["curl", "-sS", "-I"] + (["--cacert", srv.cert] if srv.tls else []) +
                  [srv.endpoint + "/health"], env)
        if b" 200 " not in p.stdout.split(b"\r\n")[0]:
            raise AssertionError(p.stdout)
    R.run(t("health"), health)


def s3fs_suite(R, srv, tag):
    t = lambda n: "%s/s3fs_%s" % (tag, n)  # noqa: E731
    env = srv.client_env()
    b = "s3fs-" + tag
    mnt = tempfile.mkdtemp(dir=srv.dir)
    pw = os.path.join(env["HOME"], "passwd-s3fs")
    with open(pw, "w") as f:
        f.write("%s:%s\n" % (C.ACCESS, C.SECRET))
    os.chmod(pw, 0o600)
    proc = None
    try:
        need("s3fs")
        import boto3  # noqa: F401
        s3 = C.boto3_client(srv)
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="pre/existing.txt", Body=b"from s3")
        proc = subprocess.Popen(
            ["s3fs", b, mnt, "-f", "-o", "url=" + srv.endpoint, "-o", "use_path_request_style",
             "-o", "passwd_file=" + pw, "-o", "endpoint=us-east-1", "-o", "sigv4",
             "-o", "stat_cache_expire=1", "-o", "enable_noobj_cache"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.ismount(mnt):
                break
            if proc.poll() is not None:
                raise RuntimeError("s3fs exited: %s" % proc.stdout.read()[-1000:])
            time.sleep(0.1)
        else:
            raise RuntimeError("s3fs did not mount")
        R.ok(t("mount"))
    except Exception as e:  # noqa: BLE001
        R.fail(t("mount"), e)
        if proc:
            proc.kill()
        return

    def fileops():
        eq(sorted(os.listdir(mnt)), ["pre"])
        eq(open(os.path.join(mnt, "pre", "existing.txt"), "rb").read(), b"from s3")
        data = os.urandom(3 * 1024 * 1024 + 11)
        with open(os.path.join(mnt, "written.bin"), "wb") as f:
            f.write(data)
        os.makedirs(os.path.join(mnt, "newdir", "inner"))
        with open(os.path.join(mnt, "newdir", "inner", "f.txt"), "w") as f:
            f.write("hello fuse")
        got = s3.get_object(Bucket=b, Key="written.bin")["Body"].read()
        eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
        eq(s3.get_object(Bucket=b, Key="newdir/inner/f.txt")["Body"].read(), b"hello fuse")
        os.rename(os.path.join(mnt, "written.bin"), os.path.join(mnt, "renamed.bin"))
        eq(open(os.path.join(mnt, "renamed.bin"), "rb").read(), data)
        os.remove(os.path.join(mnt, "renamed.bin"))
        keys = [c["Key"] for c in s3.list_objects_v2(Bucket=b).get("Contents", [])]
        if "renamed.bin" in keys or "written.bin" in keys:
            raise AssertionError(keys)
    R.run(t("read_write_rename_unlink"), fileops)

    subprocess.run(["fusermount", "-u", mnt], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    R.check(t("unmount"), not os.path.ismount(mnt), "still mounted")


def main():
    R = C.Results()
    for tls in (False, True):
        srv = C.Server(tls=tls)
        tag = "tls" if tls else "http"
        try:
            s3cmd_suite(R, srv, tag)
            rclone_suite(R, srv, tag)
            curl_suite(R, srv, tag)
            if not tls:
                s3fs_suite(R, srv, tag)
        finally:
            srv.cleanup()
    R.finish()


if __name__ == "__main__":
    C.scrub_environment(tempfile.mkdtemp(prefix="s3d-tools-"))
    main()
