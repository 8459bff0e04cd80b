"""The usage chart (a pure function from rows to SVG, checked on what it draws) and the
usage page around it, given rows."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import date

import pytest
from starlette.requests import Request

from chatkeep.config import Settings
from chatkeep.ui.access import Viewer
from chatkeep.ui.account_pages import render_usage
from chatkeep.ui.call import Call
from chatkeep.ui.pages import build_services
from chatkeep.ui.session import new_session
from chatkeep.ui.usage import (
    OTHER_COLOUR,
    PALETTE,
    UsageRow,
    models_of,
    nice_ceiling,
    render_usage_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def row(day: int, model: str, requests: int, tokens_in: int = 0, tokens_out: int = 0) -> UsageRow:
    return UsageRow(date(2026, 12, day), model, requests, tokens_in, tokens_out)


def parsed(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def bars(svg: str) -> list[tuple[float, float, str, str]]:
    """(x, height, colour, tooltip) of every bar."""
    root = parsed(svg)
    return [
        (
            float(r.get("x", 0)),
            float(r.get("height", 0)),
            r.get("fill", ""),
            (r.findtext(f"{SVG}title") or ""),
        )
        for r in root.iter(f"{SVG}rect")
    ]


def test_no_rows_draw_nothing() -> None:
    assert render_usage_chart([], "requests", title="t") == ""


def test_bars_stack_per_day_in_proportion() -> None:
    rows = [row(1, "big", 30), row(1, "small", 10), row(2, "big", 20)]
    drawn = bars(render_usage_chart(rows, "requests", title="Requests"))
    assert [tip for *_, tip in drawn] == [
        "2026-12-01 · big: 30 requests",
        "2026-12-01 · small: 10 requests",
        "2026-12-02 · big: 20 requests",
    ]
    (x1, h_big, c_big, _), (x2, h_small, c_small, _), (x3, h_big2, c_big2, _) = drawn
    assert x1 == x2 < x3  # one bar per day
    assert h_big == pytest.approx(3 * h_small) and h_big == pytest.approx(1.5 * h_big2)
    assert c_big == c_big2 == PALETTE[0] and c_small == PALETTE[1]


def test_tokens_are_input_plus_output() -> None:
    rows = [row(1, "m", 1, tokens_in=100, tokens_out=50)]
    ((_, _, _, tip),) = bars(render_usage_chart(rows, "tokens", title="Tokens"))
    assert tip == "2026-12-01 · m: 150 tokens"


def test_days_without_use_keep_their_place() -> None:
    rows = [row(1, "m", 5), row(4, "m", 5)]
    svg = render_usage_chart(rows, "requests", title="t")
    labels = [t.text for t in parsed(svg).iter(f"{SVG}text") if t.text and "-" in t.text]
    assert labels == ["12-01", "12-02", "12-03", "12-04"]
    (x1, *_), (x4, *_) = bars(svg)
    assert x4 > x1


def test_model_names_and_titles_are_escaped() -> None:
    hostile = '<script>alert(1)</script>"&'
    svg = render_usage_chart([row(1, hostile, 2)], "requests", title=hostile)
    root = parsed(svg)  # still well-formed XML
    assert root.get("aria-label") == hostile
    assert "<script>" not in svg
    assert bars(svg)[0][3] == f"2026-12-01 · {hostile}: 2 requests"


def test_models_order_and_colours_past_the_palette() -> None:
    rows = [row(1, f"m{n}", n + 1) for n in range(len(PALETTE) + 2)]
    names = models_of(rows)
    assert names[0] == f"m{len(PALETTE) + 1}"  # most requests first
    colours = {
        tip.split(" · ")[1].split(":")[0]: c
        for *_, c, tip in bars(render_usage_chart(rows, "requests", title="t"))
    }
    assert colours[names[-1]] == OTHER_COLOUR and colours[names[0]] == PALETTE[0]


@pytest.mark.parametrize(
    ("value", "top", "step"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (3, 3, 1),
        (7, 8, 2),
        (40, 40, 10),
        (41, 60, 20),
        (999, 1000, 500),
        (1234, 1500, 500),
    ],
)
def test_axis_tops_are_round(value: float, top: float, step: float) -> None:
    assert nice_ceiling(value) == (top, step)


def _call_for(path: str) -> Call:
    services = build_services(
        Settings(),
        stored=None,  # type: ignore[arg-type]  (the page renders given rows: no reads)
        store=None,  # type: ignore[arg-type]
        usage=None,  # type: ignore[arg-type]
        authenticator=None,  # type: ignore[arg-type]
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "query_string": b"",
        "server": ("chatkeep", 80),
        "scheme": "http",
        "root_path": "",
    }
    return Call(
        Request(scope),
        services,
        new_session(),
        write_cookie=False,
        viewer=Viewer("alpha", signed_in=True),
    )


def test_the_usage_page_shows_chart_and_table_of_the_rows() -> None:
    rows = [row(1, "gpt-4o", 1200, 50_000, 9_000), row(2, "<b>odd</b>", 3, 10, 20)]
    page = render_usage(_call_for("/ui/usage"), rows, days=30).body.decode()
    assert page.count('<svg class="chart"') == 2
    assert '<td>2026-12-01</td><td><code>gpt-4o</code></td><td class="num">1,200</td>' in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "<b>odd</b>" not in page


def test_without_usage_the_page_says_so() -> None:
    page = render_usage(_call_for("/ui/usage"), [], days=30).body.decode()
    assert "No completions in the last 30 days" in page and "<svg" not in page.split("<main")[1]
