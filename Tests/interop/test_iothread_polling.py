"""`-object iothread,id=ID,poll-max-ns=N[,poll-grow=N][,poll-shrink=N]` with
`-device virtio-blk-device,...,iothread=ID`: svmm's loop busy-polls the device's queue and the AIO
completions with the iothread's adaptive window (QEMU's aio_poll). Data first: the writer guest
runs under polling and verifies every sector it reads, then qemu-img checks the image; the
selftest and the bench guest pass under both VMMs with the same options. No timing assertions."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import RawQMP, repo_path

TARGETS = ["svmm", "qemu"]
# Polling on (32 µs: QEMU's default window), a long window that grows by 4, and polling off.
IOTHREADS = ["iothread,id=io0", "iothread,id=io0,poll-max-ns=1000000,poll-grow=4,poll-shrink=2",
             "iothread,id=io0,poll-max-ns=0"]


def command(target, kernel_append, disk, fmt, iothread, qmp=None):
    svmm = str(repo_path(os.environ.get("SVMM_BIN", ".build/debug/svmm")))
    guest = str(repo_path(os.environ.get("GUEST_ELF", "guest-images/out/blkguest.elf")))
    qemu = shutil.which("qemu-system-x86_64")
    if not os.access(svmm, os.X_OK) or not os.path.isfile(guest) or not qemu:
        pytest.fail(f"missing svmm ({svmm}), guest ({guest}) or qemu-system-x86_64")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing: these tests need KVM")
    args = [svmm] if target == "svmm" else [
        qemu, "-M", "microvm,accel=kvm,acpi=off", "-nodefaults", "-no-user-config", "-display", "none",
        "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
    args += ["-m", "64M", "-serial", "stdio", "-kernel", guest, "-append", kernel_append, "-object", iothread,
             "-blockdev", f"driver={fmt},node-name=d0,file.driver=file,file.filename={disk},file.cache.direct=on,file.aio=native",
             "-device", "virtio-blk-device,drive=d0,id=vblk0,iothread=io0"]
    if qmp:
        args += ["-qmp", f"unix:{qmp},server=on,wait=off"]
    return args


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("iothread", IOTHREADS)
def test_the_selftest_passes_with_the_queue_polled(tmp_path, target, iothread):
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"")
    os.truncate(disk, 64 << 20)
    run = subprocess.run(command(target, "mode=selftest", disk, "raw", iothread), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "SELFTEST PASS" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("append", ["mode=bench qd=1 secs=1 rw=randread", "mode=bench qd=32 secs=1 rw=randwrite"])
def test_the_bench_guest_completes_every_request_with_the_queue_polled(tmp_path, target, append):
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as f:
        f.write(os.urandom(1 << 20) * 32)
    run = subprocess.run(command(target, append, disk, "raw", IOTHREADS[1]), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and re.search(r"BENCH iops=\d+", run.stdout), run.stdout + run.stderr


@pytest.mark.parametrize("iothread", IOTHREADS[:2])
def test_the_writer_guest_verifies_under_polling_and_the_image_checks_clean(tmp_path, iothread):
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    sock, log = str(tmp_path / "qmp.sock"), tmp_path / "serial.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command("svmm", "mode=writer", disk, "qcow2", iothread, qmp=sock),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while len(re.findall(r"WRITER round \d+ ok", log.read_text(errors="replace"))) < 3:
                text = log.read_text(errors="replace")
                assert "FAIL" not in text and proc.poll() is None, text
                assert time.monotonic() < deadline, f"no 3 writer rounds: {text}"
                time.sleep(0.1)
            qmp = RawQMP(sock)
            qmp.cmd("quit")
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "FAIL" not in log.read_text(errors="replace")
    check = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
