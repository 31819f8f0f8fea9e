#!/usr/bin/env bash
# The test command: installs what the tests need (deploy/setup.sh), builds the release
# binaries the lab tests run, checks the ownership model with spin, then runs every test.
# As root the lab tests bring up network namespaces; without root they skip.
# .ci/run calls exactly this script.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deploy/setup.sh
# Leftovers from an interrupted earlier run would make the lab tests fail.
if [[ $(id -u) -eq 0 ]]; then
    deploy/lab.sh down >/dev/null 2>&1 || true
fi
echo "test: $(swift --version 2>&1 | head -1)"
# The code's format (.swift-format: 4 spaces, 120 columns, swift-nio's choices); a finding fails.
swift format lint --strict --recursive Sources Tests Package.swift
if [[ -x model/check.sh ]]; then
    model/check.sh
fi
# libFuzzer over every parser and both bridge cores, 20 s per target (deploy/fuzz.sh --long: 10 min).
deploy/fuzz.sh
swift build -c release
# The Debian package, which PackageTests installs (as root) and runs from its installed paths.
if [[ $(id -u) -eq 0 ]] && command -v dpkg-deb >/dev/null; then
    FTCP_PACKAGE=$(deploy/package.sh)
    export FTCP_PACKAGE
fi
swift test "$@"
