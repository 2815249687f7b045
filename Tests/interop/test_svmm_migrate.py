"""svmm-migrate drives two real VMMs through storage migration (iotest 194's flow).

Against two QEMU 7.2 processes (the tiny guest boots under both): the source runs the writer
guest, the destination waits with `-incoming defer` on an empty disk. QEMU resumes the
destination while the NBD export is still writable, and the tool must say so and exit 6; the
guest keeps verifying on the destination, and with the destination left paused (--suspend) the
two disks compare identical at the switch-over. The same against two svmm processes must end
with exit 0 after svmm refused the early resume. Then bad input: unreachable sockets,
a destination not waiting for a migration, and VMMs that refuse a step, each with a clear
message, its exit status, and nothing left behind that could be undone.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP, repo_path

MiB = 1 << 20
DISK = 16 * MiB
EARLY_RESUME = ("destination resumed while the NBD export was still writable: "
                "the guest device's permissions were never applied")
TARGETS = ["qemu", "svmm"]


def tools():
    """svmm, svmm-migrate (beside svmm unless SVMM_MIGRATE_BIN), the guest and QEMU; fail if missing."""
    svmm = repo_path(os.environ.get("SVMM_BIN", ".build/debug/svmm"))
    migrate = repo_path(os.environ.get("SVMM_MIGRATE_BIN", str(svmm.parent / "svmm-migrate")))
    guest = repo_path(os.environ.get("GUEST_ELF", "guest-images/out/blkguest.elf"))
    qemu = shutil.which("qemu-system-x86_64")
    for path in (svmm, migrate):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build with `swift build`")
    if not guest.is_file() or not qemu:
        pytest.fail(f"missing guest ({guest}) or qemu-system-x86_64")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing: these tests need KVM")
    return str(svmm), str(migrate), str(guest), qemu


class Peer:
    """One VMM (svmm or QEMU 7.2) with the tiny guest on a raw disk (node d0, device vblk0)."""

    def __init__(self, target: str, workdir: Path, name: str, mode: str = "writer",
                 incoming=False, paused: bool = False, qmp: str = ""):
        svmm, _, guest, qemu = tools()
        self.name = name
        self.disk = workdir / f"{name}.raw"
        with open(self.disk, "wb") as disk:
            disk.truncate(DISK)
        self.sock = str(workdir / f"{name}.qmp")
        # QMP over TCP when asked (`qmp="127.0.0.1:PORT"`); the tests reach it as tcp:HOST:PORT.
        self.address = f"tcp:{qmp}" if qmp else self.sock
        monitor = f"tcp:{qmp},server=on,wait=off" if qmp else f"unix:{self.sock},server=on,wait=off"
        self.log = workdir / f"{name}.serial"
        args = [svmm] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", "64M", "-serial", "stdio", "-kernel", guest, "-append", f"mode={mode}",
                 "-qmp", monitor,
                 "-blockdev", f"driver=file,node-name=d0,filename={self.disk}",
                 "-device", "virtio-blk-device,drive=d0,id=vblk0"]
        if incoming:
            args += ["-incoming", "defer" if incoming is True else incoming]
        if paused:
            args.append("-S")
        self.output = open(self.log, "wb")
        self.proc = subprocess.Popen(args, stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.listening():
            assert self.proc.poll() is None, f"{name} ({target}) exited: {self.serial()}"
            assert time.monotonic() < deadline, f"{name}: no QMP socket"
            time.sleep(0.02)

    def listening(self) -> bool:
        if not self.address.startswith("tcp:"):
            return os.path.exists(self.sock)
        host, port = self.address[4:].rsplit(":", 1)
        with socket.socket() as probe:
            return probe.connect_ex((host, int(port))) == 0

    def cmd(self, name: str, **arguments) -> dict:
        """One command on a connection of its own: QEMU serves one QMP client at a time, and
        svmm-migrate needs the monitor while it runs."""
        if self.address.startswith("tcp:"):
            return tcp_command(self.address[4:], name, arguments)
        deadline = time.monotonic() + 10
        while True:
            try:
                client = RawQMP(self.sock)
                break
            except ConnectionRefusedError:  # QEMU binds the socket file before it listens
                assert time.monotonic() < deadline, f"{self.name}: QMP socket refuses connections"
                time.sleep(0.05)
        try:
            return client.cmd(name, **arguments)
        finally:
            client.close()

    def serial(self) -> str:
        if not self.output.closed:
            self.output.flush()
        return self.log.read_text(errors="replace")

    def rounds(self) -> int:
        found = re.findall(r"WRITER round (\d+) ok", self.serial())
        return int(found[-1]) if found else 0

    def wait_rounds(self, count: int, timeout: float = 120):
        """`count` more verified writer rounds in this process's serial log, and no failure."""
        deadline = time.monotonic() + timeout
        seen = len(re.findall(r"WRITER round \d+ ok", self.serial()))
        while len(re.findall(r"WRITER round \d+ ok", self.serial())) < seen + count:
            assert "FAIL" not in self.serial(), self.serial()
            assert self.proc.poll() is None, self.serial()
            assert time.monotonic() < deadline, f"{self.name}: no {count} writer rounds in {timeout} s: {self.serial()[-2000:]}"
            time.sleep(0.05)
        assert "FAIL" not in self.serial(), self.serial()

    def status(self) -> str:
        return self.cmd("query-status")["return"]["status"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.output.close()


def tcp_command(hostport: str, name: str, arguments: dict) -> dict:
    """RawQMP speaks unix sockets only: the same exchange over TCP."""
    host, port = hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        reader = conn.makefile("rb")
        json.loads(reader.readline())
        for message in ({"execute": "qmp_capabilities"}, {"execute": name, "arguments": arguments}):
            conn.sendall(json.dumps(message).encode() + b"\n")
            while "event" in (reply := json.loads(reader.readline())):
                pass
        return reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def peers(tmp_path):
    """peers(target, name, **options) -> Peer; every one is killed at the end."""
    started = []

    def start(target: str, name: str, **options) -> Peer:
        peer = Peer(target, tmp_path, name, **options)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.kill()


def migrate_tool(tmp_path, source: str, destination: str, *extra, timeout: float = 240,
                 nbd: str = "", migrate_uri: str = "") -> subprocess.CompletedProcess:
    _, migrate, _, _ = tools()
    args = [migrate, "--source", source, "--destination", destination, "--device", "d0", "--target-node", "d0",
            "--nbd", nbd or f"unix:{tmp_path}/nbd.sock", "--migrate-uri", migrate_uri or f"unix:{tmp_path}/migrate.sock",
            "--timeout", "120", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def start_pair(peers, target: str, paused_destination: bool = False):
    source = peers(target, "source")
    source.wait_rounds(2)
    destination = peers(target, "destination", incoming=True, paused=paused_destination)
    assert destination.status() == "inmigrate"
    return source, destination


def device_edge(peer: Peer) -> dict:
    graph = peer.cmd("x-debug-query-block-graph")["return"]
    ids = {node["id"]: node for node in graph["nodes"]}
    return next(edge for edge in graph["edges"]
                if ids[edge["parent"]]["name"] == "vblk0" and edge["name"] == "root")


# -- the whole flow ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_storage_migration_with_the_early_resume_check(peers, tmp_path, target):
    source, destination = start_pair(peers, target)
    result = migrate_tool(tmp_path, source.sock, destination.sock)
    out = result.stdout
    for step in ("destination: node 'd0' exported writable as 'd0'", "source: NBD node 'svmm-migrate-nbd' connected",
                 "READY", "source: migration completed", "destination: migration completed",
                 "source: mirror job 'svmm-migrate-mirror' ended", "destination: NBD server stopped",
                 "destination: running"):
        assert step in out, step + "\n" + explain(result)
    if target == "qemu":
        # QEMU 7.2 starts the destination at the end of the migration (no -S) with the export
        # still writable, and never re-tightens the device's permissions.
        assert result.returncode == 6, explain(result)
        assert EARLY_RESUME in out, explain(result)
        assert "its guest device's permissions are not in force" in result.stderr, explain(result)
        assert "write" in device_edge(destination)["shared-perm"]
    else:
        # svmm leaves it paused, refuses cont with the conflict, and runs after nbd-server-stop.
        assert result.returncode == 0, explain(result)
        assert "destination refused to resume while the NBD export is writable (status stays 'paused')" in out
        assert "Permission conflict on node 'd0'" in out, explain(result)
        assert "permissions in force: device 'vblk0' on node 'd0' takes [write, consistent-read]" in out
        edge = device_edge(destination)
        assert "write" in edge["perm"] and "write" not in edge["shared-perm"]
    assert source.status() == "postmigrate"
    assert destination.status() == "running"
    destination.wait_rounds(3)
    assert "FAIL" not in source.serial()


@pytest.mark.parametrize("target", TARGETS)
def test_disks_are_identical_at_the_switch_over(peers, tmp_path, target):
    source, destination = start_pair(peers, target, paused_destination=True)
    result = migrate_tool(tmp_path, source.sock, destination.sock, "--suspend")
    assert result.returncode == 0, explain(result)
    assert "destination left paused as --suspend asks" in result.stdout, explain(result)
    assert "resume" not in result.stderr, explain(result)
    assert destination.status() == "paused" and source.status() == "postmigrate"
    # Both stopped: the source since the switch-over, the destination never ran.
    compare = subprocess.run(["qemu-img", "compare", "-U", "-f", "raw", "-F", "raw",
                              str(source.disk), str(destination.disk)], capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0 and "Images are identical" in compare.stdout, compare.stdout + compare.stderr
    if target == "svmm":
        backend = next(b for b in destination.cmd("x-svmm-query-backends")["return"] if b["name"] == "vblk0")
        assert backend["applied"] is False
    assert destination.cmd("cont") == {"return": {}}
    destination.wait_rounds(3)
    if target == "svmm":
        edge = device_edge(destination)
        assert "write" in edge["perm"] and "write" not in edge["shared-perm"]


def test_progress_goes_to_stderr_as_plain_lines(peers, tmp_path):
    source, destination = start_pair(peers, "qemu", paused_destination=True)
    result = migrate_tool(tmp_path, source.sock, destination.sock, "--suspend")
    assert result.returncode == 0, explain(result)
    progress = [line for line in result.stderr.splitlines() if line.startswith("Migration: [mirror")]
    assert progress, explain(result)
    assert all("\r" not in line and "\x1b" not in line for line in progress)
    assert re.search(r"Migration: \[mirror +\d+ %, RAM +(\d+|-) %\]", progress[0]), progress


def test_an_already_listening_destination_and_everything_over_tcp(peers, tmp_path):
    """QMP, NBD and the migration stream on 127.0.0.1; the destination started with
    `-incoming tcp:...` listens already, so no migrate-incoming is sent."""
    migrate_port, nbd_port = free_port(), free_port()
    source = peers("qemu", "source", qmp=f"127.0.0.1:{free_port()}")
    source.wait_rounds(1)
    destination = peers("qemu", "destination", incoming=f"tcp:127.0.0.1:{migrate_port}", paused=True,
                        qmp=f"127.0.0.1:{free_port()}")
    result = migrate_tool(tmp_path, source.address, destination.address, "--suspend",
                          nbd=f"tcp:127.0.0.1:{nbd_port}", migrate_uri=f"tcp:127.0.0.1:{migrate_port}")
    assert result.returncode == 0, explain(result)
    assert "already listening for the migration" in result.stdout
    assert "destination: listening for the migration on" not in result.stdout
    assert f"exported writable as 'd0' on tcp:127.0.0.1:{nbd_port}" in result.stdout
    compare = subprocess.run(["qemu-img", "compare", "-U", "-f", "raw", "-F", "raw",
                              str(source.disk), str(destination.disk)], capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert destination.cmd("cont") == {"return": {}}
    destination.wait_rounds(2)


def test_progress_on_a_terminal_is_one_line_rewritten_in_place(peers, tmp_path):
    source, destination = start_pair(peers, "qemu", paused_destination=True)
    _, migrate, _, _ = tools()
    command = [migrate, "--source", source.sock, "--destination", destination.sock, "--device", "d0",
               "--target-node", "d0", "--nbd", f"unix:{tmp_path}/nbd.sock",
               "--migrate-uri", f"unix:{tmp_path}/migrate.sock", "--suspend"]
    # script(1) gives the tool a pseudo-terminal for stdout and stderr.
    result = subprocess.run(["script", "-qefc", shlex.join(command), "/dev/null"], capture_output=True,
                            timeout=240, stdin=subprocess.DEVNULL)
    screen = result.stdout.decode(errors="replace")
    assert result.returncode == 0, screen
    assert "\r\x1b[KMigration: [mirror" in screen, screen
    # A step after progress starts on a fresh row; the last figure stays on screen.
    assert re.search(r"Migration: \[mirror[^\r\n]*\r?\n(\r\x1b\[K)?source: mirror job 'svmm-migrate-mirror' READY", screen), screen


# -- bad input --------------------------------------------------------------------------------

def test_unreachable_sockets(tmp_path):
    result = migrate_tool(tmp_path, str(tmp_path / "nosuch.qmp"), str(tmp_path / "other.qmp"))
    assert result.returncode == 2, explain(result)
    assert f"source: cannot connect to QMP socket unix:{tmp_path}/nosuch.qmp: No such file or directory" in result.stderr
    result = migrate_tool(tmp_path, "tcp:127.0.0.1:1", str(tmp_path / "other.qmp"))
    assert result.returncode == 2, explain(result)
    assert "cannot connect to QMP socket tcp:127.0.0.1:1: Connection refused" in result.stderr


def test_a_monitor_busy_with_another_client(peers, tmp_path):
    source = peers("qemu", "source", mode="idle")
    destination = peers("qemu", "destination", mode="idle", incoming=True)
    holder = RawQMP(source.sock)  # QEMU serves this one and nobody else until it goes
    try:
        result = migrate_tool(tmp_path, source.sock, destination.sock, "--timeout", "1")
    finally:
        holder.close()
    assert result.returncode == 2, explain(result)
    assert (f"source: timed out after 1 s waiting for the QMP greeting on unix:{source.sock} "
            "(is another QMP client connected? QEMU serves one at a time)") in result.stderr, explain(result)
    assert source.status() == "running" and destination.status() == "inmigrate"


def test_a_socket_that_is_not_qmp(tmp_path):
    listener = subprocess.Popen(["python3", "-c", (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_UNIX); s.bind('{tmp_path}/echo.sock'); s.listen(1)\n"
        "c,_=s.accept(); c.sendall(b'220 smtp ready\\r\\n'); c.recv(100)\n")])
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(tmp_path / "echo.sock"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        result = migrate_tool(tmp_path, str(tmp_path / "echo.sock"), str(tmp_path / "x.qmp"))
        assert result.returncode == 2, explain(result)
        assert "does not speak QMP" in result.stderr, explain(result)
    finally:
        listener.kill()
        listener.wait()


def test_bad_command_line():
    _, migrate, _, _ = tools()
    result = subprocess.run([migrate, "--source", "s", "--destination", "d", "--device", "d0", "--target-node", "d0",
                             "--nbd", "tcp:nohost", "--migrate-uri", "unix:/tmp/m"], capture_output=True, text=True)
    assert result.returncode == 64
    assert "--nbd tcp:nohost: expected unix:PATH or tcp:HOST:PORT" in result.stderr
    help_text = subprocess.run([migrate, "--help"], capture_output=True, text=True).stdout
    for line in ("0  the destination runs, its guest device's permissions in force",
                 "6  the destination runs, but its device still shares 'write'"):
        assert line in help_text


@pytest.mark.parametrize("target", ["qemu", "svmm"])
def test_a_destination_not_waiting_for_a_migration_is_refused(peers, tmp_path, target):
    source = peers("qemu", "source", mode="idle")
    running = peers(target, "running", mode="idle")
    result = migrate_tool(tmp_path, source.sock, running.sock)
    assert result.returncode == 3, explain(result)
    assert "destination is not waiting for an incoming migration (status 'running'): start it with -incoming defer" in result.stderr
    assert running.cmd("nbd-server-stop")["error"]["desc"] == "NBD server not running"
    assert source.status() == "running"


def assert_nothing_left(source: Peer, destination: Peer):
    """No NBD node or job on the source, no NBD server on the destination, both as before."""
    names = [node["node-name"] for node in source.cmd("query-named-block-nodes")["return"]]
    assert "svmm-migrate-nbd" not in names, names
    jobs = source.cmd("query-block-jobs")
    assert jobs.get("return", []) == [] or "error" in jobs, jobs
    assert destination.cmd("nbd-server-stop")["error"]["desc"] == "NBD server not running"
    assert destination.status() == "inmigrate"
    assert source.status() == "running"


@pytest.mark.parametrize("source_target", ["qemu", "svmm"])
def test_a_refused_mirror_undoes_the_nbd_node_and_the_export(peers, tmp_path, source_target):
    # svmm today has no blockdev-mirror (CommandNotFound); with it, the unknown device is refused.
    source = peers(source_target, "source")
    source.wait_rounds(1)
    destination = peers("qemu", "destination", incoming=True)
    result = migrate_tool(tmp_path, source.sock, destination.sock, "--device", "nosuch")
    assert result.returncode == 3, explain(result)
    assert "svmm-migrate: source refused blockdev-mirror: " in result.stderr, explain(result)
    if source_target == "qemu":
        assert "Cannot find device='nosuch' nor node-name='nosuch'" in result.stderr
    assert "undone: source blockdev-del svmm-migrate-nbd" in result.stdout, explain(result)
    assert "undone: destination nbd-server-stop" in result.stdout, explain(result)
    assert_nothing_left(source, destination)
    source.wait_rounds(2)


def test_a_refused_export_undoes_the_nbd_server(peers, tmp_path):
    source = peers("qemu", "source", mode="idle")
    destination = peers("qemu", "destination", mode="idle", incoming=True)
    result = migrate_tool(tmp_path, source.sock, destination.sock, "--target-node", "nosuch", "--guest-device", "vblk0")
    assert result.returncode == 3, explain(result)
    assert ("svmm-migrate: destination refused nbd-server-add: Cannot find device='nosuch' nor node-name='nosuch'"
            in result.stderr), explain(result)
    assert "undone: destination nbd-server-stop" in result.stdout
    assert_nothing_left(source, destination)


def test_a_refused_incoming_address_cancels_the_mirror(peers, tmp_path):
    source = peers("qemu", "source")
    source.wait_rounds(1)
    destination = peers("qemu", "destination", incoming=True)
    result = migrate_tool(tmp_path, source.sock, destination.sock, "--incoming-uri", f"unix:{tmp_path}/no/such/dir.sock")
    assert result.returncode == 3, explain(result)
    assert "READY" in result.stdout, explain(result)
    assert (f"destination refused migrate-incoming: Failed to bind socket to {tmp_path}/no/such/dir.sock: "
            "No such file or directory") in result.stderr, explain(result)
    for undone in ("source mirror job 'svmm-migrate-mirror' cancelled", "source blockdev-del svmm-migrate-nbd",
                   "destination nbd-server-stop"):
        assert "undone: " + undone in result.stdout, explain(result)
    assert_nothing_left(source, destination)
    source.wait_rounds(2)


def test_a_destination_that_dies_during_the_mirror(peers, tmp_path):
    """The mirror (slowed to 4 MiB/s: 4 s for the disk) fails when the destination's NBD server
    goes; the tool ends with 4, removes the source's NBD node, and the source guest runs on."""
    source = peers("qemu", "source")
    source.wait_rounds(1)
    destination = peers("qemu", "destination", incoming=True)
    _, migrate, _, _ = tools()
    tool = subprocess.Popen([migrate, "--source", source.sock, "--destination", destination.sock, "--device", "d0",
                             "--target-node", "d0", "--nbd", f"unix:{tmp_path}/nbd.sock",
                             "--migrate-uri", f"unix:{tmp_path}/migrate.sock", "--mirror-speed", str(4 * MiB)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        lines = []
        for line in tool.stdout:
            lines.append(line)
            if line.startswith("source: blockdev-mirror"):
                break
        destination.kill()
        out, err = tool.communicate(timeout=120)
    finally:
        if tool.poll() is None:
            tool.kill()
    result = subprocess.CompletedProcess(tool.args, tool.returncode, "".join(lines) + out, err)
    assert result.returncode == 4, explain(result)
    assert "source: mirror job 'svmm-migrate-mirror' ended before READY" in result.stderr, explain(result)
    assert "READY:" not in result.stdout
    assert "undone: source blockdev-del svmm-migrate-nbd" in result.stdout, explain(result)
    assert "could not undo destination nbd-server-stop" in result.stderr, explain(result)
    names = [node["node-name"] for node in source.cmd("query-named-block-nodes")["return"]]
    assert "svmm-migrate-nbd" not in names and source.cmd("query-block-jobs") == {"return": []}
    assert source.status() == "running"
    source.wait_rounds(2)


def test_a_failed_migration_is_undone_and_the_source_runs_on(peers, tmp_path):
    source = peers("qemu", "source")
    source.wait_rounds(1)
    destination = peers("qemu", "destination", incoming=True)
    result = migrate_tool(tmp_path, source.sock, destination.sock,
                          "--incoming-uri", f"unix:{tmp_path}/listening.sock",
                          "--migrate-uri", f"unix:{tmp_path}/nobody.sock")
    assert result.returncode == 4, explain(result)
    assert (f"source: migration failed: Failed to connect to '{tmp_path}/nobody.sock': No such file or directory"
            in result.stderr), explain(result)
    assert "undone: source mirror job 'svmm-migrate-mirror' cancelled" in result.stdout, explain(result)
    assert_nothing_left(source, destination)
    source.wait_rounds(2)
