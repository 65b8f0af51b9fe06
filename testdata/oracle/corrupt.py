#!/usr/bin/env python3
"""Make damaged copies of a FileStorage file, one file per kind of damage.

usage: corrupt.py IN OUTDIR SEED

Each copy is OUTDIR/<kind>.fs.  Kinds whose name starts with '+' are damage that
ZODB's fstest does not detect (it never looks at prev pointers, backpointers,
record serials or status 'u'); `zodbfs check` must report all of them.  A kind
that cannot be applied to the input (no backpointer record, say) is not written.
Only the standard library is used, so the script runs under any Python 3.
"""
import os
import random
import struct
import sys


def walk(buf):
    """Transactions (pos, tlen, header length) and records (pos, txn pos, plen)."""
    txns, recs, pos = [], [], 4
    while pos + 23 <= len(buf):
        _tid, tlen, _st, ul, dl, el = struct.unpack(">8sQcHHH", buf[pos:pos + 23])
        if pos + tlen + 8 > len(buf):
            break
        hlen = 23 + ul + dl + el
        txns.append((pos, tlen, hlen))
        rpos = pos + hlen
        while rpos < pos + tlen:
            plen = struct.unpack(">Q", buf[rpos + 34:rpos + 42])[0]
            recs.append((rpos, pos, plen))
            rpos += 42 + (plen or 8)
        pos += tlen + 8
    return txns, recs


def main():
    src, outdir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    orig = bytes(open(src, "rb").read())
    rnd = random.Random(seed)
    txns, recs = walk(orig)
    if len(txns) < 4 or len(recs) < 4:
        return
    os.makedirs(outdir, exist_ok=True)

    def emit(kind, edit):
        b = bytearray(orig)
        b = edit(b) or b
        if bytes(b) != orig:
            with open(os.path.join(outdir, kind + ".fs"), "wb") as f:
                f.write(b)

    def put(b, at, fmt, *vals):
        b[at:at + struct.calcsize(fmt)] = struct.pack(fmt, *vals)

    t = txns[rnd.randrange(1, len(txns) - 1)]          # a transaction in the middle
    ti = txns.index(t)
    data_recs = [r for r in recs if r[2] > 0]
    r = data_recs[rnd.randrange(len(data_recs) // 4, len(data_recs))]
    last = txns[-1]
    # damage fstest finds
    emit("cut-in-last-txn", lambda b: b[:last[0] + rnd.randrange(24, last[1] + 8)])
    emit("cut-in-header", lambda b: b[:last[0] + rnd.randrange(1, 23)])
    emit("tlen-grown", lambda b: put(b, t[0] + 8, ">Q", t[1] + rnd.randrange(50, 2000)))
    emit("tlen-past-eof", lambda b: put(b, t[0] + 8, ">Q", len(orig)))
    emit("tlen-below-header", lambda b: put(b, t[0] + 8, ">Q", t[2] - 1))
    emit("status-c", lambda b: put(b, t[0] + 16, ">c", b"c"))
    emit("status-junk", lambda b: put(b, t[0] + 16, ">c", b"Z"))
    emit("tid-equal-previous", lambda b: put(b, t[0], ">8s", orig[txns[ti - 1][0]:txns[ti - 1][0] + 8]))
    emit("tid-zero", lambda b: put(b, t[0], ">8s", b"\0" * 8))
    emit("tloc-off-by-one", lambda b: put(b, r[0] + 24, ">Q", r[1] + 1))
    emit("redundant-length-off", lambda b: put(b, t[0] + t[1], ">Q", t[1] + 1))
    emit("plen-grown", lambda b: put(b, r[0] + 34, ">Q", r[2] + rnd.randrange(100, 100000)))
    z = rnd.randrange(len(orig) // 4, 3 * len(orig) // 4)
    emit("zeroed-4k", lambda b: put(b, z, "%ds" % min(4096, len(orig) - z), b"\0" * min(4096, len(orig) - z)))
    emit("zeroed-header", lambda b: put(b, t[0], "23s", b"\0" * 23))
    # damage fstest does not look for
    emit("+prev-forward", lambda b: put(b, r[0] + 16, ">Q", r[0] + 42))
    emit("+prev-into-header", lambda b: put(b, r[0] + 16, ">Q", r[1] + 3))
    same_oid = [q for q in recs if q[0] < r[0] and orig[q[0]:q[0] + 8] != orig[r[0]:r[0] + 8]]
    if same_oid:
        emit("+prev-other-oid", lambda b: put(b, r[0] + 16, ">Q", same_oid[-1][0]))
    backs = [q for q in recs if q[2] == 0 and orig[q[0] + 42:q[0] + 50] != b"\0" * 8]
    if backs:
        q = backs[rnd.randrange(len(backs))]
        emit("+back-forward", lambda b: put(b, q[0] + 42, ">Q", q[0] + 8))
        emit("+back-not-a-record", lambda b: put(b, q[0] + 42, ">Q", q[1] + 1))
    emit("+serial-zero", lambda b: put(b, r[0] + 8, ">8s", b"\0" * 8))
    emit("+status-u", lambda b: put(b, t[0] + 16, ">c", b"u"))


main()
