"""`GET /v1/chatkeep/exports/chat_completions`: the caller's project's stored completions as
JSON lines (`application/x-ndjson`), in one of the export formats (docs/export.md).

The options are checked before the first byte, so every bad value is a 400 in OpenAI's
envelope; then the body streams as the store is walked page by page, never built in memory.
A failure after the first byte (the database goes away) can no longer change the status:
the response is cut off, which every HTTP client reports as an error.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from chatkeep.export.options import parse_export_query
from chatkeep.export.source import StoreSource
from chatkeep.export.walk import export_chunks
from chatkeep.http.state import AppState

PATH = "/v1/chatkeep/exports/chat_completions"
MEDIA_TYPE = "application/x-ndjson"


async def export_chat_completions(request: Request) -> Response:
    state: AppState = request.app.state.chatkeep
    project = await state.authenticator.project_for(request.headers)
    request.state.project = project  # for the access log
    options = parse_export_query(request.query_params.multi_items())
    source = StoreSource(state.stored, project)
    filename = f"chat_completions.{options.format}.jsonl"
    return StreamingResponse(
        export_chunks(source, options),
        media_type=MEDIA_TYPE,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
