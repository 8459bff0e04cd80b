"""Signing in and out, and the usage page.

Signing in takes an API key pasted into a form (a POST: the key is never in a URL), checks
it as the API would, and keeps only its hash in the session. The key is never written
into a page, a log or a URL; a refused key is not echoed back, not even masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from markupsafe import Markup
from starlette.responses import Response

from chatkeep.errors import AuthenticationError
from chatkeep.ui.access import key_hash_for_sign_in, viewer_for
from chatkeep.ui.call import Call
from chatkeep.ui.session import new_session
from chatkeep.ui.usage import UsageRow, colour_of, models_of, render_usage_chart, usage_rows

USAGE_DAYS = (7, 30, 90)
REFUSED = (
    "That key was not accepted: it is not an API key of this server, or it has been "
    "revoked. Keys are made with `chatkeep keys create --project NAME`."
)


async def sign_in_page(call: Call) -> Response:
    try:
        call.viewer = await viewer_for(call.services.authenticator, call.session)
    except AuthenticationError:
        if call.session.key_hash is not None:  # a revoked key's session: end it quietly
            call.replace_session(new_session())
        signed_out = call.request.query_params.get("signed_out") == "1"
        return call.render("sign_in.html", error="", signed_out=signed_out)
    return call.redirect("/ui")  # signed in already, or an open server


async def sign_in(call: Call) -> Response:
    key_hash = await key_hash_for_sign_in(call.services.authenticator, call.form_value("key"))
    if key_hash is None:
        return call.render("sign_in.html", status=401, error=REFUSED, signed_out=False)
    call.replace_session(new_session(key_hash))  # a new CSRF token with the new sign-in
    return call.redirect("/ui")


async def sign_out(call: Call) -> Response:
    call.replace_session(new_session())
    return call.redirect("/ui/sign-in?signed_out=1")


async def usage_page(call: Call) -> Response:
    raw = call.request.query_params.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in USAGE_DAYS else 30
    until = datetime.now(UTC).date()
    since = until - timedelta(days=days - 1)
    rows = await usage_rows(call.services.usage, call.project, since, until)
    return render_usage(call, rows, days=days)


def render_usage(call: Call, rows: Sequence[UsageRow], *, days: int) -> Response:
    """The usage page for `rows`."""
    models = models_of(rows)
    return call.render(
        "usage.html",
        rows=rows,
        days=days,
        choices=USAGE_DAYS,
        models=models,
        # The renderer escapes every string it writes.
        requests_chart=Markup(render_usage_chart(rows, "requests", title="Requests per day")),
        tokens_chart=Markup(render_usage_chart(rows, "tokens", title="Tokens per day")),
        colours={model: colour_of(index) for index, model in enumerate(models)},
    )
