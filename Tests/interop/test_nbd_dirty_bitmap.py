"""The `qemu:dirty-bitmap:NAME` NBD meta context, side by side with QEMU 7.2: a bitmap records
qemu-io's writes over a writable export, is exported (nbd-server-add `bitmap`, block-export-add
`bitmaps`), and nbdinfo and qemu-img read the same map from both; the export's checks, and the
bitmap being busy while exported, answer in the same words."""

import json
import subprocess
from pathlib import Path

from test_dirty_bitmaps import bitmaps, call, start, write
from test_graph_io import TARGETS


def run(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    return f"rc={result.returncode}\n{result.stdout}"


def transcript(target: str, workdir: Path) -> list:
    guest = start(target, workdir)
    sock = str(workdir / "nbd.sock")
    log = []

    def cmd(_command, **args):
        log.append((_command, args, call(guest, _command, **args)))

    def nbd(export: str) -> str:
        return f"nbd+unix:///{export}?socket={sock}"

    try:
        cmd("block-dirty-bitmap-add", node="x", name="b0")
        cmd("block-dirty-bitmap-add", node="x", name="fine", granularity=512)
        cmd("block-dirty-bitmap-add", node="bx", name="below", disabled=True)
        # 4 KiB at 0, 1 byte at 70000, 128 KiB at 1 MiB, 1 KiB at 3 MiB + 1 KiB, 4 KiB at 8M - 4K.
        write(guest, "write 0 4k", "write 70000 1", "write 1M 128k", "write 3073k 1k", "write 8188k 4k")
        # Refused: an unknown bitmap, an enabled one on a read-only export, a busy one.
        cmd("nbd-server-add", device="x", name="ro", bitmap="nosuch")
        cmd("nbd-server-add", device="x", name="ro", bitmap="b0")
        cmd("block-export-add", type="nbd", id="e1", **{"node-name": "x"}, name="ro", bitmaps=["fine", "nosuch"])
        cmd("block-dirty-bitmap-disable", node="x", name="b0")
        cmd("nbd-server-add", device="x", name="ro", bitmap="b0")
        cmd("block-dirty-bitmap-remove", node="x", name="b0")
        cmd("block-dirty-bitmap-enable", node="x", name="b0")
        cmd("block-dirty-bitmap-clear", node="x", name="b0")
        cmd("block-export-add", type="nbd", id="e2", **{"node-name": "x"}, name="again", bitmaps=["b0"])
        # A writable export may carry an enabled bitmap; `below` is found on the backing node.
        cmd("block-export-add", type="nbd", id="e3", **{"node-name": "x"}, name="two", writable=True,
            bitmaps=["fine", "below"])
        cmd("query-block-exports")
        log.append(("bitmaps while exported", bitmaps(guest, "x"), bitmaps(guest, "bx")))
        # A bitmap named with its node (BlockDirtyBitmapOrStr) is looked up there, in lookup's words.
        cmd("block-export-add", type="nbd", id="e4", **{"node-name": "x"}, name="ext",
            bitmaps=[{"node": "x", "name": "nosuch"}])
        cmd("block-export-add", type="nbd", id="e4", **{"node-name": "x"}, name="ext",
            bitmaps=[{"node": "x", "name": "fine"}])
        cmd("block-dirty-bitmap-add", node="x", name="on")
        cmd("block-export-add", type="nbd", id="e4", **{"node-name": "x"}, name="ext",
            bitmaps=[{"node": "x", "name": "on"}])
        cmd("block-export-del", id="e4")
        log.append(("contexts ro", contexts(nbd("ro"))))
        log.append(("contexts two", contexts(nbd("two"))))
        for context in ("qemu:dirty-bitmap:b0", "qemu:dirty-bitmap:nosuch"):
            log.append((f"map ro {context}", run("nbdinfo", f"--map={context}", nbd("ro"))))
        log.append(("map two fine", run("nbdinfo", "--map=qemu:dirty-bitmap:fine", nbd("two"))))
        log.append(("map two below", run("nbdinfo", "--map=qemu:dirty-bitmap:below", nbd("two"))))
        log.append(("map ro totals", run("nbdinfo", "--map=qemu:dirty-bitmap:b0", "--totals", nbd("ro"))))
        log.append(("qemu-img map", run(
            "qemu-img", "map", "--output=json", "--image-opts",
            f"driver=nbd,server.type=unix,server.path={sock},export=ro,x-dirty-bitmap=qemu:dirty-bitmap:b0")))
        # Writes through `two` mark `fine` (enabled) and not `below` (disabled).
        write_to(sock, "two", "write 5M 512")
        log.append(("map two fine after", run("nbdinfo", "--map=qemu:dirty-bitmap:fine", nbd("two"))))
        # Once the exports are gone the bitmaps are free again.
        cmd("nbd-server-remove", name="ro")
        cmd("block-export-del", id="e3")
        cmd("block-dirty-bitmap-remove", node="x", name="b0")
        cmd("block-dirty-bitmap-remove", node="x", name="fine")
        cmd("block-dirty-bitmap-remove", node="bx", name="below")
        log.append(("bitmaps after", bitmaps(guest, "x")))
        guest.quit()
    finally:
        guest.kill()
    return log


def contexts(uri: str):
    """The meta contexts nbdinfo lists (NBD_OPT_LIST_META_CONTEXT) for an export."""
    result = subprocess.run(["nbdinfo", "--json", uri], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    export = json.loads(result.stdout)["exports"][0]
    return export["contexts"], export["is_read_only"]


def write_to(sock: str, export: str, command: str):
    result = subprocess.run(["qemu-io", "-f", "raw", "-c", command, f"nbd+unix:///{export}?socket={sock}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "error" not in result.stdout.lower(), result.stdout + result.stderr


def test_dirty_bitmap_context_reads_as_qemus(tmp_path):
    transcripts = {target: transcript(target, tmp_path / target) for target in TARGETS}
    for step_svmm, step_qemu in zip(transcripts["svmm"], transcripts["qemu"]):
        assert step_svmm == step_qemu
    assert len(transcripts["svmm"]) == len(transcripts["qemu"])
    steps = {entry[0]: entry[1] for entry in transcripts["svmm"] if len(entry) == 2}
    # b0 has 64 KiB granules: [0,128k) (the 4 KiB and the byte at 70000), [1M,+128k), [3M,+64k), [8M-64k,8M).
    lines = [line.split() for line in steps["map ro qemu:dirty-bitmap:b0"].splitlines()[1:]]
    assert [(int(start), int(length), flag) for start, length, flag, *_ in lines] == [
        (0, 131072, "1"), (131072, 917504, "0"), (1048576, 131072, "1"), (1179648, 1966080, "0"),
        (3145728, 65536, "1"), (3211264, 5111808, "0"), (8323072, 65536, "1")]
