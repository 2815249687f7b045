#!/usr/bin/env python3
"""A/B two svmm builds with bench.py: runs it for build A, then B, alternately, ROUNDS times,
and prints each row's median svmm figure and median svmm/QEMU ratio per build (each bench.py
invocation measures QEMU too, so the ratio corrects for what the machine was doing meanwhile).

    bench/compare.py --a /work/wt-base/.build/release/svmm --b .build/release/svmm \\
        --rounds 3 -- --runs 3 --iops-runs 3 --secs 2 --no-qcow2
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_bench(binary, bench_args):
    with tempfile.TemporaryDirectory() as scratch:
        result = os.path.join(scratch, "rows.json")
        out = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), *bench_args, "--json", result],
                             env={**os.environ, "SVMM_BIN": binary}, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench.py failed for {binary}:\n{out.stdout}{out.stderr}")
        with open(result) as rows:
            measured = json.load(rows)["rows"]
    return {r["figure"]: (r["svmm"]["median"], r["svmm"]["median"] / r["qemu"]["median"] if r["qemu"]["median"] else float("nan"))
            for r in measured}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="build A's svmm binary")
    parser.add_argument("--b", required=True, help="build B's svmm binary")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("bench_args", nargs="*", help="passed to bench.py (after --)")
    args = parser.parse_args()
    for binary in (args.a, args.b):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} is not an executable")

    results = {"A": [], "B": []}
    for round_index in range(args.rounds):
        for label, binary in (("A", args.a), ("B", args.b)):
            rows = run_bench(binary, args.bench_args)
            results[label].append(rows)
            summary = ", ".join(f"{name}: {value:,.1f} ({ratio:.2f}x)" for name, (value, ratio) in rows.items())
            print(f"round {round_index + 1} {label}: {summary}", flush=True)

    names = list(results["A"][0])
    print(f"\nA = {args.a}\nB = {args.b}\n{args.rounds} rounds, alternating; medians\n")
    print("| figure | A | B | B/A | svmm/QEMU A | svmm/QEMU B |")
    print("|---|---|---|---|---|---|")
    for name in names:
        a = statistics.median(r[name][0] for r in results["A"])
        b = statistics.median(r[name][0] for r in results["B"])
        ratio_a = statistics.median(r[name][1] for r in results["A"])
        ratio_b = statistics.median(r[name][1] for r in results["B"])
        print(f"| {name} | {a:,.1f} | {b:,.1f} | {b / a:.2f} | {ratio_a:.2f} | {ratio_b:.2f} |")


if __name__ == "__main__":
    main()
