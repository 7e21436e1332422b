from __future__ import annotations

import copy
import pickle

import pytest

from harness import errors


@pytest.mark.parametrize(
    "error",
    [
        errors.ConfigError("bad", source="c.yaml", key="models.x"),
        errors.MissingAPIKeyError("no key", env_var="OPENAI_API_KEY"),
        errors.ProviderError("boom", provider="openai", model="m"),
        errors.APITimeoutError("slow", provider="openai", model="m"),
        errors.RateLimitError(
            "slow down", provider="p", model="m", status_code=429, retry_after=2.5, body={"a": 1}
        ),
        errors.ServerError("down", provider="p", model="m", status_code=529),
        errors.StreamError("cut", provider="p", model="m", code="400", body={"message": "x"}),
        errors.BatchError(["a", None], {1: ValueError("x")}),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_and_copying_with_their_fields(error: Exception) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        fields = {k: v for k, v in vars(error).items() if k != "errors"}
        assert {k: v for k, v in vars(clone).items() if k != "errors"} == fields
