# Step: the toolchain root. A Debian sid root made by debootstrap, holding
# Debian's emscripten package and the native tools the builds need.

# Native tools used inside the root to configure and build the sources.
TOOLCHAIN_PACKAGES="emscripten dpkg-dev ca-certificates python3 python3-venv
 python3-tomli meson ninja-build pkg-config autoconf automake libtool libltdl-dev
 gettext make patch gcc libc6-dev flex bison bzip2 xz-utils file git cpio gzip rsync"

step_toolchain() {
    command -v debootstrap >/dev/null ||
        die "debootstrap is missing: run 'apt-get install debootstrap' (as root)"
    local mirror
    mirror=$(debian_mirror)
    if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
        rm -rf "$ROOT"
        mkdir -p "$ROOT"
        debootstrap --variant=minbase sid "$ROOT" "$mirror" > "$WORK/debootstrap.log" 2>&1 ||
            die "debootstrap failed, see $WORK/debootstrap.log"
    fi
    cat > "$ROOT/etc/apt/sources.list" <<SOURCES
deb $mirror sid main
deb-src $mirror sid main
deb-src $mirror trixie main
deb-src $mirror bookworm main
SOURCES
    in_root apt-get $APT_OPTS -qq update
    # shellcheck disable=SC2086
    in_root apt-get $APT_OPTS -qq install --no-install-recommends $TOOLCHAIN_PACKAGES \
        > "$WORK/toolchain-apt.log" 2>&1 || die "apt-get install in the root failed, see $WORK/toolchain-apt.log"
    mkdir -p "$ROOT/build"
    in_root emcc --version | head -n1 > "$WORK/emcc-version"
    log "toolchain: $(cat "$WORK/emcc-version")"
}
