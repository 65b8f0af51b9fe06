#!/usr/bin/env bash
# System packages the scripts use, installed only when missing (Debian/Ubuntu, apt):
#   time        GNU time, used by the comparison scripts in benches/compare/
#   faketime    a frozen clock for the repozo conformance suite
#   rsync       what collective.backup copies blob directories with (site conformance)
# The build needs nothing but a Rust toolchain (and the linker rustup expects): MD5 is our
# own Rust code, no OpenSSL.
# Rust itself comes from rustup; Python ZODB from testdata/oracle/setup.sh (PyPI).
set -euo pipefail
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v faketime >/dev/null || missing+=(faketime)
command -v rsync >/dev/null || missing+=(rsync)
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: ok"
