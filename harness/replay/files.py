"""Safe cassette files: one lock per cassette outside the tree, atomic writes, stale temp files.

A cassette is written by writing a temp file beside it (``.<name>.<pid>-<random>.tmp``, in the
same directory so the final rename is atomic) and renaming it over the cassette: a crash or a
``kill -9`` leaves either the old file or the new one, never a mix. A writer killed between
the two leaves its temp file behind; the next writer of that cassette removes it once its
process is gone (or it is older than ``STALE_AFTER``). The lock that orders writers of one
cassette lives in one per-user folder of the system temp dir (``$HARNESS_LOCK_DIR`` to put it
elsewhere), named after the cassette's absolute path, so nothing but cassettes shows up in the
project's tree.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOCK_DIR_ENV", "STALE_AFTER", "atomic_write", "lock_path", "remove_stale_temps"]

LOCK_DIR_ENV = "HARNESS_LOCK_DIR"
"""Environment variable naming the folder for cassette locks (default: in the system temp dir)."""

STALE_AFTER = 600.0
"""Seconds after which a cassette's temp file is stale even if its writer's process still runs."""

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _lock_dir() -> Path:
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        folder = Path(configured)
    else:  # per user: another user's folder in a shared /tmp would not be writable
        user = str(os.getuid()) if hasattr(os, "getuid") else _SAFE.sub("_", getpass.getuser())
        folder = Path(tempfile.gettempdir()) / f"harness-locks-{user}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def lock_path(cassette: str | os.PathLike[str]) -> Path:
    """The lock file that orders the writers of ``cassette`` (keyed by its absolute path)."""
    real = os.path.realpath(os.fspath(cassette))
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    readable = _SAFE.sub("_", os.path.basename(real))[:60]
    return _lock_dir() / f"{readable}-{digest}.lock"


def atomic_write(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` (as UTF-8) at once: a crash leaves the old or the new file."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    handle, temp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # no harmless probe there (os.kill would terminate): rely on age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temps(
    path: Path,
    *,
    now: Callable[[], float] = time.time,
    alive: Callable[[int], bool] = _pid_alive,
    stale_after: float = STALE_AFTER,
) -> list[Path]:
    """Delete the temp files that killed writers of ``path`` left beside it; return them.

    A temp file is stale when the process named in it is gone, or when it is older than
    ``stale_after`` seconds (also for temp files of older harness versions, which carry no
    process id). A live writer's recent temp file is left alone.
    """
    name = re.escape(path.name)
    tagged = re.compile(rf"\.{name}\.(\d+)-[A-Za-z0-9_]+\.tmp")
    legacy = re.compile(rf"\.{name}\.[A-Za-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        match = tagged.fullmatch(entry.name)
        if match is None and legacy.fullmatch(entry.name) is None:
            continue
        try:
            age = now() - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue  # renamed or removed meanwhile
        stale = age > stale_after
        if match is not None and not stale:
            pid = int(match.group(1))
            stale = pid != os.getpid() and not alive(pid)
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
