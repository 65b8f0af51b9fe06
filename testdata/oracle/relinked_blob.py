#!/usr/bin/env python3
"""Write, with real ZODB, a database whose blob object is unreachable at a pack time and
written again after it: the application kept the object, linked it anew and stored a
new revision of its blob (ZODB's packer then removes the object's whole blob directory,
the current revision's file with it).

usage: relinked_blob.py OUT BLOB_DIR

Also holds a blob object that stays garbage and one that stays linked. Prints the pack
time's tid (the transaction that unlinked the object) in hex on stdout. Runs with the
oracle venv's python (needs ZODB).
"""
import sys
import time

import transaction
import ZODB
import ZODB.blob
import ZODB.FileStorage


def write(blob, text):
    with blob.open("w") as f:
        f.write(text)


def main():
    out, blob_dir = sys.argv[1], sys.argv[2]
    db = ZODB.DB(ZODB.FileStorage.FileStorage(out, blob_dir=blob_dir))
    conn = db.open()
    root = conn.root()
    kept, gone, linked = (ZODB.blob.Blob(b"first") for _ in range(3))
    root["kept"], root["gone"], root["linked"] = kept, gone, linked
    transaction.commit()
    for n in range(2):
        time.sleep(0.002)
        for b in (kept, gone, linked):
            write(b, b"revision %d" % n)
        transaction.commit()
    time.sleep(0.002)
    del root["kept"], root["gone"]
    transaction.commit()
    stop = conn._storage.lastTransaction()
    time.sleep(0.002)
    root["again"] = kept
    write(kept, b"written after the pack time")
    transaction.commit()
    db.close()
    print(stop.hex())


if __name__ == "__main__":
    main()
