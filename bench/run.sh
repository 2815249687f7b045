#!/usr/bin/env bash
# `make bench`: every suite, svmm vs QEMU (vs the host where one exists), side by side, then one
# table of all their rows (bench/table.py): start, I/O, CPU per I/O and memory (bench.py), nbdcopy
# from each one's export (nbd.py), live migration and restore (migrate.py), mirror to a file and to
# NBD (mirror.py). QUICK=1: each suite short (under two minutes in all), for before/after checks.
# Extra arguments go to bench.py. The table goes to scratch/bench-results.md, each suite's rows to
# bench/results/<date>-<suite>.json (QUICK=1: scratch/quick-<suite>.json, so that a quick check
# never replaces a full run's results, which bench/plot.py draws).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p scratch bench/results
day=$(date -u +%Y-%m-%d)
python=python3
[ -x venv/bin/python ] && python=venv/bin/python
if [ "${QUICK:-0}" = 1 ]; then
    io=(--quick) nbd=(--runs 1 --mib 256) migrate=(--runs 1) mirror=(--runs 1 --mib 256)
    out() { echo "scratch/quick-$1.json"; }
else
    io=() nbd=(--runs 5) migrate=(--runs 5) mirror=(--runs 5)
    out() { echo "bench/results/$day-$1.json"; }
fi
$python bench/bench.py "${io[@]}" --json "$(out bench)" "$@"
$python bench/nbd.py "${nbd[@]}" --json "$(out nbd)"
$python bench/migrate.py "${migrate[@]}" --json "$(out migrate)"
$python bench/mirror.py "${mirror[@]}" --json "$(out mirror)"
echo
echo "== make bench: all suites"
$python bench/table.py "$(out bench)" "$(out nbd)" "$(out migrate)" "$(out mirror)" | tee scratch/bench-results.md
