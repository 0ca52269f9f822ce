# Step: QEMU's libraries, cross-built with Emscripten as static archives,
# once per wasm host: wasm32 (32-bit pointers, the 32-bit guests' QEMU) into
# /build/sysroot, and wasm64 (64-bit pointers in a module whose memory stays
# 32-bit, -sMEMORY64=2; the 64-bit guests' QEMU) into /build/sysroot64.
# libfdt is not here: QEMU builds it as its dtc subproject (see qemu.sh).

DEPS_HOSTS="wasm32 wasm64"

# use_host HOST: the sysroot, cross file, build dir and flags of that host.
use_host() {
    HOST_CPU=$1
    case $1 in
        wasm32) SYSROOT=/build/sysroot; HOST_FLAGS= ;;
        # 64-bit pointers and so 64-bit TCG host registers, while the Memory
        # stays a wasm32 one that every browser can share.
        wasm64) SYSROOT=/build/sysroot64; HOST_FLAGS=-sMEMORY64=2 ;;
        *) die "unknown wasm host $1" ;;
    esac
    CROSS_FILE=/build/cross-$1.meson
    DEPS_DIR=/build/deps-$1
    DEPS_CFLAGS="-O3 -pthread $HOST_FLAGS"
    DEPS_LDFLAGS="-pthread -sWASM_BIGINT -sASYNCIFY=1 $HOST_FLAGS -L$SYSROOT/lib"
}

# Meson cross file shared by glib, pixman and QEMU's configure.
write_cross_file() {
    cat > "$ROOT$CROSS_FILE" <<CROSS
[host_machine]
system = 'emscripten'
cpu_family = '$HOST_CPU'
cpu = '$HOST_CPU'
endian = 'little'

[binaries]
c = 'emcc'
cpp = 'em++'
ar = 'emar'
ranlib = 'emranlib'
pkg-config = ['pkg-config', '--static']

[properties]
needs_exe_wrapper = true
CROSS
}

# Run a build script inside the root with the cross environment set.
# The script is a double-quoted string: the host shell expands $ and
# backquotes in it first, even in its comments (a backquoted command in
# a comment ran on the host). Escape them (\$) to have the root see them.
in_cross() {
    in_root_sh "export PKG_CONFIG_PATH=$SYSROOT/lib/pkgconfig PKG_CONFIG_LIBDIR=$SYSROOT/lib/pkgconfig
        export EM_PKG_CONFIG_PATH=$SYSROOT/lib/pkgconfig CPATH=$SYSROOT/include
        export CFLAGS='$DEPS_CFLAGS' CXXFLAGS='$DEPS_CFLAGS' LDFLAGS='$DEPS_LDFLAGS'
        $1"
}

# fresh_copy PKGDIR NAME: a clean copy of an unpacked source to build in.
fresh_copy() {
    rm -rf "$ROOT$DEPS_DIR/$2"
    mkdir -p "$ROOT$DEPS_DIR"
    cp -a "$1" "$ROOT$DEPS_DIR/$2"
}

deps_zlib() {
    fresh_copy "$(source_dir zlib=1:1.3.dfsg+really1.3.2-3)" zlib
    in_cross "cd $DEPS_DIR/zlib && emconfigure ./configure --prefix=$SYSROOT --static >/dev/null
        emmake make -j2 install >/dev/null"
}

deps_libffi() {
    fresh_copy "$(source_dir libffi=3.5.2-4)" libffi
    in_cross "cd $DEPS_DIR/libffi && autoreconf -fi >/dev/null 2>&1
        emconfigure ./configure --host=$HOST_CPU-unknown-linux --prefix=$SYSROOT \
            --enable-static --disable-shared --disable-dependency-tracking \
            --disable-builddir --disable-multi-os-directory --disable-raw-api --disable-docs >/dev/null
        emmake make -j2 install >/dev/null"
}

deps_pcre2() {
    fresh_copy "$(source_dir pcre2=10.46-1~deb13u2)" pcre2
    in_cross "cd $DEPS_DIR/pcre2 && emconfigure ./configure --host=$HOST_CPU-unknown-linux \
            --prefix=$SYSROOT --enable-static --disable-shared --disable-jit \
            --enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32 --disable-pcre2grep-libz \
            --disable-pcre2grep-libbz2 --disable-pcre2test-libreadline >/dev/null
        emmake make -j2 libpcre2-8.la >/dev/null
        emmake make install-libLTLIBRARIES install-includeHEADERS install-nodist_includeHEADERS install-pkgconfigDATA >/dev/null"
}

deps_glib() {
    fresh_copy "$(source_dir glib2.0=2.88.0-1)" glib
    patch -s -p1 -d "$ROOT$DEPS_DIR/glib" < "$WASM_DIR/deps-patches/glib-unix-fd-query-path-emscripten.patch"
    # A function called through a pointer of another signature traps on
    # wasm (call_indirect checks it): destroy functions as GFunc, two-argument
    # compare functions as GCompareDataFunc (`info mtree`).
    patch -s -p1 -d "$ROOT$DEPS_DIR/glib" < "$WASM_DIR/deps-patches/glib-free-full-no-gfunc-cast.patch"
    patch -s -p1 -d "$ROOT$DEPS_DIR/glib" < "$WASM_DIR/deps-patches/glib-compare-func-no-cast.patch"
    # glib links -lresolv for res_query; Emscripten has no resolver and
    # QEMU never resolves through glib, so an always-failing stub stands in.
    cat > "$ROOT$DEPS_DIR/res_query.c" <<'C'
#include <netdb.h>
int res_query(const char *name, int class, int type, unsigned char *dest, int len)
{
    h_errno = HOST_NOT_FOUND;
    return -1;
}
C
    in_cross "cd $DEPS_DIR && emcc \$CFLAGS -c res_query.c -o res_query.o && emar rcs $SYSROOT/lib/libresolv.a res_query.o
        cd glib && CFLAGS=\"\$CFLAGS -Wno-incompatible-function-pointer-types\" \
        meson setup _build --prefix=$SYSROOT --cross-file=$CROSS_FILE \
            --default-library=static --buildtype=release --wrap-mode=nofallback \
            -Dselinux=disabled -Dxattr=false -Dlibmount=disabled -Dnls=disabled \
            -Dtests=false -Dglib_debug=disabled -Dglib_assert=false -Dglib_checks=false \
            -Dintrospection=disabled -Dman-pages=disabled -Ddocumentation=false -Dsysprof=disabled >/dev/null
        # Emscripten lacks these at final link although meson finds them.
        sed -i -E '/#define HAVE_POSIX_SPAWN 1/d; /#define HAVE_PTHREAD_GETNAME_NP 1/d' _build/config.h
        # Only the libraries: glib's tools would each be linked and
        # Asyncify-optimized for nothing (minutes on two cores).
        # girepository too: meson install --tags devel stops at its first
        # missing file, before the .pc files, if they are not built.
        ninja -C _build glib/libglib-2.0.a gobject/libgobject-2.0.a gmodule/libgmodule-2.0.a \
            gio/libgio-2.0.a gthread/libgthread-2.0.a \
            girepository/gi-visibility.h girepository/libgirepository-2.0.a >/dev/null
        meson install -C _build --no-rebuild --tags devel >/dev/null"
}

deps_pixman() {
    fresh_copy "$(source_dir pixman=0.46.4-1)" pixman
    in_cross "cd $DEPS_DIR/pixman && meson setup _build --prefix=$SYSROOT \
            --cross-file=$CROSS_FILE --default-library=static --buildtype=release \
            -Dtests=disabled -Ddemos=disabled -Dlibpng=disabled -Dgtk=disabled -Dopenmp=disabled >/dev/null
        meson install -C _build >/dev/null"
}

step_deps() {
    local host d t0
    for host in $DEPS_HOSTS; do
        use_host "$host"
        rm -rf "$ROOT$SYSROOT" "$ROOT$DEPS_DIR"
        mkdir -p "$ROOT$SYSROOT/lib/pkgconfig" "$ROOT$SYSROOT/include"
        write_cross_file
        for d in zlib libffi pcre2 glib pixman; do
            t0=$(date +%s)
            "deps_$d"
            log "  deps $host: $d built in $(( $(date +%s) - t0 )) s"
        done
    done
}
