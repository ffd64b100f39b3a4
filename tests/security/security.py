#!/usr/bin/env python3
"""security.py BUILD_DIR TMPDIR -- security checks of s3d, fusefs, storectl.

Sections (SECURITY_TESTS selects some; default all):
  auth       every S3 operation s3d supports, sent anonymously, with a wrong
             signature, an unknown access key and a revoked key (header auth,
             presigned URLs, PostObject forms): 403 with the right S3 code,
             and the store is unchanged (compared through S3 and storectl)
  ownership  user B against user A's buckets: read, write, list, delete
  paths      keys, buckets, Host headers and upload ids that try to leave
             the store directory; storectl export of such keys; ".." on the
             mount
  secrets    secret keys, signatures and credentials never reach s3d's or
             fusefs's log, `storectl user list`, or other local users
  slowloris  hundreds of idle and byte-by-byte connections: normal clients
             are still served promptly, idle connections are closed

Run by run.sh (root, env -i, FAULT_PIDS set).  Only 127.0.0.1.  Prints
`ok NAME` / `FAIL NAME: reason` and ends with `N passed, N failed`.
"""
import base64
import datetime
import errno
import hashlib
import os
import re
import secrets as pysecrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "faults"))
from fcommon import (SECRET, Build, Fail, Fuse, Results, S3d,  # noqa: E402
                     form_body, md5, posix, post_policy, presign, q_enc, request,
                     scrub_environment, want, boto3_client, sign_headers,
                     sanitizer_scan)

MiB = 1 << 20
UNKNOWN = ("AKIAUNKNOWNKEY000001", "unknownSecret0123456789abcdefghijklmnopq")
REVOKED = ("AKIAREVOKEDKEY000001", "revokedSecret0123456789abcdefghijklmnopq")
WRONG_SECRET = "wrongSecret/0123456789abcdefghijklmnopqr"


def content_md5(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def xml_list(body, tag):
    return re.findall(r"<%s>(.*?)</%s>" % (tag, tag), body.decode("utf-8", "replace"), re.S)


# =================================================================== auth
def snapshot(H, b, store):
    """Everything an operation could change, read with valid credentials."""
    s = {}
    r = request(H, "GET", "/")
    s["buckets"] = sorted(xml_list(r.body, "Name"))
    for bk in s["buckets"]:
        r = request(H, "GET", "/" + bk, query=[("list-type", "2")])
        s["keys:" + bk] = sorted(zip(xml_list(r.body, "Key"), xml_list(r.body, "ETag")))
        r = request(H, "GET", "/" + bk, query=[("tagging", None)])
        s["btags:" + bk] = (r.status, sorted(xml_list(r.body, "Key")))
        r = request(H, "GET", "/" + bk, query=[("uploads", None)])
        s["uploads:" + bk] = sorted(xml_list(r.body, "UploadId"))
    r = request(H, "GET", "/sbkt/obj", query=[("tagging", None)])
    s["otags"] = (r.status, sorted(xml_list(r.body, "Value")))
    r = request(H, "GET", "/sbkt/obj")
    s["obj"] = (r.status, md5(r.body))
    return s


def storectl_snapshot(b, store):
    out = [b.sc(store, "bucket", "list").out]
    for line in out[0].splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.append(b.sc(store, "ls", "-r", parts[1]).out)
    return out


def sec_auth(R, b, T):
    store = os.path.join(T, "auth", "store")
    b.init_store(store, buckets=())
    b.sc(store, "user", "add", "revokee", "--access-key", REVOKED[0], "--secret-key",
         REVOKED[1], check=True)
    srv = S3d(b, store, os.path.join(T, "s3d-auth.log"))
    try:
        if not srv.up:
            raise Fail("s3d did not start: " + srv.logtext()[-300:])
        H = srv.host
        for path in ("/sbkt", "/emptybkt"):
            want(request(H, "PUT", path), 200, what="CreateBucket " + path)
        want(request(H, "PUT", "/sbkt/obj", b"original object"), 200)
        want(request(H, "PUT", "/sbkt/obj", b"<Tagging><TagSet><Tag><Key>k</Key><Value>v1</Value>"
                     b"</Tag></TagSet></Tagging>", query=[("tagging", None)]), 200)
        r = request(H, "PUT", "/sbkt", b"<Tagging><TagSet><Tag><Key>bk</Key><Value>bv</Value>"
                    b"</Tag></TagSet></Tagging>", query=[("tagging", None)])
        if r.status not in (200, 204):
            raise Fail("PutBucketTagging: %r" % r)
        r = want(request(H, "POST", "/sbkt/mpkey", query=[("uploads", None)]), 200)
        U = xml_list(r.body, "UploadId")[0]
        r = want(request(H, "PUT", "/sbkt/mpkey", b"part one",
                         query=[("partNumber", "1"), ("uploadId", U)]), 200)
        etag1 = r.headers.get("etag", "")
        # the revoked key worked before it was revoked
        want(request(H, "GET", "/", access=REVOKED[0], secret=REVOKED[1]), 200,
             what="the key to revoke works")
        b.sc(store, "user", "revoke", REVOKED[0], check=True)

        tag_xml = (b"<Tagging><TagSet><Tag><Key>evil</Key><Value>x</Value></Tag></TagSet>"
                   b"</Tagging>")
        del_xml = (b"<Delete><Object><Key>obj</Key></Object><Object><Key>mpkey</Key></Object>"
                   b"</Delete>")
        done_xml = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag>"
                    "</Part></CompleteMultipartUpload>" % etag1).encode()
        vers_xml = (b"<VersioningConfiguration><Status>Suspended</Status>"
                    b"</VersioningConfiguration>")
        mpq = [("uploadId", U)]
        # name, method, path, query, headers, body
        ops = [
            ("ListBuckets", "GET", "/", [], {}, b""),
            ("CreateBucket", "PUT", "/newbucket-auth", [], {}, b""),
            ("DeleteBucket", "DELETE", "/emptybkt", [], {}, b""),
            ("HeadBucket", "HEAD", "/sbkt", [], {}, b""),
            ("GetBucketLocation", "GET", "/sbkt", [("location", None)], {}, b""),
            ("PutBucketTagging", "PUT", "/sbkt", [("tagging", None)], {}, tag_xml),
            ("GetBucketTagging", "GET", "/sbkt", [("tagging", None)], {}, b""),
            ("DeleteBucketTagging", "DELETE", "/sbkt", [("tagging", None)], {}, b""),
            ("GetBucketVersioning", "GET", "/sbkt", [("versioning", None)], {}, b""),
            ("PutBucketVersioning", "PUT", "/sbkt", [("versioning", None)], {}, vers_xml),
            ("GetBucketAcl", "GET", "/sbkt", [("acl", None)], {}, b""),
            ("ListObjects", "GET", "/sbkt", [], {}, b""),
            ("ListObjectsV2", "GET", "/sbkt", [("list-type", "2")], {}, b""),
            ("ListObjectVersions", "GET", "/sbkt", [("versions", None)], {}, b""),
            ("ListMultipartUploads", "GET", "/sbkt", [("uploads", None)], {}, b""),
            ("DeleteObjects", "POST", "/sbkt", [("delete", None)],
             {"Content-MD5": content_md5(del_xml)}, del_xml),
            ("PutObject", "PUT", "/sbkt/newobj", [], {}, b"new object"),
            ("PutObject(overwrite)", "PUT", "/sbkt/obj", [], {}, b"overwritten!"),
            ("PutObject(aws-chunked)", "PUT", "/sbkt/chunked", [],
             {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "5",
              "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
             b"5;chunk-signature=" + b"0" * 64 + b"\r\nhello\r\n0;chunk-signature="
             + b"0" * 64 + b"\r\n\r\n"),
            ("GetObject", "GET", "/sbkt/obj", [], {}, b""),
            ("HeadObject", "HEAD", "/sbkt/obj", [], {}, b""),
            ("DeleteObject", "DELETE", "/sbkt/obj", [], {}, b""),
            ("CopyObject", "PUT", "/sbkt/copy", [], {"x-amz-copy-source": "/sbkt/obj"}, b""),
            ("GetObjectAttributes", "GET", "/sbkt/obj", [("attributes", None)],
             {"x-amz-object-attributes": "ETag"}, b""),
            ("PutObjectTagging", "PUT", "/sbkt/obj", [("tagging", None)], {}, tag_xml),
            ("GetObjectTagging", "GET", "/sbkt/obj", [("tagging", None)], {}, b""),
            ("DeleteObjectTagging", "DELETE", "/sbkt/obj", [("tagging", None)], {}, b""),
            ("GetObjectAcl", "GET", "/sbkt/obj", [("acl", None)], {}, b""),
            ("CreateMultipartUpload", "POST", "/sbkt/mp2", [("uploads", None)], {}, b""),
            ("UploadPart", "PUT", "/sbkt/mpkey", [("partNumber", "2")] + mpq, {}, b"part two"),
            ("UploadPartCopy", "PUT", "/sbkt/mpkey", [("partNumber", "3")] + mpq,
             {"x-amz-copy-source": "/sbkt/obj"}, b""),
            ("ListParts", "GET", "/sbkt/mpkey", mpq, {}, b""),
            ("CompleteMultipartUpload", "POST", "/sbkt/mpkey", mpq, {}, done_xml),
            ("AbortMultipartUpload", "DELETE", "/sbkt/mpkey", mpq, {}, b""),
        ]
        variants = [
            ("anonymous", dict(sign=False), "AccessDenied"),
            ("wrong_signature", dict(secret=WRONG_SECRET), "SignatureDoesNotMatch"),
            ("unknown_key", dict(access=UNKNOWN[0], secret=UNKNOWN[1]), "InvalidAccessKeyId"),
            ("revoked_key", dict(access=REVOKED[0], secret=REVOKED[1]), "InvalidAccessKeyId"),
        ]
        sc_before = storectl_snapshot(b, store)
        snap = snapshot(H, b, store)
        for name, method, path, query, hdrs, body in ops:
            bad = []
            for vname, kw, code in variants:
                ph = None
                if "x-amz-content-sha256" in hdrs:
                    ph = hdrs["x-amz-content-sha256"]
                h = dict(hdrs)
                if ph and not kw.get("sign", True):
                    pass
                elif ph:
                    h.pop("x-amz-content-sha256")
                r = request(H, method, path, body, headers=h, query=query, payload_hash=ph,
                            **kw)
                if r.status != 403 or (method != "HEAD" and r.code() != code):
                    bad.append("%s: %s %s" % (vname, r.status, r.code()))
            after = snapshot(H, b, store)
            if after != snap:
                diff = {k: (snap.get(k), after.get(k)) for k in set(snap) | set(after)
                        if snap.get(k) != after.get(k)}
                bad.append("STORE CHANGED: %s" % diff)
                snap = after
            R.check("auth/%s" % name, not bad, "; ".join(bad))

        # PostObject: the browser form carries its own credentials.
        def post(fields, key):
            body, ctype = form_body(fields, b"posted data")
            return request(H, "POST", "/sbkt", body, headers={"Content-Type": ctype}, sign=False)
        bad = []
        r = post([("key", "posted-anon")], "posted-anon")
        if r.status != 403 or r.code() != "AccessDenied":
            bad.append("no policy: %r" % r)
        for vname, kw, code in (("wrong_signature", dict(bad_signature=True),
                                 "SignatureDoesNotMatch"),
                                ("unknown_key", dict(access=UNKNOWN[0], secret=UNKNOWN[1]),
                                 "InvalidAccessKeyId"),
                                ("revoked_key", dict(access=REVOKED[0], secret=REVOKED[1]),
                                 "InvalidAccessKeyId")):
            fields, _ = post_policy("sbkt", "posted-" + vname, **kw)
            r = post(fields, "posted-" + vname)
            if r.status != 403 or r.code() != code:
                bad.append("%s: %s %s" % (vname, r.status, r.code()))
        after = snapshot(H, b, store)
        if after != snap:
            bad.append("STORE CHANGED")
            snap = after
        R.check("auth/PostObject", not bad, "; ".join(bad))
        # the control: a valid form does upload (so the checks above mean something)
        fields, _ = post_policy("sbkt", "posted-valid")
        r = post(fields, "posted-valid")
        R.check("auth/PostObject_valid_control", r.status in (200, 201, 204), "%r" % r)
        request(H, "DELETE", "/sbkt/posted-valid")
        snap = snapshot(H, b, store)

        # Presigned URLs.
        bad = []
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
        for method, path in (("GET", "/sbkt/obj"), ("HEAD", "/sbkt/obj"), ("PUT", "/sbkt/obj"),
                             ("DELETE", "/sbkt/obj"), ("GET", "/sbkt"), ("PUT", "/psbucket")):
            for vname, kw, code in (
                    ("wrong_signature", dict(secret=WRONG_SECRET), "SignatureDoesNotMatch"),
                    ("unknown_key", dict(access=UNKNOWN[0], secret=UNKNOWN[1]),
                     "InvalidAccessKeyId"),
                    ("revoked_key", dict(access=REVOKED[0], secret=REVOKED[1]),
                     "InvalidAccessKeyId"),
                    ("expired", dict(when=old, expires=60), "AccessDenied")):
                q, _ = presign(method, H, path, **kw)
                body = b"presigned overwrite" if method == "PUT" else b""
                r = request(H, method, path, body, query=q, sign=False)
                if r.status != 403 or (method != "HEAD" and r.code() != code):
                    bad.append("%s %s %s: %s %s" % (method, path, vname, r.status, r.code()))
        after = snapshot(H, b, store)
        if after != snap:
            bad.append("STORE CHANGED")
        R.check("auth/presigned_urls", not bad, "; ".join(bad))
        q, _ = presign("GET", H, "/sbkt/obj")
        r = request(H, "GET", "/sbkt/obj", query=q, sign=False)
        R.check("auth/presigned_valid_control", r.status == 200 and r.body == b"original object",
                "%r" % r)

        sc_after = storectl_snapshot(b, store)
        # the control: the snapshots do see a change made with valid credentials
        want(request(H, "PUT", "/sbkt/obj", b"<Tagging><TagSet><Tag><Key>k</Key><Value>v2"
                     b"</Value></Tag></TagSet></Tagging>", query=[("tagging", None)]), 200)
        R.check("auth/snapshot_control_sees_a_valid_change", snapshot(H, b, store) != snap,
                "a valid PutObjectTagging did not change the snapshot")
        R.check("auth/storectl_sees_no_change", sc_before == sc_after,
                "storectl before %s after %s" % (sc_before, sc_after))
        R.check("auth/s3d_alive", srv.alive() and srv.health(), srv.logtext()[-300:])
    finally:
        srv.stop()


# =================================================================== ownership
def sec_ownership(R, b, T):
    store = os.path.join(T, "owner", "store")
    b.init_store(store, buckets=())
    A = ("AKIAALICE00000000001", "aliceSecret0123456789abcdefghijklmnopqrs")
    Bo = ("AKIABOB0000000000001", "bobSecret0123456789abcdefghijklmnopqrstu")
    b.sc(store, "user", "add", "alice", "--access-key", A[0], "--secret-key", A[1], check=True)
    b.sc(store, "user", "add", "bob", "--access-key", Bo[0], "--secret-key", Bo[1], check=True)
    srv = S3d(b, store, os.path.join(T, "s3d-owner.log"))
    try:
        if not srv.up:
            raise Fail("s3d did not start")
        H = srv.host
        ka = dict(access=A[0], secret=A[1])
        kb = dict(access=Bo[0], secret=Bo[1])
        for p in ("/alice-bkt", "/alice-empty"):
            want(request(H, "PUT", p, **ka), 200, what="alice creates " + p)
        want(request(H, "PUT", "/bob-bkt", **kb), 200, what="bob creates his bucket")
        want(request(H, "PUT", "/alice-bkt/secret.txt", b"alice's secret", **ka), 200)
        up = {}

        def restore():
            """Alice's buckets exactly as she left them, whatever bob did."""
            if request(H, "HEAD", "/alice-empty", **ka).status == 404:
                want(request(H, "PUT", "/alice-empty", **ka), 200)
            r = request(H, "GET", "/alice-bkt", query=[("list-type", "2")], **ka)
            for k in xml_list(r.body, "Key"):
                if k != "secret.txt":
                    request(H, "DELETE", "/alice-bkt/" + k, **ka)
            r = request(H, "GET", "/alice-bkt/secret.txt", **ka)
            if r.body != b"alice's secret":
                want(request(H, "PUT", "/alice-bkt/secret.txt", b"alice's secret", **ka), 200)
            request(H, "DELETE", "/alice-bkt/secret.txt", query=[("tagging", None)], **ka)
            request(H, "DELETE", "/alice-bkt", query=[("tagging", None)], **ka)
            r = request(H, "GET", "/alice-bkt", query=[("uploads", None)], **ka)
            for k, u in zip(xml_list(r.body, "Key"), xml_list(r.body, "UploadId")):
                if k != "mp" or u != up.get("U"):
                    request(H, "DELETE", "/alice-bkt/" + k, query=[("uploadId", u)], **ka)
            if up.get("U") not in xml_list(r.body, "UploadId"):
                r = want(request(H, "POST", "/alice-bkt/mp", query=[("uploads", None)], **ka),
                         200)
                up["U"] = xml_list(r.body, "UploadId")[0]
            request(H, "DELETE", "/bob-bkt/stolen", **kb)

        def state():
            return (snapshot_owner(H, ka), b.sc(store, "ls", "-r", "alice-bkt").out,
                    b.sc(store, "bucket", "list").out)

        tag_xml = b"<Tagging><TagSet><Tag><Key>b</Key><Value>b</Value></Tag></TagSet></Tagging>"
        attempts = [
            ("head_bucket", "HEAD", "/alice-bkt", [], {}, b""),
            ("list_objects", "GET", "/alice-bkt", [("list-type", "2")], {}, b""),
            ("list_uploads", "GET", "/alice-bkt", [("uploads", None)], {}, b""),
            ("get_object", "GET", "/alice-bkt/secret.txt", [], {}, b""),
            ("head_object", "HEAD", "/alice-bkt/secret.txt", [], {}, b""),
            ("put_object", "PUT", "/alice-bkt/from-bob", [], {}, b"bob was here"),
            ("overwrite_object", "PUT", "/alice-bkt/secret.txt", [], {}, b"bob was here"),
            ("delete_object", "DELETE", "/alice-bkt/secret.txt", [], {}, b""),
            ("copy_out", "PUT", "/bob-bkt/stolen", [], {"x-amz-copy-source": "/alice-bkt/secret.txt"}, b""),
            ("put_object_tagging", "PUT", "/alice-bkt/secret.txt", [("tagging", None)], {}, tag_xml),
            ("put_bucket_tagging", "PUT", "/alice-bkt", [("tagging", None)], {}, tag_xml),
            ("create_multipart", "POST", "/alice-bkt/bobmp", [("uploads", None)], {}, b""),
            ("list_parts", "GET", "/alice-bkt/mp", [("uploadId", "{U}")], {}, b""),
            ("abort_upload", "DELETE", "/alice-bkt/mp", [("uploadId", "{U}")], {}, b""),
            ("delete_bucket", "DELETE", "/alice-empty", [], {}, b""),
        ]
        for name, method, path, query, hdrs, body in attempts:
            restore()
            query = [(k, up["U"] if v == "{U}" else v) for k, v in query]
            before = state()
            r = request(H, method, path, body, headers=hdrs, query=query, **kb)
            after = state()
            stolen = request(H, "GET", "/bob-bkt/stolen", **kb)
            problems = []
            if r.status != 403 or (method != "HEAD" and r.code() != "AccessDenied"):
                problems.append("bob got %s %s" % (r.status, r.code()))
            if before != after:
                problems.append("alice's data changed")
            if stolen.status == 200:
                problems.append("bob's copy holds %r" % stolen.body[:40])
            R.check("ownership/bob_cannot_%s" % name, not problems, "; ".join(problems))
        restore()
        r = request(H, "GET", "/", **kb)
        names = xml_list(r.body, "Name")
        R.check("ownership/list_buckets_shows_only_own", r.status == 200 and
                "alice-bkt" not in names and "bob-bkt" in names,
                "bob's ListBuckets: %s %s" % (r.status, names))
        r = request(H, "PUT", "/alice-bkt", **kb)
        R.check("ownership/create_taken_name_BucketAlreadyExists",
                r.status == 409 and r.code() == "BucketAlreadyExists", "%r" % r)
        fields, _ = post_policy("alice-bkt", "posted-by-bob", access=Bo[0], secret=Bo[1])
        fb, ct = form_body(fields, b"bob's post")
        r = request(H, "POST", "/alice-bkt", fb, headers={"Content-Type": ct}, sign=False)
        R.check("ownership/bob_cannot_post_object",
                r.status == 403 and request(H, "HEAD", "/alice-bkt/posted-by-bob", **ka).status == 404,
                "bob's PostObject into alice's bucket: %r" % r)
        r = request(H, "GET", "/alice-bkt/secret.txt", **ka)
        R.check("ownership/alice_still_reads", r.status == 200, "%r" % r)
    finally:
        srv.stop()


def snapshot_owner(H, ka):
    r = request(H, "GET", "/alice-bkt", query=[("list-type", "2")], **ka)
    keys = sorted(zip(xml_list(r.body, "Key"), xml_list(r.body, "ETag")))
    r = request(H, "GET", "/alice-bkt/secret.txt", query=[("tagging", None)], **ka)
    tags = sorted(xml_list(r.body, "Value"))
    r = request(H, "GET", "/alice-bkt", query=[("uploads", None)], **ka)
    ups = sorted(xml_list(r.body, "UploadId"))
    r = request(H, "GET", "/alice-bkt", query=[("tagging", None)], **ka)
    btags = (r.status, sorted(xml_list(r.body, "Value")))
    r = request(H, "GET", "/", **ka)
    return keys, tags, ups, btags, sorted(xml_list(r.body, "Name"))


# =================================================================== paths
def sec_paths(R, b, T):
    base = os.path.join(T, "paths")
    store = os.path.join(base, "store")
    b.init_store(store, buckets=("pbkt",))
    tok = "zqTOKEN" + pysecrets.token_hex(4)
    marker = os.path.join(base, "marker")
    open(marker, "w").close()
    time.sleep(0.05)
    passwd_md5 = md5(open("/etc/passwd", "rb").read())
    srv = S3d(b, store, os.path.join(base, "s3d.log"), args=["--domain", "s3.test"])
    fs = None
    try:
        if not srv.up:
            raise Fail("s3d did not start")
        H = srv.host
        results = []

        def send(what, method, path, body=b"", headers=None, query=(), **kw):
            r = request(H, method, path, body, headers=headers, query=query, **kw)
            results.append((what, r))
            if r.body and b"root:x:0:0" in r.body:
                raise Fail("%s: the response holds /etc/passwd" % what)
            return r

        tr_keys = [
            ("dotdot", "/pbkt/../../../../tmp/%s-dotdot" % tok),
            ("dotdot_enc", "/pbkt/..%%2F..%%2F..%%2F..%%2Ftmp%%2F%s-enc" % tok),
            ("dotdot_enc_dots", "/pbkt/%%2E%%2E/%%2E%%2E/%%2E%%2E/tmp/%s-encdots" % tok),
            ("absolute", "/pbkt//tmp/%s-abs" % tok),
            ("absolute_enc", "/pbkt/%%2Ftmp%%2F%s-absenc" % tok),
            ("middle", "/pbkt/a/../../../../tmp/%s-mid" % tok),
            ("backslash", "/pbkt/..\\..\\..\\tmp\\%s-bs" % tok),
            ("overlong_utf8_dot", "/pbkt/%%C0%%AE%%C0%%AE/%%C0%%AE%%C0%%AE/tmp/%s-ovl" % tok),
            ("dot_only", "/pbkt/./%s-dot" % tok),
            ("etc_passwd", "/pbkt/../../../../etc/passwd"),
        ]
        for what, p in tr_keys:
            send("PUT " + what, "PUT", p, ("data of " + what).encode())
            send("GET " + what, "GET", p)
        r = send("NUL key", "PUT", "/pbkt/%s%%00.txt" % tok, b"nul")
        R.check("paths/nul_in_key_refused", r.status == 400, "%r" % r, note="%s %s" % (r.status, r.code()))
        r = send("key 1025", "PUT", "/pbkt/" + "k" * 1025, b"long")
        R.check("paths/key_over_1024_refused", r.status == 400 and r.code() == "KeyTooLongError",
                "%r" % r)
        r = send("key 1024", "PUT", "/pbkt/" + "k" * 1024, b"long")
        R.check("paths/key_of_1024_stored", r.status == 200, "%r" % r)
        r = send("long component", "PUT", "/pbkt/" + "/".join(["c" * 300] * 3), b"long comp")
        r = send("huge path", "PUT", "/pbkt/" + "x" * 20000, b"huge")
        R.check("paths/huge_target_refused", r.status is not None and 400 <= r.status < 500 or
                (r.status is None and srv.alive()), "%r" % r,
                note="%s %s" % (r.status, r.code()))
        bucket_tricks = [("/%2E%2E/" + tok + "-b1", "PUT"), ("/../" + tok + "-b2", "PUT"),
                         ("/..", "PUT"), ("/%2E%2E", "PUT"), ("/..%2F..%2Ftmp", "PUT"),
                         ("/.%2E/x", "GET"), ("/pbkt%2F..%2F..%2Fx/" + tok, "PUT")]
        for p, m in bucket_tricks:
            send("bucket " + p, m, p, b"x" if m == "PUT" else b"")
        r = send("uploadId traversal", "PUT", "/pbkt/mpk", b"part",
                 query=[("partNumber", "1"), ("uploadId", "../../../../tmp/%s-uid" % tok)])
        R.check("paths/upload_id_traversal_NoSuchUpload", r.status == 404, "%r" % r)
        # (the key "../../../../etc/passwd" exists in pbkt: it was PUT above)
        r = send("copy-source traversal", "PUT", "/pbkt/copied",
                 headers={"x-amz-copy-source": "/pbkt/../../../../etc/passwd"})
        r2 = send("GET copied", "GET", "/pbkt/copied")
        R.check("paths/copy_source_traversal_copies_the_key", r.status in (200, 400, 404) and
                (r2.status == 404 or r2.body == b"data of etc_passwd"),
                "CopyObject %r, the copy: %r" % (r, r2), note="%s %s" % (r.status, r.code()))
        r = send("copy-source bucket traversal", "PUT", "/pbkt/copied2",
                 headers={"x-amz-copy-source": "/../../etc/passwd"})
        R.check("paths/copy_source_bucket_traversal_refused", r.status in (400, 404), "%r" % r)
        # multipart upload of a traversal key, completed
        r = send("mpu create", "POST", "/pbkt/../../../tmp/%s-mpu" % tok, query=[("uploads", None)])
        if r.status == 200:
            U = xml_list(r.body, "UploadId")[0]
            r = send("mpu part", "PUT", "/pbkt/../../../tmp/%s-mpu" % tok, b"mpu data",
                     query=[("partNumber", "1"), ("uploadId", U)])
            done = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag>"
                    "</Part></CompleteMultipartUpload>" % r.headers.get("etag", "")).encode()
            send("mpu complete", "POST", "/pbkt/../../../tmp/%s-mpu" % tok, done,
                 query=[("uploadId", U)])
        # PostObject with a traversal key
        fields, _ = post_policy("pbkt", "../../../../tmp/%s-post" % tok)
        fb, ct = form_body(fields, b"posted")
        send("post traversal", "POST", "/pbkt", fb, headers={"Content-Type": ct}, sign=False)
        # virtual-hosted style: the bucket comes from Host
        hosts = ["../../tmp.s3.test", "..s3.test", "%2e%2e.s3.test", "pbkt.s3.test/../..",
                 "pbkt/../...s3.test", "pbkt.s3.test:1/../../x", "/etc/passwd.s3.test",
                 "pbkt.s3.test\\..\\..", "x" * 5000 + ".s3.test", "PBKT.S3.TEST",
                 "pbkt.s3.test.evil.example"]
        for h in hosts:
            send("Host " + h[:40], "PUT", "/%s-vh" % tok, b"vhost", headers={"Host": h})
            send("Host GET " + h[:40], "GET", "/../../../../etc/passwd", headers={"Host": h})
        r = send("Host pbkt vhost traversal", "PUT", "/../../../tmp/%s-vh2" % tok, b"vhost2",
                 headers={"Host": "pbkt.s3.test"})

        R.check("paths/s3d_alive", srv.alive() and srv.health(), srv.logtext()[-300:])
        crashes = [w for w, r in results if r.status is None]
        R.check("paths/every_request_answered", not crashes, crashes[:5])
        five = [(w, r.status, r.code()) for w, r in results if r.status and r.status >= 500]
        R.check("paths/no_5xx", not five, five[:5])
        R.check("paths/etc_passwd_unchanged", md5(open("/etc/passwd", "rb").read()) == passwd_md5)

        # Nothing named after the token exists outside the store directory.
        def outside():
            found = []
            for top, depth in (("/tmp", 3), ("/var/tmp", 3), ("/etc", 2), ("/", 1),
                               (os.path.dirname(T), 1), (T, 6)):
                p = subprocess.run(["find", top, "-xdev", "-maxdepth", str(depth), "-name",
                                    "*%s*" % tok], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, timeout=60)
                for line in p.stdout.decode("utf-8", "replace").splitlines():
                    if not line.startswith(store + "/") and not line.startswith(
                            os.path.join(base, "export") + "/"):
                        found.append(line)
            # and nothing new under the suite's directory but the store, the
            # logs, the mount point and the export
            allowed = (store, os.path.join(base, "export"), os.path.join(base, "mnt"))
            p = subprocess.run(["find", base, "-xdev", "-newer", marker],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
            for line in p.stdout.decode("utf-8", "replace").splitlines():
                if line == base or line.endswith(".log") or \
                        line == os.path.join(base, "outside") or \
                        any(line == a or line.startswith(a + "/") for a in allowed):
                    continue
                found.append(line)
            return sorted(set(found))
        found = outside()
        R.check("paths/nothing_written_outside_store", not found, found[:10])
        p = b.sc(store, "fsck")
        R.check("paths/fsck_after", p.returncode == 0, (p.out + p.err)[-300:])

        # storectl export: every key that cannot be a path is skipped; a
        # symlink planted in DESTDIR is never followed.
        exp = os.path.join(base, "export")
        out = os.path.join(base, "outside")
        os.makedirs(exp)
        os.makedirs(out)
        os.symlink(out, os.path.join(exp, "link"))
        os.symlink(os.path.join(out, "file-target"), os.path.join(exp, "flink"))
        want(request(H, "PUT", "/pbkt/link/%s-via-symlink" % tok, b"symlink"), 200)
        want(request(H, "PUT", "/pbkt/flink", b"through a file symlink"), 200)
        want(request(H, "PUT", "/pbkt/ok-%s.txt" % tok, b"fine"), 200)
        r = request(H, "GET", "/pbkt", query=[("list-type", "2"), ("encoding-type", "url")])
        stored = [urllib.parse.unquote(k) for k in xml_list(r.body, "Key")]
        p = b.sc(store, "export", "pbkt", exp)
        R.check("paths/export_runs", p.returncode in (0, 1) and "export" in p.out,
                "exit %d: %s" % (p.returncode, p.err[-300:]), note=p.out.strip()[-160:])
        R.check("paths/export_wrote_normal_key", open(os.path.join(exp, "ok-%s.txt" % tok),
                                                      "rb").read() == b"fine"
                if os.path.exists(os.path.join(exp, "ok-%s.txt" % tok)) else False,
                "ok-TOKEN.txt not exported")
        R.check("paths/export_never_follows_symlinks", os.listdir(out) == [],
                "written through a symlink in DESTDIR: %s" % os.listdir(out))
        found = outside()
        R.check("paths/export_nothing_outside_destdir", not found,
                "%s (stored keys: %s)" % (found[:10], [k for k in stored if tok in k][:10]))

        # The mount: ".." of a bucket is the mount's root, never the store.
        mnt = os.path.join(base, "mnt")
        fs = Fuse(b, store, mnt, os.path.join(base, "fusefs.log"))
        if not fs.up:
            raise Fail("fusefs did not mount: " + fs.logtext()[-300:])
        want(request(H, "PUT", "/pbkt/sub/dir/file", b"deep"), 200)

        def same(a, c):
            sa, sc_ = os.stat(a), os.stat(c)
            return (sa.st_dev, sa.st_ino) == (sc_.st_dev, sc_.st_ino)
        R.check("paths/mount_dotdot_of_bucket_is_root", same(mnt + "/pbkt/..", mnt) and
                same(mnt + "/pbkt/sub/dir/../../..", mnt), "'..' leaves the mount's tree")
        names = os.listdir(mnt + "/pbkt")
        R.check("paths/mount_hides_unpathable_keys",
                not [n for n in names if n in ("", ".", "..") or "/" in n],
                "readdir shows %s" % names)
        res, _ = posix("write", mnt + "/pbkt/sub/..%s-m" % tok, 1, 100)
        res2, _ = posix("mkdir", mnt + "/pbkt/sub/" + "..")
        r = request(H, "GET", "/pbkt/sub/..%s-m" % tok)
        R.check("paths/mount_names_stay_keys", res.startswith("OK") and r.status == 200 and
                res2.startswith("ERR"), "write %s, GET %s, mkdir .. %s" % (res, r.status, res2))
        found = outside()
        R.check("paths/mount_nothing_outside", not found, found[:10])
    finally:
        if fs:
            fs.stop()
        srv.stop()


# =================================================================== secrets
def sec_secrets(R, b, T):
    base = os.path.join(T, "secrets")
    store = os.path.join(base, "store")
    b.init_store(store, buckets=("sbkt",))
    CAK, CSK = "AKIACAROL00000000001", "carolSecret/0123456789abcdefghijklmnopq"
    DAK, DSK = "AKIADAVE000000000001", "daveSecret+0123456789abcdefghijklmnopqr"
    p = b.sc(store, "user", "add", "carol", "--access-key", CAK, "--secret-key", CSK, check=True)
    R.check("secrets/user_add_prints_secret_once", CSK in p.out, "user add did not print it")
    p = b.sc(store, "user", "list")
    R.check("secrets/user_list_has_no_secret", p.returncode == 0 and CSK not in p.out
            and SECRET not in p.out, "user list shows a secret")
    srv = S3d(b, store, os.path.join(base, "s3d.log"))
    fs = Fuse(b, store, os.path.join(base, "mnt"), os.path.join(base, "fusefs.log"),
              opts=["-d"])
    sensitive = {SECRET: "admin secret", CSK: "carol's secret", DSK: "dave's secret"}
    try:
        if not (srv.up and fs.up):
            raise Fail("s3d up %s, fusefs up %s" % (srv.up, fs.up))
        H = srv.host
        kc = dict(access=CAK, secret=CSK)
        # header-signed requests (signatures recorded)
        for method, path, body in (("PUT", "/sbkt/a.txt", b"hello"), ("GET", "/sbkt/a.txt", b""),
                                   ("GET", "/sbkt", b""), ("DELETE", "/sbkt/nothing", b"")):
            h, sig = sign_headers(method, H, path, (), {}, hashlib.sha256(body).hexdigest(), **kc)
            sensitive[sig] = "header signature"
            sensitive[h["authorization"]] = "Authorization header"
            request(H, method, path, body, headers={"Host": H, **{k: v for k, v in h.items()
                                                                 if k != "host"}}, sign=False)
        # wrong signature: SignatureDoesNotMatch
        h, sig = sign_headers("GET", H, "/sbkt/a.txt", (), {}, hashlib.sha256(b"").hexdigest(),
                              access=CAK, secret=WRONG_SECRET)
        sensitive[sig] = "wrong signature"
        r = request(H, "GET", "/sbkt/a.txt", headers={k: v for k, v in h.items() if k != "host"},
                    sign=False)
        R.check("secrets/control_wrong_signature_refused", r.status == 403, "%r" % r)
        # presigned URLs, good and bad
        for method, path, body in (("GET", "/sbkt/a.txt", b""), ("PUT", "/sbkt/p.txt", b"pp")):
            for kw in (dict(kc), dict(access=CAK, secret=WRONG_SECRET)):
                q, sig = presign(method, H, path, **kw)
                sensitive[sig] = "X-Amz-Signature"
                cred = dict(q)["X-Amz-Credential"]
                sensitive[cred] = "X-Amz-Credential"
                sensitive[q_enc(cred)] = "X-Amz-Credential (encoded)"
                request(H, method, path, body, query=q, sign=False)
        # a user added while s3d runs, used at once
        p = b.sc(store, "user", "add", "dave", "--access-key", DAK, "--secret-key", DSK)
        # (ListBuckets: sbkt was made by storectl, so it has no owner and
        # only admins may use it; see docs/s3-compat.md, ownership)
        r = request(H, "GET", "/", access=DAK, secret=DSK)
        R.check("secrets/control_user_added_live_works", p.returncode == 0 and r.status == 200,
                "user add %d, GET %r" % (p.returncode, r))
        # PostObject, into a bucket carol owns
        r = request(H, "PUT", "/cbkt", access=CAK, secret=CSK)
        R.check("secrets/control_user_creates_bucket", r.status == 200, "%r" % r)
        fields, sig = post_policy("cbkt", "posted.txt", access=CAK, secret=CSK)
        sensitive[sig] = "POST policy signature"
        fb, ct = form_body(fields, b"posted")
        r = request(H, "POST", "/cbkt", fb, headers={"Content-Type": ct}, sign=False)
        R.check("secrets/control_post_ok", r.status in (200, 201, 204), "%r" % r)
        fields, sig = post_policy("cbkt", "posted2.txt", access=CAK, secret=CSK, bad_signature=True)
        sensitive[sig] = "bad POST policy signature"
        fb, ct = form_body(fields, b"posted")
        request(H, "POST", "/cbkt", fb, headers={"Content-Type": ct}, sign=False)
        # boto3 (aws-chunked / trailer checksums as it sends them by default)
        try:
            c = boto3_client(srv.endpoint, CAK, CSK)
            c.put_object(Bucket="cbkt", Key="boto.txt", Body=b"x" * 100000)
            c.get_object(Bucket="cbkt", Key="boto.txt")["Body"].read()
            url = c.generate_presigned_url("get_object", Params={"Bucket": "sbkt",
                                                                 "Key": "boto.txt"})
            qs = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            sensitive[qs["X-Amz-Signature"][0]] = "boto3 X-Amz-Signature"
            sensitive[qs["X-Amz-Credential"][0]] = "boto3 X-Amz-Credential"
            u = urllib.parse.urlsplit(url)
            request(H, "GET", u.path, raw_query=u.query, sign=False)
        except ImportError:
            pass
        # the mount
        posix("write", fs.mnt + "/sbkt/m.txt", 1, 5000)
        posix("read", fs.mnt + "/sbkt/a.txt")
        posix("listdir", fs.mnt + "/sbkt")
        time.sleep(0.3)
        for name, text in (("s3d_log", srv.logtext()), ("fusefs_log", fs.logtext())):
            hits = sorted({why for val, why in sensitive.items() if val and val in text})
            R.check("secrets/%s_clean" % name, not hits, "the log holds: %s" % hits,
                    note="%d values checked in %d bytes" % (len(sensitive), len(text)))
        R.check("secrets/s3d_log_has_no_query_strings",
                not re.search(r"X-Amz-(Signature|Credential)", srv.logtext(), re.I),
                "X-Amz-Signature/Credential in the access log")
        at_rest(R, T, base, store, (CSK, SECRET, DSK))
    finally:
        fs.stop()
        srv.stop()


def at_rest(R, T, base, store, secret_values):
    """The catalog holds every secret key: no other local user may read it
    (checked while s3d and fusefs run, so the WAL exists too).  The suite's
    directories are made traversable so that only the store's own modes
    decide."""
    for d in (T, base):
        os.chmod(d, 0o755)
    try:
        leaks = []
        for f in sorted(os.listdir(store)):
            path = os.path.join(store, f)
            if not f.startswith("catalog.db"):
                continue
            p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "cat", path], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=30)
            if p.returncode == 0:
                has = any(v.encode() in p.stdout for v in secret_values)
                leaks.append("%s (mode %o)%s" % (f, os.stat(path).st_mode & 0o777,
                                                 " holds a secret key in clear" if has else ""))
        R.check("secrets/catalog_unreadable_by_other_users", not leaks,
                "user nobody can read %s (store dir mode %o)"
                % (leaks, os.stat(store).st_mode & 0o777))
    finally:
        os.chmod(T, 0o700)


# =================================================================== slowloris
def trickle(socks, payload, stop, interval=1.0):
    """Send one more byte of `payload` on every socket each interval."""
    i = 0
    while not stop.is_set() and i < len(payload):
        for s in list(socks):
            try:
                s.send(payload[i:i + 1])
            except OSError:
                socks.remove(s)
        i += 1
        stop.wait(interval)


def closed_by_peer(s):
    s.setblocking(False)
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError as e:
        return e.errno in (errno.ECONNRESET, errno.EPIPE)


def normal_client(H, seconds, results, stop=None):
    t_end = time.time() + seconds
    while time.time() < t_end and not (stop and stop.is_set()):
        r = request(H, "GET", "/sbkt/obj", timeout=10)
        results.append((r.status, r.seconds))
        time.sleep(0.25)


def sec_slowloris(R, b, T):
    store = os.path.join(T, "slow", "store")
    b.init_store(store, buckets=("sbkt",))
    timeout = 4
    srv = S3d(b, store, os.path.join(T, "s3d-slow.log"), args=["--timeout", str(timeout)])
    socks_idle, socks_trickle = [], []
    stop = threading.Event()
    try:
        if not srv.up:
            raise Fail("s3d did not start")
        H = srv.host
        want(request(H, "PUT", "/sbkt/obj", b"payload"), 200)
        n = int(os.environ.get("SLOWLORIS_N", "220"))
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            (socks_idle if i % 2 else socks_trickle).append(s)
        t_open = time.time()
        payload = b"GET /sbkt/obj HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        th = threading.Thread(target=trickle, args=(socks_trickle, payload, stop), daemon=True)
        th.start()
        res = []
        normal_client(H, timeout + 6, res)
        bad = [x for x in res if x[0] != 200 or x[1] > 2.0]
        R.check("slowloris/normal_client_served_promptly", res and not bad,
                "%d of %d requests failed or took > 2 s: %s" % (len(bad), len(res), bad[:5]),
                note="%d requests, slowest %.2fs, %d slow connections open" % (
                    len(res), max(x[1] for x in res) if res else -1, n))
        deadline = t_open + timeout + 8
        while time.time() < deadline:
            if all(closed_by_peer(s) for s in socks_idle):
                break
            time.sleep(0.5)
        still = sum(1 for s in socks_idle if not closed_by_peer(s))
        R.check("slowloris/idle_connections_closed", still == 0,
                "%d of %d idle connections still open %.0f s after --timeout %d" % (
                    still, len(socks_idle), time.time() - t_open, timeout),
                note="all %d closed within %.0f s" % (len(socks_idle), time.time() - t_open))
        alive_trickle = len(socks_trickle)
        R.check("slowloris/s3d_alive", srv.alive() and srv.health(), srv.logtext()[-300:])
        stop.set()
        th.join(5)
        print("# %d of %d byte-by-byte connections still open after %.0f s" % (
            alive_trickle, n - len(socks_idle), time.time() - t_open), flush=True)
    finally:
        stop.set()
        for s in socks_idle + socks_trickle:
            s.close()
        srv.stop()

    # Saturation: more byte-by-byte connections than --max-connections.  A
    # connection that keeps sending one byte a second is never idle, so only
    # a limit on the time to send the request header frees its slot.
    maxc, timeout = 32, 3
    srv = S3d(b, store, os.path.join(T, "s3d-slow2.log"),
              args=["--timeout", str(timeout), "--max-connections", str(maxc)])
    socks = []
    stop = threading.Event()
    try:
        if not srv.up:
            raise Fail("s3d did not start")
        H = srv.host
        for i in range(maxc + 8):
            try:
                socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            except OSError:
                break
        payload = b"GET /sbkt/obj HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        th = threading.Thread(target=trickle, args=(socks, payload, stop), daemon=True)
        th.start()
        time.sleep(timeout * 3 + 2)
        res = []
        normal_client(H, 3, res)
        ok = [x for x in res if x[0] == 200 and x[1] <= 2.0]
        R.check("slowloris/not_starved_by_trickling_connections", len(ok) == len(res) and res,
                "with %d connections sending a header byte per second (--max-connections %d, "
                "--timeout %d), %d of %d normal requests were served after %d s: %s"
                % (len(socks), maxc, timeout, len(ok), len(res), timeout * 3 + 2, res[:3]))
        stop.set()
        th.join(5)
    finally:
        stop.set()
        for s in socks:
            s.close()
        srv.stop()


# =================================================================== main
def main():
    build, T = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    b = Build(build, T)
    scrub_environment(b.home)
    R = Results()
    sections = {"auth": sec_auth, "ownership": sec_ownership, "paths": sec_paths,
                "secrets": sec_secrets, "slowloris": sec_slowloris}
    chosen = os.environ.get("SECURITY_TESTS", " ".join(sections)).split()
    for name in chosen:
        t0 = time.time()
        R.section(name, sections[name], b, T)
        print("# %s: %.0fs" % (name, time.time() - t0), flush=True)
    sanitizer_scan(R, T)
    R.finish()


if __name__ == "__main__":
    main()
