"""Small helpers for tests that use qemu.qmp's QMPClient."""

import asyncio
import subprocess
from contextlib import asynccontextmanager

from qemu.qmp import ExecuteError, QMPClient


@asynccontextmanager
async def qmp(path: str, name: str = "interop"):
    """A negotiated QMPClient on `path`, disconnected at the end."""
    client = QMPClient(name)
    await client.connect(path)
    try:
        yield client
    finally:
        await client.disconnect()


async def expect_error(client: QMPClient, command: str, arguments=None, cls: str = "GenericError") -> str:
    """Runs a command that must fail with error class `cls`; returns its desc."""
    try:
        result = await client.execute(command, arguments)
    except ExecuteError as error:
        assert error.error_class == cls, (command, arguments, error.error_class, error.error.error.desc)
        return error.error.error.desc
    raise AssertionError(f"{command} {arguments} succeeded with {result!r}, expected a {cls}")


async def next_event(listener, name: str, timeout: float = 10) -> dict:
    """The next event called `name` from `listener` (others are skipped)."""
    async def wait():
        while True:
            event = await listener.get()
            if event["event"] == name:
                return event
    return await asyncio.wait_for(wait(), timeout)


async def named_nodes(client: QMPClient) -> dict:
    """query-named-block-nodes as {node-name: info}."""
    return {node["node-name"]: node for node in await client.execute("query-named-block-nodes")}


def qemu_img_create(path, size: str, fmt: str = "qcow2", backing=None):
    command = ["qemu-img", "create", "-q", "-f", fmt]
    if backing:
        command += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run(command + [str(path), size], check=True)
