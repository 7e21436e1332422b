"""use_cassette: every httpx/httpx2 client in the process goes through one cassette while active."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from harness.replay import CassetteMiss, ReplayTransport, load_interactions, use_cassette
from tests.replay.conftest import serve_llm

MESSAGES: Any = [{"role": "user", "content": "hi there"}]
ORIGINALS = {
    (module.__name__, cls.__name__): vars(cls)["_transport_for_url"]
    for module in (httpx, httpx2)
    for cls in (module.Client, module.AsyncClient)
}


def _assert_unpatched() -> None:
    for module in (httpx, httpx2):
        for cls in (module.Client, module.AsyncClient):
            assert vars(cls)["_transport_for_url"] is ORIGINALS[(module.__name__, cls.__name__)]


@pytest.fixture(autouse=True)
def _no_leftover_patch() -> Iterator[None]:
    _assert_unpatched()
    yield
    _assert_unpatched()


def _echo(request: Any) -> Any:
    module = httpx2 if isinstance(request, httpx2.Request) else httpx
    return module.Response(200, json={"echo": request.url.path})


def _uris(path: Path) -> list[str]:
    return [interaction.request.uri for interaction in load_interactions(path)]


# -- the real SDKs, built by the user's code with no transport of ours ------------------------


def _openai_sync(base: str) -> list[str]:
    client = openai.OpenAI(api_key="test", base_url=f"{base}/v1", max_retries=0)
    with client:
        plain = client.chat.completions.create(model="m", messages=MESSAGES)
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    return [plain.choices[0].message.content or "", streamed]


async def _openai_async(base: str) -> list[str]:
    client = openai.AsyncOpenAI(api_key="test", base_url=f"{base}/v1", max_retries=0)
    async with client:
        plain = await client.chat.completions.create(model="m", messages=MESSAGES)
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    return [plain.choices[0].message.content or "", streamed]


def _anthropic_sync(base: str) -> list[str]:
    with anthropic.Anthropic(api_key="test", base_url=base, max_retries=0) as client:
        plain = client.messages.create(model="claude-x", max_tokens=10, messages=MESSAGES)
        with client.messages.stream(model="claude-x", max_tokens=10, messages=MESSAGES) as s:
            streamed = "".join(s.text_stream)
    return [plain.content[0].text, streamed]  # type: ignore[union-attr]


async def _anthropic_async(base: str) -> list[str]:
    async with anthropic.AsyncAnthropic(api_key="test", base_url=base, max_retries=0) as client:
        plain = await client.messages.create(model="claude-x", max_tokens=10, messages=MESSAGES)
        stream = client.messages.stream(model="claude-x", max_tokens=10, messages=MESSAGES)
        async with stream as s:
            streamed = "".join([text async for text in s.text_stream])
    return [plain.content[0].text, streamed]  # type: ignore[union-attr]


async def test_sdks_record_through_loopback_then_replay_with_server_gone(tmp_path: Path) -> None:
    cassette = tmp_path / "sdks.yaml"
    with serve_llm() as server:
        base = server.base_url
        with use_cassette(cassette, mode="record") as recorder:
            recorded = [
                _openai_sync(base),
                await _openai_async(base),
                _anthropic_sync(base),
                await _anthropic_async(base),
            ]
        assert recorder.mode == "record"
        assert len(server.requests) == 8  # every call reached the server once
    assert recorded == [["echo: hi there", "echo: hi there "]] * 4
    assert len(load_interactions(cassette)) == 8
    assert "Bearer" not in cassette.read_text()

    # The server is gone: a request that leaked would fail to connect.
    with use_cassette(cassette) as replayer:
        replayed = [
            _openai_sync(base),
            await _openai_async(base),
            _anthropic_sync(base),
            await _anthropic_async(base),
        ]
    assert replayed == recorded
    assert replayer.unplayed() == []


async def test_clients_made_before_entering_are_routed(tmp_path: Path) -> None:
    cassette = tmp_path / "plain.yaml"
    sync_httpx, async_httpx = httpx.Client(), httpx.AsyncClient()
    sync_httpx2, async_httpx2 = httpx2.Client(), httpx2.AsyncClient()
    with serve_llm() as server:
        url = f"{server.base_url}/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": "x"}]}
        async with use_cassette(cassette, mode="record"):
            recorded = [
                sync_httpx.post(url, json=body).json(),  # noqa: ASYNC212 (sync on purpose)
                (await async_httpx.post(url, json=body)).json(),
                sync_httpx2.post(url, json=body).json(),
                (await async_httpx2.post(url, json=body)).json(),
            ]
        assert len(server.requests) == 4
    assert len(load_interactions(cassette)) == 4
    async with use_cassette(cassette):
        replayed = [
            sync_httpx.post(url, json=body).json(),  # noqa: ASYNC212 (sync on purpose)
            (await async_httpx.post(url, json=body)).json(),
            sync_httpx2.post(url, json=body).json(),
            (await async_httpx2.post(url, json=body)).json(),
        ]
    assert replayed == recorded
    for client in (sync_httpx, sync_httpx2):
        client.close()
    for aclient in (async_httpx, async_httpx2):
        await aclient.aclose()


def test_after_exit_requests_reach_the_real_transport_again(tmp_path: Path) -> None:
    cassette = tmp_path / "after.yaml"
    with serve_llm() as server:
        url = f"{server.base_url}/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": "y"}]}
        with httpx2.Client() as client:
            with use_cassette(cassette, mode="record"):
                client.post(url, json=body)
            _assert_unpatched()
            with use_cassette(cassette):  # replayed: the server sees nothing
                client.post(url, json=body)
            assert len(server.requests) == 1
            assert client.post(url, json=body).status_code == 200  # the patch is gone
            assert len(server.requests) == 2
    assert len(load_interactions(cassette)) == 1  # the last request was not recorded


def test_replay_miss_raises_and_nothing_leaves(tmp_path: Path) -> None:
    client = httpx2.Client(transport=httpx2.MockTransport(_echo))
    with client, use_cassette(tmp_path / "empty.yaml"), pytest.raises(CassetteMiss) as miss:
        client.get("http://127.0.0.1:1/nothing")
    assert "empty.yaml" in str(miss.value) and "does not exist" in str(miss.value)


def test_the_clients_own_transport_and_mounts_are_the_upstream(tmp_path: Path) -> None:
    cassette = tmp_path / "mounts.yaml"
    seen: list[str] = []

    def mounted(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, json={"from": "mount"})

    mounts = {"http://mounted.test": httpx2.MockTransport(mounted)}
    with httpx2.Client(transport=httpx2.MockTransport(_echo), mounts=mounts) as client:
        with use_cassette(cassette, mode="rewrite"):
            assert client.get("http://mounted.test/a").json() == {"from": "mount"}
            assert client.get("http://other.test/b").json() == {"echo": "/b"}
        with use_cassette(cassette):
            assert client.get("http://mounted.test/a").json() == {"from": "mount"}
    assert seen == ["http://mounted.test/a"]
    assert _uris(cassette) == ["http://mounted.test/a", "http://other.test/b"]


def test_an_explicit_upstream_option_wins(tmp_path: Path) -> None:
    upstream = httpx2.MockTransport(lambda request: httpx2.Response(200, json={"from": "opt"}))
    client = httpx2.Client(transport=httpx2.MockTransport(_echo))
    with client, use_cassette(tmp_path / "opt.yaml", mode="record", upstream=upstream):
        assert client.get("http://x.test/").json() == {"from": "opt"}


def test_live_mode_uses_the_client_transport_and_writes_nothing(tmp_path: Path) -> None:
    cassette = tmp_path / "live.yaml"
    client = httpx2.Client(transport=httpx2.MockTransport(_echo))
    with client, use_cassette(cassette, mode="live"):
        assert client.get("http://x.test/live").json() == {"echo": "/live"}
    assert not cassette.exists()


def test_nested_cassettes_inner_wins_and_outer_is_restored(tmp_path: Path) -> None:
    outer, inner = tmp_path / "outer.yaml", tmp_path / "inner.yaml"
    client = httpx2.Client(transport=httpx2.MockTransport(_echo))
    with client, use_cassette(outer, mode="record"):
        client.get("http://x.test/1")
        with use_cassette(inner, mode="record"):
            client.get("http://x.test/2")
        client.get("http://x.test/3")
        assert vars(httpx2.Client)["_transport_for_url"] is not ORIGINALS[("httpx2", "Client")]
    assert _uris(outer) == ["http://x.test/1", "http://x.test/3"]
    assert _uris(inner) == ["http://x.test/2"]


def test_an_exception_inside_restores_everything(tmp_path: Path) -> None:
    outer, inner = tmp_path / "outer.yaml", tmp_path / "inner.yaml"
    with httpx2.Client(transport=httpx2.MockTransport(_echo)) as client:
        with pytest.raises(RuntimeError, match="boom"), use_cassette(outer, mode="record"):
            with pytest.raises(ValueError), use_cassette(inner, mode="record"):
                raise ValueError("inner")
            client.get("http://x.test/after-inner")  # the outer cassette is active again
            raise RuntimeError("boom")
        _assert_unpatched()
    assert _uris(outer) == ["http://x.test/after-inner"]
    assert not inner.exists()


async def test_async_with_and_an_exception_restore(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        async with use_cassette(tmp_path / "a.yaml", mode="record") as transport:
            assert isinstance(transport, ReplayTransport)
            raise KeyError("x")
    _assert_unpatched()


async def test_concurrent_tasks_each_use_their_own_cassette(tmp_path: Path) -> None:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(_echo)) as client:

        async def work(name: str) -> None:
            async with use_cassette(tmp_path / f"{name}.yaml", mode="record"):
                for i in range(3):
                    await client.get(f"http://x.test/{name}/{i}")
                    await asyncio.sleep(0)  # interleave with the other task

        await asyncio.gather(work("a"), work("b"))
    for name in ("a", "b"):
        assert _uris(tmp_path / f"{name}.yaml") == [f"http://x.test/{name}/{i}" for i in range(3)]


def test_a_thread_without_the_context_sees_the_active_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "thread.yaml"
    client = httpx2.Client(transport=httpx2.MockTransport(_echo))
    with client, use_cassette(cassette, mode="record"):
        thread = threading.Thread(target=client.get, args=("http://x.test/thread",))
        thread.start()
        thread.join(timeout=5)
    assert _uris(cassette) == ["http://x.test/thread"]


def test_a_block_cannot_be_entered_twice(tmp_path: Path) -> None:
    block = use_cassette(tmp_path / "twice.yaml", mode="record")
    with block, pytest.raises(RuntimeError, match="already active"):
        block.__enter__()


def test_decorator_on_sync_function(tmp_path: Path) -> None:
    cassette = tmp_path / "deco.yaml"

    @use_cassette(cassette, mode="record")
    def call(path: str) -> Any:
        with httpx.Client(transport=httpx.MockTransport(_echo)) as client:
            return client.get(f"http://x.test/{path}").json()

    assert call("one") == {"echo": "/one"}
    assert call("two") == {"echo": "/two"}  # each call is a fresh block over the same file
    _assert_unpatched()
    assert _uris(cassette) == ["http://x.test/one", "http://x.test/two"]


async def test_decorator_on_async_function_replays(tmp_path: Path) -> None:
    cassette = tmp_path / "adeco.yaml"

    async def call() -> Any:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(_echo)) as client:
            response = await client.post("http://x.test/p", content=json.dumps({"a": 1}))
            return response.json()

    assert await use_cassette(cassette, mode="record")(call)() == {"echo": "/p"}

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("the upstream was used in replay mode")

    @use_cassette(cassette)
    async def replay() -> Any:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(refuse)) as client:
            return (await client.post("http://x.test/p", content=b'{"a": 1}')).json()

    assert await replay() == {"echo": "/p"}
