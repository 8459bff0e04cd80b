"""The Responses API's cost per call, in process, against chat completions on the same app.

`python bench/responses.py [--requests N] [--database-url URL]`: the echo model, plain
HTTP over ASGI (no sockets, no SDK parsing), one request at a time; prints the wall time
per request of a stored chat completion, a stored response, a streamed response,
and a response continuing a chain of 10 and of 100 stored responses. A sanity figure for
the Responses layer (translation, events, the chain read), not a replacement for
`bench/run.py`, which measures the relay under load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2

from chatkeep.config import Settings
from chatkeep.http.app import create_app


async def _timed(n: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Median and p99 milliseconds of `n` calls (after 20 of warm-up)."""
    for _ in range(20):
        await call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


async def main(requests: int, database_url: str) -> None:
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://b") as http:
            text = "write a haiku about ai " * 4

            def post(path: str, body: dict[str, Any]) -> Callable[[], Awaitable[object]]:
                async def call() -> object:
                    answer = await http.post(path, json=body)
                    answer.raise_for_status()
                    return answer.json() if not body.get("stream") else answer.text

                return call

            chains = {}
            for depth in (10, 100):
                previous = None
                for _ in range(depth):
                    made = await post(
                        "/v1/responses",
                        {"model": "m", "input": text, "previous_response_id": previous},
                    )()
                    previous = made["id"]  # type: ignore[index]
                chains[depth] = previous
            response = {"model": "m", "input": text}
            cases: dict[str, Callable[[], Awaitable[object]]] = {
                "chat completion, store": post(
                    "/v1/chat/completions",
                    {"model": "m", "messages": [{"role": "user", "content": text}], "store": True},
                ),
                "response, store": post("/v1/responses", response),
                "response, streamed, store": post("/v1/responses", {**response, "stream": True}),
                "response after a chain of 10": post(
                    "/v1/responses", {**response, "previous_response_id": chains[10]}
                ),
                "response after a chain of 100": post(
                    "/v1/responses", {**response, "previous_response_id": chains[100]}
                ),
            }
            print(f"| call ({database_url.split(':')[0]}) | p50 ms | p99 ms |")
            print("| --- | ---: | ---: |")
            for name, call in cases.items():
                p50, p99 = await _timed(requests, call)
                print(f"| {name} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        asyncio.run(main(args.requests, url))
