#!/usr/bin/env bash
# `make bench`: svmm vs QEMU vs host, side by side. Extra arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p scratch
python3 bench/bench.py "$@" | tee scratch/bench-results.md
