"""Azure OpenAI: the deployment is the model, ``api-key`` header auth, an ``api-version``."""

from __future__ import annotations

import os

import openai

from harness.config import LLMType
from harness.errors import ConfigError
from harness.providers.openai import OpenAILLM
from harness.providers.registry import register_provider

__all__ = ["DEFAULT_AZURE_API_VERSION", "AzureOpenAILLM"]

DEFAULT_AZURE_API_VERSION = "2024-10-21"  # the current GA data-plane version


@register_provider(LLMType.AZURE)
class AzureOpenAILLM(OpenAILLM):
    """Chat Completions on an Azure OpenAI resource; ``model`` is the deployment name."""

    def _make_client(self) -> openai.AsyncOpenAI:
        env = self._environ if self._environ is not None else os.environ
        endpoint = self.config.base_url or self.config.endpoint or env.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigError(
                "Azure needs the resource endpoint (https://<resource>.openai.azure.com): "
                "set base_url or AZURE_OPENAI_ENDPOINT",
                source=self.config.source,
                key="base_url",
            )
        return openai.AsyncAzureOpenAI(
            api_key=self._api_key(),
            azure_endpoint=endpoint,
            api_version=self.config.api_version or DEFAULT_AZURE_API_VERSION,
            max_retries=0,
            timeout=self.config.timeout,
            http_client=self._build_http_client(),
        )
