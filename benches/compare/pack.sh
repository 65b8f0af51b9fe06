#!/usr/bin/env bash
# Compare `zodbfs pack` with ZODB's FileStorage.pack (GC on, pack time after the last
# transaction) on a copy of FILE: wall time and peak RSS (/usr/bin/time -v) of each, their
# ratios, and whether the packed Data.fs and .index are byte-identical.
#
#   benches/compare/pack.sh FILE [PYTHON]
#
# PYTHON: a python with ZODB (default: testdata/oracle/setup.sh's venv).
# ZODBFS: the pack command to time (default target/release/zodbfs; words split).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
src="$1"
py="${2:-$("$repo/testdata/oracle/setup.sh" | tail -n 1)}"
[[ -x /usr/bin/time ]] || { echo "install Debian 'time' (apt-get install time)" >&2; exit 1; }
read -r -a zodbfs <<< "${ZODBFS:-$repo/target/release/zodbfs}"
work="$(mktemp -d -t pack-compare.XXXXXX)"
trap 'rm -rf "$work"' EXIT
stop="$("$py" - "$src" <<'PY'
import os, struct, sys
p = sys.argv[1]
with open(p, "rb") as f:
    f.seek(-8, 2); tl = struct.unpack(">Q", f.read(8))[0]
    f.seek(os.path.getsize(p) - 8 - tl); print("%016x" % (int.from_bytes(f.read(8), "big") + 1))
PY
)"
cp "$src" "$work/zodb.fs"; cp "$src" "$work/ours.fs"
/usr/bin/time -v "$py" "$repo/testdata/oracle/pack_oracle.py" "$work/zodb.fs" --tid "$stop" > /dev/null 2> "$work/zodb.time"
/usr/bin/time -v "${zodbfs[@]}" --quiet pack "$work/ours.fs" --tid "$stop" > /dev/null 2> "$work/ours.time"
secs() { awk -F': ' '/Elapsed/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident/ {print $2}' "$1"; }
zt=$(secs "$work/zodb.time"); ot=$(secs "$work/ours.time"); zm=$(rss "$work/zodb.time"); om=$(rss "$work/ours.time")
same=no; cmp -s "$work/zodb.fs" "$work/ours.fs" && cmp -s "$work/zodb.fs.index" "$work/ours.fs.index" && same=yes
echo "file: $src ($(stat -c %s "$src") bytes), stop tid $stop, $(nproc) cores"
echo "ZODB: ${zt} s, peak RSS ${zm} kB"
echo "ours: ${ot} s, peak RSS ${om} kB"
awk -v a="$zt" -v b="$ot" -v c="$zm" -v d="$om" 'BEGIN {printf "time ratio (ZODB/ours): %.1fx; memory ratio (ours/ZODB): %.2f\n", a/b, d/c}'
echo "byte-identical Data.fs and .index: $same"
