"""Eval concurrency: 80 cases against a loopback model server that answers in 200 ms.

``harness.evals.run_items`` (what ``pytest suites/ --llm-concurrency N`` and ``harness eval
run --concurrency N`` use) in live mode against an OpenAI-compatible server on 127.0.0.1 whose
every answer takes 200 ms, with concurrency 8 and 1, in alternating blocks (8, 1, 8, 1...) so
drift on a shared machine hits both alike. Reports the wall time of each, their ratio (target
>= 5x) and the concurrency-8 time against the ideal 80 / 8 x 0.2 s = 2.0 s.

The server is a ThreadingHTTPServer with daemon threads; it is shut down at the end, and a
watchdog shuts it down by itself after ``--max-seconds`` whatever happens.

Run: python benchmarks/bench_eval_concurrency.py [--cases 80] [--delay 0.2] [--blocks 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.config import LLMConfig
from harness.evals import Case, Suite
from harness.evals.graders import contains
from harness.evals.runner import plan_items, run_items


def _handler(delay: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            time.sleep(delay)  # the model "thinking"
            text = f"echo: {body['messages'][-1]['content']}"
            data = json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serve(delay: float, max_seconds: float) -> Iterator[str]:
    """An OpenAI-compatible server on 127.0.0.1 answering after ``delay``; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(delay))
    server.daemon_threads = True
    server.request_queue_size = 128
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    watchdog = threading.Timer(max_seconds, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_once(url: str, cases: int, concurrency: int) -> float:
    """Seconds to run ``cases`` cases on one model with ``concurrency`` calls in flight."""
    suite = Suite(
        "bench",
        cases=tuple(
            Case(f"case-{i}", prompt=f"question {i}", graders=(contains(f"{i}"),))
            for i in range(cases)
        ),
        models=("loopback",),
    )
    models = {
        "loopback": LLMConfig(
            api_type="open_llm",
            base_url=url,
            model="m",
            stream=False,
            max_retries=0,
            price={"input": 0, "output": 0},
        )
    }
    items = plan_items([suite])

    started = time.perf_counter()
    results = asyncio.run(run_items(items, models, mode="live", concurrency=concurrency))
    elapsed = time.perf_counter() - started
    failed = [r for r in results if not r.passed]
    if failed:
        raise SystemExit(f"{len(failed)} cases failed, e.g. {failed[0].reason}")
    return elapsed


def main() -> None:
    """Alternate concurrency 8 and 1 over ``--blocks`` blocks and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=80)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 8 cases answered in 20 ms, 1 block"
    )
    args = parser.parse_args()
    if args.quick:
        args.cases, args.delay, args.blocks, args.concurrency = 8, 0.02, 1, 4
        args.max_seconds = min(args.max_seconds, 60.0)
    times: dict[int, list[float]] = {args.concurrency: [], 1: []}
    with serve(args.delay, args.max_seconds) as url:
        run_once(url, 4, 4)  # warm up imports and the connection path
        for _ in range(args.blocks):
            for concurrency in (args.concurrency, 1):
                times[concurrency].append(run_once(url, args.cases, concurrency))
    fast = statistics.median(times[args.concurrency])
    slow = statistics.median(times[1])
    ideal = args.cases / args.concurrency * args.delay
    print(f"{args.cases} cases, server answers in {args.delay * 1000:.0f} ms")
    for concurrency, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  concurrency {concurrency}: {shown} s (median {statistics.median(values):.2f} s)")
    print(f"  ratio: {slow / fast:.1f}x (target >= 5x)")
    print(f"  concurrency {args.concurrency} vs ideal {ideal:.2f} s: {fast / ideal:.2f}x the ideal")


if __name__ == "__main__":
    main()
