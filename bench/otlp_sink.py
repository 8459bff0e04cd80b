"""A stand-in OpenTelemetry collector for the relay benchmark with tracing on: it takes
OTLP/HTTP trace exports (`POST /v1/traces`) and answers 200 with an empty
`ExportTraceServiceResponse`, counting what it got and keeping none of it.

    python bench/otlp_sink.py [--port 4318]

then run the benchmark with `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`, for
instance tracing on against off on the same code in one run:

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python bench/run.py --baseline HEAD \\
        --baseline-env OTEL_SDK_DISABLED=true --skip-reads --skip-litellm --only bare,chatkeep
"""

from __future__ import annotations

import argparse
import sys

from aiohttp import web


def app() -> web.Application:
    got = {"exports": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        got["exports"] += 1
        got["bytes"] += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def seen(request: web.Request) -> web.Response:
        return web.json_response(got)

    application = web.Application(client_max_size=64 * 2**20)
    application.router.add_post("/v1/traces", traces)
    application.router.add_get("/", seen)
    return application


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args(argv)
    web.run_app(app(), host="127.0.0.1", port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
