#!/usr/bin/env python3
"""posixop.py OP PATH [ARGS...] -- one POSIX operation on a mount, run in a
child process by fcommon.posix() so that a hung FUSE request cannot hang
the test suite.  Prints one line:

    OK [detail]               the operation worked
    ERR ERRNAME at STEP       it failed with that errno at that step

OPs:
    read PATH                 read the whole file; detail = "MD5 SIZE"
    write PATH SEED SIZE      O_CREAT|O_TRUNC, write SIZE bytes (1 MiB writes),
                              fsync, close; steps open/write/fsync/close
    create PATH               O_CREAT|O_EXCL an empty file and close it
    unlink PATH | rmdir PATH | mkdir PATH | chmod PATH MODE
    rename SRC DST | symlink TARGET PATH
    listdir PATH              detail = the names, sorted, joined by '/'
    stat PATH                 detail = "ino size mode"
"""
import errno
import hashlib
import os
import random
import sys


def err(e, step):
    print("ERR %s at %s" % (errno.errorcode.get(e.errno, str(e.errno)), step), flush=True)
    sys.exit(0)


def main():
    op, path = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    if op == "read":
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            err(e, "open")
        h = hashlib.md5()
        n = 0
        try:
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
        except OSError as e:
            err(e, "read@%d" % n)
        try:
            os.close(fd)
        except OSError as e:
            err(e, "close")
        print("OK %s %d" % (h.hexdigest(), n))
    elif op == "write":
        seed, size = int(a[0]), int(a[1])
        buf = random.Random(seed).randbytes(size)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            err(e, "open")
        off = 0
        try:
            while off < size:
                off += os.write(fd, buf[off:off + (1 << 20)])
        except OSError as e:
            try:
                os.close(fd)
            except OSError:
                pass
            err(e, "write@%d" % off)
        try:
            os.fsync(fd)
        except OSError as e:
            try:
                os.close(fd)
            except OSError:
                pass
            err(e, "fsync")
        try:
            os.close(fd)
        except OSError as e:
            err(e, "close")
        print("OK %s %d" % (hashlib.md5(buf).hexdigest(), size))
    elif op == "create":
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            err(e, "open")
        try:
            os.close(fd)
        except OSError as e:
            err(e, "close")
        print("OK")
    elif op in ("unlink", "rmdir", "mkdir"):
        try:
            getattr(os, op)(path)
        except OSError as e:
            err(e, op)
        print("OK")
    elif op == "chmod":
        try:
            os.chmod(path, int(a[0], 8))
        except OSError as e:
            err(e, op)
        print("OK")
    elif op == "rename":
        try:
            os.rename(path, a[0])
        except OSError as e:
            err(e, op)
        print("OK")
    elif op == "symlink":
        try:
            os.symlink(path, a[0])
        except OSError as e:
            err(e, op)
        print("OK")
    elif op == "listdir":
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            err(e, op)
        print("OK " + "/".join(names))
    elif op == "stat":
        try:
            st = os.lstat(path)
        except OSError as e:
            err(e, op)
        print("OK %d %d %o" % (st.st_ino, st.st_size, st.st_mode))
    else:
        print("ERR EINVAL at usage")


if __name__ == "__main__":
    main()
