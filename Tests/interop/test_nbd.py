"""svmm's NBD server as QEMU's tools and libnbd see it, and its exports' permissions against a
running guest device (QEMU 7.2's texts)."""

import filecmp
import json
import os
import subprocess

import pytest

from conftest import is_qemu

CONFLICT = ("Permission conflict on node 'd0': permissions 'write' are both required by an unnamed "
            "block device (uses node 'd0' as 'root' child) and unshared by block device 'vblk0' "
            "(uses node 'd0' as 'root' child).")


def start_server(qmp, sock):
    assert qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": sock}}) == {"return": {}}


def run(*command, check=True):
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result


def root_edge(qmp):
    graph = qmp.cmd("x-debug-query-block-graph")["return"]
    ids = {node["id"]: node["name"] for node in graph["nodes"]}
    return next(e for e in graph["edges"] if ids[e["parent"]] == "vblk0" and e["name"] == "root")


def test_export_needs_a_running_server(vm, raw_qmp):
    qmp = raw_qmp(vm.sock)
    assert qmp.cmd("nbd-server-add", device="d0")["error"]["desc"] == "NBD server not running"
    flat = qmp.cmd("nbd-server-start", addr={"type": "unix", "path": str(vm.dir / "x.sock")})
    assert flat["error"]["desc"] == "Parameter 'addr.data' is missing"


def test_writable_export_of_a_running_guests_disk_is_refused(vm, raw_qmp):
    qmp = raw_qmp(vm.sock)
    start_server(qmp, str(vm.dir / "nbd.sock"))
    reply = qmp.cmd("nbd-server-add", device="d0", writable=True)
    assert reply["error"] == {"class": "GenericError", "desc": CONFLICT}
    reply = qmp.cmd("block-export-add", type="nbd", id="e0", **{"node-name": "d0"}, writable=True)
    assert reply["error"]["desc"] == CONFLICT
    assert qmp.cmd("query-block-exports") == {"return": []}


def test_read_only_export_serves_qemu_img_and_nbdinfo(vm, raw_qmp):
    if is_qemu():
        pytest.skip("svmm-specific paths")
    with open(vm.disk, "r+b") as disk:
        disk.write(os.urandom(1 << 20))
    qmp = raw_qmp(vm.sock)
    sock = str(vm.dir / "nbd.sock")
    start_server(qmp, sock)
    assert qmp.cmd("nbd-server-add", device="d0") == {"return": {}}
    uri = f"nbd+unix:///d0?socket={sock}"
    info = json.loads(run("qemu-img", "info", "--output=json", uri).stdout)
    assert info["virtual-size"] == 16 << 20
    described = json.loads(run("nbdinfo", "--json", uri).stdout)
    assert described["exports"][0]["export-size"] == 16 << 20
    assert described["exports"][0]["is_read_only"] is True
    assert "d0" in run("nbdinfo", "--list", uri).stdout
    # What the export serves is the guest's disk.
    assert "Images are identical" in run("qemu-img", "compare", "-U", "-f", "raw", "-F", "raw", uri, str(vm.disk)).stdout
    copy = vm.dir / "copy.raw"
    run("nbdcopy", uri, str(copy))
    assert filecmp.cmp(copy, vm.disk, shallow=False)
    # Writes through a read-only export fail.
    assert run("qemu-io", "-f", "raw", "-c", "write 0 512", uri, check=False).returncode != 0


def test_removing_an_export_leaves_the_devices_permissions_in_force(vm, raw_qmp):
    qmp = raw_qmp(vm.sock)
    start_server(qmp, str(vm.dir / "nbd.sock"))
    before = root_edge(qmp)
    assert qmp.cmd("nbd-server-add", device="d0") == {"return": {}}
    assert qmp.request({"execute": "nbd-server-remove", "arguments": {"name": "d0"}}) == {"return": {}}
    after = root_edge(qmp)
    assert sorted(after["perm"]) == sorted(before["perm"]) == ["consistent-read", "write"]
    assert "write" not in after["shared-perm"]
    assert qmp.cmd("nbd-server-add", device="d0", writable=True)["error"]["desc"] == CONFLICT
    assert qmp.request({"execute": "nbd-server-remove", "arguments": {"name": "nosuch"}})["error"]["desc"] == "Export 'nosuch' is not found"
    assert qmp.cmd("nbd-server-stop") == {"return": {}}
    assert qmp.cmd("nbd-server-stop")["error"]["desc"] == "NBD server not running"


def test_writable_export_takes_nbdcopy_and_qemu_img_convert(vm, raw_qmp, tmp_path):
    if is_qemu():
        pytest.skip("svmm-specific paths")
    target = tmp_path / "target.raw"
    with open(target, "wb") as f:
        f.truncate(8 << 20)
    source = tmp_path / "source.raw"
    source.write_bytes(os.urandom(8 << 20))
    qmp = raw_qmp(vm.sock)
    sock = str(vm.dir / "nbd.sock")
    start_server(qmp, sock)
    assert qmp.cmd("blockdev-add", driver="file", **{"node-name": "t0"}, filename=str(target)) == {"return": {}}
    assert qmp.cmd("block-export-add", type="nbd", id="exp0", **{"node-name": "t0"}, writable=True) == {"return": {}}
    assert qmp.cmd("query-block-exports")["return"] == [
        {"type": "nbd", "id": "exp0", "node-name": "t0", "shutting-down": False}]
    uri = f"nbd+unix:///t0?socket={sock}"
    run("nbdcopy", str(source), uri)
    back = tmp_path / "back.raw"
    run("nbdcopy", uri, str(back))
    assert filecmp.cmp(back, source, shallow=False)
    other = tmp_path / "other.raw"
    other.write_bytes(os.urandom(8 << 20))
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(other), uri)
    assert "Images are identical" in run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(other), uri).stdout
    assert qmp.cmd("block-export-del", id="exp0") == {"return": {}}
    assert filecmp.cmp(target, other, shallow=False)


def test_export_options_svmm_does_not_implement_are_refused_not_ignored(vm, raw_qmp):
    if is_qemu():
        pytest.skip("QEMU implements these options")
    qmp = raw_qmp(vm.sock)
    start_server(qmp, str(vm.dir / "nbd.sock"))
    for option, value, text in (("allocation-depth", True, "allocation-depth is not supported"),
                                ("writethrough", True, "writethrough is not supported"),
                                ("iothread", "io0", "svmm has no iothreads")):
        reply = qmp.cmd("block-export-add", type="nbd", id="e0", **{"node-name": "d0", option: value})
        assert text in reply["error"]["desc"], reply
    assert qmp.cmd("query-block-exports") == {"return": []}
    # The defaults are fine.
    assert qmp.cmd("block-export-add", type="nbd", id="e0", **{"node-name": "d0", "allocation-depth": False}) == {"return": {}}
