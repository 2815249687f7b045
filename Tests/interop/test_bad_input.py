"""Bad input on a raw socket, read line by line: each gets QEMU 7.2's error, and the connection
and the VM carry on."""

import json
import os
import time

import pytest

from conftest import is_qemu, unix_socket_listening


def check_still_fine(client, vm):
    """A following query-status on the same connection works and the VM still runs."""
    reply = client.cmd("query-status")
    assert reply["return"]["status"] == "running", reply
    assert reply["return"]["running"] is True
    assert vm.alive()


def error_of(reply):
    assert set(reply) == {"error"} or set(reply) == {"error", "id"}, reply
    return reply["error"]["class"], reply["error"]["desc"]


CASES = [
    pytest.param(b'{"execute": }', ("GenericError", "JSON parse error, expecting value"), id="malformed-json"),
    pytest.param(b'[1,2]', ("GenericError", "QMP input must be a JSON object"), id="array"),
    pytest.param(b'{"execute": "no-such-command"}',
                 ("CommandNotFound", "The command no-such-command has not been found"), id="unknown-command"),
    pytest.param(b'{"execute": "blockdev-del"}', ("GenericError", "Parameter 'node-name' is missing"), id="missing-argument"),
    pytest.param(b'{"execute": "blockdev-del", "arguments": {"node-name": "d0x", "foo": 1}}',
                 ("GenericError", "Parameter 'foo' is unexpected"), id="extra-argument"),
    pytest.param(b'{"execute": "blockdev-del", "arguments": {"node-name": 1}}',
                 ("GenericError", "Invalid parameter type for 'node-name', expected: string"), id="wrong-type"),
    pytest.param(b'{"execute": "query-status", "arguments": {"foo": true}}',
                 ("GenericError", "Parameter 'foo' is unexpected"), id="argument-to-command-without-any"),
    pytest.param(b'{"execute": 1}', ("GenericError", "QMP input member 'execute' must be a string"), id="execute-not-string"),
    pytest.param(b'{"arguments": {}}', ("GenericError", "QMP input lacks member 'execute'"), id="no-execute"),
    pytest.param(b'{"execute": "query-status", "bogus": 1}',
                 ("GenericError", "QMP input member 'bogus' is unexpected"), id="unexpected-member"),
    pytest.param(b'{"execute": "qmp_capabilities"}',
                 ("CommandNotFound", "Capabilities negotiation is already complete, command ignored"), id="renegotiate"),
    # JSON strictness as QEMU 7.2's json-parser.c (texts from qemu-system-x86_64 7.2).
    pytest.param(b'{"execute": "query-status", "id": 1, "id": 2}', ("GenericError", "JSON parse error, duplicate key"),
                 id="duplicate-key"),
    pytest.param(b'{"execute": "query-status", "arguments": {"a": 1, "a": 2}}',
                 ("GenericError", "JSON parse error, duplicate key"), id="duplicate-argument"),
    pytest.param(b'{"execute": "query-status", "id": "\\u+041"}',
                 ("GenericError", "JSON parse error, \\u+041 is not a valid Unicode character"), id="bad-u-escape"),
    pytest.param(b'{"execute": "query-status", "id": "\\ud83d"}',
                 ("GenericError", "JSON parse error, \\ud83d is not a valid Unicode character"), id="lone-surrogate"),
    pytest.param(b'{"execute": "query-status", "id": "\xe9"}',
                 ("GenericError", "JSON parse error, invalid UTF-8 sequence in string"), id="invalid-utf8"),
    pytest.param(b'{"execute": "query-status", "id": "\xed\xa0\xbd"}',
                 ("GenericError", "JSON parse error, invalid UTF-8 sequence in string"), id="utf8-surrogate"),
]


@pytest.mark.parametrize("request_bytes,expected", CASES)
def test_bad_request(vm, raw_qmp, request_bytes, expected):
    client = raw_qmp(vm.sock)
    reply = client.request(request_bytes)
    assert error_of(reply) == expected
    check_still_fine(client, vm)


def test_all_bad_requests_in_one_stream(vm, raw_qmp):
    """The same requests sent back to back on one connection get their errors in order."""
    client = raw_qmp(vm.sock)
    client.send_raw(b"\n".join(case.values[0] for case in CASES) + b"\n")
    for case in CASES:
        assert error_of(client.reply()) == case.values[1]
    check_still_fine(client, vm)


def test_error_reply_carries_id(vm, raw_qmp):
    client = raw_qmp(vm.sock)
    reply = client.request(b'{"execute": "no-such-command", "id": {"a": [1, "x"]}}')
    assert reply["id"] == {"a": [1, "x"]}
    assert reply["error"]["class"] == "CommandNotFound"
    reply = client.request(b'{"execute": "query-status", "id": "abc"}')
    assert reply["id"] == "abc" and reply["return"]["status"] == "running"


def test_ten_mebibyte_line(vm, raw_qmp):
    client = raw_qmp(vm.sock)
    name = "a" * (10 << 20)
    reply = client.request(b'{"execute": "' + name.encode() + b'"}')
    assert error_of(reply) == ("CommandNotFound", f"The command {name} has not been found")
    check_still_fine(client, vm)


def test_command_before_negotiation(vm, raw_qmp):
    client = raw_qmp(vm.sock, negotiate=False)
    assert client.greeting["QMP"]["version"]["qemu"]["major"] == 7
    reply = client.request(b'{"execute": "query-status"}')
    assert error_of(reply) == ("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
    assert client.request(b'{"execute": "qmp_capabilities"}') == {"return": {}}
    check_still_fine(client, vm)


def test_split_and_packed_requests(vm, raw_qmp):
    """Framing is by JSON value, not by line: a request split across writes, and two in one line."""
    client = raw_qmp(vm.sock)
    client.send_raw(b'{"execute": "query-')
    time.sleep(0.2)
    client.send_raw(b'status", "id": 1}{"execute": "query-name", "id": 2}\n')
    first, second = client.reply(), client.reply()
    assert first["id"] == 1 and first["return"]["status"] == "running"
    assert second == {"return": {}, "id": 2}
    check_still_fine(client, vm)


@pytest.mark.skipif(is_qemu(), reason="svmm requirement: QEMU 7.2 stops answering other clients during the flood")
def test_flooding_client_does_not_stall_another(vm, raw_qmp):
    """A client that sends megabytes of `]` and never reads its replies gets throttled: svmm
    stops reading from it once its replies pile up, so its flood can never finish, while another
    client's command is answered and a new client is greeted and negotiates."""
    import socket
    import threading

    client = raw_qmp(vm.sock)
    flooder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flooder.connect(vm.sock)
    flooding = threading.Event()
    flood_done = threading.Event()

    def flood():
        sent = 0
        try:
            while sent < 16 << 20:
                flooder.sendall(b"]" * (16 << 10))
                sent += 16 << 10
                if sent >= 128 << 10:
                    flooding.set()  # svmm has taken in this much: the flood is being worked on
        except OSError:
            pass
        flood_done.set()

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        assert flooding.wait(60), "svmm read nothing of the flood"
        reply = client.cmd("query-status")
        assert reply["return"]["status"] == "running", reply
        newcomer = raw_qmp(vm.sock)  # greeting and negotiation while the flood is on
        assert newcomer.cmd("query-name") == {"return": {}}
        # 16 MiB of `]` asks for over a GiB of error replies; none were read, so svmm cannot
        # have taken in the whole flood.
        assert not flood_done.is_set()
        assert vm.alive()
    finally:
        flooder.shutdown(socket.SHUT_RDWR)  # wakes the blocked sendall
        flooder.close()
        sender.join(30)
    check_still_fine(client, vm)


@pytest.mark.parametrize("id_text,expected", [
    (b"18446744073709551615", 18446744073709551615),
    (b"9223372036854775808", 9223372036854775808),
    (b"-9223372036854775808", -9223372036854775808),
    (b'"\\ud83d\\ude00"', "\U0001F600"),
    (b'"\\u0000x"', "\u0000x"),
])
def test_id_is_echoed_exactly(vm, raw_qmp, id_text, expected):
    """QEMU keeps integers above INT64_MAX as uint64 and echoes them as they came; a surrogate pair
    is one character."""
    client = raw_qmp(vm.sock)
    reply = client.request(b'{"execute": "query-status", "id": ' + id_text + b"}")
    assert reply["id"] == expected and type(reply["id"]) is type(expected), reply
    assert reply["return"]["status"] == "running"


@pytest.mark.parametrize("string,stray", [
    (b'"a\tb"', '"a\t'),
    (b'"a\x1fb"', '"a\x1f'),
    (b'"a\nb"', '"a\n'),
    (b'"a\xffb"', '"a\ufffd'),
])
def test_raw_control_character_in_a_string_is_a_stray_token(vm, raw_qmp, string, stray):
    """QEMU's lexer refuses the string at the bad byte ("stray"), skips to the next structural
    character, and the `}` it finds there gets "expecting value"; the connection carries on."""
    client = raw_qmp(vm.sock)
    client.send_raw(b'{"execute": "query-status", "id": ' + string + b"}\n")
    assert error_of(client.reply()) == ("GenericError", f"JSON parse error, stray '{stray}'")
    assert error_of(client.reply()) == ("GenericError", "JSON parse error, expecting value")
    check_still_fine(client, vm)


ARGUMENT_CASES = [
    # Strings QEMU keeps whole: a NUL inside a file name is not the end of it.
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "file", "node-name": "f0", "filename": "/tmp/a\u0000b"}},
                 "Could not open '/tmp/a\u0000b': No such file or directory", id="nul-in-filename"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "nbd", "node-name": "c1",
                                                           "server": {"type": "unix", "path": "{dir}/a\u0000b"}}},
                 "Failed to connect to '{dir}/a\u0000b': No such file or directory", id="nul-in-nbd-socket-path"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "nbd", "node-name": "c1",
                                                           "server": {"type": "inet", "host": "127.0.0.1\u0000x", "port": "10809"}}},
                 "address resolution failed for 127.0.0.1\u0000x:10809: Name or service not known", id="nul-in-nbd-host"),
    pytest.param({"execute": "blockdev-del", "arguments": {"node-name": "d0\u0000x"}},
                 "Failed to find node with node-name='d0\u0000x'", id="nul-in-node-name-lookup"),
    # id_wellformed and the length of BlockDriverState.node_name.
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "a b#"}},
                 "Invalid node-name: 'a b#'", id="node-name-with-space"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "#block123"}},
                 "Invalid node-name: '#block123'", id="node-name-like-generated"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "1abc"}},
                 "Invalid node-name: '1abc'", id="node-name-digit-first"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": ""}},
                 "Invalid node-name: ''", id="node-name-empty"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "a\u0000b"}},
                 "Invalid node-name: 'a\u0000b'", id="node-name-with-nul"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "abcdefghij" * 3 + "12"}},
                 "Node name too long", id="node-name-32-chars"),
    # Integers out of the member's range.
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "n2", "size": 9223372036854775808}},
                 "Invalid parameter type for 'size', expected: integer", id="size-above-int64"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "n3", "size": 18446744073709551616}},
                 "Invalid parameter type for 'size', expected: integer", id="size-above-uint64"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "raw", "node-name": "r1", "file": "d0", "offset": -1}},
                 "Parameter 'offset' expects a non-negative number below 2^64", id="raw-negative-offset"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "raw", "node-name": "r1", "file": "d0", "size": -5}},
                 "Parameter 'size' expects a non-negative number below 2^64", id="raw-negative-size"),
    pytest.param({"execute": "blockdev-add", "arguments": {"driver": "nbd", "node-name": "c1", "reconnect-delay": 4294967296,
                                                           "server": {"type": "unix", "path": "{dir}/n.sock"}}},
                 "Parameter 'reconnect-delay' expects uint32_t", id="reconnect-delay-above-uint32"),
    pytest.param({"execute": "nbd-server-start", "arguments": {"addr": {"type": "unix", "data": {"path": "{dir}/n.sock"}},
                                                               "max-connections": 4294967296}},
                 "Parameter 'max-connections' expects uint32_t", id="max-connections-above-uint32"),
    pytest.param({"execute": "nbd-server-start", "arguments": {"addr": {"type": "unix", "data": {"path": "{dir}/n.sock"}},
                                                               "max-connections": -1}},
                 "Parameter 'max-connections' expects uint32_t", id="max-connections-negative"),
    # SocketAddressLegacy checked member by member.
    pytest.param({"execute": "nbd-server-start", "arguments": {"addr": {"type": "unix", "data": {"path": "{dir}/n.sock", "bogus": 1}}}},
                 "Parameter 'addr.data.bogus' is unexpected", id="unknown-key-in-addr-data"),
    pytest.param({"execute": "nbd-server-start", "arguments": {"addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": "0", "bogus": 1}}}},
                 "Parameter 'addr.data.bogus' is unexpected", id="unknown-key-in-inet-data"),
    pytest.param({"execute": "nbd-server-start", "arguments": {"addr": {"type": "unix", "bogus": 1, "data": {"path": "{dir}/n.sock"}}}},
                 "Parameter 'addr.bogus' is unexpected", id="unknown-key-in-addr"),
    pytest.param({"execute": "nbd-server-start", "arguments": {"addr": {"type": "unix", "data": {"path": 5}}}},
                 "Invalid parameter type for 'addr.data.path', expected: string", id="addr-path-not-string"),
]


def with_dir(value, directory):
    if isinstance(value, dict):
        return {key: with_dir(item, directory) for key, item in value.items()}
    if isinstance(value, str):
        return value.replace("{dir}", directory)
    return value


@pytest.mark.parametrize("request_object,desc", ARGUMENT_CASES)
def test_bad_argument(vm, raw_qmp, request_object, desc):
    """Arguments QEMU 7.2 refuses, refused with its words; nothing is created."""
    client = raw_qmp(vm.sock)
    reply = client.request(with_dir(request_object, str(vm.dir)))
    assert error_of(reply) == ("GenericError", with_dir(desc, str(vm.dir)))
    nodes = {node["node-name"] for node in client.cmd("query-named-block-nodes")["return"]}
    assert nodes == {"d0"}
    check_still_fine(client, vm)


@pytest.mark.skipif(is_qemu(), reason="svmm requirement: QEMU 7.2 aborts (parse_option_size with &error_abort)")
def test_negative_null_co_size_is_refused(vm, raw_qmp):
    client = raw_qmp(vm.sock)
    reply = client.cmd("blockdev-add", driver="null-co", **{"node-name": "n1", "size": -1})
    assert error_of(reply) == ("GenericError", "Parameter 'size' expects a non-negative number below 2^64")
    check_still_fine(client, vm)


@pytest.mark.parametrize("arguments", [
    {"device": "d0", "name": ""},
    {"device": "d0", "name": "x\u0000y"},
    {"device": "d0", "name": "two words"},
])
def test_nbd_export_needs_a_well_formed_id(vm, raw_qmp, arguments):
    """nbd-server-add's name is the export's id, which blk_exp_add checks with id_wellformed."""
    client = raw_qmp(vm.sock)
    started = client.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": str(vm.dir / "nbd.sock")}})
    assert started == {"return": {}}
    reply = client.request({"execute": "nbd-server-add", "arguments": arguments})
    assert error_of(reply) == ("GenericError", "Invalid block export id")
    assert client.cmd("query-block-exports") == {"return": []}
    check_still_fine(client, vm)


def test_raw_offset_and_size_beyond_int64_are_refused(vm, raw_qmp):
    """offset + size overflows int64: refused (QEMU's text also names the file's size), no crash."""
    client = raw_qmp(vm.sock)
    reply = client.cmd("blockdev-add", driver="raw", file="d0", offset=1, size=9223372036854775807, **{"node-name": "r1"})
    cls, desc = error_of(reply)
    assert cls == "GenericError"
    assert desc.startswith("The sum of offset (1) and size (9223372036854775807) has to be smaller or equal to the  actual size "
                           "of the containing file"), desc
    check_still_fine(client, vm)


def test_nesting_beyond_1024_is_refused_as_qemu_does(vm, raw_qmp):
    """json-streamer's MAX_NESTING: the 1025th `[` ends the value; each `]` after it is a value
    of its own that gets "expecting value"."""
    client = raw_qmp(vm.sock)
    client.send_raw(b"[" * 1025 + b"]" * 1025 + b'\n{"execute": "query-status", "id": "after"}\n')
    assert error_of(client.reply()) == ("GenericError", "JSON nesting depth limit exceeded")
    for _ in range(1025):
        assert error_of(client.reply()) == ("GenericError", "JSON parse error, expecting value")
    reply = client.reply()
    assert reply["id"] == "after" and reply["return"]["status"] == "running"


def test_client_that_stops_sending_still_gets_its_answers(vm):
    """Requests followed at once by the end of the client's sending side are all answered before
    the connection closes (the end of input is not the end of output)."""
    import socket

    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(30)
    client.connect(vm.sock)
    client.sendall(b'{"execute": "qmp_capabilities", "id": 1}\n{"execute": "query-status", "id": 2}\n'
                   b'{"execute": "query-name", "id": 3}\n')
    client.shutdown(socket.SHUT_WR)
    received = b""
    while True:
        chunk = client.recv(65536)
        if not chunk:
            break
        received += chunk
    client.close()
    replies = [json.loads(line) for line in received.splitlines()]
    assert "QMP" in replies[0]
    answers = [reply for reply in replies[1:] if "event" not in reply]
    assert [answer["id"] for answer in answers] == [1, 2, 3], answers
    assert answers[1]["return"]["status"] == "running"
    assert vm.alive()


def stray(token):
    return ("GenericError", f"JSON parse error, stray '{token}'")


EXPECTING_VALUE = ("GenericError", "JSON parse error, expecting value")

# What QEMU 7.2's lexer and streamer answer, reply by reply (from qemu-system-x86_64 7.2).
LEXER_CASES = [
    pytest.param(b'{"execute": "query-status", "id": 01}', [stray("01"), EXPECTING_VALUE], id="leading-zero"),
    pytest.param(b'{"execute": "query-status", "id": 1.}', [stray("1.}")], id="no-fraction-digits"),
    pytest.param(b'{"execute": "query-status", "id": .5}', [stray("."), EXPECTING_VALUE], id="no-integer-part"),
    pytest.param(b'{"execute": "query-status", "id": -}', [stray("-}")], id="lone-minus"),
    pytest.param(b'{"execute": "query-status", "id": 1e}', [stray("1e}")], id="no-exponent-digits"),
    pytest.param(b'{"execute": "query-status", "id": +1}', [stray("+"), EXPECTING_VALUE], id="plus-sign"),
    pytest.param(b'{"execute": "query-status", "id": True}', [stray("T"), EXPECTING_VALUE], id="capital-keyword"),
    pytest.param(b'{"execute": "query-status", "id": 1-2}', [("GenericError", "JSON parse error, expected separator in dict")],
                 id="two-numbers"),
    pytest.param(b'{"execute": "query-status", "id": [1,]}', [EXPECTING_VALUE], id="trailing-comma-in-list"),
    pytest.param(b'{"execute": "query-status", "id": {"a": 1,}}', [EXPECTING_VALUE], id="trailing-comma-in-dict"),
    pytest.param(b'{"execute": "query-status", "id": nul}', [("GenericError", "JSON parse error, invalid keyword 'nul'")],
                 id="bad-keyword"),
    pytest.param(b']]]]', [EXPECTING_VALUE] * 4, id="closing-brackets"),
    pytest.param(b'1 2', [("GenericError", "QMP input must be a JSON object")] * 2, id="two-bare-numbers"),
    pytest.param(b'\xff{"execute": "query-name", "id": 3}', [stray("\ufffd"), {"return": {}, "id": 3}], id="impossible-byte"),
    pytest.param(b'{"execute": "query-status", "id": 1}}', ["ok", EXPECTING_VALUE], id="extra-brace"),
]


@pytest.mark.parametrize("request_bytes,expected", LEXER_CASES)
def test_lexical_errors_are_answered_as_qemu_answers_them(vm, raw_qmp, request_bytes, expected):
    client = raw_qmp(vm.sock)
    client.send_raw(request_bytes + b"\n")
    for want in expected:
        reply = client.reply()
        if want == "ok":
            assert reply["return"]["status"] == "running", reply
        elif isinstance(want, dict):
            assert reply == want
        else:
            assert error_of(reply) == want
    check_still_fine(client, vm)


def test_message_of_more_than_2mi_tokens_is_refused_as_qemu_does(vm, raw_qmp):
    """json-streamer's MAX_TOKEN_COUNT: 2 Mi tokens make a message, one more is refused."""
    client = raw_qmp(vm.sock)
    client.send_raw(b"[" + b"1," * 1048574 + b"[]]\n")  # 2,097,152 tokens
    assert error_of(client.reply()) == ("GenericError", "QMP input must be a JSON object")
    client.send_raw(b"[" + b"1," * 1048575 + b"1]\n")  # 2,097,153 tokens
    assert error_of(client.reply()) == ("GenericError", "JSON token count limit exceeded")
    check_still_fine(client, vm)


@pytest.mark.skipif(is_qemu(), reason="svmm requirement: QEMU 7.2 stalls on the flood")
def test_half_closed_client_that_does_not_read_is_closed(vm, raw_qmp):
    """A client that floods, shuts down its sending side and does not read its replies is closed
    once its socket is full (QEMU closes at end of file); svmm neither buffers every reply for it
    nor waits on it, and other clients carry on."""
    import socket

    flooder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flooder.connect(vm.sock)
    # Replies (about 85 bytes each) several times what the socket holds, yet under svmm's 1 MiB of
    # buffered output, so that svmm reads the whole flood and its end while the socket is full.
    sent = 8000
    flooder.sendall(b"]" * sent)
    flooder.shutdown(socket.SHUT_WR)
    client = raw_qmp(vm.sock)  # served while the flooder is being dealt with
    assert client.cmd("query-name") == {"return": {}}
    time.sleep(0.5)  # not reading: svmm finds the socket full
    flooder.setblocking(True)
    flooder.settimeout(30)
    received = b""
    while True:
        chunk = flooder.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    flooder.close()
    replies = received.count(b"\n") - 1  # less the greeting
    assert 0 < replies < sent, (replies, sent)
    check_still_fine(client, vm)


@pytest.mark.skipif(is_qemu(), reason="svmm requirement: QEMU 7.2 serves one client at a time")
def test_connections_beyond_the_descriptor_limit_wait_and_are_served_later(binaries, tmp_path):
    """With every file descriptor in use, further connections wait in the backlog (svmm stops
    watching the socket instead of spinning on it) and are greeted once a session closes."""
    import resource
    import socket
    import subprocess

    binary, guest = binaries
    sock = str(tmp_path / "qmp.sock")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proc = subprocess.Popen([binary, "-kernel", str(guest), "-append", "mode=idle", "-serial", "none", "-S",
                             "-qmp", f"unix:{sock},server=on,wait=off"], preexec_fn=limit,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clients = []
    try:
        deadline = time.monotonic() + 20
        while not unix_socket_listening(sock):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        waiting = None
        for _ in range(100):  # more than 64 descriptors' worth
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(2)
            client.connect(sock)
            clients.append(client)
            try:
                assert b"QMP" in client.recv(4096)
            except TimeoutError:
                waiting = client  # svmm is out of descriptors: this one waits in the backlog
                break
        assert waiting is not None and len(clients) > 1
        clients[0].close()  # a session closes, a descriptor is free
        waiting.settimeout(30)
        assert b"QMP" in waiting.recv(4096)
        assert proc.poll() is None
    finally:
        for client in clients:
            client.close()
        proc.kill()
        proc.wait(10)
