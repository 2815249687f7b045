#!/usr/bin/env python3
"""make bench-plot: draws the newest results of each suite in bench/results/*.json (written by
make bench and the other bench targets with --json) as one bar chart with gnuplot: for each figure,
how far svmm is ahead of QEMU 7.2 in the same invocation (svmm/QEMU where higher is better,
QEMU/svmm where lower is better, so a bar right of 1 means svmm is ahead). Writes
bench/results/chart.svg and the data file beside it."""
import argparse, glob, json, os, subprocess, sys

# one colour per suite (bench.py, migrate, mirror, nbd, storage-migrate, ...)
COLOURS = ["#3070b0", "#c06020", "#40a040", "#9040a0", "#a08020", "#208080"]
HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def newest_per_suite(paths):
    """The last file (by the date in it) of each suite."""
    chosen = {}
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        suite = result.get("suite", os.path.basename(path))
        if suite not in chosen or result["machine"]["date"] > chosen[suite]["machine"]["date"]:
            chosen[suite] = result
    return chosen


def advantage(row):
    svmm, qemu = row["svmm"]["median"], row["qemu"]["median"]
    if not svmm or not qemu:
        return None
    return svmm / qemu if row["better"] == "higher" else qemu / svmm


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", help="results files (default: bench/results/*.json)")
    parser.add_argument("--out", default=os.path.join(RESULTS, "chart.svg"))
    args = parser.parse_args()
    paths = args.files or sorted(glob.glob(os.path.join(RESULTS, "*.json")))
    if not paths:
        sys.exit("no results in bench/results: run make bench first")
    suites = newest_per_suite(paths)
    lines, dates, loads = [], set(), []
    for index, suite in enumerate(sorted(suites)):
        machine = suites[suite]["machine"]
        dates.add(machine["date"][:10])
        if "load" in machine:
            loads.append(f"{suite} {machine['load'][0]:.1f}–{machine['load'][1]:.1f}")
        for row in suites[suite]["rows"]:
            value = advantage(row)
            if value is not None:
                label = row["figure"].replace('"', "'")
                lines.append(f'"{label}" {value:.3f} {index % len(COLOURS) + 1}')
    data = os.path.splitext(args.out)[0] + ".dat"
    with open(data, "w") as f:
        f.write("\n".join(lines) + "\n")
    height = 140 + 22 * len(lines)
    palette = "\n".join(f"set linetype {i + 1} lc rgb '{c}'" for i, c in enumerate(COLOURS))
    script = f"""
set terminal svg size 1200,{height} dynamic font 'sans,11'
set output '{args.out}'
set title "svmm vs QEMU 7.2 in the same invocation ({", ".join(sorted(dates))}): right of 1, svmm ahead\\n\
{"1-min load average (start–end): " + ", ".join(loads) if loads else ", ".join(sorted(suites))}" noenhanced
set style fill solid 0.8
set boxwidth 0.6
set yrange [-0.5:{len(lines) - 0.5}]
set xrange [0:*]
set ytics nomirror
set grid xtics
set xlabel 'advantage over QEMU (×)'
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 dt 2
{palette}
plot '{data}' using (0.5*$2):0:(0.5*$2):(0.3):3:yticlabels(1) with boxxyerror lc variable notitle, \\
     '' using ($2):0:(sprintf(' %.2f', $2)) with labels left notitle
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except FileNotFoundError:
        sys.exit("gnuplot is missing: make bench-plot installs gnuplot-nox")
    print(f"wrote {args.out} ({len(lines)} figures from {', '.join(sorted(suites))})")


if __name__ == "__main__":
    main()
