from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.config import CompressType, LLMConfig, LLMType, ModelsConfig, provider_defaults
from harness.errors import ConfigError, MissingAPIKeyError, UnknownLLMTypeError

SEED_TYPES = [
    "openai",
    "anthropic",
    "claude",
    "gemini",
    "azure",
    "bedrock",
    "qianfan",
    "dashscope",
    "ark",
    "zhipuai",
    "spark",
    "moonshot",
    "yi",
    "deepseek",
    "ollama",
    "ollama.generate",
    "ollama.embeddings",
    "ollama.embed",
    "open_llm",
    "fireworks",
    "mistral",
    "open_router",
    "openrouter",
    "openrouter_reasoning",
    "siliconflow",
    "llama_api",
    "metagpt",
]

SEED_FIELDS = [
    "api_key",
    "api_type",
    "base_url",
    "api_version",
    "model",
    "pricing_plan",
    "access_key",
    "secret_key",
    "session_token",
    "endpoint",
    "app_id",
    "api_secret",
    "domain",
    "max_token",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "best_of",
    "n",
    "stream",
    "seed",
    "logprobs",
    "top_logprobs",
    "timeout",
    "context_length",
    "region_name",
    "proxy",
    "calc_usage",
    "compress_type",
    "use_system_prompt",
    "reasoning",
    "reasoning_max_token",
]


@pytest.mark.parametrize("value", SEED_TYPES)
def test_every_seed_llm_type_parses(value: str) -> None:
    assert LLMType(value).value == value


def test_llm_type_is_case_insensitive() -> None:
    assert LLMType("OpenAI") is LLMType.OPENAI


def test_unknown_llm_type_lists_valid_values_and_suggests() -> None:
    with pytest.raises(UnknownLLMTypeError) as info:
        LLMType("opnai")
    message = str(info.value)
    assert "did you mean 'openai'" in message
    for value in SEED_TYPES:
        assert value in message


def test_unknown_api_type_in_config_does_not_fall_back_to_openai() -> None:
    with pytest.raises(ConfigError, match="unknown api_type 'gpt'"):
        ModelsConfig.from_yaml("llm:\n  api_type: gpt\n  model: x\n", source="c.yaml")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", CompressType.NO_COMPRESS),
        (None, CompressType.NO_COMPRESS),
        ("POST_CUT_BY_TOKEN", CompressType.POST_CUT_BY_TOKEN),
        ("pre_cut_by_msg", CompressType.PRE_CUT_BY_MSG),
    ],
)
def test_compress_type_accepts_empty_and_any_case(raw: str | None, expected: CompressType) -> None:
    assert CompressType(raw) is expected
    assert LLMConfig(compress_type=raw).compress_type is expected


def test_unknown_compress_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="valid values: no_compress"):
        CompressType("cut_everything")


def test_llm_config_has_every_seed_field() -> None:
    assert set(SEED_FIELDS) <= set(LLMConfig.model_fields)


def test_llm_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="temprature"):
        LLMConfig(temprature=0.5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("api_type", "host"),
    [
        ("openai", "api.openai.com"),
        ("anthropic", "api.anthropic.com"),
        ("claude", "api.anthropic.com"),
        ("deepseek", "api.deepseek.com"),
        ("moonshot", "api.moonshot.cn"),
        ("mistral", "api.mistral.ai"),
        ("openrouter", "openrouter.ai"),
        ("fireworks", "api.fireworks.ai"),
        ("siliconflow", "api.siliconflow.cn"),
        ("yi", "api.lingyiwanwu.com"),
    ],
)
def test_base_url_defaults_per_provider(api_type: str, host: str) -> None:
    url = LLMConfig(api_type=api_type).resolved_base_url()
    assert url is not None and host in url


def test_anthropic_does_not_default_to_openai_host() -> None:
    assert "openai" not in (LLMConfig(api_type="anthropic").resolved_base_url() or "")


def test_explicit_base_url_wins() -> None:
    config = LLMConfig(api_type="deepseek", base_url="http://127.0.0.1:9/v1")
    assert config.resolved_base_url() == "http://127.0.0.1:9/v1"


def test_api_key_from_config_beats_environment() -> None:
    config = LLMConfig(api_key="from-config")
    assert config.resolved_api_key({"OPENAI_API_KEY": "from-env"}) == "from-config"


@pytest.mark.parametrize(
    ("api_type", "env_var"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("deepseek", "DEEPSEEK_API_KEY"),
    ],
)
def test_api_key_from_provider_env_var(api_type: str, env_var: str) -> None:
    assert LLMConfig(api_type=api_type).resolved_api_key({env_var: "k"}) == "k"


def test_placeholder_key_counts_as_missing() -> None:
    assert LLMConfig(api_key="YOUR_API_KEY").api_key is None


def test_missing_key_is_not_an_error_until_required() -> None:
    config = LLMConfig(api_type="deepseek", model="deepseek-chat")
    assert config.resolved_api_key({}) is None
    with pytest.raises(MissingAPIKeyError) as info:
        config.require_api_key({})
    assert info.value.env_var == "DEEPSEEK_API_KEY"
    assert "DEEPSEEK_API_KEY" in str(info.value)


def test_missing_key_error_names_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  claude:\n    api_type: anthropic\n    model: claude-x\n")
    config = ModelsConfig.from_yaml_file(path, environ={}).get("claude")
    with pytest.raises(MissingAPIKeyError) as info:
        config.require_api_key({})
    assert str(path) in str(info.value)
    assert "ANTHROPIC_API_KEY" in str(info.value)


def test_keyless_providers_need_no_key() -> None:
    assert LLMConfig(api_type="ollama").require_api_key({})
    assert LLMConfig(api_type="open_llm", base_url="http://127.0.0.1:8080/v1").require_api_key({})


SEED_YAML = """
llm:
  api_type: "openai"
  model: "gpt-4o-mini"
  base_url: "https://api.openai.com/v1"
  api_key: "${OPENAI_API_KEY}"
models:
  "claude-fast":
    api_type: "claude"
    model: "claude-haiku-4-5"
  "ds":
    api_type: "deepseek"
    model: "deepseek-chat"
    temperature: ${DS_TEMP:-0.7}
embedding:
  api_type: "openai"
"""


def test_models_config_loads_seed_shape_with_env_expansion() -> None:
    config = ModelsConfig.from_yaml(SEED_YAML, environ={"OPENAI_API_KEY": "sk-test"})
    assert config.llm is not None and config.llm.api_key == "sk-test"
    assert config.get("claude-fast").model == "claude-haiku-4-5"
    assert config.get("ds").temperature == 0.7


def test_unset_secret_env_var_leaves_key_empty() -> None:
    config = ModelsConfig.from_yaml(SEED_YAML, environ={})
    assert config.llm is not None and config.llm.api_key is None


def test_unset_non_secret_env_var_is_an_error_naming_file_and_key() -> None:
    text = "llm:\n  api_type: openai\n  base_url: ${MY_BASE}\n"
    with pytest.raises(ConfigError) as info:
        ModelsConfig.from_yaml(text, source="conf.yaml", environ={})
    message = str(info.value)
    assert "conf.yaml" in message and "llm.base_url" in message and "MY_BASE" in message


def test_lookup_by_name_and_by_api_type() -> None:
    config = ModelsConfig.from_yaml(SEED_YAML, environ={})
    assert config.get("deepseek").model == "deepseek-chat"
    assert config.get("claude").model == "claude-haiku-4-5"
    assert config.get("openai") is config.llm
    assert config.get("default") is config.llm
    assert [m.model for m in config.by_type("deepseek")] == ["deepseek-chat"]


def test_lookup_miss_suggests_a_name() -> None:
    config = ModelsConfig.from_yaml(SEED_YAML, environ={})
    with pytest.raises(ConfigError, match="did you mean 'claude-fast'"):
        config.get("claude-fsat")
    assert config.find("nothing") is None


def test_invalid_field_error_names_file_and_key_path() -> None:
    text = "models:\n  m1:\n    api_type: openai\n    temperature: hot\n"
    with pytest.raises(ConfigError) as info:
        ModelsConfig.from_yaml(text, source="models.yaml")
    assert info.value.source == "models.yaml"
    assert info.value.key == "models.m1.temperature"


def test_misspelled_field_in_file_is_reported() -> None:
    text = "models:\n  m1:\n    api_type: openai\n    modle: gpt-4o\n"
    with pytest.raises(ConfigError) as info:
        ModelsConfig.from_yaml(text, source="models.yaml")
    assert info.value.key == "models.m1.modle"
    assert "unknown field (did you mean 'model'?)" in str(info.value)


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match="line 2"):
        ModelsConfig.from_yaml("llm:\n  model: [unclosed\n", source="bad.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        ModelsConfig.from_yaml_file(tmp_path / "absent.yaml")


def test_provider_defaults_cover_every_llm_type() -> None:
    for llm_type in LLMType:
        assert provider_defaults(llm_type) is not None


@pytest.mark.parametrize("typo", ["model", "modles", "llms"])
def test_a_misspelt_top_level_section_is_an_error(typo: str) -> None:
    with pytest.raises(ConfigError, match="did you mean") as info:
        ModelsConfig.from_yaml(f"{typo}:\n  x:\n    api_type: openai\n", source="c.yaml")
    assert info.value.key == typo


def test_other_seed_sections_are_ignored() -> None:
    text = "llm:\n  model: gpt-4o\nembedding:\n  api_type: openai\nbrowser:\n  engine: x\n"
    assert ModelsConfig.from_yaml(text).llm is not None


# -- issue #9 item 3: invalid configs are ConfigErrors, with pydantic's details -----------------


def test_llm_config_with_an_unknown_api_type_raises_config_error_not_validation_error() -> None:
    with pytest.raises(ConfigError) as info:
        LLMConfig(api_type="foo")
    assert not isinstance(info.value, ValidationError)
    assert isinstance(info.value, UnknownLLMTypeError)
    assert info.value.key == "api_type"
    assert "unknown api_type 'foo'" in str(info.value)
    [detail] = info.value.errors
    assert detail["loc"] == ("api_type",) and detail["input"] == "foo"


@pytest.mark.parametrize(
    ("fields", "key", "pydantic_type"),
    [
        ({"max_token": -1}, "max_token", "greater_than"),
        ({"top_p": 2.0}, "top_p", "less_than_equal"),
        ({"timeout": "soon"}, "timeout", "float_parsing"),
        ({"max_retries": 99}, "max_retries", "less_than_equal"),
        ({"temprature": 0.5}, "temprature", "extra_forbidden"),
        ({"price": {"input": -1, "output": 1}}, "price.input", "greater_than_equal"),
        ({"price": {"input": 1}}, "price.output", "missing"),
        ({"compress_type": "cut_everything"}, "compress_type", "value_error"),
    ],
)
def test_invalid_llm_config_fields_raise_config_error_with_key_and_details(
    fields: dict[str, object], key: str, pydantic_type: str
) -> None:
    with pytest.raises(ConfigError) as info:
        LLMConfig(**fields)  # type: ignore[arg-type]
    assert not isinstance(info.value, ValidationError)
    assert info.value.key == key
    assert f"key {key!r}" in str(info.value)
    assert [(".".join(map(str, e["loc"])), e["type"]) for e in info.value.errors] == [
        (key, pydantic_type)
    ]


def test_several_invalid_fields_are_listed_in_one_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        LLMConfig(max_token=0, top_p=3)
    assert "max_token: " in str(info.value) and "top_p: " in str(info.value)
    assert len(info.value.errors) == 2


def test_invalid_assignment_and_model_validate_raise_config_error() -> None:
    config = LLMConfig()
    with pytest.raises(ConfigError, match="key 'max_token'"):
        config.max_token = 0
    assert config.max_token == 4096
    with pytest.raises(UnknownLLMTypeError, match="did you mean 'openai'"):
        LLMConfig.model_validate({"api_type": "opena"})


def test_config_error_keeps_its_details_across_pickling() -> None:
    import pickle

    with pytest.raises(ConfigError) as info:
        LLMConfig(max_token=-1)
    clone = pickle.loads(pickle.dumps(info.value))
    assert str(clone) == str(info.value)
    assert clone.errors[0]["loc"] == ("max_token",)


def test_models_config_file_errors_still_name_the_file_and_the_full_key_path() -> None:
    text = "llm:\n  api_type: foo\nmodels:\n  fast:\n    max_token: -2\n    pirce: {}\n"
    with pytest.raises(ConfigError) as info:
        ModelsConfig.from_yaml(text, source="conf.yaml")
    message = str(info.value)
    assert message.startswith("conf.yaml: invalid config:")
    assert "llm.api_type: unknown api_type 'foo'" in message
    assert "models.fast.max_token: Input should be greater than 0" in message
    assert "models.fast.pirce: unknown field (did you mean 'price'?)" in message
    assert {".".join(map(str, e["loc"])) for e in info.value.errors} == {
        "llm.api_type",
        "models.fast.max_token",
        "models.fast.pirce",
    }


def test_models_config_single_error_names_file_and_key() -> None:
    with pytest.raises(UnknownLLMTypeError) as info:
        ModelsConfig.from_yaml("models:\n  x:\n    api_type: opena\n", source="conf.yaml")
    assert info.value.source == "conf.yaml" and info.value.key == "models.x.api_type"


def test_model_validate_json_of_an_invalid_config_raises_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        LLMConfig.model_validate_json('{"max_token": -1}')
    assert not isinstance(info.value, ValidationError)
    assert info.value.key == "max_token"
    assert info.value.errors and info.value.errors[0]["loc"] == ("max_token",)


def test_model_validate_json_of_text_that_is_not_json_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="Invalid JSON"):
        LLMConfig.model_validate_json("{not json")


def test_model_validate_strings_of_an_invalid_config_raises_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        LLMConfig.model_validate_strings({"max_token": "many"})
    assert info.value.key == "max_token"


def test_a_config_file_that_is_not_utf8_raises_config_error_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config2.yaml"
    path.write_bytes(b"llm:\n  model: caf\xe9\n")  # latin-1
    with pytest.raises(ConfigError) as info:
        ModelsConfig.from_yaml_file(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    assert "not UTF-8" in str(info.value)
