"""ReplayTransport: modes, recording through a loopback server with the real SDKs, streaming."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from harness.replay import CassetteMiss, Redactor, ReplayTransport, load_interactions, resolve_mode
from tests.replay.conftest import LLMServer

MESSAGES = [{"role": "user", "content": "hi there"}]


def _fail_upstream(request: Any) -> Any:
    raise AssertionError(f"the network was used: {request.method} {request.url}")


def _echo_upstream(request: Any) -> httpx2.Response:
    return httpx2.Response(200, json={"echo": json.loads(request.content or b"null")})


async def _openai_calls(client: openai.AsyncOpenAI) -> list[str]:
    plain = await client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
    )
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    return [plain.choices[0].message.content or "", streamed]


async def test_record_with_async_openai_then_replay_with_server_gone(
    tmp_path: Path, llm_server: LLMServer
) -> None:
    cassette = tmp_path / "openai.yaml"
    base = f"{llm_server.base_url}/v1"
    recorder = ReplayTransport(cassette, mode="record", redactor=Redactor())
    async with httpx2.AsyncClient(transport=recorder) as http:
        client = openai.AsyncOpenAI(api_key="test", base_url=base, max_retries=0, http_client=http)
        recorded = await _openai_calls(client)
    assert recorded == ["echo: hi there", "echo: stream please "]
    assert len(llm_server.requests) == 2
    llm_server.stopped.set()

    replayer = ReplayTransport(
        cassette, mode="replay", upstream=httpx2.MockTransport(_fail_upstream)
    )
    async with httpx2.AsyncClient(transport=replayer) as http:
        client = openai.AsyncOpenAI(api_key="test", base_url=base, max_retries=0, http_client=http)
        assert await _openai_calls(client) == recorded
    assert replayer.unplayed() == []
    text = cassette.read_text()
    assert "Bearer" not in text and "set-cookie" not in text.lower()
    assert "- 'data: [DONE]'" in text or "- data: [DONE]" in text  # events stored one per item


def test_record_with_sync_openai_then_replay(tmp_path: Path, llm_server: LLMServer) -> None:
    cassette = tmp_path / "sync.yaml"
    base = f"{llm_server.base_url}/v1"

    def call(transport: ReplayTransport) -> str:
        with httpx2.Client(transport=transport) as http:
            client = openai.OpenAI(api_key="test", base_url=base, max_retries=0, http_client=http)
            reply = client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
            return reply.choices[0].message.content or ""

    assert call(ReplayTransport(cassette, mode="record")) == "echo: hi there"
    assert call(ReplayTransport(cassette, upstream=httpx2.MockTransport(_fail_upstream))) == (
        "echo: hi there"
    )


async def test_record_with_anthropic_stream_then_replay(
    tmp_path: Path, llm_server: LLMServer
) -> None:
    cassette = tmp_path / "anthropic.yaml"

    async def call(transport: ReplayTransport) -> tuple[str, str]:
        async with httpx2.AsyncClient(transport=transport) as http:
            client = anthropic.AsyncAnthropic(
                api_key="sk-ant-api03-" + "x" * 40,
                base_url=llm_server.base_url,
                max_retries=0,
                http_client=http,
            )
            plain = await client.messages.create(model="claude-x", max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
            async with client.messages.stream(
                model="claude-x",
                max_tokens=10,
                messages=MESSAGES,  # type: ignore[arg-type]
            ) as stream:
                streamed = "".join([text async for text in stream.text_stream])
            return plain.content[0].text, streamed  # type: ignore[union-attr]

    recorded = await call(ReplayTransport(cassette, mode="record", redactor=Redactor()))
    assert recorded == ("echo: hi there", "echo: hi there ")
    llm_server.stopped.set()
    replayer = ReplayTransport(cassette, upstream=httpx2.MockTransport(_fail_upstream))
    assert await call(replayer) == recorded
    assert "sk-ant" not in cassette.read_text()  # x-api-key is never written


def test_recording_tees_chunks_as_they_arrive(tmp_path: Path, llm_server: LLMServer) -> None:
    # The server sends one event, then waits until the client has seen it: a recorder that
    # drained the stream before handing it over would stall here for the whole wait.
    transport = ReplayTransport(tmp_path / "gated.yaml", mode="record")
    with httpx2.Client(transport=transport) as client:
        started = time.monotonic()
        with client.stream("GET", f"{llm_server.base_url}/stream/gated") as response:
            chunks = []
            for chunk in response.iter_raw():
                chunks.append(chunk)
                llm_server.gate.set()
    assert time.monotonic() - started < 2.0
    assert b"".join(chunks) == b"data: first\n\ndata: second\n\n"
    body = load_interactions(tmp_path / "gated.yaml")[0].response.body
    assert body == b"data: first\n\ndata: second\n\n"


async def test_endless_stream_closed_early_is_not_recorded_and_warns(
    tmp_path: Path, llm_server: LLMServer
) -> None:
    cassette = tmp_path / "endless.yaml"
    url = f"{llm_server.base_url}/stream/endless"
    received = []
    with pytest.warns(UserWarning, match=r"GET .*/stream/endless was not recorded.*closed"):
        async with (
            httpx2.AsyncClient(transport=ReplayTransport(cassette, mode="record")) as client,
            client.stream("GET", url) as response,
        ):
            async for chunk in response.aiter_lines():
                if chunk:
                    received.append(chunk)  # the caller gets each chunk as it arrives
                if len(received) == 3:
                    break
    llm_server.stopped.set()
    assert len(received) == 3
    # a truncated answer must not replay later as if it were the whole response
    assert not cassette.exists() or load_interactions(cassette) == []


def test_replay_miss_raises_and_never_uses_the_network(tmp_path: Path) -> None:
    transport = ReplayTransport(
        tmp_path / "absent.yaml", mode="none", upstream=httpx2.MockTransport(_fail_upstream)
    )
    with httpx2.Client(transport=transport) as client, pytest.raises(CassetteMiss) as info:
        client.post("https://api.example.com/v1/x", json={"a": 1})
    assert "does not exist" in str(info.value) and "--llm-mode=record" in str(info.value)
    assert not (tmp_path / "absent.yaml").exists()


def test_record_replays_matches_and_records_only_new_requests(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    sent: list[bytes] = []

    def upstream(request: Any) -> httpx2.Response:
        sent.append(request.content)
        return _echo_upstream(request)

    with httpx2.Client(
        transport=ReplayTransport(path, "record", upstream=httpx2.MockTransport(upstream))
    ) as c:
        c.post("https://api.example.com/v1/x", json={"n": 1})
    with httpx2.Client(
        transport=ReplayTransport(path, "new_episodes", upstream=httpx2.MockTransport(upstream))
    ) as c:
        assert c.post("https://api.example.com/v1/x", json={"n": 1}).json() == {"echo": {"n": 1}}
        assert c.post("https://api.example.com/v1/x", json={"n": 2}).json() == {"echo": {"n": 2}}
    assert [json.loads(b) for b in sent] == [{"n": 1}, {"n": 2}]
    assert len(load_interactions(path)) == 2


def test_rewrite_records_everything_afresh(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    for mode in ("record", "all"):
        transport = ReplayTransport(path, mode, upstream=httpx2.MockTransport(_echo_upstream))
        with httpx2.Client(transport=transport) as client:
            client.post("https://api.example.com/v1/x", json={"mode": mode})
    bodies = [json.loads(i.request.body) for i in load_interactions(path)]
    assert bodies == [{"mode": "all"}]


def test_rewrite_with_a_shared_run_start_keeps_what_the_run_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    old = ReplayTransport(path, "record", upstream=httpx2.MockTransport(_echo_upstream))
    with httpx2.Client(transport=old) as client:
        client.post("https://api.example.com/v1/x", json={"n": "old"})
    time.sleep(0.01)
    run_started_at = datetime.now(timezone.utc)
    for n in (1, 2):  # two tests (two transports) of one run sharing the cassette
        transport = ReplayTransport(
            path,
            "rewrite",
            upstream=httpx2.MockTransport(_echo_upstream),
            run_started_at=run_started_at,
        )
        time.sleep(0.01)
        with httpx2.Client(transport=transport) as client:
            client.post("https://api.example.com/v1/x", json={"n": n})
    bodies = [json.loads(i.request.body) for i in load_interactions(path)]
    assert bodies == [{"n": 1}, {"n": 2}]


def test_live_mode_passes_through_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    transport = ReplayTransport(path, "live", upstream=httpx2.MockTransport(_echo_upstream))
    with httpx2.Client(transport=transport) as client:
        assert client.post("https://h/x", json=1).json() == {"echo": 1}
    assert not path.exists()


def test_vcrpy_mode_aliases(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    assert [resolve_mode(m, path) for m in ("none", "new_episodes", "all", "once")] == [
        "replay",
        "record",
        "rewrite",
        "record",
    ]
    path.write_text("format: harness\nversion: 1\ninteractions: []\n")
    assert resolve_mode("once", path) == "replay"
    with pytest.raises(ValueError, match="unknown record/replay mode"):
        resolve_mode("sometimes", path)


def _sync_replays(replayer: ReplayTransport) -> None:
    with httpx.Client(transport=replayer) as a:  # type: ignore[arg-type]
        assert a.post("https://api.example.com/v1/x", json={"n": 0}).json() == {"echo": {"n": 0}}
    with httpx2.Client(transport=replayer) as b:
        assert b.post("https://api.example.com/v1/x", json={"n": 1}).json() == {"echo": {"n": 1}}


async def test_one_transport_serves_httpx_and_httpx2_sync_and_async(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    recorder = ReplayTransport(path, "record", upstream=httpx2.MockTransport(_echo_upstream))
    with httpx2.Client(transport=recorder) as client:
        for n in range(4):
            client.post("https://api.example.com/v1/x", json={"n": n})
    replayer = ReplayTransport(path, upstream=httpx2.MockTransport(_fail_upstream))
    _sync_replays(replayer)
    async with httpx.AsyncClient(transport=replayer) as c:  # type: ignore[arg-type]
        response = await c.post("https://api.example.com/v1/x", json={"n": 2})
        assert isinstance(response, httpx.Response) and response.json() == {"echo": {"n": 2}}
    async with httpx2.AsyncClient(transport=replayer) as d:
        assert (await d.post("https://api.example.com/v1/x", json={"n": 3})).json() == {
            "echo": {"n": 3}
        }
    assert replayer.unplayed() == []


def test_concurrent_threads_recording_lose_no_interaction(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            transport = ReplayTransport(
                path, "record", upstream=httpx2.MockTransport(_echo_upstream)
            )
            with httpx2.Client(transport=transport) as client:
                for n in range(10):
                    client.post("https://api.example.com/v1/x", json={"w": w, "n": n})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    bodies = sorted(
        (b["w"], b["n"]) for b in (json.loads(i.request.body) for i in load_interactions(path))
    )
    assert bodies == [(w, n) for w in range(8) for n in range(10)]


_WORKER = textwrap.dedent(
    """
    import json, sys, httpx2
    from harness.replay import ReplayTransport
    def echo(request):
        return httpx2.Response(200, json=json.loads(request.content))
    transport = ReplayTransport(sys.argv[1], "record", upstream=httpx2.MockTransport(echo))
    with httpx2.Client(transport=transport) as client:
        for n in range(15):
            client.post("https://api.example.com/v1/x", json={"p": sys.argv[2], "n": n})
    """
)


def test_two_processes_recording_lose_no_interaction(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), name], cwd=Path.cwd())
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    bodies = sorted(
        (b["p"], b["n"]) for b in (json.loads(i.request.body) for i in load_interactions(path))
    )
    assert bodies == [(p, n) for p in ("a", "b") for n in range(15)]


def test_brotli_response_is_stored_decoded_and_replays(tmp_path: Path) -> None:
    import brotli

    payload = {"choices": [{"message": {"content": "compressed hello"}}]}

    def upstream(request: httpx2.Request) -> httpx2.Response:
        body = brotli.compress(json.dumps(payload).encode())
        headers = {"content-type": "application/json", "content-encoding": "br"}
        return httpx2.Response(200, headers=headers, content=body)

    path = tmp_path / "br.yaml"
    recorder = ReplayTransport(path, mode="record", upstream=httpx2.MockTransport(upstream))
    with httpx2.Client(transport=recorder) as client:
        assert client.post("https://api.example.test/v1/x", json={"a": 1}).json() == payload
    text = path.read_text()
    assert "compressed hello" in text
    assert "content-encoding" not in text
    with httpx2.Client(transport=ReplayTransport(path, mode="replay")) as client:
        assert client.post("https://api.example.test/v1/x", json={"a": 1}).json() == payload


def _chunked_upstream(request: Any) -> httpx2.Response:
    chunks = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def test_sync_stream_closed_early_is_not_recorded_but_a_full_read_is(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    transport = ReplayTransport(path, "record", upstream=httpx2.MockTransport(_chunked_upstream))
    with httpx2.Client(transport=transport) as client:
        with (
            pytest.warns(UserWarning, match=r"GET https://h/early was not recorded"),
            client.stream("GET", "https://h/early") as response,
        ):
            first = next(response.iter_raw())
        assert first == b"data: one\n\n"  # the caller still got what arrived
        assert not path.exists()
        assert client.get("https://h/full").text.endswith("data: three\n\n")
    assert [i.request.uri for i in load_interactions(path)] == ["https://h/full"]


def test_stream_closed_at_its_done_event_is_recorded(tmp_path: Path) -> None:
    # OpenAI's SDK stops reading at ``data: [DONE]`` and closes: the answer is complete.
    def upstream(request: Any) -> httpx2.Response:
        chunks = [b"data: {}\n\n", b"data: [DONE]\n\n", b""]
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
        )

    path = tmp_path / "c.yaml"
    transport = ReplayTransport(path, "record", upstream=httpx2.MockTransport(upstream))
    with httpx2.Client(transport=transport) as client, client.stream("GET", "https://h/s") as r:
        for chunk in r.iter_raw():
            if b"[DONE]" in chunk:
                break
    assert load_interactions(path)[0].response.body == b"data: {}\n\ndata: [DONE]\n\n"
