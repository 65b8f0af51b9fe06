#!/usr/bin/env python3
"""Copy a FileStorage and delete objects that others still refer to, leaving
dangling references (what a buggy application or a careless external GC does).

usage: dangling.py IN OUT SEED COUNT [--pack]

Deletion uses the storage's deleteObject (IExternalGC): the object's new
current record says "does not exist", so fsrefs reports "object creation was
undone".  With --pack the copy is then packed without GC, which drops those
records, and fsrefs reports the targets as "missing".  Prints the deleted oids
in hex on stdout.  Runs with the oracle venv's python (needs ZODB).
"""
import random
import shutil
import sys
import time

import ZODB.FileStorage
from ZODB.Connection import TransactionMetaData
from ZODB.serialize import referencesf
from ZODB.utils import p64


def main():
    src, dst, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pack = "--pack" in sys.argv[5:]
    shutil.copyfile(src, dst)
    st = ZODB.FileStorage.FileStorage(dst, pack_gc=False)
    referenced = set()
    for n, oid in enumerate(st._index.keys()):
        if n >= 50000:
            break
        try:
            data, _serial = st.load(oid)
        except Exception:
            continue
        referenced.update(ref for ref in referencesf(data) if ref != p64(0))
    candidates = sorted(ref for ref in referenced if ref in st._index)
    victims = random.Random(seed).sample(candidates, min(count, len(candidates)))
    txn = TransactionMetaData(description=b"dangling.py: delete referenced objects")
    st.tpc_begin(txn)
    for oid in victims:
        _data, serial = st.load(oid)
        st.deleteObject(oid, serial, txn)
    st.tpc_vote(txn)
    st.tpc_finish(txn)
    if pack:
        time.sleep(0.01)
        st.pack(time.time(), referencesf)
    st.close()
    print(" ".join("0x%x" % int.from_bytes(v, "big") for v in victims))


main()
