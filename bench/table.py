#!/usr/bin/env python3
"""`make bench`'s one table: the rows of the results files the suites of one invocation wrote
(bench/results/<date>-<suite>.json, in the shape bench/results.py describes), in the order given,
with the machine and the load each suite saw. Usage: bench/table.py FILE.json [FILE.json ...]"""
import json, sys

import results


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows, notes = [], []
    for path in sys.argv[1:]:
        with open(path) as results_file:
            data = json.load(results_file)
        rows += data["rows"]
        machine = data["machine"]
        notes.append(f"{data['suite']}: {machine['date']}, load average {machine['load'][0]} → {machine['load'][1]}")
    results.print_table(rows)
    first = json.load(open(sys.argv[1]))["machine"]
    print(f"\n{first['cpu']}, {first['cores']} cores, Linux {first['kernel']}; " + "; ".join(notes) + ".")


if __name__ == "__main__":
    main()
