#!/usr/bin/env bash
# `make test-tsan` / `make test-asan`: `swift test` (unit and KVM integration tests) built with
# ThreadSanitizer or AddressSanitizer; the integration tests start the sanitized svmm too. Every
# process writes its reports to one directory (log_path), so a report from an svmm child that a
# test only waited on fails the run as well as one in the test process. TEST_FILTER narrows the
# tests (swift test --filter). Usage: scripts/test-sanitized.sh thread|address
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
sanitizer=${1:?usage: $0 thread|address}
build=".build-$sanitizer"
logs=$(mktemp -d "${TMPDIR:-/tmp}/svmm-$sanitizer-XXXXXX")
swift build --scratch-path "$build" --sanitize="$sanitizer" --build-tests
filter=()
if [ -n "${TEST_FILTER:-}" ]; then filter=(--filter "$TEST_FILTER"); fi
status=0
# halt_on_error=0: see every report of the run, not only the first; the logs decide.
TSAN_OPTIONS="halt_on_error=0 log_path=$logs/report suppressions=$PWD/scripts/tsan.supp" ASAN_OPTIONS="detect_leaks=0 log_path=$logs/report" \
    SVMM_BIN="$PWD/$build/debug/svmm" GUEST_ELF="$PWD/guest-images/out/blkguest.elf" \
    swift test --scratch-path "$build" --sanitize="$sanitizer" --skip-build "${filter[@]}" || status=1
if grep -l "Sanitizer" "$logs"/report* >/dev/null 2>&1; then
    echo "== $sanitizer sanitizer reports (in $logs):" >&2
    grep -h -A25 "WARNING: ThreadSanitizer\|ERROR: AddressSanitizer" "$logs"/report* | head -300 >&2
    status=1
else
    rm -rf "$logs"
fi
exit $status
