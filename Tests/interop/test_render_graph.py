"""scripts/render_block_graph.py against a live VM: dot source and an SVG naming the nodes."""

import os
import subprocess
import sys

from conftest import REPO, run
from qmp_helpers import qemu_img_create, qmp

SCRIPT = REPO / "scripts" / "render_block_graph.py"


def test_render_block_graph_svg(vm, tmp_path):
    out = tmp_path / "graph.svg"
    result = subprocess.run([sys.executable, str(SCRIPT), vm.sock, str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "vblk0" in svg
    assert "d0" in svg
    dot = (tmp_path / "graph.dot").read_text()
    # the backend, the node with its driver and file, and the root edge with r,w / r,u,s
    assert '"vblk0' in dot and "d0 [file]" in dot and "disk.raw" in dot
    assert "root\\lrw\\lrus\\l" in dot
    assert vm.alive()


def test_render_block_graph_qmp_env_and_chain(vm, tmp_path):
    base = tmp_path / "base.qcow2"
    top = tmp_path / "top.qcow2"
    qemu_img_create(base, "16M")
    qemu_img_create(top, "16M", backing=base)

    async def add():
        async with qmp(vm.sock) as client:
            await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "top",
                                                  "file": {"driver": "file", "filename": str(top)}})
    run(add())
    out = tmp_path / "chain.svg"
    env = dict(os.environ, QMP=vm.sock)
    result = subprocess.run([sys.executable, str(SCRIPT), str(out)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    for text in ("vblk0", "d0", "top [qcow2]", "base.qcow2", "top.qcow2", "backing"):
        assert text in svg, text


def test_render_block_graph_without_socket_fails_clearly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QMP"}
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nosuch.sock"), str(tmp_path / "x.svg")],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "nosuch.sock" in result.stderr
    assert not (tmp_path / "x.svg").exists()
