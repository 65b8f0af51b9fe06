#!/usr/bin/env bash
# The Python wheel installed the ways ZODB sites install things, and driven by their backup
# wrappers: every case starts from a fresh environment and needs nothing but the wheel.
#
#   testdata/oracle/conformance_wheel.sh
#
# Cases:
#   pip      `python3 -m venv` + `pip install --no-index WHEEL`: bin/zodbfs --help and
#            --version (the commit of this tree), bin/zodbfs-repozo full and incremental
#            backup, verify, restore byte-identical; `python -m zodbfs`; zodbfs.find_bin;
#            the man pages and completions under the venv's share/ (when the wheel has them)
#   cron     bin/zodbfs-repozo by absolute path in an empty environment (`env -i`); a
#            symlink named repozo first on PATH
#   uv       `uv venv` + `uv pip install WHEEL`, and `uv tool install WHEEL`: both binaries
#            from the environment's and the tool's bin/, a backup/restore round trip
#   clash    ZODB (from PyPI, with its `repozo` console script) and the wheel in one venv, in
#            both install orders: bin/repozo stays ZODB's, bin/zodbfs-repozo is ours, and
#            uninstalling either leaves the other's program in place
#   collective.backup   (PyPI `collective-backup`) with COLLECTIVE_BACKUP_REPOZO set to
#            bin/zodbfs-repozo: backup (full), backup after growth (incremental .deltafsz),
#            restore (latest) and restore DATE, byte-identical; ZODB's repozo verifies the
#            repository and restores the same bytes; the same setting in pyproject.toml
#   buildout zc.buildout with a [repozo] part (zc.recipe.egg, entry-points =
#            repozo=zodbfs:repozo): bin/repozo runs ours, as collective.recipe.backup expects
#            (buildout keeps only the wheel's Python package: its copy of the binaries)
#
# The wheel: $ZODBFS_WHEEL (for example scripts/dist.sh's manylinux2014 wheel), else
# scripts/wheel.sh builds one for this machine (maturin without zig, on the release build
# conformance.sh has made: cargo relinks only the two binaries; its platform tag is this
# machine's glibc, and scripts/dist.sh checks the manylinux2014 build with auditwheel).
# PyPI is used for collective-backup, ZODB, zc.buildout and the release tools; the
# virtualenvs are made in the work directory.
#
# Environment:
#   ZODBFS_WHEEL        the wheel to test (default: build one, see above)
#   ORACLE_PY           the oracle's python (set by conformance.sh; else setup.sh runs)
#   WHEEL_SKIP          cases to leave out, e.g. "buildout uv"
#   CONFORMANCE_WORK    work directory (default: a temporary one, removed when all pass)
#
# Prints PASS/FAIL lines and ends with `conformance-wheel: N passed, M failed`.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

T0=$SECONDS
section() { echo "== $1 ($((SECONDS - T0)) s)"; }
work_is_temp=0
if [[ -z "${CONFORMANCE_WORK:-}" ]]; then
    W="$(mktemp -d "${TMPDIR:-/tmp}/zfs-wheel-conf.XXXXXX")"
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
    echo "conformance-wheel: $CONF_PASSED passed, $CONF_FAILED failed"
    [[ "$CONF_FAILED" == 0 ]]
    exit $?
}
skipped() { [[ " ${WHEEL_SKIP:-} " == *" $1 "* ]] && { echo "== $1: skipped (WHEEL_SKIP)"; }; }
# check NAME CMD...: PASS when CMD succeeds, else FAIL with its output.
check() {
    local name="$1" log="$W/log.$((CONF_PASSED + CONF_FAILED))"
    shift
    if "$@" > "$log" 2>&1; then
        conf_pass "$name"
    else
        echo "exit status $?; output:" >> "$log"
        conf_fail "$name" "$log"
    fi
}
pip_quiet=(--quiet --disable-pip-version-check --no-input)

# ------------------------------------------------------------------------ the wheel
section "wheel"
tools="$("$root/scripts/dist-tools.sh" 2> "$W/tools.log" | tail -n 1)" ||
    { conf_fail "release tools (scripts/dist-tools.sh)" "$W/tools.log"; finish; }
wheel="${ZODBFS_WHEEL:-}"
if [[ -z "$wheel" ]]; then
    t=$SECONDS
    wheel="$("$root/scripts/wheel.sh" "$W/wheel" --compatibility linux --auditwheel skip \
        2> "$W/wheel.log" | tail -n 1)" || { conf_fail "build the wheel (scripts/wheel.sh)" "$W/wheel.log"; finish; }
    echo "built $(basename "$wheel") in $((SECONDS - t)) s"
fi
[[ -f "$wheel" ]] || { conf_fail "wheel $wheel exists"; finish; }
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
echo "wheel: $wheel ($(stat -c %s "$wheel") bytes)"
wheel_has_docs=0
python3 -c 'import sys, zipfile
sys.exit(not any(n.endswith(".data/data/share/man/man1/zodbfs.1")
                 for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel" && wheel_has_docs=1
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"

# A growing Data.fs: the same seed with more transactions gives a longer file whose start is
# the shorter one, byte for byte.
conf_oracle_python
src="$W/src"
mkdir -p "$src"
{
    "$ORACLE_PY" "$here/gen_datafs.py" "$src/v1.fs" --seed 41 --txns 80 &&
    "$ORACLE_PY" "$here/gen_datafs.py" "$src/v2.fs" --seed 41 --txns 160 &&
    cmp -n "$(stat -c %s "$src/v1.fs")" "$src/v1.fs" "$src/v2.fs"
} > "$W/gen.log" 2>&1 || { conf_fail "generate a growing Data.fs" "$W/gen.log"; finish; }

# round_trip NAME REPOZO: full backup of v1, incremental after growth to v2, verify, restore
# of both states, byte-identical.
round_trip() {
    local name="$1" repozo="$2" d="$W/rt-$1"
    rm -rf "$d"
    mkdir -p "$d/repo"
    cp "$src/v1.fs" "$d/Data.fs"
    check "$name: full backup" "$repozo" -B -r "$d/repo" -f "$d/Data.fs"
    cp "$src/v2.fs" "$d/Data.fs"
    check "$name: incremental backup" "$repozo" -B -r "$d/repo" -f "$d/Data.fs"
    check "$name: one full and one incremental file" \
        test "$(ls "$d/repo" | grep -c '\.fs$') $(ls "$d/repo" | grep -c '\.deltafs$')" = "1 1"
    check "$name: verify" "$repozo" -V -r "$d/repo"
    check "$name: restore" "$repozo" -R -r "$d/repo" -o "$d/restored.fs"
    check "$name: restored file is byte-identical" cmp "$d/restored.fs" "$src/v2.fs"
    local first
    first="$(ls "$d/repo" | grep '\.fs$' | sed 's/\.fs$//')"
    check "$name: restore as of the full backup" \
        "$repozo" -R -r "$d/repo" -D "$first" -o "$d/restored1.fs"
    check "$name: ... is the first state, byte-identical" cmp "$d/restored1.fs" "$src/v1.fs"
}

# ------------------------------------------------------------------------ pip
if ! skipped pip; then
    section "pip"
    v="$W/pip-venv"
    python3 -m venv "$v"
    check "pip: install the wheel alone (--no-index)" \
        "$v/bin/pip" install "${pip_quiet[@]}" --no-index "$wheel"
    check "pip: bin/zodbfs --help" "$v/bin/zodbfs" --help
    "$v/bin/zodbfs" --version > "$W/version.txt" 2>&1
    check "pip: zodbfs --version names the version and commit" \
        grep -Eq "^zodbfs [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]{12}\)$" "$W/version.txt"
    if [[ -z "${ZODBFS_WHEEL:-}" ]]; then
        check "pip: ... the commit of this tree ($commit)" grep -q "(commit $commit)" "$W/version.txt"
    fi
    check "pip: bin/zodbfs-repozo --help" "$v/bin/zodbfs-repozo" --help
    check "pip: no bin/repozo from our wheel" test ! -e "$v/bin/repozo"
    check "pip: links no OpenSSL" bash -c "! ldd '$v/bin/zodbfs-repozo' | grep -Eq 'libssl|libcrypto'"
    round_trip pip "$v/bin/zodbfs-repozo"
    check "pip: python -m zodbfs --version" bash -c "'$v/bin/python' -m zodbfs --version | grep -q '^zodbfs '"
    found="$("$v/bin/python" -c 'import zodbfs; print(zodbfs.find_bin("zodbfs-repozo"))')"
    check "pip: zodbfs.find_bin finds the same zodbfs-repozo as bin/'s" test \
        "$("$found" --version)" = "$("$v/bin/zodbfs-repozo" --version)"
    if [[ "$wheel_has_docs" == 1 ]]; then
        check "pip: man pages in share/man/man1" test -s "$v/share/man/man1/zodbfs.1" -a \
            -s "$v/share/man/man1/zodbfs-repozo.1" -a -s "$v/share/man/man1/zodbfs-pack.1"
        check "pip: man finds zodbfs-repozo(1) with the venv's bin on PATH" \
            bash -c "PATH='$v/bin':/usr/bin:/bin MANPATH= man -w zodbfs-repozo | grep -q '^$v/share/man'"
        check "pip: bash completion in share/bash-completion" \
            grep -q "zodbfs" "$v/share/bash-completion/completions/zodbfs"
    else
        conf_skip "pip: man pages" "the wheel has no data files"
    fi
    check "pip: uninstall removes both binaries" bash -c \
        "'$v/bin/pip' uninstall ${pip_quiet[*]} -y zodbfs && test ! -e '$v/bin/zodbfs' -a ! -e '$v/bin/zodbfs-repozo'"
    pipv="$v"
fi

# ------------------------------------------------------------------------ cron
if ! skipped cron && [[ -n "${pipv:-}" ]]; then
    section "cron"
    "$pipv/bin/pip" install "${pip_quiet[@]}" --no-index "$wheel" > /dev/null 2>&1
    d="$W/cron"
    mkdir -p "$d/repo"
    cp "$src/v2.fs" "$d/Data.fs"
    # What a crontab line runs: an absolute path, cron's own PATH, no activated venv.
    check "cron: absolute path in an empty environment, backup" \
        env -i PATH=/usr/bin:/bin HOME="$d" "$pipv/bin/zodbfs-repozo" -B -z -r "$d/repo" -f "$d/Data.fs"
    check "cron: ... restore" \
        env -i PATH=/usr/bin:/bin HOME="$d" "$pipv/bin/zodbfs-repozo" -R -r "$d/repo" -o "$d/out.fs"
    check "cron: ... byte-identical" cmp "$d/out.fs" "$src/v2.fs"
    # A script that runs `repozo` from PATH: a symlink of our own that comes first.
    mkdir -p "$d/symbin"
    ln -s "$pipv/bin/zodbfs-repozo" "$d/symbin/repozo"
    check "cron: a symlink named repozo first on PATH runs ours" bash -c \
        "PATH='$d/symbin':/usr/bin:/bin repozo --version | grep -q '^zodbfs-repozo '"
fi

# ------------------------------------------------------------------------ uv
if ! skipped uv; then
    section "uv"
    uv="$tools/uv"
    export UV_CACHE_DIR="$W/uv-cache" UV_NO_PROGRESS=1
    v="$W/uv-venv"
    check "uv: uv venv" "$uv" venv --quiet --python "$(command -v python3)" "$v"
    check "uv: uv pip install the wheel (--offline)" \
        "$uv" pip install --quiet --offline --python "$v/bin/python" "$wheel"
    check "uv: bin/zodbfs --help" "$v/bin/zodbfs" --help
    round_trip uv "$v/bin/zodbfs-repozo"
    export UV_TOOL_DIR="$W/uv-tools" UV_TOOL_BIN_DIR="$W/uv-bin"
    check "uv: uv tool install the wheel (--offline)" \
        "$uv" tool install --quiet --offline --python "$(command -v python3)" "$wheel"
    check "uv tool: zodbfs --version" "$UV_TOOL_BIN_DIR/zodbfs" --version
    round_trip uv-tool "$UV_TOOL_BIN_DIR/zodbfs-repozo"
    check "uv tool: uninstall" "$uv" tool uninstall zodbfs
    check "uv tool: ... removes both binaries" \
        test ! -e "$UV_TOOL_BIN_DIR/zodbfs" -a ! -e "$UV_TOOL_BIN_DIR/zodbfs-repozo"
    unset UV_TOOL_DIR UV_TOOL_BIN_DIR
fi

# ------------------------------------------------------------------------ clash
# is_zodb_repozo FILE: ZODB's console script (Python text naming ZODB.scripts.repozo).
is_zodb_repozo() { head -c 4 "$1" | grep -qv $'\x7fELF' && grep -q 'ZODB.scripts.repozo' "$1"; }
if ! skipped clash; then
    section "clash with ZODB's repozo"
    v="$W/clash-venv"
    python3 -m venv "$v"
    check "clash: ZODB from PyPI, then the wheel" bash -c \
        "'$v/bin/pip' install ${pip_quiet[*]} ZODB && '$v/bin/pip' install ${pip_quiet[*]} --no-index '$wheel'"
    check "clash: bin/repozo is still ZODB's" is_zodb_repozo "$v/bin/repozo"
    check "clash: bin/zodbfs-repozo is ours" bash -c "'$v/bin/zodbfs-repozo' --version | grep -q '^zodbfs-repozo '"
    check "clash: uninstalling the wheel keeps ZODB's repozo" bash -c \
        "'$v/bin/pip' uninstall ${pip_quiet[*]} -y zodbfs && test -e '$v/bin/repozo' -a ! -e '$v/bin/zodbfs-repozo'"
    check "clash: the wheel, then ZODB again (reinstalled)" bash -c \
        "'$v/bin/pip' install ${pip_quiet[*]} --no-index '$wheel' && '$v/bin/pip' install ${pip_quiet[*]} --force-reinstall --no-deps ZODB"
    check "clash: both programs there" bash -c \
        "test -x '$v/bin/zodbfs-repozo' && grep -q 'ZODB.scripts.repozo' '$v/bin/repozo'"
    check "clash: uninstalling ZODB keeps zodbfs-repozo" bash -c \
        "'$v/bin/pip' uninstall ${pip_quiet[*]} -y ZODB && test -x '$v/bin/zodbfs-repozo' -a ! -e '$v/bin/repozo'"
fi

# ------------------------------------------------------------------------ collective.backup
if ! skipped collective.backup; then
    section "collective.backup"
    v="$W/cb-venv"
    python3 -m venv "$v"
    check "collective.backup: install collective-backup (PyPI) and the wheel" bash -c \
        "'$v/bin/pip' install ${pip_quiet[*]} collective-backup && '$v/bin/pip' install ${pip_quiet[*]} --no-index '$wheel'"
    "$v/bin/pip" list 2> /dev/null | grep -i -E '^(collective.backup|zodb) ' | tr -s ' ' | paste -sd' ' |
        sed 's/^/versions: /'
    site="$W/cb-site"
    mkdir -p "$site/var/filestorage"
    cp "$src/v1.fs" "$site/var/filestorage/Data.fs"
    cb() { (cd "$site" && env COLLECTIVE_BACKUP_REPOZO="$v/bin/zodbfs-repozo" \
        COLLECTIVE_BACKUP_BACKUP_BLOBS=false "$v/bin/collective-backup" "$@"); }
    cb show > "$W/cb-show.txt" 2>&1
    check "collective.backup: show names zodbfs-repozo" \
        grep -qF "'repozo': '$v/bin/zodbfs-repozo'" "$W/cb-show.txt"
    check "collective.backup: backup (full)" cb backup
    sleep 1
    cp "$src/v2.fs" "$site/var/filestorage/Data.fs"
    check "collective.backup: backup after growth" cb backup
    b="$site/var/backups"
    check "collective.backup: one .fsz and one .deltafsz (gzip, quick)" \
        test "$(ls "$b" | grep -c '\.fsz$') $(ls "$b" | grep -c '\.deltafsz$')" = "1 1"
    check "collective.backup: ZODB's repozo verifies the repository" \
        "$v/bin/repozo" -V -r "$b"
    check "collective.backup: ZODB's repozo restores the same bytes" bash -c \
        "'$v/bin/repozo' -R -r '$b' -o '$W/cb-python.fs' && cmp '$W/cb-python.fs' '$src/v2.fs'"
    rm -f "$site/var/filestorage/Data.fs" "$site/var/filestorage/Data.fs.index"
    check "collective.backup: restore (latest)" cb restore --no-prompt
    check "collective.backup: ... byte-identical" cmp "$site/var/filestorage/Data.fs" "$src/v2.fs"
    first="$(ls "$b" | grep '\.fsz$' | sed 's/\.fsz$//')"
    check "collective.backup: restore $first" cb restore --no-prompt "$first"
    check "collective.backup: ... byte-identical to the first state" \
        cmp "$site/var/filestorage/Data.fs" "$src/v1.fs"
    # The other way to say it: the [tool.collective-backup] table of pyproject.toml.
    printf '[tool.collective-backup]\nrepozo = "%s"\nbackup_blobs = false\n' \
        "$v/bin/zodbfs-repozo" > "$site/pyproject.toml"
    (cd "$site" && "$v/bin/collective-backup" show) > "$W/cb-show2.txt" 2>&1
    check "collective.backup: repozo from pyproject.toml's table" \
        grep -qF "'repozo': '$v/bin/zodbfs-repozo'" "$W/cb-show2.txt"
    rm -f "$site/pyproject.toml"
fi

# ------------------------------------------------------------------------ buildout
if ! skipped buildout; then
    section "buildout"
    v="$W/bo-venv"
    bo="$W/buildout"
    python3 -m venv "$v"
    mkdir -p "$bo/wheels" "$bo/var/filestorage"
    cp "$wheel" "$bo/wheels/"
    cat > "$bo/buildout.cfg" <<EOF
[buildout]
parts = repozo
find-links = $bo/wheels
newest = false
# Everything from this directory: without it, buildout reads PyPI's whole index when a
# project (zodbfs) is not on PyPI.
index = file://$bo/wheels

[repozo]
recipe = zc.recipe.egg
eggs = zodbfs
entry-points = repozo=zodbfs:repozo
scripts = repozo
EOF
    check "buildout: install zc.buildout, download zc.recipe.egg (PyPI)" bash -c \
        "'$v/bin/pip' install ${pip_quiet[*]} zc.buildout && '$v/bin/pip' download ${pip_quiet[*]} --no-deps -d '$bo/wheels' zc.recipe.egg"
    check "buildout: bin/buildout with the [repozo] part" \
        bash -c "cd '$bo' && '$v/bin/buildout' -N -q -c buildout.cfg"
    check "buildout: bin/repozo runs zodbfs-repozo" \
        bash -c "'$bo/bin/repozo' --version | grep -q '^zodbfs-repozo '"
    cp "$src/v2.fs" "$bo/var/filestorage/Data.fs"
    mkdir -p "$bo/var/backups"
    # What collective.recipe.backup runs: <buildout>/bin/repozo with repozo's options.
    check "buildout: bin/repozo --backup --quick --gzip" \
        "$bo/bin/repozo" --backup -f "$bo/var/filestorage/Data.fs" -r "$bo/var/backups" --quick --gzip
    check "buildout: bin/repozo --recover, byte-identical" bash -c \
        "'$bo/bin/repozo' --recover -o '$bo/restored.fs' -r '$bo/var/backups' && cmp '$bo/restored.fs' '$src/v2.fs'"
fi

finish
