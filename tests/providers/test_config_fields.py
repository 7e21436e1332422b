"""Every vendor-specific LLMConfig field takes effect on the wire or is refused by name.

For the OpenAI family and Anthropic each (api_type, field) pair is sent through a
MockTransport: either the field reaches the request body under the vendor's name, or the
constructor raises a ConfigError naming the field and the api_type. ``n`` > 1 returns every
answer on the OpenAI family, streamed or not.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from harness import LLM_REGISTRY, ConfigError, LLMConfig, create_llm_instance
from harness.providers.anthropic import AnthropicLLM
from harness.providers.base import VENDOR_FIELDS, Choice, config_sets
from harness.providers.openai import OpenAILLM

SAMPLES: dict[str, Any] = {
    "endpoint": "https://res.openai.azure.com",
    "api_version": "2024-10-21",
    "access_key": "AKIDEXAMPLE",
    "secret_key": "secret-example",
    "session_token": "token-example",
    "region_name": "us-east-1",
    "app_id": "app-example",
    "api_secret": "api-secret-example",
    "domain": "generalv3.5",
    "top_k": 5,
    "repetition_penalty": 1.1,
    "best_of": 2,
    "n": 2,
    "seed": 7,
    "stop": ["END"],
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "logprobs": True,
    "top_logprobs": 2,
}

# Where each field lands in an OpenAI-family request body (extra_body merges at the top).
OPENAI_WIRE = {
    "n": ("n", 2),
    "seed": ("seed", 7),
    "stop": ("stop", ["END"]),
    "presence_penalty": ("presence_penalty", 0.5),
    "frequency_penalty": ("frequency_penalty", 0.25),
    "logprobs": ("logprobs", True),
    "top_logprobs": ("top_logprobs", 2),
    "top_k": ("top_k", 5),
    "repetition_penalty": ("repetition_penalty", 1.1),
    "domain": ("model", "generalv3.5"),
}
# Fields that act on the URL, not the body: checked on the request's URL instead.
OPENAI_URL = {
    "endpoint": "https://res.openai.azure.com/openai/deployments/m/chat/completions",
    "api_version": "api-version=2024-10-21",
}
ANTHROPIC_WIRE = {"top_k": ("top_k", 5), "stop": ("stop_sequences", ["END"])}

# What the family accepts beyond OpenAI's schema, per vendor (everything else is refused).
ACCEPTED_EXTRAS = {
    "open_llm": {"top_k", "repetition_penalty"},
    "openrouter": {"top_k", "repetition_penalty"},
    "open_router": {"top_k", "repetition_penalty"},
    "openrouter_reasoning": {"top_k", "repetition_penalty"},
    "fireworks": {"top_k", "repetition_penalty"},
    "siliconflow": {"top_k"},
    "dashscope": {"top_k"},
    "spark": {"domain"},
    "azure": {"endpoint", "api_version"},
}
OPENAI_SCHEMA = {"n", "seed", "stop", "presence_penalty", "frequency_penalty", "logprobs"}
OPENAI_SCHEMA |= {"top_logprobs"}

OPENAI_FAMILY = sorted(t.value for t, cls in LLM_REGISTRY.items() if issubclass(cls, OpenAILLM))


def test_samples_cover_every_vendor_field_and_ask_for_something() -> None:
    assert set(SAMPLES) == set(VENDOR_FIELDS)
    for name, value in SAMPLES.items():
        assert config_sets(LLMConfig(**{name: value}), name), name


def test_defaults_and_n_of_one_ask_for_nothing() -> None:
    config = LLMConfig(n=1, stop=[], top_k=0, repetition_penalty=1.0)
    assert not any(config_sets(config, name) for name in VENDOR_FIELDS)


def _openai_answer(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": f"answer {i}"},
            "finish_reason": "stop",
        }
        for i in range(body.get("n") or 1)
    ]
    return httpx2.Response(
        200,
        json={
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": choices,
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    )


def _anthropic_answer(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    )


class Recorder:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[httpx2.URL] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        self.urls.append(request.url)
        response: httpx2.Response = self.answer(request)
        return response


def _config(api_type: str, name: str) -> LLMConfig:
    settings: dict[str, Any] = {
        "api_type": api_type,
        "model": "claude-test" if api_type in ("anthropic", "claude") else "m",
        "base_url": "https://vendor.example/v1",
        "stream": False,
        name: SAMPLES[name],
    }
    if name == "domain":
        settings["model"] = None  # Spark's domain names the model
    if name == "endpoint":
        del settings["base_url"]  # base_url would win over endpoint
    return LLMConfig(**settings)


@pytest.mark.parametrize("name", VENDOR_FIELDS)
@pytest.mark.parametrize("api_type", OPENAI_FAMILY)
async def test_openai_family_field_reaches_the_body_or_is_refused_by_name(
    api_type: str, name: str
) -> None:
    accepted = OPENAI_SCHEMA | ACCEPTED_EXTRAS.get(api_type, set())
    config = _config(api_type, name)
    recorder = Recorder(_openai_answer)
    if name not in accepted:
        with pytest.raises(ConfigError) as info:
            create_llm_instance(config, transport=httpx2.MockTransport(recorder))
        assert info.value.key == name
        assert name in str(info.value) and repr(api_type) in str(info.value)
        return
    llm = create_llm_instance(config, transport=httpx2.MockTransport(recorder))
    assert isinstance(llm, OpenAILLM)
    await llm.aask("hi")
    if name in OPENAI_URL:
        assert OPENAI_URL[name] in str(recorder.urls[0])
        return
    wire_name, wire_value = OPENAI_WIRE[name]
    assert recorder.bodies[0][wire_name] == wire_value


@pytest.mark.parametrize("name", VENDOR_FIELDS)
async def test_anthropic_field_reaches_the_body_or_is_refused_by_name(name: str) -> None:
    config = _config("anthropic", name)
    recorder = Recorder(_anthropic_answer)
    if name not in ANTHROPIC_WIRE:
        with pytest.raises(ConfigError) as info:
            create_llm_instance(config, transport=httpx2.MockTransport(recorder))
        assert info.value.key == name
        assert name in str(info.value) and "'anthropic'" in str(info.value)
        assert "AnthropicLLM" in str(info.value)
        return
    llm = create_llm_instance(config, transport=httpx2.MockTransport(recorder))
    assert isinstance(llm, AnthropicLLM)
    await llm.aask("hi")
    wire_name, wire_value = ANTHROPIC_WIRE[name]
    assert recorder.bodies[0][wire_name] == wire_value


def test_refusals_say_what_to_do_instead() -> None:
    with pytest.raises(ConfigError, match="legacy Completions API; use n"):
        create_llm_instance(LLMConfig(api_type="openai", model="m", best_of=3))
    with pytest.raises(ConfigError, match="used by bedrock only"):
        create_llm_instance(LLMConfig(api_type="openai", model="m", access_key="AKID"))
    with pytest.raises(ConfigError, match="takes the APIPassword as api_key"):
        create_llm_instance(LLMConfig(api_type="spark", app_id="a", model="generalv3.5"))
    with pytest.raises(ConfigError, match="call it n times"):
        create_llm_instance(LLMConfig(api_type="anthropic", model="c", n=3))


def test_spark_model_and_a_different_domain_is_an_error() -> None:
    with pytest.raises(ConfigError, match="disagree") as info:
        create_llm_instance(LLMConfig(api_type="spark", model="4.0Ultra", domain="generalv3.5"))
    assert info.value.key == "domain"


def test_top_k_and_repetition_penalty_at_their_defaults_are_not_sent() -> None:
    llm = create_llm_instance(LLMConfig(api_type="open_llm", model="m", base_url="http://h/v1"))
    assert isinstance(llm, OpenAILLM)
    params = llm._params([{"role": "user", "content": "hi"}], stream=False)
    assert "extra_body" not in params


# -- n > 1: every answer comes back -------------------------------------------------------------


async def test_n_answers_come_back_as_choices_and_alternatives() -> None:
    recorder = Recorder(_openai_answer)
    llm = create_llm_instance(
        LLMConfig(api_type="openai", model="gpt-4o-mini", n=3, stream=False),
        transport=httpx2.MockTransport(recorder),
    )
    reply = await llm.aask("hi")
    assert reply == "answer 0"
    assert reply.alternatives == ["answer 0", "answer 1", "answer 2"]
    assert [c.index for c in reply.response.choices] == [0, 1, 2]
    assert all(isinstance(c, Choice) and c.finish_reason == "stop" for c in reply.response.choices)
    assert recorder.bodies[0]["n"] == 3


async def test_a_single_answer_has_no_choices_and_itself_as_alternative() -> None:
    llm = create_llm_instance(
        LLMConfig(api_type="openai", model="gpt-4o-mini", stream=False),
        transport=httpx2.MockTransport(Recorder(_openai_answer)),
    )
    reply = await llm.aask("hi")
    assert reply.response.choices == []
    assert reply.alternatives == ["answer 0"]


def _sse(*events: dict[str, Any]) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


async def test_n_streamed_answers_are_kept_apart_by_index() -> None:
    def delta(index: int, text: str, finish: str | None = None) -> dict[str, Any]:
        return {
            "model": "gpt-4o-mini",
            "choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish}],
        }

    body = _sse(
        delta(0, "Hel"),
        delta(1, "Bon"),
        delta(1, "jour", "stop"),
        delta(0, "lo", "length"),
        {
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8},
        },
    )

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    llm = create_llm_instance(
        LLMConfig(api_type="openai", model="gpt-4o-mini", n=2),
        transport=httpx2.MockTransport(answer),
    )
    reply = await llm.aask("hi", stream=True)
    assert reply == "Hello"
    assert reply.finish_reason == "length"
    assert reply.alternatives == ["Hello", "Bonjour"]
    assert reply.response.choices[1].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 8

    chunks = [c async for c in llm.astream("hi")]
    assert [(c.index, c.text) for c in chunks if c.text] == [
        (0, "Hel"),
        (1, "Bon"),
        (1, "jour"),
        (0, "lo"),
    ]


@pytest.mark.parametrize("llm_type", sorted(t.value for t in LLM_REGISTRY if t.value != "fake"))
def test_every_built_in_provider_declares_its_fields_and_refuses_the_rest(llm_type: str) -> None:
    base = create_llm_instance(LLMConfig(api_type=llm_type, model="m"))
    supported = base._supported_fields()
    assert supported is not None, f"{type(base).__name__} declares no supported_fields"
    assert supported <= set(VENDOR_FIELDS)
    for name in VENDOR_FIELDS:
        if name in supported:
            continue
        with pytest.raises(ConfigError) as info:
            create_llm_instance(LLMConfig(api_type=llm_type, model="m", **{name: SAMPLES[name]}))
        assert info.value.key == name
        assert repr(llm_type) in str(info.value)


def test_anthropic_refuses_top_k_with_extended_thinking_which_would_drop_it() -> None:
    config = LLMConfig(api_type="anthropic", model="c", reasoning=True, max_token=8000, top_k=5)
    with pytest.raises(ConfigError, match="top_k=5 is not supported") as info:
        create_llm_instance(config)
    assert info.value.key == "top_k"


@pytest.mark.parametrize("name", ["presence_penalty", "frequency_penalty"])
def test_openai_reasoning_models_refuse_the_penalties_they_would_drop(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_llm_instance(LLMConfig(api_type="openai", model="o3-mini", **{name: 0.5}))
    assert info.value.key == name
    deployment = LLMConfig(api_type="azure", model="my-o3", reasoning_model=True, **{name: 0.5})
    with pytest.raises(ConfigError):
        create_llm_instance(deployment)
    create_llm_instance(LLMConfig(api_type="openai", model="gpt-4o-mini", **{name: 0.5}))
