"""``async def`` tests in a project without an async test plugin.

pytest does not run coroutine functions itself. When neither pytest-asyncio nor anyio takes
a coroutine test (anyio takes only tests marked ``anyio``; with pytest-asyncio installed,
harness leaves every async test to it), the plugin runs the test in a fresh event loop
(:func:`asyncio.run`), with its (synchronous) fixtures' values as arguments.

No pytest here.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["ASYNC_PLUGINS", "run_coroutine_test", "runs_coroutine"]

ASYNC_PLUGINS = ("asyncio", "pytest_asyncio")
"""Plugin names that mean pytest-asyncio is active: harness then leaves async tests alone."""


def runs_coroutine(function: Callable[..., Any], markers: Collection[str]) -> bool:
    """Whether harness should run ``function``: a coroutine function no plugin takes."""
    return inspect.iscoroutinefunction(function) and "anyio" not in markers


def run_coroutine_test(
    function: Callable[..., Any], funcargs: Mapping[str, Any], argnames: Collection[str]
) -> None:
    """Run the coroutine test ``function`` to its end in a new event loop."""
    asyncio.run(function(**{name: funcargs[name] for name in argnames}))
