"""What an operator learns at start-up, and what a client is told when the base_url is wrong.

The upstreams are real servers on loopback (`FaultUpstream`); a base_url without its `/v1`
is the same server addressed one level too high, as an operator would get it wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import openai
import pytest

from chatkeep.backends.routing import ModelRouter, load_router
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.errors import UpstreamRejectedError
from tests.backends.conftest import chatkeep_with_config
from tests.backends.fault_upstream import FaultUpstream
from tests.backends.upstream_calls import LIMIT, collect, raised_by, request
from tests.conftest import free_port

pytestmark = pytest.mark.anyio

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def without_v1(upstream: FaultUpstream) -> str:
    return upstream.base_url.removesuffix("/v1")


def router_for(
    tmp_path: Path,
    upstreams: dict[str, str],
    *,
    environ: dict[str, str] | None = None,
    models: str = "",
    default: str | None = None,
) -> ModelRouter:
    """A router for these `[upstreams.<name>]` bodies, each upstream reached by `default`
    unless `models` (TOML of `[[models]]` entries) says otherwise."""
    text = f'default = "{default or next(iter(upstreams))}"\n'
    for name, body in upstreams.items():
        text += f"\n[upstreams.{name}]\n{body}\n"
    config = tmp_path / "chatkeep.toml"
    config.write_text(text + models, encoding="utf-8")
    return load_router(config, environ=environ or {})


@pytest.fixture
async def started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Callable[..., ModelRouter]]:
    """Builds a router as `router_for` does; the test then awaits its `start()`."""
    caplog.set_level(logging.DEBUG)
    made: list[ModelRouter] = []

    def make(upstreams: dict[str, str], **options: object) -> ModelRouter:
        router = router_for(tmp_path, upstreams, **options)  # type: ignore[arg-type]
        made.append(router)
        return router

    yield make
    for router in made:
        await router.aclose()


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """chatkeep's messages at this level (not the fake upstream's access log)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == level and r.name.startswith("chatkeep.")
    ]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return logged(caplog, logging.WARNING)


# --- the start-up line and checks -------------------------------------------------------------


async def test_start_logs_once_which_names_go_where(
    upstream: FaultUpstream, started: Callable[..., ModelRouter], caplog: pytest.LogCaptureFixture
) -> None:
    models = (
        '[[models]]\npattern = "llama-3*"\nupstream = "vllm"\n\n'
        '[[models]]\nname = "qwen2"\nupstream = "vllm"\nupstream_model = "Qwen/Qwen2"\n\n'
        '[[models]]\nname = "test"\nupstream = "echo"\n'
    )
    url = upstream.base_url
    router = started({"vllm": f'base_url = "{url}"'}, models=models, default="echo")
    with anyio.fail_after(LIMIT):
        await router.start()
    assert logged(caplog, logging.INFO) == [
        f"serving models: upstream 'vllm' ({url}): llama-3*, qwen2 -> Qwen/Qwen2; "
        "echo: test, every other name"
    ]
    assert warnings(caplog) == []
    assert upstream.models_asked == 1


async def test_without_a_default_the_line_says_other_names_are_404(tmp_path: Path) -> None:
    models = '[[models]]\nname = "a"\nupstream = "echo"\n'
    config = tmp_path / "chatkeep.toml"
    config.write_text(
        f'[upstreams.idle]\nbase_url = "http://user:secret@127.0.0.1:1/v1"\n\n{models}'
    )
    router = load_router(config, environ={})
    assert router.summary == (
        "upstream 'idle' (http://127.0.0.1:1/v1): no model name (nothing routes here); "
        "echo: a; any other name: 404 model_not_found"
    )


async def test_a_base_url_without_v1_is_named_at_start(
    upstream: FaultUpstream, started: Callable[..., ModelRouter], caplog: pytest.LogCaptureFixture
) -> None:
    router = started({"vllm": f'base_url = "{without_v1(upstream)}"'})
    with anyio.fail_after(LIMIT):
        await router.start()
    assert warnings(caplog) == [
        f"Upstream 'vllm' failed its start-up check: GET {without_v1(upstream)}/models "
        "answered 404: does its base_url end with /v1?"
    ]


async def test_a_wrong_key_is_named_at_start_and_never_logged(
    upstream: FaultUpstream, started: Callable[..., ModelRouter], caplog: pytest.LogCaptureFixture
) -> None:
    upstream.api_key = "sk-the-right-one"
    body = f'base_url = "{upstream.base_url}"\napi_key_env = "FAULT_KEY"'
    router = started({"fault": body}, environ={"FAULT_KEY": "sk-wrong-secret"})
    with anyio.fail_after(LIMIT):
        await router.start()
    assert warnings(caplog) == [
        f"Upstream 'fault' failed its start-up check: GET {upstream.base_url}/models "
        "answered 401: is api_key_env right? (the key is read from FAULT_KEY)"
    ]
    assert "sk-wrong-secret" not in caplog.text
    assert "sk-the-right-one" not in caplog.text


async def test_a_server_that_wants_a_key_is_named_at_start(
    upstream: FaultUpstream, started: Callable[..., ModelRouter], caplog: pytest.LogCaptureFixture
) -> None:
    upstream.api_key = "sk-the-right-one"
    router = started({"fault": f'base_url = "{upstream.base_url}"'})
    with anyio.fail_after(LIMIT):
        await router.start()
    assert warnings(caplog) == [
        f"Upstream 'fault' failed its start-up check: GET {upstream.base_url}/models "
        "answered 401: it wants an API key; name its variable in api_key_env"
    ]


async def test_an_upstream_that_is_down_is_named_and_chatkeep_starts_anyway(
    started: Callable[..., ModelRouter], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    router = started({"down": f'base_url = "{url}"'})
    with anyio.fail_after(LIMIT):
        await router.start()
    assert warnings(caplog) == [
        f"Upstream 'down' failed its start-up check: GET {url}/models "
        "could not connect: connection refused"
    ]


async def test_silent_upstreams_hold_start_up_for_one_bound_not_one_each(
    upstream: FaultUpstream, started: Callable[..., ModelRouter], caplog: pytest.LogCaptureFixture
) -> None:
    upstream.models_delay = 30
    body = f'base_url = "{upstream.base_url}"\nconnect_timeout = 1'
    router = started({"a": body, "b": body, "c": body})
    began = time.monotonic()
    with anyio.fail_after(LIMIT):
        await router.start()
    took = time.monotonic() - began
    assert took < 2.5  # together they take one bound (1 s); one after the other, 3 s
    assert sorted(warnings(caplog)) == [
        f"Upstream '{name}' failed its start-up check: GET {upstream.base_url}/models "
        "got no answer within 1 s"
        for name in "abc"
    ]


# --- a 404 of the chat route ------------------------------------------------------------------


@pytest.fixture
async def chatkeep_without_v1(
    tmp_path: Path, upstream: FaultUpstream
) -> AsyncIterator[openai.AsyncOpenAI]:
    """chatkeep in-process, relaying every model to `upstream` through a base_url that lacks
    its `/v1`."""
    toml = f'default = "vllm"\n[upstreams.vllm]\nbase_url = "{without_v1(upstream)}"\n'
    async with chatkeep_with_config(tmp_path, toml) as client:
        yield client


async def test_a_client_is_told_the_base_url_is_wrong_not_its_own_url(
    chatkeep_without_v1: openai.AsyncOpenAI, upstream: FaultUpstream
) -> None:
    hint = (
        "Upstream 'vllm' answered 404 for POST /chat/completions: "
        "check that its base_url ends with /v1."
    )
    with anyio.fail_after(LIMIT):
        with pytest.raises(openai.NotFoundError) as plain:
            await chatkeep_without_v1.chat.completions.create(model="ok", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError) as streamed:
            await chatkeep_without_v1.chat.completions.create(
                model="ok", messages=MESSAGES, stream=True
            )
    for error in (plain.value, streamed.value):
        assert error.status_code == 404  # the status the upstream gave, as documented
        assert isinstance(error.body, dict)
        assert error.body["message"] == hint
        assert error.response.headers["x-should-retry"] == "false"
        assert "127.0.0.1" not in error.response.text  # where the upstream lives is not said


async def test_the_hint_needs_no_start_up_check(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(base_url=without_v1(upstream))
    with anyio.fail_after(LIMIT):
        error = await raised_by(backend.create(request("ok")))
    assert isinstance(error, UpstreamRejectedError)
    assert error.status_code == 404
    assert error.message == (
        "Upstream 'fault' answered 404 for POST /chat/completions: "
        "check that its base_url ends with /v1."
    )


async def test_a_model_the_upstream_does_not_know_gets_no_hint(
    upstream: FaultUpstream, backend: UpstreamBackend
) -> None:
    with anyio.fail_after(LIMIT):
        first = await raised_by(backend.create(request("ollama-404")))
        second = await raised_by(collect(backend, request("ollama-404", stream=True)))
    for error in (first, second):
        assert error.status_code == 404
        assert error.message == "model 'ollama-404' not found"
    assert upstream.models_asked == 1  # asked on the first 404, then remembered


async def test_a_base_url_with_v1_in_the_wrong_place_is_named_too(
    upstream: FaultUpstream, make_backend: Callable[..., UpstreamBackend]
) -> None:
    backend = make_backend(base_url=f"{upstream.base_url}/v1")
    with anyio.fail_after(LIMIT):
        await backend.start()
        error = await raised_by(backend.create(request("ok")))
    assert error.message == (
        "Upstream 'fault' answered 404 for POST /v1/v1/chat/completions: "
        "check its base_url: GET /v1/v1/models answers 404 too."
    )
