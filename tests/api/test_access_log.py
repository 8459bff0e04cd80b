"""The access log (`CHATKEEP_ACCESS_LOG`): one line per request, in the same `key=value`
form as the per-completion line, which carries the request id and project too. Neither
shows a key, a query string or message content."""

from __future__ import annotations

import logging
import re

import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.api.keyed import create_key, sdk
from tests.conftest import ThreadedServer

SECRET_WORDS = [{"role": "user", "content": "secret words"}]


def test_each_request_is_logged_once_with_its_request_id_and_project(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, key = create_key(database_url, "alpha")
    app = create_app(Settings(database_url=database_url, access_log=True))
    with ThreadedServer(app) as url, sdk(url, key) as client:
        made = client.chat.completions.with_raw_response.create(
            model="m", messages=SECRET_WORDS, store=True, metadata={"team": "hush"}
        )
        request_id = made.headers["x-request-id"]
        list(client.chat.completions.list(metadata={"team": "hush"}))
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve("chatcmpl-nope")
        with (
            sdk(url, "sk-wrong-" + "x" * 30) as stranger,
            pytest.raises(openai.AuthenticationError),
        ):
            stranger.models.list()
    access = [r.getMessage() for r in caplog.records if r.name == "chatkeep.access"]
    assert len(access) == 4, access
    assert access[0] == (
        f"request id={request_id} project=alpha method=POST path=/v1/chat/completions "
        f"status=200 duration_ms={access[0].rsplit('=', 1)[1]}"
    )
    listed = r"request id=req_\w+ project=alpha method=GET path=/v1/chat/completions status=200"
    assert re.fullmatch(listed + r" duration_ms=[\d.]+", access[1])
    assert "path=/v1/chat/completions/chatcmpl-nope status=404" in access[2]
    assert "project=- method=GET path=/v1/models status=401" in access[3]
    completion = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("completion ")
    ]
    assert len(completion) == 1
    assert f"request_id={request_id} project=alpha model=m" in completion[0]
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("chatkeep"))
    assert "hush" not in text and "secret words" not in text and key not in text


def test_the_access_log_is_off_by_default(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(Settings(database_url=database_url))
    with ThreadedServer(app) as url, openai.OpenAI(api_key="x", base_url=f"{url}/v1") as client:
        client.models.list()
    assert not [r for r in caplog.records if r.name == "chatkeep.access"]
