"""What the HTTP layer answers itself (http/connection.py), over raw sockets to a real
`chatkeep serve`: malformed HTTP gets OpenAI's envelope, HTTP/0.9 and HTTP/2 are refused,
heads over the limit get 431, slow clients are timed out (408), and an `Upgrade` offer is
declined with the request still served.

One server for the module, with timeouts of a second; the slow clients all run at once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from chatkeep.config import Settings
from chatkeep.http.connection import connection_class
from tests.api.test_server_process import ServerProcess

TIMEOUT = 1.0  # header and body timeouts of the server under test, in seconds
MIN_RATE = 64  # its slowest accepted body pace, bytes per second
MAX_HEADER_BYTES = 8192
CREATE = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after the answer
    seconds: float  # from the first byte sent to the end of the answer

    @property
    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = json.loads(self.body)["error"]
        return error


def read_all(sock: socket.socket, limit: float = 5.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or `limit` seconds pass (False)."""
    sock.settimeout(limit)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        return out, False
    except ConnectionResetError:
        pass
    return out, True


def parse(raw: bytes, closed: bool, seconds: float) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body, closed, seconds)


class Target:
    """A server on a loopback port, reached over raw sockets."""

    def __init__(self, port: int) -> None:
        self.port = port

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def send(self, *parts: bytes, pause: float = 0.0) -> Answer:
        """Send `parts` on a new connection, `pause` seconds apart, and read the answer."""
        started = time.monotonic()  # before the connect: the server's timer starts there
        with self.connect() as sock:
            for i, part in enumerate(parts):
                if i and pause:
                    time.sleep(pause)
                try:
                    sock.sendall(part)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server answered and closed already
            raw, closed = read_all(sock)
            return parse(raw, closed, time.monotonic() - started)


class Server(Target):
    """`chatkeep serve` (SQLite in `workdir`, the echo model) with this module's limits."""

    def __init__(self, workdir: Path) -> None:
        limits = {
            "CHATKEEP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
            "CHATKEEP_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
            "CHATKEEP_BODY_MIN_BYTES_PER_SECOND": str(MIN_RATE),
            "CHATKEEP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        }
        self.process = ServerProcess(workdir, settings=limits)
        super().__init__(self.process.port)

    def stop(self) -> str:
        return self.process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process = Server(tmp_path_factory.mktemp("http-connection"))
    yield process
    log = process.stop()
    assert "Traceback" not in log, log


def post(body: bytes, *, length: int | None = None, close: bool = False) -> bytes:
    """A create request with `body`, declaring `length` bytes (by default, its own)."""
    size = len(body) if length is None else length
    connection = b"Connection: close\r\n" if close else b""
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: chatkeep\r\n%s"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (connection, size)
    ) + body


def assert_envelope(answer: Answer, status: int, code: str, starts: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-request-id"].startswith("req_")
    error = answer.envelope
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] is None
    message = error["message"]
    assert message.startswith(starts), message
    assert message.isascii() and message.isprintable()
    assert answer.closed


GOOD_HEAD = b"GET /v1/models HTTP/1.1\r\nHost: chatkeep\r\n"
POST_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: chatkeep\r\n"
CHUNKED = POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
MALFORMED = {
    "bad method characters": b"G@T /v1/models HTTP/1.1\r\nHost: chatkeep\r\n\r\n",
    "not HTTP at all (a TLS hello)": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "a misspelt protocol": b"GET /v1/models HXTP/1.1\r\nHost: chatkeep\r\n\r\n",
    "a space in the target": b"GET /v1/a b HTTP/1.1\r\nHost: chatkeep\r\n\r\n",
    "an unknown HTTP/1 version": b"GET /v1/models HTTP/1.7\r\nHost: chatkeep\r\n\r\n",
    "a bare LF after the request line": b"GET /v1/models HTTP/1.1\nHost: chatkeep\n\n",
    "a header without a colon": GOOD_HEAD + b"X-Broken header\r\n\r\n",
    "a space before the colon": GOOD_HEAD + b"X-Broken : header\r\n\r\n",
    "a control character in a header name": GOOD_HEAD + b"X-Bro\x01ken: header\r\n\r\n",
    "a control character in a header value": GOOD_HEAD + b"X-Broken: hea\x01der\r\n\r\n",
    "a NUL in a header value": GOOD_HEAD + b"X-Broken: hea\x00der\r\n\r\n",
    "an obsolete folded header": GOOD_HEAD + b"X-Broken: a\r\n folded\r\n\r\n",
    "an invalid chunk size": CHUNKED + b"zz\r\n{}\r\n0\r\n\r\n",
    "chunk data without its CRLF": CHUNKED + b"2\r\n{}XX0\r\n\r\n",
    "Content-Length and Transfer-Encoding": POST_HEAD + b"Content-Length: 2\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "two different Content-Lengths": POST_HEAD
    + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ",
    "a negative Content-Length": POST_HEAD + b"Content-Length: -2\r\n\r\n{}",
    "a non-numeric Content-Length": POST_HEAD + b"Content-Length: two\r\n\r\n{}",
    "an overflowing Content-Length": POST_HEAD + b"Content-Length: 99999999999999999999\r\n\r\n",
    "an unknown transfer coding": POST_HEAD + b"Transfer-Encoding: gzip\r\n\r\n{}",
    "an unparseable absolute target": b"GET http://[evil-bytes/v1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "CONNECT": b"CONNECT evil-bytes:443 HTTP/1.1\r\nHost: evil-bytes:443\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_http_gets_the_json_envelope_and_a_close(
    server: Server, request_bytes: bytes
) -> None:
    answer = server.send(request_bytes)
    assert_envelope(answer, 400, "invalid_http_request", "Invalid HTTP request: ")
    assert answer.headers["x-should-retry"] == "false"
    assert "evil" not in answer.envelope["message"]


def test_a_request_line_without_a_version_http_0_9_is_refused(server: Server) -> None:
    answer = server.send(b"GET /v1/chat/completions\r\n\r\n")
    assert_envelope(answer, 400, "invalid_http_request", "Invalid HTTP request: ")
    assert "HTTP/0.9" in answer.envelope["message"]


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /v1/models HTTP/2.0\r\nHost: chatkeep\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
    ids=["an HTTP/2.0 request line", "the HTTP/2 preface"],
)
def test_http_2_on_the_http_1_wire_gets_505(server: Server, request_bytes: bytes) -> None:
    answer = server.send(request_bytes)
    assert_envelope(answer, 505, "http_version_not_supported", "HTTP version not supported")


@pytest.mark.parametrize("pieces", [1, 4], ids=["in one write", "in pieces"])
def test_a_head_over_the_limit_gets_431(server: Server, pieces: int) -> None:
    head = GOOD_HEAD + b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n"
    step = len(head) // pieces + 1
    answer = server.send(*(head[i : i + step] for i in range(0, len(head), step)), pause=0.01)
    assert_envelope(answer, 431, "request_header_fields_too_large", "Request header fields")


def test_a_malformed_request_pipelined_behind_a_good_one_leaves_its_answer_whole(
    server: Server,
) -> None:
    answer = server.send(GOOD_HEAD + b"\r\n" + b"G@T / HTTP/1.1\r\n\r\n")
    assert answer.status == 200 and answer.closed
    assert json.loads(answer.body)["object"] == "list"
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("separate", [False, True], ids=["body with the head", "body later"])
def test_an_upgrade_offer_is_declined_and_the_request_body_served(
    server: Server, separate: bool
) -> None:
    """Java's and Ktor's clients offer h2c on plain POSTs; httptools alone drops the body."""
    offer = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: chatkeep\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(CREATE)
    )
    rest = CREATE + GOOD_HEAD + b"Connection: close\r\n\r\n"
    answer = server.send(offer, rest, pause=0.05) if separate else server.send(offer + rest)
    assert answer.status == 200 and answer.closed
    first, _, second = answer.body.partition(b"HTTP/1.1 ")
    assert b'"content":"hi"' in first  # the echo model answered the body that was sent
    assert second.startswith(b"200 OK")  # and the connection kept serving


# Slow clients, all at once: each scenario returns the answer it got. Beside the chatkeep
# server, an in-process one whose app takes longer than the timeouts to read the body and
# to stream its answer: the timers run only while the server waits for request bytes.

APP_TIMEOUT = 0.3  # the in-process server's header and body timeouts
# Between two of the timer's checks, so the server asks for a body while its timer is armed.
APP_PAUSE = 1.5 * APP_TIMEOUT


async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Pauses before reading the body, then answers its length in two slow chunks."""
    if scope["path"] == "/fast":
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await asyncio.sleep(APP_PAUSE)
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    length = b"%d" % len(b"read %d" % size)
    headers = [(b"content-length", length)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for chunk in (b"read ", b"%d" % size):
        await asyncio.sleep(APP_PAUSE)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def slow_app_server() -> Iterator[Target]:
    settings = Settings(header_timeout_seconds=APP_TIMEOUT, body_timeout_seconds=APP_TIMEOUT)
    config = uvicorn.Config(
        slow_app,
        host="127.0.0.1",
        port=0,
        http=connection_class(settings),
        ws="none",
        lifespan="off",
        timeout_keep_alive=1,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield Target(server.servers[0].sockets[0].getsockname()[1])
    server.should_exit = True
    thread.join(timeout=10)


def silent(server: Target) -> Answer:
    started = time.monotonic()  # before the connect: the server's timer starts there
    with server.connect() as sock:
        raw, closed = read_all(sock)
        return Answer(0, {}, raw, closed, time.monotonic() - started)


def dribbled_head(server: Target) -> Answer:
    head = post(CREATE)
    return server.send(*(head[i : i + 1] for i in range(len(head))), pause=0.2)


def stalled_body(server: Target) -> Answer:
    started = time.monotonic()  # before the connect: the server's timer starts there
    with server.connect() as sock:
        sock.sendall(post(CREATE[:10], length=len(CREATE)))
        raw, closed = read_all(sock)
        return parse(raw, closed, time.monotonic() - started)


def dribbled_body(server: Target) -> Answer:
    """A byte every 0.2 s: never a pause as long as the timeout, but far below the pace."""
    body = CREATE.ljust(1000)
    return server.send(
        post(b"", length=len(body)), *(body[i : i + 1] for i in range(1000)), pause=0.2
    )


def head_in_two_pieces(server: Target) -> Answer:
    head = post(CREATE, close=True)
    return server.send(head[:20], head[20:], pause=TIMEOUT / 2)


def body_in_two_pieces(server: Target) -> Answer:
    head = post(CREATE[:10], length=len(CREATE), close=True)
    return server.send(head, CREATE[10:], pause=TIMEOUT / 2)


def slow_app_answer(server: Target) -> Answer:
    return server.send(post(CREATE, close=True))


def expect_100_continue(server: Target) -> Answer:
    """The client holds the body until the server asks, which this app does late; then it
    takes half a body timeout to start sending: its time runs from the `100 Continue`."""
    head = post(b"", length=len(CREATE), close=True)
    head = head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1)
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(head)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        time.sleep(APP_TIMEOUT / 2)
        sock.sendall(CREATE)
        raw, closed = read_all(sock)
        return parse(raw, closed, time.monotonic() - started)


ON_CHATKEEP = (
    silent,
    dribbled_head,
    stalled_body,
    dribbled_body,
    head_in_two_pieces,
    body_in_two_pieces,
)


def blank_lines_after_a_request(server: Target) -> Answer:
    """CRLFs that begin no request, sent every 0.3 s on a kept-alive connection."""
    with server.connect() as sock:
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: chatkeep\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok"):
            answer += sock.recv(1000)
        started = time.monotonic()
        sock.settimeout(0.3)
        raw, closed = b"", False
        while not closed and time.monotonic() - started < 5:
            try:
                chunk = sock.recv(1000)
                raw, closed = raw + chunk, not chunk
            except TimeoutError:
                sock.sendall(b"\r\n")
            except ConnectionResetError:
                closed = True
        return Answer(0, {}, raw, closed, time.monotonic() - started)


ON_SLOW_APP = (slow_app_answer, expect_100_continue, blank_lines_after_a_request)


@pytest.fixture(scope="module")
def slow(server: Server, slow_app_server: Target) -> dict[str, Answer]:
    with ThreadPoolExecutor(len(ON_CHATKEEP) + len(ON_SLOW_APP)) as pool:
        futures = {f.__name__: pool.submit(f, server) for f in ON_CHATKEEP}
        futures |= {f.__name__: pool.submit(f, slow_app_server) for f in ON_SLOW_APP}
        return {name: future.result() for name, future in futures.items()}


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    slow: dict[str, Answer],
) -> None:
    answer = slow["silent"]
    assert answer.closed and answer.body == b""
    assert TIMEOUT * 0.9 <= answer.seconds < TIMEOUT + 3


def test_a_head_dribbled_a_byte_at_a_time_gets_408_at_the_header_timeout(
    slow: dict[str, Answer],
) -> None:
    answer = slow["dribbled_head"]
    assert_envelope(answer, 408, "request_timeout", "Request timeout: the request line")
    assert "x-should-retry" not in answer.headers  # a 408 is the SDKs' to retry
    assert TIMEOUT * 0.9 <= answer.seconds < TIMEOUT + 3


def test_a_body_that_stops_arriving_gets_408_at_the_body_timeout(
    slow: dict[str, Answer],
) -> None:
    answer = slow["stalled_body"]
    assert_envelope(answer, 408, "request_timeout", "Request timeout: the request body")
    assert TIMEOUT * 0.9 <= answer.seconds < TIMEOUT + 3


def test_a_body_dribbled_below_the_minimum_pace_gets_408(slow: dict[str, Answer]) -> None:
    answer = slow["dribbled_body"]
    assert_envelope(answer, 408, "request_timeout", "Request timeout: the request body")
    assert answer.seconds < TIMEOUT + 3  # the whole body, at 5 bytes a second, takes 200 s


@pytest.mark.parametrize("scenario", ["head_in_two_pieces", "body_in_two_pieces"])
def test_pauses_shorter_than_the_timeouts_are_served(
    slow: dict[str, Answer], scenario: str
) -> None:
    answer = slow[scenario]
    assert answer.status == 200, answer
    assert json.loads(answer.body)["object"] == "chat.completion"


@pytest.mark.parametrize("scenario", ["slow_app_answer", "expect_100_continue"])
def test_an_app_slower_than_the_timeouts_is_never_cut_off(
    slow: dict[str, Answer], scenario: str
) -> None:
    answer = slow[scenario]
    assert (answer.status, answer.body, answer.closed) == (200, b"read %d" % len(CREATE), True)
    # Its three pauses, less a few milliseconds: uvloop's timers count from the loop's cached
    # time, so a sleep can end a fraction of a millisecond early (1.3497 s seen for 1.35).
    assert answer.seconds >= 3 * APP_PAUSE - 0.01


def test_blank_lines_do_not_hold_a_kept_alive_connection_open(
    slow: dict[str, Answer],
) -> None:
    answer = slow["blank_lines_after_a_request"]
    assert answer.closed and answer.body == b""
    assert answer.seconds < 2.5  # its keep-alive timeout is 1 s; they would keep it for 5


def test_the_server_still_serves_after_the_hostile_clients(
    server: Server, slow: dict[str, Answer]
) -> None:
    answer = server.send(post(CREATE) + GOOD_HEAD + b"Connection: close\r\n\r\n")
    assert answer.status == 200
    assert b'"object":"chat.completion"' in answer.body
    assert b'"object":"list"' in answer.body  # the second, pipelined request was answered too


def _read_all(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_pipelined_answer_is_written_whole_before_a_refusal_of_the_next_request(
    server: Server,
) -> None:
    # The first answer's head is held for its body (held_head.py): the whole answer goes
    # out, and the connection closes after it (the second request, refused, gets no answer
    # of its own while the first is under way; if one came, it would come after).
    body = b'{"model": "echo-1", "messages": [{"role": "user", "content": "hi"}]}'
    raw = _read_all(server.port, post(body) + MALFORMED["bad method characters"])
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK"), raw
    length = int(next(line.split(b":")[1] for line in first.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    assert json.loads(rest[:length])["object"] == "chat.completion"
    assert rest[length:] == b"" or rest[length:].startswith(b"HTTP/1.1 400 "), raw


def test_a_head_request_with_connection_close_gets_its_head(server: Server) -> None:
    raw = _read_all(
        server.port, b"HEAD /health HTTP/1.1\r\nHost: chatkeep\r\nConnection: close\r\n\r\n"
    )
    assert raw.startswith(b"HTTP/1.1 ") and raw.endswith(b"\r\n\r\n"), raw
