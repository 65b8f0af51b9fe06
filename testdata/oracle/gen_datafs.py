#!/usr/bin/env python3
"""Write a realistic ZODB FileStorage with the real ZODB, reproducibly.

usage: gen_datafs.py OUT.fs --seed N [--mb X | --txns N] [--blobs DIR]
                     [--multidb [--other PATH]] [--large-kb K] [--undo-every N]
                     [--max-ops N] [--blob-bytes N]
                     [--tail torn|c] [--keep-aux]

The same arguments give the same bytes: the clock ZODB reads when it picks a
new transaction id is replaced by a fake one that starts at a date chosen by
the seed and moves on by random steps, all randomness comes from the seed, and
the script re-runs itself with PYTHONHASHSEED=0.

What goes in (every kind appears in a file of ~100 transactions):
  * ordinary transactions: Items added to / changed in / removed from Folders
    (OOBTree and IOBTree with bucket splits, PersistentMapping, PersistentList),
    a LOBTree of counters, small objects with many revisions, garbage
    (items and whole folders dropped from their containers);
  * undo of the last transaction (backpointer records, db.undo);
  * creation then undo of that creation (records with plen=0 back=0);
  * two records of one object in one transaction (db.undoMultiple of two
    transactions that both changed the object: ZODB writes one backpointer
    record per undone transaction, both for the same oid);
  * empty transactions (storage tpc_begin/tpc_vote/tpc_finish without
    stores): with a description only, with nothing at all, with user and
    extension only;
  * extended info, non-ASCII user names and descriptions;
  * weak references (persistent.wref.WeakRef), bare-oid references (a class
    with __getnewargs__), large records (a few hundred kB);
  * --multidb: a second database "other" in PATH (default OUT-other.fs) and
    cross-database references ['m', ...], ['n', ...] and cross-database weak
    references from "main";
  * --blobs DIR: blobs, some rewritten (several revisions).

--tail torn cuts the finished file in the middle of its last transaction;
--tail c sets the status byte of the last transaction to 'c' (a commit that
voted but never finished). Unless --keep-aux, the files ZODB leaves next to
OUT (.index, .lock, .tmp) are removed.
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse  # noqa: E402
import random  # noqa: E402
import struct  # noqa: E402
import time as real_time  # noqa: E402
import types  # noqa: E402

import transaction  # noqa: E402
import ZODB  # noqa: E402
import ZODB.BaseStorage  # noqa: E402
import ZODB.FileStorage  # noqa: E402
import ZODB.utils  # noqa: E402
from BTrees.LOBTree import LOBTree  # noqa: E402
from BTrees.OOBTree import OOBTree  # noqa: E402
from persistent.list import PersistentList  # noqa: E402
from persistent.mapping import PersistentMapping  # noqa: E402
from persistent.wref import WeakRef  # noqa: E402
from ZODB.blob import Blob  # noqa: E402
from ZODB.Connection import TransactionMetaData  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from genmodel import Counter, Folder, Item, Keyed  # noqa: E402


# --------------------------------------------------------------------------
# The fake clock


class FakeClock:
    """Seconds since the epoch, starting at a seed-chosen instant between 2001
    and 2020, moving forward by a random step at every reading."""

    def __init__(self, seed):
        self.rng = random.Random("clock/%d" % seed)
        self.now = 978307200.0 + self.rng.uniform(0, 19 * 365.25 * 86400)

    def step(self):
        r = self.rng.random()
        if r < 0.02:
            return 1e-9          # same TimeStamp: ZODB must use laterThan
        if r < 0.70:
            return self.rng.uniform(0.0005, 2.0)
        if r < 0.95:
            return self.rng.uniform(2.0, 600.0)
        if r < 0.995:
            return self.rng.uniform(600.0, 86400.0)
        return self.rng.uniform(86400.0, 40 * 86400.0)

    def time(self):
        self.now += self.step()
        return self.now


def install_clock(clock):
    """Make the modules that turn the time into tids read `clock`."""
    fake = types.SimpleNamespace(
        **{k: getattr(real_time, k) for k in dir(real_time) if not k.startswith("__")})
    fake.time = clock.time
    # ZODB.FileStorage.FileStorage is the class; the module is in sys.modules.
    fs_module = sys.modules["ZODB.FileStorage.FileStorage"]
    for mod in (ZODB.BaseStorage, fs_module, ZODB.utils):
        assert mod.time is real_time, mod
        mod.time = fake
    # Not about determinism, about speed: no fsync after every commit (a
    # generated file needs no durability; the bytes are the same).
    fs_module.fsync = None


# --------------------------------------------------------------------------
# Text

WORDS = ("alpha beta gamma delta school pupil grade teacher course term report "
         "backup restore pack zodb storage record object index blob cache "
         "commit undo tree bucket").split()
USERS = ["admin", "teacher", "cron", "Zoë", "José Núñez", "管理者", "o'brien"]
NOTES = ["edit", "import batch", "nightly job", "réglage → ok", "修正", "fix: \"quotes\"",
         "multi\nline note", "tab\tnote"]


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


# --------------------------------------------------------------------------
# The generator


class Generator:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random("content/%d" % a.seed)
        self.clock = FakeClock(a.seed)
        install_clock(self.clock)
        self.storage = ZODB.FileStorage.FileStorage(a.out, blob_dir=a.blobs)
        if a.zlib:
            # zc.zlibstorage: every record that compresses smaller is stored as `.z` + zlib.
            import zc.zlibstorage
            self.storage = zc.zlibstorage.ZlibStorage(self.storage)
        databases = {}
        self.db = ZODB.DB(self.storage, databases=databases, database_name="main")
        self.other_db = None
        if a.multidb:
            st2 = ZODB.FileStorage.FileStorage(a.other)
            self.other_db = ZODB.DB(st2, databases=databases, database_name="other")
        self.conn = self.db.open()
        self.root = self.conn.root()
        self.ntx = 1          # the root's creation, written by ZODB.DB
        self.nid = 0
        self.folders = []     # names of the Folders that still take new items
        self.keys = {}        # folder name -> titles of its items we know of
        self.blob_items = []  # (folder name, title) of items holding a blob
        self.keyed = []       # keys of root["keyed"]
        self.nempty = 0
        self.nfolders = 0
        self.t0 = real_time.time()
        u = a.undo_every
        self.periods = {"undo": u, "gb": 2 * u, "dual": 2 * u, "empty": 25}
        self.offsets = {k: self.rng.randrange(p) for k, p in self.periods.items()}

    # -- helpers ---------------------------------------------------------

    def commit(self):
        transaction.commit()
        self.ntx += 1

    def meta(self, kind):
        """User, description and extended info of the current transaction."""
        rng = self.rng
        t = transaction.get()
        r = rng.random()
        if r < 0.6:
            t.setUser(rng.choice(USERS), rng.choice(["/site", "/", "/acl_users"]))
        elif r < 0.8:
            t.user = rng.choice(USERS)
        t.note("%s %d: %s" % (kind, self.ntx, rng.choice(NOTES)))
        if rng.random() < 0.3:
            t.setExtendedInfo("request", "/x/%d" % self.ntx)
            if rng.random() < 0.3:
                t.setExtendedInfo("comment", "é%d" % rng.randrange(1000))
                t.setExtendedInfo("size", rng.randrange(1 << 40))

    def new_folder(self):
        self.nfolders += 1
        f = Folder("f%04d" % self.nfolders)
        self.root["folders"][f.name] = f
        self.folders.append(f.name)
        self.keys[f.name] = []
        return f

    def pick(self, keys):
        return keys[self.rng.randrange(len(keys))]

    def get_item(self, f, keys):
        """An item of folder f still in it, or None (undo may have removed it)."""
        while keys:
            i = self.rng.randrange(len(keys))
            it = f.items.get(keys[i])
            if it is not None:
                return keys[i], it
            keys[i] = keys[-1]
            keys.pop()
        return None, None

    def body(self, big=False):
        if big:   # about 6.6 bytes a word
            kb = self.a.large_kb * self.rng.uniform(0.8, 1.2)
            return words(self.rng, int(kb * 1000 / 6.6))
        return words(self.rng, int(self.rng.lognormvariate(3.5, 1.2)) + 1)

    def resync(self):
        """After an undo: find the folders again from the database."""
        fs = self.root["folders"]
        names = set(fs.keys())
        self.folders = [name for name in self.folders if name in names]
        if not self.folders and len(fs):
            last = fs.maxKey()
            self.folders.append(last)
            self.keys[last] = list(fs[last].items.keys())
        for name in list(self.keys):
            if name not in names:
                del self.keys[name]
        keyed = self.root["keyed"]
        self.keyed = [k for k in self.keyed if k in keyed]

    # -- kinds of transaction --------------------------------------------

    def init(self):
        r = self.root
        r["folders"] = OOBTree()
        r["counters"] = LOBTree()
        r["scratch"] = OOBTree()
        r["pairs"] = PersistentMapping()
        r["hot"] = PersistentList([Counter() for _ in range(4)])
        r["keyed"] = OOBTree()
        r["title"] = "generated by gen_datafs.py seed %d" % self.a.seed
        self.new_folder()
        transaction.get().note("init")
        self.commit()

    def add_item(self, f, big=False):
        rng = self.rng
        keys = self.keys[f.name]
        self.nid += 1
        it = Item("item%07d" % self.nid, self.body(big),
                  [rng.choice(WORDS) for _ in range(rng.randint(0, 4))],
                  round(self.clock.now, 3))
        if keys and rng.random() < 0.4:
            _, other = self.get_item(f, keys)
            if other is not None:
                it.related.append(other)
        if keys and rng.random() < 0.15:
            _, other = self.get_item(f, keys)
            if other is not None:
                it.weak = WeakRef(other)
        if rng.random() < 0.04 or len(self.keyed) < 2:
            k = Keyed("k%d" % self.nid)
            k.value = rng.randrange(1 << 20)
            self.root["keyed"][k.key] = k
            self.keyed.append(k.key)
            del self.keyed[:-200]
            it.related.append(k)          # bare-oid reference
        elif self.keyed and rng.random() < 0.05:
            k = self.root["keyed"].get(self.pick(self.keyed))
            if k is not None:
                it.related.append(k)
        if self.a.blobs and (rng.random() < 0.04 or len(self.blob_items) < 3):
            b = Blob()
            with b.open("w") as fp:
                fp.write(rng.randbytes(rng.randint(1, self.a.blob_bytes)))
            it.attachment = b
            self.blob_items.append((f.name, it.title))
            del self.blob_items[:-50]
        if self.other_db is not None and (rng.random() < 0.05 or self.nid < 4):
            oc = self.conn.get_connection("other")
            oroot = oc.root()
            if "things" not in oroot:
                oroot["things"] = OOBTree()
            oroot = oroot["things"]
            if rng.random() < 0.5 or self.nid < 3:
                x = Item("x%d" % self.nid, "cross " + words(rng, 3), [], 0)
            else:
                x = Keyed("xk%d" % self.nid)     # referenced as ['n', ...]
            oc.add(x)
            oroot["x%d" % self.nid] = x
            it.related.append(x)
            if rng.random() < 0.3 or self.nid < 3:
                it.weak = WeakRef(x)              # ['w', (oid, 'other')]
        f.items[it.title] = it
        f.by_id[self.nid] = it
        keys.append(it.title)

    def regular(self):
        rng = self.rng
        self.meta("txn")
        folders = self.root["folders"]
        if (not self.folders or rng.random() < 0.03
                or len(self.keys[self.folders[-1]]) > 3000):
            self.new_folder()
        if len(self.folders) > 20:
            self.keys.pop(self.folders.pop(0), None)
        name = self.folders[-1] if rng.random() < 0.7 else self.pick(self.folders)
        f = folders[name]
        keys = self.keys[f.name]
        for _ in range(rng.randint(1, self.a.max_ops)):
            op = rng.random()
            if op < 0.55 or len(keys) < 5:
                self.add_item(f)
            elif op < 0.82:
                _, it = self.get_item(f, keys)
                if it is not None:
                    it.body = self.body()
                    if rng.random() < 0.2:
                        it.tags = it.tags + [rng.choice(WORDS)]
            elif op < 0.85 and self.blob_items:
                fname, title = self.pick(self.blob_items)
                bf = folders.get(fname)
                it = bf.items.get(title) if bf is not None else None
                if it is None:       # gone, or its creation was undone
                    self.blob_items.remove((fname, title))
                else:                # a new revision of the blob
                    with it.attachment.open("w") as fp:
                        fp.write(rng.randbytes(rng.randint(1, self.a.blob_bytes)))
            else:
                key, it = self.get_item(f, keys)
                if it is not None:     # the item becomes garbage
                    del f.items[key]
                    num = int(key[4:])
                    if f.by_id.get(num) is it:
                        del f.by_id[num]
                    keys.remove(key)
        if rng.random() < 0.01 and len(self.folders) > 2:
            gone = self.folders.pop(0)       # a whole folder becomes garbage
            del folders[gone]
            self.keys.pop(gone, None)
        f.log.append(self.ntx)
        if len(f.log) > 400:
            f.log = PersistentList(f.log[-10:])
        hot = self.root["hot"]
        hot[rng.randrange(len(hot))].n += 1
        self.root["counters"][self.ntx] = self.nid
        self.commit()

    def large(self):
        self.meta("large")
        if not self.folders:
            self.new_folder()
        self.add_item(self.root["folders"][self.folders[-1]], big=True)
        self.commit()

    def undo_last(self):
        desc = self.db.undoLog(0, 1)
        if not desc:
            return self.regular()
        try:
            self.db.undo(desc[0]["id"])
            t = transaction.get()
            t.note("undo %d" % self.ntx)
            t.setUser(self.rng.choice(USERS), "/")
            self.commit()
        except Exception:
            transaction.abort()
            return self.regular()
        transaction.begin()
        self.resync()

    def create_then_undo(self):
        """Two transactions: new objects, then the undo of their creation."""
        rng = self.rng
        self.meta("create")
        box = PersistentMapping()
        box["doc"] = Item("tmp%d" % self.ntx, self.body(), [], 0)
        box["k"] = Keyed("tmpk%d" % self.ntx)
        box["list"] = PersistentList(range(rng.randint(1, 20)))
        self.root["scratch"]["s%06d" % self.ntx] = box
        self.commit()
        last = self.db.undoLog(0, 1)[0]
        assert last["description"].startswith("create"), last
        self.db.undo(last["id"])
        transaction.get().note("undo creation %d" % self.ntx)
        self.commit()

    def dual(self):
        """Three transactions: change P, change P again, undo both at once.

        The undo writes two records of P in one transaction."""
        pairs = self.root["pairs"]
        name = "p%d" % (len(pairs) % 5)
        if name not in pairs:
            self.meta("pair")
            pairs[name] = PersistentMapping(v=0)
            self.commit()
        p = pairs[name]
        ids = []
        for _ in range(2):
            transaction.get().note("pair %s %d" % (name, self.ntx))
            p["v"] = p["v"] + 1
            p["w"] = words(self.rng, 3)
            self.commit()
            ids.append(self.db.undoLog(0, 1)[0]["id"])
        self.db.undoMultiple(ids[::-1])
        transaction.get().note("undo two changes of %s" % name)
        self.commit()

    def empty(self):
        """A transaction without data records, committed on the storage."""
        self.nempty += 1
        which = self.nempty % 3
        if which == 0:
            tm = TransactionMetaData(description="empty %d" % self.ntx)
        elif which == 1:
            tm = TransactionMetaData()
        else:
            tm = TransactionMetaData(user="/ %s" % self.rng.choice(USERS),
                                     extension={"kind": "empty", "n": self.ntx})
        st = self.storage
        st.tpc_begin(tm)
        st.tpc_vote(tm)
        st.tpc_finish(tm)
        self.ntx += 1

    # -- driver ----------------------------------------------------------

    def choose(self, i):
        """The kind of the i-th transaction after init."""
        if i < 4:     # undoing init would take the containers away
            return self.regular, 1
        o, p = self.offsets, self.periods
        if i % p["undo"] == o["undo"]:
            return self.undo_last, 1
        if i % p["gb"] == o["gb"]:
            return self.create_then_undo, 2
        if i % p["dual"] == o["dual"]:
            return self.dual, 4
        if i % p["empty"] == o["empty"]:
            return self.empty, 1
        if i % 500 == 17 and self.a.large_kb > 0:
            return self.large, 1
        return self.regular, 1

    def done(self):
        if self.a.txns is not None:
            return self.ntx >= self.a.txns
        return self.storage.getSize() >= self.target

    def run(self):
        a = self.a
        self.target = int((a.mb if a.mb is not None else 5) * 1e6)
        self.init()
        i = 0
        next_report = self.target // 20
        while not self.done():
            i += 1
            fn, n = self.choose(i)
            if a.txns is not None and self.ntx + n > a.txns:
                fn = self.regular
            fn()
            size = self.storage.getSize()
            if a.txns is None and self.target >= 20e6 and size >= next_report:
                next_report += self.target // 20
                print("progress: %.1f MB, %d txns, %.1f s"
                      % (size / 1e6, self.ntx, real_time.time() - self.t0),
                      file=sys.stderr, flush=True)
        self.conn.close()
        self.db.close()
        if self.other_db is not None:
            self.other_db.close()


# --------------------------------------------------------------------------
# Post-processing and summary


def transactions(f, size):
    """(tpos, tlen, number of data records) of each complete transaction,
    reading headers only."""
    out = []
    pos = 4
    while pos + 23 <= size:
        f.seek(pos)
        _, tlen, _, ul, dl, el = struct.unpack(">8sQcHHH", f.read(23))
        if pos + tlen + 8 > size:
            break
        rpos = pos + 23 + ul + dl + el
        n = 0
        while rpos < pos + tlen:
            f.seek(rpos + 32)
            vlen, plen = struct.unpack(">HQ", f.read(10))
            rpos += 42 + (16 + vlen if vlen else 0) + (plen or 8)
            n += 1
        out.append((pos, tlen, n))
        pos += tlen + 8
    return out


def finish_file(a):
    size = os.path.getsize(a.out)
    with open(a.out, "r+b") as f:
        txns = transactions(f, size)
        if a.tail and txns:
            tpos, tlen, _ = txns[-1]
            if a.tail == "torn":
                size = tpos + (tlen + 8) // 2
                f.truncate(size)
            else:
                f.seek(tpos + 16)
                f.write(b"c")
    if not a.keep_aux:
        paths = [a.out]
        if a.multidb:
            paths.append(a.other)
        for p in paths:
            for suffix in (".index", ".lock", ".tmp"):
                try:
                    os.remove(p + suffix)
                except FileNotFoundError:
                    pass
    return size, len(txns), sum(t[2] for t in txns)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, required=True)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--mb", type=float, help="grow until the file has X MB (default 5)")
    size.add_argument("--txns", type=int, help="write exactly N transactions")
    ap.add_argument("--blobs", metavar="DIR")
    ap.add_argument("--multidb", action="store_true")
    ap.add_argument("--other", metavar="PATH")
    ap.add_argument("--large-kb", type=int, default=300,
                    help="size of the large records (one every 500 txns), 0: none")
    ap.add_argument("--max-ops", type=int, default=16, metavar="N",
                    help="at most N changes in an ordinary transaction (default 16)")
    ap.add_argument("--blob-bytes", type=int, default=60000, metavar="N",
                    help="blobs have 1 to N bytes (default 60000)")
    ap.add_argument("--undo-every", type=int, default=20, metavar="N",
                    help="undo the last transaction every N steps; undo a "
                    "creation and undo two changes at once every 2N (default 20)")
    ap.add_argument("--tail", choices=["torn", "c"])
    ap.add_argument("--keep-aux", action="store_true")
    ap.add_argument("--zlib", action="store_true",
                    help="write through zc.zlibstorage (compressed records)")
    a = ap.parse_args()
    if a.multidb and not a.other:
        stem = a.out[:-3] if a.out.endswith(".fs") else a.out
        a.other = stem + "-other.fs"
    if a.txns is not None and a.txns < 2:
        ap.error("--txns must be at least 2")
    if a.undo_every < 1 or a.max_ops < 1 or a.blob_bytes < 1:
        ap.error("--undo-every, --max-ops and --blob-bytes must be at least 1")
    for p in [a.out] + ([a.other] if a.multidb else []):
        for suffix in ("", ".index", ".lock", ".tmp"):
            if os.path.exists(p + suffix):
                os.remove(p + suffix)
    t0 = real_time.time()
    Generator(a).run()
    size, ntx, nrec = finish_file(a)
    print("wrote %s: %d bytes, %d complete transactions, %d data records, %.1f s"
          % (a.out, size, ntx, nrec, real_time.time() - t0))
    if a.multidb:
        print("wrote %s: %d bytes" % (a.other, os.path.getsize(a.other)))


if __name__ == "__main__":
    main()
