#!/usr/bin/env bash
# Regenerate every committed fixture in testdata/fixtures from scratch:
# the .fs files (deterministic: same bytes on every run) and, for each,
# <name>.expected/ with ZODB's answers (expected.py).
#
#   testdata/oracle/make_fixtures.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fx="$(cd "$here/../fixtures" && pwd)"
py="$("$here/setup.sh" | tail -n 1)"
gen() { "$py" "$here/gen_datafs.py" "$@"; }

cd "$fx"
rm -rf ./*.fs ./*.expected ./*.blobdir

# ~100 transactions of everything except other databases and blobs;
# one record of ~120 kB.
gen small.fs --seed 1 --txns 100 --max-ops 4 --large-kb 120
# undo every 3rd step: backpointers, undone creations (plen=0 back=0),
# two records of one oid in one transaction (undoMultiple).
gen undo.fs --seed 2 --txns 40 --max-ops 4 --undo-every 3 --large-kb 0
# cross-database references; the other database is multidb-other.fs.
gen multidb.fs --seed 3 --txns 30 --max-ops 6 --multidb --large-kb 0
# blobs (small ones) in blobs.blobdir/.
gen blobs.fs --seed 4 --txns 25 --max-ops 4 --blobs "$fx/blobs.blobdir" \
    --blob-bytes 1500 --large-kb 0
rm -rf blobs.blobdir/tmp
# the last transaction cut in its middle.
gen torn.fs --seed 5 --txns 12 --max-ops 4 --tail torn --large-kb 0
# the last transaction has status 'c' (voted, never finished).
gen ctail.fs --seed 6 --txns 12 --max-ops 4 --tail c --large-kb 0
# only the magic.
printf 'FS30' > empty.fs

for f in *.fs; do
    "$py" "$here/expected.py" "$f" "${f%.fs}.expected" 2>/dev/null
done
echo "fixtures written to $fx:"
du -sh --apparent-size "$fx"
