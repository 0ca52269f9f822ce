# Step: QEMU itself. The pristine Debian source plus our patch series
# (wasm/patches/*.patch, in order), cross-built with TCI for the 32-bit
# targets, linked as ES modules with wasm-opt.

QEMU_SPEC=qemu=1:10.2.2+ds-1
QEMU_TARGETS="arm-softmmu i386-softmmu"
# The build's name, shown by `info version` as "10.2.2 (cpr-playground v1)".
QEMU_BUILD_NAME=v1

# Added after the flags configure sets for Emscripten. MODULARIZE lets the
# worker create an instance with its own I/O and arguments, and a second
# one later; -O2 runs wasm-opt, which halves the size after Asyncify.
# No EXIT_RUNTIME: with PROXY_TO_PTHREAD it would run QEMU's atexit
# handlers on the module's main thread, where they deadlock waiting for
# QEMU's own thread; without it exit() still reports its status (onExit).
QEMU_LDFLAGS="-L/build/sysroot/lib -O2 -sMODULARIZE=1 -sEXPORT_NAME=createQemu
 --js-library=/build/emscripten/exit.js
 -sEXPORTED_RUNTIME_METHODS=FS,ENV,PThread,addFunction,removeFunction
 -sENVIRONMENT=web,worker,node"

qemu_prepare_tree() {
    local stage=$ROOT/build/qemu-stage
    rm -rf "$stage"
    cp -a "$(source_dir $QEMU_SPEC)" "$stage"
    rm -rf "$stage/.pc"
    mkdir -p "$ROOT/build/patches"
    rm -f "$ROOT/build/patches/"*.patch
    if ls "$WASM_DIR"/patches/*.patch >/dev/null 2>&1; then
        cp "$WASM_DIR"/patches/*.patch "$ROOT/build/patches/"
        in_root_sh "cd /build/qemu-stage && for p in /build/patches/*.patch; do
                git apply --whitespace=nowarn \"\$p\" || { echo \"patch \$(basename \$p) does not apply\" >&2; exit 1; }
            done" || die "the patch series does not apply to $QEMU_SPEC"
    fi
    # libfdt: QEMU's own dtc subproject, fed from Debian's source package
    # instead of a git download; QEMU builds it as a static library.
    cp -a "$(source_dir device-tree-compiler=1.7.2-2)" "$stage/subprojects/dtc"
    patch -s -p1 -d "$stage/subprojects/dtc" < "$WASM_DIR/deps-patches/dtc-static-subproject.patch"
    # Keep timestamps of unchanged files so ninja rebuilds only what the
    # patches touched.
    mkdir -p "$ROOT/build/qemu-src"
    in_root rsync -rlc --delete /build/qemu-stage/ /build/qemu-src/
    rm -rf "$stage"
}

qemu_configure() {
    local ld
    ld=$(echo $QEMU_LDFLAGS)
    in_cross "mkdir -p /build/qemu-build && cd /build/qemu-build
        emconfigure ../qemu-src/configure --static --disable-tools --disable-docs \
            --enable-tcg-interpreter --disable-install-blobs --disable-download \
            --enable-fdt=internal --disable-sdl --disable-gtk --disable-vnc \
            --extra-cflags=-I/build/sysroot/include \
            --with-pkgversion='cpr-playground $QEMU_BUILD_NAME' \
            --target-list='${QEMU_TARGETS// /,}' --extra-ldflags='$ld' \
            > configure.log 2>&1 || { tail -40 configure.log; exit 1; }" ||
        die "QEMU configure failed, see $ROOT/build/qemu-build/configure.log"
}

step_qemu() {
    qemu_prepare_tree
    rm -rf "$ROOT/build/emscripten"
    cp -a "$WASM_DIR/emscripten" "$ROOT/build/emscripten"
    # Reconfigure when the configure inputs (this file, configure) changed.
    local cfg_hash
    cfg_hash=$( (echo "$QEMU_TARGETS $QEMU_LDFLAGS $QEMU_BUILD_NAME"
                 cat "$ROOT/build/qemu-src/configure") | sha256sum | cut -c1-16)
    if [ "$(cat "$ROOT/build/qemu-build/.cpr-config" 2>/dev/null)" != "$cfg_hash" ]; then
        # In place: ninja then recompiles only what the new flags change.
        qemu_configure
        echo "$cfg_hash" > "$ROOT/build/qemu-build/.cpr-config"
    fi
    # The JS libraries are link inputs ninja does not know of: relink always
    # (the step runs only when an input changed).
    rm -f "$ROOT"/build/qemu-build/qemu-system-*.js
    # ccache (Debian's emscripten pulls it into the root) under emcc's clang:
    # a reconfigure otherwise recompiles all of QEMU (~10 min), even for a
    # link flag.
    in_cross "cd /build/qemu-build
        if command -v ccache >/dev/null; then export EM_COMPILER_WRAPPER=ccache CCACHE_DIR=/build/ccache CCACHE_BASEDIR=/build; fi
        ninja -j2 > build.log 2>&1 || { grep -B2 -A12 -m3 'error' build.log; exit 1; }" ||
        die "QEMU build failed, see $ROOT/build/qemu-build/build.log"
    mkdir -p "$WORK/out"
    local t
    for t in $QEMU_TARGETS; do
        t=qemu-system-${t%-softmmu}
        cp "$ROOT/build/qemu-build/$t.js" "$ROOT/build/qemu-build/$t.wasm" "$WORK/out/"
        log "  $t.wasm: $(stat -c %s "$WORK/out/$t.wasm") bytes"
    done
}
