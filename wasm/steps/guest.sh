# Step: the guest images. A trimmed Linux kernel per guest arch, built from
# Debian's linux source with Debian's compilers, a busybox initramfs from
# Debian's busybox-static binary packages, and the x86 firmware from Debian's
# seabios and qemu-system-data.
# Output: $WORK/guest/{arm,i386,x86_64,aarch64,firmware}/.
# Every downloaded file is checked against apt's signed index and against
# wasm/guest.lock (CPR_LOCK_UPDATE=1 records missing entries).

GUEST_LOCK=$WASM_DIR/guest.lock
GUEST_DATA=$WASM_DIR/guest
GUEST_OUT=$WORK/guest
# Kernel source: only the upstream tarball is used (Debian's patches are for
# its distribution kernels; a tinyconfig build needs none of them).
# 6.12.107-1 is trixie's; newer listed 6.12.x versions 404 on the mirror.
GUEST_KERNEL=linux=6.12.107-1
# Binary packages: name:arch=version.
GUEST_DEBS="busybox-static:armhf=1:1.38.0-3+b1 busybox-static:i386=1:1.38.0-3+b1
 busybox-static:amd64=1:1.38.0-3+b1 busybox-static:arm64=1:1.38.0-3+b1
 seabios=1.17.0-1 qemu-system-data=1:11.1.3+ds-1"
# Tools installed into the toolchain root for this step (libelf-dev for
# objtool, which an x86_64 kernel build runs; gcc is the x86_64 compiler).
GUEST_PACKAGES="gcc libc6-dev make bc flex bison cpio gzip xz-utils lz4 u-boot-tools libelf-dev
 gcc-arm-linux-gnueabihf gcc-i686-linux-gnu gcc-aarch64-linux-gnu"
# What qemu-system-i386 and qemu-system-x86_64 -M pc need to boot with
# -kernel, -nic none, -vga none: the BIOS, the option ROM that loads a
# bzImage (linuxboot_dma) or a PVH ELF (pvh), and the TPR-patching ROM the
# pc machine always loads (kvmvapic).
GUEST_FIRMWARE="usr/share/seabios/bios-256k.bin usr/share/qemu/linuxboot_dma.bin
 usr/share/qemu/pvh.bin usr/share/qemu/kvmvapic.bin"
# Fixed times and names, so that the same inputs give the same bytes.
GUEST_EPOCH=1735689600   # 2025-01-01 00:00:00 UTC
# Kernel command lines, written next to each kernel (QEMU's -append).
# lpj= skips the delay-loop calibration on machines that would run it.
GUEST_CMDLINE_ARM="console=ttyAMA0 lpj=100000 panic=-1"
GUEST_CMDLINE_I386="console=ttyS0 lpj=100000 tsc=reliable no_timer_check mitigations=off panic=-1"
# x86_64 always has a local APIC (the i386 kernel has none): noapictimer
# skips its timer calibration, which costs ~0.25 s natively, fails under TCG
# anyway and never ends with -icount; the PIT drives the tick, as on i386.
GUEST_CMDLINE_X86_64="$GUEST_CMDLINE_I386 noapictimer"
GUEST_CMDLINE_AARCH64="console=ttyAMA0 lpj=100000 mitigations=off panic=-1"
# The guests, in build order; each has a directory $WORK/guest/ARCH/.
GUEST_ARCHES="arm i386 x86_64 aarch64"

# guest_lock_check PKG FILE SHA256: compare with (or record into) the lock.
guest_lock_check() {
    local pkg=$1 name=$2 sum=$3 want
    want=$(awk -v p="$pkg" -v f="$name" '$1=="file" && $2==p && $3==f {print $4}' "$GUEST_LOCK")
    if [ -z "$want" ]; then
        [ "${CPR_LOCK_UPDATE:-}" = 1 ] ||
            die "$pkg: $name has no checksum in wasm/guest.lock (CPR_LOCK_UPDATE=1 records it)"
        echo "file $pkg $name $sum" >> "$GUEST_LOCK"
    elif [ "$want" != "$sum" ]; then
        die "$pkg: checksum mismatch for $name: got $sum, wasm/guest.lock says $want"
    fi
}

# guest_fetch PKG URL NAME SHA256 DIR: download once, check index and lock.
guest_fetch() {
    local pkg=$1 url=$2 name=$3 sum=$4 dir=$5
    mkdir -p "$dir"
    if [ ! -f "$dir/$name" ]; then
        curl -fsS -o "$dir/$name.part" "$url" 2>"$dir/$name.err" || {
            rm -f "$dir/$name.part"
            die "$pkg: $name is listed by apt but does not download ($(cat "$dir/$name.err")); pick another listed version"
        }
        mv "$dir/$name.part" "$dir/$name"; rm -f "$dir/$name.err"
    fi
    [ "$(sha256sum "$dir/$name" | cut -d' ' -f1)" = "$sum" ] ||
        die "$pkg: $name does not match the sha256 in apt's index (delete $dir/$name to refetch)"
    guest_lock_check "$pkg" "$name" "$sum"
}

# The kernel's upstream tarball, unpacked to $SRC/linux-VERSION.
guest_kernel_source() {
    local pkg=${GUEST_KERNEL%%=*} ver=${GUEST_KERNEL#*=} line url name size sum
    ver=${ver%-*}
    GUEST_KSRC=/build/src/linux-$ver
    line=$(in_root apt-get $APT_OPTS source --print-uris "$GUEST_KERNEL" 2>/dev/null |
           grep "^'.*\.orig\.tar\.") ||
        die "$GUEST_KERNEL is not listed by apt (apt-cache showsrc linux lists the versions)"
    read -r url name size sum <<< "$line"
    url=${url//\'/}; sum=${sum#SHA256:}
    guest_fetch "$pkg" "$url" "$name" "$sum" "$SRC/dl/$pkg"
    [ -f "$ROOT$GUEST_KSRC/Makefile" ] && return 0
    log "guest: unpacking $name"
    in_root_sh "rm -rf $GUEST_KSRC.part && mkdir -p $GUEST_KSRC.part &&
        tar -xf /build/src/dl/$pkg/$name -C $GUEST_KSRC.part --strip-components=1 &&
        mv $GUEST_KSRC.part $GUEST_KSRC"
}

# guest_deb SPEC: download one binary package into $ROOT/build/guest/dl and
# unpack it to $ROOT/build/guest/pkg/NAME_ARCH; prints nothing.
guest_deb() {
    local spec=$1 line url name size sum pkg=${1%%[:=]*}
    line=$(in_root apt-get $APT_OPTS download --print-uris "$spec" 2>/dev/null | grep "^'") ||
        die "$spec is not listed by apt (apt-cache madison $pkg lists the versions)"
    read -r url name size sum <<< "$line"
    url=${url//\'/}; sum=${sum#SHA256:}
    guest_fetch "$pkg" "$url" "$name" "$sum" "$ROOT/build/guest/dl"
    local arch=${name##*_}; arch=${arch%.deb}
    local dest=/build/guest/pkg/${pkg}_$arch
    in_root_sh "rm -rf $dest && mkdir -p $dest && dpkg-deb -x /build/guest/dl/$name $dest"
}

# guest_check_config BUILDDIR FRAGMENT...: every option a fragment sets must be
# in the final .config as written; Kconfig silently drops unmet ones.
guest_check_config() {
    local dir=$1 bad=; shift
    local line sym
    while read -r line; do
        case $line in
            CONFIG_*=*) grep -qxF "$line" "$ROOT$dir/.config" || bad="$bad $line" ;;
            "# CONFIG_"*" is not set")
                sym=${line#\# }; sym=${sym%% *}
                if grep -q "^$sym=" "$ROOT$dir/.config"; then bad="$bad $sym=n"; fi ;;
        esac
    done < <(cat "$@")
    [ -z "$bad" ] || die "kernel config $dir: fragment options not in effect:$bad"
}

# guest_kernel ARCH KARCH CROSS TARGET FRAGMENT...: tinyconfig, then
# wasm/guest/common.config and each wasm/guest/FRAGMENT.config, then build.
guest_kernel() {
    local arch=$1 karch=$2 cross=$3 target=$4; shift 4
    local out=/build/guest/kbuild-$arch f
    local frags="/build/guest/data/common.config"
    for f in "$@"; do frags="$frags /build/guest/data/$f.config"; done
    local env="ARCH=$karch CROSS_COMPILE=$cross KBUILD_BUILD_TIMESTAMP=@$GUEST_EPOCH"
    env="$env KBUILD_BUILD_USER=cpr KBUILD_BUILD_HOST=cpr-playground KBUILD_BUILD_VERSION=1"
    log "guest: configuring linux for $arch"
    in_root_sh "mkdir -p $out && cd $GUEST_KSRC &&
        make -s O=$out $env tinyconfig >/dev/null &&
        scripts/kconfig/merge_config.sh -m -O $out $out/.config $frags >/dev/null &&
        make -s O=$out $env olddefconfig >/dev/null"
    # shellcheck disable=SC2086
    guest_check_config "$out" $(for f in $frags; do echo "$ROOT$f"; done)
    log "guest: building linux $target for $arch (log: $ROOT$out/build.log)"
    in_root_sh "cd $GUEST_KSRC && make O=$out $env -j2 $target > $out/build.log 2>&1" ||
        die "kernel build for $arch failed, see $ROOT$out/build.log"
}

# guest_initramfs ARCH DEBARCH: the busybox initramfs, written with the
# kernel's gen_init_cpio from a sorted list (owner 0, fixed mtime), so the
# archive is reproducible and needs no device nodes on the build host.
guest_initramfs() {
    local arch=$1 debarch=$2 bb=/build/guest/pkg/busybox-static_$2/usr/bin/busybox
    local list=$ROOT/build/guest/initramfs-$arch.list applets
    [ -x "$ROOT$bb" ] || die "busybox-static:$debarch did not unpack to $bb"
    # The applet list comes from the i386 busybox (runs on an x86-64 host);
    # Debian builds busybox-static with the same configuration for every arch
    # (checked for 1.38.0-3+b1: the armhf, amd64 and arm64 binaries list the
    # same 280 applets).
    applets=$(in_root /build/guest/pkg/busybox-static_i386/usr/bin/busybox --list-full) ||
        die "cannot run the i386 busybox on this host to list its applets"
    {
        printf 'dir /%s 0755 0 0\n' bin dev etc proc root sbin sys tmp usr usr/bin usr/sbin
        printf 'nod /dev/console 0600 0 0 c 5 1\n'
        printf 'file /bin/busybox %s 0755 0 0\n' "$bb"
        printf 'file /init /build/guest/data/init 0755 0 0\n'
        printf 'file /bin/counter /build/guest/data/counter 0755 0 0\n'
        printf 'file /bin/cpr-files /build/guest/data/cpr-files 0755 0 0\n'
        printf 'file /etc/profile /build/guest/data/profile 0644 0 0\n'
        local a
        for a in $applets; do
            [ "$a" = bin/busybox ] && continue
            printf 'slink /%s /bin/busybox 0777 0 0\n' "$a"
        done
    } | LC_ALL=C sort -k2,2 -u > "$list"
    local out=/build/guest/out/$arch
    in_root_sh "cd /build/guest && gcc -O2 -o gen_init_cpio $GUEST_KSRC/usr/gen_init_cpio.c &&
        ./gen_init_cpio -t $GUEST_EPOCH initramfs-$arch.list > $out/initrd.cpio &&
        gzip -n -9 < $out/initrd.cpio > $out/initrd.cpio.gz"
}

# guest_x86 ARCH CROSS: an LZ4 bzImage, and the same kernel as a stripped
# PVH ELF (vmlinux) that QEMU starts directly, skipping decompression.
guest_x86() {
    local arch=$1 cross=$2 k=/build/guest/kbuild-$1
    guest_kernel "$arch" "$arch" "$cross" "bzImage vmlinux" x86 "$arch"
    in_root_sh "cp $k/arch/x86/boot/bzImage /build/guest/out/$arch/bzImage &&
        ${cross}strip -o /build/guest/out/$arch/vmlinux $k/vmlinux"
}

step_guest() {
    command -v curl >/dev/null || die "curl is missing: run 'apt-get install curl' (as root)"
    [ -x "$ROOT/usr/bin/apt-get" ] || die "no toolchain root at $ROOT: run 'wasm/build.sh toolchain' first"
    [ -f "$GUEST_LOCK" ] || die "wasm/guest.lock is missing"
    # Foreign architectures, so that apt lists (and checks) the armhf, i386
    # and arm64 busybox-static packages (amd64 is the root's own).
    in_root dpkg --add-architecture armhf
    in_root dpkg --add-architecture i386
    in_root dpkg --add-architecture arm64
    in_root apt-get $APT_OPTS -qq update
    # shellcheck disable=SC2086
    in_root apt-get $APT_OPTS -qq install --no-install-recommends $GUEST_PACKAGES \
        > "$WORK/guest-apt.log" 2>&1 || die "apt-get install in the root failed, see $WORK/guest-apt.log"

    guest_kernel_source
    local d a v
    for d in $GUEST_DEBS; do guest_deb "$d"; done
    rm -rf "$ROOT/build/guest/data" "$ROOT/build/guest/out"
    for a in $GUEST_ARCHES firmware; do mkdir -p "$ROOT/build/guest/out/$a"; done
    cp -r "$GUEST_DATA" "$ROOT/build/guest/data"

    # arm: the uncompressed Image, wrapped in a U-Boot legacy header that tells
    # QEMU where to load it. QEMU loads a raw Image at RAM+0x10000, but an arm
    # Image must sit at a 16 MiB boundary + 0x8000 (only a zImage relocates
    # itself); the uImage header carries that address: 0x40008000 on virt.
    guest_kernel arm arm arm-linux-gnueabihf- Image arm
    in_root_sh "SOURCE_DATE_EPOCH=$GUEST_EPOCH mkimage -A arm -O linux -T kernel -C none \
        -a 0x40008000 -e 0x40008000 -n linux-${GUEST_KSRC##*-} \
        -d /build/guest/kbuild-arm/arch/arm/boot/Image /build/guest/out/arm/uImage >/dev/null"
    guest_initramfs arm armhf

    guest_x86 i386 i686-linux-gnu-
    guest_initramfs i386 i386
    guest_x86 x86_64 x86_64-linux-gnu-
    guest_initramfs x86_64 amd64

    # aarch64: the uncompressed Image as it is. Unlike 32-bit arm, an arm64
    # Image has a header (text_offset, image size) that QEMU reads to load it
    # at a 2 MiB-aligned address, so it needs no wrapper.
    guest_kernel aarch64 arm64 aarch64-linux-gnu- Image aarch64
    in_root cp /build/guest/kbuild-aarch64/arch/arm64/boot/Image /build/guest/out/aarch64/Image
    guest_initramfs aarch64 arm64

    local f
    for f in $GUEST_FIRMWARE; do
        case $f in */seabios/*) d=seabios_all ;; *) d=qemu-system-data_all ;; esac
        [ -f "$ROOT/build/guest/pkg/$d/$f" ] || die "firmware $f is not in the $d package"
        cp "$ROOT/build/guest/pkg/$d/$f" "$ROOT/build/guest/out/firmware/"
    done

    for a in $GUEST_ARCHES; do
        v=GUEST_CMDLINE_${a^^}
        echo "${!v}" > "$ROOT/build/guest/out/$a/cmdline"
        cp "$ROOT/build/guest/kbuild-$a/.config" "$ROOT/build/guest/out/$a/kernel.config"
    done
    rm -rf "$GUEST_OUT"
    cp -r "$ROOT/build/guest/out" "$GUEST_OUT"
    (cd "$GUEST_OUT" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
    log "guest: $(cd "$GUEST_OUT" && du -b -- */* | awk '{printf "%s %d, ", $2, $1}')"
}

# wasm/build.sh guest_check: boot every guest with the host's native QEMU
# (Debian 12: apt-get install qemu-system-arm qemu-system-x86), with the
# machine options the playground uses, to the ready line and one answered
# command; prints the wall time of each. Not part of all(): a smoke test.
GUEST_CHECK_PY='
import os, select, subprocess, sys, time
timeout, cmd = float(sys.argv[1]), sys.argv[2:]
t0 = time.time()
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
buf, stage, ready = b"", 0, None
while time.time() - t0 < timeout:
    if select.select([p.stdout], [], [], 0.2)[0]:
        d = os.read(p.stdout.fileno(), 4096)
        if not d: break
        buf += d
    if stage == 0 and b"cpr-playground guest ready" in buf:
        ready, stage = time.time() - t0, 1
    if stage == 1 and b"# " in buf.split(b"cpr-playground guest ready", 1)[1]:
        p.stdin.write(b"echo answer $((6*7)); uptime\n"); p.stdin.flush(); stage = 2
    if stage == 2 and b"answer 42" in buf:
        print("ready line %.2f s, shell answered %.2f s" % (ready, time.time() - t0))
        p.kill(); sys.exit(0)
p.kill()
sys.stdout.write(buf.decode(errors="replace")[-3000:])
print("\nno ready line and answer within %d s (stage %d)" % (timeout, stage)); sys.exit(1)
'
# guest_boot ARCH LABEL QEMU-ARGV...: boot ARCH's initrd and command line
# with QEMU-ARGV (the machine and the kernel); on failure, show the console.
guest_boot() {
    local a=$1 label=$2 out; shift 2
    out=$(python3 -c "$GUEST_CHECK_PY" 60 "$@" -m 128 -nic none -nographic \
        -initrd "$GUEST_OUT/$a/initrd.cpio" -append "$(cat "$GUEST_OUT/$a/cmdline")") ||
        { echo "$out"; die "$label guest did not boot"; }
    log "guest_check $label: $out"
}

step_guest_check() {
    local g=$GUEST_OUT q a
    for q in qemu-system-arm qemu-system-aarch64 qemu-system-i386 qemu-system-x86_64 python3; do
        command -v $q >/dev/null || die "$q is missing: apt-get install qemu-system-arm qemu-system-x86 python3"
    done
    for a in $GUEST_ARCHES; do
        [ -f "$g/$a/cmdline" ] || die "no $a guest in $g: run 'wasm/build.sh guest' first"
    done
    guest_boot arm arm qemu-system-arm -M virt -cpu cortex-a15 -kernel "$g/arm/uImage"
    for a in i386 x86_64; do
        for q in vmlinux bzImage; do
            guest_boot $a "$a $q" qemu-system-$a -M pc -vga none -L "$g/firmware" -kernel "$g/$a/$q"
        done
    done
    guest_boot aarch64 aarch64 qemu-system-aarch64 -M virt -cpu cortex-a57 -kernel "$g/aarch64/Image"
}
