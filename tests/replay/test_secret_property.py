"""Property: a secret-shaped value recorded at any placement never reaches disk.

Each placement puts a random value somewhere in a request or its answer; the exchange is
recorded through ``ReplayTransport`` and through ``use_cassette`` from an httpx2 and an httpx
client (a ``MockTransport`` is the upstream: nothing leaves the process). Where redaction
applies (a secret-named header, query parameter, URL user-info, body field) the interaction is
recorded without the value; anywhere else (free text, a path, an unknown header) the
key-pattern scan refuses the write with the key path, and the value is not on disk either.
"""

from __future__ import annotations

import json
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.replay import ReplayTransport, SecretLeakError, load_interactions, use_cassette

_ALNUM = string.ascii_letters + string.digits
_UPPER = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Secret:
    """A secret-shaped value and the random part of it that must not be on disk."""

    kind: str
    value: str
    core: str


def _core(alphabet: str, size: int | tuple[int, int]) -> st.SearchStrategy[str]:
    low, high = (size, size) if isinstance(size, int) else size
    return st.text(alphabet=alphabet, min_size=low, max_size=high)


# A core of one repeated character could also occur by chance (a run of "A"s in base64).
def _varied(core: str) -> bool:
    # Not the plugin's placeholder AWS key id (AKIAHARNESSREPLAY000): it is in the environment
    # while a replayed test runs, so Redactor.from_env knows it and redacts it, not refuses it.
    return len(set(core)) > 3 and "HARNESSREPLAY" not in core


_KEY_SHAPED: dict[str, Callable[[str], str]] = {
    "openai": lambda core: f"sk-proj-{core}",
    "anthropic": lambda core: f"sk-ant-api03-{core}",
    "google": lambda core: f"AIza{core}",
    "aws": lambda core: f"AKIA{core}",
    "bearer": lambda core: f"Bearer {core}",
}
_CORES: dict[str, st.SearchStrategy[str]] = {
    "openai": _core(_ALNUM, (24, 48)),
    "anthropic": _core(_ALNUM, (24, 48)),
    "google": _core(_ALNUM, 35),
    "aws": _core(_UPPER, 16),
    "bearer": _core(_ALNUM, (20, 40)),
    "opaque": _core(_ALNUM, 32),
}


def _secrets(kinds: list[str]) -> st.SearchStrategy[Secret]:
    def build(kind: str) -> st.SearchStrategy[Secret]:
        shape = _KEY_SHAPED.get(kind, lambda core: core)
        return _CORES[kind].filter(_varied).map(lambda core: Secret(kind, shape(core), core))

    return st.sampled_from(kinds).flatmap(build)


@dataclass
class Exchange:
    """One request and the answer the upstream gives it."""

    method: str = "POST"
    url: str = "https://api.example.com/v1/chat/completions"
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    request_type: str = "application/json"
    status: int = 200
    response_headers: dict[str, str] = field(default_factory=dict)
    response_type: str = "application/json"
    response: bytes = b'{"id": "1", "choices": []}'


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _sse(*events: Any) -> bytes:
    return b"".join(b"data: " + _json(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _ndjson(*lines: Any) -> bytes:
    return b"".join(_json(line) + b"\n" for line in lines)


def _request_header(name: str) -> Callable[[str], Exchange]:
    return lambda v: Exchange(headers={name: v})


def _response_header(name: str, prefix: str = "") -> Callable[[str], Exchange]:
    return lambda v: Exchange(response_headers={name: prefix + v})


def _query(name: str) -> Callable[[str], Exchange]:
    return lambda v: Exchange(params={name: v, "alt": "sse"})


def _request_field(name: str) -> Callable[[str], Exchange]:
    return lambda v: Exchange(content=_json({"model": "m", "tools": [{"type": "x", name: v}]}))


@dataclass(frozen=True)
class Placement:
    """Where a value goes; ``refused_at`` is the key path of a refusal (None: redacted)."""

    name: str
    build: Callable[[str], Exchange]
    refused_at: str | None = None


REDACTED_PLACEMENTS = [
    Placement("request header authorization", _request_header("authorization")),
    Placement("request header x-api-key", _request_header("x-api-key")),
    Placement("request header X-Auth-Token", _request_header("X-Auth-Token")),
    Placement("request header X-Access-Token", _request_header("X-Access-Token")),
    Placement(
        "request header Ocp-Apim-Subscription-Key", _request_header("Ocp-Apim-Subscription-Key")
    ),
    Placement("request header Helicone-Auth", _request_header("Helicone-Auth")),
    Placement("request header X-Portkey-Api-Key", _request_header("X-Portkey-Api-Key")),
    Placement("request header x-goog-api-key", _request_header("x-goog-api-key")),
    Placement("request header with a secret word", _request_header("x-vendor-secret")),
    Placement("response header x-amz-session-token", _response_header("x-amz-session-token")),
    Placement(
        "response header anthropic-organization-id", _response_header("anthropic-organization-id")
    ),
    Placement("response header set-cookie", _response_header("set-cookie", "session=")),
    *(Placement(f"query parameter {name}", _query(name)) for name in ("key", "api_key")),
    *(
        Placement(f"query parameter {name}", _query(name))
        for name in ("auth", "secret", "password", "subscription-key", "token", "access_token")
    ),
    Placement(
        "URL user-info password",
        lambda v: Exchange(url=f"https://ann:{quote(v, safe='')}@api.example.com/v1/x"),
    ),
    Placement(
        "URL user-info user",
        lambda v: Exchange(url=f"https://{quote(v, safe='')}@api.example.com/v1/x"),
    ),
    *(
        Placement(f"JSON request field {name}", _request_field(name))
        for name in (
            "secret",
            "auth_token",
            "authorization",
            "x-api-key",
            "aws_secret_access_key",
            "secret_key",
            "session_token",
            "password",
            "client_secret",
        )
    ),
    Placement(
        "JSON response field access_token",
        lambda v: Exchange(response=_json({"access_token": v, "token_type": "bearer"})),
    ),
    Placement(
        "form field password",
        lambda v: Exchange(
            content=f"grant_type=password&username=ann&password={quote(v)}".encode(),
            request_type="application/x-www-form-urlencoded",
        ),
    ),
    Placement(
        "SSE event field session_token",
        lambda v: Exchange(
            response_type="text/event-stream",
            response=_sse({"type": "start"}, {"type": "session", "session_token": v}),
        ),
    ),
    Placement(
        "NDJSON line field secret",
        lambda v: Exchange(
            response_type="application/x-ndjson",
            response=_ndjson({"done": False}, {"auth": {"secret": v}}),
        ),
    ),
    Placement(
        "text/plain JSON field auth_token",
        lambda v: Exchange(content=_json({"auth_token": v}), request_type="text/plain"),
    ),
    *(
        Placement(f"query parameter {name}", _query(name))
        for name in ("refresh_token", "id_token", "client_assertion", "code", "accessToken")
    ),
    *(
        Placement(f"JSON request field {name}", _request_field(name))
        for name in (
            "accessToken",
            "clientSecret",
            "secretAccessKey",
            "apiKey",
            "api_token",
            "bearer_token",
        )
    ),
    Placement(
        "JSON body with a UTF-8 BOM, field client_secret",
        lambda v: Exchange(content=b"\xef\xbb\xbf" + _json({"client_secret": v})),
    ),
    Placement(
        "JSON in a tool call's arguments string, field apiKey",
        lambda v: Exchange(
            response=_json(
                {
                    "choices": [
                        {
                            "message": {
                                "tool_calls": [
                                    {
                                        "function": {
                                            "name": "f",
                                            "arguments": json.dumps({"apiKey": v}),
                                        }
                                    }
                                ]
                            }
                        }
                    ]
                }
            )
        ),
    ),
    Placement(
        "multipart form field api_key",
        lambda v: Exchange(
            content=(
                b'--b0undary\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
                b'batch\r\n--b0undary\r\nContent-Disposition: form-data; name="api_key"\r\n'
                b"\r\n" + v.encode() + b"\r\n--b0undary--\r\n"
            ),
            request_type="multipart/form-data; boundary=b0undary",
        ),
    ),
    Placement("request header X-Api-Tokens", _request_header("X-Api-Tokens")),
    Placement("request header X-Credential", _request_header("X-Credential")),
    Placement("request header X-Vendor-Credentials", _request_header("X-Vendor-Credentials")),
]

REFUSED_PLACEMENTS = [
    Placement(
        "prompt text",
        lambda v: Exchange(
            content=_json({"messages": [{"role": "user", "content": f"my key is {v}"}]})
        ),
        "request.body.json.messages[0].content",
    ),
    Placement(
        "SSE text after a JSON-escaped newline",
        lambda v: Exchange(
            response_type="text/event-stream",
            response=_sse({"delta": {"text": "x"}}, {"delta": {"text": f"line\n{v}"}}),
        ),
        "response.body.sse[1]",
    ),
    Placement(
        "NDJSON text after a JSON-escaped newline",
        lambda v: Exchange(
            response_type="application/x-ndjson",
            response=_ndjson({"response": f"a\n{v}"}, {"done": True}),
        ),
        "response.body.ndjson[0]",
    ),
    Placement(
        "URL path segment",
        lambda v: Exchange(url=f"https://api.example.com/v1/{quote(v, safe='')}/x"),
        "request.uri",
    ),
    Placement(
        "other query parameter after %3A",
        lambda v: Exchange(params={"next": f"a:{v}"}),
        "request.uri",
    ),
    Placement(
        "other query parameter after an encoded newline",
        lambda v: Exchange(params={"next": f"a\n{v}"}),
        "request.uri",
    ),
    Placement(
        "unknown request header",
        lambda v: Exchange(headers={"x-note": f"see {v}"}),
        "request.headers.x-note",
    ),
    Placement(
        "unknown response header",
        lambda v: Exchange(response_headers={"x-echo": v}),
        "response.headers.x-echo",
    ),
    Placement(
        "text/plain request body after a newline",
        lambda v: Exchange(content=f"note:\n{v}".encode(), request_type="text/plain"),
        "request.body.text",
    ),
]


def _upstream(exchange: Exchange) -> httpx2.MockTransport:
    def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": exchange.response_type, **exchange.response_headers}
        return httpx2.Response(exchange.status, headers=headers, content=exchange.response)

    return httpx2.MockTransport(answer)


def _send(client: httpx2.Client, exchange: Exchange) -> None:
    headers = {"content-type": exchange.request_type, **exchange.headers}
    response = client.request(
        exchange.method,
        exchange.url,
        params=exchange.params or None,
        headers=headers,
        content=exchange.content,
    )
    response.read()


def _through_transport(path: Path, exchange: Exchange) -> None:
    transport = ReplayTransport(path, "record", upstream=_upstream(exchange))
    with httpx2.Client(transport=transport) as client:
        _send(client, exchange)


def _through_use_cassette(path: Path, exchange: Exchange) -> None:
    with use_cassette(path, "record"), httpx2.Client(transport=_upstream(exchange)) as client:
        _send(client, exchange)


def _through_use_cassette_on_httpx(path: Path, exchange: Exchange) -> None:
    """The same exchange from an ``httpx`` (not httpx2) client while ``use_cassette`` is on."""

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": exchange.response_type, **exchange.response_headers}
        return httpx.Response(exchange.status, headers=headers, content=exchange.response)

    with (
        use_cassette(path, "record"),
        httpx.Client(transport=httpx.MockTransport(answer)) as client,
    ):
        headers = {"content-type": exchange.request_type, **exchange.headers}
        response = client.request(
            exchange.method,
            exchange.url,
            params=exchange.params or None,
            headers=headers,
            content=exchange.content,
        )
        response.read()


ROUTES = [_through_transport, _through_use_cassette, _through_use_cassette_on_httpx]


# Hundreds of small atomic writes: in memory where the system has it (fsync costs ms on disk).
_SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None


def _on_disk(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def _check(placement: Placement, secret: Secret) -> None:
    exchange = placement.build(secret.value)
    for route in ROUTES:
        with tempfile.TemporaryDirectory(dir=_SCRATCH) as directory:
            path = Path(directory) / "c.yaml"
            if placement.refused_at is None:
                route(path, exchange)
                assert len(load_interactions(path)) == 1, (route.__name__, placement.name)
            else:
                with pytest.raises(SecretLeakError) as info:
                    route(path, exchange)
                assert f"interactions[0].{placement.refused_at}: " in str(info.value)
                assert secret.core not in str(info.value)
                assert not path.exists() or load_interactions(path) == []
            assert secret.core.encode() not in _on_disk(Path(directory)), (
                route.__name__,
                placement.name,
            )


# A few examples per placement, each recorded by every route.
def test_after_a_refused_write_the_transport_records_clean_requests_and_no_secret() -> None:
    refused = REFUSED_PLACEMENTS[0].build("sk-proj-" + "Zq8" * 10)
    with tempfile.TemporaryDirectory(dir=_SCRATCH) as directory:
        path = Path(directory) / "c.yaml"
        transport = ReplayTransport(path, "record", upstream=_upstream(Exchange()))
        with httpx2.Client(transport=transport) as client:
            with pytest.raises(SecretLeakError):
                _send(client, refused)
            _send(client, Exchange(content=b'{"model": "m", "n": 2}'))
        assert [json.loads(i.request.body) for i in load_interactions(path)] == [
            {"model": "m", "n": 2}
        ]
        assert b"Zq8Zq8" not in _on_disk(Path(directory))


_SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_there_are_at_least_25_placements() -> None:
    assert len(REDACTED_PLACEMENTS) + len(REFUSED_PLACEMENTS) >= 25


@pytest.mark.parametrize("placement", REDACTED_PLACEMENTS, ids=lambda p: p.name)
def test_a_secret_under_a_secret_name_is_recorded_redacted(placement: Placement) -> None:
    @_SETTINGS
    @given(secret=_secrets([*_KEY_SHAPED, "opaque"]))
    def check(secret: Secret) -> None:
        _check(placement, secret)

    check()


@pytest.mark.parametrize("placement", REFUSED_PLACEMENTS, ids=lambda p: p.name)
def test_a_key_where_redaction_cannot_apply_is_refused_with_its_key_path(
    placement: Placement,
) -> None:
    @_SETTINGS
    @given(secret=_secrets(list(_KEY_SHAPED)))
    def check(secret: Secret) -> None:
        _check(placement, secret)

    check()
