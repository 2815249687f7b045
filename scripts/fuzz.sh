#!/usr/bin/env bash
# make fuzz: builds the libFuzzer binary (ASan + SanitizerCoverage, its own scratch path so the
# plain build stays as it is) and fuzzes each target for FUZZ_SECONDS (default 60) over
# Tests/fuzz-corpus/<target>/. New interesting inputs go to .build-fuzz/corpus/<target>/ (not
# committed); a crash, leak or stall (-timeout) is written to Tests/fuzz-corpus/<target>/crashes/,
# where `make test` (Tests/FuzzTests) replays it until the parser is fixed. Leak checks are off:
# LeakSanitizer reports the lazily made Swift globals (a `static let` built once) as leaks.
#   FUZZ_TARGETS="elf qmp" limits the targets; FUZZ_ARGS passes more libFuzzer flags; FUZZ_CONFIG=debug
#   builds without -O (quicker to build, about 3 times slower to fuzz; -O keeps every trap: bounds,
#   overflow, preconditions).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
SCRATCH=.build-fuzz
TARGETS=${FUZZ_TARGETS:-"elf options qmp nbd-server nbd-client qcow2 virtio state"}

CONFIG=${FUZZ_CONFIG:-release}

SVMM_FUZZ=1 swift build --scratch-path "$SCRATCH" -c "$CONFIG" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --product svmm-fuzz
# A copy runs, so a rebuild while fuzzing (a fix being tried) does not pull the binary away.
BINARY=$SCRATCH/svmm-fuzz.$$
cp "$SCRATCH/$CONFIG/svmm-fuzz" "$BINARY"
trap 'rm -f "$BINARY"' EXIT

status=0
for target in $TARGETS; do
    seeds=Tests/fuzz-corpus/$target
    work=$SCRATCH/corpus/$target
    mkdir -p "$work" "$seeds/crashes"
    # Larger inputs where the format needs room (an image file with its tables, a ring in RAM).
    case $target in
        qcow2|virtio|state) max_len=65536 ;;
        nbd-client) max_len=16384 ;;
        options) max_len=1024 ;;
        *) max_len=4096 ;;
    esac
    echo "== fuzz $target for ${SECONDS_EACH}s"
    if ! ASAN_OPTIONS=detect_leaks=0 FUZZ_TARGET=$target "$BINARY" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
            -max_len=$max_len -print_final_stats=1 -artifact_prefix="$seeds/crashes/" \
            ${FUZZ_ARGS:-} "$work" "$seeds" 2>"$SCRATCH/$target.log"; then
        echo "!! $target: libFuzzer stopped on an input; see $SCRATCH/$target.log and $seeds/crashes/"
        status=1
    fi
    grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)" "$SCRATCH/$target.log" || true
    rmdir "$seeds/crashes" 2>/dev/null || true
done
exit $status
