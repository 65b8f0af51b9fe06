#!/usr/bin/env bash
# System packages the build and the scripts use, installed only when missing (Debian):
#   libssl-dev, pkg-config  OpenSSL's MD5 for repozo (the `openssl` feature of zfs-repozo,
#                           on by default; build with `--no-default-features` on zfs-repozo
#                           for the pure-Rust md-5 instead)
#   time                    GNU time, used by the comparison scripts in benches/compare/
#   faketime                a frozen clock for the repozo conformance suite
#   rsync                   what collective.backup copies blob directories with (site conformance)
# Rust itself comes from rustup; Python ZODB from testdata/oracle/setup.sh (PyPI).
set -euo pipefail
missing=()
{ command -v pkg-config >/dev/null && pkg-config --exists openssl; } || missing+=(libssl-dev pkg-config)
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
