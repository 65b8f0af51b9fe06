#!/usr/bin/env bash
# Damaged files through pack and backup: nothing of a damaged Data.fs is lost.
#
#   testdata/oracle/conformance_damage.sh
#
# Inputs: every kind of damage corrupt.py makes (cut tails, transaction lengths grown, past
# the end or below the header, status 'c' or junk, equal or zero tids, record lengths and
# pointers wrong, zeroed blocks, and the kinds fstest does not look for) applied to the
# ZODB-made fixtures at two seeds. Recover's side of the same inputs is in
# conformance_check.sh.
#
# Pack (`zodbfs pack --tid T`, T the last tid of the undamaged file, GC on) against ZODB's
# FileStorage.pack on a copy (pack_oracle.py):
#   - ours refuses (exit 3): the file is byte-identical to the damaged input, no `.old`,
#     no `.pack`, no temporary left;
#   - ours packs (exit 0): the packed file is byte-identical to ZODB's when ZODB packed it
#     too, `Data.fs.old` is the damaged input, and whatever lay after the last complete
#     transaction is kept in a `.trN` (which ZODB also keeps); a second pack then never
#     removes the only copy of those bytes;
#   - any other exit: the file is unchanged.
# Backup (`zodbfs-repozo -B`) against Python repozo at the same frozen second: where Python
# backs the file up, ours writes the same bytes; either way, a restore of ours gives the
# damaged input back byte for byte (a backup copies what is there, damage included) or
# ours refuses and leaves no file in the repository.
#
# Environment: ZODBFS, REPOZO (default: beside ZODBFS), ORACLE_PY, CONFORMANCE_SEEDS (two
# seeds), CONFORMANCE_WORK. Ends with `conformance-damage: N passed, M failed`.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=/dev/null
source "$here/lib.sh"
finish() { echo "conformance-damage: $CONF_PASSED passed, $CONF_FAILED failed"; [[ $CONF_FAILED == 0 ]]; exit; }
command -v faketime >/dev/null || { conf_fail "faketime is not installed"; finish; }
conf_oracle_python
conf_zodbfs >&2 || { conf_fail "build"; finish; }
ZODBFS="${ZODBFS_CMD[0]}"
REPOZO="${REPOZO:-$(dirname "$ZODBFS")/zodbfs-repozo}"
work="${CONFORMANCE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/zfs-damage.XXXXXX")}"
mkdir -p "$work"
seeds="${CONFORMANCE_SEEDS:-$((RANDOM % 100000)) $((RANDOM % 100000 + 100000))}"
echo "conformance-damage seeds: $seeds (rerun with CONFORMANCE_SEEDS=\"$seeds\")"
t0=$SECONDS

# The last tid of a FileStorage, in hex.
last_tid() {
    "$ORACLE_PY" - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos, last = 4, None
while pos + 16 <= len(data):
    tlen = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
    if pos + tlen + 8 > len(data):
        break
    last = data[pos:pos + 8]
    pos += tlen + 8
print(last.hex())
PY
}

# The first offset after BYTES where a complete transaction lies in FILE (plausible
# header, status committed, packed or undone, redundant length matching), or nothing.
complete_after() {
    "$ORACLE_PY" - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
start = int(sys.argv[2])
for q in range(start + 1, len(data) - 23):
    tlen = struct.unpack(">Q", data[q + 8:q + 16])[0]
    if tlen < 23 or q + tlen + 8 > len(data) or data[q + 16:q + 17] not in (b" ", b"p", b"u"):
        continue
    if struct.unpack(">Q", data[q + tlen:q + tlen + 8])[0] == tlen:
        print(q)
        break
PY
}

# Files in DIR whose name starts with `.` and holds `tmp` (our temporaries) or ends in .pack.
leftovers() { find "$1" -maxdepth 1 \( -name '.*tmp*' -o -name '*.pack' -o -name '*.index_tmp' \) -printf '%f '; }

pack_case() {
    local input=$1 tid=$2 label=$3 d="$work/pack"
    rm -rf "$d"; mkdir -p "$d/zodb" "$d/ours"
    cp "$input" "$d/zodb/Data.fs"; cp "$input" "$d/ours/Data.fs"
    local zodb
    zodb=$("$ORACLE_PY" "$here/pack_oracle.py" "$d/zodb/Data.fs" --tid "$tid" 2>"$d/zodb.err")
    local zerr=1
    [[ $zodb == *'"error": null'* ]] && zerr=0
    "$ZODBFS" -q pack --tid "$tid" "$d/ours/Data.fs" > "$d/ours.out" 2> "$d/ours.err"
    local rc=$? why=""
    local left
    left=$(leftovers "$d/ours")
    [[ -z $left ]] || why+=" left behind: $left;"
    case $rc in
        3)
            cmp -s "$input" "$d/ours/Data.fs" || why+=" refused but Data.fs changed;"
            [[ ! -e $d/ours/Data.fs.old ]] || why+=" refused but wrote Data.fs.old;" ;;
        0)
            if [[ ! -e $d/ours/Data.fs.old ]]; then
                # Nothing to pack: the file must be the input.
                cmp -s "$input" "$d/ours/Data.fs" || why+=" no .old and Data.fs changed;"
            else
                cmp -s "$input" "$d/ours/Data.fs.old" || why+=" Data.fs.old is not the input;"
                if [[ $zerr == 0 ]] && ! cmp -s "$d/zodb/Data.fs" "$d/ours/Data.fs"; then
                    why+=" packed file differs from ZODB's;"
                fi
                local t
                for t in "$d/zodb"/Data.fs.tr*; do
                    [[ -e $t ]] || continue
                    cmp -s "$t" "$d/ours/$(basename "$t")" || why+=" ZODB kept $(basename "$t"), ours differs or lacks it;"
                done
                # A second pack (a later stop: everything current) must not take away the
                # only copy of the bytes after the last complete transaction.
                local kept_tail=""
                for t in "$d/ours"/Data.fs.tr*; do [[ -e $t ]] && kept_tail+="$t "; done
                "$ZODBFS" -q pack --tid "$tid" "$d/ours/Data.fs" > /dev/null 2> "$d/ours2.err"
                for t in $kept_tail; do
                    [[ -e $t ]] || why+=" the second pack removed $(basename "$t");"
                done
                if [[ -n $kept_tail ]]; then
                    local tail_bytes total
                    tail_bytes=$(stat -c %s $kept_tail | paste -sd+ | bc)
                    total=$(stat -c %s "$input")
                    # The tail is the end of the input.
                    local first=${kept_tail%% *}
                    cmp -s <(tail -c "$(stat -c %s "$first")" "$input") "$first" ||
                        why+=" $(basename "$first") is not the end of the input ($tail_bytes of $total bytes);"
                fi
            fi ;;
        *)
            cmp -s "$input" "$d/ours/Data.fs" || why+=" failed ($rc) and Data.fs changed;"
            [[ ! -e $d/ours/Data.fs.old ]] || why+=" failed ($rc) and wrote Data.fs.old;" ;;
    esac
    local zodb_said="ZODB packed"
    [[ $zerr == 0 ]] || zodb_said="ZODB failed"
    if [[ -z $why ]]; then
        conf_pass "pack $label (ours exit $rc; $zodb_said)"
    else
        printf '%s\n' "$why" "ours: $(head -c 300 "$d/ours.err")" "zodb: $zodb" > "$d/why"
        conf_fail "pack $label (ours exit $rc; $zodb_said)" "$d/why"
    fi
}

CLOCK=$(date -u -d '2026-11-22 10:00:00' +%s)
backup_case() {
    local input=$1 label=$2 d="$work/backup"
    rm -rf "$d"; mkdir -p "$d/py/repo" "$d/ours/repo"
    cp "$input" "$d/py/Data.fs"; cp "$input" "$d/ours/Data.fs"
    CLOCK=$((CLOCK + 7))
    local at
    at=$(date -u -d "@$CLOCK" '+%Y-%m-%d %H:%M:%S')
    (cd "$d/py" && faketime -f "$at" "$ORACLE_PY" -m ZODB.scripts.repozo -B -r repo -f Data.fs) \
        > "$d/py.out" 2> "$d/py.err"
    local prc=$?
    (cd "$d/ours" && faketime -f "$at" "$REPOZO" -B -r repo -f Data.fs) > "$d/ours.out" 2> "$d/ours.err"
    local rc=$? why=""
    cmp -s "$input" "$d/ours/Data.fs" || why+=" the source changed;"
    local left
    left=$(leftovers "$d/ours/repo")
    [[ -z $left ]] || why+=" left behind: $left;"
    if [[ $rc == 0 ]]; then
        if [[ $prc == 0 ]]; then
            local f
            for f in "$d/py/repo"/*; do
                cmp -s "$f" "$d/ours/repo/$(basename "$f")" || why+=" $(basename "$f") differs from Python's;"
            done
        fi
        (cd "$d/ours" && "$REPOZO" -R -r repo -o restored.fs) > /dev/null 2> "$d/r.err" ||
            why+=" our restore failed: $(head -c 200 "$d/r.err");"
        # A backup holds the data FileStorage reads from the start (as Python's does);
        # when complete transactions follow damage, ours says so and exits 3 in zodbfs.
        local got
        got=$(stat -c %s "$d/ours/restored.fs" 2>/dev/null || echo 0)
        cmp -s <(head -c "$got" "$input") "$d/ours/restored.fs" ||
            why+=" the restore is not the start of the input;"
        local after warned=0
        after=$(complete_after "$input" "$got")
        grep -q "is damaged there" "$d/ours.err" && warned=1
        if [[ -n $after && $warned == 0 ]]; then
            why+=" a complete transaction at byte $after is not in the backup, and ours said nothing;"
        elif [[ -z $after && $warned == 1 ]]; then
            why+=" ours warned of damage, but nothing complete follows byte $got;"
        fi
        if [[ -n $after ]]; then
            mkdir -p "$d/ours/repo2"
            "$ZODBFS" -q backup -r "$d/ours/repo2" "$d/ours/Data.fs" > /dev/null 2>&1 < /dev/null
            local zrc=$?
            [[ $zrc == 3 ]] || why+=" zodbfs backup exited $zrc, not 3, on left-out data;"
        fi
    else
        local n
        n=$(find "$d/ours/repo" -type f | wc -l)
        [[ $n == 0 ]] || why+=" refused ($rc) but left $n files in the repository;"
        [[ $prc != 0 ]] || why+=" Python backed it up, ours refused ($rc): $(head -c 200 "$d/ours.err");"
    fi
    local py_said="Python backed up"
    [[ $prc == 0 ]] || py_said="Python failed"
    if [[ -z $why ]]; then
        conf_pass "backup $label (ours exit $rc; $py_said)"
    else
        printf '%s\n' "$why" > "$d/why"
        conf_fail "backup $label (ours exit $rc; $py_said)" "$d/why"
    fi
}

for fixture in undo small blobs multidb; do
    src="$repo/testdata/fixtures/$fixture.fs"
    [[ -f $src ]] || continue
    tid=$(last_tid "$src")
    for seed in $seeds; do
        dmg="$work/dmg-$fixture-$seed"
        python3 "$here/corrupt.py" "$src" "$dmg" "$seed" || { conf_fail "corrupt.py $fixture $seed"; continue; }
        for f in "$dmg"/*.fs; do
            [[ -e $f ]] || continue
            kind=$(basename "$f" .fs)
            pack_case "$f" "$tid" "$fixture/$seed/$kind"
            backup_case "$f" "$fixture/$seed/$kind"
        done
    done
done
echo "conformance-damage time: $((SECONDS - t0)) s"
finish
