from __future__ import annotations

import harness


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in harness.__all__ if n != "__version__"]
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert len(set(harness.__all__)) == len(harness.__all__)


def test_every_exported_name_exists_and_public_names_are_exported() -> None:
    for name in harness.__all__:
        assert hasattr(harness, name), name
    public = {
        name
        for name, value in vars(harness).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("harness.")
    }
    assert public <= set(harness.__all__)


def test_every_exported_callable_has_a_docstring() -> None:
    for name in harness.__all__:
        value = getattr(harness, name)
        if callable(value):
            assert value.__doc__, name


def test_importing_harness_does_not_import_the_provider_sdks() -> None:
    # The SDKs take seconds to import; they load when a provider first builds its client.
    import subprocess
    import sys

    code = "import sys, harness; print(sorted({'openai', 'anthropic'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
