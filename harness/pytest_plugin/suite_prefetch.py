"""The model calls of eval items, run ahead of the pytest items on a background event loop.

No pytest here (:mod:`harness.pytest_plugin.suites` decides what goes in a batch and when). A
:class:`Prefetcher` owns one daemon thread; batches submitted to it run one after the other,
each through :func:`harness.evals.run_items` with its concurrency limit, and a caller waits
only for the result of the item it needs, which is set as soon as that item is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: a session without suites never loads evals
    from harness.config import ModelsConfig
    from harness.evals.results import ItemResult
    from harness.evals.runner import EvalItem

__all__ = ["Prefetcher"]


@dataclass
class _Batch:
    items: list[EvalItem]
    models: ModelsConfig


@dataclass
class _Slot:
    done: threading.Event = field(default_factory=threading.Event)
    result: ItemResult | None = None
    error: BaseException | None = None


class Prefetcher:
    """Runs batches of eval items on one background event loop, one batch after the other."""

    def __init__(self, *, mode: str, cassette_dir: Path, concurrency: int) -> None:
        self.mode = mode
        self.cassette_dir = cassette_dir
        self.concurrency = concurrency
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self._commands: dict[tuple[str, str, str], str] = {}
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._closed = False

    def submit(
        self,
        items: Sequence[EvalItem],
        models: ModelsConfig,
        commands: Mapping[tuple[str, str, str], str] | None = None,
    ) -> None:
        """Queue the items not queued yet (their model calls start as soon as possible).

        ``commands``: the command that re-records each item, by key, for replay misses.
        """
        fresh = [item for item in items if item.key not in self._slots]
        if not fresh:
            return
        self._commands.update(commands or {})
        for item in fresh:
            self._slots[item.key] = _Slot()
        self._queue.put(_Batch(fresh, models))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="harness-evals", daemon=True)
            self._thread.start()

    def submitted(self, item: EvalItem) -> bool:
        """Whether the item is queued, running or done."""
        return item.key in self._slots

    def result(self, item: EvalItem) -> ItemResult:
        """The item's result, once its model calls and grades are done."""
        slot = self._slots[item.key]
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def close(self) -> None:
        """Cancel what has not run (after ``-x``, say) and stop the thread."""
        self._closed = True
        self._queue.put(None)
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop may just have finished
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _serve(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None or self._closed:
                ended = RuntimeError("the session ended before this item ran")
                self._fail([k for k, slot in self._slots.items() if not slot.done.is_set()], ended)
                return
            try:
                asyncio.run(self._run(batch))
            except BaseException as error:  # a bug in a grader or the runner: report, go on
                self._fail([item.key for item in batch.items], error)

    async def _run(self, batch: _Batch) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            try:
                await self._run_items(batch.items, batch.models)
            except Exception:
                # one suite that cannot run (a judge missing from the config...) must not fail
                # the others of the batch: run what is left suite by suite
                parts: dict[str, list[EvalItem]] = {}
                for item in batch.items:
                    if not self._slots[item.key].done.is_set():
                        parts.setdefault(item.suite.name, []).append(item)
                if len(parts) < 2:
                    raise
                for part in parts.values():
                    try:
                        await self._run_items(part, batch.models)
                    except Exception as error:
                        self._fail([item.key for item in part], error)
        finally:
            self._loop = self._task = None
        missing = RuntimeError("the eval runner returned no result for this item")
        self._fail([item.key for item in batch.items], missing)

    async def _run_items(self, items: list[EvalItem], models: ModelsConfig) -> None:
        def store(result: ItemResult) -> None:
            slot = self._slots.get(_key_of(result))
            if slot is not None and not slot.done.is_set():
                slot.result = result
                slot.done.set()

        from harness.evals.runner import run_items

        results = await run_items(
            items,
            models,
            mode=self.mode,
            cassette_dir=self.cassette_dir,
            concurrency=self.concurrency,
            on_result=store,
            rerecord=self._rerecord,
        )
        for result in results:
            store(result)

    def _rerecord(self, item: EvalItem) -> str:
        from harness.evals.runner import rerecord_command

        return self._commands.get(item.key) or rerecord_command(item)

    def _fail(self, keys: Sequence[tuple[str, str, str]], error: BaseException) -> None:
        """Give the items of ``keys`` still waiting this error instead of a result."""
        for key in keys:
            slot = self._slots[key]
            if not slot.done.is_set():
                slot.error = error
                slot.done.set()


def _key_of(result: ItemResult) -> tuple[str, str, str]:
    return (result.suite, result.case, result.model)
