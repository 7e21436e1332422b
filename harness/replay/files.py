"""Safe cassette files: one lock per cassette outside the tree, atomic writes, stale temp files.

A cassette is written by writing a temp file beside it (``.<name>.<pid>-<random>.tmp``, in the
same directory so the final rename is atomic) and renaming it over the cassette: a crash or a
``kill -9`` leaves either the old file or the new one, never a mix. The new file keeps the mode
of the one it replaces; a new one gets ``0o666`` less the umask, as ``open`` would give it. A
writer killed between the two leaves its temp file behind; the next writer of that cassette
removes it once its process is gone (or it is older than ``STALE_AFTER``). The lock that
orders writers of one cassette lives in one per-user folder of the system temp dir
(``$HARNESS_LOCK_DIR`` to put it elsewhere), named after the cassette's absolute path, so
nothing but cassettes shows up in the project's tree; the ``.<name>.lock`` that older versions
kept beside a cassette is removed by its next writer once no process holds it.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_DIR_ENV",
    "STALE_AFTER",
    "atomic_write",
    "lock_path",
    "remove_legacy_lock",
    "remove_stale_temps",
    "unwritable_reason",
]

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


def _new_temp(path: Path) -> tuple[Path, int]:
    """A new temp file beside ``path``, opened for writing, with the mode ``open`` would give."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            return temp, os.open(temp, flags, 0o666)  # the umask applies, as for any new file
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name beside {path}")  # pragma: no cover


def atomic_write(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` (as UTF-8) at once: a crash leaves the old or the new file.

    The file keeps the permission bits of the one it replaces; a new file gets ``0o666`` less
    the umask, like a file made by ``open``.
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    temp, handle = _new_temp(path)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def unwritable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why a file could not be written at ``path`` (its folder cannot be made or written), or None.

    Looked at without creating anything: the nearest existing folder on the way must be a
    folder this process may create entries in.
    """
    folder = Path(os.path.abspath(os.fspath(path))).parent
    missing = False
    while True:
        try:
            info = os.stat(folder)
        except (FileNotFoundError, NotADirectoryError):
            if folder.parent == folder:  # pragma: no cover - the root always exists
                return f"{folder} does not exist"
            folder, missing = folder.parent, True
            continue
        except OSError as exc:
            return f"{folder} cannot be looked at ({exc.strerror or exc})"
        break
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        made = "the folder for it" if missing else "files"
        return f"no permission to create {made} in {folder}"
    return None


def remove_legacy_lock(path: Path) -> bool:
    """Delete the ``.<name>.lock`` older harness versions kept beside ``path``, if nobody holds it.

    Such a lock was held with ``flock``: a lock this process can take at once is held by no one,
    and unlinking a file nobody locks is harmless (filelock notices an unlinked lock file).
    The lock harness uses now (see ``lock_path``) is never touched. Returns whether it was removed.
    """
    legacy = path.with_name(f".{path.name}.lock")
    if os.path.realpath(legacy) == os.path.realpath(lock_path(path)):
        return False
    try:
        before = os.lstat(legacy)
    except OSError:
        return False
    if not stat.S_ISREG(before.st_mode):
        return False
    if fcntl is None:  # pragma: no cover - Windows: a file another process holds open stays
        try:
            os.unlink(legacy)
        except OSError:
            return False
        return True
    try:
        handle = os.open(legacy, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        opened = os.fstat(handle)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: a writer of an older version is at work right now
        try:
            now = os.lstat(legacy)
        except OSError:
            return False
        if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            return False  # replaced meanwhile: not the file we hold
        os.unlink(legacy)
        return True
    except OSError:
        return False
    finally:
        os.close(handle)  # releases the flock


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
