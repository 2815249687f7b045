#!/usr/bin/env python3
"""make bench-migrate: live migration of a 512 MiB guest between two svmm processes vs two QEMU 7.2
processes (-M microvm,accel=kvm) on this machine, alternating, in one invocation: the guest idle,
in mode=writer (on a shared raw disk) and in mode=ramdirty mb=64; total time and downtime as each
source reports them; plus the restore time of a VM saved with exec: (process start to `completed`
on the destination). Prints medians and svmm/QEMU ratios (markdown). `--before PATH` runs a second
svmm build (an earlier commit's) alternately in the same invocation, for before/after figures."""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

from qmp import Qmp
import results as results_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVMM = os.environ.get("SVMM_BIN", os.path.join(ROOT, ".build/release/svmm"))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
QEMU = shutil.which("qemu-system-x86_64")
MEMORY = "512M"
UNLIMITED = 1 << 40   # max-bandwidth for both: the machine, not the throttle, sets the pace
BEFORE = None         # --before: another svmm binary, run as target "before"
# The figures of each live scenario: the source's own two, and the one measured alike for both.
FIGURES = {"total": "total time", "downtime": "downtime", "guest": "guest downtime (STOP → RESUME)"}


class Vmm:
    def __init__(self, target, work, name, mode, disk=None, extra=()):
        self.sock = os.path.join(work, f"{name}.qmp")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        args = [SVMM] if target == "svmm" else [BEFORE] if target == "before" else [
            QEMU, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", MEMORY, "-serial", "none", "-kernel", GUEST, "-append", f"mode={mode}",
                 "-qmp", f"unix:{self.sock},server=on,wait=off"]
        if disk:
            args += ["-blockdev", f"driver=file,node-name=f0,filename={disk}", "-blockdev", "driver=raw,node-name=d0,file=f0",
                     "-device", "virtio-blk-device,drive=d0,id=vblk0"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args + list(extra), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.qmp = Qmp(self.sock)

    def wait(self, statuses=("completed", "failed", "cancelled"), timeout=300):
        deadline = time.monotonic() + timeout
        while True:
            info = self.qmp.cmd("query-migrate")
            if info.get("status") in statuses:
                return info
            if time.monotonic() > deadline:
                sys.exit(f"migration did not finish: {info}")
            time.sleep(0.001)  # the restore row is process start to the first `completed` seen: 1 ms steps

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def live(target, work, mode, disk):
    uri = f"unix:{os.path.join(work, 'mig.sock')}"
    src = Vmm(target, work, "src", mode, disk)
    dst = Vmm(target, work, "dst", mode, disk, extra=("-incoming", "defer"))
    try:
        dst.qmp.cmd("migrate-incoming", uri=uri)
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": UNLIMITED})
        time.sleep(1.0)   # the guest is at work
        src.qmp.cmd("migrate", uri=uri)
        info = src.wait()
        if info["status"] != "completed":
            sys.exit(f"{target} {mode}: {info}")
        dst.wait()
        return info["total-time"], info["downtime"], guest_downtime(src, dst)
    finally:
        src.kill()
        dst.kill()


def event_time(event):
    """A QMP event's timestamp (seconds since the epoch, microsecond resolution)."""
    stamp = event["timestamp"]
    return stamp["seconds"] + stamp["microseconds"] / 1e6


def guest_downtime(src, dst):
    """The downtime the guest sees, measured alike for both VMMs: the source's STOP (its vCPUs
    paused for the switch-over) to the destination's RESUME (its vCPUs let go), in ms. Both
    processes stamp their events with CLOCK_REALTIME on this one machine."""
    stop = src.qmp.wait("STOP", timeout=10)
    resume = dst.qmp.wait("RESUME", timeout=10)
    return (event_time(resume) - event_time(stop)) * 1000


def restore(target, work):
    state = os.path.join(work, f"{target}.state")
    src = Vmm(target, work, "src", "idle")
    try:
        time.sleep(0.5)
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": UNLIMITED})
        src.qmp.cmd("migrate", uri=f"exec:cat > {state}")
        src.wait()
    finally:
        src.kill()
    dst = Vmm(target, work, "dst", "idle", extra=("-incoming", f"exec:cat {state}"))
    try:
        dst.wait()
        return (time.monotonic() - dst.started) * 1000
    finally:
        dst.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", help="an earlier svmm binary to measure alongside")
    results_file.add_json_argument(parser, "migrate")
    args = parser.parse_args()
    global BEFORE
    BEFORE = args.before
    targets = ("svmm", "before", "qemu") if BEFORE else ("svmm", "qemu")
    for path, what in ((SVMM, "svmm (make build)"), (GUEST, "the guest (make guest)"), (QEMU or "", "qemu-system-x86_64"),
                       *(((BEFORE, "--before"),) if BEFORE else ())):
        if not path or not os.access(path, os.R_OK):
            sys.exit(f"missing {what}: {path}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="svmm-bench-migrate-") as work:
        disk = os.path.join(work, "disk.raw")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        scenarios = [("idle", "idle", None), ("writer", "writer size=65536", disk), ("ramdirty mb=64", "ramdirty mb=64", None)]
        for _ in range(args.runs):
            for target in targets:
                for label, mode, scenario_disk in scenarios:
                    total, downtime, seen = live(target, work, mode, scenario_disk)
                    results.setdefault((label, target, "total"), []).append(total)
                    results.setdefault((label, target, "downtime"), []).append(downtime)
                    results.setdefault((label, target, "guest"), []).append(seen)
                results.setdefault(("restore", target, "total"), []).append(restore(target, work))
    median = lambda key: statistics.median(results[key])
    print(f"Live migration of a {MEMORY} guest, unix socket, max-bandwidth unlimited, downtime-limit 300 ms, "
          f"{args.runs} runs each, medians (ms; total time and downtime as the source's query-migrate reports "
          f"them, guest downtime from the source's STOP event to the destination's RESUME event):\n")
    before_head = " svmm before | before/QEMU |" if BEFORE else ""
    print(f"| scenario | figure | svmm | QEMU 7.2 | svmm/QEMU |{before_head}")
    print("|---|---|---|---|---|" + ("---|---|" if BEFORE else ""))

    def row(label, name, key_label, figure):
        digits = 1 if figure == "guest" else 0
        ours, theirs = median((key_label, "svmm", figure)), median((key_label, "qemu", figure))
        line = f"| {label} | {name} | {ours:.{digits}f} | {theirs:.{digits}f} | {ours / max(theirs, 1e-9):.2f} |"
        if BEFORE:
            before = median((key_label, "before", figure))
            line += f" {before:.{digits}f} | {before / max(theirs, 1e-9):.2f} |"
        print(line)

    for label, _, _ in scenarios:
        for figure in FIGURES:
            row(label, FIGURES[figure], label, figure)
    row("restore from an exec: file (idle guest)", "process start → completed", "restore", "total")
    rows = [results_file.row(f"migration {label}: {FIGURES[figure]}", "ms",
                             results[(label, "svmm", figure)], results[(label, "qemu", figure)], better="lower")
            for label, _, _ in scenarios for figure in FIGURES]
    rows.append(results_file.row("restore from exec: (start → completed)", "ms", results[("restore", "svmm", "total")],
                                 results[("restore", "qemu", "total")], better="lower"))
    results_file.write(args.json, "migrate", rows)


if __name__ == "__main__":
    main()
