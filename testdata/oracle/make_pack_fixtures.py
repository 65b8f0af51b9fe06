#!/usr/bin/env python3
"""Writes the pack fixtures (testdata/fixtures/pack) with the real ZODB, reproducibly.

usage: make_pack_fixtures.py OUTDIR      (run with the oracle venv's python)

Every file is made by ZODB 6.4 with a fake clock (one second per call of time.time, from a
start chosen per file), so the same ZODB writes the same bytes:

  experiment.fs  20 transactions: a BTree with several buckets, revisions, objects made
                 garbage, undo (backpointers), two blob revisions then the blob removed,
                 a weak reference, references to a second database ('m' and 'n' forms),
                 an undone creation (a record with no data and no backpointer), an empty
                 transaction with metadata;
  extra.fs       root -> o1 -> o2, o1 removed from the root, then the removal undone: a
                 pack to before the undo must keep the old root revision as an extra root;
  unreached.fs   x -> y, x.child cleared, x removed, then the clearing undone: a
                 backpointer for an object unreachable at the pack time;
  dup.fs         two records of one oid in one transaction (stored twice);
  dangling.fs    experiment.fs after dangling.py with seed 3 and count 2 (two referenced
                 objects deleted), its clock fixed at the instant of the committed file.

The persistent classes are stored as `common.P` and `common.PNewArgs` (the module is made
here, so the pickles name it without a file of that name).
"""
import os
import runpy
import shutil
import sys
import tempfile
import time
import types

_clock = [0.0]


def fake_time():
    _clock[0] += 1.0
    return _clock[0]


def set_clock(start):
    _clock[0] = start


time.time = fake_time  # before ZODB is imported: BaseStorage reads time.time

import persistent  # noqa: E402
import transaction  # noqa: E402
import ZODB  # noqa: E402
import ZODB.blob  # noqa: E402
from BTrees.OOBTree import OOBTree  # noqa: E402
from persistent.wref import WeakRef  # noqa: E402
from ZODB.Connection import TransactionMetaData  # noqa: E402
from ZODB.FileStorage import FileStorage  # noqa: E402
from ZODB.utils import load_current, p64  # noqa: E402

common = types.ModuleType("common")
sys.modules["common"] = common


class P(persistent.Persistent):
    """A plain persistent object: references to it are (oid, class) pairs."""

    def __init__(self, name=None):
        self.name = name


class PNewArgs(persistent.Persistent):
    """A class with __getnewargs__: references to it are bare oids ('n' across databases)."""

    def __init__(self, name=None):
        self.name = name

    def __getnewargs__(self):
        return ()


for _cls in (P, PNewArgs):
    _cls.__module__ = "common"
    setattr(common, _cls.__name__, _cls)

# 2024-01-01T00:00:00Z
T0 = 1704067200.0


def commit(note, user=None):
    t = transaction.get()
    t.note(note)
    if user:
        t.setUser(user)
    t.commit()


def experiment(d):
    databases = {}
    fs1 = FileStorage(os.path.join(d, "Data.fs"), create=True, blob_dir=os.path.join(d, "blobs"))
    db1 = ZODB.DB(fs1, databases=databases, database_name="main")
    fs2 = FileStorage(os.path.join(d, "Other.fs"), create=True)
    db2 = ZODB.DB(fs2, databases=databases, database_name="other")
    conn = db1.open()
    root = conn.root()

    def c(note):
        commit(note, "tester")

    root["a"] = P("a")
    tree = root["tree"] = OOBTree()
    for i in range(100):
        tree["k%03d" % i] = i
    g1 = root["garbage1"] = P("g1")
    g1.child = P("g1child")
    c("T2 create a, tree, garbage1")
    root["a"].x = 1
    c("T3 a.x=1")
    root["a"].x = 2
    c("T4 a.x=2")
    del root["garbage1"]
    c("T5 del garbage1")
    b = root["b"] = P("b")
    b.child = PNewArgs("nb")
    c("T6 create b")
    b.name = "b2"
    c("T7 b.name=b2")
    db1.undo(db1.undoLog(0, 1)[0]["id"])
    c("T8 undo T7")
    root["blob"] = ZODB.blob.Blob(b"blob data v1")
    c("T9 blob v1")
    with root["blob"].open("w") as f:
        f.write(b"blob data v2")
    c("T10 blob v2")
    wt = root["w_target"] = P("weak target")
    c("T11a create w_target")
    root["wref"] = WeakRef(wt)
    c("T11b create wref")
    oroot = conn.get_connection("other").root()
    oroot["x"] = P("x in other")
    oroot["nx"] = PNewArgs("nx in other")
    c("T12a create objects in other")
    root["xdb"] = oroot["x"]
    root["xdbn"] = oroot["nx"]
    c("T12b xdb refs")
    del root["w_target"]
    c("T13 del w_target")
    root["u"] = P("u")
    c("T14 create u")
    db1.undo(db1.undoLog(0, 1)[0]["id"])
    c("T15 undo T14")
    for i in range(0, 100, 2):
        del tree["k%03d" % i]
    root["a"].x = 3
    c("T16 tree shrink, a.x=3")
    transaction.get().note("T17 empty")
    tm = TransactionMetaData(description=b"T17 empty txn")
    fs1.tpc_begin(tm)
    fs1.tpc_vote(tm)
    fs1.tpc_finish(tm)
    transaction.abort()
    del root["blob"]
    c("T18 del blob")
    root["late"] = P("late")
    c("T19 late")
    conn.close()
    db1.close()
    db2.close()


def extra(d):
    db = ZODB.DB(FileStorage(os.path.join(d, "Data.fs"), create=True))
    c = db.open()
    r = c.root()
    o1 = r["obj"] = P("o1")
    o1.child = P("o2")
    commit("root->o1->o2")
    del r["obj"]
    commit("del obj")
    db.undo(db.undoLog(0, 1)[0]["id"])
    commit("undo del")
    c.close()
    db.close()


def unreached(d):
    db = ZODB.DB(FileStorage(os.path.join(d, "Data.fs"), create=True))
    c = db.open()
    r = c.root()
    x = r["x"] = P("x")
    x.child = P("y")
    commit("root->x->y")
    x.child = None
    commit("x.child=None")
    del r["x"]
    commit("del x")
    ids = [e["id"] for e in db.undoLog(0, 10)
           if e["description"] in (b"x.child=None", "x.child=None")]
    db.undo(ids[0])
    commit("undo x.child=None")
    c.close()
    db.close()


def dup(d):
    path = os.path.join(d, "Data.fs")
    db = ZODB.DB(FileStorage(path, create=True))
    c = db.open()
    c.root()["v"] = 1
    commit("v=1")
    data, serial = load_current(db.storage, p64(0))
    c.close()
    db.close()
    fs = FileStorage(path)
    t = TransactionMetaData()
    fs.tpc_begin(t)
    fs.store(p64(0), serial, data, "", t)
    fs.store(p64(0), serial, data, "", t)
    fs.tpc_vote(t)
    fs.tpc_finish(t)
    fs.close()


def dangling(d, experiment_fs):
    """dangling.py on a copy of experiment.fs, at a fixed instant (it reads the clock)."""
    saved_time, saved_argv = time.time, sys.argv
    time.time = lambda: 1795400671.4982924  # the tid 040d3310866488ee
    sys.argv = ["dangling.py", experiment_fs, os.path.join(d, "Data.fs"), "3", "2"]
    try:
        runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dangling.py"),
                       run_name="__main__")
    finally:
        time.time, sys.argv = saved_time, saved_argv


def main(out):
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pack-fixtures-")
    try:
        # (name, what writes it, clock start): the starts give the committed files' tids.
        for name, make, start in [("experiment", experiment, T0 + 1), ("extra", extra, T0 + 18),
                                  ("unreached", unreached, T0 + 1), ("dup", dup, T0 + 34)]:
            d = os.path.join(work, name)
            os.makedirs(d)
            set_clock(start)
            make(d)
            shutil.copyfile(os.path.join(d, "Data.fs"), os.path.join(out, name + ".fs"))
        d = os.path.join(work, "dangling")
        os.makedirs(d)
        dangling(d, os.path.join(out, "experiment.fs"))
        shutil.copyfile(os.path.join(d, "Data.fs"), os.path.join(out, "dangling.fs"))
    finally:
        shutil.rmtree(work)
    for name in ("experiment", "extra", "unreached", "dup", "dangling"):
        print(os.path.join(out, name + ".fs"))


if __name__ == "__main__":
    main(sys.argv[1])
