"""The Gemini API's wire format as plain data: OpenAI-shaped messages to ``contents``, and
GenerateContentResponse objects and Google error envelopes to harness's types.

Everything here works on decoded JSON, so :mod:`harness.providers.gemini` keeps only the HTTP.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from typing import Any

from harness.costs import Usage
from harness.errors import AuthenticationError, RateLimitError, ServerError, status_error_class
from harness.messages import content_text
from harness.providers._sdk import error_message, parse_retry_after
from harness.providers.base import ChatOptions, ChatResponse, Choice, ToolCall
from harness.tools import ResponseFormat

__all__ = [
    "as_int",
    "candidates",
    "gemini_error",
    "gemini_response_format",
    "gemini_tool_fields",
    "is_filtered",
    "is_gemini_schema",
    "parse_gemini_response",
    "parse_gemini_usage",
    "to_gemini_contents",
]

# finishReason / blockReason values that mean the safety machinery stopped the answer.
_FILTERED = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
    }
)


def is_filtered(reason: str | None) -> bool:
    """Whether a finishReason/blockReason means the safety machinery stopped the answer
    (the known values, and any ``*_BLOCKED`` one)."""
    return bool(reason) and (reason in _FILTERED or str(reason).endswith("_BLOCKED"))


# -- requests -----------------------------------------------------------------------------------


def _image_part(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[len("data:") :].split(";", 1)[0] or "image/jpeg"
        return {"inlineData": {"mimeType": mime, "data": data}}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    return {"fileData": {"mimeType": guessed or "image/jpeg", "fileUri": url}}


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, Mapping):
            parts.append({"text": str(part)})
        elif part.get("type") == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            parts.append(_image_part(str((part.get("image_url") or {}).get("url", ""))))
        else:  # already a Gemini part (inlineData, fileData, functionCall...)
            parts.append(dict(part))
    return parts


def _function_calls(message: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError as exc:
            raise ValueError(
                f"message {index}: tool call {call.get('id')!r} has arguments that are not "
                f"valid JSON ({exc}): {arguments!r}"
            ) from exc
        part: dict[str, Any] = {"functionCall": {"name": function.get("name", ""), "args": args}}
        if call.get("id"):
            part["functionCall"]["id"] = call["id"]
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if signature:  # Gemini 3 wants the signature of its own calls back
            part["thoughtSignature"] = signature
        calls.append(part)
    return calls


# The keywords of Gemini's ``Schema`` (a subset of OpenAPI 3.0); a JSON schema that uses only
# these (with one ``type`` per node) is sent in the classic fields, any other schema in the
# JSON-Schema fields (``parametersJsonSchema``, ``responseJsonSchema``).
_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def is_gemini_schema(schema: Any) -> bool:
    """Whether ``schema`` fits Gemini's OpenAPI-subset ``Schema`` as it is."""
    if not isinstance(schema, Mapping):
        return False
    if set(schema) - _SCHEMA_KEYWORDS or not isinstance(schema.get("type", ""), str):
        return False
    properties = schema.get("properties") or {}
    children = [*properties.values(), *(schema.get("anyOf") or [])]
    if "items" in schema:
        children.append(schema["items"])
    return isinstance(properties, Mapping) and all(is_gemini_schema(c) for c in children)


def gemini_tool_fields(options: ChatOptions) -> dict[str, Any]:
    """The ``tools`` (``functionDeclarations``) and ``toolConfig`` of a ``generateContent``
    request. Parameters go in ``parameters`` when they fit Gemini's OpenAPI subset, else in
    ``parametersJsonSchema`` (any JSON Schema); ``tool_choice`` maps to the function-calling
    mode AUTO, NONE or ANY (a tool name: ANY with that one allowed)."""
    fields: dict[str, Any] = {}
    if options.tools:
        declarations = []
        for tool in options.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description:
                declaration["description"] = tool.description
            key = "parameters" if is_gemini_schema(tool.parameters) else "parametersJsonSchema"
            declaration[key] = tool.parameters
            declarations.append(declaration)
        fields["tools"] = [{"functionDeclarations": declarations}]
    choice = options.tool_choice
    if choice is not None:
        modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
        calling: dict[str, Any] = {"mode": modes.get(choice, "ANY")}
        if choice not in modes:
            calling["allowedFunctionNames"] = [choice]
        fields["toolConfig"] = {"functionCallingConfig": calling}
    return fields


def gemini_response_format(response_format: ResponseFormat) -> dict[str, Any]:
    """The ``generationConfig`` fields of a structured answer: JSON output, and the schema as
    ``responseSchema`` when it fits Gemini's OpenAPI subset, else as ``responseJsonSchema``
    (any JSON Schema, e.g. pydantic's with ``$defs`` or ``additionalProperties``)."""
    fields: dict[str, Any] = {"responseMimeType": "application/json"}
    schema = response_format.schema
    if schema is not None:
        key = "responseSchema" if is_gemini_schema(schema) else "responseJsonSchema"
        fields[key] = schema
    return fields


def to_gemini_contents(
    messages: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OpenAI-shaped messages as Gemini's ``systemInstruction`` and ``contents``.

    System messages (wherever they are) become the system instruction; ``assistant`` is
    Gemini's ``model`` role; tool calls become ``functionCall`` parts and ``role: "tool"``
    results ``functionResponse`` parts of a user turn (named after the call they answer).
    Consecutive messages of one role are merged into one turn, as Gemini alternates roles.
    """
    system = [content_text(m.get("content")) for m in messages if m.get("role") == "system"]
    instruction = {"parts": [{"text": "\n\n".join(system)}]} if any(system) else None
    names: dict[str, str] = {}  # tool-call id -> function name
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            continue
        if role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            known = call_id in names
            # A call Gemini sent without an id is answered by its name (see tool_result).
            name = message.get("name") or names.get(call_id) or call_id
            response: dict[str, Any] = {
                "name": name,
                "response": {"content": message.get("content")},
            }
            if call_id and (known or name != call_id):
                response["id"] = call_id
            parts = [{"functionResponse": response}]
            gemini_role = "user"
        elif role == "assistant":
            parts = _parts(message.get("content")) + _function_calls(message, index)
            for call in message.get("tool_calls") or []:
                if call.get("id"):
                    names[str(call["id"])] = (call.get("function") or {}).get("name", "")
            gemini_role = "model"
        else:
            parts = _parts(message.get("content"))
            gemini_role = "user"
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    return instruction, contents


# -- answers ------------------------------------------------------------------------------------


def as_int(value: Any) -> int:
    """An integer field of a JSON answer; 0 when absent or not a number."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_gemini_usage(metadata: Any) -> Usage | None:
    """A Usage from ``usageMetadata``: completion includes the thoughts, prompt the tool-use
    prompt, cached the cached-content tokens."""
    if not isinstance(metadata, Mapping) or not metadata:
        return None
    thoughts = as_int(metadata.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=as_int(metadata.get("promptTokenCount"))
        + as_int(metadata.get("toolUsePromptTokenCount")),
        completion_tokens=as_int(metadata.get("candidatesTokenCount")) + thoughts,
        cached_tokens=as_int(metadata.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _candidate(position: int, candidate: Mapping[str, Any]) -> Choice:
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    content = candidate.get("content") or {}
    for part in content.get("parts") or []:
        if not isinstance(part, Mapping):
            continue
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            signature = part.get("thoughtSignature")
            calls.append(
                ToolCall(
                    id=call.get("id"),
                    name=str(call.get("name", "")),
                    arguments=json.dumps(call.get("args") or {}, ensure_ascii=False),
                    signature=signature if isinstance(signature, str) else None,
                )
            )
    return Choice(
        index=as_int(candidate.get("index", position)),
        text="".join(text),
        reasoning_content="".join(thoughts) or None,
        finish_reason=candidate.get("finishReason"),
        tool_calls=calls,
    )


def candidates(data: Mapping[str, Any]) -> list[Choice]:
    """The candidates of a GenerateContentResponse as Choices, in index order."""
    raw = [c for c in data.get("candidates") or [] if isinstance(c, Mapping)]
    return sorted((_candidate(i, c) for i, c in enumerate(raw)), key=lambda c: c.index)


def parse_gemini_response(data: Mapping[str, Any]) -> ChatResponse:
    """A ChatResponse from one decoded GenerateContentResponse (no safety checks)."""
    choices = candidates(data)
    first = choices[0] if choices else Choice(index=0, text="")
    return ChatResponse(
        text=first.text,
        usage=parse_gemini_usage(data.get("usageMetadata")),
        reasoning_content=first.reasoning_content,
        finish_reason=first.finish_reason,
        model=data.get("modelVersion") or None,
        tool_calls=first.tool_calls,
        raw=dict(data),
        choices=choices if len(choices) > 1 else [],
    )


def _retry_delay(body: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "31s"``)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(float(delay[:-1]), 0.0)
            except ValueError:
                return None
    return None


def _error_reason(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, Mapping) and detail.get("reason"):
            return str(detail["reason"])
    return None


def gemini_error(
    status: int, body: Any, headers: Any, *, provider: str, model: str | None
) -> Exception:
    """The harness error for a Gemini HTTP error answer (Google's ``error`` envelope).

    An invalid key comes back as 400 with reason API_KEY_INVALID: that is an
    AuthenticationError (its ``status_code`` stays 400).
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    error_status = error.get("status") if isinstance(error, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    reason = _error_reason(body)
    cls = status_error_class(status)
    if reason in ("API_KEY_INVALID", "API_KEY_EXPIRED") or error_status == "UNAUTHENTICATED":
        cls = AuthenticationError
    kwargs: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status_code": status,
        "body": body,
        "request_id": headers.get("x-request-id") if headers is not None else None,
        "error_type": str(error_status) if error_status else reason,
        "error_code": str(code) if code is not None else None,
    }
    if issubclass(cls, (RateLimitError, ServerError)):
        kwargs["retry_after"] = parse_retry_after(headers) or _retry_delay(body)
    message = error_message(body, f"HTTP {status}")
    if reason and reason not in message:
        message = f"{message} ({reason})"
    return cls(message, **kwargs)
