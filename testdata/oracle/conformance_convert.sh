#!/usr/bin/env bash
# Differential test of `zodbfs convert` and `zodbfs export` against RelStorage's zodbconvert
# on a throwaway PostgreSQL.
#
#   testdata/oracle/conformance_convert.sh          # the short form (CI)
#   testdata/oracle/conformance_convert.sh --full   # every FS30 file of the corpus, bigger files
#
# Installs what is missing (Debian's postgresql; the RelStorage virtualenv of
# setup_relstorage.sh), starts PostgreSQL in a temporary directory as the unprivileged
# `postgres` user on a Unix socket, and stops it at the end. Cases (convert_conformance.py):
#   - every input (fixtures with undo, undone creations, deletions, blobs, a multi-database
#     pair, torn and 'c' tails; two generated files with blobs, heavy undo and cross-database
#     references; a sample of the real corpus, all of it with --full), history-preserving
#     and history-free: zodbconvert into one database, `zodbfs convert` into another (schema
#     made by RelStorage), sorted data-only dumps of every table, the large objects, the
#     sequence property and the schema compared; ZODB with RelStorage opens ours and loads
#     every object, revision and blob; zodbpack runs on it;
#   - export: `zodbfs export` of the database zodbconvert filled against zodbconvert's own
#     copy into a FileStorage, byte for byte, blob files too;
#   - refusals: a filled destination, the other mode, an unknown schema version, no schema;
#     --clear;
#   - kill -9 and SIGINT at random moments, resumed until done: identical to an
#     uninterrupted conversion (both modes);
#   - --pack-refs: RelStorage's pack then analyses no reference and ends as a pack that
#     analysed everything (generated files, both modes);
#   - --follow: half the file in bulk, the rest appended in pieces while following,
#     finished without --follow: identical to one conversion (both modes).
# Ends with `conformance-convert: N passed, M failed`.
#
# Environment: ZODBFS, CONFORMANCE_SEEDS (two seeds), CONFORMANCE_WORK, ZFS_CORPUS,
# CONVERT_CASES (a comma list of convert,packrefs,refuse,kill,follow; default all).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
form=ci
[[ "${1:-}" == "--full" ]] && form=full
summary_fail() { echo "conformance-convert: 0 passed, 1 failed"; exit 1; }
# shellcheck source=/dev/null
source "$here/lib.sh"
# shellcheck source=/dev/null
source "$here/pg.sh"

pg_install_if_missing || { echo "FAIL install postgresql"; summary_fail; }
RS_PY="$("$here/setup_relstorage.sh" | tail -n 1)"
[[ -x "$RS_PY" ]] || { echo "FAIL RelStorage virtualenv"; summary_fail; }
conf_zodbfs >&2 || summary_fail

keep_work=0
if [[ -n "${CONFORMANCE_WORK:-}" ]]; then
    work="$CONFORMANCE_WORK"
    keep_work=1
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/zfs-conf-convert.XXXXXX")"
fi
mkdir -p "$work"
pgdir="$(mktemp -d "${TMPDIR:-/tmp}/zfs-pg.XXXXXX")"
trap 'pg_stop; rm -rf "$pgdir"' EXIT
pg_start "$pgdir" || { echo "FAIL start postgresql"; summary_fail; }
corpus="$(conf_corpus_dir)"
seeds="${CONFORMANCE_SEEDS:-$((RANDOM % 100000)) $((RANDOM % 100000 + 100000))}"
echo "conformance_convert ($form) seeds: $seeds (rerun with CONFORMANCE_SEEDS=\"$seeds\")"
t0=$SECONDS
ZODBFS="${ZODBFS_CMD[*]}" "$RS_PY" "$here/convert_conformance.py" "$work" "$corpus" "$form" \
    $seeds | tee "$work/result.log"
line="$(grep -E '^result: [0-9]+ passed, [0-9]+ failed$' "$work/result.log" | tail -n 1)"
echo "time: $((SECONDS - t0)) s"
if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    p="${BASH_REMATCH[1]}"
    f="${BASH_REMATCH[2]}"
else
    p=0
    f=1
fi
if [[ "$f" == 0 && "$keep_work" == 0 ]]; then
    rm -rf "$work"
else
    echo "work directory kept: $work"
fi
echo "conformance-convert: $p passed, $f failed"
[[ "$f" == 0 ]]
