"""Issue #9 item 9 (provider side): a 401/403/407 answer that a recording ReplayTransport
refuses to record carries a hint about the key (the ``harness.note`` response extension);
every provider's error mapping puts that hint in the raised error's message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import (
    AuthenticationError,
    LLMConfig,
    PermissionDeniedError,
    create_llm_instance,
)
from harness.replay import ReplayTransport
from harness.replay.errors import ReplayWarning
from tests.providers.answers import PROVIDERS, Upstream, ask, settings

REFUSALS = {401: AuthenticationError, 403: PermissionDeniedError}


def refusing(status: int) -> Upstream:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = {"error": {"message": "invalid x-api-key", "type": "authentication_error"}}
        return httpx2.Response(status, json=body)

    return Upstream("any", answer=answer)


def provider_config(provider: str) -> dict[str, Any]:
    if provider == "ollama":
        return {"api_type": "ollama", "model": "m-test", "base_url": "http://llm.test"}
    if provider == "bedrock":
        return {
            "api_type": "bedrock",
            "model": "us.amazon.nova-micro-v1:0",
            "region_name": "us-east-1",
            "base_url": "http://llm.test",
            "access_key": "AKIDEXAMPLEKEY123456",
            "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        }
    return settings(provider, api_key="sk-wrong-key-for-recording")


@pytest.mark.parametrize("status", sorted(REFUSALS))
@pytest.mark.parametrize("mode", ["record", "rewrite"])
@pytest.mark.parametrize("provider", [*PROVIDERS, "ollama", "bedrock"])
async def test_a_refused_key_while_recording_raises_with_the_hint_about_the_key(
    tmp_path: Path, provider: str, mode: str, status: int
) -> None:
    upstream = refusing(status)
    cassette = tmp_path / "c.yaml"
    transport = ReplayTransport(cassette, mode, upstream=upstream.transport())
    config = LLMConfig(**{**provider_config(provider), "max_retries": 0})
    llm = create_llm_instance(config, transport=transport, environ={})
    with pytest.warns(ReplayWarning), pytest.raises(REFUSALS[status]) as info:
        await ask(llm, "aask")
    message = str(info.value)
    assert f"the {status} answer" in message
    assert "was not recorded" in message
    assert "check the API key" in message
    assert str(cassette) in message
    assert info.value.status_code == status
    assert len(upstream.requests) == 1
    await transport.aclose()
    assert not cassette.exists()


async def test_a_refusal_without_a_transport_note_keeps_its_own_message() -> None:
    llm = create_llm_instance(LLMConfig(**settings("openai")), transport=refusing(401).transport())
    with pytest.raises(AuthenticationError) as info:
        await ask(llm, "aask")
    assert str(info.value).endswith("invalid x-api-key")
