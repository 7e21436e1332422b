"""Recording never loses or half-writes a cassette: refused keys, auth failures, corrupt files,
cut streams, locks and temp files (issue #9)."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from harness.replay import (
    Cassette,
    CassetteFormatError,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    Redactor,
    ReplayTransport,
    ReplayWarning,
    SecretLeakError,
    dump_interactions,
    load_interactions,
    use_cassette,
)
from harness.replay.files import STALE_AFTER
from harness.replay.transport import NOTE_EXTENSION

URL = "https://api.example.com/v1/x"
LEAK = "sk-proj-" + "a1B2" * 10


class Upstream:
    """A MockTransport handler that counts calls and answers what ``reply`` says."""

    def __init__(self, reply: Any = None) -> None:
        self.calls = 0
        self.reply = reply or (lambda body: httpx2.Response(200, json={"echo": body}))

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        return self.reply(json.loads(request.content or b"null"))

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


def _transport(path: Path, mode: str, upstream: Upstream, **options: Any) -> ReplayTransport:
    options.setdefault("redactor", Redactor())
    return ReplayTransport(path, mode, upstream=upstream.transport(), **options)


def _sent(path: Path) -> list[Any]:
    return [json.loads(i.request.body) for i in load_interactions(path)]


def _cassette(path: Path, numbers: range) -> bytes:
    interactions = [
        Interaction(
            RecordedRequest(
                "POST", URL, [("content-type", "application/json")], json.dumps({"n": n}).encode()
            ),
            RecordedResponse(200, [("content-type", "application/json")], b'{"ok": true}'),
        )
        for n in numbers
    ]
    path.write_text(dump_interactions(interactions)[1], encoding="utf-8")
    return path.read_bytes()


def _leaky(body: Any) -> httpx2.Response:
    if body.get("leak"):
        return httpx2.Response(200, json={"note": f"your key is {LEAK}"})
    return httpx2.Response(200, json={"echo": body})


# -- item 4: a refused interaction is dropped, later ones record ------------------------------


@pytest.mark.parametrize("mode", ["record", "rewrite"])
def test_a_call_refused_for_a_secret_raises_and_later_requests_record_normally(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "c.yaml"
    upstream = Upstream(_leaky)
    with httpx2.Client(transport=_transport(path, mode, upstream)) as client:
        client.post(URL, json={"n": 1})
        with pytest.raises(SecretLeakError, match=r"response\.body"):
            client.post(URL, json={"n": 2, "leak": True})
        for n in (3, 4):
            assert client.post(URL, json={"n": n}).json() == {"echo": {"n": n}}
    assert upstream.calls == 4
    assert _sent(path) == [{"n": 1}, {"n": 3}, {"n": 4}]
    assert LEAK not in path.read_text(encoding="utf-8")


async def test_a_refused_interaction_surfaces_as_secret_leak_error_through_an_sdk(
    tmp_path: Path,
) -> None:
    def reply(body: Any) -> httpx2.Response:
        content = f"key {LEAK}" if "leak" in body["messages"][0]["content"] else "fine"
        return httpx2.Response(200, json=_completion(content))

    path = tmp_path / "c.yaml"
    transport = _transport(path, "record", Upstream(reply))
    async with httpx2.AsyncClient(transport=transport) as http:
        client = openai.AsyncOpenAI(api_key="k", base_url=URL, max_retries=0, http_client=http)
        with pytest.raises(SecretLeakError):  # the SDK reads the body outside its retry loop
            await _ask(client, "leak please")
        assert await _ask(client, "hello") == "fine"
    assert [
        json.loads(i.request.body)["messages"][0]["content"] for i in load_interactions(path)
    ] == ["hello"]


def _completion(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }


async def _ask(client: openai.AsyncOpenAI, text: str) -> str:
    reply = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content or ""


# -- item 9: 401/403/407 are not recorded; rewrite replaces the file only at close -------------


def _status(status: int) -> Any:
    return lambda body: httpx2.Response(status, json={"error": {"message": "bad key"}})


@pytest.mark.parametrize("status", [401, 403, 407])
@pytest.mark.parametrize("mode", ["record", "rewrite"])
def test_an_auth_failure_is_passed_on_with_a_hint_and_not_recorded(
    tmp_path: Path, mode: str, status: int
) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(3))
    transport = _transport(path, mode, Upstream(_status(status)))
    with httpx2.Client(transport=transport) as client:
        with pytest.warns(ReplayWarning, match=rf"{status} answer .* not recorded") as caught:
            response = client.post(URL, json={"n": 99})
        assert response.status_code == status
        assert response.json() == {"error": {"message": "bad key"}}
    hint = "proxy credentials" if status == 407 else "API key"
    assert hint in str(caught[0].message) and "cassette is unchanged" in str(caught[0].message)
    assert hint in response.extensions[NOTE_EXTENSION]
    assert path.read_bytes() == before


async def test_rewrite_with_a_wrong_key_keeps_the_good_cassette_and_the_sdk_raises_auth_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(10))
    upstream = Upstream(_status(401))
    async with httpx2.AsyncClient(transport=_transport(path, "rewrite", upstream)) as http:
        client = openai.AsyncOpenAI(api_key="wrong", base_url=URL, max_retries=0, http_client=http)
        with (
            pytest.warns(ReplayWarning, match="check the API key"),
            pytest.raises(openai.AuthenticationError) as info,
        ):
            await _ask(client, "hi")
    assert "check the API key" in info.value.response.extensions[NOTE_EXTENSION]
    assert upstream.calls == 1
    assert path.read_bytes() == before  # 10 good interactions, not one 401


def test_rewrite_replaces_the_file_at_close_only(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(5))
    transport = _transport(path, "rewrite", Upstream())
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"new": 1})
        client.post(URL, json={"new": 2})
        assert path.read_bytes() == before  # a run killed here keeps the old cassette
    assert _sent(path) == [{"new": 1}, {"new": 2}]


def test_rewrite_that_records_nothing_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(2))
    transport = _transport(path, "rewrite", Upstream())
    transport.close()
    with use_cassette(path, "rewrite", upstream=Upstream().transport()):
        pass
    assert path.read_bytes() == before


async def test_use_cassette_rewrite_writes_when_the_block_exits(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(2))
    async with use_cassette(path, "rewrite", upstream=Upstream().transport()):
        async with httpx2.AsyncClient() as client:
            await client.post(URL, json={"n": "fresh"})
        assert path.read_bytes() == before
    assert _sent(path) == [{"n": "fresh"}]


@pytest.mark.parametrize("status", [404, 429, 500])
def test_rewrite_whose_every_answer_is_an_error_keeps_the_good_cassette_and_warns(
    tmp_path: Path, status: int
) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(10))
    upstream = Upstream(_status(status))
    transport = _transport(path, "rewrite", upstream)
    with httpx2.Client(transport=transport) as client:
        assert client.post(URL, json={"n": 1}).status_code == status
        assert client.post(URL, json={"n": 2}).status_code == status
        with pytest.warns(ReplayWarning, match="left .* as it was") as caught:
            client.close()
    message = str(caught[0].message)
    assert f"({status} (2 times))" in message and str(path) in message
    assert path.read_bytes() == before  # 10 good interactions, not two errors
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # closed: no "never closed" warning when collected
        del client, transport
        gc.collect()


async def test_use_cassette_rewrite_whose_every_answer_is_an_error_keeps_the_cassette(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(10))
    with pytest.warns(ReplayWarning, match=r"as it was: .*\(404\)"):
        async with (
            use_cassette(path, "rewrite", upstream=Upstream(_status(404)).transport()),
            httpx2.AsyncClient(base_url="https://wrong.example.com") as client,
        ):
            assert (await client.post("/v1/x", json={"n": 1})).status_code == 404
    assert path.read_bytes() == before


def test_rewrite_with_one_success_among_errors_replaces_the_cassette(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _cassette(path, range(10))
    answers = iter([404, 200, 500])
    upstream = Upstream(lambda body: httpx2.Response(next(answers), json={"echo": body}))
    with httpx2.Client(transport=_transport(path, "rewrite", upstream)) as client:
        for n in range(3):
            client.post(URL, json={"n": n})
    statuses = [i.response.status for i in load_interactions(path)]
    assert statuses == [404, 200, 500]


def test_rewrite_flushed_with_errors_only_writes_them_once_a_success_follows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(3))
    answers = iter([503, 200])
    upstream = Upstream(lambda body: httpx2.Response(next(answers), json={"echo": body}))
    with httpx2.Client(transport=_transport(path, "rewrite", upstream)) as client:
        client.post(URL, json={"n": 1})
        with pytest.warns(ReplayWarning, match=r"error \(503\)"):
            client._transport.flush()  # type: ignore[attr-defined]
        assert path.read_bytes() == before
        client.post(URL, json={"n": 2})
    assert [i.response.status for i in load_interactions(path)] == [503, 200]


def test_rewrite_writes_error_answers_when_nothing_good_would_be_lost(tmp_path: Path) -> None:
    fresh = tmp_path / "new.yaml"
    with httpx2.Client(transport=_transport(fresh, "rewrite", Upstream(_status(404)))) as client:
        client.post(URL, json={"n": 1})  # a test of the 404 path records its cassette
    assert [i.response.status for i in load_interactions(fresh)] == [404]
    with httpx2.Client(transport=_transport(fresh, "rewrite", Upstream(_status(500)))) as client:
        client.post(URL, json={"n": 1})  # errors replacing errors: nothing good is dropped
    assert [i.response.status for i in load_interactions(fresh)] == [500]


def test_rewrite_adds_errors_beside_the_successes_its_run_already_wrote(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _cassette(path, range(5))
    started = datetime.now(timezone.utc)
    for reply in (None, _status(404)):
        transport = _transport(path, "rewrite", Upstream(reply), run_started_at=started)
        with httpx2.Client(transport=transport) as client:
            client.post(URL, json={"n": "new"})
    assert [i.response.status for i in load_interactions(path)] == [200, 404]


def test_record_mode_records_error_answers(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _cassette(path, range(2))
    with httpx2.Client(transport=_transport(path, "record", Upstream(_status(500)))) as client:
        client.post(URL, json={"n": "new"})
    assert [i.response.status for i in load_interactions(path)] == [200, 200, 500]


# -- item 10: the cassette is checked before any request is sent ------------------------------


CORRUPT = {
    "invalid YAML": "interactions: [\n",
    "cut short": "format: harness\nversion: 2\ninteractions:\n- request: {method: GET, uri: 'h'}\n"
    "  response: {status: 200}\n",
    "bad field": "format: harness\nversion: 2\ninteractions: [{request: 1}]\n"
    "interactions_count: 1\n",
    "secret on disk": "format: harness\nversion: 2\ninteractions:\n"
    "- request: {method: GET, uri: 'https://h/x'}\n"
    f"  response: {{status: 200, body: {{text: 'key {LEAK}'}}}}\ninteractions_count: 1\n",
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_record_mode_refuses_a_bad_cassette_before_the_upstream_is_called(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content, encoding="utf-8")
    upstream = Upstream()
    with pytest.raises((CassetteFormatError, SecretLeakError)) as info:
        _transport(path, "record", upstream)
    assert str(path) in str(info.value)
    if isinstance(info.value, SecretLeakError):
        assert "already in the file on disk" in str(info.value)
    with (
        pytest.raises((CassetteFormatError, SecretLeakError)),
        use_cassette(path, "record", upstream=upstream.transport()),
    ):
        pass  # pragma: no cover - never entered
    assert upstream.calls == 0
    assert path.read_text(encoding="utf-8") == content


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_rewrite_mode_replaces_a_bad_cassette_with_a_warning(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content, encoding="utf-8")
    if LEAK in content:  # readable: replaced like any old cassette, no warning needed
        transport = _transport(path, "rewrite", Upstream())
    else:
        with pytest.warns(ReplayWarning, match="not a readable cassette.*will replace it"):
            transport = _transport(path, "rewrite", Upstream())
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={"n": "fresh"})
    assert _sent(path) == [{"n": "fresh"}]
    assert LEAK not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", ["replay", "record", "rewrite"])
def test_a_directory_as_cassette_is_a_format_error_in_every_mode(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "c.yaml"
    path.mkdir()
    with pytest.raises(CassetteFormatError, match="is a directory") as info:
        _transport(path, mode, Upstream())
    assert info.value.path == str(path)


@pytest.mark.parametrize("mode", ["record", "rewrite"])
@pytest.mark.parametrize("where", ["afile/c.yaml", "afile/deeper/c.yaml"])
def test_a_file_where_the_cassette_folder_should_be_is_a_format_error_before_any_request(
    tmp_path: Path, mode: str, where: str
) -> None:
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / where
    upstream = Upstream()
    with pytest.raises(CassetteFormatError, match="cannot be") as info:
        _transport(path, mode, upstream)
    assert info.value.path == str(path)
    with (
        pytest.raises(CassetteFormatError),
        use_cassette(path, mode, upstream=upstream.transport()),
    ):
        pass  # pragma: no cover - never entered
    assert upstream.calls == 0


@pytest.mark.parametrize("mode", ["record", "rewrite"])
@pytest.mark.parametrize("where", ["c.yaml", "sub/c.yaml"])
def test_a_cassette_folder_without_write_permission_is_a_format_error_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, where: str
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway: answer as the kernel would for a user
        real = os.access

        def access(path: Any, mode: int, **kwargs: Any) -> bool:
            if Path(path) == locked and mode & os.W_OK:
                return False
            return real(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
    path = locked / where
    upstream = Upstream()
    try:
        with pytest.raises(CassetteFormatError, match=f"no permission .* in {locked}") as info:
            _transport(path, mode, upstream)
    finally:
        locked.chmod(0o755)
    assert info.value.path == str(path)
    assert upstream.calls == 0


# -- item 13: a stream without its end marker is not recorded ----------------------------------


def _sse(*events: str) -> Any:
    chunks = [f"{event}\n\n".encode() for event in events]
    headers = {"content-type": "text/event-stream"}
    return lambda body: httpx2.Response(200, headers=headers, content=iter(chunks))


def _chunk(content: str, finish: str | None = None) -> str:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": [choice]})


def _anthropic(kind: str, **fields: Any) -> str:
    return f"event: {kind}\ndata: " + json.dumps({"type": kind, **fields})


UNENDED = {
    "openai": (_chunk("Hel"), _chunk("lo")),
    "anthropic": (
        _anthropic("message_start", message={"id": "m"}),
        _anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
    ),
}
ENDED = {
    "openai [DONE]": (_chunk("Hi"), "data: [DONE]"),
    "openai finish_reason only": (_chunk("Hi"), _chunk("", "stop")),
    "anthropic": (_anthropic("message_start", message={}), _anthropic("message_stop")),
    "anthropic error event": (
        _anthropic("message_start", message={}),
        _anthropic("error", error={"type": "overloaded_error"}),
    ),
    "not an LLM stream": ("data: tick 1", "data: tick 2"),
}


@pytest.mark.parametrize("events", UNENDED.values(), ids=UNENDED.keys())
def test_a_stream_without_its_end_marker_is_not_recorded(
    tmp_path: Path, events: tuple[str, ...]
) -> None:
    path = tmp_path / "c.yaml"
    with httpx2.Client(transport=_transport(path, "record", Upstream(_sse(*events)))) as client:
        with pytest.warns(ReplayWarning, match="ended without its end marker"):
            text = client.post(URL, json={"stream": True}).text
        assert text == "".join(f"{e}\n\n" for e in events)  # the caller still gets it all
    assert not path.exists()


@pytest.mark.parametrize("events", ENDED.values(), ids=ENDED.keys())
def test_a_stream_with_its_end_marker_is_recorded(tmp_path: Path, events: tuple[str, ...]) -> None:
    path = tmp_path / "c.yaml"
    with httpx2.Client(transport=_transport(path, "record", Upstream(_sse(*events)))) as client:
        client.post(URL, json={"stream": True})
    body = load_interactions(path)[0].response.body
    assert body == "".join(f"{e}\n\n" for e in events).encode()


def test_a_stream_closed_at_message_stop_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    events = (_anthropic("message_start", message={}), _anthropic("message_stop"), "data: x")
    transport = _transport(path, "record", Upstream(_sse(*events)))
    with httpx2.Client(transport=transport) as client, client.stream("POST", URL, json={}) as r:
        for chunk in r.iter_raw():
            if b"message_stop" in chunk:
                break
    assert b"message_stop" in load_interactions(path)[0].response.body


# -- reaches_upstream (used by providers to require a key) -------------------------------------


def test_reaches_upstream_is_false_only_in_replay_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    modes = {"replay": False, "record": True, "rewrite": True, "live": True, "none": False}
    for mode, reaches in modes.items():
        assert ReplayTransport(path, mode).reaches_upstream is reaches


# -- item 14: git status shows only cassettes; kill -9 never corrupts ---------------------------


def test_after_a_record_run_git_status_shows_only_cassettes(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:  # pragma: no cover - git is part of the dev environment
        pytest.fail("git is needed for this test")
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True, timeout=30)
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    # left by earlier harness versions: a lock beside each cassette, a killed writer's temp file
    old = time.time() - STALE_AFTER - 60
    for left in (".a.yaml.lock", ".b.yaml.lock", ".a.yaml.k3j4h5g6.tmp", ".b.yaml.1-abcd1234.tmp"):
        (cassettes / left).write_text("left behind")
        os.utime(cassettes / left, (old, old))
    for name in ("a.yaml", "b.yaml"):
        transport = _transport(cassettes / name, "record", Upstream())
        with httpx2.Client(transport=transport) as client:
            for n in range(3):
                client.post(URL, json={"n": n})
    status = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert sorted(status.splitlines()) == ["?? cassettes/a.yaml", "?? cassettes/b.yaml"]


_SAVER = textwrap.dedent(
    """
    import json, sys
    from harness.replay import Cassette, Interaction, RecordedRequest, RecordedResponse
    cassette = Cassette.load(sys.argv[1])
    big = "x" * 30_000  # a write takes a while: the kill lands in the middle of some
    for n in range(10_000):
        body = json.dumps({"n": n, "pad": big}).encode()
        cassette.add(Interaction(RecordedRequest("POST", "https://h/x", [], body),
                                 RecordedResponse(200, [], b"ok")))
        cassette.save()
        print(n, flush=True)
    """
)


def test_kill_9_mid_write_never_corrupts_the_cassette(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    saved = 0
    for kills in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        for _ in range(2 + kills):
            assert proc.stdout.readline()  # wait until it saved, then kill it mid-stream
        proc.kill()
        proc.wait(timeout=30)
        loaded = load_interactions(path)  # never half a file
        assert len(loaded) >= saved + 2 + kills
        saved = len(loaded)
    last = Cassette.load(path)
    last.add(load_interactions(path)[0])
    last.save()  # the next writer removes what the killed ones left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_rewrite_transport_dropped_without_close_warns_that_nothing_was_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    before = _cassette(path, range(2))
    transport = _transport(path, "rewrite", Upstream())
    client = httpx2.Client(transport=transport)
    client.post(URL, json={"n": 1})
    with pytest.warns(ReplayWarning, match=r"never closed: 1 recorded interaction"):
        del client, transport
        gc.collect()
    assert path.read_bytes() == before
