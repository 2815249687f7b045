#!/usr/bin/env bash
# `make bench`: svmm vs QEMU vs host, side by side. QUICK=1 for a short check; extra arguments go
# to bench.py. The table goes to scratch/bench-results.md, the rows to bench/results/<date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p scratch bench/results
args=()
[ "${QUICK:-0}" = 1 ] && args+=(--quick)
python3 bench/bench.py "${args[@]}" --json "bench/results/$(date -u +%Y-%m-%d)-bench.json" "$@" | tee scratch/bench-results.md
