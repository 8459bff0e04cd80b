"""Only a completion's exact path reaches it: no redirects, encoded slashes stay in their
segment, and ids or filters that no store can hold are simply not found."""

from __future__ import annotations

import httpx2
import openai
import pytest

OK = [{"role": "user", "content": "hi"}]


@pytest.fixture
def stored_id(client: openai.OpenAI) -> str:
    return client.chat.completions.create(model="echo-1", messages=OK, store=True).id


def _assert_invalid_url(response: httpx2.Response) -> None:
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    error = response.json()["error"]
    assert error["message"].startswith("Invalid URL (")
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat/completions/"),
        ("POST", "/v1/chat/completions/"),
        ("GET", "/v1/chat/completions//"),
        ("DELETE", "/v1/chat/completions//"),
        ("GET", "/v1/chat/completions/{id}/"),
        ("DELETE", "/v1/chat/completions/{id}/"),
        ("POST", "/v1/chat/completions/{id}/"),
        ("GET", "/v1/chat/completions/{id}//messages"),
        ("GET", "/v1/chat/completions/{id}/messages/"),
        ("GET", "//v1/chat/completions/{id}"),
        ("GET", "/v1/models/"),
    ],
)
def test_trailing_and_doubled_slashes_are_unknown_routes(
    http: httpx2.Client, client: openai.OpenAI, stored_id: str, method: str, path: str
) -> None:
    response = http.request(method, path.format(id=stored_id), json={"metadata": {"a": "b"}})
    _assert_invalid_url(response)
    stored = client.chat.completions.retrieve(stored_id)  # still there, unchanged
    assert stored.metadata == {}


@pytest.mark.parametrize(
    ("method", "path", "shown_id"),
    [
        ("GET", "/v1/chat/completions/%2F", "/"),
        ("DELETE", "/v1/chat/completions/%2f", "/"),
        ("GET", "/v1/chat/completions/{id}%2Fmessages", "{id}/messages"),
        ("DELETE", "/v1/chat/completions/{id}%2F", "{id}/"),
        ("POST", "/v1/chat/completions/{id}%2F", "{id}/"),
        ("GET", "/v1/chat/completions/{id}%252F", "{id}%2F"),
        ("GET", "/v1/chat/completions/%2E%2E%2F{id}", "../{id}"),
    ],
)
def test_an_encoded_slash_is_part_of_the_id(
    http: httpx2.Client,
    client: openai.OpenAI,
    stored_id: str,
    method: str,
    path: str,
    shown_id: str,
) -> None:
    response = http.request(method, path.format(id=stored_id), json={"metadata": {"a": "b"}})
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    error = response.json()["error"]
    assert error["param"] == "completion_id"
    assert f"'{shown_id.format(id=stored_id)}'" in error["message"]
    assert client.chat.completions.retrieve(stored_id).metadata == {}


def test_a_create_path_with_an_encoded_slash_is_unknown(http: httpx2.Client) -> None:
    response = http.post("/v1/chat%2Fcompletions", json={"model": "echo-1", "messages": OK})
    _assert_invalid_url(response)


def test_escaped_ids_and_model_names_still_reach_their_route(
    http: httpx2.Client, stored_id: str
) -> None:
    # A client may percent-encode any character of an id; it is the same id.
    escaped = "".join(f"%{ord(ch):02X}" for ch in stored_id)
    assert http.get(f"/v1/chat/completions/{escaped}").json()["id"] == stored_id
    assert http.get(f"/v1/chat/completions/{escaped}/messages").status_code == 200
    # Model names hold slashes; the SDKs send them encoded.
    model = http.get("/v1/models/acme%2Fllama-3")
    assert model.status_code == 200, model.text
    assert model.json()["id"] == "acme/llama-3"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("POST", ""), ("DELETE", ""), ("GET", "/messages")],
)
@pytest.mark.parametrize("bad", ["%00", "%ED%A0%80", "%F0%9F%8C%8D"])
def test_ids_no_store_holds_are_not_found(
    http: httpx2.Client, stored_id: str, method: str, suffix: str, bad: str
) -> None:
    path = f"/v1/chat/completions/{stored_id}{bad}{suffix}"
    response = http.request(method, path, json={"metadata": {"a": "b"}})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["param"] == "completion_id"


@pytest.mark.parametrize(
    "query",
    [
        "model=echo-1%00",
        "metadata[k]=v%00",
        "metadata[k%00]=v",
        "metadata[k]=v&metadata[j]=%00",
        "model=%ED%A0%80",
        "metadata[k]=%F0%9F%8C%8D",
    ],
)
def test_filters_no_store_holds_find_an_empty_page(
    http: httpx2.Client, client: openai.OpenAI, query: str
) -> None:
    client.chat.completions.create(
        model="echo-1", messages=OK, store=True, metadata={"k": "v", "j": "w"}
    )
    response = http.get(f"/v1/chat/completions?{query}")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["data"] == [] and page["has_more"] is False
