"""`-sandbox on` (issue 16): svmm's seccomp allowlist under real flows, and what it refuses.

Every svmm here runs with the strictest options QEMU 7.2 has (every group `deny`) through a small
wrapper script that prepends them, so the helpers of the other suites start sandboxed processes
unchanged. The debug build (the one `make test` runs) traps a forbidden call, names it on stderr
and dies by SIGSYS, as a release build's SCMP_ACT_KILL_PROCESS kills it.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP, repo_path
from test_storage_migration import (Host, assert_identical, end_mirror, export_target, migrate, start_mirror,
                                    unix, wait_migration, wait_ready)

STRICT = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
GETSID = 124  # x86-64's number for getsid, the call x-svmm-debug-forbidden-syscall makes
MiB = 1 << 20


def real_svmm() -> str:
    binary = str(repo_path(os.environ.get("SVMM_REAL_BIN", os.environ.get("SVMM_BIN", ".build/debug/svmm"))))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"svmm binary {binary} is missing (swift build, or set SVMM_BIN)")
    return binary


def guest() -> str:
    path = repo_path(os.environ.get("GUEST_ELF", "guest-images/out/blkguest.elf"))
    if not path.is_file():
        pytest.fail(f"guest {path} is missing (make guest)")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing: these tests need KVM")
    return str(path)


def make_disk(path: Path, size: int):
    with open(path, "wb") as disk:
        disk.truncate(size)


@pytest.fixture
def sandboxed(tmp_path, monkeypatch) -> str:
    """A wrapper that runs the real svmm with `-sandbox STRICT`, installed as SVMM_BIN."""
    wrapper = tmp_path / "svmm-sandboxed"
    wrapper.write_text(f'#!/bin/sh\nexec "{real_svmm()}" -sandbox {STRICT} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("SVMM_BIN", str(wrapper))
    return str(wrapper)


def start_idle(binary: str, workdir: Path, *extra: str) -> tuple:
    """svmm running the idle guest with a QMP socket; (process, qmp socket path, log path)."""
    disk = workdir / "disk.raw"
    make_disk(disk, 16 * MiB)
    qmp, log = str(workdir / "qmp.sock"), workdir / "svmm.log"
    process = subprocess.Popen([binary, *extra, "-kernel", guest(), "-append", "mode=idle", "-serial", "none",
                                "-blockdev", f"driver=file,node-name=d0,filename={disk}",
                                "-device", "virtio-blk-device,drive=d0,id=vblk0",
                                "-qmp", f"unix:{qmp},server=on,wait=off"],
                               stdin=subprocess.DEVNULL, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not os.path.exists(qmp):
        assert process.poll() is None, f"svmm exited {process.returncode}: {log.read_text()}"
        assert time.monotonic() < deadline, "no QMP socket"
        time.sleep(0.02)
    return process, qmp, log


def assert_filtered(pid: int):
    """The kernel's view: seccomp mode 2 (a filter) on every thread of the process."""
    for task in os.listdir(f"/proc/{pid}/task"):
        status = Path(f"/proc/{pid}/task/{task}/status").read_text()
        assert re.search(r"^Seccomp:\s+2$", status, re.M), f"thread {task} of {pid} runs unfiltered:\n{status}"


def stop(process: subprocess.Popen):
    if process.poll() is None:
        process.kill()
        process.wait(10)


# -- the option ------------------------------------------------------------------------------

BAD_OPTIONS = ["bogus", "ON", "on,foo=bar", "off,foo=x", "on,obsolete=foo", "on,obsolete=on", "on,obsolete",
               "on,elevateprivileges=x", "on,spawn=x", "on,spawn=ALLOW", "on,spawn=", "on,resourcecontrol=x"]


@pytest.mark.parametrize("option", BAD_OPTIONS)
def test_a_bad_sandbox_option_gets_qemus_error_text(option):
    """The same line as QEMU 7.2 prints (its program name replaced), exit status 1."""
    qemu = shutil.which("qemu-system-x86_64")
    assert qemu, "qemu-system-x86_64 is missing: it is the reference here"
    reference = subprocess.run([qemu, "-sandbox", option, "-M", "none", "-display", "none"], capture_output=True,
                               text=True, timeout=30, stdin=subprocess.DEVNULL)
    ours = subprocess.run([real_svmm(), "-sandbox", option, "-M", "none"], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert reference.returncode == 1 and ours.returncode == 1, (reference, ours)
    # QEMU warns first about the short-form boolean (`on,obsolete`); the error line is the last.
    expected = reference.stderr.strip().splitlines()[-1].replace("qemu-system-x86_64:", "svmm:")
    assert ours.stderr.strip() == expected


@pytest.mark.parametrize("option", ["off", "off,spawn=x", "", "on,obsolete=allow,elevateprivileges=children",
                                    "enable=on,spawn=allow,resourcecontrol=deny"])
def test_good_sandbox_options_run_the_selftest(option, tmp_path):
    """`off` reads no group (QEMU ignores `off,spawn=x` too); each accepted shape boots."""
    disk = tmp_path / "disk.raw"
    make_disk(disk, 64 * MiB)
    result = subprocess.run([real_svmm(), "-sandbox", option, "-m", "64M", "-kernel", guest(),
                             "-append", "mode=selftest", "-serial", "stdio", "-display", "none",
                             "-blockdev", f"driver=file,filename={disk},node-name=d0",
                             "-device", "virtio-blk-device,drive=d0"],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "SELFTEST PASS" in result.stdout, result.stdout + result.stderr


# -- flows under the strict sandbox -----------------------------------------------------------

def test_the_selftest_passes_sandboxed(sandboxed, tmp_path):
    disk = tmp_path / "disk.raw"
    make_disk(disk, 64 * MiB)
    result = subprocess.run([sandboxed, "-m", "64M", "-kernel", guest(), "-append", "mode=selftest",
                             "-serial", "stdio", "-display", "none",
                             "-blockdev", f"driver=file,filename={disk},node-name=d0,aio=native,cache.direct=on",
                             "-device", "virtio-blk-device,drive=d0"],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "SELFTEST PASS" in result.stdout, result.stdout + result.stderr


def test_a_forbidden_system_call_kills_the_process_by_sigsys(sandboxed, tmp_path):
    process, qmp_path, log = start_idle(sandboxed, tmp_path)
    try:
        qmp = RawQMP(qmp_path)
        assert qmp.cmd("query-status")["return"]["status"] == "running"
        assert_filtered(process.pid)
        qmp.send_raw(b'{"execute": "x-svmm-debug-forbidden-syscall"}\n')
        assert process.wait(30) == -signal.SIGSYS, log.read_text()
        assert f"svmm: sandbox: forbidden system call {GETSID}" in log.read_text()
    finally:
        stop(process)


def test_the_forbidden_call_is_harmless_without_the_sandbox(tmp_path):
    process, qmp_path, _ = start_idle(real_svmm(), tmp_path)
    try:
        qmp = RawQMP(qmp_path)
        assert qmp.cmd("x-svmm-debug-forbidden-syscall") == {"return": {}}
        assert qmp.cmd("query-status")["return"]["status"] == "running"
    finally:
        stop(process)


def test_qmp_and_nbd_unix_sockets_are_created_0600(sandboxed, tmp_path):
    process, qmp_path, log = start_idle(sandboxed, tmp_path)
    try:
        qmp = RawQMP(qmp_path)
        nbd = tmp_path / "nbd.sock"
        assert "return" in qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(nbd)}})
        for path in (qmp_path, nbd):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, (path, oct(os.stat(path).st_mode))
        assert process.poll() is None, log.read_text()
    finally:
        stop(process)


def test_an_nbd_export_serves_qemu_img_and_nbdcopy_sandboxed(sandboxed, tmp_path):
    """Writes through qemu-io and nbdcopy into a sandboxed export, reads them back with
    qemu-img convert, and blockdev-add/mirror of a new node while sandboxed."""
    nbdcopy = shutil.which("nbdcopy")
    assert nbdcopy, "nbdcopy (libnbd-bin) is missing"
    process, qmp_path, log = start_idle(sandboxed, tmp_path)
    try:
        qmp = RawQMP(qmp_path)
        nbd = tmp_path / "nbd.sock"
        spare = tmp_path / "spare.raw"
        make_disk(spare, 16 * MiB)
        assert "return" in qmp.cmd("blockdev-add", driver="file", filename=str(spare), **{"node-name": "spare"})
        assert "return" in qmp.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(nbd)}})
        assert "return" in qmp.cmd("nbd-server-add", device="spare", writable=True)
        uri = f"nbd+unix:///spare?socket={nbd}"
        pattern = tmp_path / "pattern.raw"
        pattern.write_bytes(os.urandom(4 * MiB))
        subprocess.run([nbdcopy, str(pattern), uri], check=True, timeout=120)
        subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 8M 1M", uri], check=True, timeout=120,
                       capture_output=True)
        back = tmp_path / "back.raw"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, str(back)], check=True, timeout=120)
        data = back.read_bytes()
        assert data[:4 * MiB] == pattern.read_bytes()
        assert data[8 * MiB:9 * MiB] == b"\x5a" * MiB
        assert process.poll() is None, log.read_text()
        assert qmp.cmd("query-status")["return"]["status"] == "running"
        assert_filtered(process.pid)
    finally:
        stop(process)


def test_storage_migration_between_two_sandboxed_processes(sandboxed, tmp_path):
    """iotest 194's flow (test_storage_migration.py) with both processes sandboxed: the writer
    guest keeps verifying on the destination, and the disks are equal at the switch-over."""
    started = []
    try:
        source = Host("svmm", tmp_path, "source")
        started.append(source)
        source.wait_rounds(1)
        destination = Host("svmm", tmp_path, "destination", incoming=True, paused=True)
        started.append(destination)
        nbd = unix(tmp_path / "nbd.sock")
        export_target(destination, nbd)
        start_mirror(source, nbd)
        wait_ready(source)
        migrate(source, destination, f"unix:{tmp_path}/migrate.sock")
        assert wait_migration(source) == "completed"
        assert wait_migration(destination) == "completed"
        end_mirror(source)
        destination.ok("nbd-server-stop")
        assert_identical(source.disk, destination.disk)
        assert destination.ok("cont") == {}
        destination.wait_rounds(3)
        source.assert_verifying()
        for host in started:
            assert host.alive(), f"{host.name} died ({host.proc.returncode}): {host.errors()}"
            assert_filtered(host.proc.pid)
    finally:
        for host in started:
            host.kill()
