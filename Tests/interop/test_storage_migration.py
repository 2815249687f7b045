"""Storage migration between two real VMM processes, step by step over QMP (issue 13).

iotest 194's flow, each step sent by the test itself: the destination exports its empty disk
writable over NBD during `inmigrate`, the source mirrors its disk there (`blockdev-mirror
sync=full`), READY, migration, then the export is stopped and the destination resumes. The
writer guest (`mode=writer`) stamps and verifies every sector throughout; after a switch-over
it keeps verifying on the destination, and disks are compared with `qemu-img compare`.

Covered here (test_svmm_migrate.py covers the same flow driven by svmm-migrate):
- the autostart variant (destination without `-S`): it stays `paused` after `completed`;
- two network namespaces joined by a veth pair: migration and NBD over TCP between "hosts";
- faults: the NBD server gone during the mirror, the destination gone after READY, a `cont`
  sent while the stream is still loading;
- the switch-over waiting for a READY mirror that lags behind the guest's writes.
QEMU 7.2 runs the same steps where its behaviour is the reference; where svmm deliberately
differs (DECISIONS.md §2) the test says what QEMU does instead.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP
from test_graph_io import binaries

MiB = 1 << 20
CONFLICT = re.compile(r"Permission conflict on node 'd0': permissions 'write' are both required by an unnamed "
                      r"block device \(uses node 'd0' as 'root' child\) and unshared by block device 'vblk0' "
                      r"\(uses node 'd0' as 'root' child\)\.")


class Host:
    """One VMM process (svmm or QEMU 7.2) running the tiny guest on a raw disk (node d0, device
    vblk0), with one QMP connection kept open for the events, optionally inside a network
    namespace (`netns`)."""

    def __init__(self, target: str, workdir: Path, name: str, mode: str = "writer", disk_size: int = 16 * MiB,
                 incoming: bool = False, paused: bool = False, memory: str = "64M", netns: str = ""):
        svmm, guest, qemu = binaries()
        self.target, self.name = target, name
        self.disk = workdir / f"{name}.raw"
        with open(self.disk, "wb") as disk:
            disk.truncate(disk_size)
        self.sock = str(workdir / f"{name}.qmp")
        self.serial_path = workdir / f"{name}.serial"
        self.stderr_path = workdir / f"{name}.stderr"
        args = ["ip", "netns", "exec", netns] if netns else []
        args += [svmm] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", memory, "-serial", f"file:{self.serial_path}", "-kernel", guest, "-append", f"mode={mode}",
                 "-qmp", f"unix:{self.sock},server=on,wait=off",
                 "-blockdev", f"driver=file,node-name=d0,filename={self.disk}",
                 "-device", "virtio-blk-device,drive=d0,id=vblk0"]
        if incoming:
            args += ["-incoming", "defer"]
        if paused:
            args.append("-S")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        try:
            self._connect()
        except BaseException:
            self.kill()
            raise

    def _connect(self):
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"{self.name} ({self.target}) exited: {self.errors()}"
            assert time.monotonic() < deadline, f"{self.name}: no QMP socket"
            time.sleep(0.02)
        self.qmp = RawQMP(self.sock)
        self.history = []  # events already consumed by event()

    # -- QMP

    def cmd(self, name: str, /, **arguments) -> dict:
        # (RawQMP.cmd would take an argument called `name` for its own)
        return self.qmp.request({"execute": name, "arguments": arguments})

    def ok(self, name: str, /, **arguments):
        reply = self.cmd(name, **arguments)
        assert "return" in reply, f"{self.name} ({self.target}): {name} {arguments}: {reply}\n{self.errors()}"
        return reply["return"]

    def error(self, name: str, /, **arguments) -> str:
        reply = self.cmd(name, **arguments)
        assert "error" in reply, f"{self.name} ({self.target}): {name} {arguments} succeeded: {reply}"
        assert reply["error"]["class"] == "GenericError", reply
        return reply["error"]["desc"]

    def status(self) -> str:
        return self.ok("query-status")["status"]

    def event(self, name: str, timeout: float = 60, **data) -> dict:
        """The first event `name` whose data contains `data`, seen before or arriving within
        `timeout` s; it and every event before it are consumed (kept in `history`)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.qmp.events):
                if event["event"] == name and all(event.get("data", {}).get(k) == v for k, v in data.items()):
                    self.history += self.qmp.events[:index + 1]
                    del self.qmp.events[:index + 1]
                    return event
            left = deadline - time.monotonic()
            assert left > 0, f"{self.name} ({self.target}): no {name} {data} in {timeout} s; " \
                             f"events {self.qmp.events}\n{self.errors()}"
            self.qmp.sock.settimeout(left)
            try:
                self.qmp.events.append(self.qmp.read())
            except (socket.timeout, TimeoutError):
                pass
            finally:
                self.qmp.sock.settimeout(60)

    def events_seen(self, name: str) -> list:
        return [event for event in self.history + self.qmp.events if event["event"] == name]

    # -- the guest

    def serial(self) -> str:
        return self.serial_path.read_text(errors="replace") if self.serial_path.exists() else ""

    def errors(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def rounds(self) -> int:
        return len(re.findall(r"WRITER round \d+ ok", self.serial()))

    def wait_rounds(self, count: int, timeout: float = 120):
        """`count` more verified writer rounds in the serial log, and no failure."""
        deadline = time.monotonic() + timeout
        goal = self.rounds() + count
        while self.rounds() < goal:
            self.assert_verifying()
            assert self.proc.poll() is None, f"{self.name} exited {self.proc.returncode}: {self.errors()}"
            assert time.monotonic() < deadline, f"{self.name}: no {count} writer rounds in {timeout} s:\n" \
                                                f"{self.serial()[-2000:]}\n{self.errors()}"
            time.sleep(0.05)
        self.assert_verifying()

    def assert_verifying(self):
        assert "FAIL" not in self.serial(), f"{self.name}: the guest's verification failed:\n{self.serial()[-2000:]}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.stderr.close()


@pytest.fixture
def hosts(tmp_path):
    """hosts(target, name, **options) -> Host; every process is killed at the end."""
    started = []

    def start(target: str, name: str, **options) -> Host:
        host = Host(target, tmp_path, name, **options)
        started.append(host)
        return host

    yield start
    for host in started:
        host.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unix(path) -> dict:
    return {"type": "unix", "path": str(path)}


def inet(host: str, port: int) -> dict:
    return {"type": "inet", "host": host, "port": str(port)}


def enable_events(*hosts_):
    for host in hosts_:
        host.ok("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])


def export_target(destination: Host, address: dict):
    """The destination's empty disk exported writable during inmigrate (iotest 194)."""
    destination.ok("nbd-server-start", addr={"type": address["type"], "data": {
        k: v for k, v in address.items() if k != "type"}})
    destination.ok("nbd-server-add", device="d0", writable=True)


def start_mirror(source: Host, address: dict, speed: int = 0):
    """An NBD node on the destination's export and `blockdev-mirror sync=full` onto it."""
    source.ok("blockdev-add", **{"driver": "nbd", "node-name": "target", "export": "d0", "server": address})
    options = {"speed": speed} if speed else {}
    source.ok("blockdev-mirror", **{"job-id": "mirror0", "device": "d0", "target": "target", "sync": "full"}, **options)


def wait_ready(source: Host, timeout: float = 120):
    source.event("BLOCK_JOB_READY", timeout=timeout, device="mirror0")


def migrate(source: Host, destination: Host, uri: str, incoming_uri: str = ""):
    enable_events(source, destination)
    destination.ok("migrate-incoming", uri=incoming_uri or uri)
    source.ok("migrate", uri=uri)


def slow_stream(source: Host):
    """The guest's RAM is mostly zero pages (sent as markers): at 256 KiB/s its ~1-2 MiB of data
    take seconds, and a 5 s downtime-limit lets the pages the writer keeps dirtying converge."""
    source.ok("migrate-set-parameters", **{"max-bandwidth": 256 * 1024, "downtime-limit": 5000})


def wait_migration(host: Host, timeout: float = 120) -> str:
    """The final status of `host`'s migration (MIGRATION events)."""
    deadline = time.monotonic() + timeout
    while True:
        event = host.event("MIGRATION", timeout=max(1, deadline - time.monotonic()))
        if event["data"]["status"] in ("completed", "failed", "cancelled"):
            return event["data"]["status"]


def end_mirror(source: Host):
    """block-job-cancel after READY: the job ends without switching, the target a consistent copy."""
    source.ok("block-job-cancel", device="mirror0")
    completed = source.event("BLOCK_JOB_COMPLETED", device="mirror0")
    assert "error" not in completed["data"], completed


def compare(first: Path, second: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", "compare", "-U", "-f", "raw", "-F", "raw", str(first), str(second)],
                          capture_output=True, text=True, timeout=120)


def assert_identical(first: Path, second: Path):
    result = compare(first, second)
    assert result.returncode == 0 and "Images are identical" in result.stdout, result.stdout + result.stderr


def device_edge(host: Host) -> dict:
    graph = host.ok("x-debug-query-block-graph")
    ids = {node["id"]: node for node in graph["nodes"]}
    return next(edge for edge in graph["edges"] if ids[edge["parent"]]["name"] == "vblk0" and edge["name"] == "root")


def assert_permissions_in_force(destination: Host):
    edge = device_edge(destination)
    assert "write" in edge["perm"] and "write" not in edge["shared-perm"], edge
    backend = next(b for b in destination.ok("x-svmm-query-backends") if b["name"] == "vblk0")
    assert backend["applied"] is True, backend


def pair(hosts, target: str, paused: bool, disk_size: int = 16 * MiB):
    source = hosts(target, "source", disk_size=disk_size)
    source.wait_rounds(1)
    destination = hosts(target, "destination", incoming=True, paused=paused, disk_size=disk_size)
    assert destination.status() == "inmigrate"
    return source, destination


# -- 1. autostart ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_autostart_destination_stays_paused_until_the_export_is_stopped(hosts, tmp_path, target):
    """Without -S the destination would start when the stream is in. svmm applies the device's
    recorded permissions first, finds the export's WRITE, stays `paused` with the conflict on
    stderr (the migration still `completed` on both sides, as QEMU reports a failed activation
    after the stream), and runs after nbd-server-stop + cont. QEMU 7.2 starts the destination
    at once with the export still writable and prints the same conflict (DECISIONS.md §2)."""
    source, destination = pair(hosts, target, paused=False)
    nbd = unix(tmp_path / "nbd.sock")
    export_target(destination, nbd)
    start_mirror(source, nbd)
    wait_ready(source)
    migrate(source, destination, f"unix:{tmp_path}/migrate.sock")
    assert wait_migration(source) == "completed"
    assert wait_migration(destination) == "completed"
    assert source.status() == "postmigrate"
    end_mirror(source)
    deadline = time.monotonic() + 10
    while not CONFLICT.search(destination.errors()):
        assert time.monotonic() < deadline, f"no conflict on the destination's stderr:\n{destination.errors()}"
        time.sleep(0.05)
    if target == "qemu":
        assert destination.status() == "running"
        assert destination.events_seen("RESUME"), destination.qmp.events
        assert "write" in device_edge(destination)["shared-perm"]
        destination.ok("nbd-server-stop")
        destination.wait_rounds(2)
        return
    assert destination.status() == "paused"
    assert not destination.events_seen("RESUME"), destination.qmp.events
    rounds = destination.rounds()
    # Paused: the guest writes nothing, so the disks are still equal.
    assert_identical(source.disk, destination.disk)
    assert CONFLICT.fullmatch(destination.error("cont")), destination.errors()
    assert destination.status() == "paused"
    destination.ok("nbd-server-stop")
    destination.event("BLOCK_EXPORT_DELETED", id="d0", timeout=10)
    assert destination.ok("cont") == {}
    destination.event("RESUME")
    assert destination.status() == "running"
    assert_permissions_in_force(destination)
    destination.wait_rounds(3)
    assert destination.rounds() > rounds
    # A new writable export is refused again: the device's permissions are in force.
    destination.ok("nbd-server-start", addr={"type": "unix", "data": {"path": str(tmp_path / "again.sock")}})
    assert CONFLICT.fullmatch(destination.error("nbd-server-add", device="d0", writable=True))
    source.assert_verifying()


# -- 2. two "hosts": network namespaces joined by a veth pair --------------------------------

class VethPair:
    """Two network namespaces joined by a veth pair, 10.199.0.1/24 and 10.199.0.2/24, made
    with `ip` and removed at the end; fails loudly when they cannot be made."""

    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.namespaces = [f"svmm-h{tag}-a", f"svmm-h{tag}-b"]
        self.links = [f"sv{tag}a", f"sv{tag}b"]
        self.addresses = ["10.199.0.1", "10.199.0.2"]
        self.made = []
        for namespace in self.namespaces:
            self._ip("netns", "add", namespace)
            self.made.append(namespace)
        self._ip("link", "add", self.links[0], "netns", self.namespaces[0],
                 "type", "veth", "peer", "name", self.links[1], "netns", self.namespaces[1])
        for namespace, link, address in zip(self.namespaces, self.links, self.addresses):
            self._ip("-n", namespace, "addr", "add", f"{address}/24", "dev", link)
            self._ip("-n", namespace, "link", "set", link, "up")
            self._ip("-n", namespace, "link", "set", "lo", "up")

    @staticmethod
    def _ip(*args):
        result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            pytest.fail(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()} "
                        "(these tests need root and iproute2: scripts/install-deps.sh)")

    def bytes_sent(self, side: int) -> int:
        """TX bytes of side's veth end (what left that namespace towards the other)."""
        result = subprocess.run(["ip", "-n", self.namespaces[side], "-j", "-s", "link", "show", self.links[side]],
                                capture_output=True, text=True, timeout=30, check=True)
        return json.loads(result.stdout)[0]["stats64"]["tx"]["bytes"]

    def isolated(self) -> bool:
        """Each namespace has only its loopback and its veth end, and routes only the pair's
        subnet: nothing it sends can go anywhere but the other namespace."""
        for namespace, link in zip(self.namespaces, self.links):
            links = json.loads(subprocess.run(["ip", "-n", namespace, "-j", "link", "show"], capture_output=True,
                                              text=True, timeout=30, check=True).stdout)
            routes = json.loads(subprocess.run(["ip", "-n", namespace, "-j", "route", "show"], capture_output=True,
                                               text=True, timeout=30, check=True).stdout)
            if sorted(entry["ifname"] for entry in links) != sorted(["lo", link]):
                return False
            if [(route["dst"], route["dev"]) for route in routes] != [("10.199.0.0/24", link)]:
                return False
        return True

    def remove(self):
        for namespace in reversed(self.made):  # deleting a namespace deletes its veth end (and the pair)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


@pytest.fixture
def veth():
    if shutil.which("ip") is None:
        pytest.fail("ip (iproute2) is missing: run scripts/install-deps.sh")
    pair_ = VethPair()
    try:
        yield pair_
    finally:
        pair_.remove()


@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_storage_migration_between_two_network_namespaces(hosts, tmp_path, veth, target):
    """The source in one namespace, the destination in the other; NBD and the migration stream
    over TCP between their veth addresses (QMP stays on unix sockets in the shared file system).
    The namespaces route only the pair's subnet, and the whole disk crosses the veth pair."""
    source_ns, destination_ns = veth.namespaces
    there = veth.addresses[1]
    nbd_port, migrate_port = 10809, 4444
    source = hosts(target, "source", netns=source_ns)
    source.wait_rounds(1)
    destination = hosts(target, "destination", incoming=True, paused=True, netns=destination_ns)
    sent_before = veth.bytes_sent(0)
    export_target(destination, inet(there, nbd_port))
    assert veth.isolated()
    start_mirror(source, inet(there, nbd_port))
    wait_ready(source)
    migrate(source, destination, f"tcp:{there}:{migrate_port}")
    assert wait_migration(source) == "completed"
    assert wait_migration(destination) == "completed"
    assert destination.ok("query-migrate")["status"] == "completed"
    assert veth.bytes_sent(0) - sent_before >= 16 * MiB, "the disk did not cross the veth pair"
    assert_identical(source.disk, destination.disk)
    end_mirror(source)
    if target == "svmm":
        assert CONFLICT.fullmatch(destination.error("cont"))
    destination.ok("nbd-server-stop")
    destination.event("BLOCK_EXPORT_DELETED", id="d0", timeout=10)
    assert destination.ok("cont") == {}
    if target == "svmm":
        assert_permissions_in_force(destination)
    destination.wait_rounds(3)
    assert source.status() == "postmigrate"


# -- 3. faults ---------------------------------------------------------------------------------

def assert_runs_on_its_own_disk(source: Host):
    """The source's guest device reads d0 (the file), no job and no mirror filter left, and the
    guest keeps verifying."""
    assert source.status() == "running"
    assert source.ok("query-block-jobs") == []
    device = next(b for b in source.ok("query-block") if b.get("qdev") in ("vblk0", "/machine/peripheral/vblk0/virtio-backend"))
    assert device["inserted"]["node-name"] == "d0", device
    source.wait_rounds(2)


def failed_job_error(source: Host) -> str:
    completed = source.event("BLOCK_JOB_COMPLETED", timeout=120, device="mirror0")
    # The same for svmm and QEMU 7.2: EIO from the NBD client, and the job aborts.
    assert completed["data"]["error"] == "Input/output error", completed
    statuses = [event["data"]["status"] for event in source.events_seen("JOB_STATUS_CHANGE")]
    assert statuses[-1] == "aborting" and "concluded" not in statuses, statuses
    return completed["data"]["error"]


@pytest.mark.parametrize("fault", ["nbd-server-stop", "kill"])
@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_the_nbd_server_going_during_the_mirror_fails_the_job_not_the_guest(hosts, tmp_path, target, fault):
    """The mirror (1 MiB/s on a 64 MiB disk; a pass sends 16 MiB at most) loses its target before READY: the job
    ends with BLOCK_JOB_COMPLETED carrying an error, never READY; the source guest runs on."""
    source, destination = pair(hosts, target, paused=True, disk_size=64 * MiB)
    nbd = unix(tmp_path / "nbd.sock")
    export_target(destination, nbd)
    start_mirror(source, nbd, speed=1 * MiB)
    time.sleep(1)  # copying
    job = source.ok("query-block-jobs")[0]
    assert job["ready"] is False and job["offset"] > 0, job
    if fault == "kill":
        destination.kill()
    else:
        destination.ok("nbd-server-stop")
    error = failed_job_error(source)
    assert not source.events_seen("BLOCK_JOB_READY")
    assert error, error
    source.ok("blockdev-del", **{"node-name": "target"})
    assert_runs_on_its_own_disk(source)
    if fault == "nbd-server-stop":
        assert destination.status() == "inmigrate"


@pytest.mark.parametrize("when", ["before-migrate", "during-migration"])
@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_a_destination_dying_after_ready_leaves_the_source_on_its_own_disk(hosts, tmp_path, target, when):
    """READY, then the destination process is killed (before `migrate`, or while the RAM is
    streaming slowly): the mirror fails, a migration under way fails, and the source's
    guest runs on with its device on its own disk."""
    source, destination = pair(hosts, target, paused=True)
    nbd = unix(tmp_path / "nbd.sock")
    export_target(destination, nbd)
    start_mirror(source, nbd)
    wait_ready(source)
    if when == "during-migration":
        slow_stream(source)
        migrate(source, destination, f"unix:{tmp_path}/migrate.sock")
        source.event("MIGRATION", status="active")
        time.sleep(0.5)
        assert source.ok("query-migrate")["status"] == "active"
    destination.kill()
    source.wait_rounds(1)  # the guest writes: the mirror has something to copy to the dead target
    failed_job_error(source)
    if when == "during-migration":
        deadline = time.monotonic() + 30
        while (info := source.ok("query-migrate"))["status"] not in ("completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, (info, source.errors())
            time.sleep(0.1)
        assert info["status"] == "failed", info
        assert not source.events_seen("STOP") or source.events_seen("RESUME")
    source.ok("blockdev-del", **{"node-name": "target"})
    assert_runs_on_its_own_disk(source)


@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_cont_while_the_stream_is_loading_fails_and_arms_nothing(hosts, tmp_path, target):
    """A destination with -S and the writable export in place gets `cont` while the RAM is
    still streaming (slowly). svmm, as the seed's qmp_cont, applies the device's
    recorded permissions before it arms autostart: `cont` fails with the conflict, and when the
    stream is in the VM stays paused and nothing tries to start it (no conflict on stderr, no
    RESUME). QEMU 7.2 accepts that `cont` and starts the VM with the export still writable."""
    source, destination = pair(hosts, target, paused=True)
    nbd = unix(tmp_path / "nbd.sock")
    export_target(destination, nbd)
    start_mirror(source, nbd)
    wait_ready(source)
    slow_stream(source)
    migrate(source, destination, f"unix:{tmp_path}/migrate.sock")
    destination.event("MIGRATION", status="active")
    time.sleep(0.5)
    assert destination.ok("query-migrate")["status"] == "active" and destination.status() == "inmigrate"
    reply = destination.cmd("cont")
    assert wait_migration(source) == "completed"
    assert wait_migration(destination) == "completed"
    end_mirror(source)
    if target == "qemu":
        assert reply == {"return": {}}, reply
        assert destination.status() == "running"
        assert destination.events_seen("RESUME"), destination.history
        # It prints the conflict when its deferred activation fails, and runs on regardless.
        assert CONFLICT.search(destination.errors()), destination.errors()
        destination.ok("nbd-server-stop")
        destination.wait_rounds(2)
        return
    assert reply["error"]["class"] == "GenericError" and CONFLICT.fullmatch(reply["error"]["desc"]), reply
    time.sleep(1)  # (time for a wrongly armed start to show)
    assert destination.status() == "paused"
    assert not destination.events_seen("RESUME"), destination.qmp.events
    assert not CONFLICT.search(destination.errors()), destination.errors()
    assert_identical(source.disk, destination.disk)
    destination.ok("nbd-server-stop")
    destination.event("BLOCK_EXPORT_DELETED", id="d0", timeout=10)
    assert destination.ok("cont") == {}
    assert_permissions_in_force(destination)
    destination.wait_rounds(3)


# -- 4. the switch-over waits for READY mirrors ------------------------------------------------

def test_the_switch_over_waits_for_a_lagging_mirror(hosts, tmp_path):
    """After READY the mirror is held to 2 MiB/s while the writer guest rewrites its 32 MiB disk
    far faster, so at `migrate` many MiB are dirty on the source and not on the target. The
    switch-over (JobRegistry.whenMirrorsSynced, SenderSession.switchOver) waits with the guest
    stopped until the mirror has copied them, then inactivates: the disks are identical at the
    switch-over, and the guest verifies every sector on the destination. Without the wait the
    target would miss those writes (QEMU inactivates at once; a deliberate difference)."""
    size = 32 * MiB
    source, destination = pair(hosts, "svmm", paused=True, disk_size=size)
    nbd = unix(tmp_path / "nbd.sock")
    export_target(destination, nbd)
    start_mirror(source, nbd)
    wait_ready(source)
    source.ok("block-job-set-speed", device="mirror0", speed=2 * MiB)
    source.wait_rounds(2)
    job = source.ok("query-block-jobs")[0]
    behind = job["len"] - job["offset"]
    assert behind >= 4 * MiB, f"the mirror is not behind the guest: {job}"
    migrate(source, destination, f"unix:{tmp_path}/migrate.sock")
    assert wait_migration(source, timeout=180) == "completed"
    assert wait_migration(destination) == "completed"
    job = source.ok("query-block-jobs")[0]
    assert job["offset"] == job["len"], job
    assert_identical(source.disk, destination.disk)
    end_mirror(source)
    destination.ok("nbd-server-stop")
    destination.event("BLOCK_EXPORT_DELETED", id="d0", timeout=10)
    assert destination.ok("cont") == {}
    destination.wait_rounds(2)
    source.assert_verifying()


# -- the export's end after nbd-server-stop ----------------------------------------------------

@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_nbd_server_stop_deletes_every_export(hosts, tmp_path, target):
    """nbd-server-stop ends each export with BLOCK_EXPORT_DELETED, also while a client is
    connected (the storage-migration source's NBD node), and their ids are free again: the flow's
    last step re-exports the disk under the same name (svmm's server object used to go first and
    the event and the id's release never came)."""
    host = hosts(target, "host", mode="idle")
    socket_path = tmp_path / "nbd.sock"
    host.ok("nbd-server-start", addr={"type": "unix", "data": {"path": str(socket_path)}})
    host.ok("nbd-server-add", device="d0")
    host.ok("block-export-add", type="nbd", id="second", name="second", **{"node-name": "d0"})
    client = subprocess.Popen(["qemu-io", "-r", "-f", "raw", f"nbd+unix:///d0?socket={socket_path}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client.stdin.write(b"read 0 4k\n")
        client.stdin.flush()
        assert b"read 4096/4096 bytes" in client.stdout.readline()
        host.ok("nbd-server-stop")
        deleted = {host.event("BLOCK_EXPORT_DELETED", timeout=10)["data"]["id"] for _ in range(2)}
        assert deleted == {"d0", "second"}
        assert host.ok("query-block-exports") == []
    finally:
        client.kill()
        client.wait()
    host.ok("nbd-server-start", addr={"type": "unix", "data": {"path": str(tmp_path / "again.sock")}})
    host.ok("nbd-server-add", device="d0")
    host.ok("block-export-add", type="nbd", id="second", name="second", **{"node-name": "d0"})
