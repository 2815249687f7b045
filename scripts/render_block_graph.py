#!/usr/bin/env python3
"""Render the block graph of a running svmm (or QEMU) as Graphviz dot and SVG.

Like QEMU's scripts/render_block_graph.py: asks the QMP monitor for
x-debug-query-block-graph, query-named-block-nodes and query-block, writes a
dot file and renders it with `dot -Tsvg`.

svmm also answers x-svmm-query-backends: a BlockBackend whose permissions are
recorded but not applied (a guest device attached during an incoming
migration, until the VM resumes) is drawn dashed with its recorded
permissions, marked "deferred" (the graph itself shows only what is applied).
QEMU answers CommandNotFound, and the graph is drawn without it.

Usage:
  render_block_graph.py [QMP_SOCKET] [OUT.svg]
  QMP=/path/to/qmp.sock render_block_graph.py [OUT.svg]
  make graph QMP=/path/to/qmp.sock [OUT=block-graph.svg]

QMP_SOCKET is a unix socket path (svmm -qmp unix:PATH,server=on,wait=off) or
HOST:PORT for a tcp monitor. OUT defaults to block-graph.svg; the dot source is
written beside it (OUT with .dot instead of .svg).
"""

import argparse
import asyncio
import os
import stat
import subprocess
import sys

from qemu.qmp import ExecuteError, QMPClient

# Permission letters, as in QEMU's script (GRAPH_MOD is gone since 6.2).
PERM_LETTERS = {
    "consistent-read": "r",
    "write": "w",
    "write-unchanged": "u",
    "resize": "s",
    "graph-mod": "g",
}

LEGEND = ("permission symbols:\\l"
          "  w - Write\\l"
          "  r - consistent-Read\\l"
          "  u - write - Unchanged\\l"
          "  s - reSize\\l"
          "edge label scheme:\\l"
          "  <child name>\\l"
          "  <perm>\\l"
          "  <shared_perm>\\l"
          "dashed: permissions deferred\\l"
          "  (recorded, not applied)\\l")


def perm(names):
    """['consistent-read', 'write'] -> 'rw' (always in the order r, w, u, s, g); '-' if empty."""
    letters = "".join(PERM_LETTERS[name] for name in sorted(names, key=list(PERM_LETTERS).index)
                      if name in PERM_LETTERS)
    unknown = [name for name in names if name not in PERM_LETTERS]
    return (letters + ("," + ",".join(unknown) if unknown else "")) or "-"


def quote(label):
    """A dot string literal for a label built from escape()d text and \\l / \\n line breaks."""
    return '"' + label + '"'


def escape(text):
    """User text (node names, file names) inside a dot string: no escapes of its own."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def deferred_backends(graph, backends):
    """{graph id: x-svmm-query-backends entry} for the backends whose permissions are not
    applied; an entry counts only if the graph has a backend of that id and name."""
    by_id = {node["id"]: node for node in graph["nodes"] if node["type"] == "block-backend"}
    found = {}
    for entry in backends or []:
        node = by_id.get(entry.get("id"))
        if node is not None and node["name"] == entry.get("name") and not entry.get("applied", True):
            found[node["id"]] = entry
    return found


def to_dot(graph, named_nodes, blocks, jobs, backends=None):
    """Dot source for x-debug-query-block-graph's answer (and x-svmm-query-backends', if any)."""
    deferred = deferred_backends(graph, backends)
    nodes_by_name = {n["node-name"]: n for n in named_nodes}
    blocks_by_device = {}
    for block in blocks:
        for key in ("qdev", "device"):
            if block.get(key):
                blocks_by_device.setdefault(block[key], block)
    jobs_by_device = {job.get("device"): job for job in jobs}

    lines = ["digraph {", "  // Block Nodes Graph", "  rankdir=TB;",
             f"  legend [label={quote(LEGEND)} shape=none];"]
    for node in sorted(graph["nodes"], key=lambda n: n["id"]):
        name = node["name"]
        kind = node["type"]
        if kind == "block-driver":
            info = nodes_by_name.get(name, {})
            label = escape(name) + " [" + escape(info.get("drv", "?")) + "]"
            if info.get("drv") == "file" and info.get("file"):
                label += "\\n" + escape(os.path.basename(info["file"]))
            shape = "ellipse"
        elif kind == "block-job":
            info = jobs_by_device.get(name, {})
            label = escape(info.get("type", "block")) + " job (" + escape(name) + ")"
            shape = "box"
        else:
            label = escape(name) if name else "unnamed blk"
            block = blocks_by_device.get(name) if name else None
            if block:
                details = []
                if block.get("device"):
                    details.append("device " + escape(block["device"]))
                if block.get("qdev"):
                    details.append("qdev " + escape(block["qdev"]))
                if details:
                    label += "\\n(" + ", ".join(details) + ")"
            shape = "box"
            if node["id"] in deferred:
                label += "\\npermissions deferred"
                shape += " style=dashed"
        lines.append(f"  n{node['id']} [label={quote(label)} shape={shape}];")
    for edge in graph["edges"]:
        entry = deferred.get(edge["parent"]) if edge["name"] == "root" else None
        if entry is not None:
            # The recorded permissions, which apply when the VM resumes; then what holds now.
            label = "%s\\l%s\\l%s\\ldeferred (applied: %s / %s)\\l" % (
                escape(edge["name"]), perm(entry["perm"]), perm(entry["shared-perm"]),
                perm(edge["perm"]), perm(edge["shared-perm"]))
            lines.append(f"  n{edge['parent']} -> n{edge['child']} [label={quote(label)} style=dashed];")
            continue
        label = "%s\\l%s\\l%s\\l" % (escape(edge["name"]), perm(edge["perm"]), perm(edge["shared-perm"]))
        lines.append(f"  n{edge['parent']} -> n{edge['child']} [label={quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


async def query(address):
    client = QMPClient("render_block_graph")
    await client.connect(address)
    try:
        graph = await client.execute("x-debug-query-block-graph")
        named = await client.execute("query-named-block-nodes")
        blocks = await client.execute("query-block")
        try:
            jobs = await client.execute("query-block-jobs")
        except ExecuteError:
            jobs = []
        try:
            backends = await client.execute("x-svmm-query-backends")
        except ExecuteError:  # QEMU: CommandNotFound; the graph alone then
            backends = None
        return graph, named, blocks, jobs, backends
    finally:
        await client.disconnect()


def parse_address(text):
    if os.path.exists(text) or "/" in text or ":" not in text:
        return text
    host, _, port = text.rpartition(":")
    return (host, int(port))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("args", nargs="*", metavar="[QMP_SOCKET] [OUT]",
                        help="QMP socket (or the QMP environment variable) and output SVG path")
    parser.add_argument("--dot-only", action="store_true", help="write the dot file only")
    options = parser.parse_args(argv)
    args = list(options.args)
    if len(args) > 2:
        parser.error("at most two arguments: [QMP_SOCKET] [OUT]")
    socket_path = os.environ.get("QMP") or None
    out = "block-graph.svg"
    if len(args) == 2:
        socket_path, out = args
    elif len(args) == 1:
        # one argument: the socket, unless QMP names it and the argument looks like an output
        is_socket = os.path.exists(args[0]) and stat.S_ISSOCK(os.stat(args[0]).st_mode)
        if socket_path and not is_socket:
            out = args[0]
        else:
            socket_path = args[0]
    if not socket_path:
        parser.error("no QMP socket: give it as the first argument or in QMP= "
                     "(svmm ... -qmp unix:PATH,server=on,wait=off)")

    try:
        graph, named, blocks, jobs, backends = asyncio.run(asyncio.wait_for(query(parse_address(socket_path)), 30))
    except Exception as error:  # connection refused, timeout, QMP error: one clear line
        print(f"render_block_graph: {socket_path}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1

    dot_source = to_dot(graph, named, blocks, jobs, backends)
    dot_path = out[:-4] + ".dot" if out.endswith(".svg") else out + ".dot"
    with open(dot_path, "w") as f:
        f.write(dot_source)
    if options.dot_only:
        print(dot_path)
        return 0
    try:
        subprocess.run(["dot", "-Tsvg", "-o", out, dot_path], check=True)
    except FileNotFoundError:
        print("render_block_graph: `dot` not found: install graphviz (make deps)", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"render_block_graph: dot failed with status {error.returncode}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
