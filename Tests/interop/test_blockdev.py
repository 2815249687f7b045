"""blockdev-add/-del, query-named-block-nodes, x-debug-query-block-graph and blockdev-snapshot,
through qemu.qmp's QMPClient, with QEMU 7.2's answers."""

import json

import pytest

from conftest import run
from qmp_helpers import expect_error, named_nodes, qemu_img_create, qmp

MiB = 1 << 20


def test_blockdev_add_and_del(vm):
    f1_path = vm.dir / "f1.raw"
    with open(f1_path, "wb") as f:
        f.truncate(2 * MiB)
    q1_path = vm.dir / "q1.qcow2"
    qemu_img_create(q1_path, "32M")

    async def body():
        async with qmp(vm.sock) as client:
            assert await client.execute("blockdev-add", {"driver": "file", "node-name": "f1", "filename": str(f1_path)}) == {}
            assert await client.execute("blockdev-add", {"driver": "raw", "node-name": "r1", "file": "f1"}) == {}
            assert await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "q1",
                                                         "file": {"driver": "file", "filename": str(q1_path)}}) == {}

            nodes = await named_nodes(client)
            assert {"d0", "f1", "r1", "q1"} <= set(nodes)
            f1, r1, q1 = nodes["f1"], nodes["r1"], nodes["q1"]
            assert (f1["drv"], f1["node-name"], f1["image"]["virtual-size"]) == ("file", "f1", 2 * MiB)
            assert f1["file"] == str(f1_path) and f1["image"]["filename"] == str(f1_path)
            assert f1["image"]["format"] == "file" and f1["ro"] is False
            assert (r1["drv"], r1["node-name"], r1["image"]["virtual-size"]) == ("raw", "r1", 2 * MiB)
            assert r1["image"]["format"] == "raw" and r1["backing_file_depth"] == 0
            assert (q1["drv"], q1["node-name"], q1["image"]["virtual-size"]) == ("qcow2", "q1", 32 * MiB)
            assert q1["image"]["format"] == "qcow2" and q1["image"]["filename"] == str(q1_path)
            # the qcow2 node's implicit protocol child is there too, with a generated name
            implicit = [n for name, n in nodes.items() if name.startswith("#block")]
            assert [n["drv"] for n in implicit] == ["file"]
            assert implicit[0]["file"] == str(q1_path)
            assert nodes["d0"]["drv"] == "file" and nodes["d0"]["image"]["virtual-size"] == 16 * MiB

            desc = await expect_error(client, "blockdev-add", {"driver": "file", "node-name": "f1", "filename": str(f1_path)})
            assert "Duplicate nodes with node-name='f1'" in desc

            assert await expect_error(client, "blockdev-del", {"node-name": "f1"}) == "Block device f1 is in use"
            assert await expect_error(client, "blockdev-del", {"node-name": "d0"}) == "Node d0 is in use"
            assert await expect_error(client, "blockdev-del", {"node-name": "nosuch"}) == \
                "Failed to find node with node-name='nosuch'"

            assert await client.execute("blockdev-del", {"node-name": "r1"}) == {}
            assert await client.execute("blockdev-del", {"node-name": "f1"}) == {}
            assert await client.execute("blockdev-del", {"node-name": "q1"}) == {}
            assert list(await named_nodes(client)) == ["d0"]
            # the names are free again
            assert await client.execute("blockdev-add", {"driver": "file", "node-name": "f1", "filename": str(f1_path)}) == {}
            assert await client.execute("blockdev-del", {"node-name": "f1"}) == {}
            status = await client.execute("query-status")
            assert status["running"] is True

    run(body())


@pytest.mark.qemu_deviation
def test_file_node_size_is_rounded_up_to_sectors_like_qemu(vm):
    """QEMU 7.2 DEVIATION CHECK: a file node's length is counted in 512-byte sectors
    (bdrv_getlength = total_sectors * 512), so a 1000-byte file has virtual-size 1024."""
    path = vm.dir / "odd.raw"
    path.write_bytes(b"x" * 1000)

    async def body():
        async with qmp(vm.sock) as client:
            await client.execute("blockdev-add", {"driver": "file", "node-name": "odd", "filename": str(path)})
            await client.execute("blockdev-add", {"driver": "raw", "node-name": "oddraw", "file": "odd"})
            nodes = await named_nodes(client)
            assert nodes["odd"]["image"]["virtual-size"] == 1024
            assert nodes["oddraw"]["image"]["virtual-size"] == 1024

    run(body())


@pytest.mark.qemu_deviation
def test_named_nodes_newest_first_like_qemu(vm):
    """QEMU 7.2 DEVIATION CHECK: query-named-block-nodes lists the most recently added node first."""
    path = vm.dir / "f.raw"
    path.write_bytes(b"\0" * MiB)

    async def body():
        async with qmp(vm.sock) as client:
            await client.execute("blockdev-add", {"driver": "file", "node-name": "f1", "filename": str(path)})
            await client.execute("blockdev-add", {"driver": "raw", "node-name": "r1", "file": "f1"})
            await client.execute("blockdev-add", {"driver": "null-co", "node-name": "n0"})
            names = [n["node-name"] for n in await client.execute("query-named-block-nodes")]
            assert names == ["n0", "r1", "f1", "d0"]

    run(body())


@pytest.mark.qemu_deviation
def test_image_info_fields_like_qemu(vm):
    """QEMU 7.2 DEVIATION CHECK: ImageInfo carries actual-size and dirty-flag for every node, and
    cluster-size and format-specific for qcow2."""
    path = vm.dir / "q.qcow2"
    qemu_img_create(path, "16M")

    async def body():
        async with qmp(vm.sock) as client:
            await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "q1",
                                                  "file": {"driver": "file", "filename": str(path)}})
            nodes = await named_nodes(client)
            for name in ("d0", "q1"):
                image = nodes[name]["image"]
                assert isinstance(image.get("actual-size"), int), (name, image)
                assert image.get("dirty-flag") is False, (name, image)
            image = nodes["q1"]["image"]
            assert image.get("cluster-size") == 65536
            assert image.get("format-specific", {}).get("type") == "qcow2"
            assert image["format-specific"]["data"]["compat"] == "1.1"

    run(body())


def test_block_graph_backend_edge(vm):
    async def body():
        async with qmp(vm.sock) as client:
            graph = await client.execute("x-debug-query-block-graph")
            by_id = {node["id"]: node for node in graph["nodes"]}
            backends = [n for n in graph["nodes"] if n["name"] == "vblk0"]
            assert len(backends) == 1 and backends[0]["type"] == "block-backend"
            d0 = [n for n in graph["nodes"] if n["name"] == "d0"]
            assert len(d0) == 1 and d0[0]["type"] == "block-driver"
            edges = [e for e in graph["edges"] if e["parent"] == backends[0]["id"]]
            assert len(edges) == 1
            edge = edges[0]
            assert edge["name"] == "root"
            assert by_id[edge["child"]]["name"] == "d0"
            assert sorted(edge["perm"]) == sorted(["consistent-read", "write"])
            assert sorted(edge["shared-perm"]) == sorted(["consistent-read", "write-unchanged", "resize"])

    run(body())


@pytest.mark.qemu_deviation
def test_block_graph_permission_order_like_qemu(vm):
    """QEMU 7.2 DEVIATION CHECK: permission lists come highest bit first
    (QEMU builds them with QAPI_LIST_PREPEND over the bits in ascending order)."""
    async def body():
        async with qmp(vm.sock) as client:
            graph = await client.execute("x-debug-query-block-graph")
            backend = next(n for n in graph["nodes"] if n["name"] == "vblk0")
            edge = next(e for e in graph["edges"] if e["parent"] == backend["id"])
            assert edge["perm"] == ["write", "consistent-read"]
            assert edge["shared-perm"] == ["resize", "write-unchanged", "consistent-read"]

    run(body())


def test_block_graph_lists_added_nodes(vm):
    path = vm.dir / "q.qcow2"
    qemu_img_create(path, "16M")

    async def body():
        async with qmp(vm.sock) as client:
            await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "q1",
                                                  "file": {"driver": "file", "filename": str(path)}})
            graph = await client.execute("x-debug-query-block-graph")
            by_id = {node["id"]: node for node in graph["nodes"]}
            q1 = next(n for n in graph["nodes"] if n["name"] == "q1")
            assert q1["type"] == "block-driver"
            edges = [e for e in graph["edges"] if e["parent"] == q1["id"]]
            assert [e["name"] for e in edges] == ["file"]
            assert by_id[edges[0]["child"]]["name"].startswith("#block")
            # a writable qcow2 node takes read, write and resize on its file and shares read
            # and write-unchanged (bdrv_default_perms_for_storage)
            assert sorted(edges[0]["perm"]) == ["consistent-read", "resize", "write"]
            assert sorted(edges[0]["shared-perm"]) == ["consistent-read", "write-unchanged"]

    run(body())


def test_blockdev_snapshot(vm):
    base = vm.dir / "base.qcow2"
    overlay = vm.dir / "overlay.qcow2"
    other_base = vm.dir / "other-base.qcow2"
    chained = vm.dir / "chained.qcow2"
    qemu_img_create(base, "16M")
    qemu_img_create(overlay, "16M")
    qemu_img_create(other_base, "16M")
    qemu_img_create(chained, "16M", backing=other_base)

    async def body():
        async with qmp(vm.sock) as client:
            assert await client.execute("blockdev-add", {"driver": "null-co", "node-name": "n0"}) == {}
            # the guest device reads d0 consistently: it cannot become an overlay
            assert await expect_error(client, "blockdev-snapshot", {"node": "n0", "overlay": "d0"}) == \
                "The overlay is already in use"

            assert await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "base",
                                                         "file": {"driver": "file", "filename": str(base)}}) == {}
            assert await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "ov", "backing": None,
                                                         "file": {"driver": "file", "filename": str(overlay)}}) == {}
            assert (await named_nodes(client))["ov"]["backing_file_depth"] == 0
            assert await client.execute("blockdev-snapshot", {"node": "base", "overlay": "ov"}) == {}
            nodes = await named_nodes(client)
            ov = nodes["ov"]
            assert ov["backing_file_depth"] == 1
            assert ov["backing_file"] == str(base)
            assert ov["image"]["backing-image"]["filename"] == str(base)
            assert ov["image"]["backing-image"]["format"] == "qcow2"
            assert ov["image"]["backing-image"]["virtual-size"] == 16 * MiB
            graph = await client.execute("x-debug-query-block-graph")
            by_id = {node["id"]: node for node in graph["nodes"]}
            backing = [e for e in graph["edges"] if e["name"] == "backing"]
            assert len(backing) == 1
            assert (by_id[backing[0]["parent"]]["name"], by_id[backing[0]["child"]]["name"]) == ("ov", "base")
            assert backing[0]["perm"] == []

            # ov has a backing now; so has an image opened with its own chain
            assert await expect_error(client, "blockdev-snapshot", {"node": "n0", "overlay": "ov"}) == \
                "The overlay already has a backing image"
            assert await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "chained",
                                                         "file": {"driver": "file", "filename": str(chained)}}) == {}
            assert await expect_error(client, "blockdev-snapshot", {"node": "n0", "overlay": "chained"}) == \
                "The overlay already has a backing image"

            assert await expect_error(client, "blockdev-snapshot", {"node": "nosuch", "overlay": "ov"}) == \
                "Cannot find device='nosuch' nor node-name='nosuch'"
            assert await expect_error(client, "blockdev-snapshot", {"node": "n0", "overlay": "nosuch"}) == \
                "Cannot find device='nosuch' nor node-name='nosuch'"
            status = await client.execute("query-status")
            assert status["running"] is True

    run(body())


@pytest.mark.qemu_deviation
def test_blockdev_snapshot_base_becomes_read_only_like_qemu(vm):
    """QEMU 7.2 DEVIATION CHECK: external_snapshot_commit reopens the old top read-only, so after
    blockdev-snapshot the base and its file node show "ro": true, the base asks its file for
    consistent-read only, and the image header of the overlay is not rewritten (no
    backing-filename; QEMU names the overlay with a json: filename instead)."""
    base = vm.dir / "base.qcow2"
    overlay = vm.dir / "overlay.qcow2"
    qemu_img_create(base, "16M")
    qemu_img_create(overlay, "16M")

    async def body():
        async with qmp(vm.sock) as client:
            await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "base",
                                                  "file": {"driver": "file", "node-name": "base-file", "filename": str(base)}})
            await client.execute("blockdev-add", {"driver": "qcow2", "node-name": "ov", "backing": None,
                                                  "file": {"driver": "file", "filename": str(overlay)}})
            await client.execute("blockdev-snapshot", {"node": "base", "overlay": "ov"})
            nodes = await named_nodes(client)
            graph = await client.execute("x-debug-query-block-graph")
            ids = {node["name"]: node["id"] for node in graph["nodes"]}
            edge = next(e for e in graph["edges"] if e["parent"] == ids["base"])
            assert (edge["name"], edge["perm"]) == ("file", ["consistent-read"])
            assert nodes["base"]["ro"] is True
            assert nodes["base-file"]["ro"] is True
            image = nodes["ov"]["image"]
            assert "backing-filename" not in image and "full-backing-filename" not in image
            # QEMU also renames the overlay to a `json:{...}` pseudo-filename here (bdrv_refresh_filename);
            # svmm keeps the plain path: a known, cosmetic difference (README).
            assert image["backing-image"]["filename"] == str(base)

    run(body())
