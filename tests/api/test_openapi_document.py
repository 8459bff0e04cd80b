"""`GET /openapi.json` and `GET /docs`: chatkeep's own OpenAPI document, and its page.

The document must be valid OpenAPI 3.1, describe every route the server has (a route added
without an operation fails here), and describe what the server really answers: real
responses are validated against the schemas the document gives for their operation and
status. The page must load nothing from another origin.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette

from chatkeep import __version__
from chatkeep.config import Settings
from chatkeep.http import create_route
from chatkeep.http.app import create_app
from chatkeep.http.openapi import openapi_document, openapi_json
from chatkeep.http.routes import ROUTES
from tests.api.keyed import create_key

DOC_URI = "urn:chatkeep-openapi"
USER = [{"role": "user", "content": "write a haiku about ai"}]
# The names OpenAI's document and SDKs use for what these routes take and answer.
SPEC_NAMES = {
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ChatCompletionList",
    "ChatCompletionDeleted",
    "ChatCompletionMessageList",
    "ChatCompletionStoreMessage",
    "Model",
    "ListModelsResponse",
    "ErrorResponse",
    "CreateResponse",
    "Response",
    "ResponseItemList",
    "ResponseStreamEvent",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _served_operations() -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route the server answers, HEAD aside."""
    served = {("POST", create_route.PATH)}
    for route in ROUTES:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # type: ignore[attr-defined]
        served |= {(m, path) for m in route.methods if m != "HEAD"}  # type: ignore[attr-defined]
    return served


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises, naming the fault, when it is not
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["version"] == __version__
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # each one valid JSON Schema 2020-12
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name), name  # no pydantic mangling


def test_every_route_has_an_operation_and_every_operation_a_route(
    document: dict[str, Any],
) -> None:
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    served = _served_operations()
    assert sorted(served - documented) == []  # a route without an operation
    assert sorted(documented - served) == []  # an operation without a route


def test_every_reference_resolves_and_schemas_have_the_spec_names(
    document: dict[str, Any],
) -> None:
    refs = set(re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(document)))
    for ref in refs:
        node: Any = document
        for part in ref.split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    assert sorted(SPEC_NAMES - set(document["components"]["schemas"])) == []


def test_the_api_routes_need_a_key_and_chatkeeps_own_do_not(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"ApiKeyAuth": []}]
    for path, item in document["paths"].items():
        for operation in (op for key, op in item.items() if key != "parameters"):
            open_to_all = operation.get("security") == []
            assert open_to_all == (not path.startswith("/v1/")), path
            # `/metrics` takes no key, but its own token when the operator sets one.
            refusable = path.startswith("/v1/") or path == "/metrics"
            assert ("401" in operation["responses"]) == refusable, path


def test_the_list_filters_are_described(document: dict[str, Any]) -> None:
    listing = document["paths"]["/v1/chat/completions"]["get"]
    params = {p.get("name") or p["$ref"].rsplit("/", 1)[1]: p for p in listing["parameters"]}
    assert set(params) == {
        "model",
        "metadata",
        "after",
        "limit",
        "order",
        "created_after",
        "created_before",
    }
    assert (params["metadata"]["style"], params["metadata"]["explode"]) == ("deepObject", True)
    limit = document["components"]["parameters"]["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)


# Real responses against the document.


def _validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    resource = Resource(contents=document, specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
    return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _response_schema(
    document: dict[str, Any], method: str, path: str, status: int, media: str
) -> str:
    """The JSON pointer of the schema the document gives for this answer; fails the test
    when the operation does not document the status."""
    responses = document["paths"][path][method.lower()]["responses"]
    key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
    assert key in responses, f"{method} {path} does not document {status}"
    pointer = "/" + "/".join(map(_escape, ["paths", path, method.lower(), "responses", key]))
    response = responses[key]
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
        response = document["components"]["responses"][pointer.rsplit("/", 1)[1]]
    assert media in response["content"], f"{method} {path} {status} is not {media}"
    return f"{pointer}/content/{_escape(media)}/schema"


def _check(
    document: dict[str, Any],
    method: str,
    path: str,
    response: httpx2.Response,
    body: Any = None,
    media: str = "application/json",
) -> None:
    pointer = _response_schema(document, method, path, response.status_code, media)
    found = _validator(document, pointer).iter_errors(response.json() if body is None else body)
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found] == []


def test_real_answers_match_their_operations(http: httpx2.Client, document: dict[str, Any]) -> None:
    one = "/v1/chat/completions/{completion_id}"
    created = http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": USER, "store": True, "metadata": {"k": "v"}},
    )
    _check(document, "POST", "/v1/chat/completions", created)
    completion_id = created.json()["id"]
    stored = http.get(f"/v1/chat/completions/{completion_id}")
    _check(document, "GET", one, stored)
    updated = http.post(f"/v1/chat/completions/{completion_id}", json={"metadata": {"a": "b"}})
    _check(document, "POST", one, updated)
    _check(document, "GET", "/v1/chat/completions", http.get("/v1/chat/completions?limit=5"))
    messages = http.get(f"/v1/chat/completions/{completion_id}/messages")
    _check(document, "GET", "/v1/chat/completions/{completion_id}/messages", messages)
    _check(document, "GET", "/v1/models", http.get("/v1/models"))
    _check(document, "GET", "/v1/models/{model}", http.get("/v1/models/gpt-4o"))
    _check(document, "GET", "/health", http.get("/health"))
    deleted = http.delete(f"/v1/chat/completions/{completion_id}")
    _check(document, "DELETE", one, deleted)
    # Errors: each in the envelope, and documented for the operation that answered it.
    gone = http.get(f"/v1/chat/completions/{completion_id}")
    assert gone.status_code == 404
    _check(document, "GET", one, gone)
    invalid = http.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert invalid.status_code == 400
    _check(document, "POST", "/v1/chat/completions", invalid)
    bad_page = http.get("/v1/chat/completions?limit=0")
    assert bad_page.status_code == 400
    _check(document, "GET", "/v1/chat/completions", bad_page)


def test_stream_chunks_match_the_create_operation(
    http: httpx2.Client, document: dict[str, Any]
) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "messages": USER,
            "stream": True,
            "n": 2,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        _check(
            document,
            "POST",
            "/v1/chat/completions",
            response,
            json.loads(event),
            "text/event-stream",
        )


def test_unknown_routes_and_methods_answer_the_documented_envelope(
    http: httpx2.Client, document: dict[str, Any]
) -> None:
    error_response = document["components"]["schemas"]["ErrorResponse"]
    assert "error" in error_response["required"]
    for response in (http.get("/v1/nowhere"), http.put("/health"), http.delete("/openapi.json")):
        assert response.status_code in (404, 405)
        found = _validator(document, "/components/schemas/ErrorResponse").iter_errors(
            response.json()
        )
        assert list(found) == []


# Served without a key, built once.


@pytest.fixture
def keyed_app(tmp_path: Path) -> Iterator[Starlette]:
    database_url = f"sqlite:///{tmp_path / 'keyed.db'}"
    create_key(database_url, "alpha")
    yield create_app(Settings(database_url=database_url))


@pytest.fixture
async def anonymous(keyed_app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    """A client with no API key, on a server whose database holds one."""
    async with keyed_app.router.lifespan_context(keyed_app):
        transport = httpx2.ASGITransport(app=keyed_app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://chatkeep") as h:
            yield h


@pytest.mark.anyio
async def test_the_document_is_served_without_a_key_and_built_once(
    anonymous: httpx2.AsyncClient,
) -> None:
    assert (await anonymous.get("/v1/models")).status_code == 401  # the server wants keys
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()
    assert openapi_json() is openapi_json()  # kept, not rebuilt per request


class _Links(HTMLParser):
    """Every URL a page refers to, and by which tag."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value is not None:
                self.links.append((tag, value))


EXPECTED_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


@pytest.mark.anyio
async def test_the_docs_page_loads_only_its_own_files(anonymous: httpx2.AsyncClient) -> None:
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert re.findall(r"https?://|//[a-z]", page.text) == []  # no other host, not even named
    parser = _Links()
    parser.feed(page.text)
    scripts = [url for tag, url in parser.links if tag == "script"]
    assert scripts and any(url.endswith("swagger-ui-bundle.js") for url in scripts)
    for tag, url in parser.links:
        absolute = urljoin("http://chatkeep/docs", url)
        assert urlsplit(absolute).netloc == "chatkeep", url
        asset = await anonymous.get(absolute)
        assert asset.status_code == 200, url
        expected = EXPECTED_TYPES.get(Path(urlsplit(absolute).path).suffix, "application/json")
        assert asset.headers["content-type"].split(";")[0] == expected, (tag, url)
        assert asset.content, url
    start = await anonymous.get(urljoin("http://chatkeep/docs", scripts[-1]))
    assert '"/openapi.json"' in start.text  # the page's document, from the same origin
    assert re.findall(r"https?://", start.text) == []


@pytest.mark.anyio
async def test_the_docs_page_forbids_everything_from_elsewhere(
    anonymous: httpx2.AsyncClient,
) -> None:
    page = await anonymous.get("/docs")
    policy = dict(
        (directive.split()[0], directive.split()[1:])
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive, sources in policy.items():
        allowed = {"'self'", "'none'"} | ({"data:"} if directive == "img-src" else set())
        assert set(sources) <= allowed, (directive, sources)  # no host, no 'unsafe-*'


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path", ["/docs/static/index.html", "/docs/static/..%2F__init__.py", "/docs/static/"]
)
async def test_only_the_pages_files_are_served(anonymous: httpx2.AsyncClient, path: str) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"].startswith("Invalid URL (GET /docs/static/")


def test_responses_answers_match_their_operations(
    http: httpx2.Client, document: dict[str, Any]
) -> None:
    one, items = "/v1/responses/{response_id}", "/v1/responses/{response_id}/input_items"
    created = http.post("/v1/responses", json={"model": "m", "input": "hi", "metadata": {"k": "v"}})
    _check(document, "POST", "/v1/responses", created)
    response_id = created.json()["id"]
    _check(document, "GET", one, http.get(f"/v1/responses/{response_id}"))
    _check(document, "GET", items, http.get(f"/v1/responses/{response_id}/input_items"))
    streamed = http.post("/v1/responses", json={"model": "m", "input": "hi", "stream": True})
    for frame in (f for f in streamed.text.split("\n\n") if f):
        data = json.loads(frame.split("\n")[1].removeprefix("data: "))
        _check(document, "POST", "/v1/responses", streamed, data, "text/event-stream")
    _check(document, "DELETE", one, http.delete(f"/v1/responses/{response_id}"))
    gone = http.get(f"/v1/responses/{response_id}")
    assert gone.status_code == 404
    _check(document, "GET", one, gone)
    invalid = http.post("/v1/responses", json={"model": "m", "background": True})
    assert invalid.status_code == 400
    _check(document, "POST", "/v1/responses", invalid)
