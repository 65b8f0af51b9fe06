#!/usr/bin/env python3
"""Write what Python ZODB says about a FileStorage file, for conformance tests.

usage: expected.py FILE OUTDIR

OUTDIR receives:
  index           the bytes fsIndex.save writes for the file's full index at
                  getSize() (the storage is opened read-only through a symlink
                  in a temporary directory, so nothing is written or read next
                  to FILE, and no saved .index is used)
  fsdump.txt      ZODB.FileStorage.fsdump.fsdump(FILE) output
  fstail.txt      ZODB.scripts.fstail.main(FILE, 10) output
  fstail-all.txt  the same for 1000000 transactions
  records.txt     one line per data record with data (plen > 0) of the
                  complete transactions before getSize(), in file order:
                    pos=<dec> oid=<hex16> class=<mod.name> refs=<hex16,...>
                  refs is what referencesf returns (`refs=ERROR:<Exception>`
                  when it raises; `class=ERROR:<Exception>` likewise)
  info.json       magic, size (getSize()), file_len, last_tid
                  (lastTransaction()), transactions, objects (len(index)),
                  data_records (all records), records_with_data,
                  backpointers, nonexistent (plen=0 back=0), and
                  fsdump_error / fstail_error / fstail_all_error when that
                  ZODB tool raised (its partial output is kept, and the
                  exception goes to <tool>.err)

Files with magic FS21 (Python 2) are accepted by setting the magic ZODB
expects; their references are read with encoding='bytes' (Python 2 strings
stay bytes), str oids being encoded as latin-1.
"""
import contextlib
import io
import json
import mmap
import os
import shutil
import struct
import sys
import tempfile

# Only ZODB's own stack may be importable: get_pickle_metadata imports
# classes in some cases, and the test model next to this script must not
# change its answers.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import zodbpickle.pickle as zpickle  # noqa: E402
import ZODB.FileStorage  # noqa: E402
import ZODB.serialize  # noqa: E402
from ZODB.FileStorage.fsdump import fsdump  # noqa: E402
from ZODB.scripts import fstail  # noqa: E402
from ZODB.utils import get_pickle_metadata  # noqa: E402

FS_MODULE = sys.modules["ZODB.FileStorage.FileStorage"]
TXN_HEADER = struct.Struct(">8sQcHHH")     # 23 bytes
DATA_HEADER = struct.Struct(">8s8sQQHQ")   # 42 bytes


def references_py2(p):
    """referencesf for Python 2 pickles: string opcodes give bytes."""
    pids = []
    u = zpickle.Unpickler(io.BytesIO(p), encoding="bytes")
    u.persistent_load = pids.append
    u.noload()
    u.noload()
    oids = []
    for ref in pids:
        if isinstance(ref, tuple):
            oid = ref[0]
        elif isinstance(ref, (bytes, str)):
            oid = ref
        else:
            assert isinstance(ref, list)
            continue
        if not isinstance(oid, bytes):
            assert isinstance(oid, str)
            oid = oid.encode("latin1")
        oids.append(oid)
    return oids


def walk(data, end):
    """Yield (tpos, status, [(rpos, oid, plen, back, pickle)]) for each
    transaction that ends at or before `end`."""
    pos = 4
    while pos + TXN_HEADER.size <= end:
        tid, tlen, status, ul, dl, el = TXN_HEADER.unpack_from(data, pos)
        tend = pos + tlen
        if tend + 8 > end:
            break
        rpos = pos + TXN_HEADER.size + ul + dl + el
        records = []
        while rpos < tend:
            oid, _, _, _, vlen, plen = DATA_HEADER.unpack_from(data, rpos)
            body = rpos + DATA_HEADER.size + (16 + vlen if vlen else 0)
            if plen:
                records.append((rpos, oid, plen, None, data[body:body + plen]))
                rpos = body + plen
            else:
                back = struct.unpack_from(">Q", data, body)[0]
                records.append((rpos, oid, 0, back, None))
                rpos = body + 8
        yield pos, status, records
        pos = tend + 8


def capture(fn, *args):
    """Run fn, returning (stdout text, exception or None)."""
    out = io.StringIO()
    err = None
    with contextlib.redirect_stdout(out):
        try:
            fn(*args)
        except Exception as e:  # the oracle's failure is a result too
            err = e
    return out.getvalue(), err


def describe(e):
    return "%s: %s" % (type(e).__name__, e)


def produce(path, outdir):
    """Write all of ZODB's answers for the file at `path` into `outdir`."""
    os.makedirs(outdir, exist_ok=True)
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic not in (b"FS21", b"FS30"):
            raise SystemExit("%s: unknown magic %r" % (path, magic))
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        _produce(path, outdir, magic, data)
    finally:
        data.close()


def _produce(path, outdir, magic, data):
    FS_MODULE.packed_version = magic
    refs_fn = references_py2 if magic == b"FS21" else ZODB.serialize.referencesf
    info = {"magic": magic.decode(), "file_len": len(data)}

    tmp = tempfile.mkdtemp(prefix="zfs-expected-")
    try:
        link = os.path.join(tmp, "Data.fs")
        os.symlink(os.path.abspath(path), link)
        st = ZODB.FileStorage.FileStorage(link, read_only=True)
        try:
            size = st.getSize()
            info["size"] = size
            info["last_tid"] = st.lastTransaction().hex()
            info["objects"] = len(st._index)
            st._index.save(size, os.path.join(outdir, "index"))
        finally:
            st.close()
    finally:
        shutil.rmtree(tmp)

    for name, fn, args in (("fsdump", fsdump, (path,)),
                           ("fstail", fstail.main, (path, 10)),
                           ("fstail-all", fstail.main, (path, 1000000))):
        text, err = capture(fn, *args)
        with open(os.path.join(outdir, name + ".txt"), "w", encoding="utf-8",
                  newline="\n") as f:
            f.write(text)
        errfile = os.path.join(outdir, name + ".err")
        if err is not None:
            info[name.replace("-", "_") + "_error"] = describe(err)
            with open(errfile, "w", encoding="utf-8") as f:
                f.write(describe(err) + "\n")
        elif os.path.exists(errfile):
            os.remove(errfile)

    ntxn = nrec = ndata = nback = nnone = nfailed = 0
    with open(os.path.join(outdir, "records.txt"), "w", encoding="utf-8",
              newline="\n") as out:
        for _tpos, _status, records in walk(data, info["size"]):
            ntxn += 1
            for rpos, oid, plen, back, p in records:
                nrec += 1
                if not plen:
                    if back:
                        nback += 1
                    else:
                        nnone += 1
                    continue
                ndata += 1
                try:
                    mod, name = get_pickle_metadata(p)
                    klass = "%s.%s" % (mod, name)
                except Exception as e:
                    klass = "ERROR:" + type(e).__name__
                try:
                    refs = ",".join(o.hex() for o in refs_fn(p))
                except Exception as e:
                    refs = "ERROR:" + type(e).__name__
                    nfailed += 1
                out.write("pos=%d oid=%s class=%s refs=%s\n" % (rpos, oid.hex(), klass, refs))
    info.update(transactions=ntxn, data_records=nrec, records_with_data=ndata,
                backpointers=nback, nonexistent=nnone, refs_errors=nfailed)
    with open(os.path.join(outdir, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: expected.py FILE OUTDIR")
    produce(sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
