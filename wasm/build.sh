#!/usr/bin/env bash
# npm run build:wasm: QEMU and guest images for the playground, from Debian's
# package archive alone. Each step is skipped when its inputs are unchanged.
# Usage: wasm/build.sh [STEP...]   (default: all steps)
source "$(dirname "$0")/lib.sh"
for f in "$WASM_DIR"/steps/*.sh; do source "$f"; done

[ "$(id -u)" = 0 ] || die "the build uses debootstrap and chroot: run it as root"
mkdir -p "$WORK"
# in_root mounts /proc in the root; leave no mount behind for tools that walk the tree.
trap 'mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"; true' EXIT

all() {
    step toolchain step_toolchain "$WASM_DIR/steps/toolchain.sh"
    step sources step_sources "$WASM_DIR/steps/sources.sh" "$WASM_DIR/sources.lock"
    step guest step_guest "$WASM_DIR/steps/guest.sh" "$WASM_DIR/guest" "$WASM_DIR/guest.lock" "$STAMPS/toolchain"
    step deps step_deps "$WASM_DIR/steps/deps.sh" "$WASM_DIR/deps-patches" "$STAMPS/sources"
    step qemu step_qemu "$WASM_DIR/steps/qemu.sh" "$WASM_DIR/patches" "$WASM_DIR/emscripten" "$STAMPS/deps"
    step snapshot step_snapshot "$WASM_DIR/steps/snapshot.sh" "$WASM_DIR/snapshot" "$REPO_DIR/worker/snapshot.ts" \
        "$REPO_DIR/worker/qemu/guests.ts" "$REPO_DIR/worker/qemu/consoles.ts" "$REPO_DIR/worker/qemu/ram-image.ts" \
        "$STAMPS/qemu" "$STAMPS/guest"
    step package step_package "$WASM_DIR/steps/package.sh" "$STAMPS/qemu" "$STAMPS/guest" "$STAMPS/snapshot"
}

if [ $# -eq 0 ]; then all; else for s in "$@"; do "step_$s"; done; fi
