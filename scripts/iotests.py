#!/usr/bin/env python3
"""QEMU 7.2's own qemu-iotests against svmm, then against QEMU 7.2, with one table (`make iotests`).

1. Fetches the source package of Debian's QEMU 7.2 (the version of the installed qemu-system-x86,
   else the newest 7.2 the mirrors have) with apt-get, through a private apt configuration under
   .cache/iotests/apt: deb-src twins of the machine's own sources, its own lists and archives (the
   machine's apt set-up is only read). The download is cached; a failed one is an error.
2. Unpacks only tests/ and python/ of the upstream tarball and applies Debian's patches to them
   (the 7.2.x stable updates touch both), under .cache/iotests/src. Nothing of QEMU's is committed.
3. Runs tests/qemu-iotests/check for each test with QEMU_PROG = svmm (QEMU_IMG_PROG, QEMU_IO_PROG,
   QEMU_NBD_PROG, QSD_PROG = Debian's tools), then with QEMU_PROG = a wrapper of Debian's
   qemu-system-x86_64 that maps `-accel qtest` to `-accel tcg` (Debian ships no qtest accelerator).

Environment: IOTESTS="a b" (tests, in order), IOTESTS_SVMM (the svmm binary, default the debug
build), IOTESTS_QEMU=0 (svmm only), IOTESTS_MUST_PASS="a b" (exit 1 unless these pass against svmm;
default: every test run), IOTESTS_CACHE (default .cache/iotests), IOTESTS_TIMEOUT (seconds per
test, default 900).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("IOTESTS_CACHE", REPO / ".cache" / "iotests"))
DEFAULT_TESTS = ["migration-permissions", "mirror-top-perms", "194", "mirror-ready-cancel-error", "155", "041",
                 "nbd-multiconn", "132", "152"]
# The image format each test runs with: check's default (raw) unless the test supports only others.
FORMATS = {"155": "qcow2", "041": "qcow2"}
TOOLS = {
    "QEMU_IMG_PROG": "/usr/bin/qemu-img",
    "QEMU_IO_PROG": "/usr/bin/qemu-io",
    "QEMU_NBD_PROG": "/usr/bin/qemu-nbd",
    "QSD_PROG": "/usr/bin/qemu-storage-daemon",
}
QEMU = "/usr/bin/qemu-system-x86_64"
# The harness runs on Debian's python3, which sees Debian's python3-* modules (libnbd for nbd-multiconn).
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
# Seconds one test may take under `check` before it counts as failed (IOTESTS_TIMEOUT).
TIMEOUT = int(os.environ.get("IOTESTS_TIMEOUT", "900"))


class Failure(Exception):
    pass


def source_version() -> str:
    """The Debian source version of the installed QEMU (its tools are the ones the tests use)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${source:Version}", "qemu-system-x86"],
                            capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise Failure("qemu-system-x86 is not installed (make deps installs it)")
    return result.stdout.strip()


def source_lists() -> tuple:
    """deb-src twins of the machine's own `deb` sources (deb822 stanzas, one-line entries): the
    same mirrors and keys; the machine's files are only read."""
    stanzas, lines = [], []
    parts = Path("/etc/apt/sources.list.d")
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                entry = ["Types: deb-src"] + [f"{name}: {fields[key]}" for key, name in
                                              (("uris", "URIs"), ("suites", "Suites"), ("components", "Components"),
                                               ("signed-by", "Signed-By")) if key in fields]
                stanzas.append("\n".join(entry))
    one_line = [Path("/etc/apt/sources.list")] + (sorted(parts.glob("*.list")) if parts.is_dir() else [])
    for path in (p for p in one_line if p.exists()):
        for line in path.read_text().splitlines():
            if re.match(r"^deb\s", line.strip()):
                lines.append("deb-src" + line.strip()[3:])
    if not stanzas and not lines:
        raise Failure("the machine's apt configuration has no `deb` source to take a deb-src from")
    return "\n\n".join(stanzas) + "\n", "\n".join(lines) + "\n"


def apt(*arguments: str) -> None:
    """apt-get with a configuration of its own under CACHE/apt."""
    root = CACHE / "apt"
    options = [
        "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={root / 'sources.list.d'}",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::Cache={root / 'cache'}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
    ]
    result = subprocess.run(["apt-get", "-q", *options, *arguments], cwd=CACHE / "download",
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"apt-get {' '.join(arguments)} failed (status {result.returncode}):\n"
                      f"{result.stdout}{result.stderr}")


def downloaded() -> tuple:
    """The newest tarball pair in the download folder, if there is one."""
    folder = CACHE / "download"
    for dsc in sorted(folder.glob("qemu_*.dsc"), reverse=True):
        debian = folder / (dsc.name[:-4] + ".debian.tar.xz")
        upstream = dsc.name[len("qemu_"):-4].rsplit("-", 1)[0]
        orig = folder / f"qemu_{upstream}.orig.tar.xz"
        if orig.exists() and debian.exists():
            return orig, debian, "1:" + dsc.name[len("qemu_"):-4]
    return None


def download(version: str) -> tuple:
    """The upstream tarball and Debian's tarball of `version` (else the newest 7.2 the mirrors
    still have, said so), downloaded once."""
    folder = CACHE / "download"
    debian = folder / f"qemu_{version.split(':', 1)[-1]}.debian.tar.xz"
    orig = folder / f"qemu_{version.split(':', 1)[-1].rsplit('-', 1)[0]}.orig.tar.xz"
    if orig.exists() and debian.exists():
        return orig, debian, version
    root = CACHE / "apt"
    for directory in (root / "sources.list.d", root / "lists" / "partial", root / "cache" / "archives" / "partial", folder):
        directory.mkdir(parents=True, exist_ok=True)
    stanzas, lines = source_lists()
    (root / "sources.list.d" / "qemu-src.sources").write_text(stanzas)
    (root / "sources.list").write_text(lines)
    print(f"iotests: fetching the source of qemu {version} with apt-get (private configuration in {root})", flush=True)
    apt("update")
    try:
        apt("source", "--download-only", f"qemu={version}")
    except Failure as failure:
        print(f"iotests: qemu {version} is not on the mirrors ({str(failure).splitlines()[-1]}); taking their newest",
              flush=True)
        apt("source", "--download-only", "qemu")
    found = downloaded()
    if found is None or not found[2].startswith("1:7.2+"):
        raise Failure(f"apt-get source left no QEMU 7.2 source package in {folder}")
    return found


def patch_sections(text: str):
    """Splits a unified diff into (path, lines) per file: a file starts at git's `diff --git`
    line or, in a plain diff, at its `---`/`+++` pair; hunk line counts are followed so that a
    removed line beginning with `-- ` is not taken for a header."""
    lines = text.splitlines(keepends=True)
    sections = []
    current, path, has_header = [], None, False
    old_left = new_left = 0

    def finish():
        if current and path:
            sections.append((path, list(current)))

    index = 0
    while index < len(lines):
        line = lines[index]
        if old_left > 0 or new_left > 0:
            if not line.startswith("\\"):
                if line.startswith("-"):
                    old_left -= 1
                elif line.startswith("+"):
                    new_left -= 1
                else:
                    old_left -= 1
                    new_left -= 1
            current.append(line)
        elif line.startswith("diff --git "):
            finish()
            current, has_header = [line], False
            path = line.split()[-1].split("/", 1)[-1]
        elif line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            if has_header or path is None:
                finish()
                current = []
            target = lines[index + 1][4:].split("\t")[0].strip()
            if target != "/dev/null":
                path = target.split("/", 1)[-1]
            current += [line, lines[index + 1]]
            has_header = True
            index += 1
        elif line.startswith("@@ "):
            match = re.match(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@", line)
            if not match:
                raise Failure(f"cannot read hunk header {line!r}")
            old_left = int(match.group(1) or 1)
            new_left = int(match.group(2) or 1)
            current.append(line)
        elif path is not None:
            current.append(line)  # git's index/mode lines, or text between files (harmless to patch)
        index += 1
    finish()
    return sections


def unpack(orig: Path, debian: Path, version: str) -> Path:
    """tests/ and python/ of the upstream source with Debian's patches, unpacked once."""
    tree = CACHE / "src" / f"qemu-{version.replace(':', '_')}"
    stamp = tree / ".svmm-unpacked"
    if stamp.exists():
        return tree
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    print(f"iotests: unpacking tests/ and python/ into {tree}", flush=True)
    listing = subprocess.run(["tar", "-tJf", str(orig)], capture_output=True, text=True, check=True).stdout
    top = listing.split("\n", 1)[0].split("/", 1)[0]
    subprocess.run(["tar", "-xJf", str(orig), "-C", str(tree), "--strip-components=1",
                    f"{top}/tests", f"{top}/python"], check=True)
    work = Path(tempfile.mkdtemp(prefix="svmm-iotests-debian-"))
    try:
        subprocess.run(["tar", "-xJf", str(debian), "-C", str(work), "debian/patches"], check=True)
        series = (work / "debian" / "patches" / "series").read_text().split("\n")
        for name in (entry.split("#", 1)[0].strip() for entry in series):
            if not name:
                continue
            kept = [section for path, section in patch_sections((work / "debian" / "patches" / name).read_text(errors="surrogateescape"))
                    if path.startswith(("tests/qemu-iotests/", "python/"))]
            if not kept:
                continue
            patch = "".join(line for section in kept for line in section)
            # git apply (git is where this repository is; patch(1) may not be installed), kept from
            # finding this repository above the tree: inside a repository it would skip every path
            # outside it, silently. -v names each file it patched: all of them must be there.
            result = subprocess.run(["git", "apply", "-v", "-p1", "--whitespace=nowarn", "-"], cwd=tree,
                                    env=dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.parent)),
                                    input=patch, text=True, errors="surrogateescape", capture_output=True)
            checked = result.stderr.count("Checking patch ")
            if result.returncode != 0 or checked != len(kept):
                raise Failure(f"Debian patch {name} does not apply to tests/ and python/:\n{result.stdout}{result.stderr}")
    finally:
        shutil.rmtree(work)
    stamp.write_text(version + "\n")
    return tree


def qemu_wrapper() -> Path:
    """qemu-system-x86_64 with `-accel qtest` (and accel=qtest) mapped to tcg."""
    directory = CACHE / "bin"
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "qemu-system-x86_64"
    wrapper.write_text(f"""#!/bin/bash
# Debian's QEMU 7.2 has no qtest accelerator: the iotests' -accel qtest runs on tcg instead.
args=()
previous=""
for argument in "$@"; do
    if [ "$previous" = "-accel" ] && [ "$argument" = "qtest" ]; then argument=tcg; fi
    args+=("$argument")
    previous="$argument"
done
exec -a qemu-system-x86_64 {QEMU} "${{args[@]}}"
""")
    wrapper.chmod(0o755)
    return wrapper


RESULT_LINE = re.compile(r"^(?P<name>\S+)\s+(?P<status>pass|fail|not run)\b(?P<rest>.*)$")


def run_one(tree: Path, prog: str, label: str, test: str) -> tuple:
    """(status, seconds, log) of one test: with its format from FORMATS (check's default, raw),
    and once more with qcow2 when the test does not run on raw."""
    image_format = FORMATS.get(test, "raw")
    status, elapsed, output = run_check(tree, prog, label, test, image_format)
    if status == "not run" and image_format == "raw" and "not suitable for this image format" in output:
        status, more, output = run_check(tree, prog, label, test, "qcow2")
        elapsed += more
    return status, elapsed, output


def run_check(tree: Path, prog: str, label: str, test: str, image_format: str) -> tuple:
    """(status, seconds, log) of one test under `check -FORMAT -file TEST`."""
    iotests = tree / "tests" / "qemu-iotests"
    scratch = CACHE / "scratch" / label
    scratch.mkdir(parents=True, exist_ok=True)
    socks = tempfile.mkdtemp(prefix=f"iot-{label[:4]}-")  # short: unix socket paths are at most 107 bytes
    env = dict(os.environ, QEMU_PROG=prog, TEST_DIR=str(scratch), SOCK_DIR=socks, **TOOLS)
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    # A session of its own: on a timeout, or when a test leaves a VM behind, the whole group goes.
    check = subprocess.Popen([PYTHON, "./check", f"-{image_format}", "-file", test],
                             cwd=iotests, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        output, _ = check.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_group(check.pid)
        output, _ = check.communicate()
        return "fail", time.monotonic() - started, f"{output}\ncheck timed out after {TIMEOUT} s"
    finally:
        kill_group(check.pid)
        shutil.rmtree(socks, ignore_errors=True)
    elapsed = time.monotonic() - started
    status = None
    for line in output.splitlines():
        match = RESULT_LINE.match(line.strip())
        if match and match.group("name") == test:
            status = match.group("status")
    if status is None:
        status = "fail"
        output += f"\n(no result line for {test} in check's output; status {check.returncode})"
    return status, elapsed, output


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_all(tree: Path, prog: str, label: str, tests: list) -> dict:
    results = {}
    for test in tests:
        status, elapsed, output = run_one(tree, prog, label, test)
        results[test] = (status, elapsed)
        log = CACHE / "logs" / label / f"{test}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output)
        print(f"iotests: {label:5} {test:28} {status:8} {elapsed:6.1f}s  ({log})", flush=True)
        if status == "fail":
            print(indent_tail(output), flush=True)
    return results


def indent_tail(output: str, count: int = 40) -> str:
    return "\n".join("    " + line for line in output.splitlines()[-count:])


def table(tests: list, columns: dict) -> str:
    names = list(columns)
    rows = [["test"] + names]
    for test in tests:
        row = [test]
        for name in names:
            result = columns[name].get(test)
            row.append(f"{result[0]} ({result[1]:.1f} s)" if result else "-")
        rows.append(row)
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    tests = os.environ.get("IOTESTS", "").split() or DEFAULT_TESTS
    svmm = Path(os.environ.get("IOTESTS_SVMM", REPO / ".build" / "debug" / "svmm")).absolute()
    must_pass = os.environ.get("IOTESTS_MUST_PASS", "").split() or tests
    try:
        if not os.access(svmm, os.X_OK):
            raise Failure(f"svmm binary {svmm} is missing: run `swift build` (or set IOTESTS_SVMM)")
        for name, path in TOOLS.items():
            if not os.access(path, os.X_OK):
                raise Failure(f"{path} ({name}) is missing: make deps installs qemu-utils and qemu-system-x86")
        version = source_version()
        orig, debian, fetched = download(version)
        tree = unpack(orig, debian, fetched)
        columns = {"svmm": run_all(tree, str(svmm), "svmm", tests)}
        if os.environ.get("IOTESTS_QEMU", "1") != "0":
            columns["QEMU 7.2"] = run_all(tree, str(qemu_wrapper()), "qemu", tests)
    except Failure as failure:
        print(f"iotests: FATAL: {failure}", file=sys.stderr)
        return 2
    print()
    print(table(tests, columns))
    failed = [test for test in must_pass if columns["svmm"].get(test, ("not run",))[0] != "pass"]
    if failed:
        print(f"\niotests: against svmm, these did not pass: {' '.join(failed)} (logs in {CACHE / 'logs' / 'svmm'})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
