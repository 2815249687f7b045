"""stop/cont racing a busy guest: 1000 pairs over QMP while the writer guest writes and verifies
its disk; afterwards it keeps verifying, and the disk image is consistent (`quit` during I/O
loses no acknowledged write: a second run resumes from the stamps and verifies them all).
`stop` answers once the requests in flight are done (QEMU's do_vm_stop drains them) and the
device takes no new ones while stopped: after each `stop` the image does not change until `cont`."""

import hashlib
from pathlib import Path

from test_graph_io import Guest

MiB = 1 << 20


def digest(path: Path) -> bytes:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()


def test_a_thousand_stop_cont_pairs_against_the_writer(tmp_path):
    disk = tmp_path / "d.raw"
    with open(disk, "wb") as f:
        f.truncate(8 * MiB)
    blockdevs = [f"driver=file,node-name=top,filename={disk}"]
    guest = Guest("svmm", tmp_path, blockdevs)
    try:
        assert guest.qmp.cmd("cont") == {"return": {}}
        guest.wait_rounds(1)
        changed = 0
        for _ in range(1000):
            assert guest.qmp.cmd("stop") == {"return": {}}
            first = digest(disk)
            changed += digest(disk) != first  # reading the image takes long enough for a late write
            assert guest.qmp.cmd("cont") == {"return": {}}
        assert changed == 0, f"the image changed after `stop` in {changed} of 1000 pauses"
        assert guest.qmp.cmd("query-status")["return"]["status"] == "running"
        guest.wait_rounds(2)
        guest.quit()  # with requests in flight
    finally:
        guest.kill()
    assert "FAIL" not in guest.serial(), guest.serial()
    # The stamps on disk are a consistent round: a new run resumes and verifies every sector.
    (tmp_path / "again").mkdir()
    again = Guest("svmm", tmp_path / "again", blockdevs)
    try:
        assert again.qmp.cmd("cont") == {"return": {}}
        again.wait_rounds(1)
        again.quit()
    finally:
        again.kill()
    assert "WRITER resume gen" in again.serial() and "FAIL" not in again.serial(), again.serial()
