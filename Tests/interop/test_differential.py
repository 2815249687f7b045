"""Every scenario of diff_scenarios.py against svmm and QEMU 7.2 in the same run, transcripts
compared (see differential.py). Runs whatever INTEROP_TARGET says: it always needs both."""

import os
import shutil
import threading

import pytest

import diff_scenarios  # noqa: F401  (registers the scenarios)
from conftest import REPO, repo_path
from differential import SCENARIOS, compare, find_binaries, run_target


@pytest.fixture(scope="session")
def both_targets():
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing or not accessible: the differential tests need KVM")
    binaries = find_binaries(REPO)
    if not binaries["qemu"]:
        pytest.fail("qemu-system-x86_64 (QEMU 7.2) is not installed: the differential tests need it")
    if not os.access(binaries["svmm"], os.X_OK):
        pytest.fail(f"svmm binary {binaries['svmm']} is missing (swift build, or set SVMM_BIN)")
    guest = repo_path(os.environ.get("GUEST_ELF", "guest-images/out/blkguest.elf"))
    if not guest.is_file():
        pytest.fail(f"guest {guest} is missing (make guest, or set GUEST_ELF)")
    return binaries, guest


def params():
    return [pytest.param(sc, id=sc.name,
                         marks=[pytest.mark.xfail(strict=True, reason=sc.xfail)] if sc.xfail else [])
            for sc in SCENARIOS]


@pytest.mark.parametrize("sc", params())
def test_same_answers_as_qemu(sc, both_targets):
    binaries, guest = both_targets
    results = {}

    def go(target):
        results[target] = run_target(sc, target, binaries[target], guest)

    # both targets at once: each has its own directory, sockets and processes
    threads = [threading.Thread(target=go, args=(t,)) for t in ("qemu", "svmm")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for target in ("qemu", "svmm"):
        lines, error = results[target]
        if error:
            pytest.fail(f"scenario {sc.name} could not run on {target}: {error}")
    equal, report = compare(sc.name, results["qemu"][0], results["svmm"][0])
    if os.environ.get("DIFF_SHOW"):
        print(f"\n===== {sc.name} (qemu transcript)\n" + "\n".join(results["qemu"][0]))
        print(f"===== {sc.name} (diff)\n{report}")
    assert equal, f"svmm answers differently from QEMU 7.2 in scenario {sc.name}:\n{report}"


def test_compare_reports_differences_and_accepts_only_listed_deliberate_ones():
    """The comparison itself, without VMs: a changed line fails, a listed deliberate one does not."""
    qemu = [">>> a", "<<< 1", "## second client greeted: false"]
    assert compare("x", qemu, list(qemu))[0]
    equal, report = compare("x", qemu, [">>> a", "<<< 2", "## second client greeted: false"])
    assert not equal and "-<<< 1" in report and "+<<< 2" in report
    svmm = [">>> a", "<<< 1", "## second client greeted: true"]
    assert not compare("x", qemu, svmm)[0]                       # listed only for its scenario
    equal, report = compare("several_clients_on_one_socket", qemu, svmm)
    assert equal and "accepted as deliberate" in report
