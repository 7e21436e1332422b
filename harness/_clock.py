"""The clock harness waits on: retry backoff, ``Retry-After``, FakeLLM latency, slow faults.

Every such wait goes through :func:`sleep` or :func:`async_sleep` here (the production
defaults of the ``sleep`` seams of ``BaseLLM`` and ``FaultTransport``), which ask the
current clock. The current clock is the real one unless :func:`use` puts another in place:
the pytest plugin gives each test a :class:`VirtualClock`, so waits are computed and
reported but take no time (``--llm-real-time`` waits for real).

A virtual wait yields to the event loop once and returns: concurrent waits do not finish in
the order of their lengths.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock", "async_sleep", "current", "sleep", "use"]


class Clock(Protocol):
    """Something that waits: synchronously and in a coroutine."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (blocking)."""

    async def async_sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (in a coroutine)."""


class RealClock:
    """Waits for real; still adds up the seconds it waited."""

    def __init__(self) -> None:
        self.waited = 0.0

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        self.waited += max(seconds, 0.0)
        time.sleep(max(seconds, 0.0))

    async def async_sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        self.waited += max(seconds, 0.0)
        await asyncio.sleep(max(seconds, 0.0))


class VirtualClock:
    """Advances a virtual time instead of waiting; ``waits`` lists each wait asked for."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        """Move the virtual time on by ``seconds``, at once."""
        with self._lock:
            self.waits.append(max(seconds, 0.0))
            self.now += max(seconds, 0.0)

    async def async_sleep(self, seconds: float) -> None:
        """Move the virtual time on by ``seconds`` and let other tasks run once."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    @property
    def waited(self) -> float:
        """The virtual seconds waited in all."""
        return sum(self.waits)


_default: Clock = RealClock()
_current: Clock = _default


def current() -> Clock:
    """The clock waits go to now."""
    return _current


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Send every default wait to ``clock`` for the duration of the block."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous


def sleep(seconds: float) -> None:
    """Wait ``seconds`` on the current clock (blocking)."""
    _current.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """Wait ``seconds`` on the current clock (in a coroutine)."""
    await _current.async_sleep(seconds)
