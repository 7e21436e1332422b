"""Amazon Bedrock over httpx2: Converse / ConverseStream, and InvokeModel /
InvokeModelWithResponseStream for Anthropic Messages bodies and Titan embeddings.

Requests are SigV4-signed with botocore's signer (the ``harness-llm[bedrock]`` extra), with
credentials from the config or the standard AWS chain. Streams are AWS event-stream frames
(:mod:`harness.providers._eventstream`). Which API a chat uses is the ``api`` constructor
argument: ``"converse"``, ``"invoke"`` (Anthropic Messages bodies), or ``"auto"`` (the
default: InvokeModel for model ids starting with ``anthropic.``, Converse for every other).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any, Literal, NoReturn
from urllib.parse import quote

import httpx2

from harness._http import reaches_upstream
from harness.config import LLMConfig, LLMType
from harness.costs import Usage
from harness.errors import ConfigError, MissingAPIKeyError, NotSupportedError
from harness.providers._anthropic_wire import (
    anthropic_stream_chunk,
    anthropic_tool_params,
    collect_thinking,
    parse_anthropic_usage,
    read_messages_answer,
    reasoning_replay,
    to_anthropic_messages,
)
from harness.providers._aws import (
    AWSCredentials,
    CredentialChain,
    resolve_region,
    sign_request,
    utc_now,
)
from harness.providers._aws_wire import (
    EVENT_STREAM,
    FrameStream,
    bedrock_error,
    converse_latency,
    error_type_name,
    invocation_metrics,
    parse_converse_usage,
    to_converse_messages,
)
from harness.providers._sdk import in_stream_error, with_transport_note
from harness.providers._wire import error_body, format_error, json_answer, post
from harness.providers.base import (
    BaseLLM,
    ChatOptions,
    ChatResponse,
    Embeddings,
    StreamChunk,
    ToolCall,
)
from harness.providers.registry import register_provider
from harness.providers.results import content_first, split_forced_answer

__all__ = [
    "BedrockLLM",
    "bedrock_error",
    "parse_converse_usage",
    "to_converse_messages",
]

BedrockAPI = Literal["auto", "converse", "invoke"]
ANTHROPIC_VERSION = "bedrock-2023-05-31"


@register_provider(LLMType.BEDROCK)
class BedrockLLM(BaseLLM):
    """Models on Amazon Bedrock: Converse, Anthropic over InvokeModel, Titan embeddings.

    ``api`` picks the chat API (see the module docstring); ``clock`` is the signing clock.
    """

    provider_name = "bedrock"
    # Signing credentials, region and endpoint (a VPC endpoint, like base_url); top_k
    # (additionalModelRequestFields, or the Anthropic body) and stop. Seeds, penalties, n and
    # logprobs are not in Converse and are refused.
    supported_fields = frozenset(
        {"access_key", "secret_key", "session_token", "region_name", "endpoint", "top_k", "stop"}
    )

    def __init__(
        self,
        config: LLMConfig,
        *,
        api: BedrockAPI = "auto",
        clock: Callable[[], datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, **kwargs)
        if api not in ("auto", "converse", "invoke"):
            raise ConfigError(f"unknown Bedrock api {api!r}; valid: auto, converse, invoke")
        self.api: BedrockAPI = api
        self._clock = clock or utc_now
        self._chain = CredentialChain(config, self._environ)
        self._region_name: str | None = None

    # -- requests ---------------------------------------------------------------------------

    def _require_model(self) -> str:
        if not self.model:
            raise ConfigError(
                "no model configured for api_type 'bedrock'", source=self.config.source, key="model"
            )
        return self.model

    def uses_invoke(self) -> bool:
        """Whether chats go over InvokeModel with Anthropic Messages bodies."""
        if self.api != "auto":
            return self.api == "invoke"
        return self._require_model().startswith("anthropic.")

    def _replaying(self) -> bool:
        allowed = self._allow_missing_key
        if allowed is None:
            allowed = self._transport is not None and not reaches_upstream(self._transport)
        return allowed

    def _credentials(self) -> AWSCredentials:
        """The request's credentials; in replay (a transport that does not reach AWS)
        placeholder ones when none are configured, without looking at the AWS chain."""
        if self._replaying() and not self._chain.configured():
            return AWSCredentials("AKIDREPLAYNOKEY", "replay-no-key")
        found = self._chain.get()
        if found is None:
            where = f"in {self.config.source}" if self.config.source else "in the LLMConfig"
            raise MissingAPIKeyError(
                f"no AWS credentials for api_type 'bedrock' (model {self.model!r}): set "
                f"access_key and secret_key {where}, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY in the environment, or an AWS profile",
                env_var="AWS_ACCESS_KEY_ID",
            )
        return found

    def _region(self) -> str:
        if self.config.region_name:
            return self.config.region_name
        if self._region_name is None:  # the environment's or profile's region, read once
            self._region_name = resolve_region(
                self.config, self._environ, use_profile=not self._replaying()
            )
        return self._region_name

    def _url(self, action: str, region: str) -> str:
        base = self.config.base_url or self.config.endpoint
        if not base:
            base = f"https://bedrock-runtime.{region}.amazonaws.com"
        model = quote(self._require_model(), safe="")
        return f"{base.rstrip('/')}/model/{model}/{action}"

    async def _post(
        self, action: str, body: dict[str, Any], timeout: float, *, stream: bool
    ) -> httpx2.Response:
        """Sign and send one request; transport failures and HTTP errors are harness errors."""
        credentials = self._credentials()
        region = self._region()
        url = self._url(action, region)
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        accept = EVENT_STREAM if stream else "application/json"
        headers = sign_request(
            method="POST",
            url=url,
            headers={"Content-Type": "application/json", "Accept": accept},
            body=content,
            credentials=credentials,
            region=region,
            now=self._clock(),
        )
        response = await post(
            self._http(),
            url,
            content=content,
            headers=headers,
            timeout=timeout,
            stream=stream,
            provider=self.provider_name,
            model=self.model,
        )
        if response.status_code >= 400:
            await self._raise_status(response)
        return response

    async def _raise_status(self, response: httpx2.Response) -> NoReturn:
        body = await error_body(response)
        error_type = error_type_name(response.headers.get("x-amzn-errortype"))
        if error_type is None and isinstance(body, Mapping):
            error_type = error_type_name(body.get("__type") or body.get("code"))
        error = bedrock_error(
            error_type,
            body,
            status=response.status_code,
            provider=self.provider_name,
            model=self.model,
            headers=response.headers,
        )
        raise with_transport_note(error, response)

    def _thinking(self) -> dict[str, Any]:
        """The extended-thinking request, which Claude counts within the answer's max tokens."""
        config = self.config
        if config.max_token <= config.reasoning_max_token:
            raise ConfigError(
                f"max_token ({config.max_token}) must exceed reasoning_max_token "
                f"({config.reasoning_max_token}): thinking is counted within max_token",
                source=config.source,
                key="max_token",
            )
        return {"type": "enabled", "budget_tokens": config.reasoning_max_token}

    # -- Converse ---------------------------------------------------------------------------

    def _converse_body(
        self, messages: list[dict[str, Any]], options: ChatOptions | None = None
    ) -> dict[str, Any]:
        config = self.config
        explicit = config.model_fields_set
        system, chat = to_converse_messages(messages)
        inference: dict[str, Any] = {"maxTokens": config.max_token}
        extra: dict[str, Any] = {}
        if config.reasoning:
            extra["thinking"] = self._thinking()
        else:  # thinking fixes the sampling settings; some models take only one of them
            if "temperature" in explicit:
                inference["temperature"] = config.temperature
            if "top_p" in explicit:
                inference["topP"] = config.top_p
            if config.top_k:
                extra["top_k"] = config.top_k
        if config.stop:
            inference["stopSequences"] = (
                [config.stop] if isinstance(config.stop, str) else list(config.stop)
            )
        body: dict[str, Any] = {"messages": chat, "inferenceConfig": inference}
        if system:
            body["system"] = system
        if options:
            tool_config = converse_tool_config(options)
            if tool_config:
                body["toolConfig"] = tool_config
        if extra:
            body["additionalModelRequestFields"] = extra
        return body

    def _converse_response(
        self, data: dict[str, Any], response: httpx2.Response, options: ChatOptions | None = None
    ) -> ChatResponse:
        message = (data.get("output") or {}).get("message")
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
            raise format_error(
                "the answer has no output.message.content list: not a Converse answer",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            )
        text: list[str] = []
        reasoning: list[str] = []
        signed: list[dict[str, Any]] = []  # reasoning blocks, sent back as they came
        calls: list[ToolCall] = []
        for block in message["content"]:
            if not isinstance(block, Mapping):
                continue
            if "text" in block:
                text.append(str(block["text"]))
            elif "reasoningContent" in block:
                part = (block["reasoningContent"] or {}).get("reasoningText") or {}
                reasoning.append(str(part.get("text") or ""))
                signed.append(dict(block))
            elif "toolUse" in block:
                use = block["toolUse"] or {}
                calls.append(
                    ToolCall(
                        id=use.get("toolUseId"),
                        name=use.get("name", ""),
                        arguments=json.dumps(use.get("input") or {}, ensure_ascii=False),
                    )
                )
        answer, calls = split_forced_answer(calls, options)
        joined = "".join(text) if answer is None else answer
        return ChatResponse(
            text=joined,
            replay_content=reasoning_replay(signed, joined),
            usage=parse_converse_usage(data.get("usage")),
            reasoning_content="".join(reasoning) or None,
            finish_reason=data.get("stopReason"),
            model=self.model,
            tool_calls=calls,
            raw=data,
            metrics=converse_latency(data.get("metrics")),
        )

    async def _converse_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None
    ) -> AsyncGenerator[StreamChunk, None]:
        response = await self._post(
            "converse-stream", self._converse_body(messages, options), timeout, stream=True
        )
        reader = FrameStream(response, provider=self.provider_name, model=self.model)
        tools: dict[int, dict[str, Any]] = {}
        signed: dict[int, dict[str, str]] = {}  # reasoning text and signature, or redacted
        text: list[str] = []
        stopped = False
        try:
            async for event, data in reader.events():
                chunk = StreamChunk(model=self.model, raw=data)
                index = int(data.get("contentBlockIndex") or 0)
                if event == "contentBlockStart":
                    use = (data.get("start") or {}).get("toolUse")
                    if isinstance(use, Mapping):
                        tools[index] = {
                            "id": use.get("toolUseId"),
                            "name": use.get("name", ""),
                            "input": "",
                        }
                elif event == "contentBlockDelta":
                    delta = data.get("delta") or {}
                    if "text" in delta:
                        chunk.text = str(delta["text"])
                        text.append(chunk.text)
                    elif "reasoningContent" in delta:
                        part = delta["reasoningContent"] or {}
                        chunk.reasoning = str(part.get("text") or "")
                        block = signed.setdefault(index, {})
                        for key in ("text", "signature", "redactedContent"):
                            if part.get(key):
                                block[key] = block.get(key, "") + str(part[key])
                    elif "toolUse" in delta and index in tools:
                        tools[index]["input"] += str((delta["toolUse"] or {}).get("input") or "")
                elif event == "messageStop":
                    stopped = True
                    chunk.finish_reason = data.get("stopReason")
                elif event == "metadata":
                    chunk.usage = parse_converse_usage(data.get("usage"))
                    chunk.metrics = converse_latency(data.get("metrics"))
                yield chunk
        finally:
            await response.aclose()
        if not stopped:
            raise reader.cut("the stream ended without messageStop")
        blocks = [_reasoning_block(b) for _, b in sorted(signed.items())]
        replay = reasoning_replay(blocks, "".join(text))
        if tools:
            calls = [
                ToolCall(id=t["id"], name=t["name"], arguments=t["input"] or "{}")
                for _, t in sorted(tools.items())
            ]
            answer, calls = split_forced_answer(calls, options)
            yield StreamChunk(
                model=self.model, text=answer or "", tool_calls=calls, replay_content=replay
            )
        elif replay is not None:
            yield StreamChunk(model=self.model, replay_content=replay)

    # -- InvokeModel with Anthropic Messages bodies --------------------------------------------

    def _anthropic_body(
        self, messages: list[dict[str, Any]], options: ChatOptions | None = None
    ) -> dict[str, Any]:
        config = self.config
        explicit = config.model_fields_set
        system, chat = to_anthropic_messages(messages)
        body: dict[str, Any] = {
            "anthropic_version": ANTHROPIC_VERSION,
            "max_tokens": config.max_token,
            "messages": chat,
        }
        if system:
            body["system"] = system
        if config.reasoning:
            body["thinking"] = self._thinking()
        else:
            for name in ("temperature", "top_p"):
                if name in explicit:
                    body[name] = getattr(config, name)
            if config.top_k:
                body["top_k"] = config.top_k
        if config.stop:
            body["stop_sequences"] = [config.stop] if isinstance(config.stop, str) else config.stop
        if options:
            body.update(anthropic_tool_params(options, thinking=bool(config.reasoning)))
        return body

    def _anthropic_response(
        self, data: dict[str, Any], response: httpx2.Response, options: ChatOptions | None = None
    ) -> ChatResponse:
        content = read_messages_answer(
            data, response, provider=self.provider_name, model=self.model
        )
        metrics: dict[str, float] = {}
        latency = response.headers.get("x-amzn-bedrock-invocation-latency")
        if latency and latency.isdigit():
            metrics["latency"] = int(latency) / 1000.0
        answer, calls = split_forced_answer(content.calls, options)
        joined = content.text if answer is None else answer
        return ChatResponse(
            text=joined,
            replay_content=reasoning_replay(content.signed, joined),
            usage=parse_anthropic_usage(data.get("usage")),
            reasoning_content=content.thinking or None,
            finish_reason=data.get("stop_reason"),
            model=data.get("model"),
            tool_calls=calls,
            raw=data,
            metrics=metrics,
        )

    async def _anthropic_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None
    ) -> AsyncGenerator[StreamChunk, None]:
        response = await self._post(
            "invoke-with-response-stream",
            self._anthropic_body(messages, options),
            timeout,
            stream=True,
        )
        reader = FrameStream(response, provider=self.provider_name, model=self.model)
        tools: dict[int, dict[str, Any]] = {}
        signed: dict[int, dict[str, Any]] = {}  # thinking blocks, rebuilt to send back
        text: list[str] = []
        start_usage: Any = None
        model: str | None = None
        stopped = False
        try:
            async for _, frame in reader.events():
                try:
                    data = json.loads(base64.b64decode(frame.get("bytes") or "", validate=True))
                except (ValueError, binascii.Error) as exc:
                    raise reader.format_error(
                        f"frame {reader.count}: 'bytes' is not base64 JSON ({exc})",
                        json.dumps(frame).encode(),
                    ) from exc
                kind = data.get("type")
                if kind == "error":
                    raise in_stream_error(data, provider=self.provider_name, model=self.model)
                chunk = anthropic_stream_chunk(data, tools, start_usage)
                collect_thinking(data, signed)
                text.append(chunk.text)
                if kind == "message_start":
                    message = data.get("message") or {}
                    start_usage = message.get("usage")
                    model = message.get("model")
                    chunk.usage = parse_anthropic_usage(start_usage)
                elif kind == "message_stop":
                    stopped = True
                    chunk.metrics = invocation_metrics(data)
                chunk.model = model
                yield chunk
        finally:
            await response.aclose()
        if not stopped:
            raise reader.cut("the stream ended without message_stop")
        replay = reasoning_replay([block for _, block in sorted(signed.items())], "".join(text))
        if tools:
            calls = [
                ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"] or "{}")
                for _, c in sorted(tools.items())
            ]
            answer, calls = split_forced_answer(calls, options)
            yield StreamChunk(
                model=model, text=answer or "", tool_calls=calls, replay_content=replay
            )
        elif replay is not None:
            yield StreamChunk(model=model, replay_content=replay)

    # -- BaseLLM hooks ------------------------------------------------------------------------

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        if self.uses_invoke():
            response = await self._post(
                "invoke", self._anthropic_body(messages, options), timeout, stream=False
            )
            data = await json_answer(response, provider=self.provider_name, model=self.model)
            return self._anthropic_response(data, response, options)
        response = await self._post(
            "converse", self._converse_body(messages, options), timeout, stream=False
        )
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        return self._converse_response(data, response, options)

    def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        if self.uses_invoke():
            return content_first(self._anthropic_stream(messages, timeout, options))
        return content_first(self._converse_stream(messages, timeout, options))

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        """Amazon Titan text embeddings over InvokeModel, one request per text."""
        model = self._require_model()
        if not model.startswith("amazon.titan-embed"):
            raise NotSupportedError(
                f"Bedrock embeddings are implemented for Amazon Titan models "
                f"(amazon.titan-embed-*), not {model!r}",
                provider=self.provider_name,
                model=model,
            )
        vectors: list[list[float]] = []
        bodies: list[dict[str, Any]] = []
        tokens = 0
        counted = True
        for text in texts:
            response = await self._post("invoke", {"inputText": text}, timeout, stream=False)
            data = await json_answer(response, provider=self.provider_name, model=self.model)
            vector = data.get("embedding")
            if not isinstance(vector, list):
                raise format_error(
                    "the answer has no 'embedding' vector",
                    response,
                    response.content,
                    provider=self.provider_name,
                    model=self.model,
                )
            vectors.append([float(x) for x in vector])
            count = data.get("inputTextTokenCount")
            if isinstance(count, int):
                tokens += count
            else:
                counted = False
            bodies.append(data)
        return Embeddings(
            vectors=vectors,
            model=model,
            usage=Usage(prompt_tokens=tokens) if counted else None,
            raw=bodies,
        )


def _reasoning_block(parts: dict[str, str]) -> dict[str, Any]:
    """A streamed Converse reasoning block as the API wants it back: ``reasoningText``
    (text and signature), or the ``redactedContent`` (base64) of an encrypted one."""
    if "redactedContent" in parts:
        return {"reasoningContent": {"redactedContent": parts["redactedContent"]}}
    return {"reasoningContent": {"reasoningText": parts}}


def converse_tool_config(options: ChatOptions) -> dict[str, Any]:
    """The Converse ``toolConfig``: ``toolSpec``s and ``toolChoice`` (auto, any or one tool).

    A ``response_format`` is asked for with a forced synthetic tool whose input is the answer.
    Converse has no way to forbid tool use, so ``tool_choice="none"`` is refused.
    """
    tools = list(options.tools)
    choice: dict[str, Any] | None = None
    if options.tool_choice == "none" and options.response_format is None:
        raise ValueError(
            "Bedrock Converse has no tool_choice 'none': leave tool_choice unset, or send the "
            "request without tools"
        )
    if options.tool_choice == "auto":
        choice = {"auto": {}}
    elif options.tool_choice == "required":
        choice = {"any": {}}
    elif options.tool_choice is not None:
        choice = {"tool": {"name": options.tool_choice}}
    if options.response_format is not None:
        answer = options.response_format.as_tool()
        if any(tool.name == answer.name for tool in tools):
            raise ValueError(
                f"response_format {answer.name!r} has the name of an offered tool: rename one"
            )
        tools.append(answer)
        # As on Anthropic: the answer tool forced when no other tool may be called, else any
        # tool (a loop step or the answer), or the named tool forced for this step.
        if not options.tools or options.tool_choice == "none":
            choice = {"tool": {"name": answer.name}}
        elif options.tool_choice in (None, "auto", "required"):
            choice = {"any": {}}
    if not tools:
        return {}
    specs = []
    for tool in tools:
        spec: dict[str, Any] = {"name": tool.name}
        if tool.description:  # Converse rejects an empty description
            spec["description"] = tool.description
        spec["inputSchema"] = {"json": tool.parameters}
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice is not None:
        config["toolChoice"] = choice
    return config
