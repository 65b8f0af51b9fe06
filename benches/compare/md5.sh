#!/usr/bin/env bash
# MD5 implementations of our repozo, compared on the same file in one run: a full backup
# (`-B -F`: copy and MD5 of the whole file) and a verify (`-V`: read and MD5 of the backup),
# for each repozo binary given, and `openssl md5` / `md5sum` on the same bytes as floors.
#
#   benches/compare/md5.sh DATA.fs NAME=REPOZO_BINARY...
#
#   e.g. cargo build --release -p zfs-cli --bin zodbfs-repozo --no-default-features
#        cp target/release/zodbfs-repozo target/repozo-scalar   (and so on per build)
#        benches/compare/md5.sh big.fs scalar=target/repozo-scalar other=target/repozo-other
#
# Env: REPEAT=N rounds (default 5); in each round every binary runs once, in turn, so that
# a change of load on a shared machine hits all of them alike. Reports the best and the
# median wall time, the median user+system CPU time, and MB/s of the file over the best
# wall time (the least disturbed run on a shared machine).
set -euo pipefail
src="$1"
shift
repeat="${REPEAT:-5}"
command -v /usr/bin/time > /dev/null || { apt-get update -qq && apt-get install -y -qq time; }
work="$(mktemp -d "${TMPDIR:-/tmp}/zfs-md5.XXXXXX")"
trap 'rm -rf "$work"' EXIT
size=$(stat -c %s "$src")
cat "$src" > /dev/null          # into the page cache

# timed NAME CMD...: appends "wall cpu" to $work/NAME.
timed() {
    local name="$1"
    shift
    /usr/bin/time -f "%e %U %S" -o "$work/t" "$@" > /dev/null 2> "$work/err" ||
        { cat "$work/err" >&2; exit 1; }
    awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$work/t" >> "$work/$name"
}

echo "file: $src ($size bytes); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u)"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//');" \
    "AVX-512F: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"
for ((r = 0; r < repeat; r++)); do
    if command -v openssl > /dev/null; then timed "openssl-md5" openssl md5 "$src"; fi
    timed "md5sum" md5sum "$src"
    for spec in "$@"; do
        name="${spec%%=*}"
        bin="${spec#*=}"
        rm -rf "$work/repo"
        mkdir "$work/repo"
        sync
        timed "$name-backup" "$bin" -B -F -r "$work/repo" -f "$src"
        timed "$name-verify" "$bin" -V -r "$work/repo"
    done
done
# The repositories are the same whatever the MD5 code: check the last .dat against Python-free
# md5sum of the source.
want="$(md5sum < "$src" | cut -d' ' -f1)"
grep -q " $want\$" "$work"/repo/*.dat || { echo "the .dat does not hold md5sum's digest" >&2; exit 1; }

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
best() { sort -g | head -n 1; }
printf '%-20s %9s %9s %9s %9s\n' "run ($repeat rounds)" "best s" "median s" "cpu s" "MB/s"
for f in "$work"/*-backup "$work"/*-verify "$work/openssl-md5" "$work/md5sum"; do
    [[ -f "$f" ]] || continue
    low=$(cut -d' ' -f1 "$f" | best)
    wall=$(cut -d' ' -f1 "$f" | median)
    cpu=$(cut -d' ' -f2 "$f" | median)
    printf '%-20s %9.2f %9.2f %9.2f %9.0f\n' "$(basename "$f")" "$low" "$wall" "$cpu" \
        "$(python3 -c "print($size / 1e6 / max($low, 0.001))")"
done
