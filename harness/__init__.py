"""harness: test and evaluate LLM applications.

One async interface over many providers (``aask``), configured by pydantic models and YAML.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
