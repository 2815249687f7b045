#!/usr/bin/env python3
"""Issue 9's soak test: `mode=bench qd=32` and `mode=writer` under the debug and the release
build, RUNS times each, must never see the virtio-blk device go NEEDS_RESET (a torn ring read
once made it do so in 1 of 5 debug runs). Too slow for `make test`; run it by hand:

    scripts/check-needs-reset.py [--runs 50] [--builds debug,release]

A run fails when svmm logs a virtio-blk device error (what sets NEEDS_RESET), the guest prints
a FAIL line, the bench gives no BENCH line or does not exit with the guest's success status,
or the writer does not complete WRITER_ROUNDS verified rounds. Prints one line per build and
mode and exits 1 if any run failed (with its output)."""
import argparse, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.environ.get("GUEST_ELF", os.path.join(ROOT, "guest-images/out/blkguest.elf"))
BINARIES = {
    "debug": os.environ.get("SVMM_DEBUG_BIN", os.path.join(ROOT, ".build/debug/svmm")),
    "release": os.environ.get("SVMM_RELEASE_BIN", os.path.join(ROOT, ".build/release/svmm")),
}
WRITER_ROUNDS = 3
# isa-debug-exit: the guest writes 0 on success, svmm exits with (0 << 1) | 1.
GUEST_SUCCESS = 1


def svmm_cmd(binary, disk, append):
    return [binary, "-m", "64M", "-kernel", GUEST, "-append", append,
            "-blockdev", f"driver=file,node-name=d0,filename={disk}",
            "-device", "virtio-blk-device,drive=d0", "-serial", "stdio"]


def device_error(stderr):
    """svmm logs every virtio device error, which is what sets NEEDS_RESET."""
    return "virtio-blk:" in stderr or "NEEDS_RESET" in stderr


def run_bench(binary, disk, secs):
    """One bench run; returns None on success, else what went wrong with the output."""
    append = f"mode=bench qd=32 secs={secs} rw=randread bs=4096"
    try:
        proc = subprocess.run(svmm_cmd(binary, disk, append), capture_output=True, text=True, timeout=secs + 60)
    except subprocess.TimeoutExpired as timeout:
        return f"no exit within {secs + 60} s (a device in NEEDS_RESET leaves the guest waiting)\n{timeout.stdout}{timeout.stderr}"
    output = proc.stdout + proc.stderr
    if device_error(proc.stderr) or "FAIL" in proc.stdout:
        return f"device error or guest failure\n{output}"
    if "BENCH iops=" not in proc.stdout or proc.returncode != GUEST_SUCCESS:
        return f"no BENCH line or exit status {proc.returncode}\n{output}"
    return None


def run_writer(binary, disk, timeout):
    """The writer until it has verified WRITER_ROUNDS rounds; then it is stopped (it never ends)."""
    with open(disk, "r+b") as f:
        f.write(bytes(4096))   # no stamp in sector 0: the writer starts afresh instead of resuming
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(svmm_cmd(binary, disk, "mode=writer"), stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        problem = None
        while True:
            time.sleep(0.2)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
            if device_error(stderr) or "FAIL" in stdout:
                problem = "device error or guest failure"
                break
            if f"WRITER round {WRITER_ROUNDS} ok" in stdout:
                break
            if proc.poll() is not None:
                problem = f"svmm exited with status {proc.returncode}"
                break
            if time.monotonic() > deadline:
                problem = f"fewer than {WRITER_ROUNDS} rounds in {timeout} s"
                break
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return None if problem is None else f"{problem}\n{stdout}{stderr}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--builds", default="debug,release")
    parser.add_argument("--bench-secs", type=int, default=1)
    parser.add_argument("--writer-mib", type=int, default=8, help="the writer's disk size")
    parser.add_argument("--writer-timeout", type=int, default=120)
    args = parser.parse_args()

    if not os.path.exists(GUEST):
        sys.exit(f"guest image {GUEST} is missing: run `make guest`")
    builds = [b for b in args.builds.split(",") if b]
    for build in builds:
        if build not in BINARIES:
            sys.exit(f"unknown build {build!r} (debug or release)")
        if not os.access(BINARIES[build], os.X_OK):
            sys.exit(f"{BINARIES[build]} is missing: build it first (swift build{' -c release' if build == 'release' else ''})")

    failures = []
    with tempfile.TemporaryDirectory(prefix="svmm-needs-reset-") as work:
        bench_disk = os.path.join(work, "bench.raw")
        writer_disk = os.path.join(work, "writer.raw")
        with open(bench_disk, "wb") as f:
            f.truncate(256 << 20)
        with open(writer_disk, "wb") as f:
            f.truncate(args.writer_mib << 20)
        for build in builds:
            binary = BINARIES[build]
            for mode, run in (("bench qd=32", lambda: run_bench(binary, bench_disk, args.bench_secs)),
                              ("writer", lambda: run_writer(binary, writer_disk, args.writer_timeout))):
                failed = 0
                start = time.monotonic()
                for index in range(args.runs):
                    problem = run()
                    if problem:
                        failed += 1
                        failures.append(f"{build} {mode} run {index + 1}: {problem}")
                print(f"{build:7} {mode:11}: {args.runs - failed}/{args.runs} runs clean "
                      f"({time.monotonic() - start:.0f} s)", flush=True)
    for failure in failures:
        print(f"\n--- {failure}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
