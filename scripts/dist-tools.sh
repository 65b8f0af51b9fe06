#!/usr/bin/env bash
# The virtualenv of release tools (maturin, ziglang, auditwheel, uv from PyPI, pinned in
# scripts/dist-requirements.txt), made once in target/dist-tools and remade when the pins
# change. Used by scripts/dist.sh and testdata/oracle/conformance_wheel.sh.
#
#   tools="$(scripts/dist-tools.sh | tail -n 1)"     -> the venv's bin/ directory
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${ZFS_DIST_TOOLS:-$root/target/dist-tools}"
req="$root/scripts/dist-requirements.txt"
want="$( { cat "$req"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$tools/bin/maturin" || "$(cat "$tools/.stamp" 2>/dev/null)" != "$want" ]]; then
    echo "dist-tools: installing the release tools into $tools (PyPI)" >&2
    rm -rf "$tools"
    python3 -m venv "$tools" >&2
    "$tools/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req" >&2
    echo "$want" > "$tools/.stamp"
fi
echo "$tools/bin"
