"""The local model: build, fetch, start and stop llama.cpp's llama-server (``harness local-llm``).

Standard library only; :mod:`harness.local_llm.server` holds the commands, the cache layout
and the programmatic ``start_server``/``stop_server`` the ``local_llm`` pytest fixture uses.
``models.yaml`` next to this file is a models config for the running server.
"""

from __future__ import annotations

from pathlib import Path

from harness.local_llm.server import (
    MODELS,
    BuildProgress,
    Failure,
    add_commands,
    build_percent,
    format_elapsed,
    main,
    run,
    start_server,
    stop_server,
)

__all__ = [
    "MODELS",
    "MODELS_YAML",
    "BuildProgress",
    "Failure",
    "add_commands",
    "build_percent",
    "format_elapsed",
    "main",
    "run",
    "start_server",
    "stop_server",
]

MODELS_YAML = Path(__file__).with_name("models.yaml")
"""A models config for the running server (``HARNESS_LOCAL_LLM_URL`` is its base URL)."""
