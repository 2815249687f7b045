#!/usr/bin/env python3
"""blockdev-mirror of a 1 GiB raw disk (`--mib N`: another size; full of data) to a local raw file and to an NBD export on
loopback (qemu-nbd, the same server for both), with the guest idle and with the guest writing
(mode=writer over its first 64 MiB), svmm vs QEMU 7.2 alternately in one run; plus `dd
oflag=direct` between the same files as the host's limit. Time from blockdev-mirror to
BLOCK_JOB_READY and MB/s (1 GiB / that time), and the CPU time the VMM process used meanwhile
(all threads: a figure the machine's load disturbs much less than the wall clock), medians,
ratios (markdown)."""
import argparse, os, statistics, subprocess, sys, tempfile, time

from qmp import Qmp
import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVMM = os.environ.get("SVMM_BIN", os.path.join(ROOT, ".build/release/svmm"))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
QEMU = "qemu-system-x86_64"
GiB = 1 << 30
SIZE = GiB  # --mib
MiB = 1 << 20


def size_label():
    return "1 GiB" if SIZE == GiB else f"{SIZE // MiB} MiB"


def vm_args(vmm, source, append, sock):
    args = [SVMM] if vmm == "svmm" else [QEMU, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config",
                                         "-display", "none", "-global", "virtio-mmio.force-legacy=false"]
    return args + ["-m", "64M", "-serial", "none", "-kernel", GUEST, "-append", append,
                   "-blockdev", f"driver=file,node-name=src,filename={source},cache.direct=on,aio=native",
                   "-device", "virtio-blk-device,drive=src,id=vblk0", "-qmp", f"unix:{sock},server=on,wait=off"]


def cpu_seconds(pid):
    """User + system time the process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(vmm, workdir, source, target, guest_mode, nbd_socket):
    sock = os.path.join(workdir, f"{vmm}.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    append = "mode=idle" if guest_mode == "idle" else "mode=writer size=131072"
    proc = subprocess.Popen(vm_args(vmm, source, append, sock), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        qmp = Qmp(sock)
        if target == "file":
            path = os.path.join(workdir, "target.raw")
            with open(path, "wb") as f:
                f.truncate(SIZE)
            qmp.cmd("blockdev-add", driver="file", **{"node-name": "tgt"}, filename=path,
                    cache={"direct": True}, aio="native")
        else:
            qmp.cmd("blockdev-add", driver="nbd", **{"node-name": "tgt"}, export="exp",
                    server={"type": "unix", "path": nbd_socket})
        if guest_mode == "writer":
            time.sleep(1.0)  # the writer is past its first stamping
        start, cpu = time.perf_counter(), cpu_seconds(proc.pid)
        qmp.cmd("blockdev-mirror", **{"job-id": "job0"}, device="src", target="tgt", sync="full")
        qmp.wait("BLOCK_JOB_READY")
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(proc.pid) - cpu
        qmp.cmd("block-job-cancel", device="job0", force=True)
        qmp.wait("BLOCK_JOB_CANCELLED")
        qmp.cmd("quit")
        proc.wait(30)
        return elapsed, cpu
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def dd_seconds(source, target):
    with open(target, "wb") as f:
        f.truncate(SIZE)
    start = time.perf_counter()
    subprocess.run(["dd", f"if={source}", f"of={target}", "bs=1M", "iflag=direct", "oflag=direct", "conv=notrunc"],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mib", type=int, default=1024, help="the disk's size (make bench QUICK=1: 256)")
    results.add_json_argument(parser, "mirror")
    args = parser.parse_args()
    global SIZE
    SIZE = args.mib * MiB
    for needed in (SVMM, GUEST):
        if not os.path.exists(needed):
            sys.exit(f"{needed} is missing: make build")
    workdir = tempfile.mkdtemp(prefix="bench-mirror-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    source = os.path.join(workdir, "source.raw")
    block = os.urandom(MiB)
    with open(source, "wb") as f:
        for _ in range(SIZE // MiB):
            f.write(block)
        os.fsync(f.fileno())  # else its write-back slows whichever VMM runs first
    nbd_file = os.path.join(workdir, "export.raw")
    with open(nbd_file, "wb") as f:
        f.truncate(SIZE)
    nbd_socket = os.path.join(workdir, "nbd.sock")
    server = subprocess.Popen(["qemu-nbd", "-f", "raw", "-x", "exp", "-k", nbd_socket, "-t", "-e", "4",
                               "--cache=none", "--aio=native", nbd_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(nbd_socket):
            time.sleep(0.02)
        rows, json_rows = [], []
        dd = statistics.median(dd_seconds(source, os.path.join(workdir, "dd.raw")) for _ in range(args.runs))
        for target in ("file", "nbd"):
            for guest_mode in ("idle", "writer"):
                times = {"svmm": [], "qemu": []}
                cpus = {"svmm": [], "qemu": []}
                for run in range(args.runs):
                    # alternately, each first every other run, so both see the same machine load
                    for vmm in ("svmm", "qemu") if run % 2 == 0 else ("qemu", "svmm"):
                        elapsed, cpu = one_run(vmm, workdir, source, target, guest_mode, nbd_socket)
                        times[vmm].append(elapsed)
                        cpus[vmm].append(cpu)
                svmm, qemu = statistics.median(times["svmm"]), statistics.median(times["qemu"])
                rows.append((target, guest_mode, svmm, qemu, statistics.median(cpus["svmm"]), statistics.median(cpus["qemu"])))
                json_rows.append(results.row(f"mirror {size_label()} to {target}, guest {guest_mode}: time to READY", "s",
                                             times["svmm"], times["qemu"], better="lower"))
                json_rows.append(results.row(f"mirror {size_label()} to {target}, guest {guest_mode}: VMM CPU", "s",
                                             cpus["svmm"], cpus["qemu"], better="lower"))
        print(f"mirror of {size_label()} (random data), sync=full, medians of {args.runs} runs; dd oflag=direct: "
              f"{dd:.2f} s ({SIZE / MiB / dd:.0f} MB/s)\n")
        print("| target | guest | svmm to READY | QEMU to READY | svmm MB/s | QEMU MB/s | svmm/QEMU throughput | svmm / dd "
              "| svmm CPU s | QEMU CPU s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for target, guest_mode, svmm, qemu, svmm_cpu, qemu_cpu in rows:
            print(f"| {target} | {guest_mode} | {svmm:.2f} s | {qemu:.2f} s | {SIZE / MiB / svmm:.0f} | {SIZE / MiB / qemu:.0f} | "
                  f"{qemu / svmm:.2f}x | {dd / svmm:.2f} | {svmm_cpu:.2f} | {qemu_cpu:.2f} |")
        results.write(args.json, "mirror", json_rows)
    finally:
        server.kill()
        server.wait()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
