"""AWS credentials, region and SigV4 request signing, over botocore (an optional extra).

botocore is imported when a Bedrock request is about to be signed, never by ``import
harness``; without it the error says which extra to install. The clock is a parameter, so a
test computes the exact signature of a request.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from harness.config import LLMConfig
from harness.errors import ConfigError

__all__ = [
    "BEDROCK_EXTRA",
    "AWSCredentials",
    "CredentialChain",
    "import_botocore",
    "resolve_region",
    "sign_request",
    "utc_now",
]

BEDROCK_EXTRA = "harness-llm[bedrock]"
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_BOTOCORE_MODULES = (
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.credentials",
    "botocore.session",
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the production clock of request signing)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AWSCredentials:
    """An access key pair, and the session token of temporary credentials."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def import_botocore() -> ModuleType:
    """The botocore package with its signing modules loaded, or a ConfigError naming the
    extra to install."""
    try:
        # By name: botocore ships no type hints, and its modules are used through this one.
        for name in _BOTOCORE_MODULES:
            importlib.import_module(name)
        return importlib.import_module("botocore")
    except ImportError as exc:
        raise ConfigError(
            "api_type 'bedrock' signs its requests with botocore, which is not installed: "
            f"pip install '{BEDROCK_EXTRA}' (or botocore>=1.34)",
            key="api_type",
        ) from exc


def _config_credentials(config: LLMConfig) -> AWSCredentials | None:
    if not (config.access_key or config.secret_key):
        return None
    missing = "secret_key" if config.access_key else "access_key"
    if not (config.access_key and config.secret_key):
        raise ConfigError(
            f"api_type 'bedrock' needs access_key and secret_key together ({missing} is missing)",
            source=config.source,
            key=missing,
        )
    return AWSCredentials(config.access_key, config.secret_key, config.session_token)


class CredentialChain:
    """Credentials from the config, else from the standard AWS chain.

    With ``environ`` given (a test's environment), the chain is those environment variables
    only; without, it is botocore's whole chain (environment, shared files, SSO, container
    and instance roles), looked up once and then refreshed by botocore when temporary
    credentials expire.
    """

    def __init__(self, config: LLMConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.environ = environ
        self._found: Any = None  # botocore's credentials object, once the chain gave one

    def configured(self) -> bool:
        """Whether the config names credentials (then the chain is never consulted)."""
        return bool(self.config.access_key or self.config.secret_key)

    def get(self) -> AWSCredentials | None:
        """The credentials for a request about to be signed; None when there are none."""
        explicit = _config_credentials(self.config)
        if explicit is not None:
            return explicit
        if self._found is None:
            botocore = import_botocore()
            if self.environ is not None:
                provider = botocore.credentials.EnvProvider(environ=dict(self.environ))
                self._found = provider.load()
            else:
                self._found = botocore.session.Session().get_credentials()
            if self._found is None:
                return None  # looked up again next time: the environment may change
        frozen = self._found.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            return None
        return AWSCredentials(frozen.access_key, frozen.secret_key, frozen.token)


def resolve_region(
    config: LLMConfig, environ: Mapping[str, str] | None = None, *, use_profile: bool = True
) -> str:
    """The config's ``region_name``, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, else the
    AWS profile's region (only when ``use_profile`` and no ``environ`` is injected)."""
    if config.region_name:
        return config.region_name
    env = os.environ if environ is None else environ
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = env.get(name, "").strip()
        if value:
            return value
    if environ is None and use_profile:
        botocore = import_botocore()
        region = botocore.session.Session().get_config_variable("region")
        if region:
            return str(region)
    raise ConfigError(
        f"no AWS region for api_type 'bedrock' (model {config.model!r}): set region_name "
        "in the config, or AWS_REGION in the environment",
        source=config.source,
        key="region_name",
    )


def sign_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AWSCredentials,
    region: str,
    service: str = "bedrock",
    now: datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus the SigV4 ones (``X-Amz-Date``, ``X-Amz-Security-Token`` for
    temporary credentials, ``Authorization``) for this exact request, signed at ``now``.

    ``url`` must be the one sent, its path already percent-encoded (botocore encodes it once
    more for the canonical request, as SigV4 wants for every service but S3).
    """
    botocore = import_botocore()
    moment = (now or utc_now()).astimezone(timezone.utc)
    signer = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(
            credentials.access_key, credentials.secret_key, credentials.session_token
        ),
        service,
        region,
    )
    timestamp = moment.strftime(_SIGV4_TIMESTAMP)
    to_sign = {**headers, "X-Amz-Date": timestamp}
    if credentials.session_token:
        to_sign["X-Amz-Security-Token"] = credentials.session_token
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=to_sign)
    # SigV4Auth.add_auth reads the wall clock: its public steps, at the given time.
    request.context["timestamp"] = timestamp
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    names = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    signed: dict[str, Any] = dict(request.headers.items())
    return {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in signed.items()}
