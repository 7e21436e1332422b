"""The live tier for tools and structured output, against the real local model.

SmolLM2-135M's own chat template ignores tools, so the server is started with
``--jinja --chat-template-file cassettes/suites/tools/chatml-tools.jinja`` (ChatML that lists
the tools and renders calls as ``<tool_call>`` JSON and results as ``<tool_response>``).
Measured with that template: llama-server reports ``supports_tool_calls``, but SmolLM2
answers in prose and never emits a call, with ``tool_choice`` ``auto`` or ``required`` (the
server applies no grammar for ``required`` here), even after a worked example in the
conversation. So the round trip scripts the model's call as an earlier assistant turn and
checks that the real server takes the OpenAI tool wire format (tools, the assistant's
``tool_calls``, the ``tool`` result) and uses the result; ``response_format`` (a JSON schema,
which llama-server enforces with a grammar) is followed and parsed. Each records, stops the
server and replays exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pydantic
import pytest

from harness import LLMConfig, ModelsConfig, create_llm_instance
from harness.messages import assistant_msg, tool_result
from harness.providers import BaseLLM
from harness.providers.base import ToolCall
from harness.replay import ReplayTransport, load_interactions
from tests.live.conftest import MODELS_YAML, LocalLLM

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "cassettes" / "suites" / "tools" / "chatml-tools.jinja"
TOOLS_SERVER = ("--jinja", "--chat-template-file", str(TEMPLATE))
pytestmark = [
    pytest.mark.live,
    pytest.mark.parametrize("local_llm", [TOOLS_SERVER], indirect=True, ids=["tools-template"]),
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class Person(pydantic.BaseModel):
    name: str
    age: int


def _config(url: str) -> LLMConfig:
    environ = {"HARNESS_LOCAL_LLM_URL": url}
    config = ModelsConfig.from_yaml_file(MODELS_YAML, environ=environ).get("local-smollm2")
    return config.model_copy(update={"temperature": 0.0, "seed": 7, "max_token": 48})


async def _round_trip(llm: BaseLLM) -> tuple[str, list[ToolCall]]:
    call = ToolCall("call_1", "get_weather", json.dumps({"city": "Oslo"}))
    messages = [
        {"role": "user", "content": "What is the weather in Oslo?"},
        assistant_msg(None, [call]),
        tool_result("call_1", "-2 C and snowing"),
    ]
    response = await llm.acompletion(messages, tools=[WEATHER])
    return response.text or "", response.tool_calls


async def test_a_tool_round_trip_reaches_the_real_server_and_replays(
    local_llm: LocalLLM, tmp_path: Path
) -> None:
    assert "--jinja" in local_llm.command and str(TEMPLATE) in local_llm.command
    cassette = tmp_path / "round-trip.yaml"
    config = _config(local_llm.url)
    async with ReplayTransport(cassette, mode="record") as recorder:
        live = await _round_trip(create_llm_instance(config, transport=recorder))
    text, calls = live
    # the tool's result reached the model: it quotes its temperature (SmolLM2 drops the sign)
    assert re.search(r"\b2\b", text), text
    assert calls == []  # SmolLM2 answers in prose (see the module docstring)
    (interaction,) = load_interactions(cassette)
    body = json.loads(interaction.request.body)
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert body["messages"][-2]["tool_calls"][0]["id"] == "call_1"
    assert body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "-2 C and snowing",
    }
    local_llm.stop()
    async with ReplayTransport(cassette, mode="replay") as player:
        assert await _round_trip(create_llm_instance(config, transport=player)) == live


async def test_response_format_is_followed_parsed_and_replayed(
    local_llm: LocalLLM, tmp_path: Path
) -> None:
    cassette = tmp_path / "structured.yaml"
    config = _config(local_llm.url)
    prompt = "Ann is 30 years old. Give her name and age."
    async with ReplayTransport(cassette, mode="record") as recorder:
        llm = create_llm_instance(config, transport=recorder)
        live = await llm.aask(prompt, response_format=Person, stream=False)
    assert isinstance(live.parsed, Person)  # schema-valid (its content is SmolLM2's)
    assert Person.model_validate_json(live) == live.parsed
    (interaction,) = load_interactions(cassette)
    assert json.loads(interaction.request.body)["response_format"]["type"] == "json_schema"
    local_llm.stop()
    async with ReplayTransport(cassette, mode="replay") as player:
        llm = create_llm_instance(config, transport=player)
        replayed = await llm.aask(prompt, response_format=Person, stream=False)
    assert replayed.parsed == live.parsed and str(replayed) == str(live)
