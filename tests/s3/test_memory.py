#!/usr/bin/env python3
"""test_memory.py -- s3d streams: a large PUT and GET (S3D_MEM_TEST_MB,
default 1024 MiB) must not grow the daemon's resident memory with the
object size.  The daemon's peak RSS (VmHWM) after the transfer must stay
under S3D_MEM_BOUND_MB (default 96 MiB) -- see docs/s3-compat.md.

Usage: test_memory.py BUILD_DIR
"""
import hashlib
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3common as C  # noqa: E402
from test_raw import sign  # noqa: E402

MB = int(os.environ.get("S3D_MEM_TEST_MB", "1024"))
BOUND = int(os.environ.get("S3D_MEM_BOUND_MB", "96"))


def main():
    R = C.Results()
    srv = C.Server()
    try:
        host = "127.0.0.1:%d" % srv.port
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
        h = sign("PUT", host, "/mem").headers
        c.request("PUT", "/mem", headers=h)
        r = c.getresponse()
        r.read()
        base = srv.rss_kib()
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], srv.rss_kib())
                except OSError:
                    pass
                time.sleep(0.05)
        th = threading.Thread(target=sample)
        th.start()

        # A block pattern that varies per MiB (no dedup shortcut).
        block = os.urandom(1 << 20)
        size = MB << 20
        md5 = hashlib.md5()

        def body():
            for i in range(MB):
                b = i.to_bytes(8, "big") + block[8:]
                md5.update(b)
                yield b
        h = sign("PUT", host, "/mem/big", (), {}, "UNSIGNED-PAYLOAD").headers
        h["Content-Length"] = str(size)
        t0 = time.time()
        c.request("PUT", "/mem/big", body=body(), headers=h)
        r = c.getresponse()
        r.read()
        tput = time.time() - t0
        R.check("put_%dMiB" % MB, r.status == 200 and r.getheader("ETag") == '"%s"' % md5.hexdigest(),
                "status %s etag %s" % (r.status, r.getheader("ETag")))

        h = sign("GET", host, "/mem/big").headers
        t0 = time.time()
        c.request("GET", "/mem/big", headers=h)
        r = c.getresponse()
        got = hashlib.md5()
        n = 0
        while True:
            d = r.read(1 << 20)
            if not d:
                break
            got.update(d)
            n += len(d)
        tget = time.time() - t0
        R.check("get_%dMiB" % MB, r.status == 200 and n == size and
                got.hexdigest() == md5.hexdigest(), "status %s size %d" % (r.status, n))
        stop.set()
        th.join()
        hwm = srv.rss_kib("VmHWM")
        print("# s3d RSS: start %d KiB, peak sampled %d KiB, VmHWM %d KiB; PUT %.1fs GET %.1fs"
              % (base, peak[0], hwm, tput, tget))
        R.check("rss_bounded_%dMiB" % BOUND, hwm < BOUND * 1024,
                "VmHWM %d KiB >= %d MiB" % (hwm, BOUND))
    finally:
        srv.cleanup()
    R.finish()


if __name__ == "__main__":
    main()
