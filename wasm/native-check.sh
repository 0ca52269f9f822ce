#!/usr/bin/env bash
# Native check of our QEMU patch series (wasm/patches/*.patch): build Debian's
# pristine qemu 1:10.2.2+ds-1 plus the series NATIVELY on this Debian 12 host
# (x86_64, TCG and KVM, i386-softmmu) and run QEMU's own tests that cover what
# we touch or rely on: the cpr cases of migration-test (cpr-exec included),
# qmp-cmd-test, qmp-test (QMP input: the qmp-read series), ivshmem-test and
# test-x86-cpuid-compat, and the series' own cpr-exec-test. See docs/native-tests.md.
# --tci builds the same tree with the TCG interpreter (TCI, as the wasm build
# uses; tcg/tci.c is what the tci-wasm series changes) and without KVM, and
# runs the tests that execute guest code: boot-serial-test (SeaBIOS on the
# i386 machines), migration-test's precopy and multifd cases (the guest
# bootsector writes RAM, checked after migration) and the tests above.
#
# Usage (as root: it installs build dependencies with apt):
#   sudo bash wasm/native-check.sh               # patched tree (the check)
#   sudo bash wasm/native-check.sh --unpatched   # the same without our patches, to compare
#   CPR_NATIVE_WORK=/tmp/nc sudo bash wasm/native-check.sh   # work dir (default /work/nativecheck)
#   sudo bash wasm/native-check.sh --tci         # TCI instead of TCG+KVM (with or without --unpatched)
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
TCI=0
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
        --tci) TCI=1 ;;
        --skip-apt) SKIP_APT=1 ;;
        --jobs) JOBS=$2; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
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

# FLAVOUR: patched, unpatched, patched-tci, unpatched-tci: each its own dir.
FLAVOUR=$VARIANT
[ $TCI = 1 ] && FLAVOUR=$VARIANT-tci
VDIR=$WORK/$FLAVOUR          # src/ (tree), build/, logs/, results.txt
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
    if [ $TCI = 1 ]; then
        # QEMU 10.2 builds boot-serial-test for x86 only with CONFIG_SGA,
        # a Kconfig symbol that no longer exists (sgabios is gone): the
        # test is never built for i386/x86_64, though its table still has
        # the isapc, pc and q35 cases (SeaBIOS on the serial port with
        # graphics=off). Build it: a change to the test list only, made
        # to both variants alike, not part of any series.
        local sga="(config_all_devices.has_key('CONFIG_SGA') ? ['boot-serial-test'] : []) +"
        grep -qF "$sga" "$stage/tests/qtest/meson.build" ||
            die "tests/qtest/meson.build no longer gates boot-serial-test on CONFIG_SGA: look again at the --tci tweak"
        sed -i "s|(config_all_devices.has_key('CONFIG_SGA') ? \['boot-serial-test'\] : \[\]) +|['boot-serial-test'] +|" \
            "$stage/tests/qtest/meson.build"
        ! grep -qF "$sga" "$stage/tests/qtest/meson.build" || die "could not ungate boot-serial-test"
        log "--tci: boot-serial-test built for i386 (tests/qtest/meson.build: CONFIG_SGA gate removed)"
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
if [ $TCI = 1 ]; then
    # The TCG interpreter, and no KVM: whatever accelerator a test asks for
    # ('-accel kvm -accel tcg' in migration-test), the guest runs under TCI.
    CONFIGURE_ARGS+=(--enable-tcg-interpreter --disable-kvm)
fi
# Test names (the keys below and in results.txt); TEST_BIN maps a name to
# its binary in tests/qtest/ when they differ.
declare -A TEST_BIN=([migration-precopy]=migration-test)
TESTS=(migration-test qmp-cmd-test qmp-test ivshmem-test test-x86-cpuid-compat)
[ $TCI = 1 ] && TESTS=(boot-serial-test migration-precopy "${TESTS[@]}")
# The series' own test (patch 0015) exists only in the patched tree.
[ $VARIANT = patched ] && TESTS+=(cpr-exec-test)
test_bin() { echo "${TEST_BIN[$1]:-$1}"; }

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
    local targets=(qemu-system-i386) t all=(all)
    for t in "${TESTS[@]}"; do targets+=("tests/qtest/$(test_bin "$t")"); done
    # --tci: only the emulator and the tests it runs (half the steps of
    # 'all', which adds the unit tests, the other qtests, the plugins...).
    [ $TCI = 1 ] && all=()
    (cd "$BUILD" && "${NICE[@]}" ninja -j"$JOBS" "${all[@]}" "${targets[@]}") > "$LOGS/build.log" 2>&1 ||
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
    if [ $TCI = 1 ]; then
        grep -q '^#define CONFIG_TCG_INTERPRETER' "$BUILD/config-host.h" ||
            die "--tci: the build is not configured with the TCG interpreter (no CONFIG_TCG_INTERPRETER in config-host.h)"
        "$BUILD/qemu-system-i386" -accel help | grep -qx kvm &&
            die "--tci: the build has KVM, the tests could run under it"
        log "--tci: TCG interpreter, accelerators: $("$BUILD/qemu-system-i386" -accel help | tail -n +2 | tr '\n' ' ')"
    fi
}

# --- 4. tests --------------------------------------------------------------

# Timeouts: QEMU's meson.build values (migration 480 s, qmp-cmd 120 s,
# others 60 s) times 3, the machine is shared.
# boot-serial-test 360 s x3. Under --tci all of them x2 again: the
# interpreter is several times slower than TCG's native backend.
declare -A TIMEOUT=([migration-test]=1440 [qmp-cmd-test]=360 [qmp-test]=180 [ivshmem-test]=180 [test-x86-cpuid-compat]=180
                   [cpr-exec-test]=180 [boot-serial-test]=1080 [migration-precopy]=1440)
if [ $TCI = 1 ]; then
    for t in "${!TIMEOUT[@]}"; do TIMEOUT[$t]=$(( TIMEOUT[$t] * 2 )); done
fi
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
         "./tests/qtest/$(test_bin "$name")" --tap -k "$@") > "$log" 2>&1 || rc=$?
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

# -p selects a path and everything below it, and a case run twice in one
# process crashes the harness (SIGSEGV after both passed): of the paths
# given, print "-p PATH" for those that no other given path already covers
# (check_ran then makes sure that every one of them did run).
p_args() {
    local p q covered
    for p in "$@"; do
        covered=0
        for q in "$@"; do case $p in "$q"/*) covered=1 ;; esac; done
        [ $covered = 1 ] || printf '%s\n' -p "$p"
    done
}

# check_ran NAME PATHS...: every path must have its ok/not ok line in the
# test's log. -p does not always reach what lies below a path: with
# '-p /a/b' GLib 2.74 ran /a/b/c but not /a/b/c/d (seen with migration-test
# --full, /precopy/file and /precopy/file/offset/fdset).
check_ran() {
    local name=$1 p missing=()
    shift
    for p in "$@"; do
        awk -v p="$p" '($1 == "ok" && $3 == p) || ($1 == "not" && $4 == p) { f = 1 } END { exit !f }' \
            "$LOGS/$name.log" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    RESULT[$name]=FAIL
    DETAIL[$name]+=", ${#missing[@]} listed case(s) did not run: ${missing[*]}"
    FAILED=1
    log "  FAIL $name: did not run: ${missing[*]}"
}

step_tests() {
    local paths p args=() no_exec=0
    if [ $TCI = 1 ]; then
        # SeaBIOS on isapc, pc and q35: it must print "SeaBIOS" on the
        # serial port (graphics=off), all of it interpreted.
        run_test boot-serial-test
        # What 'make check' runs of migration-test without KVM (no
        # --full), minus postcopy: the precopy and multifd cases. Each
        # boots the guest bootsector (tests/qtest/migration/i386): in a
        # loop, 'incb' on the first byte of every 4 KiB page from 1 to
        # 100 MB (a guest load and store each, dirtying RAM while it is
        # migrated), and after migration the test checks on the
        # destination that the bytes agree.
        paths=$(cd "$BUILD" && QTEST_QEMU_BINARY=./qemu-system-i386 ./tests/qtest/migration-test -l |
                grep -E '/migration/(precopy|multifd)/' | grep -v postcopy || true)
        [ -n "$paths" ] || die "migration-test -l lists no precopy or multifd case"
        echo "$paths" | sed 's/^/    precopy case: /'
        # shellcheck disable=SC2046,SC2086
        mapfile -t args < <(p_args $paths)
        run_test migration-precopy "${args[@]}"
        # shellcheck disable=SC2086
        check_ran migration-precopy $paths
        args=()
    fi
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
    # Without it the listed cases still run, and the test counts as failed
    # (not under --tci: it builds QEMU without KVM on purpose).
    echo "$paths" | grep -q '/migration/mode/exec$' || no_exec=1
    # shellcheck disable=SC2046,SC2086
    mapfile -t args < <(p_args $paths)
    run_test migration-test --full "${args[@]}"
    # shellcheck disable=SC2086
    check_ran migration-test $paths
    if [ $no_exec = 1 ] && [ $TCI = 1 ]; then
        DETAIL[migration-test]+=" (--tci: only mode/reboot, the other cpr cases need KVM)"
    elif [ $no_exec = 1 ]; then
        RESULT[migration-test]=FAIL
        DETAIL[migration-test]+=", the cpr-exec case (/migration/mode/exec) is not registered: it needs read/write access to /dev/kvm"
        FAILED=1
        log "  FAIL migration-test: no /migration/mode/exec case (no usable /dev/kvm)"
    fi
    run_test qmp-cmd-test
    run_test qmp-test
    run_test ivshmem-test
    run_test test-x86-cpuid-compat
    [ $VARIANT = patched ] && run_test cpr-exec-test
    return 0
}

# --- main ------------------------------------------------------------------

log "variant: $FLAVOUR; work dir: $VDIR; jobs: $JOBS (nice 10)"
step "1/5 host packages" step_apt
step "2/5 source ($FLAVOUR)" step_source
step "3/5 configure" step_configure
step "4/5 build" step_build
step "5/5 tests" step_tests

TOTAL=$(( $(date +%s) - T_START ))
{
    echo "native-check $FLAVOUR $(date -u +%Y-%m-%dT%H:%M:%SZ) total ${TOTAL}s"
    for t in "${TESTS[@]}"; do
        printf '%-5s %-22s %5ss  %s\n' "${RESULT[$t]}" "$t" "${DURATION[$t]}" "${DETAIL[$t]}"
    done
} | tee "$VDIR/results.txt"
if [ $FAILED = 0 ]; then
    log "all tests passed ($FLAVOUR), total $TOTAL s"
else
    log "FAILED ($FLAVOUR), total $TOTAL s; logs in $LOGS"
    [ $VARIANT = patched ] && log "to see whether our patches are the cause: sudo bash wasm/native-check.sh --unpatched$( [ $TCI = 0 ] || echo ' --tci')"
    exit 1
fi
