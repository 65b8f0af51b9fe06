#!/usr/bin/env bash
# Live conformance of whole-site backups (zodbfs backup/restore/list/prune with --blobs)
# against collective.backup 1.0.0a1 (PyPI, in setup.sh's venv) and Python repozo.
#
#   testdata/oracle/conformance_site.sh
#
# A site (Data.fs + blob directory) is made by real ZODB (gen_datafs.py --blobs) and grown
# by a real ZODB writer (site_writer.py), also while backups run. Checked:
#   1. ours -> theirs: collective.backup (pointed at our repozo with
#      COLLECTIVE_BACKUP_REPOZO) restores every point of our backups: the Data.fs byte for
#      byte as it was at that backup, the blob directory file for file;
#   2. theirs -> ours: collective.backup with Python repozo backs up, ours restores every
#      point the same way; our next backup extends their history (same directories);
#   3. backups taken while the writer commits: every point restores to a Data.fs whose
#      blobs are all there (`zodbfs check --blobs` passes), byte-identical to the source's
#      prefix;
#   4. prune: --dry-run lists exactly what the real run removes, and every point listed
#      afterwards still restores; `restore --drill` passes.
#
# Takes well under a minute on 2 cores once zodbfs is built.
#
# Environment:
#   ZODBFS             our zodbfs (default: cargo build --release); our repozo is beside it
#   CONFORMANCE_SEEDS  seed for the generated site (default: random, printed)
#   CONFORMANCE_WORK   work directory (default: a temporary one, removed when all pass)
#
# Ends with `conformance-site: N passed, M failed`; exits non-zero when something failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

T0=$SECONDS
work_is_temp=0
if [[ -z "${CONFORMANCE_WORK:-}" ]]; then
    W="$(mktemp -d "${TMPDIR:-/tmp}/zfs-site-conf.XXXXXX")"
    work_is_temp=1
else
    W="$CONFORMANCE_WORK"
    mkdir -p "$W"
fi
W="$(cd "$W" && pwd)"

finish() {
    if [[ "$work_is_temp" == 1 && "$CONF_FAILED" == 0 ]]; then
        rm -rf "$W"
    else
        echo "work directory kept: $W"
    fi
    echo "time: $((SECONDS - T0)) s"
    echo "conformance-site: $CONF_PASSED passed, $CONF_FAILED failed"
    [[ "$CONF_FAILED" == 0 ]]
    exit $?
}

if ! command -v rsync > /dev/null; then
    echo "installing rsync (apt-get)"
    { apt-get update -qq && apt-get install -y -qq rsync; } > "$W/apt.log" 2>&1 ||
        { conf_fail "install rsync" "$W/apt.log"; finish; }
fi
conf_oracle_python
venv_bin="$(dirname "$ORACLE_PY")"
CB="$venv_bin/collective-backup"
PYREPOZO="$venv_bin/repozo"
if [[ ! -x "$CB" ]]; then
    conf_fail "collective-backup is not in the oracle venv ($venv_bin)"
    finish
fi
if ! conf_zodbfs; then
    conf_fail "build zodbfs"
    finish
fi
Z=("${ZODBFS_CMD[@]}")
REPOZO="$(dirname "${ZODBFS_CMD[0]}")/zodbfs-repozo"
seed="${CONFORMANCE_SEEDS:-$(( (RANDOM << 15 | RANDOM) % 1000000 ))}"
seed="${seed%% *}"
echo "site seed: $seed (rerun with CONFORMANCE_SEEDS=$seed)"

gen() { "$ORACLE_PY" "$here/gen_datafs.py" "$@"; }
writer() { "$ORACLE_PY" "$here/site_writer.py" "$@"; }

# collective.backup in directory $1 (its var/ holds filestorage, blobstorage, backups).
cb() {
    local dir="$1" repozo="$2"
    shift 2
    (cd "$dir" && env COLLECTIVE_BACKUP_VAR_DIR="$dir/var" \
        COLLECTIVE_BACKUP_REPOZO="$repozo" COLLECTIVE_BACKUP_KEEP=0 \
        "$CB" "$@")
}

# snapshot NAME SITE: the Data.fs and blob directory of SITE as they are now.
snapshot() {
    local name="$1" site="$2"
    mkdir -p "$W/snap/$name"
    cp "$site/var/filestorage/Data.fs" "$W/snap/$name/Data.fs"
    rm -rf "$W/snap/$name/blobstorage"
    cp -a "$site/var/blobstorage" "$W/snap/$name/blobstorage"
}

# same_site NAME SNAPSHOT DATAFS BLOBDIR: byte-identical Data.fs, file for file blobs.
same_site() {
    local name="$1" snap="$2" fs="$3" blobs="$4"
    if cmp -s "$snap/Data.fs" "$fs"; then
        if diff -r "$snap/blobstorage" "$blobs" > "$W/diff.out" 2>&1; then
            conf_pass "$name"
        else
            conf_fail "$name (blobs differ)" "$W/diff.out"
        fi
    else
        { cmp "$snap/Data.fs" "$fs" 2>&1; echo "sizes: $(wc -c < "$snap/Data.fs") $(wc -c < "$fs" 2>/dev/null)"; } > "$W/cmp.out"
        conf_fail "$name (Data.fs differs)" "$W/cmp.out"
    fi
}

# ------------------------------------------------------------------ 1. ours -> theirs
echo "== ours -> collective.backup ($((SECONDS - T0)) s)"
S="$W/ours"
mkdir -p "$S/var/filestorage" "$S/var/backups"
gen "$S/var/filestorage/Data.fs" --seed "$seed" --txns 120 --blobs "$S/var/blobstorage" \
    --blob-bytes 20000 > "$W/gen.log" 2>&1 || { conf_fail "generate" "$W/gen.log"; finish; }
stamps=()
for i in 1 2 3; do
    if (( i > 1 )); then
        writer "$S/var/filestorage/Data.fs" "$S/var/blobstorage" --txns 6 --seed "$((seed + i))" \
            > "$W/writer.log" 2>&1 || conf_fail "writer $i" "$W/writer.log"
    fi
    sleep 1.1   # a new repozo stamp per backup
    extra=(); (( i == 1 )) || extra=(-Q)
    if conf_run "$W/b$i.json" "${Z[@]}" backup "$S/var/filestorage/Data.fs" -r "$S/var/backups" -z \
        "${extra[@]}" --blobs "$S/var/blobstorage" --blob-backups "$S/var/blobstoragebackups" --json; then
        conf_pass "ours: site backup $i"
    else
        conf_fail_status "ours: site backup $i" $? "$W/b$i.json"
    fi
    st="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stamp"])' "$W/b$i.json" 2>/dev/null)"
    stamps+=("$st")
    snapshot "ours-$st" "$S"
done
i=0
for st in "${stamps[@]}"; do
    i=$((i + 1))
    T="$W/theirs-restore-$i"
    mkdir -p "$T"
    (cd "$T" && env COLLECTIVE_BACKUP_VAR_DIR="$T/var" COLLECTIVE_BACKUP_REPOZO="$REPOZO" \
        COLLECTIVE_BACKUP_LOCATION="$S/var/backups" \
        COLLECTIVE_BACKUP_BLOBBACKUPLOCATION="$S/var/blobstoragebackups" \
        "$CB" restore --no-prompt "$st" > "$W/cbr$i.log" 2>&1 < /dev/null) ||
        conf_fail "collective.backup restores our point $st" "$W/cbr$i.log"
    same_site "collective.backup restores our point $i ($st)" "$W/snap/ours-$st" \
        "$T/var/filestorage/Data.fs" "$T/var/blobstorage"
done

# ------------------------------------------------------------------ 2. theirs -> ours
echo "== collective.backup -> ours ($((SECONDS - T0)) s)"
C="$W/theirs"
mkdir -p "$C/var/filestorage"
gen "$C/var/filestorage/Data.fs" --seed "$((seed + 7))" --txns 100 --blobs "$C/var/blobstorage" \
    --blob-bytes 20000 > "$W/gen2.log" 2>&1 || { conf_fail "generate 2" "$W/gen2.log"; finish; }
cstamps=()
for i in 1 2; do
    if (( i > 1 )); then
        writer "$C/var/filestorage/Data.fs" "$C/var/blobstorage" --txns 6 --seed "$((seed + 20 + i))" \
            > "$W/writer.log" 2>&1 || conf_fail "writer c$i" "$W/writer.log"
    fi
    sleep 1.1
    if cb "$C" "$PYREPOZO" backup > "$W/cbb$i.log" 2>&1 < /dev/null; then
        conf_pass "collective.backup with Python repozo: backup $i"
    else
        conf_fail "collective.backup with Python repozo: backup $i" "$W/cbb$i.log"
    fi
    st="$(ls "$C/var/backups" | grep -E '^[0-9-]{19}\.(delta)?fsz?$' | sort | tail -n 1)"
    st="${st%%.*}"
    cstamps+=("$st")
    snapshot "theirs-$st" "$C"
done
# Our backup extends their history in the same directories.
writer "$C/var/filestorage/Data.fs" "$C/var/blobstorage" --txns 4 --seed "$((seed + 30))" \
    > "$W/writer.log" 2>&1 || conf_fail "writer c3" "$W/writer.log"
sleep 1.1
if conf_run "$W/cb-ours.json" "${Z[@]}" backup "$C/var/filestorage/Data.fs" -r "$C/var/backups" -Qz \
    --blobs "$C/var/blobstorage" --blob-backups "$C/var/blobstoragebackups" --json; then
    st="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["stamp"], d["blobs"]["linked"])' "$W/cb-ours.json")"
    linked="${st#* }"; st="${st%% *}"
    cstamps+=("$st")
    snapshot "theirs-$st" "$C"
    if (( linked > 0 )); then
        conf_pass "ours extends a collective.backup history (linked $linked blobs to their tree)"
    else
        conf_fail "ours extends a collective.backup history (nothing linked)" "$W/cb-ours.json"
    fi
else
    conf_fail_status "ours extends a collective.backup history" $? "$W/cb-ours.json"
fi
i=0
for st in "${cstamps[@]}"; do
    i=$((i + 1))
    T="$W/ours-restore-$i"
    if conf_run "$W/or$i.out" "${Z[@]}" restore "$C/var/backups" -D "$st" -o "$T/Data.fs" \
        --blob-backups "$C/var/blobstoragebackups" --blobs-to "$T/blobstorage" --yes; then
        same_site "ours restores collective.backup point $i ($st)" "$W/snap/theirs-$st" \
            "$T/Data.fs" "$T/blobstorage"
    else
        conf_fail_status "ours restores collective.backup point $i ($st)" $? "$W/or$i.out"
    fi
    # And collective.backup restores the same point of the mixed history.
    T2="$W/theirs-restore-mixed-$i"
    mkdir -p "$T2"
    (cd "$T2" && env COLLECTIVE_BACKUP_VAR_DIR="$T2/var" COLLECTIVE_BACKUP_REPOZO="$PYREPOZO" \
        COLLECTIVE_BACKUP_LOCATION="$C/var/backups" \
        COLLECTIVE_BACKUP_BLOBBACKUPLOCATION="$C/var/blobstoragebackups" \
        "$CB" restore --no-prompt "$st" > "$W/cbm$i.log" 2>&1 < /dev/null) ||
        conf_fail "collective.backup restores mixed point $st" "$W/cbm$i.log"
    same_site "collective.backup restores mixed point $i ($st)" "$W/snap/theirs-$st" \
        "$T2/var/filestorage/Data.fs" "$T2/var/blobstorage"
done

# ------------------------------------------------------------------ 3. live writer
echo "== backups while ZODB commits ($((SECONDS - T0)) s)"
L="$W/live"
mkdir -p "$L/repo"
gen "$L/Data.fs" --seed "$((seed + 11))" --txns 80 --blobs "$L/blobstorage" --blob-bytes 20000 \
    > "$W/gen3.log" 2>&1 || { conf_fail "generate 3" "$W/gen3.log"; finish; }
writer "$L/Data.fs" "$L/blobstorage" --txns 400 --sleep 0.02 --seed "$((seed + 12))" \
    --stop-file "$L/stop" > "$W/livewriter.log" 2>&1 &
wpid=$!
sleep 0.5
lstamps=()
for i in 1 2 3 4; do
    sleep 1.1
    if conf_run "$W/lb$i.json" "${Z[@]}" backup "$L/Data.fs" -r "$L/repo" -Qz --blobs "$L/blobstorage" \
        --blob-backups "$L/bb" --json; then
        conf_pass "backup $i while ZODB commits (blob check clean)"
    else
        conf_fail_status "backup $i while ZODB commits" $? "$W/lb$i.json"
    fi
    lstamps+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stamp"])' "$W/lb$i.json" 2>/dev/null)")
done
touch "$L/stop"
wait "$wpid" || conf_fail "live writer" "$W/livewriter.log"
"${Z[@]}" list "$L/repo" --blob-backups "$L/bb" --json > "$W/list.json" 2> "$W/list.err"
for st in "${lstamps[@]}"; do
    T="$W/live-restore-$st"
    if conf_run "$W/lr.out" "${Z[@]}" restore "$L/repo" -D "$st" -o "$T/Data.fs" \
        --blob-backups "$L/bb" --blobs-to "$T/blobstorage" --yes; then
        size="$(python3 -c 'import json,sys; print([p["datafs_size"] for p in json.load(open(sys.argv[1]))["points"] if p["stamp"]==sys.argv[2]][0])' "$W/list.json" "$st")"
        if cmp -s -n "$size" "$L/Data.fs" "$T/Data.fs" && [[ "$(wc -c < "$T/Data.fs")" == "$size" ]]; then
            conf_pass "live point $st: Data.fs is the source's first $size bytes"
        else
            conf_fail "live point $st: Data.fs is not the source's prefix"
        fi
        if conf_run "$W/lc.out" "${Z[@]}" check "$T/Data.fs" --blobs "$T/blobstorage"; then
            conf_pass "live point $st: zodbfs check --blobs passes"
        else
            conf_fail_status "live point $st: zodbfs check --blobs" $? "$W/lc.out"
        fi
        # Every blob the restored Data.fs names is the source's file, byte for byte.
        if "$ORACLE_PY" - "$T/Data.fs" "$T/blobstorage" "$L/blobstorage" > "$W/blobs.out" 2>&1 <<'PY'
import filecmp, os, sys
import ZODB.FileStorage, ZODB.blob, ZODB.utils
fs = ZODB.FileStorage.FileStorage(sys.argv[1], read_only=True, blob_dir=sys.argv[2])
n = 0
for t in fs.iterator():
    for r in t:
        if r.data and ZODB.blob.is_blob_record(r.data):
            mine = fs.loadBlob(r.oid, r.tid)
            src = os.path.join(sys.argv[3], os.path.relpath(mine, sys.argv[2]))
            assert filecmp.cmp(mine, src, shallow=False), mine
            n += 1
fs.close()
print(n, "blobs equal")
PY
        then
            conf_pass "live point $st: ZODB loads every blob, equal to the source's ($(cat "$W/blobs.out"))"
        else
            conf_fail "live point $st: blobs as ZODB loads them" "$W/blobs.out"
        fi
    else
        conf_fail_status "restore live point $st" $? "$W/lr.out"
    fi
done

# ------------------------------------------------------------------ 4. prune, drill
echo "== prune and drill ($((SECONDS - T0)) s)"
for i in 1 2; do
    writer "$L/Data.fs" "$L/blobstorage" --txns 3 --seed "$((seed + 40 + i))" > "$W/writer.log" 2>&1
    sleep 1.1
    "${Z[@]}" backup "$L/Data.fs" -r "$L/repo" -F -z --blobs "$L/blobstorage" --blob-backups "$L/bb" \
        > "$W/full$i.out" 2>&1 || conf_fail "full backup $i" "$W/full$i.out"
done
"${Z[@]}" prune "$L/repo" --blob-backups "$L/bb" --keep 2 --dry-run --json > "$W/dry.json" 2> "$W/dry.err"
"${Z[@]}" prune "$L/repo" --blob-backups "$L/bb" --keep 2 < /dev/null > /dev/null 2> "$W/noyes.err"
if [[ $? == 2 ]]; then
    conf_pass "prune without --yes and without a terminal refuses (exit 2)"
else
    conf_fail "prune without --yes and without a terminal" "$W/noyes.err"
fi
find "$L/repo" "$L/bb" -mindepth 1 -maxdepth 1 | sort > "$W/before.txt"
"${Z[@]}" prune "$L/repo" --blob-backups "$L/bb" --keep 2 --yes --json > "$W/real.json" 2> "$W/real.err"
find "$L/repo" "$L/bb" -mindepth 1 -maxdepth 1 | sort > "$W/after.txt"
comm -23 "$W/before.txt" "$W/after.txt" > "$W/gone.txt"
python3 -c 'import json,sys; print("\n".join(sorted(r["path"] for r in json.load(open(sys.argv[1]))["plan"]["removals"])))' \
    "$W/dry.json" > "$W/dry.txt"
if [[ -s "$W/gone.txt" ]] && cmp -s "$W/dry.txt" "$W/gone.txt"; then
    conf_pass "prune --dry-run lists exactly what the real run removes ($(wc -l < "$W/gone.txt") entries)"
else
    diff "$W/dry.txt" "$W/gone.txt" > "$W/prune.diff"
    conf_fail "prune --dry-run lists exactly what the real run removes" "$W/prune.diff"
fi
"${Z[@]}" list "$L/repo" --blob-backups "$L/bb" --json > "$W/list2.json"
ok=1
for st in $(python3 -c 'import json,sys; print(" ".join(p["stamp"] for p in json.load(open(sys.argv[1]))["points"]))' "$W/list2.json"); do
    T="$W/pruned-restore-$st"
    "${Z[@]}" restore "$L/repo" -D "$st" -o "$T/Data.fs" --blob-backups "$L/bb" --blobs-to "$T/blobstorage" \
        --yes > "$W/pr.out" 2>&1 && "${Z[@]}" check "$T/Data.fs" --blobs "$T/blobstorage" >> "$W/pr.out" 2>&1 ||
        { ok=0; conf_fail "after prune: point $st restores and checks" "$W/pr.out"; }
done
[[ $ok == 1 ]] && conf_pass "after prune: every listed point restores and passes check --blobs"
if conf_run "$W/drill.out" "${Z[@]}" restore --drill "$L/repo" --blob-backups "$L/bb" --scratch "$W"; then
    conf_pass "restore --drill passes"
else
    conf_fail_status "restore --drill" $? "$W/drill.out"
fi
finish
