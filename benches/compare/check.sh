#!/usr/bin/env bash
# Compare `zodbfs check` with ZODB's fstest and `zodbfs refs` with ZODB's fsrefs, in one run,
# on a ~1 GB Data.fs made by real ZODB (gen_datafs.py). Each tool runs RUNS times (default 3)
# and its best wall time counts.
# usage: benches/compare/check.sh [DATA.fs]   (default: generates benches/work/big.fs, ~1 GB)
# The file is only read. Prints wall time and peak RSS (GNU time) of each tool and the
# ratios; fails when `check` is not 5x faster than fstest or `refs` not 10x faster than
# fsrefs, or when either tool finds a problem in the file.
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
zodbfs="${ZODBFS:-}"
if [ -z "$zodbfs" ]; then
  (cd "$root" && cargo build --release -q -p zfs-cli)
  zodbfs="$root/target/release/zodbfs"
fi
cat "$src" > /dev/null   # warm the page cache: every tool reads the same, cached file
# Best wall time of $runs runs (the machine may be shared), with the peak RSS of that run.
runs=${RUNS:-3}
measure() {
  local best="" line
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" > "$work/out.txt" 2>&1 || { echo "failed: $*" >&2; cat "$work/out.txt" >&2; return 1; }
    line=$(cat "$work/time.txt")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if float('${line%% *}') < float('${best%% *}') else 1)"; then best=$line; fi
  done
  echo "$best"
}
# fsrefs opens the file read-only and uses FILE.index when it is there and sane; so does
# zodbfs refs. Both are given the same situation.
read -r ft fm < <(measure "$py" -m ZODB.scripts.fstest "$src")
read -r ct cm < <(measure "$zodbfs" -q check --no-index "$src")
read -r qt qm < <(measure "$zodbfs" -q check --quick "$src")
read -r rt rm < <(measure "$py" -m ZODB.scripts.fsrefs "$src")
# (FileStorage warns when the last tid lies in the future, as in generated files: not a problem.)
if grep -qv 'seconds in the future$' "$work/out.txt"; then
  echo "fsrefs reported problems:" >&2; cat "$work/out.txt" >&2; exit 1
fi
read -r zt zm < <(measure "$zodbfs" -q refs "$src")
size=$(stat -c %s "$src")
index=no; [ -f "$src.index" ] && index=yes
echo "file: $src ($size bytes; .index present: $index); $(nproc) cores"
echo "fstest:                   ${ft} s, peak ${fm} KiB"
echo "zodbfs check (full):      ${ct} s, peak ${cm} KiB"
echo "zodbfs check --quick:     ${qt} s, peak ${qm} KiB"
echo "fsrefs:                   ${rt} s, peak ${rm} KiB"
echo "zodbfs refs:              ${zt} s, peak ${zm} KiB"
python3 - "$ft" "$ct" "$qt" "$rt" "$zt" <<'PY'
import sys
ft, ct, qt, rt, zt = (max(float(x), 0.01) for x in sys.argv[1:])
print("check speed-up vs fstest: %.1fx (quick: %.1fx); refs speed-up vs fsrefs: %.1fx" % (ft / ct, ft / qt, rt / zt))
ok = ft / ct >= 5 and rt / zt >= 10
print("targets (check >= 5x, refs >= 10x): %s" % ("met" if ok else "NOT MET"))
sys.exit(0 if ok else 1)
PY
