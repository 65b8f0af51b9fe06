#!/usr/bin/env bash
# Conformance of `zodbfs check`, `refs` and `recover` with ZODB 6.4's fstest, fsrefs and
# fsrecover (the oracle venv made by setup.sh).
#
#   testdata/oracle/conformance_check.sh [--quick]
#
# 1. check: damaged copies (corrupt.py, several seeds) of a ZODB-made fixture, of files made
#    by gen_datafs.py and of the real corpus ($ZFS_CORPUS; FS21 files are shown to fstest with an FS30
#    magic, since Python 3 ZODB refuses FS21). Wherever fstest fails, `zodbfs check` must
#    exit 3 and report fstest's offset; wherever fstest passes, `check` passes too, except
#    on the '+' kinds (damage fstest does not look for), which `check` must report.
# 2. refs: objects deleted while still referenced (dangling.py, with and without a pack):
#    `zodbfs refs` must find exactly fsrefs' (referrer, target, reason) triples and exit 3.
# 3. recover: byte-identical to fsrecover on undamaged FS30 inputs (identical to the input
#    for FS21 ones); on damaged inputs it exits 3 and writes a file `check` passes.
#
# Prints PASS/FAIL lines and ends with exactly one line
# `conformance-check: N passed, M failed`; exits 1 when anything failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

py="$("$here/setup.sh" | tail -n 1)" || { echo "conformance-check: 0 passed, 1 failed"; exit 1; }
zodbfs="${ZODBFS:-}"   # a prebuilt binary may be given; otherwise build one
if [[ -z "$zodbfs" ]]; then
    (cd "$root" && cargo build --release -q -p zfs-cli) || { echo "FAIL build"; echo "conformance-check: 0 passed, 1 failed"; exit 1; }
    zodbfs="$root/target/release/zodbfs"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/zfs-conf-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }

# --- inputs -----------------------------------------------------------------------------
inputs=("$root/testdata/fixtures/check/base.fs")
seeds=(1 2 3)
if [[ $quick == 0 ]]; then
    for s in 5 6; do
        if "$py" "$here/gen_datafs.py" "$work/gen$s.fs" --seed "$s" --txns 120 >/dev/null 2>&1; then
            inputs+=("$work/gen$s.fs")
        else
            fail "gen_datafs seed $s"
        fi
    done
    # The real corpus: $ZFS_CORPUS (default ../shared/corpus/real, relative to the repository).
    corpus="${ZFS_CORPUS:-../shared/corpus/real}"
    [[ "$corpus" == /* ]] || corpus="$root/$corpus"
    if [[ -d "$corpus" ]]; then
        # a sample of the corpus: the FS30 files and FS21 files of several sizes
        for f in "$corpus"/textpotential*.fs "$corpus"/tojuhaka*4770*.fs "$corpus"/DanRutz*.fs \
                 "$corpus"/lordmauve*1fe1626dc6.fs "$corpus"/lordmauve*3dbc7ceb19.fs "$corpus"/lordmauve*c36751bfda.fs; do
            [[ -e "$f" ]] && inputs+=("$f")
        done
    fi
else
    seeds=(1)
fi

# fstest on any magic: FS21 files get an FS30 copy (the walk is the same).
fstest() {
    local f="$1" g="$work/fstest-input.fs"
    if [[ "$(head -c 4 "$f")" == "FS21" ]]; then
        { printf 'FS30'; tail -c +5 "$f"; } > "$g"
        "$py" -m ZODB.scripts.fstest "$g" 2>&1 >/dev/null | sed "s|$g|$f|g"
        return "${PIPESTATUS[0]}"
    fi
    "$py" -m ZODB.scripts.fstest "$f" 2>&1 >/dev/null
}

# fstest over every file of a directory in one Python process: "name<TAB>rc<TAB>message".
cat > "$work/fstest_many.py" <<'PY'
import glob, os, sys, tempfile
from ZODB.scripts import fstest
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.fs"))):
    data = open(path, "rb").read()
    target = path
    if data[:4] == b"FS21":          # Python 3 fstest refuses FS21; the walk is the same
        fd, target = tempfile.mkstemp(suffix=".fs")
        os.write(fd, b"FS30" + data[4:])
        os.close(fd)
    try:
        fstest.check(target)
        rc, msg = 0, ""
    except fstest.FormatError as e:
        rc, msg = 1, str(e).replace(target, path)
    except Exception as e:
        rc, msg = 2, "%s: %s" % (type(e).__name__, e)
    if target != path:
        os.remove(target)
    print("%s\t%d\t%s" % (os.path.basename(path)[:-3], rc, msg.replace("\n", " ")))
PY

# Does our JSON report fstest's offset? (fstest names a record's end for overruns.)
cat > "$work/match.py" <<'PY'
import json, re, sys
msg, ours = sys.argv[1], json.load(open(sys.argv[2]))
m = re.search(r"end at (\d+)", msg) or re.search(r" at (\d+)", msg)
if not m:
    sys.exit("fstest message without offset: %r" % msg)
off = int(m.group(1))
hits = [f for f in ours["findings"] if f["offset"] == off or ("ends at %d," % off) in f["message"]]
if not hits:
    sys.exit("fstest offset %d not reported: %s" % (off, [(f["offset"], f["kind"]) for f in ours["findings"]]))
PY

# --- 1. check vs fstest ------------------------------------------------------------------
for input in "${inputs[@]}"; do
    name="$(basename "$input" .fs)"
    # the undamaged input passes both
    "$zodbfs" -q check --no-index "$input" >/dev/null 2>&1; rc=$?
    if [[ $rc == 0 ]]; then pass "check clean $name"; else fail "check clean $name" "exit $rc"; fi
    for seed in "${seeds[@]}"; do
        d="$work/damaged-$name-$seed"
        python3 "$here/corrupt.py" "$input" "$d" "$seed" || { fail "corrupt.py $name $seed"; continue; }
        "$py" "$work/fstest_many.py" "$d" > "$d.fstest" || { fail "fstest $name $seed"; continue; }
        while IFS=$'\t' read -r kind zrc msg; do
            f="$d/$kind.fs"
            label="check $name seed $seed $kind"
            "$zodbfs" -q check --no-index --json "$f" > "$work/ours.json" 2>"$work/ours.err"; orc=$?
            if [[ $orc != 0 && $orc != 3 ]]; then fail "$label" "zodbfs exit $orc: $(head -c 300 "$work/ours.err")"; continue; fi
            if [[ $zrc != 0 ]]; then
                if [[ $orc != 3 ]]; then fail "$label" "fstest: $msg; zodbfs passed"; continue; fi
                if why="$(python3 "$work/match.py" "$(echo "$msg" | tail -n 1)" "$work/ours.json" 2>&1)"; then pass "$label"; else fail "$label" "$why"; fi
            elif [[ $kind == +* ]]; then
                if [[ $orc == 3 ]]; then pass "$label"; else fail "$label" "damage not reported"; fi
            else
                # fstest passed: the damage did not change what it checks; neither may we complain
                # unless our extra checks see something.
                if [[ $orc == 0 ]] || python3 -c 'import json,sys; sys.exit(0 if all(not f["fstest_detects"] for f in json.load(open(sys.argv[1]))["findings"]) else 1)' "$work/ours.json"; then
                    pass "$label"
                else
                    fail "$label" "fstest passed, zodbfs reported structural damage"
                fi
            fi
        done < "$d.fstest"
    done
done

# --- 2. refs vs fsrefs -------------------------------------------------------------------
cat > "$work/fsrefs_pairs.py" <<'PY'
import re, sys
# fsrefs: "oid 0x3 mod.Class" then "\toid 0x09 <reason>: '<class>'"
out, cur = set(), None
for line in open(sys.argv[1]):
    m = re.match(r"oid (0x[0-9a-f]+) ", line)
    if m:
        cur = int(m.group(1), 16)
        continue
    m = re.match(r"\toid (0x[0-9a-f]+) (missing|object creation was undone|failed to load): ", line)
    if m and cur is not None:
        out.add((cur, int(m.group(1), 16), m.group(2)))
for t in sorted(out):
    print("%x %x %s" % t)
PY
cat > "$work/our_pairs.py" <<'PY'
import json, sys
words = {"missing": "missing", "creation-undone": "object creation was undone", "target-unreadable": "failed to load"}
out = {(int(d["referrer"], 16), int(d["target"], 16), words[d["reason"]]) for d in json.load(open(sys.argv[1]))["dangling"]}
for t in sorted(out):
    print("%x %x %s" % t)
PY
refs_inputs=("$root/testdata/fixtures/check/base.fs")
for f in "${inputs[@]}"; do [[ "$f" == "$work"/gen*.fs ]] && refs_inputs+=("$f"); done
for input in "${refs_inputs[@]}"; do
    name="$(basename "$input" .fs)"
    for variant in plain pack; do
        out="$work/dangling-$name-$variant.fs"
        extra=(); [[ $variant == pack ]] && extra=(--pack)
        if ! "$py" "$here/dangling.py" "$input" "$out" 7 5 "${extra[@]}" > /dev/null 2>"$work/dangling.err"; then
            fail "refs $name $variant" "dangling.py: $(tail -n 1 "$work/dangling.err")"; continue
        fi
        rm -f "$out.index"
        "$py" -m ZODB.scripts.fsrefs "$out" > "$work/fsrefs.out" 2>&1
        "$py" "$work/fsrefs_pairs.py" "$work/fsrefs.out" > "$work/theirs.txt"
        "$zodbfs" -q refs --json "$out" > "$work/refs.json" 2>"$work/refs.err"; orc=$?
        python3 "$work/our_pairs.py" "$work/refs.json" > "$work/ours.txt" 2>/dev/null
        want=3; [[ -s "$work/theirs.txt" ]] || want=0
        if [[ $orc == "$want" ]] && cmp -s "$work/theirs.txt" "$work/ours.txt"; then
            pass "refs $name $variant ($(wc -l < "$work/theirs.txt") dangling)"
        else
            fail "refs $name $variant" "exit $orc (want $want); fsrefs: $(tr '\n' ';' < "$work/theirs.txt") ours: $(tr '\n' ';' < "$work/ours.txt")"
        fi
    done
done

# --- 3. recover vs fsrecover -------------------------------------------------------------
for input in "${inputs[@]}"; do
    name="$(basename "$input" .fs)"
    rm -f "$work/rec-ours.fs" "$work/rec-zodb.fs"*
    "$zodbfs" -q recover "$input" "$work/rec-ours.fs" > /dev/null 2>&1; orc=$?
    if [[ "$(head -c 4 "$input")" == "FS30" ]]; then
        "$py" -m ZODB.fsrecover "$input" "$work/rec-zodb.fs" > /dev/null 2>&1
        want="$work/rec-zodb.fs"
    else
        want="$input"   # fsrecover refuses FS21; on undamaged input its copy is the input
    fi
    if [[ $orc == 0 ]] && cmp -s "$want" "$work/rec-ours.fs"; then pass "recover undamaged $name"; else fail "recover undamaged $name" "exit $orc or bytes differ"; fi
done
for d in "$work"/damaged-base-1 "$work"/damaged-gen5-1; do
    [[ -d "$d" ]] || continue
    for f in "$d"/*.fs; do
        kind="$(basename "$f" .fs)"
        [[ $kind == +* ]] && continue
        label="recover $(basename "$d") $kind"
        rm -f "$work/rec.fs" "$work/rec.fs".tr*
        "$zodbfs" -q recover "$f" "$work/rec.fs" > "$work/rec.out" 2>&1; orc=$?
        zrc="$(awk -F'\t' -v k="$kind" '$1 == k {print $2}' "$d.fstest")"; msg="$(awk -F'\t' -v k="$kind" '$1 == k {print $3}' "$d.fstest")"
        if [[ $orc != 0 && $orc != 3 ]]; then fail "$label" "exit $orc: $(head -c 300 "$work/rec.out")"; continue; fi
        if [[ $zrc != 0 && $orc != 3 ]]; then fail "$label" "damaged input ($msg) but recover reported no loss"; continue; fi
        if "$zodbfs" -q check --no-index "$work/rec.fs" > "$work/rec-check.out" 2>&1 && \
           fstest "$work/rec.fs" > /dev/null; then
            pass "$label"
        else
            fail "$label" "recovered file is not clean: $(head -n 3 "$work/rec-check.out" | tr '\n' ';')"
        fi
    done
done

echo "conformance-check: $passed passed, $failed failed"
[[ $failed == 0 ]]
