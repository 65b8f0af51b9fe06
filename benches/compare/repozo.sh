#!/usr/bin/env bash
# Compare our `repozo` with Python repozo (ZODB 6.4) on the same Data.fs, in one run:
# full backup, default (non-quick) incremental, restore, verify, gzip full backup.
#
#   benches/compare/repozo.sh [DATA.fs]   (default: generates benches/work/big.fs, ~1 GB)
#
# Env: REPOZO=<our binary> (default: cargo build --release), REPEAT=N runs of each
# operation but gzip, the median is reported (default 3), SKIP_GZIP=1 to skip -z (Python
# takes about a minute and a half per GB there).
# Where ours fsyncs and Python does not (the restored file), Python is timed with
# `sync FILE` after it, so both produce the same durable result. The files both tools
# produce are compared (data bytes; decompressed bytes for -z).
# Prints wall times (median of REPEAT) and the ratios (Python / ours). ZFS_MD5=scalar
# (passed on to our binary) measures what a CPU without AVX-512 gets.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$("$root/testdata/oracle/setup.sh" | tail -n 1)
command -v /usr/bin/time > /dev/null || { apt-get update -qq && apt-get install -y -qq time; }
repeat=${REPEAT:-3}
work="$root/benches/work/repozo"
rm -rf "$work"
mkdir -p "$work"
src=${1:-$root/benches/work/big.fs}
if [ ! -f "$src" ]; then
    echo "generating $src (~1 GB, takes a few minutes)" >&2
    "$py" "$root/testdata/oracle/gen_datafs.py" "$src" --mb 1000 --seed 11 >&2
fi
if [ -z "${REPOZO:-}" ]; then
    (cd "$root" && cargo build --release -q -p zfs-cli --bin zodbfs-repozo)
    REPOZO="$root/target/release/zodbfs-repozo"
fi
export py REPOZO work

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
cat "$work/Data.fs" "$work/prefix.fs" > /dev/null

# median SETUP CMD...: runs SETUP (untimed) then CMD, REPEAT times; prints the median.
median() {
    local setup="$1" i t
    shift
    local times=()
    for ((i = 0; i < repeat; i++)); do
        bash -c "$setup"
        sync
        /usr/bin/time -f "%e" -o "$work/time.txt" "$@" > /dev/null
        times+=("$(cat "$work/time.txt")")
    done
    printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((repeat + 1) / 2))p"
}
ratio() { python3 -c "print('%.2f' % ($1 / max($2, 0.001)))"; }
results=()
row() { # name python_s ours_s target
    results+=("$(printf '%-38s %8.2f s %8.2f s   %6sx   (target %s)' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4")")
}
same_repo() { # the two repositories hold the same data files
    local a b
    a=$(cd "$work/py" && ls | grep -E '\.(delta)?fs$' | xargs -r md5sum | cut -d' ' -f1)
    b=$(cd "$work/rs" && ls | grep -E '\.(delta)?fs$' | xargs -r md5sum | cut -d' ' -f1)
    [ "$a" = "$b" ] || { echo "repositories differ after $1" >&2; exit 1; }
}

echo "file: $src ($size bytes); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u)"
echo "each time: median of $repeat runs (gzip: 1 run)"

# 1. Full backup.
fresh_py='rm -rf "$work/py"; mkdir -p "$work/py"'
fresh_rs='rm -rf "$work/rs"; mkdir -p "$work/rs"'
tp=$(median "$fresh_py" "$py" -m ZODB.scripts.repozo -B -F -r "$work/py" -f "$work/Data.fs")
tr=$(median "$fresh_rs" "$REPOZO" -B -F -r "$work/rs" -f "$work/Data.fs")
same_repo "full backup"
row "full backup (-B -F)" "$tp" "$tr" "2.5x"
tm=$(median true openssl md5 "$work/Data.fs")
results+=("$(printf '%-38s %8s   %8.2f s   (openssl md5 of the file: the floor)' "  one MD5 stream" "" "$tm")")
tm=$(median true md5sum "$work/Data.fs")
results+=("$(printf '%-38s %8s   %8.2f s   (md5sum of the file)' "  one MD5 stream" "" "$tm")")

# 2. Default incremental: the repository holds a full backup of the 95% prefix (made once,
#    copied before each run; its stamp is in the past, so each run's stamp is new).
rm -rf "$work/base" && mkdir -p "$work/base"
"$REPOZO" -B -r "$work/base" -f "$work/prefix.fs"
sleep 1
incr_py='rm -rf "$work/py"; cp -a "$work/base" "$work/py"'
incr_rs='rm -rf "$work/rs"; cp -a "$work/base" "$work/rs"'
tp=$(median "$incr_py" "$py" -m ZODB.scripts.repozo -B -r "$work/py" -f "$work/Data.fs")
tr=$(median "$incr_rs" "$REPOZO" -B -r "$work/rs" -f "$work/Data.fs")
n_py=$(ls "$work/py" | grep -c deltafs || true)
n_rs=$(ls "$work/rs" | grep -c deltafs || true)
[ "$n_py" = 1 ] && [ "$n_rs" = 1 ] || { echo "expected one incremental each" >&2; exit 1; }
same_repo "incremental backup"
row "incremental (-B, default mode)" "$tp" "$tr" "2.5x"

# 3. Restore of full + incremental to a file. Python does not fsync its output; ours does
#    (fsync of the file and its directory), so Python's time includes `sync` of its file.
clean_out='rm -f "$work"/out-py.fs* "$work"/out-rs.fs*'
tp=$(median "$clean_out" sh -c '"$1" -m ZODB.scripts.repozo -R -r "$2" -o "$3" && sync "$3"' sh "$py" "$work/py" "$work/out-py.fs")
cp "$work/out-py.fs" "$work/out-py.keep"
tr=$(median "$clean_out" "$REPOZO" -R -r "$work/rs" -o "$work/out-rs.fs")
cmp "$work/out-py.keep" "$work/out-rs.fs"
rm -f "$work/out-py.keep"
row "restore (-R -o, durable)" "$tp" "$tr" "4x"
tp2=$(median "$clean_out" "$py" -m ZODB.scripts.repozo -R -r "$work/py" -o "$work/out-py.fs")
row "restore (-R -o; Python without sync)" "$tp2" "$tr" "-"
bash -c "$clean_out"

# 4. Verify.
tp=$(median true "$py" -m ZODB.scripts.repozo -V -r "$work/py")
tr=$(median true "$REPOZO" -V -r "$work/rs")
row "verify (-V)" "$tp" "$tr" "~MD5 speed"
tm=$(median true sh -c 'cat "$1"/*.fs "$1"/*.deltafs | openssl md5' sh "$work/rs")
results+=("$(printf '%-38s %8s   %8.2f s   (cat | openssl md5 of the same bytes)' "  one MD5 stream" "" "$tm")")

# 5. gzip full backup (one run each: Python needs ~90 s per GB).
if [ -z "${SKIP_GZIP:-}" ]; then
    repeat=1
    tp=$(median "$fresh_py" "$py" -m ZODB.scripts.repozo -B -F -z -r "$work/py" -f "$work/Data.fs")
    tr=$(median "$fresh_rs" "$REPOZO" -B -F -z -r "$work/rs" -f "$work/Data.fs")
    zp=$(stat -c %s "$work"/py/*.fsz)
    zr=$(stat -c %s "$work"/rs/*.fsz)
    cmp <(gzip -dc "$work"/py/*.fsz) <(gzip -dc "$work"/rs/*.fsz)
    row "gzip full backup (-B -F -z)" "$tp" "$tr" "4x"
    results+=("$(printf '%-38s python %d B, ours %d B: %s of Python (limit 1.05)' "  compressed size" "$zp" "$zr" "$(ratio "$zr" "$zp")")")
fi

echo
printf '%-38s %10s %10s   %7s\n' "operation" "python" "ours" "speed-up"
for r in "${results[@]}"; do echo "$r"; done
