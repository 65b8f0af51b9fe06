#!/usr/bin/env python3
"""Count the kinds of things a FileStorage file holds (to check fixtures).

usage: features.py FILE...

Prints, per file, counts of: transactions by status, empty transactions,
transactions with extension data, non-ASCII user/description, data records,
backpointers, non-existence records (plen=0 back=0), transactions holding
two or more records of one oid, records over 100 kB, and persistent
references by form (oid+class tuple, bare oid, weak, weak to another
database, cross-database 'm' and 'n').  Complete transactions only.
"""
import collections
import io
import struct
import sys

import zodbpickle.pickle as zpickle

TXN = struct.Struct(">8sQcHHH")
DATA = struct.Struct(">8s8sQQHQ")


def ref_forms(p, py2):
    pids = []
    u = zpickle.Unpickler(io.BytesIO(p), encoding="bytes" if py2 else "ASCII")
    u.persistent_load = pids.append
    u.noload()
    u.noload()
    for ref in pids:
        if isinstance(ref, tuple):
            yield "ref-oid-class"
        elif isinstance(ref, (bytes, str)):
            yield "ref-bare-oid"
        elif isinstance(ref, list) and ref:
            kind = ref[0]
            if kind in ("w", b"w"):
                yield "ref-weak-otherdb" if len(ref[1]) > 1 else "ref-weak"
            elif kind in ("m", b"m"):
                yield "ref-xdb-m"
            elif kind in ("n", b"n"):
                yield "ref-xdb-n"
            else:
                yield "ref-legacy-weak"
        else:
            yield "ref-other"


def scan(path):
    c = collections.Counter()
    with open(path, "rb") as f:
        data = f.read()
    py2 = data[:4] == b"FS21"
    pos = 4
    while pos + TXN.size <= len(data):
        _, tlen, status, ul, dl, el = TXN.unpack_from(data, pos)
        if pos + tlen + 8 > len(data) or status == b"c":
            c["incomplete-tail"] += 1
            break
        c["txn-status-%s" % status.decode()] += 1
        h = pos + TXN.size
        meta = data[h:h + ul + dl]
        if el:
            c["txn-with-extension"] += 1
        if any(b >= 0x80 for b in meta):
            c["txn-non-ascii-meta"] += 1
        if not (ul or dl or el):
            c["txn-no-meta"] += 1
        rpos = h + ul + dl + el
        seen = collections.Counter()
        while rpos < pos + tlen:
            oid, _, _, _, vlen, plen = DATA.unpack_from(data, rpos)
            seen[oid] += 1
            c["records"] += 1
            body = rpos + DATA.size + (16 + vlen if vlen else 0)
            if plen:
                if plen > 100_000:
                    c["records-over-100kB"] += 1
                try:
                    c.update(ref_forms(data[body:body + plen], py2))
                except Exception as e:
                    c["ref-scan-error-" + type(e).__name__] += 1
                rpos = body + plen
            else:
                back = struct.unpack_from(">Q", data, body)[0]
                c["backpointer" if back else "nonexistent"] += 1
                rpos = body + 8
        if not seen:
            c["txn-empty"] += 1
        if any(n > 1 for n in seen.values()):
            c["txn-with-repeated-oid"] += 1
        pos += tlen + 8
    return c


def main():
    for path in sys.argv[1:]:
        c = scan(path)
        print(path)
        for k in sorted(c):
            print("  %-24s %d" % (k, c[k]))


if __name__ == "__main__":
    main()
