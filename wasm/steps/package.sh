# Step: the committed artifacts. Compresses the build outputs into
# wasm/dist/ and writes wasm/dist/manifest.json (the exact inputs: source
# versions and checksums, patch series hash, recipe hash, emcc version, and
# each output's checksum and size) and wasm/dist/NOTICE (licences and the
# source packages the artifacts were built from).

# Files whose content defines the artifacts. wasm/check.mjs hashes the same
# set: keep recipe_files in step with RECIPE_GLOBS there.
recipe_files() {
    (cd "$REPO_DIR" && find wasm/build.sh wasm/lib.sh wasm/steps wasm/patches wasm/deps-patches wasm/emscripten \
        wasm/guest wasm/snapshot wasm/sources.lock wasm/guest.lock -type f 2>/dev/null | LC_ALL=C sort)
}

# What the playground loads of $WORK/guest (worker/qemu/guests.ts names the
# same files), plus each kernel's config for the curious.
GUEST_ARTIFACTS="arm/uImage arm/initrd.cpio arm/kernel.config arm/cmdline
 i386/vmlinux i386/initrd.cpio i386/kernel.config i386/cmdline
 x86_64/vmlinux x86_64/initrd.cpio x86_64/kernel.config x86_64/cmdline
 aarch64/Image aarch64/initrd.cpio aarch64/kernel.config aarch64/cmdline
 firmware/bios-256k.bin firmware/pvh.bin firmware/kvmvapic.bin"
# The guests, each with a booted snapshot (worker/qemu/guests.ts).
GUEST_NAMES="arm i386 x86_64 aarch64"

# pack SRC DEST: gzip without names or timestamps, so equal inputs give
# equal bytes.
pack() {
    mkdir -p "$(dirname "$2")"
    gzip -9 -n -c "$1" > "$2.tmp" && mv "$2.tmp" "$2"
}

step_package() {
    local out=$WORK/out
    rm -rf "$DIST.new"
    mkdir -p "$DIST.new"
    local f name guest
    for name in $QEMU_BUILDS; do
        ls "$out/$name"/qemu-system-*.wasm >/dev/null 2>&1 ||
            die "QEMU build $name is missing in $out/$name: run wasm/build.sh qemu"
        # The symbol maps too: not loaded by the page, but what names the
        # functions of a profile (docs/performance.md).
        for f in "$out/$name"/qemu-system-*.js "$out/$name"/qemu-system-*.wasm "$out/$name"/qemu-system-*.js.symbols; do
            pack "$f" "$DIST.new/qemu/$name/$(basename "$f").gz"
        done
    done
    for f in $GUEST_ARTIFACTS; do
        [ -f "$WORK/guest/$f" ] || die "guest artifact $f is missing: run wasm/build.sh guest"
        pack "$WORK/guest/$f" "$DIST.new/guest/$f.gz"
    done
    for guest in $GUEST_NAMES; do
        [ -f "$SNAPSHOT_OUT/$guest.cprsnap" ] || die "booted snapshot $guest.cprsnap is missing: run wasm/build.sh snapshot"
        pack "$SNAPSHOT_OUT/$guest.cprsnap" "$DIST.new/snapshots/$guest.cprsnap.gz"
    done
    write_notice > "$DIST.new/NOTICE"
    write_manifest > "$DIST.new/manifest.json"
    rm -rf "$DIST"
    mv "$DIST.new" "$DIST"
    log "  wasm/dist: $(du -sh "$DIST" | cut -f1)"
}

write_notice() {
    cat <<NOTICE
cpr-playground artifacts

The QEMU builds here (qemu/*/qemu-system-*.js and .wasm) are QEMU 10.2.2,
licensed under the GNU General Public License, version 2 (GPL-2.0), built
from the Debian source package qemu 1:10.2.2+ds-1 with the patch series in
wasm/patches/ (also GPL-2.0), statically linked with libraries built from
these Debian source packages (each under its own licence: glib2.0 LGPL-2.1+,
pixman MIT, zlib Zlib, libffi MIT, pcre2 BSD-3-Clause, libfdt from
device-tree-compiler BSD-2-Clause or GPL-2.0+):

NOTICE
    grep '^file ' "$WASM_DIR/sources.lock" | awk '{print "  " $2 ": " $3 "  sha256 " $4}'
    if [ -f "$WASM_DIR/guest.lock" ]; then
        cat <<NOTICE

The guest images (guest/) contain Linux (GPL-2.0) and BusyBox (GPL-2.0),
and the firmware (guest/firmware/) SeaBIOS (LGPL-3.0) and QEMU's option
ROMs (GPL-2.0), built or taken from these Debian packages:

NOTICE
        grep '^file ' "$WASM_DIR/guest.lock" | awk '{print "  " $2 ": " $3 "  sha256 " $4}'
    fi
    cat <<NOTICE

The booted snapshots (snapshots/*.cprsnap) are the state of those QEMU
builds running those guests (guest RAM with Linux and BusyBox, and QEMU's
device state from a cpr-exec migration); their source is that of the
builds and guests above.

Complete corresponding source: the Debian source packages named above
(apt-get source NAME=VERSION), plus this repository's wasm/ folder, which
holds every change and the scripts that build these files (npm run build:wasm).
NOTICE
}

write_manifest() {
    local emcc
    emcc=$(sed -E 's/.* ([0-9]+\.[0-9]+\.[0-9]+).*/\1/' "$WORK/emcc-version")
    python3 - "$REPO_DIR" "$DIST.new" "$emcc" $QEMU_BUILDS <<'PY'
import hashlib, json, os, subprocess, sys
repo, dist, emcc = sys.argv[1:4]
builds = sys.argv[4:]
def sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()
recipe = subprocess.run(['bash', '-c', 'source wasm/lib.sh; source wasm/steps/package.sh; recipe_files'],
                        cwd=repo, capture_output=True, text=True, check=True).stdout.split()
recipe_files = {p: sha(os.path.join(repo, p)) for p in recipe}
recipe_hash = hashlib.sha256(''.join(f'{p} {h}\n' for p, h in recipe_files.items()).encode()).hexdigest()
patches = sorted(p for p in recipe if p.startswith('wasm/patches/'))
series_hash = hashlib.sha256(''.join(f'{p} {recipe_files[p]}\n' for p in patches).encode()).hexdigest()
def locked(name):
    path = os.path.join(repo, 'wasm', name)
    out = []
    if os.path.exists(path):
        for line in open(path):
            w = line.split()
            if len(w) == 4 and w[0] == 'file':
                out.append({'package': w[1], 'file': w[2], 'sha256': w[3]})
    return out
import gzip
artifacts = []
for root, _, files in os.walk(dist):
    for name in files:
        if not name.endswith('.gz'):
            continue
        path = os.path.join(root, name)
        with gzip.open(path, 'rb') as f:
            raw = f.read()
        artifacts.append({'path': os.path.relpath(path, dist), 'sha256': sha(path),
                          'size': os.path.getsize(path),
                          'rawSha256': hashlib.sha256(raw).hexdigest(), 'rawSize': len(raw)})
artifacts.sort(key=lambda a: a['path'])
print(json.dumps({
    'format': 1,
    'qemu': {'version': '10.2.2', 'debianSource': 'qemu 1:10.2.2+ds-1', 'builds': builds},
    'toolchain': {'emcc': emcc, 'root': 'Debian sid (debootstrap --variant=minbase), package emscripten'},
    'recipe': {'sha256': recipe_hash, 'files': recipe_files},
    'patchSeries': {'sha256': series_hash, 'patches': [os.path.relpath(p, 'wasm/patches') for p in patches]},
    'sources': locked('sources.lock'),
    'guestInputs': locked('guest.lock'),
    'snapshots': {'build': builds[0], 'ramMiB': 128,
                  'madeBy': 'wasm/snapshot/make-snapshots.ts: each guest booted in Node by qemu/' + builds[0] +
                            ' with the guest artifacts listed here, saved at its shell prompt'},
    'artifacts': artifacts,
}, indent=2))
PY
}
