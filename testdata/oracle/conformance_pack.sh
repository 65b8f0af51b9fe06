#!/usr/bin/env bash
# Differential test of `zodbfs pack` against ZODB 6.4's FileStorage.pack.
#
#   testdata/oracle/conformance_pack.sh
#
# Inputs: files made by real ZODB (gen_datafs.py) with undo chains, undone creations,
# several records of one object per transaction, empty transactions, weak, bare-oid and
# cross-database references, blobs (bushy, and the same tree migrated to the lawn
# layout), a torn tail and a 'c' tail; the second database of a multi-database pair;
# files with dangling references (dangling.py, before and after a pack without GC); a blob
# object linked anew after the pack time (relinked_blob.py); a file
# written through zc.zlibstorage (compressed records; ZODB's oracle packs it through
# zc.zlibstorage too, since its bare pack fails on them; ours decompresses `.z` records
# itself); and every file of
# the real corpus ($ZFS_CORPUS, default ../shared/corpus/real; FS21 and FS30).
#
# Stop tids: one before the first transaction, exactly the first, exactly the last, one
# after the last, one below, at and above tids in the middle; GC on and off. Also: packs
# in sequence (the same time again, an earlier one, a later one: the redundant-pack and
# no-op rules), a pack time given as seconds (`--time`), and `--no-keep-old`.
#
# Each case packs one copy with ZODB (pack_oracle.py) and another with `zodbfs pack`, and
# compares byte for byte: Data.fs, .index (when the file changed), .old, no .pack, the
# blob directory and <blobs>.old. Where ZODB fails or loses data, where we differ on
# purpose, our rule is checked instead, and the case's name says which:
#   [ZODB KeyError, we refuse]  ZODB's KeyError on a dangling reference: we refuse,
#                 change nothing, and name the same missing oid;
#   [ZODB leaves dangling references; ...]  ZODB's output has dangling references (a
#                 revision kept by an undo after the pack time whose referents it
#                 collected; read with ZODB's iterator, each record as of its own
#                 transaction): ours has none the source did not have, holds ZODB's
#                 records plus records before the pack time of exactly the extra objects
#                 it reports (`[we keep N more objects than ZODB]` where ZODB's output
#                 still has no dangling reference);
#   [ZODB removes N blob files its packed file needs; ...]  a blob object unreachable at
#                 the pack time and written again after it (relinked_blob.py, and any
#                 generated file where it happens): ZODB removes its whole directory;
#                 ours holds ZODB's blob files plus exactly those its packed file needs;
#   [ZODB PackError, we pack]  ZODB's PackError/AssertionError without GC: we pack, and
#                 leave no .pack.
#
# Half the cases with GC give ours a saved index (`zodbfs reindex`), and half of those
# saved references too (`zodbfs pack --prepare`, FILE.refs): the result must not change.
# Where such a pack could use them (the pack time after the last committed transaction,
# ZODB packed without error, ours packed), the summary's "saved_references" is counted;
# "ignored" on a file without damage is shown in the case's name as
# ` (saved references: ignored)`, and when none of them was "used" a FAIL
# `saved references were never used` is counted (the feature went unexercised).
# `repack-*` cases pack to now with ours (which leaves FILE.refs for the packed file), let
# real ZODB commit more (site_writer.py), then pack both sides to now again: ZODB's bytes,
# and ours must have used the references its first pack left.
#
# Prints `PASS name` / `FAIL name -- why` lines, then
# `conformance_pack: saved references used in N packs`, and ends with exactly one line
# `conformance_pack: N passed, M failed`; exits 1 on any failure.
#
# Environment: ZODBFS (the zodbfs command; default: build ours), ORACLE_PY (the oracle's
# python; default: setup.sh's venv), ZFS_CORPUS, CONFORMANCE_SEEDS (two seeds;
# default random, printed), CONFORMANCE_WORK (work directory, kept when something
# failed), CONFORMANCE_JOBS (parallel cases, default: the number of cores).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
summary_fail() { echo "conformance_pack: 0 passed, 1 failed"; exit 1; }
# shellcheck source=/dev/null
source "$here/lib.sh"
conf_oracle_python
[[ -x "${ORACLE_PY:-}" ]] || { echo "FAIL oracle python"; summary_fail; }
conf_zodbfs >&2 || summary_fail

keep_work=0
if [[ -n "${CONFORMANCE_WORK:-}" ]]; then
    work="$CONFORMANCE_WORK"
    keep_work=1
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/zfs-conf-pack.XXXXXX")"
fi
mkdir -p "$work"
corpus="$(conf_corpus_dir)"
seeds="${CONFORMANCE_SEEDS:-$((RANDOM % 100000)) $((RANDOM % 100000 + 100000))}"
echo "conformance_pack seeds: $seeds (rerun with CONFORMANCE_SEEDS=\"$seeds\")"
t0=$SECONDS

ZODBFS_JOINED="${ZODBFS_CMD[*]}" "$ORACLE_PY" - "$here" "$work" "$corpus" $seeds <<'PY'
import ast
import calendar
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

here, work, corpus = sys.argv[1:4]
sys.path.insert(0, here)
from pack_explain import blob_difference, history  # noqa: E402
seeds = [int(s) for s in sys.argv[4:]]
zodbfs = os.environ["ZODBFS_JOINED"].split()
py = sys.executable
jobs = int(os.environ.get("CONFORMANCE_JOBS") or os.cpu_count() or 2)
passed = failed = 0


def report(results):
    global passed, failed
    for ok, name, why in results:
        if ok:
            passed += 1
            print("PASS", name, flush=True)
        else:
            failed += 1
            print("FAIL", name, ("-- " + why) if why else "", flush=True)


def tids(path):
    """(position, tid) of the committed transactions."""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 4
    while pos + 23 <= len(data):
        tid, tlen, status = struct.unpack(">8sQc", data[pos:pos + 17])
        if status == b"c" or pos + tlen + 8 > len(data):
            break
        out.append((pos, int.from_bytes(tid, "big")))
        pos += tlen + 8
    return out


def digest(path):
    if not os.path.exists(path):
        return None
    if os.path.isdir(path):
        tree = {}
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != "tmp"]
            rel = os.path.relpath(root, path)
            tree[rel + "/"] = None
            for f in files:
                tree[os.path.join(rel, f)] = digest(os.path.join(root, f))
        return tree
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def stops_for(path, many):
    t = [x[1] for x in tids(path)]
    if not t:
        return []
    s = {t[0] - 1, t[0], t[-1], t[-1] + 1, t[len(t) // 2]}
    if many:
        s |= {t[len(t) // 4] - 1, t[(3 * len(t)) // 4], t[len(t) // 3] + 1}
    return sorted(x for x in s if x > 0)


class Side:
    """One packer's copy of the inputs: DIR/Data.fs (+ DIR/blobs)."""

    def __init__(self, d, src, blobs, zlib=False):
        self.dir = d
        self.zlib = zlib
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        self.fs = os.path.join(d, "Data.fs")
        shutil.copyfile(src, self.fs)
        self.blobs = None
        if blobs:
            self.blobs = os.path.join(d, "blobs")
            shutil.copytree(blobs, self.blobs)
        # A previous pack's .old: both packers must delete it.
        with open(self.fs + ".old", "wb") as f:
            f.write(b"stale")

    def args(self, gc, keep_old):
        a = [] if gc else ["--no-gc"]
        if not keep_old:
            a.append("--no-keep-old")
        if self.blobs:
            a += ["--blobs", self.blobs]
        return a


def zodb_pack(side, when, gc, keep_old):
    r = subprocess.run([py, os.path.join(here, "pack_oracle.py"), side.fs] + when
                       + side.args(gc, keep_old) + (["--zlib"] if side.zlib else []),
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except Exception:
        return {"crash": r.stderr[-300:]}


def our_pack(side, when, gc, keep_old):
    o = subprocess.run(zodbfs + ["--quiet", "pack", side.fs, "--json"] + when
                       + side.args(gc, keep_old), capture_output=True, text=True)
    try:
        summary = json.loads(o.stdout) if o.returncode == 0 else None
    except ValueError:
        summary = None
    return o, summary


def dangling_refs(path):
    """Exit status of `zodbfs refs` (3: dangling references)."""
    return subprocess.run(zodbfs + ["--quiet", "refs", path], capture_output=True).returncode


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def compare(a, b, src_digest):
    why = []
    za, zb = digest(a.fs), digest(b.fs)
    zold = digest(a.fs + ".old")
    tr = a.fs + ".tr0"
    tail = None
    if os.path.exists(tr):
        tail = read(tr)
    elif os.path.exists(b.fs + ".tr0"):
        # A tail shorter than a transaction header: ZODB's open cuts it off and keeps it
        # nowhere; ours keeps it in .tr0, which must be exactly the bytes ZODB dropped.
        t = read(b.fs + ".tr0")
        base = a.fs + ".old" if os.path.exists(a.fs + ".old") else a.fs
        if sha(read(base) + t) == src_digest:
            tail = t
        else:
            why.append(".tr0 is not what ZODB cut off")
    elif za != zb and zb == src_digest and not os.path.exists(b.fs + ".old"):
        # Nothing to pack: ours leaves the file as it is, ZODB's open has cut off a tail
        # shorter than a header.
        ours, theirs = read(b.fs), read(a.fs)
        if ours.startswith(theirs) and len(ours) - len(theirs) < 23:
            tail = ours[len(theirs):]
    if tail is not None:
        # A torn or 'c' tail: ZODB's FileStorage truncates it (into Data.fs.tr0 when it is
        # a header or more) when it opens the file, before packing. On purpose we never
        # change the original: the tail stays in .old (or in Data.fs when nothing was
        # packed). So ours must equal ZODB's with the tail appended back.
        if zold is not None:
            zold = sha(read(a.fs + ".old") + tail)
        if za != zb and sha(read(a.fs) + tail) == src_digest:
            za = src_digest
    if za != zb:
        why.append("Data.fs differs")
    if za != src_digest and digest(a.fs + ".index") != digest(b.fs + ".index"):
        why.append(".index differs")
    if zold != digest(b.fs + ".old"):
        why.append(".old differs")
    if os.path.exists(b.fs + ".pack"):
        why.append(".pack left")
    if a.blobs:
        for sub in ("blobs", "blobs.old"):
            if digest(os.path.join(a.dir, sub)) != digest(os.path.join(b.dir, sub)):
                why.append(sub + " differs")
    return why


def step(name, a, b, when, gc, keep_old=True, seen=None):
    """Packs both sides once; returns (ok, name, why). When `seen` is a dict, it receives
    ZODB's answer ("oracle") and our --json summary ("summary", None on failure)."""
    src_digest = digest(a.fs)
    before = digest(b.fs), digest(b.fs + ".old"), digest(b.blobs) if b.blobs else None
    oracle = zodb_pack(a, when, gc, keep_old)
    if "crash" in oracle:
        return False, name, "oracle crashed: " + oracle["crash"]
    o, summary = our_pack(b, when, gc, keep_old)
    if seen is not None:
        seen["oracle"], seen["summary"] = oracle, summary
    unchanged = (digest(b.fs), digest(b.fs + ".old"),
                 digest(b.blobs) if b.blobs else None) == before
    err = oracle["error"]
    if err and err.startswith("KeyError"):
        try:
            missing = ast.literal_eval(err.split(":", 1)[1].strip())
            missing_hex = missing.hex() if isinstance(missing, bytes) else None
        except (ValueError, SyntaxError):
            missing_hex = None
        why = []
        if o.returncode != 3:
            why.append("exit %d, expected 3" % o.returncode)
        if not unchanged:
            why.append("files changed")
        if os.path.exists(b.fs + ".pack"):
            why.append(".pack left")
        if missing_hex and ("missing oid " + missing_hex) not in o.stderr:
            why.append("ZODB's missing oid %s not listed" % missing_hex)
        return not why, name + " [ZODB KeyError, we refuse]", \
            "; ".join(why) + " " + o.stderr[-300:]
    if err and ("PackError" in err or "AssertionError" in err):
        ok = o.returncode == 0 and not os.path.exists(b.fs + ".pack") \
            and dangling_refs(b.fs) == 0
        return ok, name + " [ZODB %s, we pack]" % err.split(":")[0], \
            o.stderr[-300:]
    if err:
        ok = o.returncode != 0 and unchanged and not os.path.exists(b.fs + ".pack")
        return ok, name + " [ZODB fails: %s; we refuse]" % err[:60], o.stderr[-300:]
    if o.returncode != 0:
        return False, name, "we failed where ZODB packed: " + o.stderr[-400:]
    why = compare(a, b, src_digest)
    if why and set(why) <= {"Data.fs differs", ".index differs", "blobs differs"} \
            and when[0] == "--tid":
        label, problem = explained(a, b, int(when[1], 16), summary, why)
        if label:
            return not problem, name + " [" + label + "]", problem
    return not why, name, "; ".join(why)


def explained(a, b, stop, summary, why):
    """Where our packed file or blob directory differs from ZODB's by one of our rules,
    (the case's label, what is wrong or ""); (None, "") when no rule explains it.

    - Revisions kept by backpointers after the pack time: ZODB keeps them but collects
      the objects they refer to; ours keeps those objects too (`extra_objects_kept`),
      so ours holds ZODB's records plus records up to the pack time of exactly that many
      objects, and no dangling reference the source did not have.
    - Blob files: ZODB removes the whole directory of an object unreachable at the pack
      time even when the object was written again after it, so its packed file names
      blob files it no longer has; ours keeps every blob file its packed file needs and
      otherwise holds ZODB's files."""
    labels, problems = [], []
    ho, hz = history(b.fs, stop), history(a.fs, stop)
    if "Data.fs differs" in why:
        extra = (summary or {}).get("extra_objects_kept", 0)
        src = a.fs + ".old"
        if extra <= 0 or not os.path.exists(src):
            return None, ""
        hs = history(src, stop)
        more = ho[0] - hz[0]
        if not hz[0] <= ho[0]:
            problems.append("ZODB keeps records we drop")
        if len({oid for _, oid in more}) != extra or any(t > stop for t, _ in more):
            problems.append("our extra records are not %d objects' before the pack time"
                            % extra)
        if ho[2] - hs[2]:
            problems.append("ours has dangling references: %s" % sorted(ho[2] - hs[2])[:3])
        if hz[2] - hs[2]:
            labels.append("ZODB leaves dangling references; we keep %d more objects" % extra)
        else:
            labels.append("we keep %d more objects than ZODB" % extra)
    if "blobs differs" in why:
        label, problem = blob_difference(a.dir, b.dir, stop, ho, hz)
        if label:
            labels.append(label)
        elif "Data.fs differs" not in why:
            return None, ""
        if problem:
            problems.append(problem)
    return "; ".join(labels), "; ".join(problems)


def name_crc(text):
    return zlib.crc32(text.encode())


# Packs of prepared cases (saved references, `pack --prepare`) that could use them: the
# pack time after the last committed transaction, ZODB packed without error and ours
# packed. One (name, saved_references) each; appended by the worker threads.
saved_refs_eligible = []


def case(name, src, blobs, when, gc, keep_old=True, zlib=False):
    d = os.path.join(work, "case", name.split(" [")[0].replace("/", "_").replace(" ", "_"))
    a = Side(os.path.join(d, "zodb"), src, blobs, zlib)
    b = Side(os.path.join(d, "ours"), src, blobs)
    prepared = damaged = False
    if gc and name_crc(name) % 2:
        # Half the cases with GC give our packer the saved index a live database has
        # beside its file (its scan then gathers the references; the result must not
        # change). A file `reindex` refuses (damage) goes without one.
        r = subprocess.run(zodbfs + ["--quiet", "reindex", b.fs], capture_output=True)
        damaged = r.returncode != 0
        if name_crc(name) % 4 == 1:
            # Half of those also save the references beforehand (`pack --prepare`, the
            # FILE.refs a pack with GC to now reads the file once with; the result must
            # not change either). A file `prepare` refuses (damage) goes without.
            r = subprocess.run(zodbfs + ["--quiet", "pack", "--prepare", b.fs],
                               capture_output=True)
            prepared = r.returncode == 0 and os.path.exists(b.fs + ".refs")
            damaged = damaged or not prepared
    seen = {}
    r = step(name, a, b, when, gc, keep_old, seen)
    if prepared and seen:
        t = tids(src)
        summary = seen.get("summary") or {}
        if t and when[0] == "--tid" and int(when[1], 16) > t[-1][1] \
                and not seen["oracle"].get("error") and summary.get("outcome") == "packed":
            used = summary.get("saved_references")
            saved_refs_eligible.append((name, used))
            if used == "ignored" and not damaged:
                # Saved references of an undamaged file that the pack did not use: not a
                # failure (the result is checked as always), but worth seeing in the log.
                r = (r[0], r[1] + " (saved references: ignored)", r[2])
    if r[0]:
        shutil.rmtree(d, ignore_errors=True)
    return [r]


def sequence(name, src, blobs, stops, gc):
    """Packs both sides again and again, each from its own previous result."""
    d = os.path.join(work, "case", name.replace(" ", "_"))
    a = Side(os.path.join(d, "zodb"), src, blobs)
    b = Side(os.path.join(d, "ours"), src, blobs)
    out = []
    for label, stop in stops:
        r = step("%s then %s" % (name, label), a, b, ["--tid", "%016x" % stop], gc)
        out.append(r)
        # After a failure, or a deliberate difference, the two sides no longer hold the
        # same files: the sequence ends there.
        if not r[0] or " [" in r[1]:
            break
    if all(r[0] for r in out):
        shutil.rmtree(d, ignore_errors=True)
    return out


tasks = []  # (function, args): run in parallel, reported in order


def repack(name, src, blobs, seed):
    """A pack after a pack: ours packs to now (leaving Data.fs.refs for the packed file),
    real ZODB commits more (site_writer.py; closing, it writes Data.fs.index), then both
    packers pack the same bytes to now. The result must be ZODB's, and ours must have
    read the file once, from the references the first pack left."""
    d = os.path.join(work, "case", name.replace(" ", "_"))
    b = Side(os.path.join(d, "ours"), src, blobs)
    t = tids(src)
    o, first = our_pack(b, ["--tid", "%016x" % (t[-1][1] + 1)], True, True)
    if o.returncode != 0 or not (first or {}).get("references_saved") \
            or not os.path.exists(b.fs + ".refs"):
        return [(False, name, "the first pack left no references: " + o.stderr[-300:])]
    w = subprocess.run([py, os.path.join(here, "site_writer.py"), b.fs,
                        b.blobs or os.path.join(d, "ours", "blobs"), "--txns", "12",
                        "--seed", str(seed)], capture_output=True, text=True)
    if w.returncode != 0:
        return [(False, name, "site_writer.py: " + w.stderr[-300:])]
    a = Side(os.path.join(d, "zodb"), b.fs, b.blobs)
    t = tids(b.fs)
    seen = {}
    r = step(name, a, b, ["--tid", "%016x" % (t[-1][1] + 1)], True, True, seen)
    used = (seen.get("summary") or {}).get("saved_references")
    if r[0] and used != "used":
        r = (False, r[1], "the second pack did not read the file once: saved_references "
             "%s" % used)
    if r[0]:
        shutil.rmtree(d, ignore_errors=True)
    return [r]


def run_file(label, src, blobs=None, many=False):
    for stop in stops_for(src, many):
        for gc in (True, False):
            name = "%s stop=%016x %s" % (label, stop, "gc" if gc else "nogc")
            tasks.append((case, (name, src, blobs, ["--tid", "%016x" % stop], gc)))


def generate(out, *args):
    if os.path.exists(out):
        return True
    r = subprocess.run([py, os.path.join(here, "gen_datafs.py"), out] + list(args),
                       capture_output=True, text=True)
    if r.returncode != 0:
        report([(False, "generate " + os.path.basename(out), r.stderr[-300:])])
    return r.returncode == 0


def lawn_copy(bushy, dest):
    if not os.path.exists(dest):
        r = subprocess.run([py, "-c", "import sys, ZODB.scripts.migrateblobs as m; "
                            "m.migrate(sys.argv[1], sys.argv[2], 'lawn')", bushy, dest],
                           capture_output=True, text=True)
        if r.returncode != 0:
            report([(False, "migrate blobs to lawn", r.stderr[-300:])])
            return None
    return dest


def time_case(name, src, secs, when_ours):
    d = os.path.join(work, "case", name.replace(" ", "_").replace(":", "_"))
    a = Side(os.path.join(d, "zodb"), src, None)
    b = Side(os.path.join(d, "ours"), src, None)
    src_digest = digest(a.fs)
    oracle = zodb_pack(a, ["--time", repr(secs)], True, True)
    o, _ = our_pack(b, when_ours, True, True)
    if "crash" in oracle or oracle["error"] or o.returncode != 0:
        return [(False, name, str(oracle) + o.stderr[-300:])]
    why = compare(a, b, src_digest)
    if not why:
        shutil.rmtree(d, ignore_errors=True)
    return [(not why, name, "; ".join(why))]


gen = os.path.join(work, "gen")
os.makedirs(gen, exist_ok=True)
s1, s2 = (seeds + [seeds[0] + 1])[:2]

# 1. Everything at once: blobs, cross-database and weak references, large records.
f1, b1 = os.path.join(gen, "multi-%d.fs" % s1), os.path.join(gen, "multi-%d.blobs" % s1)
if generate(f1, "--seed", str(s1), "--txns", "120", "--blobs", b1, "--multidb",
            "--large-kb", "40"):
    run_file("multi-%d" % s1, f1, b1, many=True)
    run_file("multi-%d-other" % s1, f1[:-3] + "-other.fs")
    t = [x[1] for x in tids(f1)]
    mid, q1, q3 = t[len(t) // 2], t[len(t) // 4], t[(3 * len(t)) // 4]
    tasks.append((case, ("multi-%d no-keep-old" % s1, f1, b1, ["--tid", "%016x" % mid],
                         True, False)))
    tasks.append((sequence, ("multi-%d sequence gc" % s1, f1, b1,
                             [("mid", mid), ("mid again", mid), ("earlier", q1),
                              ("later", q3), ("after the last", t[-1] + 1),
                              ("after the last again", t[-1] + 1)], True)))
    tasks.append((sequence, ("multi-%d sequence nogc" % s1, f1, None,
                             [("q1", q1), ("mid", mid), ("mid again", mid)], False)))
    # The pack time as seconds: the stop tid computed from a float as ZODB does.
    for k, frac in ((len(t) // 3, 0.0), ((2 * len(t)) // 3, 0.5)):
        hi = t[k] >> 32
        mins = hi % 60
        rest = hi // 60
        hours = rest % 24
        rest //= 24
        day = rest % 31 + 1
        rest //= 31
        month = rest % 12 + 1
        year = rest // 12 + 1900
        secs = calendar.timegm((year, month, day, hours, mins, 0)) + 30 + frac
        when_ours = ["--time", "%04d-%02d-%02dT%02d:%02d:%09.6f" % (
            year, month, day, hours, mins, 30 + frac)]
        name = "multi-%d --time %s" % (s1, when_ours[1])
        tasks.append((time_case, (name, f1, secs, when_ours)))

# 2. Undo-heavy, with blobs in both layouts.
f2, b2 = os.path.join(gen, "undo-%d.fs" % s2), os.path.join(gen, "undo-%d.blobs" % s2)
if generate(f2, "--seed", str(s2), "--txns", "150", "--undo-every", "3", "--blobs", b2,
            "--large-kb", "40"):
    run_file("undo-%d" % s2, f2, b2, many=True)
    lawn = lawn_copy(b2, os.path.join(gen, "undo-%d.lawn" % s2))
    if lawn:
        t = [x[1] for x in tids(f2)]
        for stop in (t[len(t) // 2], t[-1] + 1):
            for gc in (True, False):
                tasks.append((case, ("undo-%d lawn stop=%016x %s" % (
                    s2, stop, "gc" if gc else "nogc"), f2, lawn,
                    ["--tid", "%016x" % stop], gc)))

# 3. Damaged tails: a torn last transaction, a 'c' (unfinished) last transaction.
for kind, seed in (("torn", s1 + 7), ("c", s2 + 7)):
    f = os.path.join(gen, "tail-%s-%d.fs" % (kind, seed))
    if generate(f, "--seed", str(seed), "--txns", "50", "--tail", kind, "--large-kb", "0"):
        t = [x[1] for x in tids(f)]
        for stop in (t[0] - 1, t[len(t) // 2], t[-1] + 1):
            for gc in (True, False):
                tasks.append((case, ("tail-%s-%d stop=%016x %s [tail kept: ZODB's open "
                                     "truncates it into .tr0]" % (
                    kind, seed, stop, "gc" if gc else "nogc"), f, None,
                    ["--tid", "%016x" % stop], gc)))

# 4. Dangling references: objects deleted (deleteObject) while still referenced, in the
# first two files (their deletions come after every other transaction).
for src, seed in ((f1, s1), (f2, s2)):
    f = os.path.join(gen, "dangling-%d.fs" % seed)
    if os.path.exists(src) and not os.path.exists(f):
        r = subprocess.run([py, os.path.join(here, "dangling.py"), src, f, str(seed), "3"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            report([(False, "dangling.py %d" % seed, r.stderr[-300:])])
            continue
    if os.path.exists(f):
        t = [x[1] for x in tids(f)]
        for stop in (t[-1] + 1, t[-2]):
            for gc in (True, False):
                tasks.append((case, ("dangling-%d stop=%016x %s" % (
                    seed, stop, "gc" if gc else "nogc"), f, None,
                    ["--tid", "%016x" % stop], gc)))


# 5. Records compressed by zc.zlibstorage (`.z` + zlib). Ours decompresses
# them before scanning references, by itself; ZODB's bare pack fails on them ("bad pickle
# data"), so the oracle packs through zc.zlibstorage, which decompresses for ZODB.
fz = os.path.join(gen, "zlib-%d.fs" % s1)
if generate(fz, "--seed", str(s1), "--txns", "150", "--zlib", "--undo-every", "4",
            "--large-kb", "40"):
    t = [x[1] for x in tids(fz)]
    for stop in (t[len(t) // 3], t[(2 * len(t)) // 3], t[-1] + 1):
        for gc in (True, False):
            tasks.append((case, ("zlib-%d stop=%016x %s [the oracle packs through "
                                 "zc.zlibstorage]" % (s1, stop, "gc" if gc else "nogc"),
                                 fz, None, ["--tid", "%016x" % stop], gc, True, True)))

# 6. A blob object unreachable at the pack time and written again after it (real ZODB):
# ZODB's pack removes its current blob file; ours keeps it.
fr, br = os.path.join(gen, "relinked.fs"), os.path.join(gen, "relinked.blobs")
r = subprocess.run([py, os.path.join(here, "relinked_blob.py"), fr, br],
                   capture_output=True, text=True)
if r.returncode == 0:
    stop = int(r.stdout.split()[-1], 16)
    t = [x[1] for x in tids(fr)]
    for s in (stop, t[-1] + 1):
        tasks.append((case, ("relinked-blob stop=%016x gc" % s, fr, br,
                             ["--tid", "%016x" % s], True)))
else:
    report([(False, "relinked_blob.py", r.stderr[-300:])])

# 7. A pack after a pack with real ZODB's commits in between (blobs included).
for f, bl, seed in ((f1, b1, s1), (f2, b2, s2)):
    if os.path.exists(f):
        tasks.append((repack, ("repack-%s" % os.path.basename(f)[:-3], f, bl, seed)))

# 8. The real corpus.
if os.path.isdir(corpus):
    for fn in sorted(os.listdir(corpus)):
        if fn.endswith(".fs"):
            run_file("corpus/" + fn[:-3], os.path.join(corpus, fn))
else:
    print("no real corpus at %s: skipped" % corpus)


def run(task):
    fn, args = task if isinstance(task, tuple) else (task, ())
    try:
        return fn(*args)
    except Exception as e:  # a harness bug is a failure, not a crash
        return [(False, "harness %s%r" % (getattr(fn, "__name__", "?"), args[:1]),
                 "%s: %s" % (type(e).__name__, e))]


with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
    for results in pool.map(run, tasks):
        report(results)

# The saved references must have been used at least once where they could be.
used = sum(1 for _, u in saved_refs_eligible if u == "used")
if saved_refs_eligible and not used:
    report([(False, "saved references were never used",
             "%d prepared packs could use them: %s" % (
                 len(saved_refs_eligible),
                 ", ".join("%s: %s" % x for x in saved_refs_eligible[:5])))])
print("conformance_pack: saved references of %d prepared packs after the last transaction: "
      "%s" % (len(saved_refs_eligible), ", ".join(
          "%d %s" % (sum(1 for _, u in saved_refs_eligible if u == k), k)
          for k in ("used", "ignored", "none"))), file=sys.stderr, flush=True)
print("conformance_pack: saved references used in %d packs" % used, flush=True)
print("conformance_pack: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
status=$?
echo "conformance_pack time: $((SECONDS - t0)) s" >&2
if [[ $status -eq 0 && $keep_work == 0 ]]; then
    rm -rf "$work"
elif [[ $status -ne 0 ]]; then
    echo "work directory kept: $work" >&2
fi
exit $status
