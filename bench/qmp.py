"""The benchmarks' QMP client: one negotiated connection on a unix socket, replies read line by
line, events kept for wait(). A benchmark cannot go on after a refused command, so an error
reply (or a socket that never comes) ends the run with a message naming it."""
import json
import os
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout=20, proc=None):
        """Connects to `path`, retrying while the VMM has not bound or listened yet; `proc`
        (a Popen) ends the wait early if that process exits."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if proc is not None and proc.poll() is not None:
                    sys.exit(f"{proc.args[0]} exited with {proc.returncode} before it listened on {path}")
                if time.monotonic() > deadline:
                    sys.exit(f"no QMP socket {path} after {timeout} s")
                time.sleep(0.02)
        self.file = self.sock.makefile("rb")
        self.events = []
        self.read()  # the greeting
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, /, **arguments):
        """The command's `return`; an error reply ends the benchmark."""
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self.read()
            if "event" not in reply:
                break
            self.events.append(reply)
        if "error" in reply:
            sys.exit(f"QMP {name} {arguments}: {reply['error']}")
        return reply["return"]

    def wait(self, event, timeout=600, **data):
        """The first event called `event` whose data holds `data` (it is taken off the list)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.events):
                if message["event"] == event and all(message.get("data", {}).get(k) == v for k, v in data.items()):
                    return self.events.pop(index)
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(f"no {event} {data} in {timeout} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self.read())
            except socket.timeout:
                continue
            finally:
                self.sock.settimeout(None)

    def close(self):
        self.file.close()
        self.sock.close()


def run(path, *commands):
    """Sends `commands` ((name, arguments) pairs) on a connection of its own, then closes it."""
    client = Qmp(path)
    try:
        return [client.cmd(name, **arguments) for name, arguments in commands]
    finally:
        client.close()


def remove_stale(*paths):
    for path in paths:
        if os.path.exists(path):
            os.unlink(path)
