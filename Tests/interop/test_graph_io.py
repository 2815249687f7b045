"""Requests follow the graph: after blockdev-snapshot (under a raw node, under a raw window, on a
chain of two formats) the guest's writes land in the overlay and the old base is frozen.
Each scenario runs against svmm and QEMU 7.2 in the same run, with the writer guest verifying
every sector it reads; the outcomes (where data landed, image checks, lock probes) must match."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP, repo_path

MiB = 1 << 20
DISK = 16 * MiB
TARGETS = ["svmm", "qemu"]


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
    """The writer guest under one VMM, paused (-S), with a QMP socket and its serial log."""

    def __init__(self, target: str, workdir: Path, blockdevs: list, mode: str = "writer"):
        svmm, guest, qemu = binaries()
        self.sock = str(workdir / f"{target}.sock")
        self.log = workdir / f"{target}.serial"
        args = [svmm] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", "64M", "-serial", "stdio", "-S", "-kernel", guest, "-append", f"mode={mode}",
                 "-qmp", f"unix:{self.sock},server=on,wait=off"]
        for blockdev in blockdevs:
            args += ["-blockdev", blockdev]
        args += ["-device", "virtio-blk-device,drive=top,id=vblk0"]
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

    def quit(self):
        self.qmp.cmd("quit")
        self.proc.wait(20)
        self.output.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.output.close()


def qemu_img(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True)


def top_layer_has_data(image: Path) -> bool:
    """Whether the image's own layer (not its backing) holds data, as qemu-img map reports it."""
    out = subprocess.run(["qemu-img", "map", "--output=json", "-f", "qcow2", str(image)],
                         capture_output=True, text=True, check=True).stdout
    return any(extent["depth"] == 0 and extent["data"] for extent in json.loads(out))


def lock_probes(paths) -> dict:
    """What other processes may do with each file while the VM runs (QEMU's image locks): open it
    for writing (qemu-io, which writes nothing here) and read its header (qemu-img info)."""
    probes = {}
    for path in paths:
        writer = subprocess.run(["qemu-io", "-f", "raw", "-c", "quit", str(path)], capture_output=True, text=True)
        reader = qemu_img("info", path)
        probes[Path(path).name] = {"writer": writer.returncode == 0, "reader": reader.returncode == 0}
    return probes


def run_scenario(target: str, workdir: Path, blockdevs, running: bool) -> dict:
    """Starts the writer (which first stamps the whole disk, so what the guest saw before is
    overwritten) on `blockdevs`, takes the snapshot of d0 onto ov (paused, or while the
    guest writes), lets it write two more rounds through the overlay, probes the locks and
    quits; returns what a user can see."""
    guest = Guest(target, workdir, blockdevs)
    try:
        if running:
            assert guest.qmp.cmd("cont") == {"return": {}}
            guest.wait_rounds(1)
        overlay = {"driver": "qcow2", "node-name": "ov", "file": {"driver": "file", "filename": str(workdir / "ov.qcow2")}}
        assert guest.qmp.cmd("blockdev-add", **overlay) == {"return": {}}
        answer = guest.qmp.cmd("blockdev-snapshot", node="d0", overlay="ov")
        assert answer == {"return": {}}, answer
        if not running:
            assert guest.qmp.cmd("cont") == {"return": {}}
        else:
            # A node added and deleted while the guest writes (blockdev-del drains it first).
            assert guest.qmp.cmd("blockdev-add", driver="null-co", **{"node-name": "spare"}) == {"return": {}}
            assert guest.qmp.request({"execute": "blockdev-del", "arguments": {"node-name": "spare"}}) == {"return": {}}
        guest.wait_rounds(2)
        nodes = {n["node-name"]: n for n in guest.qmp.cmd("query-named-block-nodes")["return"]}
        device = guest.qmp.cmd("query-block")["return"][0]["inserted"]
        outcome = {
            "overlay-depth": nodes["ov"]["backing_file_depth"], "overlay-ro": nodes["ov"]["ro"],
            "base-ro": nodes["d0"]["ro"], "device-node": device["node-name"],
            "locks": lock_probes([workdir / "b.qcow2", workdir / "d.qcow2", workdir / "ov.qcow2"]),
        }
        guest.quit()
        outcome["guest-verified"] = "FAIL" not in guest.serial()
        return outcome
    finally:
        guest.kill()


# Each builds the -blockdev list on images in the work directory; the device uses node `top`.
SCENARIOS = {
    # The reproduction: a raw filter above the qcow2 the snapshot is taken of.
    "raw-filter": lambda d: [f"driver=qcow2,node-name=d0,file.driver=file,file.filename={d / 'd.qcow2'}",
                             "driver=raw,node-name=top,file=d0"],
    # A raw window (offset/size): a data child, not a filter.
    "raw-window": lambda d: [f"driver=qcow2,node-name=d0,file.driver=file,file.filename={d / 'd.qcow2'}",
                             f"driver=raw,node-name=top,file=d0,offset={MiB},size={DISK - 2 * MiB}"],
    # A chain of two images: d0 is a qcow2 whose backing (from its header) is another qcow2.
    "backing-chain": lambda d: [f"driver=qcow2,node-name=d0,file.driver=file,file.filename={d / 'd.qcow2'}",
                                "driver=raw,node-name=top,file=d0"],
}


@pytest.mark.parametrize("running", [False, True], ids=["paused", "while-writing"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_snapshot_redirects_the_guests_writes_to_the_overlay(tmp_path, scenario, running):
    outcomes = {}
    for target in TARGETS:
        workdir = tmp_path / target
        workdir.mkdir()
        backing = ["-b", str(workdir / "b.qcow2"), "-F", "qcow2"] if scenario == "backing-chain" else []
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(workdir / "b.qcow2"), str(DISK)], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {DISK}", str(workdir / "b.qcow2")],
                       check=True, capture_output=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *backing, str(workdir / "d.qcow2"), str(DISK)], check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(workdir / "ov.qcow2"), str(DISK)], check=True)
        shutil.copy(workdir / "d.qcow2", workdir / "d.orig.qcow2")
        outcome = run_scenario(target, workdir, SCENARIOS[scenario](workdir), running)
        outcome["overlay-has-data"] = top_layer_has_data(workdir / "ov.qcow2")
        if not running:
            # Snapshotted before the guest ran: the old base must read exactly as before.
            outcome["base-unchanged"] = qemu_img("compare", workdir / "d.orig.qcow2", workdir / "d.qcow2").returncode == 0
        outcome["checks"] = [qemu_img("check", workdir / name).returncode for name in ("b.qcow2", "d.qcow2", "ov.qcow2")]
        outcomes[target] = outcome
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert svmm["overlay-has-data"] and svmm["guest-verified"] and svmm["checks"] == [0, 0, 0], svmm
    assert svmm.get("base-unchanged", True), svmm
