#!/usr/bin/env python3
"""Open a generated Data.fs with ZODB and load everything in it.

usage: gen_check.py FILE [BLOBDIR]

The storage is opened read-only (through a symlink in a temporary directory, so nothing
is written next to FILE), with BLOBDIR as its blob directory. Then, through a DB and a
connection:
  * every object reachable from the root is loaded (its class imported, its state set:
    BTrees check their own structure), walking the references of each state;
  * every OOBTree reached passes BTrees' own `_check()`, and its items are listed;
  * every oid of the index is loaded: the ones that cannot be (creation undone, deleted)
    must raise POSKeyError, nothing else;
  * every blob record of the history has its blob file (`loadBlob`), and every current
    blob opens and reads.

Prints one JSON line with the counts and the first errors; exits 1 when there are
errors.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ZODB  # noqa: E402
import ZODB.FileStorage  # noqa: E402
import ZODB.POSException  # noqa: E402
from BTrees.OOBTree import OOBTree  # noqa: E402
from persistent import Persistent  # noqa: E402
from ZODB.blob import Blob  # noqa: E402
from ZODB.serialize import referencesf  # noqa: E402
from ZODB.utils import p64, u64  # noqa: E402

import genmodel  # noqa: E402,F401  (the classes must be importable)


def main():
    path = os.path.abspath(sys.argv[1])
    blobs = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    errors = []
    counts = {"reachable": 0, "trees_checked": 0, "index_oids": 0, "loaded": 0,
              "not_existing": 0, "blob_records": 0, "blob_files": 0, "current_blobs": 0}
    classes = {}
    with tempfile.TemporaryDirectory() as d:
        link = os.path.join(d, "Data.fs")
        os.symlink(path, link)
        storage = ZODB.FileStorage.FileStorage(link, read_only=True, blob_dir=blobs)
        db = ZODB.DB(storage)
        conn = db.open()
        try:
            # 1. The reachable graph, loaded object by object.
            seen = {b"\0" * 8}
            todo = [b"\0" * 8]
            while todo:
                oid = todo.pop()
                obj = conn.get(oid)
                obj._p_activate()
                counts["reachable"] += 1
                name = type(obj).__module__ + "." + type(obj).__name__
                classes[name] = classes.get(name, 0) + 1
                if isinstance(obj, OOBTree):
                    try:
                        obj._check()
                        len(list(obj.items()))
                        counts["trees_checked"] += 1
                    except Exception as e:
                        errors.append("tree %s: %r" % (oid.hex(), e))
                if isinstance(obj, Blob) and blobs:
                    with obj.open("r") as f:
                        f.read()
                    counts["current_blobs"] += 1
                data, _ = storage.load(oid)
                for ref in referencesf(data):
                    if ref not in seen:
                        seen.add(ref)
                        todo.append(ref)
                if counts["reachable"] % 5000 == 0:
                    conn.cacheMinimize()
            # 2. Every oid of the index.
            for oid in list(storage._index.keys()):
                counts["index_oids"] += 1
                try:
                    storage.load(oid)
                    counts["loaded"] += 1
                except ZODB.POSException.POSKeyError:
                    counts["not_existing"] += 1
                except Exception as e:
                    errors.append("load %s: %r" % (oid.hex(), e))
            # 3. Blob files of every blob record.
            if blobs:
                for txn in storage.iterator():
                    for rec in txn:
                        if rec.data and b"ZODB.blob" in rec.data[:40]:
                            counts["blob_records"] += 1
                            try:
                                f = storage.loadBlob(rec.oid, rec.tid)
                                if os.path.isfile(f):
                                    counts["blob_files"] += 1
                            except Exception as e:
                                errors.append("blob %s@%s: %r" % (rec.oid.hex(), rec.tid.hex(), e))
        except Exception as e:
            errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            conn.close()
            db.close()
    print(json.dumps({"counts": counts, "classes": classes, "errors": errors[:10],
                      "error_count": len(errors)}, sort_keys=True))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
