"""A key never shows in the logs: every log line of a full run with keys is searched for
the secrets used (right, wrong and revoked ones) and for their hashes.

Once in-process (every record, at DEBUG, exceptions included) and once as a real
`chatkeep serve` process at `--log-level debug` (everything it prints).
"""

from __future__ import annotations

import logging
from pathlib import Path

import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.service.keys import hash_key, new_secret
from tests.api.keyed import create_key, revoke_key, sdk
from tests.api.test_server_process import ServerProcess
from tests.conftest import ThreadedServer

HI = [{"role": "user", "content": "hi"}]


def use_every_endpoint(url: str, secret: str) -> None:
    with sdk(url, secret) as client:
        completions = client.chat.completions
        made = completions.create(model="m", messages=HI, store=True, metadata={"a": "1"})  # type: ignore[arg-type]
        with completions.stream(model="m", messages=HI, store=True) as stream:  # type: ignore[arg-type]
            streamed = stream.get_final_completion()
        assert {c.id for c in completions.list(metadata={"a": "1"})} == {made.id}
        assert completions.retrieve(streamed.id).id == streamed.id
        assert completions.update(made.id, metadata={"b": "2"}).metadata == {"b": "2"}
        assert completions.messages.list(made.id).data[0].content == "hi"
        assert completions.delete(made.id).deleted
        assert client.models.list().data
        assert client.models.retrieve("gpt-4o").id == "gpt-4o"
        with pytest.raises(openai.NotFoundError):
            completions.retrieve(made.id)


def use_bad_keys(url: str, wrong: str, revoked: str) -> None:
    for key in (wrong, revoked, f"Basic {wrong}"):
        with sdk(url, key) as client, pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]


def assert_secret_free(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
        assert secret[6:] not in text  # not even without its fixed prefix
        assert hash_key(secret) not in text


def test_no_key_appears_in_any_log_record(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, secret = create_key(database_url, "alpha", name="ci")
    revoked_id, revoked = create_key(database_url, "alpha")
    revoke_key(database_url, revoked_id)
    wrong = new_secret()
    app = create_app(Settings(database_url=database_url, log_level="debug"))
    with ThreadedServer(app) as url:
        use_every_endpoint(url, secret)
        use_bad_keys(url, wrong, revoked)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any(revoked_id in r.getMessage() for r in caplog.records)  # ids may be logged
    logged = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert_secret_free(logged, secret, revoked, wrong)


def test_no_key_appears_in_the_output_of_a_real_server(tmp_path: Path, database_url: str) -> None:
    _, secret = create_key(database_url, "alpha")
    revoked_id, revoked = create_key(database_url, "alpha")
    revoke_key(database_url, revoked_id)
    wrong = new_secret()
    server = ServerProcess(tmp_path, "--database-url", database_url, "--log-level", "debug")
    try:
        use_every_endpoint(server.url, secret)
        use_bad_keys(server.url, wrong, revoked)
    finally:
        output = server.stop()
    assert "API keys are required" in output
    assert "completion id=chatcmpl-" in output  # the run was logged
    assert_secret_free(output, secret, revoked, wrong)
