from __future__ import annotations

import copy
import pickle
from decimal import Decimal

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
        errors.ResponseFormatError(
            "not JSON",
            provider="p",
            model="m",
            status_code=200,
            content_type="text/html",
            body_excerpt="<html>",
        ),
        errors.ConfigError("bad", key="max_token", errors=[{"loc": ("max_token",), "msg": "x"}]),
        errors.ContentFilterError(
            "blocked", provider="gemini", model="m", reason="SAFETY", body={"promptFeedback": {}}
        ),
        errors.NotSupportedError("no embeddings", provider="anthropic", model="m"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_and_copying_with_their_fields(error: Exception) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        fields = {k: v for k, v in vars(error).items() if k != "errors"}
        assert {k: v for k, v in vars(clone).items() if k != "errors"} == fields


def test_an_unpriced_refusal_survives_pickling() -> None:
    error = errors.NoMoneyException(
        spent=Decimal("0.00044"), limit=Decimal("1"), projected=None, model="m", unpriced=True
    )
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.unpriced, clone.projected, str(clone)) == (True, None, str(error))


def test_response_format_error_names_status_content_type_and_excerpt() -> None:
    error = errors.ResponseFormatError(
        "not JSON", provider="p", model="m", status_code=200, content_type=None, body_excerpt="x"
    )
    assert str(error) == "p (m): not JSON (HTTP 200, content-type (none), body starts 'x')"
