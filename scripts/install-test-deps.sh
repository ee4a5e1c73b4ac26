#!/usr/bin/env bash
# Install what the browser tests (tests/test_fhir_lforms.py, tests/reporting/test_browser.py)
# need: Chromium from the system package manager, and the LHC-Forms and axe-core npm packages,
# unpacked into .cache/lforms/ and .cache/axe-core/ (git-ignored).
#
# Idempotent: anything already present is left alone. It never fails the build: when something
# cannot be installed it says why, and the test skips with the same reason.
set -u

LFORMS_VERSION="40.1.3"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache/lforms/$LFORMS_VERSION"
MARKER="$CACHE/package/dist/lforms/fhir/R4/lformsFHIR.min.js"
AXE_VERSION="4.14.1"
AXE_CACHE="$ROOT/.cache/axe-core/$AXE_VERSION"
AXE_MARKER="$AXE_CACHE/package/axe.min.js"

note() { echo "install-test-deps: $*" >&2; }

# Run a command with a time limit where coreutils' timeout exists.
bounded() {
    local seconds="$1"
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$seconds" "$@"
    else
        "$@"
    fi
}

have_chromium() {
    [ -n "${PAMLIB_CHROMIUM:-}" ] && [ -x "${PAMLIB_CHROMIUM}" ] && return 0
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

install_chromium() {
    if have_chromium; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        note "Chromium is missing and apt-get is not available; the browser test will skip"
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            note "Chromium is missing and installing it needs root; the browser test will skip"
            return 0
        fi
    fi
    note "installing Chromium with apt-get"
    if ! { bounded 600 $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive bounded 900 $sudo apt-get install -y -qq chromium; } \
        >/dev/null 2>&1; then
        note "apt-get could not install Chromium; the browser test will skip"
    fi
}

# npm_fetch NAME VERSION CACHE MARKER TEST: the published tarball of NAME@VERSION, unpacked into
# CACHE (npm pack: no dependency resolution, no install scripts); TEST names what skips without it.
npm_fetch() {
    local name="$1" version="$2" cache="$3" marker="$4" test="$5" work
    if [ -f "$marker" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        note "npm is not available, so $name cannot be fetched; the $test will skip"
        return 0
    fi
    work="$(mktemp -d)"
    note "fetching $name@$version with npm pack"
    if (cd "$work" && bounded 300 npm pack --silent "$name@$version" >/dev/null 2>&1) &&
        mkdir -p "$cache" &&
        tar -xzf "$work/$name-$version.tgz" -C "$cache" &&
        [ -f "$marker" ]; then
        note "$name $version is in ${cache#"$ROOT"/}"
    else
        note "could not fetch $name $version with npm; the $test will skip"
        rm -rf "$cache"
    fi
    rm -rf "$work"
}

install_chromium
npm_fetch lforms "$LFORMS_VERSION" "$CACHE" "$MARKER" "browser test"
npm_fetch axe-core "$AXE_VERSION" "$AXE_CACHE" "$AXE_MARKER" "accessibility test"
exit 0
