#!/usr/bin/env python3
"""Writes scripts/svmm.order, the function order the release build links svmm's text in
(lld --symbol-ordering-file, Makefile RELEASE_FLAGS).

Why: the kernel maps a binary's code 64 KiB at a time around each fault (fault-around), so a
function that runs maps its whole neighbourhood. Linked in source order, the code one run of
svmm touches is spread over most of the 6 MiB of text, and nearly all of it ends up resident
(README "Figures", memory beyond guest RAM). Listing every function that runs first, hottest
first, packs them into a few hundred KiB.

How: svmm runs under `valgrind --tool=callgrind` (which counts every function that executes,
exactly and repeatably; the guest itself runs in KVM, unaffected) through the workloads `make
bench` measures: boot and mode=selftest, 4k random reads and writes on raw and qcow2, 1 MiB
sequential reads. Every function of the svmm binary that ran is listed, by instructions executed.

Usage: scripts/symbol-order.py [SVMM_BINARY]  (default .build/release/svmm; run `make build`
first). Re-run it when the hot path changes: functions it does not list still link, after
the listed ones.
"""
import collections, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "guest-images/out/blkguest.elf")
ORDER = os.path.join(ROOT, "scripts/svmm.order")

WORKLOADS = [
    # (guest command line, disk format)
    ("mode=selftest", "raw"),
    ("mode=bench qd=32 secs=2 rw=randread bs=4096", "raw"),
    ("mode=bench qd=1 secs=1 rw=randread bs=4096", "raw"),
    ("mode=bench qd=32 secs=2 rw=randwrite bs=4096", "raw"),
    ("mode=bench qd=32 secs=2 rw=randread bs=4096", "qcow2"),
    ("mode=bench qd=32 secs=2 rw=randwrite bs=4096", "qcow2"),
    ("mode=bench qd=8 secs=1 rw=read bs=1048576", "raw"),
]


def make_disk(work, fmt):
    path = os.path.join(work, f"disk.{fmt}")
    if not os.path.exists(path):
        if fmt == "raw":
            subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=256", "status=none"], check=True)
        else:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", path, "256M"], check=True)
    return path


def profile(binary, work, index, append, fmt):
    disk = make_disk(work, fmt)
    blockdev = f"driver=file,node-name=d0,filename={disk}" if fmt == "raw" else \
        f"driver=qcow2,node-name=d0,file.driver=file,file.filename={disk}"
    out = os.path.join(work, f"callgrind.{index}")
    command = ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-line=no", f"--callgrind-out-file={out}",
               binary, "-m", "64M", "-kernel", GUEST, "-append", append, "-blockdev", blockdev,
               "-device", "virtio-blk-device,drive=d0"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if result.returncode != 1:  # the guest ends through debug-exit: status 1 is a passing run
        sys.exit(f"profiling run failed ({result.returncode}): {append} on {fmt}\n{result.stderr[-2000:]}")
    return out


def executed_functions(path, binary, costs):
    """Adds the self cost of every function of `binary` in one callgrind output to `costs`.
    The format names objects and functions once with an id, `ob=(3) /path`, then by id only."""
    objects, functions = {}, {}
    in_binary = False       # the current `ob=` is svmm's binary
    callee_object = None    # a `cob=` for the next `cfn=` (without one the callee is in `ob`)
    current_function = None
    after_calls = False

    def name(table, value):
        match = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not match:
            return value
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1))

    real_binary = os.path.realpath(binary)
    is_binary = lambda path: path is not None and os.path.realpath(path) == real_binary
    with open(path) as profile_file:
        for line in profile_file:
            line = line.rstrip("\n")
            key, _, value = line.partition("=")
            if key == "ob":
                in_binary = is_binary(name(objects, value))
            elif key == "cob":
                callee_object = name(objects, value)
            elif key == "fn":
                current_function = name(functions, value)
                if current_function and in_binary:
                    costs.setdefault(current_function, 0)
            elif key == "cfn":
                callee = name(functions, value)
                if callee and (is_binary(callee_object) if callee_object is not None else in_binary):
                    costs.setdefault(callee, 0)
                callee_object = None
            elif key == "calls":
                after_calls = True
            elif line and line[0].isdigit():
                if after_calls:  # the inclusive cost of the call just named: not this function's own
                    after_calls = False
                    continue
                fields = line.split()
                if len(fields) >= 2 and current_function and in_binary:
                    costs[current_function] = costs.get(current_function, 0) + int(fields[1])


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/svmm"))
    for needed, what in ((binary, "make build"), (GUEST, "make guest")):
        if not os.path.exists(needed):
            sys.exit(f"{needed} is missing: {what}")
    costs = collections.OrderedDict()
    with tempfile.TemporaryDirectory(prefix="svmm-order-") as work:
        for index, (append, fmt) in enumerate(WORKLOADS):
            print(f"profiling {append} on {fmt}", flush=True)
            executed_functions(profile(binary, work, index, append, fmt), binary, costs)
    ordered = sorted(costs, key=lambda function: -costs[function])
    with open(ORDER, "w") as order:
        order.write("".join(f"{function}\n" for function in ordered))
    print(f"{len(ordered)} functions written to {os.path.relpath(ORDER, ROOT)}")


if __name__ == "__main__":
    main()
