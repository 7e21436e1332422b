"""Request keys, the index, and what a miss says."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from harness.replay import CassetteMiss, InteractionIndex, Matcher, RecordedRequest, ReplayTransport
from harness.replay.matching import canonical_body, normalize_url
from harness.replay.models import Interaction, RecordedResponse


def _request(
    body: object, url: str = "https://api.example.com/v1/chat", method: str = "POST"
) -> RecordedRequest:
    return RecordedRequest(method, url, [], json.dumps(body).encode())


def _interaction(
    body: object, answer: object, url: str = "https://api.example.com/v1/chat"
) -> Interaction:
    response = RecordedResponse(
        200, [("content-type", "application/json")], json.dumps(answer).encode()
    )
    return Interaction(_request(body, url), response)


def test_json_body_key_order_and_whitespace_are_ignored() -> None:
    matcher = Matcher()
    a = RecordedRequest("POST", "https://h/x", [], b'{"model": "m", "messages": [1, 2]}')
    b = RecordedRequest("post", "https://h/x", [], b'{\n  "messages":[1,2],\n  "model":"m"\n}')
    assert matcher.key(a) == matcher.key(b)
    assert matcher.key(a) != matcher.key(
        RecordedRequest("POST", "https://h/x", [], b'{"messages":[2,1],"model":"m"}')
    )


def test_query_order_is_ignored_and_key_params_removed() -> None:
    assert normalize_url("https://H.example.com:443/v1/x?b=2&a=1&key=AIzaSECRET#frag") == (
        "https://h.example.com/v1/x?a=1&b=2"
    )
    assert (
        normalize_url("http://127.0.0.1:8080/m/a%3A0/invoke")
        == "http://127.0.0.1:8080/m/a:0/invoke"
    )


def test_body_ignore_paths_drop_volatile_fields() -> None:
    matcher = Matcher(ignore_body_paths=("metadata.user_id", "messages.*.id"))
    a = _request({"metadata": {"user_id": "u1", "k": 1}, "messages": [{"id": 1, "c": "x"}]})
    b = _request({"metadata": {"user_id": "u2", "k": 1}, "messages": [{"id": 2, "c": "x"}]})
    assert matcher.key(a) == matcher.key(b)
    assert Matcher().key(a) != Matcher().key(b)
    assert canonical_body(b"not json") == b"not json"


def test_custom_matcher_takes_part_in_the_key() -> None:
    def beta(request: RecordedRequest) -> str | None:
        return dict(request.headers).get("anthropic-beta")

    matcher = Matcher(custom=(beta,))
    a = RecordedRequest("POST", "https://h/x", [("anthropic-beta", "a")], b"{}")
    b = RecordedRequest("POST", "https://h/x", [("anthropic-beta", "b")], b"{}")
    assert matcher.key(a) != matcher.key(b)
    assert Matcher().key(a) == Matcher().key(b)


def test_identical_requests_replay_in_recorded_order() -> None:
    index = InteractionIndex([_interaction({"q": 1}, {"a": n}) for n in range(3)], Matcher())
    answers = []
    for _ in range(3):
        hit = index.take(_request({"q": 1}))
        assert hit is not None
        answers.append(json.loads(hit[1].response.body)["a"])
    assert answers == [0, 1, 2]
    assert index.take(_request({"q": 1})) is None
    assert index.unplayed() == []


def test_lookup_is_an_index_not_a_scan() -> None:
    calls = 0

    def counting(request: RecordedRequest) -> int:
        nonlocal calls
        calls += 1
        return 0

    interactions = [_interaction({"q": n}, {"a": n}) for n in range(2000)]
    index = InteractionIndex(interactions, Matcher(custom=(counting,)))
    calls = 0
    for n in (1999, 0, 1000):
        hit = index.take(_request({"q": n}))
        assert hit is not None and json.loads(hit[1].response.body) == {"a": n}
    assert calls == 3  # one key per lookup, whatever the cassette size


def test_volatile_headers_never_matter(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"

    def echo(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"ok": True})

    headers = {"user-agent": "A/1", "x-stainless-retry-count": "0", "x-stainless-os": "Linux"}
    with httpx2.Client(
        transport=ReplayTransport(path, "record", upstream=httpx2.MockTransport(echo))
    ) as client:
        client.post("https://h/x", json={"q": 1}, headers=headers)
    other = {"user-agent": "B/2", "x-stainless-retry-count": "2", "x-stainless-os": "MacOS"}
    with httpx2.Client(transport=ReplayTransport(path)) as client:
        assert client.post("https://h/x", json={"q": 1}, headers=other).json() == {"ok": True}
    assert "stainless" not in path.read_text()


def test_miss_names_cassette_mode_request_and_closest_with_a_diff(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"

    def echo(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={})

    recorder = ReplayTransport(path, "record", upstream=httpx2.MockTransport(echo))
    with httpx2.Client(transport=recorder) as client:
        client.post("https://api.example.com/v1/chat", json={"model": "m", "prompt": "hello"})
        client.get("https://api.example.com/v1/models")
    with (
        httpx2.Client(transport=ReplayTransport(path)) as client,
        pytest.raises(CassetteMiss) as info,
    ):
        client.post("https://api.example.com/v1/chat", json={"model": "m", "prompt": "goodbye"})
    miss = info.value
    assert (miss.cassette, miss.mode, miss.method) == (str(path), "replay", "POST")
    assert miss.url == "https://api.example.com/v1/chat"
    assert miss.closest[0].index == 0  # same method and URL rank first
    assert '-  "prompt": "hello"' in miss.closest[0].diff
    assert '+  "prompt": "goodbye"' in miss.closest[0].diff
    message = str(miss)
    assert str(path) in message and "mode=replay" in message and "--llm-mode=record" in message


def test_exhausted_identical_request_says_so() -> None:
    index = InteractionIndex([_interaction({"q": 1}, {})], Matcher())
    assert index.take(_request({"q": 1})) is not None
    assert index.take(_request({"q": 1})) is None
    assert "already played" in index.closest(_request({"q": 1}))[0].diff
