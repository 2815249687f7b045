"""Differential scenarios: each drives one VM (svmm or QEMU 7.2, same guest, disks and options)
and records what it answers; test_differential.py runs each against both and compares.

To add one: write a function taking the Session `s`, decorate it with @scenario(), start the VM
with s.start(...), and record with s.cmd / s.tool / s.note. Record what a QEMU user sees, but
keep each transcript about one thing (use `view=` to pick fields of big replies), so that a
difference in one place does not hide the next. A scenario svmm does not pass yet gets
@scenario(xfail="what differs") until the fix lands (strict: an unexpected pass fails).
"""

import json
import re
import socket
import subprocess
import time

from differential import MiB, scenario


def nodes_view(*fields):
    """query-named-block-nodes reduced to {node-name: {field: value}} (dotted fields go into image)."""
    def view(nodes):
        out = {}
        for node in nodes:
            picked = {}
            for f in fields:
                value = node
                for part in f.split("."):
                    value = value.get(part, "<absent>") if isinstance(value, dict) else "<absent>"
                picked[f] = value
            out[node["node-name"]] = picked
        return out
    return view


def names_view(nodes):
    return [n["node-name"] for n in nodes]


# --------------------------------------------------------------------------------------------
# Monitor

@scenario()
def greeting_and_version(s):
    """The greeting, query-version, query-status, query-name; which commands exist."""
    s.start(negotiate=False, extra=["-name", "foo"])
    greeting = s.qmp.greeting["QMP"]
    s.note("greeting capabilities", json.dumps(greeting["capabilities"]))
    s.note("greeting keys", sorted(s.qmp.greeting["QMP"]))
    version = dict(greeting["version"])
    version["package"] = "<package>"
    version["qemu"] = dict(version["qemu"], micro="<micro>")
    s.note("greeting version", version)
    s.cmd("query-status")
    s.cmd("qmp_capabilities")
    s.cmd("qmp_capabilities")
    s.cmd("query-version")
    s.cmd("query-status")
    s.cmd("query-name")
    wanted = ["blockdev-add", "blockdev-del", "blockdev-snapshot", "query-block", "query-named-block-nodes",
              "x-debug-query-block-graph", "nbd-server-start", "nbd-server-add", "nbd-server-remove",
              "nbd-server-stop", "block-export-add", "block-export-del", "query-block-exports",
              "query-status", "stop", "cont", "quit", "query-commands", "query-version", "query-name"]
    s.cmd("query-commands", view=lambda cmds: {c: c in {x["name"] for x in cmds} for c in wanted})


@scenario()
def several_clients_on_one_socket(s):
    """A second client on the same -qmp socket while the first is connected."""
    s.start()
    second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    second.settimeout(1.0)
    second.connect(str(s.path("qmp.sock")))
    try:
        greeted = second.recv(65536).startswith(b'{"QMP"')
    except socket.timeout:
        greeted = False
    second.close()
    s.note("second client greeted", greeted)
    s.cmd("query-status")


@scenario()
def run_states_and_events(s):
    """prelaunch, cont, stop, cont, quit with their events."""
    s.start(prelaunch=True)
    s.cmd("query-status")
    s.cmd("stop")
    s.cmd("cont")
    s.wait_event("RESUME")
    s.cmd("query-status")
    s.cmd("cont")
    s.cmd("stop")
    s.wait_event("STOP")
    s.cmd("query-status")
    s.cmd("stop")
    s.cmd("cont")
    s.wait_event("RESUME")
    s.cmd("quit")
    s.wait_event("SHUTDOWN")
    s.note("exit status", s.proc.wait(10))


# --------------------------------------------------------------------------------------------
# Bad input (ported from test_bad_input.py: the texts; the svmm-only stream tests stay there)

BAD_REQUESTS = [
    b'{"execute": }', b'[1,2]', b'{"execute": "no-such-command"}', b'{"execute": "blockdev-del"}',
    b'{"execute": "blockdev-del", "arguments": {"node-name": "d0x", "foo": 1}}',
    b'{"execute": "blockdev-del", "arguments": {"node-name": 1}}',
    b'{"execute": "query-status", "arguments": {"foo": true}}',
    b'{"execute": 1}', b'{"arguments": {}}', b'{"execute": "query-status", "bogus": 1}',
    b'{"execute": "qmp_capabilities"}', b'{"execute": "no-such-command", "id": {"a": [1, "x"]}}',
    b'{"execute": "query-status", "id": "abc"}', b'{"execute": "query-status", "arguments": []}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "nosuch", "node-name": "x"}}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "file", "node-name": "x"}}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "file", "filename": "/nonexistent/x"}}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "file", "node-name": "x", "filename": "/nonexistent/x"}}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "raw", "node-name": "x", "file": "nosuch"}}',
]


@scenario()
def bad_requests(s):
    """Each bad request on one negotiated connection gets QEMU's error; the VM carries on."""
    s.start()
    for request in BAD_REQUESTS:
        s.request_raw(request)
    s.cmd("query-status")


@scenario()
def invalid_node_names(s):
    s.start()
    for name in ("#x", "a b", "", "x" * 32, "x" * 31, "1a", "a-b_c.d"):
        s.cmd("blockdev-add", driver="null-co", node_name=name)
    s.cmd("query-named-block-nodes", view=names_view)


@scenario()
def command_before_negotiation(s):
    s.start(negotiate=False)
    s.request_raw(b'{"execute": "query-status"}')
    s.request_raw(b'{"execute": "qmp_capabilities", "arguments": {"enable": []}}')
    s.request_raw(b'{"execute": "qmp_capabilities"}')
    s.cmd("query-status")


@scenario(xfail="qmp_capabilities enable=[unknown]: QEMU says Parameter 'null' does not accept value 'nosuch'")
def qmp_capabilities_with_an_unknown_capability(s):
    s.start(negotiate=False)
    s.request_raw(b'{"execute": "qmp_capabilities", "arguments": {"enable": ["nosuch"]}}')
    s.request_raw(b'{"execute": "qmp_capabilities", "arguments": {"enable": "oob"}}')
    s.request_raw(b'{"execute": "qmp_capabilities"}')


# --------------------------------------------------------------------------------------------
# Nodes: blockdev-add/-del, query-named-block-nodes, query-block, the graph (ported from
# test_blockdev.py)

CACHE_DIRECT = "cache.direct: svmm shows true where QEMU 7.2 shows false (and refuses O_DIRECT on /dev/null)"


@scenario(xfail=CACHE_DIRECT)
def named_block_nodes_in_full(s):
    """query-named-block-nodes and query-block, every field, for the standard VM."""
    s.start()
    s.cmd("query-named-block-nodes")
    s.cmd("query-block")


@scenario(xfail=CACHE_DIRECT + "; a null-co node shows image.dirty-flag (QEMU: absent)")
def named_block_nodes_of_added_nodes_in_full(s):
    """query-named-block-nodes, every field, for a qcow2 node and its implicit file child, a
    read-only raw node, a null-co node and a file node on /dev/null."""
    s.qcow2("q1.qcow2", "32M")
    s.raw("r.raw", MiB)
    s.start()
    s.cmd("blockdev-add", driver="qcow2", node_name="q1", file={"driver": "file", "filename": str(s.path("q1.qcow2"))})
    s.cmd("blockdev-add", driver="raw", node_name="r1", read_only=True,
          file={"driver": "file", "filename": str(s.path("r.raw"))})
    s.cmd("blockdev-add", driver="null-co", node_name="n0")
    s.cmd("blockdev-add", driver="file", node_name="devnull", filename="/dev/null")
    s.cmd("query-named-block-nodes", view=lambda nodes: [n for n in nodes if n["node-name"] != "d0"])


@scenario()
def blockdev_add_and_del(s):
    """Nodes added, listed (newest first), their main fields; duplicate and in-use errors; deleted."""
    s.raw("f1.raw", 2 * MiB)
    s.qcow2("q1.qcow2", "32M")
    s.path("odd.raw").write_bytes(b"x" * 1000)
    s.start()
    s.cmd("blockdev-add", driver="file", node_name="f1", filename=str(s.path("f1.raw")))
    s.cmd("blockdev-add", driver="raw", node_name="r1", file="f1")
    s.cmd("blockdev-add", driver="qcow2", node_name="q1", file={"driver": "file", "filename": str(s.path("q1.qcow2"))})
    s.cmd("blockdev-add", driver="null-co", node_name="n0")
    s.cmd("blockdev-add", driver="file", node_name="odd", filename=str(s.path("odd.raw")))
    s.cmd("blockdev-add", driver="raw", node_name="oddraw", file="odd")
    s.cmd("query-named-block-nodes", view=nodes_view("drv", "ro", "file", "backing_file_depth", "image.virtual-size",
                                                      "image.format", "image.filename", "image.cluster-size"))
    s.cmd("blockdev-add", driver="file", node_name="f1", filename=str(s.path("f1.raw")))
    s.cmd("blockdev-del", node_name="f1")
    s.cmd("blockdev-del", node_name="d0")
    s.cmd("blockdev-del", node_name="nosuch")
    for name in ("r1", "f1", "q1", "n0", "oddraw", "odd"):
        s.cmd("blockdev-del", node_name=name)
    s.cmd("query-named-block-nodes", view=names_view)
    s.cmd("blockdev-add", driver="file", node_name="f1", filename=str(s.path("f1.raw")))
    s.cmd("blockdev-del", node_name="f1")
    s.cmd("query-status")


@scenario()
def block_graph_of_the_standard_vm_and_a_qcow2(s):
    s.qcow2("q.qcow2")
    s.start()
    s.cmd("x-debug-query-block-graph")
    s.cmd("blockdev-add", driver="qcow2", node_name="q1", file={"driver": "file", "filename": str(s.path("q.qcow2"))})
    s.cmd("blockdev-add", driver="qcow2", node_name="q2", read_only=True,
          file={"driver": "file", "node-name": "q2f", "filename": str(s.path("q.qcow2")), "locking": "off"})
    s.cmd("x-debug-query-block-graph")


@scenario()
def duplicate_node_name_in_a_nested_child(s):
    """blockdev-add whose own name and whose child's name both exist already."""
    s.raw("f1.raw", MiB)
    s.qcow2("q.qcow2")
    s.start()
    s.cmd("blockdev-add", driver="file", node_name="f1", filename=str(s.path("f1.raw")))
    s.cmd("blockdev-add", driver="qcow2", node_name="d0",
          file={"driver": "file", "node-name": "f1", "filename": str(s.path("q.qcow2"))})
    s.cmd("blockdev-add", driver="qcow2", node_name="new",
          file={"driver": "file", "node-name": "f1", "filename": str(s.path("q.qcow2"))})
    s.cmd("blockdev-add", driver="qcow2", node_name="d0",
          file={"driver": "file", "node-name": "new", "filename": str(s.path("q.qcow2"))})
    s.cmd("blockdev-add", driver="qcow2", node_name="same",
          file={"driver": "file", "node-name": "same", "filename": str(s.path("q.qcow2"))})
    s.cmd("query-named-block-nodes", view=names_view)


@scenario(xfail="raw with offset/size: svmm takes RESIZE on its file (QEMU does not, so a second window "
                "can be added) and keeps the plain filename (QEMU: a json:{...} filename)")
def raw_node_with_offset_and_size_under_a_device(s):
    """A raw node showing a 4 MiB window at 1 MiB of a 16 MiB file, as the guest device's drive."""
    s.raw("big.raw", 16 * MiB)
    s.start(disk=None, blockdevs=[f"driver=file,node-name=f0,filename=$DIR/big.raw",
                                  "driver=raw,node-name=win,file=f0,offset=1048576,size=4194304"],
            devices=["virtio-blk-device,drive=win,id=vblk0"])
    s.cmd("query-block")
    s.cmd("query-named-block-nodes", view=nodes_view("drv", "ro", "file", "image.virtual-size", "image.format"))
    s.cmd("x-debug-query-block-graph")
    s.cmd("blockdev-add", driver="raw", node_name="bad", file="f0", offset=15 * MiB, size=2 * MiB)
    s.cmd("blockdev-add", driver="raw", node_name="bad2", file="f0", offset=1, size=MiB)


# --------------------------------------------------------------------------------------------
# blockdev-snapshot (ported from test_blockdev.py, and the cases QEMU answers differently)

def add_qcow2(s, name, image, backing="<default>", **more):
    args = dict(driver="qcow2", node_name=name, file={"driver": "file", "filename": str(s.path(image))}, **more)
    if backing != "<default>":
        args["backing"] = backing
    return s.cmd("blockdev-add", **args)


SNAPSHOT_FIELDS = ("drv", "ro", "backing_file_depth", "backing_file", "image.backing-filename",
                   "image.full-backing-filename", "image.backing-image.filename",
                   "image.backing-image.format", "image.backing-image.virtual-size")


@scenario()
def blockdev_snapshot_errors(s):
    for name in ("base", "overlay", "other-base"):
        s.qcow2(f"{name}.qcow2")
    s.qcow2("chained.qcow2", backing="other-base.qcow2")
    s.start()
    s.cmd("blockdev-add", driver="null-co", node_name="n0")
    s.cmd("blockdev-snapshot", node="n0", overlay="d0")
    add_qcow2(s, "base", "base.qcow2")
    add_qcow2(s, "ov", "overlay.qcow2", backing=None)
    s.cmd("blockdev-snapshot", node="base", overlay="ov")
    s.cmd("blockdev-snapshot", node="n0", overlay="ov")
    add_qcow2(s, "chained", "chained.qcow2")
    s.cmd("blockdev-snapshot", node="n0", overlay="chained")
    s.cmd("blockdev-snapshot", node="nosuch", overlay="ov")
    s.cmd("blockdev-snapshot", node="n0", overlay="nosuch")
    s.cmd("blockdev-snapshot", node="n0", overlay="n0")
    s.cmd("query-status")


@scenario()
def blockdev_snapshot_graph_and_read_only_base(s):
    """After blockdev-snapshot: the backing edge, the base read-only, the overlay's fields."""
    s.qcow2("base.qcow2")
    s.qcow2("overlay.qcow2")
    s.start()
    s.cmd("blockdev-add", driver="qcow2", node_name="base",
          file={"driver": "file", "node-name": "base-file", "filename": str(s.path("base.qcow2"))})
    add_qcow2(s, "ov", "overlay.qcow2", backing=None)
    s.cmd("query-named-block-nodes", view=nodes_view(*SNAPSHOT_FIELDS))
    s.cmd("blockdev-snapshot", node="base", overlay="ov")
    s.cmd("query-named-block-nodes", view=nodes_view(*SNAPSHOT_FIELDS))
    s.cmd("x-debug-query-block-graph")


def query_block_view(blocks):
    def chain(image):
        names = []
        while image:
            names.append(image.get("filename"))
            image = image.get("backing-image")
        return names
    return [{"device": b["device"], "qdev": b.get("qdev"),
             **{k: b["inserted"].get(k, "<absent>") for k in ("node-name", "drv", "ro", "backing_file_depth",
                                                              "backing_file")},
             "image chain": chain(b["inserted"]["image"])}
            for b in blocks]


@scenario()
def backing_file_depth_in_query_block_after_snapshot_of_a_file(s):
    """blockdev-snapshot of the guest device's node d0 (raw file): query-block shows the overlay."""
    s.qcow2("overlay.qcow2")
    s.start()
    add_qcow2(s, "ov", "overlay.qcow2", backing=None)
    s.cmd("blockdev-snapshot", node="d0", overlay="ov")
    s.cmd("query-block", view=query_block_view)
    s.cmd("x-debug-query-block-graph")


@scenario(xfail="after blockdev-snapshot onto an overlay whose header names another backing file, svmm's "
                "image.full-backing-filename names the attached backing; QEMU's still names the header's file")
def backing_file_depth_in_query_block_after_snapshot_of_a_chain(s):
    """The device on top.qcow2 (backing base.qcow2); blockdev-snapshot top -> ov; query-block and
    query-named-block-nodes before and after."""
    s.qcow2("base.qcow2")
    s.qcow2("top.qcow2", backing="base.qcow2")
    s.qcow2("overlay.qcow2")
    s.start(disk=None, blockdevs=["driver=qcow2,node-name=d0,file.driver=file,file.filename=$DIR/top.qcow2"],
            devices=["virtio-blk-device,drive=d0,id=vblk0"])
    s.cmd("query-block", view=query_block_view)
    add_qcow2(s, "ov", "overlay.qcow2", backing=None)
    s.cmd("blockdev-snapshot", node="d0", overlay="ov")
    s.cmd("query-block", view=query_block_view)
    s.cmd("query-named-block-nodes", view=nodes_view("drv", "ro", "backing_file_depth", "backing_file"))
    # an overlay whose header names a backing file, opened with backing: null
    s.qcow2("other.qcow2")
    s.qcow2("named.qcow2", backing="other.qcow2")
    add_qcow2(s, "ov2", "named.qcow2", backing=None)
    s.cmd("query-named-block-nodes", view=lambda nodes: nodes_view(*SNAPSHOT_FIELDS)(
        [n for n in nodes if n["node-name"] == "ov2"]))
    s.cmd("blockdev-snapshot", node="ov", overlay="ov2")
    s.cmd("query-block", view=query_block_view)
    s.cmd("query-named-block-nodes", view=lambda nodes: nodes_view(*SNAPSHOT_FIELDS)(
        [n for n in nodes if n["node-name"] == "ov2"]))


@scenario()
def blockdev_snapshot_of_a_qcow2_under_a_raw_node(s):
    """raw r1 over qcow2 q1; blockdev-snapshot node=q1 puts the overlay between them."""
    s.qcow2("q1.qcow2")
    s.qcow2("overlay.qcow2")
    s.start()
    add_qcow2(s, "q1", "q1.qcow2")
    s.cmd("blockdev-add", driver="raw", node_name="r1", file="q1")
    add_qcow2(s, "ov", "overlay.qcow2", backing=None)
    s.cmd("blockdev-snapshot", node="q1", overlay="ov")
    s.cmd("x-debug-query-block-graph")
    s.cmd("query-named-block-nodes", view=nodes_view("drv", "ro", "backing_file_depth", "image.virtual-size"))
    s.cmd("blockdev-del", node_name="ov")
    s.cmd("blockdev-del", node_name="r1")
    s.cmd("blockdev-del", node_name="ov")
    s.cmd("blockdev-del", node_name="q1")


@scenario()
def op_blockers_on_backing_nodes(s):
    """A node used as backing: blockdev-snapshot of it, blockdev-del of it, and it as an overlay."""
    s.qcow2("base.qcow2")
    s.qcow2("top.qcow2", backing="base.qcow2")
    s.qcow2("other.qcow2")
    s.qcow2("overlay.qcow2")
    s.start()
    add_qcow2(s, "base", "base.qcow2")
    add_qcow2(s, "top", "top.qcow2", backing="base")
    add_qcow2(s, "other", "other.qcow2")
    add_qcow2(s, "ov", "overlay.qcow2", backing=None)
    s.cmd("blockdev-snapshot", node="base", overlay="ov")
    s.cmd("blockdev-del", node_name="base")
    s.cmd("blockdev-snapshot", node="base", overlay="top")
    s.cmd("blockdev-snapshot", node="other", overlay="base")
    s.cmd("x-debug-query-block-graph")
    for name in ("top", "base", "other", "ov"):
        s.cmd("blockdev-del", node_name=name)
    # and after a blockdev-snapshot
    s.qcow2("q1.qcow2")
    s.qcow2("ov2.qcow2")
    add_qcow2(s, "q1", "q1.qcow2")
    add_qcow2(s, "ov2", "ov2.qcow2", backing=None)
    s.cmd("blockdev-snapshot", node="q1", overlay="ov2")
    s.cmd("blockdev-del", node_name="q1")


# --------------------------------------------------------------------------------------------
# NBD server and exports (ported from test_nbd.py, plus what an export shares)

def nbd_start(s, sock="nbd.sock"):
    return s.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(s.path(sock))}})


@scenario()
def nbd_server_and_export_errors(s):
    s.raw("t.raw", 4 * MiB)
    s.start()
    s.cmd("nbd-server-add", device="d0")
    s.cmd("nbd-server-stop")
    s.cmd("nbd-server-start", addr={"type": "unix", "path": str(s.path("x.sock"))})
    nbd_start(s)
    nbd_start(s, "other.sock")
    s.cmd("nbd-server-add", device="d0", writable=True)
    s.cmd("block-export-add", type="nbd", id="e0", node_name="d0", writable=True)
    s.cmd("query-block-exports")
    s.cmd("nbd-server-add", device="nosuch")
    s.cmd("nbd-server-add", device="d0")
    s.cmd("nbd-server-add", device="d0")
    s.cmd("nbd-server-add", device="vblk0", name="byqdev")
    s.cmd("blockdev-add", driver="file", node_name="t0", filename=str(s.path("t.raw")))
    s.cmd("block-export-add", type="nbd", id="exp0", node_name="t0", writable=True)
    s.cmd("block-export-add", type="nbd", id="exp0", node_name="t0")
    s.cmd("block-export-add", type="nbd", id="exp1", node_name="t0", name="d0")
    s.cmd("query-block-exports", view=by_id)
    s.cmd("blockdev-del", node_name="t0")
    s.cmd("nbd-server-remove", name="nosuch")
    s.cmd("nbd-server-remove", name="d0")
    s.wait_event("BLOCK_EXPORT_DELETED", id="d0")
    s.cmd("block-export-del", id="nosuch")
    s.cmd("block-export-del", id="exp0")
    s.wait_event("BLOCK_EXPORT_DELETED", id="exp0")
    s.cmd("query-block-exports")
    s.cmd("nbd-server-add", device="d0", writable=True)
    s.cmd("nbd-server-stop")
    s.cmd("nbd-server-stop")
    s.cmd("query-block-exports")


def by_id(exports):
    return sorted(exports, key=lambda e: e["id"])


@scenario()
def block_exports_listed_newest_first(s):
    s.raw("t.raw", 4 * MiB)
    s.start()
    nbd_start(s)
    s.cmd("blockdev-add", driver="file", node_name="t0", filename=str(s.path("t.raw")))
    s.cmd("nbd-server-add", device="d0")
    s.cmd("block-export-add", type="nbd", id="exp0", node_name="t0")
    s.cmd("block-export-add", type="nbd", id="exp1", node_name="t0", name="other")
    s.cmd("query-block-exports", view=lambda exports: [e["id"] for e in exports])


@scenario()
def nbd_export_seen_by_qemu_img_nbdinfo_and_qemu_io(s):
    s.raw("disk.raw", 16 * MiB, data=bytes(range(256)) * 4096)
    s.start()
    nbd_start(s)
    s.cmd("nbd-server-add", device="d0")
    uri = f"nbd+unix:///d0?socket={s.path('nbd.sock')}"
    s.tool("qemu-img", "info", "--output=json", uri)
    s.tool("nbdinfo", "--json", uri)
    s.tool("nbdinfo", "--list", "--json", uri)
    s.tool("qemu-io", "-f", "raw", "-c", "read -P 0 0 512", "-c", "read -P 7 7 1", uri)
    s.tool("qemu-io", "-f", "raw", "-c", "write 0 512", uri)
    s.tool("qemu-img", "map", "--output=json", "-f", "raw", uri)
    s.tool("nbdinfo", f"nbd+unix:///nosuch?socket={s.path('nbd.sock')}")


@scenario()
def nbd_export_shares(s):
    """x-debug-query-block-graph with a read-only export of the device's node and a writable one
    of a free node."""
    s.raw("t.raw", 4 * MiB)
    s.start()
    nbd_start(s)
    s.cmd("nbd-server-add", device="d0")
    s.cmd("blockdev-add", driver="file", node_name="t0", filename=str(s.path("t.raw")))
    s.cmd("block-export-add", type="nbd", id="exp0", node_name="t0", writable=True)
    s.cmd("x-debug-query-block-graph")


@scenario()
def writable_export_of_a_read_only_node(s):
    s.raw("t.raw", 4 * MiB)
    s.start()
    nbd_start(s)
    s.cmd("blockdev-add", driver="file", node_name="ro0", filename=str(s.path("t.raw")), read_only=True)
    s.cmd("block-export-add", type="nbd", id="e1", node_name="ro0", writable=True)
    s.cmd("nbd-server-add", device="ro0", writable=True)
    s.cmd("query-block-exports")
    s.tool("nbdinfo", "--json", f"nbd+unix:///ro0?socket={s.path('nbd.sock')}")
    s.cmd("nbd-server-add", device="ro0")


# --------------------------------------------------------------------------------------------
# Dirty bitmaps

BITMAP_VIEW = dict(view=nodes_view("dirty-bitmaps"))


@scenario()
def dirty_bitmaps(s):
    s.raw("t.raw", 4 * MiB)
    s.qcow2("q.qcow2", "4M")
    s.start()
    s.cmd("block-dirty-bitmap-add", node="d0", name="b0")
    s.cmd("block-dirty-bitmap-add", node="d0", name="b0")
    s.cmd("block-dirty-bitmap-add", node="nosuch", name="b0")
    s.cmd("block-dirty-bitmap-add", node="d0", name="")
    s.cmd("block-dirty-bitmap-add", node="d0", name="g", granularity=1000)
    s.cmd("block-dirty-bitmap-add", node="d0", name="g", granularity=256)
    s.cmd("block-dirty-bitmap-add", node="d0", name="p", persistent=True)
    s.cmd("block-dirty-bitmap-add", node="vblk0", name="b1")
    s.cmd("block-dirty-bitmap-add", node="d0", name="b1", granularity=131072, disabled=True)
    s.cmd("query-block", view=lambda blocks: [(b["qdev"], b.get("dirty-bitmaps", "<absent>"),
                                               b["inserted"].get("dirty-bitmaps", "<absent>")) for b in blocks])
    s.cmd("query-named-block-nodes", **BITMAP_VIEW)
    s.cmd("block-dirty-bitmap-clear", node="d0", name="b0")
    s.cmd("block-dirty-bitmap-clear", node="d0", name="nosuch")
    s.cmd("block-dirty-bitmap-disable", node="d0", name="b0")
    s.cmd("block-dirty-bitmap-disable", node="d0", name="b0")
    s.cmd("block-dirty-bitmap-enable", node="d0", name="b1")
    s.cmd("block-dirty-bitmap-enable", node="d0", name="nosuch")
    s.cmd("block-dirty-bitmap-merge", node="d0", target="b0", bitmaps=["b1"])
    s.cmd("block-dirty-bitmap-merge", node="d0", target="b0", bitmaps=["nosuch"])
    s.cmd("block-dirty-bitmap-merge", node="d0", target="nosuch", bitmaps=["b1"])
    s.cmd("block-dirty-bitmap-merge", node="d0", target="b0", bitmaps=[{"node": "d0", "name": "b1"}])
    s.cmd("block-dirty-bitmap-merge", node="d0", target="b0", bitmaps=[{"node": "nosuch", "name": "b1"}])
    s.cmd("query-named-block-nodes", **BITMAP_VIEW)
    s.cmd("block-dirty-bitmap-remove", node="d0", name="b1")
    s.cmd("block-dirty-bitmap-remove", node="d0", name="b1")
    s.cmd("block-dirty-bitmap-add", node="d0", name="b1", granularity=512)
    s.cmd("query-named-block-nodes", **BITMAP_VIEW)
    s.cmd("block-dirty-bitmap-remove", node="d0", name="b1")
    s.cmd("block-dirty-bitmap-remove", node="nosuch", name="b0")
    # writes through a writable export are counted
    nbd_start(s)
    s.cmd("blockdev-add", driver="file", node_name="t0", filename=str(s.path("t.raw")))
    s.cmd("block-dirty-bitmap-add", node="t0", name="w", granularity=65536)
    s.cmd("block-export-add", type="nbd", id="exp0", node_name="t0", writable=True)
    s.tool("qemu-io", "-f", "raw", "-c", "write 0 1k", "-c", "write 200k 100k",
           f"nbd+unix:///t0?socket={s.path('nbd.sock')}")
    s.cmd("query-named-block-nodes", **BITMAP_VIEW)
    s.cmd("blockdev-del", node_name="t0")
    s.cmd("block-export-del", id="exp0")
    s.wait_event("BLOCK_EXPORT_DELETED", id="exp0")
    s.cmd("blockdev-del", node_name="t0")
    # A persistent bitmap on a qcow2 node is a known difference (README): QEMU stores it in the
    # image, svmm refuses it as it refuses one on a raw node, since it writes no bitmap extension.


# --------------------------------------------------------------------------------------------
# The command line

def output_shape(text: str) -> list:
    """The shape of -version/-help output: QEMU's first lines with names and numbers masked."""
    shape = []
    for line in text.splitlines()[:3]:
        line = re.sub(r"^\S+ emulator version \d+\.\d+\.\d+( \(.*\))?$", "<NAME> emulator version <X.Y.Z>", line)
        line = re.sub(r"^Copyright \(c\) .*", "Copyright (c) <...>", line)
        line = re.sub(r"^usage: \S+ \[options\].*", "usage: <program> [options]...", line)
        shape.append(line)
    return shape


@scenario()
def help_and_version_output_shape(s):
    for option in ("-version", "-help", "-h"):
        result = subprocess.run([s.binary, option], capture_output=True, text=True, timeout=20,
                                stdin=subprocess.DEVNULL)
        s.note(f"{option} status", result.returncode)
        s.note(f"{option} stdout", output_shape(result.stdout))
        s.note(f"{option} stderr", output_shape(result.stderr))


# --------------------------------------------------------------------------------------------
# Block jobs: the mirror (issue 11)

def block_jobs_view(jobs):
    """query-block-jobs without `busy` (whether the job's coroutine runs at that instant)."""
    return [{k: v for k, v in job.items() if k != "busy"} for job in jobs]


def inserted_view(backends):
    """(device, medium node, the file name of the medium's backing image) per backend."""
    def backing(b):
        name = b.get("inserted", {}).get("image", {}).get("backing-image", {}).get("filename")
        return name and name.rsplit("/", 1)[-1]
    return [(b.get("qdev"), b.get("inserted", {}).get("node-name"), backing(b)) for b in backends]


@scenario()
def mirror_graph_events_and_queries(s):
    """blockdev-mirror with auto-finalize off on the guest's disk: the graph while the job runs
    (mirror_top, the job's edges, the target's backend), the job queries, verbs refused in the
    wrong state, and every event through job-complete and job-finalize."""
    s.raw("tgt.raw")
    s.start(blockdevs=["driver=file,node-name=t0,filename=$DIR/tgt.raw"])
    s.cmd("blockdev-mirror", job_id="job0", device="d0", target="t0", sync="full", auto_finalize=False)
    for status in ("created", "running", "ready"):
        s.wait_event("JOB_STATUS_CHANGE", status=status)
    s.wait_event("BLOCK_JOB_READY")
    s.cmd("x-debug-query-block-graph")
    s.cmd("query-block-jobs", view=block_jobs_view)
    s.cmd("query-jobs")
    s.cmd("query-named-block-nodes", view=nodes_view("drv", "ro", "image.format", "backing_file_depth", "dirty-bitmaps"))
    s.cmd("query-block", view=inserted_view)
    s.cmd("job-finalize", id="job0")
    s.cmd("job-dismiss", id="job0")
    s.cmd("block-job-cancel", device="nosuch")
    s.cmd("job-cancel", id="nosuch")
    s.cmd("blockdev-del", node_name="t0")
    s.cmd("blockdev-snapshot", node="d0", overlay="t0")
    s.cmd("blockdev-mirror", job_id="job1", device="d0", target="t0", sync="full")
    s.cmd("job-complete", id="job0")
    for status in ("waiting", "pending"):
        s.wait_event("JOB_STATUS_CHANGE", status=status)
    s.wait_event("BLOCK_JOB_PENDING")
    s.cmd("query-jobs")
    s.cmd("x-debug-query-block-graph")
    s.cmd("job-finalize", id="job0")
    s.wait_event("BLOCK_JOB_COMPLETED")
    for status in ("concluded", "null"):
        s.wait_event("JOB_STATUS_CHANGE", status=status)
    s.cmd("x-debug-query-block-graph")
    s.cmd("query-block", view=inserted_view)
    s.cmd("query-block-jobs")


@scenario()
def mirror_argument_errors(s):
    """blockdev-mirror's refusals in QEMU's order and words (a refused speed creates the job and
    drops it again: created, null); drive-mirror's."""
    s.raw("tgt.raw")
    s.start(blockdevs=["driver=file,node-name=t0,filename=$DIR/tgt.raw",
                       "driver=raw,node-name=r0,file=t0"])
    base = {"job-id": "job0", "device": "d0", "target": "r0", "sync": "full"}
    for change in [{"granularity": 100}, {"granularity": 1000}, {"granularity": 1 << 27}, {"target": "d0"},
                   {"device": "t0"}, {"device": "nosuch"}, {"target": "nosuch"}, {"sync": "incremental"},
                   {"sync": "bitmap"}, {"sync": "sideways"}, {"buf-size": -1}, {"job-id": "0bad"},
                   {"copy-mode": "eager"}, {"on-source-error": "panic"}, {"speed": -1}]:
        s.cmd("blockdev-mirror", {**base, **change})
    arguments = dict(base)
    del arguments["job-id"]
    s.cmd("blockdev-mirror", arguments)
    s.wait_event("JOB_STATUS_CHANGE", status="null")
    s.cmd("drive-mirror", job_id="job2", device="d0", target=str(s.path("new.raw")), sync="full", format="nosuchfmt")
    s.cmd("drive-mirror", job_id="job2", device="d0", target=str(s.path("new.raw")), sync="sideways")
    s.cmd("query-block-jobs")


@scenario()
def mirror_cancel_before_and_after_ready(s):
    """A forced cancel while copying (slow: speed and a small buffer) ends in BLOCK_JOB_CANCELLED;
    a plain cancel after READY completes without switching (BLOCK_JOB_COMPLETED), and a job that
    is not auto-dismissed waits in concluded for job-dismiss."""
    s.raw("disk.raw", data=b"\x5a" * (16 * MiB))
    s.raw("tgt.raw")
    s.start(blockdevs=["driver=file,node-name=t0,filename=$DIR/tgt.raw"])
    s.cmd("blockdev-mirror", job_id="job0", device="d0", target="t0", sync="full", speed=64 * 1024, buf_size=MiB)
    s.wait_event("JOB_STATUS_CHANGE", status="running")
    s.cmd("block-job-complete", device="job0")
    s.cmd("block-job-cancel", device="job0", force=True)
    for status in ("aborting",):
        s.wait_event("JOB_STATUS_CHANGE", status=status)
    s.wait_event("BLOCK_JOB_CANCELLED", device="job0")
    for status in ("concluded", "null"):
        s.wait_event("JOB_STATUS_CHANGE", status=status)
    s.cmd("blockdev-mirror", job_id="job1", device="d0", target="t0", sync="full", auto_dismiss=False)
    s.wait_event("BLOCK_JOB_READY", timeout=60)
    s.cmd("block-job-cancel", device="job1")
    s.wait_event("BLOCK_JOB_COMPLETED", device="job1")
    s.wait_event("JOB_STATUS_CHANGE", id="job1", status="concluded")
    s.cmd("query-block-jobs", view=block_jobs_view)
    s.cmd("query-jobs")
    s.cmd("block-job-cancel", device="job1")
    s.cmd("block-job-dismiss", id="job1")
    s.wait_event("JOB_STATUS_CHANGE", id="job1", status="null")
    s.cmd("query-block", view=inserted_view)
    s.tool("qemu-img", "compare", "-U", "-f", "raw", "-F", "raw", s.path("disk.raw"), s.path("tgt.raw"))


@scenario()
def mirror_target_backing_by_blockdev_snapshot(s):
    """iotest 155 TestBlockdevMirrorSnapshot: the target is added with backing null, its backing
    is attached with blockdev-snapshot while the job is pending, then job-finalize moves the
    device onto the target chain; the same snapshot is refused afterwards."""
    s.qcow2("back.qcow2")
    s.qcow2("src.qcow2", backing="back.qcow2")
    s.qcow2("tgt.qcow2", backing="back.qcow2")
    s.start(disk=None, blockdevs=["driver=qcow2,node-name=back,file.driver=file,file.node-name=back-file,"
                                  "file.filename=$DIR/back.qcow2",
                                  "driver=qcow2,node-name=source,file.driver=file,file.node-name=source-file,"
                                  "file.filename=$DIR/src.qcow2,backing=back"],
            devices=["virtio-blk-device,drive=source,id=qdev0"])
    s.cmd("blockdev-add", node_name="target", driver="qcow2", backing=None,
          file={"driver": "file", "node-name": "target-file", "filename": str(s.path("tgt.qcow2"))})
    s.cmd("blockdev-mirror", job_id="mirror-job", device="source", target="target", sync="top", auto_finalize=False)
    s.wait_event("BLOCK_JOB_READY")
    s.cmd("job-complete", id="mirror-job")
    s.wait_event("BLOCK_JOB_PENDING")
    s.cmd("blockdev-add", node_name="backing", driver="null-co")
    s.cmd("x-debug-query-block-graph")
    s.cmd("blockdev-snapshot", node="backing", overlay="target")
    s.cmd("job-finalize", id="mirror-job")
    s.wait_event("BLOCK_JOB_COMPLETED")
    s.wait_event("JOB_STATUS_CHANGE", status="null")
    s.cmd("query-block", view=inserted_view)
    s.cmd("query-named-block-nodes", view=nodes_view("backing_file_depth", "image.backing-image.filename"))
    s.cmd("x-debug-query-block-graph")
    s.cmd("blockdev-add", node_name="backing2", driver="null-co")
    s.cmd("blockdev-snapshot", node="backing2", overlay="target")


@scenario()
def mirror_named_filter_in_write_blocking_mode(s):
    """filter-node-name names mirror_top (then query-block shows it as the medium), a taken name is
    refused; write-blocking mode reaches READY and completes; the filter is gone afterwards."""
    s.raw("tgt.raw")
    s.start(blockdevs=["driver=file,node-name=t0,filename=$DIR/tgt.raw"])
    s.cmd("blockdev-mirror", job_id="job0", device="d0", target="t0", sync="full", filter_node_name="t0")
    s.cmd("blockdev-mirror", job_id="job0", device="d0", target="t0", sync="full", filter_node_name="0bad")
    s.cmd("blockdev-mirror", job_id="job0", device="d0", target="t0", sync="full", copy_mode="write-blocking",
          filter_node_name="mt")
    s.wait_event("BLOCK_JOB_READY")
    s.cmd("query-block", view=inserted_view)
    s.cmd("query-named-block-nodes", view=nodes_view("drv", "backing_file_depth", "image.format", "ro"))
    s.cmd("x-debug-query-block-graph")
    s.cmd("blockdev-add", driver="null-co", node_name="mt")
    s.cmd("blockdev-del", node_name="mt")
    s.cmd("block-job-complete", device="job0")
    s.wait_event("BLOCK_JOB_COMPLETED")
    s.wait_event("JOB_STATUS_CHANGE", status="null")
    s.cmd("query-named-block-nodes", view=names_view)
    s.cmd("query-block", view=inserted_view)


@scenario()
def error_classes_of_job_and_export_commands(s):
    """The class of each error, not only its text (issue 9: errors keep their kind across the
    layers): a job that does not exist is DeviceNotActive for the block-job-* commands and
    GenericError for job-*; an unknown command is CommandNotFound; the rest are GenericError."""
    s.start()
    for command in ["block-job-cancel", "block-job-pause", "block-job-resume", "block-job-complete"]:
        s.cmd(command, device="nosuch")
    s.cmd("block-job-set-speed", device="nosuch", speed=1)
    for command in ["block-job-finalize", "block-job-dismiss"]:
        s.cmd(command, id="nosuch")
    for command in ["job-cancel", "job-pause", "job-resume", "job-complete", "job-finalize", "job-dismiss"]:
        s.cmd(command, id="nosuch")
    s.cmd("no-such-command")
    s.cmd("nbd-server-add", device="d0")
    s.cmd("nbd-server-remove", name="nosuch")
    s.cmd("block-export-del", id="nosuch")
    s.cmd("blockdev-del", **{"node-name": "nosuch"})
    s.cmd("block-dirty-bitmap-add", node="nosuch", name="b0")
    s.cmd("block-dirty-bitmap-remove", node="d0", name="nosuch")
    s.cmd("migrate_cancel")
    s.cmd("migrate-continue", state="pre-switchover")


# --------------------------------------------------------------------------------------------
# Migration's URIs, sockets and error classes (issue 9: Migration on Loop's sockets)

def migration_events_on(s):
    s.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])


def status_and_error(info):
    return {k: v for k, v in info.items() if k in ("status", "error-desc", "socket-address")}


def path_of_length(s, length: int) -> str:
    """A path in the session directory exactly `length` bytes long (sun_path holds 108)."""
    prefix = f"{s.dir}/"
    return prefix + "y" * (length - len(prefix))


@scenario()
def migrate_uri_errors(s):
    """migrate's URI in QEMU's words: a protocol it does not know fails at once without an
    error-desc; a malformed address fails at once through migrate_fd_error (error-desc kept); a
    socket that does not connect fails after `{}` (QEMU connects asynchronously), error-desc
    saying why: a missing unix socket, a refused port (IPv4 and IPv6), a name or a service that
    does not resolve, no host at all; exec: with an empty command cannot take the stream."""
    s.start()
    migration_events_on(s)
    free = s.free_port("$FREE")
    for uri in ["foo:bar", "tcp:127.0.0.1", "tcp:", "unix:", "tcp:[::1]", "tcp::", "tcp:host:",
                f"unix:{s.path('nosuch.sock')}", f"tcp:127.0.0.1:{free}", f"tcp:[::1]:{free}",
                f"tcp:localhost:{free}", "tcp:nosuch.invalid:4444", "tcp:127.0.0.1:abc", f"tcp::{free}",
                "unix:" + "x" * 120, "unix:" + path_of_length(s, 108), "unix:" + path_of_length(s, 109), "exec:"]:
        s.cmd("migrate", uri=uri)
        s.wait_event("MIGRATION", timeout=3, status="setup")
        s.wait_event("MIGRATION", status="failed")
        s.cmd("query-migrate", view=status_and_error)


@scenario()
def migrate_incoming_uri_errors(s):
    """migrate-incoming's URI and listening errors, synchronous in QEMU: an unknown protocol, a
    malformed address, a port in use, a unix socket in a missing directory or on a directory, a
    name or service that does not resolve, `defer` again; an error leaves migrate-incoming
    possible, a success does not."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    s.mask(busy.getsockname()[1], "$BUSY")
    try:
        s.start(extra=["-incoming", "defer"])
        for uri in ["defer", "foo:bar", "tcp:127.0.0.1", "tcp:", "unix:", "tcp:[::1]",
                    f"tcp:127.0.0.1:{busy.getsockname()[1]}", f"unix:{s.path('nodir')}/x.sock",
                    f"unix:{s.dir}/", "unix:" + path_of_length(s, 109), "tcp:nosuch.invalid:4444", "tcp:127.0.0.1:abc"]:
            s.cmd("migrate-incoming", uri=uri)
            s.wait_event("MIGRATION", timeout=1, status="setup")
        s.cmd("query-migrate")
        s.cmd("migrate-incoming", uri=f"unix:{s.path('in.sock')}")
        s.wait_event("MIGRATION", timeout=1, status="setup")
        s.cmd("query-migrate")
        s.cmd("migrate-incoming", uri=f"unix:{s.path('in2.sock')}")
        s.wait_event("MIGRATION", timeout=1, status="setup")
    finally:
        busy.close()


@scenario()
def incoming_errors_on_the_command_line(s):
    """-incoming that cannot listen ends the VMM at start-up with status 1, the error after the
    option (`-incoming URI: ...`)."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    s.mask(busy.getsockname()[1], "$BUSY")
    try:
        for uri in [f"tcp:127.0.0.1:{busy.getsockname()[1]}", f"unix:{s.path('nodir')}/x.sock", "foo:bar",
                    "tcp:nosuch.invalid:4444", "tcp:127.0.0.1", "unix:"]:
            s.run_exiting(["-incoming", uri])
    finally:
        busy.close()


def listening_view(info):
    """query-migrate's socket-address with an ephemeral port written <port>."""
    addresses = []
    for address in info.get("socket-address", []):
        address = dict(address)
        if address.get("type") == "inet" and address.get("port") not in ("0", None) and not address["port"].startswith("$"):
            address["port"] = "<port>"
        addresses.append(address)
    return dict(info, **{"socket-address": addresses})


@scenario()
def incoming_listening_addresses(s):
    """Where a destination listens, as query-migrate shows it: one listener per address the host
    resolves to (`tcp::PORT`: 0.0.0.0 and ::, the last opened first), numeric hosts, the port the
    kernel chose for port 0, the family flag of each."""
    free = s.free_port("$FREE")
    for uri in [f"tcp::{free}", f"tcp:localhost:{free}", f"tcp:[::1]:{free}", f"tcp:0:{free}", "tcp:127.0.0.1:0",
                f"unix:{s.path('in.sock')}"]:
        s.start(extra=["-incoming", uri])
        s.cmd("query-migrate", view=listening_view)
        s.stop()
    # `[::]` is dual-stack in QEMU 7.2 (the brackets set no ipv6-only flag): an IPv4 client connects.
    s.start(extra=["-incoming", f"tcp:[::]:{free}"])
    s.cmd("query-migrate", view=listening_view)
    with socket.socket() as client:
        s.note("an IPv4 client connects to tcp:[::]", client.connect_ex(("127.0.0.1", free)) == 0)
    s.stop()


def wait_migration_status(s, status: str, timeout: float = 60):
    """Polls query-migrate (unrecorded) until the status is `status`; a timeout is a note."""
    deadline = time.monotonic() + timeout
    while s.qmp.cmd("query-migrate")["return"].get("status") != status:
        if time.monotonic() > deadline:
            s.note("migration status not reached", status)
            return
        time.sleep(0.05)


@scenario()
def error_classes_of_migration_commands(s):
    """Each migration command's errors with class and text (issue 9: MigrationError has a kind,
    QMP no longer flattens it): before a migration, while one waits in pre-switchover, after
    migrate_cancel."""
    s.start()
    s.cmd("migrate-incoming", uri=f"unix:{s.path('in.sock')}")
    s.cmd("migrate-continue", state="pre-switchover")
    s.cmd("migrate-start-postcopy")
    s.cmd("migrate-set-parameters", downtime_limit=2000001)
    s.cmd("migrate-set-capabilities", capabilities=[{"capability": "nosuch", "state": True}])
    # (no `events`: how many dirty passes come before the switch-over is not what this compares)
    s.cmd("migrate-set-capabilities", capabilities=[{"capability": "pause-before-switchover", "state": True}])
    s.cmd("migrate-set-parameters", max_bandwidth=1 << 30)
    s.cmd("migrate", uri="exec:cat > /dev/null")
    wait_migration_status(s, "pre-switchover")
    s.cmd("migrate", uri="exec:cat > /dev/null")
    s.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    s.cmd("migrate-continue", state="active")
    s.cmd("migrate-start-postcopy")
    s.cmd("migrate-incoming", uri=f"unix:{s.path('in.sock')}")
    s.cmd("cont")
    s.cmd("query-migrate", view=status_and_error)
    s.cmd("migrate_cancel")
    wait_migration_status(s, "cancelled")
    s.cmd("migrate_cancel")
    s.cmd("migrate-continue", state="pre-switchover")
    s.cmd("query-migrate", view=status_and_error)


@scenario()
def migrate_set_parameters_ranges(s):
    """migrate-set-parameters as QAPI's uint64 visitor and migrate_params_check take them: a
    negative number is its two's complement (so -1 is no bandwidth limit, and too long a
    downtime), above 2^64-1 or not an integer is "expects uint64"; query-migrate-parameters
    after each."""
    s.start()
    for arguments in [{"max-bandwidth": -1}, {"max-bandwidth": 2**63 - 1}, {"max-bandwidth": 2**64 - 1},
                      {"max-bandwidth": 2**64}, {"max-bandwidth": 1.5}, {"max-bandwidth": "1"},
                      {"max-bandwidth": 1 << 30}, {"downtime-limit": -1}, {"downtime-limit": 2**63},
                      {"downtime-limit": 2000000}, {"downtime-limit": 2000001}, {"downtime-limit": 0.5},
                      {"downtime-limit": 50, "max-bandwidth": 0}]:
        s.cmd("migrate-set-parameters", arguments)
        s.cmd("query-migrate-parameters", view=lambda p: {k: p[k] for k in ("downtime-limit", "max-bandwidth")})
