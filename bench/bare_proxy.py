"""The floor for a Python relay: a pass-through proxy in a few lines of aiohttp.

It forwards each `POST /v1/chat/completions` body untouched to the upstream through one
pooled `ClientSession`, and relays the answer: whole, or chunk by chunk when the upstream
streams. No validation, no ids, no storage: whatever a gateway does beyond this is its
overhead.

    python bench/bare_proxy.py --port 9200 --upstream http://127.0.0.1:9100/v1
"""

from __future__ import annotations

import argparse

import aiohttp
import uvloop
from aiohttp import web


def build_app(upstream: str) -> web.Application:
    url = f"{upstream}/chat/completions"
    app = web.Application()

    async def open_session(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=100, limit_per_host=0)
        app["session"] = aiohttp.ClientSession(connector=connector)

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=body, headers=headers) as upstream_response:
            if upstream_response.content_type != "text/event-stream":
                return web.Response(
                    body=await upstream_response.read(),
                    status=upstream_response.status,
                    content_type=upstream_response.content_type,
                )
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_post("/v1/chat/completions", relay)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL, with its /v1")
    args = parser.parse_args()
    app = build_app(args.upstream)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
