#!/usr/bin/env python3
"""Commit objects and blobs into an existing FileStorage, as a live site does.

usage: site_writer.py DATA.FS BLOBDIR --txns N [--seed S] [--sleep SECONDS]
                      [--stop-file PATH] [--pack-days D]

Each transaction adds an item holding a new blob (1 byte to 40 kB), sometimes writes a
new revision of an earlier blob, and changes a counter. With --stop-file it runs until
that file exists (at most --txns transactions); --sleep waits between commits. Used by
conformance_site.sh to take backups while a real ZODB writer commits.
"""
import argparse
import os
import random
import time

import transaction
import ZODB
import ZODB.FileStorage
from BTrees.OOBTree import OOBTree
from persistent.mapping import PersistentMapping
from ZODB.blob import Blob


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datafs")
    ap.add_argument("blobdir")
    ap.add_argument("--txns", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--stop-file")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    storage = ZODB.FileStorage.FileStorage(a.datafs, blob_dir=a.blobdir)
    db = ZODB.DB(storage)
    conn = db.open()
    root = conn.root()
    if "site_items" not in root:
        root["site_items"] = OOBTree()
        root["site_counter"] = PersistentMapping(n=0)
        transaction.commit()
    items = root["site_items"]
    for i in range(a.txns):
        if a.stop_file and os.path.exists(a.stop_file):
            break
        n = root["site_counter"]["n"] + 1
        root["site_counter"]["n"] = n
        b = Blob()
        with b.open("w") as fp:
            fp.write(rng.randbytes(rng.randint(1, 40000)))
        items["item-%d-%d" % (a.seed, n)] = b
        if len(items) > 3 and rng.random() < 0.3:
            key = rng.choice(list(items.keys()))
            with items[key].open("w") as fp:
                fp.write(rng.randbytes(rng.randint(1, 40000)))
        transaction.get().note("site writer %d" % n)
        transaction.commit()
        if a.sleep:
            time.sleep(a.sleep)
    conn.close()
    db.close()


if __name__ == "__main__":
    main()
