#!/usr/bin/env python3
"""make bench-storage-migrate: the whole storage migration (iotest 194's flow) of a 256 MiB guest
with a 1 GiB raw disk (filled with data) between two svmm processes vs two QEMU 7.2 processes
(-M microvm,accel=kvm), alternating, in one invocation; the guest idle and in mode=writer.

Each run: the destination starts with `-incoming defer -S` on an empty 1 GiB disk; the clock
starts at its nbd-server-start. Writable nbd-server-add; on the source an NBD node and
blockdev-mirror sync=full (time to READY); migrate-incoming + migrate (max-bandwidth unlimited
for both, so the machine sets the pace: total time and downtime as the source reports them);
block-job-cancel, nbd-server-stop and cont on the destination (end-to-end time, up to cont's
reply). Both VMMs do the same steps (svmm refuses an earlier cont, QEMU would take it). The
guest's serial log is checked for a verification failure after each run, and the two disks
are compared with qemu-img compare at the switch-over of the first run of each kind.
Prints medians and svmm/QEMU ratios (markdown); targets: each <= 1.0x, downtime <= 0.5x; also the
CPU time both processes used during the flow (less disturbed by the machine's load)."""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile, time

from mirror import cpu_seconds
from qmp import Qmp, remove_stale
import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVMM = os.environ.get("SVMM_BIN", os.path.join(ROOT, ".build/release/svmm"))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
QEMU = shutil.which("qemu-system-x86_64")
MEMORY = "256M"
GiB = 1 << 30
MiB = 1 << 20
UNLIMITED = 1 << 40
WRITER = "mode=writer size=131072"  # the writer rewrites (and verifies) its first 64 MiB, round after round


class Vmm:
    """One VMM with the guest on a raw disk (node d0 under virtio-blk vblk0), O_DIRECT + native AIO."""

    def __init__(self, target, work, name, append, disk, extra=()):
        self.name = name
        self.sock = os.path.join(work, f"{target}-{name}.qmp")
        self.serial = os.path.join(work, f"{target}-{name}.serial")
        remove_stale(self.sock, self.serial)
        args = [SVMM] if target == "svmm" else [
            QEMU, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", MEMORY, "-serial", f"file:{self.serial}", "-kernel", GUEST, "-append", append,
                 "-qmp", f"unix:{self.sock},server=on,wait=off",
                 "-blockdev", f"driver=file,node-name=d0,filename={disk},cache.direct=on,aio=native",
                 "-device", "virtio-blk-device,drive=d0,id=vblk0", *extra]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.qmp = Qmp(self.sock, proc=self.proc)

    def wait_migration(self, timeout=600):
        deadline = time.monotonic() + timeout
        while True:
            info = self.qmp.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                if info["status"] != "completed":
                    sys.exit(f"{self.name}: migration {info['status']}: {info.get('error-desc', '')}")
                return info
            if time.monotonic() > deadline:
                sys.exit(f"{self.name}: migration did not finish: {info}")
            time.sleep(0.005)

    def check_guest(self):
        with open(self.serial, errors="replace") as log:
            text = log.read()
        if "FAIL" in text:
            sys.exit(f"{self.name}: the guest's verification failed:\n{text[-2000:]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_writer_round(vmm, timeout=120):
    """Until the writer has verified a round (so the mirror copies a disk being written); a disk
    written by an earlier run resumes at that run's generation."""
    deadline = time.monotonic() + timeout
    while True:
        with open(vmm.serial, errors="replace") as log:
            if re.search(r"WRITER round \d+ ok", log.read()):
                return
        if time.monotonic() > deadline:
            sys.exit(f"{vmm.name}: the writer made no round in {timeout} s")
        time.sleep(0.05)


def one_run(target, work, source_disk, append, compare):
    destination_disk = os.path.join(work, "destination.raw")
    remove_stale(destination_disk)
    with open(destination_disk, "wb") as disk:
        disk.truncate(GiB)
    nbd = os.path.join(work, "nbd.sock")
    migration = os.path.join(work, "migrate.sock")
    remove_stale(nbd, migration)
    source = Vmm(target, work, "source", append, source_disk)
    destination = Vmm(target, work, "destination", append, destination_disk, ("-incoming", "defer", "-S"))
    try:
        if "writer" in append:
            wait_writer_round(source)
        for vmm in (source, destination):
            vmm.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": UNLIMITED})
        start, cpu = time.perf_counter(), cpu_seconds(source.proc.pid) + cpu_seconds(destination.proc.pid)
        destination.qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": nbd}})
        destination.qmp.cmd("nbd-server-add", device="d0", writable=True)
        source.qmp.cmd("blockdev-add", driver="nbd", **{"node-name": "target"}, export="d0",
                       server={"type": "unix", "path": nbd})
        source.qmp.cmd("blockdev-mirror", **{"job-id": "mirror0"}, device="d0", target="target", sync="full")
        source.qmp.wait("BLOCK_JOB_READY", device="mirror0")
        ready = time.perf_counter() - start
        destination.qmp.cmd("migrate-incoming", uri=f"unix:{migration}")
        source.qmp.cmd("migrate", uri=f"unix:{migration}")
        info = source.wait_migration()
        destination.wait_migration()
        compared = time.perf_counter()
        if compare:  # both stopped: the source since the switch-over, the destination never ran
            result = subprocess.run(["qemu-img", "compare", "-U", "-f", "raw", "-F", "raw", source_disk, destination_disk],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"{target}: the disks differ at the switch-over: {result.stdout}{result.stderr}")
        start += time.perf_counter() - compared  # the comparison is not part of the flow
        source.qmp.cmd("block-job-cancel", device="mirror0")
        source.qmp.wait("BLOCK_JOB_COMPLETED", device="mirror0")
        destination.qmp.cmd("nbd-server-stop")
        destination.qmp.cmd("cont")
        end_to_end = time.perf_counter() - start
        cpu = cpu_seconds(source.proc.pid) + cpu_seconds(destination.proc.pid) - cpu
        time.sleep(0.5)  # the guest runs a moment on the destination before its log is checked
        if destination.qmp.cmd("query-status")["status"] != "running":
            sys.exit(f"{target}: the destination does not run after cont")
        source.check_guest()
        destination.check_guest()
        return {"ready": ready, "total": info["total-time"] / 1000, "downtime": info["downtime"] / 1000,
                "end-to-end": end_to_end, "cpu": cpu}
    finally:
        source.kill()
        destination.kill()


def fill(path):
    """1 GiB of data (no holes: every block is copied)."""
    block = os.urandom(MiB)
    with open(path, "wb") as disk:
        for _ in range(GiB // MiB):
            disk.write(block)
        os.fsync(disk.fileno())  # else its write-back slows whichever VMM runs first


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    results.add_json_argument(parser, "storage-migrate")
    args = parser.parse_args()
    for needed in (SVMM, GUEST, QEMU):
        if not needed or not os.path.exists(needed):
            sys.exit(f"{needed or 'qemu-system-x86_64'} is missing: make build (and make deps)")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("/dev/kvm is missing: the benchmark needs KVM")
    work = tempfile.mkdtemp(prefix="bench-storage-migrate-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    try:
        source_disk = os.path.join(work, "source.raw")
        fill(source_disk)
        rows = []
        for mode, append in (("idle", "mode=idle"), ("writer", WRITER)):
            figures = {"svmm": [], "qemu": []}
            for run in range(args.runs):
                # alternately, each first every other run, so both see the same machine load
                for target in ("svmm", "qemu") if run % 2 == 0 else ("qemu", "svmm"):
                    figures[target].append(one_run(target, work, source_disk, append, compare=run == 0))
            rows.append((mode, {target: {key: statistics.median(f[key] for f in runs) for key in runs[0]}
                                for target, runs in figures.items()}, figures))
        print(f"storage migration: {MEMORY} guest, 1 GiB raw disk (data), NBD and migration on unix sockets, "
              f"O_DIRECT + native AIO, medians of {args.runs} runs (seconds)\n")
        print("| guest | figure | svmm | QEMU 7.2 | svmm/QEMU | target |")
        print("|---|---|---|---|---|---|")
        json_rows = []
        for mode, medians, figures in rows:
            for key, label, goal in (("ready", "time to READY", 1.0), ("total", "migration total time", 1.0),
                                     ("downtime", "downtime", 0.5), ("end-to-end", "end to end", 1.0),
                                     ("cpu", "CPU s, both processes", None)):
                svmm, qemu = medians["svmm"][key], medians["qemu"][key]
                ratio = svmm / qemu if qemu > 0 else float("inf")
                verdict = "" if goal is None else f"<= {goal}x ({'met' if ratio <= goal else 'not met'})"
                print(f"| {mode} | {label} | {svmm:.3f} | {qemu:.3f} | {ratio:.2f}x | {verdict} |")
                json_rows.append(results.row(f"storage migration, guest {mode}: {label}", "s",
                                             [f[key] for f in figures["svmm"]], [f[key] for f in figures["qemu"]],
                                             better="lower"))
        results.write(args.json, "storage-migrate", json_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
