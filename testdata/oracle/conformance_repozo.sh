#!/usr/bin/env bash
# Live conformance of our `repozo` against Python repozo (ZODB 6.4, from setup.sh's venv).
#
#   testdata/oracle/conformance_repozo.sh
#
# Both tools run on the same growing source files under the same frozen clock
# (libfaketime; installed with apt-get when missing), each in its own directory with the
# same relative `-r repo`, so their repositories must be identical: the same file names,
# the same .fs/.deltafs/.index/.dat bytes, and the same decompressed bytes for
# .fsz/.deltafsz. Each tool must restore the other's repository to the same bytes.
# Also compared: -v messages, error messages and exit statuses.
#
# Cases: growing sources (full, incrementals, a torn tail, 0-byte incrementals) in plain,
# -z, -Q and -Q -z modes with dated (-D) restores and verify; a pack that forces a full
# backup with -k; an in-place change; chains written alternately by both tools; an FS21
# source; command-line errors; damaged repositories (changed, truncated and missing chain
# files, bad gzip header, CRC and truncation, garbage .dat lines); .dat edge cases (missing
# .dat, `-r ./repo/`); three backups in one second (ours only: later stamps); a transaction
# still being committed (status 'c'); a .dat line lost to a killed run and a missing .dat
# (ours adds the line back, Python does not: the places where the two repositories differ
# on purpose).
#
# Takes about 1.5 minutes on 2 cores once repozo is built (plus the release build when
# REPOZO/ZODBFS are not given).
#
# Environment:
#   REPOZO              our repozo binary (default: the repozo beside $ZODBFS when
#                       conformance.sh exported it, else cargo build --release)
#   CONFORMANCE_SEEDS   seeds for the generated sources (default: random, printed)
#   CONFORMANCE_WORK    work directory (default: a temporary one, removed when all pass)
#   ZFS_CORPUS          real Data.fs files, for the FS21 case (default ../shared/corpus/real)
#
# Prints PASS/FAIL lines and ends with `conformance_repozo: N passed, M failed`; exits
# non-zero when something failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ -f "$here/lib.sh" ]]; then
    # shellcheck source=lib.sh
    source "$here/lib.sh"
else
    CONF_PASSED=0
    CONF_FAILED=0
    conf_pass() { CONF_PASSED=$((CONF_PASSED + 1)); echo "PASS $1"; }
    conf_fail() {
        CONF_FAILED=$((CONF_FAILED + 1)); echo "FAIL $1"
        if [[ -n "${2:-}" && -s "$2" ]]; then head -n 40 "$2" | sed 's/^/    /'; fi
    }
    conf_oracle_python() { ORACLE_PY="${ORACLE_PY:-$("$here/setup.sh" | tail -n 1)}"; }
fi

finish() {
    if [[ "$work_is_temp" == 1 && "$CONF_FAILED" == 0 ]]; then
        rm -rf "$W"
    else
        echo "work directory kept: $W"
    fi
    echo "time: $((SECONDS - T0)) s"
    echo "conformance_repozo: $CONF_PASSED passed, $CONF_FAILED failed"
    [[ "$CONF_FAILED" == 0 ]]
    exit $?
}

# ---------------------------------------------------------------------------- setup
T0=$SECONDS
section() { echo "== $1 ($((SECONDS - T0)) s)"; }
work_is_temp=0
if [[ -z "${CONFORMANCE_WORK:-}" ]]; then
    W="$(mktemp -d "${TMPDIR:-/tmp}/zfs-repozo-conf.XXXXXX")"
    work_is_temp=1
else
    W="$CONFORMANCE_WORK"
    mkdir -p "$W"
fi
W="$(cd "$W" && pwd)"

if ! command -v faketime > /dev/null; then
    echo "installing faketime (apt-get)"
    { apt-get update -qq && apt-get install -y -qq faketime; } > "$W/apt.log" 2>&1 ||
        { conf_fail "install faketime" "$W/apt.log"; finish; }
fi
conf_oracle_python
if [[ -z "${REPOZO:-}" && -n "${ZODBFS:-}" && "${ZODBFS%% *}" == /* &&
      -x "$(dirname "${ZODBFS%% *}")/zodbfs-repozo" ]]; then
    REPOZO="$(dirname "${ZODBFS%% *}")/zodbfs-repozo"     # built with zodbfs by conformance.sh
fi
if [[ -z "${REPOZO:-}" ]]; then
    echo "building repozo (cargo build --release -p zfs-cli --bin zodbfs-repozo)"
    (cd "$root" && cargo build --release -p zfs-cli --bin zodbfs-repozo) > "$W/build.log" 2>&1 ||
        { conf_fail "build repozo" "$W/build.log"; finish; }
    REPOZO="$root/target/release/zodbfs-repozo"
fi

# Python repozo, made to accept FS21 sources (Python 3 FileStorage refuses their magic;
# repozo itself only copies bytes).
cat > "$W/pyrepozo.py" <<'PY'
import sys
import ZODB.FileStorage
from ZODB.scripts import repozo
args = sys.argv[1:]
for i, a in enumerate(args):
    src = None
    if a in ("-f", "--file") and i + 1 < len(args):
        src = args[i + 1]
    elif a.startswith("--file="):
        src = a[len("--file="):]
    if src:
        try:
            with open(src, "rb") as f:
                if f.read(4) == b"FS21":
                    sys.modules["ZODB.FileStorage.FileStorage"].packed_version = b"FS21"
        except OSError:
            pass
repozo.main(args)
PY
# The growth stages of a file: prefixes at transaction boundaries, one torn in the middle
# of a transaction.
cat > "$W/stages.py" <<'PY'
import os, struct, sys
data = open(sys.argv[1], "rb").read()
ends, pos = [], 4
while pos + 23 <= len(data):
    pos += struct.unpack(">Q", data[pos + 8:pos + 16])[0] + 8
    if pos > len(data):
        break
    ends.append(pos)
n = len(ends)
cuts = sorted({ends[max(0, int(n * f) - 1)] for f in (0.4, 0.6, 0.8, 1.0)}) if n else [4]
out = [data[:cuts[0]]]
later = [e for e in ends if e > cuts[0]]
if later:
    out.append(data[:cuts[0] + (later[0] - cuts[0]) // 2])
out += [data[:c] for c in cuts[1:]]
for i, s in enumerate(out, 1):
    open(os.path.join(sys.argv[2], "stage%d.fs" % i), "wb").write(s)
print(len(out))
PY
# Flip one pickle byte of the first or last transaction's first data record, in place: the
# file changes but stays a valid FileStorage (as after an in-place rewrite).
cat > "$W/poke.py" <<'PY'
import struct, sys
path, which = sys.argv[1], sys.argv[2]
data = bytearray(open(path, "rb").read())
txns, pos = [], 4
while pos + 23 <= len(data):
    tlen, = struct.unpack(">Q", data[pos + 8:pos + 16])
    if pos + tlen + 8 > len(data):
        break
    txns.append(pos)
    pos += tlen + 8
for tpos in (txns if which == "first" else reversed(txns)):
    ul, dl, el = struct.unpack(">HHH", data[tpos + 17:tpos + 23])
    rpos = tpos + 23 + ul + dl + el
    tend = tpos + struct.unpack(">Q", data[tpos + 8:tpos + 16])[0]
    if rpos + 42 > tend:
        continue
    vlen, plen = struct.unpack(">HQ", data[rpos + 32:rpos + 42])
    if plen > 2 and vlen == 0:
        data[rpos + 42 + plen // 2] ^= 1
        break
else:
    sys.exit("no data record to change")
open(path, "wb").write(data)
PY
cat > "$W/pack.py" <<'PY'
import sys, time
import ZODB.FileStorage
from ZODB.serialize import referencesf
fs = ZODB.FileStorage.FileStorage(sys.argv[1])
fs.pack(time.time() + 3600, referencesf)
fs.close()
PY

seeds="${CONFORMANCE_SEEDS:-$(( (RANDOM << 15 | RANDOM) % 1000000 )) $(( (RANDOM << 15 | RANDOM) % 1000000 ))}"
read -r seed1 seed2 _ <<< "$seeds"
echo "conformance_repozo seeds: $seed1 $seed2 (rerun with CONFORMANCE_SEEDS=\"$seed1 $seed2\")"
mkdir -p "$W/gen"
{
    "$ORACLE_PY" "$here/gen_datafs.py" "$W/gen/a.fs" --seed "$seed1" --txns 400 &&
    "$ORACLE_PY" "$here/gen_datafs.py" "$W/gen/b.fs" --seed "$seed2" --txns 300 --undo-every 5
} > "$W/gen.log" 2>&1 || { conf_fail "generate sources" "$W/gen.log"; finish; }

py() { "$ORACLE_PY" "$W/pyrepozo.py" "$@"; }
rs() { "$REPOZO" "$@"; }

# The clock: every step gets its own second, the same for both tools.
CLOCK=$(date -u -d '2026-11-22 10:00:00' +%s)
tick() { CLOCK=$((CLOCK + ${1:-7})); }
at() { date -u -d "@$CLOCK" '+%Y-%m-%d %H:%M:%S'; }
stamp() { date -u -d "@$CLOCK" '+%Y-%m-%d-%H-%M-%S'; }
frozen() { faketime -f "$(at)" "$@"; }

# Compare two repositories: names, plain bytes, decompressed gzip bytes.
same_repo() {
    local name="$1" a="$2" b="$3" why="$W/why.$RANDOM" f
    : > "$why"
    if ! diff <(cd "$a" && ls) <(cd "$b" && ls) > "$why" 2>&1; then
        conf_fail "$name: file names" "$why"
        return
    fi
    for f in $(cd "$a" && ls); do
        case "$f" in
            *.fsz | *.deltafsz)
                if ! cmp -s <(gzip -dc "$a/$f") <(gzip -dc "$b/$f"); then
                    echo "$f differs when decompressed" >> "$why"
                fi
                if ! "$ORACLE_PY" -c 'import gzip,sys; gzip.open(sys.argv[1]).read()' "$b/$f" 2>> "$why"; then
                    echo "$b/$f: Python's gzip cannot read it" >> "$why"
                fi
                ;;
            *)
                cmp -s "$a/$f" "$b/$f" || echo "$f differs: $(cmp "$a/$f" "$b/$f" 2>&1 | head -1)" >> "$why"
                ;;
        esac
    done
    if [[ -s "$why" ]]; then conf_fail "$name" "$why"; else conf_pass "$name"; fi
}

# Run one step with both tools in dirs $1/py and $1/rs; compare status, stderr and repos.
# usage: both NAME DIR ARGS...  (the source is ../src.fs inside each dir)
both() {
    local name="$1" d="$2" why
    shift 2
    why="$W/why.$RANDOM"
    (cd "$d/py" && frozen "$ORACLE_PY" "$W/pyrepozo.py" "$@") > "$d/py.out" 2> "$d/py.err"
    local pyrc=$?
    (cd "$d/rs" && frozen "$REPOZO" "$@") > "$d/rs.out" 2> "$d/rs.err"
    local rsrc=$?
    if [[ $pyrc != "$rsrc" ]]; then
        { echo "exit status: python $pyrc, ours $rsrc"; echo "--- python stderr"; cat "$d/py.err"; echo "--- our stderr"; cat "$d/rs.err"; } > "$why"
        conf_fail "$name: exit status" "$why"
        return 1
    fi
    if ! diff -u --label python --label ours "$d/py.err" "$d/rs.err" > "$why"; then
        conf_fail "$name: messages" "$why"
    else
        conf_pass "$name: status $rsrc and messages"
    fi
    return 0
}

# Cross restores: each tool restores both repositories; all four outputs equal `expect`.
cross_restore() {
    local name="$1" d="$2" expect="$3" why tool repo ok=1
    shift 3
    why="$W/why.$RANDOM"
    : > "$why"
    for tool in py rs; do
        for repo in py rs; do
            rm -f "$d/out-$tool-$repo" "$d/out-$tool-$repo.index"
            (cd "$d/$repo" && frozen "$( [[ $tool == py ]] && echo "$ORACLE_PY" || echo "$REPOZO")" \
                $( [[ $tool == py ]] && echo "$W/pyrepozo.py") -R -r repo -o "../out-$tool-$repo" "$@") \
                > "$d/restore.out" 2> "$d/restore.err" ||
                { echo "$tool on $repo's repo failed: $(cat "$d/restore.err")" >> "$why"; ok=0; continue; }
            cmp -s "$expect" "$d/out-$tool-$repo" || { echo "$tool restoring $repo's repo: $(cmp "$expect" "$d/out-$tool-$repo" 2>&1)" >> "$why"; ok=0; }
        done
    done
    for f in out-py-rs out-rs-py out-rs-rs; do
        if [[ -f "$d/out-py-py.index" || -f "$d/$f.index" ]]; then
            cmp -s "$d/out-py-py.index" "$d/$f.index" || { echo "$f.index differs from Python's" >> "$why"; ok=0; }
        fi
    done
    if [[ $ok == 1 ]]; then conf_pass "$name"; else conf_fail "$name" "$why"; fi
}

# The committed prefix of a source (what a backup holds): ZODB's getSize().
committed_prefix() {
    "$ORACLE_PY" - "$1" "$2" <<'PY'
import sys, ZODB.FileStorage
m = open(sys.argv[1], "rb").read(4)
if m == b"FS21":
    ZODB.FileStorage.FileStorage.__module__  # noqa
    sys.modules["ZODB.FileStorage.FileStorage"].packed_version = b"FS21"
fs = ZODB.FileStorage.FileStorage(sys.argv[1], read_only=True)
n = fs.getSize()
fs.close()
open(sys.argv[2], "wb").write(open(sys.argv[1], "rb").read(n))
PY
}

# ------------------------------------------------------------------ growth scenarios
# A source grows through its stages (one with a torn tail); each mode backs it up after
# every stage with both tools; repositories must stay identical; restores cross over.
growth() {
    local label="$1" src="$2"
    shift 2
    local d="$W/growth-$label" n i
    mkdir -p "$d/py/repo" "$d/rs/repo" "$d/stages"
    n="$("$ORACLE_PY" "$W/stages.py" "$src" "$d/stages")"
    for i in $(seq 1 "$n"); do
        cp "$d/stages/stage$i.fs" "$d/src.fs"
        rm -f "$d/src.fs.index"
        tick
        both "$label stage $i: backup" "$d" -B -v -r repo -f ../src.fs "$@" || continue
        same_repo "$label stage $i: repository" "$d/py/repo" "$d/rs/repo"
        committed_prefix "$d/src.fs" "$d/expect.fs"
        cross_restore "$label stage $i: cross restore" "$d" "$d/expect.fs"
        # Again a second later: nothing to do, or a 0-byte incremental after a torn tail.
        tick 1
        both "$label stage $i: again (no -v)" "$d" -B -r repo -f ../src.fs "$@" || continue
    done
    # Restore messages with -v (to a file, with -w, to stdout) must match Python's.
    rm -f "$d"/py/out-v.fs* "$d"/rs/out-v.fs*
    both "$label restore -v" "$d" -R -v -r repo -o out-v.fs
    rm -f "$d"/py/out-v.fs* "$d"/rs/out-v.fs*
    both "$label restore -v -w" "$d" -R -v -w -r repo -o out-v.fs
    rm -f "$d"/py/out-v.fs* "$d"/rs/out-v.fs*
    both "$label restore -v to stdout" "$d" -R -v -r repo
    if cmp -s "$d/py.out" "$d/rs.out"; then
        conf_pass "$label restore to stdout: same bytes"
    else
        conf_fail "$label restore to stdout: same bytes"
    fi
    # Dated restores: as of each data file's stamp, and one second before it.
    local f st before
    for f in $(cd "$d/py/repo" && ls | grep -E '\.(delta)?fsz?$'); do
        st="${f%%.*}"
        before="$(date -u -d "@$(( $(date -u -d "${st:0:10} ${st:11:2}:${st:14:2}:${st:17:2}" +%s) - 1 ))" '+%Y-%m-%d-%H-%M-%S')"
        for D in "$st" "$before"; do
            (cd "$d/py" && frozen "$ORACLE_PY" "$W/pyrepozo.py" -R -r repo -D "$D" -o ../expect-D.fs) > /dev/null 2>&1 ||
                continue
            cross_restore "$label -D $D" "$d" "$d/expect-D.fs" -D "$D"
        done
    done
    # Verify, both tools on both repositories, plain and quick.
    for q in "" "-Q"; do
        for repo in py rs; do
            (cd "$d/$repo" && frozen "$ORACLE_PY" "$W/pyrepozo.py" -V -v $q -r repo) > "$d/v.out" 2> "$d/v-py.err"
            local a=$?
            (cd "$d/$repo" && frozen "$REPOZO" -V -v $q -r repo) > "$d/v.out" 2> "$d/v-rs.err"
            local b=$?
            if [[ $a == 0 && $b == 0 ]] && cmp -s "$d/v-py.err" "$d/v-rs.err"; then
                conf_pass "$label verify $q on $repo's repository"
            else
                { echo "status python $a, ours $b"; diff "$d/v-py.err" "$d/v-rs.err"; } > "$d/v.why"
                conf_fail "$label verify $q on $repo's repository" "$d/v.why"
            fi
        done
    done
}

section "plain"
growth plain "$W/gen/a.fs"
section "gzip"
growth gzip "$W/gen/a.fs" -z
section "quick"
growth quick "$W/gen/b.fs" -Q
section "quick-gzip"
growth quick-gzip "$W/gen/b.fs" -Q -z

# ------------------------------------------------------------------ pack and -k
pack_case() {
    local d="$W/pack"
    mkdir -p "$d/py/repo" "$d/rs/repo"
    cp "$W/gen/b.fs" "$d/src.fs"
    tick
    both "pack: first full" "$d" -B -v -r repo -f ../src.fs
    "$ORACLE_PY" "$W/pack.py" "$d/src.fs" > "$d/pack.log" 2>&1 || { conf_fail "pack: ZODB pack" "$d/pack.log"; return; }
    rm -f "$d/src.fs.old" "$d/src.fs.index"
    tick
    both "pack: shrunk, full backup with -k" "$d" -B -v -k -r repo -f ../src.fs
    same_repo "pack: repository after -k" "$d/py/repo" "$d/rs/repo"
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "pack: cross restore" "$d" "$d/expect.fs"
    # Rewrite the file in place (same size, other bytes): "file changed", full backup.
    "$ORACLE_PY" "$W/poke.py" "$d/src.fs" first
    tick
    both "changed file: full backup" "$d" -B -v -r repo -f ../src.fs
    same_repo "changed file: repository" "$d/py/repo" "$d/rs/repo"
}
section pack_case
pack_case

# ------------------------------------------------------------------ interchange
# Python starts the chain, we extend it, Python extends ours; restores agree.
interchange() {
    local d="$W/interchange" i n tool
    mkdir -p "$d/py/repo" "$d/rs" "$d/stages"
    n="$("$ORACLE_PY" "$W/stages.py" "$W/gen/a.fs" "$d/stages")"
    for i in $(seq 1 "$n"); do
        cp "$d/stages/stage$i.fs" "$d/src.fs"
        tick
        if (( i % 2 )); then tool=py; else tool=rs; fi
        if [[ $tool == py ]]; then
            (cd "$d/py" && frozen "$ORACLE_PY" "$W/pyrepozo.py" -B -r repo -f ../src.fs $([[ $i == 3 ]] && echo -z)) > "$d/o" 2>&1
        else
            (cd "$d/py" && frozen "$REPOZO" -B -r repo -f ../src.fs $([[ $i == 4 ]] && echo -z)) > "$d/o" 2>&1
        fi || { conf_fail "interchange step $i ($tool)" "$d/o"; continue; }
        committed_prefix "$d/src.fs" "$d/expect.fs"
        rm -rf "$d/rs/repo" && cp -a "$d/py/repo" "$d/rs/repo"
        cross_restore "interchange step $i ($tool wrote)" "$d" "$d/expect.fs"
    done
}
section interchange
interchange

# ------------------------------------------------------------------ FS21 source
fs21_case() {
    local f d="$W/fs21"
    f=""
    local corpus="${ZFS_CORPUS:-../shared/corpus/real}"
    [[ "$corpus" == /* ]] || corpus="$root/$corpus"
    for cand in "$corpus"/*.fs "$root"/testdata/fixtures/*.fs; do
        [[ -f "$cand" && "$(head -c 4 "$cand")" == FS21 ]] && { f="$cand"; break; }
    done
    if [[ -z "$f" ]]; then
        echo "SKIP FS21 backup (no FS21 file found)"
        return
    fi
    mkdir -p "$d/py/repo" "$d/rs/repo"
    cp "$f" "$d/src.fs"
    tick
    both "FS21 source: full backup" "$d" -B -v -r repo -f ../src.fs
    same_repo "FS21 source: repository" "$d/py/repo" "$d/rs/repo"
}
section fs21_case
fs21_case

# ------------------------------------------------------------------ messages and errors
# Each case: args run in an empty dir holding an empty `repo` and a small source.
errors() {
    local d="$W/errors" i=0 why
    mkdir -p "$d"
    cp "$W/gen/b.fs" "$d/src.fs"
    while IFS= read -r line; do
        [[ -z "$line" ]] && continue
        i=$((i + 1))
        rm -rf "$d/py" "$d/rs"
        mkdir -p "$d/py/repo" "$d/rs/repo"
        # shellcheck disable=SC2086
        eval "set -- $line"
        (cd "$d/py" && frozen "$ORACLE_PY" "$W/pyrepozo.py" "$@") > "$d/py.out" 2> "$d/py.err"
        local a=$?
        (cd "$d/rs" && frozen "$REPOZO" "$@") > "$d/rs.out" 2> "$d/rs.err"
        local b=$?
        why="$d/why$i"
        # Usage texts are our own words: compare the last line (the message) only.
        if [[ $a == "$b" ]] && diff <(tail -n 1 "$d/py.err") <(tail -n 1 "$d/rs.err") > "$why"; then
            conf_pass "message: repozo $line"
        else
            { echo "status python $a, ours $b"; echo "--- python"; tail -n 3 "$d/py.err"; echo "--- ours"; tail -n 3 "$d/rs.err"; } > "$why"
            conf_fail "message: repozo $line" "$why"
        fi
    done <<'CASES'
-B -R
-R -V -r repo
--crash-please
-x
-r
--repo
--full=1
--ver
crash please
-B
-B -r repo
-B -r repo -f ''
-R -r repo
-R -r repo -D 2026-01-01
-V -r repo
-B -r nosuchdir -f ../src.fs
-B -r repo -f nosuch.fs
-R -r nosuchdir
-B -r '' -f ../src.fs
-V -r ''
-R -r repo -o nosuchdir/out.fs
-R -r repo -o out -D 2
-B -v -r repo -f ../src.fs -D 2011-12-13 -o x --with-verify
-R -v -r repo -f x -k
-V -v -r repo -o x -D y -f z -z -k -F -w
--help -B -R
CASES
    # -h prints the usage on stdout with status 0.
    if (cd "$d/rs" && "$REPOZO" -h) > "$d/h.out" 2> "$d/h.err" && [[ -s "$d/h.out" && ! -s "$d/h.err" ]]; then
        conf_pass "-h: usage on stdout, status 0"
    else
        conf_fail "-h: usage on stdout, status 0" "$d/h.err"
    fi
}
section errors
errors

# Damaged repositories: both tools must fail (status 1) with the same message where Python
# has one; where Python crashes with a traceback, ours must give one clear line.
damaged() {
    local d="$W/damaged"
    mkdir -p "$d/py/repo" "$d/rs/repo" "$d/stages"
    "$ORACLE_PY" "$W/stages.py" "$W/gen/a.fs" "$d/stages" > /dev/null
    cp "$d/stages/stage1.fs" "$d/src.fs"; tick
    both "damaged: full" "$d" -B -r repo -f ../src.fs
    cp "$d/stages/stage3.fs" "$d/src.fs"; tick
    both "damaged: gzip incremental" "$d" -B -z -r repo -f ../src.fs
    cp "$d/stages/stage4.fs" "$d/src.fs"; tick
    both "damaged: incremental" "$d" -B -r repo -f ../src.fs
    local z delta
    z="$(cd "$d/py/repo" && ls | grep 'deltafsz$' | head -1)"
    delta="$(cd "$d/py/repo" && ls | grep 'deltafs$' | head -1)"
    # Wrong content, same size: verify names the checksum.
    for t in py rs; do printf 'Z' | dd of="$d/$t/repo/$delta" bs=1 seek=30 conv=notrunc 2> /dev/null; done
    both "damaged: verify a changed incremental" "$d" -V -r repo
    both "damaged: restore -w of a changed incremental" "$d" -R -w -r repo -o ../out
    # A wrong CRC in a gzip trailer: Python's BadGzipFile texts ("is missing" in verify).
    local zsize
    zsize=$(stat -c %s "$d/py/repo/$z")
    cp "$d/py/repo/$z" "$d/z.good"
    for t in py rs; do
        "$ORACLE_PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-8] ^= 0x5a; open(p, "wb").write(b)' "$d/$t/repo/$z"
    done
    both "damaged: verify a gzip CRC mismatch" "$d" -V -r repo
    both "damaged: restore a gzip CRC mismatch" "$d" -R -r repo -o ../out
    both "damaged: backup over a gzip CRC mismatch" "$d" -B -r repo -f ../src.fs
    # Truncated gzip: Python crashes (EOFError); ours: one clear line, status 1, output kept.
    head -c $((zsize / 2)) "$d/z.good" > "$d/rs/repo/$z"
    echo precious > "$d/out.keep"
    for args in "-R -r repo -o ../out.keep" "-V -r repo" "-B -r repo -f ../src.fs"; do
        # shellcheck disable=SC2086
        (cd "$d/rs" && "$REPOZO" $args) > "$d/o" 2>&1
        if [[ $? == 1 && $(wc -l < "$d/o") == 1 ]] && ! grep -qi panick "$d/o" &&
            [[ "$(cat "$d/out.keep")" == precious ]]; then
            conf_pass "damaged: truncated gzip, repozo $args: one clear line, status 1"
        else
            conf_fail "damaged: truncated gzip, repozo $args: one clear line, status 1" "$d/o"
        fi
    done
    cp "$d/z.good" "$d/rs/repo/$z"
    # Bad gzip magic: verify says "is missing"; restore says "Not a gzipped file".
    for t in py rs; do printf 'XX' | dd of="$d/$t/repo/$z" bs=1 seek=0 conv=notrunc 2> /dev/null; done
    both "damaged: verify a bad gzip header" "$d" -V -r repo
    both "damaged: restore a bad gzip header" "$d" -R -r repo -o ../out
    # Truncated plain incremental: verify gives the size; our restore refuses it too.
    for t in py rs; do truncate -s 10 "$d/$t/repo/$delta"; done
    both "damaged: verify a truncated incremental" "$d" -V -r repo
    (cd "$d/rs" && "$REPOZO" -R -r repo -o ../out) > "$d/o" 2>&1
    if [[ $? == 1 && $(wc -l < "$d/o") == 1 ]] && grep -q "$delta" "$d/o"; then
        conf_pass "damaged: our restore refuses a truncated incremental"
    else
        conf_fail "damaged: our restore refuses a truncated incremental" "$d/o"
    fi
    # A hole in the chain.
    rm -f "$d/rs/repo/$delta" "$d/rs/repo/$z"
    (cd "$d/rs" && "$REPOZO" -R -r repo -o ../out) > "$d/o" 2>&1
    if [[ $? == 1 && $(wc -l < "$d/o") == 1 ]]; then
        conf_pass "damaged: our restore refuses a chain with a hole"
    else
        conf_fail "damaged: our restore refuses a chain with a hole" "$d/o"
    fi
    # Garbage .dat: Python crashes (traceback); ours: one line, status 1.
    echo "garbage line" >> "$d/rs/repo/$(cd "$d/rs/repo" && ls | grep 'dat$' | head -1)"
    for args in "-V -r repo" "-B -Q -r repo -f ../src.fs" "-R -w -r repo -o ../out"; do
        # shellcheck disable=SC2086
        (cd "$d/rs" && "$REPOZO" $args) > "$d/o" 2>&1
        if [[ $? == 1 && $(wc -l < "$d/o") == 1 ]] && ! grep -qi panick "$d/o"; then
            conf_pass "damaged: garbage .dat, repozo $args: one clear line, status 1"
        else
            conf_fail "damaged: garbage .dat, repozo $args: one clear line, status 1" "$d/o"
        fi
    done
}
section damaged
damaged

# ------------------------------------------------------------------ quick-mode and .dat edges
# One backup step where ours mends a missing .dat and Python does not: both succeed, ours
# says it wrote the line back, each repository restores to the source's committed bytes
# with either tool and passes -V with either tool; then our repository becomes a copy of
# Python's for the next steps.
lost_dat() {
    local name="$1" d="$2" tool repo ok=1 why
    shift 2
    why="$W/why.$RANDOM"
    : > "$why"
    (cd "$d/py" && frozen "$ORACLE_PY" "$W/pyrepozo.py" "$@") > "$d/py.out" 2> "$d/py.err" ||
        { echo "python failed: $(cat "$d/py.err")" >> "$why"; ok=0; }
    (cd "$d/rs" && frozen "$REPOZO" "$@") > "$d/rs.out" 2> "$d/rs.err" ||
        { echo "ours failed: $(cat "$d/rs.err")" >> "$why"; ok=0; }
    grep -q "was missing or empty .*: wrote the line of" "$d/rs.err" ||
        { echo "ours did not write the line back:"; cat "$d/rs.err"; } >> "$why"
    [[ -s "$why" ]] && ok=0
    for tool in py rs; do
        for repo in py rs; do
            (cd "$d/$repo" && frozen "$( [[ $tool == py ]] && echo "$ORACLE_PY" || echo "$REPOZO")" \
                $( [[ $tool == py ]] && echo "$W/pyrepozo.py") -V -r repo) > /dev/null 2> "$d/v.err" ||
                { echo "$tool -V on $repo's repository: $(cat "$d/v.err")" >> "$why"; ok=0; }
        done
    done
    if [[ $ok == 1 ]]; then conf_pass "$name: ours writes the line back, both verify"; else conf_fail "$name: ours writes the line back, both verify" "$why"; fi
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "$name: cross restore" "$d" "$d/expect.fs"
    rm -rf "$d/rs/repo" && cp -a "$d/py/repo" "$d/rs/repo"
}

dat_edges() {
    local d="$W/dat-edges"
    mkdir -p "$d/py/repo" "$d/rs/repo" "$d/stages"
    "$ORACLE_PY" "$W/stages.py" "$W/gen/b.fs" "$d/stages" > /dev/null
    cp "$d/stages/stage1.fs" "$d/src.fs"; tick
    # Repository spelled ./repo/: every recorded path keeps that spelling.
    both "paths: full backup with -r ./repo/" "$d" -B -v -r ./repo/ -f ../src.fs
    same_repo "paths: repository" "$d/py/repo" "$d/rs/repo"
    # Without the full backup's .dat (a run of Python killed between the data file and the
    # .dat, or a lost file), ours differs from Python on purpose: it writes the full
    # backup's line back (its bytes match the source) and goes on with the chain, where
    # Python makes a new full backup in quick mode and a .dat without the full backup in
    # default mode (so -V never checks that full backup again). Both repositories restore
    # to the same bytes with either tool and pass -V; then they are made the same again.
    rm -f "$d"/py/repo/*.dat "$d"/rs/repo/*.dat
    cp "$d/stages/stage3.fs" "$d/src.fs"; tick
    lost_dat "quick: missing .dat" "$d" -B -Q -v -r repo -f ../src.fs
    rm -f "$d"/py/repo/*.dat "$d"/rs/repo/*.dat
    cp "$d/stages/stage4.fs" "$d/src.fs"; tick
    lost_dat "default: missing .dat" "$d" -B -v -r repo -f ../src.fs
    # A changed byte inside the backed-up range: quick mode sees it in the last line's range.
    cp "$d/stages/stage4.fs" "$d/src.fs"
    # (a pickle byte of the last transaction, so the file stays a valid FileStorage)
    "$ORACLE_PY" "$W/poke.py" "$d/src.fs" last
    tick
    both "quick: changed bytes give a full backup" "$d" -B -Q -v -r repo -f ../src.fs
    same_repo "quick: changed bytes, repository" "$d/py/repo" "$d/rs/repo"
    # Restore -w and verify agree on both repositories.
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "dat edges: cross restore with -w" "$d" "$d/expect.fs" -w
}
section dat_edges
dat_edges

# ------------------------------------------------------------------ same second
# Ours never stamps a backup at or before an existing data file: two runs in one frozen
# second make two files a second apart (Python refuses: "Cannot overwrite existing file"),
# and both tools restore the result.
same_second() {
    local d="$W/same-second" names
    mkdir -p "$d/rs/repo" "$d/py" "$d/stages"
    "$ORACLE_PY" "$W/stages.py" "$W/gen/b.fs" "$d/stages" > /dev/null
    cp "$d/stages/stage1.fs" "$d/src.fs"; tick
    (cd "$d/rs" && frozen "$REPOZO" -B -r repo -f ../src.fs) > "$d/o" 2>&1 &&
    (cd "$d/rs" && frozen "$REPOZO" -B -F -r repo -f ../src.fs) >> "$d/o" 2>&1 &&
    cp "$d/stages/stage3.fs" "$d/src.fs" &&
    (cd "$d/rs" && frozen "$REPOZO" -B -r repo -f ../src.fs) >> "$d/o" 2>&1
    names="$(cd "$d/rs/repo" && ls | grep -E '\.(delta)?fs$' | tr '\n' ' ')"
    if [[ "$names" == "$(stamp).fs $(tick 1; stamp).fs $(tick 2; stamp).deltafs " ]]; then
        conf_pass "same second: stamps $names"
    else
        echo "files: $names" >> "$d/o"
        conf_fail "same second: three backups get three later stamps" "$d/o"
    fi
    tick 3
    mkdir -p "$d/py" && rm -rf "$d/py/repo" && cp -a "$d/rs/repo" "$d/py/repo"
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "same second: cross restore" "$d" "$d/expect.fs" -w
}
section same_second
same_second

# ------------------------------------------------------------------ 'c' tail
# A transaction still being committed (status 'c') is not copied; once it is committed
# (status ' '), the next backup copies it as an incremental.
ctail_case() {
    local d="$W/ctail"
    mkdir -p "$d/py/repo" "$d/rs/repo"
    "$ORACLE_PY" "$here/gen_datafs.py" "$d/src.fs" --seed "$seed1" --txns 60 --tail c \
        > "$d/gen.log" 2>&1 || { conf_fail "ctail: generate" "$d/gen.log"; return; }
    tick
    both "ctail: full backup stops before the 'c' transaction" "$d" -B -v -r repo -f ../src.fs
    same_repo "ctail: repository" "$d/py/repo" "$d/rs/repo"
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "ctail: cross restore" "$d" "$d/expect.fs"
    "$ORACLE_PY" - "$d/src.fs" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
pos, last = 4, None
while pos + 23 <= len(data):
    last = pos
    pos += struct.unpack(">Q", data[pos + 8:pos + 16])[0] + 8
assert data[last + 16:last + 17] == b"c"
data[last + 16] = ord(" ")
open(sys.argv[1], "wb").write(data)
PY
    tick
    both "ctail: committed, incremental" "$d" -B -v -r repo -f ../src.fs
    same_repo "ctail: repository after commit" "$d/py/repo" "$d/rs/repo"
    cross_restore "ctail: cross restore after commit" "$d" "$d/src.fs"
}
section ctail_case
ctail_case

# ------------------------------------------------------------------ a .dat line lost
# A run killed between renaming its incremental into place and appending its .dat line
# (Python and ours share that window). On purpose, ours differs from Python here: our next
# backup adds the missing line when the file holds the source's bytes at that place.
# Python's next run says "No changes" and never adds it; both tools restore the unlisted
# file meanwhile (ours when its .index shows it continues the chain), but neither -V nor
# -R -w can check it until its line is back.
lost_dat_line() {
    local d="$W/lost-line" dat
    mkdir -p "$d/py/repo" "$d/rs/repo" "$d/stages"
    "$ORACLE_PY" "$W/stages.py" "$W/gen/a.fs" "$d/stages" > /dev/null
    cp "$d/stages/stage1.fs" "$d/src.fs"; tick
    both "lost line: full backup" "$d" -B -r repo -f ../src.fs
    cp "$d/stages/stage3.fs" "$d/src.fs"; tick
    both "lost line: incremental" "$d" -B -r repo -f ../src.fs
    same_repo "lost line: repository" "$d/py/repo" "$d/rs/repo"
    dat="$(cd "$d/rs/repo" && ls -- *.dat)"
    cp "$d/rs/repo/$dat" "$d/whole.dat"
    head -n 1 "$d/whole.dat" > "$d/rs/repo/$dat"
    tick
    if (cd "$d/rs" && frozen "$REPOZO" -B -r repo -f ../src.fs) > "$d/o" 2>&1 &&
        cmp -s "$d/whole.dat" "$d/rs/repo/$dat" && grep -q "added the line" "$d/o"; then
        conf_pass "lost line: our next backup adds the same line Python wrote"
    else
        { echo "--- .dat now"; cat "$d/rs/repo/$dat"; echo "--- output"; cat "$d/o"; } >> "$d/o.why"
        conf_fail "lost line: our next backup adds the same line Python wrote" "$d/o.why"
    fi
    same_repo "lost line: repository after the line is added" "$d/py/repo" "$d/rs/repo"
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "lost line: cross restore with -w" "$d" "$d/expect.fs" -w
    # Both tools go on from the mended repository.
    cp "$d/stages/stage4.fs" "$d/src.fs"; tick
    both "lost line: the next incremental" "$d" -B -r repo -f ../src.fs
    same_repo "lost line: repository after the next incremental" "$d/py/repo" "$d/rs/repo"
    committed_prefix "$d/src.fs" "$d/expect.fs"
    cross_restore "lost line: cross restore after the next incremental" "$d" "$d/expect.fs" -w
}
section lost_dat_line
lost_dat_line

finish
