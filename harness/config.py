"""Configuration: provider types, LLMConfig, and the ``llm:``/``models:`` YAML file.

A config file has the shape of the seed's ``config2.yaml``::

    llm:                       # the default model
      api_type: openai
      model: gpt-4o-mini
      api_key: ${OPENAI_API_KEY}
    models:                    # named models, looked up by name or by api_type
      claude:
        api_type: anthropic
        model: claude-sonnet-4-5

``${VAR}`` and ``${VAR:-default}`` are expanded from the environment after the YAML is parsed.
An unset variable in a secret field (``api_key`` ...) leaves the field empty, so a replayed test
needs no key; anywhere else it is an error naming the file, the key and the variable.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from harness.errors import ConfigError, MissingAPIKeyError, UnknownLLMTypeError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CompressType",
    "LLMConfig",
    "LLMType",
    "ModelsConfig",
    "PriceConfig",
    "ProviderDefaults",
    "provider_defaults",
]


class LLMType(str, enum.Enum):
    """The kinds of provider harness knows; ``api_type`` in a config takes one of these values."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    CLAUDE = "claude"  # alias of anthropic
    GEMINI = "gemini"
    AZURE = "azure"
    BEDROCK = "bedrock"
    QIANFAN = "qianfan"
    DASHSCOPE = "dashscope"
    ARK = "ark"
    ZHIPUAI = "zhipuai"
    SPARK = "spark"
    MOONSHOT = "moonshot"
    YI = "yi"
    DEEPSEEK = "deepseek"
    OLLAMA = "ollama"
    OLLAMA_GENERATE = "ollama.generate"
    OLLAMA_EMBEDDINGS = "ollama.embeddings"
    OLLAMA_EMBED = "ollama.embed"
    OPEN_LLM = "open_llm"
    FIREWORKS = "fireworks"
    MISTRAL = "mistral"
    OPEN_ROUTER = "open_router"
    OPENROUTER = "openrouter"
    OPENROUTER_REASONING = "openrouter_reasoning"
    SILICONFLOW = "siliconflow"
    LLAMA_API = "llama_api"
    METAGPT = "metagpt"
    FAKE = "fake"  # harness's scripted test double

    @classmethod
    def _missing_(cls, value: object) -> LLMType:
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        valid = [m.value for m in cls]
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value.lower(), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownLLMTypeError(
            f"unknown api_type {value!r}{hint}; valid values: {', '.join(valid)}"
        )

    def __str__(self) -> str:
        return self.value


class CompressType(str, enum.Enum):
    """How messages are cut down to the model's context window before a request."""

    NO_COMPRESS = "no_compress"
    POST_CUT_BY_TOKEN = "post_cut_by_token"
    POST_CUT_BY_MSG = "post_cut_by_msg"
    PRE_CUT_BY_TOKEN = "pre_cut_by_token"
    PRE_CUT_BY_MSG = "pre_cut_by_msg"

    @classmethod
    def _missing_(cls, value: object) -> CompressType:
        if value is None or (isinstance(value, str) and not value.strip()):
            return cls.NO_COMPRESS
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        raise ConfigError(
            f"unknown compress_type {value!r}; valid values: {', '.join(m.value for m in cls)}"
        )

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ProviderDefaults:
    """What a provider type implies when the config does not say: base URL and key variable.

    ``url_env`` names the environment variables the vendor's own SDK reads its base URL from;
    they come between the config's ``base_url`` and ``base_url`` here.
    """

    base_url: str | None
    key_env: tuple[str, ...] = ()
    key_required: bool = True
    url_env: tuple[str, ...] = ()


_OLLAMA = ProviderDefaults(
    "http://127.0.0.1:11434/api", (), key_required=False, url_env=("OLLAMA_HOST",)
)
_ANTHROPIC = ProviderDefaults(
    "https://api.anthropic.com", ("ANTHROPIC_API_KEY",), url_env=("ANTHROPIC_BASE_URL",)
)
_OPENROUTER = ProviderDefaults("https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",))

_PROVIDER_DEFAULTS: dict[LLMType, ProviderDefaults] = {
    LLMType.OPENAI: ProviderDefaults(
        "https://api.openai.com/v1", ("OPENAI_API_KEY",), url_env=("OPENAI_BASE_URL",)
    ),
    LLMType.ANTHROPIC: _ANTHROPIC,
    LLMType.CLAUDE: _ANTHROPIC,
    LLMType.GEMINI: ProviderDefaults(
        "https://generativelanguage.googleapis.com",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        url_env=("GOOGLE_GEMINI_BASE_URL",),  # google-genai's
    ),
    # Azure's endpoint is per resource (https://<resource>.openai.azure.com): no default.
    LLMType.AZURE: ProviderDefaults(
        None, ("AZURE_OPENAI_API_KEY",), url_env=("AZURE_OPENAI_ENDPOINT",)
    ),
    # Bedrock signs requests with AWS credentials (access_key/secret_key), not an API key.
    LLMType.BEDROCK: ProviderDefaults(None, ("AWS_ACCESS_KEY_ID",), key_required=False),
    LLMType.QIANFAN: ProviderDefaults("https://qianfan.baidubce.com/v2", ("QIANFAN_API_KEY",)),
    LLMType.DASHSCOPE: ProviderDefaults(
        "https://dashscope.aliyuncs.com/compatible-mode/v1", ("DASHSCOPE_API_KEY",)
    ),
    LLMType.ARK: ProviderDefaults("https://ark.cn-beijing.volces.com/api/v3", ("ARK_API_KEY",)),
    LLMType.ZHIPUAI: ProviderDefaults("https://open.bigmodel.cn/api/paas/v4", ("ZHIPUAI_API_KEY",)),
    LLMType.SPARK: ProviderDefaults("https://spark-api-open.xf-yun.com/v1", ("SPARK_API_KEY",)),
    LLMType.MOONSHOT: ProviderDefaults("https://api.moonshot.cn/v1", ("MOONSHOT_API_KEY",)),
    LLMType.YI: ProviderDefaults("https://api.lingyiwanwu.com/v1", ("YI_API_KEY",)),
    LLMType.DEEPSEEK: ProviderDefaults("https://api.deepseek.com", ("DEEPSEEK_API_KEY",)),
    LLMType.OLLAMA: _OLLAMA,
    LLMType.OLLAMA_GENERATE: _OLLAMA,
    LLMType.OLLAMA_EMBEDDINGS: _OLLAMA,
    LLMType.OLLAMA_EMBED: _OLLAMA,
    # A self-hosted OpenAI-compatible server: the URL is yours to give; most accept any key.
    LLMType.OPEN_LLM: ProviderDefaults(None, ("OPEN_LLM_API_KEY",), key_required=False),
    LLMType.FIREWORKS: ProviderDefaults(
        "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",)
    ),
    LLMType.MISTRAL: ProviderDefaults("https://api.mistral.ai/v1", ("MISTRAL_API_KEY",)),
    LLMType.OPEN_ROUTER: _OPENROUTER,
    LLMType.OPENROUTER: _OPENROUTER,
    LLMType.OPENROUTER_REASONING: _OPENROUTER,
    LLMType.SILICONFLOW: ProviderDefaults(
        "https://api.siliconflow.cn/v1", ("SILICONFLOW_API_KEY",)
    ),
    LLMType.LLAMA_API: ProviderDefaults("https://api.llama.com/compat/v1", ("LLAMA_API_KEY",)),
    LLMType.METAGPT: ProviderDefaults(None, ("METAGPT_API_KEY",)),
    LLMType.FAKE: ProviderDefaults(None, (), key_required=False),
}


def provider_defaults(api_type: LLMType | str) -> ProviderDefaults:
    """The default base URL and API-key environment variables of a provider type."""
    return _PROVIDER_DEFAULTS[LLMType(api_type)]


# The pytest plugin's keyless-replay placeholder (harness.pytest_plugin.keyless) is no key either.
_PLACEHOLDER_KEYS = {"", "YOUR_API_KEY", "sk-", "sk-harness-replay-placeholder-not-a-key"}
SECRET_FIELDS = frozenset({"api_key", "secret_key", "access_key", "session_token", "api_secret"})


class _ConfigModel(BaseModel):
    """A pydantic model whose validation failures are ConfigErrors (pydantic's details kept
    in ``errors``), however it is built: constructor, ``model_validate`` or assignment."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(_details(exc), None, type(self)) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate ``obj`` (a mapping or an instance); a ConfigError when it is invalid."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise _config_error(_details(exc), None, cls) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Validate a JSON document; a ConfigError when it is invalid (or not JSON)."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise _config_error(_details(exc), None, cls) from None

    @classmethod
    def model_validate_strings(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate a mapping of strings; a ConfigError when it is invalid."""
        try:
            return super().model_validate_strings(obj, **kwargs)
        except ValidationError as exc:
            raise _config_error(_details(exc), None, cls) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise _config_error(_details(exc), None, type(self)) from None


class PriceConfig(_ConfigModel):
    """A model's price in USD per 1M tokens; it overrides harness's price table for that model.

    ``cached_input`` and ``cache_write`` default to ``input``, ``reasoning`` to ``output``.
    """

    model_config = ConfigDict(extra="forbid")

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)
    reasoning: Decimal | None = Field(default=None, ge=0)


class LLMConfig(_ConfigModel):
    """Everything needed to reach one model: provider, endpoint, credentials and call options."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)

    api_key: str | None = Field(default=None, repr=False)
    api_type: LLMType = LLMType.OPENAI
    base_url: str | None = None
    api_version: str | None = None
    model: str | None = None  # for Azure: the deployment name
    pricing_plan: str | None = None  # the price-table row to bill, when it differs from model
    price: PriceConfig | None = None  # this model's price, when the table lacks or misprices it
    # Cloud providers signing requests (Bedrock, Qianfan...)
    access_key: str | None = Field(default=None, repr=False)
    secret_key: str | None = Field(default=None, repr=False)
    session_token: str | None = Field(default=None, repr=False)
    endpoint: str | None = None  # a self-deployed model on a cloud
    # iFlytek Spark
    app_id: str | None = None
    api_secret: str | None = Field(default=None, repr=False)
    domain: str | None = None
    # Chat completion parameters
    max_token: int = Field(default=4096, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, ge=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    repetition_penalty: float = 1.0
    stop: str | list[str] | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    best_of: int | None = None
    n: int | None = None
    stream: bool = True
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    timeout: float = Field(default=600.0, gt=0)
    context_length: int | None = Field(default=None, gt=0)  # max input tokens, overrides the table
    # Amazon Bedrock
    region_name: str | None = None
    # Network
    proxy: str | None = None
    # Cost control. calc_usage=False: calls are not billed to the cost manager, unless it has
    # a max_budget, which is enforced (and billed against) whatever calc_usage says.
    calc_usage: bool = True
    compress_type: CompressType = CompressType.NO_COMPRESS
    use_system_prompt: bool = True
    # Reasoning ("thinking") models
    reasoning: bool = False
    reasoning_max_token: int = Field(default=4000, gt=0)
    # Whether the model is an OpenAI-style reasoning model (no temperature,
    # max_completion_tokens). None: decided from the model name, which an Azure deployment
    # name may hide.
    reasoning_model: bool | None = None
    # Retries: one policy for every provider (the SDKs' own retries are off)
    max_retries: int = Field(default=3, ge=0, le=20)
    retry_min_wait: float = Field(default=1.0, ge=0)
    retry_max_wait: float = Field(default=60.0, ge=0)

    _source: str | None = PrivateAttr(default=None)

    @field_validator("api_type", mode="before")
    @classmethod
    def _parse_api_type(cls, value: Any) -> LLMType:
        return LLMType(value)

    @field_validator("compress_type", mode="before")
    @classmethod
    def _parse_compress_type(cls, value: Any) -> CompressType:
        return CompressType(value)

    @field_validator("api_key", "access_key", "secret_key", "api_secret", mode="before")
    @classmethod
    def _drop_placeholder(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in _PLACEHOLDER_KEYS:
            return None
        return value

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._source

    @property
    def defaults(self) -> ProviderDefaults:
        """The defaults of this config's provider type."""
        return _PROVIDER_DEFAULTS[self.api_type]

    def resolved_base_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The base URL: the config's, else the vendor SDK's variable, else the default."""
        return self.base_url_origin(environ)[0]

    def base_url_origin(self, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
        """The resolved base URL and where it came from: ``config``, a variable's name, or
        ``default``."""
        if self.base_url:
            return self.base_url, "config"
        env = os.environ if environ is None else environ
        for name in self.defaults.url_env:
            value = env.get(name, "").strip()
            if value:
                return (_ollama_host_url(value) if name == "OLLAMA_HOST" else value), name
        return self.defaults.base_url, "default"

    def resolved_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The API key from the config or the provider's usual environment variable(s)."""
        if self.api_key:
            return self.api_key
        env = os.environ if environ is None else environ
        for name in self.defaults.key_env:
            value = env.get(name, "").strip()
            if value and value not in _PLACEHOLDER_KEYS:
                return value
        return None

    def require_api_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The API key, or a MissingAPIKeyError saying where to set one.

        Call this only when a live request is about to be made: replayed and faked calls
        need no key.
        """
        key = self.resolved_api_key(environ)
        if key:
            return key
        env_names = self.defaults.key_env
        if not self.defaults.key_required:
            return "not-needed"
        where = f"'api_key' in {self._source}" if self._source else "LLMConfig(api_key=...)"
        env_hint = " or ".join(env_names) if env_names else "an API key variable"
        raise MissingAPIKeyError(
            f"no API key for api_type {self.api_type.value!r} (model {self.model!r}): "
            f"set {env_hint} in the environment, or {where}",
            env_var=env_names[0] if env_names else None,
        )


def _ollama_host_url(host: str) -> str:
    """``OLLAMA_HOST`` (``host``, ``host:port`` or a URL, as ollama reads it) as an API URL."""
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    hostport, _, path = rest.partition("/")
    if ":" not in hostport.rpartition("]")[2]:  # no port (an IPv6 address keeps its own colons)
        hostport = f"{hostport}:{443 if scheme == 'https' else 11434}"
    path = path.strip("/").removesuffix("api").strip("/")
    return f"{scheme}://{hostport}/{path + '/' if path else ''}api"


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ModelsConfig(_ConfigModel):
    """The ``llm:`` default model plus named ``models:``, as in the seed's config2.yaml."""

    model_config = ConfigDict(extra="ignore")

    llm: LLMConfig | None = None
    models: dict[str, LLMConfig] = Field(default_factory=dict)

    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._source

    @classmethod
    def from_yaml_file(
        cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
    ) -> ModelsConfig:
        """Load and validate a config file; errors name the file and the key."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file: {exc.strerror}", source=str(path)) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"the config file is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                f"offset {exc.start})",
                source=str(path),
            ) from exc
        return cls.from_yaml(text, source=str(path), environ=environ)

    @classmethod
    def from_yaml(
        cls, text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
    ) -> ModelsConfig:
        """Parse a config from YAML text; ``source`` names it in errors."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"invalid YAML{where}: {exc}", source=source) from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"expected a mapping with 'llm' and/or 'models', got {type(data).__name__}",
                source=source,
            )
        data = _expand_env(data, environ if environ is not None else os.environ, source, ())
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> ModelsConfig:
        """Validate a parsed config mapping; ``source`` names it in errors."""
        for key in data:
            # Other top-level sections of a seed config2.yaml are ignored, but a misspelt
            # "models" or "llm" must not silently leave the config empty.
            close = difflib.get_close_matches(str(key), ["llm", "models"], n=1, cutoff=0.6)
            if close and key not in ("llm", "models"):
                raise ConfigError(
                    f"unknown top-level key (did you mean {close[0]!r}?)",
                    source=source,
                    key=str(key),
                )
        models = data.get("models")
        if models is not None and not isinstance(models, dict):
            raise ConfigError(
                "expected a mapping of model name to settings", source=source, key="models"
            )
        try:
            config = cls.model_validate(data)
        except ConfigError as exc:
            if not exc.errors:
                raise ConfigError(str(exc), source=source) from exc
            raise _config_error(exc.errors, source, cls) from None
        config._source = source
        if config.llm is not None:
            config.llm._source = source
        for entry in config.models.values():
            entry._source = source
        return config

    def get(self, name_or_type: str) -> LLMConfig:
        """A model by its name in ``models:``, else the first model of that api_type.

        ``"llm"`` or ``"default"`` name the ``llm:`` entry. A miss lists what there is.
        """
        found = self.find(name_or_type)
        if found is not None:
            return found
        names = list(self.models)
        close = difflib.get_close_matches(name_or_type, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"no model named {name_or_type!r}{hint}; models: {', '.join(names) or '(none)'}"
            + ("; 'llm' is the default model" if self.llm else ""),
            source=self._source,
            key="models",
        )

    def find(self, name_or_type: str) -> LLMConfig | None:
        """Like :meth:`get`, but None on a miss."""
        if name_or_type in self.models:
            return self.models[name_or_type]
        if name_or_type in ("llm", "default"):
            return self.llm
        try:
            api_type = LLMType(name_or_type)
        except UnknownLLMTypeError:
            return None
        if self.llm is not None and self.llm.api_type == api_type:
            return self.llm
        return next((m for m in self.models.values() if m.api_type == api_type), None)

    def by_type(self, api_type: LLMType | str) -> list[LLMConfig]:
        """Every configured model (``llm`` first) of one api_type."""
        wanted = LLMType(api_type)
        every = ([self.llm] if self.llm else []) + list(self.models.values())
        return [m for m in every if m.api_type == wanted]


def _expand_env(value: Any, environ: Mapping[str, str], source: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, environ, source, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, environ, source, (*path, str(i))) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if default is not None:  # the shell's ":-": unset or empty takes the default
            return value or default
        if value is not None:
            return value
        if path and path[-1] in SECRET_FIELDS:
            return ""
        raise ConfigError(
            f"environment variable {name!r} is not set (use ${{{name}:-default}} for a default)",
            source=source,
            key=".".join(path),
        )

    return _ENV_PATTERN.sub(substitute, value)


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    return [dict(err) for err in exc.errors(include_url=False)]


def _flatten(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors of nested config models (raised as ConfigErrors) spliced in, with full paths."""
    flat: list[dict[str, Any]] = []
    for err in errors:
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError) and cause.errors:
            for inner in _flatten(cause.errors):
                flat.append({**inner, "loc": (*err["loc"], *inner["loc"])})
        else:
            flat.append(err)
    return flat


def _config_error(
    errors: list[dict[str, Any]], source: str | None, model: type[BaseModel]
) -> ConfigError:
    """One ConfigError for pydantic's ``errors``: each names its key path and what is wrong.

    A ConfigError raised by a validator (an unknown ``api_type``...) keeps its class.
    """
    errors = _flatten(errors)
    lines = []
    first_key = None
    raised: list[ConfigError] = []
    for err in errors:
        key = ".".join(str(p) for p in err["loc"]) or model.__name__
        first_key = first_key or key
        msg = str(err["msg"]).removeprefix("Value error, ")
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            raised.append(cause)
            msg = str(cause)
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(
                str(err["loc"][-1]), list(LLMConfig.model_fields), n=1
            )
            msg = f"unknown field (did you mean {close[0]!r}?)" if close else "unknown field"
        lines.append(f"{key}: {msg}")
    cls = type(raised[0]) if len(errors) == 1 and raised else ConfigError
    if cls not in (ConfigError, UnknownLLMTypeError):
        cls = ConfigError  # subclasses with other constructors are reported as ConfigError
    if len(lines) == 1:
        return cls(lines[0].split(": ", 1)[1], source=source, key=first_key, errors=errors)
    return cls("invalid config:\n  " + "\n  ".join(lines), source=source, errors=errors)
