"""Keyless replay: placeholder API keys for SDK clients built in a replayed test.

``openai.OpenAI()`` and ``anthropic.Anthropic()`` refuse to start without a key, although a
replayed test never sends one anywhere. In replay mode the plugin sets each usual key
variable that is unset to a placeholder for the test's duration, and takes it away after
(and as soon as the test's cassette turns out to record). The placeholders look like keys
on purpose: harness's secret scan refuses to write a cassette holding one, and
``Redactor.from_env`` redacts them, so one can never reach a file.

No pytest here.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["PLACEHOLDER_KEY", "PlaceholderKeys", "key_groups", "key_variables"]

PLACEHOLDER_KEY = "sk-harness-replay-placeholder-not-a-key"
"""The value of every placeholder key (matches the secret scan's ``sk-`` pattern)."""

_AWS_PLACEHOLDERS = {
    "AWS_ACCESS_KEY_ID": "AKIAHARNESSREPLAY000",  # matches the scan's AWS key-id pattern
    "AWS_SECRET_ACCESS_KEY": PLACEHOLDER_KEY,
}


# What key_groups() derives from harness.config's provider defaults, spelled out so that the
# plugin's per-test hook never imports config (pydantic); test_plugin_startup keeps it equal.
_KEY_GROUPS: tuple[tuple[str, ...], ...] = (
    ("ANTHROPIC_API_KEY",),
    ("ARK_API_KEY",),
    ("AZURE_OPENAI_API_KEY",),
    ("DASHSCOPE_API_KEY",),
    ("DEEPSEEK_API_KEY",),
    ("FIREWORKS_API_KEY",),
    ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    ("LLAMA_API_KEY",),
    ("METAGPT_API_KEY",),
    ("MISTRAL_API_KEY",),
    ("MOONSHOT_API_KEY",),
    ("OPENAI_API_KEY",),
    ("OPENROUTER_API_KEY",),
    ("OPEN_LLM_API_KEY",),
    ("QIANFAN_API_KEY",),
    ("SILICONFLOW_API_KEY",),
    ("SPARK_API_KEY",),
    ("YI_API_KEY",),
    ("ZHIPUAI_API_KEY",),
    ("AWS_ACCESS_KEY_ID",),
    ("AWS_SECRET_ACCESS_KEY",),
)


def key_groups() -> list[tuple[str, ...]]:
    """The key variables, grouped as each provider reads them (``GEMINI_API_KEY`` or
    ``GOOGLE_API_KEY``), plus AWS's two."""
    return list(_KEY_GROUPS)


def derived_key_groups() -> list[tuple[str, ...]]:
    """:func:`key_groups` as harness.config's provider defaults give it (imports config)."""
    from harness.config import LLMType, provider_defaults

    groups = {provider_defaults(api_type).key_env for api_type in LLMType}
    groups.discard(("AWS_ACCESS_KEY_ID",))
    groups.discard(())
    return [*sorted(groups), *((name,) for name in _AWS_PLACEHOLDERS)]


def key_variables() -> dict[str, str]:
    """Every key variable a provider of harness.config reads (plus AWS's), and its placeholder."""
    names = [name for group in key_groups() for name in group]
    return {name: _AWS_PLACEHOLDERS.get(name, PLACEHOLDER_KEY) for name in names}


class PlaceholderKeys:
    """Sets the unset key variables to placeholders, and removes exactly those again."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.placed: dict[str, str] = {}

    def install(self) -> None:
        """Set the first variable of each group with none set (or all empty) to a placeholder."""
        for group in key_groups():
            if any(self.environ.get(name) for name in group):
                continue  # one of the group is set: the SDK finds it (and two would warn)
            name = group[0]
            self.environ[name] = self.placed[name] = _AWS_PLACEHOLDERS.get(name, PLACEHOLDER_KEY)

    def remove(self) -> None:
        """Remove the placeholders still in place (a value the test set itself stays)."""
        for name, value in self.placed.items():
            if self.environ.get(name) == value:
                del self.environ[name]
        self.placed.clear()
