"""Secrets never reach disk: redaction of headers, query and values, and the pre-write scan."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.replay import Cassette, Redactor, ReplayTransport, SecretLeakError, find_secrets
from harness.replay.models import Interaction, RecordedRequest, RecordedResponse


def test_secret_headers_are_dropped() -> None:
    headers = [
        ("Authorization", "Bearer abc"),
        ("x-api-key", "k"),
        ("api-key", "k"),
        ("x-goog-api-key", "k"),
        ("OpenAI-Organization", "org"),
        ("openai-project", "p"),
        ("cookie", "c"),
        ("set-cookie", "c"),
        ("x-amz-security-token", "t"),
        ("content-type", "application/json"),
    ]
    assert Redactor().redact_headers(headers) == [("content-type", "application/json")]


def test_key_like_query_params_are_dropped() -> None:
    url = "https://h/v1/m:generate?alt=sse&key=AIzaXYZ&api-key=1&access_token=t&X-Amz-Signature=s"
    assert Redactor().redact_url(url) == "https://h/v1/m:generate?alt=sse"


def test_configured_secret_values_are_redacted_everywhere() -> None:
    redactor = Redactor(secrets=("hunter2-secret-value", "short"))
    request = RecordedRequest(
        "POST",
        "https://h/hunter2-secret-value/x?q=hunter2-secret-value",
        [("x-custom", "token hunter2-secret-value")],
        b'{"key": "hunter2-secret-value", "short": "short"}',
    )
    clean = redactor.redact_request(request)
    assert "hunter2" not in clean.uri and "hunter2" not in str(clean.headers)
    assert clean.body == b'{"key": "REDACTED", "short": "short"}'  # too-short values are left


def test_from_env_reads_provider_key_variables() -> None:
    redactor = Redactor.from_env(environ={"OPENAI_API_KEY": "abcdefgh12345678", "HOME": "/root"})
    assert redactor.redact_text("x abcdefgh12345678 y") == "x REDACTED y"
    assert redactor.redact_text("/root") == "/root"


@pytest.mark.parametrize(
    "leak",
    [
        "sk-proj-" + "a1B2" * 10,
        "sk-ant-api03-" + "Zz9_" * 10,
        "AIza" + "b" * 35,
        "AKIA" + "ABCDEFGHIJ234567",
        "Bearer " + "eyJhbGciOiJIUzI1NiJ9.payload",
    ],
)
def test_secret_pattern_scan_refuses_to_write(tmp_path: Path, leak: str) -> None:
    path = tmp_path / "c.yaml"
    cassette = Cassette(path)
    body = json.dumps({"note": f"the key is {leak}"}).encode()
    cassette.add(
        Interaction(
            RecordedRequest("GET", "https://h/x"),
            RecordedResponse(200, [("content-type", "application/json")], body),
        )
    )
    with pytest.raises(SecretLeakError) as info:
        cassette.save()
    assert "interactions[0].response.body.json.note" in str(info.value)
    assert leak not in str(info.value)  # the message masks what it found
    assert not path.exists()


def test_recording_a_leaking_response_raises_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"

    def leaky(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"echoed_key": "sk-" + "Q" * 40})

    transport = ReplayTransport(
        path, "record", upstream=httpx2.MockTransport(leaky), redactor=Redactor()
    )
    with httpx2.Client(transport=transport) as client, pytest.raises(SecretLeakError):
        client.get("https://h/x")
    assert not path.exists()


def test_find_secrets_ignores_lookalikes() -> None:
    assert find_secrets({"text": "ask-me-anything task-runner sk-short"}) == []


_SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=40).map(
    lambda s: "s3cr3t" + s
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=_SECRET, header=st.sampled_from(["authorization", "x-api-key", "x-custom-token"]))
def test_random_secrets_in_headers_query_and_body_never_reach_disk(
    secret: str, header: str
) -> None:
    def upstream(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            headers={"set-cookie": f"s={secret}", "x-echo": secret},
            json={"you_sent": json.loads(request.content), "url": str(request.url)},
        )

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.yaml"
        transport = ReplayTransport(
            path,
            "record",
            upstream=httpx2.MockTransport(upstream),
            redactor=Redactor(secrets=(secret,)),
        )
        with httpx2.Client(transport=transport) as client:
            client.post(
                f"https://api.example.com/v1/{secret}/x",
                params={"key": secret, "api_key": secret, "other": secret},
                headers={header: secret, "x-other": f"prefix-{secret}"},
                json={"api_key": secret, "nested": [{"value": secret}]},
            )
        text = path.read_text(encoding="utf-8")
        assert secret not in text
        # ...and what was written still replays the request, secrets and all
        with httpx2.Client(
            transport=ReplayTransport(path, redactor=Redactor(secrets=(secret,)))
        ) as client:
            reply = client.post(
                f"https://api.example.com/v1/{secret}/x",
                params={"key": secret, "api_key": secret, "other": secret},
                json={"api_key": secret, "nested": [{"value": secret}]},
            )
        assert reply.json()["you_sent"]["api_key"] == "REDACTED"
