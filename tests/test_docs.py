"""The README documents every setting and every route."""

from __future__ import annotations

from pathlib import Path

from chatkeep.config import Settings
from chatkeep.http import create_route
from chatkeep.http.routes import ROUTES

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"CHATKEEP_{name.upper()}"
        for name in Settings.model_fields
        if f"`CHATKEEP_{name.upper()}`" not in README
    ]
    assert missing == []


def test_every_setting_has_a_description() -> None:
    assert [name for name, f in Settings.model_fields.items() if not f.description] == []


def test_every_route_is_documented() -> None:
    missing = [] if f"POST {create_route.PATH}" in README else [f"POST {create_route.PATH}"]
    for route in ROUTES:
        for method in sorted(route.methods or ()):  # type: ignore[attr-defined]
            if method == "HEAD":
                continue
            shown = route.path.replace("{completion_id}", "{id}").replace("{model:path}", "{model}")  # type: ignore[attr-defined]
            if f"{method} {shown}" not in README:
                missing.append(f"{method} {shown}")
    assert missing == []
