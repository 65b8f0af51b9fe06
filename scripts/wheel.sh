#!/usr/bin/env bash
# Builds the Python wheel of zodbfs (pyproject.toml, maturin) in two passes:
#
#   scripts/wheel.sh OUTDIR [MATURIN_BUILD_OPTIONS...]
#
# 1. maturin builds both binaries and a first wheel;
# 2. from that wheel: its zodbfs writes the man pages and completions (generate-docs) into
#    zodbfs.data/data/ (the wheel's data files, installed under the environment's share/),
#    and both binaries are copied into python/zodbfs/bin/ as well, for installers that keep
#    only the Python package (buildout makes eggs of wheels and drops their scripts);
# 3. maturin packs the wheel again; cargo has nothing to rebuild.
#
# scripts/dist.sh passes `--zig --target x86_64-unknown-linux-gnu --compatibility
# manylinux2014`; testdata/oracle/conformance_wheel.sh builds for this machine. The
# release tools come from scripts/dist-tools.sh. Prints the wheel's path last.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
export PATH="$("$root/scripts/dist-tools.sh" | tail -n 1):$PATH"
cd "$root"

pkg_bin="$root/python/zodbfs/bin"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch" "$root/zodbfs.data" "$pkg_bin"' EXIT
rm -rf "$root/zodbfs.data" "$pkg_bin"

maturin build --release --locked --out "$scratch" "$@" >&2
python3 - "$scratch"/zodbfs-*.whl "$pkg_bin" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1:]
os.makedirs(dest)
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        parts = info.filename.split("/")
        if len(parts) == 3 and parts[0].endswith(".data") and parts[1] == "scripts":
            path = os.path.join(dest, parts[2])
            with z.open(info) as src, open(path, "wb") as dst:
                dst.write(src.read())
            os.chmod(path, 0o755)
PY
"$pkg_bin/zodbfs" generate-docs "$root/zodbfs.data/data" >&2
rm -f "$out"/zodbfs-*.whl
maturin build --release --locked --out "$out" "$@" >&2
ls "$out"/zodbfs-*.whl
