#!/usr/bin/env python3
"""Explain where `zodbfs pack` differs from ZODB's pack by one of our rules, reading both
packed files with ZODB's own iterator. A module for conformance_pack.sh, and a command:

usage: pack_explain.py blobs ZODB_DIR OURS_DIR STOP_HEX

ZODB_DIR and OURS_DIR each hold a packed Data.fs, its blobs/ and (with keep-old)
blobs.old/. Prints the rule's label and exits 0 when the blob directories differ only by
that rule; prints what is wrong and exits 1 otherwise. Runs with the oracle venv's python.
"""
import os
import sys
import zlib

import ZODB.FileStorage
from ZODB.blob import is_blob_record
from ZODB.serialize import referencesf


def history(path, stop):
    """A file as ZODB's own iterator reads it: the (tid, oid) of its data records, those
    of its blob records, and its dangling references as (tid, oid, ref): a strong
    reference to an object that has no revision (or whose last one says it does not
    exist) as of the record's transaction. Records up to the pack time `stop` are
    judged as of the pack time, where a pack leaves only their current revisions."""
    recs, blobs, dangling = set(), set(), set()
    alive, before = set(), {}

    def judge(tid, oid, refs):
        dangling.update((tid, oid, r) for r in refs if r not in alive)

    it = ZODB.FileStorage.FileIterator(path)
    try:
        for txn in it:
            tid = int.from_bytes(txn.tid, "big")
            if tid > stop and before is not None:
                for oid, (t, refs) in before.items():
                    judge(t, oid, refs)
                before = None
            this = []
            for rec in txn:
                oid = int.from_bytes(rec.oid, "big")
                recs.add((tid, oid))
                data = rec.data
                if data and data[:2] == b".z":
                    data = zlib.decompress(data[2:])
                if data is None:
                    alive.discard(oid)
                    this.append((oid, []))
                    continue
                alive.add(oid)
                if is_blob_record(data):
                    blobs.add((tid, oid))
                this.append((oid, [int.from_bytes(r, "big") for r in referencesf(data)]))
            for oid, refs in this:
                if before is not None:
                    before[oid] = (tid, refs)
                else:
                    judge(tid, oid, refs)
        for oid, (t, refs) in (before or {}).items():
            judge(t, oid, refs)
    finally:
        it.close()
    return recs, blobs, dangling


def blob_files(d):
    """(tid, oid) of every committed blob file under a blob directory (either layout)."""
    out = set()
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x != "tmp"]
        parts = os.path.relpath(root, d).split(os.sep)
        for f in files:
            if f.endswith(".blob") and all(p.startswith("0x") for p in parts):
                out.add((int(f[2:-5], 16), int("".join(p[2:] for p in parts), 16)))
    return out


def blob_difference(zodb_dir, ours_dir, stop, ours_history=None, zodb_history=None):
    """ZODB removes the whole directory of an object unreachable at the pack time even
    when the object has records after it, so its packed file names blob files it no
    longer has; ours keeps every blob file its packed file needs and otherwise holds
    ZODB's files. Returns (label, what is wrong or ""); label None when ZODB lost
    nothing, so the rule does not explain the difference. The histories of the two packed
    files are read here unless given."""
    ho = ours_history or history(os.path.join(ours_dir, "Data.fs"), stop)
    hz = zodb_history or history(os.path.join(zodb_dir, "Data.fs"), stop)
    fz = blob_files(os.path.join(zodb_dir, "blobs"))
    fo = blob_files(os.path.join(ours_dir, "blobs"))
    # The pre-pack tree: .old holds it whole when kept.
    old = os.path.join(ours_dir, "blobs.old")
    fs = blob_files(old) if os.path.isdir(old) else fz | fo
    needed = ho[1] & fs
    lost = (hz[1] & fs) - fz
    problems = []
    if not fz <= fo:
        problems.append("ZODB keeps blob files we remove")
    if fo - fz - needed:
        problems.append("we keep blob files no record needs: %s" % sorted(fo - fz - needed)[:3])
    if needed - fo:
        problems.append("our packed file needs blob files we removed: %s"
                        % sorted(needed - fo)[:3])
    if not lost:
        return None, "; ".join(problems)
    return ("ZODB removes %d blob files its packed file needs; we keep them" % len(lost),
            "; ".join(problems))


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "blobs":
        sys.exit(__doc__)
    label, problem = blob_difference(sys.argv[2], sys.argv[3], int(sys.argv[4], 16))
    if label and not problem:
        print(label)
        return 0
    print(problem or "ZODB lost no blob file its packed file needs")
    return 1


if __name__ == "__main__":
    sys.exit(main())
