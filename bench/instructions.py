#!/usr/bin/env python3
"""Instructions per guest request on svmm's event-loop thread, under callgrind: a figure that
does not depend on what else the machine runs, for comparing two builds doing the same work.

    bench/instructions.py [--rw randread] [--qd 32] [--top 25] BIN [BIN ...]

For each binary it runs the guest's `mode=bench` workload (the bench.py command line) under
`valgrind --tool=callgrind --separate-threads=yes`, takes the loop thread's profile, counts the
requests by the calls of VirtioBlk.complete and prints instructions (Ir), mallocs, retains and
exclusivity checks per request, then the functions that cost most per request (exclusive).
The guest runs at full speed while callgrind slows svmm, so the number of requests differs from
a plain run; the per-request figures are what to compare."""
import argparse, collections, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
COUNTED = {"malloc": r"^malloc$", "retain": r"^swift_retain$", "release": r"^swift_release$",
           "exclusivity checks": r"^swift_beginAccess$"}


def profile(binary, disk, rw, qd, secs, workdir):
    out = os.path.join(workdir, "callgrind.%p")
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
           binary, "-m", "64M", "-kernel", GUEST, "-append", f"mode=bench qd={qd} secs={secs} rw={rw} bs=4096",
           "-blockdev", f"driver=file,node-name=d0,filename={disk}", "-device", "virtio-blk-device,drive=d0"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=secs * 20 + 120)
    if "BENCH iops=" not in run.stdout:
        sys.exit(f"no BENCH line under callgrind:\n{run.stdout}{run.stderr}")
    # One file per thread; the loop thread is the one that completes virtio-blk requests.
    for name in sorted(os.listdir(workdir)):
        path = os.path.join(workdir, name)
        if re.search(r"-\d+$", name):
            costs, calls, total = parse(path)
            requests = sum(count for fn, count in calls.items() if "VirtioBlkC8complete" in fn)
            if requests:
                return costs, calls, total, requests
    sys.exit("no thread of the profile completed a virtio-blk request")


def parse(path):
    """Exclusive cost per function and call counts per callee, from callgrind's format."""
    names, costs, calls = {}, collections.Counter(), collections.Counter()
    function = callee = None
    skip_cost_line = False
    total = 0

    def name(token):
        match = re.match(r"\((\d+)\)(?: (.*))?", token)
        if not match:
            return token
        if match.group(2):
            names[match.group(1)] = match.group(2)
        return names.get(match.group(1), token)

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                function = name(line[3:])
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                calls[callee] += int(line.split()[0][6:])
                skip_cost_line = True   # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_cost_line:
                    skip_cost_line = False
                    continue
                parts = line.split()
                if len(parts) > 1:
                    costs[function] += int(parts[1])
                    total += int(parts[1])
    return costs, calls, total


def demangle(symbols):
    tool = "/opt/swift/usr/bin/swift-demangle"
    if not os.access(tool, os.X_OK):
        return symbols
    out = subprocess.run([tool, "--simplified", "--compact"], input="\n".join(symbols), capture_output=True, text=True)
    return out.stdout.split("\n")


def report(binary, costs, calls, total, requests, top):
    print(f"\n{binary}\n  {requests:,} requests, {total / requests:,.0f} Ir per request on the loop thread")
    counted = ", ".join(f"{label} {sum(n for fn, n in calls.items() if re.search(pattern, fn.split(' [')[0])) / requests:.2f}"
                        for label, pattern in COUNTED.items())
    print(f"  per request: {counted}")
    items = costs.most_common(top)
    for (symbol, cost), readable in zip(items, demangle([s.split(" [")[0] for s, _ in items])):
        print(f"  {cost / requests:8.1f} Ir {cost * 100 / total:5.1f} %  {readable[:140]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--rw", default="randread", choices=["randread", "randwrite", "read"])
    parser.add_argument("--qd", type=int, default=32)
    parser.add_argument("--secs", type=int, default=3)
    parser.add_argument("--disk-mib", type=int, default=1024)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0:
        sys.exit("valgrind is missing: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="svmm-instructions-") as work:
        disk = os.path.join(work, "bench.raw")
        with open(disk, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(args.disk_mib):
                f.write(chunk)
        for binary in args.binaries:
            with tempfile.TemporaryDirectory(dir=work) as profile_dir:
                report(binary, *profile(binary, disk, args.rw, args.qd, args.secs, profile_dir), args.top)


if __name__ == "__main__":
    main()
