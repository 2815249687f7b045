"""Differential harness: one scenario, run against svmm and QEMU 7.2 in the same pytest run, each
recording a transcript (QMP commands, replies, events, tool outputs); the two transcripts are
normalized and compared line by line.

A scenario is a function taking a `Session`:

    @scenario()
    def blockdev_del_errors(s):
        s.start()                                   # the standard VM: d0 (16 MiB raw) under vblk0
        s.cmd("blockdev-del", **{"node-name": "nosuch"})

`s.cmd` records the command and the reply; `s.tool` runs qemu-img/qemu-io/nbdinfo and records
exit status and output; `s.note` records any value the scenario computes (for instance one field
of a large reply: keep transcripts focused, so that one difference does not hide the next);
`s.wait_event` records an event. Files are made by `s.raw`/`s.qcow2` in the session's own
directory, so both targets see the same images at their own paths.

Normalization (both sides, before comparing; see `normalize`):
  - the session directory is written `$DIR` (in every string: replies, arguments, tool output);
  - generated node names `#block123` become `#node1`, `#node2`, ... in order of first appearance;
  - event timestamps become "<timestamp>"; events are recorded where the scenario waits for
    them (s.wait_event) and, any left, at the end: where one lands among replies is timing;
  - qemu-io's "N ops; 00.00 sec (... ops/sec)" lines lose the time and rate;
  - the greeting's and query-version's `micro` and `package` become "<micro>"/"<package>";
  - x-debug-query-block-graph is rewritten with node labels instead of ids (a node's label is
    its name, or "<type>#k" for the k-th unnamed one) and nodes and edges sorted; permission
    lists keep their order (QEMU's order is part of what is compared);
  - JSON objects are printed with sorted keys (member order is not part of QMP's contract);
  - values the scenario masked (`s.mask`, `s.free_port`: port numbers) become their labels.

A difference fails the test with a unified diff (`--- qemu` / `+++ svmm`), unless each changed
line is matched by an entry of `DELIBERATE` for that scenario: a short list of deliberate
differences, each with its reason.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from conftest import RawQMP

QEMU_BIN = "qemu-system-x86_64"
QEMU_ARGS = ["-M", "microvm,accel=kvm", "-nodefaults", "-display", "none", "-serial", "none",
             "-global", "virtio-mmio.force-legacy=false"]
MiB = 1 << 20


class ScenarioFailed(Exception):
    """A step the scenario itself needs (not a compared answer) went wrong, e.g. no QMP socket."""


# --------------------------------------------------------------------------------------------
# Scenarios

@dataclass
class Scenario:
    name: str
    body: Callable
    xfail: Optional[str] = None   # reason: svmm differs today (pytest xfail strict=True)
    doc: str = ""


SCENARIOS: list[Scenario] = []


def scenario(xfail: Optional[str] = None):
    """Registers a scenario. xfail names the known difference that makes svmm fail it today."""
    def register(body):
        SCENARIOS.append(Scenario(body.__name__, body, xfail, (body.__doc__ or "").strip()))
        return body
    return register


# --------------------------------------------------------------------------------------------
# Deliberate differences

@dataclass
class Deliberate:
    """A deliberate difference: in `scenarios`, a transcript line matching `qemu` (a regex, or
    None for "no line") may be answered by svmm with a line matching `svmm` instead."""
    scenarios: tuple
    qemu: Optional[str]
    svmm: Optional[str]
    why: str


DELIBERATE = [
    # README "Known differences": QEMU 7.2 greets a second client on one -qmp socket only after
    # the first has gone; svmm serves several at once (issue: several QMP clients).
    Deliberate(("several_clients_on_one_socket",), r'## second client greeted: false',
               r'## second client greeted: true', "svmm serves several QMP clients per socket"),
    # README "Known differences": svmm has no out-of-band execution, so it does not offer "oob".
    Deliberate(("greeting_and_version",), r'^## greeting capabilities: \["oob"\]$',
               r'^## greeting capabilities: \[\]$', "svmm offers no oob capability"),
    # README "Known differences": after blockdev-snapshot QEMU renames the overlay to a json:{...}
    # pseudo-filename (bdrv_refresh_filename); svmm keeps the image's path (cosmetic).
    Deliberate(("backing_file_depth_in_query_block_after_snapshot_of_a_file",
                "backing_file_depth_in_query_block_after_snapshot_of_a_chain",
                "blockdev_snapshot_graph_and_read_only_base"),
               r'^<<< +("[\w.-]+": )?"json:\{\\"backing\\": .*\\"driver\\": \\"qcow2\\".*\}",?$',
               r'^<<< +("[\w.-]+": )?"\$DIR/[^"]*\.qcow2",?$',
               "overlay keeps its path after blockdev-snapshot"),
]


# --------------------------------------------------------------------------------------------
# One target's session

class Session:
    """Runs one scenario against one target ("svmm" or "qemu") and keeps its transcript."""

    def __init__(self, target: str, binary: str, guest: Path, workdir: Path):
        self.target = target
        self.binary = binary
        self.guest = guest
        self.dir = workdir
        self.transcript: list = []
        self.pending: list = []
        self.procs: list = []
        self.clients: list = []
        self.qmp: Optional[RawQMP] = None
        self.proc = None
        # text -> what the transcript shows instead (a port number this run picked: $PORT1)
        self.masks: dict = {}

    # ---- files
    def path(self, name: str) -> Path:
        return self.dir / name

    def raw(self, name: str, size: int = 16 * MiB, data: bytes = b"") -> Path:
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(data)
            f.truncate(max(size, len(data)))
        return path

    def qcow2(self, name: str, size: str = "16M", backing: Optional[str] = None,
              backing_fmt: str = "qcow2") -> Path:
        path = self.path(name)
        command = ["qemu-img", "create", "-q", "-f", "qcow2"]
        if backing:
            command += ["-b", str(self.path(backing)), "-F", backing_fmt]
        subprocess.run(command + [str(path), size], check=True, capture_output=True)
        return path

    # ---- the VM
    def vm_args(self, extra=(), prelaunch=False, disk: Optional[str] = "disk.raw",
                device: bool = True, sock: str = "qmp.sock") -> list:
        args = [self.binary]
        if self.target == "qemu":
            args += QEMU_ARGS
        args += ["-kernel", str(self.guest), "-append", "mode=idle"]
        if disk:
            if not self.path(disk).exists():
                self.raw(disk)
            args += ["-blockdev", f"driver=file,node-name=d0,filename={self.path(disk)}"]
            if device:
                args += ["-device", "virtio-blk-device,drive=d0,id=vblk0"]
        args += ["-qmp", f"unix:{self.path(sock)},server=on,wait=off"]
        if prelaunch:
            args.append("-S")
        return args + list(extra)

    def start(self, extra=(), prelaunch=False, disk: Optional[str] = "disk.raw", device: bool = True,
              blockdevs=(), devices=(), negotiate=True) -> RawQMP:
        """Starts the standard VM (node d0 on a fresh 16 MiB raw disk.raw under device vblk0),
        plus `-blockdev` options (strings with $DIR for the session directory) and `-device`s."""
        more = []
        for b in blockdevs:
            more += ["-blockdev", b.replace("$DIR", str(self.dir))]
        for d in devices:
            more += ["-device", d]
        args = self.vm_args(list(more) + list(extra), prelaunch, disk, device)
        sock = self.path("qmp.sock")
        log = open(self.path("vm.log"), "wb")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=self.dir)
        self.procs.append((proc, log))
        self.proc = proc
        deadline = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ScenarioFailed(f"{self.target}: no QMP socket (status {proc.poll()}):\n"
                                     f"{' '.join(args)}\n{self.path('vm.log').read_text(errors='replace')}")
            time.sleep(0.01)
        self.qmp = self.connect(str(sock), negotiate)
        return self.qmp

    def connect(self, path: str, negotiate: bool = True) -> RawQMP:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = RawQMP(path, negotiate, timeout=30)
                break
            except ConnectionRefusedError:  # bound, not listening yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise ScenarioFailed(f"{self.target}: QMP connection refused (status {self.proc.poll()}):\n"
                                         f"{self.path('vm.log').read_text(errors='replace')}")
                time.sleep(0.02)
        self.clients.append(client)
        return client

    def stop(self):
        """Ends the VM (SIGKILL) and its clients, so that the scenario can start another."""
        self.close()
        self.clients, self.procs, self.qmp, self.proc = [], [], None, None
        self.path("qmp.sock").unlink(missing_ok=True)

    def close(self):
        for client in self.clients:
            try:
                client.close()
            except OSError:
                pass
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            log.close()

    def mask(self, value, label: str):
        """Shows `value` (a port the scenario picked, say) as `label` in the transcript."""
        self.masks[str(value)] = label

    def free_port(self, label: str) -> int:
        """A TCP port on 127.0.0.1 that nothing listens on (bound, then closed), masked as `label`."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.mask(port, label)
        return port

    def run_exiting(self, extra=(), timeout: float = 20) -> subprocess.CompletedProcess:
        """Runs the standard VM expected to fail at start-up (no QMP): records its exit status and
        its error lines, the program name written <prog> (QEMU's CPUID warnings left out)."""
        args = self.vm_args(list(extra))
        result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout, cwd=self.dir)
        program = os.path.basename(self.binary)
        lines = [line.replace(program + ":", "<prog>:", 1) for line in (result.stdout + result.stderr).splitlines()
                 if ": warning: host doesn't support requested feature" not in line]
        self.record("note", label="exiting VM", value={"options": [str(a) for a in extra], "status": result.returncode,
                                                       "error lines": lines})
        return result

    # ---- recording
    def record(self, kind: str, **entry):
        self.transcript.append(dict(kind=kind, **entry))

    def cmd(self, command: str, arguments: Optional[dict] = None, view: Optional[Callable] = None,
            client: Optional[RawQMP] = None, **kwargs) -> dict:
        """Runs a QMP command and records it with its reply (through `view`, if given: for
        instance one field of a large reply). Keyword arguments with '_' are written with '-'.
        Events that arrived with the reply are recorded after it."""
        arguments = dict(arguments or {})
        arguments.update({k.replace("_", "-"): v for k, v in kwargs.items()})
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        client = client or self.qmp
        reply = client.request(message)
        shown = reply
        if view is not None and "return" in reply:
            shown = {"return": view(reply["return"])}
        elif command in VIEWS and "return" in reply:
            shown = {"return": VIEWS[command](reply["return"])}
        self.record("cmd", command=message, reply=shown)
        self.flush_events(client)
        return reply

    def request_raw(self, data: bytes, client: Optional[RawQMP] = None) -> dict:
        client = client or self.qmp
        reply = client.request(data)
        self.record("raw", data=data.decode(errors="replace"), reply=reply)
        return reply

    def flush_events(self, client: Optional[RawQMP] = None):
        """Moves the events a client has read into `pending` (they are recorded when waited for,
        or at the end: where an event lands among replies depends on timing)."""
        client = client or self.qmp
        self.pending += client.events
        client.events.clear()

    def wait_event(self, name: str, timeout: float = 10, client: Optional[RawQMP] = None,
                   **data) -> Optional[dict]:
        """Waits for the event `name` whose data has `data` (it may have come before: each wait
        consumes one) and records it; a timeout is recorded as a note."""
        client = client or self.qmp
        deadline = time.monotonic() + timeout
        data = {k.replace("_", "-"): v for k, v in data.items()}
        while True:
            self.flush_events(client)
            for i, event in enumerate(self.pending):
                if event["event"] == name and all(event.get("data", {}).get(k) == v for k, v in data.items()):
                    del self.pending[i]
                    self.record("event", event=event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.note("no event within %g s" % timeout, f"{name} {json.dumps(data, sort_keys=True)}")
                return None
            client.sock.settimeout(remaining)
            try:
                client.events.append(client.read())
            except socket.timeout:
                pass
            finally:
                client.sock.settimeout(30)

    def record_pending_events(self):
        for client in self.clients:
            self.flush_events(client)
        for event in self.pending:
            self.record("event", event=event, label="not waited for")
        self.pending.clear()

    def note(self, label: str, value):
        self.record("note", label=label, value=value)

    def tool(self, *argv, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs a tool (qemu-img, qemu-io, nbdinfo, ...) and records status, stdout, stderr."""
        argv = [str(a) for a in argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        self.record("tool", argv=argv, status=result.returncode, stdout=result.stdout, stderr=result.stderr)
        return result


# --------------------------------------------------------------------------------------------
# Views and normalization

def graph_view(graph: dict) -> dict:
    """x-debug-query-block-graph with labels for ids, nodes and edges sorted. A node's label is
    its name; an unnamed one (an export's BlockBackend) is "<unnamed TYPE over CHILD>"."""
    labels = {node["id"]: node["name"] for node in graph["nodes"]}
    for node in graph["nodes"]:
        if not node["name"]:
            children = sorted(labels.get(e["child"]) or "?" for e in graph["edges"] if e["parent"] == node["id"])
            labels[node["id"]] = f"<unnamed {node['type']} over {','.join(children)}>"
    nodes = sorted(f"{n['type']} {labels[n['id']]}" for n in graph["nodes"])
    edges = sorted((f"{labels.get(e['parent'], e['parent'])} -{e['name']}-> {labels.get(e['child'], e['child'])}"
                    f"  perm={','.join(e['perm'])}  shared={','.join(e['shared-perm'])}")
                   for e in graph["edges"])
    return {"nodes": nodes, "edges": edges}


def version_view(version: dict) -> dict:
    version = json.loads(json.dumps(version))
    if "qemu" in version:
        version["qemu"]["micro"] = "<micro>"
    if "package" in version:
        version["package"] = "<package>"
    return version


VIEWS = {"x-debug-query-block-graph": graph_view, "query-version": version_view}

GENERATED = re.compile(r"#block\d+")
# qemu-io's "1 KiB, 1 ops; 00.00 sec (3.989 MiB/sec and 4084.4668 ops/sec)"
QEMU_IO_RATE = re.compile(r"^(\S+ \S+, \d+ ops); [\d:.]+ sec \(.*\)$")


def normalize(transcript: list, workdir: Path, masks: Optional[dict] = None) -> list:
    """Applies the rules in this module's doc string (and the session's masks, longest first);
    returns the transcript as text lines."""
    names: dict = {}
    root = str(workdir)
    masked = sorted((masks or {}).items(), key=lambda item: -len(item[0]))

    def text(s: str) -> str:
        s = s.replace(root, "$DIR")
        for value, label in masked:
            s = s.replace(value, label)
        return GENERATED.sub(lambda m: names.setdefault(m.group(0), f"#node{len(names) + 1}"), s)

    def walk(value):
        if isinstance(value, str):
            return text(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {text(k): walk(v) for k, v in value.items()}
        return value

    def dump(value) -> list:
        return json.dumps(walk(value), indent=2, sort_keys=True).splitlines()

    lines = []
    for entry in transcript:
        kind = entry["kind"]
        if kind == "cmd":
            lines.append(">>> " + json.dumps(walk(entry["command"]), sort_keys=True))
            lines += ["<<< " + line for line in dump(entry["reply"])]
        elif kind == "raw":
            lines.append(">>> (raw) " + text(entry["data"]))
            lines += ["<<< " + line for line in dump(entry["reply"])]
        elif kind == "event":
            event = dict(entry["event"])
            if "timestamp" in event:
                event["timestamp"] = "<timestamp>"
            if entry.get("label"):
                lines.append(f"!!! ({entry['label']})")
            lines += ["!!! " + line for line in dump(event)]
        elif kind == "note":
            value = walk(entry["value"])
            if isinstance(value, (dict, list)):
                lines.append(f"## {entry['label']}:")
                lines += ["##   " + line for line in dump(value)]
            else:
                lines.append(f"## {entry['label']}: {json.dumps(value) if not isinstance(value, str) else value}")
        elif kind == "tool":
            lines.append("$ " + " ".join(text(a) for a in entry["argv"]))
            lines.append(f"  status {entry['status']}")
            lines += ["  out| " + QEMU_IO_RATE.sub(r"\1; <time and rate>", text(line))
                      for line in entry["stdout"].splitlines()]
            lines += ["  err| " + text(line) for line in entry["stderr"].splitlines()]
    return lines


# --------------------------------------------------------------------------------------------
# Comparison

def compare(name: str, qemu_lines: list, svmm_lines: list) -> tuple[bool, str]:
    """(equal after the allow-list, report). The report is a unified diff, with the deliberate
    differences it accepted listed under it."""
    allowed = [d for d in DELIBERATE if name in d.scenarios]
    matcher = difflib.SequenceMatcher(None, qemu_lines, svmm_lines, autojunk=False)
    unexplained, accepted = [], []

    def allow(q: Optional[str], v: Optional[str]) -> Optional[Deliberate]:
        for d in allowed:
            q_ok = (d.qemu is None and q is None) or (d.qemu is not None and q is not None and re.search(d.qemu, q))
            v_ok = (d.svmm is None and v is None) or (d.svmm is not None and v is not None and re.search(d.svmm, v))
            if q_ok and v_ok:
                return d
        return None

    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        q, v = qemu_lines[i1:i2], svmm_lines[j1:j2]
        pairs = list(zip(q, v))
        rest = [(x, None) for x in q[len(pairs):]] + [(None, y) for y in v[len(pairs):]]
        for a, b in pairs + rest:
            d = allow(a, b)
            if d is None and a is not None and b is not None:
                # a replaced pair may also be one deleted and one inserted deliberate line
                if allow(a, None) and allow(None, b):
                    d = allow(a, None)
            (accepted if d else unexplained).append((a, b, d))
    diff = "\n".join(difflib.unified_diff(qemu_lines, svmm_lines, "qemu", "svmm", lineterm="", n=4))
    report = diff
    if accepted:
        report += "\n\naccepted as deliberate:\n" + "\n".join(
            f"  {d.why}: qemu {a!r} / svmm {b!r}" for a, b, d in accepted)
    return not unexplained, report


def run_target(sc: Scenario, target: str, binary: str, guest: Path) -> tuple[list, Optional[str]]:
    """Runs the scenario against one target: (normalized transcript, error text or None)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"df-{target}-", dir="/tmp"))
    session = Session(target, binary, guest, workdir)
    error = None
    try:
        sc.body(session)
        session.record_pending_events()
    except ScenarioFailed as e:
        error = str(e)
    except (ConnectionError, OSError, json.JSONDecodeError) as e:
        # a connection that closes or stalls is an answer too: record it and compare
        session.note("scenario stopped", f"{type(e).__name__}: {e}")
    except Exception:  # a bug in the scenario: report it, do not compare
        error = traceback.format_exc()
    finally:
        session.close()
    lines = normalize(session.transcript, workdir, session.masks)
    if error is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        error += f"\n(kept {workdir})"
    return lines, error


def find_binaries(repo: Path) -> dict:
    svmm = os.environ.get("SVMM_BIN", ".build/debug/svmm")
    svmm = str(svmm if os.path.isabs(svmm) else repo / svmm)
    return {"svmm": svmm, "qemu": shutil.which(QEMU_BIN)}
