"""s3common.py -- shared helpers of the s3d black-box tests.

Starts a real s3d on 127.0.0.1 (a free port, a fresh store made with
storectl init and known keys), over HTTP or TLS (a self-signed certificate
made with openssl), and gives each client program its own clean
environment (env -i style: HOME in a temp dir, explicit AWS_* variables,
config and credential files in the temp dir), so nothing from the machine's
environment (AWS_CA_BUNDLE, proxies...) leaks in.

Every test script prints `ok NAME` / `FAIL NAME: reason` and ends with the
line `N passed, N failed`.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import ssl

ACCESS = "AKIAS3DTESTKEY000001"
SECRET = "s3dTestSecretKey/0123456789abcdefghijklmn"
REGION = "us-east-1"

BUILD = os.environ.get("S3D_BUILD") or (sys.argv[1] if len(sys.argv) > 1 else "build")
S3D = os.path.join(BUILD, "s3d", "s3d")
STORECTL = os.path.join(BUILD, "storectl", "storectl")
PYBIN = os.path.dirname(sys.executable)


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        print("ok", name, flush=True)

    def fail(self, name, reason):
        self.failed += 1
        reason = str(reason).replace("\n", " | ")[:600]
        print("FAIL %s: %s" % (name, reason), flush=True)

    def check(self, name, cond, reason="condition false"):
        if cond:
            self.ok(name)
        else:
            self.fail(name, reason)
        return cond

    def run(self, name, fn, *a, **kw):
        """Run fn; ok unless it raises."""
        try:
            fn(*a, **kw)
            self.ok(name)
            return True
        except Exception as e:  # noqa: BLE001 - a test reports every failure
            tb = traceback.format_exc().strip().splitlines()
            where = tb[-3].strip() if len(tb) >= 3 else ""
            self.fail(name, "%s: %s [%s]" % (type(e).__name__, e, where))
            return False

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_cert(d):
    """A self-signed certificate for 127.0.0.1 / localhost."""
    key = os.path.join(d, "key.pem")
    cert = os.path.join(d, "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": d})
    return cert, key


class Server:
    """A running s3d with its own store."""

    def __init__(self, tls=False, extra_args=(), users=(), domain=None):
        self.dir = tempfile.mkdtemp(prefix="s3d-test-")
        self.store = os.path.join(self.dir, "store")
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.tls = tls
        env = {"PATH": "/usr/bin:/bin", "HOME": self.home,
               "STORE_ACCESS_KEY": ACCESS, "STORE_SECRET_KEY": SECRET}
        subprocess.run([STORECTL, "--store", self.store, "init"], check=True,
                       env=env, stdout=subprocess.DEVNULL)
        for (ak, sk) in users:
            subprocess.run([STORECTL, "--store", self.store, "user", "add",
                            "u" + ak[-4:], "--access-key", ak, "--secret-key", sk],
                           check=True, env=env, stdout=subprocess.DEVNULL)
        self.port = free_port()
        args = [S3D, "--store", self.store, "--listen", "127.0.0.1:%d" % self.port,
                "--durability", "process"]
        if tls:
            self.cert, self.key = make_cert(self.dir)
            args += ["--tls-cert", self.cert, "--tls-key", self.key]
        else:
            self.cert = None
        if domain:
            args += ["--domain", domain]
        args += list(extra_args)
        self.log = open(os.path.join(self.dir, "s3d.log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env={"PATH": "/usr/bin:/bin", "HOME": self.home})
        self.scheme = "https" if tls else "http"
        self.endpoint = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self._wait()

    def _wait(self):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.cert)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError("s3d exited: " + self.logtext())
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=2,
                                            context=ctx) as r:
                    if r.status == 200:
                        return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        raise RuntimeError("s3d did not come up: " + self.logtext())

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def client_env(self, extra=None):
        """A clean environment for one client program."""
        home = tempfile.mkdtemp(prefix="client-", dir=self.dir)
        cfg = os.path.join(home, "aws-config")
        cred = os.path.join(home, "aws-credentials")
        with open(cfg, "w") as f:
            # aws CLI v1 presigns with SigV2 unless told; s3d speaks SigV4.
            f.write("[default]\nregion = %s\ns3 =\n    signature_version = s3v4\n"
                    % REGION)
        with open(cred, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (ACCESS, SECRET))
        env = {
            "PATH": PYBIN + ":/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": ACCESS,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": cfg,
            "AWS_SHARED_CREDENTIALS_FILE": cred,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if self.tls:
            env["AWS_CA_BUNDLE"] = self.cert
            env["SSL_CERT_FILE"] = self.cert
        if extra:
            env.update(extra)
        return env

    def rss_kib(self, field="VmRSS"):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return -1

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        self.log.close()
        if os.environ.get("S3D_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def boto3_client(srv, **cfg):
    """A boto3 client for srv, isolated from the process environment."""
    import boto3
    from botocore.config import Config
    conf = dict(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    conf.update(cfg)
    sess = boto3.session.Session(aws_access_key_id=ACCESS,
                                 aws_secret_access_key=SECRET,
                                 region_name=REGION)
    return sess.client("s3", endpoint_url=srv.endpoint,
                       verify=srv.cert if srv.tls else None,
                       config=Config(**conf))


def scrub_environment(home):
    """Drop the machine's AWS_* and proxy variables from this process."""
    for k in list(os.environ):
        if k.startswith("AWS_") or k.lower().endswith("_proxy") or k in (
                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            del os.environ[k]
    os.environ["HOME"] = home
    os.environ["AWS_CONFIG_FILE"] = os.path.join(home, "nonexistent-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(home, "nonexistent-cred")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def run(cmd, env, check=True, input=None, timeout=300, cwd=None):
    p = subprocess.run(cmd, env=env, input=input, timeout=timeout, cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise RuntimeError("%s -> %d: %s %s" % (" ".join(cmd[:4]), p.returncode,
                                                p.stdout[-400:], p.stderr[-800:]))
    return p


def sign_request(method, url, headers=None, body=b"", payload_hash=None,
                 access=ACCESS, secret=SECRET, region=REGION, when=None):
    """SigV4-sign a raw request with botocore; returns the header dict."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import datetime
    headers = dict(headers or {})
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    if payload_hash is not None:
        req.headers["X-Amz-Content-SHA256"] = payload_hash
    auth = S3SigV4Auth(Credentials(access, secret), "s3", region)
    if when is not None:
        import unittest.mock as um
        with um.patch("botocore.auth.datetime") as dt:
            dt.datetime.utcnow.return_value = when
            dt.datetime.now.return_value = when
            dt.timezone = datetime.timezone
            auth.add_auth(req)
    else:
        auth.add_auth(req)
    return dict(req.headers.items())
