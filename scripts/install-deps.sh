#!/usr/bin/env bash
# System packages the scripts use, installed only when missing (Debian/Ubuntu, apt):
#   time        GNU time, used by the comparison scripts in benches/compare/
#   faketime    a frozen clock for the repozo conformance suite
# The default build needs nothing but a Rust toolchain (and the C compiler/linker rustup
# expects): MD5 is ours (AVX-512) or the pure-Rust md-5. Only the opt-in `openssl` feature
# of zfs-cli (`cargo build --features openssl`) needs OpenSSL's headers:
#   ZFS_WITH_OPENSSL=1 scripts/install-deps.sh   also installs libssl-dev and pkg-config.
# Rust itself comes from rustup; Python ZODB from testdata/oracle/setup.sh (PyPI).
set -euo pipefail
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v faketime >/dev/null || missing+=(faketime)
if [[ "${ZFS_WITH_OPENSSL:-}" == 1 ]]; then
    { command -v pkg-config >/dev/null && pkg-config --exists openssl; } || missing+=(libssl-dev pkg-config)
fi
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: ok"
