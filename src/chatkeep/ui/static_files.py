"""The UI's own style sheet and script, served from the installed package (no CDN)."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

# Only these files, each with its type (not guessed from the platform's tables).
FILES = {
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Page links name the version (`?v=`), so a new release is fetched anew.
CACHE = "public, max-age=86400"


def read_static(name: str) -> bytes:
    return files("chatkeep.ui").joinpath("static", name).read_bytes()


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    kind = FILES.get(name)
    if kind is None:
        return PlainTextResponse("Not found", status_code=404)
    headers = {"cache-control": CACHE, "x-content-type-options": "nosniff"}
    return Response(read_static(name), media_type=kind, headers=headers)
