#!/usr/bin/env python3
"""test_raw.py -- s3d over hand-built HTTP: the aws-chunked encodings
(signed, signed with trailer, unsigned with trailer), checksum trailers,
and the negative cases real clients never send: wrong signatures and keys,
skewed clocks, forged chunks, bad digests, truncated bodies (raw sockets),
oversized and malformed input, XXE, garbage.  Also addressing, keep-alive,
concurrency, the command line, config/env and SIGTERM with a writer in
flight.

The SigV4 signer here is an independent implementation (hashlib/hmac).

Usage: test_raw.py BUILD_DIR
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3common as C  # noqa: E402

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


# --- checksums (reference implementations) ----------------------------------
def _crc_table(poly, width):
    tbl = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        tbl.append(c)
    return tbl


_T32C = _crc_table(0x82F63B78, 32)
_T64 = _crc_table(0x9A6C9329AC4BC9B5, 64)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ 0xFFFFFFFF).to_bytes(4, "big")


def crc64nvme(data):
    m = (1 << 64) - 1
    c = m
    for b in data:
        c = _T64[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ m).to_bytes(8, "big")


def b64(x):
    return base64.b64encode(x).decode()


# --- an independent SigV4 signer ----------------------------------------------
def _hm(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, hashlib.sha256).digest()


class Signed:
    pass


def sign(method, host, raw_path, query=(), headers=None, payload_hash=EMPTY_SHA,
         when=None, access=C.ACCESS, secret=C.SECRET, region=C.REGION):
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz[:8]
    h = {k.lower(): str(v) for k, v in (headers or {}).items()}
    h["host"] = host
    h["x-amz-date"] = amz
    h["x-amz-content-sha256"] = payload_hash
    signed = sorted(k for k in h if k not in ("content-length", "transfer-encoding"))
    ch = "".join("%s:%s\n" % (k, " ".join(h[k].split())) for k in signed)
    q = sorted("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
               for k, v in query)
    creq = "\n".join([method, raw_path, "&".join(q), ch, ";".join(signed), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = _hm(_hm(_hm(_hm(("AWS4" + secret).encode(), date), region), "s3"), "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                          % (access, scope, ";".join(signed), sig))
    s = Signed()
    s.headers, s.key, s.sig, s.amz, s.scope = h, key, sig, amz, scope
    return s


def chunk_sig(s, prev, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", s.amz, s.scope, prev, EMPTY_SHA,
                     hashlib.sha256(data).hexdigest()])
    return hmac.new(s.key, sts.encode(), hashlib.sha256).hexdigest()


def trailer_sig(s, prev, trailers):
    text = "".join("%s:%s\n" % (k, v) for k, v in sorted(trailers))
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", s.amz, s.scope, prev,
                     hashlib.sha256(text.encode()).hexdigest()])
    return hmac.new(s.key, sts.encode(), hashlib.sha256).hexdigest()


def signed_chunked_body(s, chunks, trailers=None, corrupt_chunk=None, corrupt_trailer=False):
    out, prev = b"", s.sig
    for i, c in enumerate(list(chunks) + [b""]):
        sig = chunk_sig(s, prev, c)
        if corrupt_chunk == i:
            sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        out += b"%x;chunk-signature=%s\r\n" % (len(c), sig.encode()) + c + b"\r\n"
        prev = sig
    out = out[:-2]  # the final chunk's CRLF comes after the trailers
    if trailers is not None:
        out += b"\r\n"
        for k, v in trailers:
            out += ("%s:%s\r\n" % (k, v)).encode()
        ts = trailer_sig(s, prev, trailers)
        if corrupt_trailer:
            ts = ts[:-1] + ("0" if ts[-1] != "0" else "1")
        out += ("x-amz-trailer-signature:%s\r\n" % ts).encode()
        out += b"\r\n"
    else:
        out += b"\r\n"
    return out


def unsigned_chunked_body(chunks, trailers):
    out = b""
    for c in chunks:
        out += b"%x\r\n" % len(c) + c + b"\r\n"
    out += b"0\r\n"
    for k, v in trailers:
        out += ("%s:%s\r\n" % (k, v)).encode()
    return out + b"\r\n"


# --- a tiny client ---------------------------------------------------------------
class Conn:
    def __init__(self, srv):
        self.srv = srv
        self.host = "127.0.0.1:%d" % srv.port
        self.new()

    def new(self):
        if self.srv.tls:
            ctx = ssl.create_default_context(cafile=self.srv.cert)
            self.c = http.client.HTTPSConnection("127.0.0.1", self.srv.port, context=ctx,
                                                 timeout=60)
        else:
            self.c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=60)

    def req(self, method, path, body=b"", headers=None, query=(), payload_hash=None,
            sign_it=True, **kw):
        if payload_hash is None:
            payload_hash = hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else "UNSIGNED-PAYLOAD"
        h = dict(headers or {})
        if sign_it:
            h = sign(method, self.host, path, query, h, payload_hash, **kw).headers
        target = path + ("?" + "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"),
                                                    urllib.parse.quote(v, safe="-_.~"))
                                         for k, v in query) if query else "")
        try:
            self.c.request(method, target, body=body, headers=h)
            r = self.c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.c.close()
            self.new()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.c.close()
            self.new()
        return r.status, data, {k.lower(): v for k, v in r.getheaders()}


def raw_socket(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    if srv.tls:
        ctx = ssl.create_default_context(cafile=srv.cert)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def eq(a, b):
    if a != b:
        raise AssertionError("%r != %r" % (a, b))


def want(resp, status, code=None):
    st, data, _ = resp
    if st != status or (code and ("<Code>%s</Code>" % code).encode() not in data):
        raise AssertionError("want %s %s, got %s %r" % (status, code, st, data[:300]))


def suite(R, srv, tag):
    t = lambda n: "%s/%s" % (tag, n)  # noqa: E731
    c = Conn(srv)
    B = "/raw-" + tag
    want(c.req("PUT", B), 200)

    def absent(key):
        st, _, _ = c.req("HEAD", B + "/" + key)
        eq(st, 404)

    # --- aws-chunked encodings -----------------------------------------------
    data = [os.urandom(70000), os.urandom(65536), os.urandom(100)]
    whole = b"".join(data)

    def streaming_signed():
        s = sign("PUT", c.host, B + "/chunked", (), {
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(whole))},
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        body = signed_chunked_body(s, data)
        want(c.req("PUT", B + "/chunked", body, s.headers, sign_it=False), 200)
        st, got, h = c.req("GET", B + "/chunked")
        eq((st, got), (200, whole))
        eq(h.get("content-encoding"), None)  # aws-chunked is not stored
    R.run(t("streaming_signed"), streaming_signed)

    def streaming_bad_chunk_sig():
        s = sign("PUT", c.host, B + "/badchunk", (), {
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(whole))},
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        body = signed_chunked_body(s, data, corrupt_chunk=1)
        want(c.req("PUT", B + "/badchunk", body, s.headers, sign_it=False), 403,
             "SignatureDoesNotMatch")
        absent("badchunk")
    R.run(t("streaming_forged_chunk_signature"), streaming_bad_chunk_sig)

    def streaming_signed_trailer():
        ck = b64(crc64nvme(whole))
        s = sign("PUT", c.host, B + "/sigtrailer", (), {
            "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc64nvme",
            "x-amz-decoded-content-length": str(len(whole))},
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
        body = signed_chunked_body(s, data, [("x-amz-checksum-crc64nvme", ck)])
        st, d, h = c.req("PUT", B + "/sigtrailer", body, s.headers, sign_it=False)
        eq(st, 200)
        st, got, h = c.req("GET", B + "/sigtrailer", headers={"x-amz-checksum-mode": "ENABLED"})
        eq((st, got, h.get("x-amz-checksum-crc64nvme")), (200, whole, ck))
    R.run(t("streaming_signed_trailer_crc64nvme"), streaming_signed_trailer)

    def streaming_bad_trailer_sig():
        ck = b64(crc64nvme(whole))
        s = sign("PUT", c.host, B + "/badtsig", (), {
            "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc64nvme",
            "x-amz-decoded-content-length": str(len(whole))},
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
        body = signed_chunked_body(s, data, [("x-amz-checksum-crc64nvme", ck)],
                                   corrupt_trailer=True)
        want(c.req("PUT", B + "/badtsig", body, s.headers, sign_it=False), 403,
             "SignatureDoesNotMatch")
        absent("badtsig")
    R.run(t("streaming_forged_trailer_signature"), streaming_bad_trailer_sig)

    def unsigned_trailer():
        ck = b64(crc32c(whole))
        body = unsigned_chunked_body(data, [("x-amz-checksum-crc32c", ck)])
        h = {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32c",
             "x-amz-decoded-content-length": str(len(whole))}
        want(c.req("PUT", B + "/untrailer", body, h,
                   payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER"), 200)
        st, got, hd = c.req("HEAD", B + "/untrailer", headers={"x-amz-checksum-mode": "ENABLED"})
        eq(hd.get("x-amz-checksum-crc32c"), ck)
    R.run(t("unsigned_trailer_crc32c"), unsigned_trailer)

    def unsigned_trailer_wrong():
        ck = b64(crc32c(whole + b"x"))
        body = unsigned_chunked_body(data, [("x-amz-checksum-crc32c", ck)])
        h = {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32c",
             "x-amz-decoded-content-length": str(len(whole))}
        want(c.req("PUT", B + "/badtrailer", body, h,
                   payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER"), 400, "BadDigest")
        absent("badtrailer")
        body = unsigned_chunked_body(data, [])
        want(c.req("PUT", B + "/notrailer", body, h,
                   payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER"), 400, "InvalidRequest")
        absent("notrailer")
    R.run(t("unsigned_trailer_wrong_or_missing_checksum"), unsigned_trailer_wrong)

    def header_checksums():
        for name, fn in [("crc32c", crc32c), ("crc64nvme", crc64nvme)]:
            want(c.req("PUT", B + "/hck-" + name, whole,
                       {"x-amz-checksum-" + name: b64(fn(whole))}), 200)
            want(c.req("PUT", B + "/hck-bad-" + name, whole,
                       {"x-amz-checksum-" + name: b64(fn(b"other"))}), 400, "BadDigest")
            absent("hck-bad-" + name)
    R.run(t("header_checksums_crc32c_crc64nvme"), header_checksums)

    def sha256_mismatch():
        want(c.req("PUT", B + "/shamis", b"actual body",
                   payload_hash=hashlib.sha256(b"other body").hexdigest()),
             400, "XAmzContentSHA256Mismatch")
        absent("shamis")
    R.run(t("content_sha256_mismatch"), sha256_mismatch)

    def bad_md5():
        want(c.req("PUT", B + "/md5", b"body", {"content-md5": b64(hashlib.md5(b"x").digest())}),
             400, "BadDigest")
        want(c.req("PUT", B + "/md5", b"body", {"content-md5": "notbase64!"}), 400, "InvalidDigest")
        absent("md5")
    R.run(t("wrong_content_md5"), bad_md5)

    # --- authentication --------------------------------------------------------------
    def auth_errors():
        want(c.req("GET", "/", secret="wrong-secret"), 403, "SignatureDoesNotMatch")
        want(c.req("GET", "/", access="AKIANOSUCHKEY0000000"), 403, "InvalidAccessKeyId")
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
        want(c.req("GET", "/", when=old), 403, "RequestTimeTooSkewed")
        want(c.req("GET", "/", sign_it=False), 403, "AccessDenied")
        want(c.req("GET", "/", headers={"Authorization": "AWS AKIA:abc"}, sign_it=False),
             400, None)
        # the signature covers the path: replaying on another key fails
        s = sign("GET", c.host, B + "/chunked")
        want(c.req("GET", B + "/sigtrailer", headers=s.headers, sign_it=False), 403,
             "SignatureDoesNotMatch")
    R.run(t("auth_errors"), auth_errors)

    def revoked():
        ak, sk = "AKIAREVOKEME00000001", "revoked-secret-0123456789"
        env = {"PATH": "/usr/bin:/bin", "HOME": srv.home}
        C.run([C.STORECTL, "--store", srv.store, "user", "add", "tmp", "--access-key", ak,
               "--secret-key", sk], env)
        want(c.req("GET", "/", access=ak, secret=sk), 200)
        C.run([C.STORECTL, "--store", srv.store, "user", "revoke", ak], env)
        want(c.req("GET", "/", access=ak, secret=sk), 403, "InvalidAccessKeyId")
    R.run(t("revoked_key"), revoked)

    # --- request ids, keep-alive ------------------------------------------------------
    def request_ids():
        ids = set()
        for p in ["/", B, B + "/nope", "/health"]:
            st, data, h = c.req("GET", p)
            if "x-amz-request-id" not in h or "x-amz-id-2" not in h:
                raise AssertionError("no request id on %s" % p)
            ids.add(h["x-amz-request-id"])
        eq(len(ids), 4)
        st, data, h = c.req("GET", B + "/nope")
        if ("<RequestId>%s</RequestId>" % h["x-amz-request-id"]).encode() not in data:
            raise AssertionError(data)
    R.run(t("request_ids"), request_ids)

    def keep_alive():
        cc = Conn(srv)
        for i in range(20):
            want(cc.req("PUT", B + "/ka%d" % i, b"x" * i), 200)
            want(cc.req("GET", B + "/ka%d" % i), 200)
        sock = cc.c.sock
        want(cc.req("GET", B), 200)
        want(cc.req("HEAD", B + "/ka1"), 200)
        want(cc.req("GET", B, query=[("list-type", "2")]), 200)
        # the same socket all along: s3d kept the connection open
        eq(sock is not None and cc.c.sock is sock, True)
    R.run(t("keep_alive"), keep_alive)

    # --- malformed input --------------------------------------------------------------
    def malformed_xml():
        q = [("delete", "")]
        body = b"<Delete><Object><Key>a</Key></Object"
        want(c.req("POST", B, body, {"content-md5": b64(hashlib.md5(body).digest())}, query=q),
             400, "MalformedXML")
        body = b"<Delete></Delete>"
        want(c.req("POST", B, body, {"content-md5": b64(hashlib.md5(body).digest())}, query=q),
             400, "MalformedXML")
        body = b"<Delete><Object><Key>a</Key></Object></Delete>"
        want(c.req("POST", B, body, query=q), 400, "InvalidRequest")  # no MD5/checksum
        want(c.req("PUT", B, b"<Tagging><TagSet><Tag><Key>k</Key>", query=[("tagging", "")]),
             400, "MalformedXML")
        want(c.req("PUT", B, b"not xml at all", query=[("tagging", "")]), 400, "MalformedXML")
        # XXE: an external entity must never be read
        xxe = (b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               b"<Tagging><TagSet><Tag><Key>&x;</Key><Value>v</Value></Tag></TagSet></Tagging>")
        st, data, _ = c.req("PUT", B, xxe, query=[("tagging", "")])
        eq(st, 400)
        if b"root:" in data:
            raise AssertionError("XXE leaked")
        st, data, _ = c.req("GET", B, query=[("tagging", "")])
        if b"root:" in data:
            raise AssertionError("XXE stored")
        # CompleteMultipartUpload
        st, data, _ = c.req("POST", B + "/mpx", query=[("uploads", "")])
        up = data.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
        want(c.req("POST", B + "/mpx", b"<CompleteMultipartUpload><Part>",
                   query=[("uploadId", up)]), 400, "MalformedXML")
        want(c.req("POST", B + "/mpx", b"<CompleteMultipartUpload></CompleteMultipartUpload>",
                   query=[("uploadId", up)]), 400, "MalformedXML")
        # oversized XML body
        # oversized XML body: refused from Content-Length; the server may
        # close before the client has sent it all
        big = b"<Tagging><TagSet>" + b" " * (1100 * 1024) + b"</TagSet></Tagging>"
        try:
            st, _, _ = c.req("PUT", B, big, query=[("tagging", "")])
            eq(st, 400)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
    R.run(t("malformed_xml_xxe_oversize"), malformed_xml)

    def limits():
        want(c.req("PUT", B + "/" + "k" * 1025, b"x"), 400, "KeyTooLongError")
        want(c.req("PUT", B + "/meta", b"x", {"x-amz-meta-big": "v" * 2100}), 400,
             "MetadataTooLarge")
        many = {"x-amz-meta-m%02d" % i: "v" * 40 for i in range(60)}
        want(c.req("PUT", B + "/meta", b"x", many), 400, "MetadataTooLarge")
        absent("meta")
        for bad in ["/ab", "/UPPER", "/has_underscore", "/-leading", "/a..b", "/192.168.1.1",
                    "/" + "x" * 64]:
            want(c.req("PUT", bad), 400, "InvalidBucketName")
        # EntityTooLarge is refused from the headers alone (no body sent)
        s = raw_socket(srv)
        h = sign("PUT", c.host, B + "/huge", (), {}, "UNSIGNED-PAYLOAD").headers
        s.sendall(("PUT %s/huge HTTP/1.1\r\n" % B).encode() +
                  "".join("%s: %s\r\n" % kv for kv in h.items()).encode() +
                  ("Content-Length: %d\r\n\r\n" % (6 << 30)).encode())
        resp = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            resp += d
        s.close()
        if b" 400 " not in resp.split(b"\r\n")[0] or b"EntityTooLarge" not in resp:
            raise AssertionError(resp[:300])
        absent("huge")
    R.run(t("limits_key_meta_names_size"), limits)

    def truncated_bodies():
        # plain body, connection closed halfway
        s = raw_socket(srv)
        h = sign("PUT", c.host, B + "/trunc", (), {}, "UNSIGNED-PAYLOAD").headers
        s.sendall(("PUT %s/trunc HTTP/1.1\r\n" % B).encode() +
                  "".join("%s: %s\r\n" % kv for kv in h.items()).encode() +
                  b"Content-Length: 1000000\r\n\r\n" + b"a" * 300000)
        time.sleep(0.2)
        s.close()
        # aws-chunked body, cut inside a chunk
        s2 = sign("PUT", c.host, B + "/trunc2", (), {
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(whole))},
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        body = signed_chunked_body(s2, data)
        s = raw_socket(srv)
        s.sendall(("PUT %s/trunc2 HTTP/1.1\r\n" % B).encode() +
                  "".join("%s: %s\r\n" % kv for kv in s2.headers.items()).encode() +
                  ("Content-Length: %d\r\n\r\n" % len(body)).encode() + body[:len(body) // 2])
        time.sleep(0.2)
        s.close()
        # chunked transfer-encoding, cut
        s = raw_socket(srv)
        h = sign("PUT", c.host, B + "/trunc3", (), {}, "UNSIGNED-PAYLOAD").headers
        s.sendall(("PUT %s/trunc3 HTTP/1.1\r\n" % B).encode() +
                  "".join("%s: %s\r\n" % kv for kv in h.items()).encode() +
                  b"Transfer-Encoding: chunked\r\n\r\n" + b"1000\r\n" + b"z" * 100)
        time.sleep(0.2)
        s.close()
        time.sleep(0.5)
        for k in ("trunc", "trunc2", "trunc3"):
            absent(k)
        # aws-chunked body complete on the wire but missing its final chunk
        s3_ = sign("PUT", c.host, B + "/trunc4", (), {"content-encoding": "aws-chunked"},
                   "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        body = signed_chunked_body(s3_, data)
        cut = body[:body.rindex(b"0;chunk-signature")]
        want(c.req("PUT", B + "/trunc4", cut, s3_.headers, sign_it=False), 400,
             "IncompleteBody")
        absent("trunc4")
    R.run(t("truncated_bodies_leave_nothing"), truncated_bodies)

    def garbage():
        junk = [b"\x00\x01\x02garbage\r\n\r\n", b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 300000 + b"\r\n\r\n",
                b"PUT /raw-x/k HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"PUT /raw-x/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n"]
        for j in junk:
            try:
                s = raw_socket(srv)
                s.sendall(j)
                s.settimeout(5)
                s.recv(1000)
                s.close()
            except (OSError, ssl.SSLError):
                pass
        want(c.req("GET", B + "/%zz"), 400, None)
        st, _, _ = c.req("BREW", B)
        if st not in (400, 405, 501):
            raise AssertionError(st)
        eq(srv.proc.poll(), None)
        want(c.req("GET", "/"), 200)
    R.run(t("garbage_survived"), garbage)

    def concurrency():
        errs = []

        def one(i):
            try:
                cc = Conn(srv)
                body = os.urandom(200000 + i)
                want(cc.req("PUT", B + "/conc/%d" % i, body), 200)
                st, got, _ = cc.req("GET", B + "/conc/%d" % i)
                if got != body:
                    errs.append("content %d" % i)
            except Exception as e:  # noqa: BLE001
                errs.append(str(e))
        th = [threading.Thread(target=one, args=(i,)) for i in range(24)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        if errs:
            raise AssertionError(errs[:3])
    R.run(t("concurrent_puts"), concurrency)


def cli_tests(R):
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.mkdtemp()}

    def run(*a, extra_env=None):
        e = dict(env)
        e.update(extra_env or {})
        return subprocess.run([C.S3D] + list(a), env=e, capture_output=True, timeout=20)

    R.check("cli/help", run("--help").returncode == 0 and b"--store" in run("--help").stdout)
    R.check("cli/version", run("--version").returncode == 0)
    p = run("--bogus")
    R.check("cli/bad_option_exit_2", p.returncode == 2 and len(p.stderr.splitlines()) == 1,
            p.stderr)
    R.check("cli/missing_store_exit_2", run("--listen", "127.0.0.1:1").returncode == 2)
    p = run("--store", "/nonexistent/store", "--listen", "127.0.0.1:%d" % C.free_port())
    R.check("cli/not_a_store_exit_1", p.returncode == 1 and len(p.stderr.splitlines()) == 1,
            p.stderr)
    R.check("cli/bad_listen_exit_2", run("--store", "/x", "--listen", "nonsense").returncode == 2)


def config_env_vhost(R):
    """A server configured through --config and S3D_* variables, with a
    domain for virtual-hosted-style requests."""
    srv = C.Server()  # makes the store; a second daemon on it, configured by file
    try:
        port = C.free_port()
        cfg = os.path.join(srv.dir, "s3d.conf")
        with open(cfg, "w") as f:
            f.write("# s3d config\nstore = %s\nlisten = 127.0.0.1:%d\n" % (srv.store, port))
        p = subprocess.Popen([C.S3D, "--config", cfg], stderr=subprocess.PIPE,
                             env={"PATH": "/usr/bin:/bin", "S3D_DOMAIN": "s3.test",
                                  "S3D_DURABILITY": "process"})
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            srv2 = type("S", (), {})()
            srv2.port, srv2.tls, srv2.cert, srv2.proc = port, False, None, p
            c = Conn(srv2)
            want(c.req("PUT", "/vhost-bucket"), 200)
            # virtual-hosted style: the bucket comes from Host
            c.host = "vhost-bucket.s3.test:%d" % port
            want(c.req("PUT", "/dir/key.txt", b"vhost body"), 200)
            c.host = "127.0.0.1:%d" % port
            st, data, _ = c.req("GET", "/vhost-bucket/dir/key.txt")
            eq((st, data), (200, b"vhost body"))
            c.host = "vhost-bucket.s3.test:%d" % port
            st, data, _ = c.req("GET", "/", query=[("list-type", "2")])
            if b"<Key>dir/key.txt</Key>" not in data:
                raise AssertionError(data)
            R.ok("config/file_env_virtual_host")
        except Exception as e:  # noqa: BLE001
            R.fail("config/file_env_virtual_host", e)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    finally:
        srv.cleanup()


def ownership(R):
    """Bucket ownership: an ordinary user uses only its own buckets, an
    administrator (the key storectl init made) every bucket."""
    U = ("AKIAORDINARYUSER0001", "ordinaryUserSecret/0123456789abcdefghijk")
    srv = C.Server(users=[U])
    try:
        c = Conn(srv)
        u = dict(access=U[0], secret=U[1])
        env = {"PATH": "/usr/bin:/bin", "HOME": srv.home}
        C.run([C.STORECTL, "--store", srv.store, "bucket", "create", "cli-bkt"], env)
        want(c.req("PUT", "/adm-bkt"), 200)
        want(c.req("PUT", "/adm-bkt/obj", b"admin data"), 200)
        want(c.req("PUT", "/usr-bkt", **u), 200)
        want(c.req("PUT", "/usr-bkt/obj", b"user data", **u), 200)

        def user_confined():
            for b in ("/adm-bkt", "/cli-bkt"):
                want(c.req("GET", b, query=[("list-type", "2")], **u), 403, "AccessDenied")
                eq(c.req("HEAD", b, **u)[0], 403)
                want(c.req("PUT", b + "/x", b"x", **u), 403, "AccessDenied")
            want(c.req("GET", "/adm-bkt/obj", **u), 403, "AccessDenied")
            want(c.req("DELETE", "/adm-bkt/obj", **u), 403, "AccessDenied")
            want(c.req("POST", "/adm-bkt/mp", query=[("uploads", "")], **u), 403,
                 "AccessDenied")
            # copying out of someone else's bucket into one's own
            want(c.req("PUT", "/usr-bkt/stolen", headers={"x-amz-copy-source": "/adm-bkt/obj"},
                       **u), 403, "AccessDenied")
            eq(c.req("HEAD", "/usr-bkt/stolen", **u)[0], 404)
            # a bucket that does not exist is still NoSuchBucket
            want(c.req("GET", "/no-such-bkt", **u), 404, "NoSuchBucket")
            st, data, _ = c.req("GET", "/", **u)
            eq((st, b"<Name>usr-bkt</Name>" in data, b"adm-bkt" in data, b"cli-bkt" in data),
               (200, True, False, False))
            eq(c.req("GET", "/adm-bkt/obj")[1], b"admin data")  # untouched
        R.run("ownership/user_confined_to_own_buckets", user_confined)

        def admin_everywhere():
            st, data, _ = c.req("GET", "/")
            for b in (b"adm-bkt", b"cli-bkt", b"usr-bkt"):
                if b"<Name>" + b + b"</Name>" not in data:
                    raise AssertionError("admin's ListBuckets lacks %s: %r" % (b, data[:400]))
            eq(c.req("GET", "/usr-bkt/obj")[:2], (200, b"user data"))
            want(c.req("PUT", "/cli-bkt/x", b"x"), 200)
            want(c.req("PUT", "/adm-bkt/copy", headers={"x-amz-copy-source": "/usr-bkt/obj"}),
                 200)
        R.run("ownership/admin_uses_every_bucket", admin_everywhere)

        def create_conflicts():
            want(c.req("PUT", "/adm-bkt", **u), 409, "BucketAlreadyExists")
            want(c.req("PUT", "/cli-bkt", **u), 409, "BucketAlreadyExists")
            want(c.req("PUT", "/usr-bkt", **u), 409, "BucketAlreadyOwnedByYou")
            want(c.req("PUT", "/usr-bkt"), 409, "BucketAlreadyExists")
            want(c.req("PUT", "/adm-bkt"), 409, "BucketAlreadyOwnedByYou")
            want(c.req("PUT", "/cli-bkt"), 409, "BucketAlreadyOwnedByYou")
        R.run("ownership/create_existing_bucket", create_conflicts)
    finally:
        srv.cleanup()


def slow_clients(R):
    """--header-timeout closes a connection that trickles its request
    header; a kept-alive connection may sit idle longer; a GET cut off by
    its client is logged with the bytes that went out."""
    srv = C.Server(extra_args=["--header-timeout", "1"])
    try:
        c = Conn(srv)

        def trickled_header_closed():
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            t0 = time.time()
            closed = False
            for ch in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa":
                try:
                    s.send(bytes([ch]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.25)
            s.close()
            if not closed or time.time() - t0 > 4:
                raise AssertionError("closed=%s after %.1fs" % (closed, time.time() - t0))
        R.run("slow/trickled_header_closed", trickled_header_closed)

        def idle_keepalive_kept():
            want(c.req("PUT", "/slow-bkt"), 200)
            sock = c.c.sock
            time.sleep(2.5)  # longer than --header-timeout, nothing sent
            want(c.req("GET", "/slow-bkt"), 200)
            eq(sock is not None and c.c.sock is sock, True)
        R.run("slow/idle_keepalive_kept", idle_keepalive_kept)

        def cut_get_logged():
            size = 32 << 20
            want(c.req("PUT", "/slow-bkt/big", os.urandom(size), payload_hash="UNSIGNED-PAYLOAD"),
                 200)
            s = raw_socket(srv)
            h = sign("GET", c.host, "/slow-bkt/big").headers
            s.sendall(b"GET /slow-bkt/big HTTP/1.1\r\n" +
                      "".join("%s: %s\r\n" % kv for kv in h.items()).encode() + b"\r\n")
            got = b""
            while len(got) < 100000:
                d = s.recv(65536)
                if not d:
                    break
                got += d
            rid = got.split(b"x-amz-request-id: ")[1].split(b"\r\n")[0].decode()
            s.close()
            for _ in range(50):
                line = [ln for ln in srv.logtext().splitlines() if rid in ln]
                if line:
                    break
                time.sleep(0.1)
            f = line[0].split()
            sent = int(f[7])
            if "aborted" not in line[0] or not 0 < sent < size:
                raise AssertionError("log line %r: want aborted and 0 < bytes < %d"
                                     % (line[0], size))
        R.run("slow/cut_get_logs_bytes_sent", cut_get_logged)
    finally:
        srv.cleanup()


def sigterm_inflight(R):
    """SIGTERM while a PUT is half sent: s3d exits 0 after the shutdown
    timeout and the object never appears."""
    srv = C.Server(extra_args=["--shutdown-timeout", "1"])
    try:
        c = Conn(srv)
        want(c.req("PUT", "/term"), 200)
        s = raw_socket(srv)
        h = sign("PUT", c.host, "/term/half", (), {}, "UNSIGNED-PAYLOAD").headers
        s.sendall(b"PUT /term/half HTTP/1.1\r\n" +
                  "".join("%s: %s\r\n" % kv for kv in h.items()).encode() +
                  b"Content-Length: 10000000\r\n\r\n" + b"h" * 1000000)
        time.sleep(0.3)
        t0 = time.time()
        rc = srv.stop()
        took = time.time() - t0
        s.close()
        out = subprocess.run([C.STORECTL, "--store", srv.store, "ls", "term"],
                             capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": srv.home})
        R.check("sigterm/exit_0_nothing_half_written",
                rc == 0 and b"half" not in out.stdout and took < 15,
                "rc=%s took=%.1f ls=%r" % (rc, took, out.stdout))
        fs = subprocess.run([C.STORECTL, "--store", srv.store, "fsck"], capture_output=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": srv.home})
        R.check("sigterm/fsck_clean", fs.returncode == 0, fs.stdout[-300:] + fs.stderr[-300:])
    finally:
        srv.cleanup()


def main():
    R = C.Results()
    cli_tests(R)
    for tls in (False, True):
        srv = C.Server(tls=tls)
        try:
            suite(R, srv, "tls" if tls else "http")
            R.check(("tls" if tls else "http") + "/alive_at_end", srv.proc.poll() is None)
            R.check(("tls" if tls else "http") + "/sigterm_exit_0", srv.stop() == 0)
            log = srv.logtext()
            R.check(("tls" if tls else "http") + "/log_has_no_secrets",
                    C.SECRET not in log and "Signature=" not in log
                    and "revoked-secret" not in log, "secret in log")
        finally:
            srv.cleanup()
    config_env_vhost(R)
    ownership(R)
    slow_clients(R)
    sigterm_inflight(R)
    R.finish()


if __name__ == "__main__":
    main()
