"""``harness cassettes list/show/audit/prune/convert`` on corpus copies and recorded files."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
import vcr
import yaml
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from harness.cli import main
from harness.replay import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    Redactor,
    ReplayTransport,
    SecretLeakError,
    dump_interactions,
    load_interactions,
)
from tests.wirecorpus import CORPUS

OPENAI_STREAM = "openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml"
OPENAI_PLAIN = "openai/pydantic-ai__test_max_completion_tokens[gpt-4o-mini].yaml"
ANTHROPIC_THINKING = "anthropic/llm-anthropic__test_stream_events_thinking.yaml"
FAKE_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"  # key-shaped, not a key


@pytest.fixture(autouse=True)
def _no_configured_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit and show also look for provider key env values: start from none."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def _copy(name: str, into: Path) -> Path:
    target = into / Path(name).name
    shutil.copyfile(CORPUS / name, target)
    return target


def _completion(request: httpx2.Request) -> httpx2.Response:
    prompt = json.loads(request.content)["messages"][-1]["content"]
    if json.loads(request.content).get("stream"):
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        events = [
            {**base, "choices": [{"index": 0, "delta": {"content": word}}]}
            for word in ("echo: ", prompt)
        ]
        events.append({**base, "choices": [], "usage": {"prompt_tokens": 2, "total_tokens": 5}})
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)
    return httpx2.Response(
        200,
        json={
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"echo: {prompt}"},
                }
            ],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
        },
    )


def _ask(transport: ReplayTransport, prompts: list[str], stream: bool = False) -> None:
    with httpx2.Client(transport=transport) as http:
        client = openai.OpenAI(api_key="test", max_retries=0, http_client=http)
        for prompt in prompts:
            messages: Any = [{"role": "user", "content": prompt}]
            if stream:
                for _ in client.chat.completions.create(model="m", messages=messages, stream=True):
                    pass
            else:
                client.chat.completions.create(model="m", messages=messages)


def _record(path: Path, prompts: list[str], stream: bool = False) -> Path:
    """A harness cassette recorded through the openai SDK, answered by a mock upstream."""
    upstream = httpx2.MockTransport(_completion)
    _ask(ReplayTransport(path, "record", upstream=upstream, redactor=Redactor()), prompts, stream)
    return path


def _leaky_vcr_cassette(path: Path) -> Path:
    """A vcrpy cassette with an auth header, a key query param and a key in a gzip body."""
    body = gzip.compress(json.dumps({"echo": FAKE_KEY}).encode())
    data = {
        "interactions": [
            {
                "request": {
                    "body": '{"model": "m"}',
                    "headers": {
                        "Authorization": [f"Bearer {FAKE_KEY}"],
                        "Content-Type": ["application/json"],
                    },
                    "method": "POST",
                    "uri": "https://example.test/v1/chat?key=AIzaNotReallyAKeyButLongEnough&x=1",
                },
                "response": {
                    "body": {"string": body},
                    "headers": {
                        "Content-Type": ["application/json"],
                        "Content-Encoding": ["gzip"],
                    },
                    "status": {"code": 200, "message": "OK"},
                },
            }
        ],
        "version": 1,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- list ----------------------------------------------------------------------------------------


def test_list_shows_count_hosts_dates_format_and_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _copy(ANTHROPIC_THINKING, tmp_path)
    _record(tmp_path / "sub" / "mine.yaml", ["a", "b", "c"])
    assert main(["cassettes", "list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    thinking = next(line for line in out.splitlines() if "thinking" in line)
    assert "vcrpy" in thinking and "POST api.anthropic.com" in thinking
    assert "2026-04-05" in thinking  # from the recorded response's date header
    mine = next(line for line in out.splitlines() if "mine.yaml" in line)
    assert "harness" in mine and "POST api.openai.com x3" in mine and " 3 " in mine
    assert "KiB" in mine or " B" in mine


def test_list_defaults_to_the_cassettes_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(tmp_path / "cassettes" / "x.yaml", ["a"])
    monkeypatch.chdir(tmp_path)
    assert main(["cassettes", "list"]) == 0
    assert "x.yaml" in capsys.readouterr().out


def test_list_reports_a_corrupt_cassette_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(
        "format: harness\nversion: 1\ninteractions: [{request: 1}]\n"
    )
    _record(tmp_path / "good.yaml", ["a"])
    assert main(["cassettes", "list", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "good.yaml" in captured.out and "corrupt" in captured.out
    assert "bad.yaml: interactions[0]" in captured.err


def test_list_of_a_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cassettes", "list", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


# -- show ----------------------------------------------------------------------------------------


def test_show_reassembles_an_openai_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(OPENAI_STREAM, tmp_path)
    assert main(["cassettes", "show", str(path), "--index", "0"]) == 0
    out = capsys.readouterr().out
    assert "POST https://api.openai.com/v1/chat/completions" in out
    assert '"model": "gpt-4o-mini"' in out  # request JSON pretty-printed
    assert "-> 200 OK" in out
    assert 'tool_call: get_capital({"country":"UK"})' in out
    assert '"total_tokens":68' in out
    assert "interactions[1]" not in out


def test_show_reassembles_a_recorded_stream_text_and_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path / "s.yaml", ["hello"], stream=True)
    assert main(["cassettes", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "reassembled: OpenAI chat completion, 3 chunks" in out
    assert 'text: "echo: hello"' in out
    assert 'usage: {"prompt_tokens":2,"total_tokens":5}' in out


def test_show_raw_lists_the_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _record(tmp_path / "s.yaml", ["hello"], stream=True)
    assert main(["cassettes", "show", str(path), "--raw"]) == 0
    out = capsys.readouterr().out
    assert "stream: 4 SSE events" in out and "[3] [DONE]" in out


def test_show_reassembles_anthropic_thinking_and_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(ANTHROPIC_THINKING, tmp_path)
    assert main(["cassettes", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "content[0] thinking:" in out and "Pelé (play on pelican)" in out
    assert "content[1] text:" in out and "**Pouch**" in out
    assert "stop_reason: end_turn" in out and '"output_tokens":133' in out
    assert "set-cookie: <redacted>" in out


def test_show_never_prints_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _leaky_vcr_cassette(tmp_path / "leaky.yaml")
    monkeypatch.setenv("OPENAI_API_KEY", "configured-secret-value")
    text = path.read_text().replace('"model": "m"', '"model": "configured-secret-value"')
    path.write_text(text)
    assert main(["cassettes", "show", str(path), "--headers"]) == 0
    out = capsys.readouterr().out
    assert FAKE_KEY not in out and FAKE_KEY[:12] not in out
    assert "AIzaNotReally" not in out and "configured-secret-value" not in out
    assert "authorization: <redacted>" in out and "key=%3Credacted%3E" not in out


def test_show_masks_user_info_credential_headers_and_secret_named_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = RecordedRequest(
        "POST",
        "https://ann:pw-opaque-1@h.example/v1/x?subscription-key=opaque-2&q=1",
        [("content-type", "application/json"), ("x-auth-token", "opaque-3")],
        b'{"session_token": "opaque-4", "token": "kept"}',
    )
    response = RecordedResponse(
        200,
        [("content-type", "text/event-stream"), ("anthropic-organization-id", "opaque-5")],
        b'data: {"secret_key": "opaque-6"}\n\ndata: [DONE]\n\n',
    )
    path = tmp_path / "c.yaml"
    path.write_text(dump_interactions([Interaction(request, response)])[1], encoding="utf-8")
    assert main(["cassettes", "show", str(path), "--headers", "--raw"]) == 0
    out = capsys.readouterr().out
    assert "opaque-" not in out, out
    assert "x-auth-token: <redacted>" in out and "anthropic-organization-id: <redacted>" in out
    assert '"token": "kept"' in out


def test_show_index_out_of_range_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(OPENAI_PLAIN, tmp_path)
    assert main(["cassettes", "show", str(path), "--index", "5"]) == 2
    assert "no interactions[5] (it has 1)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("interactions: [\n", "not valid YAML"),
        ("format: harness\nversion: 9\n", "version 9 is not supported"),
        ("version: 1\ninteractions:\n- request: {method: GET}\n", "interactions[0].response"),
    ],
)
def test_show_of_a_missing_or_corrupt_cassette_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content)
    assert main(["cassettes", "show", str(path)]) == 2
    assert message in capsys.readouterr().err


# -- audit ---------------------------------------------------------------------------------------


def test_audit_of_clean_cassettes_exits_0_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(tmp_path / "a.yaml", ["a", "b"])
    _record(tmp_path / "b.yaml", ["c"], stream=True)
    _copy(OPENAI_PLAIN, tmp_path)
    assert main(["cassettes", "audit", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "audited 3 file(s): 0 with secrets, 0 unreadable, 3 clean\n"


def test_audit_verbose_prints_one_line_per_clean_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = _record(tmp_path / "a.yaml", ["a"])
    leaky = _leaky_vcr_cassette(tmp_path / "b.yaml")
    assert main(["cassettes", "audit", "-v", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{clean}: clean" in lines
    assert f"{leaky}: clean" not in lines
    assert lines[-1] == "audited 2 file(s): 1 with secrets, 0 unreadable, 1 clean"


def test_audit_names_file_and_key_path_of_each_finding_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _leaky_vcr_cassette(tmp_path / "leaky.yaml")
    assert main(["cassettes", "audit", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: interactions[0].request.headers.Authorization[0]: " in out
    assert "interactions[0].request.headers.authorization: secret header present" in out
    assert "interactions[0].request.uri: key-like query parameter 'key'" in out
    assert "interactions[0].response.body.json.echo: OpenAI" in out  # inside the gzip
    assert FAKE_KEY not in out


def test_audit_finds_configured_secret_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path / "a.yaml", ["my-very-own-api-key"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "my-very-own-api-key")
    assert main(["cassettes", "audit", str(path)]) == 1
    out = capsys.readouterr().out
    assert "interactions[0] (as decoded YAML, line" in out
    assert "a configured secret value" in out
    assert "my-very-own-api-key" not in out


def test_audit_accepts_placeholders_for_secret_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _leaky_vcr_cassette(tmp_path / "x.yaml")
    data = yaml.safe_load(path.read_text())
    request = data["interactions"][0]["request"]
    request["headers"]["Authorization"] = ["Bearer <REDACTED>"]
    request["headers"]["X-Auth-Token"] = ["<filtered>"]
    request["uri"] = "https://REDACTED@example.test/v1/chat?key=REDACTED"
    request["body"] = '{"model": "m", "password": "REDACTED"}'
    data["interactions"][0]["response"] = {
        "body": {"string": "{}"},
        "headers": {"Content-Type": ["application/json"]},
        "status": {"code": 200, "message": "OK"},
    }
    path.write_text(yaml.safe_dump(data))
    assert main(["cassettes", "audit", str(path)]) == 0, capsys.readouterr().out


def test_audit_of_a_corrupt_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("format: harness\nversion: 1\nnote: nothing secret\n")
    _record(tmp_path / "good.yaml", ["a"])
    assert main(["cassettes", "audit", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "bad.yaml" in captured.err and "unknown key" in captured.err
    assert captured.out.splitlines()[-1] == (
        "audited 2 file(s): 0 with secrets, 1 unreadable, 1 clean"
    )


def test_audit_exits_1_when_a_secret_is_found_even_if_a_file_is_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(f"format: harness\nversion: 1\nnote: {FAKE_KEY}\n")
    (tmp_path / "blob.yaml").write_bytes(b"\x00\x01 binary")
    assert main(["cassettes", "audit", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "bad.yaml: note: OpenAI/Anthropic-style key" in captured.out  # corrupt, still scanned
    assert "unknown key" in captured.err
    assert captured.out.splitlines()[-1] == (
        "audited 2 file(s): 1 with secrets, 2 unreadable, 0 clean"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file (a NUL byte at offset 8)"),
        ("format: harness\nnote: caf\u00e9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    ],
)
def test_audit_reports_a_binary_or_non_utf8_file_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    assert main(["cassettes", "audit", str(path)]) == 2
    captured = capsys.readouterr()
    assert f"harness: {path}: {reason}" in captured.err
    assert "a cassette is UTF-8 YAML text" in captured.err
    assert captured.out == "audited 1 file(s): 0 with secrets, 1 unreadable, 0 clean\n"


def test_audit_finds_a_key_in_a_binary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(b"\x00\xff key=" + FAKE_KEY.encode() + b"\n")
    assert main(["cassettes", "audit", str(path)]) == 1
    assert "line 1: OpenAI/Anthropic-style key" in capsys.readouterr().out


def test_audit_finds_a_key_in_a_yaml_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path / "a.yaml", ["a"])
    path.write_text(path.read_text() + f"# old key: {FAKE_KEY}\n")
    assert main(["cassettes", "audit", str(path)]) == 1
    line = len(path.read_text().splitlines())
    assert f"{path}: line {line}: OpenAI/Anthropic-style key" in capsys.readouterr().out


def _write_unchecked(path: Path, interactions: list[Interaction]) -> Path:
    """A harness cassette written without the write-time secret check (as a hand edit might)."""
    path.write_text(dump_interactions(interactions)[1], encoding="utf-8")
    return path


_JSON = [("content-type", "application/json")]
_SSE = [("content-type", "text/event-stream")]


@pytest.mark.parametrize(
    ("request_", "response", "expected"),
    [
        (
            RecordedRequest("GET", "https://h/x", [("x-auth-token", "opaque-value-123")]),
            RecordedResponse(200),
            "interactions[0].request.headers.x-auth-token: secret header present",
        ),
        (
            RecordedRequest("GET", "https://h/x", [("x-portkey-api-key", "opaque-value-123")]),
            RecordedResponse(200),
            "interactions[0].request.headers.x-portkey-api-key: secret header present",
        ),
        (
            RecordedRequest("GET", "https://h/x"),
            RecordedResponse(200, [("anthropic-organization-id", "org-uuid-1234")]),
            "interactions[0].response.headers.anthropic-organization-id: secret header present",
        ),
        (
            RecordedRequest("GET", "https://h/x?subscription-key=opaque&q=1"),
            RecordedResponse(200),
            "interactions[0].request.uri: key-like query parameter 'subscription-key'",
        ),
        (
            RecordedRequest("GET", "https://ann:hunter2pw@h/x"),
            RecordedResponse(200),
            "interactions[0].request.uri: user-info (user:password@) in the URL",
        ),
        (
            RecordedRequest("POST", "https://h/x", _JSON, b'{"aws_secret_access_key": "op"}'),
            RecordedResponse(200),
            "interactions[0].request.body.json.aws_secret_access_key: secret-named field",
        ),
        (
            RecordedRequest("GET", "https://h/x"),
            RecordedResponse(200, _SSE, b'data: {"a": 1}\n\ndata: {"session_token": "op"}\n\n'),
            "interactions[0].response.body.sse[1].session_token: secret-named field",
        ),
        (
            RecordedRequest("GET", "https://h/x"),
            RecordedResponse(
                200, [("content-type", "text/plain")], b'{"auth": {"secret": "opaque"}}'
            ),
            "interactions[0].response.body.text.auth.secret: secret-named field",
        ),
        (
            RecordedRequest("GET", "https://h/x"),
            RecordedResponse(200, _SSE, b'data: {"text": "a\\n' + FAKE_KEY.encode() + b'"}\n\n'),
            "interactions[0].response.body.sse[0]: OpenAI/Anthropic-style key",
        ),
        (
            RecordedRequest("GET", "https://h/x?next=%3A" + FAKE_KEY),
            RecordedResponse(200),
            "interactions[0].request.uri: OpenAI/Anthropic-style key",
        ),
    ],
)
def test_audit_finds_what_redaction_removes_and_what_the_write_check_refuses(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_: RecordedRequest,
    response: RecordedResponse,
    expected: str,
) -> None:
    path = _write_unchecked(tmp_path / "c.yaml", [Interaction(request_, response)])
    assert main(["cassettes", "audit", str(path)]) == 1
    assert f"{path}: {expected}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "body",
    [
        b'{"note": "' + FAKE_KEY.encode() + b'"}',
        b'{"note": "x\\n' + FAKE_KEY.encode() + b'"}',
        b'{"note": "x\\u0022AKIAABCDEFGHIJ234567"}',
        b'{"url": "https://h/?a=%2FAKIAABCDEFGHIJ234567"}',
        b'{"h": "x%0ABearer abcdefghijklmnopqrstuvwxyz"}',
        b"\x00binary " + FAKE_KEY.encode(),
    ],
)
def test_audit_flags_whatever_the_write_time_check_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: bytes
) -> None:
    interaction = Interaction(
        RecordedRequest("GET", "https://h/x"), RecordedResponse(200, _JSON, body)
    )
    cassette = Cassette(tmp_path / "checked.yaml")
    cassette.add(interaction)
    with pytest.raises(SecretLeakError):
        cassette.save()
    path = _write_unchecked(tmp_path / "c.yaml", [interaction])
    assert main(["cassettes", "audit", str(path)]) == 1
    assert "interactions[0].response.body" in capsys.readouterr().out


def test_audit_of_a_missing_path_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cassettes", "audit", str(tmp_path / "gone.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


# -- prune ---------------------------------------------------------------------------------------


def _played_once(path: Path, report: Path, prompts: list[str]) -> None:
    transport = ReplayTransport(path, "replay", redactor=Redactor())
    _ask(transport, prompts)
    transport.write_unplayed_report(report)


def test_prune_drops_the_interactions_a_run_left_unplayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path / "c.yaml", ["a", "b", "c", "d"])
    report = tmp_path / "unplayed.json"
    _played_once(path, report, ["b", "d"])
    assert [e["index"] for e in json.loads(report.read_text())["unplayed"]] == [0, 2]
    before = load_interactions(path)

    assert main(["cassettes", "prune", str(path), "--unplayed", str(report)]) == 0
    assert "dropping 2 of 4 interaction(s)" in capsys.readouterr().out
    after = load_interactions(path)
    assert after == [before[1], before[3]]  # the rest kept as it was, in order
    assert path.read_text().startswith("format: harness\nversion: 2\n")
    _played_once(path, report, ["b", "d"])  # still replays, now with nothing left over
    assert json.loads(report.read_text())["unplayed"] == []
    assert not list(tmp_path.glob(".c.yaml.*.tmp"))


def test_prune_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _record(tmp_path / "c.yaml", ["a", "b"])
    report = tmp_path / "unplayed.json"
    _played_once(path, report, ["a"])
    text = path.read_text()
    assert main(["cassettes", "prune", str(path), "--unplayed", str(report), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would drop interactions[1]: POST https://api.openai.com/v1/chat/completions" in out
    assert path.read_text() == text


def test_prune_keeps_a_vcrpy_cassette_in_vcrpy_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy("anthropic/pydantic-ai__test_anthropic_tool_with_thinking.yaml", tmp_path)
    second = load_interactions(path)[1]
    report = tmp_path / "r.json"
    report.write_text(json.dumps([{"cassette": path.name, "unplayed": [0]}]))  # relative to it
    assert main(["cassettes", "prune", str(path), "--unplayed", str(report)]) == 0
    assert load_interactions(path) == [second]
    assert "format:" not in path.read_text() and "parsed_body" in path.read_text()


def test_prune_refuses_when_the_cassette_changed_since_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path / "c.yaml", ["a", "b"])
    report = tmp_path / "unplayed.json"
    _played_once(path, report, ["a"])
    path.unlink()  # then it was recorded afresh, with other prompts
    _record(path, ["x", "y"])
    text = path.read_text()
    assert main(["cassettes", "prune", str(path), "--unplayed", str(report)]) == 2
    assert "the cassette changed since the run" in capsys.readouterr().err
    assert path.read_text() == text


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("{not json", "not a JSON unplayed report"),
        ('{"cassette": "/elsewhere.yaml", "unplayed": [0]}', "no entry for"),
        ("CASSETTE", "no interactions[7]"),
    ],
)
def test_prune_with_a_bad_report_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], report: str, message: str
) -> None:
    path = _record(tmp_path / "c.yaml", ["a"])
    if report == "CASSETTE":
        report = json.dumps({"cassette": str(path), "unplayed": [7]})
    (tmp_path / "r.json").write_text(report)
    assert main(["cassettes", "prune", str(path), "--unplayed", str(tmp_path / "r.json")]) == 2
    assert message in capsys.readouterr().err


def test_prune_of_a_report_listing_nothing_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "unplayed.json"
    report.write_text("[]")
    assert main(["cassettes", "prune", "--unplayed", str(report)]) == 0
    assert capsys.readouterr().out == (
        "nothing to prune: the report lists no unplayed interactions\n"
    )
    path = _record(tmp_path / "c.yaml", ["a", "b"])
    _played_once(path, report, ["a", "b"])  # everything played: an entry, nothing unplayed
    assert main(["cassettes", "prune", "--unplayed", str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "nothing to prune: the report lists no unplayed interactions"
    assert len(load_interactions(path)) == 2


def test_prune_of_a_whole_report_ends_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _record(tmp_path / "c.yaml", ["a", "b"]), _record(tmp_path / "d.yaml", ["c"])
    _played_once(first, tmp_path / "1.json", ["a"])
    _played_once(second, tmp_path / "2.json", [])
    report = tmp_path / "unplayed.json"
    entries = [json.loads((tmp_path / n).read_text()) for n in ("1.json", "2.json")]
    report.write_text(json.dumps(entries))
    assert main(["cassettes", "prune", "--unplayed", str(report), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "would prune 2 interaction(s) from 2 cassette(s)"
    )
    assert main(["cassettes", "prune", "--unplayed", str(report)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "pruned 2 interaction(s) from 2 cassette(s)"
    assert [len(load_interactions(p)) for p in (first, second)] == [1, 0]


def test_prune_names_the_cassette_that_lost_interactions_since_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _record(tmp_path / "c.yaml", ["a", "b", "c"])
    report = tmp_path / "un2.json"
    _played_once(path, report, ["a"])
    path.unlink()  # recorded afresh, shorter
    _record(path, ["a"])
    assert main(["cassettes", "prune", "--unplayed", str(report)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: 1 interaction(s) now, 3 when {report} was written" in err
    assert "re-run pytest with --llm-unplayed-report" in err
    assert len(load_interactions(path)) == 1


# -- convert -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [OPENAI_PLAIN, OPENAI_STREAM, ANTHROPIC_THINKING])
def test_convert_vcrpy_to_harness_and_back_keeps_the_interactions(
    tmp_path: Path, name: str
) -> None:
    source = _copy(name, tmp_path)
    mine, theirs = tmp_path / "h.yaml", tmp_path / "v.yaml"
    assert main(["cassettes", "convert", str(source), str(mine)]) == 0
    assert mine.read_text().startswith("format: harness\n")
    assert main(["cassettes", "convert", str(mine), str(theirs), "--to", "vcrpy"]) == 0
    original, converted, back = (load_interactions(p) for p in (source, mine, theirs))
    assert converted == back
    assert [i.response.body for i in converted] == [i.response.body for i in original]
    assert "set-cookie" not in mine.read_text().lower()  # secret headers dropped on the way


def test_converted_vcrpy_cassette_loads_and_plays_in_vcrpy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = _record(tmp_path / "h.yaml", ["first", "second"])
    theirs = tmp_path / "v.yaml"
    assert main(["cassettes", "convert", str(mine), str(theirs), "--to", "vcrpy"]) == 0
    requests, responses = FilesystemPersister.load_cassette(str(theirs), yamlserializer)
    assert [r.uri for r in requests] == ["https://api.openai.com/v1/chat/completions"] * 2
    assert responses[0]["status"] == {"code": 200, "message": "OK"}

    # openai 3 accepts a legacy httpx client, which vcrpy can patch
    with (
        vcr.use_cassette(str(theirs), record_mode="none", match_on=["method", "uri", "body"]),
        httpx.Client() as http,
    ):
        client = openai.OpenAI(api_key="test", max_retries=0, http_client=http)
        replies = [
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": p}])
            for p in ("second", "first")
        ]
    assert [r.choices[0].message.content for r in replies] == ["echo: second", "echo: first"]


def test_convert_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy(OPENAI_PLAIN, tmp_path)
    target = tmp_path / "out.yaml"
    target.write_text("keep me")
    assert main(["cassettes", "convert", str(source), str(target)]) == 2
    assert "already exists" in capsys.readouterr().err and target.read_text() == "keep me"
    assert main(["cassettes", "convert", str(source), str(target), "--force"]) == 0


def test_convert_drops_auth_but_refuses_to_write_a_key_in_a_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _leaky_vcr_cassette(tmp_path / "leaky.yaml")
    target = tmp_path / "out.yaml"
    assert main(["cassettes", "convert", str(source), str(target)]) == 2
    err = capsys.readouterr().err
    assert "refusing to write" in err and "OpenAI/Anthropic-style key" in err
    assert FAKE_KEY not in err and not target.exists()


def test_convert_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cassettes", "convert", str(tmp_path / "a.yaml"), str(tmp_path / "b")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_models_subcommand_is_still_there(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    assert "--config" in capsys.readouterr().out


def test_audit_of_a_missing_path_still_prints_its_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(tmp_path / "a.yaml", ["a"])
    assert main(["cassettes", "audit", str(tmp_path / "gone.yaml"), str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"{tmp_path / 'gone.yaml'}: no such file or directory" in captured.err
    assert captured.out == "audited 2 file(s): 0 with secrets, 1 unreadable, 1 clean\n"


def test_audit_walks_a_named_directory_and_its_subfolders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    _record(tmp_path / "deep" / "er" / "a.yaml", ["a"])
    _record(tmp_path / "deep" / "b.yml", ["b"])
    assert main(["cassettes", "audit", "-v", str(tmp_path / "deep")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "audited 2 file(s): 0 with secrets, 0 unreadable, 2 clean"
    assert f"{tmp_path / 'deep' / 'er' / 'a.yaml'}: clean" in out


def test_audit_reports_a_directory_it_cannot_read_as_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _record(locked / "a.yaml", ["a"])
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # what a directory without read permission does
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["cassettes", "audit", str(locked)]) == 2
    captured = capsys.readouterr()
    assert f"{locked}: cannot read the directory: Permission denied" in captured.err
    assert captured.out == "audited 1 file(s): 0 with secrets, 1 unreadable, 0 clean\n"
