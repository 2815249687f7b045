"""Differential scenarios: each drives one VM (svmm or QEMU 7.2, same guest, disks and options)
and records what it answers; test_differential.py runs each against both and compares.

To add one: write a function taking the Session `s`, decorate it with @scenario(), start the VM
with s.start(...), and record with s.cmd / s.tool / s.note. Record what a QEMU user sees, but
keep each transcript about one thing (use `view=` to pick fields of big replies), so that a
difference in one place does not hide the next. A scenario svmm does not pass yet gets
@scenario(xfail="what differs") until the fix lands (strict: an unexpected pass fails).
"""

import json
import socket

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
