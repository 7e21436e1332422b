"""Settings for the test suite (the repository-wide ones are in the root conftest.py).

The HTTP stacks and SDKs are imported once here, before any test runs. pytester's in-process
runs restore ``sys.modules`` when they end, so a module first imported inside one of them
would be imported a second time later: its exception classes would then differ from the ones
httpx2 and the providers already hold, and error mapping would depend on test order.
"""

from __future__ import annotations

import anthropic  # noqa: F401
import httpcore  # noqa: F401
import httpcore2  # noqa: F401
import httpx  # noqa: F401
import httpx2  # noqa: F401
import hypothesis  # noqa: F401
import openai  # noqa: F401
import pydantic  # noqa: F401

import harness.providers
import harness.replay  # noqa: F401
