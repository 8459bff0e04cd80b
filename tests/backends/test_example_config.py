"""`chatkeep.example.toml` loads, routes as its comments say, and shows every option.

A new option of the config file fails `test_the_example_sets_every_option` until the
example shows it with a comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatkeep.backends.config_file import ConfigError, ConfigFile, ModelEntry, load_config
from chatkeep.backends.routing import load_router
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.lifecycle.policy import SETTINGS
from chatkeep.usage.prices import ModelPrice

EXAMPLE = Path(__file__).parents[2] / "chatkeep.example.toml"
ENVIRON = {"OPENAI_API_KEY": "sk-example"}
_KEY_LINE = re.compile(r"^([A-Za-z_]+)\s*=")


def test_the_example_loads_and_routes_as_it_says() -> None:
    router = load_router(EXAMPLE, environ=ENVIRON)
    assert router.route("llama-3.1-8b").backend.name == "vllm"
    assert router.route("llama-3.1-8b").upstream_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert router.route("llama3.2:3b").backend.name == "ollama"
    assert router.route("qwen-coder").upstream_model == "qwen2.5:7b"
    assert router.route("echo-test").backend.name == "echo"
    assert router.route("gpt-4o").backend.name == "openai"  # the default


def test_the_example_names_the_variables_it_needs() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        load_router(EXAMPLE, environ={})
    assert "OPENAI_API_KEY" in EXAMPLE.read_text().split("[upstreams.vllm]")[0]


def test_the_example_sets_every_option() -> None:
    config = load_config(EXAMPLE)
    upstream_options = set().union(*(u.model_fields_set for u in config.upstreams.values()))
    model_options = set().union(*(m.model_fields_set for m in config.models))
    assert sorted(set(UpstreamConfig.model_fields) - upstream_options) == []
    assert sorted(set(ModelEntry.model_fields) - model_options) == []
    assert sorted(set(ConfigFile.model_fields) - config.model_fields_set) == []
    project_options = set().union(*config.projects.values())
    assert sorted(set(SETTINGS) - project_options) == []
    price_options = set().union(*(p.model_fields_set for p in config.prices.values()))
    assert sorted(set(ModelPrice.model_fields) - price_options) == []


def test_every_option_is_explained_by_a_comment_above_its_first_use() -> None:
    lines = EXAMPLE.read_text().splitlines()
    first_use: dict[str, int] = {}
    for number, line in enumerate(lines):
        key = _KEY_LINE.match(line)
        if key:
            first_use.setdefault(key.group(1), number)
    assert [
        name for name, number in first_use.items() if not lines[number - 1].startswith("#")
    ] == []
    assert sorted(first_use) == sorted(
        {
            *UpstreamConfig.model_fields,
            *ModelEntry.model_fields,
            *SETTINGS,
            *ModelPrice.model_fields,
            "default",
        }
    )
