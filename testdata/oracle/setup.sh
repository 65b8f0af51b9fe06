#!/usr/bin/env bash
# Create (or reuse) the virtualenv holding the pinned Python ZODB oracle.
#
#   testdata/oracle/setup.sh            -> last line of stdout: the venv's python
#
# The venv lives at ${ZFS_VENV:-<repo>/testdata/oracle/.venv}. A stamp file in
# the venv records a hash of requirements.txt and of the interpreter version;
# when it matches, nothing is installed and the script returns at once.
# Only `python3 -m venv` and pip (PyPI) are used. Set ZFS_PYTHON to choose the
# base interpreter (default: python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${ZFS_VENV:-$here/.venv}"
base_python="${ZFS_PYTHON:-python3}"
req="$here/requirements.txt"
stamp="$venv/.zfs-oracle-stamp"

want="$( { cat "$req"; "$base_python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

echo "setup.sh: building oracle virtualenv in $venv" >&2
rm -rf "$venv"
"$base_python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$req" >&2
# Fail loudly now rather than in the middle of a conformance run.
"$venv/bin/python" - >&2 <<'PY'
import importlib.metadata as md
for name, version in [("ZODB", "6.4"), ("zodbpickle", "4.5"), ("BTrees", "6.5"),
                      ("persistent", "6.9"), ("transaction", "5.1"),
                      ("collective.backup", "1.0.0a1")]:
    got = md.version(name)
    assert got == version, (name, got, version)
import ZODB.FileStorage, ZODB.serialize, zodbpickle.pickle  # noqa: F401
PY
echo "$want" > "$stamp"
echo "$venv/bin/python"
