#!/usr/bin/env bash
# Release artefacts for x86-64 Linux with glibc 2.17 or later (manylinux2014):
#
#   scripts/dist.sh [OUTDIR]        (default: target/dist)
#
#   OUTDIR/zodbfs-VERSION-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#   OUTDIR/zodbfs-VERSION-x86_64-linux-gnu.tar.gz    bin/zodbfs, bin/zodbfs-repozo, share/man,
#                                                    share/{bash-completion,zsh,fish}, LICENSE,
#                                                    README.md, CHANGELOG.md
#   OUTDIR/SHA256SUMS
#
# 1. The release tools (maturin, ziglang, auditwheel from PyPI): scripts/dist-tools.sh.
# 2. scripts/wheel.sh: maturin builds both binaries with zig as the linker, against glibc
#    2.17, then packs them with the man pages and completions (`zodbfs generate-docs`).
# 3. `auditwheel show` must find the wheel manylinux_2_17 compliant; the binaries must need
#    no GLIBC symbol version above 2.17 and link no OpenSSL.
# 4. The tarball and the checksums.
#
# From a cold target/x86_64-unknown-linux-gnu: about 7 minutes on the shared 2-core machine
# (load 10 to 15; a fat-LTO build of everything for the zig target); 10 seconds when cargo
# has nothing to rebuild.
# ZODBFS_COMMIT / ZODBFS_COMMIT_DATE name the commit when this is not a git checkout.
# Prints the artefacts; the last line of stdout is the wheel's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$(mkdir -p "${1:-target/dist}" && cd "${1:-target/dist}" && pwd)"
target=x86_64-unknown-linux-gnu

export PATH="$("$root/scripts/dist-tools.sh" | tail -n 1):$PATH"     # auditwheel

export ZODBFS_COMMIT="${ZODBFS_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
export ZODBFS_COMMIT_DATE="${ZODBFS_COMMIT_DATE:-$(git log -1 --format=%cs 2>/dev/null || echo unknown)}"
version="$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "zfs-cli"))')"

# unpack WHEEL DIR: the wheel's scripts into DIR/bin, its data files into DIR (as pip does).
unpack() {
    python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
wheel, stage = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        parts = info.filename.split("/")
        if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("scripts", "data"):
            dest = os.path.join(stage, "bin" if parts[1] == "scripts" else "", *parts[2:])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(info) as src, open(dest, "wb") as dst:
                dst.write(src.read())
            os.chmod(dest, 0o755 if parts[1] == "scripts" else 0o644)
PY
}

t0=$SECONDS
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
echo "dist: building $version ($ZODBFS_COMMIT) for $target, glibc 2.17" >&2
wheel="$("$root/scripts/wheel.sh" "$out" --zig --target "$target" --strip \
    --compatibility manylinux2014 --auditwheel check | tail -n 1)"
echo "dist: wheel built in $((SECONDS - t0)) s" >&2

name="zodbfs-$version-x86_64-linux-gnu"
stage="$scratch/$name"
unpack "$wheel" "$stage"

# The binaries: glibc 2.17 at most, no OpenSSL.
for b in zodbfs zodbfs-repozo; do
    newest="$(objdump -T "$stage/bin/$b" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)"
    echo "dist: $b needs $newest at most; it links: $(objdump -p "$stage/bin/$b" |
        awk '/NEEDED/ { print $2 }' | paste -sd' ')" >&2
    if [[ "$(printf '%s\nGLIBC_2.17\n' "$newest" | sort -V | tail -n 1)" != GLIBC_2.17 ]]; then
        echo "dist: $b needs $newest, more than glibc 2.17" >&2
        exit 1
    fi
    if objdump -p "$stage/bin/$b" | grep -E 'NEEDED.*(ssl|crypto)'; then
        echo "dist: $b links OpenSSL" >&2
        exit 1
    fi
done
auditwheel show "$wheel" | tee "$out/auditwheel.txt" >&2
grep -q 'manylinux_2_17_x86_64' "$out/auditwheel.txt" ||
    { echo "dist: auditwheel does not find the wheel manylinux_2_17 compliant" >&2; exit 1; }

# The tarball: the wheel's (stripped) binaries and data files, with the documents.
cp LICENSE README.md CHANGELOG.md "$stage/"
tar -C "$scratch" --owner=0 --group=0 --numeric-owner --sort=name \
    --mtime="${ZODBFS_COMMIT_DATE/unknown/1970-01-01}" -czf "$out/$name.tar.gz" "$name"

(cd "$out" && sha256sum "$(basename "$wheel")" "$name.tar.gz" > SHA256SUMS)
echo "dist: done in $((SECONDS - t0)) s" >&2
ls -l "$out" >&2
cat "$out/SHA256SUMS" >&2
echo "$out/$name.tar.gz"
echo "$wheel"
