"""The UI's routes, and the wrapper every page runs in.

The wrapper reads the session cookie (a browser without one gets a fresh anonymous
session), refuses any POST whose form lacks the session's CSRF token, finds the viewer's
project (or sends the browser to sign in, or shows that its key was revoked), turns the
service's errors into pages, and adds the headers every page carries: a strict
Content-Security-Policy (scripts and styles from this server's files only, nothing inline),
`X-Frame-Options: DENY`, no referrer, no caching of project data.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chatkeep.config import Settings
from chatkeep.errors import (
    AuthenticationError,
    ChatkeepError,
    InvalidRequestError,
    NotFoundError,
    StoreUnavailableError,
)
from chatkeep.service.access import Authenticator
from chatkeep.service.reads import StoredCompletions
from chatkeep.store.base import CompletionStore
from chatkeep.ui import account_pages, completion_pages, static_files
from chatkeep.ui.access import viewer_for
from chatkeep.ui.call import Call, UiServices
from chatkeep.ui.session import SessionCookies, is_https, new_session, session_secret
from chatkeep.usage.report import UsageReports

logger = logging.getLogger(__name__)

Handler = Callable[[Call], Awaitable[Response]]
# The forms are a key, a few metadata pairs, a token: far below this.
MAX_FORM_BYTES = 256 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class FormError(InvalidRequestError):
    """A POST body that is no small URL-encoded form."""


def build_services(
    settings: Settings,
    *,
    stored: StoredCompletions,
    store: CompletionStore,
    usage: UsageReports,
    authenticator: Authenticator,
) -> UiServices:
    templates = Environment(
        loader=PackageLoader("chatkeep.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    cookies = SessionCookies(session_secret(settings), int(settings.ui_session_hours * 3600))
    return UiServices(stored, store, usage, authenticator, templates, cookies)


def ui_routes(services: UiServices) -> list[BaseRoute]:
    """Every route of the UI: `/` and `/ui/...`."""

    def page(handler: Handler, *, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await _serve(services, request, handler, public=public)

        return endpoint

    return [
        Route("/", _to_ui, methods=["GET"]),
        Route("/ui/", _to_ui, methods=["GET"]),
        Route("/ui", page(completion_pages.list_page), methods=["GET"]),
        Route("/ui/sign-in", page(account_pages.sign_in_page, public=True), methods=["GET"]),
        Route("/ui/sign-in", page(account_pages.sign_in, public=True), methods=["POST"]),
        Route("/ui/sign-out", page(account_pages.sign_out, public=True), methods=["POST"]),
        Route("/ui/usage", page(account_pages.usage_page), methods=["GET"]),
        Route(
            "/ui/completions/{completion_id}",
            page(completion_pages.detail_page),
            methods=["GET"],
        ),
        Route(
            "/ui/completions/{completion_id}/metadata",
            page(completion_pages.update_metadata),
            methods=["POST"],
        ),
        Route(
            "/ui/completions/{completion_id}/delete",
            page(completion_pages.delete_page),
            methods=["GET"],
        ),
        Route(
            "/ui/completions/{completion_id}/delete",
            page(completion_pages.delete),
            methods=["POST"],
        ),
        Route("/ui/static/{name}", static_files.static_file, methods=["GET"]),
        Route("/ui/{rest:path}", page(_unknown_page, public=True), methods=["GET", "POST"]),
    ]


async def _to_ui(request: Request) -> Response:
    return RedirectResponse("/ui", status_code=307)


async def _unknown_page(call: Call) -> Response:
    return _error_page(call, 404, "Page not found", "There is no such page.")


async def _serve(
    services: UiServices, request: Request, handler: Handler, *, public: bool
) -> Response:
    session = services.cookies.read(request)
    call = Call(request, services, session or new_session(), write_cookie=session is None)
    try:
        response = await _answer(call, handler, public=public, had_session=session is not None)
    except StoreUnavailableError:
        response = _error_page(
            call, 503, "The database is unavailable", "The store did not answer; try again."
        )
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["cache-control"] = "no-store"
    if call.write_cookie:
        services.cookies.write(response, call.session, secure=is_https(request))
    return response


async def _answer(call: Call, handler: Handler, *, public: bool, had_session: bool) -> Response:
    if call.request.method == "POST":
        try:
            call.form = await _read_form(call.request)
        except FormError as error:
            return _error_page(call, 400, "Bad form", error.message)
        # A form from this site carries the token of the cookie it was shown with; a forged
        # one (another site's page, or a script without the page) cannot know it.
        if not had_session or not call.session.accepts(call.form_value("csrf")):
            return _error_page(
                call,
                403,
                "Form refused",
                "This form did not come from this site's page, or its page has expired. "
                "Reload the page and try again.",
            )
    try:
        if not public:
            call.viewer = await viewer_for(call.services.authenticator, call.session)
            call.request.state.project = call.viewer.project  # for the access log
        return await handler(call)
    except AuthenticationError:
        if call.session.key_hash is None:
            return call.redirect("/ui/sign-in")
        call.replace_session(new_session())  # the revoked key's session ends here
        call.viewer = None
        return call.render("revoked.html", status=401)
    except NotFoundError:
        return _error_page(
            call,
            404,
            "Not found",
            "No stored completion of this project has this id: it may have been deleted, "
            "or never stored.",
        )
    except InvalidRequestError as error:
        return _error_page(call, error.status_code, "Bad request", error.message)
    except StoreUnavailableError:
        raise
    except ChatkeepError as error:
        logger.warning("UI page %s failed: %s", call.request.url.path, type(error).__name__)
        return _error_page(call, error.status_code, "Error", error.message)


def _error_page(call: Call, status: int, title: str, message: str) -> Response:
    return call.render("error.html", status=status, title=title, message=message)


async def _read_form(request: Request) -> list[tuple[str, str]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return []  # no form, so no token: refused as forged

    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"The form is larger than {MAX_FORM_BYTES} bytes.")
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=200
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError("The form could not be read (not UTF-8, or too many fields).") from None
