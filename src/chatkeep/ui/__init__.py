"""The web UI: stored completions for people, at `/ui`, served by `chatkeep serve`.

Server-rendered pages (Jinja2 templates and our own CSS and script, shipped in this
package) over the same service functions as the API, for the project of the API key a
browser signed in with (or the default project of an open loopback server). See docs/ui.md.
"""

from __future__ import annotations

from chatkeep.ui.pages import build_services, ui_routes

__all__ = ["build_services", "ui_routes"]
