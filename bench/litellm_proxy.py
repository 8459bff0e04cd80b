"""LiteLLM's proxy, installed from PyPI in its own virtual environment, for comparison.

The environment lives outside the repository (by default ~/.cache/chatkeep-bench/
litellm-venv) and is made on first use with `pip install 'litellm[proxy]'`. The proxy gets a
config that routes the bench model, as `openai/<model>`, to the same fake upstream the
other relays use. Its settings are LiteLLM's defaults, except that it reads its model cost
map from the installed package rather than fetching it from GitHub at start-up, and that
it runs without a master key (as chatkeep runs without API keys here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEFAULT_VENV = Path.home() / ".cache" / "chatkeep-bench" / "litellm-venv"
ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}


def ensure_installed(venv: Path, log: Path) -> Path:
    """The `litellm` executable, installing it into `venv` first when missing."""
    executable = venv / "bin" / "litellm"
    if executable.exists():
        return executable
    print(f"installing litellm[proxy] into {venv} (once; a minute or two)", flush=True)
    with log.open("wb") as out:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    return executable


def version(venv: Path) -> str:
    completed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return completed.stdout.strip() or "unknown"


def write_config(path: Path, *, model: str, upstream_base_url: str) -> Path:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: {upstream_base_url}\n"
        "      api_key: unused\n"
        # No master key: like chatkeep without API keys, every caller is let in.
        "general_settings:\n"
        "  dangerously_permit_weak_or_unset_master_key: true\n"
    )
    return path


def command(executable: Path, config: Path, port: int) -> list[str]:
    return [
        str(executable),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
