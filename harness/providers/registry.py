"""The provider registry: which BaseLLM class serves which LLMType.

Providers register themselves with :func:`register_provider`; third-party packages add
theirs through the ``harness.providers`` entry-point group (each entry point names a module
whose import registers its classes). :data:`LLM_REGISTRY` is a read-only view of the table.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any, TypeVar

from harness.config import LLMConfig, LLMType
from harness.errors import ProviderNotRegisteredError
from harness.providers.base import BaseLLM

__all__ = ["ENTRY_POINT_GROUP", "LLM_REGISTRY", "create_llm_instance", "register_provider"]

logger = logging.getLogger("harness.providers")

ENTRY_POINT_GROUP = "harness.providers"

_providers: dict[LLMType, type[BaseLLM]] = {}
LLM_REGISTRY: Mapping[LLMType, type[BaseLLM]] = MappingProxyType(_providers)
_entry_points_loaded = False

_T = TypeVar("_T", bound=type[BaseLLM])


def register_provider(keys: LLMType | str | Iterable[LLMType | str]) -> Callable[[_T], _T]:
    """Class decorator: serve these LLMTypes with the decorated BaseLLM subclass."""
    if isinstance(keys, (LLMType, str)):
        keys = [keys]
    types = [LLMType(k) for k in keys]

    def decorator(cls: _T) -> _T:
        for llm_type in types:
            existing = _providers.get(llm_type)
            if existing is not None and existing is not cls:
                logger.info(
                    "provider for %s replaced: %s -> %s",
                    llm_type.value,
                    existing.__name__,
                    cls.__name__,
                )
            _providers[llm_type] = cls
        return cls

    return decorator


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception:  # a broken plugin must not break the built-in providers
            logger.exception("could not load harness provider plugin %r", ep.value)


def provider_class(api_type: LLMType | str) -> type[BaseLLM]:
    """The class registered for ``api_type``; a clear error when there is none."""
    llm_type = LLMType(api_type)
    if llm_type not in _providers:
        _load_entry_points()
    try:
        return _providers[llm_type]
    except KeyError:
        registered = sorted(t.value for t in _providers)
        close = difflib.get_close_matches(llm_type.value, registered, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ProviderNotRegisteredError(
            f"no provider is registered for api_type {llm_type.value!r}{hint}; "
            f"registered: {', '.join(registered)}",
            key="api_type",
        ) from None


def create_llm_instance(config: LLMConfig, **kwargs: Any) -> BaseLLM:
    """A provider instance for ``config``; keyword arguments go to the provider's constructor.

    As in the seed, ``use_system_prompt=False`` in the config switches the system prompt off
    even for providers that use one by default (o1-style models).
    """
    llm = provider_class(config.api_type)(config, **kwargs)
    if llm.use_system_prompt and not config.use_system_prompt:
        llm.use_system_prompt = False
    return llm
