#!/usr/bin/env python3
"""Pack a FileStorage in place with ZODB's own packer, for differential tests.

usage: pack_oracle.py FILE (--tid HEX16 | --time UNIX_SECONDS) [--no-gc]
                      [--blobs DIR] [--no-keep-old] [--zlib]

--zlib packs through zc.zlibstorage, which decompresses `.z` records before ZODB's
reference scan (a bare FileStorage pack fails on them).

The stop tid is given exactly with --tid (ZODB's pack() only takes a float time, so
the TimeStamp class that FileStorage.pack uses is replaced for the duration of the
call by one that yields the given bytes).

Python 2 files (magic FS21) are packed too: Python 3 ZODB refuses their magic and
cannot decode their string oids, so the magic is switched to FS30 for the run (and
back in FILE and FILE.old afterwards) and references are read with encoding='bytes'.

Prints one JSON line: {"error": null | "ExcType: message", "pack_left": bool}.
"""
import argparse
import json
import os
import sys
from io import BytesIO

import zodbpickle.pickle
import ZODB.FileStorage
import ZODB.serialize


def bytes_references(data, oids=None):
    """referencesf for Python 2 pickles: strings stay bytes."""
    found = []
    unpickler = zodbpickle.pickle.Unpickler(BytesIO(data), encoding="bytes", errors="bytes")
    unpickler.persistent_load = found.append
    unpickler.noload()
    unpickler.noload()
    oids = [] if oids is None else oids
    for ref in found:
        if isinstance(ref, tuple):
            ref = ref[0]
        elif isinstance(ref, list):
            continue
        oids.append(ref if isinstance(ref, bytes) else ref.encode("latin-1"))
    return oids


def set_magic(path, magic):
    if os.path.exists(path):
        with open(path, "r+b") as f:
            f.seek(0)
            f.write(magic)


def run(args, refs):
    options = {"pack_gc": not args.no_gc, "pack_keep_old": not args.no_keep_old}
    if args.blobs:
        options["blob_dir"] = args.blobs
    storage = ZODB.FileStorage.FileStorage(args.file, **options)
    if args.zlib:
        import zc.zlibstorage
        storage = zc.zlibstorage.ZlibStorage(storage)
    try:
        if args.tid:
            module = sys.modules["ZODB.FileStorage.FileStorage"]
            real = module.TimeStamp
            raw = bytes.fromhex(args.tid)

            class ExactStop:
                def __init__(self, *ignored):
                    pass

                def raw(self):
                    return raw

            module.TimeStamp = ExactStop
            try:
                storage.pack(0, refs)
            finally:
                module.TimeStamp = real
        else:
            storage.pack(args.time, refs)
    finally:
        storage.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--tid")
    ap.add_argument("--time", type=float)
    ap.add_argument("--no-gc", action="store_true")
    ap.add_argument("--no-keep-old", action="store_true")
    ap.add_argument("--blobs")
    ap.add_argument("--zlib", action="store_true")
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        magic = f.read(4)
    py2 = magic == b"FS21"
    if py2:
        set_magic(args.file, b"FS30")
    error = None
    try:
        run(args, bytes_references if py2 else ZODB.serialize.referencesf)
    except Exception as e:  # the failure is part of the answer
        error = "%s: %s" % (type(e).__name__, e)
    finally:
        if py2:
            set_magic(args.file, b"FS21")
            set_magic(args.file + ".old", b"FS21")
            set_magic(args.file + ".pack", b"FS21")
    print(json.dumps({"error": error, "pack_left": os.path.exists(args.file + ".pack")}))


if __name__ == "__main__":
    main()
