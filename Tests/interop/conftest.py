"""Fixtures for the QMP interop tests: start svmm (or, for comparison, QEMU 7.2) on a fresh disk.

Environment:
  SVMM_BIN        svmm binary (default .build/debug/svmm, relative to the repo root)
  GUEST_ELF       guest kernel (default guest-images/out/blkguest.elf)
  INTEROP_TARGET  "svmm" (default) or "qemu": run the very same tests against
                  qemu-system-x86_64 -M microvm,accel=kvm to check what QEMU 7.2 answers.
  SVMM_SANDBOX    e.g. "on" or "on,spawn=deny": every svmm the suite starts runs with
                  `-sandbox SVMM_SANDBOX`, through a wrapper script SVMM_BIN then names
                  (the real binary in SVMM_REAL_BIN). Not part of `make test`.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("INTEROP_TARGET", "svmm")
QEMU_BIN = "qemu-system-x86_64"


def repo_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO / path


def install_sandbox_wrapper():
    """SVMM_SANDBOX: SVMM_BIN becomes a script that prepends `-sandbox OPTIONS` (set here, at
    conftest import, so that modules reading SVMM_BIN when they load see it too)."""
    options = os.environ.get("SVMM_SANDBOX")
    if not options or os.environ.get("SVMM_REAL_BIN") or TARGET != "svmm":
        return
    real = repo_path(os.environ.get("SVMM_BIN", ".build/debug/svmm"))
    wrapper = Path(tempfile.mkdtemp(prefix="svmm-sandbox-")) / "svmm"
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" -sandbox "{options}" "$@"\n')
    wrapper.chmod(0o755)
    os.environ["SVMM_REAL_BIN"] = str(real)
    os.environ["SVMM_BIN"] = str(wrapper)
    os.environ.setdefault("SVMM_MIGRATE_BIN", str(real.parent / "svmm-migrate"))


install_sandbox_wrapper()


def is_qemu() -> bool:
    return TARGET == "qemu"


def run(coro, timeout: float = 30):
    """Runs one coroutine (a test body using QMPClient) to completion, with a time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def unix_socket_listening(path: str) -> bool:
    """True once a socket bound at `path` listens. The file appears at bind(), before listen(),
    and a connect in between is refused; /proc/net/unix flags a listening socket with
    __SO_ACCEPTCON (0x10000)."""
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                return True
    # svmm binds under a staging name and renames the socket once it listens, so the table names
    # the staging path: a socket file at `path` is then probed with a connect.
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class VM:
    """One svmm process with a QMP socket on a fresh 16 MiB raw disk (node d0, device vblk0)."""

    def __init__(self, workdir: Path, binary: str, guest: Path, prelaunch: bool, extra: list):
        self.dir = workdir
        self.disk = workdir / "disk.raw"
        self.sock = str(workdir / "qmp.sock")
        self.log = workdir / "vm.log"
        with open(self.disk, "wb") as disk:
            disk.truncate(16 << 20)
        args = [binary]
        if is_qemu():
            args += ["-M", "microvm,accel=kvm", "-nodefaults", "-display", "none", "-serial", "none",
                     "-global", "virtio-mmio.force-legacy=false"]
        args += ["-kernel", str(guest), "-append", "mode=idle",
                 "-blockdev", f"driver=file,node-name=d0,filename={self.disk}",
                 "-device", "virtio-blk-device,drive=d0,id=vblk0",
                 "-qmp", f"unix:{self.sock},server=on,wait=off"]
        if prelaunch:
            args.append("-S")
        args += extra
        self.args = args
        self._logfile = open(self.log, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._logfile,
                                     stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + 20
        while not unix_socket_listening(self.sock):
            if self.proc.poll() is not None:
                pytest.fail(f"{binary} exited with status {self.proc.returncode} before creating "
                            f"its QMP socket:\n{' '.join(args)}\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no QMP socket {self.sock} after 20 s:\n{' '.join(args)}\n{self.output()}")
            time.sleep(0.02)

    def output(self) -> str:
        self._logfile.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 10) -> int:
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._logfile.close()


@pytest.fixture(scope="session")
def binaries():
    """The VMM binary and the guest; missing KVM, binary or guest fail the tests (never skip)."""
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing or not accessible: the interop tests need KVM")
    if is_qemu():
        binary = shutil.which(QEMU_BIN)
        if not binary:
            pytest.fail(f"{QEMU_BIN} not found (INTEROP_TARGET=qemu)")
    else:
        binary = str(repo_path(os.environ.get("SVMM_BIN", ".build/debug/svmm")))
        if not os.access(binary, os.X_OK):
            pytest.fail(f"svmm binary {binary} is missing (build it with `swift build`, or set SVMM_BIN)")
    guest = repo_path(os.environ.get("GUEST_ELF", "guest-images/out/blkguest.elf"))
    if not guest.is_file():
        pytest.fail(f"guest {guest} is missing (make guest, or set GUEST_ELF)")
    return binary, guest


@pytest.fixture
def launch(binaries, tmp_path):
    """launch(prelaunch=False, extra=[]) -> VM; every VM started is SIGKILLed at the end."""
    vms = []
    binary, guest = binaries

    def start(prelaunch: bool = False, extra: list = ()) -> VM:
        workdir = tmp_path / f"vm{len(vms)}"
        workdir.mkdir()
        vm = VM(workdir, binary, guest, prelaunch, list(extra))
        vms.append(vm)
        return vm

    yield start
    for vm in vms:
        vm.kill()


@pytest.fixture
def vm(launch):
    """A running VM (no -S)."""
    return launch()


@pytest.fixture
def paused_vm(launch):
    """A VM started with -S (prelaunch)."""
    return launch(prelaunch=True)


class RawQMP:
    """A QMP client on a plain socket that reads replies line by line."""

    def __init__(self, path: str, negotiate: bool = True, timeout: float = 60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock.connect(path)
                break
            # BlockingIOError: the listen backlog is full (QEMU listens with a backlog of 1);
            # ConnectionRefusedError: the socket file exists (bind) but listen has not run yet.
            except (BlockingIOError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rb")
        self.events = []
        self.greeting = self.read()
        assert "QMP" in self.greeting, self.greeting
        if negotiate:
            assert self.cmd("qmp_capabilities") == {"return": {}}

    def read(self) -> dict:
        line = self.file.readline()
        if not line:
            raise ConnectionError("QMP connection closed")
        return json.loads(line)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def reply(self) -> dict:
        """The next message that is not an event (events are kept in self.events)."""
        while True:
            message = self.read()
            if "event" in message:
                self.events.append(message)
                continue
            return message

    def request(self, data) -> dict:
        if not isinstance(data, (bytes, str)):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        self.send_raw(data + b"\n")
        return self.reply()

    def cmd(self, name: str, **arguments) -> dict:
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        return self.request(message)

    def close(self):
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw_qmp():
    """raw_qmp(path, negotiate=True) -> RawQMP; closed at the end."""
    clients = []

    def connect(path: str, negotiate: bool = True) -> RawQMP:
        client = RawQMP(path, negotiate)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
