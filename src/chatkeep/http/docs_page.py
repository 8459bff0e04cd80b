"""`GET /docs`: this server's OpenAPI document, rendered by Swagger UI, from this server only.

Swagger UI's script, style sheet and icons come from the `swagger-ui-bundle-v2` package and
are served under `/docs/static/`; the page and its start-up script are ours. Nothing is
loaded from elsewhere (the page works offline), and its Content-Security-Policy makes the
browser refuse anything that would be.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from chatkeep import __version__
from chatkeep.errors import NotFoundError

STATIC_PREFIX = "/docs/static/"
# Swagger UI sets element styles from its scripts, which `style-src 'self'` allows (CSP
# governs style attributes in markup and <style> elements, not styles set through the DOM);
# its style sheet draws icons from `data:` URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SAFETY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}

# The start-up script: inline scripts are what the policy forbids, so it is a file too.
_START_SCRIPT = b"""\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
  });
});
"""
_START_SCRIPT_NAME = "chatkeep-docs.js"

# Only the files the page uses, each with its type (not guessed from the platform's tables).
_PACKAGE_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
_PACKAGE_DIR = Path(str(swagger_ui_path))

PAGE = f"""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatkeep {__version__} API</title>
<link rel="stylesheet" href="{STATIC_PREFIX}swagger-ui.css">
<link rel="stylesheet" href="{STATIC_PREFIX}index.css">
<link rel="icon" type="image/png" sizes="32x32" href="{STATIC_PREFIX}favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{STATIC_PREFIX}favicon-16x16.png">
</head>
<body>
<div id="swagger-ui"></div>
<noscript>This page needs JavaScript; the document it shows is
<a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="{STATIC_PREFIX}swagger-ui-bundle.js"></script>
<script src="{STATIC_PREFIX}{_START_SCRIPT_NAME}"></script>
</body>
</html>
"""


def page_response() -> Response:
    headers = {"content-security-policy": CONTENT_SECURITY_POLICY, **_SAFETY_HEADERS}
    return HTMLResponse(PAGE, headers=headers)


def asset_response(name: str, *, method: str, path: str) -> Response:
    """One file of the page, or the 404 any unknown URL gets."""
    if name == _START_SCRIPT_NAME:
        script_type = "text/javascript; charset=utf-8"
        return Response(_START_SCRIPT, media_type=script_type, headers=_SAFETY_HEADERS)
    media_type = _PACKAGE_FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"Invalid URL ({method} {path}).")
    return FileResponse(_PACKAGE_DIR / name, media_type=media_type, headers=_SAFETY_HEADERS)
