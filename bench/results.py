"""The results file every bench suite writes, in one shape (bench/plot.py draws them all):

    bench/results/<date>-<suite>.json
    {"machine": {kernel, cpu, cores, date, load: [1-min load average at the start, at the end]},
     "suite": NAME,
     "rows": [{"figure", "unit", "better": "higher"|"lower",
               "svmm": {median, min, max, runs}, "qemu": {...}, "host": number or null}]}

Each suite takes `--json PATH` (default: that file for today; `--json ''` writes none)."""
import json, os, statistics, time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
LOAD_AT_START = os.getloadavg()[0]  # when the suite's module was loaded, i.e. before it measured


def spread(values):
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def row(name, unit, svmm, qemu, host=None, better="higher"):
    """One figure: svmm's and QEMU's runs (medians, min-max) and the host's where one exists."""
    return {"figure": name, "unit": unit, "better": better, "svmm": spread(svmm), "qemu": spread(qemu), "host": host}


def machine_info():
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"kernel": os.uname().release, "cpu": model, "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load": [round(LOAD_AT_START, 2), round(os.getloadavg()[0], 2)]}


def default_path(suite):
    return os.path.join(RESULTS, f"{time.strftime('%Y-%m-%d', time.gmtime())}-{suite}.json")


def add_json_argument(parser, suite):
    parser.add_argument("--json", default=default_path(suite),
                        help=f"write the rows here (default bench/results/<date>-{suite}.json; '' for none)")


def write(path, suite, rows):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as out:
        json.dump({"machine": machine_info(), "suite": suite, "rows": rows}, out, indent=1)
    print(f"\nrows written to {path}")


def ratio(r):
    return r["svmm"]["median"] / r["qemu"]["median"] if r["qemu"]["median"] else float("nan")


def print_table(rows):
    """The rows as one markdown table: medians (min–max), svmm/QEMU, and svmm/host where a host figure exists."""
    print("| figure | svmm | QEMU 7.2 | host | svmm/QEMU | svmm/host |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        def cell(side):
            digits = 1 if r["unit"] in ("ms", "µs", "MiB", "s") else 0
            return f"{side['median']:,.{digits}f} ({side['min']:,.{digits}f}–{side['max']:,.{digits}f})"
        host = f"{r['host']:,.0f}" if r["host"] else "–"
        vs_host = f"{r['svmm']['median'] / r['host']:.2f}" if r["host"] else "–"
        print(f"| {r['figure']} ({r['unit']}, {r['better']} is better) | {cell(r['svmm'])} | {cell(r['qemu'])} "
              f"| {host} | {ratio(r):.2f} | {vs_host} |")
