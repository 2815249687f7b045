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

    def __init__(self, target: str, workdir: Path, blockdevs: list, device_options: str, append: str = "mode=writer",
                 drives: list = (), drive: str = "top"):
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
        for drive_option in drives:
            args += ["-drive", drive_option]
        args += ["-device", f"virtio-blk-device,drive={drive},id=vblk0{',' if device_options else ''}{device_options}"]
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


class Monitor:
    """A VMM paused (-S) with no guest device, for block jobs and HMP: its QMP and its stdout."""

    def __init__(self, target: str, workdir: Path):
        svmm, guest, qemu = binaries()
        self.sock = str(workdir / f"{target}-mon.sock")
        self.log = workdir / f"{target}-mon.log"
        args = [svmm, "-kernel", guest, "-append", "mode=idle"] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none"]
        args += ["-m", "64M", "-serial", "none", "-S", "-qmp", f"unix:{self.sock},server=on,wait=off"]
        self.output = open(self.log, "wb")
        self.proc = subprocess.Popen(args, stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"{target} exited: {self.log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"{target}: no QMP socket"
            time.sleep(0.02)
        self.qmp = RawQMP(self.sock)

    def text(self) -> str:
        if not self.output.closed:
            self.output.flush()
        return self.log.read_text(errors="replace")

    def next_event(self, name: str, timeout: float = 30) -> dict:
        """The next `name` event not yet taken (events before it stay kept for later)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.qmp.events):
                if event["event"] == name:
                    return self.qmp.events.pop(index)
            assert time.monotonic() < deadline, f"no {name} in {timeout} s"
            self.qmp.events.append(self.qmp.read())

    def close(self):
        if self.proc.poll() is None:
            self.qmp.cmd("quit")
            self.proc.wait(20)
        self.output.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if not self.output.closed:
            self.output.close()


def qemu_img(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True)


def mirror_scenario(target: str, workdir: Path, once: bool) -> dict:
    """iotest mirror-ready-cancel-error's flow: a qcow2 target over blkdebug whose second
    flush_to_disk fails, on-target-error=stop; the job goes to standby with BLOCK_JOB_ERROR, a
    transient error is resumed past, a persistent one force-cancelled."""
    source, dest = workdir / "source.qcow2", workdir / "target.qcow2"
    for image in (source, dest):
        assert qemu_img("create", "-f", "qcow2", image, "1M").returncode == 0
    written = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 1 0 64k", str(source)], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    vm = Monitor(target, workdir)
    try:
        qmp = vm.qmp
        assert qmp.cmd("blockdev-add", **{"node-name": "source", "driver": "qcow2",
                                          "file": {"driver": "file", "filename": str(source)}}) == {"return": {}}
        target_options = {"node-name": "target", "driver": "qcow2", "file": {
            "driver": "blkdebug", "image": {"driver": "file", "filename": str(dest)},
            "set-state": [{"event": "flush_to_disk", "state": 1, "new_state": 2}],
            "inject-error": [{"event": "flush_to_disk", "once": once, "immediately": True, "state": 2}]}}
        assert qmp.cmd("blockdev-add", **target_options) == {"return": {}}
        assert qmp.cmd("blockdev-mirror", **{"job-id": "mirror", "device": "source", "target": "target",
                                             "filter-node-name": "mirror-top", "sync": "full",
                                             "on-target-error": "stop"}) == {"return": {}}
        vm.next_event("BLOCK_JOB_READY")
        hmp = qmp.cmd("human-monitor-command", **{"command-line": 'qemu-io mirror-top "write -P 2 0 64k"'})
        assert hmp == {"return": ""}, hmp
        # As the iotest: status changes so far (drains around the HMP command) are dropped.
        qmp.events = [event for event in qmp.events if event["event"] != "JOB_STATUS_CHANGE"]
        assert qmp.cmd("block-job-cancel", device="mirror") == {"return": {}}
        error = vm.next_event("BLOCK_JOB_ERROR")["data"]
        statuses = []
        while True:
            status = vm.next_event("JOB_STATUS_CHANGE")["data"]["status"]
            statuses.append(status)
            if status == "standby":
                verb = {"device": "mirror"} if once else {"device": "mirror", "force": True}
                assert qmp.cmd("block-job-resume" if once else "block-job-cancel", **verb) == {"return": {}}
            elif status == "null":
                break
        ended = [e["event"] for e in qmp.events if e["event"] in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED")]
        vm.close()
        output = vm.text()
        return {
            "error": error, "went-standby": "standby" in statuses, "last-statuses": statuses[-2:], "ended": ended,
            "qemu-io-output": re.findall(r"wrote 65536/65536 bytes at offset 0", output),
            "target-check": qemu_img("check", dest).returncode,
            "same-data": qemu_img("compare", "-f", "qcow2", "-F", "qcow2", source, dest).returncode == 0,
        }
    finally:
        vm.kill()


@pytest.mark.parametrize("once", [True, False], ids=["transient", "persistent"])
def test_mirror_follows_on_target_error_stop_with_a_blkdebug_flush_error(tmp_path, once):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = mirror_scenario(target, tmp_path / target, once)
    svmm = outcomes["svmm"]
    assert svmm["error"] == {"device": "mirror", "operation": "write", "action": "stop"}
    assert svmm["went-standby"] and svmm["last-statuses"][-1] == "null"
    assert svmm["qemu-io-output"] == ["wrote 65536/65536 bytes at offset 0"]
    assert svmm["target-check"] == 0
    # Only the flushes failed: the new data reached the target before the job stopped.
    assert svmm["same-data"]
    assert outcomes["svmm"] == outcomes["qemu"]


HMP_LINES = [
    'qemu-io d0 "read 0 512"', 'qemu-io d0 "write -P 0x5a 512 1k"', 'qemu-io d0 "read -P 0x5a 512 1k"',
    'qemu-io d0 "read -P 0x5b 512 512"', 'qemu-io d0 "write -z 4k 4k"', 'qemu-io d0 "flush"',
    'qemu-io d0 "aio_write -P 7 8k 4k"', 'qemu-io d0 "aio_flush"', 'qemu-io d0 "read -q -P 7 8k 4k"',
    'qemu-io nosuch "read 0 512"', "qemu-io d0", "qemu-io", 'qemu-io d0 "read 0 512" extra',
    'qemu-io d0 "bogus"', 'qemu-io d0 "read 0"', 'qemu-io d0 "read x 512"', 'qemu-io d0 "write -P 300 0 512"',
    "nosuchcommand", "",
]


def hmp_outcome(target: str, workdir: Path) -> dict:
    disk = workdir / "hmp.raw"
    with open(disk, "wb") as image:
        image.truncate(1 * MiB)
    vm = Monitor(target, workdir)
    try:
        assert vm.qmp.cmd("blockdev-add", **{"node-name": "d0", "driver": "raw",
                                             "file": {"driver": "file", "filename": str(disk)}}) == {"return": {}}
        answers = {line: vm.qmp.cmd("human-monitor-command", **{"command-line": line}) for line in HMP_LINES}
        vm.close()
        # qemu-io's own output goes to the VMM's stdout/stderr; the timing line is dropped.
        printed = [line for line in vm.text().splitlines() if " ops; " not in line and not line.startswith("qemu-system")]
        return {"answers": answers, "printed": printed}
    finally:
        vm.kill()


def test_hmp_qemu_io_answers_as_qemu_does(tmp_path):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = hmp_outcome(target, tmp_path / target)
    svmm = outcomes["svmm"]
    assert svmm["answers"]['qemu-io d0 "read 0 512"'] == {"return": ""}
    assert svmm["answers"]["nosuchcommand"] == {"return": "unknown command: 'nosuchcommand'\r\n"}
    assert "Pattern verification failed at offset 512, 512 bytes" in svmm["printed"]
    assert outcomes["svmm"]["answers"] == outcomes["qemu"]["answers"]
    assert sorted(outcomes["svmm"]["printed"]) == sorted(outcomes["qemu"]["printed"])


def drive_scenario(target: str, workdir: Path) -> dict:
    """`-drive file=blkdebug:CONF:IMAGE,…,werror=stop`: the rules come from a config file, the
    error names the drive, and `cont` resets a named backend's io-status (qmp_cont's blk_next)."""
    disk = workdir / f"{target}.raw"
    with open(disk, "wb") as image:
        image.truncate(4 * MiB)
    config = workdir / "blkdebug.conf"
    config.write_text('# fail one write in the first round\n[inject-error]\nevent = "write_aio"\n'
                      'iotype = "write"\nsector = "2048"\nonce = "on"\n')
    guest = Guest(target, workdir, [], "", drives=[f"file=blkdebug:{config}:{disk},format=raw,if=none,id=drv0,werror=stop"],
                  drive="drv0")
    try:
        assert guest.qmp.cmd("cont") == {"return": {}}
        error = guest.wait_event("BLOCK_IO_ERROR")
        guest.wait_event("STOP")
        info = guest.qmp.cmd("query-block")["return"][0]
        before = (info["device"], info.get("io-status"), guest.qmp.cmd("query-status")["return"]["status"])
        assert guest.qmp.cmd("cont") == {"return": {}}
        guest.wait_event("RESUME")
        after = guest.qmp.cmd("query-block")["return"][0].get("io-status")
        guest.wait_rounds(1)
        guest.quit()
        assert "FAIL" not in guest.serial(), guest.serial()
        check_writer_stamps(disk, 4 * MiB // 512)
        # The node under the drive has a generated name, which differs between the two.
        data = [(key, value) for key, value in io_error_data(error) if key != "node-name"]
        return {"event": data, "before-cont": before, "io-status-after-cont": after}
    finally:
        guest.kill()


def test_drive_with_a_blkdebug_config_file_stops_and_cont_resets_its_io_status(tmp_path):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = drive_scenario(target, tmp_path / target)
    svmm = outcomes["svmm"]
    assert svmm["event"] == [("device", "drv0"), ("nospace", False), ("reason", "Input/output error"),
                             ("operation", "write"), ("action", "stop")]
    assert svmm["before-cont"] == ("drv0", "failed", "io-error")
    assert svmm["io-status-after-cont"] == "ok"
    assert outcomes["svmm"] == outcomes["qemu"]


def test_qcow2_on_a_full_tmpfs_pauses_and_resumes_clean(tmp_path):
    """werror=enospc with a qcow2 image on a 3 MiB tmpfs (data and metadata both run out of room):
    the VM pauses with nospace, the tmpfs grows, `cont`, two verified rounds, and qemu-img check
    finds the image clean; the same under QEMU 7.2."""
    outcomes = {}
    for target in TARGETS:
        workdir = tmp_path / target
        workdir.mkdir()
        mount = SmallTmpfs(workdir / "tmpfs", "3m")
        try:
            disk = mount.path / "disk.qcow2"
            assert qemu_img("create", "-f", "qcow2", disk, "8M").returncode == 0
            blockdevs = [f"driver=qcow2,node-name=top,file.driver=file,file.filename={disk},file.cache.direct=off,file.aio=threads"]
            guest = Guest(target, workdir, blockdevs, "werror=enospc")
            try:
                assert guest.qmp.cmd("cont") == {"return": {}}
                error = guest.wait_event("BLOCK_IO_ERROR")
                guest.wait_event("STOP")
                io_status = guest.qmp.cmd("query-block")["return"][0].get("io-status")
                mount.grow("32m")
                assert guest.qmp.cmd("cont") == {"return": {}}
                guest.wait_rounds(2)
                guest.quit()
                assert "FAIL" not in guest.serial(), guest.serial()
            finally:
                guest.kill()
            check = qemu_img("check", disk)
            outcomes[target] = {"event": dict(io_error_data(error)), "io-status": io_status,
                                "check": (check.returncode, "No errors were found" in check.stdout)}
        finally:
            mount.remove()
    svmm = outcomes["svmm"]
    assert svmm["event"]["nospace"] is True and svmm["event"]["action"] == "stop"
    assert svmm["io-status"] == "nospace" and svmm["check"] == (0, True)
    assert outcomes["svmm"] == outcomes["qemu"]


def source_error_scenario(target: str, workdir: Path, policy: str) -> dict:
    """A mirror whose source (qcow2 over blkdebug) fails its first data read: on-source-error
    `stop` pauses the job (BLOCK_JOB_ERROR read/stop) until block-job-resume, `report` fails it."""
    source, dest = workdir / "source.qcow2", workdir / "target.qcow2"
    for image in (source, dest):
        assert qemu_img("create", "-f", "qcow2", image, "1M").returncode == 0
    written = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 3 64k 64k", str(source)], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    vm = Monitor(target, workdir)
    try:
        qmp = vm.qmp
        source_options = {"node-name": "source", "driver": "qcow2", "file": {
            "driver": "blkdebug", "image": {"driver": "file", "filename": str(source)},
            "inject-error": [{"event": "read_aio", "iotype": "read", "once": True}]}}
        assert qmp.cmd("blockdev-add", **source_options) == {"return": {}}
        assert qmp.cmd("blockdev-add", **{"node-name": "target", "driver": "qcow2",
                                          "file": {"driver": "file", "filename": str(dest)}}) == {"return": {}}
        assert qmp.cmd("blockdev-mirror", **{"job-id": "mirror", "device": "source", "target": "target",
                                             "sync": "full", "on-source-error": policy}) == {"return": {}}
        error = vm.next_event("BLOCK_JOB_ERROR")["data"]
        statuses = []
        while True:
            status = vm.next_event("JOB_STATUS_CHANGE")["data"]["status"]
            statuses.append(status)
            if status == "paused":
                assert qmp.cmd("block-job-resume", device="mirror") == {"return": {}}
            elif status == "ready":
                assert qmp.cmd("block-job-complete", device="mirror") == {"return": {}}
            elif status == "concluded":
                break
        ended = [(e["event"], e["data"].get("error")) for e in qmp.events
                 if e["event"] in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED")]
        vm.close()
        return {
            "error": error, "statuses": [s for s in statuses if s in ("paused", "ready", "aborting", "concluded")],
            "ended": ended, "same-data": qemu_img("compare", "-f", "qcow2", "-F", "qcow2", source, dest).returncode == 0,
            "target-check": qemu_img("check", dest).returncode,
        }
    finally:
        vm.kill()


@pytest.mark.parametrize("policy", ["stop", "report"])
def test_mirror_follows_on_source_error_with_a_blkdebug_read_error(tmp_path, policy):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = source_error_scenario(target, tmp_path / target, policy)
    svmm = outcomes["svmm"]
    assert svmm["error"] == {"device": "mirror", "operation": "read", "action": policy}
    if policy == "stop":
        assert svmm["statuses"][:1] == ["paused"] and "ready" in svmm["statuses"] and svmm["same-data"]
        assert svmm["ended"] == [("BLOCK_JOB_COMPLETED", None)]
    else:
        assert "aborting" in svmm["statuses"]
        assert svmm["ended"] == [("BLOCK_JOB_COMPLETED", "Input/output error")]
    assert svmm["target-check"] == 0
    assert outcomes["svmm"] == outcomes["qemu"]
