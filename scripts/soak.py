#!/usr/bin/env python3
"""`make soak`: svmm under load with failing requests, for a bounded time (issue 16).

One generation after the other, each a sandboxed svmm running the writer guest (mode=writer,
which stamps and verifies every sector) on a qcow2 disk under a blkdebug node that fails one
guest request in PERIOD (reads and writes, EIO), with `werror=stop,rerror=stop`. Meanwhile:
- an NBD client (qemu-io) writes patterns to the *neighbour* node, a second qcow2 image in the
  same process exported over NBD, and reads each one back;
- a mirror loop: drive-mirror of the guest's disk to a new qcow2 image (svmm creates it), READY,
  block-job-cancel, `qemu-img check` of the copy;
- a migration loop: a new process on an empty qcow2 disk (-incoming defer -S), its disk exported
  over NBD, blockdev-mirror onto it, live migration, the export stopped, `cont` there; the
  neighbour node moves with it.
Every BLOCK_IO_ERROR that stops the VM gets a `cont` (the failed requests are retried), a
mirror paused by its on-source-error=stop policy gets block-job-resume. At the end every image
passes `qemu-img check`, the neighbour holds every pattern written, and the writer guest's
verification held throughout (no FAIL on any generation's serial log).

blkdebug has no probability; "1 in PERIOD" is a counter built from its own rules, written to a
config file: PERIOD states, `set-state` rules advancing the state on each read_aio/write_aio
event (PERIOD back to 1), an inject-error rule (EIO) armed in state PERIOD only, and an
inject-error rule with errno 0 armed in every state, so that the next event disarms the failing
one (blkdebug keeps the last armed rules until another event arms some).

usage: scripts/soak.py [--duration SECONDS] [--period N] [--svmm BIN] [--sandbox OPTIONS]
exit status 0 when every check held; the summary line says what ran.
"""

import argparse
import json
import os
import queue
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
DISK = 32 * MiB
NEIGHBOUR = 16 * MiB
CHUNK = 64 * 1024
STRICT = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


class SoakFailure(Exception):
    pass


def counter_config(period: int) -> str:
    """The blkdebug config file failing one read_aio/write_aio event's request in `period`."""
    lines = []
    for event in ("read_aio", "write_aio"):
        lines += ["[inject-error]", f'event = "{event}"', f'state = "{period}"', 'errno = "5"', ""]
    for event in ("read_aio", "write_aio"):
        lines += ["[inject-error]", f'event = "{event}"', 'errno = "0"', ""]
    for state in range(1, period + 1):
        for event in ("read_aio", "write_aio"):
            lines += ["[set-state]", f'event = "{event}"', f'state = "{state}"',
                      f'new_state = "{state % period + 1}"', ""]
    return "\n".join(lines)


def cancel_job(qmp: "Qmp", device: str):
    """block-job-cancel; a job paused by its on-source-error=stop policy is resumed first
    (QEMU refuses to cancel a paused job too)."""
    for attempt in range(100):
        try:
            qmp.cmd("block-job-cancel", device=device)
            return
        except SoakFailure as failure:
            if "currently paused" not in str(failure) or attempt == 99:
                raise
            try:
                qmp.cmd("block-job-resume", device=device)
            except SoakFailure:
                pass
            time.sleep(0.05)


class Qmp:
    """A QMP connection with a reader thread: replies to cmd(), events to a list and a handler
    (run on a worker thread, so that it may send commands itself)."""

    def __init__(self, path: str, name: str, on_event):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError, BlockingIOError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rb")
        self.replies = queue.Queue()
        self.events = []
        self.changed = threading.Condition()
        self.lock = threading.Lock()
        self.work = queue.Queue()
        json.loads(self.file.readline())  # the greeting
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._handle, args=(on_event,), daemon=True).start()
        self.cmd("qmp_capabilities")

    def _read(self):
        for line in self.file:
            message = json.loads(line)
            if "event" in message:
                with self.changed:
                    self.events.append(message)
                    self.changed.notify_all()
                self.work.put(message)
            else:
                self.replies.put(message)
        self.replies.put(None)
        self.work.put(None)

    def _handle(self, on_event):
        while (event := self.work.get()) is not None:
            try:
                on_event(self, event)
            except Exception as error:  # a handler's command failing while the process ends
                print(f"soak: {self.name}: handling {event['event']}: {error}", file=sys.stderr)

    def cmd(self, name: str, **arguments):
        message = {"execute": name, **({"arguments": arguments} if arguments else {})}
        with self.lock:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
            reply = self.replies.get(timeout=300)
        if reply is None:
            raise SoakFailure(f"{self.name}: QMP closed during {name}")
        if "error" in reply:
            raise SoakFailure(f"{self.name}: {name} {arguments}: {reply['error']}")
        return reply["return"]

    def wait_event(self, name: str, timeout: float = 300, after: int = 0, **data) -> dict:
        """The first `name` event at index >= `after` whose data has `data`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for event in self.events[after:]:
                    if event["event"] == name and all(event.get("data", {}).get(k) == v for k, v in data.items()):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SoakFailure(f"{self.name}: no {name} {data} in {timeout} s")
                self.changed.wait(left)

    def mark(self) -> int:
        with self.changed:
            return len(self.events)


class Generation:
    """One svmm process of the chain, its disk, serial log and QMP connection."""

    def __init__(self, soak: "Soak", index: int, incoming: bool):
        self.soak, self.index = soak, index
        self.name = f"gen{index}"
        work = soak.work
        self.disk = work / f"{self.name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.disk), str(DISK)], check=True)
        self.serial = work / f"{self.name}.serial"
        self.qmp_path = str(work / f"{self.name}.qmp")
        args = [soak.svmm, "-sandbox", soak.sandbox, "-m", "64M", "-serial", f"file:{self.serial}",
                "-kernel", soak.guest, "-append", "mode=writer", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-blockdev", f"driver=qcow2,node-name=disk,file.driver=file,file.filename={self.disk}",
                "-blockdev", f"driver=blkdebug,node-name=dbg,config={soak.config},image=disk",
                "-blockdev", "driver=raw,node-name=top,file=dbg",
                "-device", "virtio-blk-device,drive=top,id=vblk0,werror=stop,rerror=stop"]
        if incoming:
            args += ["-incoming", "defer", "-S"]
        self.stderr_path = work / f"{self.name}.stderr"
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.qmp = Qmp(self.qmp_path, self.name, self.on_event)
        self.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])

    # The error policy's other half: what a management tool does.
    def on_event(self, qmp: Qmp, event: dict):
        name, data = event["event"], event.get("data", {})
        if name == "BLOCK_IO_ERROR":
            self.soak.count("guest I/O errors (BLOCK_IO_ERROR)")
        if name == "STOP" or name == "BLOCK_IO_ERROR" and data.get("action") == "stop":
            # The run state may turn io-error a moment after the event: look a few times.
            for _ in range(20):
                status = qmp.cmd("query-status")["status"]
                if status == "io-error":
                    qmp.cmd("cont")
                    self.soak.count("cont after io-error")
                    return
                if status != "running":
                    return
                time.sleep(0.01)
        elif name == "BLOCK_JOB_ERROR" and data.get("action") == "stop":
            self.soak.count("mirror errors (BLOCK_JOB_ERROR, stop)")
            # The job pauses once the failed request is back; resume retries it.
            for _ in range(100):
                jobs = {job["device"]: job for job in qmp.cmd("query-block-jobs")}
                job = jobs.get(data["device"])
                if job is None or not job.get("paused", False) and job.get("io-status") == "ok":
                    return
                if job.get("paused"):
                    qmp.cmd("block-job-resume", device=data["device"])
                    return
                time.sleep(0.05)

    def rounds(self) -> int:
        text = self.serial_text()
        if "FAIL" in text:
            raise SoakFailure(f"{self.name}: the writer guest's verification failed:\n{text[-2000:]}")
        return len(re.findall(r"WRITER round \d+ ok", text))

    def serial_text(self) -> str:
        return self.serial.read_text(errors="replace") if self.serial.exists() else ""

    def wait_rounds(self, count: int, timeout: float = 300):
        goal, deadline = self.rounds() + count, time.monotonic() + timeout
        while self.rounds() < goal:
            self.alive()
            if time.monotonic() > deadline:
                raise SoakFailure(f"{self.name}: no {count} writer rounds in {timeout} s "
                                  f"({self.qmp.cmd('query-status')['status']})")
            time.sleep(0.1)

    def alive(self):
        if self.proc.poll() is not None:
            self.stderr.flush()
            raise SoakFailure(f"{self.name} exited {self.proc.returncode}: {self.stderr_path.read_text()[-2000:]}")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
                self.proc.wait(30)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)
        self.stderr.close()


class Neighbour:
    """The neighbour qcow2 node, exported over NBD from the current generation, and the client
    thread writing a pattern to a random chunk and reading it back, one qemu-io per pair."""

    def __init__(self, soak: "Soak"):
        self.soak = soak
        self.image = soak.work / "neighbour.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.image), str(NEIGHBOUR)], check=True)
        self.written = {}  # chunk index -> pattern byte
        self.gate = threading.Lock()  # held while the node moves between generations
        self.uri = None
        self.failure = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def attach(self, generation: Generation, generation_index: int):
        self.attachments = getattr(self, "attachments", 0) + 1
        socket_path = self.soak.work / f"neighbour{generation_index}-{self.attachments}.sock"
        qmp = generation.qmp
        qmp.cmd("blockdev-add", **{"driver": "qcow2", "node-name": "nb",
                                   "file": {"driver": "file", "filename": str(self.image)}})
        qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(socket_path)}})
        qmp.cmd("nbd-server-add", device="nb", writable=True)
        self.uri = f"nbd+unix:///nb?socket={socket_path}"

    def detach(self, generation: Generation):
        generation.qmp.cmd("nbd-server-stop")
        generation.qmp.cmd("blockdev-del", **{"node-name": "nb"})
        self.uri = None

    def _run(self):
        rng = random.Random(16)
        while not self.done.is_set():
            with self.gate:
                if self.uri is None:
                    time.sleep(0.05)
                    continue
                chunk, pattern = rng.randrange(NEIGHBOUR // CHUNK), rng.randrange(1, 256)
                offset = chunk * CHUNK
                result = subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -P {pattern} {offset} {CHUNK}",
                                         "-c", f"read -P {pattern} {offset} {CHUNK}", self.uri],
                                        capture_output=True, text=True, timeout=120)
                if result.returncode != 0 or "failed" in result.stdout + result.stderr:
                    self.failure = f"qemu-io on {self.uri}: {result.stdout}{result.stderr}"
                    return
                self.written[chunk] = pattern
                self.soak.count("neighbour NBD write+read pairs")

    def verify(self):
        copy = self.soak.work / "neighbour-final.raw"
        subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(self.image), str(copy)], check=True)
        data = copy.read_bytes()
        for chunk, pattern in self.written.items():
            if data[chunk * CHUNK:(chunk + 1) * CHUNK] != bytes([pattern]) * CHUNK:
                raise SoakFailure(f"neighbour chunk {chunk} lost its pattern {pattern}")
        copy.unlink()


class Soak:
    def __init__(self, options):
        self.svmm = str(Path(options.svmm).resolve())
        self.guest = str((REPO / "guest-images/out/blkguest.elf").resolve())
        self.sandbox = options.sandbox
        self.duration = options.duration
        self.work = Path(options.workdir).resolve()
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.config = self.work / "one-in-period.blkdebug"
        self.config.write_text(counter_config(options.period))
        self.counts = {}
        self.counts_lock = threading.Lock()
        self.images = []

    def count(self, what: str):
        with self.counts_lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def mirror_to_new_qcow2(self, source: Generation, round_: int):
        """drive-mirror creates the qcow2 copy, READY, cancel (a consistent copy), check it."""
        target = self.work / f"mirror{round_}.qcow2"
        mark = source.qmp.mark()
        source.qmp.cmd("drive-mirror", **{"job-id": "copy", "device": "top", "target": str(target),
                                          "format": "qcow2", "sync": "full", "mode": "absolute-paths",
                                          "on-source-error": "stop", "on-target-error": "stop"})
        source.qmp.wait_event("BLOCK_JOB_READY", after=mark, device="copy")
        cancel_job(source.qmp, "copy")
        completed = source.qmp.wait_event("BLOCK_JOB_COMPLETED", after=mark, device="copy")
        if "error" in completed["data"]:
            raise SoakFailure(f"mirror {round_}: {completed['data']}")
        self.check(target)
        self.count("mirrors to a new qcow2")

    def migrate(self, source: Generation, index: int, neighbour: Neighbour) -> Generation:
        """Storage migration to a new generation (test_storage_migration.py's flow)."""
        destination = Generation(self, index, incoming=True)
        nbd = str(self.work / f"migrate{index}.nbd")
        destination.qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": nbd}})
        destination.qmp.cmd("nbd-server-add", device="disk", writable=True)
        mark = source.qmp.mark()
        source.qmp.cmd("blockdev-add", **{"driver": "nbd", "node-name": "target", "export": "disk",
                                          "server": {"type": "unix", "path": nbd}})
        source.qmp.cmd("blockdev-mirror", **{"job-id": "move", "device": "top", "target": "target", "sync": "full",
                                             "on-source-error": "stop", "on-target-error": "stop"})
        source.qmp.wait_event("BLOCK_JOB_READY", after=mark, device="move")
        with neighbour.gate:
            neighbour.detach(source)
            dest_mark = destination.qmp.mark()
            destination.qmp.cmd("migrate-incoming", uri=f"unix:{self.work}/migrate{index}.sock")
            source.qmp.cmd("migrate", uri=f"unix:{self.work}/migrate{index}.sock")
            for side, since in ((source, mark), (destination, dest_mark)):
                status = None
                while status not in ("completed", "failed", "cancelled"):
                    event = side.qmp.wait_event("MIGRATION", after=since)
                    since = side.qmp.events.index(event) + 1
                    status = event["data"]["status"]
                if status != "completed" and side is source and self.refused_for_failed_requests(source):
                    return self.abandon(source, destination, index, neighbour)
                if status != "completed":
                    info = side.qmp.cmd("query-migrate")
                    recent = [(e["event"], e.get("data")) for e in side.qmp.events[mark if side is source else dest_mark:]]
                    raise SoakFailure(f"migration {index}: {side.name} {status}: {info.get('error-desc')}; "
                                      f"events since the mirror: {recent[-30:]}")
            cancel_job(source.qmp, "move")
            completed = source.qmp.wait_event("BLOCK_JOB_COMPLETED", after=mark, device="move")
            if "error" in completed["data"]:
                raise SoakFailure(f"migration {index}: mirror {completed['data']}")
            destination.qmp.cmd("nbd-server-stop")
            source.stop()
            self.check(source.disk)
            destination.qmp.cmd("cont")
            neighbour.attach(destination, index)
        self.count("storage migrations")
        return destination

    @staticmethod
    def refused_for_failed_requests(source: Generation) -> bool:
        """svmm's stream has no place for the failed requests a `stop` policy keeps for `cont`
        (QEMU migrates virtio-blk's rq list): a migration that meets one fails on the source."""
        return "failed requests waiting for 'cont'" in source.qmp.cmd("query-migrate").get("error-desc", "")

    def abandon(self, source: Generation, destination: Generation, index: int, neighbour: Neighbour) -> Generation:
        """The failed migration undone as a management tool would: the destination killed, the
        source's guest resumed (its failed requests retried), the mirror cancelled, the neighbour
        back on the source. The loop then tries again with a new destination. Called with the
        neighbour's gate held."""
        destination.proc.kill()
        destination.proc.wait(10)
        destination.stderr.close()
        if source.qmp.cmd("query-status")["status"] != "running":
            source.qmp.cmd("cont")
        mark = source.qmp.mark()
        cancel_job(source.qmp, "move")
        source.qmp.wait_event("BLOCK_JOB_COMPLETED", after=mark, device="move")
        source.qmp.cmd("blockdev-del", **{"node-name": "target"})
        neighbour.attach(source, index)
        self.count("migrations refused on failed requests pending (known limitation), retried")
        return source

    def check(self, image: Path):
        result = subprocess.run(["qemu-img", "check", "-U", "-f", "qcow2", str(image)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SoakFailure(f"qemu-img check {image}: {result.stdout}{result.stderr}")
        self.images.append(image)

    def run(self) -> int:
        started = time.monotonic()
        neighbour = Neighbour(self)
        current = Generation(self, 0, incoming=False)
        try:
            current.wait_rounds(1)
            neighbour.attach(current, 0)
            neighbour.thread.start()
            round_ = 0
            while time.monotonic() - started < self.duration:
                self.mirror_to_new_qcow2(current, round_)
                current.wait_rounds(1)
                current = self.migrate(current, round_ + 1, neighbour)
                current.wait_rounds(2)
                if neighbour.failure:
                    raise SoakFailure(neighbour.failure)
                round_ += 1
            neighbour.done.set()
            neighbour.thread.join(180)
            if neighbour.failure:
                raise SoakFailure(neighbour.failure)
            rounds = current.rounds()
            with neighbour.gate:
                neighbour.detach(current)
                current.stop()
            for image in (current.disk, neighbour.image):
                self.check(image)
            neighbour.verify()
        except BaseException:
            current.proc.kill()
            raise
        elapsed = time.monotonic() - started
        counts = ", ".join(f"{what}: {number}" for what, number in sorted(self.counts.items()))
        print(f"soak: PASS in {elapsed:.0f} s, {round_} rounds; last generation's writer rounds: {rounds}; "
              f"qemu-img check passed on {len(self.images)} images; {counts}")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("SOAK_SECONDS", 240)))
    parser.add_argument("--period", type=int, default=1000, help="one request in PERIOD fails")
    parser.add_argument("--svmm", default=os.environ.get("SVMM_BIN", str(REPO / ".build/release/svmm")))
    parser.add_argument("--sandbox", default=STRICT)
    parser.add_argument("--workdir", default=str(REPO / "scratch/soak"))
    options = parser.parse_args()
    try:
        return Soak(options).run()
    except SoakFailure as failure:
        print(f"soak: FAIL: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
