#!/usr/bin/env bash
# Relinks one QEMU binary in a COPY of the build root with extra emcc flags,
# for experiments (docs/performance.md): a symbol map, other wasm-opt levels,
# Asyncify lists. Never in the build's own work dir; nothing it makes is
# committed.
#
#   sudo bash bench/relink.sh COPY_ROOT OUT_DIR [--target i386|arm] [--build-dir /build/qemu-build] -- EMCC_FLAG...
#
# COPY_ROOT: a copy of $WORK/root made with
#   rsync -a --exclude=/proc/ --exclude=/build/src/ --exclude=/build/guest/ $WORK/root/ COPY_ROOT/
# (never `cp -a` a root with /proc mounted). Runs at nice 19, one job.
# emcc appends EMCC_CFLAGS to the recorded link command, so a flag given here
# overrides the recipe's (e.g. -O3 over -O2). Only the link runs when the
# objects are up to date. Writes qemu-system-TARGET.{js,wasm} (and
# .js.symbols with --emit-symbol-map) into OUT_DIR.
set -euo pipefail

die() { echo "relink: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: relink.sh COPY_ROOT OUT_DIR [--target i386|arm] [--build-dir DIR] -- EMCC_FLAG..."
root=$(cd "$1" && pwd); out=$2; shift 2
target=i386
build_dir=/build/qemu-build
while [ $# -gt 0 ]; do
    case $1 in
        --target) target=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --) shift; break ;;
        *) die "unknown option $1" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "chroot needs root"
[ -x "$root/usr/bin/env" ] && [ -d "$root$build_dir" ] || die "$root has no $build_dir: not a copy of the build root"
# The build's own work dir has stamps/ beside root/; a copy made as above does not.
[ ! -d "$root/../stamps" ] || die "$root looks like a build work dir (stamps/ beside it): relink in a copy"

mkdir -p "$root/proc" "$out"
mounted=
if ! mountpoint -q "$root/proc"; then mount -t proc proc "$root/proc"; mounted=1; fi
trap '[ -z "$mounted" ] || umount "$root/proc"' EXIT

bin=qemu-system-$target
t0=$(date +%s)
nice -n 19 chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    EM_CACHE=/build/emcache PYTHONHASHSEED=0 EMCC_CFLAGS="$*" \
    /bin/bash -euc "cd $build_dir && rm -f $bin.js $bin.wasm $bin.js.symbols &&
        ninja -j1 $bin.js > relink.log 2>&1 || { tail -30 relink.log; exit 1; }"
cp "$root$build_dir/$bin.js" "$root$build_dir/$bin.wasm" "$out/"
[ ! -f "$root$build_dir/$bin.js.symbols" ] || cp "$root$build_dir/$bin.js.symbols" "$out/"
# Node loads the glue as an ES module only under a package.json that says so.
[ -f "$out/package.json" ] || echo '{ "type": "module" }' > "$out/package.json"
echo "relink: $out/$bin.wasm in $(( $(date +%s) - t0 )) s with EMCC_CFLAGS='$*'"
sha256sum "$out/$bin.wasm"
