#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 20) with the nightly toolchain, seeded with
# the committed fixtures. Installs cargo-fuzz when missing. Without a nightly toolchain it
# says so and exits 0: the property tests in `cargo test` still feed random and mutated files.
set -euo pipefail
secs=${1:-20}
cd "$(dirname "$0")"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain; skipped (property tests cover random inputs)"
  exit 0
fi
if ! cargo fuzz --help >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
fi
mkdir -p corpus/datafs corpus/index_file corpus/refs_file corpus/pickle corpus/repozo corpus/check corpus/recover corpus/pack corpus/pack_refs
cp ../testdata/fixtures/*.fs corpus/datafs/ 2>/dev/null || true
# The tolerant walkers: small files written by ZODB (up to 40 kB, so a run makes many
# executions) and every input committed for their replay tests.
for t in check recover pack; do
  find ../testdata/fixtures -name '*.fs' -size -40k \
    -exec cp {} "corpus/$t/" \; 2>/dev/null || true
done
cp ../zfs-check/tests/fuzzed/check/* corpus/check/ 2>/dev/null || true
cp ../zfs-check/tests/fuzzed/recover/* corpus/recover/ 2>/dev/null || true
cp ../zfs-pack/tests/fuzzed/pack/* corpus/pack/ 2>/dev/null || true
# A Data.fs and the mutations of its saved references: the committed seeds and findings.
cp ../zfs-pack/tests/fuzzed/pack_refs/* corpus/pack_refs/ 2>/dev/null || true
for d in ../testdata/fixtures/*.expected; do
  [ -f "$d/index" ] && cp "$d/index" "corpus/index_file/$(basename "$d" .expected).index"
done
# A checksum guards every references file: mutating valid ones is the way in.
cp ../zfs-format/tests/fuzzed/refs_file/* corpus/refs_file/ 2>/dev/null || true
printf '/r/2026-01-01-00-00-00.fs 0 4 0123456789abcdef0123456789abcdef\n' > corpus/repozo/dat
printf 'FS30' | gzip -9 > corpus/repozo/fsz
for t in datafs index_file refs_file pickle repozo check recover pack pack_refs; do
  echo "fuzz: $t for ${secs}s"
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=4096 2>&1 | tail -n 3
done
echo "fuzz: all targets ran without a crash"
