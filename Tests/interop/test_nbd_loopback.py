"""A qcow2 node whose file is an NBD export of the same process (blockdev-add of driver=nbd on
the VMM's own nbd-server): the NBD handshake and qcow2's synchronous metadata reads must not wait
on the loop that has to answer them. svmm only: QEMU 7.2 hangs in that blockdev-add (its
handshake blocks the main loop its own server needs; seen on these machines)."""

import subprocess
from pathlib import Path

from test_dirty_bitmaps import call
from test_graph_io import Guest

MiB = 1 << 20


def run(*args):
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


def outcome(target: str, workdir: Path) -> dict:
    workdir.mkdir()
    with open(workdir / "d.raw", "wb") as disk:
        disk.truncate(MiB)
    image = workdir / "q.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "8M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x61 0 1M", str(image)], check=True, capture_output=True)
    guest = Guest(target, workdir, [f"driver=file,node-name=d0,filename={workdir / 'd.raw'}",
                                    "driver=raw,node-name=top,file=d0",
                                    f"driver=file,node-name=img,filename={image}"], mode="idle")
    sock = workdir / "nbd.sock"
    result = {}
    try:
        assert guest.qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(sock)}}) == {"return": {}}
        result["export-file"] = call(guest, "nbd-server-add", device="img", name="img", writable=True)
        result["add-qcow2-over-own-nbd"] = call(guest, "blockdev-add", driver="qcow2", **{"node-name": "q"},
                                                file={"driver": "nbd", "export": "img",
                                                      "server": {"type": "unix", "path": str(sock)}})
        result["export-qcow2"] = call(guest, "nbd-server-add", device="q", name="q", writable=True)
        uri = f"nbd+unix:///q?socket={sock}"
        result["read"] = run("qemu-io", "-f", "raw", "-c", "read -P 0x61 0 1M", "-c", "read -P 0 1M 1M", uri)[0]
        # In place: an NBD export has a fixed size, so qcow2 cannot allocate new clusters on it.
        result["write"] = run("qemu-io", "-f", "raw", "-c", "write -P 0x62 256k 256k", uri)[0]
        result["read-back"] = run("qemu-io", "-f", "raw", "-c", "read -P 0x62 256k 256k", uri)[0]
        assert call(guest, "nbd-server-remove", name="q") == {"return": {}}
        result["del-qcow2"] = call(guest, "blockdev-del", **{"node-name": "q"})
        result["status"] = guest.qmp.cmd("query-status")["return"]["status"]
        guest.quit()
    finally:
        guest.kill()
    result["check"] = run("qemu-img", "check", image)[0]
    result["data"] = run("qemu-io", "-f", "qcow2", "-c", "read -P 0x62 256k 256k", "-c", "read -P 0x61 0 256k",
                         "-c", "read -P 0x61 512k 512k", image)[0]
    return result


def test_qcow2_over_an_nbd_export_of_the_same_process(tmp_path):
    svmm = outcome("svmm", tmp_path / "svmm")
    assert svmm == {"export-file": {"return": {}}, "add-qcow2-over-own-nbd": {"return": {}},
                    "export-qcow2": {"return": {}}, "read": 0, "write": 0, "read-back": 0,
                    "del-qcow2": {"return": {}}, "status": "prelaunch", "check": 0, "data": 0}, svmm


def test_a_silent_nbd_server_does_not_hold_up_the_loop(tmp_path):
    """blockdev-add of an NBD node whose server accepts and then says nothing: the handshake runs
    off the loop, so another QMP client (and the guest) are served meanwhile; when the server goes
    away the blockdev-add fails with the handshake's error."""
    import socket
    import threading

    from conftest import RawQMP

    workdir = tmp_path / "svmm"
    workdir.mkdir()
    with open(workdir / "d.raw", "wb") as disk:
        disk.truncate(MiB)
    silent = socket.socket(socket.AF_UNIX)
    silent.bind(str(workdir / "silent.sock"))
    silent.listen(1)
    guest = Guest("svmm", workdir, [f"driver=file,node-name=top,filename={workdir / 'd.raw'}"], mode="idle")
    try:
        answer = {}
        adding = threading.Thread(target=lambda: answer.update(guest.qmp.request({
            "execute": "blockdev-add", "arguments": {"driver": "nbd", "node-name": "n",
                                                     "server": {"type": "unix", "path": str(workdir / "silent.sock")}}})))
        adding.start()
        peer, _ = silent.accept()  # the handshake has started and waits for the greeting
        other = RawQMP(guest.sock)
        assert other.cmd("query-status")["return"]["status"] == "prelaunch"
        assert "return" in other.cmd("query-named-block-nodes")
        assert adding.is_alive() and not answer
        peer.close()
        adding.join(30)
        assert "error" in answer, answer
        other.close()
        guest.quit()
    finally:
        silent.close()
        guest.kill()
