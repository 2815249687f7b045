"""Live migration between two real VMM processes (issue 12): RAM with the dirty log, device state,
QEMU's migration QMP. The ramdirty guest rewrites a RAM region page by page and checks every word
of the previous pass, the writer guest stamps and verifies every sector of its disk: both keep
verifying on the destination. Faults (destination killed, corrupt stream, cancel, RAM size
mismatch) leave the source running and its guest verifying. The MIGRATION event sequence, the
errors and the query-migrate shape are compared with two QEMU 7.2 processes doing the same."""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import RawQMP
from test_graph_io import binaries

MiB = 1 << 20


class Node:
    """One VMM process (svmm or QEMU 7.2) running the test guest, with QMP and a serial log."""

    def __init__(self, target: str, workdir: Path, name: str, mode: str, memory: str = "64M",
                 disk: Path = None, disk_format: str = "raw", extra: tuple = (), monitor: bool = True):
        svmm, guest, qemu = binaries()
        self.target = target
        self.name = name
        self.sock = str(workdir / f"{name}.qmp")
        self.serial_path = workdir / f"{name}.serial"
        self.stderr_path = workdir / f"{name}.stderr"
        args = [svmm] if target == "svmm" else [
            qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
        args += ["-m", memory, "-serial", f"file:{self.serial_path}", "-kernel", guest, "-append", f"mode={mode}",
                 "-qmp", f"unix:{self.sock},server=on,wait=off"]
        if disk is not None:
            args += ["-blockdev", f"driver=file,node-name=f0,filename={disk}",
                     "-blockdev", f"driver={disk_format},node-name=d0,file=f0",
                     "-device", "virtio-blk-device,drive=d0,id=vblk0"]
        args += list(extra)
        self.args = args
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        try:
            if monitor:  # (a VMM expected to exit at once is not asked anything)
                self._connect()
        except BaseException:
            self.kill()  # never leave a VMM behind when it did not come up
            raise

    def _connect(self):
        name, target = self.name, self.target
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"{name} ({target}) exited {self.proc.returncode}: {self.errors()}"
            assert time.monotonic() < deadline, f"{name}: no QMP socket"
            time.sleep(0.02)
        while True:  # QEMU creates the socket file a moment before it listens
            try:
                self.qmp = RawQMP(self.sock)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, f"{name}: QMP socket refuses connections"
                time.sleep(0.05)

    def cmd(self, name, **arguments):
        return self.qmp.cmd(name, **arguments)

    def ok(self, name, **arguments):
        reply = self.qmp.cmd(name, **arguments)
        assert "return" in reply, f"{self.name}: {name} {arguments}: {reply}"
        return reply["return"]

    def error(self, name, **arguments) -> str:
        reply = self.qmp.cmd(name, **arguments)
        assert "error" in reply, f"{self.name}: {name} {arguments} succeeded: {reply}"
        assert reply["error"]["class"] == "GenericError", reply
        return reply["error"]["desc"]

    def events(self, *names) -> list:
        """Events seen so far (in order), as (name, data) pairs."""
        return [(e["event"], e.get("data")) for e in self.qmp.events if not names or e["event"] in names]

    def status(self) -> str:
        return self.ok("query-status")["status"]

    def serial(self) -> str:
        return self.serial_path.read_text(errors="replace") if self.serial_path.exists() else ""

    def errors(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.stderr.close()


@pytest.fixture
def nodes(tmp_path):
    """nodes(target, name, mode, ...) -> Node; every process is killed at the end."""
    started = []

    def start(target, name, mode, **options):
        node = Node(target, tmp_path, name, mode, **options)
        started.append(node)
        return node

    yield start
    for node in started:
        node.kill()


def enable_events(*vms):
    for vm in vms:
        vm.ok("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])


def wait_migration(vm, statuses=("completed", "failed", "cancelled"), timeout=90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = vm.ok("query-migrate")
        if info.get("status") in statuses:
            return info
        assert time.monotonic() < deadline, f"{vm.name}: migration still {info} after {timeout} s\n{vm.errors()}"
        time.sleep(0.05)


def passes(text: str, word="RAMDIRTY") -> list:
    return [int(n) for n in re.findall(rf"{word} (?:pass|round) (\d+) ok", text)]


def wait_for_progress(vm, word="RAMDIRTY", beyond=0, count=3, timeout=60) -> list:
    """Waits until the guest's serial shows `count` passes above `beyond`; fails on a FAIL line."""
    deadline = time.monotonic() + timeout
    while True:
        text = vm.serial()
        assert "FAIL" not in text, f"{vm.name}: guest verification failed:\n{text[-2000:]}"
        done = [n for n in passes(text, word) if n > beyond]
        if len(done) >= count:
            return done
        assert time.monotonic() < deadline, f"{vm.name}: guest made no progress past {beyond}:\n{text[-1000:]}\n{vm.errors()}"
        time.sleep(0.1)


def last_pass(vm, word="RAMDIRTY") -> int:
    found = passes(vm.serial(), word)
    return found[-1] if found else 0


def migrate_pair(nodes, tmp_path, target="svmm", mode="ramdirty mb=8", disk=None, disk_format="raw",
                 dest_memory="64M", dest_extra=(), bandwidth=1 << 30):
    src = nodes(target, "src", mode, disk=disk, disk_format=disk_format)
    uri = f"unix:{tmp_path / 'mig.sock'}"
    dst = nodes(target, "dst", mode, memory=dest_memory, disk=disk, disk_format=disk_format,
                extra=("-incoming", "defer") + tuple(dest_extra))
    enable_events(src, dst)
    dst.ok("migrate-incoming", uri=uri)
    src.ok("migrate-set-parameters", **{"max-bandwidth": bandwidth})
    return src, dst, uri


# ---------------------------------------------------------------- RAM and shared storage

def test_ramdirty_guest_keeps_verifying_on_the_destination(nodes, tmp_path):
    src, dst, uri = migrate_pair(nodes, tmp_path)
    wait_for_progress(src, count=2)
    src.ok("migrate", uri=uri)
    info = wait_migration(src)
    assert info["status"] == "completed", info
    assert src.status() == "postmigrate"
    assert wait_migration(dst)["status"] == "completed"
    assert dst.status() == "running"
    last = last_pass(src)
    after = wait_for_progress(dst, beyond=last, count=5)
    # The line of the pass running at the switch-over may be split between the two serial logs
    # (begun on the source, ended on the destination), so the first whole line can be last + 2.
    assert last <= after[0] <= last + 2, f"destination resumed at pass {after[0]}, source stopped at {last}"
    ram = info["ram"]
    region_pages = 8 * MiB // 4096
    assert ram["total"] == 64 * MiB
    assert ram["transferred"] >= region_pages * 4096, ram   # every page the guest touches went at least once
    assert ram["normal"] >= region_pages and ram["duplicate"] > 0, ram
    assert ram["dirty-sync-count"] >= 2 and ram["remaining"] == 0, ram
    assert info["downtime"] > 0 and info["total-time"] >= info["downtime"], info
    assert ram["mbps"] > 0


def test_guest_first_touching_its_region_during_the_bulk_pass_keeps_verifying(nodes, tmp_path):
    """The bulk pass sends the pages that had no memory when it began as zero without reading
    them: the guest here starts (`cont`) after the migration did, at 4 MiB/s, so it gives its
    region memory while the bulk pass goes; every such write must reach the destination."""
    src = nodes("svmm", "src", "ramdirty mb=16", extra=("-S",))
    uri = f"unix:{tmp_path / 'mig.sock'}"
    dst = nodes("svmm", "dst", "ramdirty mb=16", extra=("-incoming", "defer"))
    dst.ok("migrate-incoming", uri=uri)
    src.ok("migrate-set-parameters", **{"max-bandwidth": 4 * MiB})
    src.ok("migrate", uri=uri)
    src.ok("cont")
    wait_for_progress(src, count=2)
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    info = wait_migration(src)
    assert info["status"] == "completed", info
    assert wait_migration(dst)["status"] == "completed"
    assert dst.status() == "running"
    wait_for_progress(dst, beyond=last_pass(src), count=3)


def test_writer_guest_on_shared_storage_keeps_verifying(nodes, tmp_path):
    disk = tmp_path / "shared.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    # The destination opens the image inactive: it starts while the source holds its write locks.
    src, dst, uri = migrate_pair(nodes, tmp_path, mode="writer size=8192", disk=disk, disk_format="qcow2")
    assert dst.status() == "inmigrate"
    wait_for_progress(src, word="WRITER", count=2)
    src.ok("migrate", uri=uri)
    assert wait_migration(src)["status"] == "completed"
    assert wait_migration(dst)["status"] == "completed"
    last = last_pass(src, "WRITER")
    wait_for_progress(dst, word="WRITER", beyond=last, count=3)
    # The source let go of the image: it cannot be resumed while the destination holds the locks.
    desc = src.error("cont")
    assert "Failed to get" in desc and "lock" in desc, desc
    dst.kill()
    src.kill()
    check = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# ---------------------------------------------------------------- exec: save and restore

def test_exec_save_of_a_paused_vm_restores_paused_until_cont(nodes, tmp_path):
    state = tmp_path / "vm.state"
    src = nodes("svmm", "src", "ramdirty mb=8")
    wait_for_progress(src, count=2)
    src.ok("stop")
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    src.ok("migrate", uri=f"exec:cat > {state}")
    assert wait_migration(src)["status"] == "completed"
    assert src.status() == "postmigrate"
    # Read now (the UART's last bytes may reach the file after `stop`); the pass being printed
    # when the VM stopped counts: its " ok" comes from the destination.
    stopped_at = max(int(n) for n in re.findall(r"RAMDIRTY pass (\d+)", src.serial()))
    src.kill()
    assert state.stat().st_size > 8 * MiB

    dst = nodes("svmm", "dst", "ramdirty mb=8", extra=("-incoming", f"exec:cat {state}"))
    assert wait_migration(dst)["status"] == "completed"
    assert dst.status() == "paused"   # QEMU restores the saved run state
    time.sleep(0.5)
    assert not passes(dst.serial()), "the restored VM ran before cont"
    dst.ok("cont")
    assert dst.status() == "running"
    resumed = wait_for_progress(dst, beyond=stopped_at - 1, count=3)
    # It continues where it stopped (not from pass 1); a line the UART held at the stop may be lost.
    assert resumed[0] <= stopped_at + 2, (resumed, stopped_at)


def test_exec_save_of_a_running_vm_restores_running(nodes, tmp_path):
    state = tmp_path / "vm.state"
    src = nodes("svmm", "src", "ramdirty mb=4")
    wait_for_progress(src, count=2)
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    src.ok("migrate", uri=f"exec:cat > {state}")
    assert wait_migration(src)["status"] == "completed"
    last = last_pass(src)
    src.kill()
    dst = nodes("svmm", "dst", "ramdirty mb=4", extra=("-incoming", f"exec:cat {state}"))
    assert wait_migration(dst)["status"] == "completed"
    assert dst.status() == "running"
    wait_for_progress(dst, beyond=last, count=3)


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_destination_killed_mid_stream_leaves_the_source_running(nodes, tmp_path, target):
    src, dst, uri = migrate_pair(nodes, tmp_path, target=target, mode="ramdirty mb=16", bandwidth=4 * MiB)
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=uri)
    wait_migration(src, statuses=("active",))
    time.sleep(1)
    dst.kill()
    info = wait_migration(src)
    assert info["status"] == "failed", info
    assert "error-desc" in info, info
    assert src.status() == "running"
    wait_for_progress(src, beyond=last_pass(src), count=3)
    statuses = [d["status"] for e, d in src.events("MIGRATION")]
    assert statuses == ["setup", "active", "failed"], statuses


def test_a_corrupt_saved_stream_is_refused_naming_the_section(nodes, tmp_path):
    state = tmp_path / "vm.state"
    src = nodes("svmm", "src", "ramdirty mb=8")
    wait_for_progress(src, count=1)
    src.ok("stop")
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    src.ok("migrate", uri=f"exec:cat > {state}")
    assert wait_migration(src)["status"] == "completed"
    data = bytearray(state.read_bytes())
    where = len(data) // 2
    data[where] ^= 0xFF
    data[where + 1] ^= 0x55
    (tmp_path / "bad.state").write_bytes(bytes(data))
    dst = nodes("svmm", "dst", "ramdirty mb=8", extra=("-incoming", f"exec:cat {tmp_path / 'bad.state'}"), monitor=False)
    assert dst.proc.wait(30) == 1
    message = dst.errors()
    assert "load of migration failed" in message, message
    assert re.search(r"section 'ram' \(instance 0\) at offset \d+: checksum mismatch", message), message


class CorruptingProxy(threading.Thread):
    """Forwards a migration from `listen` to `target`, flipping one byte at `offset`, and relays the
    destination's verdict back: the source learns that the destination refused."""

    def __init__(self, listen: str, target: str, offset: int):
        super().__init__(daemon=True)
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(listen)
        self.server.listen(1)
        self.target = target
        self.offset = offset

    def run(self):
        source, _ = self.server.accept()
        dest = socket.socket(socket.AF_UNIX)
        dest.connect(self.target)

        def back():
            try:
                while True:
                    data = dest.recv(65536)
                    if not data:
                        break
                    source.sendall(data)
            except OSError:
                pass
            source.shutdown(socket.SHUT_WR)

        threading.Thread(target=back, daemon=True).start()
        seen = 0
        try:
            while True:
                data = bytearray(source.recv(65536))
                if not data:
                    break
                if seen <= self.offset < seen + len(data):
                    data[self.offset - seen] ^= 0x20
                seen += len(data)
                dest.sendall(bytes(data))
            dest.shutdown(socket.SHUT_WR)
        except OSError:
            source.shutdown(socket.SHUT_RD)


def test_corruption_in_flight_is_refused_and_the_source_resumes(nodes, tmp_path):
    src, dst, uri = migrate_pair(nodes, tmp_path, mode="ramdirty mb=8")
    proxy_path = str(tmp_path / "proxy.sock")
    proxy = CorruptingProxy(proxy_path, uri[len("unix:"):], offset=3 * MiB + 17)
    proxy.start()
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=f"unix:{proxy_path}")
    info = wait_migration(src)
    assert info["status"] == "failed", info
    assert "checksum mismatch" in info["error-desc"] and "section 'ram'" in info["error-desc"], info
    assert dst.proc.wait(30) == 1
    assert "load of migration failed" in dst.errors()
    assert src.status() == "running"
    wait_for_progress(src, beyond=last_pass(src), count=3)


@pytest.mark.parametrize("target", ["svmm", "qemu"])
def test_migrate_cancel_mid_way(nodes, tmp_path, target):
    src, dst, uri = migrate_pair(nodes, tmp_path, target=target, mode="ramdirty mb=16", bandwidth=4 * MiB)
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=uri)
    wait_migration(src, statuses=("active",))
    time.sleep(0.5)
    src.ok("migrate_cancel")
    info = wait_migration(src)
    assert info == {"status": "cancelled"}, info
    assert src.status() == "running"
    statuses = [d["status"] for e, d in src.events("MIGRATION")]
    assert statuses == ["setup", "active", "cancelling", "cancelled"], statuses
    wait_for_progress(src, beyond=last_pass(src), count=3)
    assert dst.proc.wait(30) == 1   # the destination sees a broken stream and exits, as QEMU's


def test_a_destination_with_a_different_ram_size_is_refused(nodes, tmp_path):
    src, dst, uri = migrate_pair(nodes, tmp_path, dest_memory="128M")
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=uri)
    info = wait_migration(src)
    assert info["status"] == "failed", info
    assert "Length mismatch: ram: 0x4000000 in != 0x8000000" in info["error-desc"], info
    assert dst.proc.wait(30) == 1
    assert "Length mismatch" in dst.errors()
    assert src.status() == "running"
    wait_for_progress(src, beyond=last_pass(src), count=2)


def test_a_destination_with_a_different_device_set_is_refused(nodes, tmp_path):
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\0" * MiB)
    src = nodes("svmm", "src", "ramdirty mb=4")
    dst = nodes("svmm", "dst", "ramdirty mb=4", disk=disk, extra=("-incoming", "defer"))
    uri = f"unix:{tmp_path / 'mig.sock'}"
    dst.ok("migrate-incoming", uri=uri)
    src.ok("migrate", uri=uri)
    info = wait_migration(src)
    assert info["status"] == "failed", info
    assert "Make sure that your current VM setup matches your saved VM setup" in info["error-desc"], info
    assert src.status() == "running"


def test_the_bandwidth_limit_is_honoured(nodes, tmp_path):
    limit = 16 * MiB
    src, dst, uri = migrate_pair(nodes, tmp_path, mode="ramdirty mb=24", bandwidth=limit)
    wait_for_progress(src, count=1)
    src.ok("stop")   # nothing dirties RAM: the time is the bulk pass at the limit
    src.ok("migrate", uri=uri)
    info = wait_migration(src)
    assert info["status"] == "completed", info
    floor = info["ram"]["transferred"] / limit * 1000
    assert info["total-time"] >= 0.7 * floor, (info, floor)
    assert info["ram"]["transferred"] >= 24 * MiB


# ---------------------------------------------------------------- QMP: statuses and errors

def test_pause_before_switchover_waits_for_migrate_continue(nodes, tmp_path):
    src, dst, uri = migrate_pair(nodes, tmp_path, mode="ramdirty mb=4")
    src.ok("migrate-set-capabilities", capabilities=[{"capability": "pause-before-switchover", "state": True}])
    assert src.error("migrate-continue", state="pre-switchover") == "Migration not in expected state: none"
    src.ok("migrate", uri=uri)
    info = wait_migration(src, statuses=("pre-switchover",))
    assert src.status() == "finish-migrate"
    assert "expected-downtime" in info and "ram" in info
    assert src.error("migrate-continue", state="active") == "Migration not in expected state: pre-switchover"
    assert src.error("cont") == "Migration is not finalized yet"
    src.ok("migrate-continue", state="pre-switchover")
    assert wait_migration(src)["status"] == "completed"
    statuses = [d["status"] for e, d in src.events("MIGRATION")]
    assert statuses == ["setup", "active", "pre-switchover", "device", "completed"], statuses
    assert wait_migration(dst)["status"] == "completed"


def test_capabilities_and_parameters(nodes, tmp_path):
    vm = nodes("svmm", "vm", "ramdirty mb=1")
    caps = vm.ok("query-migrate-capabilities")
    assert [c["capability"] for c in caps][:6] == ["xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events"]
    assert all(c["state"] is False for c in caps)
    vm.ok("migrate-set-capabilities", capabilities=[{"capability": "late-block-activate", "state": True}])
    assert {"state": True, "capability": "late-block-activate"} in vm.ok("query-migrate-capabilities")
    assert vm.error("migrate-set-capabilities", capabilities=[{"capability": "nosuch", "state": True}]) == \
        "Parameter 'capability' does not accept value 'nosuch'"
    assert "not supported" in vm.error("migrate-set-capabilities", capabilities=[{"capability": "xbzrle", "state": True}])
    params = vm.ok("query-migrate-parameters")
    assert params["max-bandwidth"] == 128 * MiB and params["downtime-limit"] == 300
    vm.ok("migrate-set-parameters", **{"downtime-limit": 50, "max-bandwidth": 1 << 30})
    params = vm.ok("query-migrate-parameters")
    assert params["max-bandwidth"] == 1 << 30 and params["downtime-limit"] == 50
    assert vm.error("migrate-set-parameters", **{"downtime-limit": 3000000}) == \
        "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"
    assert vm.ok("query-migrate") == {}


def qmp_errors_flow(nodes, tmp_path, target) -> dict:
    """The same wrong requests, in the same states, as answered by one VMM pair."""
    src = nodes(target, f"{target}-src", "ramdirty mb=4")
    dst = nodes(target, f"{target}-dst", "ramdirty mb=4", extra=("-incoming", "defer"))
    uri = f"unix:{tmp_path / (target + '-mig.sock')}"
    out = {}
    out["migrate-incoming without defer"] = src.error("migrate-incoming", uri=uri)
    out["migrate on the destination"] = dst.error("migrate", uri=uri)
    out["query-migrate before"] = (src.ok("query-migrate"), dst.ok("query-migrate"))
    dst.ok("migrate-incoming", uri=uri)
    out["migrate-incoming twice"] = dst.error("migrate-incoming", uri=uri)
    out["bad uri"] = src.error("migrate", uri="foo:bar")
    out["query-migrate after bad uri"] = src.ok("query-migrate")
    out["postcopy"] = src.error("migrate-start-postcopy")
    src.ok("migrate-set-parameters", **{"max-bandwidth": 4 * MiB})
    src.ok("migrate", uri=uri)
    out["second migrate"] = src.error("migrate", uri=uri)
    out["capabilities while migrating"] = src.error(
        "migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    src.ok("migrate_cancel")
    wait_migration(src)
    return out


def test_errors_match_qemu(nodes, tmp_path):
    svmm = qmp_errors_flow(nodes, tmp_path, "svmm")
    qemu = qmp_errors_flow(nodes, tmp_path, "qemu")
    for key in qemu:
        assert svmm[key] == qemu[key], f"{key}: svmm {svmm[key]!r}, QEMU {qemu[key]!r}"


def shape(value):
    """Keys (recursively), not values: what query-migrate shows in a state."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__ if not isinstance(value, (int, float)) or isinstance(value, bool) else "number"


def event_flow(nodes, tmp_path, target) -> dict:
    """A live migration of the running ramdirty guest with `events` on both sides: what each side
    reports, in order (MIGRATION statuses, STOP and RESUME), and the query-migrate shapes."""
    src = nodes(target, f"{target}-src", "ramdirty mb=4")
    dst = nodes(target, f"{target}-dst", "ramdirty mb=4", extra=("-incoming", "defer"))
    uri = f"unix:{tmp_path / (target + '-mig.sock')}"
    enable_events(src, dst)
    dst.ok("migrate-incoming", uri=uri)
    listening = dst.ok("query-migrate")
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=uri)
    done = wait_migration(src)
    assert done["status"] == "completed", done
    dst_done = wait_migration(dst)
    src.ok("query-status")
    dst.ok("query-status")

    def sequence(vm):
        return [(e, d["status"]) if e == "MIGRATION" else (e,) for e, d in vm.events("MIGRATION", "STOP", "RESUME")]

    return {"source events": sequence(src), "destination events": sequence(dst),
            "source completed shape": shape(done), "destination completed": dst_done,
            "destination listening shape": shape(listening),
            "run states": (src.status(), dst.status())}


def test_migration_events_and_shapes_match_qemu(nodes, tmp_path):
    svmm = event_flow(nodes, tmp_path, "svmm")
    qemu = event_flow(nodes, tmp_path, "qemu")
    for key in qemu:
        assert svmm[key] == qemu[key], f"{key}:\n svmm {svmm[key]}\n QEMU {qemu[key]}"


def test_tcp_transport(nodes, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = nodes("svmm", "src", "ramdirty mb=4")
    dst = nodes("svmm", "dst", "ramdirty mb=4", extra=("-incoming", f"tcp:127.0.0.1:{port}"))
    listening = dst.ok("query-migrate")
    assert listening["socket-address"][0]["type"] == "inet" and listening["socket-address"][0]["port"] == str(port), listening
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=f"tcp:127.0.0.1:{port}")
    assert wait_migration(src)["status"] == "completed"
    assert wait_migration(dst)["status"] == "completed"
    wait_for_progress(dst, beyond=last_pass(src), count=3)


@pytest.mark.parametrize("source_host", ["127.0.0.1", "[::1]"], ids=["ipv4", "ipv6"])
def test_tcp_without_a_host_listens_on_both_families(nodes, tmp_path, source_host):
    """`-incoming tcp::PORT` listens on 0.0.0.0 and on :: (one listener per address, as QEMU's
    qio_net_listener_open_sync); a source connecting over either family migrates, and the
    listeners show as QEMU shows them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = nodes("svmm", "src", "ramdirty mb=4")
    dst = nodes("svmm", "dst", "ramdirty mb=4", extra=("-incoming", f"tcp::{port}"))
    listening = dst.ok("query-migrate")["socket-address"]
    assert listening == [{"port": str(port), "ipv6": True, "host": "::", "type": "inet"},
                         {"port": str(port), "ipv4": True, "host": "0.0.0.0", "type": "inet"}], listening
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    wait_for_progress(src, count=1)
    src.ok("migrate", uri=f"tcp:{source_host}:{port}")
    assert wait_migration(src)["status"] == "completed"
    assert wait_migration(dst)["status"] == "completed"
    wait_for_progress(dst, beyond=last_pass(src), count=2)


def lock_probe(disk) -> bool:
    """Whether another process could open the image for writing now (no writes are made)."""
    probe = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "quit", str(disk)], capture_output=True, text=True)
    return probe.returncode == 0 and "lock" not in probe.stderr


def late_activation_flow(nodes, tmp_path, target, late: bool) -> dict:
    disk = tmp_path / f"{target}-{late}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    uri = f"unix:{tmp_path / f'{target}-{late}.sock'}"
    src = nodes(target, f"{target}-src-{late}", "writer size=4096", disk=disk, disk_format="qcow2")
    dst = nodes(target, f"{target}-dst-{late}", "writer size=4096", disk=disk, disk_format="qcow2",
                extra=("-incoming", "defer", "-S"))
    enable_events(src, dst)
    if late:
        dst.ok("migrate-set-capabilities", capabilities=[{"capability": "late-block-activate", "state": True}])
    dst.ok("migrate-incoming", uri=uri)
    src.ok("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    wait_for_progress(src, word="WRITER", count=1)
    out = {"probe while the source runs": lock_probe(disk)}
    src.ok("migrate", uri=uri)
    assert wait_migration(src)["status"] == "completed"
    assert wait_migration(dst)["status"] == "completed"
    out["destination after"] = dst.status()
    out["probe after migration"] = lock_probe(disk)
    dst.ok("cont")
    out["probe after cont"] = lock_probe(disk)
    wait_for_progress(dst, word="WRITER", beyond=last_pass(src, "WRITER"), count=2)
    out["destination events"] = [(e, d["status"]) if e == "MIGRATION" else (e,) for e, d in dst.events("MIGRATION", "RESUME", "STOP")]
    return out


@pytest.mark.parametrize("late", [False, True], ids=["activate-at-end", "late-block-activate"])
def test_a_destination_with_S_stays_paused_and_activates_as_qemu(nodes, tmp_path, late):
    svmm = late_activation_flow(nodes, tmp_path, "svmm", late)
    qemu = late_activation_flow(nodes, tmp_path, "qemu", late)
    assert svmm == qemu, f"svmm {svmm}\nQEMU {qemu}"
    assert svmm["destination after"] == "paused" and svmm["probe after cont"] is False
    assert svmm["probe after migration"] is late
