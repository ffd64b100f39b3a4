#!/usr/bin/env python3
"""fsop.py OP ARGS -- one POSIX operation on the FUSE mount, run in a
child process by powerloss.py (so a hung FUSE request can only hang this
child, which the caller kills after a timeout).  Prints "OK" or
"ERR <what>" and exits 0 / 1.

  write PATH SEED SIZE            create/replace, write, close
  pwrite PATH OFF SEED SIZE       open existing, write SIZE bytes at OFF, close
  truncate PATH SIZE              truncate(path): commits at once
  rename A B | unlink P | mkdir P
  fsync-then PATH SEED1 N1 SEED2 N2 LOG ACK_ID START_ID
      write N1 bytes, fsync -- then append the ACK of ACK_ID and the START
      of START_ID to LOG (the fsync returned: that content is promised) --
      then write N2 more bytes and close.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay  # noqa: E402


def data(seed, n):
    return random.Random(seed).randbytes(n)


def write_all(fd, b):
    while b:
        n = os.write(fd, b)
        b = b[n:]


def main(a):
    op = a[0]
    if op == "write":
        fd = os.open(a[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        write_all(fd, data(int(a[2]), int(a[3])))
        os.close(fd)
    elif op == "pwrite":
        fd = os.open(a[1], os.O_WRONLY)
        os.pwrite(fd, data(int(a[3]), int(a[4])), int(a[2]))
        os.close(fd)
    elif op == "truncate":
        os.truncate(a[1], int(a[2]))
    elif op == "rename":
        os.rename(a[1], a[2])
    elif op == "unlink":
        os.unlink(a[1])
    elif op == "mkdir":
        os.mkdir(a[1])
    elif op == "fsync-then":
        path, s1, n1, s2, n2, log, ack, start = a[1:9]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        write_all(fd, data(int(s1), int(n1)))
        os.fsync(fd)
        replay.append_mark(log, {"ev": "ack", "id": int(ack), "why": "fsync returned"})
        replay.append_mark(log, json_start(int(start), path))
        write_all(fd, data(int(s2), int(n2)))
        os.close(fd)
    else:
        print("ERR usage")
        return 1
    print("OK")
    return 0


def json_start(i, path):
    # The effects of the second half are known to the caller, which passes
    # them through the environment (PL_EFFECTS, JSON).
    import json
    return {"ev": "start", "id": i, "what": "write more to %s, close" % path,
            "effects": json.loads(os.environ["PL_EFFECTS"])}


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as e:
        print("ERR %s" % e)
        sys.exit(1)
