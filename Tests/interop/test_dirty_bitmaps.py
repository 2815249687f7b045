"""Dirty bitmaps and op blockers, side by side with QEMU 7.2: the same QMP commands and the same
writes (qemu-io over a writable NBD export of the node) must give the same answers and counts."""

import subprocess
from pathlib import Path

from test_graph_io import TARGETS, Guest

MiB = 1 << 20


def start(target: str, workdir: Path) -> Guest:
    """A paused idle guest on `top` (raw over d.raw) plus a spare node x (qcow2 over x.qcow2,
    whose backing b.qcow2 is opened from its header), exported writable over NBD."""
    workdir.mkdir()
    with open(workdir / "d.raw", "wb") as disk:
        disk.truncate(16 * MiB)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(workdir / "b.qcow2"), "8M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(workdir / "b.qcow2"), "-F", "qcow2",
                    str(workdir / "x.qcow2"), "8M"], check=True)
    guest = Guest(target, workdir, [
        f"driver=file,node-name=d0,filename={workdir / 'd.raw'}", "driver=raw,node-name=top,file=d0",
        f"driver=qcow2,node-name=x,file.driver=file,file.filename={workdir / 'x.qcow2'},backing.node-name=bx,"
        f"backing.driver=qcow2,backing.file.driver=file,backing.file.filename={workdir / 'b.qcow2'}",
    ], mode="idle")
    sock = str(workdir / "nbd.sock")
    assert guest.qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": sock}}) == {"return": {}}
    assert call(guest, "nbd-server-add", device="x", name="x", writable=True) == {"return": {}}
    guest.nbd = f"nbd+unix:///x?socket={sock}"
    return guest


def call(guest: Guest, _command: str, **arguments) -> dict:
    """A QMP command whose arguments may include `name` (RawQMP.cmd's own parameter)."""
    return guest.qmp.request({"execute": _command, "arguments": arguments})


def write(guest: Guest, *commands: str):
    args = ["qemu-io", "-f", "raw"]
    for command in commands:
        args += ["-c", command]
    result = subprocess.run(args + [guest.nbd], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "error" not in result.stdout.lower(), result.stdout + result.stderr


def bitmaps(guest: Guest, node: str):
    nodes = {n["node-name"]: n for n in guest.qmp.cmd("query-named-block-nodes")["return"]}
    return nodes[node].get("dirty-bitmaps")


def transcript(target: str, workdir: Path) -> list:
    """Bitmap commands and their answers, with writes in between; what query-named-block-nodes
    shows after each step."""
    guest = start(target, workdir)
    log = []

    def cmd(_command, **args):
        log.append((_command, args, call(guest, _command, **args)))

    try:
        cmd("block-dirty-bitmap-add", node="x", name="b0")
        cmd("block-dirty-bitmap-add", node="x", name="small", granularity=512)
        cmd("block-dirty-bitmap-add", node="x", name="off", disabled=True)
        for bad in ({"name": "b0"}, {"name": ""}, {"name": "g", "granularity": 1000}, {"name": "g", "granularity": 256}):
            cmd("block-dirty-bitmap-add", node="x", **bad)
        # A raw node cannot store bitmaps (svmm stores none in qcow2 either: README's known differences).
        cmd("block-dirty-bitmap-add", node="top", name="p", persistent=True)
        cmd("block-dirty-bitmap-add", node="nosuch", name="b0")
        # 4 KiB at 0, 1 byte at 70000, 128 KiB at 1 MiB, a zeroing and a discard at 3 MiB / 5 MiB.
        write(guest, "write 0 4k", "write 70000 1", "write 1M 128k", "write -z 3M 64k", "discard 5M 64k")
        log.append(("after writes", bitmaps(guest, "x")))
        cmd("block-dirty-bitmap-disable", node="x", name="b0")
        write(guest, "write 6M 4k")
        cmd("block-dirty-bitmap-enable", node="x", name="off")
        write(guest, "write 7M 4k")
        log.append(("after disable/enable", bitmaps(guest, "x")))
        cmd("block-dirty-bitmap-merge", node="x", target="off", bitmaps=["b0", {"node": "x", "name": "small"}])
        cmd("block-dirty-bitmap-merge", node="x", target="off", bitmaps=["nosuch"])
        cmd("block-dirty-bitmap-merge", node="x", target="nosuch", bitmaps=["b0"])
        log.append(("after merge", bitmaps(guest, "x")))
        cmd("block-dirty-bitmap-clear", node="x", name="small")
        cmd("block-dirty-bitmap-remove", node="x", name="b0")
        cmd("block-dirty-bitmap-remove", node="x", name="b0")
        cmd("block-dirty-bitmap-remove", node="nosuch", name="b0")
        log.append(("after clear/remove", bitmaps(guest, "x")))
        # Op blockers: the backing node bx is busy for a snapshot and for blockdev-del.
        cmd("blockdev-add", driver="null-co", **{"node-name": "n0"})
        cmd("blockdev-snapshot", node="bx", overlay="n0")
        cmd("blockdev-del", **{"node-name": "bx"})
        guest.quit()
    finally:
        guest.kill()
    return log


def test_bitmaps_count_what_was_written_and_answer_as_qemu_does(tmp_path):
    transcripts = {target: transcript(target, tmp_path / target) for target in TARGETS}
    assert transcripts["svmm"] == transcripts["qemu"]
    counts = {name: info["count"] for name, info in ((b["name"], b) for b in dict(
        (entry[0], entry[1]) for entry in transcripts["svmm"] if len(entry) == 2)["after writes"])}
    # b0 (64 KiB granules): [0,64k) [64k,128k) [1M,1M+128k) [3M,+64k) = 5 granules; the discard
    # at 5M does nothing (and marks nothing) without discard=unmap, QEMU's default.
    assert counts["b0"] == 5 * 65536 and counts["off"] == 0
