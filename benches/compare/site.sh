#!/usr/bin/env bash
# Whole-site backup and restore against the tools sites use today, on the same trees.
#
#   benches/compare/site.sh [WORKDIR]      (default benches/work/site-bench; removed at the end)
#
# The site: a Data.fs and a bushy blob directory of BLOBS files (default 100000, mean
# size SIZE bytes, default 20000: about 2 GB), made by site_gen.py. After a first backup by
# each tool (not timed), NEW blobs (default 1000) are committed and each tool backs up
# again (timed), warm page cache for all:
#   - our `zodbfs backup -Qz --blobs --blob-backups` (incremental Data.fs + blob tree,
#     made durable with syncfs);
#   - `rsync -a --delete --link-dest` of the blob directory alone (what collective.backup
#     runs; no fsync);
#   - collective.backup 1.0.0a1 `backup` with Python repozo (repozo -Qz + that rsync).
# Then the newest point is restored: ours (`zodbfs restore --blob-backups --blobs-to`),
# against the floor (`cp -a` of the tree, `dd conv=fsync` of the Data.fs, `sync`) and
# collective.backup `restore`, each from the same state: everything written before synced
# and, as root, the page cache dropped (cold). Prints seconds and ratios, one line each.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
W="${1:-$root/benches/work/site-bench}"
BLOBS="${BLOBS:-100000}"
SIZE="${SIZE:-20000}"
NEW="${NEW:-1000}"
PY="$("$root/testdata/oracle/setup.sh" | tail -n 1)"
VB="$(dirname "$PY")"
Z="${ZODBFS:-$root/target/release/zodbfs}"
rm -rf "$W"
mkdir -p "$W"
cd "$W"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
timed() { local t0 t1; t0=$(now); "$@" > /dev/null 2>"$W/last.err" || { cat "$W/last.err"; exit 1; }; t1=$(now); secs "$t0" "$t1"; }

echo "making the site: $BLOBS blobs of mean $SIZE bytes"
python3 "$here/site_gen.py" site/var/filestorage/Data.fs site/var/blobstorage --blobs "$BLOBS" --size "$SIZE"
du -sh site/var/blobstorage | sed 's/^/blob directory: /'
cb() { (cd "$W/site" && env COLLECTIVE_BACKUP_VAR_DIR="$W/site/var" COLLECTIVE_BACKUP_REPOZO="$VB/repozo" \
    COLLECTIVE_BACKUP_KEEP=0 COLLECTIVE_BACKUP_LOCATION="$W/cb/backups" \
    COLLECTIVE_BACKUP_BLOBBACKUPLOCATION="$W/cb/blobstoragebackups" "$VB/collective-backup" "$@"); }
mkdir -p ours/repo rs cb
echo "first backups (not timed)"
"$Z" backup site/var/filestorage/Data.fs -r ours/repo -Qz --blobs site/var/blobstorage --blob-backups ours/bb > /dev/null 2>&1
rsync -a site/var/blobstorage rs/blobstorage.1/
cb backup -q
sleep 1.1
python3 "$here/site_gen.py" site/var/filestorage/Data.fs site/var/blobstorage --blobs "$NEW" --size "$SIZE" --seed 1
sync
echo "second backups: $NEW new blobs"
t_ours=$(timed "$Z" backup site/var/filestorage/Data.fs -r ours/repo -Qz --blobs site/var/blobstorage --blob-backups ours/bb)
t_rsync=$(timed rsync -a --delete --link-dest=../blobstorage.1 site/var/blobstorage rs/blobstorage.2/)
t_cb=$(timed cb backup -q)
echo "backup: ours $t_ours s (Data.fs + blobs), rsync --link-dest $t_rsync s (blobs only), collective.backup+Python repozo $t_cb s"
echo "backup ratios: rsync/ours $(python3 -c "print(f'{$t_rsync/$t_ours:.1f}')")x, collective.backup/ours $(python3 -c "print(f'{$t_cb/$t_ours:.1f}')")x"
# Each restore starts cold, with nothing of the earlier steps still being written.
settle() { sync; if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
tree="$(ls -d ours/bb/blobstorage.* | sort | tail -n 1)"
settle
t_restore=$(timed "$Z" restore ours/repo -o "$W/r-ours/Data.fs" --blob-backups ours/bb --blobs-to "$W/r-ours/blobstorage" --yes)
cmp site/var/filestorage/Data.fs r-ours/Data.fs
settle
t0=$(now); mkdir -p r-floor; cp -a "$tree/blobstorage" r-floor/blobstorage
dd if=site/var/filestorage/Data.fs of=r-floor/Data.fs bs=4M conv=fsync status=none; sync; t1=$(now)
t_floor=$(secs "$t0" "$t1")
mkdir -p r-cb
settle
t0=$(now)
(cd "$W/r-cb" && env COLLECTIVE_BACKUP_VAR_DIR="$W/r-cb/var" COLLECTIVE_BACKUP_REPOZO="$VB/repozo" \
    COLLECTIVE_BACKUP_LOCATION="$W/cb/backups" COLLECTIVE_BACKUP_BLOBBACKUPLOCATION="$W/cb/blobstoragebackups" \
    "$VB/collective-backup" restore -q --no-prompt > /dev/null 2>&1 < /dev/null)
t1=$(now); t_cbr=$(secs "$t0" "$t1")
echo "restore: ours $t_restore s, floor (cp -a + dd conv=fsync + sync) $t_floor s, collective.backup+Python repozo $t_cbr s"
echo "restore ratios: ours/floor $(python3 -c "print(f'{$t_restore/$t_floor:.2f}')"), collective.backup/ours $(python3 -c "print(f'{$t_cbr/$t_restore:.1f}')")x"
cd /
rm -rf "$W"
