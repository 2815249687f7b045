"""The mirror block job (blockdev-mirror, drive-mirror, the job commands), run against svmm and
QEMU 7.2 side by side with the writer guest writing and verifying throughout: job event sequences,
what the device reads from after the job, what the images hold (qemu-img compare / check), and
iotest 155's blockdev-snapshot onto a mirror target while the job is pending. Each scenario returns
what a user can see; the two VMMs' outcomes must be equal, and svmm's must be the expected one."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP
from test_graph_io import Guest as GraphIoGuest, qemu_img

MiB = 1 << 20
DISK = 16 * MiB
TARGETS = ["svmm", "qemu"]


class Guest(GraphIoGuest):
    """test_graph_io's Guest, connecting again if the VMM made its socket but did not listen yet."""

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except ConnectionRefusedError:
            time.sleep(0.3)
            self.qmp = RawQMP(self.sock)


# --------------------------------------------------------------------------------------------
# QMP helpers on the Guest's RawQMP

def wait_event(guest: Guest, name: str, timeout: float = 90) -> dict:
    """The next event `name` (earlier ones stay recorded in guest.qmp.events for sequences)."""
    qmp = guest.qmp
    seen = getattr(guest, "_consumed", 0)
    deadline = time.monotonic() + timeout
    while True:
        for index in range(seen, len(qmp.events)):
            if qmp.events[index]["event"] == name:
                guest._consumed = index + 1
                return qmp.events[index]
        seen = len(qmp.events)
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {name} within {timeout} s; events: {[e['event'] for e in qmp.events]}; {guest.serial()[-500:]}"
        qmp.sock.settimeout(remaining)
        try:
            message = qmp.read()
        except socket.timeout:
            continue
        finally:
            qmp.sock.settimeout(60)
        assert "event" in message, f"unexpected reply {message}"
        qmp.events.append(message)


def wait_status(guest: Guest, status: str, timeout: float = 90) -> dict:
    while True:
        event = wait_event(guest, "JOB_STATUS_CHANGE", timeout)
        if event["data"]["status"] == status:
            return event


def job_events(guest: Guest) -> list:
    """The job events so far, as (event, status or device-free data) pairs, in order."""
    out = []
    for event in guest.qmp.events:
        name = event["event"]
        if name == "JOB_STATUS_CHANGE":
            out.append(f"{name} {event['data']['status']}")
        elif name.startswith("BLOCK_JOB"):
            data = dict(event.get("data", {}))
            for volatile in ("len", "offset"):
                data.pop(volatile, None)
            out.append(f"{name} {json.dumps(data, sort_keys=True)}")
    return out


def ok(guest: Guest, name: str, **arguments):
    answer = guest.qmp.cmd(name, **arguments)
    assert answer == {"return": {}}, (name, arguments, answer)
    if name == "stop":
        # Requests the guest queued just before `stop` may still be on their way (svmm's stop does
        # not wait for the virtqueue to settle): let them land before images are compared.
        time.sleep(0.3)


def error(guest: Guest, name: str, **arguments) -> str:
    answer = guest.qmp.cmd(name, **arguments)
    assert "error" in answer, (name, arguments, answer)
    return f"{answer['error']['class']}: {answer['error']['desc']}"


def device_node(guest: Guest) -> str:
    return guest.qmp.cmd("query-block")["return"][0]["inserted"]["node-name"]


def add_file_target(guest: Guest, path: Path, node: str = "tgt"):
    ok(guest, "blockdev-add", driver="file", **{"node-name": node}, filename=str(path))


def compare(a: Path, b: Path, fmt: str = "raw") -> bool:
    return qemu_img("compare", "-f", fmt, "-F", fmt, a, b).returncode == 0


def raw_source(workdir: Path) -> list:
    with open(workdir / "src.raw", "wb") as disk:
        disk.truncate(DISK)
    return [f"driver=file,node-name=src,filename={workdir / 'src.raw'}", "driver=raw,node-name=top,file=src"]


def new_raw(path: Path, size: int = DISK):
    with open(path, "wb") as disk:
        disk.truncate(size)


def side_by_side(tmp_path, scenario, *args):
    """Runs `scenario(target, workdir, *args)` for each VMM; returns {target: outcome}."""
    outcomes = {}
    for target in TARGETS:
        workdir = tmp_path / target
        workdir.mkdir()
        outcomes[target] = scenario(target, workdir, *args)
    return outcomes


def writer(target: str, workdir: Path, blockdevs: list) -> Guest:
    guest = Guest(target, workdir, blockdevs)
    ok(guest, "cont")
    guest.wait_rounds(1)
    return guest


def finish(guest: Guest, outcome: dict) -> dict:
    """Two more verified rounds, then quit: the guest's verification is part of the outcome."""
    guest.wait_rounds(2)
    guest.quit()
    outcome["guest-verified"] = "FAIL" not in guest.serial()
    return outcome


# --------------------------------------------------------------------------------------------
# Scenarios

def mirror_and_complete(target: str, workdir: Path, copy_mode: str) -> dict:
    """sync=full to a raw file while the guest writes; READY; the guest keeps writing; then
    paused, complete: the device moves to the target, which equals the source."""
    guest = writer(target, workdir, raw_source(workdir))
    try:
        new_raw(workdir / "tgt.raw")
        add_file_target(guest, workdir / "tgt.raw")
        ok(guest, "blockdev-mirror", **{"job-id": "job0", "copy-mode": copy_mode}, device="top", target="tgt", sync="full")
        wait_event(guest, "BLOCK_JOB_READY")
        guest.wait_rounds(1)  # READY while the writer goes on: the target is kept in sync
        jobs = guest.qmp.cmd("query-block-jobs")["return"]
        ok(guest, "stop")
        ok(guest, "block-job-complete", device="job0")
        wait_status(guest, "null")
        outcome = {
            "events": job_events(guest),
            "job-while-ready": {k: jobs[0][k] for k in ("device", "type", "status", "ready", "paused", "io-status")},
            "device-node": device_node(guest),
            "jobs-after": guest.qmp.cmd("query-block-jobs")["return"],
            "target-equals-source": compare(workdir / "src.raw", workdir / "tgt.raw"),
        }
        ok(guest, "cont")
        return finish(guest, outcome)
    finally:
        guest.kill()


@pytest.mark.parametrize("copy_mode", ["background", "write-blocking"])
def test_mirror_full_to_a_file_reaches_ready_and_complete_moves_the_device(tmp_path, copy_mode):
    outcomes = side_by_side(tmp_path, mirror_and_complete, copy_mode)
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert svmm["device-node"] == "tgt" and svmm["target-equals-source"] and svmm["guest-verified"], svmm
    statuses = [e.split()[1] for e in svmm["events"] if e.startswith("JOB_STATUS_CHANGE")]
    # `stop` settles all I/O (bdrv_drain_all), which pauses the READY job briefly: standby, ready.
    assert statuses == ["created", "running", "ready", "standby", "ready", "waiting", "pending", "concluded", "null"], svmm["events"]


def cancel_scenario(target: str, workdir: Path, when: str) -> dict:
    """Cancel before READY (speed-limited), after READY (soft: ends without switching, target
    consistent) or forced after READY; the guest stays on the source and keeps verifying."""
    guest = writer(target, workdir, raw_source(workdir))
    try:
        new_raw(workdir / "tgt.raw")
        add_file_target(guest, workdir / "tgt.raw")
        speed = 64 * 1024 if when == "before-ready" else 0
        ok(guest, "blockdev-mirror", **{"job-id": "job0", "buf-size": MiB}, device="top", target="tgt", sync="full", speed=speed)
        outcome = {}
        if when == "before-ready":
            wait_status(guest, "running")
            outcome["complete-too-early"] = error(guest, "block-job-complete", device="job0")
            outcome["finalize-while-running"] = error(guest, "job-finalize", id="job0")
            ok(guest, "block-job-cancel", device="job0")
        else:
            wait_event(guest, "BLOCK_JOB_READY")
            ok(guest, "stop")
            if when == "after-ready":
                ok(guest, "block-job-cancel", device="job0")
            else:
                ok(guest, "block-job-cancel", device="job0", force=True)
        wait_status(guest, "null")
        outcome["events"] = job_events(guest)
        outcome["device-node"] = device_node(guest)
        if when == "after-ready":
            outcome["target-equals-source"] = compare(workdir / "src.raw", workdir / "tgt.raw")
        outcome["target-deletable"] = guest.qmp.cmd("blockdev-del", **{"node-name": "tgt"})
        if when != "before-ready":
            ok(guest, "cont")
        return finish(guest, outcome)
    finally:
        guest.kill()


@pytest.mark.parametrize("when", ["before-ready", "after-ready", "force-after-ready"])
def test_cancel_leaves_the_device_on_the_source(tmp_path, when):
    outcomes = side_by_side(tmp_path, cancel_scenario, when)
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert svmm["device-node"] == "top" and svmm["guest-verified"], svmm
    assert svmm["target-deletable"] == {"return": {}}, svmm
    final = [e for e in svmm["events"] if not e.startswith("JOB_STATUS_CHANGE")][-1]
    assert final.startswith("BLOCK_JOB_COMPLETED" if when == "after-ready" else "BLOCK_JOB_CANCELLED"), svmm["events"]
    if when == "after-ready":
        assert svmm["target-equals-source"], svmm


def pause_scenario(target: str, workdir: Path) -> dict:
    """Pause and resume (and their refusals), verbs in the wrong state, unknown jobs."""
    guest = writer(target, workdir, raw_source(workdir))
    try:
        new_raw(workdir / "tgt.raw")
        add_file_target(guest, workdir / "tgt.raw")
        # A small buffer: QEMU sends a whole buffer at once before its rate limit makes it sleep.
        ok(guest, "blockdev-mirror", **{"job-id": "job0", "auto-dismiss": False, "buf-size": MiB}, device="top",
           target="tgt", sync="full", speed=64 * 1024)
        wait_status(guest, "running")
        outcome = {"refusals": []}
        refusals = outcome["refusals"]
        ok(guest, "block-job-pause", device="job0")
        wait_status(guest, "paused")
        refusals.append(error(guest, "block-job-pause", device="job0"))
        refusals.append(error(guest, "block-job-cancel", device="job0"))
        job = guest.qmp.cmd("query-block-jobs")["return"][0]
        outcome["paused-job"] = {k: job[k] for k in ("status", "paused", "ready", "speed")}
        ok(guest, "block-job-resume", device="job0")
        wait_status(guest, "running")
        refusals.append(error(guest, "block-job-resume", device="job0"))
        refusals.append(error(guest, "job-dismiss", id="job0"))
        refusals.append(error(guest, "block-job-set-speed", device="job0", speed=-1))
        refusals.append(error(guest, "block-job-cancel", device="nosuch"))
        refusals.append(error(guest, "job-cancel", id="nosuch"))
        refusals.append(error(guest, "block-job-finalize", id="nosuch"))
        refusals.append(error(guest, "blockdev-del", **{"node-name": "tgt"}))
        refusals.append(error(guest, "blockdev-snapshot", node="src", overlay="tgt"))
        refusals.append(error(guest, "blockdev-mirror", **{"job-id": "job0"}, device="top", target="tgt", sync="full"))
        ok(guest, "block-job-set-speed", device="job0", speed=0)
        wait_event(guest, "BLOCK_JOB_READY")
        ok(guest, "job-pause", id="job0")
        wait_status(guest, "standby")
        ok(guest, "job-resume", id="job0")
        wait_status(guest, "ready")
        ok(guest, "job-cancel", id="job0")  # job-cancel is a forced cancel
        wait_status(guest, "concluded")
        job = guest.qmp.cmd("query-jobs")["return"][0]
        outcome["concluded-job"] = {k: v for k, v in job.items() if not k.endswith("-progress")}
        refusals.append(error(guest, "job-cancel", id="job0"))
        ok(guest, "job-dismiss", id="job0")
        wait_status(guest, "null")
        outcome["events"] = job_events(guest)
        return finish(guest, outcome)
    finally:
        guest.kill()


def test_pause_resume_and_verbs_in_the_wrong_state(tmp_path):
    outcomes = side_by_side(tmp_path, pause_scenario)
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert "DeviceNotActive: Block job 'nosuch' not found" in svmm["refusals"], svmm
    assert "GenericError: Job 'job0' in state 'running' cannot accept command verb 'dismiss'" in svmm["refusals"], svmm
    assert svmm["guest-verified"], svmm


# --------------------------------------------------------------------------------------------
# iotest 155: the target's backing chain

def qcow2_chain(workdir: Path) -> list:
    """back.qcow2 <- src.qcow2, the device on src (its backing opened from the header)."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(workdir / "back.qcow2"), str(DISK)], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x42 0 {DISK // 2}", str(workdir / "back.qcow2")],
                   check=True, capture_output=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(workdir / "back.qcow2"), "-F", "qcow2",
                    str(workdir / "src.qcow2"), str(DISK)], check=True)
    return [f"driver=qcow2,node-name=top,file.driver=file,file.filename={workdir / 'src.qcow2'}"]


def blockdev_mirror_155(target: str, workdir: Path, sync: str, backing: str) -> dict:
    """The target is added with `backing: null` ("snapshot": its backing is blockdev-added and
    attached with blockdev-snapshot while the job is pending) or with its backing opened
    ("opened"); sync top needs a copy of the source's backing, none a copy of the source chain,
    full nothing. After finalize the guest reads the target chain, which equals the source chain."""
    guest = writer(target, workdir, qcow2_chain(workdir))
    try:
        ok(guest, "stop")
        tback = workdir / "tback.qcow2"
        if sync == "top":
            shutil.copy(workdir / "back.qcow2", tback)
        elif sync == "none":
            # The source chain as it is now, flattened (the VM is paused; -U: it holds the locks).
            subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(workdir / "src.qcow2"), str(tback)], check=True)
        has_backing = sync != "full"
        create = ["qemu-img", "create", "-q", "-f", "qcow2"]
        if has_backing:
            create += ["-b", str(tback), "-F", "qcow2"]
        subprocess.run(create + [str(workdir / "tgt.qcow2"), str(DISK)], check=True)
        target_node = {"node-name": "target", "driver": "qcow2",
                       "file": {"driver": "file", "node-name": "target-file", "filename": str(workdir / "tgt.qcow2")}}
        if backing == "snapshot" or not has_backing:
            target_node["backing"] = None
        ok(guest, "blockdev-add", **target_node)
        ok(guest, "blockdev-mirror", **{"job-id": "mirror-job", "auto-finalize": False}, device="top", target="target", sync=sync)
        ok(guest, "cont")
        wait_event(guest, "BLOCK_JOB_READY")
        guest.wait_rounds(1)
        ok(guest, "stop")
        outcome = {}
        ok(guest, "job-complete", id="mirror-job")
        wait_status(guest, "pending")
        outcome["graph-while-pending"] = graph_shape(guest)
        if backing == "snapshot" and has_backing:
            ok(guest, "blockdev-add", **{"node-name": "target-backing", "driver": "qcow2",
                                         "file": {"driver": "file", "filename": str(tback)}})
            outcome["snapshot-while-pending"] = guest.qmp.cmd("blockdev-snapshot", node="target-backing", overlay="target")
        ok(guest, "job-finalize", id="mirror-job")
        wait_status(guest, "null")
        inserted = guest.qmp.cmd("query-block")["return"][0]["inserted"]
        outcome["device-node"] = inserted["node-name"]
        outcome["device-backing"] = Path(inserted["image"].get("backing-image", {}).get("filename", "-")).name
        nodes = {n["node-name"]: n for n in guest.qmp.cmd("query-named-block-nodes")["return"]}
        outcome["source-chain-intact"] = Path(nodes["top"]["image"].get("backing-image", {}).get("filename", "-")).name
        outcome["events"] = job_events(guest)
        outcome["chains-equal"] = qemu_img("compare", "-U", workdir / "src.qcow2", workdir / "tgt.qcow2").returncode == 0
        ok(guest, "blockdev-add", driver="null-co", **{"node-name": "late"})
        outcome["snapshot-after-completion"] = error(guest, "blockdev-snapshot", node="late", overlay="target")
        ok(guest, "cont")
        outcome = finish(guest, outcome)
        outcome["check"] = qemu_img("check", workdir / "tgt.qcow2").returncode
        return outcome
    finally:
        guest.kill()


def graph_shape(guest: Guest) -> list:
    """x-debug-query-block-graph as sorted 'parent -name-> child [perm] [shared]' lines."""
    graph = guest.qmp.cmd("x-debug-query-block-graph")["return"]
    labels = {}
    for node in graph["nodes"]:
        name = node["name"] if not node["name"].startswith("#") else "<implicit>"
        labels[node["id"]] = f"{node['type']}:{name}"
    return sorted(f"{labels[e['parent']]} -{e['name']}-> {labels[e['child']]} {e['perm']} {e['shared-perm']}"
                  for e in graph["edges"])


@pytest.mark.parametrize("sync,backing", [("full", "none"), ("top", "opened"), ("top", "snapshot"),
                                          ("none", "opened"), ("none", "snapshot")])
def test_155_blockdev_mirror_target_backing(tmp_path, sync, backing):
    outcomes = side_by_side(tmp_path, blockdev_mirror_155, sync, backing)
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert svmm["device-node"] == "target" and svmm["chains-equal"] and svmm["guest-verified"], svmm
    assert svmm["check"] == 0, svmm
    assert svmm["source-chain-intact"] == "back.qcow2", svmm
    assert svmm["snapshot-after-completion"] == "GenericError: The overlay is already in use", svmm
    if sync != "full":
        assert svmm["device-backing"] == "tback.qcow2", svmm
    if backing == "snapshot":
        assert svmm["snapshot-while-pending"] == {"return": {}}, svmm


# --------------------------------------------------------------------------------------------
# NBD targets: an export of a second VMM process (svmm to svmm, QEMU to QEMU)

def nbd_server(target: str, workdir: Path) -> Guest:
    """A second VM of the same VMM exporting `exp` (a raw file, not its guest's disk) writably."""
    server_dir = workdir / "server"
    server_dir.mkdir()
    new_raw(server_dir / "dummy.raw")
    new_raw(server_dir / "exp.raw")
    server = Guest(target, server_dir, [f"driver=file,node-name=top,filename={server_dir / 'dummy.raw'}",
                                        f"driver=file,node-name=exp,filename={server_dir / 'exp.raw'}"], mode="idle")
    socket_path = str(server_dir / "nbd.sock")
    ok(server, "nbd-server-start", addr={"type": "unix", "data": {"path": socket_path}})
    ok(server, "block-export-add", type="nbd", id="e0", **{"node-name": "exp"}, writable=True)
    server.nbd_socket = socket_path
    return server


def nbd_mirror(target: str, workdir: Path, kill_server: bool) -> dict:
    """Mirror onto an NBD export of another process: complete (the data arrives, the device moves
    to the NBD node), or the server is killed mid-job (the job fails with `error`, the guest on
    its own disk keeps running)."""
    guest = writer(target, workdir, raw_source(workdir))
    server = nbd_server(target, workdir)
    try:
        ok(guest, "blockdev-add", driver="nbd", **{"node-name": "tgt"}, export="exp",
           server={"type": "unix", "path": server.nbd_socket})
        speed = 256 * 1024 if kill_server else 0
        ok(guest, "blockdev-mirror", **{"job-id": "job0", "buf-size": MiB}, device="top", target="tgt", sync="full", speed=speed)
        outcome = {}
        if kill_server:
            wait_status(guest, "running")
            time.sleep(0.5)
            server.kill()
            event = wait_event(guest, "BLOCK_JOB_COMPLETED")
            outcome["failed-with-error"] = "error" in event["data"]
            wait_status(guest, "null")
            outcome["device-node"] = device_node(guest)
            # One BLOCK_JOB_ERROR per request that failed: how many were in flight is timing.
            events = [e for e in job_events(guest) if not e.startswith("BLOCK_JOB_COMPLETED")]
            outcome["events"] = [e for i, e in enumerate(events) if i == 0 or e != events[i - 1]]
            return finish(guest, outcome)
        wait_event(guest, "BLOCK_JOB_READY")
        guest.wait_rounds(1)
        ok(guest, "stop")
        ok(guest, "block-job-complete", device="job0")
        wait_status(guest, "null")
        outcome["device-node"] = device_node(guest)
        outcome["events"] = job_events(guest)
        outcome["export-equals-source"] = qemu_img("compare", "-U", "-f", "raw", "-F", "raw", workdir / "src.raw",
                                                   workdir / "server" / "exp.raw").returncode == 0
        ok(guest, "cont")
        return finish(guest, outcome)
    finally:
        guest.kill()
        server.kill()


@pytest.mark.parametrize("kill_server", [False, True], ids=["complete", "server-killed"])
def test_mirror_to_an_nbd_export_of_a_second_process(tmp_path, kill_server):
    outcomes = side_by_side(tmp_path, nbd_mirror, kill_server)
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert svmm["guest-verified"], svmm
    if kill_server:
        assert svmm["failed-with-error"] and svmm["device-node"] == "top", svmm
    else:
        assert svmm["device-node"] == "tgt" and svmm["export-equals-source"], svmm


# --------------------------------------------------------------------------------------------
# drive-mirror: the target created as QEMU creates it, or an NBD URI

def drive_mirror(target: str, workdir: Path, sync: str) -> dict:
    """drive-mirror to a new qcow2 (mode absolute-paths: for `top` the image names the source's
    backing, which the target gets at completion; `full` has none)."""
    guest = writer(target, workdir, qcow2_chain(workdir))
    try:
        ok(guest, "drive-mirror", **{"job-id": "job0", "node-name": "tgt"}, device="top",
           target=str(workdir / "new.qcow2"), format="qcow2", sync=sync)
        wait_event(guest, "BLOCK_JOB_READY")
        guest.wait_rounds(1)
        ok(guest, "stop")
        ok(guest, "block-job-complete", device="job0")
        wait_status(guest, "null")
        inserted = guest.qmp.cmd("query-block")["return"][0]["inserted"]
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(workdir / "new.qcow2")],
                                         capture_output=True, text=True, check=True).stdout)
        outcome = {
            "device-node": inserted["node-name"],
            "device-backing": Path(inserted["image"].get("backing-image", {}).get("filename", "-")).name,
            "header-backing": Path(info.get("backing-filename", "-")).name,
            "events": job_events(guest),
            "chains-equal": qemu_img("compare", "-U", workdir / "src.qcow2", workdir / "new.qcow2").returncode == 0,
        }
        ok(guest, "cont")
        outcome = finish(guest, outcome)
        outcome["check"] = qemu_img("check", workdir / "new.qcow2").returncode
        return outcome
    finally:
        guest.kill()


@pytest.mark.parametrize("sync", ["full", "top"])
def test_drive_mirror_creates_the_target_as_qemu_does(tmp_path, sync):
    outcomes = side_by_side(tmp_path, drive_mirror, sync)
    assert outcomes["svmm"] == outcomes["qemu"], outcomes
    svmm = outcomes["svmm"]
    assert svmm["device-node"] == "tgt" and svmm["chains-equal"] and svmm["check"] == 0 and svmm["guest-verified"], svmm
    assert svmm["header-backing"] == ("back.qcow2" if sync == "top" else "-"), svmm


# --------------------------------------------------------------------------------------------
# speed (svmm alone; both send a buffer, then wait as long as it takes at the speed: a small
# buffer makes the offset move in small steps)

def test_speed_limit_is_honoured_within_a_wide_margin(tmp_path):
    workdir = tmp_path / "svmm"
    workdir.mkdir()
    blockdevs = raw_source(workdir)
    # Data everywhere (zeroes would be written as write-zeroes, which the limit does not count).
    subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -P 0x33 0 {DISK}", str(workdir / "src.raw")],
                   check=True, capture_output=True)
    guest = Guest("svmm", workdir, blockdevs, mode="idle")
    try:
        new_raw(workdir / "tgt.raw")
        add_file_target(guest, workdir / "tgt.raw")
        speed = 2 * MiB
        ok(guest, "blockdev-mirror", **{"job-id": "job0", "buf-size": MiB}, device="top", target="tgt", sync="full",
           speed=speed)
        start = time.monotonic()
        time.sleep(3)
        offset = guest.qmp.cmd("query-block-jobs")["return"][0]["offset"]
        elapsed = time.monotonic() - start
        expected = speed * elapsed
        assert expected / 2 <= offset <= expected * 2, (offset, expected)
        ok(guest, "block-job-set-speed", device="job0", speed=0)
        wait_event(guest, "BLOCK_JOB_READY")
        ok(guest, "block-job-cancel", device="job0")
        wait_status(guest, "null")
        assert compare(workdir / "src.raw", workdir / "tgt.raw")
    finally:
        guest.kill()
