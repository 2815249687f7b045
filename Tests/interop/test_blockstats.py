"""query-blockstats and block-latency-histogram-set, side by side with QEMU 7.2: the same guest
(mode=writer on a qcow2 overlay with a backing file) under svmm and QEMU; the answers must have
QEMU's shape member for member, and figures that agree with what the guest did."""

import subprocess
import time
from pathlib import Path

import pytest

from test_graph_io import TARGETS, Guest

MiB = 1 << 20
DISK = 16 * MiB


def start(target: str, workdir: Path) -> Guest:
    workdir.mkdir()
    base, overlay = workdir / "base.qcow2", workdir / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), str(DISK)], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(overlay)], check=True)
    return Guest(target, workdir, [
        f"driver=qcow2,node-name=top,file.driver=file,file.node-name=top-file,file.filename={overlay},"
        f"backing.node-name=base,backing.driver=qcow2,backing.file.driver=file,backing.file.node-name=base-file,"
        f"backing.file.filename={base}",
    ])


def shape(value):
    """The value with its figures replaced by their JSON types: member names and order stay."""
    if isinstance(value, dict):
        return [(key, shape(member)) for key, member in value.items()]
    if isinstance(value, list):
        return [shape(member) for member in value]
    return type(value).__name__


def call(guest: Guest, command: str, **arguments) -> dict:
    return guest.qmp.request({"execute": command, "arguments": arguments})


def run_target(target: str, workdir: Path) -> dict:
    guest = start(target, workdir)
    seen = {}
    try:
        seen["before"] = call(guest, "query-blockstats")["return"]
        seen["errors"] = [
            call(guest, "block-latency-histogram-set", id="nope", boundaries=[10]),
            call(guest, "block-latency-histogram-set", id="vblk0", boundaries=[5, 5]),
            call(guest, "block-latency-histogram-set", id="vblk0", **{"boundaries-write": [3, 2]}),
            call(guest, "block-latency-histogram-set", id="vblk0", boundaries=["a"]),
            call(guest, "block-latency-histogram-set", id="vblk0", boundaries=5),
            call(guest, "block-latency-histogram-set"),
            call(guest, "query-blockstats", **{"query-nodes": 1}),
            call(guest, "block-latency-histogram-set", id="top", boundaries=[10]),  # a node, not a device
        ]
        seen["set"] = [
            call(guest, "block-latency-histogram-set", id="vblk0", boundaries=[100_000, 10_000_000],
                 **{"boundaries-flush": [1]}),
        ]
        seen["histograms_before"] = call(guest, "query-blockstats")["return"]
        assert call(guest, "cont") == {"return": {}}
        guest.wait_rounds(2)
        assert call(guest, "stop") == {"return": {}}
        seen["after"] = call(guest, "query-blockstats")["return"]
        time.sleep(0.3)  # anything still in flight after `stop` would end meanwhile
        seen["after_pause"] = call(guest, "query-blockstats")["return"]
        seen["nodes"] = call(guest, "query-blockstats", **{"query-nodes": True})["return"]
        seen["cleared"] = [call(guest, "block-latency-histogram-set", id="vblk0")]
        seen["after_clear"] = call(guest, "query-blockstats")["return"]
        guest.quit()
    finally:
        guest.kill()
    check = subprocess.run(["qemu-img", "check", str(workdir / "top.qcow2")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return seen


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    return {target: run_target(target, tmp_path_factory.mktemp("blockstats") / target) for target in TARGETS}


def test_answers_have_qemus_shape(answers):
    svmm, qemu = answers["svmm"], answers["qemu"]
    for step in ("before", "histograms_before", "after", "after_clear"):
        assert shape(svmm[step]) == shape(qemu[step]), step
    # Node-level entries: the same nodes (by name), each with QEMU's members.
    assert {n["node-name"]: shape(n) for n in svmm["nodes"]} == {n["node-name"]: shape(n) for n in qemu["nodes"]}


def test_errors_and_replies_are_qemus(answers):
    assert answers["svmm"]["errors"] == answers["qemu"]["errors"]
    assert answers["svmm"]["set"] == answers["qemu"]["set"] == [{"return": {}}]
    assert answers["svmm"]["cleared"] == answers["qemu"]["cleared"] == [{"return": {}}]


@pytest.mark.parametrize("target", TARGETS)
def test_figures_agree_with_the_guests_io(answers, target):
    seen = answers[target]
    before = seen["before"][0]["stats"]
    assert before["rd_operations"] == before["wr_operations"] == 0 and "idle_time_ns" not in before
    entry = seen["after"][0]
    stats = entry["stats"]
    assert entry["qdev"] == "vblk0" and entry["node-name"] == "top"
    assert entry["parent"]["node-name"] == "top-file" and entry["backing"]["node-name"] == "base"
    for kind in ("rd", "wr"):
        assert stats[f"{kind}_operations"] > 0 and stats[f"{kind}_bytes"] % 512 == 0
        assert stats[f"{kind}_bytes"] >= 512 * stats[f"{kind}_operations"]
        assert stats[f"{kind}_total_time_ns"] > 0
        histogram = stats[f"{kind}_latency_histogram"]
        assert histogram["boundaries"] == [100_000, 10_000_000]
        assert sum(histogram["bins"]) == stats[f"{kind}_operations"] + stats[f"failed_{kind}_operations"]
    assert stats["flush_latency_histogram"]["boundaries"] == [1]
    assert sum(stats["flush_latency_histogram"]["bins"]) == stats["flush_operations"]
    assert stats["idle_time_ns"] >= 0
    assert 0 < stats["wr_highest_offset"] <= DISK
    # The overlay's file received the data and qcow2's metadata; the backing was only read.
    assert entry["parent"]["stats"]["wr_highest_offset"] > 0
    assert entry["backing"]["stats"]["wr_highest_offset"] == 0
    assert "rd_latency_histogram" not in seen["after_clear"][0]["stats"]
    # Clearing the histograms keeps the counters.
    assert seen["after_clear"][0]["stats"]["wr_operations"] == stats["wr_operations"] > 0


def settled(stats: dict) -> dict:
    """A device's figures without the ones that move while nothing happens."""
    return {key: value for key, value in stats.items() if key != "idle_time_ns"}


@pytest.mark.parametrize("target", TARGETS)
def test_nothing_is_accounted_after_stop_returns(answers, target):
    # do_vm_stop drains the requests in flight before `stop` answers, and virtio-blk takes no new
    # ones while the VM is stopped: the figures right after `stop` are the last until `cont`.
    seen = answers[target]
    for before, later in zip(seen["after"], seen["after_pause"]):
        assert settled(later["stats"]) == settled(before["stats"])
        assert later["parent"]["stats"]["wr_operations"] == before["parent"]["stats"]["wr_operations"]
