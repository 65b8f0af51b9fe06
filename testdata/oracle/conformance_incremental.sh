#!/usr/bin/env bash
# Live conformance of our incremental restore against Python repozo's full restore (ZODB
# 6.4, from setup.sh's venv).
#
#   testdata/oracle/conformance_incremental.sh
#
# A source grows through six stages (one with a torn tail, which makes a 0-byte
# incremental); repositories of it are written by Python repozo, by ours, and by both in
# turn, plain, gzipped and mixed, under a frozen clock (libfaketime). Python repozo restores
# every state in full: those files are the reference. Then, for every state i and every
# later-or-equal state j, a target restored at state i is brought to state j by our
# `repozo -R -D <j> -o target` (default and -Q): the result and its .index must be the
# reference's bytes, and the run must have appended (or found nothing to do), not rebuilt.
# Targets that must be rebuilt (a later state, a changed byte, another database, a packed
# target) must end as the reference too, with the reason in -v. `zodbfs standby` brings a target at an
# early state to the newest one. Takes well under a minute once the binaries are built.
#
# Environment:
#   REPOZO              our repozo binary (default: the one beside $ZODBFS when
#                       conformance.sh exported it, else cargo build --release)
#   ZODBFS              our zodbfs binary (default: beside $REPOZO)
#   CONFORMANCE_SEEDS   the seed of the generated source (default: random, printed)
#   CONFORMANCE_WORK    work directory (default: a temporary one, removed when all pass)
#
# Prints PASS/FAIL lines and ends with `conformance_incremental: N passed, M failed`;
# exits non-zero when something failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

T0=$SECONDS
work_is_temp=0
if [[ -z "${CONFORMANCE_WORK:-}" ]]; then
    W="$(mktemp -d "${TMPDIR:-/tmp}/zfs-incr-conf.XXXXXX")"
    work_is_temp=1
else
    W="$CONFORMANCE_WORK"
    mkdir -p "$W"
fi
W="$(cd "$W" && pwd)"

finish() {
    if [[ "$work_is_temp" == 1 && "$CONF_FAILED" == 0 ]]; then
        rm -rf "$W"
    else
        echo "work directory kept: $W"
    fi
    echo "time: $((SECONDS - T0)) s"
    echo "conformance_incremental: $CONF_PASSED passed, $CONF_FAILED failed"
    [[ "$CONF_FAILED" == 0 ]]
    exit $?
}

if ! command -v faketime > /dev/null; then
    { apt-get update -qq && apt-get install -y -qq faketime; } > "$W/apt.log" 2>&1 ||
        { conf_fail "install faketime" "$W/apt.log"; finish; }
fi
conf_oracle_python
if [[ -z "${REPOZO:-}" && -n "${ZODBFS:-}" && "${ZODBFS%% *}" == /* &&
      -x "$(dirname "${ZODBFS%% *}")/zodbfs-repozo" ]]; then
    REPOZO="$(dirname "${ZODBFS%% *}")/zodbfs-repozo"
fi
if [[ -z "${REPOZO:-}" ]]; then
    echo "building repozo and zodbfs (cargo build --release -p zfs-cli)"
    (cd "$root" && cargo build --release -p zfs-cli) > "$W/build.log" 2>&1 ||
        { conf_fail "build" "$W/build.log"; finish; }
    REPOZO="$root/target/release/zodbfs-repozo"
fi
ZODBFS_BIN="${ZODBFS:-$(dirname "$REPOZO")/zodbfs}"
ZODBFS_BIN="${ZODBFS_BIN%% *}"

seed="${CONFORMANCE_SEEDS:-$(( (RANDOM << 15 | RANDOM) % 1000000 ))}"
seed="${seed%% *}"
echo "conformance_incremental seed: $seed (rerun with CONFORMANCE_SEEDS=$seed)"
"$ORACLE_PY" "$here/gen_datafs.py" "$W/source.fs" --seed "$seed" --txns 300 > "$W/gen.log" 2>&1 ||
    { conf_fail "generate the source" "$W/gen.log"; finish; }
# Six stages: prefixes at transaction boundaries, the third one torn in the middle of a
# transaction (its backup stops before it; the next backup is then of 0 bytes... or not).
"$ORACLE_PY" - "$W/source.fs" "$W" <<'PY' || { conf_fail "stages"; finish; }
import os, struct, sys
data = open(sys.argv[1], "rb").read()
ends, pos = [], 4
while pos + 23 <= len(data):
    pos += struct.unpack(">Q", data[pos + 8:pos + 16])[0] + 8
    if pos > len(data):
        break
    ends.append(pos)
n = len(ends)
cuts = [ends[int(n * f) - 1] for f in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)]
stages = [data[:c] for c in cuts]
stages[2] = stages[2] + data[cuts[2]:cuts[2] + 40]      # a torn tail
stages.insert(3, stages[2])                              # backed up again: 0-byte incremental
for i, s in enumerate(stages, 1):
    open(os.path.join(sys.argv[2], "stage%d.fs" % i), "wb").write(s)
print(len(stages))
PY
NSTAGES=$(ls "$W"/stage*.fs | wc -l)

py() { "$ORACLE_PY" -m ZODB.scripts.repozo "$@"; }
CLOCK0=$(date -u -d '2026-03-01 08:00:00' +%s)
stamp_of() { date -u -d "@$((CLOCK0 + 60 * $1))" '+%Y-%m-%d-%H-%M-%S'; }
at_of() { date -u -d "@$((CLOCK0 + 60 * $1))" '+%Y-%m-%d %H:%M:%S'; }

# make_repo NAME WRITERS GZIP: WRITERS is a word per stage (py or rs), GZIP one (-z or -).
make_repo() {
    local name="$1" d="$W/$1" i w z
    read -r -a writers <<< "$2"
    read -r -a gz <<< "$3"
    mkdir -p "$d/repo"
    for i in $(seq 1 "$NSTAGES"); do
        cp "$W/stage$i.fs" "$d/src.fs"
        w="${writers[$((i - 1))]}"
        z="${gz[$((i - 1))]}"
        [[ "$z" == - ]] && z=""
        if [[ "$w" == py ]]; then
            (cd "$d" && faketime -f "@$(at_of "$i")" "$ORACLE_PY" -m ZODB.scripts.repozo -B $z -r repo -f src.fs)
        else
            (cd "$d" && faketime -f "@$(at_of "$i")" "$REPOZO" -B $z -r repo -f src.fs)
        fi > "$d/backup$i.log" 2>&1 || { conf_fail "$name: backup of stage $i by $w" "$d/backup$i.log"; return 1; }
    done
    # The reference: Python's full restore of every state.
    for i in $(seq 1 "$NSTAGES"); do
        (cd "$d" && py -R -r repo -D "$(stamp_of "$i")" -o "ref$i.fs") > "$d/ref$i.log" 2>&1 ||
            { conf_fail "$name: Python restore of state $i" "$d/ref$i.log"; return 1; }
    done
    return 0
}

same_as_ref() { # DIR TARGET J -> 0 when TARGET and TARGET.index are the reference's
    local d="$1" t="$2" j="$3"
    cmp -s "$d/ref$j.fs" "$t" || return 1
    if [[ -f "$d/ref$j.fs.index" ]]; then
        cmp -s "$d/ref$j.fs.index" "$t.index" || return 1
    fi
    return 0
}

# Every earlier state brought to every later one, default and -Q.
forward() {
    local name="$1" d="$W/$1" i j q why bad=0 runs=0
    why="$d/forward.why"
    : > "$why"
    for i in $(seq 1 "$NSTAGES"); do
        for j in $(seq "$i" "$NSTAGES"); do
            for q in "" "-Q"; do
                cp "$d/ref$i.fs" "$d/t.fs"
                rm -f "$d/t.fs.index"
                [[ -f "$d/ref$i.fs.index" ]] && cp "$d/ref$i.fs.index" "$d/t.fs.index"
                runs=$((runs + 1))
                if ! (cd "$d" && "$REPOZO" -R -v $q -r repo -D "$(stamp_of "$j")" -o t.fs) > "$d/r.out" 2> "$d/r.err"; then
                    echo "$i -> $j $q: status $?: $(tail -1 "$d/r.err")" >> "$why"; bad=1; continue
                fi
                if ! same_as_ref "$d" "$d/t.fs" "$j"; then
                    echo "$i -> $j $q: not the bytes of Python's full restore" >> "$why"; bad=1
                fi
                if grep -q "falling back to a full recover" "$d/r.err"; then
                    echo "$i -> $j $q: rebuilt instead of appended: $(grep falling "$d/r.err")" >> "$why"; bad=1
                fi
            done
        done
    done
    if [[ $bad == 0 ]]; then
        conf_pass "$name: $runs incremental restores equal Python's full restores"
    else
        conf_fail "$name: incremental restores equal Python's full restores" "$why"
    fi
}

# Targets that must be rebuilt end as the reference too, and -v says why.
fallbacks() {
    local name="$1" d="$W/$1" last=$NSTAGES
    check() { # LABEL J WORDS
        if (cd "$d" && "$REPOZO" -R -v -r repo -D "$(stamp_of "$2")" -o t.fs) > "$d/r.out" 2> "$d/r.err" &&
            same_as_ref "$d" "$d/t.fs" "$2" && grep -q "$3" "$d/r.err"; then
            conf_pass "$name: $1"
        else
            conf_fail "$name: $1" "$d/r.err"
        fi
    }
    cp "$d/ref$last.fs" "$d/t.fs"
    check "a later state is rebuilt" 2 "larger than latest backup"
    cp "$d/ref2.fs" "$d/t.fs"
    printf 'Z' | dd of="$d/t.fs" bs=1 seek=1000 conv=notrunc 2> /dev/null
    check "a changed byte is found and rebuilt" "$last" "not consistent with backup"
    "$ORACLE_PY" "$here/gen_datafs.py" "$d/t.fs" --seed $((seed + 1)) --txns 40 > /dev/null 2>&1
    check "another database is rebuilt" "$last" "falling back to a full recover"
    head -c 100 "$d/ref1.fs" > "$d/t.fs"
    check "a target shorter than the full backup is rebuilt" "$last" "smaller than full backup"
    # A target packed by ZODB since its restore (a standby someone packed).
    cp "$d/ref$((last - 1)).fs" "$d/t.fs"
    rm -f "$d/t.fs.index"
    "$ORACLE_PY" - "$d/t.fs" > "$d/pack.log" 2>&1 <<'PY' || { conf_fail "$name: ZODB pack" "$d/pack.log"; return; }
import sys, time
import ZODB.FileStorage
from ZODB.serialize import referencesf
fs = ZODB.FileStorage.FileStorage(sys.argv[1])
fs.pack(time.time() + 3600, referencesf)
fs.close()
PY
    rm -f "$d/t.fs.old"
    check "a packed target is rebuilt" "$last" "falling back to a full recover"
}

standby() {
    local name="$1" d="$W/$1" last=$NSTAGES
    cp "$d/ref2.fs" "$d/standby.fs"
    cp "$d/ref2.fs.index" "$d/standby.fs.index" 2> /dev/null
    if (cd "$d" && faketime -f "@$(at_of $((last + 1)))" "$ZODBFS_BIN" standby repo standby.fs --json) > "$d/s.json" 2> "$d/s.err" &&
        same_as_ref "$d" "$d/standby.fs" "$last" && grep -q '"method": "appended"' "$d/s.json"; then
        conf_pass "$name: zodbfs standby appends up to the newest state"
    else
        cat "$d/s.json" >> "$d/s.err"
        conf_fail "$name: zodbfs standby appends up to the newest state" "$d/s.err"
    fi
}

all_py="py py py py py py py"
all_rs="rs rs rs rs rs rs rs"
turns="py rs py rs py rs py"
plain="- - - - - - -"
gzip="-z -z -z -z -z -z -z"
mixed="- -z - -z -z - -z"
for spec in "python-plain|$all_py|$plain" "python-gzip|$all_py|$gzip" \
            "ours-plain|$all_rs|$plain" "ours-gzip|$all_rs|$gzip" \
            "both-mixed|$turns|$mixed"; do
    IFS='|' read -r name writers gz <<< "$spec"
    echo "== $name ($((SECONDS - T0)) s)"
    make_repo "$name" "$writers" "$gz" || continue
    forward "$name"
    fallbacks "$name"
    standby "$name"
done
finish
