"""Vendor-specific LLMConfig fields: which ones a provider must declare (``supported_fields``)
and how a config that sets one the provider would drop is refused."""

from __future__ import annotations

from harness.config import LLMConfig
from harness.errors import ConfigError

__all__ = ["VENDOR_FIELDS", "config_sets", "refuse_unsupported"]

VENDOR_FIELDS: tuple[str, ...] = (
    "endpoint",
    "api_version",
    "access_key",
    "secret_key",
    "session_token",
    "region_name",
    "app_id",
    "api_secret",
    "domain",
    "top_k",
    "repetition_penalty",
    "best_of",
    "n",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
)
"""LLMConfig fields that only some vendors have: a provider declares the ones it honours
(``supported_fields``), and a config that sets any other one is refused at construction."""

_FIELD_HINTS = {
    "endpoint": "endpoint is read by azure and bedrock; use base_url",
    "api_version": "api_version is read by azure and gemini only",
    "best_of": "best_of belongs to the legacy Completions API; use n for several answers",
    "access_key": "request-signing credentials are used by bedrock only",
    "secret_key": "request-signing credentials are used by bedrock only",
    "session_token": "request-signing credentials are used by bedrock only",
    "region_name": "region_name is used by bedrock only",
    "app_id": "app_id/api_secret belong to Spark's websocket API; its OpenAI-compatible "
    "endpoint takes the APIPassword as api_key",
    "api_secret": "app_id/api_secret belong to Spark's websocket API; its OpenAI-compatible "
    "endpoint takes the APIPassword as api_key",
    "domain": "domain names the model of Spark only; use model",
    "n": "this API returns one answer per request; call it n times",
}


def config_sets(config: LLMConfig, name: str) -> bool:
    """Whether ``config`` gives field ``name`` a value that asks for something (not None,
    not the default, and for ``n`` more than one answer)."""
    value = getattr(config, name)
    if value is None or value == [] or value == "":
        return False
    if name == "n":
        return bool(value > 1)
    default = LLMConfig.model_fields[name].default
    return bool(value != default)


def refuse_unsupported(config: LLMConfig, supported: frozenset[str], provider_class: str) -> None:
    """A ConfigError naming the first VENDOR_FIELDS entry ``config`` sets outside ``supported``
    (the field, the api_type and the provider class), with what to do instead."""
    for name in VENDOR_FIELDS:
        if name in supported or not config_sets(config, name):
            continue
        hint = _FIELD_HINTS.get(name)
        raise ConfigError(
            f"{name}={getattr(config, name)!r} is not supported by api_type "
            f"{config.api_type.value!r} ({provider_class})"
            + (f": {hint}" if hint else "; remove it from the config"),
            source=config.source,
            key=name,
        )
