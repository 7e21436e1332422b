"""Providers: one module per wire format, registered by LLMType.

Importing this package registers the built-in providers.
"""

from __future__ import annotations

from harness.providers.anthropic import AnthropicLLM
from harness.providers.azure import AzureOpenAILLM
from harness.providers.base import (
    BaseLLM,
    ChatResponse,
    Choice,
    Embeddings,
    Reply,
    StreamChunk,
    ToolCall,
)
from harness.providers.bedrock import BedrockLLM
from harness.providers.fake import FakeLLM
from harness.providers.gemini import GeminiLLM
from harness.providers.ollama import OllamaLLM
from harness.providers.openai import OpenAILLM
from harness.providers.registry import LLM_REGISTRY, create_llm_instance, register_provider

__all__ = [
    "LLM_REGISTRY",
    "AnthropicLLM",
    "AzureOpenAILLM",
    "BaseLLM",
    "BedrockLLM",
    "ChatResponse",
    "Choice",
    "Embeddings",
    "FakeLLM",
    "GeminiLLM",
    "OllamaLLM",
    "OpenAILLM",
    "Reply",
    "StreamChunk",
    "ToolCall",
    "create_llm_instance",
    "register_provider",
]
