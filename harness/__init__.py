"""harness: test and evaluate LLM applications.

One async interface over many providers (``aask``), configured by pydantic models and YAML;
record/replay cassettes, a pytest plugin and eval suites.
"""

# Public names are imported on first use (PEP 562), so ``import harness`` stays cheap.

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config import CompressType, LLMConfig, LLMType, ModelsConfig, PriceConfig
    from harness.costs import CostManager, CostReporter, Costs, ModelPrice, PriceTable, Usage
    from harness.errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BatchError,
        BudgetExceeded,
        ConfigError,
        ContentFilterError,
        HarnessError,
        MissingAPIKeyError,
        NetworkBlockedError,
        NoMoneyException,
        NotFoundError,
        NotSupportedError,
        PermissionDeniedError,
        ProviderError,
        ProviderNotRegisteredError,
        RateLimitError,
        ResponseFormatError,
        ServerError,
        StreamError,
        StructuredOutputError,
        TokenizerDataError,
        UnknownLLMTypeError,
    )
    from harness.providers import (
        LLM_REGISTRY,
        AnthropicLLM,
        AzureOpenAILLM,
        BaseLLM,
        BedrockLLM,
        ChatResponse,
        Choice,
        Embeddings,
        FakeLLM,
        GeminiLLM,
        OllamaLLM,
        OpenAILLM,
        Reply,
        StreamChunk,
        ToolCall,
        create_llm_instance,
        register_provider,
    )
    from harness.providers.fake import function_model, schema_model
    from harness.tools import Tool

try:
    __version__ = version("harness-llm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    "CompressType": "harness.config",
    "LLMConfig": "harness.config",
    "LLMType": "harness.config",
    "ModelsConfig": "harness.config",
    "PriceConfig": "harness.config",
    "CostManager": "harness.costs",
    "CostReporter": "harness.costs",
    "Costs": "harness.costs",
    "ModelPrice": "harness.costs",
    "PriceTable": "harness.costs",
    "Usage": "harness.costs",
    "APIConnectionError": "harness.errors",
    "APIStatusError": "harness.errors",
    "APITimeoutError": "harness.errors",
    "AuthenticationError": "harness.errors",
    "BadRequestError": "harness.errors",
    "BatchError": "harness.errors",
    "BudgetExceeded": "harness.errors",
    "ConfigError": "harness.errors",
    "ContentFilterError": "harness.errors",
    "HarnessError": "harness.errors",
    "MissingAPIKeyError": "harness.errors",
    "NetworkBlockedError": "harness.errors",
    "NoMoneyException": "harness.errors",
    "NotFoundError": "harness.errors",
    "NotSupportedError": "harness.errors",
    "PermissionDeniedError": "harness.errors",
    "ProviderError": "harness.errors",
    "ProviderNotRegisteredError": "harness.errors",
    "RateLimitError": "harness.errors",
    "ResponseFormatError": "harness.errors",
    "ServerError": "harness.errors",
    "StreamError": "harness.errors",
    "StructuredOutputError": "harness.errors",
    "TokenizerDataError": "harness.errors",
    "UnknownLLMTypeError": "harness.errors",
    "LLM_REGISTRY": "harness.providers",
    "AnthropicLLM": "harness.providers",
    "AzureOpenAILLM": "harness.providers",
    "BaseLLM": "harness.providers",
    "BedrockLLM": "harness.providers",
    "ChatResponse": "harness.providers",
    "Choice": "harness.providers",
    "Embeddings": "harness.providers",
    "FakeLLM": "harness.providers",
    "GeminiLLM": "harness.providers",
    "OllamaLLM": "harness.providers",
    "OpenAILLM": "harness.providers",
    "Reply": "harness.providers",
    "StreamChunk": "harness.providers",
    "ToolCall": "harness.providers",
    "create_llm_instance": "harness.providers",
    "register_provider": "harness.providers",
    "function_model": "harness.providers.fake",
    "schema_model": "harness.providers.fake",
    "Tool": "harness.tools",
}

__all__ = [
    "LLM_REGISTRY",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AnthropicLLM",
    "AuthenticationError",
    "AzureOpenAILLM",
    "BadRequestError",
    "BaseLLM",
    "BatchError",
    "BedrockLLM",
    "BudgetExceeded",
    "ChatResponse",
    "Choice",
    "CompressType",
    "ConfigError",
    "ContentFilterError",
    "CostManager",
    "CostReporter",
    "Costs",
    "Embeddings",
    "FakeLLM",
    "GeminiLLM",
    "HarnessError",
    "LLMConfig",
    "LLMType",
    "MissingAPIKeyError",
    "ModelPrice",
    "ModelsConfig",
    "NetworkBlockedError",
    "NoMoneyException",
    "NotFoundError",
    "NotSupportedError",
    "OllamaLLM",
    "OpenAILLM",
    "PermissionDeniedError",
    "PriceConfig",
    "PriceTable",
    "ProviderError",
    "ProviderNotRegisteredError",
    "RateLimitError",
    "Reply",
    "ResponseFormatError",
    "ServerError",
    "StreamChunk",
    "StreamError",
    "StructuredOutputError",
    "TokenizerDataError",
    "Tool",
    "ToolCall",
    "UnknownLLMTypeError",
    "Usage",
    "__version__",
    "create_llm_instance",
    "function_model",
    "register_provider",
    "schema_model",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this hook
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy public ones included."""
    return sorted({*globals(), *__all__})
