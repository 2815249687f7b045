#!/usr/bin/env python3
"""svmm vs QEMU microvm on the same guest image and disk, run alternately in one invocation,
plus host fio on the same file as the physical limit. Prints medians and ratios (markdown)."""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SVMM_BIN compares another build (e.g. the commit before a change) against the same QEMU run.
SVMM = os.environ.get("SVMM_BIN", os.path.join(ROOT, ".build/release/svmm"))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
QEMU = "qemu-system-x86_64"


def svmm_cmd(disk, append, fmt="raw"):
    blockdev = f"driver=file,node-name=d0,filename={disk}" if fmt == "raw" else \
        f"driver=qcow2,node-name=d0,file.driver=file,file.filename={disk}"
    return [SVMM, "-m", "64M", "-kernel", GUEST, "-append", append,
            "-blockdev", blockdev, "-device", "virtio-blk-device,drive=d0"]


def qemu_cmd(disk, append, fmt="raw"):
    return [QEMU, "-M", "microvm,accel=kvm,acpi=off", "-m", "64M", "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio", "-global", "virtio-mmio.force-legacy=false",
            "-kernel", GUEST, "-append", append,
            "-drive", f"file={disk},format={fmt},if=none,id=d0,cache=none,aio=native",
            "-device", "virtio-blk-device,drive=d0", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]


def time_first_line_and_exit(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.readline()
    first = time.perf_counter() - start
    out = proc.stdout.read().decode(errors="replace")
    status = proc.wait()
    total = time.perf_counter() - start
    if status != 1:
        sys.exit(f"run failed (status {status}): {' '.join(cmd)}\n{out}")
    return first, total


def bench_iops(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r"BENCH iops=(\d+) mbps=(\d+)", out.stdout)
    if not match:
        sys.exit(f"no BENCH line from {' '.join(cmd)}:\n{out.stdout}{out.stderr}")
    return int(match.group(1))


def host_fio(disk, rw, qd, secs):
    out = subprocess.run(["fio", "--name=host", f"--filename={disk}", f"--rw={rw}", "--bs=4k", f"--iodepth={qd}",
                          "--direct=1", "--ioengine=libaio", f"--runtime={secs}", "--time_based",
                          "--output-format=json"], capture_output=True, text=True, check=True)
    job = json.loads(out.stdout)["jobs"][0]
    return int(job["read" if "read" in rw else "write"]["iops"])


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--iops-runs", type=int, default=5)
    parser.add_argument("--secs", type=int, default=3)
    parser.add_argument("--disk-mib", type=int, default=1024)
    parser.add_argument("--no-qcow2", action="store_true", help="skip the preallocated qcow2 rows")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="svmm-bench-", dir=os.path.join(ROOT, "scratch") if os.path.isdir(os.path.join(ROOT, "scratch")) else None)
    small = os.path.join(work, "selftest.raw")
    big = os.path.join(work, "bench.raw")
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(args.disk_mib):
            f.write(chunk)
    rows = []
    qcow2_vs_raw = []

    first = {"svmm": [], "qemu": []}
    total = {"svmm": [], "qemu": []}
    for _ in range(args.runs):
        for name, make in (("svmm", svmm_cmd), ("qemu", qemu_cmd)):
            with open(small, "wb") as f:
                f.truncate(64 << 20)
            a, b = time_first_line_and_exit(make(small, "mode=selftest"))
            first[name].append(a)
            total[name].append(b)
    rows.append(("start → first serial line (ms)", median(first["svmm"]) * 1e3, median(first["qemu"]) * 1e3, None))
    rows.append(("start → exit, selftest on 64 MiB (ms)", median(total["svmm"]) * 1e3, median(total["qemu"]) * 1e3, None))

    for rw, qd in (("randread", 1), ("randread", 32), ("randwrite", 32)):
        results = {"svmm": [], "qemu": []}
        append = f"mode=bench qd={qd} secs={args.secs} rw={rw} bs=4096"
        for _ in range(args.iops_runs):
            results["svmm"].append(bench_iops(svmm_cmd(big, append)))
            results["qemu"].append(bench_iops(qemu_cmd(big, append)))
        host = host_fio(big, rw, qd, args.secs)
        rows.append((f"4k {rw} QD{qd} IOPS (raw, 1 GiB)", median(results["svmm"]), median(results["qemu"]), host))

    if not args.no_qcow2:
        qcow2 = os.path.join(work, "bench.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=full", qcow2,
                        f"{args.disk_mib}M"], check=True)
        for rw, qd in (("randread", 32), ("randwrite", 32)):
            append = f"mode=bench qd={qd} secs={args.secs} rw={rw} bs=4096"
            results = {"svmm": [], "qemu": []}
            for _ in range(args.iops_runs):
                results["svmm"].append(bench_iops(svmm_cmd(qcow2, append, "qcow2")))
                results["qemu"].append(bench_iops(qemu_cmd(qcow2, append, "qcow2")))
            raw_row = next(r for r in rows if r[0] == f"4k {rw} QD{qd} IOPS (raw, 1 GiB)")
            rows.append((f"4k {rw} QD{qd} IOPS (qcow2 preallocated)", median(results["svmm"]), median(results["qemu"]), raw_row[3]))
            qcow2_vs_raw.append((rw, median(results["svmm"]) / raw_row[1], median(results["qemu"]) / raw_row[2]))

    print(f"| figure | svmm | QEMU 7.2 | host fio | svmm/QEMU | svmm/host |")
    print(f"|---|---|---|---|---|---|")
    for name, s, q, h in rows:
        ratio = s / q if q else float("nan")
        if "ms" in name:
            print(f"| {name} | {s:.1f} | {q:.1f} | – | {ratio:.2f} | – |")
        else:
            print(f"| {name} | {s:,.0f} | {q:,.0f} | {h:,.0f} | {ratio:.2f} | {s / h:.2f} |")
    for rw, svmm_ratio, qemu_ratio in qcow2_vs_raw:
        print(f"\nqcow2/raw, 4k {rw} QD32: svmm {svmm_ratio:.2f}, QEMU {qemu_ratio:.2f}", end="")
    print(f"\n\n{args.runs} runs each for the timings, {args.iops_runs} × {args.secs} s for IOPS, medians; "
          f"svmm and QEMU alternate in one invocation.")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
