"""The upstream backend: relays chat completions to an OpenAI-compatible server.

The chat route goes through a lean HTTP/1.1 client (`http_client`: one pool of keep-alive
connections per upstream, opened lazily inside the running loop); the start-up check, and
the chat route of a base_url that the lean client does not carry (a user and password in
it, characters to quote), go through one aiohttp session. The client's body is forwarded
as sent, vendor fields included, minus `store` and `metadata` unless the upstream takes
them; faults become chatkeep errors, logged and counted (`upstream_faults`; the table is in
docs/upstreams.md). Answers are read within their bounds by `AnswerBody`; streams are
decoded by `SSEDecoder` and relayed chunk by chunk. `start` checks the upstream once
(`upstream_check`); a 404 of the chat route then says whether the base_url is to blame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import aiohttp

from chatkeep.backends.base import BackendRequest
from chatkeep.backends.http_client import LeanClient, user_agent
from chatkeep.backends.upstream_body import (
    AnswerBody,
    AnswerTooLarge,
    SilenceWatch,
    UpstreamAnswer,
)
from chatkeep.backends.upstream_check import UpstreamCheck
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.backends.upstream_faults import UpstreamFaults, decode_answer
from chatkeep.errors import ChatkeepError
from chatkeep.protocol.codec import encode_json
from chatkeep.protocol.responses import ChatCompletion, ChatCompletionChunk, Model
from chatkeep.protocol.sse import SSEDecoder

if TYPE_CHECKING:
    from chatkeep.observability.metrics import Metrics

logger = logging.getLogger(__name__)

# Request fields that are chatkeep's business; forwarded only with `forward_store = true`.
CHATKEEP_FIELDS = frozenset({"store", "metadata"})
_DRAIN_SECONDS = 1.0


class UpstreamBackend:
    """A `Backend` that answers by relaying to one OpenAI-compatible upstream.

    `upstream_model` maps a client's model name to the upstream's (a rename), or to None for
    names this backend does not serve; without it every name is served unchanged.
    `listed_models` are the names shown on `GET /v1/models`. `api_key` is sent as a bearer
    token; it is kept only in the clients' headers, and never logged. `metrics` counts
    its failures by kind. A traced request gets a `chat {model}` client span, whose
    `traceparent` goes upstream with the request.
    """

    def __init__(
        self,
        name: str,
        config: UpstreamConfig,
        *,
        api_key: str | None = None,
        upstream_model: Callable[[str], str | None] | None = None,
        listed_models: Sequence[str] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self._faults = UpstreamFaults(name, config, metrics)
        self.config = config
        self._url = f"{config.base_url}/chat/completions"
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": user_agent(),
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # None where aiohttp keeps the chat route (see `http_client`).
        self._lean = LeanClient.for_upstream(config, self._headers, path="/chat/completions")
        # The lean client's `total_timeout` is kept by the silence watch (aiohttp keeps its own).
        self._total = config.total_timeout if self._lean is not None else None
        self._upstream_model = upstream_model or (lambda model: model)
        self._listed = list(listed_models)
        self._created = int(time.time())
        self._client: aiohttp.ClientSession | None = None
        # Requests beyond `max_connections` wait here, before their first-byte deadline
        # starts: waiting for a free connection is not the upstream being silent.
        self._free = asyncio.Semaphore(config.max_connections)
        self._silences = SilenceWatch(config.read_timeout, self._total)
        self._check = UpstreamCheck(name, config)

    def __repr__(self) -> str:
        return f"UpstreamBackend({self.name!r}, {self.config.shown_url!r})"

    def serves(self, model: str) -> bool:
        return self._upstream_model(model) is not None

    def models(self) -> list[Model]:
        return [
            {"id": model, "object": "model", "created": self._created, "owned_by": self.name}
            for model in self._listed
        ]

    async def start(self) -> None:
        """Check the upstream (a warning if it fails); the chat route's pool opens on first use.

        Never raises, and takes at most `config.check_seconds`.
        """
        await self._check.at_start(self._session())

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            config = self.config
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=config.max_connections, limit_per_host=0),
                # No `sock_read`: aiohttp can leave that timer armed on a pooled connection,
                # where it fires and fails the next request (a false 504). `read_timeout` is
                # kept by a deadline around each wait instead; see `upstream_body`.
                timeout=aiohttp.ClientTimeout(
                    total=config.total_timeout, sock_connect=config.connect_timeout
                ),
                headers=self._headers,
                raise_for_status=False,
            )
        return self._client

    def _end(self) -> float | None:
        """When the exchange starting now passes `total_timeout`, where it is kept here."""
        total = self._total
        return None if total is None else asyncio.get_running_loop().time() + total

    async def _post(
        self, data: bytes, headers: dict[str, str] | None, end: float | None
    ) -> UpstreamAnswer:
        """Send the request (`headers`: the trace's, when traced); the answer must begin
        within `read_timeout`."""
        with self._faults.around(started=False), self._silences.deadline(end):
            if self._lean is not None:
                return await self._lean.post(data, headers)
            # A payload made here skips aiohttp's lookup of a payload type per request; the
            # session's Content-Type (JSON) stays the request's.
            payload = aiohttp.BytesPayload(data)
            return await self._session().post(
                self._url, data=payload, headers=headers, allow_redirects=False
            )

    def _body(self, response: UpstreamAnswer, end: float | None) -> AnswerBody:
        limit = self.config.max_response_bytes
        return AnswerBody(response, watch=self._silences, limit=limit, end=end)

    def forwarded_body(self, request: BackendRequest, *, stream: bool) -> dict[str, Any]:
        """The body sent upstream: the client's, renamed model, chatkeep's fields removed."""
        source = request.body
        if self.config.forward_store or CHATKEEP_FIELDS.isdisjoint(source):
            body = dict(source)
        else:
            body = {key: value for key, value in source.items() if key not in CHATKEEP_FIELDS}
        model = body.get("model")
        if isinstance(model, str):
            renamed = self._upstream_model(model)
            if renamed is not None and renamed != model:
                body["model"] = renamed
        if stream:
            body["stream"] = True
            if request.include_usage:
                options = body.get("stream_options")
                options = dict(options) if isinstance(options, dict) else {}
                options["include_usage"] = True
                body["stream_options"] = options
        elif body.get("stream"):
            body["stream"] = False
        return body

    async def create(self, request: BackendRequest) -> ChatCompletion:
        body = self.forwarded_body(request, stream=False)
        if request.trace is None:
            return await self._create(request, body, None)
        call = request.trace.upstream_call(self.name, body, request)
        return await call.around(self._create(request, body, call.headers()))

    async def _create(
        self, request: BackendRequest, body: dict[str, Any], headers: dict[str, str] | None
    ) -> ChatCompletion:
        data = encode_json(body)
        async with self._free:
            end = self._end()
            response = await self._post(data, headers, end)
            try:
                with self._faults.around(started=False):
                    raw = await self._body(response, end).read_all()
            finally:
                response.release()  # back to the pool if read to its end, else closed
        if response.status >= 400:
            hint = await self._check.wrong_url_hint(response.status, self._session())
            raise self._faults.status_error(response.status, raw, response, hint)
        try:
            completion = decode_answer(raw)
        except (ValueError, RecursionError):
            raise self._faults.malformed("a body that is not JSON", started=False) from None
        if not isinstance(completion, dict):
            raise self._faults.malformed("a body that is not a JSON object", started=False)
        if not isinstance(completion.get("choices"), list):
            if "error" in completion:
                raise self._faults.error_event(completion["error"], started=False)
            raise self._faults.malformed("an object without `choices`", started=False)
        self._stamp(completion, request, "chat.completion")
        return cast(ChatCompletion, completion)

    def stream(self, request: BackendRequest) -> AsyncIterator[list[ChatCompletionChunk]]:
        body = self.forwarded_body(request, stream=True)
        if request.trace is None:
            return self._stream(request, body, None)
        call = request.trace.upstream_call(self.name, body, request)
        return call.around_stream(self._stream(request, body, call.headers()))

    async def _stream(
        self, request: BackendRequest, forwarded: dict[str, Any], headers: dict[str, str] | None
    ) -> AsyncGenerator[list[ChatCompletionChunk]]:
        data = encode_json(forwarded)
        async with self._free:
            end = self._end()
            response = await self._post(data, headers, end)
            reusable = False
            try:
                body = await self._stream_body(response, end)
                decoder = SSEDecoder()
                started = False
                while True:
                    with self._faults.around(started=started):
                        data = await body.read()
                    if not data:
                        raise self._faults.failure(
                            "ended its stream before [DONE]",
                            "upstream_stream_broken",
                            started,
                            kind="connection",
                        )
                    batch: list[ChatCompletionChunk] = []
                    for event in decoder.feed(data):
                        if event.startswith(b"[DONE]"):
                            if batch:
                                yield batch
                            reusable = await self._drain(body)
                            return
                        try:
                            batch.append(self._chunk(event, request, started or bool(batch)))
                        except ChatkeepError:
                            if batch:  # what arrived before the fault still reaches the client
                                yield batch
                            raise
                    if batch:
                        yield batch
                        started = True
            finally:
                # Closing (not releasing) a connection mid-stream is what tells the upstream
                # to stop generating when the client went away.
                if reusable:
                    response.release()
                else:
                    response.close()

    async def _stream_body(self, response: UpstreamAnswer, end: float | None) -> AnswerBody:
        """The body of a streamed answer, once its status and type say it is a stream."""
        with self._faults.around(started=False):
            body = self._body(response, end)
            if response.status >= 400:
                raw = await body.read_all()
        if response.status >= 400:
            hint = await self._check.wrong_url_hint(response.status, self._session())
            raise self._faults.status_error(response.status, raw, response, hint)
        if response.content_type == "application/json":
            raise self._faults.malformed("a JSON body to a streamed request", started=False)
        return body

    def _chunk(self, event: bytes, request: BackendRequest, started: bool) -> ChatCompletionChunk:
        try:
            chunk = decode_answer(event)
        except (ValueError, RecursionError):
            raise self._faults.malformed("a stream event that is not JSON", started) from None
        if not isinstance(chunk, dict):
            raise self._faults.malformed("a stream event that is not a JSON object", started)
        if "error" in chunk:
            raise self._faults.error_event(chunk["error"], started)
        if not isinstance(chunk.get("choices"), list):
            raise self._faults.malformed("a stream chunk without `choices`", started)
        self._stamp(chunk, request, "chat.completion.chunk")
        return cast(ChatCompletionChunk, chunk)

    @staticmethod
    def _stamp(value: dict[str, Any], request: BackendRequest, kind: str) -> None:
        # chatkeep's id and time replace the upstream's; `model` stays the upstream's.
        value["id"] = request.completion_id
        value["created"] = request.created
        if "object" not in value:
            value["object"] = kind
        if not value.get("model"):
            value["model"] = request.body.get("model", "")

    @staticmethod
    async def _drain(body: AnswerBody) -> bool:
        """Read to the end after `[DONE]`, so the connection can go back to the pool."""
        try:
            while body.read_now():  # most often the end came with [DONE]: no timer to arm
                pass
            if body.at_eof():
                return True
            async with asyncio.timeout(_DRAIN_SECONDS):
                while await body.read():
                    pass
        except (TimeoutError, AnswerTooLarge, aiohttp.ClientError, OSError):
            return False
        return True
