"""rerror/werror on virtio-blk with real failing disks, against svmm and QEMU 7.2 side by side.

Errors come from a blkdebug node under the guest's raw disk (inject-error on read_aio/write_aio
at one sector, once) and, for ENOSPC, from a real tmpfs that fills up. The writer guest
(mode=writer) stamps and verifies every sector: under `report` it sees VIRTIO_BLK_S_IOERR and
says so; under `stop` (and `enospc` on ENOSPC) the VM pauses in `io-error` with BLOCK_IO_ERROR,
`cont` retries the failed requests and the writer's verification holds. What a monitor user sees
(events, run states, io-status) must be the same under both VMMs; the disks are checked after."""

import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP, repo_path

MiB = 1 << 20
TARGETS = ["svmm", "qemu"]
WRITER_TAG = 0x5752495445520000


def binaries():
    svmm = str(repo_path(os.environ.get("SVMM_BIN", ".build/debug/svmm")))
    guest = str(repo_path(os.environ.get("GUEST_ELF", "guest-images/out/blkguest.elf")))
    qemu = shutil.which("qemu-system-x86_64")
    if not os.access(svmm, os.X_OK) or not os.path.isfile(guest) or not qemu:
        pytest.fail(f"missing svmm ({svmm}), guest ({guest}) or qemu-system-x86_64")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing: these tests need KVM")
    return svmm, guest, qemu


class Guest:
    """The writer guest under one VMM on the -blockdev `top`, with the device's error options."""

    def __init__(self, target: str, workdir: Path, blockdevs: list, device_options: str, append: str = "mode=writer"):
        svmm, guest, qemu = binaries()
        self.target = target
        self.sock = str(workdir / f"{target}.sock")
        self.log = workdir / f"{target}.serial"
        args = [svmm] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", "64M", "-serial", "stdio", "-S", "-kernel", guest, "-append", append,
                 "-qmp", f"unix:{self.sock},server=on,wait=off"]
        for blockdev in blockdevs:
            args += ["-blockdev", blockdev]
        args += ["-device", f"virtio-blk-device,drive=top,id=vblk0,{device_options}"]
        self.output = open(self.log, "wb")
        self.proc = subprocess.Popen(args, stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"{target} exited: {self.log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"{target}: no QMP socket"
            time.sleep(0.02)
        self.qmp = RawQMP(self.sock)

    def serial(self) -> str:
        if not self.output.closed:
            self.output.flush()
        return self.log.read_text(errors="replace")

    def rounds(self) -> int:
        found = re.findall(r"WRITER round (\d+) ok", self.serial())
        return int(found[-1]) if found else 0

    def wait_rounds(self, count: int, timeout: float = 120):
        deadline = time.monotonic() + timeout
        start = self.rounds()
        while self.rounds() < start + count:
            assert "FAIL" not in self.serial(), self.serial()
            assert self.proc.poll() is None, self.serial()
            assert time.monotonic() < deadline, f"no {count} writer rounds in {timeout} s: {self.serial()}"
            time.sleep(0.05)

    def wait_event(self, name: str, timeout: float = 60) -> dict:
        """The first `name` event (kept ones first), read with the socket's own timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.qmp.events:
                if event["event"] == name:
                    return event
            assert time.monotonic() < deadline, f"{self.target}: no {name} in {timeout} s: {self.serial()}"
            self.qmp.events.append(self.qmp.read())

    def event_names(self) -> list:
        return [event["event"] for event in self.qmp.events]

    def quit(self):
        self.qmp.cmd("quit")
        self.proc.wait(20)
        self.output.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if not self.output.closed:
            self.output.close()


def blkdebug_raw(disk: Path, event: str, sector: int) -> list:
    """A raw node `top` over blkdebug over the file: one error (EIO) for the next request of the
    event's type that covers `sector`, once."""
    iotype = "read" if event == "read_aio" else "write"  # an armed rule fails every type unless told
    return [f"driver=raw,node-name=top,file.driver=blkdebug,file.node-name=dbg,file.inject-error.0.iotype={iotype},"
            f"file.inject-error.0.event={event},file.inject-error.0.sector={sector},file.inject-error.0.once=on,"
            f"file.image.driver=file,file.image.filename={disk}"]


def io_error_data(event: dict) -> list:
    """The event's members in wire order (QEMU's QDict order, which svmm follows)."""
    return list(event["data"].items())


def check_writer_stamps(disk: Path, sectors: int) -> set:
    """Every sector holds a valid writer stamp (tag, sector number, checksum); returns the
    generations found (a finished writer leaves at most two: the round it was in and the one before)."""
    generations = set()
    with open(disk, "rb") as image:
        for sector in range(sectors):
            words = struct.unpack("<64Q", image.read(512))
            h = 0xcbf29ce484222325
            for index, word in enumerate(words):
                if index != 3:
                    h = ((h ^ word) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
            assert words[0] == WRITER_TAG | (sector & 0xffff) and words[1] == sector and words[3] == h, \
                f"{disk.name}: sector {sector} holds no valid writer stamp"
            generations.add(words[2])
    return generations


def report_scenario(target: str, workdir: Path, kind: str) -> dict:
    """werror/rerror=report: the guest gets VIRTIO_BLK_S_IOERR (the writer prints it and exits
    through isa-debug-exit); the VM never stops."""
    disk = workdir / f"{target}.raw"
    with open(disk, "wb") as image:
        image.truncate(4 * MiB)
    # Reads: a sector of the second round (QEMU reads sector 0 itself when the device starts,
    # guessing the geometry: a rule on it would fire there). Writes: a sector of the first round.
    event, sector, options = ("read_aio", 8, "rerror=report") if kind == "read" else ("write_aio", 2048, "werror=report")
    guest = Guest(target, workdir, blkdebug_raw(disk, event, sector), options)
    try:
        assert guest.qmp.cmd("cont") == {"return": {}}
        error = guest.wait_event("BLOCK_IO_ERROR")
        status = guest.proc.wait(60)
        serial = guest.serial()
        failure = re.search(r"WRITER FAIL: (\w+) status (\d+) at sector (\d+)", serial)
        assert failure, serial
        return {
            "event": io_error_data(error), "guest-saw": (failure.group(1), int(failure.group(2))),
            "exit-status": status, "stopped": "STOP" in guest.event_names(),
        }
    finally:
        guest.kill()


def stop_scenario(target: str, workdir: Path, kind: str) -> dict:
    """werror/rerror=stop: BLOCK_IO_ERROR, then STOP; `io-error` with io-status failed until
    `cont`, which retries the request (the rule was `once`), and the writer goes on verifying."""
    disk = workdir / f"{target}.raw"
    sectors = 4 * MiB // 512
    with open(disk, "wb") as image:
        image.truncate(4 * MiB)
    # A read error needs a second round (the first only writes); a write error hits round 1.
    event, options = ("read_aio", "rerror=stop") if kind == "read" else ("write_aio", "werror=stop")
    guest = Guest(target, workdir, blkdebug_raw(disk, event, 4096), options)
    try:
        assert guest.qmp.cmd("cont") == {"return": {}}
        error = guest.wait_event("BLOCK_IO_ERROR")
        guest.wait_event("STOP")
        status = guest.qmp.cmd("query-status")["return"]
        io_status = guest.qmp.cmd("query-block")["return"][0].get("io-status")
        # `stop` in io-error changes nothing (do_vm_stop only stops a running VM).
        assert guest.qmp.cmd("stop") == {"return": {}}
        status_after_stop = guest.qmp.cmd("query-status")["return"]["status"]
        rounds_before = guest.rounds()
        assert guest.qmp.cmd("cont") == {"return": {}}
        guest.wait_event("RESUME")
        io_status_after = guest.qmp.cmd("query-block")["return"][0].get("io-status")
        guest.wait_rounds(2)
        guest.quit()
        assert "FAIL" not in guest.serial(), guest.serial()
        generations = check_writer_stamps(disk, sectors)
        names = []
        for name in guest.event_names():
            # QEMU fails each request of a merged batch with its own event: runs count once.
            if name in ("BLOCK_IO_ERROR", "STOP", "RESUME") and (not names or names[-1] != name):
                names.append(name)
        return {
            "event": io_error_data(error), "status": status, "io-status": io_status,
            "status-after-stop": status_after_stop, "io-status-after-cont": io_status_after,
            "first-events": names[names.index("BLOCK_IO_ERROR"):][:3],  # after the first cont's RESUME
            "rounds-went-on": guest.rounds() >= rounds_before + 2, "generations": len(generations) <= 2,
        }
    finally:
        guest.kill()


@pytest.mark.parametrize("kind", ["read", "write"])
def test_report_gives_the_guest_an_io_error_and_keeps_running(tmp_path, kind):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = report_scenario(target, tmp_path / target, kind)
    svmm = outcomes["svmm"]
    assert svmm["guest-saw"] == (("IN" if kind == "read" else "OUT"), 1)  # VIRTIO_BLK_S_IOERR
    assert svmm["exit-status"] == 9  # the writer's EXIT_REQ_STATUS through isa-debug-exit: svmm did not stop
    assert not svmm["stopped"]
    # `nospace` only with an io-status (blk_iostatus_is_enabled: a policy that can stop; werror's
    # default, enospc, can): there under rerror=report, not under werror=report.
    nospace = [("nospace", False)] if kind == "read" else []
    assert svmm["event"] == [("device", "")] + nospace + [("node-name", "top"), ("reason", "Input/output error"),
                                                          ("operation", kind), ("action", "report")]
    assert outcomes["svmm"] == outcomes["qemu"]


@pytest.mark.parametrize("kind", ["read", "write"])
def test_stop_pauses_in_io_error_and_cont_retries(tmp_path, kind):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = stop_scenario(target, tmp_path / target, kind)
    svmm = outcomes["svmm"]
    assert svmm["event"] == [("device", ""), ("nospace", False), ("node-name", "top"), ("reason", "Input/output error"),
                             ("operation", kind), ("action", "stop")]
    assert svmm["status"] == {"status": "io-error", "singlestep": False, "running": False}
    # qmp_cont resets the io-status of named backends only: this device's is on a -blockdev node.
    assert svmm["io-status"] == "failed" and svmm["io-status-after-cont"] == "failed"
    assert svmm["status-after-stop"] == "io-error"
    assert svmm["first-events"] == ["BLOCK_IO_ERROR", "STOP", "RESUME"]
    assert svmm["rounds-went-on"] and svmm["generations"]
    assert outcomes["svmm"] == outcomes["qemu"]


class SmallTmpfs:
    """A tmpfs of `size` mounted for the test (fails loudly if it cannot be), grown and unmounted after."""

    def __init__(self, path: Path, size: str):
        self.path = path
        path.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs at {path} for the ENOSPC test: {mounted.stderr.strip()}")

    def grow(self, size: str):
        grown = subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], capture_output=True, text=True)
        assert grown.returncode == 0, grown.stderr

    def remove(self):
        subprocess.run(["umount", str(self.path)], check=False)


def enospc_scenario(target: str, workdir: Path) -> dict:
    """werror=enospc on a raw disk of 8 MiB on a 4 MiB tmpfs: the first round fills it, the VM
    pauses with nospace; the tmpfs grows, `cont` resumes and the writer verifies two rounds."""
    mount = SmallTmpfs(workdir / "tmpfs", "4m")
    try:
        disk = mount.path / "disk.raw"
        with open(disk, "wb") as image:
            image.truncate(8 * MiB)
        blockdevs = [f"driver=raw,node-name=top,file.driver=file,file.filename={disk},file.cache.direct=off,file.aio=threads"]
        guest = Guest(target, workdir, blockdevs, "werror=enospc")
        try:
            assert guest.qmp.cmd("cont") == {"return": {}}
            error = guest.wait_event("BLOCK_IO_ERROR")
            guest.wait_event("STOP")
            status = guest.qmp.cmd("query-status")["return"]["status"]
            io_status = guest.qmp.cmd("query-block")["return"][0].get("io-status")
            mount.grow("32m")
            assert guest.qmp.cmd("cont") == {"return": {}}
            guest.wait_rounds(2)
            guest.quit()
            assert "FAIL" not in guest.serial(), guest.serial()
            generations = check_writer_stamps(disk, 8 * MiB // 512)
        finally:
            guest.kill()
        return {"event": io_error_data(error), "status": status, "io-status": io_status, "generations": len(generations) <= 2}
    finally:
        mount.remove()


def test_enospc_pauses_with_nospace_and_resumes_after_space_is_freed(tmp_path):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = enospc_scenario(target, tmp_path / target)
    svmm = outcomes["svmm"]
    assert svmm["event"] == [("device", ""), ("nospace", True), ("node-name", "top"), ("reason", "No space left on device"),
                             ("operation", "write"), ("action", "stop")]
    assert svmm["status"] == "io-error" and svmm["io-status"] == "nospace"
    assert svmm["generations"]
    assert outcomes["svmm"] == outcomes["qemu"]


def test_werror_report_on_enospc_reaches_the_guest(tmp_path):
    """werror=report on a full tmpfs: the writer sees the error, the VM never stops (svmm only)."""
    mount = SmallTmpfs(tmp_path / "tmpfs", "2m")
    try:
        disk = mount.path / "disk.raw"
        with open(disk, "wb") as image:
            image.truncate(8 * MiB)
        blockdevs = [f"driver=raw,node-name=top,file.driver=file,file.filename={disk},file.cache.direct=off,file.aio=threads"]
        guest = Guest("svmm", tmp_path, blockdevs, "werror=report")
        try:
            assert guest.qmp.cmd("cont") == {"return": {}}
            error = guest.wait_event("BLOCK_IO_ERROR")
            assert guest.proc.wait(60) == 9
            assert re.search(r"WRITER FAIL: OUT status 1 at sector \d+", guest.serial()), guest.serial()
            assert error["data"]["action"] == "report" and "nospace" not in error["data"]
            assert error["data"]["reason"] == "No space left on device"
            assert "STOP" not in guest.event_names()
        finally:
            guest.kill()
    finally:
        mount.remove()
