"""The cases of conformance_convert.sh (run by the RelStorage venv's python).

    convert_conformance.py WORK CORPUS ci|full SEED1 SEED2

Environment: ZODBFS (the zodbfs command), PG_HOST, PG_PORT, PG_USER, PG_BIN (the server
pg.sh started). Prints PASS/FAIL/SKIP lines; the caller prints the summary from the
`result: N passed, M failed` line this prints last.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import psycopg2

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, here)
import relstorage_tool as rt  # noqa: E402

work, corpus, form = sys.argv[1:4]
seeds = [int(s) for s in sys.argv[4:6]]
zodbfs = os.environ["ZODBFS"].split()
py = sys.executable
host, port, user = os.environ["PG_HOST"], os.environ["PG_PORT"], os.environ["PG_USER"]
os.environ["PG_DUMP"] = os.path.join(os.environ["PG_BIN"], "pg_dump")
passed = failed = 0
cases = set((os.environ.get("CONVERT_CASES") or "convert,packrefs,refuse,kill,follow")
            .split(","))


def dsn(db):
    return f"dbname={db} host={host} port={port} user={user}"


def url(db):
    return f"postgresql:///{db}?host={host}&port={port}&user={user}"


def say(ok, name, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}" + (f" -- {why}" if why else ""), flush=True)
        for line in str(why).splitlines()[:0]:
            print("    " + line)


def recreate(db):
    c = psycopg2.connect(dsn("postgres"))
    c.autocommit = True
    cur = c.cursor()
    cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
    cur.execute(f'CREATE DATABASE "{db}"')
    c.close()


def sql(db, q):
    c = psycopg2.connect(dsn(db))
    c.autocommit = True
    cur = c.cursor()
    cur.execute(q)
    rows = cur.fetchall() if cur.description else None
    c.close()
    return rows


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, **kw)


def tool(*args):
    return run([py, os.path.join(here, "relstorage_tool.py"), *args])


def schema(db, mode):
    recreate(db)
    rt.cmd_schema(dsn(db), mode)


def dump(db, out, maxoid):
    shutil.rmtree(out, ignore_errors=True)
    rt.cmd_dump(dsn(db), out, maxoid)


def verify(db, mode):
    """RelStorage opens the database and loads everything: (ok, what, why)."""
    import contextlib
    import io
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            rt.cmd_verify(dsn(db), mode, work)
        return True, out.getvalue().strip(), ""
    except Exception as e:  # noqa: BLE001
        return False, "", repr(e)[-800:]


def diff_dirs(a, b, mode, skip=()):
    """The first difference between two dumps (but the files in `skip`), or None."""
    names = sorted(set(os.listdir(a)) | set(os.listdir(b)))
    for n in names:
        if n in skip:
            continue
        if n == "sequence-raw.txt" and mode == "hf":
            # plain and --incremental zodbconvert leave different values; the property is
            # compared (sequence.txt)
            continue
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        if not (os.path.exists(pa) and os.path.exists(pb)):
            return f"{n} only on one side"
        if open(pa, "rb").read() != open(pb, "rb").read():
            r = run(["diff", "-u", pa, pb])
            return f"{n} differs:\n" + r.stdout.decode("utf-8", "replace")[:1500]
    return None


def zodbfs_convert(path, db, blobs, *extra, check=True):
    cmd = [*zodbfs, "-q", "convert", path, url(db), *extra]
    if blobs:
        cmd += ["--blobs", blobs]
    r = run(cmd)
    if check and r.returncode:
        raise RuntimeError(f"zodbfs convert exit {r.returncode}: " + r.stderr.decode()[-2000:])
    return r


def maxoid(path):
    return rt.maxoid(path)


def txn_boundaries(path):
    data = open(path, "rb").read()
    pos, out = 4, []
    while pos + 23 <= len(data):
        tlen = int.from_bytes(data[pos + 8:pos + 16], "big")
        nxt = pos + tlen + 8
        if nxt > len(data) or data[pos + 16:pos + 17] == b"c":
            break
        out.append(nxt)
        pos = nxt
    return out


# ---------------------------------------------------------------- inputs
gen = os.path.join(work, "gen")
os.makedirs(gen, exist_ok=True)
inputs = []  # (name, path, blobs)
fx = os.path.join(repo, "testdata", "fixtures")
for n in ["small", "undo", "multidb", "multidb-other", "blobs", "torn", "ctail"]:
    inputs.append((f"fixture/{n}", os.path.join(fx, n + ".fs"),
                   os.path.join(fx, "blobs.blobdir") if n == "blobs" else None))
mb = "2" if form == "ci" else "8"
s1, s2 = seeds
g1 = os.path.join(gen, f"blobs-undo-{s1}.fs")
g2 = os.path.join(gen, f"multidb-{s2}.fs")
r1 = run([py, os.path.join(here, "gen_datafs.py"), g1, "--seed", str(s1), "--mb", mb,
          "--blobs", g1 + ".blobs", "--undo-every", "3"])
r2 = run([py, os.path.join(here, "gen_datafs.py"), g2, "--seed", str(s2), "--mb", mb,
          "--multidb"])
if r1.returncode or r2.returncode:
    say(False, "generate", (r1.stderr + r2.stderr).decode()[-1500:])
else:
    inputs.append((f"gen/blobs-undo-{s1}", g1, g1 + ".blobs"))
    inputs.append((f"gen/multidb-{s2}", g2, None))
    inputs.append((f"gen/multidb-{s2}-other", g2[:-3] + "-other.fs", None))
if os.path.isdir(corpus):
    real = sorted(f for f in os.listdir(corpus) if f.endswith(".fs"))
    fs30 = [f for f in real if open(os.path.join(corpus, f), "rb").read(4) == b"FS30"]
    if form == "ci":
        fs30 = random.Random(s1).sample(fs30, min(3, len(fs30)))
    for f in fs30:
        inputs.append((f"corpus/{f[:-3]}", os.path.join(corpus, f), None))
    print(f"corpus: {len(fs30)} FS30 files of {len(real)} "
          f"(FS21 files: ZODB on Python 3, and so zodbconvert, cannot read them)")
else:
    print(f"SKIP corpus (no {corpus})")

# ---------------------------------------------------------------- conversions
k = 0
for name, path, blobs in (inputs if "convert" in cases else []):
    mo = maxoid(path)
    for mode in ["hp", "hf"]:
        k += 1
        case = f"{mode} {name}"
        o, u = f"o{k}", f"u{k}"
        try:
            recreate(o)
            r = tool("zodbconvert", path, dsn(o), mode, work, *(["--blobs", blobs] if blobs else []))
            if r.returncode:
                say(False, f"convert {case}", "zodbconvert failed: " + r.stderr.decode()[-800:])
                continue
            how = r.stdout.decode().strip()
            schema(u, mode)
            zodbfs_convert(path, u, blobs, "--jobs", str(1 + k % 3))
            dump(o, os.path.join(work, "dump", o), mo)
            dump(u, os.path.join(work, "dump", u), mo)
            d = diff_dirs(os.path.join(work, "dump", o), os.path.join(work, "dump", u), mode)
            say(d is None, f"convert {case} (zodbconvert {how})", d)
            ok, what, why = verify(u, mode)
            say(ok, f"RelStorage opens {case}: {what}", why)
            if form == "full" or not name.startswith(("fixture/", "corpus/")) or \
                    name == "fixture/blobs":
                p = tool("pack", dsn(u), mode, work)
                say(p.returncode == 0, f"zodbpack {case}", p.stderr.decode()[-800:])
            # export of the database zodbconvert filled, against zodbconvert's own export
            ex = os.path.join(work, "export", f"{k}")
            shutil.rmtree(ex, ignore_errors=True)
            os.makedirs(ex)
            bz = ["--blobs-to", os.path.join(ex, "zodb.blobs")] if blobs else []
            bo = ["--blobs-to", os.path.join(ex, "ours.blobs")] if blobs else []
            r = tool("export", dsn(o), mode, os.path.join(ex, "zodb.fs"), work, *bz)
            if r.returncode:
                say(False, f"export {case}", "zodbconvert export failed: " + r.stderr.decode()[-800:])
            else:
                e = run([*zodbfs, "-q", "export", url(o), os.path.join(ex, "ours.fs"), *bo])
                same = e.returncode == 0 and open(os.path.join(ex, "zodb.fs"), "rb").read() == \
                    open(os.path.join(ex, "ours.fs"), "rb").read()
                why = e.stderr.decode()[-800:] if e.returncode else "Data.fs differs"
                if same and blobs:
                    def tree(d):
                        out = {}
                        for root, _, files in os.walk(d):
                            for f in files:
                                if f.endswith(".blob"):
                                    p_ = os.path.join(root, f)
                                    out[os.path.relpath(p_, d)] = open(p_, "rb").read()
                        return out
                    same = tree(os.path.join(ex, "zodb.blobs")) == tree(os.path.join(ex, "ours.blobs"))
                    why = "blob files differ"
                say(same, f"export {case}", why)
            for db in (o, u):
                sql("postgres", f'DROP DATABASE "{db}"')
        except Exception as e:  # noqa: BLE001
            say(False, f"convert {case}", repr(e)[-1500:])

# ---------------------------------------------------------------- --pack-refs
def refs_added_lost(a, b):
    """The history-free object_refs_added rows only dump `b` has, when each is one that
    RelStorage's own pre-pack loses (else None): for every object it analyses it queues
    an insert of (zoid, tid) and then a delete of that zoid, and its batcher runs a
    flush's deletes before its inserts; but it flushes every 1024 rows, and when the
    insert is the last row of a flush, the delete runs in the next one and removes the
    row. Such a row names the object's current state (zoid and tid as in object_state),
    and `a` has no row `b` lacks."""
    def rows(d, n):
        return [l for l in open(os.path.join(d, n)).read().splitlines() if l]
    ra, rb = set(rows(a, "object_refs_added.txt")), rows(b, "object_refs_added.txt")
    extra = [x for x in rb if x not in ra]
    if not extra or not ra <= set(rb):
        return None
    state = {}
    for l in rows(a, "object_state.txt"):
        f = l.split("\t")
        state[f[0]] = f[1] if len(f) > 1 else None
    for x in extra:
        f = x.split("\t")
        if len(f) != 2 or state.get(f[0]) != f[1]:
            return None
    return extra


def rs_pack(db, mode):
    """Packs with RelStorage in this process; returns its pre-pack log lines."""
    import io
    import logging
    import tempfile
    from ZODB.serialize import referencesf
    log = io.StringIO()
    h = logging.StreamHandler(log)
    lg = logging.getLogger("relstorage")
    lg.addHandler(h)
    old = lg.level
    lg.setLevel(logging.INFO)
    try:
        st = rt.open_storage(dsn(db), mode, tempfile.mkdtemp(dir=work), create=False)
        st.pack(time.time(), referencesf)
        st.close()
    finally:
        lg.removeHandler(h)
        lg.setLevel(old)
    return [x for x in log.getvalue().splitlines() if "analyzing references" in x]


for name, path, blobs in (inputs if "packrefs" in cases else []):
    if not name.startswith("gen/") or name.endswith("-other"):
        continue
    mo = maxoid(path)
    for mode in ["hp", "hf"]:
        case = f"--pack-refs {mode} {name}"
        try:
            schema("po", mode)
            schema("pu", mode)
            zodbfs_convert(path, "po", blobs)
            zodbfs_convert(path, "pu", blobs, "--pack-refs")
            rs_pack("po", mode)
            lines = rs_pack("pu", mode)
            skipped = any(" 0 new transaction(s)" in x or " 0 object(s)" in x for x in lines)
            dump("po", os.path.join(work, "dump", "po"), mo)
            dump("pu", os.path.join(work, "dump", "pu"), mo)
            po, pu = os.path.join(work, "dump", "po"), os.path.join(work, "dump", "pu")
            d = diff_dirs(po, pu, "hf")
            lost = None
            if d is not None and mode == "hf" and d.startswith("object_refs_added.txt"):
                lost = refs_added_lost(po, pu)
                if lost is not None:
                    d = diff_dirs(po, pu, "hf", skip={"object_refs_added.txt"})
            note = (f" [RelStorage's own pre-pack lost object_refs_added rows at its batch "
                    f"boundaries, which ours keeps: {', '.join(x.replace(chr(9), ' at tid ') for x in lost)}]" if lost else "")
            say(d is None and skipped,
                f"{case}: RelStorage's pack analyses nothing and ends with the tables of a "
                f"pack that analysed everything{note}", d or f"pre-pack said: {lines}")
        except Exception as e:  # noqa: BLE001
            say(False, case, repr(e)[-1500:])


# ---------------------------------------------------------------- refusals
try:
    if "refuse" not in cases:
        raise StopIteration
    path = os.path.join(fx, "small.fs")
    schema("r1", "hp")
    zodbfs_convert(path, "r1", None)
    r = zodbfs_convert(os.path.join(fx, "undo.fs"), "r1", None, check=False)
    say(r.returncode == 1 and b"already holds data" in r.stderr,
        "a filled destination is refused", r.stderr.decode()[-500:])
    r = zodbfs_convert(os.path.join(fx, "undo.fs"), "r1", None, "--clear", check=False)
    schema("r2", "hp")
    zodbfs_convert(os.path.join(fx, "undo.fs"), "r2", None)
    mo = maxoid(os.path.join(fx, "undo.fs"))
    dump("r1", os.path.join(work, "dump", "r1"), mo)
    dump("r2", os.path.join(work, "dump", "r2"), mo)
    d = diff_dirs(os.path.join(work, "dump", "r1"), os.path.join(work, "dump", "r2"), "hf")
    say(r.returncode == 0 and d is None, "--clear gives the rows of a fresh conversion", d)
    r = zodbfs_convert(path, "r2", None, "--history-free", check=False)
    say(r.returncode == 1 and b"not the history-free one" in r.stderr,
        "a destination of the other mode is refused", r.stderr.decode()[-500:])
    schema("r3", "hf")
    sql("r3", "COMMENT ON FUNCTION make_current_tid() IS 'abc'")
    r = zodbfs_convert(path, "r3", None, check=False)
    say(r.returncode == 1 and b"unknown RelStorage version" in r.stderr,
        "an unknown schema version is refused", r.stderr.decode()[-500:])
    recreate("r4")
    r = zodbfs_convert(path, "r4", None, check=False)
    say(r.returncode == 1 and b"no RelStorage schema" in r.stderr,
        "a database without RelStorage's schema is refused", r.stderr.decode()[-500:])
    r = zodbfs_convert(os.path.join(fx, "blobs.fs"), "r4", None, check=False)
except StopIteration:
    pass
except Exception as e:  # noqa: BLE001
    say(False, "refusals", repr(e)[-1500:])


# ---------------------------------------------------------------- killed and resumed
def kill_case(mode, path, blobs, sig, label):
    ref, db = f"k_ref_{mode}", f"k_{mode}"
    schema(ref, mode)
    t = time.time()
    zodbfs_convert(path, ref, blobs, "--checkpoint-mb", "0.05")
    took = time.time() - t
    schema(db, mode)
    rng = random.Random(f"{s1}-{mode}-{sig}")
    kills = partial = 0
    base = [*zodbfs, "-q", "convert", path, url(db), "--checkpoint-mb", "0.05",
            "--jobs", "2"] + (["--blobs", blobs] if blobs else [])
    restarts = 0
    for attempt in range(80):
        wanted = partial < 4 and attempt < 60
        p = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wanted:
            # anywhere in the run: the startup, the copy, the last commits
            time.sleep(rng.uniform(0.0, took))
            p.send_signal(sig)
        _, err = p.communicate()
        has_manifest = sql(db, "SELECT to_regclass('zodbfs_convert_manifest') IS NOT NULL")[0][0]
        # A signal after the last commit: the conversion had finished, and a rerun rightly
        # refuses the filled destination.
        finished = p.returncode == 0 or (
            p.returncode == 1 and b"already holds data" in err and not has_manifest)
        if finished:
            if not wanted:
                break
            # finished before enough signals landed after commits: start over
            restarts += 1
            schema(db, mode)
            continue
        if p.returncode not in (-9, -2, 130):
            raise RuntimeError(f"exit {p.returncode}: {err.decode()[-800:]}")
        kills += 1
        if has_manifest:
            partial += sql(db, "SELECT count(*) FROM object_state")[0][0] > 0
    else:
        raise RuntimeError("never finished")
    mo = maxoid(path)
    dump(ref, os.path.join(work, "dump", ref), mo)
    dump(db, os.path.join(work, "dump", db), mo)
    d = diff_dirs(os.path.join(work, "dump", ref), os.path.join(work, "dump", db), "hp")
    say(d is None and partial > 0,
        f"{label} {mode}: {kills} kills ({partial} with rows committed, {restarts} runs "
        "finished first), resumed = uninterrupted",
        d or "no kill landed after a commit: the case proved nothing")


big = os.path.join(gen, f"kill-{s1}.fs")
r = run([py, os.path.join(here, "gen_datafs.py"), big, "--seed", str(s1 + 1), "--mb",
         "6" if form == "ci" else "20", "--blobs", big + ".blobs", "--undo-every", "5"])
for mode in (["hp", "hf"] if "kill" in cases else []):
    for sig, label in [(signal.SIGKILL, "kill -9"), (signal.SIGINT, "SIGINT")]:
        try:
            kill_case(mode, big, big + ".blobs", sig, label)
        except Exception as e:  # noqa: BLE001
            say(False, f"{label} {mode}", repr(e)[-1500:])


# ---------------------------------------------------------------- --follow
def follow_case(mode, path, blobs):
    ref, db = f"f_ref_{mode}", f"f_{mode}"
    schema(ref, mode)
    zodbfs_convert(path, ref, blobs)
    schema(db, mode)
    live = os.path.join(work, f"live-{mode}.fs")
    data = open(path, "rb").read()
    bounds = txn_boundaries(path)
    half = bounds[len(bounds) // 2]
    with open(live, "wb") as f:
        f.write(data[:half])
    cmd = [*zodbfs, "-q", "convert", live, url(db), "--follow", "--poll", "0.1"] + \
        (["--blobs", blobs] if blobs else [])
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def phase():
        try:
            r = sql(db, "SELECT value FROM zodbfs_convert_manifest WHERE key = 'phase'")
            return r[0][0] if r else None
        except psycopg2.Error:
            return None
    deadline = time.time() + 120
    while phase() != "follow" and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    # append the rest in pieces, some cutting transactions in their middle
    rest = data[half:]
    cuts = sorted(random.Random(s2).sample(range(1, len(rest)), 5))
    prev = 0
    for c in cuts + [len(rest)]:
        with open(live, "ab") as f:
            f.write(rest[prev:c])
        prev = c
        time.sleep(0.3)
    end = bounds[-1]
    while time.time() < deadline:
        r = sql(db, "SELECT value FROM zodbfs_convert_manifest WHERE key = 'follow_pos'")
        if r and int(r[0][0]) >= end:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"--follow exit {p.returncode}: {err.decode()[-800:]}")
    zodbfs_convert(live, db, blobs)
    mo = maxoid(path)
    dump(ref, os.path.join(work, "dump", ref), mo)
    dump(db, os.path.join(work, "dump", db), mo)
    d = diff_dirs(os.path.join(work, "dump", ref), os.path.join(work, "dump", db), mode)
    say(d is None, f"--follow {mode}: half copied in bulk, the rest followed = one conversion", d)


for mode in (["hp", "hf"] if "follow" in cases else []):
    try:
        follow_case(mode, big, big + ".blobs")
    except Exception as e:  # noqa: BLE001
        say(False, f"--follow {mode}", repr(e)[-1500:])

print(f"result: {passed} passed, {failed} failed")
