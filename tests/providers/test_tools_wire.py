"""Issue #12: tools, tool_choice and tool results on every wire format (the request shapes,
checked on MockTransport), and a multi-step agent loop (call -> tool_result -> answer) that
runs unchanged on each provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from harness import LLMConfig, Tool, ToolCall, create_llm_instance
from harness.messages import assistant_msg, tool_result, user_msg
from harness.providers.base import BaseLLM

WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CALL_ARGS = {"city": "Paris"}
FINAL = "It is sunny in Paris."

PROVIDERS = ["openai", "azure", "anthropic", "gemini", "ollama", "bedrock", "bedrock-invoke"]


def config(provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """LLMConfig fields and create_llm_instance keywords for ``provider``."""
    base: dict[str, Any] = {"api_key": "sk-test", "model": "m-test", "max_retries": 0}
    extra: dict[str, Any] = {}
    if provider == "openai":
        base.update(api_type="openai", base_url="http://llm.test/v1")
    elif provider == "azure":
        base.update(api_type="azure", base_url="http://llm.test", api_version="2024-10-21")
    elif provider in ("anthropic", "gemini"):
        base.update(api_type=provider, base_url="http://llm.test")
    elif provider == "ollama":
        base.update(api_type="ollama", base_url="http://llm.test")
    else:
        del base["api_key"]
        base.update(
            api_type="bedrock",
            model="anthropic.claude-3-haiku" if provider == "bedrock-invoke" else "m-test",
            region_name="us-east-1",
            access_key="AKIDEXAMPLE",
            secret_key="secret",
        )
        extra = {"api": "invoke" if provider == "bedrock-invoke" else "converse", "environ": {}}
    return base, extra


def call_answer(provider: str, name: str = "get_weather", args: Any = None) -> dict[str, Any]:
    """``provider``'s non-streaming answer that calls ``name`` with ``args``."""
    args = CALL_ARGS if args is None else args
    if provider in ("openai", "azure"):
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return {
            "model": "m-test",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        }
    if provider in ("anthropic", "bedrock-invoke"):
        return {
            "type": "message",
            "role": "assistant",
            "model": "m-test",
            "content": [{"type": "tool_use", "id": "call_1", "name": name, "input": args}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "output_tokens": 3},
        }
    if provider == "gemini":
        part = {"functionCall": {"name": name, "args": args, "id": "call_1"}}
        return {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3},
        }
    if provider == "ollama":
        call = {"function": {"name": name, "arguments": args}}
        return {
            "model": "m-test",
            "message": {"role": "assistant", "content": "", "tool_calls": [call]},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 5,
            "eval_count": 3,
        }
    use = {"toolUse": {"toolUseId": "call_1", "name": name, "input": args}}
    return {
        "output": {"message": {"role": "assistant", "content": [use]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
    }


def text_answer(provider: str, text: str) -> dict[str, Any]:
    """``provider``'s non-streaming text answer."""
    if provider in ("openai", "azure"):
        message = {"role": "assistant", "content": text}
        return {
            "model": "m-test",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4},
        }
    if provider in ("anthropic", "bedrock-invoke"):
        return {
            "type": "message",
            "role": "assistant",
            "model": "m-test",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "output_tokens": 4},
        }
    if provider == "gemini":
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4},
        }
    if provider == "ollama":
        return {
            "model": "m-test",
            "message": {"role": "assistant", "content": text},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 9,
            "eval_count": 4,
        }
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
    }


class Scripted:
    """A MockTransport answering each request with the next scripted JSON body."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(200, json=self.answers.pop(0))

    def body(self, index: int) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.requests[index].content)
        return result

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


def make(provider: str, answers: list[dict[str, Any]], **fields: Any) -> tuple[BaseLLM, Scripted]:
    scripted = Scripted(answers)
    base, extra = config(provider)
    base.update(fields)
    llm = create_llm_instance(LLMConfig(**base), transport=scripted.transport(), **extra)
    return llm, scripted


async def run_agent(
    llm: BaseLLM, tools: dict[str, Callable[..., Any]], question: str, max_steps: int = 4
) -> tuple[str, list[dict[str, Any]]]:
    """The loop an application runs: ask, run each tool call, send the results, repeat."""
    messages: list[dict[str, Any]] = [user_msg(question)]
    for _ in range(max_steps):
        response = await llm.acompletion(messages, tools=list(tools.values()))
        if not response.tool_calls:
            return response.text or "", messages
        messages.append(assistant_msg(response.text or None, tool_calls=response.tool_calls))
        for call in response.tool_calls:
            result = tools[call.name](**json.loads(call.arguments))
            messages.append(tool_result(call.id or call.name, result))
    raise AssertionError("the loop did not end")


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


# -- request shapes per wire format: the offered tools -------------------------------------------


def sent_tools(provider: str, body: dict[str, Any]) -> Any:
    if provider in ("openai", "azure", "ollama"):
        return body["tools"]
    if provider in ("anthropic", "bedrock-invoke"):
        return body["tools"]
    if provider == "gemini":
        return body["tools"]
    return body["toolConfig"]["tools"]


EXPECTED_TOOLS: dict[str, Any] = {
    "openai": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ],
    "anthropic": [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": WEATHER.parameters,
        }
    ],
    "gemini": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": WEATHER.parameters,  # it fits Gemini's OpenAPI subset
                }
            ]
        }
    ],
    "bedrock": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "inputSchema": {"json": WEATHER.parameters},
            }
        }
    ],
}
EXPECTED_TOOLS["azure"] = EXPECTED_TOOLS["ollama"] = EXPECTED_TOOLS["openai"]
EXPECTED_TOOLS["bedrock-invoke"] = EXPECTED_TOOLS["anthropic"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tools_are_sent_in_each_wire_format(provider: str) -> None:
    llm, scripted = make(provider, [text_answer(provider, "hi")])

    await llm.acompletion([user_msg("hi")], tools=[get_weather])

    assert sent_tools(provider, scripted.body(0)) == EXPECTED_TOOLS[provider]


CHOICES: dict[str, dict[str, Any]] = {
    "openai": {
        "auto": "auto",
        "none": "none",
        "required": "required",
        "get_weather": {"type": "function", "function": {"name": "get_weather"}},
    },
    "anthropic": {
        "auto": {"type": "auto"},
        "none": {"type": "none"},
        "required": {"type": "any"},
        "get_weather": {"type": "tool", "name": "get_weather"},
    },
    "gemini": {
        "auto": {"functionCallingConfig": {"mode": "AUTO"}},
        "none": {"functionCallingConfig": {"mode": "NONE"}},
        "required": {"functionCallingConfig": {"mode": "ANY"}},
        "get_weather": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
        },
    },
    "bedrock": {
        "auto": {"auto": {}},
        "required": {"any": {}},
        "get_weather": {"tool": {"name": "get_weather"}},
    },
}


def sent_choice(provider: str, body: dict[str, Any]) -> Any:
    if provider in ("openai", "azure", "anthropic", "bedrock-invoke"):
        return body["tool_choice"]
    if provider == "gemini":
        return body["toolConfig"]
    return body["toolConfig"]["toolChoice"]


@pytest.mark.parametrize(
    "provider, choice",
    [
        (p, c)
        for p, family in [
            ("openai", "openai"),
            ("azure", "openai"),
            ("anthropic", "anthropic"),
            ("bedrock-invoke", "anthropic"),
            ("gemini", "gemini"),
            ("bedrock", "bedrock"),
        ]
        for c in CHOICES[family]
    ],
)
async def test_tool_choice_is_translated(provider: str, choice: str) -> None:
    family = {"azure": "openai", "bedrock-invoke": "anthropic"}.get(provider, provider)
    llm, scripted = make(provider, [text_answer(provider, "hi")])

    await llm.acompletion([user_msg("hi")], tools=[WEATHER], tool_choice=choice)

    assert sent_choice(provider, scripted.body(0)) == CHOICES[family][choice]


async def test_bedrock_converse_refuses_tool_choice_none_unsent() -> None:
    llm, scripted = make("bedrock", [text_answer("bedrock", "hi")])

    with pytest.raises(ValueError, match="no tool_choice 'none'"):
        await llm.acompletion([user_msg("hi")], tools=[WEATHER], tool_choice="none")
    assert scripted.requests == []


async def test_ollama_sends_no_tools_for_none_and_refuses_what_it_cannot_enforce() -> None:
    llm, scripted = make("ollama", [text_answer("ollama", "hi")])

    await llm.acompletion([user_msg("hi")], tools=[WEATHER], tool_choice="none")
    assert "tools" not in scripted.body(0)
    with pytest.raises(ValueError, match="cannot be enforced"):
        await llm.acompletion([user_msg("hi")], tools=[WEATHER], tool_choice="required")


async def test_an_unknown_tool_choice_is_refused_before_sending() -> None:
    llm, scripted = make("openai", [text_answer("openai", "hi")])

    with pytest.raises(ValueError, match="names no offered tool"):
        await llm.acompletion([user_msg("hi")], tools=[WEATHER], tool_choice="get_time")
    assert scripted.requests == []


# -- the agent loop on every wire format ------------------------------------------------------


def sent_history(provider: str, body: dict[str, Any]) -> Any:
    """The part of the second request that carries the call and its result."""
    if provider in ("openai", "azure", "ollama", "anthropic", "bedrock-invoke", "bedrock"):
        return body["messages"][1:]
    return body["contents"][1:]


EXPECTED_HISTORY: dict[str, Any] = {
    "openai": [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny in Paris"},
    ],
    "anthropic": [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": CALL_ARGS}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny in Paris"}
            ],
        },
    ],
    "gemini": [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": CALL_ARGS, "id": "call_1"}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": "sunny in Paris"},
                        "id": "call_1",
                    }
                }
            ],
        },
    ],
    "ollama": [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": CALL_ARGS}}],
        },
        {"role": "tool", "content": "sunny in Paris", "tool_name": "get_weather"},
    ],
    "bedrock": [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": CALL_ARGS}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny in Paris"}]}}
            ],
        },
    ],
}
EXPECTED_HISTORY["azure"] = EXPECTED_HISTORY["openai"]
EXPECTED_HISTORY["bedrock-invoke"] = EXPECTED_HISTORY["anthropic"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_agent_loop_calls_the_tool_sends_the_result_and_gets_the_answer(
    provider: str,
) -> None:
    llm, scripted = make(provider, [call_answer(provider), text_answer(provider, FINAL)])

    answer, messages = await run_agent(llm, {"get_weather": get_weather}, "Weather in Paris?")

    assert answer == FINAL
    assert len(scripted.requests) == 2
    assert messages[-1]["content"] == "sunny in Paris"
    assert sent_history(provider, scripted.body(1)) == EXPECTED_HISTORY[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_tool_call_is_parsed_into_a_tool_call(provider: str) -> None:
    llm, _ = make(provider, [call_answer(provider, args={"city": "Oslo"})])

    reply = await llm.aask("weather?", tools=[WEATHER], stream=False)

    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    if provider != "ollama":  # Ollama's calls carry no id
        assert reply.tool_calls[0].id == "call_1"


async def test_tool_result_is_error_reaches_anthropic_and_bedrock_and_not_openai() -> None:
    history = [
        user_msg("weather?"),
        assistant_msg(tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Paris"}')]),
        tool_result("call_1", "the weather service is down", is_error=True),
    ]
    anthropic, a_sent = make("anthropic", [text_answer("anthropic", "sorry")])
    bedrock, b_sent = make("bedrock", [text_answer("bedrock", "sorry")])
    openai, o_sent = make("openai", [text_answer("openai", "sorry")])

    for llm in (anthropic, bedrock, openai):
        await llm.acompletion(history, tools=[WEATHER])

    assert a_sent.body(0)["messages"][2]["content"][0]["is_error"] is True
    assert b_sent.body(0)["messages"][2]["content"][0]["toolResult"]["status"] == "error"
    assert o_sent.body(0)["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "the weather service is down",
    }


# -- streamed tool calls ---------------------------------------------------------------------------


def streamed(provider: str, answer: dict[str, Any]) -> httpx2.Response:
    """``answer`` as ``provider``'s one-event stream (Gemini SSE, Ollama NDJSON)."""
    if provider == "gemini":
        body = f"data: {json.dumps(answer)}\r\n\r\n"
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)
    return httpx2.Response(
        200, headers={"content-type": "application/x-ndjson"}, text=json.dumps(answer) + "\n"
    )


@pytest.mark.parametrize("provider", ["gemini", "ollama"])
async def test_streamed_agent_loop_gets_whole_calls_and_sends_the_results(provider: str) -> None:
    answers = [call_answer(provider), text_answer(provider, FINAL)]
    requests: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return streamed(provider, answers.pop(0))

    base, extra = config(provider)
    llm = create_llm_instance(LLMConfig(**base), transport=httpx2.MockTransport(answer), **extra)
    messages: list[dict[str, Any]] = [user_msg("Weather in Paris?")]

    first = await llm.acompletion(messages, tools=[WEATHER], stream=True)
    assert [(c.name, json.loads(c.arguments)) for c in first.tool_calls] == [
        ("get_weather", CALL_ARGS)
    ]
    call = first.tool_calls[0]
    messages += [
        assistant_msg(tool_calls=first.tool_calls),
        tool_result(call.id or call.name, get_weather(**json.loads(call.arguments))),
    ]
    second = await llm.acompletion(messages, tools=[WEATHER], stream=True)

    assert second.text == FINAL
    sent = json.loads(requests[1].content)
    assert sent_history(provider, sent) == EXPECTED_HISTORY[provider]


async def test_openai_streamed_call_fragments_are_assembled_exactly() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {
            "model": "m-test",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data)}\n\n"

    fragments = ['{"ci', 'ty": "Pa', 'ris"}']
    body = chunk(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        }
    )
    body += "".join(
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}) for part in fragments
    )
    body += chunk({}, "tool_calls") + "data: [DONE]\n\n"

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    base, _ = config("openai")
    llm = create_llm_instance(LLMConfig(**base), transport=httpx2.MockTransport(answer))

    chunks = [c async for c in llm.astream("weather?", tools=[WEATHER])]

    assert chunks[-1].tool_calls == [ToolCall("call_9", "get_weather", '{"city": "Paris"}')]
    assert sum(len(c.tool_calls) for c in chunks) == 1


async def test_gemini_sends_a_schema_outside_its_openapi_subset_as_json_schema() -> None:
    closed = Tool("f", "", {**WEATHER.parameters, "additionalProperties": False})
    nested = Tool("g", "", {"type": "object", "properties": {"a": {"type": ["string", "null"]}}})
    llm, scripted = make("gemini", [text_answer("gemini", "hi")])

    await llm.acompletion([user_msg("hi")], tools=[closed, nested, WEATHER])

    declarations = scripted.body(0)["tools"][0]["functionDeclarations"]
    assert [sorted(set(d) - {"name", "description"}) for d in declarations] == [
        ["parametersJsonSchema"],
        ["parametersJsonSchema"],
        ["parameters"],
    ]


def test_response_message_is_the_assistant_turn_in_openai_shape() -> None:
    from harness.providers.results import ChatResponse

    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    assert ChatResponse(text=None, tool_calls=[call]).message() == assistant_msg(tool_calls=[call])
    assert ChatResponse(text="hi").message() == {"role": "assistant", "content": "hi"}
    assert ChatResponse(text=None).message() == {"role": "assistant", "content": ""}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_tool_choice_none_without_tools_sends_no_tool_fields(provider: str) -> None:
    llm, scripted = make(provider, [text_answer(provider, "hi")])

    await llm.acompletion([user_msg("hi")], tool_choice="none")

    assert not {"tools", "tool_choice"} & set(scripted.body(0))
