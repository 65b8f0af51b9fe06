#!/usr/bin/env bash
# Compare our `repozo` with Python repozo (ZODB 6.4) on the same ~1 GB Data.fs, in one run:
# full backup, default (non-quick) incremental, restore, verify, gzip full backup.
# usage: benches/compare/repozo.sh [DATA.fs]   (default: generates benches/work/big.fs, ~1 GB)
# Env: REPOZO=<our binary> (default: cargo build --release), SKIP_GZIP=1 to skip -z (Python
# takes about a minute per GB there).
# Prints wall times and the ratios (Python / ours); the files both produce are compared.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$("$root/testdata/oracle/setup.sh" | tail -n 1)
command -v /usr/bin/time > /dev/null || { apt-get update -qq && apt-get install -y -qq time; }
work="$root/benches/work/repozo"
rm -rf "$work"
mkdir -p "$work"
src=${1:-$root/benches/work/big.fs}
if [ ! -f "$src" ]; then
    echo "generating $src (~1 GB, takes a few minutes)" >&2
    "$py" "$root/testdata/oracle/gen_datafs.py" "$src" --mb 1000 --seed 11 >&2
fi
if [ -z "${REPOZO:-}" ]; then
    (cd "$root" && cargo build --release -q -p zfs-cli --bin repozo)
    REPOZO="$root/target/release/repozo"
fi
pyrepozo() { "$py" -m ZODB.scripts.repozo "$@"; }

# Both tools get a source with an up-to-date .index (ZODB makes one when it closes a
# writable storage), as on a production server; without one both would first scan.
cp "$src" "$work/Data.fs"
size=$(stat -c %s "$work/Data.fs")
"$py" - "$work/Data.fs" << 'PY'
import sys, ZODB.FileStorage
st = ZODB.FileStorage.FileStorage(sys.argv[1])
st.close()
PY
# A prefix of ~95% for the incremental case (its full backup is made by us: same bytes).
head -c $((size * 95 / 100)) "$work/Data.fs" > "$work/prefix.fs"

sync
cat "$work/Data.fs" > /dev/null
measure() { /usr/bin/time -f "%e" -o "$work/time.txt" "$@" > /dev/null; cat "$work/time.txt"; }
ratio() { python3 -c "print('%.2f' % ($1 / max($2, 0.001)))"; }
results=()
row() { # name python_s ours_s target
    results+=("$(printf '%-34s %8.2f s %8.2f s   %6sx   (target %s)' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4")")
}
fresh() { rm -rf "$work/py" "$work/rs"; mkdir -p "$work/py" "$work/rs"; }
same_repo() { # check that the two repositories hold the same data files
    local a b
    a=$(cd "$work/py" && ls | grep -E '\.(delta)?fs$' | xargs -r md5sum | cut -d' ' -f1)
    b=$(cd "$work/rs" && ls | grep -E '\.(delta)?fs$' | xargs -r md5sum | cut -d' ' -f1)
    [ "$a" = "$b" ] || { echo "repositories differ after $1" >&2; exit 1; }
}

echo "file: $src ($size bytes); machine: $(nproc) cores; $(date -u)"

# 1. Full backup.
fresh
tp=$(measure "$py" -m ZODB.scripts.repozo -B -F -r "$work/py" -f "$work/Data.fs")
tr=$(measure "$REPOZO" -B -F -r "$work/rs" -f "$work/Data.fs")
same_repo "full backup"
row "full backup (-B -F)" "$tp" "$tr" "2.5x"

# 2. Default incremental: the repository holds a full backup of the 95% prefix.
fresh
"$REPOZO" -B -r "$work/py" -f "$work/prefix.fs"
cp -a "$work/py/." "$work/rs/"
sleep 1
tp=$(measure "$py" -m ZODB.scripts.repozo -B -r "$work/py" -f "$work/Data.fs")
tr=$(measure "$REPOZO" -B -r "$work/rs" -f "$work/Data.fs")
n_py=$(ls "$work/py" | grep -c deltafs || true)
n_rs=$(ls "$work/rs" | grep -c deltafs || true)
[ "$n_py" = 1 ] && [ "$n_rs" = 1 ] || { echo "expected one incremental each" >&2; exit 1; }
row "incremental (-B, default mode)" "$tp" "$tr" "2.5x"

# 3. Restore of full + incremental to a file. Python does not fsync its output; ours does
#    (fsync of the file and its directory), so Python's time includes `sync` of its file.
rm -f "$work/out-py.fs" "$work/out-rs.fs"
tp=$(measure sh -c '"$1" -m ZODB.scripts.repozo -R -r "$2" -o "$3" && sync "$3"' sh "$py" "$work/py" "$work/out-py.fs")
tr=$(measure "$REPOZO" -R -r "$work/rs" -o "$work/out-rs.fs")
cmp "$work/out-py.fs" "$work/out-rs.fs"
row "restore (-R -o, durable)" "$tp" "$tr" "4x"
rm -f "$work/out-py.fs" "$work/out-rs.fs"
tp=$(measure "$py" -m ZODB.scripts.repozo -R -r "$work/py" -o "$work/out-py.fs")
rm -f "$work/out-py.fs"
row "restore (-R -o; Python without sync)" "$tp" "$tr" "-"

# 4. Verify.
tp=$(measure "$py" -m ZODB.scripts.repozo -V -r "$work/py")
tr=$(measure "$REPOZO" -V -r "$work/rs")
row "verify (-V)" "$tp" "$tr" "~MD5 speed"
tm=$(measure sh -c 'cat "$1"/*.fs "$1"/*.deltafs | openssl md5' sh "$work/rs")
results+=("$(printf '%-34s %8.2f s   (openssl md5 of the same bytes: the floor)' "  one MD5 stream" "$tm")")

# 5. gzip full backup.
if [ -z "${SKIP_GZIP:-}" ]; then
    fresh
    tp=$(measure "$py" -m ZODB.scripts.repozo -B -F -z -r "$work/py" -f "$work/Data.fs")
    tr=$(measure "$REPOZO" -B -F -z -r "$work/rs" -f "$work/Data.fs")
    zp=$(stat -c %s "$work"/py/*.fsz)
    zr=$(stat -c %s "$work"/rs/*.fsz)
    cmp <(gzip -dc "$work"/py/*.fsz) <(gzip -dc "$work"/rs/*.fsz)
    row "gzip full backup (-B -F -z)" "$tp" "$tr" "4x"
    results+=("$(printf '%-34s python %d B, ours %d B: %s of Python (limit 1.05)' "  compressed size" "$zp" "$zr" "$(ratio "$zr" "$zp")")")
fi

echo
printf '%-34s %10s %10s   %7s\n' "operation" "python" "ours" "speed-up"
for r in "${results[@]}"; do echo "$r"; done
