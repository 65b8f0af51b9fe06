#!/usr/bin/env python3
"""Make (or grow) a site for the whole-site backup benchmark: a Data.fs whose
transactions each store BATCH blob objects, and their files in a bushy blob directory.

usage: site_gen.py DATA.FS BLOBDIR --blobs N [--size BYTES] [--batch B] [--seed S]

Blob sizes are uniform in [1, 2*SIZE) (mean SIZE). Run again on the same paths to
append N more blobs (new oids, new transactions), as a site does between backups.
Records are written in FileStorage's format directly (no ZODB needed): each blob
record's pickle is the class ZODB.blob.Blob and an empty state, as ZODB writes it.
"""
import argparse
import os
import random
import struct
import time

BLOB = b"\x80\x03cZODB.blob\nBlob\nq\x00.\x80\x03N."


def tid_now(offset):
    # A TimeStamp-like 8-byte tid that grows with wall-clock time.
    t = time.gmtime()
    days = ((t.tm_year - 1900) * 12 + t.tm_mon - 1) * 31 + t.tm_mday - 1
    minutes = (days * 24 + t.tm_hour) * 60 + t.tm_min
    return (minutes << 32) | (offset & 0xFFFFFFFF)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datafs")
    ap.add_argument("blobdir")
    ap.add_argument("--blobs", type=int, required=True)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.blobdir, mode=0o700, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.datafs)), exist_ok=True)
    with open(os.path.join(a.blobdir, ".layout"), "w") as f:
        f.write("bushy\n")
    exists = os.path.exists(a.datafs)
    with open(a.datafs, "ab") as out:
        if not exists:
            out.write(b"FS30")
        pos = out.tell()
        # Next oid: one past the number of files already there.
        first = sum(len(fs) for _, _, fs in os.walk(a.blobdir)) if exists else 1
        oid = max(first, 1)
        done = 0
        seq = int(time.time() * 1000) & 0xFFFFFFF
        while done < a.blobs:
            n = min(a.batch, a.blobs - done)
            seq += 1
            tid = tid_now(seq)
            recs = bytearray()
            hdr = 23
            for _ in range(n):
                rpos = pos + hdr + len(recs)
                recs += struct.pack(">QQQQHQ", oid, tid, 0, pos, 0, len(BLOB)) + BLOB
                d = a.blobdir
                for b in struct.pack(">Q", oid):
                    d = os.path.join(d, "0x%02x" % b)
                os.makedirs(d, mode=0o700, exist_ok=True)
                with open(os.path.join(d, "0x%016x.blob" % tid), "wb") as f:
                    f.write(rng.randbytes(rng.randint(1, 2 * a.size - 1)))
                oid += 1
            tlen = hdr + len(recs)
            out.write(struct.pack(">QQcHHH", tid, tlen, b" ", 0, 0, 0) + recs + struct.pack(">Q", tlen))
            pos += tlen + 8
            done += n


if __name__ == "__main__":
    main()
