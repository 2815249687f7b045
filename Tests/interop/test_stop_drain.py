"""`stop` as QEMU 7.2's do_vm_stop, and the requests an I/O error stopped carried by a migration,
against svmm and QEMU 7.2 side by side with the writer guest (mode=writer) verifying its disk.

- `stop` with the writer busy: STOP comes before the reply (QEMU sends it, then drains and
  flushes, then answers), the requests in flight are done by the reply and virtio-blk takes no
  new one while stopped, so the image does not change until `cont`.
- werror=stop over a blkdebug node that fails one write: the VM stops in `io-error` holding the
  failed write; it migrates (shared storage) to a second VMM whose disk works; `cont` there
  writes it, the writer's verification holds and every sector of the image carries a valid stamp
  (EIO under werror=stop, ENOSPC under werror=enospc); and the same through a storage migration
  (iotest 194's order), where the write lands on the destination's own disk."""

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from test_error_policy import check_writer_stamps
from test_graph_io import TARGETS, Guest
from test_migration import Node, enable_events, wait_for_progress, wait_migration

MiB = 1 << 20
DISK = 4 * MiB


def new_disk(path: Path) -> Path:
    with open(path, "wb") as image:
        image.truncate(DISK)
    return path


def digest(path: Path) -> bytes:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()


def stop_flow(target: str, workdir: Path) -> dict:
    disk = new_disk(workdir / f"{target}.raw")
    guest = Guest(target, workdir, [f"driver=file,node-name=top,filename={disk},cache.direct=on"])
    try:
        assert guest.qmp.cmd("cont") == {"return": {}}
        guest.wait_rounds(1)
        orders, unchanged = [], 0
        for _ in range(20):
            guest.qmp.events.clear()
            guest.qmp.send_raw(b'{"execute": "stop"}\n')
            order = []
            while True:
                message = guest.qmp.read()
                order.append(message.get("event", "return" if "return" in message else "error"))
                if "event" not in message:
                    break
            orders.append(order)
            first = digest(disk)
            time.sleep(0.05)  # a request still in flight would land meanwhile
            unchanged += digest(disk) == first
            status = guest.qmp.cmd("query-status")["return"]["status"]
            assert status == "paused", status
            assert guest.qmp.cmd("cont") == {"return": {}}
        guest.wait_rounds(1)
        guest.quit()
    finally:
        guest.kill()
    assert "FAIL" not in guest.serial(), guest.serial()
    return {"orders": sorted(set(map(tuple, orders))), "unchanged": unchanged}


def test_stop_answers_after_the_drain_as_qemu(tmp_path):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = stop_flow(target, tmp_path / target)
    assert outcomes["svmm"] == outcomes["qemu"] == {"orders": [("STOP", "return")], "unchanged": 20}, outcomes


# (errno, the device's werror): EIO stops under `stop`, ENOSPC under `enospc` (QEMU's nospace).
POLICIES = {"eio-stop": (5, "stop"), "enospc": (28, "enospc")}


def blkdebug_source(disk: Path, sector: int, errno: int, werror: str) -> list:
    """The guest's raw node `d0` over blkdebug over the file: the first write covering `sector`
    fails with `errno`, once."""
    return ["-blockdev", f"driver=raw,node-name=d0,file.driver=blkdebug,file.node-name=dbg,file.inject-error.0.iotype=write,"
                         f"file.inject-error.0.event=write_aio,file.inject-error.0.sector={sector},file.inject-error.0.once=on,"
                         f"file.inject-error.0.errno={errno},file.image.driver=file,file.image.filename={disk}",
            "-device", f"virtio-blk-device,drive=d0,id=vblk0,werror={werror}"]


def plain_destination(disk: Path, werror: str) -> list:
    return ["-blockdev", f"driver=file,node-name=f0,filename={disk}", "-blockdev", "driver=raw,node-name=d0,file=f0",
            "-device", f"virtio-blk-device,drive=d0,id=vblk0,werror={werror}", "-incoming", "defer"]


def wait_event(vm: Node, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for event in vm.qmp.events:
            if event["event"] == name:
                return event
        assert time.monotonic() < deadline, f"{vm.name}: no {name} in {timeout} s\n{vm.serial()[-1000:]}\n{vm.errors()}"
        vm.qmp.events.append(vm.qmp.read())


def failed_request_migration(target: str, workdir: Path, errno: int, werror: str) -> dict:
    disk = new_disk(workdir / "shared.raw")
    src = Node(target, workdir, "src", "writer", extra=blkdebug_source(disk, 4096, errno, werror))
    dst = None
    try:
        error = wait_event(src, "BLOCK_IO_ERROR")["data"]
        wait_event(src, "STOP")
        outcome = {"error": error, "source-status": src.status()}
        dst = Node(target, workdir, "dst", "writer", extra=plain_destination(disk, werror))
        enable_events(src, dst)
        uri = f"unix:{workdir / 'mig.sock'}"
        dst.ok("migrate-incoming", uri=uri)
        src.ok("migrate", uri=uri)
        outcome["source-migration"] = wait_migration(src)["status"]
        outcome["destination-migration"] = wait_migration(dst)["status"]
        outcome["source-after"] = src.status()
        outcome["destination-after"] = dst.status()
        outcome["destination-io-status"] = dst.ok("query-block")[0].get("io-status")
        written_before = dst.ok("query-blockstats")[0]["stats"]["wr_operations"]
        dst.ok("cont")
        wait_event(dst, "RESUME")
        outcome["destination-running"] = dst.status()
        wait_for_progress(dst, word="WRITER", count=2)  # round 1 finishes with the retried write, then more
        outcome["destination-wrote"] = dst.ok("query-blockstats")[0]["stats"]["wr_operations"] > written_before
        dst.cmd("quit")
        dst.proc.wait(20)
        src.kill()
        outcome["guest-verified"] = "FAIL" not in dst.serial() and "WRITER round 2 ok" in dst.serial()
        outcome["stamps-valid"] = bool(check_writer_stamps(disk, DISK // 512))
        return outcome
    finally:
        src.kill()
        if dst is not None:
            dst.kill()


@pytest.mark.parametrize("policy", POLICIES)
def test_a_vm_holding_a_failed_write_migrates_and_the_destination_writes_it(tmp_path, policy):
    errno, werror = POLICIES[policy]
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = failed_request_migration(target, tmp_path / target, errno, werror)
    svmm = outcomes["svmm"]
    reason = "No space left on device" if errno == 28 else "Input/output error"
    assert svmm["error"] == {"device": "", "node-name": "d0", "reason": reason,
                             "operation": "write", "action": "stop", "nospace": errno == 28}, svmm
    assert svmm["source-status"] == "io-error" and svmm["source-migration"] == svmm["destination-migration"] == "completed"
    assert svmm["destination-after"] == "io-error" and svmm["destination-running"] == "running"
    assert svmm["destination-wrote"] and svmm["guest-verified"] and svmm["stamps-valid"], svmm
    assert outcomes["svmm"] == outcomes["qemu"], outcomes


def storage_migration_with_a_failed_write(target: str, workdir: Path) -> dict:
    """iotest 194's order with the source stopped on a failed write: the destination's own disk
    is exported over NBD, the source mirrors onto it (its VM is in `io-error`, the job runs), the
    VM migrates, the mirror is cancelled after READY, the export stopped, `cont` on the destination
    writes the request to the destination's disk."""
    source_disk, destination_disk = new_disk(workdir / "source.raw"), new_disk(workdir / "destination.raw")
    src = Node(target, workdir, "src", "writer", extra=blkdebug_source(source_disk, 4096, 5, "stop"))
    dst = None
    try:
        wait_event(src, "STOP")
        dst = Node(target, workdir, "dst", "writer", extra=plain_destination(destination_disk, "stop") + ["-S"])
        nbd = {"type": "unix", "path": str(workdir / "nbd.sock")}
        dst.ok("nbd-server-start", addr={"type": "unix", "data": {"path": nbd["path"]}})
        dst.ok("nbd-server-add", device="d0", writable=True)
        src.ok("blockdev-add", **{"driver": "nbd", "node-name": "target", "export": "d0", "server": nbd})
        src.ok("blockdev-mirror", **{"job-id": "mirror0", "device": "d0", "target": "target", "sync": "full"})
        wait_event(src, "BLOCK_JOB_READY")
        enable_events(src, dst)
        uri = f"unix:{workdir / 'mig.sock'}"
        dst.ok("migrate-incoming", uri=uri)
        src.ok("migrate", uri=uri)
        outcome = {"source-migration": wait_migration(src)["status"], "destination-migration": wait_migration(dst)["status"]}
        src.ok("block-job-cancel", device="mirror0")
        wait_event(src, "BLOCK_JOB_COMPLETED")
        dst.ok("nbd-server-stop")
        outcome["destination-after"] = dst.status()
        # The mirror copied what the source's disk holds: not the write that failed there.
        with open(destination_disk, "rb") as image:
            image.seek(4096 * 512)
            outcome["failed-sector-before-cont"] = image.read(512) == bytes(512)
        dst.ok("cont")
        wait_for_progress(dst, word="WRITER", count=2)
        dst.cmd("quit")
        dst.proc.wait(20)
        src.kill()
        outcome["guest-verified"] = "FAIL" not in dst.serial() and "WRITER round 2 ok" in dst.serial()
        outcome["stamps-valid"] = bool(check_writer_stamps(destination_disk, DISK // 512))
        return outcome
    finally:
        src.kill()
        if dst is not None:
            dst.kill()


def test_a_storage_migration_carries_the_failed_write_to_the_destinations_disk(tmp_path):
    outcomes = {}
    for target in TARGETS:
        (tmp_path / target).mkdir()
        outcomes[target] = storage_migration_with_a_failed_write(target, tmp_path / target)
    assert outcomes["svmm"] == outcomes["qemu"] == {
        "source-migration": "completed", "destination-migration": "completed", "destination-after": "io-error",
        "failed-sector-before-cont": True, "guest-verified": True, "stamps-valid": True}, outcomes
