#!/usr/bin/env bash
# Every job on a Data.fs much larger than the memory it may use.
#
#   benches/compare/scale.sh [GB]        (default 10; run as root)
#
# Makes (zfs-gen, seed SEED) a file of GB gigabytes (10^9 bytes) and a 1 GB file, each with
# its continuation (what 3% more history adds: appended for the incremental backup, as a
# live database grows, and cut off again), then runs on each, one after the other:
#   dd-read (the disk's sequential read rate: `dd` of the file, caches dropped, inside the
#   limit) and dd-write (2 GiB copied with fsync: its write rate), then
#   reindex, check, refs, stats, pack (GC), pack-nogc (each given the saved .index a live
#   database has beside its file), prepare (`zodbfs pack --prepare`: the references saved
#   to Data.fs.refs) and pack-prepared (the pack with GC given them: it reads the file once,
#   its --json must say so), prepare-since (the database grown by its continuation
#   after a prepare: the next prepare reads only the transactions committed since, and
#   saves what a prepare from scratch saves), pack-grown (references saved before the
#   database grew by its continuation, as the last pack leaves them: the pack reads what
#   was committed since, then the file once, with the usual pack's output), and the repozo
#   chain: full backup,
#   incremental (default mode: it checksums the repository and the source), verify, restore,
# each in three modes:
#   free     no memory limit, file read beforehand: the reference outputs;
#   cold     inside a memory cgroup of LIMIT (default 1G), page cache dropped first;
#   warm     inside the same limit, file read beforehand (outside the cgroup).
# The page cache a job fills is charged to its cgroup, so inside the limit the file
# behaves like one ten times larger than memory. Measured per job (scale_run.py): wall,
# user, system time, peak anonymous memory (sampled), peak RSS, major faults, the cgroup's
# limit hits (failcnt) and OOM kills. Outputs of the limited runs are compared with the
# free run's: the .index of reindex, the JSON of check/refs/stats, the packed Data.fs and
# .index, the backup files; the restored file with the grown source, byte for byte.
#
# Env: SCALE_WORK (default benches/work/scale in the repository; needs ~2.2x GB of free disk: the file, a
# backup repository, and the restored file, which replaces the file), LIMIT (1G),
# BIN (directory of the binaries; default target/release, built when missing), SEED (7), MODES ("free cold warm"), SIZES (default "1 GB"), JOBS (default all, in the
# order above), JOB_TIMEOUT (seconds, default 3600: a job still running then is killed and
# recorded as such), KEEP=1 keeps the generated files for a next run.
# Results: SCALE_WORK/runs.jsonl (one JSON line per run) and the table printed at the end
# (scale_run.py report); mismatching outputs are listed as MISMATCH lines.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
gb="${1:-10}"
work="${SCALE_WORK:-$repo/benches/work/scale}"
limit="${LIMIT:-1G}"
seed="${SEED:-7}"
modes="${MODES:-free cold warm}"
sizes="${SIZES:-1 $gb}"
jobs="${JOBS:-dd reindex check refs stats pack pack-nogc prepare pack-prepared prepare-since pack-grown backup incremental verify restore}"
run="$here/scale_run.py"
mkdir -p "$work"
log="$work/runs.jsonl"
: > "$log"
: > "$work/mismatches.txt"
bin="${BIN:-$repo/target/release}"
for b in zodbfs zodbfs-repozo zfs-gen; do
    [[ -x "$bin/$b" ]] || (cd "$repo" && cargo build --release -q -p zfs-cli -p zfs-testdata)
done
echo "scale: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MB RAM, limit $limit, seed $seed, sizes $sizes GB" >&2

INPUTS=()
mismatch() { echo "MISMATCH $*" | tee -a "$work/mismatches.txt" >&2; }
# same KEY MODE HASH LABEL: the free run's output is the reference of the others.
same() {
    if [[ $2 == free ]]; then
        ref[$1]="$3"
    elif [[ -z "${ref[$1]:-}" ]]; then
        echo "not compared (no free run in MODES): $4" >&2
    elif [[ "$3" != "${ref[$1]}" ]]; then
        mismatch "$4"
    fi
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# measure LABEL MODE [--bytes-read N] [--bytes-written N] [--stdout F] -- CMD...
measure() {
    local label="$1" mode="$2"
    shift 2
    local opts=(--label "$label $mode" --log "$log" --timeout "${JOB_TIMEOUT:-3600}")
    # What the job reads, read beforehand for the warm modes (default: the file).
    local inputs=("${INPUTS[@]:-$file}")
    case "$mode" in
        free) cat "${inputs[@]}" > /dev/null; opts+=(--limit none) ;;
        cold) opts+=(--limit "$limit" --cold) ;;
        warm) cat "${inputs[@]}" > /dev/null; opts+=(--limit "$limit") ;;
    esac
    # Every job's output and errors are kept beside the results.
    [[ " $* " == *" --stdout "* ]] || opts+=(--stdout "$out/${label// /-}-$mode.out")
    python3 "$run" run "${opts[@]}" "$@" > /dev/null || true
    tail -n 1 "$log" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("%-28s %7.1f s  exit %3d  anon %5.0f MB  rss %5.0f MB  majflt %d  limit hits %d" % (r["label"], r["wall"], r["exit"], r["peak_anon_kb"]/1024, r["maxrss_kb"]/1024, r["majflt"], r["cg_limit_hits"]))' >&2
}

# place DIR [INDEX]: a fresh DIR holding Data.fs, a hard link to the file (what is run
# there renames it at most, never writes it), and INDEX (default the file's saved index)
# as Data.fs.index.
place() {
    rm -rf "$1"
    mkdir -p "$1"
    ln "$file" "$1/Data.fs"
    cp "${2:-$file.index}" "$1/Data.fs.index"
}

# grown_after_prepare DIR: DIR placed, its references saved (outside any measure), then
# the file grown by its continuation (the job cuts it off again with `truncate`).
grown_after_prepare() {
    place "$1"
    "$bin/zodbfs" -q pack --prepare "$1/Data.fs"
    cat "$tail" >> "$file"
}

last_tid_plus_one() {
    python3 - "$1" <<'PY'
import os, struct, sys
p = sys.argv[1]
with open(p, "rb") as f:
    f.seek(-8, 2)
    tl = struct.unpack(">Q", f.read(8))[0]
    f.seek(os.path.getsize(p) - 8 - tl)
    print("%016x" % (int.from_bytes(f.read(8), "big") + 1))
PY
}

for size in $sizes; do
    file="$work/gen-${size}G.fs"
    tail="$work/gen-${size}G.tail"
    bytes=$((size * 1000000000))
    if [[ ! -f "$file" ]]; then
        echo "generating $file" >&2
        "$bin/zfs-gen" "$file" --seed "$seed" --size "$bytes" >&2
        stat -c %s "$file" > "$file.size"
    fi
    S=$(cat "$file.size")
    # A run stopped in the middle of the backup chain leaves the file grown.
    truncate -s "$S" "$file"
    if [[ ! -f "$tail" ]]; then
        # What the file gains when 3% more history is written: appended for the
        # incremental backup (the database grows), cut off again afterwards.
        "$bin/zfs-gen" "$tail" --seed "$seed" --size $((bytes + bytes * 3 / 100)) --from-byte "$S" >&2
    fi
    G=$((S + $(stat -c %s "$tail")))
    # The saved index every job but reindex finds beside the file, as on a server.
    [[ -f "$file.index" ]] || "$bin/zodbfs" -q reindex "$file"
    out="$work/out-$size"
    rm -rf "$out"
    mkdir -p "$out"
    declare -A ref=()
    for job in $jobs; do
        case "$job" in
        dd)
            measure "dd-read ${size}G" cold --bytes-read "$S" -- dd if="$file" of=/dev/null bs=8M
            cat "$file" > /dev/null
            w=$((S < (2 << 30) ? S / (8 << 20) * (8 << 20) : 2 << 30))
            measure "dd-write ${size}G" warm --bytes-written "$w" -- \
                dd if="$file" of="$out/ddw" bs=8M count=$((w / (8 << 20))) conv=fsync
            rm -f "$out/ddw"
            ;;
        reindex | check | refs | stats)
            for mode in $modes; do
                case "$job" in
                reindex) cmd=("$bin/zodbfs" -q reindex -o "$out/reindex-$mode.index" "$file"); res="$out/reindex-$mode.index" ;;
                *) cmd=("$bin/zodbfs" -q "$job" --json "$file"); res="$out/$job-$mode.json" ;;
                esac
                measure "$job ${size}G" "$mode" --bytes-read "$S" --stdout "$out/$job-$mode.json" -- "${cmd[@]}"
                h="$(sha "$res")"
                same "$job" "$mode" "$h" "$job ${size}G $mode"
            done
            ;;
        prepare)
            for mode in $modes; do
                d="$out/prepare-$mode"
                place "$d"
                measure "prepare ${size}G" "$mode" --bytes-read "$S" -- \
                    "$bin/zodbfs" -q pack --prepare "$d/Data.fs"
                same prepare "$mode" "$(sha "$d/Data.fs.refs")" "prepare ${size}G $mode"
                # The saved references pack-prepared is given.
                mv "$d/Data.fs.refs" "$out/Data.fs.refs"
                rm -rf "$d"
            done
            ;;
        prepare-since)
            # The nightly prepare: references saved the night before (outside the measure),
            # the database grown since (the continuation appended, as the backup chain
            # does), and `pack --prepare` again: it reads only what was committed since
            # (its --json must say so) and saves what a prepare from scratch saves.
            for mode in $modes; do
                d="$out/prepare-since-$mode"
                grown_after_prepare "$d"
                INPUTS=("$tail")
                measure "prepare-since ${size}G" "$mode" --bytes-read "$((G - S))" \
                    --stdout "$out/prepare-since-$mode.json" -- \
                    "$bin/zodbfs" -q pack --prepare --json "$d/Data.fs"
                INPUTS=()
                if ! grep -q "\"read_from\":$S[,}]" "$out/prepare-since-$mode.json"; then
                    mismatch "prepare-since ${size}G $mode: it did not start at byte $S"
                fi
                if [[ -z "${ref[prepare-grown]:-}" ]]; then
                    # From scratch, once: the grown file without saved references.
                    g="$out/prepare-grown"
                    place "$g"
                    "$bin/zodbfs" -q pack --prepare "$g/Data.fs"
                    ref[prepare-grown]="$(sha "$g/Data.fs.refs")"
                    rm -rf "$g"
                fi
                [[ "$(sha "$d/Data.fs.refs")" == "${ref[prepare-grown]}" ]] ||
                    mismatch "prepare-since ${size}G $mode: not what a prepare from scratch saves"
                truncate -s "$S" "$file"
                rm -rf "$d"
            done
            ;;
        pack-grown)
            # The pack after a pack: references saved for the file as it was (what the last
            # pack, or a prepare, left; saved outside the measure), the database grown since
            # by its continuation, with the index ZODB saves on close. The pack reads the
            # transactions committed since, then the file once; its --json must say
            # "used", and its output must be the usual pack's of the grown file.
            for mode in $modes; do
                d="$out/pack-grown-$mode"
                grown_after_prepare "$d"
                [[ -f "$file.grown.index" ]] || "$bin/zodbfs" -q reindex -o "$file.grown.index" "$file"
                cp "$file.grown.index" "$d/Data.fs.index"
                stop="$(last_tid_plus_one "$file")"
                if [[ -z "${ref[pack-grown]:-}" ]]; then
                    # The usual pack of the grown file, once, outside the measure.
                    g="$out/pack-grown-usual"
                    place "$g" "$file.grown.index"
                    "$bin/zodbfs" -q pack "$g/Data.fs" --tid "$stop"
                    ref[pack-grown]="$(sha "$g/Data.fs") $(sha "$g/Data.fs.index")"
                    ref[pack-grown-size]="$(stat -c %s "$g/Data.fs")"
                    rm -rf "$g"
                fi
                measure "pack-grown ${size}G" "$mode" --bytes-read "$G" --bytes-written "${ref[pack-grown-size]}" \
                    --stdout "$out/pack-grown-$mode.json" -- \
                    "$bin/zodbfs" -q pack --json "$d/Data.fs" --tid "$stop"
                grep -q '"saved_references":"used"' "$out/pack-grown-$mode.json" ||
                    mismatch "pack-grown ${size}G $mode: the saved references were not used"
                [[ "$(sha "$d/Data.fs") $(sha "$d/Data.fs.index")" == "${ref[pack-grown]}" ]] ||
                    mismatch "pack-grown ${size}G $mode: not the usual pack's output"
                truncate -s "$S" "$file"
                rm -rf "$d"
            done
            ;;
        pack | pack-nogc | pack-prepared)
            stop="$(last_tid_plus_one "$file")"
            nogc=()
            [[ $job == pack-nogc ]] && nogc=(--no-gc)
            if [[ $job == pack-prepared && ! -f "$out/Data.fs.refs" ]]; then
                # Without a prepare job before it: saved once, outside the measure.
                d="$out/prepare-once"
                place "$d"
                "$bin/zodbfs" -q pack --prepare "$d/Data.fs"
                mv "$d/Data.fs.refs" "$out/Data.fs.refs"
                rm -rf "$d"
            fi
            for mode in $modes; do
                d="$out/$job-$mode"
                # A live database has its saved index beside it (ZODB writes it on close).
                [[ -f "$file.index" ]] || "$bin/zodbfs" -q reindex "$file"
                place "$d"
                [[ $job == pack-prepared ]] && cp "$out/Data.fs.refs" "$d/Data.fs.refs"
                # The floor (of cold runs) counts the bytes the pack writes: the free run's
                # packed size, or, without a free run, the size a dry run foresees (before
                # the caches are dropped).
                if [[ -z "${ref[$job-size]:-}" && $mode != free ]]; then
                    ref[$job-size]="$("$bin/zodbfs" -q pack --dry-run --json "$d/Data.fs" \
                        --tid "$stop" "${nogc[@]}" |
                        python3 -c 'import json, sys; print(json.load(sys.stdin)["size_after"])')"
                fi
                packed="${ref[$job-size]:-$((S / 2))}"
                measure "$job ${size}G" "$mode" --bytes-read "$S" --bytes-written "$packed" \
                    --stdout "$out/$job-$mode.json" -- \
                    "$bin/zodbfs" -q pack --json "$d/Data.fs" --tid "$stop" "${nogc[@]}"
                if [[ $job == pack-prepared ]] && ! grep -q '"saved_references":"used"' "$out/$job-$mode.json"; then
                    mismatch "$job ${size}G $mode: the saved references were not used"
                fi
                h="$(sha "$d/Data.fs") $(sha "$d/Data.fs.index")"
                if [[ $job == pack-prepared && -n "${ref[pack]:-}" && "$h" != "${ref[pack]}" ]]; then
                    mismatch "$job ${size}G $mode: not the pack's output"
                fi
                [[ $mode == free ]] && ref[$job-size]="$(stat -c %s "$d/Data.fs")"
                same "$job" "$mode" "$h" "$job ${size}G $mode"
                rm -rf "$d"
            done
            ;;
        backup)
            for mode in $modes; do
                r="$out/repo-$mode"
                rm -rf "$r"
                mkdir -p "$r"
                measure "backup ${size}G" "$mode" --bytes-read "$S" --bytes-written "$S" -- \
                    "$bin/zodbfs-repozo" -B -F -r "$r" -f "$file"
                h="$(sha "$(ls "$r"/*.fs)")"
                same backup "$mode" "$h" "backup ${size}G $mode"
                # The database grows; the rest of the chain sees the grown file.
                cat "$tail" >> "$file"
                if [[ " $jobs " == *" incremental "* ]]; then
                    # Default mode: the repository and the source are checksummed first.
                    measure "incremental ${size}G" "$mode" --bytes-read $((2 * S + G - S)) --bytes-written $((G - S)) -- \
                        "$bin/zodbfs-repozo" -B -r "$r" -f "$file"
                    h="$(sha "$(ls "$r"/*.deltafs)")"
                    same incr "$mode" "$h" "incremental ${size}G $mode"
                fi
                if [[ " $jobs " == *" verify "* ]]; then
                    INPUTS=("$r"/*.fs "$r"/*.deltafs)
                    measure "verify ${size}G" "$mode" --bytes-read "$G" -- "$bin/zodbfs-repozo" -V -r "$r"
                    [[ "$(tail -n 1 "$log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["exit"])')" == 0 ]] || mismatch "verify ${size}G $mode"
                fi
                if [[ " $jobs " == *" restore "* ]]; then
                    # Room for the restored file: the source goes (its checksum stays), and
                    # the restored file, once found identical, takes its place.
                    h="$(sha "$file")"
                    rm -f "$file"
                    INPUTS=("$r"/*.fs "$r"/*.deltafs)
                    measure "restore ${size}G" "$mode" --bytes-read "$G" --bytes-written "$G" -- \
                        "$bin/zodbfs-repozo" -R -r "$r" -o "$out/restored.fs"
                    if [[ -f "$out/restored.fs" && "$(sha "$out/restored.fs")" == "$h" ]]; then
                        mv "$out/restored.fs" "$file"
                    else
                        mismatch "restore ${size}G $mode"
                        rm -f "$out/restored.fs"
                        "$bin/zfs-gen" "$file" --seed "$seed" --size "$bytes" >&2
                        cat "$tail" >> "$file"
                    fi
                    rm -f "$out/restored.fs.index"
                fi
                INPUTS=()
                truncate -s "$S" "$file"
                rm -rf "$r"
            done
            ;;
        incremental | verify | restore) ;;   # run within the backup chain above
        *) echo "unknown job $job" >&2; exit 2 ;;
        esac
    done
    rm -rf "$out"
    if [[ "${KEEP:-0}" != 1 ]]; then
        rm -f "$file" "$file.index" "$file.grown.index" "$file.size" "$tail"
    fi
done

python3 "$run" report "$log"
if [[ -s "$work/mismatches.txt" ]]; then
    echo "outputs differing from the run without a limit:" >&2
    cat "$work/mismatches.txt" >&2
    exit 1
fi
