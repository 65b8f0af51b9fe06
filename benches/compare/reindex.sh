#!/usr/bin/env bash
# Compare `zodbfs reindex` with ZODB building its index for the same file (FileStorage(path)
# with no .index: a full read_index scan), in one run, on a ~1 GB Data.fs made by real ZODB.
# usage: benches/compare/reindex.sh [DATA.fs]   (default: generates benches/work/big.fs, ~1 GB)
# Prints wall time and peak RSS (GNU time) of both, and the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$("$root/testdata/oracle/setup.sh" | tail -n 1)
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
work="$root/benches/work"; mkdir -p "$work"
src=${1:-$work/big.fs}
if [ ! -f "$src" ]; then
  echo "generating $src (~1 GB, takes a few minutes)" >&2
  "$py" "$root/testdata/oracle/gen_datafs.py" "$src" --mb 1000 --seed 11 >&2
fi
(cd "$root" && cargo build --release -q -p zfs-cli)
zodbfs="$root/target/release/zodbfs"
cp "$src" "$work/ours.fs"
cp "$src" "$work/zodb.fs"
rm -f "$work"/ours.fs.index "$work"/zodb.fs.index
cat > "$work/zodb_index.py" <<'PY'
import sys, ZODB.FileStorage
st = ZODB.FileStorage.FileStorage(sys.argv[1], read_only=True)   # scans: no .index
st._index.save(st._pos, sys.argv[1] + ".index")
st.close()
PY
sync; cat "$work/ours.fs" "$work/zodb.fs" > /dev/null   # warm the page cache for both
measure() { /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" > /dev/null; cat "$work/time.txt"; }
# ours fsyncs the index it writes; ZODB does not, so its time includes a sync of its file.
read -r zt zm < <(measure sh -c '"$1" "$2" "$3" && sync "$3.index"' sh "$py" "$work/zodb_index.py" "$work/zodb.fs")
read -r ot om < <(measure "$zodbfs" -q reindex "$work/ours.fs")
cmp "$work/zodb.fs.index" "$work/ours.fs.index" && same=identical || same=DIFFERENT
size=$(stat -c %s "$src")
echo "file: $src ($size bytes)"
echo "ZODB FileStorage index build: ${zt} s, peak ${zm} KiB"
echo "zodbfs reindex:               ${ot} s, peak ${om} KiB"
python3 -c "print('speed-up: %.1fx, memory: %.2fx of ZODB' % ($zt/max($ot,0.001), $om/$zm))"
echo ".index bytes: $same"
[ "$same" = identical ]
