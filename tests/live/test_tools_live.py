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
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from harness import LLMConfig, ModelsConfig, create_llm_instance
from harness.messages import assistant_msg, tool_result
from harness.providers import BaseLLM
from harness.providers.base import ToolCall
from harness.replay import ReplayTransport, load_interactions
from tests.live.conftest import (
    HEALTH_TIMEOUT,
    LOCAL_LLM,
    MODEL,
    MODELS_YAML,
    START_TIMEOUT,
    STOP_TIMEOUT,
    LocalLLM,
    _run,
)

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "cassettes" / "suites" / "tools" / "chatml-tools.jinja"
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


@pytest.fixture
def tools_llm(local_llm_ready: None, tmp_path: Path) -> Iterator[LocalLLM]:
    """A fresh server with the tools template, on a free port, stopped at teardown."""
    state_file = tmp_path / "local-llm-state.json"
    try:
        done = _run(
            "start",
            "--model",
            MODEL,
            "--background",
            "--state-file",
            str(state_file),
            "--health-timeout",
            str(HEALTH_TIMEOUT),
            "--server-arg=--jinja",
            "--server-arg=--chat-template-file",
            f"--server-arg={TEMPLATE}",
            timeout=START_TIMEOUT,
        )
        url = done.stdout.strip().splitlines()[-1]
        command = Path(json.loads(state_file.read_text())["log"]).read_text().splitlines()[0]
        server = LocalLLM(url=url, state_file=state_file, command=command)
    except BaseException:
        if state_file.exists():
            subprocess.run(
                [*LOCAL_LLM, "stop", "--state-file", str(state_file)],
                capture_output=True,
                timeout=STOP_TIMEOUT,
            )
        raise
    try:
        yield server
    finally:
        server.stop()


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
    tools_llm: LocalLLM, tmp_path: Path
) -> None:
    assert "--jinja" in tools_llm.command and str(TEMPLATE) in tools_llm.command
    cassette = tmp_path / "round-trip.yaml"
    config = _config(tools_llm.url)
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
    tools_llm.stop()
    async with ReplayTransport(cassette, mode="replay") as player:
        assert await _round_trip(create_llm_instance(config, transport=player)) == live


async def test_response_format_is_followed_parsed_and_replayed(
    tools_llm: LocalLLM, tmp_path: Path
) -> None:
    cassette = tmp_path / "structured.yaml"
    config = _config(tools_llm.url)
    prompt = "Ann is 30 years old. Give her name and age."
    async with ReplayTransport(cassette, mode="record") as recorder:
        llm = create_llm_instance(config, transport=recorder)
        live = await llm.aask(prompt, response_format=Person, stream=False)
    assert isinstance(live.parsed, Person)  # schema-valid (its content is SmolLM2's)
    assert Person.model_validate_json(live) == live.parsed
    (interaction,) = load_interactions(cassette)
    assert json.loads(interaction.request.body)["response_format"]["type"] == "json_schema"
    tools_llm.stop()
    async with ReplayTransport(cassette, mode="replay") as player:
        llm = create_llm_instance(config, transport=player)
        replayed = await llm.aask(prompt, response_format=Person, stream=False)
    assert replayed.parsed == live.parsed and str(replayed) == str(live)
