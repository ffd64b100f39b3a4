#!/usr/bin/env python3
"""make_seeds.py -- (re)write the hand-made seed inputs of tests/fuzz/corpus/.

Each harness reads its input in its own small format (see the comment at the
top of tests/fuzz/fuzz_NAME.c); the seeds here are valid examples of each,
many taken from the AWS examples that s3d/tests/test_parsers.c checks.
Seeds are named seed-*; inputs the fuzzers found worth keeping (regressions
of fixed bugs) are named regress-* and are never touched by this script.

    python3 tests/fuzz/make_seeds.py        # from the repository root
"""
import base64
import hashlib
import hmac
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def auth_hdr(signed, sig, region="us-east-1", sep=", "):
    return ("AWS4-HMAC-SHA256 Credential=%s/20130524/%s/s3/aws4_request%s"
            "SignedHeaders=%s%sSignature=%s" % (AK, region, sep, signed, sep, sig))


def hmac256(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg,
                    hashlib.sha256).digest()


def signing_key():
    k = hmac256(("AWS4" + SK).encode(), "20130524")
    k = hmac256(k, "us-east-1")
    k = hmac256(k, "s3")
    return hmac256(k, "aws4_request")


# --------------------------------------------------------------- sigv4
def sigv4():
    h = "sigv4"
    get_sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    get_hdrs = auth_hdr("host;range;x-amz-content-sha256;x-amz-date", get_sig)
    write(h, "auth-get", b"\x00\x00" + get_hdrs.encode())
    write(h, "auth-nospace", b"\x00\x00" + auth_hdr(
        "host;x-amz-date", get_sig, sep=",").encode())
    write(h, "auth-sigv2", b"\x00\x00AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
    write(h, "auth-slash-ak", b"\x00\x00AWS4-HMAC-SHA256 Credential=a/b/20130524/r/s3/"
          b"aws4_request,SignedHeaders=Host;X-Amz-Date,Signature=" + EMPTY_SHA.encode())
    pq = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
          "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
          "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
          "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    write(h, "presigned-query", b"\x01\x00" + pq.encode())
    write(h, "presigned-sha", b"\x01\x00" + (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fr%2Fs3%2F"
        "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=604800&"
        "X-Amz-SignedHeaders=Host%3BX-Amz-Date&X-Amz-Signature=" + EMPTY_SHA +
        "&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD").encode())
    # Whole requests (mode 2), the AWS GET example and friends.
    req = ("GET\n/test.txt\nHost:examplebucket.s3.amazonaws.com\nRange:bytes=0-9\n"
           "x-amz-content-sha256:" + EMPTY_SHA + "\nx-amz-date:" + DATE +
           "\nAuthorization:" + get_hdrs + "\n")
    write(h, "verify-get", b"\x02\x00" + req.encode())
    write(h, "verify-get-region", b"\x02\x01" + req.encode())
    write(h, "verify-get-badsig", b"\x02\x00" + req.replace("bytes=0-9", "bytes=0-8").encode())
    put_sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    put = ("PUT\n/test%24file.text\nHost:examplebucket.s3.amazonaws.com\n"
           "Date:Fri, 24 May 2013 00:00:00 GMT\nx-amz-date:" + DATE +
           "\nx-amz-storage-class:REDUCED_REDUNDANCY\nx-amz-content-sha256:"
           "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
           "Authorization:" + auth_hdr(
               "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
               put_sig) + "\n")
    write(h, "verify-put", b"\x02\x00" + put.encode())
    write(h, "verify-put-raw-path", b"\x02\x00" + put.replace(
        "/test%24file.text", "/test$file.text").encode())
    lc_sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    lst = ("GET\n/?max-keys=2&prefix=J\nHost:examplebucket.s3.amazonaws.com\n"
           "x-amz-date:" + DATE + "\nx-amz-content-sha256:" + EMPTY_SHA +
           "\nAuthorization:" + auth_hdr("host;x-amz-content-sha256;x-amz-date",
                                         lc_sig) + "\n")
    write(h, "verify-list", b"\x02\x00" + lst.encode())
    write(h, "verify-presigned", b"\x02\x00GET\n/test.txt?" + pq.encode() +
          b"\nHost:examplebucket.s3.amazonaws.com\n")
    datehdr = ("GET\n/bucket/key\nHost:localhost:9000\nDate:Fri, 24 May 2013 00:00:00 GMT\n"
               "x-amz-content-sha256:UNSIGNED-PAYLOAD\nAuthorization:" + auth_hdr(
                   "date;host;x-amz-content-sha256",
                   "5566c9b86eae7d898f668755e9f8fe0e0717e6098b4fffc6cf3adcf589afeabd") + "\n")
    write(h, "verify-date-header", b"\x02\x00" + datehdr.encode())
    stream = ("PUT\n/examplebucket/chunkObject.txt\nHost:s3.amazonaws.com\nx-amz-date:" +
              DATE + "\nx-amz-storage-class:REDUCED_REDUNDANCY\nx-amz-content-sha256:"
              "STREAMING-AWS4-HMAC-SHA256-PAYLOAD\nContent-Encoding:aws-chunked\n"
              "x-amz-decoded-content-length:66560\nContent-Length:66824\nAuthorization:" +
              auth_hdr("content-encoding;content-length;host;x-amz-content-sha256;"
                       "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                       "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9") +
              "\n")
    write(h, "verify-streaming", b"\x02\x00" + stream.encode())
    # Canonical requests (mode 3).
    write(h, "canonical-query", b"\x03\x00GET\n/bucket?prefix=a%20b&delimiter=%2F&list-type=2"
          b"&x=%7e&plus=a+b&empty&uploads&z=%E2%82%AC&A=1\nhost\nUNSIGNED-PAYLOAD\n"
          b"Host:localhost:9000\n")
    write(h, "canonical-presigned-reencode", b"\x03\x03GET\n/a%21b(c)/d?b=2&a=z&a=y&"
          b"X-Amz-Signature=00\nhost;x-amz-meta-a\nX\nHost:h\nX-Amz-Meta-A: one   two \t three \n")


# ------------------------------------------------------------- chunked
def chunk_sig(prev, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", DATE, SCOPE, prev, EMPTY_SHA,
                     hashlib.sha256(data).hexdigest()])
    return hmac256(signing_key(), sts).hex()


def chunked():
    h = "chunked"
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    # Raw bodies (mode 0): flags byte, slice table, then the body.
    # The AWS example, shortened: chunks of 1024 and 1 bytes of 'a'.
    prev = seed
    body = b""
    for n in (1024, 1, 0):
        data = b"a" * n
        sig = chunk_sig(prev, data)
        body += b"%x;chunk-signature=%s\r\n" % (n, sig.encode()) + data + (b"\r\n" if n else b"")
        prev = sig
    body += b"\r\n"
    write(h, "raw-signed", bytes([0x01, 3, 7, 200, 1]) + body)
    unsigned = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
    write(h, "raw-unsigned-trailer", bytes([0x02, 2, 3, 9]) + unsigned)
    write(h, "raw-unsigned-padded", bytes([0x02, 0]) +
          b"3\r\nabc\r\n0\r\n\r\nx-amz-checksum-crc64nvme:AAAAAAAAAAA=\r\n\r\n")
    write(h, "raw-unsigned-notrailer", bytes([0x02, 1, 0]) + b"3\r\nabc\r\n0\r\n\r\n")
    write(h, "raw-plain", bytes([0x00, 0]) + b"a\r\n0123456789\r\n0\r\n\r\n")
    # Built bodies (flag 0x80): the harness signs the chunks itself.
    # flags, slice table, mutation (position u16, xor byte), then chunk
    # records (length byte, data) up to a 0 length, then trailer lines.
    write(h, "built-signed", bytes([0x81 | 0x20, 2, 5, 64, 0, 0, 0]) +
          b"\x05hello\x03abc")
    write(h, "built-signed-trailer", bytes([0x83, 1, 17, 0, 0, 0]) +
          b"\x10abcdefghijklmnop\x01x\x00x-amz-checksum-crc32c:sOO8/Q==")
    write(h, "built-signed-padded", bytes([0x83 | 0x10, 0, 0, 0, 0]) +
          b"\x01x\x00X-Amz-Checksum-CRC32: DUoRhQ== \nx-amz-meta-a:b")
    write(h, "built-unsigned-trailer", bytes([0x82, 0, 0, 0, 0]) +
          b"\x04data\x00x-amz-checksum-sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    write(h, "built-big", bytes([0xc1, 1, 255, 0, 0, 0]) + b"\x40" + b"y" * 64)
    write(h, "built-mutated", bytes([0x81, 0, 40, 0, 1]) + b"\x05hello\x05world")
    write(h, "built-length", bytes([0x80 | 0x20 | 0x08, 0, 0, 0, 0]) + b"\x03abc")


# --------------------------------------------------------------- range
def rng():
    h = "range"

    def inp(size, mtime, flags, *fields):
        return struct.pack("<QqB", size, mtime, flags) + "\n".join(fields).encode()

    t = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT
    write(h, "first-ten", inp(100, t, 0, "bytes=0-9", "", "", "", "", "abc"))
    write(h, "suffix", inp(100, t, 0, "bytes=-20"))
    write(h, "open", inp(100, t, 0, "Bytes = 5-"))
    write(h, "multi", inp(100, t, 0, " bytes=0-1, 5-6 "))
    write(h, "unsat", inp(10, t, 0, "bytes=10-"))
    write(h, "huge", inp(1 << 40, t, 0x80, "bytes=18446744073709551616-"))
    write(h, "dates", inp(5, t, 0x3f, "bytes=1-1", '"abc", W/"def"', '*',
                          "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                          '"abc"'))
    write(h, "asctime", inp(5, t, 0x3c, "bytes=-0", "abc", "W/\"x\",,y",
                            "Sun Nov  6 08:49:37 1994", "Thu, 01 Jan 1970 00:00:00 GMT",
                            "9b2cf535f27731c974343645a3985328-2"))
    write(h, "leap", inp(5, 951825599, 0x24, "", "", "", "Tue, 29 Feb 2000 11:59:59 GMT",
                         "Mon, 29 Feb 1900 00:00:00 GMT", "x"))


# -------------------------------------------------------------- urlenc
def urlenc():
    h = "urlenc"
    write(h, "query", b"\x01prefix=a%20b&delimiter=%2F&list-type=2&x=%7e&plus=a+b&empty&uploads"
          b"&z=%E2%82%AC&A=1")
    write(h, "path", b"\x04/bucket/a%21b%28c%29/%E2%82%AC")
    write(h, "badescape", b"\x03a%zz%4&%00+%2B")
    write(h, "many", b"\x08" + b"a&" * 40 + b"&&=&b=")
    write(h, "utf8", "\x06Grüße/日本語 ~-._".encode())


# ------------------------------------------------------------ checksum
def checksum():
    h = "checksum"
    write(h, "md5-b64", b"\x00\x01" + base64.b64encode(hashlib.md5(b"x").digest()))
    write(h, "crc32-b64", b"\x01\x03DUoRhQ==")
    write(h, "sha256-b64", b"\x04\x10" + base64.b64encode(hashlib.sha256(b"").digest()))
    write(h, "pad", b"\x02\x05AAAAAAAAAAA=")
    write(h, "header", b"\x03\x02x-amz-checksum-CRC64NVME")
    write(h, "name", b"\x05\x02crc32c")
    write(h, "noncanon", b"\x06\x02QR==")
    write(h, "data", b"\x17\x07" + bytes(range(256)))


# --------------------------------------------------------------- xmlin
def xmlin():
    h = "xmlin"
    ns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    write(h, "location", '<CreateBucketConfiguration%s><LocationConstraint>eu-west-1'
          '</LocationConstraint></CreateBucketConfiguration>' % ns)
    write(h, "location-empty", '<?xml version="1.0" encoding="UTF-8"?>\n'
          '<CreateBucketConfiguration/>')
    write(h, "tagging", '<Tagging><TagSet><Tag><Key>project</Key><Value>blue &amp; green'
          '</Value></Tag><Tag><Key>env</Key><Value></Value></Tag></TagSet></Tagging>')
    write(h, "tagging-dup", '<Tagging%s><TagSet><Tag><Key>a</Key><Value>1</Value></Tag>'
          '<Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>' % ns)
    write(h, "delete", '<Delete%s><Quiet>true</Quiet><Object><Key>sample1.txt</Key></Object>'
          '<Object><Key>sample2.txt</Key><VersionId>OYcLXagmS.WaD..oyH4KRguB95_YhLs7'
          '</VersionId></Object></Delete>' % ns)
    write(h, "delete-cdata", '<Delete><Object><Key><![CDATA[a<b>&c]]></Key></Object>'
          '<Object><Key>tab&#9;cr&#13;lf&#10;</Key></Object></Delete>')
    write(h, "complete", '<CompleteMultipartUpload%s><Part><PartNumber>1</PartNumber>'
          '<ETag>"a54357aff0632cce46d942af68356b38"</ETag><ChecksumCRC32>DUoRhQ=='
          '</ChecksumCRC32></Part><Part><PartNumber>2</PartNumber><ETag>'
          '"0c78aef83f66abc1fa1e8477f296d394"</ETag></Part></CompleteMultipartUpload>' % ns)
    write(h, "complete-bad", '<CompleteMultipartUpload><Part><PartNumber>0x1</PartNumber>'
          '<ETag>x</ETag></Part></CompleteMultipartUpload>')
    write(h, "versioning", '<VersioningConfiguration%s><Status>Enabled</Status>'
          '</VersioningConfiguration>' % ns)
    write(h, "dtd", '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete><Object>'
          '<Key>&e;</Key></Object></Delete>')


# ---------------------------------------------------------------- post
def post():
    h = "post"
    pol = {"expiration": "2030-12-30T12:00:00.000Z",
           "conditions": [{"bucket": "bucket"}, ["starts-with", "$key", "user/eric/"],
                          {"acl": "public-read"},
                          {"success_action_redirect": "http://example.com/ok.html"},
                          ["starts-with", "$Content-Type", "image/"],
                          {"x-amz-meta-uuid": "14365123651274"},
                          ["starts-with", "$x-amz-meta-tag", ""],
                          {"x-amz-credential": AK + "/20151229/us-east-1/s3/aws4_request"},
                          {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                          {"x-amz-date": "20151229T000000Z"},
                          ["content-length-range", 1, 10485760]]}
    fields = ("key=user/eric/${filename}\nacl=public-read\n"
              "success_action_redirect=http://example.com/ok.html\nContent-Type=image/jpeg\n"
              "x-amz-meta-uuid=14365123651274\nx-amz-meta-tag=\n"
              "x-amz-credential=" + AK + "/20151229/us-east-1/s3/aws4_request\n"
              "x-amz-algorithm=AWS4-HMAC-SHA256\nx-amz-date=20151229T000000Z\n"
              "x-amz-signature=00\nfile=\n")
    write(h, "policy-aws", b"\x00" + json.dumps(pol).encode() + b"\x00" + fields.encode())
    write(h, "policy-b64", b"\x01" + base64.b64encode(json.dumps(pol).encode()) + b"\x00" +
          fields.encode())
    write(h, "policy-escapes", b"\x00" + b'{"expiration":"2031-01-01T00:00:00Z","conditions":'
          b'[["eq","$key","a\\u00e9\\n\\"\\/\\\\\\t"],{"x-ignore-me":"1"},'
          b'["content-length-range","0","5"]],"x":[1,-2.5e3,true,false,null,{}]}' +
          b"\x00key=a\xc3\xa9\n\"/\\\t\nx-ignore-z=1\n")
    write(h, "policy-expired", b"\x00" + b'{"expiration":"2001-01-01T00:00:00Z",'
          b'"conditions":[]}\x00')
    # Form (mode 2): slice byte, boundary, newline, multipart body.
    def part(name, value, filename=None, ctype=None):
        d = 'Content-Disposition: form-data; name="%s"' % name
        if filename is not None:
            d += '; filename="%s"' % filename
        hdr = d + "\r\n" + ("Content-Type: %s\r\n" % ctype if ctype else "")
        return ("--XbOuNdArY\r\n" + hdr + "\r\n").encode() + value + b"\r\n"
    form = (part("key", b"user/eric/${filename}") + part("acl", b"public-read") +
            part("policy", base64.b64encode(json.dumps(pol).encode())) +
            part("x-amz-signature", b"0" * 64) +
            part("file", b"GIF89a..." * 20, "C:/photos/cat.gif", "image/gif") +
            part("after", b"ignored") + b"--XbOuNdArY--\r\n")
    write(h, "form", b"\x02\x00XbOuNdArY\n" + form)
    write(h, "form-slices", b"\x02\x06XbOuNdArY\n" + form)
    write(h, "form-quoted-boundary", b'\x02\x20"q q"\n' + form.replace(b"XbOuNdArY", b"q q"))
    write(h, "form-long-value", b"\x02\x10B\n" + part("x-amz-meta-a", b"v" * 3000).replace(
        b"XbOuNdArY", b"B") + b"--B--\r\n")
    write(h, "key-filename", b"\x03" + b"uploads/${filename}/x\x00C:\\dir/sub/photo.jpg")


# ------------------------------------------------------------- pathmap
def pathmap():
    h = "pathmap"
    # flags, size (u8), mode selector, then prefix \0 key-or-name \0 extra
    write(h, "file", b"\x00\x05\x00dir/sub/\x00dir/sub/file.txt\x00")
    write(h, "marker", b"\x00\x00\x00dir/\x00dir/\x00")
    write(h, "legacy", b"\x00\x00\x00\x00photos_$folder$\x00")
    write(h, "s3fs-dir", b"\x00\x00\x01a/\x00a/b\x00")
    write(h, "hidden", b"\x00\x01\x00a/\x00a//b\x00")
    write(h, "dots", b"\x00\x01\x00\x00..\x00.")
    write(h, "conflict", b"\x01\x01\x00p/\x00p/name.~file\x00name")
    write(h, "prefix", b"\x02\x00\x00x/\x00x/y/\x00")
    write(h, "long", b"\x00\x01\x00\x00" + b"n" * 256 + b"\x00")
    write(h, "utf8", "\x00\x02\x00ü/\x00ü/日本語\x00".encode())


if __name__ == "__main__":
    sigv4()
    chunked()
    rng()
    urlenc()
    checksum()
    xmlin()
    post()
    pathmap()
