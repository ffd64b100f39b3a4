"""fcommon.py -- shared helpers of the fault-injection (tests/faults) and
security (tests/security) suites.

Real s3d and fusefs processes on stores the suites build themselves (on a
small tmpfs, a loop-mounted ext4 image, or a plain directory), an
independent SigV4 signer (hashlib/hmac: header auth and presigned URLs),
a raw HTTP client that reports aborted bodies instead of hiding them, and
POSIX operations on the mount run in a child process with a timeout (so a
hung FUSE request can never hang the suite).

Every process started here is recorded in $FAULT_PIDS (one pid a line) and
every mount lives under the suite's temporary directory, so run.sh can clean
up whatever a crashed script leaves behind.

Every check prints `ok NAME` / `FAIL NAME: reason`; a script ends with the
line `N passed, N failed`.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.parse

ACCESS = "AKIAFAULTTESTADMIN01"
SECRET = "faultAdminSecret/0123456789abcdefghijklm"
REGION = "us-east-1"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------- results
class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def ok(self, name, note=""):
        self.passed += 1
        print("ok %s%s" % (name, (" # " + note) if note else ""), flush=True)

    def fail(self, name, reason):
        self.failed += 1
        reason = str(reason).replace("\n", " | ")[:700]
        self.failures.append(name)
        print("FAIL %s: %s" % (name, reason), flush=True)

    # Checks that fail today for a documented reason (docs/faults.md).  A
    # known failure is reported as such and counts as passed; if it starts
    # passing, that is reported as a failure so that the list stays true.
    KNOWN = set(filter(None, os.environ.get("FAULT_KNOWN", "").split(",")))

    def check(self, name, cond, reason="condition false", note=""):
        if name in self.KNOWN:
            if cond:
                self.fail(name, "passes now: remove it from FAULT_KNOWN")
            else:
                self.ok(name, "known limitation: " + str(reason)[:300])
            return bool(cond)
        if cond:
            self.ok(name, note)
        else:
            self.fail(name, reason)
        return bool(cond)

    def run(self, name, fn, *a, **kw):
        """Run fn; ok unless it raises.  Returns fn's result or None."""
        try:
            r = fn(*a, **kw)
            self.ok(name)
            return r if r is not None else True
        except Exception as e:  # noqa: BLE001 - a test reports every failure
            tb = traceback.format_exc().strip().splitlines()
            where = tb[-3].strip() if len(tb) >= 3 else ""
            self.fail(name, "%s: %s [%s]" % (type(e).__name__, e, where))
            return None

    def section(self, name, fn, *a, **kw):
        """Run a whole section; an exception in it is one failure."""
        print("# %s" % name, flush=True)
        try:
            fn(self, *a, **kw)
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc().strip().splitlines()
            self.fail(name + "/section", "%s: %s [%s]" % (
                type(e).__name__, e, " / ".join(x.strip() for x in tb[-4:-1])))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


class Fail(Exception):
    pass


def eq(a, b, what=""):
    if a != b:
        raise Fail("%s%r != %r" % (what + ": " if what else "", a, b))


def md5(b):
    return hashlib.md5(b).hexdigest()


def data(seed, n):
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


# --------------------------------------------------------------- processes
def register_pid(pid):
    f = os.environ.get("FAULT_PIDS")
    if f:
        with open(f, "a") as fh:
            fh.write("%d\n" % pid)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def tool_env(home):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", ""),
            "UBSAN_OPTIONS": os.environ.get("UBSAN_OPTIONS", "")}


class Build:
    def __init__(self, build, tmp):
        self.build = build
        self.tmp = tmp
        self.s3d = os.path.join(build, "s3d", "s3d")
        self.fusefs = os.path.join(build, "fusefs", "fusefs")
        self.storectl = os.path.join(build, "storectl", "storectl")
        self.home = os.path.join(tmp, "home")
        os.makedirs(self.home, exist_ok=True)

    def sc(self, store, *args, check=False, timeout=120, input=None):
        """Run storectl; returns CompletedProcess (text)."""
        p = subprocess.run([self.storectl, "--store", store] + list(args),
                           env=tool_env(self.home), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, input=input)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise Fail("storectl %s -> %d: %s" % (" ".join(args[:3]), p.returncode,
                                                  p.err.strip()[-300:]))
        return p

    def init_store(self, store, access=ACCESS, secret=SECRET, buckets=("bkt",)):
        os.makedirs(os.path.dirname(store), exist_ok=True)
        env = tool_env(self.home)
        env.update(STORE_ACCESS_KEY=access, STORE_SECRET_KEY=secret)
        p = subprocess.run([self.storectl, "--store", store, "init"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if p.returncode != 0:
            raise Fail("storectl init: %s" % p.stderr.decode()[-300:])
        for b in buckets:
            self.sc(store, "bucket", "create", b, check=True)


class S3d:
    """A running s3d on 127.0.0.1 (a free port) over `store`."""

    def __init__(self, b, store, log, args=(), wait=True):
        self.b = b
        self.store = store
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.endpoint = "http://" + self.host
        self.logpath = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [b.s3d, "--store", store, "--listen", self.host] + list(args),
            stdout=self.log, stderr=self.log, env=tool_env(b.home))
        register_pid(self.proc.pid)
        self.up = False
        if wait:
            self.up = self.wait_up()

    def wait_up(self, seconds=15):
        t_end = time.time() + seconds
        while time.time() < t_end:
            if self.proc.poll() is not None:
                return False
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def alive(self):
        return self.proc.poll() is None

    def health(self, timeout=5):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            c.close()
            return r.status == 200
        except OSError:
            return False

    def logtext(self):
        self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=40):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Fuse:
    """fusefs in the foreground (-f) on `mnt`, stderr to `log`."""

    def __init__(self, b, store, mnt, log, opts=(), wait=True):
        self.b = b
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        self.logpath = log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([b.fusefs, "--store", store, mnt, "-f"] + list(opts),
                                     stdout=self.log, stderr=self.log,
                                     env=tool_env(b.home))
        register_pid(self.proc.pid)
        self.up = False
        if wait:
            t_end = time.time() + 15
            while time.time() < t_end:
                if self.proc.poll() is not None:
                    break
                if os.path.ismount(mnt):
                    self.up = True
                    break
                time.sleep(0.1)

    def mounted(self):
        return os.path.ismount(self.mnt)

    def logtext(self):
        self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.proc.returncode


# --------------------------------------------------------------- POSIX ops
def posix(op, *args, timeout=20):
    """Run one POSIX operation (posixop.py) in a child process.

    Returns (result, seconds): result is "OK ..." or "ERR ERRNAME at STEP" or
    "HANG" when it did not finish within `timeout` seconds."""
    t0 = time.time()
    try:
        p = subprocess.run([sys.executable, os.path.join(HERE, "posixop.py"), op]
                           + [str(a) for a in args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        out = p.stdout.decode("utf-8", "replace").strip()
        if not out:
            out = "CRASH " + p.stderr.decode("utf-8", "replace").strip()[-200:]
    except subprocess.TimeoutExpired:
        out = "HANG"
    return out, time.time() - t0


# --------------------------------------------------------------- SigV4
def _hm(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg,
                    hashlib.sha256).digest()


def signing_key(secret, date, region=REGION):
    return _hm(_hm(_hm(_hm(("AWS4" + secret).encode(), date), region), "s3"),
               "aws4_request")


def q_enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def canon_query(query):
    return "&".join(sorted("%s=%s" % (q_enc(k), q_enc(v or "")) for k, v in query))


def sign_headers(method, host, raw_path, query=(), headers=None, payload_hash=EMPTY_SHA,
                 access=ACCESS, secret=SECRET, region=REGION, when=None):
    """SigV4 header auth.  Returns (headers dict, signature)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz[:8]
    h = {k.lower(): str(v) for k, v in (headers or {}).items()}
    h["host"] = host
    h["x-amz-date"] = amz
    h["x-amz-content-sha256"] = payload_hash
    signed = sorted(k for k in h if k not in ("content-length", "transfer-encoding",
                                              "expect"))
    ch = "".join("%s:%s\n" % (k, " ".join(h[k].split())) for k in signed)
    creq = "\n".join([method, raw_path, canon_query(query), ch, ";".join(signed),
                      payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, date, region), sts.encode(),
                   hashlib.sha256).hexdigest()
    h["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                          "Signature=%s" % (access, scope, ";".join(signed), sig))
    return h, sig


def presign(method, host, raw_path, query=(), expires=300, access=ACCESS, secret=SECRET,
            region=REGION, when=None):
    """A presigned query (list of pairs, X-Amz-Signature last) and the
    signature."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz[:8]
    cred = "%s/%s/%s/s3/aws4_request" % (access, date, region)
    q = list(query) + [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                       ("X-Amz-Credential", cred), ("X-Amz-Date", amz),
                       ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
    creq = "\n".join([method, raw_path, canon_query(q), "host:%s\n" % host, "host",
                      "UNSIGNED-PAYLOAD"])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, date, region), sts.encode(),
                   hashlib.sha256).hexdigest()
    return q + [("X-Amz-Signature", sig)], sig


def post_policy(bucket, key, access=ACCESS, secret=SECRET, region=REGION, when=None,
                bad_signature=False):
    """The form fields of a SigV4 browser POST upload of `key`."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz[:8]
    cred = "%s/%s/%s/s3/aws4_request" % (access, date, region)
    exp = (when + datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    import json
    pol = {"expiration": exp, "conditions": [
        {"bucket": bucket}, {"key": key},
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": cred},
        {"x-amz-date": amz}]}
    pb = base64.b64encode(json.dumps(pol).encode()).decode()
    sig = hmac.new(signing_key(secret, date, region), pb.encode(), hashlib.sha256).hexdigest()
    if bad_signature:
        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    return [("key", key), ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", cred), ("x-amz-date", amz), ("policy", pb),
            ("x-amz-signature", sig)], sig


def form_body(fields, filedata, boundary="----faultsFormBoundary7MA4YWxk"):
    out = b""
    for k, v in fields:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                % (boundary, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode()
    out += filedata + ("\r\n--%s--\r\n" % boundary).encode()
    return out, "multipart/form-data; boundary=" + boundary


# --------------------------------------------------------------- raw HTTP
class Resp:
    """status, headers (lower-case), body, and how the body ended:
    complete=True when Content-Length bytes arrived, else `aborted` says why."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.complete = False
        self.aborted = None
        self.seconds = 0.0

    def code(self):
        b = self.body
        i = b.find(b"<Code>")
        j = b.find(b"</Code>")
        return b[i + 6:j].decode("utf-8", "replace") if i >= 0 and j > i else None

    def __repr__(self):
        if self.status is not None and self.status < 300:
            body = "%d bytes" % len(self.body)
        else:
            body = repr(self.body[:240])
        return "<%s %s %s%s>" % (self.status, self.code() or "", body,
                                 "" if self.complete else " aborted:%s" % self.aborted)


def request(srv_host, method, path, body=b"", headers=None, query=(), sign=True,
            payload_hash=None, timeout=60, raw_query=None, **signkw):
    """One request on a fresh connection.  `path` is the raw (already
    encoded) path; `query` pairs are encoded here; `headers` may carry Host.
    Never raises for HTTP-level trouble: a connection error before the
    status line gives status None and `aborted` set."""
    host, port = srv_host.rsplit(":", 1)
    h = dict(headers or {})
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
    if sign:
        sign_host = h.pop("Host", None) or h.pop("host", None) or srv_host
        h, _ = sign_headers(method, sign_host, path, query, h, payload_hash, **signkw)
        h["Host"] = h.pop("host")
    target = path
    if raw_query is not None:
        target += "?" + raw_query
    elif query:
        target += "?" + "&".join("%s=%s" % (q_enc(k), q_enc(v)) if v is not None
                                 else q_enc(k) for k, v in query)
    r = Resp()
    t0 = time.time()
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.putrequest(method, target, skip_host="Host" in h or "host" in h,
                     skip_accept_encoding=True)
        for k, v in h.items():
            c.putheader(k, v)
        if body or method in ("PUT", "POST"):
            c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        if body:
            try:
                c.send(body)
            except OSError:
                pass  # the server may answer early (507, 403): read it
        resp = c.getresponse()
        r.status = resp.status
        r.headers = {k.lower(): v for k, v in resp.getheaders()}
        want = resp.getheader("Content-Length")
        chunks = []
        try:
            while True:
                b = resp.read(65536)
                if not b:
                    break
                chunks.append(b)
        except (http.client.IncompleteRead, OSError, http.client.HTTPException) as e:
            if isinstance(e, http.client.IncompleteRead):
                chunks.append(e.partial)
            r.aborted = type(e).__name__
        r.body = b"".join(chunks)
        if method == "HEAD" or r.status in (204, 304):
            r.complete = r.aborted is None
        elif want is not None:
            r.complete = len(r.body) == int(want) and r.aborted is None
            if not r.complete and r.aborted is None:
                r.aborted = "short body (%d of %s)" % (len(r.body), want)
        else:
            r.complete = r.aborted is None
    except (OSError, http.client.HTTPException) as e:
        r.aborted = "%s: %s" % (type(e).__name__, e)
    finally:
        c.close()
    r.seconds = time.time() - t0
    return r


def want(r, status, code=None, what=""):
    if r.status != status or (code and r.code() != code):
        raise Fail("%swant %s %s, got %r" % (what + ": " if what else "", status,
                                             code or "", r))
    return r


def put(host, bucket, key, body, **kw):
    return request(host, "PUT", "/%s/%s" % (bucket, q_path(key)), body, **kw)


def get(host, bucket, key, **kw):
    return request(host, "GET", "/%s/%s" % (bucket, q_path(key)), **kw)


def q_path(key):
    return urllib.parse.quote(key, safe="/-_.~")


def _xml_children(body):
    """The root of an S3 XML answer with namespaces stripped from tags."""
    import xml.etree.ElementTree as ET
    root = ET.fromstring(body)
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def list_objects(host, bucket, prefix="", **kw):
    """Every object of a bucket (ListObjectsV2, all pages), raw HTTP:
    {key: (ETag without quotes, size)}.  Raises Fail on an error answer
    or a cut body."""
    out = {}
    token = None
    for _ in range(10000):
        q = [("list-type", "2"), ("max-keys", "1000")]
        if prefix:
            q.append(("prefix", prefix))
        if token:
            q.append(("continuation-token", token))
        r = request(host, "GET", "/" + bucket, query=q, **kw)
        if r.status != 200 or not r.complete:
            raise Fail("ListObjectsV2 %s: %r" % (bucket, r))
        root = _xml_children(r.body)
        for c in root.findall("Contents"):
            out[c.findtext("Key")] = (c.findtext("ETag", "").replace('"', ""),
                                      int(c.findtext("Size", "-1")))
        token = root.findtext("NextContinuationToken")
        if root.findtext("IsTruncated") != "true" or not token:
            break
    return out


def list_uploads(host, bucket, **kw):
    """Multipart uploads in progress (ListMultipartUploads, all pages), raw
    HTTP: [(key, upload id)].  Raises Fail on an error answer."""
    out = []
    km = um = None
    for _ in range(10000):
        q = [("uploads", None)]
        if km is not None:
            q += [("key-marker", km), ("upload-id-marker", um or "")]
        r = request(host, "GET", "/" + bucket, query=q, **kw)
        if r.status != 200 or not r.complete:
            raise Fail("ListMultipartUploads %s: %r" % (bucket, r))
        root = _xml_children(r.body)
        for u in root.findall("Upload"):
            out.append((u.findtext("Key"), u.findtext("UploadId")))
        if root.findtext("IsTruncated") != "true":
            break
        km, um = root.findtext("NextKeyMarker"), root.findtext("NextUploadIdMarker")
    return out


def boto3_client(endpoint, access=ACCESS, secret=SECRET):
    import boto3
    from botocore.config import Config
    sess = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                                 region_name=REGION)
    return sess.client("s3", endpoint_url=endpoint,
                       config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                     retries={"max_attempts": 1, "mode": "standard"},
                                     read_timeout=90, connect_timeout=10))


def scrub_environment(home):
    """Drop AWS_* and proxy variables from this process (run.sh already runs
    us under env -i; this is belt and braces for a direct run)."""
    for k in list(os.environ):
        if k.startswith("AWS_") or k.lower().endswith("_proxy") or k in (
                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            del os.environ[k]
    os.environ["HOME"] = home
    os.environ["AWS_CONFIG_FILE"] = os.path.join(home, "nonexistent-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(home, "nonexistent-cred")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def sh(cmd, timeout=60, check=False):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if check and p.returncode != 0:
        raise Fail("%s -> %d: %s" % (" ".join(cmd), p.returncode,
                                     p.stderr.decode("utf-8", "replace")[-300:]))
    return p


def sanitizer_scan(R, T):
    """No ASan/UBSan report in any daemon log of the run."""
    hits = []
    for root, _, files in os.walk(T):
        for f in files:
            if not f.endswith(".log"):
                continue
            try:
                with open(os.path.join(root, f), "rb") as fh:
                    text = fh.read().decode("utf-8", "replace")
            except OSError:
                continue
            for line in text.splitlines():
                if "Sanitizer" in line or "runtime error:" in line:
                    hits.append("%s: %s" % (f, line.strip()[:200]))
                    break
    R.check("sanitizer_reports_none", not hits, "; ".join(hits[:3]))
