#!/usr/bin/env bash
# Builds native qemu-system-i386 (QEMU 10.2.2 + our patch series) with TCI,
# QEMU's bytecode interpreter, the same backend the wasm build runs: the
# native TCI-vs-TCG pair tells how much of the wasm build's slowness is the
# interpreter and how much is WebAssembly. The TCG build is the one
# wasm/native-check.sh makes.
#
# Usage: bash bench/native-qemu.sh
#   CPR_NATIVE_WORK  native-check's work dir (default /work/nativecheck); its
#                    patched/src is the source tree (run wasm/native-check.sh first)
#   CPR_BENCH_NATIVE where the TCI build goes (default $CPR_NATIVE_WORK/tci)
# Runs under nice -n 10 with -j2 (the machine is shared): 26 min here on 2
# cores busy with other builds (1734 ninja steps).
set -euo pipefail
WORK=${CPR_NATIVE_WORK:-/work/nativecheck}
SRC=$WORK/patched/src
OUT=${CPR_BENCH_NATIVE:-$WORK/tci}
die() { echo "native-qemu: error: $*" >&2; exit 1; }
[ -f "$SRC/configure" ] || die "no patched QEMU source at $SRC: run 'sudo bash wasm/native-check.sh' first (it makes the tree and installs the build dependencies)"
ARGS=(--target-list=i386-softmmu --enable-tcg-interpreter --disable-kvm
      --disable-docs --disable-download --disable-install-blobs --disable-tools
      --firmwarepath=/usr/share/seabios:/usr/lib/ipxe/qemu --python=/usr/bin/python3)
mkdir -p "$OUT"
want=$(printf '%s\n' "${ARGS[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$OUT/build.ninja" ] || [ "$(cat "$OUT/.cpr-bench-config" 2>/dev/null)" != "$want" ]; then
    rm -rf "$OUT"; mkdir -p "$OUT"
    (cd "$OUT" && nice -n 10 "$SRC/configure" "${ARGS[@]}") > "$OUT/../tci-configure.log" 2>&1 ||
        { tail -20 "$OUT/../tci-configure.log" >&2; die "configure failed"; }
    echo "$want" > "$OUT/.cpr-bench-config"
fi
(cd "$OUT" && nice -n 10 ninja -j2 qemu-system-i386)
grep -qE '^#define CONFIG_TCG_INTERPRETER( 1)?$' "$OUT/config-host.h" || die "the build is not TCI"
"$OUT/qemu-system-i386" --version | head -n1
echo "native-qemu: $OUT/qemu-system-i386 (TCI)"
