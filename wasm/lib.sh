# Shared helpers for the wasm build steps. Sourced, never run.
# Runs on the build host (Debian 12), outside the toolchain root.

set -euo pipefail

WASM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$WASM_DIR")
# Everything built lives here; reused between runs, never committed.
WORK=${CPR_WASM_WORK:-$WASM_DIR/.work}
ROOT=$WORK/root             # Debian sid root holding emscripten
SRC=$ROOT/build/src         # unpacked source packages (seen as /build/src inside)
STAMPS=$WORK/stamps
DIST=$WASM_DIR/dist         # committed, compressed artifacts

die() { echo "build:wasm: error: $*" >&2; exit 1; }
log() { echo "build:wasm: $*"; }

# The Debian mirror this machine's apt uses; never hard-coded in the repo.
debian_mirror() {
    local uri
    uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
    if [ -z "$uri" ]; then
        uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
              awk '{print $2}' | grep -v security | head -n1)
    fi
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt (sources.list or *.sources)"
    echo "$uri"
}

# Run a command inside the toolchain root, with /proc mounted.
in_root() {
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive EM_CACHE=/build/emcache "$@"
}

in_root_sh() { in_root /bin/bash -euo pipefail -c "$1"; }

APT_OPTS="-o Acquire::Check-Valid-Until=false -o APT::Get::Assume-Yes=true -o Dpkg::Use-Pty=0"

# step NAME FUNCTION [INPUT...]: run FUNCTION unless its stamp records the same
# inputs hash. Inputs are files or strings; a changed input reruns the step and
# every later step that lists this step's stamp as an input.
step() {
    local name=$1 fn=$2; shift 2
    local hash stamp=$STAMPS/$name t0
    mkdir -p "$STAMPS"
    # Inputs are named relative to the clone and the work dir, so that a
    # clone moved elsewhere or another clone sharing the work dir does not
    # rebuild everything.
    hash=$(for i in "$@"; do
               if [ -e "$i" ]; then
                   if [ -d "$i" ]; then find "$i" -type f -print0 | sort -z | xargs -0 sha256sum
                   else sha256sum "$i"; fi
               else echo "$i"; fi
           done | sed -e "s|  $REPO_DIR/|  |" -e "s|  $WORK/|  work:|" | sha256sum | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
        log "[$name] up to date"
        return 0
    fi
    log "[$name] start"
    t0=$(date +%s)
    "$fn"
    echo "$hash" > "$stamp"
    log "[$name] done in $(( $(date +%s) - t0 )) s"
}

# The QEMU patches in the order they apply, as paths under wasm/patches/:
# the main series (cpr-exec), the one-patch series "info version" and
# "QMP reads in chunks", the interpreter's series, then the one-patch
# series "start the next QEMU early" (it needs the main one's exec hook).
# A cover letter (0000-cover-letter.patch, no diff) is not applied.
QEMU_PATCH_SERIES=". info-version qmp-read tci-wasm tci-jit wasm64 cpr-early"
qemu_patches() {
    local s p
    for s in $QEMU_PATCH_SERIES; do
        for p in "$WASM_DIR/patches/$s"/*.patch; do
            [ -e "$p" ] || continue
            grep -q '^diff --git ' "$p" || continue
            echo "${p#"$WASM_DIR/patches/"}" | sed 's|^\./||'
        done
    done
}
