#!/usr/bin/env bash
# Native check of our QEMU patch series (wasm/patches/*.patch): build Debian's
# pristine qemu 1:10.2.2+ds-1 plus the series NATIVELY on this Debian 12 host
# (x86_64, TCG and KVM, i386-softmmu) and run QEMU's own tests that cover what
# we touch or rely on: the cpr cases of migration-test (cpr-exec included),
# qmp-cmd-test, ivshmem-test and test-x86-cpuid-compat, and the series' own
# cpr-exec-test. See docs/native-tests.md.
#
# Usage (as root: it installs build dependencies with apt):
#   sudo bash wasm/native-check.sh               # patched tree (the check)
#   sudo bash wasm/native-check.sh --unpatched   # the same without our patches, to compare
#   CPR_NATIVE_WORK=/tmp/nc sudo bash wasm/native-check.sh   # work dir (default /work/nativecheck)
# Options: --skip-apt (do not touch apt; fail if something is missing),
#          --jobs N (default 2; never more than 2 here, another build shares the cores).
# Exit status: 0 when every test passed, 1 otherwise.
set -euo pipefail

# WASM_DIR, REPO_DIR and debian_mirror come from the wasm build's helpers;
# die and log are redefined below with this script's prefix.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
QEMU_DIR_NAME=qemu-10.2.2+ds
PRISTINE=${CPR_WASM_WORK:-$WASM_DIR/.work}/root/build/src/$QEMU_DIR_NAME
WORK=${CPR_NATIVE_WORK:-/work/nativecheck}
VARIANT=patched
JOBS=2
SKIP_APT=0
MESON_MIN=1.5.0
NICE=(nice -n 10)

T_START=$(date +%s)
die() { echo "native-check: error: $*" >&2; exit 1; }
log() { printf 'native-check: [%s +%4ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T_START ))" "$*"; }
# step NAME FUNCTION: run it, print its start and its time.
step() {
    local t0; t0=$(date +%s)
    log "== $1: start"
    "$2"
    log "== $1: done in $(( $(date +%s) - t0 )) s"
}

while [ $# -gt 0 ]; do
    case $1 in
        --unpatched) VARIANT=unpatched ;;
        --skip-apt) SKIP_APT=1 ;;
        --jobs) JOBS=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

# --- checks --------------------------------------------------------------

[ -d "$PRISTINE" ] && [ -f "$PRISTINE/configure" ] ||
    die "the pristine QEMU source is missing at $PRISTINE: run 'sudo bash wasm/build.sh toolchain sources' first (the sources step unpacks it; it needs the toolchain root)"
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
case "$WORK/" in
    "$(realpath "$REPO_DIR")"/*) die "CPR_NATIVE_WORK=$WORK is inside the repository; choose a directory outside it" ;;
esac
case "$WORK/" in
    "$(realpath "$PRISTINE")"/*) die "CPR_NATIVE_WORK must not be inside the pristine source" ;;
esac
[ "$(uname -m)" = x86_64 ] || die "this check is written for an x86_64 host (found $(uname -m))"

VDIR=$WORK/$VARIANT          # src/ (tree), build/, logs/, results.txt
SRC=$VDIR/src
BUILD=$VDIR/build
LOGS=$VDIR/logs
mkdir -p "$LOGS"

# --- 1. host packages ----------------------------------------------------

# What a native i386-softmmu build and its qtests need on Debian 12.
# seabios and ipxe-qemu: the +ds source carries no firmware blobs; the pc
# machine needs bios-256k.bin and its NICs' option ROMs to start at all.
# gcc-multilib: 32-bit libgcc, without which configure silently skips
# QEMU's own x86 option ROMs (kvmvapic.bin, linuxboot_dma.bin, ...).
HOST_PACKAGES="build-essential gcc-multilib ninja-build python3 python3-venv pkg-config git rsync
 libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev flex bison seabios ipxe-qemu"
APT_OPTS=(-o Acquire::Check-Valid-Until=false -o APT::Get::Assume-Yes=true -o Dpkg::Use-Pty=0)

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

meson_ok() {
    command -v meson >/dev/null && version_ge "$(meson --version)" "$MESON_MIN"
}

step_apt() {
    local missing=() p
    for p in $HOST_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ $SKIP_APT = 0 ] || die "missing host packages: ${missing[*]} (run without --skip-apt, as root)"
        [ "$(id -u)" = 0 ] || die "missing host packages: ${missing[*]}: run as root (apt-get install)"
        log "installing: ${missing[*]}"
        apt-get "${APT_OPTS[@]}" -qq update > "$LOGS/apt.log" 2>&1 ||
            die "apt-get update failed, see $LOGS/apt.log"
        apt-get "${APT_OPTS[@]}" -qq install --no-install-recommends "${missing[@]}" \
            >> "$LOGS/apt.log" 2>&1 || die "apt-get install failed, see $LOGS/apt.log"
    fi
    if meson_ok; then
        log "meson $(meson --version) (>= $MESON_MIN)"
        return
    fi
    # QEMU 10.2 needs meson >= 1.5; Debian 12 has 1.0.1. Its configure would
    # take a bundled meson wheel from python/wheels, but the +ds source ships
    # none, and PyPI is not reachable. bookworm-backports has 1.7.
    [ $SKIP_APT = 0 ] || die "meson >= $MESON_MIN is missing (found: $(meson --version 2>/dev/null || echo none)); run without --skip-apt"
    [ "$(id -u)" = 0 ] || die "meson >= $MESON_MIN is missing: run as root to install it from backports"
    local codename parts
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot tell the Debian codename from /etc/os-release"
    # The host's own sources plus backports, in a sources dir of our own:
    # /etc/apt is left as it is.
    parts=$WORK/apt/sources.list.d
    rm -rf "$parts"; mkdir -p "$parts"
    for p in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -e "$p" ] && ln -s "$p" "$parts/"
    done
    echo "deb $(debian_mirror) $codename-backports main" > "$parts/zz-cpr-native-backports.list"
    local apt_bpo=("${APT_OPTS[@]}" -o "Dir::Etc::SourceParts=$parts")
    log "meson $(meson --version 2>/dev/null || echo none) is too old for QEMU 10.2 (needs >= $MESON_MIN): installing meson from $codename-backports"
    apt-get "${apt_bpo[@]}" -qq update > "$LOGS/apt-backports.log" 2>&1 ||
        die "apt-get update with $codename-backports failed, see $LOGS/apt-backports.log"
    apt-cache "${apt_bpo[@]}" policy meson >> "$LOGS/apt-backports.log"
    apt-get "${apt_bpo[@]}" -qq install --no-install-recommends -t "$codename-backports" meson \
        >> "$LOGS/apt-backports.log" 2>&1 ||
        die "meson from $codename-backports could not be installed (see $LOGS/apt-backports.log); the mirror may not carry backports: build in a Debian sid root instead (debootstrap, as wasm/steps/toolchain.sh does)"
    meson_ok || die "meson $(meson --version) is still older than $MESON_MIN"
    log "meson $(meson --version) from $codename-backports"
}

# --- 2. source tree ------------------------------------------------------

step_source() {
    local stage=$VDIR/stage p n=0
    rm -rf "$stage"
    cp -a "$PRISTINE" "$stage"
    rm -rf "$stage/.pc"   # quilt's record of Debian's patches, already applied
    if [ $VARIANT = patched ]; then
        # qemu_patches (lib.sh): the main series, then the "info version"
        # one, as wasm/steps/qemu.sh applies them; not the cover letter.
        for p in $(qemu_patches); do
            # GIT_CEILING_DIRECTORIES: apply to this plain tree even if a parent is a git repo.
            (cd "$stage" && GIT_CEILING_DIRECTORIES=$VDIR git apply --whitespace=nowarn "$WASM_DIR/patches/$p") ||
                die "patch $p does not apply to $QEMU_DIR_NAME"
            log "applied $p"
            n=$((n + 1))
        done
        [ $n -gt 0 ] || die "no patches found in $WASM_DIR/patches"
    else
        log "unpatched tree: wasm/patches/ NOT applied"
    fi
    # rsync -c keeps the timestamps of unchanged files: a rerun recompiles
    # only what a changed patch touches.
    mkdir -p "$SRC"
    rsync -rlc --delete "$stage/" "$SRC/"
    rm -rf "$stage"
}

# --- 3. configure and build ----------------------------------------------

CONFIGURE_ARGS=(
    --target-list=i386-softmmu
    --disable-docs --disable-download
    # the +ds source has no firmware blobs to install
    --disable-install-blobs
    # no qemu-img & co.: none of the tests below uses them
    --disable-tools
    # Debian's firmware packages (seabios, ipxe-qemu) where the built tree
    # finds none; the option ROMs QEMU builds itself (pc-bios/optionrom) come first
    --firmwarepath=/usr/share/seabios:/usr/lib/ipxe/qemu
    # Debian's python, which sees Debian's meson (a pyenv python may come
    # first in PATH and would not)
    --python=/usr/bin/python3
)
TESTS=(migration-test qmp-cmd-test ivshmem-test test-x86-cpuid-compat)
# The series' own test (patch 0015) exists only in the patched tree.
[ $VARIANT = patched ] && TESTS+=(cpr-exec-test)

step_configure() {
    local want have
    # Reconfigure when the arguments or the host packages (compilers,
    # libraries, meson) change.
    # shellcheck disable=SC2086
    want=$( (printf '%s\n' "${CONFIGURE_ARGS[@]}"; dpkg-query -W $HOST_PACKAGES meson) |
            sha256sum | cut -c1-16)
    have=$(cat "$BUILD/.cpr-native-config" 2>/dev/null || true)
    if [ -f "$BUILD/build.ninja" ] && [ "$want" = "$have" ]; then
        log "already configured (ninja reruns meson if a meson.build changed)"
        return
    fi
    rm -rf "$BUILD"; mkdir -p "$BUILD"
    (cd "$BUILD" && "${NICE[@]}" "$SRC/configure" "${CONFIGURE_ARGS[@]}") > "$LOGS/configure.log" 2>&1 ||
        { tail -30 "$LOGS/configure.log" >&2; die "QEMU configure failed, see $LOGS/configure.log"; }
    echo "$want" > "$BUILD/.cpr-native-config"
}

step_build() {
    local targets=(qemu-system-i386) t
    for t in "${TESTS[@]}"; do targets+=("tests/qtest/$t"); done
    (cd "$BUILD" && "${NICE[@]}" ninja -j"$JOBS" all "${targets[@]}") > "$LOGS/build.log" 2>&1 ||
        { grep -B2 -A12 -m3 'error' "$LOGS/build.log" >&2 || tail -30 "$LOGS/build.log" >&2
          die "QEMU build failed, see $LOGS/build.log"; }
    # QEMU's x86 option ROMs are built by make, not ninja.
    [ -f "$BUILD/pc-bios/optionrom/config.mak" ] ||
        die "configure found no compiler for the x86 option ROMs (is gcc-multilib installed?), see $BUILD/config.log"
    (cd "$BUILD" && "${NICE[@]}" make -j"$JOBS" pc-bios/optionrom/all) >> "$LOGS/build.log" 2>&1 ||
        die "building the x86 option ROMs failed, see $LOGS/build.log"
    [ -f "$BUILD/pc-bios/optionrom/kvmvapic.bin" ] || die "pc-bios/optionrom/kvmvapic.bin was not built, see $LOGS/build.log"
    # A binary run from the build tree looks for its data and firmware
    # under build/qemu-bundle/<configured path>, never at the path itself:
    # point the bundle's copy of the firmware path at Debian's packages,
    # and put the option ROMs just built in the bundle's data dir (with
    # --disable-install-blobs meson links none there).
    local d datadir rom
    for d in /usr/share/seabios /usr/lib/ipxe/qemu; do
        mkdir -p "$(dirname "$BUILD/qemu-bundle$d")"
        ln -sfn "$d" "$BUILD/qemu-bundle$d"
    done
    datadir=$(sed -n 's/^#define CONFIG_QEMU_DATADIR "\(.*\)"$/\1/p' "$BUILD/config-host.h")
    [ -n "$datadir" ] || die "CONFIG_QEMU_DATADIR not found in $BUILD/config-host.h"
    mkdir -p "$BUILD/qemu-bundle$datadir"
    for rom in "$BUILD"/pc-bios/optionrom/*.bin; do
        ln -sfn "$rom" "$BUILD/qemu-bundle$datadir/$(basename "$rom")"
    done
    log "$("$BUILD/qemu-system-i386" --version | head -n1)"
}

# --- 4. tests --------------------------------------------------------------

# Timeouts: QEMU's meson.build values (migration 480 s, qmp-cmd 120 s,
# others 60 s) times 3, the machine is shared.
declare -A TIMEOUT=([migration-test]=1440 [qmp-cmd-test]=360 [ivshmem-test]=180 [test-x86-cpuid-compat]=180
                   [cpr-exec-test]=180)
declare -A RESULT DURATION DETAIL
FAILED=0

# run_test NAME ARGS...: one test binary, TAP output to its log.
run_test() {
    local name=$1; shift
    local log=$LOGS/$name.log t0 rc=0 ok notok skip
    t0=$(date +%s)
    log "test $name $*"
    (cd "$BUILD" && env QTEST_QEMU_BINARY=./qemu-system-i386 \
         G_TEST_DBUS_DAEMON="$SRC/tests/dbus-vmstate-daemon.sh" PYTHON=/usr/bin/python3 \
         MALLOC_PERTURB_=$(( RANDOM % 255 + 1 )) \
         "${NICE[@]}" timeout --kill-after=10 "${TIMEOUT[$name]}" \
         "./tests/qtest/$name" --tap -k "$@") > "$log" 2>&1 || rc=$?
    ok=$(grep -cE '^ok ' "$log" || true)
    notok=$(grep -cE '^not ok ' "$log" || true)
    skip=$(grep -cE '^ok .*# SKIP' "$log" || true)
    DURATION[$name]=$(( $(date +%s) - t0 ))
    DETAIL[$name]="$((ok - skip)) passed, $notok failed, $skip skipped"
    if [ $rc -eq 0 ] && [ "$notok" -eq 0 ] && [ "$ok" -gt "$skip" ]; then
        RESULT[$name]=PASS
    else
        RESULT[$name]=FAIL
        [ $rc -eq 124 ] && DETAIL[$name]+=", timed out after ${TIMEOUT[$name]} s"
        [ $rc -ne 0 ] && [ $rc -ne 124 ] && DETAIL[$name]+=", exit status $rc"
        FAILED=1
        grep -E '^not ok |ERROR|Bail out' "$log" | head -n 10 | sed 's/^/    /' >&2 || true
    fi
    log "  ${RESULT[$name]} $name: ${DETAIL[$name]} (${DURATION[$name]} s, log $log)"
}

step_tests() {
    local paths p args=() q covered no_exec=0
    # The cpr cases are registered only with --full; /migration/mode/reboot
    # only with QEMU_TEST_FLAKY_TESTS (upstream CI has trouble with shared
    # memory, this host has none); transfer, transfer/defer and exec only
    # when /dev/kvm is usable (the test then starts QEMU with
    # '-accel kvm -accel tcg').
    export QEMU_TEST_FLAKY_TESTS=1
    paths=$(cd "$BUILD" && QTEST_QEMU_BINARY=./qemu-system-i386 ./tests/qtest/migration-test --full -l |
            grep -E '/migration/mode/' || true)
    [ -n "$paths" ] || die "migration-test --full -l lists no /migration/mode/ (cpr) cases"
    echo "$paths" | sed 's/^/    cpr case: /'
    # Without it the listed cases still run, and the test counts as failed.
    echo "$paths" | grep -q '/migration/mode/exec$' || no_exec=1
    # -p selects a path and everything below it, and a case run twice in one
    # process crashes the harness (SIGSEGV after both passed): pass only the
    # paths that no other listed path already covers.
    for p in $paths; do
        covered=0
        for q in $paths; do case $p in "$q"/*) covered=1 ;; esac; done
        [ $covered = 1 ] || args+=(-p "$p")
    done
    run_test migration-test --full "${args[@]}"
    if [ $no_exec = 1 ]; then
        RESULT[migration-test]=FAIL
        DETAIL[migration-test]+=", the cpr-exec case (/migration/mode/exec) is not registered: it needs read/write access to /dev/kvm"
        FAILED=1
        log "  FAIL migration-test: no /migration/mode/exec case (no usable /dev/kvm)"
    fi
    run_test qmp-cmd-test
    run_test ivshmem-test
    run_test test-x86-cpuid-compat
    [ $VARIANT = patched ] && run_test cpr-exec-test
    return 0
}

# --- main ------------------------------------------------------------------

log "variant: $VARIANT; work dir: $VDIR; jobs: $JOBS (nice 10)"
step "1/5 host packages" step_apt
step "2/5 source ($VARIANT)" step_source
step "3/5 configure" step_configure
step "4/5 build" step_build
step "5/5 tests" step_tests

TOTAL=$(( $(date +%s) - T_START ))
{
    echo "native-check $VARIANT $(date -u +%Y-%m-%dT%H:%M:%SZ) total ${TOTAL}s"
    for t in "${TESTS[@]}"; do
        printf '%-5s %-22s %4ss  %s\n' "${RESULT[$t]}" "$t" "${DURATION[$t]}" "${DETAIL[$t]}"
    done
} | tee "$VDIR/results.txt"
if [ $FAILED = 0 ]; then
    log "all tests passed ($VARIANT), total $TOTAL s"
else
    log "FAILED ($VARIANT), total $TOTAL s; logs in $LOGS"
    [ $VARIANT = patched ] && log "to see whether our patches are the cause: sudo bash wasm/native-check.sh --unpatched"
    exit 1
fi
