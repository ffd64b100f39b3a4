#!/usr/bin/env python3
"""test_awscli.py -- s3d against the aws CLI (s3 and s3api), over HTTP and
TLS, each invocation in its own clean environment.

Usage: test_awscli.py BUILD_DIR
"""
import hashlib
import json
import os
import sys
import tempfile
import urllib.request
import ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3common as C  # noqa: E402

AWS = os.path.join(C.PYBIN, "aws")


def eq(a, b):
    if a != b:
        raise AssertionError("%r != %r" % (a, b))


def suite(R, srv, tag):
    env = srv.client_env()
    work = tempfile.mkdtemp(dir=srv.dir)
    base = [AWS, "--endpoint-url", srv.endpoint, "--no-paginate"]

    def aws(*args, check=True, input=None):
        return C.run(base + list(args), env, check=check, input=input, cwd=work)

    def api(*args):
        out = aws("s3api", *args, "--output", "json").stdout
        return json.loads(out) if out.strip() else {}

    t = lambda n: "%s/%s" % (tag, n)  # noqa: E731
    b = "cli-" + tag

    R.run(t("s3_mb"), aws, "s3", "mb", "s3://" + b)
    R.run(t("s3_ls_buckets"), lambda: eq(b in aws("s3", "ls").stdout.decode(), True))

    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "sub", "deeper"))
    files = {"one.txt": b"one\n", "sub/two.bin": os.urandom(300000),
             "sub/deeper/three": b"3" * 10, "big.bin": os.urandom(17 * 1024 * 1024 + 5)}
    for k, v in files.items():
        with open(os.path.join(src, k), "wb") as f:
            f.write(v)

    def cp_roundtrip():
        aws("s3", "cp", "--only-show-errors", os.path.join(src, "one.txt"), "s3://%s/one.txt" % b)
        out = aws("s3", "cp", "--only-show-errors", "s3://%s/one.txt" % b, "-").stdout
        eq(out, b"one\n")
        aws("s3", "cp", "--only-show-errors", os.path.join(src, "big.bin"), "s3://%s/big.bin" % b)
        dst = os.path.join(work, "big.out")
        aws("s3", "cp", "--only-show-errors", "s3://%s/big.bin" % b, dst)
        with open(dst, "rb") as f:
            eq(hashlib.md5(f.read()).hexdigest(), hashlib.md5(files["big.bin"]).hexdigest())
        aws("s3", "cp", "--only-show-errors", "-", "s3://%s/stdin.txt" % b, input=b"from stdin")
        eq(aws("s3", "cp", "--only-show-errors", "s3://%s/stdin.txt" % b, "-").stdout, b"from stdin")
    R.run(t("s3_cp"), cp_roundtrip)

    def sync():
        aws("s3", "sync", "--only-show-errors", src, "s3://%s/tree" % b)
        ls = aws("s3", "ls", "--recursive", "s3://%s/tree/" % b).stdout.decode()
        for k in files:
            if "tree/" + k not in ls:
                raise AssertionError("missing %s in %s" % (k, ls))
        dst = os.path.join(work, "back")
        aws("s3", "sync", "--only-show-errors", "s3://%s/tree" % b, dst)
        for k, v in files.items():
            with open(os.path.join(dst, k), "rb") as f:
                eq(f.read(), v)
        # a second sync copies nothing
        out = aws("s3", "sync", "s3://%s/tree" % b, dst).stdout
        eq(out.strip(), b"")
        os.remove(os.path.join(src, "one.txt"))
        aws("s3", "sync", "--only-show-errors", "--delete", src, "s3://%s/tree" % b)
        ls = aws("s3", "ls", "--recursive", "s3://%s/tree/" % b).stdout.decode()
        eq("one.txt" in ls, False)
    R.run(t("s3_sync"), sync)

    def ls_prefix():
        out = aws("s3", "ls", "s3://%s/tree/" % b).stdout.decode()
        if "PRE sub/" not in out or "big.bin" not in out:
            raise AssertionError(out)
    R.run(t("s3_ls_prefix"), ls_prefix)

    def presign():
        url = aws("s3", "presign", "s3://%s/stdin.txt" % b, "--expires-in", "120").stdout.decode().strip()
        ctx = ssl.create_default_context(cafile=srv.cert) if srv.tls else None
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            eq(r.read(), b"from stdin")
    R.run(t("s3_presign"), presign)

    def s3api_ops():
        api("put-object", "--bucket", b, "--key", "api/obj", "--body",
            os.path.join(src, "sub", "two.bin"), "--metadata", "k=v",
            "--content-type", "application/x-test", "--tagging", "a=b")
        h = api("head-object", "--bucket", b, "--key", "api/obj")
        eq((h["ContentLength"], h["Metadata"], h["ContentType"]),
           (300000, {"k": "v"}, "application/x-test"))
        eq(api("get-object-tagging", "--bucket", b, "--key", "api/obj")["TagSet"],
           [{"Key": "a", "Value": "b"}])
        api("copy-object", "--bucket", b, "--key", "api/copy", "--copy-source", b + "/api/obj")
        r = api("list-objects-v2", "--bucket", b, "--prefix", "api/")
        eq([c["Key"] for c in r["Contents"]], ["api/copy", "api/obj"])
        r = api("list-objects", "--bucket", b, "--prefix", "api/", "--max-keys", "1")
        eq(r["IsTruncated"], True)
        api("delete-objects", "--bucket", b, "--delete",
            '{"Objects":[{"Key":"api/copy"},{"Key":"api/obj"}]}')
        eq(api("list-objects-v2", "--bucket", b, "--prefix", "api/").get("KeyCount"), 0)
        api("put-bucket-tagging", "--bucket", b, "--tagging", '{"TagSet":[{"Key":"x","Value":"y"}]}')
        eq(api("get-bucket-tagging", "--bucket", b)["TagSet"], [{"Key": "x", "Value": "y"}])
        api("delete-bucket-tagging", "--bucket", b)
        api("get-bucket-location", "--bucket", b)
        api("get-bucket-versioning", "--bucket", b)
        api("list-object-versions", "--bucket", b, "--prefix", "tree/")
    R.run(t("s3api_objects"), s3api_ops)

    def s3api_multipart():
        k = "api/mpu"
        p1 = os.path.join(work, "p1")
        p2 = os.path.join(work, "p2")
        d1, d2 = os.urandom(6 * 1024 * 1024), os.urandom(1234)
        open(p1, "wb").write(d1)
        open(p2, "wb").write(d2)
        up = api("create-multipart-upload", "--bucket", b, "--key", k)["UploadId"]
        e1 = api("upload-part", "--bucket", b, "--key", k, "--upload-id", up,
                 "--part-number", "1", "--body", p1)["ETag"]
        e2 = api("upload-part", "--bucket", b, "--key", k, "--upload-id", up,
                 "--part-number", "2", "--body", p2)["ETag"]
        ups = api("list-multipart-uploads", "--bucket", b)["Uploads"]
        eq(any(u["UploadId"] == up for u in ups), True)
        eq(len(api("list-parts", "--bucket", b, "--key", k, "--upload-id", up)["Parts"]), 2)
        mp = json.dumps({"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        r = api("complete-multipart-upload", "--bucket", b, "--key", k, "--upload-id", up,
                "--multipart-upload", mp)
        if not r["ETag"].endswith('-2"'):
            raise AssertionError(r)
        out = os.path.join(work, "mpu.out")
        api("get-object", "--bucket", b, "--key", k, out)
        eq(open(out, "rb").read(), d1 + d2)
        up2 = api("create-multipart-upload", "--bucket", b, "--key", k + "2")["UploadId"]
        api("abort-multipart-upload", "--bucket", b, "--key", k + "2", "--upload-id", up2)
        p = aws("s3api", "list-parts", "--bucket", b, "--key", k + "2", "--upload-id", up2,
                check=False)
        if p.returncode == 0 or b"NoSuchUpload" not in p.stderr:
            raise AssertionError(p.stderr)
    R.run(t("s3api_multipart"), s3api_multipart)

    def errors():
        p = aws("s3api", "get-object", "--bucket", b, "--key", "nope", os.path.join(work, "x"),
                check=False)
        if b"NoSuchKey" not in p.stderr:
            raise AssertionError(p.stderr)
        p = aws("s3", "mb", "s3://Invalid_Bucket", check=False)
        if p.returncode == 0 or b"InvalidBucketName" not in p.stderr:
            raise AssertionError(p.stderr)
        p = aws("s3", "rb", "s3://" + b, check=False)
        if p.returncode == 0 or b"BucketNotEmpty" not in p.stderr:
            raise AssertionError(p.stderr)
    R.run(t("errors"), errors)

    def rm_rb():
        aws("s3", "rm", "--only-show-errors", "s3://%s/one.txt" % b)
        aws("s3", "rm", "--only-show-errors", "--recursive", "s3://" + b)
        eq(aws("s3", "ls", "s3://" + b).stdout.strip(), b"")
        aws("s3", "rb", "s3://" + b)
        p = aws("s3", "ls", "s3://" + b, check=False)
        if b"NoSuchBucket" not in p.stderr:
            raise AssertionError(p.stderr)
    R.run(t("s3_rm_rb"), rm_rb)


def main():
    R = C.Results()
    for tls in (False, True):
        srv = C.Server(tls=tls)
        try:
            suite(R, srv, "tls" if tls else "http")
        finally:
            srv.cleanup()
    R.finish()


if __name__ == "__main__":
    main()
