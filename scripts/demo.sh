#!/usr/bin/env bash
# The main job on a bundled example: a night in the life of a ZODB administrator, run on a
# copy of testdata/fixtures/undo.fs (a small Data.fs written by real ZODB, with undo records).
#
#   scripts/demo.sh            builds the release binaries (the first build takes a few
#                              minutes; cargo shows its progress), then:
#     1. zodbfs info         what the file holds
#     2. zodbfs check        integrity (exit 3 on damage)
#     3. zodbfs-repozo -B    full backup, then an incremental one after the file grew
#     4. zodbfs-repozo -V/-R verify the repository, restore it and compare with the source
#     5. zodbfs pack         pack a copy with garbage collection (keeps Data.fs.old)
#     6. zodbfs check        the packed file is sound
# Everything happens in a temporary directory, removed at the end (DEMO_KEEP=1 keeps it).
# Needs only what the build needs (no Python).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: building the release binaries (cargo build --release -p zfs-cli)" >&2
cargo build --release -p zfs-cli
bin="$PWD/target/release"
work="$(mktemp -d)"
[[ "${DEMO_KEEP:-}" == 1 ]] || trap 'rm -rf "$work"' EXIT
if [[ -t 1 ]]; then
    say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
    say() { printf '\n$ %s\n' "$*"; }
fi
run() { say "$*"; "$@"; }

fixture=testdata/fixtures/undo.fs
size=$(stat -c %s "$fixture")
# Start with the file as it was 20 transactions before its end (fstail's offset of that
# transaction is where it starts), to let it "grow" before the second backup.
half=$("$bin/zodbfs" tail -n 20 "$fixture" | grep -o 'offset=[0-9]*' | tail -n 1 | cut -d= -f2)
[[ "$half" -gt 4 ]] || { echo "demo: cannot find a transaction boundary in $fixture" >&2; exit 1; }
head -c "$half" "$fixture" > "$work/Data.fs"
mkdir "$work/backups"

run "$bin/zodbfs" info "$work/Data.fs"
run "$bin/zodbfs" check "$work/Data.fs"
run "$bin/zodbfs-repozo" -B -v -r "$work/backups" -f "$work/Data.fs"
cp "$fixture" "$work/Data.fs"   # the database grew overnight
sleep 1                         # repozo names backups by the second
run "$bin/zodbfs-repozo" -B -v -r "$work/backups" -f "$work/Data.fs"
ls "$work/backups" | grep -q '\.deltafs$' || { echo "demo: the second backup was not incremental" >&2; exit 1; }
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
