"""Issue #9 item 15: a provider whose injected transport will reach the upstream (record,
rewrite, live: ``reaches_upstream = True``) and has no key raises MissingAPIKeyError before
anything is sent, instead of sending ``Bearer replay-no-key``. A transport without the
attribute (a plain MockTransport, a replay) still needs no key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import LLMConfig, MissingAPIKeyError, create_llm_instance
from harness._http import reaches_upstream
from harness.replay import ReplayTransport
from harness.replay.faults import Faults, FaultTransport
from tests.providers.answers import MODES, PROVIDERS, Upstream, ask, settings

KEY_VARS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


class UpstreamBound(httpx2.AsyncBaseTransport):
    """A transport that says it reaches the upstream (as recording transports do)."""

    reaches_upstream = True

    def __init__(self, provider: str) -> None:
        self.upstream = Upstream(provider)
        self.inner = self.upstream.transport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.inner.handle_async_request(request)


def keyless(provider: str, transport: Any, environ: dict[str, str] | None = None) -> Any:
    config = settings(provider, api_key=None)
    return create_llm_instance(LLMConfig(**config), transport=transport, environ=environ or {})


def sent_key(request: httpx2.Request) -> str | None:
    return (
        request.headers.get("x-api-key")
        or request.headers.get("x-goog-api-key")
        or request.headers.get("api-key")
        or (request.headers.get("authorization", "").removeprefix("Bearer ") or None)
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", MODES)
async def test_no_key_with_a_transport_that_reaches_the_upstream_raises_missing_api_key(
    provider: str, mode: str
) -> None:
    transport = UpstreamBound(provider)
    with pytest.raises(MissingAPIKeyError) as info:
        await ask(keyless(provider, transport), mode)
    assert info.value.env_var == KEY_VARS[provider]
    assert KEY_VARS[provider] in str(info.value)
    assert transport.upstream.requests == []  # nothing left with a placeholder key


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_fault_transport_over_an_upstream_bound_one_also_needs_the_key(
    provider: str,
) -> None:
    transport = FaultTransport(UpstreamBound(provider), Faults().timeout("read"))
    assert transport.reaches_upstream is True
    with pytest.raises(MissingAPIKeyError):
        await ask(keyless(provider, transport), "aask")
    assert transport.history == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_key_from_the_environment_is_sent_to_an_upstream_bound_transport(
    provider: str,
) -> None:
    transport = UpstreamBound(provider)
    llm = keyless(provider, transport, environ={KEY_VARS[provider]: "sk-from-env"})
    assert await ask(llm, "aask") == "all good"
    assert sent_key(transport.upstream.requests[0]) == "sk-from-env"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_transport_without_reaches_upstream_still_needs_no_key(provider: str) -> None:
    upstream = Upstream(provider)
    for transport in (upstream.transport(), FaultTransport(upstream.transport())):
        assert getattr(transport, "reaches_upstream", False) is False
        assert await ask(keyless(provider, transport), "aask") == "all good"
    assert {sent_key(r) for r in upstream.requests} == {"replay-no-key"}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["record", "rewrite", "live"])
async def test_a_recording_replay_transport_without_a_key_raises_missing_api_key(
    tmp_path: Path, provider: str, mode: str
) -> None:
    upstream = Upstream(provider)
    cassette = tmp_path / "c.yaml"
    transport = ReplayTransport(cassette, mode, upstream=upstream.transport())
    with pytest.raises(MissingAPIKeyError):
        await ask(keyless(provider, transport), "aask")
    assert upstream.requests == []
    assert not cassette.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_replaying_replay_transport_needs_no_key(tmp_path: Path, provider: str) -> None:
    cassette = tmp_path / "c.yaml"
    recorder = ReplayTransport(cassette, "record", upstream=Upstream(provider).transport())
    await ask(keyless(provider, recorder, environ={KEY_VARS[provider]: "sk-live"}), "aask")
    await recorder.aclose()
    player = ReplayTransport(cassette, "replay")
    assert await ask(keyless(provider, player), "aask") == "all good"


# A closed loopback port: should a request leave, it fails locally, never on the internet.
CLOSED = "http://127.0.0.1:9"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_network_transport_without_a_key_raises_missing_api_key(provider: str) -> None:
    transport = httpx2.AsyncHTTPTransport()
    config = settings(provider, api_key=None, base_url=CLOSED)
    llm = create_llm_instance(LLMConfig(**config), transport=transport, environ={})
    with pytest.raises(MissingAPIKeyError) as info:
        await ask(llm, "aask")
    assert info.value.env_var == KEY_VARS[provider]
    await transport.aclose()


async def test_a_network_transport_without_aws_credentials_raises_missing_api_key() -> None:
    transport = httpx2.AsyncHTTPTransport()
    config = LLMConfig(
        api_type="bedrock",
        model="us.amazon.nova-micro-v1:0",
        region_name="us-east-1",
        base_url=CLOSED,
        max_retries=0,
    )
    llm = create_llm_instance(config, transport=transport, environ={})
    with pytest.raises(MissingAPIKeyError):
        await ask(llm, "aask")
    await transport.aclose()


def test_network_transports_of_both_http_libraries_reach_the_upstream() -> None:
    import httpx

    for transport in (
        httpx2.HTTPTransport(),
        httpx2.AsyncHTTPTransport(),
        httpx.HTTPTransport(),
        httpx.AsyncHTTPTransport(),
    ):
        assert reaches_upstream(transport) is True
    assert reaches_upstream(httpx2.MockTransport(lambda r: httpx2.Response(200))) is False
    assert reaches_upstream(httpx.MockTransport(lambda r: httpx.Response(200))) is False
    assert reaches_upstream(object()) is False  # unknown: taken not to


def test_an_explicit_reaches_upstream_attribute_wins() -> None:
    class Offline(httpx2.AsyncHTTPTransport):
        reaches_upstream = False

    assert reaches_upstream(Offline()) is False
    assert reaches_upstream(UpstreamBound("openai")) is True


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_fault_transport_over_a_network_transport_needs_the_key(provider: str) -> None:
    inner = httpx2.AsyncHTTPTransport()
    transport = FaultTransport(inner, Faults().timeout("read"))
    assert transport.reaches_upstream is True
    config = settings(provider, api_key=None, base_url=CLOSED)
    llm = create_llm_instance(LLMConfig(**config), transport=transport, environ={})
    with pytest.raises(MissingAPIKeyError):
        await ask(llm, "aask")
    assert transport.history == []
    await inner.aclose()
