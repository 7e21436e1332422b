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


@pytest.mark.parametrize(
    "field", ["client_secret", "api_key", "access_token", "refresh_token", "id_token", "password"]
)
def test_secret_named_fields_are_redacted_in_form_bodies(field: str) -> None:
    request = RecordedRequest(
        "POST",
        "https://oauth2.example.com/token",
        [("content-type", "application/x-www-form-urlencoded")],
        f"grant_type=refresh_token&{field}=hunter2value&scope=a+b".encode(),
    )
    body = Redactor().redact_request(request).body
    assert b"hunter2value" not in body
    assert body == f"grant_type=refresh_token&{field}=REDACTED&scope=a+b".encode()


def test_secret_named_fields_are_redacted_in_json_bodies_at_any_depth() -> None:
    document = {
        "client_secret": "cs-value-1",
        "auth": {"Password": "pw-value-2", "user": "ann"},
        "items": [{"refresh_token": "rt-value-3", "n": 1}, {"id_token": "it-value-4"}],
        "access_token": "at-value-5",
        "api_key": "ak-value-6",
        "token": "kept",  # a logprobs token is data, not a credential
        "password": None,
    }
    redactor = Redactor()
    json_headers = [("content-type", "application/json")]
    request = redactor.redact_request(
        RecordedRequest("POST", "https://h/x", json_headers, json.dumps(document).encode())
    )
    response = redactor.redact_response(
        RecordedResponse(200, json_headers, json.dumps(document).encode())
    )
    expected = {
        "client_secret": "REDACTED",
        "auth": {"Password": "REDACTED", "user": "ann"},
        "items": [{"refresh_token": "REDACTED", "n": 1}, {"id_token": "REDACTED"}],
        "access_token": "REDACTED",
        "api_key": "REDACTED",
        "token": "kept",
        "password": None,
    }
    assert json.loads(request.body) == expected
    assert json.loads(response.body) == expected


def test_bodies_without_secret_fields_are_left_byte_for_byte() -> None:
    body = b'{"b": 1,   "a": "x"}'
    request = RecordedRequest("POST", "https://h/x", [("content-type", "application/json")], body)
    assert Redactor().redact_request(request).body == body


def test_oauth_refresh_recorded_through_the_transport_keeps_tokens_off_disk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"

    def oauth(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, json={"access_token": "opaque-at-123456", "refresh_token": "opaque-rt-654321"}
        )

    transport = ReplayTransport(
        path, "record", upstream=httpx2.MockTransport(oauth), redactor=Redactor()
    )
    with httpx2.Client(transport=transport) as client:
        client.post(
            "https://oauth2.example.com/token",
            data={"client_secret": "opaque-cs-999999", "grant_type": "refresh_token"},
        )
    text = path.read_text(encoding="utf-8")
    assert "opaque-" not in text
    assert "client_secret=REDACTED" in text


@pytest.mark.parametrize(
    "leak",
    [
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVlLWhlcmU",
        "ya29.a0AfB_byC" + "x" * 40,
    ],
)
def test_jwt_and_google_oauth_tokens_are_refused(tmp_path: Path, leak: str) -> None:
    assert find_secrets({"note": f"token: {leak}"})
    cassette = Cassette(tmp_path / "c.yaml")
    cassette.add(
        Interaction(RecordedRequest("GET", "https://h/x"), RecordedResponse(200, [], leak.encode()))
    )
    with pytest.raises(SecretLeakError):
        cassette.save()


def test_token_patterns_ignore_ordinary_text() -> None:
    text = "eyJ is a prefix; version ya29.1 of a.b.c; see eyJ.x.y and file.tar.gz"
    assert find_secrets({"text": text}) == []


def test_binary_body_is_scanned_too(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    cassette = Cassette(path)
    cassette.add(
        Interaction(
            RecordedRequest("POST", "https://h/upload", [], b"\x00key=sk-proj-" + b"A1b2" * 8),
            RecordedResponse(200, [], b"ok"),
        )
    )
    with pytest.raises(SecretLeakError) as info:
        cassette.save()
    assert "interactions[0].request.body" in str(info.value)
    assert not path.exists()


# -- issue #9: what is redacted by default -------------------------------------------------------

_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"  # key-shaped, not a key


@pytest.mark.parametrize(
    "name",
    [
        "X-Auth-Token",
        "X-Access-Token",
        "Ocp-Apim-Subscription-Key",
        "Helicone-Auth",
        "X-Portkey-Api-Key",
        "x-session-token",
        "x-amz-session-token",
        "anthropic-organization-id",
        "x-custom-secret",
        "x-db-password",
        "x-request-signature",
        "x-vendor-key",
        "x-auth-tokens",  # a token counter's shape, but an auth word: never harmless
    ],
)
def test_credential_headers_are_dropped_by_name_or_by_secret_word(name: str) -> None:
    headers = [(name, "opaque-value-1234"), ("content-type", "application/json")]
    assert Redactor().redact_headers(headers) == [("content-type", "application/json")]
    assert Redactor().is_secret_header(name)


@pytest.mark.parametrize(
    "name",
    [
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-limit-requests",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-tokens-reset",
        "x-amzn-bedrock-output-token-count",
        "www-authenticate",
        "keep-alive",
        "openai-processing-ms",
    ],
)
def test_harmless_counter_and_challenge_headers_are_kept(name: str) -> None:
    headers = [(name, "1000")]
    assert Redactor().redact_headers(headers) == headers


def test_secret_query_params_and_url_user_info_are_removed() -> None:
    url = (
        "https://ann:pw-1234@h.example:8443/v1/x?auth=a1&secret=s1&password=p1"
        "&subscription-key=k1&token=t1&access_token=at1&keep=1"
    )
    assert Redactor().redact_url(url) == "https://REDACTED@h.example:8443/v1/x?keep=1"
    assert Redactor().redact_url("https://opaque-key@h/x") == "https://REDACTED@h/x"


@pytest.mark.parametrize(
    "field",
    [
        "secret",
        "auth_token",
        "authorization",
        "x-api-key",
        "aws_secret_access_key",
        "secret_key",
        "session_token",
        "password",
    ],
)
def test_new_secret_fields_are_redacted_in_json_and_form_bodies(field: str) -> None:
    redactor = Redactor()
    document = {"outer": [{field: "opaque-value-1234", "token": "kept"}]}
    json_body = redactor.redact_body(_JSON, json.dumps(document).encode())
    assert json.loads(json_body) == {"outer": [{field: "REDACTED", "token": "kept"}]}
    form = [("content-type", "application/x-www-form-urlencoded")]
    form_body = redactor.redact_body(form, f"{field}=opaque-value-1234&a=b".encode())
    assert form_body == f"{field}=REDACTED&a=b".encode()


_JSON = [("content-type", "application/json")]
_SSE = [("content-type", "text/event-stream; charset=utf-8")]


def test_secret_fields_in_sse_events_are_redacted_event_by_event() -> None:
    events = [
        'event: message_start\ndata: {"type": "x", "session_token": "opaque-1234"}',
        'data: {"choices": [{"logprobs": {"content": [{"token": "hi", "logprob": -0.1}]}}]}',
        "data: [DONE]",
    ]
    body = "\n\n".join(events).encode() + b"\n\n"
    redacted = Redactor().redact_body(_SSE, body).decode()
    out = redacted.split("\n\n")
    assert out[0] == 'event: message_start\ndata: {"type": "x", "session_token": "REDACTED"}'
    assert out[1:] == [events[1], events[2], ""]  # the rest byte for byte: token stays
    assert Redactor().secret_fields(_SSE, body) == [("sse[0].session_token", "opaque-1234")]


def test_json_spread_over_several_sse_data_lines_is_redacted() -> None:
    body = b'id: 1\r\ndata: {"a": 1,\r\ndata: "password": "opaque-1234"}\r\n\r\n'
    redacted = Redactor().redact_body(_SSE, body)
    assert redacted == b'id: 1\r\ndata: {"a": 1, "password": "REDACTED"}\r\n\r\n'


def test_secret_fields_in_ndjson_lines_are_redacted() -> None:
    ndjson = [("content-type", "application/x-ndjson")]
    body = b'{"model": "m", "done": false}\n{"secret_key": "opaque-1234"}\n'
    redacted = Redactor().redact_body(ndjson, body)
    assert redacted == b'{"model": "m", "done": false}\n{"secret_key": "REDACTED"}\n'


def test_json_sent_as_text_plain_is_redacted_field_by_field() -> None:
    text = [("content-type", "text/plain")]
    body = b'{"auth": {"authorization": "opaque-1234", "user": "ann"}, "token": "t"}'
    assert json.loads(Redactor().redact_body(text, body)) == {
        "auth": {"authorization": "REDACTED", "user": "ann"},
        "token": "t",
    }


def test_secret_fields_are_named_by_the_body_key_of_the_yaml_form() -> None:
    body = b'{"password": "opaque-1234"}'
    assert Redactor().secret_fields(_JSON, body) == [("json.password", "opaque-1234")]
    assert Redactor().secret_fields([], body) == [("text.password", "opaque-1234")]
    assert Redactor().redact_body([], body) == b'{"password": "REDACTED"}'


def test_a_bare_token_field_stays_readable() -> None:
    body = b'{"usage": {"token": 5}, "logprobs": [{"token": "Hello", "bytes": [72]}]}'
    assert Redactor().redact_body(_JSON, body) == body


# -- issue #9: the key scan sees through escapes and encodings ----------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('data: {"text": "line one\\n' + _KEY + '"}', "OpenAI"),
        ('{"text": "x\\u0022AKIAABCDEFGHIJ234567"}', "AWS"),
        ('{"text": "a\\nBearer abcdefghijklmnopqrstuvwxyz"}', "bearer"),
        ("https://h/x?next=a%3A" + _KEY, "OpenAI"),
        ("https://h/x?next=a%3AAKIAABCDEFGHIJ234567", "AWS"),
        ("https://h/x?next=%2FAKIAABCDEFGHIJ234567", "AWS"),
        ("https://h/x?next=line%0A" + _KEY, "OpenAI"),
        ("auth=Bearer+abcdefghijklmnopqrstuvwxyz", "bearer"),
        ("note=Bearer%20abcdefghijklmnopqrstuvwxyz", "bearer"),
    ],
)
def test_key_scan_sees_through_json_escapes_and_url_encoding(text: str, kind: str) -> None:
    findings = find_secrets({"where": text})
    assert findings and all(f.startswith("where: ") for f in findings)
    assert any(kind in f for f in findings)


@pytest.mark.parametrize(
    ("headers", "body", "where"),
    [
        (_SSE, b'data: {"delta": {"text": "a\\n' + _KEY.encode() + b'"}}\n\n', "sse[0]"),
        (
            [("content-type", "application/x-ndjson")],
            b'{"a": 1}\n{"text": "b\\n' + _KEY.encode() + b'"}\n',
            "ndjson[1]",
        ),
    ],
)
def test_a_key_inside_stream_events_is_refused(
    tmp_path: Path, headers: list[tuple[str, str]], body: bytes, where: str
) -> None:
    cassette = Cassette(tmp_path / "c.yaml")
    cassette.add(
        Interaction(RecordedRequest("GET", "https://h/x"), RecordedResponse(200, headers, body))
    )
    with pytest.raises(SecretLeakError) as info:
        cassette.save()
    assert f"interactions[0].response.body.{where}: OpenAI" in str(info.value)
    assert not (tmp_path / "c.yaml").exists()


# -- opaque secrets under other spellings and in other places ---------------------------------

OPAQUE = "q7Rt2mXw9LpZ4vNc8HbK3sJd6FgY1aE5"  # 32 characters no key pattern matches


@pytest.mark.parametrize("name", ["refresh_token", "id_token", "client_assertion", "code"])
def test_oauth_query_params_are_dropped(name: str) -> None:
    url = f"https://h/oauth/callback?state=s1&{name}={OPAQUE}"
    assert Redactor().redact_url(url) == "https://h/oauth/callback?state=s1"


@pytest.mark.parametrize("name", ["accessToken", "refreshToken", "apiKey", "Client-Secret"])
def test_query_param_names_match_whatever_their_spelling(name: str) -> None:
    assert Redactor().redact_url(f"https://h/x?{name}={OPAQUE}&n=1") == "https://h/x?n=1"


@pytest.mark.parametrize(
    "name",
    [
        "accessToken",
        "clientSecret",
        "secretAccessKey",
        "apiKey",
        "api_token",
        "bearer_token",
        "Refresh-Token",
        "AWS_SECRET_ACCESS_KEY",
        "openaiApiKey",
        "webhook_secret",
        "personalAccessToken",
    ],
)
def test_secret_field_names_match_whatever_their_spelling(name: str) -> None:
    body = json.dumps({"config": {name: OPAQUE, "model": "m"}}).encode()
    redacted = Redactor().redact_body([("content-type", "application/json")], body)
    assert OPAQUE.encode() not in redacted
    assert json.loads(redacted) == {"config": {name: "REDACTED", "model": "m"}}


@pytest.mark.parametrize(
    "name",
    ["token", "tokens", "max_tokens", "prompt_tokens", "maxTokens", "total_tokens", "bos_token"],
)
def test_token_counts_and_bare_tokens_stay_readable(name: str) -> None:
    body = json.dumps({name: "hello", "usage": {name: 12}}).encode()
    assert Redactor().redact_body([("content-type", "application/json")], body) == body


def test_a_json_body_with_a_utf8_bom_is_redacted() -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"client_secret": OPAQUE}).encode()
    redacted = Redactor().redact_body([("content-type", "application/json")], body)
    assert OPAQUE.encode() not in redacted
    assert json.loads(redacted.decode("utf-8-sig")) == {"client_secret": "REDACTED"}


def test_secret_fields_in_json_held_in_a_json_string_are_redacted() -> None:
    arguments = json.dumps({"city": "Paris", "apiKey": OPAQUE})
    call = {"function": {"name": "weather", "arguments": arguments}}
    body = json.dumps({"messages": [{"role": "assistant", "tool_calls": [call]}]}).encode()
    redactor = Redactor()
    headers = [("content-type", "application/json")]
    redacted = redactor.redact_body(headers, body)
    assert OPAQUE.encode() not in redacted
    inner = json.loads(
        json.loads(redacted)["messages"][0]["tool_calls"][0]["function"]["arguments"]
    )
    assert inner == {"city": "Paris", "apiKey": "REDACTED"}
    assert [path for path, _ in redactor.secret_fields(headers, body)] == [
        "json.messages[0].tool_calls[0].function.arguments.apiKey"
    ]


def test_a_json_string_without_secret_fields_is_left_as_it_was() -> None:
    arguments = '{"city":  "Paris"}'  # its own spacing: not re-serialised
    body = json.dumps({"arguments": arguments, "note": "[not json"}).encode()
    assert Redactor().redact_body([("content-type", "application/json")], body) == body


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_secret_named_multipart_fields_are_redacted(newline: str) -> None:
    parts = [
        ('name="purpose"', "fine-tune"),
        ('name="api_key"', OPAQUE),
        ('name="file"; filename="password.txt"', "plain file content"),
    ]
    body = "".join(
        f"--XyZ{newline}Content-Disposition: form-data; {disposition}{newline}{newline}"
        f"{value}{newline}"
        for disposition, value in parts
    )
    body += f"--XyZ--{newline}"
    headers = [("content-type", 'multipart/form-data; boundary="XyZ"')]
    redactor = Redactor()
    redacted = redactor.redact_body(headers, body.encode())
    assert OPAQUE.encode() not in redacted
    assert redacted == body.replace(OPAQUE, "REDACTED").encode()
    assert redactor.secret_fields(headers, body.encode()) == [("multipart.api_key", OPAQUE)]


@pytest.mark.parametrize(
    "name", ["X-Api-Tokens", "X-Credential", "X-Vendor-Credentials", "x-api-key-tokens"]
)
def test_credential_and_api_token_headers_are_dropped(name: str) -> None:
    assert Redactor().redact_headers([(name, OPAQUE), ("x-n", "1")]) == [("x-n", "1")]


@pytest.mark.parametrize(
    "name",
    [
        "x-ratelimit-remaining-tokens",
        "anthropic-ratelimit-output-tokens-remaining",
        "access-control-allow-credentials",
    ],
)
def test_counters_and_cors_headers_stay(name: str) -> None:
    assert Redactor().redact_headers([(name, "true")]) == [(name, "true")]
