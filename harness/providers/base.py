"""BaseLLM: the one async interface every provider implements.

A provider implements two methods, ``_achat_completion`` (one request, one ``ChatResponse``)
and ``_achat_completion_stream`` (an async iterator of ``StreamChunk``), and ``_aembed`` when
its API has embeddings; everything else (message building, compression, retries, cost
accounting, batching) lives here once.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal, TypeVar, overload

import httpx2
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from harness import _clock
from harness import messages as msgs
from harness._http import AsyncTransport, build_async_client, reaches_upstream
from harness.compression import compress_messages
from harness.config import LLMConfig
from harness.costs import CostManager, Costs, ModelPrice, Reservation, Usage
from harness.errors import (
    APIConnectionError,
    BatchError,
    ConfigError,
    HarnessError,
    NotSupportedError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    StreamError,
    StructuredOutputError,
)
from harness.providers.fields import VENDOR_FIELDS, config_sets, refuse_unsupported
from harness.providers.results import (
    ChatOptions,
    ChatResponse,
    Choice,
    Embeddings,
    Reply,
    StreamChunk,
    StreamCollector,
    ToolCall,
)
from harness.tokens import (
    context_window,
    count_message_tokens,
    count_output_tokens,
    count_text_tokens,
)
from harness.tools import ToolLike, normalize_tool_choice, response_format_of, tools_of

__all__ = [
    "USE_CONFIG_TIMEOUT",
    "VENDOR_FIELDS",
    "BaseLLM",
    "ChatOptions",
    "ChatResponse",
    "Choice",
    "Embeddings",
    "Reply",
    "StreamChunk",
    "ToolCall",
    "config_sets",
    "is_retryable",
]

logger = logging.getLogger("harness.providers")

USE_CONFIG_TIMEOUT = 0  # a timeout of 0 means "the config's timeout"
_PROMPT_SHARE = 0.8  # of the context window, at most, for the prompt after compression

Sleep = Callable[[float], Awaitable[None]]
_R = TypeVar("_R")
_L = TypeVar("_L", bound="BaseLLM")


INCOMPLETE_STREAM = "incomplete_stream"  # StreamError.code of a stream cut before its end


def is_retryable(exc: BaseException) -> bool:
    """Connection errors, timeouts, 429, 5xx and a stream that ended before its end marker
    (cut as surely as by a reset) are worth another attempt; nothing else is."""
    if isinstance(exc, StreamError):
        return bool(exc.code == INCOMPLETE_STREAM)
    return isinstance(exc, (APIConnectionError, RateLimitError, ServerError))


def _has_content(chunk: StreamChunk) -> bool:
    return bool(chunk.text or chunk.reasoning or chunk.tool_calls or chunk.finish_reason)


class BaseLLM(ABC):
    """The async interface over every provider.

    Seams (each a constructor argument with a production default): ``http_client`` or
    ``transport`` (record/replay), ``cost_manager``, ``sleep`` (retry waits) and ``environ``
    (where API keys are looked up).
    """

    provider_name: str = "base"  # names the provider in errors and logs
    system_prompt: str = "You are a helpful assistant."
    use_system_prompt: bool = True
    # The VENDOR_FIELDS this provider honours; None: not declared, nothing is checked.
    supported_fields: ClassVar[frozenset[str] | None] = None

    def __init__(
        self,
        config: LLMConfig,
        *,
        http_client: httpx2.AsyncClient | None = None,
        transport: AsyncTransport | None = None,
        cost_manager: CostManager | None = None,
        sleep: Sleep | None = None,
        environ: dict[str, str] | None = None,
        allow_missing_key: bool | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        self.config = config
        self.cost_manager = cost_manager if cost_manager is not None else CostManager()
        self.model: str | None = config.model
        self._http_client = http_client
        self._transport = transport
        self._owned_clients: list[httpx2.AsyncClient] = []
        self._raw_client: httpx2.AsyncClient | None = None  # see _http()
        # None: decided per request from the transport (a client injected for TLS or proxy
        # settings goes live and needs the real key).
        self._allow_missing_key = allow_missing_key
        self._sleep: Sleep = sleep or _clock.async_sleep  # the plugin's clock in tests
        self._environ = environ
        self._check_config_fields()

    # -- config fields --------------------------------------------------------------------

    def _supported_fields(self) -> frozenset[str] | None:
        """The VENDOR_FIELDS this instance honours (override when it depends on api_type)."""
        return self.supported_fields

    def _check_config_fields(self) -> None:
        """A ConfigError for a vendor-specific field the config sets but this provider would
        silently drop; it names the field and the provider."""
        supported = self._supported_fields()
        if supported is not None:
            refuse_unsupported(self.config, supported, type(self).__name__)

    @property
    def pricing_plan(self) -> str | None:
        """The price row this instance bills: the config's ``pricing_plan``, else the model."""
        return self.config.pricing_plan or self.model

    # -- HTTP and credentials -------------------------------------------------------------

    def _build_http_client(self) -> httpx2.AsyncClient:
        """The injected client, or a new one over the injected transport (or the network)."""
        if self._http_client is not None:
            return self._http_client
        client = build_async_client(
            timeout=self.config.timeout, proxy=self.config.proxy, transport=self._transport
        )
        self._owned_clients.append(client)
        return client

    def _http(self) -> httpx2.AsyncClient:
        """The instance's HTTP client for providers that speak raw HTTP: built once and
        reused (its connections too) until :meth:`aclose`."""
        if self._http_client is not None:
            return self._http_client
        if self._raw_client is None:
            self._raw_client = self._build_http_client()
        return self._raw_client

    async def aclose(self) -> None:
        """Close the HTTP connections this instance opened (an injected client is the caller's).

        The instance stays usable: a later call opens new connections.
        """
        self._raw_client = None
        clients, self._owned_clients = self._owned_clients, []
        self._forget_clients()
        for client in clients:
            await client.aclose()

    def _forget_clients(self) -> None:
        """Drop SDK clients built over closed connections (providers that cache one override)."""
        return None  # nothing cached here

    async def __aenter__(self: _L) -> _L:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _api_key(self) -> str:
        """The key for a request about to be made.

        A missing key is a MissingAPIKeyError naming the variable to set, unless missing keys
        are allowed (by default: when a transport is injected that does not reach the upstream,
        i.e. replay or fakes), in which case a placeholder is sent, so replayed tests need no
        secrets. A transport that records or goes live says so with ``reaches_upstream``.
        """
        allowed = self._allow_missing_key
        if allowed is None:
            allowed = self._transport is not None and not reaches_upstream(self._transport)
        if not allowed:
            return self.config.require_api_key(self._environ)
        return self.config.resolved_api_key(self._environ) or "replay-no-key"

    # -- message building (the seed's helpers) ----------------------------------------------

    def _user_msg(self, msg: str, images: str | Sequence[str] | None = None) -> dict[str, Any]:
        return msgs.user_msg(msg, images)

    def _assistant_msg(self, msg: str) -> dict[str, Any]:
        return msgs.assistant_msg(msg)

    def _system_msg(self, msg: str) -> dict[str, Any]:
        return msgs.system_msg(msg)

    def _system_msgs(self, texts: Iterable[str]) -> list[dict[str, Any]]:
        return [msgs.system_msg(t) for t in texts]

    def _default_system_msg(self) -> dict[str, Any]:
        return msgs.system_msg(self.system_prompt)

    def format_msg(
        self, messages: msgs.MessageLike | Iterable[msgs.MessageLike]
    ) -> list[dict[str, Any]]:
        """Normalise strings, dicts or role/content objects into message dicts."""
        return msgs.format_msgs(messages)

    def mask_base64_data(self, msg: Any) -> Any:
        """A copy of ``msg`` with base64 image data replaced, for logging."""
        return msgs.mask_base64_data(msg)

    def compress_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages cut down to the context window by the config's ``compress_type``.

        The window is the config's ``context_length``, else the model's from harness's table;
        the prompt gets 80% of it, and never so much that ``max_token`` of answer cannot follow.
        """
        window = context_window(self.model, override=self.config.context_length)
        budget = int(window * _PROMPT_SHARE)
        if self.config.max_token < window:  # else max_token cannot be what bounds the answer
            budget = min(budget, window - self.config.max_token)
        return compress_messages(
            messages, self.config.compress_type, max_token=budget, threshold=1.0, model=self.model
        )

    def get_timeout(self, timeout: float | None) -> float:
        """The call's timeout, or the config's."""
        return timeout or self.config.timeout

    # -- the public interface ----------------------------------------------------------------

    async def aask(
        self,
        msg: str | list[dict[str, Any]],
        system_msgs: Sequence[str] | None = None,
        format_msgs: Sequence[dict[str, Any]] | None = None,
        images: str | Sequence[str] | None = None,
        timeout: float = USE_CONFIG_TIMEOUT,
        stream: bool | None = None,
        *,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
    ) -> Reply:
        """Ask one question; the answer is a ``str`` (a :class:`Reply` with the call's facts).

        System messages come first (``system_msgs``, or the default system prompt; none when
        ``use_system_prompt`` is off), then ``format_msgs``, then ``msg`` (a string, sent as a
        user message with ``images``, or a list of message dicts). ``tools``, ``tool_choice``
        and ``response_format`` are as for :meth:`acompletion`; with a ``response_format`` the
        Reply's ``parsed`` is the validated answer.
        """
        message = self._build_messages(msg, system_msgs, format_msgs, images)
        if stream is None:
            stream = self.config.stream
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("aask messages: %s", [self.mask_base64_data(m) for m in message])
        response = await self.acompletion(
            message,
            stream=stream,
            timeout=timeout,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
        )
        return Reply(response)

    def _build_messages(
        self,
        msg: str | list[dict[str, Any]],
        system_msgs: Sequence[str] | None,
        format_msgs: Sequence[dict[str, Any]] | None,
        images: str | Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        if not self.use_system_prompt:
            message: list[dict[str, Any]] = []
        elif system_msgs:
            message = self._system_msgs(system_msgs)
        else:
            message = [self._default_system_msg()]
        if format_msgs:
            message.extend(format_msgs)
        if isinstance(msg, str):
            message.append(self._user_msg(msg, images=images))
        else:
            message.extend(msg)
        return message

    async def aask_batch(self, msgs: Sequence[str], timeout: float = USE_CONFIG_TIMEOUT) -> str:
        """Ask in turn, each prompt seeing the earlier turns; the replies joined by newlines."""
        context: list[dict[str, Any]] = []
        replies: list[str] = []
        for prompt in msgs:
            context.append(self._user_msg(prompt))
            text = await self.acompletion_text(context, timeout=timeout)
            context.append(self._assistant_msg(text))
            replies.append(text)
        return "\n".join(replies)

    @overload
    async def aask_batch_parallel(
        self,
        msgs: Sequence[str],
        max_concurrency: int = 5,
        *,
        return_exceptions: Literal[False] = False,
        timeout: float = USE_CONFIG_TIMEOUT,
    ) -> list[str]: ...

    @overload
    async def aask_batch_parallel(
        self,
        msgs: Sequence[str],
        max_concurrency: int = 5,
        *,
        return_exceptions: Literal[True],
        timeout: float = USE_CONFIG_TIMEOUT,
    ) -> list[str | BaseException]: ...

    async def aask_batch_parallel(
        self,
        msgs: Sequence[str],
        max_concurrency: int = 5,
        *,
        return_exceptions: bool = False,
        timeout: float = USE_CONFIG_TIMEOUT,
    ) -> list[str] | list[str | BaseException]:
        """Independent prompts, at most ``max_concurrency`` at a time, answers in input order.

        One failure does not lose the others: every prompt runs to the end, then a
        :class:`BatchError` carries the successful replies and each failure (or, with
        ``return_exceptions=True``, the exceptions take the failed prompts' places).
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        semaphore = asyncio.Semaphore(max_concurrency)

        async def one(prompt: str) -> str:
            async with semaphore:
                return await self.aask(prompt, timeout=timeout)

        outcomes = await asyncio.gather(*(one(p) for p in msgs), return_exceptions=True)
        for outcome in outcomes:
            # Cancellation and interpreter exits are not a prompt's failure: let them through.
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
        if return_exceptions:
            return list(outcomes)
        errors = {i: o for i, o in enumerate(outcomes) if isinstance(o, BaseException)}
        if errors:
            results = [None if isinstance(o, BaseException) else o for o in outcomes]
            raise BatchError(results, errors)
        return [o for o in outcomes if isinstance(o, str)]

    async def acompletion_text(
        self,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float = USE_CONFIG_TIMEOUT,
    ) -> str:
        """The text of one completion (empty when the model returned no text)."""
        response = await self.acompletion(messages, stream=stream, timeout=timeout)
        return response.text or ""

    async def acompletion(
        self,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float = USE_CONFIG_TIMEOUT,
        *,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
    ) -> ChatResponse:
        """One chat completion with compression, a budget check, retries and cost accounting.

        ``tools`` (harness Tools, OpenAI-style function dicts, functions or pydantic model
        classes) are offered to the model, ``tool_choice`` (``auto``, ``none``, ``required``
        or a tool name) says whether it must call one; ``response_format`` (a pydantic model
        class, a JSON-schema dict or ``"json"``) asks for a structured answer, validated into
        ``parsed`` (StructuredOutputError, with the raw text, when it is not valid). An answer
        that calls tools is not parsed (``parsed`` stays None): the structured answer is the
        loop's last turn.

        With a ``max_budget`` on the cost manager, a request whose projected cost (its prompt
        plus ``n`` x ``max_token`` of output) would pass the budget, or whose model has no
        price, raises NoMoneyException unsent.
        """
        options = self._chat_options(tools, tool_choice, response_format)
        prepared = self.compress_messages(messages)
        effective_timeout = self.get_timeout(timeout)
        price, reservation = self._reserve_budget(prepared, options)
        extra: dict[str, Any] = {"options": options} if options else {}

        async def attempt() -> ChatResponse:
            if stream:
                return await self._collect_stream(prepared, effective_timeout, **extra)
            return await self._achat_completion(prepared, timeout=effective_timeout, **extra)

        try:
            response = await self._with_retries(attempt)
        except BaseException:
            self.cost_manager.release(reservation)
            raise
        self._account(prepared, response, price, reservation, options)
        # An answer that calls tools is a step of the loop, not yet the structured answer.
        if options.response_format is not None and not response.tool_calls:
            self._parse_structured(response, options)
        return response

    def _chat_options(self, tools: Any, tool_choice: Any, response_format: Any) -> ChatOptions:
        """The request's tools, tool choice and response format, checked and normalised."""
        offered = tools_of(tools)
        return ChatOptions(
            tools=offered,
            tool_choice=normalize_tool_choice(tool_choice, offered),
            response_format=response_format_of(response_format),
        )

    def _parse_structured(self, response: ChatResponse, options: ChatOptions) -> None:
        """Set ``response.parsed`` from the answer's text, or raise StructuredOutputError."""
        assert options.response_format is not None
        text = response.text or ""
        try:
            response.parsed = options.response_format.parse(text)
        except ValueError as exc:
            raise StructuredOutputError(
                str(exc), raw=text, provider=self.provider_name, model=self.model
            ) from exc

    async def astream(
        self,
        msg: str | list[dict[str, Any]],
        system_msgs: Sequence[str] | None = None,
        format_msgs: Sequence[dict[str, Any]] | None = None,
        images: str | Sequence[str] | None = None,
        timeout: float = USE_CONFIG_TIMEOUT,
        *,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
    ) -> AsyncIterator[StreamChunk]:
        """Stream one answer chunk by chunk, as the provider sends it.

        A failure before the first text (or reasoning, tool call, finish) is retried; after
        it, the error reaches the caller (the caller has already seen part of the answer).
        Costs are counted when the stream ends, however it ends: a stream the caller leaves
        early is billed for what it got. Tool calls arrive whole, in a chunk at the end; a
        ``response_format`` shapes the streamed text but is not validated (join the text and
        parse it, or use ``aask``).
        """
        options = self._chat_options(tools, tool_choice, response_format)
        message = self._build_messages(msg, system_msgs, format_msgs, images)
        prepared = self.compress_messages(message)
        effective_timeout = self.get_timeout(timeout)
        price, reservation = self._reserve_budget(prepared, options)
        extra: dict[str, Any] = {"options": options} if options else {}

        async def first() -> tuple[list[StreamChunk], AsyncIterator[StreamChunk]]:
            # Chunks without content (a role, usage so far) are held back with the first one
            # that has some, so a stream that fails before any content can still be retried.
            iterator = aiter(
                self._achat_completion_stream(prepared, timeout=effective_timeout, **extra)
            )
            held: list[StreamChunk] = []
            try:
                while True:
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        return held, iterator
                    held.append(chunk)
                    if _has_content(chunk):
                        return held, iterator
            except BaseException:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
                raise

        collected = StreamCollector()
        opened: AsyncIterator[StreamChunk] | None = None
        try:
            held, iterator = await self._with_retries(first)
            opened = iterator
            for chunk in held:
                collected.add(chunk)
                yield chunk
            if held:  # else the stream has ended
                async for chunk in iterator:
                    collected.add(chunk)
                    yield chunk
        finally:
            # Also when the caller stops early or the stream breaks: close the provider's
            # stream now, and bill what was answered (estimated if the provider never said).
            aclose = getattr(opened, "aclose", None)
            if aclose is not None:
                await aclose()
            if collected.chunks:
                self._account(prepared, collected.response(), price, reservation, options)
            else:
                self.cost_manager.release(reservation)

    async def aembed(
        self, texts: str | Sequence[str], timeout: float = USE_CONFIG_TIMEOUT
    ) -> Embeddings:
        """Embedding vectors of ``texts`` (one string, or many in one request) with the
        config's ``model``, under the same retries, budget and cost accounting as chat.

        Providers whose API has no embeddings raise NotSupportedError (before any request).
        Usage counts prompt tokens only; when the provider reports none it is counted locally
        (flagged estimated).
        """
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch:
            raise ValueError("aembed needs at least one text")
        for index, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(f"aembed: text {index} is a {type(text).__name__}, not a str")
        effective_timeout = self.get_timeout(timeout)
        price = (
            ModelPrice.from_mapping(self.config.price.model_dump()) if self.config.price else None
        )
        reservation = None
        if self.cost_manager.max_budget is not None:
            prompt = sum(count_text_tokens(t, self.model) for t in batch)
            reservation = self.cost_manager.reserve(
                self.pricing_plan or self.model or "unknown", prompt, 0, price=price
            )

        async def attempt() -> Embeddings:
            return await self._aembed(batch, effective_timeout)

        try:
            result = await self._with_retries(attempt)
        except BaseException:
            self.cost_manager.release(reservation)
            raise
        if len(result.vectors) != len(batch):
            self.cost_manager.release(reservation)
            raise ResponseFormatError(
                f"asked for {len(batch)} embeddings, got {len(result.vectors)}",
                provider=self.provider_name,
                model=self.model,
            )
        if result.usage is None:
            tokens = [count_text_tokens(t, result.model or self.model) for t in batch]
            result.usage = Usage(
                prompt_tokens=sum(tokens), estimated=any(t.estimated for t in tokens)
            )
        if not self._bills():
            self.cost_manager.release(reservation)
        else:
            model = self.pricing_plan or result.model or self.model or "unknown"
            self.cost_manager.update(result.usage, model, price=price, reservation=reservation)
        return result

    def get_costs(self) -> Costs:
        """Totals of every request made through this instance's cost manager."""
        return self.cost_manager.get_costs()

    # -- what a provider implements ------------------------------------------------------------

    # A provider that supports tools or structured output takes an ``options: ChatOptions``
    # keyword in both methods; it is passed only when the request sets some, so providers
    # without it keep working for plain requests.

    @abstractmethod
    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> ChatResponse:
        """Send one non-streaming request and parse the answer."""

    @abstractmethod
    def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[StreamChunk]:
        """Send one streaming request; yield its increments as they arrive."""

    async def _aembed(self, texts: list[str], timeout: float) -> Embeddings:
        """Send one embeddings request for ``texts`` (non-empty); providers with an
        embeddings API override this."""
        raise NotSupportedError(
            f"{type(self).__name__} ({self.config.api_type.value}) has no embeddings API",
            provider=self.provider_name,
            model=self.model,
        )

    # -- internals ----------------------------------------------------------------------------

    async def _collect_stream(
        self, messages: list[dict[str, Any]], timeout: float, **extra: Any
    ) -> ChatResponse:
        collected = StreamCollector()
        async for chunk in self._achat_completion_stream(messages, timeout=timeout, **extra):
            collected.add(chunk)
        return collected.response()

    async def _with_retries(self, call: Callable[[], Awaitable[_R]]) -> _R:
        """Run ``call`` under the one retry policy (tenacity), honouring Retry-After."""
        config = self.config

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = getattr(exc, "retry_after", None)
            if isinstance(hinted, (int, float)) and hinted >= 0:
                return float(min(hinted, config.retry_max_wait))
            backoff = config.retry_min_wait * (2 ** (state.attempt_number - 1))
            return float(min(backoff, config.retry_max_wait))

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "%s %s: attempt %d failed (%r); retrying in %.1fs",
                self.provider_name,
                self.model,
                state.attempt_number,
                exc,
                state.upcoming_sleep,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(config.max_retries + 1),
            wait=wait,
            sleep=self._sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        failures: list[Exception] = []

        async def tracked() -> _R:
            try:
                return await call()
            except Exception as exc:
                failures.append(exc)
                raise

        try:
            return await retrying(tracked)
        except HarnessError as exc:
            earlier = failures[-2] if len(failures) > 1 and failures[-1] is exc else None
            if isinstance(earlier, StreamError) and not isinstance(
                exc, (ProviderError, ConfigError)
            ):
                # A retry of a cut stream that the transport could not serve (a replay of an
                # old cut recording has nothing more to give): the cut is the user's problem,
                # the transport's error its context.
                raise earlier from exc
            raise

    def _bills(self) -> bool:
        """Whether calls are billed to the cost manager: with ``calc_usage``, and always
        under a budget (``calc_usage=False`` does not switch a budget off)."""
        return self.config.calc_usage or self.cost_manager.max_budget is not None

    def _reserve_budget(
        self, prepared: list[dict[str, Any]], options: ChatOptions | None = None
    ) -> tuple[ModelPrice | None, Reservation | None]:
        """The config's price override, and a hold on the budget for the projected cost."""
        price = (
            ModelPrice.from_mapping(self.config.price.model_dump()) if self.config.price else None
        )
        if self.cost_manager.max_budget is None:
            return price, None
        reservation = self.cost_manager.reserve(
            self.pricing_plan or self.model or "unknown",
            count_message_tokens(prepared, self.model, **_tool_count_args(options)),
            self.config.max_token * max(self.config.n or 1, 1),  # n answers, each up to max_token
            price=price,
        )
        return price, reservation

    def _account(
        self,
        prepared: list[dict[str, Any]],
        response: ChatResponse,
        price: ModelPrice | None,
        reservation: Reservation | None,
        options: ChatOptions | None = None,
    ) -> None:
        """Fill in usage the provider did not report, then bill the call."""
        if response.usage is None:
            response.usage = self._estimate_usage(prepared, response, options)
        self._update_costs(response, price=price, reservation=reservation)

    def _estimate_usage(
        self,
        messages: list[dict[str, Any]],
        response: ChatResponse,
        options: ChatOptions | None = None,
    ) -> Usage:
        """Usage counted locally when the provider reported none (always flagged estimated:
        hidden reasoning is not seen; exact text counts for OpenAI models)."""
        model = response.model or self.model
        reasoning = count_output_tokens(response.reasoning_content or "", model)
        return Usage(
            prompt_tokens=count_message_tokens(messages, model, **_tool_count_args(options)),
            completion_tokens=count_output_tokens(response.text or "", model) + reasoning,
            reasoning_tokens=reasoning,
            estimated=True,
        )

    def _update_costs(
        self,
        response: ChatResponse,
        *,
        price: ModelPrice | None = None,
        reservation: Reservation | None = None,
    ) -> None:
        if not self._bills() or response.usage is None:
            self.cost_manager.release(reservation)
            return
        model = self.pricing_plan or response.model or self.model or "unknown"
        self.cost_manager.update(response.usage, model, price=price, reservation=reservation)


def _tool_count_args(options: ChatOptions | None) -> dict[str, Any]:
    """The offered tools (as OpenAI function dicts) and tool choice, for token counting."""
    if not options or not options.tools:
        return {}
    return {
        "tools": [tool.to_openai() for tool in options.tools],
        "tool_choice": options.tool_choice,
    }
