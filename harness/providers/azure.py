"""Azure OpenAI: the deployment is the model, ``api-key`` header auth, an ``api-version``."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from harness.config import LLMType
from harness.errors import ConfigError
from harness.providers.openai import OpenAILLM
from harness.providers.registry import register_provider

if TYPE_CHECKING:  # the SDK is imported at first use: it is slow to import
    import openai

__all__ = ["DEFAULT_AZURE_API_VERSION", "AzureOpenAILLM"]

DEFAULT_AZURE_API_VERSION = "2024-10-21"  # the current GA data-plane version

# ``stream_options`` exists from 2024-08-01-preview on (GA: 2024-10-21); older versions
# answer 400 "Unrecognized request argument supplied: stream_options".
_STREAM_OPTIONS_SINCE = "2024-08-01"
_DATED_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}")


@register_provider(LLMType.AZURE)
class AzureOpenAILLM(OpenAILLM):
    """Chat Completions on an Azure OpenAI resource; ``model`` is the deployment name."""

    def _api_version(self) -> str:
        return self.config.api_version or DEFAULT_AZURE_API_VERSION

    def _stream_include_usage(self) -> bool:
        # Undated versions ("preview", "latest") are newer than any dated one.
        dated = _DATED_VERSION.match(self._api_version())
        return dated is None or dated.group() >= _STREAM_OPTIONS_SINCE

    def _make_client(self) -> openai.AsyncOpenAI:
        import openai

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
            api_version=self._api_version(),
            max_retries=0,
            timeout=self.config.timeout,
            http_client=self._build_http_client(),
        )
