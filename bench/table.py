#!/usr/bin/env python3
"""`make bench`'s one table: the rows of the results files the suites of one invocation wrote
(bench/results/<date>-<suite>.json, in the shape bench/results.py describes), in the order given,
with the machine and the load each suite saw. Usage: bench/table.py FILE.json [FILE.json ...]"""
import json, sys

import results


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    suites = []
    for path in sys.argv[1:]:
        with open(path) as results_file:
            suites.append(json.load(results_file))
    results.print_table([row for suite in suites for row in suite["rows"]])
    notes = [f"{suite['suite']}: {suite['machine']['date']}, load average {suite['machine']['load'][0]} → "
             f"{suite['machine']['load'][1]}" for suite in suites]
    first = suites[0]["machine"]
    print(f"\n{first['cpu']}, {first['cores']} cores, Linux {first['kernel']}; " + "; ".join(notes) + ".")


if __name__ == "__main__":
    main()
