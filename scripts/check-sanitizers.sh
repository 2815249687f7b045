#!/usr/bin/env bash
# `make check-sanitizers`: svmm built with ThreadSanitizer and with AddressSanitizer, each run
# through the interop suite (real guests, QMP storms, NBD, snapshots); any sanitizer report in a
# VM's log fails the run. Too slow for every `make test`; run it before changing threads or memory code.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
status=0
for sanitizer in thread address; do
    build=".build-$sanitizer"
    # svmm-migrate too: the interop suite runs the one next to SVMM_BIN.
    for product in svmm svmm-migrate; do
        swift build --scratch-path "$build" --sanitize="$sanitizer" --product "$product"
    done
    logs=$(mktemp -d)
    echo "== interop suite with -sanitize=$sanitizer"
    TSAN_OPTIONS="halt_on_error=0 suppressions=$PWD/scripts/tsan.supp" ASAN_OPTIONS="detect_leaks=0" \
        SVMM_BIN="$PWD/$build/debug/svmm" GUEST_ELF="$PWD/guest-images/out/blkguest.elf" PYTHONDONTWRITEBYTECODE=1 \
        venv/bin/python -m pytest -q -p no:cacheprovider --basetemp="$logs" Tests/interop || status=1
    if grep -rl "Sanitizer" "$logs" >/dev/null 2>&1; then
        echo "sanitizer reports ($sanitizer):" >&2
        grep -rh -A20 "WARNING: ThreadSanitizer\|ERROR: AddressSanitizer" "$logs" | head -200 >&2
        status=1
    fi
done
exit $status
