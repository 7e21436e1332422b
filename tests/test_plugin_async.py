"""Issue #13 item 3: ``async def`` tests run out of the box. Without an async plugin
(``-p no:asyncio`` stands for a fresh project), harness runs a coroutine test in a fresh event
loop; with pytest-asyncio active, harness stays out of its way."""

from __future__ import annotations

import pytest

from tests.test_pytest_plugin import INI

pytest_plugins = ["pytester"]


ASYNC_TESTS = """
import asyncio

import pytest

LOOPS = []


@pytest.fixture
def greeting():
    return "hi"


async def test_a_plain_coroutine(greeting, fake_llm):
    fake_llm.replies = [greeting]
    assert await fake_llm.aask("hello") == "hi"
    LOOPS.append(asyncio.get_running_loop())


async def test_another_one_gets_a_fresh_loop():
    LOOPS.append(asyncio.get_running_loop())
    assert LOOPS[0] is not LOOPS[1]
    assert LOOPS[0].is_closed()


async def test_a_failure_is_reported():
    await asyncio.sleep(0)
    assert 1 == 2, "the async assertion ran"
"""


def test_async_tests_run_without_an_async_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_async=ASYNC_TESTS)
    result = pytester.runpytest("-p", "no:asyncio", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the async assertion ran*"])
    result.stdout.no_fnmatch_line("*not natively supported*")


def test_without_the_harness_plugin_they_would_not_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_async="async def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:llm")
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])


def test_an_anyio_marked_test_is_left_to_anyio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_anyio="""
        import pytest
        import sniffio

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        async def test_on_anyio():
            assert sniffio.current_async_library() == "asyncio"
        """
    )
    pytester.runpytest("-p", "no:asyncio").assert_outcomes(passed=1)


def test_with_pytest_asyncio_harness_stays_out_of_its_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shared_loop="""
        import asyncio
        import pytest

        LOOPS = []

        @pytest.mark.asyncio(loop_scope="module")
        async def test_one():
            LOOPS.append(asyncio.get_running_loop())

        @pytest.mark.asyncio(loop_scope="module")
        async def test_two():
            LOOPS.append(asyncio.get_running_loop())
            assert LOOPS[0] is LOOPS[1]  # pytest-asyncio's module loop, not a fresh one
        """
    )
    pytester.makeini(INI)
    pytester.runpytest("-p", "asyncio").assert_outcomes(passed=2)
