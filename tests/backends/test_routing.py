"""The config file and the model router: what goes where, and what a bad file says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatkeep.backends.base import BackendRequest
from chatkeep.backends.config_file import ConfigError, ConfigFile, ModelEntry, load_config
from chatkeep.backends.echo import EchoBackend
from chatkeep.backends.routing import ModelRouter, build_router, load_router
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.config import Settings
from chatkeep.errors import ModelNotFoundError
from chatkeep.protocol.requests import CreateChatCompletionRequest
from tests.api.keyed import run_cli

CONFIG = """\
# Three upstreams and the models they serve.
default = "vllm"

[upstreams.vllm]
base_url = "http://127.0.0.1:8001/v1"
read_timeout = 300
max_connections = 64

[upstreams.ollama]
base_url = "http://127.0.0.1:11434/v1/"

[upstreams.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
forward_store = true

[[models]]
name = "llama"
upstream = "vllm"
upstream_model = "meta-llama/Llama-3.1-8B-Instruct"

[[models]]
name = "gpt-4o-local"
upstream = "ollama"
upstream_model = "llama3.1:8b"

[[models]]
pattern = "gpt-*"
upstream = "openai"

[[models]]
pattern = "qwen*"
upstream = "ollama"
upstream_model = "qwen2.5:7b"

[[models]]
name = "echo-test"
upstream = "echo"
"""

ENV = {"OPENAI_API_KEY": "sk-never-shown"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chatkeep.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def router(tmp_path: Path) -> ModelRouter:
    return load_router(write(tmp_path, CONFIG), environ=ENV)


def upstream_model(router: ModelRouter, model: str) -> tuple[str, str]:
    """Which backend a name goes to, and the model name that backend sends upstream."""
    route = router.route(model)
    body = {"model": model, "messages": []}
    request = BackendRequest(
        params=CreateChatCompletionRequest.model_construct(**body),
        body=body,
        completion_id="chatcmpl-x",
        created=0,
        include_usage=False,
    )
    sent = model
    if isinstance(route.backend, UpstreamBackend):
        sent = route.backend.forwarded_body(request, stream=False)["model"]
    assert sent == route.upstream_model
    return route.backend.name, sent


def test_exact_names_are_renamed_for_their_upstream(router: ModelRouter) -> None:
    assert upstream_model(router, "llama") == ("vllm", "meta-llama/Llama-3.1-8B-Instruct")
    assert upstream_model(router, "gpt-4o-local") == ("ollama", "llama3.1:8b")


def test_an_exact_name_wins_over_a_pattern(router: ModelRouter) -> None:
    # "gpt-4o-local" also matches "gpt-*", but its exact entry comes first.
    assert upstream_model(router, "gpt-4o-local")[0] == "ollama"


def test_patterns_keep_the_name_unless_renamed(router: ModelRouter) -> None:
    assert upstream_model(router, "gpt-4o") == ("openai", "gpt-4o")
    assert upstream_model(router, "qwen-anything") == ("ollama", "qwen2.5:7b")


def test_the_default_takes_unclaimed_names_unchanged(router: ModelRouter) -> None:
    assert upstream_model(router, "mistral-7b") == ("vllm", "mistral-7b")


def test_echo_can_be_routed_to(router: ModelRouter) -> None:
    assert router.backend_for("echo-test").name == "echo"


def test_without_a_default_an_unclaimed_name_is_model_not_found(tmp_path: Path) -> None:
    text = CONFIG.replace('default = "vllm"\n', "")
    router = load_router(write(tmp_path, text), environ=ENV)
    with pytest.raises(ModelNotFoundError) as info:
        router.route("mistral-7b")
    assert info.value.status_code == 404
    assert info.value.to_envelope()["error"]["code"] == "model_not_found"
    assert info.value.to_envelope()["error"]["param"] == "model"


def test_models_lists_the_exact_names_in_file_order(router: ModelRouter) -> None:
    listed = [(m["id"], m["owned_by"], m["object"]) for m in router.models()]
    assert listed == [
        ("llama", "vllm", "model"),
        ("gpt-4o-local", "ollama", "model"),
        ("echo-test", "echo", "model"),
    ]


def test_the_api_key_comes_from_the_named_variable(router: ModelRouter) -> None:
    backend = router.backend_for("gpt-4o")
    assert isinstance(backend, UpstreamBackend)
    assert backend.config.base_url == "https://api.openai.com/v1"
    assert backend.config.forward_store is True
    assert "sk-never-shown" not in repr(backend)
    assert "sk-never-shown" not in repr(backend.config)


def test_trailing_slash_of_a_base_url_is_dropped(router: ModelRouter) -> None:
    backend = router.backend_for("gpt-4o-local")
    assert isinstance(backend, UpstreamBackend)
    assert backend.config.base_url == "http://127.0.0.1:11434/v1"


def test_without_a_config_file_echo_answers_every_name() -> None:
    router = build_router(Settings())
    assert isinstance(router.backend_for("anything-at-all"), EchoBackend)
    assert [m["id"] for m in router.models()] == ["echo"]


def test_without_a_config_file_echo_models_limit_the_names() -> None:
    router = build_router(Settings(echo_models=["a", "b"]))
    assert router.backend_for("a").name == "echo"
    with pytest.raises(ModelNotFoundError):
        router.backend_for("c")
    assert [m["id"] for m in router.models()] == ["a", "b"]


def test_settings_config_file_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    router = build_router(Settings(config=path), environ=ENV)
    assert router.backend_for("llama").name == "vllm"


@pytest.mark.anyio
async def test_router_closes_backends_that_never_opened(router: ModelRouter) -> None:
    await router.aclose()


# --- bad files ------------------------------------------------------------------------------


def problem(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_router(path, environ=ENV if environ is None else environ)
    message = str(info.value)
    assert str(path) in message
    return message.replace(str(path), "FILE")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = problem(tmp_path, '[upstreams.vllm]\nbase_url = "http://x\n')
    assert message.startswith("FILE: not valid TOML:")
    assert "line 2" in message


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    text = CONFIG.replace("read_timeout = 300", "read_timout = 300")
    assert problem(tmp_path, text) == (
        "FILE:6: upstreams.vllm.read_timout: unknown key; did you mean `read_timeout`?"
    )


def test_missing_base_url_names_the_table(tmp_path: Path) -> None:
    text = CONFIG.replace('base_url = "http://127.0.0.1:8001/v1"\n', "")
    assert problem(tmp_path, text) == "FILE:4: upstreams.vllm.base_url: required key missing"


def test_bad_values_say_what_is_wrong(tmp_path: Path) -> None:
    text = CONFIG.replace("read_timeout = 300", "read_timeout = -1").replace(
        "http://127.0.0.1:11434/v1/", "127.0.0.1:11434"
    )
    lines = problem(tmp_path, text).splitlines()
    assert lines == [
        "FILE:6: upstreams.vllm.read_timeout: Input should be greater than 0",
        "FILE:10: upstreams.ollama.base_url: Value error, must be an http:// or https:// URL, "
        "like http://127.0.0.1:8000/v1",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "Input should be greater than 0"),
        ("-1", "Input should be greater than 0"),
        ("1.5", "Input should be a valid integer"),
        ('"32 MiB"', "Input should be a valid integer"),
        ("true", "Input should be a valid integer"),
    ],
)
def test_max_response_bytes_must_be_a_positive_integer(
    tmp_path: Path, value: str, message: str
) -> None:
    text = CONFIG.replace(
        "max_connections = 64", f"max_connections = 64\nmax_response_bytes = {value}"
    )
    assert problem(tmp_path, text) == f"FILE:8: upstreams.vllm.max_response_bytes: {message}"


def test_max_response_bytes_is_read_and_has_a_finite_default(tmp_path: Path) -> None:
    text = CONFIG.replace("max_connections = 64", "max_connections = 64\nmax_response_bytes = 1024")
    config = load_config(write(tmp_path, text))
    assert config.upstreams["vllm"].max_response_bytes == 1024
    assert config.upstreams["ollama"].max_response_bytes == 32 * 1024 * 1024


def test_unknown_upstream_of_a_model(tmp_path: Path) -> None:
    text = CONFIG.replace(
        'upstream = "ollama"\nupstream_model = "qwen', 'upstream = "olama"\nupstream_model = "qwen'
    )
    assert problem(tmp_path, text) == (
        "FILE:33: models[3].upstream: no upstream named 'olama' "
        "(defined: ollama, openai, vllm, or echo)"
    )


def test_name_and_pattern_together(tmp_path: Path) -> None:
    text = CONFIG.replace('pattern = "gpt-*"', 'pattern = "gpt-*"\nname = "gpt"')
    assert problem(tmp_path, text) == (
        "FILE:27: models[2]: Value error, give exactly one of `name` and `pattern`"
    )


def test_a_name_claimed_twice(tmp_path: Path) -> None:
    text = CONFIG + '\n[[models]]\nname = "llama"\nupstream = "ollama"\n'
    assert problem(tmp_path, text) == (
        "FILE:41: models[5].name: the model 'llama' is already claimed by an earlier entry"
    )


def test_unknown_default(tmp_path: Path) -> None:
    text = CONFIG.replace('default = "vllm"', 'default = "vlm"')
    assert problem(tmp_path, text).startswith("FILE:2: default: no upstream named 'vlm'")


def test_echo_is_reserved(tmp_path: Path) -> None:
    text = CONFIG + '\n[upstreams.echo]\nbase_url = "http://127.0.0.1:1/v1"\n'
    assert problem(tmp_path, text) == "FILE:40: upstreams.echo: `echo` is the built-in echo model"


def test_missing_api_key_variable_is_named_and_no_key_is_shown(tmp_path: Path) -> None:
    text = CONFIG.replace("[upstreams.ollama]", '[upstreams.ollama]\napi_key_env = "OLLAMA_KEY"')
    message = problem(tmp_path, text, environ={"OPENAI_API_KEY": "sk-never-shown"})
    assert message == (
        "FILE: upstreams.ollama.api_key_env: the environment variable OLLAMA_KEY is not set "
        "(it should hold the API key)"
    )
    assert "sk-never-shown" not in message


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value).startswith(f"{missing}: cannot read the config file")


def test_every_config_key_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "upstreams.md").read_text()
    keys = [*UpstreamConfig.model_fields, *ModelEntry.model_fields, *ConfigFile.model_fields]
    assert "`[upstreams.<name>]`" in docs
    assert "`[[models]]`" in docs
    keys.remove("upstreams")
    keys.remove("models")
    assert [key for key in keys if f"`{key}`" not in docs] == []


def test_the_documented_examples_load(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "upstreams.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", docs, flags=re.DOTALL)
    assert len(blocks) == 3
    environ = {"VLLM_API_KEY": "k", "OPENAI_API_KEY": "k"}
    for block in blocks:
        router = load_router(write(tmp_path, block), environ=environ)
        assert router.models()


def test_a_key_pasted_as_the_variable_name_is_not_echoed(tmp_path: Path) -> None:
    text = CONFIG.replace('api_key_env = "OPENAI_API_KEY"', 'api_key_env = "sk-proj-abc123"')
    message = problem(tmp_path, text)
    assert "sk-proj-abc123" not in message
    assert message == (
        "FILE:14: upstreams.openai.api_key_env: Value error, must be the name of an "
        "environment variable (letters, digits, _), not the key itself"
    )


def test_values_of_the_wrong_type_are_refused(tmp_path: Path) -> None:
    text = CONFIG.replace("forward_store = true", 'forward_store = "yes"')
    assert problem(tmp_path, text) == (
        "FILE:15: upstreams.openai.forward_store: Input should be a valid boolean"
    )


# --- mistakes of a first config file --------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# upstreams later\n", "[upstreams]\n", "models = []\n"])
def test_a_file_that_declares_nothing_is_refused(tmp_path: Path, text: str) -> None:
    assert problem(tmp_path, text) == (
        "FILE: declares no upstreams and no models: nothing to serve "
        "(without --config or CHATKEEP_CONFIG, chatkeep serves the echo model)"
    )


def test_upstreams_that_no_model_name_reaches_are_refused(tmp_path: Path) -> None:
    text = '[upstreams.vllm]\nbase_url = "http://127.0.0.1:8001/v1"\n'
    assert problem(tmp_path, text) == (
        "FILE: no [[models]] entry and no default: no model name reaches upstream 'vllm' "
        '(add [[models]] entries, or default = "vllm" before the first table)'
    )


def test_a_default_alone_serves_every_name(tmp_path: Path) -> None:
    router = load_router(write(tmp_path, 'default = "echo"\n'), environ={})
    assert router.backend_for("anything").name == "echo"


def test_an_unknown_key_suggests_the_closest_known_one(tmp_path: Path) -> None:
    text = CONFIG.replace('[[models]]\nname = "llama"', '[[models]]\nnmae = "llama"', 1)
    assert problem(tmp_path, text).splitlines()[0] == (
        "FILE:18: models[0].nmae: unknown key; did you mean `name`?"
    )


def test_an_unknown_key_without_a_close_one_lists_none(tmp_path: Path) -> None:
    text = CONFIG.replace("read_timeout = 300", "read_timeout = 300\ncolour = 3")
    assert problem(tmp_path, text) == "FILE:7: upstreams.vllm.colour: unknown key"


@pytest.mark.parametrize(("table", "meant"), [("upstream", "upstreams"), ("model", "models")])
def test_a_singular_table_name_suggests_the_plural(tmp_path: Path, table: str, meant: str) -> None:
    text = f'[{table}.vllm]\nbase_url = "http://127.0.0.1:8001/v1"\n'
    assert problem(tmp_path, text) == f"FILE:1: {table}: unknown key; did you mean `{meant}`?"


def test_a_top_level_key_after_a_table_says_where_it_belongs(tmp_path: Path) -> None:
    text = CONFIG.replace('default = "vllm"\n', "").replace(
        "forward_store = true\n", 'forward_store = true\ndefault = "vllm"\n'
    )
    assert problem(tmp_path, text) == (
        "FILE:15: upstreams.openai.default: unknown key; top-level keys (default) must come "
        "before the first [table]: TOML reads this one as part of [upstreams.openai]"
    )


def test_a_top_level_key_after_a_models_entry_says_where_it_belongs(tmp_path: Path) -> None:
    text = CONFIG.replace('default = "vllm"\n', "") + 'default = "vllm"\n'
    assert problem(tmp_path, text) == (
        "FILE:38: models[4].default: unknown key; top-level keys (default) must come "
        "before the first [table]: TOML reads this one as part of [[models]]"
    )


def test_models_as_a_single_table_says_to_double_the_brackets(tmp_path: Path) -> None:
    text = (
        '[upstreams.o]\nbase_url = "http://127.0.0.1:1/v1"\n[models]\nname = "a"\nupstream = "o"\n'
    )
    assert problem(tmp_path, text) == (
        "FILE:3: models: must be a list of tables: write [[models]] before each entry"
    )


def test_serve_refuses_an_empty_config_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append(app))
    config = write(tmp_path, "")
    database = f"sqlite:///{tmp_path / 'chatkeep.db'}"
    result = run_cli("serve", "--database-url", database, "--config", str(config))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {config}: declares no upstreams and no models: nothing to serve "
        "(without --config or CHATKEEP_CONFIG, chatkeep serves the echo model)\n"
    )
    assert served == []


def test_a_default_under_a_bare_upstreams_header_says_where_it_belongs(tmp_path: Path) -> None:
    text = '[upstreams]\ndefault = "echo"\n'
    assert problem(tmp_path, text) == (
        "FILE:2: upstreams.default: not an upstream table; top-level keys (default) must come "
        "before the first [table]: TOML reads this one as part of [upstreams]"
    )


def test_without_a_config_file_the_start_up_line_says_echo_answers() -> None:
    assert build_router(Settings()).summary == "echo: every model name"
    assert build_router(Settings(echo_models=["a", "b"])).summary == "echo: a, b"
