#!/usr/bin/env python3
"""make bench-nbd: nbdcopy of a 1 GiB image from (and to) svmm's NBD export vs qemu-nbd's export
of the same file, alternating, in one invocation. Prints medians and ratios (markdown)."""
import argparse, os, statistics, subprocess, sys, tempfile, time

import qmp
import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVMM = os.environ.get("SVMM_BIN", os.path.join(ROOT, ".build/release/svmm"))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")


def wait_for(path, proc):
    """Waits for a server's socket (callers remove stale ones first)."""
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{proc.args[0]} did not create {path}")
        time.sleep(0.02)


class SvmmExport:
    def __init__(self, work, image):
        self.qmp = os.path.join(work, "qmp.sock")
        self.sock = os.path.join(work, "svmm-nbd.sock")
        for stale in (self.qmp, self.sock):
            if os.path.exists(stale):
                os.unlink(stale)
        self.proc = subprocess.Popen([SVMM, "-S", "-kernel", GUEST, "-qmp", f"unix:{self.qmp},server=on,wait=off"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.qmp, self.proc)
        qmp.run(self.qmp,
                ("blockdev-add", {"driver": "file", "node-name": "img", "filename": image}),
                ("nbd-server-start", {"addr": {"type": "unix", "data": {"path": self.sock}}}),
                ("block-export-add", {"type": "nbd", "id": "e", "node-name": "img", "name": "img", "writable": True}))
        self.uri = f"nbd+unix:///img?socket={self.sock}"

    def close(self):
        self.proc.kill()
        self.proc.wait()


class QemuNbdExport:
    def __init__(self, work, image):
        self.sock = os.path.join(work, "qemu-nbd.sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(["qemu-nbd", "-f", "raw", "-x", "img", "-k", self.sock, "--cache=none", "--aio=native",
                                      "--shared=8", "--persistent", image], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.sock, self.proc)
        self.uri = f"nbd+unix:///img?socket={self.sock}"

    def close(self):
        self.proc.kill()
        self.proc.wait()


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024)
    results.add_json_argument(parser, "nbd")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="svmm-bench-nbd-")
    image = os.path.join(work, "image.raw")
    source = os.path.join(work, "source.raw")
    with open(source, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(args.mib):
            f.write(chunk)
    subprocess.run(["cp", source, image], check=True)
    # O_DIRECT reads of a file with dirty pages wait for writeback: start both servers on clean files.
    subprocess.run(["sync"], check=True)
    size = args.mib << 20
    measured = {("read", "svmm"): [], ("read", "qemu-nbd"): [], ("write", "svmm"): [], ("write", "qemu-nbd"): []}
    for run in range(args.runs):
        order = (("svmm", SvmmExport), ("qemu-nbd", QemuNbdExport))
        for name, kind in order if run % 2 == 0 else reversed(order):
            export = kind(work, image)
            try:
                measured[("read", name)].append(size / timed(["nbdcopy", export.uri, "null:"]) / 1e6)
                measured[("write", name)].append(size / timed(["nbdcopy", source, export.uri]) / 1e6)
                subprocess.run(["sync"], check=True)
            finally:
                export.close()
    print("| nbdcopy, 1 GiB | svmm MB/s | qemu-nbd MB/s | svmm/qemu-nbd |")
    print("|---|---|---|---|")
    rows = []
    for direction in ("read", "write"):
        s = statistics.median(measured[(direction, "svmm")])
        q = statistics.median(measured[(direction, "qemu-nbd")])
        print(f"| {direction} | {s:,.0f} | {q:,.0f} | {s / q:.2f} |")
        # the "qemu" side of this suite is qemu-nbd, QEMU 7.2's NBD server
        rows.append(results.row(f"nbdcopy {direction}, {args.mib} MiB (svmm's export vs qemu-nbd)", "MB/s",
                                measured[(direction, "svmm")], measured[(direction, "qemu-nbd")]))
    print(f"\n{args.runs} runs each, medians; O_DIRECT + native AIO on both sides; unix sockets.")
    results.write(args.json, "nbd", rows)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
