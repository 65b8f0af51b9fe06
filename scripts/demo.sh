#!/usr/bin/env bash
# The main job on a bundled example: a night in the life of a ZODB administrator, run on a
# copy of testdata/fixtures/undo.fs (a small Data.fs written by real ZODB, with undo records).
#
#   scripts/demo.sh            builds the release binaries, then:
#     1. zodbfs info         what the file holds
#     2. zodbfs check        integrity (exit 3 on damage)
#     3. zodbfs-repozo -B    full backup, then an incremental one after the file grew
#     4. zodbfs-repozo -V/-R verify the repository, restore it and compare with the source
#     5. zodbfs pack         pack a copy with garbage collection (keeps Data.fs.old)
#     6. zodbfs check        the packed file is sound
# Everything happens in a temporary directory, removed at the end (DEMO_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p zfs-cli
bin="$PWD/target/release"
work="$(mktemp -d)"
[[ "${DEMO_KEEP:-}" == 1 ]] || trap 'rm -rf "$work"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

fixture=testdata/fixtures/undo.fs
size=$(stat -c %s "$fixture")
# Start with the first half of the file's transactions, to let it "grow" before the second backup.
half=$(python3 - "$fixture" <<'PY' 2>/dev/null || echo 0
import struct, sys
d = open(sys.argv[1], 'rb').read(); pos = 4; ends = []
while pos + 16 <= len(d):
    tlen = struct.unpack('>Q', d[pos + 8:pos + 16])[0]; pos += tlen + 8; ends.append(pos)
print(ends[len(ends) // 2] if ends else 0)
PY
)
if [[ "$half" -gt 4 ]]; then head -c "$half" "$fixture" > "$work/Data.fs"; else cp "$fixture" "$work/Data.fs"; fi
mkdir "$work/backups"

run "$bin/zodbfs" info "$work/Data.fs"
run "$bin/zodbfs" check "$work/Data.fs"
run "$bin/zodbfs-repozo" -B -v -r "$work/backups" -f "$work/Data.fs"
cp "$fixture" "$work/Data.fs"   # the database grew overnight
sleep 1                         # repozo names backups by the second
run "$bin/zodbfs-repozo" -B -v -r "$work/backups" -f "$work/Data.fs"
run ls -l "$work/backups"
run "$bin/zodbfs-repozo" -V -r "$work/backups"
echo "every file of the repository matches its recorded size and MD5"
run "$bin/zodbfs-repozo" -R -r "$work/backups" -o "$work/Restored.fs"
run cmp "$work/Data.fs" "$work/Restored.fs"
echo "restored file is identical to the source ($size bytes)"
run "$bin/zodbfs" pack "$work/Restored.fs"
run "$bin/zodbfs" info "$work/Restored.fs"
run "$bin/zodbfs" check "$work/Restored.fs"
echo
echo "demo: done"
