"""chatkeep in front of a second `chatkeep serve` process: relayed, streamed, stored here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from starlette.applications import Starlette

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.api.test_server_process import ServerProcess
from tests.conftest import API_KEY, ThreadedServer

MESSAGES = [{"role": "user", "content": "relay me, please"}]


@pytest.fixture
def upstream_process(tmp_path: Path) -> Iterator[ServerProcess]:
    workdir = tmp_path / "upstream"
    workdir.mkdir()
    process = ServerProcess(workdir)
    yield process
    process.stop()


@pytest.fixture
def front(tmp_path: Path, upstream_process: ServerProcess) -> Iterator[openai.OpenAI]:
    config = tmp_path / "chatkeep.toml"
    config.write_text(
        f'[upstreams.local]\nbase_url = "{upstream_process.url}/v1"\n\n'
        '[[models]]\npattern = "gpt-*"\nupstream = "local"\nupstream_model = "echo-model"\n'
    )
    app: Starlette = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'front.db'}", config=config)
    )
    with (
        ThreadedServer(app) as url,
        openai.OpenAI(api_key=API_KEY, base_url=f"{url}/v1", max_retries=0) as client,
    ):
        yield client


def test_relay_through_a_real_chatkeep_process(
    front: openai.OpenAI, upstream_process: ServerProcess
) -> None:
    plain = front.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        store=True,
        n=2,
        metadata={"via": "front"},  # type: ignore[arg-type]
    )
    assert [c.message.content for c in plain.choices] == ["relay me, please"] * 2
    assert plain.model == "echo-model"  # the upstream's answer, renamed model included
    stream = front.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        store=True,
        stream=True,  # type: ignore[arg-type]
    )
    (streamed_id,) = {chunk.id for chunk in stream}
    stored = {c.id: c for c in front.chat.completions.list()}
    assert set(stored) == {plain.id, streamed_id}
    assert stored[plain.id].metadata == {"via": "front"}
    assert stored[streamed_id].choices[0].message.content == "relay me, please"
    assert stored[streamed_id].usage is not None  # asked of the upstream for the record
    with pytest.raises(openai.NotFoundError):
        front.chat.completions.create(model="claude-3", messages=MESSAGES)  # type: ignore[arg-type]
    with upstream_process.client() as upstream:
        # `store` is chatkeep's business: not forwarded, so the upstream kept nothing.
        assert upstream.chat.completions.list().data == []
