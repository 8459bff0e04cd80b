"""Several instances, one database: two real `chatkeep serve` processes on one PostgreSQL.

What a team running chatkeep behind a load balancer would notice if it broke: a completion
created through one instance missing (or stale) on the other, a page walk skipping or
repeating items while both instances take creates, and a database restart that leaves an
instance broken, answers 500s or hangs, or loses a completion it acknowledged.

The restart is simulated by a TCP relay between the servers and PostgreSQL, which drops
every connection and refuses new ones (what a restarting server looks like to a client),
then listens again on the same port. The shared PostgreSQL server itself is never touched.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx2
import openai
import pytest

from tests.api.test_server_process import ServerProcess
from tests.postgres_fixtures import admin_execute, create_database, drop_database, run_aside
from tests.store.test_store_contract import TcpRelay

T = TypeVar("T")
USER = [{"role": "user", "content": "hello from one of two instances"}]
# Longest any call may take while the database is away: an answer, never a hang.
OUTAGE_CALL_LIMIT_S = 10.0


class RelayThread:
    """A `TcpRelay` on an event loop of its own thread, controlled from synchronous tests."""

    def __init__(self, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._relay = TcpRelay(target_port)
        self._serving = False
        self.restore()
        self.port = self._relay.port

    def _call(self, coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(coro(), self._loop).result(timeout=10)

    def cut(self) -> None:
        """PostgreSQL goes away: every connection drops, new ones are refused."""
        self._call(self._relay.stop)
        self._serving = False

    def restore(self) -> None:
        """PostgreSQL is back, on the same port."""
        self._call(self._relay.start)
        self._serving = True

    def close(self) -> None:
        if self._serving:
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def database(postgres_admin_url: str) -> Iterator[str]:
    """One database for the module's two instances (each test scopes what it checks)."""
    url = create_database(postgres_admin_url, prefix="chatkeep_scale")
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, url)


@pytest.fixture(scope="module")
def relay(database: str) -> Iterator[RelayThread]:
    port = int(database.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    relay = RelayThread(port)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture(scope="module")
def servers(
    database: str, relay: RelayThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Instances A and B on one (blank) database, reaching it through the relay.

    At the end, neither may have logged an error: that is what a 500 leaves behind.
    """
    credentials, rest = database.split("@", 1)
    url = f"{credentials}@127.0.0.1:{relay.port}/{rest.split('/', 1)[1]}"
    workdir = tmp_path_factory.mktemp("scale_out")
    a = ServerProcess(workdir, "--database-url", url)
    try:
        b = ServerProcess(workdir, "--database-url", url)
    except BaseException:
        a.stop()
        raise
    outputs: list[str] = []
    try:
        yield a, b
    finally:
        outputs = [a.stop(), b.stop()]
    for output in outputs:
        assert " ERROR " not in output, output


def test_created_through_one_instance_is_read_changed_and_deleted_through_the_other(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a_server, b_server = servers
    run = {"run": secrets.token_hex(4)}
    with a_server.client() as a, b_server.client() as b:
        created = [
            a.chat.completions.create(
                model="gpt-4o", messages=USER, store=True, metadata={**run, "team": "x"}
            ).id
            for i in range(3)
        ]
        streamed = a.chat.completions.create(
            model="gpt-4o", messages=USER, store=True, stream=True, metadata={**run, "team": "x"}
        )
        created.append({chunk.id for chunk in streamed}.pop())

        assert [b.chat.completions.retrieve(i).id for i in created] == created
        assert b.chat.completions.retrieve(created[0]) == a.chat.completions.retrieve(created[0])
        assert [
            c.id for c in b.chat.completions.list(metadata={"team": "x", **run}, limit=2)
        ] == created
        assert [m.content for m in b.chat.completions.messages.list(created[1])] == [
            USER[0]["content"]
        ]

        updated = b.chat.completions.update(created[1], metadata={**run, "team": "y"})
        assert updated.metadata == {**run, "team": "y"}
        assert a.chat.completions.retrieve(created[1]).metadata == {**run, "team": "y"}
        assert [c.id for c in a.chat.completions.list(metadata={**run, "team": "y"})] == [
            created[1]
        ]

        assert b.chat.completions.delete(created[2]).deleted is True
        with pytest.raises(openai.NotFoundError):
            a.chat.completions.retrieve(created[2])
        with pytest.raises(openai.NotFoundError):
            a.chat.completions.delete(created[2])
        assert [c.id for c in a.chat.completions.list(order="desc", metadata=run)] == [
            created[3], created[1], created[0]
        ]  # fmt: skip


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_walk_through_one_instance_while_both_take_creates_never_skips_nor_repeats(
    servers: tuple[ServerProcess, ServerProcess], order: Literal["asc", "desc"]
) -> None:
    a_server, b_server = servers
    before: list[str] = []
    with a_server.client() as a, b_server.client() as b:
        earlier = {c.id for c in b.chat.completions.list(limit=100)}
        for i in range(30):
            client = a if i % 2 else b
            before.append(client.chat.completions.create(model="m", messages=USER, store=True).id)
        assert before == sorted(before), "ids minted by two instances still sort by creation"
        last_of_walk = before[-1] if order == "asc" else before[0]

        during: list[str] = []
        creating = threading.Event()
        creating.set()

        def create_through(server: ServerProcess) -> None:
            with server.client() as own:
                while creating.is_set() and len(during) < 1000:
                    completion = own.chat.completions.create(model="m", messages=USER, store=True)
                    during.append(completion.id)

        creators = [threading.Thread(target=create_through, args=(s,)) for s in servers]
        for creator in creators:
            creator.start()
        seen: list[str] = []
        try:
            page = b.chat.completions.list(limit=3, order=order)
            while True:
                seen += [c.id for c in page.data]
                if not page.has_more:
                    break
                if last_of_walk in seen:
                    creating.clear()  # past what existed: let the walk reach the end
                else:  # at least one create through each instance between two pages
                    target = len(during) + 2
                    wait_until(lambda: len(during) >= target, timeout=10)  # noqa: B023
                page = page.get_next_page()
        finally:
            creating.clear()
            for creator in creators:
                creator.join(timeout=60)

    assert len(during) >= 20, "the creates did not overlap the walk"
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert seen == sorted(seen, reverse=order == "desc"), "the walk left the id order"
    assert [i for i in before if i not in seen] == [], "an item that existed was skipped"
    assert set(seen) <= earlier | set(before) | set(during)


@dataclass
class Traffic:
    """Creates and reads through both instances from a few threads each, every outcome kept."""

    servers: tuple[ServerProcess, ServerProcess]
    # Callers per instance: enough that some create is in flight whenever the cut comes.
    callers: int = 3
    acknowledged: list[str] = field(default_factory=list)
    # (kind, HTTP status or exception class name, the error's type, seconds taken)
    outcomes: list[tuple[str, str, str | None, float]] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.running.set()
        for own, other in [self.servers, self.servers[::-1]] * self.callers:
            thread = threading.Thread(target=self._run, args=(own, other), daemon=True)
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self.running.clear()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, own: ServerProcess, other: ServerProcess) -> None:
        with own.client() as writer, other.client() as reader:
            writer, reader = (c.with_options(timeout=30) for c in (writer, reader))
            while self.running.is_set():
                created = self._call(
                    "create",
                    lambda: writer.chat.completions.create(model="m", messages=USER, store=True),
                )
                if created is not None:
                    self.acknowledged.append(created.id)
                    get = functools.partial(reader.chat.completions.retrieve, created.id)
                    self._call("get", get)
                self._call("list", lambda: reader.chat.completions.list(limit=5, order="desc"))
                time.sleep(0.01)

    def _call(self, kind: str, call: Callable[[], T]) -> T | None:
        started = time.monotonic()
        try:
            result = call()
        except openai.APIStatusError as error:
            body = error.body if isinstance(error.body, dict) else {}
            outcome = (str(error.status_code), body.get("type"))
            result = None
        except openai.APIError as error:  # no answer at all: a timeout or a dropped connection
            outcome, result = (type(error).__name__, None), None
        else:
            outcome = ("200", None)
        self.outcomes.append((kind, *outcome, time.monotonic() - started))
        return result


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until it holds; returns the seconds that took, or fails the test."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_database_restart_is_503_then_both_instances_recover_losing_nothing(
    servers: tuple[ServerProcess, ServerProcess], relay: RelayThread
) -> None:
    a_server, b_server = servers
    pids = [s.proc.pid for s in servers]
    traffic = Traffic(servers)
    traffic.start()
    try:
        wait_until(lambda: len(traffic.acknowledged) >= 20, timeout=30)
        relay.cut()
        cut_at = len(traffic.outcomes)
        wait_until(lambda: sum(o[1] == "503" for o in traffic.outcomes[cut_at:]) >= 20, 30)
        with a_server.client() as a, pytest.raises(openai.InternalServerError) as refused:
            a.chat.completions.create(model="m", messages=USER, store=True)
        assert refused.value.status_code == 503
        assert refused.value.type == "service_unavailable_error"
        assert set(refused.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
        for server in servers:
            health = httpx2.get(f"{server.url}/health", timeout=OUTAGE_CALL_LIMIT_S)
            assert health.status_code == 503
        time.sleep(0.5)
        outage = traffic.outcomes[cut_at:]

        relay.restore()
        restored_at = len(traffic.outcomes)
        wait_until(
            lambda: (
                {kind for kind, status, _, _ in traffic.outcomes[restored_at:] if status == "200"}
                >= {"create", "get", "list"}
            ),
            timeout=20,
        )
        acknowledged_before_stop = len(traffic.acknowledged)
        wait_until(lambda: len(traffic.acknowledged) >= acknowledged_before_stop + 10, 20)
    finally:
        traffic.stop()

    # During the outage: clean 503s in OpenAI's envelope, never a 500, never a hang.
    assert {(status, kind) for _, status, kind, _ in outage if status != "200"} == {
        ("503", "service_unavailable_error")
    }, sorted(set(outage))
    assert max(seconds for *_, seconds in traffic.outcomes) < OUTAGE_CALL_LIMIT_S
    assert [s.proc.pid for s in servers] == pids and all(s.proc.poll() is None for s in servers)
    # Nothing acknowledged was lost: every 200 create is there, through either instance.
    with a_server.client() as a, b_server.client() as b:
        listed = {c.id for c in b.chat.completions.list(limit=100)}
        assert [i for i in traffic.acknowledged if i not in listed] == []
        for completion_id in traffic.acknowledged[:: max(1, len(traffic.acknowledged) // 10)]:
            assert a.chat.completions.retrieve(completion_id).id == completion_id


SLOW_METADATA = """
CREATE FUNCTION chatkeep_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
CREATE TRIGGER chatkeep_test_slow BEFORE INSERT ON completion_metadata
    FOR EACH ROW EXECUTE FUNCTION chatkeep_test_slow();
"""


def test_a_restart_in_the_middle_of_a_transaction_is_a_503(
    servers: tuple[ServerProcess, ServerProcess], relay: RelayThread, database: str
) -> None:
    a_server, b_server = servers
    with a_server.client() as a, b_server.client() as b:
        stored = a.chat.completions.create(model="m", messages=USER, store=True).id
        # Every metadata row now takes a second to insert: a create and an update are
        # inside their transaction, waiting on the database, when the connection drops.
        run_aside(lambda: admin_execute(database, SLOW_METADATA))
        calls: dict[str, Callable[[], object]] = {
            "create": lambda: a.chat.completions.create(
                model="m", messages=USER, store=True, metadata={"k": "v"}
            ),
            "update": lambda: b.chat.completions.update(stored, metadata={"k": "v"}),
        }
        with ThreadPoolExecutor(len(calls)) as pool:
            pending = {name: pool.submit(call) for name, call in calls.items()}
            time.sleep(0.4)
            relay.cut()
            for name, future in pending.items():
                with pytest.raises(openai.InternalServerError) as refused:
                    future.result(timeout=OUTAGE_CALL_LIMIT_S)
                assert (refused.value.status_code, refused.value.type) == (
                    503, "service_unavailable_error"
                ), name  # fmt: skip
        run_aside(
            lambda: admin_execute(
                database, "DROP TRIGGER chatkeep_test_slow ON completion_metadata"
            )
        )
        relay.restore()
        wait_until(lambda: _answers(a) and _answers(b), timeout=20)
        assert b.chat.completions.retrieve(stored).id == stored


def _answers(client: openai.OpenAI) -> bool:
    try:
        client.chat.completions.list(limit=1)
    except openai.InternalServerError:
        return False
    return True
