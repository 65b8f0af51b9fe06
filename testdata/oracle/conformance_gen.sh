#!/usr/bin/env bash
# Proof that `zfs-gen` (testdata/src/gen) writes real ZODB databases: small generated
# files are checked with ZODB 6.4 itself (the oracle venv of setup.sh).
#
#   testdata/oracle/conformance_gen.sh
#
# For each seed (two, random unless CONFORMANCE_SEEDS="a b"), a file of
# CONFORMANCE_GEN_MB megabytes (default 3) with blob files, heavy undo and large records:
#   reproducible   the same arguments give the same Data.fs and blob files;
#   zodb-load      ZODB opens it and loads every object reachable from the root (BTrees
#                  `_check()` on every tree), every oid of its index (the not-existing
#                  ones raise POSKeyError only) and the blob file of every blob record
#                  (gen_check.py);
#   fstest/check   fstest passes and so does `zodbfs check`;
#   read side      expected.py's answers against `zodbfs reindex`, `dump`, `tail`,
#                  `records`, `info` (check-read.sh);
#   fsrefs/refs    no dangling reference for either; and on a second file with objects
#                  deleted while referenced (`--dangling 4`), the same (referrer, target,
#                  reason) triples;
#   pack           ZODB's pack (pack_oracle.py) and `zodbfs pack` give the same Data.fs,
#                  .index, .old, blob directory and blobs.old, with and without GC, at
#                  the end of the history and at two times in its middle; except that
#                  where ZODB removes blob files its packed file still names (a garbage
#                  object written after the pack time), ours keeps exactly those
#                  (pack_explain.py; the case is named).
#
# Ends with `conformance-gen: N passed, M failed`; exits 1 when anything failed.
# Environment: ZODBFS (default: build ours), ZFS_GEN (the generator; default: build it),
# ORACLE_PY, CONFORMANCE_SEEDS, CONFORMANCE_GEN_MB, CONFORMANCE_WORK (kept if set or when
# something failed).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=/dev/null
source "$here/lib.sh"
# shellcheck source=/dev/null
source "$here/check-read.sh"
summary() { echo "conformance-gen: $CONF_PASSED passed, $CONF_FAILED failed"; }

conf_oracle_python
[[ -x "${ORACLE_PY:-}" ]] || { echo "FAIL oracle python"; CONF_FAILED=1; summary; exit 1; }
conf_zodbfs >&2 || { CONF_FAILED=1; summary; exit 1; }
read -r -a gen <<< "${ZFS_GEN:-}"
if [[ ${#gen[@]} == 0 ]]; then
    (cd "$repo" && cargo build --release -q -p zfs-testdata --bin zfs-gen) >&2 \
        || { echo "FAIL build zfs-gen"; CONF_FAILED=1; summary; exit 1; }
    gen=("$repo/target/release/zfs-gen")
fi
keep=0
if [[ -n "${CONFORMANCE_WORK:-}" ]]; then keep=1; else CONFORMANCE_WORK="$(mktemp -d "${TMPDIR:-/tmp}/zfs-conf-gen.XXXXXX")"; fi
CONF_WORK="$CONFORMANCE_WORK"
mkdir -p "$CONF_WORK/out" "$CONF_WORK/expected"
: > "$CONF_WORK/inputs.tsv"
work="$CONF_WORK"
seeds="${CONFORMANCE_SEEDS:-$((RANDOM % 100000)) $((RANDOM % 100000 + 100000))}"
mb="${CONFORMANCE_GEN_MB:-3}"
echo "conformance-gen seeds: $seeds, ${mb} MB (rerun with CONFORMANCE_SEEDS=\"$seeds\")"
t0=$SECONDS

# fsrefs' report and ours as sorted "referrer target reason" lines.
fsrefs_pairs() {
    "$ORACLE_PY" -c '
import re, sys
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
    print("%x %x %s" % t)' "$1"
}
our_pairs() {
    "$ORACLE_PY" -c '
import json, sys
words = {"missing": "missing", "creation-undone": "object creation was undone", "target-unreadable": "failed to load"}
out = {(int(d["referrer"], 16), int(d["target"], 16), words[d["reason"]]) for d in json.load(open(sys.argv[1]))["dangling"]}
for t in sorted(out):
    print("%x %x %s" % t)' "$1"
}

# Stop tids: one after the last transaction, and the tids at a third and two thirds of
# the history, each moved on to a transaction not followed by an undo (an undo after the
# pack time of a revision before it is where ZODB's pack leaves dangling references;
# conformance_pack.sh covers that case).
stops() {
    "$ORACLE_PY" -c '
import struct, sys
data = open(sys.argv[1], "rb").read()
txns, pos = [], 4
while pos + 23 <= len(data):
    tid, tlen, st, ul, dl, el = struct.unpack(">8sQcHHH", data[pos:pos + 23])
    desc = data[pos + 23 + ul:pos + 23 + ul + dl]
    txns.append((int.from_bytes(tid, "big"), desc))
    pos += tlen + 8
out = ["%016x" % (txns[-1][0] + 1)]
for frac in (3, 1.5):
    i = int(len(txns) / frac)
    while i + 1 < len(txns) and txns[i + 1][1].startswith(b"undo"):
        i += 1
    out.append("%016x" % txns[i][0])
print(" ".join(out))' "$1"
}

for seed in $seeds; do
    f="$work/gen-$seed.fs"
    b="$work/gen-$seed.blobs"
    args=(--seed "$seed" --size "${mb}M" --undo-every 6 --large-kb 60)
    if ! "${gen[@]}" "$f" "${args[@]}" --blobs "$b" > "$work/gen-$seed.log" 2>&1; then
        conf_fail "generate seed $seed" "$work/gen-$seed.log"
        continue
    fi
    cat "$work/gen-$seed.log"

    # reproducible
    "${gen[@]}" "$work/again.fs" "${args[@]}" --blobs "$work/again.blobs" > /dev/null 2>&1
    if cmp -s "$f" "$work/again.fs" && diff -r -q "$b" "$work/again.blobs" > /dev/null; then
        conf_pass "reproducible seed $seed"
    else
        conf_fail "reproducible seed $seed"
    fi
    rm -rf "$work/again.fs" "$work/again.blobs"

    # zodb-load
    if "$ORACLE_PY" "$here/gen_check.py" "$f" "$b" > "$work/load-$seed.json" 2>&1; then
        conf_pass "zodb-load seed $seed: $(head -c 300 "$work/load-$seed.json")"
    else
        conf_fail "zodb-load seed $seed" "$work/load-$seed.json"
    fi

    # fstest and check
    if "$ORACLE_PY" -m ZODB.scripts.fstest "$f" > "$work/fstest.out" 2>&1; then
        conf_pass "fstest seed $seed"
    else
        conf_fail "fstest seed $seed" "$work/fstest.out"
    fi
    if "${ZODBFS_CMD[@]}" -q check --no-index "$f" > "$work/check.out" 2>&1; then
        conf_pass "check seed $seed"
    else
        conf_fail "check seed $seed" "$work/check.out"
    fi

    # fsrefs and refs, without and with dangling references
    for kind in clean dangling; do
        g="$f"
        if [[ $kind == dangling ]]; then
            g="$work/dangling-$seed.fs"
            "${gen[@]}" "$g" --seed "$seed" --size 1M --dangling 4 > /dev/null 2>&1 \
                || { conf_fail "generate dangling seed $seed"; continue; }
        fi
        "$ORACLE_PY" -m ZODB.scripts.fsrefs "$g" > "$work/fsrefs.out" 2>&1
        fsrefs_pairs "$work/fsrefs.out" > "$work/theirs.txt"
        "${ZODBFS_CMD[@]}" -q refs --json "$g" > "$work/refs.json" 2> "$work/refs.err"
        rc=$?
        our_pairs "$work/refs.json" > "$work/ours.txt" 2>/dev/null
        want=0
        [[ -s "$work/theirs.txt" ]] && want=3
        if [[ $kind == dangling && $want == 0 ]]; then
            conf_fail "refs $kind seed $seed: fsrefs found nothing"
        elif [[ $rc == "$want" ]] && cmp -s "$work/theirs.txt" "$work/ours.txt"; then
            conf_pass "refs $kind seed $seed ($(wc -l < "$work/theirs.txt") dangling)"
        else
            diff "$work/theirs.txt" "$work/ours.txt" > "$work/refs.diff"
            conf_fail "refs $kind seed $seed: exit $rc (want $want)" "$work/refs.diff"
        fi
    done

    # pack
    for stop in $(stops "$f"); do
        for gc in gc nogc; do
            name="pack seed $seed stop $stop $gc"
            d="$work/pack"
            rm -rf "$d"
            mkdir -p "$d/zodb" "$d/ours"
            for side in zodb ours; do
                cp "$f" "$d/$side/Data.fs"
                cp -r "$b" "$d/$side/blobs"
            done
            nogc=()
            [[ $gc == nogc ]] && nogc=(--no-gc)
            zodb="$("$ORACLE_PY" "$here/pack_oracle.py" "$d/zodb/Data.fs" --tid "$stop" \
                --blobs "$d/zodb/blobs" "${nogc[@]}" 2>&1 | tail -n 1)"
            if [[ $gc == nogc && ( "$zodb" == *PackError* || "$zodb" == *AssertionError* ) ]]; then
                # ZODB's packer without GC gives up on some backpointers into what it
                # removes (an undo after the pack time of a revision not current then);
                # ours packs such files, with no dangling reference and nothing left over.
                name="$name [ZODB's PackError without GC: ours packs]"
                if "${ZODBFS_CMD[@]}" -q pack "$d/ours/Data.fs" --tid "$stop" \
                        --blobs "$d/ours/blobs" --no-gc > "$d/ours.out" 2>&1 &&
                        [[ ! -e "$d/ours/Data.fs.pack" ]] &&
                        "${ZODBFS_CMD[@]}" -q refs "$d/ours/Data.fs" > /dev/null 2>&1 &&
                        "${ZODBFS_CMD[@]}" -q check "$d/ours/Data.fs" > /dev/null 2>&1; then
                    conf_pass "$name"
                else
                    conf_fail "$name" "$d/ours.out"
                fi
                continue
            fi
            if [[ "$zodb" != *'"error": null'* ]]; then
                conf_fail "$name: ZODB's pack failed: $zodb"
                continue
            fi
            if ! "${ZODBFS_CMD[@]}" -q pack "$d/ours/Data.fs" --tid "$stop" \
                    --blobs "$d/ours/blobs" "${nogc[@]}" > "$d/ours.out" 2>&1; then
                conf_fail "$name: zodbfs pack failed" "$d/ours.out"
                continue
            fi
            why=()
            for x in Data.fs Data.fs.index Data.fs.old; do
                if [[ -e "$d/zodb/$x" ]] && ! cmp -s "$d/zodb/$x" "$d/ours/$x"; then
                    why+=("$x differs")
                fi
            done
            for x in blobs blobs.old; do
                if [[ -e "$d/zodb/$x" || -e "$d/ours/$x" ]] &&
                        ! diff -r -q -x tmp "$d/zodb/$x" "$d/ours/$x" > /dev/null 2>&1; then
                    why+=("$x differs")
                fi
            done
            if [[ ${#why[@]} == 0 ]]; then
                conf_pass "$name ($(stat -c %s "$d/ours/Data.fs") of $(stat -c %s "$f") bytes)"
            elif [[ "${why[*]}" == "blobs differs" ]]; then
                # ZODB removes the whole blob directory of an object unreachable at the
                # pack time even when the object has records after it; ours keeps the
                # files its packed file names (pack_explain.py checks exactly that).
                if label="$("$ORACLE_PY" "$here/pack_explain.py" blobs "$d/zodb" "$d/ours" \
                        "$stop" 2>&1)"; then
                    conf_pass "$name [$label]"
                else
                    conf_fail "$name: blobs differs: ${label: -300}"
                fi
            else
                conf_fail "$name: ${why[*]}"
            fi
        done
    done
    rm -rf "$work/pack"

    conf_add_input "gen/seed-$seed" "$f" "$work/expected/seed-$seed"
done

# The read side on every generated file (reindex, dump, tail, records, info).
check_read

echo "conformance-gen time: $((SECONDS - t0)) s"
if [[ $CONF_FAILED == 0 && $keep == 0 ]]; then
    rm -rf "$work"
elif [[ $CONF_FAILED != 0 ]]; then
    echo "work directory kept: $work"
fi
summary
[[ $CONF_FAILED == 0 ]]
