# Step: the booted snapshots (issue 13, instant start). Each guest booted by
# the first QEMU build in Node, on the host (not in the toolchain root), to
# its shell prompt and saved by QEMU's own migration to a file:
# $WORK/snapshots/<guest>.cprsnap (wasm/snapshot/make-snapshots.ts).
# The bytes differ from run to run (the guest's timing); the manifest
# records what they were made from.

SNAPSHOT_OUT=$WORK/snapshots

step_snapshot() {
    local build=${QEMU_BUILDS%% *}
    command -v node >/dev/null || die "the snapshot step runs the QEMU build in Node: install Node.js 20"
    [ -d "$REPO_DIR/node_modules/tsx" ] || (cd "$REPO_DIR" && npm ci --no-audit --no-fund)
    # The glue is an ES module named .js: Node loads it as one only under
    # a package.json that says so, which $WORK/out has not.
    local qemu=$WORK/snapshot-qemu
    rm -rf "$SNAPSHOT_OUT" "$qemu"
    mkdir -p "$qemu"
    cp "$WORK/out/$build"/qemu-system-*.js "$WORK/out/$build"/qemu-system-*.wasm "$qemu/"
    echo '{ "type": "module" }' > "$qemu/package.json"
    (cd "$REPO_DIR" && node --import tsx wasm/snapshot/make-snapshots.ts \
        "$qemu" "$GUEST_OUT" "$SNAPSHOT_OUT" "$build")
    rm -rf "$qemu"
}
