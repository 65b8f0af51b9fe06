#!/usr/bin/env bash
# Create (or reuse) the virtualenv of the RelStorage oracle: the pinned ZODB of
# requirements.txt plus RelStorage and psycopg2-binary (requirements-relstorage.txt).
#
#   testdata/oracle/setup_relstorage.sh   -> last line of stdout: the venv's python
#
# The venv lives at ${ZFS_RS_VENV:-<repo>/testdata/oracle/.venv-relstorage}; a stamp (hash of
# both requirement files and of the Python version) makes a second run return at once.
# RelStorage 4.3 needs Python >= 3.10. ZFS_PYTHON chooses the base interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${ZFS_RS_VENV:-$here/.venv-relstorage}"
base_python="${ZFS_PYTHON:-python3}"
stamp="$venv/.zfs-relstorage-stamp"

want="$( { cat "$here/requirements.txt" "$here/requirements-relstorage.txt"
           "$base_python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

echo "setup_relstorage.sh: building the RelStorage virtualenv in $venv" >&2
rm -rf "$venv"
"$base_python" -m venv "$venv" >&2
(cd "$here" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r requirements-relstorage.txt >&2)
"$venv/bin/python" - >&2 <<'PY'
import importlib.metadata as md
for name, version in [("ZODB", "6.4"), ("RelStorage", "4.3.0"), ("psycopg2-binary", "2.9.13")]:
    got = md.version(name)
    assert got == version, (name, got, version)
import relstorage.adapters.postgresql, psycopg2  # noqa: F401
PY
echo "$want" > "$stamp"
echo "$venv/bin/python"
