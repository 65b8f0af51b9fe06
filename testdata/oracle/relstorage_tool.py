"""The RelStorage side of the convert tests: zodbconvert runs, dumps and checks.

    relstorage_tool.py schema DSN hp|hf
        let RelStorage create its schema in an empty database (nothing else)
    relstorage_tool.py zodbconvert DATA.FS DSN hp|hf WORKDIR [--blobs DIR] [--timed 1]
        zodbconvert DATA.FS into DSN; for history-free, when plain zodbconvert stops
        with POSKeyError (an object whose last record has no data), again with
        --clear --incremental. Prints `plain` or `incremental` (with --timed, and the
        seconds each run took).
    relstorage_tool.py export DSN hp|hf OUT.FS WORKDIR [--blobs-to DIR]
        zodbconvert from DSN into a new FileStorage OUT.FS (and blob directory)
    relstorage_tool.py dump DSN OUTDIR [--maxoid N]
        one file per table of schema public: its columns in table order, rows sorted,
        object_state.state as SHA-256, blob_chunk.chunk as the SHA-256 and length of the
        large object; the list of all large objects (hash, length); the sequence as
        `next block above max oid: yes|no` (with --maxoid) and its raw value; the schema
        as pg_dump --schema-only prints it (without its version banner and random keys)
    relstorage_tool.py verify DSN hp|hf WORKDIR
        open with ZODB + RelStorage: load every current object, every revision with a
        state (history-preserving), read every blob; print counts
    relstorage_tool.py pack DSN hp|hf WORKDIR
        zodbpack (pack time: now, GC on) on DSN
    relstorage_tool.py maxoid DATA.FS
        the largest oid of a FileStorage (what ZODB's new_oid starts after)
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)


def dsn_part(dsn, key):
    for part in dsn.split():
        k, _, v = part.partition("=")
        if k == key:
            return v
    return None


def relstorage_section(name, dsn, mode, cache, extra=""):
    keep = "true" if mode == "hp" else "false"
    return f"""
<relstorage {name}>
    keep-history {keep}
    blob-dir {cache}
    shared-blob-dir false
    {extra}
    <postgresql>
        dsn {dsn}
    </postgresql>
</relstorage>
"""


def filestorage_section(name, path, blobs, read_only):
    lines = [f"<filestorage {name}>", f"    path {path}"]
    if blobs:
        lines.append(f"    blob-dir {blobs}")
    if read_only:
        lines.append("    read-only true")
    lines.append("</filestorage>")
    return "\n".join(lines)


def write_conf(workdir, text):
    fd, path = tempfile.mkstemp(suffix=".conf", dir=workdir)
    with os.fdopen(fd, "w") as f:
        f.write("%import relstorage\n" + text)
    return path


def open_storage(dsn, mode, cache, create=True):
    from relstorage.adapters.postgresql import PostgreSQLAdapter
    from relstorage.options import Options
    from relstorage.storage import RelStorage
    options = Options(keep_history=(mode == "hp"), blob_dir=cache,
                      shared_blob_dir=False, create_schema=create)
    adapter = PostgreSQLAdapter(dsn=dsn, options=options)
    return RelStorage(adapter, options=options)


def cmd_schema(dsn, mode):
    cache = tempfile.mkdtemp(prefix="rs-schema-")
    storage = open_storage(dsn, mode, cache)
    storage.close()


def cmd_zodbconvert(src, dsn, mode, workdir, blobs=None, timed=None):
    cache = tempfile.mkdtemp(prefix="rs-cache-", dir=workdir)
    conf = write_conf(workdir, filestorage_section("source", src, blobs, True)
                      + relstorage_section("destination", dsn, mode, cache))
    log = os.path.join(workdir, "zodbconvert.log")
    t0 = time.time()
    with open(log, "ab") as out:
        r = subprocess.run([os.path.join(BIN, "zodbconvert"), conf], stdout=out,
                           stderr=subprocess.STDOUT)
    t1 = time.time()
    if r.returncode == 0:
        print("plain" + (f" {t1 - t0:.1f} s" if timed else ""))
        return 0
    text = open(log, "rb").read()
    if mode == "hf" and b"POSKeyError" in text:
        with open(log, "ab") as out:
            r = subprocess.run([os.path.join(BIN, "zodbconvert"), "--clear", "--incremental",
                                conf], stdout=out, stderr=subprocess.STDOUT)
        if r.returncode == 0:
            print("incremental" + (f" {time.time() - t1:.1f} s, after plain zodbconvert failed "
                                   f"in {t1 - t0:.1f} s" if timed else ""))
            return 0
    sys.stderr.write(text.decode("utf-8", "replace")[-3000:])
    return 1


def cmd_export(dsn, mode, out, workdir, blobs_to=None):
    cache = tempfile.mkdtemp(prefix="rs-cache-", dir=workdir)
    conf = write_conf(workdir, relstorage_section("source", dsn, mode, cache,
                                                  "create-schema false")
                      + filestorage_section("destination", out, blobs_to, False))
    log = os.path.join(workdir, "export.log")
    with open(log, "ab") as f:
        r = subprocess.run([os.path.join(BIN, "zodbconvert"), conf], stdout=f,
                           stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.stderr.write(open(log, "rb").read().decode("utf-8", "replace")[-3000:])
    return r.returncode


def cmd_dump(dsn, outdir, maxoid=None):
    import psycopg2
    os.makedirs(outdir, exist_ok=True)
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    cur.execute("""SELECT table_name FROM information_schema.tables
                   WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
                   ORDER BY table_name""")
    tables = [r[0] for r in cur.fetchall()]
    for table in tables:
        cur.execute("""SELECT column_name FROM information_schema.columns
                       WHERE table_schema = 'public' AND table_name = %s
                       ORDER BY ordinal_position""", (table,))
        cols = []
        for (c,) in cur.fetchall():
            if table == "object_state" and c == "state":
                cols.append("encode(sha256(state), 'hex')")
            elif table == "blob_chunk" and c == "chunk":
                cols.append("encode(sha256(lo_get(chunk)), 'hex') || ' ' || "
                            "length(lo_get(chunk))")
            else:
                cols.append(f'"{c}"::text')
        order = ", ".join(str(i + 1) for i in range(len(cols)))
        cur.execute(f'SELECT {", ".join(cols)} FROM "{table}" ORDER BY {order}')
        with open(os.path.join(outdir, table + ".txt"), "w") as f:
            for row in cur:
                f.write("\t".join("NULL" if v is None else v for v in row) + "\n")
    cur.execute("""SELECT encode(sha256(lo_get(oid)), 'hex'), length(lo_get(oid))
                   FROM pg_largeobject_metadata ORDER BY 1, 2""")
    with open(os.path.join(outdir, "large_objects.txt"), "w") as f:
        for h, n in cur.fetchall():
            f.write(f"{h} {n}\n")
    cur.execute("SELECT last_value, is_called FROM zoid_seq")
    last, called = cur.fetchone()
    nxt = last + 1 if called else last
    with open(os.path.join(outdir, "sequence.txt"), "w") as f:
        if maxoid is not None:
            ok = nxt * 16 - 15 > maxoid
            f.write(f"next block above max oid: {'yes' if ok else 'no'}\n")
    with open(os.path.join(outdir, "sequence-raw.txt"), "w") as f:
        f.write(f"{last} {called}\n")
    conn.close()
    env = dict(os.environ)
    schema = subprocess.run(
        [os.environ.get("PG_DUMP", "pg_dump"), "--schema-only", "-h", dsn_part(dsn, "host"),
         "-p", dsn_part(dsn, "port"), "-U", dsn_part(dsn, "user"), dsn_part(dsn, "dbname")],
        check=True, capture_output=True, env=env).stdout.decode()
    keep = [line for line in schema.splitlines()
            if not line.startswith(("-- Dumped from", "-- Dumped by", "\\restrict",
                                    "\\unrestrict"))]
    with open(os.path.join(outdir, "schema.sql"), "w") as f:
        f.write("\n".join(keep) + "\n")
    return 0


def cmd_verify(dsn, mode, workdir):
    import ZODB
    from ZODB.blob import Blob
    from ZODB.utils import p64
    cache = tempfile.mkdtemp(prefix="rs-cache-", dir=workdir)
    storage = open_storage(dsn, mode, cache, create=False)
    import psycopg2
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    if mode == "hp":
        cur.execute("SELECT zoid, tid FROM object_state WHERE state IS NOT NULL "
                    "ORDER BY zoid, tid")
        revisions = cur.fetchall()
        cur.execute("SELECT zoid, tid FROM current_object_state WHERE state IS NOT NULL")
    else:
        revisions = []
        cur.execute("SELECT zoid, tid FROM object_state")
    current = cur.fetchall()
    cur.execute("SELECT zoid, tid FROM blob_chunk")
    blobs = cur.fetchall()
    conn.close()
    loaded = 0
    for zoid, tid in current:
        data, serial = storage.load(p64(zoid))
        assert serial == p64(tid), (zoid, tid)
        loaded += 1
    for zoid, tid in revisions:
        data = storage.loadSerial(p64(zoid), p64(tid))
        assert data is not None
    read = 0
    for zoid, tid in blobs:
        name = storage.loadBlob(p64(zoid), p64(tid))
        with open(name, "rb") as f:
            while f.read(1 << 20):
                pass
        read += 1
    db = ZODB.DB(storage)
    c = db.open()
    root = c.root()
    for k in list(root.keys())[:50]:
        obj = root[k]
        getattr(obj, "__dict__", None)
        if isinstance(obj, Blob):
            obj.open("r").close()
    c.close()
    db.close()
    print(f"current objects loaded: {loaded}; revisions loaded: {len(revisions)}; "
          f"blobs read: {read}")
    return 0


def cmd_pack(dsn, mode, workdir):
    cache = tempfile.mkdtemp(prefix="rs-cache-", dir=workdir)
    conf = write_conf(workdir, relstorage_section("main", dsn, mode, cache,
                                                  "create-schema false"))
    r = subprocess.run([os.path.join(BIN, "zodbpack"), "--days", "0", conf],
                       capture_output=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode("utf-8", "replace")[-3000:])
    return r.returncode


def cmd_maxoid(path):
    print(maxoid(path))
    return 0


def maxoid(path):
    from ZODB.FileStorage import FileStorage
    from ZODB.utils import u64
    with tempfile.TemporaryDirectory() as d:
        link = os.path.join(d, "Data.fs")
        os.symlink(os.path.abspath(path), link)
        fs = FileStorage(link, read_only=True)
        n = u64(fs._oid)
        fs.close()
    return n


def main(argv):
    cmd, args = argv[0], argv[1:]
    opts = {}
    pos = []
    i = 0
    while i < len(args):
        if args[i].startswith("--"):
            opts[args[i][2:].replace("-", "_")] = args[i + 1]
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if "maxoid" in opts:
        opts["maxoid"] = int(opts["maxoid"])
    fn = globals()["cmd_" + cmd]
    return fn(*pos, **opts) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
