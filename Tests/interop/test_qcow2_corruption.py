"""A damaged qcow2 image (the header cluster's refcount is 0, so the allocator thinks the header
is free), side by side with QEMU 7.2: the first allocating write fails, BLOCK_IMAGE_CORRUPTED
says why, the image is marked corrupt, and the header is never overwritten."""

import json
import subprocess
from pathlib import Path

from test_dirty_bitmaps import call
from test_graph_io import TARGETS, Guest


def damaged_image(path: Path):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    with open(path, "r+b") as image:
        image.seek(0x20000)  # the first refcount block (64 KiB clusters); entry 0 counts the header cluster
        image.write(b"\0\0")


def outcome(target: str, workdir: Path) -> dict:
    workdir.mkdir()
    with open(workdir / "d.raw", "wb") as disk:
        disk.truncate(1 << 20)
    image = workdir / "x.qcow2"
    damaged_image(image)
    header = image.read_bytes()[:0x68]
    guest = Guest(target, workdir, [f"driver=file,node-name=d0,filename={workdir / 'd.raw'}",
                                    "driver=raw,node-name=top,file=d0"], mode="idle")
    try:
        assert call(guest, "blockdev-add", driver="qcow2", **{"node-name": "x"},
                    file={"driver": "file", "filename": str(image)}) == {"return": {}}
        sock = str(workdir / "nbd.sock")
        assert guest.qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": sock}}) == {"return": {}}
        assert call(guest, "nbd-server-add", device="x", name="x", writable=True) == {"return": {}}
        write = subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x33 0 64k", f"nbd+unix:///x?socket={sock}"],
                               capture_output=True, text=True, timeout=60)
        second = subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x44 1M 4k", f"nbd+unix:///x?socket={sock}"],
                                capture_output=True, text=True, timeout=60)
        read = subprocess.run(["qemu-io", "-f", "raw", "-c", "read 0 4k", f"nbd+unix:///x?socket={sock}"],
                              capture_output=True, text=True, timeout=60)
        guest.qmp.cmd("query-status")  # the event, if any, has been read by now
        events = [{k: v for k, v in e.items() if k != "timestamp"} for e in guest.qmp.events
                  if e["event"] == "BLOCK_IMAGE_CORRUPTED"]
        guest.quit()
    finally:
        guest.kill()
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U", str(image)],
                                     capture_output=True, text=True, check=True).stdout)
    after = image.read_bytes()[:0x68]
    corrupt_bit = 2
    return {
        "first-write-failed": "failed" in write.stdout + write.stderr,
        "second-write-failed": "failed" in second.stdout + second.stderr,
        # After a fatal corruption the node is unusable, reads included.
        "read-after": (read.stdout + read.stderr).strip().splitlines()[-1:],
        "events": events,
        "corrupt": info["format-specific"]["data"].get("corrupt"),
        # The header is intact but for the corrupt bit in the incompatible features (byte 0x4f).
        "header-kept": after[:0x4f] == header[:0x4f] and after[0x50:] == header[0x50:]
                       and after[0x4f] & ~corrupt_bit == header[0x4f],
    }


def test_a_write_over_the_header_is_refused_and_reported_as_qemu_does(tmp_path):
    outcomes = {target: outcome(target, tmp_path / target) for target in TARGETS}
    assert outcomes["svmm"] == outcomes["qemu"]
    svmm = outcomes["svmm"]
    assert svmm["first-write-failed"] and svmm["corrupt"] is True and svmm["header-kept"], svmm
    assert len(svmm["events"]) == 1 and svmm["events"][0]["data"]["fatal"] is True, svmm
