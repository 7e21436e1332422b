"""Google's Gemini API (Generative Language REST, ``v1beta``) over httpx2.

``generateContent`` answers one JSON object; ``streamGenerateContent`` streams the same
objects, as server-sent events with ``alt=sse`` (the default here) or as one JSON array when
``alt`` is absent (``stream_format="json"``). Each object's ``usageMetadata`` is cumulative
and provisional, so the last one counts. Parts marked ``thought: true`` are the model's
reasoning, never part of the answer. A prompt blocked by the safety filter (``promptFeedback.
blockReason``) or an answer stopped by it (``finishReason`` SAFETY, PROHIBITED_CONTENT...) is
a ContentFilterError. The API key goes in the ``x-goog-api-key`` header, never in the URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, NoReturn

import httpx2

from harness.config import LLMType
from harness.costs import Usage
from harness.errors import ConfigError, ContentFilterError
from harness.providers._gemini_wire import (
    as_int,
    candidates,
    gemini_error,
    gemini_response_format,
    gemini_tool_fields,
    is_filtered,
    parse_gemini_response,
    parse_gemini_usage,
    to_gemini_contents,
)
from harness.providers._sdk import with_transport_note
from harness.providers._wire import (
    SSEStream,
    StreamReader,
    error_body,
    format_error,
    json_answer,
    post,
)
from harness.providers.base import BaseLLM, ChatOptions, ChatResponse, Embeddings, StreamChunk
from harness.providers.registry import register_provider

__all__ = [
    "GeminiLLM",
    "gemini_error",
    "parse_gemini_response",
    "parse_gemini_usage",
    "to_gemini_contents",
]

DEFAULT_API_VERSION = "v1beta"
StreamFormat = Literal["sse", "json"]
_VERSION_SUFFIX = re.compile(r"/v\d+(alpha|beta)?\d*$")


class _JSONArrayStream(StreamReader):
    """A ``streamGenerateContent`` answer without ``alt=sse``: one JSON array
    (``[{...}, {...}]``) of GenerateContentResponse objects, each read as soon as it is whole;
    a cut array is a StreamError, a malformed one a ResponseFormatError."""

    format_name = "JSON array"
    expected = "a JSON array"
    item = "object"

    async def objects(self) -> AsyncIterator[dict[str, Any]]:
        """The objects of the array, as they arrive."""
        decoder = json.JSONDecoder()
        buffer = ""
        state = "start"  # start -> items -> closed
        async for text in self.texts():
            buffer += text
            while True:
                buffer = buffer.lstrip()
                if not buffer:
                    break
                if state == "start":
                    if buffer[0] != "[":
                        raise self.format_error(
                            "a stream=True request got an answer that is not an SSE stream "
                            "nor a JSON array of GenerateContentResponse objects"
                        )
                    buffer, state = buffer[1:], "items"
                    continue
                if state == "closed":
                    raise self.format_error("text after the end of the JSON array")
                if buffer[0] == ",":
                    buffer = buffer[1:]
                    continue
                if buffer[0] == "]":
                    buffer, state = buffer[1:], "closed"
                    continue
                try:
                    item, end = decoder.raw_decode(buffer)
                except ValueError:
                    break  # an object still arriving
                buffer = buffer[end:]
                self.count += 1
                if not isinstance(item, dict):
                    raise self.format_error(
                        f"element {self.count} of the JSON array is not an object"
                    )
                yield item
        if state != "closed":
            raise self.cut("the JSON array ended without its ']'")


@register_provider(LLMType.GEMINI)
class GeminiLLM(BaseLLM):
    """Gemini models over the Generative Language REST API (``generateContent``).

    ``stream_format`` picks how ``streamGenerateContent`` streams: ``"sse"`` (``alt=sse``)
    or ``"json"`` (one JSON array, no ``alt``); both are read either way.
    """

    provider_name = "gemini"
    # generationConfig has all of these: topK, stopSequences, seed, candidateCount (n),
    # presencePenalty, frequencyPenalty, responseLogprobs/logprobs; api_version is the URL's.
    supported_fields = frozenset(
        {
            "api_version",
            "top_k",
            "stop",
            "seed",
            "n",
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
            "top_logprobs",
        }
    )

    def __init__(self, *args: Any, stream_format: StreamFormat = "sse", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if stream_format not in ("sse", "json"):
            raise ValueError(f"stream_format must be 'sse' or 'json', not {stream_format!r}")
        self.stream_format: StreamFormat = stream_format

    # -- requests ------------------------------------------------------------------------

    def _model_path(self) -> str:
        if not self.model:
            raise ConfigError("no model configured", source=self.config.source, key="model")
        model = self.model
        return model if "/" in model else f"models/{model}"

    def _url(self, method: str) -> str:
        base = (self.config.resolved_base_url(self._environ) or "").rstrip("/")
        if not base:
            raise ConfigError("gemini needs a base_url", source=self.config.source, key="base_url")
        if not _VERSION_SUFFIX.search(base):
            base = f"{base}/{self.config.api_version or DEFAULT_API_VERSION}"
        return f"{base}/{self._model_path()}:{method}"

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key(), "content-type": "application/json"}

    def _generation_config(self) -> dict[str, Any]:
        config = self.config
        generation: dict[str, Any] = {
            "temperature": config.temperature,
            "maxOutputTokens": config.max_token,
        }
        if config.top_p != 1.0:
            generation["topP"] = config.top_p
        if config.top_k:
            generation["topK"] = config.top_k
        if config.stop:
            generation["stopSequences"] = (
                [config.stop] if isinstance(config.stop, str) else config.stop
            )
        if config.seed is not None:
            generation["seed"] = config.seed
        if config.n is not None and config.n > 1:
            generation["candidateCount"] = config.n
        if config.presence_penalty:
            generation["presencePenalty"] = config.presence_penalty
        if config.frequency_penalty:
            generation["frequencyPenalty"] = config.frequency_penalty
        if config.logprobs:
            generation["responseLogprobs"] = True
            if config.top_logprobs is not None:
                generation["logprobs"] = config.top_logprobs
        if config.reasoning:
            generation["thinkingConfig"] = {
                "thinkingBudget": config.reasoning_max_token,
                "includeThoughts": True,
            }
        return generation

    def _body(
        self, messages: list[dict[str, Any]], options: ChatOptions | None = None
    ) -> dict[str, Any]:
        instruction, contents = to_gemini_contents(messages)
        body: dict[str, Any] = {"contents": contents}
        if instruction is not None:
            body["systemInstruction"] = instruction
        body["generationConfig"] = self._generation_config()
        if options:
            body.update(gemini_tool_fields(options))
            if options.response_format is not None:
                body["generationConfig"].update(gemini_response_format(options.response_format))
        return body

    async def _send(
        self, url: str, body: dict[str, Any], timeout: float, *, stream: bool
    ) -> httpx2.Response:
        """Send one request; an HTTP error status is raised as its harness error."""
        response = await post(
            self._http(),
            url,
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
        # A body that cannot be read is a transport failure here (retried as one), not a
        # status error without its message: errors may say text/event-stream and still be JSON.
        body = await error_body(
            response, read_errors="raise", provider=self.provider_name, model=self.model
        )
        error = gemini_error(
            response.status_code,
            body,
            response.headers,
            provider=self.provider_name,
            model=self.model,
        )
        raise with_transport_note(error, response)

    def _check_blocked(self, data: Mapping[str, Any]) -> None:
        """ContentFilterError for a blocked prompt or a candidate the filter stopped."""
        feedback = data.get("promptFeedback")
        block = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
        if block:
            message = feedback.get("blockReasonMessage") if isinstance(feedback, Mapping) else None
            raise ContentFilterError(
                f"the prompt was blocked ({block})" + (f": {message}" if message else ""),
                provider=self.provider_name,
                model=self.model,
                reason=str(block),
                body=dict(data),
            )
        for candidate in data.get("candidates") or []:
            reason = candidate.get("finishReason") if isinstance(candidate, Mapping) else None
            if is_filtered(reason):
                ratings = [
                    r.get("category")
                    for r in candidate.get("safetyRatings") or []
                    if isinstance(r, Mapping) and r.get("blocked")
                ]
                detail = f" ({', '.join(map(str, ratings))})" if ratings else ""
                raise ContentFilterError(
                    f"the answer was stopped by the safety filter: finishReason {reason}{detail}",
                    provider=self.provider_name,
                    model=self.model,
                    reason=str(reason),
                    body=dict(data),
                )

    # -- chat ----------------------------------------------------------------------------

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> ChatResponse:
        url = self._url("generateContent")
        response = await self._send(url, self._body(messages, options), timeout, stream=False)
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        self._check_blocked(data)
        if not isinstance(data.get("candidates"), list):
            raise format_error(
                "the answer has no 'candidates': not a GenerateContentResponse",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            )
        return parse_gemini_response(data)

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float, options: ChatOptions | None = None
    ) -> AsyncIterator[StreamChunk]:
        url = self._url("streamGenerateContent")
        if self.stream_format == "sse":
            url += "?alt=sse"
        response = await self._send(url, self._body(messages, options), timeout, stream=True)
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        reader: StreamReader
        if media == "application/json":
            reader = _JSONArrayStream(response, provider=self.provider_name, model=self.model)
            objects = reader.objects()
        else:
            reader = SSEStream(response, provider=self.provider_name, model=self.model)
            objects = self._sse_objects(reader)
        finished = False
        try:
            async for data in objects:
                self._check_blocked(data)
                for chunk in self._chunks(data):
                    finished = finished or chunk.finish_reason is not None
                    yield chunk
        finally:
            await response.aclose()
        if not finished:
            raise reader.cut("the stream ended without a finishReason")

    async def _sse_objects(self, reader: SSEStream) -> AsyncIterator[dict[str, Any]]:
        async for event in reader.events():
            if not event.data.strip():
                continue
            data = reader.json(event)
            if isinstance(data.get("error"), Mapping):
                raise gemini_error(
                    as_int(data["error"].get("code")) or 500,
                    data,
                    reader.response.headers,
                    provider=self.provider_name,
                    model=self.model,
                )
            yield data

    def _chunks(self, data: Mapping[str, Any]) -> list[StreamChunk]:
        usage = parse_gemini_usage(data.get("usageMetadata"))
        model = data.get("modelVersion") or None
        choices = candidates(data)
        if not choices:
            return [StreamChunk(usage=usage, model=model, raw=dict(data))]
        chunks = []
        for position, choice in enumerate(choices):
            chunks.append(
                StreamChunk(
                    text=choice.text or "",
                    reasoning=choice.reasoning_content or "",
                    usage=usage if position == 0 else None,
                    finish_reason=choice.finish_reason,
                    model=model,
                    tool_calls=choice.tool_calls,
                    raw=dict(data) if position == 0 else None,
                    index=choice.index,
                )
            )
        return chunks

    # -- embeddings ----------------------------------------------------------------------

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        model_path = self._model_path()
        requests: list[dict[str, Any]] = [
            {"model": model_path, "content": {"parts": [{"text": t}]}} for t in texts
        ]
        body: dict[str, Any]
        if len(texts) == 1:
            url, body = self._url("embedContent"), requests[0]
        else:
            url, body = self._url("batchEmbedContents"), {"requests": requests}
        response = await self._send(url, body, timeout, stream=False)
        data = await json_answer(response, provider=self.provider_name, model=self.model)
        items = [data.get("embedding")] if len(texts) == 1 else data.get("embeddings")
        vectors: list[list[float]] = []
        for position, item in enumerate(items if isinstance(items, list) else []):
            values = item.get("values") if isinstance(item, Mapping) else None
            if not isinstance(values, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            ):
                raise format_error(
                    f"embedding {position} has no list of numbers under 'values'",
                    response,
                    response.content,
                    provider=self.provider_name,
                    model=self.model,
                )
            vectors.append([float(v) for v in values])
        if not vectors:
            raise format_error(
                "the answer has no embeddings",
                response,
                response.content,
                provider=self.provider_name,
                model=self.model,
            )
        metadata = data.get("usageMetadata")
        usage = None
        if isinstance(metadata, Mapping) and metadata.get("promptTokenCount") is not None:
            usage = Usage(prompt_tokens=as_int(metadata.get("promptTokenCount")))
        return Embeddings(vectors=vectors, model=self.model, usage=usage, raw=data)
