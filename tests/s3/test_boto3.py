#!/usr/bin/env python3
"""test_boto3.py -- s3d against boto3: every operation we claim, over HTTP
and TLS, with boto3's default checksum behaviour (when_supported: CRC32 in
aws-chunked trailers) and with request_checksum_calculation='when_required'.

Usage: test_boto3.py BUILD_DIR
"""
import base64
import datetime
import hashlib
import io
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3common as C  # noqa: E402

HOME = tempfile.mkdtemp(prefix="s3d-boto3-")
C.scrub_environment(HOME)

from botocore.exceptions import ClientError  # noqa: E402


def code_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return "OK"


def expect_code(want, fn, *a, **kw):
    got = code_of(fn, *a, **kw)
    if got != want:
        raise AssertionError("expected %s, got %s" % (want, got))


def eq(a, b):
    if a != b:
        raise AssertionError("%r != %r" % (a, b))


def http_open(srv, url, method="GET", data=None, headers=None):
    ctx = ssl.create_default_context(cafile=srv.cert) if srv.tls else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def suite(R, srv, tag, **cfg):
    s3 = C.boto3_client(srv, **cfg)
    b = "bk-" + tag.replace("_", "-")
    b2 = b + "-two"
    t = lambda name: "%s/%s" % (tag, name)  # noqa: E731

    # --- buckets ---------------------------------------------------------
    R.run(t("create_bucket"), lambda: s3.create_bucket(Bucket=b))
    R.run(t("create_bucket_location"), lambda: s3.create_bucket(
        Bucket=b2, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}))
    R.run(t("create_bucket_owned"), expect_code, "BucketAlreadyOwnedByYou",
          s3.create_bucket, Bucket=b)
    R.run(t("create_bucket_invalid_name"), expect_code, "InvalidBucketName",
          s3.create_bucket, Bucket="Bad_Name")
    R.run(t("create_bucket_short_name"), expect_code, "InvalidBucketName",
          s3.create_bucket, Bucket="ab")
    R.run(t("head_bucket"), lambda: s3.head_bucket(Bucket=b))
    R.run(t("head_bucket_missing"), expect_code, "404", s3.head_bucket,
          Bucket="no-such-bucket-x")
    R.run(t("list_buckets"), lambda: eq(
        {b, b2} <= {x["Name"] for x in s3.list_buckets()["Buckets"]}, True))
    R.run(t("bucket_location"), lambda: eq(
        s3.get_bucket_location(Bucket=b).get("LocationConstraint"), None))
    R.run(t("bucket_versioning"), lambda: eq(
        s3.get_bucket_versioning(Bucket=b).get("Status"), None))

    def bucket_tagging():
        expect_code("NoSuchTagSet", s3.get_bucket_tagging, Bucket=b)
        s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [
            {"Key": "team", "Value": "storage"}, {"Key": "env", "Value": "ci"}]})
        tags = {x["Key"]: x["Value"] for x in s3.get_bucket_tagging(Bucket=b)["TagSet"]}
        eq(tags, {"team": "storage", "env": "ci"})
        s3.delete_bucket_tagging(Bucket=b)
        expect_code("NoSuchTagSet", s3.get_bucket_tagging, Bucket=b)
    R.run(t("bucket_tagging"), bucket_tagging)

    # --- put / get / head --------------------------------------------------
    body = b"hello, s3d\n" * 1000

    def put_get():
        r = s3.put_object(Bucket=b, Key="a/b/hello.txt", Body=body,
                          ContentType="text/plain", ContentEncoding="identity",
                          ContentDisposition="attachment; filename=h.txt",
                          ContentLanguage="en", CacheControl="max-age=60",
                          Expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
                          Metadata={"color": "blue", "Owner-Name": "x y"},
                          Tagging="k1=v1&k2=v%202")
        eq(r["ETag"], '"%s"' % hashlib.md5(body).hexdigest())
        g = s3.get_object(Bucket=b, Key="a/b/hello.txt")
        eq(g["Body"].read(), body)
        eq(g["ContentType"], "text/plain")
        eq(g["ContentEncoding"], "identity")
        eq(g["ContentDisposition"], "attachment; filename=h.txt")
        eq(g["ContentLanguage"], "en")
        eq(g["CacheControl"], "max-age=60")
        eq(g["Metadata"], {"color": "blue", "owner-name": "x y"})
        eq(g.get("TagCount"), 2)
        h = s3.head_object(Bucket=b, Key="a/b/hello.txt")
        eq(h["ContentLength"], len(body))
        eq(h["ETag"], r["ETag"])
        tags = s3.get_object_tagging(Bucket=b, Key="a/b/hello.txt")["TagSet"]
        eq({x["Key"]: x["Value"] for x in tags}, {"k1": "v1", "k2": "v 2"})
    R.run(t("put_get_head_attrs"), put_get)

    R.run(t("put_empty"), lambda: (s3.put_object(Bucket=b, Key="empty", Body=b""),
                                   eq(s3.get_object(Bucket=b, Key="empty")["Body"].read(), b"")))

    def weird_keys():
        for k in ["sp ace/x", "plus+sign", "uni/ключ/日本", "q?mark&amp=1", "pct%41",
                  "star*(paren)!", "tilde~", "semi;colon,comma", "dir/"]:
            s3.put_object(Bucket=b, Key=k, Body=k.encode())
            eq(s3.get_object(Bucket=b, Key=k)["Body"].read(), k.encode())
    R.run(t("weird_keys"), weird_keys)

    def ranges():
        k = "a/b/hello.txt"
        g = s3.get_object(Bucket=b, Key=k, Range="bytes=0-4")
        eq(g["Body"].read(), body[:5])
        eq(g["ContentRange"], "bytes 0-4/%d" % len(body))
        eq(s3.get_object(Bucket=b, Key=k, Range="bytes=10990-")["Body"].read(), body[10990:])
        eq(s3.get_object(Bucket=b, Key=k, Range="bytes=-7")["Body"].read(), body[-7:])
        expect_code("InvalidRange", s3.get_object, Bucket=b, Key=k,
                    Range="bytes=%d-" % (len(body) + 5))
    R.run(t("range_get"), ranges)

    def conditionals():
        k = "a/b/hello.txt"
        et = s3.head_object(Bucket=b, Key=k)["ETag"]
        expect_code("304", s3.get_object, Bucket=b, Key=k, IfNoneMatch=et)
        expect_code("PreconditionFailed", s3.get_object, Bucket=b, Key=k, IfMatch='"abc"')
        eq(s3.get_object(Bucket=b, Key=k, IfMatch=et)["ETag"], et)
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        expect_code("304", s3.get_object, Bucket=b, Key=k, IfModifiedSince=future)
        expect_code("PreconditionFailed", s3.get_object, Bucket=b, Key=k,
                    IfUnmodifiedSince=past)
        # If-Match true beats a false If-Unmodified-Since (RFC 9110 order).
        eq(s3.get_object(Bucket=b, Key=k, IfMatch=et, IfUnmodifiedSince=past)["ETag"], et)
        expect_code("304", s3.head_object, Bucket=b, Key=k, IfNoneMatch=et)
        # Conditional writes.
        expect_code("PreconditionFailed", s3.put_object, Bucket=b, Key=k, Body=b"x",
                    IfNoneMatch="*")
        s3.put_object(Bucket=b, Key="cond-new", Body=b"1", IfNoneMatch="*")
        expect_code("PreconditionFailed", s3.put_object, Bucket=b, Key="cond-new",
                    Body=b"2", IfMatch='"0123456789abcdef0123456789abcdef"')
        e1 = s3.head_object(Bucket=b, Key="cond-new")["ETag"]
        s3.put_object(Bucket=b, Key="cond-new", Body=b"3", IfMatch=e1)
        eq(s3.get_object(Bucket=b, Key="cond-new")["Body"].read(), b"3")
    R.run(t("conditionals"), conditionals)

    def response_overrides():
        g = s3.get_object(Bucket=b, Key="a/b/hello.txt", ResponseContentType="app/x",
                          ResponseContentDisposition="inline", ResponseCacheControl="no-cache")
        eq(g["ContentType"], "app/x")
        eq(g["ContentDisposition"], "inline")
        eq(g["CacheControl"], "no-cache")
    R.run(t("response_overrides"), response_overrides)

    def checksums():
        # CRC32C and CRC64NVME need awscrt in boto3; test_raw.py covers them.
        for alg in ["CRC32", "SHA1", "SHA256"]:
            data = os.urandom(70000)
            r = s3.put_object(Bucket=b, Key="ck-" + alg, Body=data, ChecksumAlgorithm=alg)
            sent = r.get("Checksum" + alg)
            if not sent:
                raise AssertionError("no Checksum%s in PUT response" % alg)
            g = s3.get_object(Bucket=b, Key="ck-" + alg, ChecksumMode="ENABLED")
            eq(g["Body"].read(), data)
            eq(g.get("Checksum" + alg), sent)
            h = s3.head_object(Bucket=b, Key="ck-" + alg, ChecksumMode="ENABLED")
            eq(h.get("Checksum" + alg), sent)
        want = base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
        s3.put_object(Bucket=b, Key="ck-explicit", Body=b"abc", ChecksumSHA256=want)
        eq(s3.head_object(Bucket=b, Key="ck-explicit", ChecksumMode="ENABLED")["ChecksumSHA256"], want)
        bad = base64.b64encode(hashlib.sha256(b"abd").digest()).decode()
        expect_code("BadDigest", s3.put_object, Bucket=b, Key="ck-bad", Body=b"abc",
                    ChecksumSHA256=bad)
        expect_code("404", s3.head_object, Bucket=b, Key="ck-bad")
    R.run(t("checksums"), checksums)

    def content_md5():
        good = base64.b64encode(hashlib.md5(b"md5 body").digest()).decode()
        s3.put_object(Bucket=b, Key="md5-ok", Body=b"md5 body", ContentMD5=good)
        bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        expect_code("BadDigest", s3.put_object, Bucket=b, Key="md5-bad", Body=b"md5 body",
                    ContentMD5=bad)
        expect_code("404", s3.head_object, Bucket=b, Key="md5-bad")
    R.run(t("content_md5"), content_md5)

    R.run(t("metadata_too_large"), expect_code, "MetadataTooLarge", s3.put_object,
          Bucket=b, Key="bigmeta", Body=b"x", Metadata={"m": "v" * 2100})
    R.run(t("key_too_long"), expect_code, "KeyTooLongError", s3.put_object,
          Bucket=b, Key="k" * 1025, Body=b"x")
    R.run(t("no_such_key"), expect_code, "NoSuchKey", s3.get_object, Bucket=b, Key="nope")
    R.run(t("no_such_bucket"), expect_code, "NoSuchBucket", s3.get_object,
          Bucket="no-such-bucket-y", Key="nope")

    # --- copy --------------------------------------------------------------
    def copies():
        src = {"Bucket": b, "Key": "a/b/hello.txt"}
        r = s3.copy_object(Bucket=b, Key="copy1", CopySource=src)
        g = s3.get_object(Bucket=b, Key="copy1")
        eq(g["Body"].read(), body)
        eq(g["Metadata"], {"color": "blue", "owner-name": "x y"})
        eq(r["CopyObjectResult"]["ETag"], '"%s"' % hashlib.md5(body).hexdigest())
        s3.copy_object(Bucket=b2, Key="x/copy2", CopySource=src, MetadataDirective="REPLACE",
                       Metadata={"new": "1"}, ContentType="text/x-new",
                       TaggingDirective="REPLACE", Tagging="t=1")
        h = s3.head_object(Bucket=b2, Key="x/copy2")
        eq(h["Metadata"], {"new": "1"})
        eq(h["ContentType"], "text/x-new")
        eq(len(s3.get_object_tagging(Bucket=b2, Key="x/copy2")["TagSet"]), 1)
        expect_code("InvalidRequest", s3.copy_object, Bucket=b, Key="copy1",
                    CopySource={"Bucket": b, "Key": "copy1"})
        s3.copy_object(Bucket=b, Key="copy1", CopySource={"Bucket": b, "Key": "copy1"},
                       MetadataDirective="REPLACE", Metadata={"again": "yes"})
        eq(s3.head_object(Bucket=b, Key="copy1")["Metadata"], {"again": "yes"})
        expect_code("PreconditionFailed", s3.copy_object, Bucket=b, Key="copy3",
                    CopySource=src, CopySourceIfMatch='"deadbeef"')
        et = s3.head_object(Bucket=b, Key="a/b/hello.txt")["ETag"]
        expect_code("PreconditionFailed", s3.copy_object, Bucket=b, Key="copy3",
                    CopySource=src, CopySourceIfNoneMatch=et)
        s3.copy_object(Bucket=b, Key="copy3", CopySource=src, CopySourceIfMatch=et)
        expect_code("NoSuchKey", s3.copy_object, Bucket=b, Key="copy4",
                    CopySource={"Bucket": b, "Key": "missing"})
        s3.copy_object(Bucket=b, Key="sp copy+", CopySource={"Bucket": b, "Key": "sp ace/x"})
        eq(s3.get_object(Bucket=b, Key="sp copy+")["Body"].read(), b"sp ace/x")
    R.run(t("copy_object"), copies)

    # --- listing -----------------------------------------------------------
    lb = b + "-list"
    s3.create_bucket(Bucket=lb)
    keys = ["a", "b/1", "b/2", "b/3/x", "c d", "e+f", "z/y/x"] + ["p/%03d" % i for i in range(25)]
    for k in keys:
        s3.put_object(Bucket=lb, Key=k, Body=b"1")
    skeys = sorted(keys)

    def list_v2_pages():
        got, tok, pages = [], None, 0
        while True:
            kw = {"Bucket": lb, "MaxKeys": 4}
            if tok:
                kw["ContinuationToken"] = tok
            r = s3.list_objects_v2(**kw)
            pages += 1
            eq(r["KeyCount"], len(r.get("Contents", [])))
            got += [c["Key"] for c in r.get("Contents", [])]
            if not r["IsTruncated"]:
                break
            tok = r["NextContinuationToken"]
        eq(got, skeys)
        eq(pages, (len(keys) + 3) // 4)
        pg = s3.get_paginator("list_objects_v2")
        eq([c["Key"] for p in pg.paginate(Bucket=lb, PaginationConfig={"PageSize": 7})
            for c in p.get("Contents", [])], skeys)
    R.run(t("list_v2_pagination"), list_v2_pages)

    def list_v2_delim():
        r = s3.list_objects_v2(Bucket=lb, Delimiter="/")
        eq([c["Key"] for c in r.get("Contents", [])], ["a", "c d", "e+f"])
        eq([p["Prefix"] for p in r.get("CommonPrefixes", [])], ["b/", "p/", "z/"])
        r = s3.list_objects_v2(Bucket=lb, Delimiter="/", Prefix="b/")
        eq([c["Key"] for c in r.get("Contents", [])], ["b/1", "b/2"])
        eq([p["Prefix"] for p in r.get("CommonPrefixes", [])], ["b/3/"])
        r = s3.list_objects_v2(Bucket=lb, StartAfter="p/020", FetchOwner=True)
        eq(r["Contents"][0]["Key"], "p/021")
        if "Owner" not in r["Contents"][0]:
            raise AssertionError("FetchOwner: no Owner")
        r = s3.list_objects_v2(Bucket=lb, Prefix="c", EncodingType="url")
        # boto3 leaves keys encoded when the caller asked for encoding-type
        eq([c["Key"] for c in r["Contents"]], ["c%20d"])
        # Delimiter pages: prefixes count toward MaxKeys and resume past them
        got, tok = [], None
        while True:
            kw = {"Bucket": lb, "MaxKeys": 2, "Delimiter": "/"}
            if tok:
                kw["ContinuationToken"] = tok
            r = s3.list_objects_v2(**kw)
            got += [c["Key"] for c in r.get("Contents", [])]
            got += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
            if not r["IsTruncated"]:
                break
            tok = r["NextContinuationToken"]
        eq(sorted(got), ["a", "b/", "c d", "e+f", "p/", "z/"])
        eq(s3.list_objects_v2(Bucket=lb, MaxKeys=0)["KeyCount"], 0)
    R.run(t("list_v2_delimiter_prefix"), list_v2_delim)

    def forged_token():
        r = s3.list_objects_v2(Bucket=lb, MaxKeys=2)
        tok = r["NextContinuationToken"]
        raw = bytearray(base64.b64decode(tok))
        raw[0] ^= 1
        expect_code("InvalidArgument", s3.list_objects_v2, Bucket=lb,
                    ContinuationToken=base64.b64encode(bytes(raw)).decode())
        expect_code("InvalidArgument", s3.list_objects_v2, Bucket=lb,
                    ContinuationToken="bm90LWEtdG9rZW4=")
    R.run(t("list_v2_forged_token"), forged_token)

    def list_v1():
        got, marker = [], ""
        while True:
            r = s3.list_objects(Bucket=lb, MaxKeys=5, Marker=marker)
            got += [c["Key"] for c in r.get("Contents", [])]
            if not r["IsTruncated"]:
                break
            marker = r.get("NextMarker") or r["Contents"][-1]["Key"]
        eq(got, skeys)
        r = s3.list_objects(Bucket=lb, Delimiter="/", Prefix="b/")
        eq([p["Prefix"] for p in r.get("CommonPrefixes", [])], ["b/3/"])
    R.run(t("list_v1_marker"), list_v1)

    def list_versions():
        r = s3.list_object_versions(Bucket=lb, Prefix="b/")
        eq([v["Key"] for v in r["Versions"]], ["b/1", "b/2", "b/3/x"])
        eq({v["VersionId"] for v in r["Versions"]}, {"null"})
        eq(all(v["IsLatest"] for v in r["Versions"]), True)
    R.run(t("list_object_versions"), list_versions)

    # --- delete --------------------------------------------------------------
    def deletes():
        s3.delete_object(Bucket=lb, Key="a")
        s3.delete_object(Bucket=lb, Key="a")  # absent: still 204
        expect_code("NoSuchKey", s3.get_object, Bucket=lb, Key="a")
        r = s3.delete_objects(Bucket=lb, Delete={"Objects": [
            {"Key": "b/1"}, {"Key": "b/2"}, {"Key": "never"}]})
        eq(sorted(d["Key"] for d in r["Deleted"]), ["b/1", "b/2", "never"])
        r = s3.delete_objects(Bucket=lb, Delete={"Quiet": True, "Objects": [
            {"Key": "p/%03d" % i} for i in range(25)]})
        eq(r.get("Deleted", []), [])
        eq(r.get("Errors", []), [])
        left = [c["Key"] for c in s3.list_objects_v2(Bucket=lb).get("Contents", [])]
        eq(left, ["b/3/x", "c d", "e+f", "z/y/x"])
        expect_code("BucketNotEmpty", s3.delete_bucket, Bucket=lb)
        for k in left:
            s3.delete_object(Bucket=lb, Key=k)
        s3.delete_bucket(Bucket=lb)
        expect_code("NoSuchBucket", s3.list_objects_v2, Bucket=lb)
    R.run(t("delete_objects_bucket"), deletes)

    # --- object tagging ---------------------------------------------------------
    def obj_tagging():
        s3.put_object_tagging(Bucket=b, Key="copy1", Tagging={"TagSet": [
            {"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]})
        eq(len(s3.get_object_tagging(Bucket=b, Key="copy1")["TagSet"]), 2)
        s3.delete_object_tagging(Bucket=b, Key="copy1")
        eq(s3.get_object_tagging(Bucket=b, Key="copy1")["TagSet"], [])
        expect_code("InvalidTag", s3.put_object_tagging, Bucket=b, Key="copy1",
                    Tagging={"TagSet": [{"Key": "k%d" % i, "Value": "v"} for i in range(11)]})
    R.run(t("object_tagging"), obj_tagging)

    # --- multipart ---------------------------------------------------------------
    p1 = os.urandom(5 * 1024 * 1024)
    p2 = os.urandom(1024 * 1024 + 7)

    def multipart():
        k = "mpu/obj"
        up = s3.create_multipart_upload(Bucket=b, Key=k, ContentType="app/mpu",
                                        Metadata={"m": "1"})["UploadId"]
        e1 = s3.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=1, Body=p1)["ETag"]
        e2 = s3.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=2, Body=p2)["ETag"]
        ups = s3.list_multipart_uploads(Bucket=b)["Uploads"]
        eq([u["UploadId"] for u in ups if u["Key"] == k], [up])
        parts = s3.list_parts(Bucket=b, Key=k, UploadId=up)["Parts"]
        eq([(p["PartNumber"], p["Size"]) for p in parts], [(1, len(p1)), (2, len(p2))])
        lp = s3.list_parts(Bucket=b, Key=k, UploadId=up, MaxParts=1)
        eq(lp["IsTruncated"], True)
        lp2 = s3.list_parts(Bucket=b, Key=k, UploadId=up,
                            PartNumberMarker=lp["NextPartNumberMarker"])
        eq([p["PartNumber"] for p in lp2["Parts"]], [2])
        expect_code("InvalidPartOrder", s3.complete_multipart_upload, Bucket=b, Key=k,
                    UploadId=up, MultipartUpload={"Parts": [
                        {"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
        expect_code("InvalidPart", s3.complete_multipart_upload, Bucket=b, Key=k,
                    UploadId=up, MultipartUpload={"Parts": [
                        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}]})
        r = s3.complete_multipart_upload(Bucket=b, Key=k, UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        md5s = hashlib.md5(bytes.fromhex(e1.strip('"')) + bytes.fromhex(e2.strip('"'))).hexdigest()
        eq(r["ETag"], '"%s-2"' % md5s)
        g = s3.get_object(Bucket=b, Key=k)
        eq(g["Body"].read(), p1 + p2)
        eq(g["ContentType"], "app/mpu")
        eq(g["Metadata"], {"m": "1"})
        gp = s3.get_object(Bucket=b, Key=k, PartNumber=2)
        eq(gp["Body"].read(), p2)
        eq(gp["PartsCount"], 2)
        eq(s3.head_object(Bucket=b, Key=k, PartNumber=1)["ContentLength"], len(p1))
        expect_code("NoSuchUpload", s3.upload_part, Bucket=b, Key=k, UploadId=up,
                    PartNumber=3, Body=b"x")
        attrs = s3.get_object_attributes(Bucket=b, Key=k, ObjectAttributes=[
            "ETag", "ObjectSize", "ObjectParts", "StorageClass"])
        eq(attrs["ObjectSize"], len(p1) + len(p2))
        eq(attrs["ObjectParts"]["TotalPartsCount"], 2)
        eq(attrs["ETag"], md5s + "-2")
    R.run(t("multipart"), multipart)

    def multipart_errors():
        k = "mpu/small"
        up = s3.create_multipart_upload(Bucket=b, Key=k)["UploadId"]
        e1 = s3.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=1, Body=b"tiny")["ETag"]
        e2 = s3.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=2, Body=b"tiny2")["ETag"]
        expect_code("EntityTooSmall", s3.complete_multipart_upload, Bucket=b, Key=k,
                    UploadId=up, MultipartUpload={"Parts": [
                        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        s3.abort_multipart_upload(Bucket=b, Key=k, UploadId=up)
        expect_code("NoSuchUpload", s3.list_parts, Bucket=b, Key=k, UploadId=up)
        expect_code("NoSuchUpload", s3.abort_multipart_upload, Bucket=b, Key=k,
                    UploadId="doesnotexist")
    R.run(t("multipart_errors"), multipart_errors)

    def multipart_checksum():
        k = "mpu/ck"
        up = s3.create_multipart_upload(Bucket=b, Key=k, ChecksumAlgorithm="SHA256")["UploadId"]
        r1 = s3.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=1, Body=p1,
                            ChecksumAlgorithm="SHA256")
        r2 = s3.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=2, Body=p2,
                            ChecksumAlgorithm="SHA256")
        c1, c2 = r1["ChecksumSHA256"], r2["ChecksumSHA256"]
        eq(c1, base64.b64encode(hashlib.sha256(p1).digest()).decode())
        r = s3.complete_multipart_upload(Bucket=b, Key=k, UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": r1["ETag"], "ChecksumSHA256": c1},
                      {"PartNumber": 2, "ETag": r2["ETag"], "ChecksumSHA256": c2}]})
        comp = base64.b64encode(hashlib.sha256(base64.b64decode(c1) + base64.b64decode(c2))
                                .digest()).decode() + "-2"
        eq(r["ChecksumSHA256"], comp)
        h = s3.head_object(Bucket=b, Key=k, ChecksumMode="ENABLED")
        eq(h["ChecksumSHA256"], comp)
        g = s3.get_object(Bucket=b, Key=k, ChecksumMode="ENABLED")
        eq(g["Body"].read(), p1 + p2)
    R.run(t("multipart_checksum_composite"), multipart_checksum)

    def upload_part_copy():
        k = "mpu/copy"
        up = s3.create_multipart_upload(Bucket=b, Key=k)["UploadId"]
        c1 = s3.upload_part_copy(Bucket=b, Key=k, UploadId=up, PartNumber=1,
                                 CopySource={"Bucket": b, "Key": "mpu/obj"},
                                 CopySourceRange="bytes=0-%d" % (len(p1) - 1))
        c2 = s3.upload_part_copy(Bucket=b, Key=k, UploadId=up, PartNumber=2,
                                 CopySource={"Bucket": b, "Key": "a/b/hello.txt"})
        eq(c1["CopyPartResult"]["ETag"], '"%s"' % hashlib.md5(p1).hexdigest())
        s3.complete_multipart_upload(Bucket=b, Key=k, UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": c1["CopyPartResult"]["ETag"]},
                      {"PartNumber": 2, "ETag": c2["CopyPartResult"]["ETag"]}]})
        eq(s3.get_object(Bucket=b, Key=k)["Body"].read(), p1 + body)
    R.run(t("upload_part_copy"), upload_part_copy)

    def transfer():
        d = tempfile.mkdtemp(dir=HOME)
        src = os.path.join(d, "src")
        with open(src, "wb") as f:
            f.write(os.urandom(18 * 1024 * 1024 + 123))
        from boto3.s3.transfer import TransferConfig
        tc = TransferConfig(multipart_threshold=8 * 1024 * 1024,
                            multipart_chunksize=6 * 1024 * 1024, max_concurrency=4)
        s3.upload_file(src, b, "xfer/big.bin", Config=tc)
        dst = os.path.join(d, "dst")
        s3.download_file(b, "xfer/big.bin", dst, Config=tc)
        with open(src, "rb") as f1, open(dst, "rb") as f2:
            eq(hashlib.sha256(f1.read()).hexdigest(), hashlib.sha256(f2.read()).hexdigest())
        h = s3.head_object(Bucket=b, Key="xfer/big.bin")
        if not h["ETag"].endswith('-4"'):
            raise AssertionError("multipart etag expected, got " + h["ETag"])
    R.run(t("transfer_upload_download"), transfer)

    # --- presigned -----------------------------------------------------------------
    def presigned():
        # boto3 presigns with SigV2 unless told; s3d speaks SigV4 only.
        s3 = C.boto3_client(srv, signature_version="s3v4", **cfg)
        url = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "pre/put"},
                                        ExpiresIn=300)
        st, _, _ = http_open(srv, url, "PUT", data=b"presigned body")
        eq(st, 200)
        url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "pre/put"},
                                        ExpiresIn=300)
        st, data, _ = http_open(srv, url)
        eq((st, data), (200, b"presigned body"))
        url = s3.generate_presigned_url("head_object", Params={"Bucket": b, "Key": "pre/put"},
                                        ExpiresIn=300)
        st, _, hd = http_open(srv, url, "HEAD")
        eq((st, hd.get("Content-Length")), (200, "14"))
        url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "pre/put"},
                                        ExpiresIn=1)
        time.sleep(2.1)
        st, data, _ = http_open(srv, url)
        eq(st, 403)
        if b"AccessDenied" not in data:
            raise AssertionError("expired presign: %r" % data[:200])
        url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "pre/put"},
                                        ExpiresIn=300)
        i = url.index("X-Amz-Signature=") + 16
        forged = url[:i] + ("1" if url[i] != "1" else "2") + url[i + 1:]
        st, data, _ = http_open(srv, forged)
        eq(st, 403)
        if b"SignatureDoesNotMatch" not in data:
            raise AssertionError(data[:200])
        url = s3.generate_presigned_url("delete_object", Params={"Bucket": b, "Key": "pre/put"},
                                        ExpiresIn=300)
        st, _, _ = http_open(srv, url, "DELETE")
        eq(st, 204)
        expect_code("404", s3.head_object, Bucket=b, Key="pre/put")
    R.run(t("presigned_get_put_head_delete"), presigned)

    def post_object():
        s3v4 = C.boto3_client(srv, signature_version="s3v4", **cfg)

        def form_post(fields, filedata, filename="up.txt"):
            bnd = "----s3dtestboundary%d" % int(time.time() * 1000)
            parts = []
            for k, v in fields.items():
                parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                              % (bnd, k, v)).encode())
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                          "filename=\"%s\"\r\nContent-Type: text/plain\r\n\r\n"
                          % (bnd, filename)).encode() + filedata + b"\r\n")
            parts.append(("--%s--\r\n" % bnd).encode())
            return http_open(srv, srv.endpoint + "/" + b, "POST", data=b"".join(parts),
                             headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
        p = s3v4.generate_presigned_post(b, "post/${filename}",
                                         Fields={"success_action_status": "201"},
                                         Conditions=[{"success_action_status": "201"},
                                                     ["content-length-range", 1, 100000],
                                                     ["starts-with", "$key", "post/"]],
                                         ExpiresIn=300)
        data = os.urandom(50000)
        st, resp, _ = form_post(p["fields"], data, "file one.bin")
        eq(st, 201)
        if b"<Key>post/file one.bin</Key>" not in resp:
            raise AssertionError(resp)
        eq(s3.get_object(Bucket=b, Key="post/file one.bin")["Body"].read(), data)
        st, resp, _ = form_post(p["fields"], os.urandom(100001), "too big")
        eq(st, 400)
        expect_code("404", s3.head_object, Bucket=b, Key="post/too big")
        bad = dict(p["fields"])
        bad["x-amz-signature"] = "0" * 64
        st, resp, _ = form_post(bad, b"x", "forged")
        eq(st, 403)
        extra = dict(p["fields"])
        extra["x-amz-meta-sneaky"] = "1"
        st, resp, _ = form_post(extra, b"x", "extra")
        eq(st, 403)
        expect_code("404", s3.head_object, Bucket=b, Key="post/forged")
        p2 = s3v4.generate_presigned_post(b, "post/fixed", ExpiresIn=1)
        time.sleep(2.1)
        st, resp, _ = form_post(p2["fields"], b"late", "x")
        eq(st, 403)
        expect_code("404", s3.head_object, Bucket=b, Key="post/fixed")
    R.run(t("post_object_policy"), post_object)

    def anonymous():
        st, data, hd = http_open(srv, srv.endpoint + "/" + b + "/a/b/hello.txt")
        eq(st, 403)
        if b"AccessDenied" not in data or "x-amz-request-id" not in {k.lower() for k in hd}:
            raise AssertionError(data[:200])
    R.run(t("anonymous_denied"), anonymous)

    def wrong_key():
        import boto3
        from botocore.config import Config
        bad = boto3.session.Session(aws_access_key_id=C.ACCESS, aws_secret_access_key="wrong",
                                    region_name=C.REGION).client(
            "s3", endpoint_url=srv.endpoint, verify=srv.cert if srv.tls else None,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        expect_code("SignatureDoesNotMatch", bad.list_buckets)
        unk = boto3.session.Session(aws_access_key_id="AKIAUNKNOWN000000000",
                                    aws_secret_access_key="x", region_name=C.REGION).client(
            "s3", endpoint_url=srv.endpoint, verify=srv.cert if srv.tls else None,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        expect_code("InvalidAccessKeyId", unk.list_buckets)
    R.run(t("wrong_secret_and_unknown_key"), wrong_key)


def main():
    R = C.Results()
    for tls in (False, True):
        srv = C.Server(tls=tls)
        try:
            name = "tls" if tls else "http"
            suite(R, srv, name)
            suite(R, srv, name + "_when_required",
                  request_checksum_calculation="when_required",
                  response_checksum_validation="when_required")
            R.check("%s/sigterm_exit_0" % name, srv.stop() == 0,
                    "exit status %s" % srv.proc.returncode)
            log = srv.logtext()
            R.check("%s/log_has_no_secrets" % name,
                    C.SECRET not in log and "X-Amz-Signature" not in log
                    and "Signature=" not in log, "secret material in the log")
            if R.failed and os.environ.get("S3D_SHOWLOG"):
                print(log[-5000:])
        finally:
            srv.cleanup()
    R.finish()


if __name__ == "__main__":
    main()
