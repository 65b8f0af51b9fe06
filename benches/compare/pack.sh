#!/usr/bin/env bash
# Compare `zodbfs pack` with ZODB's FileStorage.pack on copies of FILE: the same work on
# both sides (GC on, pack time one tick after the last transaction, .old kept), wall time
# and peak RSS (/usr/bin/time -v) of each, their ratios, and whether the packed Data.fs
# and .index are byte-identical.
#
#   benches/compare/pack.sh FILE [PYTHON]
#
# Equal work: ZODB's copy gets a fresh .index first (a live database has one, and it
# saves ZODB the scan our pack does anyway), and its timed command ends with `sync` of
# the packed file and its index, since ours fsyncs both. Each side runs RUNS times
# (default 1) from a fresh copy with the input in the page cache; the best time counts.
#
# PYTHON: a python with ZODB (default: testdata/oracle/setup.sh's venv).
# ZODBFS: the pack command to time (default target/release/zodbfs; words split).
# GC=0 compares packs without GC.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
src="${1:?usage: benches/compare/pack.sh FILE [PYTHON]}"
py="${2:-$("$repo/testdata/oracle/setup.sh" | tail -n 1)}"
runs="${RUNS:-1}"
[[ -x /usr/bin/time ]] || { echo "install Debian 'time' (apt-get install time)" >&2; exit 1; }
read -r -a zodbfs <<< "${ZODBFS:-$repo/target/release/zodbfs}"
[[ -x "${zodbfs[0]}" ]] || (cd "$repo" && cargo build --release -q -p zfs-cli)
work="$(mktemp -d "${TMPDIR:-/tmp}/pack-compare.XXXXXX")"
trap 'rm -rf "$work"' EXIT
nogc=()
[[ "${GC:-1}" == 0 ]] && nogc=(--no-gc)
# STOP=<tid hex> packs to that tid instead (e.g. the middle of the file's history).
stop="${STOP:-}"
[[ -n "$stop" ]] || stop="$("$py" - "$src" <<'PY'
import os, struct, sys
p = sys.argv[1]
with open(p, "rb") as f:
    f.seek(-8, 2); tl = struct.unpack(">Q", f.read(8))[0]
    f.seek(os.path.getsize(p) - 8 - tl); print("%016x" % (int.from_bytes(f.read(8), "big") + 1))
PY
)"
# ZODB's index for its copies, made once (opening and closing the storage saves it).
cp "$src" "$work/base.fs"
"$py" -c "import sys, ZODB.FileStorage as F; F.FileStorage(sys.argv[1]).close()" "$work/base.fs"
cat "$src" > /dev/null

secs() { awk -F': ' '/Elapsed/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident/ {print $2}' "$1"; }
best() { sort -g | head -n 1; }

zt=(); ot=(); zm=0; om=0
for ((i = 0; i < runs; i++)); do
    rm -f "$work"/zodb.fs* "$work"/ours.fs*
    cp "$work/base.fs" "$work/zodb.fs"; cp "$work/base.fs.index" "$work/zodb.fs.index"
    cp "$src" "$work/ours.fs"
    # Flush the copies now: an fsync on ext4 also writes out other dirty data, and the
    # copies' would otherwise land on whichever packer syncs first.
    sync
    /usr/bin/time -v bash -c '"$1" "$2" "$3" --tid "$4" "${@:5}" > /dev/null && sync "$3" "$3.index"' _ \
        "$py" "$repo/testdata/oracle/pack_oracle.py" "$work/zodb.fs" "$stop" "${nogc[@]}" 2> "$work/zodb.time"
    sync
    /usr/bin/time -v "${zodbfs[@]}" --quiet pack "$work/ours.fs" --tid "$stop" "${nogc[@]}" \
        > /dev/null 2> "$work/ours.time"
    zt+=("$(secs "$work/zodb.time")"); ot+=("$(secs "$work/ours.time")")
    m="$(rss "$work/zodb.time")"; (( m > zm )) && zm=$m
    m="$(rss "$work/ours.time")"; (( m > om )) && om=$m
done
zbest="$(printf '%s\n' "${zt[@]}" | best)"; obest="$(printf '%s\n' "${ot[@]}" | best)"
same=no
cmp -s "$work/zodb.fs" "$work/ours.fs" && cmp -s "$work/zodb.fs.index" "$work/ours.fs.index" && same=yes
echo "file: $src ($(stat -c %s "$src") bytes), stop tid $stop, gc ${GC:-1}, $(nproc) cores, $runs run(s)"
echo "packed size: $(stat -c %s "$work/ours.fs") bytes"
echo "ZODB: ${zbest} s (runs: ${zt[*]}), peak RSS ${zm} kB"
echo "ours: ${obest} s (runs: ${ot[*]}), peak RSS ${om} kB"
echo "ours, user+system CPU of the last run: $(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$work/ours.time") s"
awk -v a="$zbest" -v b="$obest" -v c="$zm" -v d="$om" \
    'BEGIN {printf "time ratio (ZODB/ours): %.1fx; memory ratio (ours/ZODB): %.2f\n", a/b, d/c}'
echo "byte-identical Data.fs and .index: $same"
[[ $same == yes ]]
