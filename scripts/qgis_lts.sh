#!/usr/bin/env bash
# `make test-qgis-lts`: the plugin's test suites on the current QGIS LTR (3.44, Debian sid) in a chroot.
#
#   scripts/qgis_lts.sh [test]   build the root file system if needed, then the desktop e2e and pytest
#   scripts/qgis_lts.sh rootfs   only build (or check) the cached root file system
#   scripts/qgis_lts.sh shell [COMMAND...]  a shell (or COMMAND) in the chroot, mounted and set up as in `test`
#   scripts/qgis_lts.sh clean    delete the cache
#
# Needs root, debootstrap (installed with apt-get when missing), unshare and chroot. The root file
# system (Debian sid minbase + QGIS, GDAL, torch CPU, scikit-image, scikit-learn, pytest, all from Debian)
# is cached under .cache/qgis-lts/rootfs; it counts as complete only once .cache/qgis-lts/rootfs.stamp
# holds the current package list's key, so an interrupted build or a changed list rebuilds it.
# Every mount lives in a private mount namespace (unshare), so it disappears when the run ends, however
# it ends. The plugin under test is the release zip (`make package`) unpacked into the chroot's build/;
# the e2e copies it from there into a fresh profile. Reports: reports/qgis-lts/ (e2e screenshot, status
# and QGIS log; pytest log; timings).
#
# Environment: QGIS_LTS_MIRROR (default: the Debian mirror in /etc/apt/sources*), QGIS_LTS_SUITE (sid),
# QGIS_LTS_CACHE (.cache/qgis-lts), QGIS_LTS_PYTEST_ARGS ("-q -rfEs tests"), QGIS_LTS_E2E_TIMEOUT (900),
# QGIS_LTS_E2E (1; 0 skips the desktop e2e, e.g. to rerun a few tests with QGIS_LTS_PYTEST_ARGS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/scripts/qgis_lts.sh"
CACHE=${QGIS_LTS_CACHE:-$ROOT/.cache/qgis-lts}
ROOTFS=$CACHE/rootfs
STAMP=$CACHE/rootfs.stamp
SUITE=${QGIS_LTS_SUITE:-sid}
REPORTS=$ROOT/reports/qgis-lts
PYTEST_ARGS=${QGIS_LTS_PYTEST_ARGS:--q -rfEs tests}
E2E_TIMEOUT=${QGIS_LTS_E2E_TIMEOUT:-900}
E2E=${QGIS_LTS_E2E:-1}
PACKAGES=(qgis python3-qgis qgis-providers xvfb xauth python3-gdal python3-numpy python3-scipy
          python3-sklearn python3-skimage python3-torch python3-pytest
          fonts-open-sans)  # QGIS's default text formats use Open Sans: offline it logs "font installation failed"
APT_OPTS=(-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0)
KEY=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-16)

log() { printf '[qgis-lts %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mirror() {
    if [ -n "${QGIS_LTS_MIRROR:-}" ]; then echo "$QGIS_LTS_MIRROR"; return; fi
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v '^\s*#' | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | head -n1 | tr -d ' ') || true
    echo "${m:-http://deb.debian.org/debian}"
}

# Mount points under DIR in this namespace, deepest first.
mounts_under() { findmnt -rn -o TARGET | awk -v d="${1%/}" '$0 == d || index($0, d "/") == 1' | sort -r; }

umount_under() {
    local m
    for m in $(mounts_under "$1"); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

safe_rm() {  # rm -rf DIR, refusing while anything is mounted below it
    [ -e "$1" ] || return 0
    [ -z "$(mounts_under "$1")" ] || die "something is still mounted under $1; not deleting it"
    rm -rf --one-file-system "$1"
}

mount_system() {  # proc, sys, dev (with a private /dev/shm and /dev/pts) under rootfs $1
    local r=$1
    mount -t proc proc "$r/proc"
    mount --bind /sys "$r/sys"
    mount --bind /dev "$r/dev"
    mount -t tmpfs -o mode=1777 shm "$r/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts" 2>/dev/null || true
}

bind() {  # bind SRC DST [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2"
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

# ---------------------------------------------------------------------------------------------------
# Root file system

rootfs_ok() { [ -f "$STAMP" ] && [ -d "$ROOTFS" ] && grep -qx "key=$KEY" "$STAMP"; }

inner_build() {  # runs in a private mount namespace: apt inside the fresh debootstrap at $1
    local r=$1
    trap "umount_under '$r'" EXIT
    mount_system "$r"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
        bash -c "apt-get ${APT_OPTS[*]} update -q && apt-get ${APT_OPTS[*]} install -y -q ${PACKAGES[*]} && apt-get clean"
}

build_rootfs() {
    local partial=$CACHE/rootfs.partial mirror_url t0
    mirror_url=$(mirror)
    command -v debootstrap >/dev/null || {
        log "installing debootstrap on the host"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    }
    rm -f "$STAMP"
    safe_rm "$ROOTFS"
    safe_rm "$partial"
    mkdir -p "$CACHE"
    local blog=$CACHE/rootfs-build.log
    : >"$blog"
    log "debootstrap --variant=minbase $SUITE from $mirror_url (log: $blog)"
    t0=$SECONDS
    debootstrap --variant=minbase "$SUITE" "$partial" "$mirror_url" >>"$blog" 2>&1 \
        || { tail -n 30 "$blog" >&2; die "debootstrap failed (log: $blog)"; }
    timing "rootfs: debootstrap" $((SECONDS - t0))
    # No services in a chroot; no docs or man pages.
    printf '#!/bin/sh\nexit 101\n' >"$partial/usr/sbin/policy-rc.d"
    chmod 755 "$partial/usr/sbin/policy-rc.d"
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
        >"$partial/etc/dpkg/dpkg.cfg.d/01-nodoc"
    log "apt-get install ${PACKAGES[*]}"
    t0=$SECONDS
    unshare --mount --propagation private bash "$SELF" __inner-build "$partial" >>"$blog" 2>&1 \
        || { tail -n 30 "$blog" >&2; die "apt-get in the chroot failed (log: $blog)"; }
    timing "rootfs: apt-get install" $((SECONDS - t0))
    [ -z "$(mounts_under "$partial")" ] || die "mounts left under $partial"
    mv "$partial" "$ROOTFS"
    {
        echo "key=$KEY"
        echo "suite=$SUITE"
        echo "mirror=$mirror_url"
        echo "built=$(date -u +%FT%TZ)"
        chroot "$ROOTFS" dpkg-query -W -f '${Package}=${Version}\n' qgis python3 python3-torch python3-numpy \
            python3-gdal python3-skimage python3-sklearn python3-scipy python3-pytest
    } >"$STAMP.tmp"
    mv "$STAMP.tmp" "$STAMP"  # written last: without it the cache counts as incomplete
    log "root file system ready: $ROOTFS"
}

ensure_rootfs() {
    if rootfs_ok; then
        log "cached root file system: $ROOTFS ($(grep -m1 '^qgis=' "$STAMP"))"
    else
        local t0=$SECONDS
        build_rootfs
        timing "rootfs: total build" $((SECONDS - t0))
    fi
}

# ---------------------------------------------------------------------------------------------------
# Test run

timing() { printf '%-34s %5d s\n' "$1" "$2" | tee -a "$REPORTS/timings.txt" >&2; }

# Prepare the per-run mount sources: the release zip unpacked, an empty /tmp.
prepare_run() {
    mkdir -p "$REPORTS"
    local version zip
    version=$(sed -n 's/^version=//p' "$ROOT/metadata.txt")
    zip=$ROOT/dist/diffclip_qgis-$version.zip
    log "make package (the plugin is pure Python: the host builds the zip the chroot installs)"
    make -C "$ROOT" -s package >/dev/null
    [ -f "$zip" ] || die "make package did not write $zip"
    safe_rm "$CACHE/run"
    mkdir -p "$CACHE/run/plugins" "$CACHE/run/tmp"
    chmod 1777 "$CACHE/run/tmp"
    python3 -m zipfile -e "$zip" "$CACHE/run/plugins/"
    [ -f "$CACHE/run/plugins/diffclip_qgis/metadata.txt" ] || die "$zip has no diffclip_qgis/metadata.txt"
}

inner_mounts() {  # in the private namespace: system dirs, the checkout, shared data, plugin, reports, /tmp
    mount_system "$ROOTFS"
    bind "$CACHE/run/tmp" "$ROOTFS/tmp"
    bind "$ROOT" "$ROOTFS$ROOT"
    bind "$CACHE/run/plugins" "$ROOTFS$ROOT/build"   # build/diffclip_qgis = the unpacked zip
    bind "$REPORTS" "$ROOTFS$ROOT/reports"           # the e2e's fixed reports/ paths land in reports/qgis-lts/
    if [ -d "$(dirname "$ROOT")/shared" ]; then
        bind "$(dirname "$ROOT")/shared" "$ROOTFS$(dirname "$ROOT")/shared" ro
    fi
}

in_chroot() {  # in_chroot COMMAND...: the Makefile's PLUGIN_ENV, with the chroot's system python3
    chroot "$ROOTFS" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/tmp/home LANG=C.UTF-8 TMPDIR=/tmp TERM="${TERM:-dumb}" PYTHONDONTWRITEBYTECODE=1 \
        QGIS_PLUGINPATH="$ROOT/build" PYTHONPATH="$ROOT/build" \
        QT_QPA_PLATFORM=offscreen OMP_WAIT_POLICY=PASSIVE \
        bash -c 'mkdir -p "$HOME" && cd "$0" && exec "$@"' "$ROOT" "$@"
}

inner_test() {
    trap 'umount_under "$ROOTFS"' EXIT
    inner_mounts
    local rc_e2e=0 rc_pytest t0
    log "$(in_chroot sh -c 'qgis_process.bin --version 2>/dev/null | grep -m1 QGIS; python3 --version')"

    if [ "$E2E" != 0 ]; then
        log "desktop e2e: python3 tests/desktop/run_desktop_e2e.py (Xvfb; reports/qgis-lts/e2e_desktop.*)"
        t0=$SECONDS
        in_chroot python3 tests/desktop/run_desktop_e2e.py --timeout "$E2E_TIMEOUT" || rc_e2e=$?
        timing "e2e desktop (rc=$rc_e2e)" $((SECONDS - t0))
    fi

    log "pytest: python3 -m pytest $PYTEST_ARGS (log: reports/qgis-lts/pytest.log)"
    t0=$SECONDS
    set +e
    # shellcheck disable=SC2086
    in_chroot python3 -m pytest -p no:cacheprovider --junitxml="$ROOT/reports/pytest.xml" $PYTEST_ARGS 2>&1 \
        | tee "$REPORTS/pytest.log"
    rc_pytest=${PIPESTATUS[0]}
    set -e
    timing "pytest (rc=$rc_pytest)" $((SECONDS - t0))
    suite_times "$REPORTS/pytest.xml" | tee -a "$REPORTS/timings.txt" >&2 || true

    [ "$rc_e2e" = 0 ] && [ "$rc_pytest" = 0 ]
}

suite_times() {  # per-suite test counts and summed test time from pytest's JUnit XML
    python3 - "$1" <<'PY'
import re, sys, xml.etree.ElementTree as ET
groups = {}
for case in ET.parse(sys.argv[1]).iter("testcase"):
    mod = case.get("classname", "")
    name = ("processing" if re.search(r"\.test_(processing_\w+|qgis_process)$", mod) else
            "dock" if re.search(r"\.test_dock\w*$", mod) else
            "unit" if ".unit." in mod else "other (tests/qgis)")
    g = groups.setdefault(name, [0, 0, 0, 0.0])
    g[0] += 1
    g[1] += any(c.tag in ("failure", "error") for c in case)
    g[2] += any(c.tag == "skipped" for c in case)
    g[3] += float(case.get("time") or 0)
for name, (n, failed, skipped, seconds) in sorted(groups.items()):
    print(f"  pytest {name:<20} {n:4d} tests {failed:3d} failed {skipped:3d} skipped {seconds:7.0f} s")
PY
}

inner_shell() {
    trap 'umount_under "$ROOTFS"' EXIT
    inner_mounts
    if [ $# -gt 0 ]; then in_chroot "$@"; else in_chroot bash -i || true; fi
}

# ---------------------------------------------------------------------------------------------------

main() {
    local cmd=${1:-test}
    case "$cmd" in
        __inner-build) inner_build "$2"; return ;;
        __inner-test) inner_test; return ;;
        __inner-shell) shift; inner_shell "$@"; return ;;
    esac
    [ "$(id -u)" = 0 ] || die "needs root (chroot, mount): run as root or with sudo"
    mkdir -p "$CACHE" "$REPORTS"
    exec 9>"$CACHE/lock"
    flock -n 9 || { log "waiting for another run on this cache"; flock 9; }
    case "$cmd" in
        rootfs) ensure_rootfs ;;
        test|shell)
            local t0=$SECONDS rc=0
            [ "$cmd" = shell ] || : >"$REPORTS/timings.txt"
            ensure_rootfs
            prepare_run
            shift || true
            unshare --mount --propagation private bash "$SELF" "__inner-$cmd" "$@" || rc=$?
            [ -z "$(mounts_under "$ROOTFS")" ] || log "WARNING: mounts left under $ROOTFS"
            [ "$cmd" = shell ] || timing "total (rc=$rc)" $((SECONDS - t0))
            return "$rc" ;;
        clean) safe_rm "$CACHE" ;;
        *) die "unknown command $cmd (test, rootfs, shell, clean)" ;;
    esac
}

main "$@"
