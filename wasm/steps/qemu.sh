# Step: QEMU itself. The pristine Debian source plus our patch series
# (wasm/patches/*.patch, then wasm/patches/info-version/*.patch, in
# order), cross-built with TCI, linked as ES modules with wasm-opt.

QEMU_SPEC=qemu=1:10.2.2+ds-1
# The targets of each wasm host (deps.sh). The 32-bit guests run on wasm32,
# where the interpreter's compiler (tcg/tci-jit.c) works; a 64-bit guest
# needs 64-bit TCG host registers, which QEMU ties to the pointer width:
# wasm64, whose Memory is still a 32-bit one (docs/build.md).
QEMU_TARGETS_wasm32="arm-softmmu i386-softmmu"
QEMU_TARGETS_wasm64="x86_64-softmmu aarch64-softmmu"
# The boards of the arm targets: the guests are virt machines, so every
# other board QEMU builds by default (all of them, when TCG is on) is left
# out, with the SoCs and devices only they select. Devices that are on by
# default (virtio, PCI cards) stay, so a user's -device works as before.
# Written into the tree as configs/devices/<target>/cpr-playground.mak.
QEMU_ARM_BOARDS_OFF="ALLWINNER_H3 ALLWINNER_R40 ASPEED_SOC B_L475E_IOT01A
 COLLIE CUBIEBOARD DIGIC EMCRAFT_SF2 EXYNOS4 FSL_IMX25 FSL_IMX31 FSL_IMX6UL
 FSL_IMX7 FSL_IMX8MP_EVK HIGHBANK INTEGRATOR MAX78000FTHR MICROBIT MPS2 MPS3R
 MUSCA MUSICPAL NETDUINO2 NETDUINOPLUS2 NPCM7XX NPCM8XX OLIMEX_STM32_H405
 RASPI REALVIEW SABRELITE SBSA_REF STELLARIS STM32VLDISCOVERY SX1 VERSATILE
 VEXPRESS XLNX_VERSAL XLNX_ZYNQMP_ARM ZYNQ"
QEMU_DEVICES_wasm32="--with-devices-arm=cpr-playground"
QEMU_DEVICES_wasm64="--with-devices-aarch64=cpr-playground"
# The builds: the same tree configured twice, differing in the name that
# `info version` shows ("10.2.2 (cpr-playground v2)"), so that a live
# update from one to the other is visible. The first is the default.
# Each has a build dir per host and one output dir ($WORK/out/<name>/),
# packaged as wasm/dist/qemu/<name>/.
QEMU_BUILDS="v1 v2"

# Added after the flags configure sets for Emscripten. MODULARIZE lets the
# worker create an instance with its own I/O and arguments, and a second
# one later; -O2 runs wasm-opt, which halves the size after Asyncify.
# No EXIT_RUNTIME: with PROXY_TO_PTHREAD it would run QEMU's atexit
# handlers on the module's main thread, where they deadlock waiting for
# QEMU's own thread; without it exit() still reports its status (onExit).
# pthread_cancel: at cpr-exec the host cancels QEMU's threads, so that
# their workers end at once (QEMU never calls it, and without it linked
# no wait in the build is a cancellation point).
# --emit-symbol-map: the wasm carries no names (they would add megabytes
# to every download); the map beside it (<target>.js.symbols, shipped in
# wasm/dist, not loaded by the page) names the functions of a profile.
QEMU_LDFLAGS="-O2 -sMODULARIZE=1 -sEXPORT_NAME=createQemu --emit-symbol-map
 --js-library=/build/emscripten/exit.js
 --js-library=/build/emscripten/memfd.js
 --js-library=/build/emscripten/cpr-exec.js -sIMPORTED_MEMORY=1
 -sEXPORTED_FUNCTIONS=_main,_pthread_cancel
 -sEXPORTED_RUNTIME_METHODS=FS,ENV,PThread,addFunction,removeFunction
 -sENVIRONMENT=web,worker,node"

# The second build of each 32-bit target is linked 256 MiB up: its static
# data, stack and heap live in [256 MiB, HEAP_LIMIT), the first build's
# below 256 MiB (the layout header's slot split, worker/qemu/memory.ts).
# So one can start while the other still runs, and a live update between
# them starts the next QEMU before the VM stops (the cpr-early series).
# The 64-bit targets' QEMU takes 256 MiB for TCG's code buffer alone
# (phys_mem / 8 of the 2 GiB Memory): it keeps one slot.
QEMU_SLOT_LDFLAGS_wasm32_v2="-sGLOBAL_BASE=268435456"

# decodetree.py, which generates the instruction decoders (decode-*.c.inc)
# at build time, orders them by iterating a Python set: with Python's
# random string hashing every build generated them in another order, and
# the arm wasm differed between two builds of the same tree. A fixed seed
# makes them reproducible. Configure (meson) and ninja (which runs
# decodetree) both get it; the in-root environment starts empty (env -i).
QEMU_PY_ENV="export PYTHONHASHSEED=0"

qemu_prepare_tree() {
    local stage=$ROOT/build/qemu-stage
    rm -rf "$stage"
    cp -a "$(source_dir $QEMU_SPEC)" "$stage"
    rm -rf "$stage/.pc"
    # The series (qemu_patches in lib.sh: the main one, then the "info
    # version" one; not the cover letter), applied in order inside the root.
    rm -rf "$ROOT/build/patches"
    mkdir -p "$ROOT/build/patches"
    cp -r "$WASM_DIR"/patches/. "$ROOT/build/patches/"
    local patches
    patches=$(qemu_patches)
    if [ -n "$patches" ]; then
        in_root_sh "cd /build/qemu-stage && for p in $(echo $patches); do
                git apply --whitespace=nowarn \"/build/patches/\$p\" || { echo \"patch \$p does not apply\" >&2; exit 1; }
            done" || die "the patch series does not apply to $QEMU_SPEC"
    fi
    local t b
    for t in arm aarch64; do
        { echo "# cpr-playground: QEMU's default boards, virt alone (wasm/steps/qemu.sh)."
          echo "include default.mak"
          for b in $QEMU_ARM_BOARDS_OFF; do echo "CONFIG_$b=n"; done
        } > "$stage/configs/devices/$t-softmmu/cpr-playground.mak"
    done
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

# The build dir of build $1 for host $2, inside the root. v1 on wasm32
# keeps the name it always had, so an existing build dir is reused.
qemu_build_dir() {
    case $2-$1 in
        wasm32-v1) echo /build/qemu-build ;;
        wasm32-*) echo "/build/qemu-build-$1" ;;
        *) echo "/build/qemu-build-$2-$1" ;;
    esac
}

# qemu_configure NAME HOST: configure build NAME for HOST in its build dir.
qemu_configure() {
    local ld dir cpu= targets devices
    local slot=QEMU_SLOT_LDFLAGS_$2_$1
    ld=$(echo -L$SYSROOT/lib $QEMU_LDFLAGS ${!slot:-})
    dir=$(qemu_build_dir "$1" "$2")
    targets=QEMU_TARGETS_$2
    devices=QEMU_DEVICES_$2
    [ "$2" = wasm64 ] && cpu="--cpu=wasm64 --wasm64-32bit-address-limit"
    in_cross "$QEMU_PY_ENV
        mkdir -p $dir && cd $dir
        emconfigure ../qemu-src/configure --static --disable-tools --disable-docs \
            --enable-tcg-interpreter --disable-install-blobs --disable-download \
            --enable-fdt=internal --disable-sdl --disable-gtk --disable-vnc $cpu ${!devices} \
            --extra-cflags=-I$SYSROOT/include \
            --with-pkgversion='cpr-playground $1' \
            --target-list='$(echo ${!targets} | tr ' ' ,)' --extra-ldflags='$ld' \
            > configure.log 2>&1 || { tail -40 configure.log; exit 1; }" ||
        die "QEMU configure of $1 for $2 failed, see $ROOT$dir/configure.log"
}

# qemu_build NAME HOST: (re)configure if needed, build, copy to $WORK/out/NAME/.
qemu_build() {
    local name=$1 host=$2 dir cfg_hash t t0 targets=QEMU_TARGETS_$2 devices=QEMU_DEVICES_$2
    use_host "$host"
    dir=$(qemu_build_dir "$name" "$host")
    t0=$(date +%s)
    # Reconfigure when the configure inputs (this file, configure) changed.
    local slot=QEMU_SLOT_LDFLAGS_${host}_$name
    cfg_hash=$( (echo "$host ${!targets} ${!devices} $QEMU_ARM_BOARDS_OFF $QEMU_LDFLAGS ${!slot:-} $QEMU_PY_ENV $name"
                 cat "$ROOT/build/qemu-src/configure") | sha256sum | cut -c1-16)
    if [ "$(cat "$ROOT$dir/.cpr-config" 2>/dev/null)" != "$cfg_hash" ]; then
        # In place: ninja then recompiles only what the new flags change.
        # ninja does not see an environment change: decoders generated
        # before (maybe under another hash seed) are deleted, so that
        # they are generated again under this one.
        [ ! -d "$ROOT$dir" ] || find "$ROOT$dir" -name 'decode-*.c.inc' -delete
        qemu_configure "$name" "$host"
        echo "$cfg_hash" > "$ROOT$dir/.cpr-config"
    fi
    # The JS libraries are link inputs ninja does not know of: relink when
    # they changed since this build dir's last link.
    local jslib
    jslib=$(cd "$ROOT/build/emscripten" && cat $(ls | LC_ALL=C sort) | sha256sum | cut -c1-16)
    if [ "$(cat "$ROOT$dir/.cpr-jslib" 2>/dev/null)" != "$jslib" ]; then
        rm -f "$ROOT$dir"/qemu-system-*.js
    fi
    # ccache (Debian's emscripten pulls it into the root) under emcc's clang:
    # a reconfigure otherwise recompiles all of QEMU (~10 min), even for a
    # link flag. The builds differ only in qemu-version.h, so a second
    # build dir compiles from the cache too; NOHASHDIR because with -g
    # ccache would otherwise key every object on its build dir.
    in_cross "$QEMU_PY_ENV
        cd $dir
        if command -v ccache >/dev/null; then
            export EM_COMPILER_WRAPPER=ccache CCACHE_DIR=/build/ccache CCACHE_BASEDIR=/build CCACHE_NOHASHDIR=true
        fi
        ninja -j2 > build.log 2>&1 || { grep -B2 -A12 -m3 'error' build.log; exit 1; }" ||
        die "QEMU build $name for $host failed, see $ROOT$dir/build.log"
    echo "$jslib" > "$ROOT$dir/.cpr-jslib"
    mkdir -p "$WORK/out/$name"
    for t in ${!targets}; do
        t=qemu-system-${t%-softmmu}
        cp "$ROOT$dir/$t.js" "$ROOT$dir/$t.wasm" "$ROOT$dir/$t.js.symbols" "$WORK/out/$name/"
        log "  $name/$t.wasm: $(stat -c %s "$WORK/out/$name/$t.wasm") bytes"
    done
    log "  build $name for $host done in $(( $(date +%s) - t0 )) s"
}

step_qemu() {
    qemu_prepare_tree
    rm -rf "$ROOT/build/emscripten"
    cp -a "$WASM_DIR/emscripten" "$ROOT/build/emscripten"
    # Outputs of the layout before there were several builds.
    rm -f "$WORK"/out/qemu-system-*
    local name host
    # Outputs of targets no longer built must not be packaged.
    for name in $QEMU_BUILDS; do rm -rf "${WORK:?}/out/$name"; done
    for host in $DEPS_HOSTS; do
        for name in $QEMU_BUILDS; do
            qemu_build "$name" "$host"
        done
    done
}
