"""svmm as QEMU_PROG under qemu-iotests' way of starting QEMU (python/qemu/machine).

The harness *listens* on the monitor's and the qtest's sockets and starts QEMU as the client
(`-chardev socket,id=mon,path=P` without server=on, `-qtest unix:path=Q`), with `-accel qtest`:
no kernel, no guest code, but QMP, run states and the block layer work. These tests do the same
with qemu.qmp's QMPClient in server mode, which is what machine.py uses.
"""

import asyncio
import os
import socket
import subprocess

from conftest import REPO, repo_path, run
from qemu.qmp import QMPClient

SVMM = str(repo_path(os.environ.get("SVMM_BIN", ".build/debug/svmm")))


async def start_harness_style(tmp_path, extra, qtest=True):
    """Listens as machine.py does, starts svmm as a client of both sockets, accepts the monitor."""
    mon = str(tmp_path / "mon.sock")
    client = QMPClient("iotests-style")
    await client.start_server(mon)
    args = [SVMM, "-display", "none", "-vga", "none", "-chardev", f"socket,id=mon,path={mon}",
            "-mon", "chardev=mon,mode=control"]
    qtest_listener = None
    if qtest:
        qtest_path = str(tmp_path / "qtest.sock")
        qtest_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        qtest_listener.bind(qtest_path)
        qtest_listener.listen(1)
        args += ["-qtest", f"unix:path={qtest_path}", "-accel", "qtest"]
    args += ["-nodefaults", "-display", "none", "-accel", "qtest"] + extra
    log = open(tmp_path / "svmm.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        await asyncio.wait_for(client.accept(), 20)
    except BaseException:
        process.kill()
        process.wait()
        raise AssertionError(f"svmm did not connect to the monitor: {(tmp_path / 'svmm.log').read_text()}")
    qtest_peer = None
    if qtest_listener is not None:
        qtest_listener.settimeout(20)
        qtest_peer, _ = qtest_listener.accept()  # svmm connected before the monitor's greeting
    return client, process, qtest_peer


async def quit_and_wait(client, process):
    await client.execute("quit")
    await client.disconnect()
    assert process.wait(timeout=20) == 0


def test_svmm_connects_to_a_listening_monitor_and_speaks_qmp(tmp_path):
    async def body():
        client, process, _ = await start_harness_style(tmp_path, [], qtest=False)
        assert (await client.execute("query-status"))["status"] == "running"
        version = await client.execute("query-version")
        assert version["qemu"] == {"major": 7, "minor": 2, "micro": 0}
        await quit_and_wait(client, process)
    run(body())


def test_accel_qtest_runs_the_block_layer_without_a_kernel(tmp_path):
    image = tmp_path / "disk.raw"
    with open(image, "wb") as disk:
        disk.truncate(1 << 20)

    async def body():
        client, process, qtest_peer = await start_harness_style(
            tmp_path, ["-drive", f"if=virtio,id=drive0,file={image},format=raw,cache=writeback,aio=threads",
                       # 093's drive: a protocol prefix and a key for the protocol node, passed on
                       "-drive", "if=none,id=drive1,file=null-co://,format=raw,file.read-zeroes=on,node-name=zero"])
        await client.execute("blockdev-add", {"driver": "null-co", "node-name": "null", "size": 1 << 20})
        blocks = await client.execute("query-block")
        assert [b["device"] for b in blocks] == ["drive0", "drive1"]
        assert blocks[0]["inserted"]["file"] == str(image)
        assert blocks[0]["inserted"]["drv"] == "raw"
        # The virtio-blk device of if=virtio holds the image's write lock, as in QEMU.
        probe = subprocess.run(["qemu-io", "-f", "raw", "-c", "quit", str(image)], capture_output=True, text=True)
        assert probe.returncode != 0 and "Is another process using the image" in probe.stdout + probe.stderr
        nodes = {n["node-name"]: n for n in await client.execute("query-named-block-nodes")}
        assert "null" in nodes
        assert nodes["zero"]["drv"] == "raw"
        protocol = [n for n in nodes.values() if n["drv"] == "null-co" and n["node-name"] != "null"]
        assert len(protocol) == 1, nodes
        await client.execute("stop")
        assert (await client.execute("query-status"))["status"] == "paused"
        await client.execute("cont")
        assert (await client.execute("query-status"))["status"] == "running"
        # The qtest socket is held open and silent.
        qtest_peer.setblocking(False)
        try:
            assert qtest_peer.recv(1) != b""
            raise AssertionError("svmm sent something on the qtest socket")
        except BlockingIOError:
            pass
        await quit_and_wait(client, process)
    run(body())


def test_a_vm_that_cannot_start_connects_then_says_why(tmp_path):
    """mirror-top-perms: the second VM's launch fails on the lock and the log says so (a device
    without share-rw=on cannot share qemu-io's writes: QEMU 7.2 fails the same way)."""
    image = tmp_path / "disk.raw"
    with open(image, "wb") as disk:
        disk.truncate(1 << 20)
    holder = subprocess.Popen(["qemu-io", "-f", "raw", str(image)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async def body():
            # qemu-io takes its locks on start; wait until they are there.
            for _ in range(100):
                check = subprocess.run(["qemu-img", "info", str(image)], capture_output=True, text=True)
                if "lock" in check.stderr:
                    break
                await asyncio.sleep(0.05)
            mon = str(tmp_path / "mon.sock")
            client = QMPClient("iotests-style")
            await client.start_server(mon)
            process = subprocess.Popen(
                [SVMM, "-chardev", f"socket,id=mon,path={mon}", "-mon", "chardev=mon,mode=control", "-accel", "qtest",
                 "-blockdev", f"file,node-name=drive0,filename={image}", "-device", "virtio-blk,drive=drive0"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                await asyncio.wait_for(client.accept(), 20)
                raise AssertionError("the monitor negotiated although the VM could not start")
            except asyncio.TimeoutError:
                raise AssertionError("svmm never connected to the monitor")
            except Exception:
                pass
            output, _ = process.communicate(timeout=20)
            assert process.returncode == 1
            assert "Is another process using the image" in output, output
        run(body())
    finally:
        holder.communicate(b"quit\n", timeout=20)


def test_an_inherited_connected_socket_is_the_monitor(tmp_path):
    """Debian's 7.2 harness passes `-chardev socket,id=mon,fd=N`: one end of a socketpair."""
    import json
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = subprocess.Popen([SVMM, "-chardev", f"socket,id=mon,fd={theirs.fileno()}", "-mon", "chardev=mon,mode=control",
                                "-accel", "qtest", "-nodefaults", "-display", "none"],
                               pass_fds=[theirs.fileno()], stderr=subprocess.PIPE)
    theirs.close()
    ours.settimeout(20)
    reader = ours.makefile("r")
    try:
        greeting = json.loads(reader.readline())
        assert greeting["QMP"]["version"]["qemu"] == {"major": 7, "minor": 2, "micro": 0}
        for command, expected in (("qmp_capabilities", {}), ("query-status", None)):
            ours.sendall(json.dumps({"execute": command}).encode() + b"\n")
            answer = json.loads(reader.readline())
            assert "return" in answer, answer
            if expected is not None:
                assert answer["return"] == expected
            else:
                assert answer["return"]["status"] == "running"
        ours.sendall(b'{"execute": "quit"}\n')
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        ours.close()
