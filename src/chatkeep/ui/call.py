"""One request to a UI page: its session, its form, its viewer, and how pages answer.

`UiServices` is what the pages use (built once per app); `Call` is one request's share of
it. Every page answers through `Call.render` or `Call.redirect`; the page wrapper
(`chatkeep.ui.pages`) adds the security headers and the session cookie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from chatkeep import __version__
from chatkeep.service.access import Authenticator
from chatkeep.service.reads import StoredCompletions
from chatkeep.store.base import CompletionStore
from chatkeep.ui.access import Viewer
from chatkeep.ui.session import Session, SessionCookies
from chatkeep.usage.report import UsageReports

STATIC_PATH = "/ui/static/"


@dataclass(frozen=True, slots=True)
class UiServices:
    stored: StoredCompletions
    store: CompletionStore
    usage: UsageReports
    authenticator: Authenticator
    templates: Environment
    cookies: SessionCookies


@dataclass(slots=True)
class Call:
    request: Request
    services: UiServices
    session: Session
    # Whether the response must (re)write the session cookie.
    write_cookie: bool
    form: list[tuple[str, str]] = field(default_factory=list)
    viewer: Viewer | None = None

    @property
    def project(self) -> str:
        if self.viewer is None:  # only public pages have none, and they show no data
            raise RuntimeError("a page that shows a project's data ran without a viewer")
        return self.viewer.project

    def replace_session(self, session: Session) -> None:
        self.session = session
        self.write_cookie = True

    def form_value(self, name: str) -> str:
        values = self.form_values(name)
        return values[-1] if values else ""

    def form_values(self, name: str) -> list[str]:
        return [value for key, value in self.form if key == name]

    def path_param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return unquote(value) if "%" in value else value

    def base_url(self) -> str:
        return str(self.request.base_url).rstrip("/")

    def render(self, template: str, *, status: int = 200, **context: Any) -> Response:
        page = self.services.templates.get_template(template).render(
            viewer=self.viewer,
            csrf=self.session.csrf,
            version=__version__,
            static=static_url,
            path=self.request.url.path,
            **context,
        )
        return HTMLResponse(page, status_code=status)

    @staticmethod
    def redirect(url: str) -> Response:
        """After a POST: See Other, so that reloading the next page repeats nothing."""
        return RedirectResponse(url, status_code=303)


def static_url(name: str) -> str:
    return f"{STATIC_PATH}{name}?v={__version__}"
