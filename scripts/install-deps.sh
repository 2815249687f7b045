#!/usr/bin/env bash
# Installs, with apt-get, only the Debian packages svmm needs that are missing,
# and the project venv (venv/) with qemu.qmp and pytest when they are not importable there.
set -euo pipefail
packages=(libaio-dev libfdt-dev libisal-dev gcc binutils make qemu-system-x86 qemu-utils fio python3-venv graphviz libnbd-bin nbdkit iproute2 libseccomp-dev)
missing=()
packages+=(python3-libnbd)  # qemu-iotests' nbd-multiconn (make iotests, make test)
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The project venv for the Python interop tests (Tests/interop) and scripts/render_block_graph.py:
# Debian's python3 with the real qemu.qmp library and pytest, installed only when not importable.
venv="$(cd "$(dirname "$0")/.." && pwd)/venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv: $venv"
    /usr/bin/python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import qemu.qmp, pytest' 2>/dev/null; then
    echo "installing into $venv: qemu.qmp pytest"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check qemu.qmp pytest
fi
if ! command -v swift >/dev/null; then
    echo "swift is not on PATH (expected the Swift 6 toolchain, e.g. /opt/swift/usr/bin)" >&2
    exit 1
fi
