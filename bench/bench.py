#!/usr/bin/env python3
"""svmm vs QEMU microvm on the same guest image and disk, run alternately in one invocation,
plus host fio on the same file as the physical limit. Prints medians and ratios (markdown)."""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time

import results
from results import row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SVMM_BIN compares another build (e.g. the commit before a change) against the same QEMU run.
SVMM = os.environ.get("SVMM_BIN", os.path.join(ROOT, ".build/release/svmm"))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
QEMU = "qemu-system-x86_64"


# --iothread OPTIONS (e.g. poll-max-ns=32768): both VMMs get `-object iothread,id=io0,OPTIONS` and
# the disk's device `iothread=io0` (busy-polling of the queue, QEMU's poll-max-ns).
IOTHREAD = None


def iothread_args():
    return ["-object", f"iothread,id=io0{',' + IOTHREAD if IOTHREAD else ''}"] if IOTHREAD is not None else []


def device_arg():
    return "virtio-blk-device,drive=d0" + (",iothread=io0" if IOTHREAD is not None else "")


def svmm_cmd(disk, append, fmt="raw"):
    blockdev = f"driver=file,node-name=d0,filename={disk}" if fmt == "raw" else \
        f"driver=qcow2,node-name=d0,file.driver=file,file.filename={disk}"
    return [SVMM, "-m", "64M", "-kernel", GUEST, "-append", append, *iothread_args(),
            "-blockdev", blockdev, "-device", device_arg()]


def qemu_cmd(disk, append, fmt="raw"):
    return [QEMU, "-M", "microvm,accel=kvm,acpi=off", "-m", "64M", "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio", "-global", "virtio-mmio.force-legacy=false",
            "-kernel", GUEST, "-append", append, *iothread_args(),
            "-drive", f"file={disk},format={fmt},if=none,id=d0,cache=none,aio=native",
            "-device", device_arg(), "-device", "isa-debug-exit,iobase=0x501,iosize=1"]


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


def bench_iops(cmd, secs=None, probe=None):
    """Runs a mode=bench guest; returns IOPS, or with `probe` (its `secs`) a dict with the IOPS,
    MB/s and what `probe_process` saw of the running process."""
    if probe is None:
        return bench_run(cmd)["iops"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = probe_process(proc.pid, secs)
    if proc.poll() is not None:
        seen = None  # it ended before the window did: what was read may be a zombie's (nothing)
    out, _ = proc.communicate(timeout=120)
    result = parse_bench(out, cmd)
    if seen:
        result["cpu_us_per_io"] = seen["cpu_s"] / (seen["window_s"] * result["iops"]) * 1e6
        result["sys_us_per_io"] = seen["sys_s"] / (seen["window_s"] * result["iops"]) * 1e6
        result["mem_mib"] = seen["mem_mib"]
        result["anon_mib"] = seen["anon_mib"]
    return result


def bench_run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return parse_bench(out.stdout + out.stderr, cmd)


def parse_bench(out, cmd):
    match = re.search(r"BENCH iops=(\d+) mbps=(\d+)", out)
    if not match:
        sys.exit(f"no BENCH line from {' '.join(cmd)}:\n{out}")
    return {"iops": int(match.group(1)), "mbps": int(match.group(2))}


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def vmm_thread_seconds(pid, system_only=False):
    """CPU seconds (user+sys) of the process's threads that do not run the guest: a vCPU thread is
    one with guest time (/proc/PID/task/TID/stat field 43), and the guest polls there all the time,
    so its time says how long the run was, not what the VMM costs. svmm's event loop and QEMU's main
    loop (and both one's worker threads) are what is left."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        utime, stime, guest = int(fields[11]), int(fields[12]), int(fields[40])
        if guest == 0:
            total += stime if system_only else utime + stime
    return total / CLOCK_TICK


def memory_beyond_guest_ram(pid, ram_bytes=64 << 20, field="Rss:"):
    """Resident MiB of every mapping in /proc/PID/smaps but the guest's RAM (the anonymous
    mapping at least as large as the guest's memory). `field="Anonymous:"`: only the pages that
    are the process's own (heap, stacks, written data), not the binary's and libraries' file pages."""
    size, name = 0, ""
    total = 0
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                start, end = (int(x, 16) for x in head[0].split("-"))
                size, name = end - start, head[5] if len(head) > 5 else ""
            elif head[0] == field:
                if name or size < ram_bytes:
                    total += int(head[1]) * 1024
    return total / (1 << 20)


def probe_process(pid, secs):
    """Samples the running process from 1 s in until 0.4 s before its bench window ends: VMM
    CPU seconds over that window, and memory beyond guest RAM at the end of it."""
    if secs < 2:
        return None
    time.sleep(1.0)
    start, cpu_start, sys_start = time.monotonic(), vmm_thread_seconds(pid), vmm_thread_seconds(pid, system_only=True)
    time.sleep(secs - 1.4)
    try:
        cpu, window = vmm_thread_seconds(pid) - cpu_start, time.monotonic() - start
        return {"cpu_s": cpu, "sys_s": vmm_thread_seconds(pid, system_only=True) - sys_start, "window_s": window, "mem_mib": memory_beyond_guest_ram(pid),
                "anon_mib": memory_beyond_guest_ram(pid, field="Anonymous:")}
    except FileNotFoundError:
        return None


def host_fio(disk, rw, qd, secs, bs="4k"):
    out = subprocess.run(["fio", "--name=host", f"--filename={disk}", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}",
                          "--direct=1", "--ioengine=libaio", f"--runtime={secs}", "--time_based",
                          "--output-format=json"], capture_output=True, text=True, check=True)
    job = json.loads(out.stdout)["jobs"][0]
    side = job["read" if "read" in rw else "write"]
    return int(side["iops"]) if bs == "4k" else side["bw_bytes"] / 1e6


def median(values):
    return statistics.median(values)


def start_rows(args, work):
    small = os.path.join(work, "selftest.raw")
    first = {"svmm": [], "qemu": []}
    total = {"svmm": [], "qemu": []}
    for _ in range(args.runs):
        for name, make in (("svmm", svmm_cmd), ("qemu", qemu_cmd)):
            with open(small, "wb") as f:
                f.truncate(64 << 20)
            a, b = time_first_line_and_exit(make(small, "mode=selftest"))
            first[name].append(a * 1e3)
            total[name].append(b * 1e3)
    return [row("start → first serial line", "ms", first["svmm"], first["qemu"], better="lower"),
            row("start → exit, selftest on 64 MiB", "ms", total["svmm"], total["qemu"], better="lower")]


def io_rows(args, disk, fmt, label, host_rows):
    """4k random I/O and 1 MiB sequential reads; at QD32 randread also the VMM's CPU per I/O and
    its memory beyond guest RAM."""
    rows, cpu, mem, anon = [], {"svmm": [], "qemu": []}, {"svmm": [], "qemu": []}, {"svmm": [], "qemu": []}
    sys_cpu = {"svmm": [], "qemu": []}
    cases = [("randread", 1), ("randread", 32), ("randwrite", 32)]
    for rw, qd in cases:
        iops = {"svmm": [], "qemu": []}
        append = f"mode=bench qd={qd} secs={args.secs} rw={rw} bs=4096"
        probed = rw == "randread" and qd == 32 and fmt == "raw"
        for _ in range(args.iops_runs):
            for name, make in (("svmm", svmm_cmd), ("qemu", qemu_cmd)):
                result = bench_iops(make(disk, append, fmt), args.secs, probe=True) if probed else \
                    {"iops": bench_iops(make(disk, append, fmt))}
                iops[name].append(result["iops"])
                if "cpu_us_per_io" in result:
                    cpu[name].append(result["cpu_us_per_io"])
                    sys_cpu[name].append(result["sys_us_per_io"])
                    mem[name].append(result["mem_mib"])
                    anon[name].append(result["anon_mib"])
        key = (rw, qd)
        if key not in host_rows:
            host_rows[key] = host_fio(disk, rw, qd, args.secs)
        rows.append(row(f"4k {rw} QD{qd} ({label})", "IOPS", iops["svmm"], iops["qemu"], host_rows[key]))
    seq = {"svmm": [], "qemu": []}
    append = f"mode=bench qd=8 secs={args.secs} rw=read bs=1048576"
    for _ in range(args.iops_runs):
        for name, make in (("svmm", svmm_cmd), ("qemu", qemu_cmd)):
            seq[name].append(bench_run(make(disk, append, fmt))["mbps"])
    if ("read", 8) not in host_rows:
        host_rows[("read", 8)] = host_fio(disk, "read", 8, args.secs, bs="1M")
    rows.append(row(f"1 MiB sequential read QD8 ({label})", "MB/s", seq["svmm"], seq["qemu"], host_rows[("read", 8)]))
    if fmt == "raw":
        if cpu["svmm"] and cpu["qemu"]:
            rows.append(row("VMM CPU time per I/O, 4k randread QD32", "µs", cpu["svmm"], cpu["qemu"], better="lower"))
            rows.append(row("VMM CPU time per I/O in the kernel (sys part)", "µs", sys_cpu["svmm"], sys_cpu["qemu"], better="lower"))
            rows.append(row("memory beyond guest RAM (Rss)", "MiB", mem["svmm"], mem["qemu"], better="lower"))
            rows.append(row("memory beyond guest RAM, anonymous only", "MiB", anon["svmm"], anon["qemu"], better="lower"))
    return rows


def write_random_file(path, mib):
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(mib):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    # Let the file's writeback settle, so O_DIRECT reads measure the disk, not the flush.
    subprocess.run(["sync"], check=True)
    time.sleep(2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--iops-runs", type=int, default=5)
    parser.add_argument("--secs", type=int, default=3)
    parser.add_argument("--disk-mib", type=int, default=1024)
    parser.add_argument("--no-qcow2", action="store_true", help="skip the preallocated qcow2 rows")
    parser.add_argument("--quick", action="store_true", help="few short runs on a small disk (under 2 minutes)")
    parser.add_argument("--iothread", metavar="OPTIONS",
                        help="run the disk in an iothread on both VMMs: -object iothread,id=io0,OPTIONS "
                             "(e.g. poll-max-ns=32768; '' for QEMU's defaults)")
    parser.add_argument("--json", help="also write the rows here (make bench: bench/results/<date>.json)")
    args = parser.parse_args()
    global IOTHREAD
    IOTHREAD = args.iothread
    if args.quick:
        args.runs, args.iops_runs, args.secs, args.disk_mib, args.no_qcow2 = 3, 1, 3, 256, True

    scratch = os.path.join(ROOT, "scratch")
    work = tempfile.mkdtemp(prefix="svmm-bench-", dir=scratch if os.path.isdir(scratch) else None)
    try:
        big = os.path.join(work, "bench.raw")
        write_random_file(big, args.disk_mib)
        host_rows = {}
        rows = start_rows(args, work)
        rows += io_rows(args, big, "raw", f"raw, {args.disk_mib} MiB", host_rows)
        if not args.no_qcow2:
            qcow2 = os.path.join(work, "bench.qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=full", qcow2,
                            f"{args.disk_mib}M"], check=True)
            rows += io_rows(args, qcow2, "qcow2", "qcow2 preallocated", {k: v for k, v in host_rows.items()})
    finally:
        subprocess.run(["rm", "-rf", work])
    results.print_table(rows)
    print(f"\n{args.runs} runs each for the timings, {args.iops_runs} × {args.secs} s for I/O, medians (min–max); "
          f"svmm and QEMU alternate in one invocation. The host column is fio (libaio, O_DIRECT) on the same file."
          + (f" Both with -object iothread,id=io0{',' + IOTHREAD if IOTHREAD else ''} and the disk's iothread=io0."
             if IOTHREAD is not None else ""))
    print(f"Load average (1 min) {results.LOAD_AT_START:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.")
    suite = "bench.py"
    if IOTHREAD is not None:  # its own suite in bench/results (plot.py draws both)
        suite += f" iothread {IOTHREAD or 'defaults'}"
        for r in rows:
            r["figure"] += f" [iothread {IOTHREAD or 'defaults'}]"
    results.write(args.json, suite, rows)


if __name__ == "__main__":
    main()
