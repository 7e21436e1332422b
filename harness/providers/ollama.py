"""Ollama's native REST API over httpx2: ``/api/chat``, ``/api/generate``, ``/api/embed`` and
the legacy ``/api/embeddings``.

One class per LLMType: ``ollama`` (chat, the whole history), ``ollama.generate`` (one prompt
plus ``system``), ``ollama.embed`` and ``ollama.embeddings`` (embeddings only: ``aembed``;
``aask`` raises NotSupportedError). Streams are NDJSON, one JSON object a line, the last with
``done: true`` and the counters. ``base_url`` may end with ``/api`` or not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import httpx2

from harness.config import LLMType
from harness.costs import Usage
from harness.errors import (
    ConfigError,
    NotSupportedError,
    RateLimitError,
    ServerError,
    status_error_class,
)
from harness.messages import content_text
from harness.providers._sdk import (
    error_message,
    in_stream_error,
    parse_retry_after,
    with_transport_note,
)
from harness.providers._wire import NDJSONStream, error_body, format_error, json_answer, post
from harness.providers.base import (
    BaseLLM,
    ChatOptions,
    ChatResponse,
    Embeddings,
    StreamChunk,
    ToolCall,
)
from harness.providers.registry import register_provider
from harness.tokens import count_message_tokens, count_output_tokens
from harness.tools import ResponseFormat

__all__ = [
    "OllamaEmbedLLM",
    "OllamaEmbeddingsLLM",
    "OllamaGenerateLLM",
    "OllamaLLM",
    "ollama_api_url",
    "ollama_durations",
    "ollama_format",
    "ollama_tool_fields",
    "to_ollama_messages",
]

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
_NS_PER_SECOND = 1_000_000_000
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def ollama_api_url(base_url: str | None, endpoint: str) -> str:
    """``{base}/api/{endpoint}`` for a base URL given with or without its ``/api``."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    base = base.removesuffix("/api")
    return f"{base}/api/{endpoint}"


def ollama_durations(data: Mapping[str, Any]) -> dict[str, float]:
    """Ollama's durations (nanoseconds) in seconds, under their own names."""
    return {
        name: int(data[name]) / _NS_PER_SECOND
        for name in _DURATIONS
        if isinstance(data.get(name), (int, float))
    }


def _image_data(url: str, index: int) -> str:
    """Base64 image data for Ollama, which takes neither URLs nor data-URL prefixes."""
    if url.startswith("data:"):
        return url.partition(",")[2]
    if url.startswith(("http://", "https://")):
        raise ValueError(
            f"message {index}: Ollama takes images as base64 data, not URLs ({url[:80]!r}); "
            "pass the image's bytes base64-encoded"
        )
    return url


def _tool_calls(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError as exc:
                raise ValueError(
                    f"message {index}: tool call {call.get('id')!r} has arguments that are not "
                    f"valid JSON ({exc}): {arguments!r}"
                ) from exc
        calls.append({"function": {"name": function.get("name", ""), "arguments": arguments}})
    return calls


def to_ollama_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages as ``/api/chat`` wants them: every message, in order, text as a
    string, images as base64 in ``images``, tool calls with their arguments as objects."""
    converted = []
    names: dict[str, str] = {}  # tool-call id -> function name, for the results' tool_name
    for index, message in enumerate(messages):
        content = message.get("content")
        out: dict[str, Any] = {
            "role": message.get("role", "user"),
            "content": content_text(content),
        }
        if isinstance(content, list):
            images = [
                _image_data(str((part.get("image_url") or {}).get("url", "")), index)
                for part in content
                if isinstance(part, Mapping) and part.get("type") == "image_url"
            ]
            if images:
                out["images"] = images
        if message.get("images"):  # already in Ollama's shape
            out["images"] = list(message["images"])
        calls = _tool_calls(message, index)
        if calls:
            out["tool_calls"] = calls
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping):
                name = (call.get("function") or {}).get("name", "")
                # Ollama's calls have no id: their results name the call by its tool's name.
                names[str(call.get("id") or name)] = name
        if message.get("role") == "tool":
            name = message.get("name") or names.get(str(message.get("tool_call_id") or ""))
            if name:
                out["tool_name"] = name
        converted.append(out)
    return converted


def ollama_format(response_format: ResponseFormat) -> Any:
    """Ollama's ``format``: ``"json"`` for any JSON, else the JSON schema itself."""
    return "json" if response_format.schema is None else response_format.schema


def ollama_tool_fields(options: ChatOptions) -> dict[str, Any]:
    """The ``tools`` and ``format`` of an ``/api/chat`` request.

    Ollama has no tool choice: ``auto`` is what it does, ``none`` sends no tools (the model
    cannot call one); ``required`` and a tool name cannot be enforced and are refused.
    """
    fields: dict[str, Any] = {}
    choice = options.tool_choice
    if choice not in (None, "auto", "none"):
        raise ValueError(
            f"Ollama's /api/chat has no tool_choice: {choice!r} cannot be enforced (use auto "
            "or none)"
        )
    if options.tools and choice != "none":
        fields["tools"] = [tool.to_openai() for tool in options.tools]
    if options.response_format is not None:
        fields["format"] = ollama_format(options.response_format)
    return fields


def _generate_prompt(messages: list[dict[str, Any]]) -> tuple[str, str | None, list[str]]:
    """``/api/generate``'s prompt, system and images for a conversation.

    The system messages become ``system``; one remaining message is the prompt as it is; a
    longer history is written out as a transcript (``User: ...``/``Assistant: ...``) ending
    with the assistant's turn, so no earlier turn is lost.
    """
    chat = to_ollama_messages(messages)
    system = "\n\n".join(m["content"] for m in chat if m["role"] == "system") or None
    turns = [m for m in chat if m["role"] != "system"]
    images = [image for m in turns for image in m.get("images", [])]
    if len(turns) == 1:
        return turns[0]["content"], system, images
    lines = [f"{str(m['role']).capitalize()}: {m['content']}" for m in turns]
    return "\n\n".join([*lines, "Assistant:"]), system, images


@register_provider(LLMType.OLLAMA)
class OllamaLLM(BaseLLM):
    """Chat over Ollama's ``/api/chat``: the whole history, system, images, tools, thinking."""

    provider_name = "ollama"
    endpoint = "chat"
    # Sent in ``options`` (repeat_penalty for repetition_penalty); n, best_of, logprobs and
    # the signing credentials have no Ollama equivalent and are refused.
    supported_fields = frozenset(
        {"top_k", "seed", "stop", "repetition_penalty", "presence_penalty", "frequency_penalty"}
    )

    # -- requests ---------------------------------------------------------------------------

    def _url(self, endpoint: str) -> str:
        return ollama_api_url(self.config.resolved_base_url(self._environ), endpoint)

    def _headers(self) -> dict[str, str]:
        # Ollama needs no key; one configured (a server behind an authenticating proxy) is
        # sent as a bearer token.
        key = self.config.resolved_api_key(self._environ)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _require_model(self) -> str:
        if not self.model:
            raise ConfigError(
                f"no model configured for api_type {self.config.api_type.value!r}",
                source=self.config.source,
                key="model",
            )
        return self.model

    def _options(self) -> dict[str, Any]:
        """The config's sampling settings under Ollama's ``options`` names."""
        config = self.config
        explicit = config.model_fields_set
        options: dict[str, Any] = {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "num_predict": config.max_token,
        }
        if config.top_k:
            options["top_k"] = config.top_k
        if config.seed is not None:
            options["seed"] = config.seed
        if config.stop:
            options["stop"] = [config.stop] if isinstance(config.stop, str) else list(config.stop)
        if config.context_length:
            options["num_ctx"] = config.context_length
        # Ollama's own defaults differ from the config's (repeat_penalty 1.1): only when set.
        if "repetition_penalty" in explicit:
            options["repeat_penalty"] = config.repetition_penalty
        if "presence_penalty" in explicit:
            options["presence_penalty"] = config.presence_penalty
        if "frequency_penalty" in explicit:
            options["frequency_penalty"] = config.frequency_penalty
        return options

    def _body(
        self, messages: list[dict[str, Any]], stream: bool, options: ChatOptions | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._require_model(),
            "messages": to_ollama_messages(messages),
            "stream": stream,
            "options": self._options(),
        }
        if self.config.reasoning:
            body["think"] = True
        if options:
            body.update(ollama_tool_fields(options))
        return body

    async def _post(
        self, endpoint: str, body: dict[str, Any], timeout: float, *, stream: bool
    ) -> httpx2.Response:
        """Send one request; transport failures and HTTP errors become harness errors."""
        response = await post(
            self._http(),
            self._url(endpoint),
            json=body,
            headers=self._headers(),
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
        status = response.status_code
        cls = status_error_class(status)
        kwargs: dict[str, Any] = {
            "provider": self.provider_name,
            "model": self.model,
            "status_code": status,
            "body": body,
        }
        if issubclass(cls, (RateLimitError, ServerError)):
            kwargs["retry_after"] = parse_retry_after(response.headers)
        error = cls(error_message(body, f"HTTP {status} from {response.request.url}"), **kwargs)
        raise with_transport_note(error, response)

    # -- answers ------------------------------------------------------------------------------

    def _usage(
        self, data: Mapping[str, Any], messages: list[dict[str, Any]], answer: str
    ) -> Usage | None:
        """Usage from ``prompt_eval_count``/``eval_count``; a missing one is counted locally
        (Ollama leaves ``prompt_eval_count`` out when the prompt came from its cache), and
        the usage is then flagged estimated. None when both are missing."""
        prompt = data.get("prompt_eval_count")
        completion = data.get("eval_count")
        if prompt is None and completion is None:
            return None
        model = self.model
        estimated = prompt is None or completion is None
        return Usage(
            prompt_tokens=int(
                prompt if prompt is not None else count_message_tokens(messages, model)
            ),
            completion_tokens=int(
                completion if completion is not None else count_output_tokens(answer, model)
            ),
            estimated=estimated,
        )

    @staticmethod
    def _message_parts(data: Mapping[str, Any]) -> tuple[str, str, list[ToolCall]]:
        """Text, thinking and tool calls of one ``/api/chat`` answer or stream line."""
        message = data.get("message") or {}
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments or {}, ensure_ascii=False)
            calls.append(
                ToolCall(id=call.get("id"), name=function.get("name", ""), arguments=arguments)
            )
        return str(message.get("content") or ""), str(message.get("thinking") or ""), calls

    def _parts(self, data: Mapping[str, Any]) -> tuple[str, str, list[ToolCall]]:
        return self._message_parts(data)

    def _request(
        self, messages: list[dict[str, Any]], stream: bool, options: ChatOptions | None = None
    ) -> dict[str, Any]:
        return self._body(messages, stream, options)

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        body = self._request(messages, stream=False, options=options)
        response = await self._post(self.endpoint, body, timeout, stream=False)
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        if "error" in data:
            raise in_stream_error(data, provider=self.provider_name, model=self.model)
        text, thinking, calls = self._parts(data)
        return ChatResponse(
            text=text,
            usage=self._usage(data, messages, text + thinking),
            reasoning_content=thinking or None,
            finish_reason=data.get("done_reason"),
            model=data.get("model"),
            tool_calls=calls,
            raw=data,
            metrics=ollama_durations(data),
        )

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        body = self._request(messages, stream=True, options=options)
        response = await self._post(self.endpoint, body, timeout, stream=True)
        reader = NDJSONStream(response, provider=self.provider_name, model=self.model)
        answer: list[str] = []
        done = False
        try:
            async for data in reader.objects():
                if "error" in data:
                    raise in_stream_error(data, provider=self.provider_name, model=self.model)
                text, thinking, calls = self._parts(data)
                answer.append(text + thinking)
                chunk = StreamChunk(
                    text=text,
                    reasoning=thinking,
                    model=data.get("model"),
                    tool_calls=calls,
                    raw=data,
                )
                if data.get("done"):
                    done = True
                    chunk.finish_reason = data.get("done_reason") or "stop"
                    chunk.usage = self._usage(data, messages, "".join(answer))
                    chunk.metrics = ollama_durations(data)
                # No break at the done line: the body is read to its end, since a recording
                # transport keeps only answers that were read whole.
                yield chunk
        finally:
            await response.aclose()
        if not done:
            raise reader.cut('the stream ended without its "done": true line')

    # -- embeddings -------------------------------------------------------------------------

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        """All ``texts`` in one ``/api/embed`` request."""
        body = {"model": self._require_model(), "input": texts}
        response = await self._post("embed", body, timeout, stream=False)
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        vectors = data.get("embeddings")
        if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
            raise format_error(
                "the answer has no 'embeddings' list of vectors",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            )
        prompt = data.get("prompt_eval_count")
        return Embeddings(
            vectors=[[float(x) for x in v] for v in vectors],
            model=data.get("model") or self.model,
            usage=Usage(prompt_tokens=int(prompt)) if isinstance(prompt, int) else None,
            raw=data,
        )


@register_provider(LLMType.OLLAMA_GENERATE)
class OllamaGenerateLLM(OllamaLLM):
    """Completion over Ollama's ``/api/generate``: ``prompt``, ``system`` and ``images``."""

    endpoint = "generate"

    def _request(
        self, messages: list[dict[str, Any]], stream: bool, options: ChatOptions | None = None
    ) -> dict[str, Any]:
        if options and options.tools:
            raise NotSupportedError(
                "Ollama's /api/generate takes no tools: use api_type 'ollama' (/api/chat)",
                provider=self.provider_name,
                model=self.model,
            )
        prompt, system, images = _generate_prompt(messages)
        body: dict[str, Any] = {
            "model": self._require_model(),
            "prompt": prompt,
            "stream": stream,
            "options": self._options(),
        }
        if system:
            body["system"] = system
        if images:
            body["images"] = images
        if self.config.reasoning:
            body["think"] = True
        if options and options.response_format is not None:
            body["format"] = ollama_format(options.response_format)
        return body

    def _parts(self, data: Mapping[str, Any]) -> tuple[str, str, list[ToolCall]]:
        return str(data.get("response") or ""), str(data.get("thinking") or ""), []


@register_provider(LLMType.OLLAMA_EMBED)
class OllamaEmbedLLM(OllamaLLM):
    """Embeddings over Ollama's ``/api/embed`` (a batch per request); no chat."""

    supported_fields = frozenset()  # no sampling: every vendor field would be dropped

    def _no_chat(self) -> NotSupportedError:
        return NotSupportedError(
            f"api_type {self.config.api_type.value!r} serves embeddings only: call aembed(), "
            "or use api_type 'ollama' (or 'ollama.generate') to chat",
            provider=self.provider_name,
            model=self.model,
        )

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        raise self._no_chat()

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        raise self._no_chat()
        yield StreamChunk()  # pragma: no cover - makes this an async generator


@register_provider(LLMType.OLLAMA_EMBEDDINGS)
class OllamaEmbeddingsLLM(OllamaEmbedLLM):
    """Embeddings over Ollama's legacy ``/api/embeddings`` (one prompt per request); no chat."""

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        """One ``/api/embeddings`` request per text, in order."""
        model = self._require_model()
        vectors: list[list[float]] = []
        bodies: list[dict[str, Any]] = []
        for text in texts:
            response = await self._post(
                "embeddings", {"model": model, "prompt": text}, timeout, stream=False
            )
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
            bodies.append(data)
        return Embeddings(vectors=vectors, model=model, usage=None, raw=bodies)
