#!/usr/bin/env bash
# Incremental restore against full restores, on the same chain, in one run: a full backup
# of ~1 GB and 10 incrementals of ~10 MB (made by our repozo under a frozen clock); a
# target restored at the 5th incremental is brought to the 10th.
#
#   benches/compare/incremental.sh SOURCE.fs   (at least ~1.1 GB; e.g. made by
#       testdata/oracle/gen_datafs.py SOURCE.fs --seed 13 --mb 1100)
#
# Env: REPOZO=<our binary> (default: cargo build --release), REPEAT=N runs of each
# measure, the median is reported (default 3), WORK=<directory> (default beside SOURCE).
# Every measure is durable: ours fsyncs what it writes; Python's full restore is timed
# with `sync FILE` after it. The floors: one MD5 pass over the target (`openssl md5`), and
# writing what is appended (`cat` of the incrementals plus `sync`).
# Prints wall times (median of REPEAT) and the ratios; checks every result byte for byte
# against the full restore.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$("$root/testdata/oracle/setup.sh" | tail -n 1)
command -v /usr/bin/time > /dev/null || { apt-get update -qq && apt-get install -y -qq time; }
command -v faketime > /dev/null || { apt-get update -qq && apt-get install -y -qq faketime; }
src=${1:?usage: incremental.sh SOURCE.fs}
repeat=${REPEAT:-3}
work=${WORK:-$(dirname "$src")/incremental-bench}
if [ -z "${REPOZO:-}" ]; then
    (cd "$root" && cargo build --release -q -p zfs-cli --bin repozo)
    REPOZO="$root/target/release/zodbfs-repozo"
fi
rm -rf "$work"
mkdir -p "$work/repo"

# The stages: the first transaction boundary past 1000 MB, then one past each further 10 MB.
read -r -a cuts < <("$py" - "$src" <<'PY'
import struct, sys, os
p = sys.argv[1]
size = os.path.getsize(p)
want = [1000 * 10**6 + k * 10 * 10**6 for k in range(11)]
out, pos = [], 4
with open(p, "rb") as f:
    while pos + 23 <= size and want:
        f.seek(pos + 8)
        pos += struct.unpack(">Q", f.read(8))[0] + 8
        if pos > size:
            break
        if pos >= want[0]:
            out.append(pos)
            want.pop(0)
if want:
    sys.exit("the source is too small: %d bytes" % size)
print(" ".join(map(str, out)))
PY
)
echo "source: $src; stages end at ${cuts[*]}"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u)"
stamp() { date -u -d "@$((1767254400 + 3600 * $1))" '+%Y-%m-%d-%H-%M-%S'; }
for k in $(seq 0 10); do
    head -c "${cuts[$k]}" "$src" > "$work/Data.fs"
    (cd "$work" && REPOZO_TEST_NOW="$(stamp "$k")" "$REPOZO" -B -r repo -f Data.fs)
done
rm -f "$work/Data.fs"
ls -l "$work/repo" | awk '{print "  " $5, $9}' | tail -n +2

median() { # SETUP CMD... : SETUP untimed, then CMD; REPEAT times; prints the median
    local setup="$1" i
    shift
    local times=()
    for ((i = 0; i < repeat; i++)); do
        bash -c "$setup"
        sync
        /usr/bin/time -f "%e" -o "$work/time.txt" "$@" > /dev/null 2> "$work/err.txt" ||
            { cat "$work/err.txt"; exit 1; }
        times+=("$(cat "$work/time.txt")")
    done
    printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((repeat + 1) / 2))p"
}
ratio() { python3 -c "print('%.1f' % ($1 / max($2, 0.001)))"; }
export work REPOZO py
R="$work/repo"
D5=$(stamp 5)

# The target at the 5th incremental, made once; each incremental run starts from a copy.
"$REPOZO" -R -r "$R" -D "$D5" -o "$work/at5.fs"
cat "$R"/* > /dev/null   # the repository in the page cache, as for every measure below

full_ours=$(median 'rm -f "$work/full.fs" "$work/full.fs.index"' \
    "$REPOZO" -R -r "$R" -o "$work/full.fs")
full_py=$(median 'rm -f "$work/py.fs" "$work/py.fs.index"' \
    bash -c '"$py" -m ZODB.scripts.repozo -R -r "$work/repo" -o "$work/py.fs" && sync "$work/py.fs"')
setup='cp "$work/at5.fs" "$work/t.fs"; cp "$work/at5.fs.index" "$work/t.fs.index"; cat "$work/t.fs" > /dev/null'
incr=$(median "$setup" "$REPOZO" -R -r "$R" -o "$work/t.fs")
cmp "$work/t.fs" "$work/full.fs"
cmp "$work/t.fs.index" "$work/full.fs.index"
quick=$(median "$setup" "$REPOZO" -R -Q -r "$R" -o "$work/t.fs")
cmp "$work/t.fs" "$work/full.fs"
cmp "$work/py.fs" "$work/full.fs"
# Floors.
md5_floor=$(median 'cat "$work/at5.fs" > /dev/null' openssl md5 "$work/at5.fs")
deltas=$(for k in 6 7 8 9 10; do echo "$R/$(stamp "$k").deltafs"; done)
export deltas
append_floor=$(median 'rm -f "$work/a.bin"' bash -c 'cat $deltas > "$work/a.bin" && sync "$work/a.bin"')

appended=$((cuts[10] - cuts[5]))
printf '%-58s %8s\n' "measure (median of $repeat, durable)" "seconds"
printf '%-58s %8.2f\n' "Python repozo: full restore of the 10th (+ sync)" "$full_py"
printf '%-58s %8.2f\n' "ours: full restore of the 10th (-R onto a new file)" "$full_ours"
printf '%-58s %8.2f   speed-up: %sx over our full, %sx over Python\n' \
    "ours: 5th -> 10th, default (MD5 of what the target holds)" "$incr" \
    "$(ratio "$full_ours" "$incr")" "$(ratio "$full_py" "$incr")"
printf '%-58s %8.2f   speed-up: %sx over our full, %sx over Python\n' \
    "ours: 5th -> 10th, -Q (MD5 of the last backup it holds)" "$quick" \
    "$(ratio "$full_ours" "$quick")" "$(ratio "$full_py" "$quick")"
printf '%-58s %8.2f   (%d bytes)\n' "floor of the default: openssl md5 of the 5th state" "$md5_floor" "${cuts[5]}"
printf '%-58s %8.2f   (%d bytes)\n' "floor of -Q: writing the 5 incrementals (cat + sync)" "$append_floor" "$appended"
[ -n "${KEEP:-}" ] || rm -rf "$work"
