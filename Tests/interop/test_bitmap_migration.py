"""Dirty bitmaps across live migration (issue 14, what QEMU's iotest 194 needs): the
`dirty-bitmaps` capability moves named bitmaps to the destination's node of the same name, and
`migrate-start-postcopy` (with only `dirty-bitmaps`, no `postcopy-ram`) moves their bits after the
switch-over: MIGRATION setup, active, postcopy-active, completed on both sides.

The 194 flow (drive-mirror to the destination's NBD export, migration, postcopy of the bitmaps,
the mirror cancelled, the export stopped) runs through qemu.qmp's legacy QEMUMonitorProtocol, as
iotests' machine.py drives it, against two svmm processes and against two QEMU 7.2 processes;
the transcripts (printed as 194 prints them) must be equal, and equal to 194.out's lines. The
writer guest then runs through migrations with a bitmap, and the destination's bitmap must hold
what the source's held."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from qemu.qmp import ConnectError
from qemu.qmp.legacy import QEMUMonitorProtocol

from test_graph_io import binaries
from test_migration import nodes, wait_migration, wait_for_progress  # noqa: F401 (nodes is a fixture)

MiB = 1 << 20
CAPABILITIES = [{"capability": "events", "state": True}, {"capability": "dirty-bitmaps", "state": True}]

# The lines of tests/qemu-iotests/194.out after the VMs are up, as QEMU 7.2 passes it.
EXPECTED_194 = """\
{"execute": "block-dirty-bitmap-add", "arguments": {"name": "bitmap0", "node": "drive0"}}
{"return": {}}
Launching NBD server on destination...
{"return": {}}
{"return": {}}
Starting `drive-mirror` on source...
{"return": {}}
Waiting for `drive-mirror` to complete...
{"data": {"device": "mirror-job0", "len": 1073741824, "offset": 1073741824, "speed": 0, "type": "mirror"}, "event": "BLOCK_JOB_READY", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
Starting migration...
{"return": {}}
{"execute": "migrate-start-postcopy", "arguments": {}}
{"return": {}}
{"data": {"status": "setup"}, "event": "MIGRATION", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
{"data": {"status": "active"}, "event": "MIGRATION", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
{"data": {"status": "postcopy-active"}, "event": "MIGRATION", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
{"data": {"status": "completed"}, "event": "MIGRATION", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
Gracefully ending the `drive-mirror` job on source...
{"return": {}}
{"data": {"device": "mirror-job0", "len": 1073741824, "offset": 1073741824, "speed": 0, "type": "mirror"}, "event": "BLOCK_JOB_COMPLETED", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
Stopping the NBD server on destination...
{"return": {}}
Wait for migration completion on target...
{"data": {"status": "completed"}, "event": "MIGRATION", "timestamp": {"microseconds": "USECS", "seconds": "SECS"}}
Check bitmaps on source:
[{"busy": false, "count": 0, "granularity": 65536, "name": "bitmap0", "persistent": false, "recording": true}]
Check bitmaps on target:
[{"busy": false, "count": 0, "granularity": 65536, "name": "bitmap0", "persistent": false, "recording": true}]"""


class Vmm:
    """One VMM process (svmm or QEMU 7.2) with the idle guest and a -drive named drive0, driven
    through qemu.qmp's QEMUMonitorProtocol as iotests' VM class drives it."""

    def __init__(self, target: str, workdir: Path, name: str, image: Path, incoming: str = None):
        svmm, guest, qemu = binaries()
        self.name = name
        sock = workdir / f"{name}.qmp"
        self.stderr_path = workdir / f"{name}.stderr"
        args = [svmm] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", "64M", "-serial", f"file:{workdir / (name + '.serial')}", "-kernel", guest, "-append", "mode=idle",
                 "-qmp", f"unix:{sock},server=on,wait=off",
                 "-drive", f"file={image},format=raw,if=none,id=drive0,cache=writeback",
                 "-device", "virtio-blk-device,drive=drive0,id=vblk0"]
        if incoming:
            args += ["-incoming", incoming]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert self.proc.poll() is None, f"{name} ({target}) exited: {self.errors()}"
            assert time.monotonic() < deadline, f"{name}: no QMP socket"
            time.sleep(0.02)
        while True:   # QEMU creates the socket file a moment before it listens
            self.qmp = QEMUMonitorProtocol(str(sock))
            try:
                self.qmp.connect()
                break
            except (ConnectError, OSError):   # (qemu.qmp wraps the refusal in ConnectError)
                assert time.monotonic() < deadline, f"{name}: QMP socket refuses connections"
                time.sleep(0.05)
        self.pending = []

    def cmd(self, command, **arguments):
        return self.qmp.cmd_raw(command, arguments)

    def event_wait(self, name, status=None, timeout=120.0):
        """The first event `name` (with data.status `status`), keeping the others for later, as
        iotests' event_wait does."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.pending):
                if event["event"] == name and (status is None or event.get("data", {}).get("status") == status):
                    return self.pending.pop(index)
            left = deadline - time.monotonic()
            assert left > 0, f"{self.name}: no {name} {status or ''} within {timeout} s; seen {self.pending}\n{self.errors()}"
            try:
                event = self.qmp.pull_event(wait=min(left, 1.0))
            except TimeoutError:   # (asyncio's, which is the builtin one since Python 3.11)
                continue
            if event is not None:
                self.pending.append(event)

    def bitmaps(self):
        return self.cmd("query-block")["return"][0]["inserted"].get("dirty-bitmaps")

    def errors(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def kill(self):
        try:
            self.qmp.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stderr.close()


def filtered_event(event) -> dict:
    """iotests.filter_qmp_event."""
    event = dict(event)
    event["timestamp"] = {"microseconds": "USECS", "seconds": "SECS"}
    return event


def run_194(target: str, workdir: Path) -> list:
    """tests/qemu-iotests/194's script, its log lines returned."""
    workdir.mkdir()
    source_img, dest_img = workdir / "source.img", workdir / "dest.img"
    migration_sock, nbd_sock = workdir / "migration.sock", workdir / "nbd.sock"
    for image in (source_img, dest_img):
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(image), "1G"], check=True)
    lines = []

    def log(value):
        lines.append(value if isinstance(value, str) else json.dumps(value, sort_keys=True))

    def qmp_log(vm, command, **arguments):
        lines.append(json.dumps({"execute": command, "arguments": dict(sorted(arguments.items()))}))
        log(vm.cmd(command, **arguments))

    source_vm = Vmm(target, workdir, "source", source_img)
    dest_vm = Vmm(target, workdir, "dest", dest_img, incoming=f"unix:{migration_sock}")
    try:
        qmp_log(source_vm, "block-dirty-bitmap-add", node="drive0", name="bitmap0")
        log("Launching NBD server on destination...")
        log(dest_vm.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(nbd_sock)}}))
        log(dest_vm.cmd("nbd-server-add", device="drive0", writable=True))
        log("Starting `drive-mirror` on source...")
        log(source_vm.cmd("drive-mirror", device="drive0", target=f"nbd+unix:///drive0?socket={nbd_sock}",
                          sync="full", format="raw", mode="existing", **{"job-id": "mirror-job0"}))
        log("Waiting for `drive-mirror` to complete...")
        log(filtered_event(source_vm.event_wait("BLOCK_JOB_READY")))
        log("Starting migration...")
        source_vm.cmd("migrate-set-capabilities", capabilities=CAPABILITIES)
        dest_vm.cmd("migrate-set-capabilities", capabilities=CAPABILITIES)
        log(source_vm.cmd("migrate", uri=f"unix:{migration_sock}"))
        qmp_log(source_vm, "migrate-start-postcopy")
        while True:
            event = source_vm.event_wait("MIGRATION")
            log(filtered_event(event))
            if event["data"]["status"] in ("completed", "failed"):
                log("Gracefully ending the `drive-mirror` job on source...")
                log(source_vm.cmd("block-job-cancel", device="mirror-job0"))
                break
        log(filtered_event(source_vm.event_wait("BLOCK_JOB_COMPLETED")))
        log("Stopping the NBD server on destination...")
        log(dest_vm.cmd("nbd-server-stop"))
        log("Wait for migration completion on target...")
        log(filtered_event(dest_vm.event_wait("MIGRATION", "completed")))
        log("Check bitmaps on source:")
        log(source_vm.bitmaps())
        log("Check bitmaps on target:")
        log(dest_vm.bitmaps())
        dest_statuses = [e["data"]["status"] for e in dest_vm.pending if e["event"] == "MIGRATION"]
        return lines, dest_statuses
    finally:
        source_vm.kill()
        dest_vm.kill()


def test_iotest_194_flow_matches_qemu_and_194_out(tmp_path):
    svmm, svmm_dest = run_194("svmm", tmp_path / "svmm")
    qemu, qemu_dest = run_194("qemu", tmp_path / "qemu")
    assert svmm == qemu, "svmm's transcript differs from QEMU's:\n" + "\n".join(
        f"{'=' if a == b else '!'} svmm {a}\n  qemu {b}" for a, b in zip(svmm, qemu))
    assert "\n".join(svmm) == EXPECTED_194
    # What the destination said before `completed`: QEMU's order (setup comes before events
    # are on, as 194 turns them on after the launch).
    assert svmm_dest == qemu_dest == ["active", "postcopy-active"], (svmm_dest, qemu_dest)


# ---------------------------------------------------------------- QMP errors, as QEMU's

def postcopy_errors(nodes, tmp_path, target) -> dict:
    src = nodes(target, f"{target}-src", "idle")
    out = {"no capability": src.error("migrate-start-postcopy")}
    src.ok("migrate-set-capabilities", capabilities=[{"capability": "dirty-bitmaps", "state": True}])
    out["not migrating"] = src.error("migrate-start-postcopy")
    out["postcopy-ram"] = src.cmd("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": True}])
    src.ok("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": False}])
    out["after a failed migrate"] = (src.cmd("migrate", uri="foo:bar"), src.cmd("migrate-start-postcopy"))
    return out


def test_postcopy_errors_match_qemu(nodes, tmp_path):
    svmm = postcopy_errors(nodes, tmp_path, "svmm")
    qemu = postcopy_errors(nodes, tmp_path, "qemu")
    assert svmm["no capability"] == qemu["no capability"] == \
        "Enable postcopy with migrate_set_capability before the start of migration"
    assert svmm["not migrating"] == qemu["not migrating"] == "Postcopy must be started after migration has been started"
    assert svmm["after a failed migrate"] == qemu["after a failed migrate"]
    # QEMU takes postcopy-ram (it has userfaultfd); svmm refuses it rather than pretend.
    assert qemu["postcopy-ram"] == {"return": {}}
    assert svmm["postcopy-ram"]["error"]["desc"] == "Capability 'postcopy-ram' is not supported by svmm"


# ---------------------------------------------------------------- the writer guest's bitmap

def bitmap_of(vm, name="bitmap0"):
    found = [b for b in vm.ok("query-block")[0]["inserted"].get("dirty-bitmaps", []) if b.get("name") == name]
    assert found, f"{vm.name}: no bitmap {name}: {vm.ok('query-block')}"
    return found[0]


def migrate_writer_with_bitmap(nodes, tmp_path, target, postcopy: bool, dest_paused: bool):
    """The writer guest on shared storage with bitmap0 (and a disabled bm1 at 4 KiB) on its disk,
    migrated with `dirty-bitmaps`; returns (source, destination)."""
    disk = tmp_path / f"{target}-disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    src = nodes(target, f"{target}-src", "writer", disk=disk, disk_format="qcow2")
    extra = ("-incoming", "defer") + (("-S",) if dest_paused else ())
    dst = nodes(target, f"{target}-dst", "writer", disk=disk, disk_format="qcow2", extra=extra)
    for vm in (src, dst):
        vm.ok("migrate-set-capabilities", capabilities=CAPABILITIES)
    uri = f"unix:{tmp_path / (target + '-mig.sock')}"
    dst.ok("migrate-incoming", uri=uri)
    src.qmp.request({"execute": "block-dirty-bitmap-add", "arguments": {"node": "d0", "name": "bitmap0"}})
    src.qmp.request({"execute": "block-dirty-bitmap-add",
                     "arguments": {"node": "d0", "name": "bm1", "granularity": 4096, "disabled": True}})
    wait_for_progress(src, word="WRITER", count=2)
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    src.ok("migrate", uri=uri)
    if postcopy:
        src.ok("migrate-start-postcopy")
    done = wait_migration(src)
    assert done["status"] == "completed", f"{done}\n{src.errors()}\n{dst.errors()}"
    assert wait_migration(dst)["status"] == "completed", dst.errors()
    return src, dst


@pytest.mark.parametrize("postcopy", [False, True], ids=["precopy", "postcopy"])
def test_a_paused_destination_holds_exactly_the_sources_bitmap(nodes, tmp_path, postcopy):
    src, dst = migrate_writer_with_bitmap(nodes, tmp_path, "svmm", postcopy, dest_paused=True)
    before = bitmap_of(src)
    assert before["count"] > 0 and before["busy"] is False   # the guest wrote, and it is let go
    after = bitmap_of(dst)
    assert after == before, (before, after)
    assert bitmap_of(dst, "bm1") == {"name": "bm1", "recording": False, "persistent": False, "busy": False,
                                     "granularity": 4096, "count": 0}
    statuses = [d["status"] for e, d in dst.events("MIGRATION")]
    assert statuses == (["setup", "active", "postcopy-active", "completed"] if postcopy else ["setup", "active", "completed"])
    # It is the user's again (not busy), and records on the destination once the guest runs there.
    dst.qmp.request({"execute": "block-dirty-bitmap-clear", "arguments": {"node": "d0", "name": "bitmap0"}})
    assert bitmap_of(dst)["count"] == 0
    dst.ok("cont")
    deadline = time.monotonic() + 30
    while bitmap_of(dst)["count"] == 0:
        assert time.monotonic() < deadline, "the migrated bitmap does not record on the destination"
        time.sleep(0.1)
    assert bitmap_of(dst, "bm1")["count"] == 0   # the disabled one does not


def test_postcopy_to_a_running_destination_keeps_the_guests_writes(nodes, tmp_path):
    """The destination runs before the bits come: its writes meanwhile go to the successor and
    are merged, so nothing the source recorded is lost and the guest keeps verifying."""
    src, dst = migrate_writer_with_bitmap(nodes, tmp_path, "svmm", postcopy=True, dest_paused=False)
    source_count = bitmap_of(src)["count"]
    wait_for_progress(dst, word="WRITER", beyond=0, count=2)
    after = bitmap_of(dst)
    assert after["count"] >= source_count and after["recording"] is True and after["busy"] is False
    check = subprocess.run(["qemu-img", "check", "-U", str(tmp_path / "svmm-disk.qcow2")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_destinations_bitmaps_match_qemus(nodes, tmp_path):
    """The same flow under QEMU 7.2: the destination's bitmaps list has the same shape, order
    and flags (counts differ with the guest's timing, so they are compared to each source's)."""
    shapes = {}
    for target in ("svmm", "qemu"):
        src, dst = migrate_writer_with_bitmap(nodes, tmp_path, target, postcopy=True, dest_paused=True)
        source, dest = src.ok("query-block")[0]["inserted"]["dirty-bitmaps"], dst.ok("query-block")[0]["inserted"]["dirty-bitmaps"]
        assert [b["count"] for b in dest] == [b["count"] for b in source[::-1]], (target, source, dest)
        shapes[target] = [{k: v for k, v in b.items() if k != "count"} for b in dest]
        src.kill()
        dst.kill()
    assert shapes["svmm"] == shapes["qemu"]


def test_a_bitmap_that_exists_on_the_destination_fails_the_migration(nodes, tmp_path):
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    src = nodes("svmm", "src", "writer", disk=disk, disk_format="qcow2")
    dst = nodes("svmm", "dst", "writer", disk=disk, disk_format="qcow2", extra=("-incoming", "defer"))
    for vm in (src, dst):
        vm.ok("migrate-set-capabilities", capabilities=CAPABILITIES)
        vm.qmp.request({"execute": "block-dirty-bitmap-add", "arguments": {"node": "d0", "name": "bitmap0"}})
    uri = f"unix:{tmp_path / 'mig.sock'}"
    dst.ok("migrate-incoming", uri=uri)
    wait_for_progress(src, word="WRITER", count=1)
    src.ok("migrate", uri=uri)
    done = wait_migration(src)
    assert done["status"] == "failed"
    assert "Bitmap with the same name ('bitmap0') already exists on destination" in done["error-desc"]
    assert "section 'dirty-bitmap'" in done["error-desc"]
    assert dst.proc.wait(30) == 1
    # The source runs on, its bitmap no longer busy.
    assert src.status() == "running" and bitmap_of(src)["busy"] is False
    wait_for_progress(src, word="WRITER", beyond=0, count=1)
