"""make graph draws deferred permissions: a backend whose permissions are recorded but not
applied (x-svmm-query-backends says `applied: false`) is drawn dashed with its recorded
permissions; against QEMU (CommandNotFound) the graph is drawn as before."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO, RawQMP
from test_graph_io import binaries

SCRIPT = REPO / "scripts" / "render_block_graph.py"

# A destination during inmigrate with a writable NBD export of d0 (the graph as svmm answers
# it: the device's root edge takes nothing and shares everything until the VM resumes).
GRAPH = {"edges": [
    {"name": "root", "parent": 1, "child": 3, "perm": [], "shared-perm": ["resize", "write-unchanged", "write", "consistent-read"]},
    {"name": "root", "parent": 2, "child": 3, "perm": ["write", "consistent-read"], "shared-perm": ["resize", "write-unchanged", "write", "consistent-read"]},
    {"name": "file", "parent": 3, "child": 4, "perm": ["write", "consistent-read"], "shared-perm": ["write-unchanged", "write", "consistent-read"]}],
    "nodes": [{"name": "vblk0", "type": "block-backend", "id": 1}, {"name": "", "type": "block-backend", "id": 2},
              {"name": "d0", "type": "block-driver", "id": 3}, {"name": "f0", "type": "block-driver", "id": 4}]}
BACKENDS = [
    {"id": 1, "name": "vblk0", "device": "vblk0", "node-name": "d0", "perm": ["write", "consistent-read"],
     "shared-perm": ["resize", "write-unchanged", "consistent-read"], "applied": False},
    {"id": 2, "name": "", "node-name": "d0", "perm": ["write", "consistent-read"],
     "shared-perm": ["resize", "write-unchanged", "write", "consistent-read"], "applied": True}]
NAMED = [{"node-name": "d0", "drv": "raw", "file": "/tmp/dst.raw"}, {"node-name": "f0", "drv": "file", "file": "/tmp/dst.raw"}]


def renderer():
    spec = importlib.util.spec_from_file_location("render_block_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_deferred_backend_is_drawn_dashed_with_its_recorded_permissions(tmp_path):
    dot = renderer().to_dot(GRAPH, NAMED, [], [], BACKENDS)
    assert 'n1 [label="vblk0\\npermissions deferred" shape=box style=dashed];' in dot
    # recorded: takes rw, shares r,u,s; applied now: nothing taken, everything shared
    assert 'n1 -> n3 [label="root\\lrw\\lrus\\ldeferred (applied: - / rwus)\\l" style=dashed];' in dot
    # the export's edge and the node below are drawn as the graph has them
    assert 'n2 -> n3 [label="root\\lrw\\lrwus\\l"];' in dot
    assert 'n2 [label="unnamed blk" shape=box];' in dot
    assert "deferred" not in dot.split("n2 -> n3")[1]
    (tmp_path / "g.dot").write_text(dot)
    svg = subprocess.run(["dot", "-Tsvg", str(tmp_path / "g.dot")], capture_output=True, text=True, check=True).stdout
    assert "permissions deferred" in svg and "stroke-dasharray" in svg


def test_applied_backends_and_foreign_answers_change_nothing():
    module = renderer()
    plain = module.to_dot(GRAPH, NAMED, [], [])
    applied = [dict(entry, applied=True) for entry in BACKENDS]
    assert module.to_dot(GRAPH, NAMED, [], [], applied) == plain
    # an entry whose id names another backend (the graph changed in between) is not trusted
    moved = [dict(BACKENDS[0], id=2)]
    assert module.to_dot(GRAPH, NAMED, [], [], moved) == plain
    assert "deferred (applied" not in plain


def _start(command, sock, tmp_path, name):
    log = open(tmp_path / f"{name}.log", "wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def _render(sock, out):
    return subprocess.run([sys.executable, str(SCRIPT), sock, str(out)], capture_output=True, text=True, timeout=60)


def test_renders_qemu_which_has_no_backends_query(tmp_path):
    svmm, guest, qemu = binaries()
    disk = tmp_path / "dst.raw"
    subprocess.run(["truncate", "-s", "16M", str(disk)], check=True)
    sock = str(tmp_path / "qemu.sock")
    proc = _start([qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
                   "-global", "virtio-mmio.force-legacy=false", "-m", "64M", "-serial", "none", "-kernel", guest,
                   "-append", "mode=idle", "-incoming", "defer", "-qmp", f"unix:{sock},server=on,wait=off",
                   "-blockdev", f"driver=file,node-name=d0,filename={disk}",
                   "-device", "virtio-blk-device,drive=d0,id=vblk0"], sock, tmp_path, "qemu")
    try:
        result = _render(sock, tmp_path / "qemu.svg")
        assert result.returncode == 0, result.stderr
        dot = (tmp_path / "qemu.dot").read_text()
        assert '"vblk0' in dot and "deferred (applied" not in dot and "style=dashed" not in dot
    finally:
        proc.kill()
        proc.wait()


def test_renders_svmm_with_its_backends_query(tmp_path):
    svmm, guest, qemu = binaries()
    disk = tmp_path / "d.raw"
    subprocess.run(["truncate", "-s", "16M", str(disk)], check=True)
    sock = str(tmp_path / "svmm.sock")
    proc = _start([svmm, "-m", "64M", "-serial", "none", "-S", "-kernel", guest, "-append", "mode=idle",
                   "-qmp", f"unix:{sock},server=on,wait=off",
                   "-blockdev", f"driver=file,node-name=d0,filename={disk}",
                   "-device", "virtio-blk-device,drive=d0,id=vblk0"], sock, tmp_path, "svmm")
    try:
        qmp = RawQMP(sock)
        answer = qmp.cmd("x-svmm-query-backends")
        assert answer == {"return": [{"id": 1, "name": "vblk0", "device": "vblk0", "node-name": "d0",
                                      "perm": ["write", "consistent-read"],
                                      "shared-perm": ["resize", "write-unchanged", "consistent-read"],
                                      "applied": True}]}, json.dumps(answer)
        result = _render(sock, tmp_path / "svmm.svg")
        assert result.returncode == 0, result.stderr
        dot = (tmp_path / "svmm.dot").read_text()
        assert "root\\lrw\\lrus\\l" in dot and "deferred (applied" not in dot and "style=dashed" not in dot
    finally:
        proc.kill()
        proc.wait()


def test_an_incoming_svmm_draws_its_guest_device_deferred(tmp_path):
    """A destination waiting with -incoming defer: vblk0's permissions are recorded, not
    applied; the query says so and make graph draws them dashed, until cont applies them."""
    svmm, guest, qemu = binaries()
    disk = tmp_path / "d.raw"
    subprocess.run(["truncate", "-s", "16M", str(disk)], check=True)
    sock = str(tmp_path / "svmm.sock")
    proc = _start([svmm, "-m", "64M", "-serial", "none", "-kernel", guest, "-append", "mode=idle",
                   "-incoming", "defer", "-qmp", f"unix:{sock},server=on,wait=off",
                   "-blockdev", f"driver=file,node-name=d0,filename={disk}",
                   "-device", "virtio-blk-device,drive=d0,id=vblk0"], sock, tmp_path, "svmm")
    try:
        qmp = RawQMP(sock)
        assert qmp.cmd("query-status")["return"]["status"] == "inmigrate"
        backend = qmp.cmd("x-svmm-query-backends")["return"][0]
        assert backend["name"] == "vblk0" and backend["applied"] is False, backend
        assert backend["perm"] == ["write", "consistent-read"]
        qmp.close()
        result = _render(sock, tmp_path / "in.svg")
        assert result.returncode == 0, result.stderr
        dot = (tmp_path / "in.dot").read_text()
        assert "vblk0\\n(qdev vblk0)\\npermissions deferred" in dot and "root\\lrw\\lrus\\ldeferred (applied: " in dot, dot
    finally:
        proc.kill()
        proc.wait()
