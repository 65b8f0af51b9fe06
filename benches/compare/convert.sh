#!/usr/bin/env bash
# Compare `zodbfs convert` with RelStorage's zodbconvert, and with the floor (PostgreSQL's own
# COPY FROM of the same rows from files), on FILE into a local throwaway PostgreSQL.
#
#   benches/compare/convert.sh FILE [hp|hf ...]      (default: hp hf)
#
# For each mode: a fresh database whose schema RelStorage makes; `zodbfs convert` timed
# (/usr/bin/time -v: wall time, peak RSS); the floor measured on ours (convert_floor.py:
# the rows written to files by the server, loaded into another fresh schema with the same
# keys, indexes and foreign keys dropped, then re-created); zodbconvert timed into a third
# database (history-free: plain zodbconvert first, and `--clear --incremental` when it stops
# with POSKeyError, as on any file with undo; the time of each is printed, the total
# includes both). With COMPARE=1 the
# sorted dumps of ours and zodbconvert's are compared (the conformance suite does this on
# smaller files). ZODBCONVERT=0 skips zodbconvert (hours on large files).
#
# The server runs with fsync and synchronous_commit off (testdata/oracle/pg.sh), the same
# for every side. ZODBFS: the command to time (default target/release/zodbfs). JOBS: --jobs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
src="${1:?usage: benches/compare/convert.sh FILE [hp|hf ...]}"
shift
modes=("$@")
((${#modes[@]})) || modes=(hp hf)
[[ -x /usr/bin/time ]] || { echo "install Debian 'time' (apt-get install time)" >&2; exit 1; }
read -r -a zodbfs <<< "${ZODBFS:-$repo/target/release/zodbfs}"
[[ -x "${zodbfs[0]}" ]] || (cd "$repo" && cargo build --release -q -p zfs-cli)
# shellcheck source=/dev/null
source "$repo/testdata/oracle/pg.sh"
pg_install_if_missing
rs_py="$("$repo/testdata/oracle/setup_relstorage.sh" | tail -n 1)"
tool=("$rs_py" "$repo/testdata/oracle/relstorage_tool.py")
work="$(mktemp -d "${TMPDIR:-/tmp}/convert-compare.XXXXXX")"
trap 'pg_stop; rm -rf "$work"' EXIT
pg_start "$work/pg"
floor="$work/floor"
mkdir -p "$floor"
[[ $(id -u) == 0 ]] && chown postgres "$floor"
cat "$src" > /dev/null
secs() { awk -F': ' '/Elapsed/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$1"; }
rss() { awk '/Maximum resident/ {print int($6 / 1024) " MB"}' "$1"; }
echo "file: $src ($(stat -c %s "$src") bytes); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in "${modes[@]}"; do
    pg_recreate_db "ours_$mode" 2>/dev/null
    "${tool[@]}" schema "$(pg_dsn "ours_$mode")" "$mode"
    /usr/bin/time -v "${zodbfs[@]}" -q convert "$src" "$(pg_url "ours_$mode")" \
        --jobs "${JOBS:-2}" --json > "$work/ours_$mode.json" 2> "$work/ours_$mode.time"
    echo "$mode ours: $(secs "$work/ours_$mode.time") s, peak RSS $(rss "$work/ours_$mode.time")"
    pg_recreate_db "floor_$mode" 2>/dev/null
    "${tool[@]}" schema "$(pg_dsn "floor_$mode")" "$mode"
    "$rs_py" "$here/convert_floor.py" "$(pg_dsn "ours_$mode")" "$(pg_dsn "floor_$mode")" \
        "$mode" "$floor" | sed "s/^/$mode floor: /"
    rm -f "$floor"/*.bin
    if [[ "${ZODBCONVERT:-1}" != 0 ]]; then
        pg_recreate_db "zodb_$mode" 2>/dev/null
        /usr/bin/time -v "${tool[@]}" zodbconvert "$src" "$(pg_dsn "zodb_$mode")" "$mode" \
            "$work" --timed 1 > "$work/zodb_$mode.out" 2> "$work/zodb_$mode.time"
        echo "$mode zodbconvert ($(cat "$work/zodb_$mode.out")): $(secs "$work/zodb_$mode.time") s"
        if [[ "${COMPARE:-0}" == 1 ]]; then
            mo="$("${tool[@]}" maxoid "$src")"
            PATH="$PG_BIN:$PATH" "${tool[@]}" dump "$(pg_dsn "ours_$mode")" "$work/d_ours" --maxoid "$mo"
            PATH="$PG_BIN:$PATH" "${tool[@]}" dump "$(pg_dsn "zodb_$mode")" "$work/d_zodb" --maxoid "$mo"
            if diff -r -x sequence-raw.txt "$work/d_ours" "$work/d_zodb" > /dev/null; then
                echo "$mode tables: identical"
            else
                echo "$mode tables: DIFFERENT"
            fi
            rm -rf "$work/d_ours" "$work/d_zodb"
        fi
    fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
