"""The pytest plugin as its users see it: small test files run by pytester, with the plugin loaded from the
package's ``pytest11`` entry point."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, assert_counts, assert_grants, assert_no_violations
from mcp_oauth_auth.testing import pytest_plugin as plugin

DOCS = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def docs_example() -> str:
    """The complete example of docs/testing.md: the python block after the ``<!-- example: ... -->`` comment."""
    match = re.search(r"<!-- example: test_notes_client\.py.*?-->\n```python\n(.*?)\n```\n", DOCS.read_text(), re.S)
    assert match is not None, "docs/testing.md lost its complete example"
    return match.group(1)


# -- installation ----------------------------------------------------------------------------------------------------


def test_registered_through_the_pytest11_entry_point() -> None:
    [entry] = [ep for ep in entry_points(group="pytest11") if ep.name == "mcp_oauth_auth"]
    assert entry.value == "mcp_oauth_auth.testing.pytest_plugin"
    assert entry.load() is plugin


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    heavy = ["httpx2", "respx", "uvicorn", "starlette", "cryptography", "mcp_oauth_auth.testing.fake"]
    code = f"import sys, mcp_oauth_auth.testing.pytest_plugin; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mcp_oauth_stack(**options): configure the fake MCP*"])


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses_the_stack(mcp_oauth_stack):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:mcp_oauth_auth")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mcp_oauth_stack' not found*"])
    assert "mcp_oauth_stack" not in pytester.runpytest_inprocess("-p", "no:mcp_oauth_auth", "--markers").stdout.str()


def test_explicit_loading_without_plugin_autoload(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_uses_the_stack(mcp_oauth_stack):\n    assert mcp_oauth_stack.count('token') == 0\n")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.runpytest_inprocess().assert_outcomes(errors=1)
    pytester.runpytest_inprocess("-p", "mcp_oauth_auth.testing.pytest_plugin").assert_outcomes(passed=1)


# -- the documented example ------------------------------------------------------------------------------------------


def test_the_complete_example_of_the_docs_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_notes_client=docs_example())
    result = pytester.runpytest_inprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)


def test_the_complete_example_fails_against_a_misbehaving_server(pytester: pytest.Pytester) -> None:
    # The same tests against a stack that rotates nothing and never issues refresh tokens: the refresh scenarios
    # must notice.
    pytester.makepyfile(test_notes_client=docs_example())
    pytester.makeconftest(
        """
        import pytest
        from mcp_oauth_auth.testing import FakeStackConfig

        @pytest.fixture
        def mcp_oauth_stack_config():
            return FakeStackConfig(issue_refresh_tokens=False)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7, failed=3)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_notes_client.py::test_expired_token_is_refreshed - *",
            "FAILED test_notes_client.py::test_short_lived_tokens_with_rotation - *",
            "FAILED test_notes_client.py::test_revoked_refresh_token_means_new_consent - *",
        ]
    )
    assert "saw ['authorization_code', 'authorization_code']" in result.stdout.str()


# -- configuration ---------------------------------------------------------------------------------------------------


def test_markers_configure_the_stack(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.mcp_oauth_stack(access_token_lifetime=5, challenge_scope="mcp:read")


        def test_module_marker(mcp_oauth_stack):
            assert mcp_oauth_stack.config.access_token_lifetime == 5
            assert mcp_oauth_stack.config.challenge_scope == "mcp:read"


        @pytest.mark.mcp_oauth_stack(access_token_lifetime=10, rotate_refresh_tokens=False)
        class TestClass:
            @pytest.mark.mcp_oauth_stack(access_token_lifetime=20)
            def test_closest_marker_wins(self, mcp_oauth_stack):
                assert mcp_oauth_stack.config.access_token_lifetime == 20
                assert mcp_oauth_stack.config.rotate_refresh_tokens is False
                assert mcp_oauth_stack.config.challenge_scope == "mcp:read"


        @pytest.mark.mcp_oauth_stack(base_url="https://tools.example", as_base_url="https://login.example")
        def test_origins(mcp_oauth_stack, mcp_oauth_client):
            assert mcp_oauth_stack.server_url == "https://tools.example/mcp"
            assert mcp_oauth_stack.issuer == "https://login.example"
            assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
        """
    )
    pytester.runpytest_inprocess("--strict-markers").assert_outcomes(passed=3)


def test_bad_marker_options_fail_the_test_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mcp_oauth_stack(acess_token_lifetime=5, zzz=1)
        def test_typo(mcp_oauth_stack):
            pass

        @pytest.mark.mcp_oauth_stack({"prm_mode": "none"})
        def test_positional(mcp_oauth_stack):
            pass

        @pytest.mark.mcp_oauth_stack(prm_mode="sometimes")
        def test_invalid_value(mcp_oauth_stack):
            pass

        @pytest.mark.mcp_oauth_stack(base_url="https://mcp.example")
        def test_base_url_with_a_server(mcp_oauth_server):
            pass
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(
        [
            "*unknown option(s) acess_token_lifetime (did you mean access_token_lifetime?), zzz;*",
            "*takes keyword arguments only*",
            "*prm_mode must be one of*",
            "*mcp_oauth_server chooses its own base URL*",
        ],
        consecutive=False,
    )


def test_the_config_fixture_sets_a_baseline_under_the_markers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from mcp_oauth_auth.testing import FakeStackConfig

        SHARED = FakeStackConfig(as_metadata_mode="oidc", scopes_supported=["mcp:read", "offline_access"])

        @pytest.fixture
        def mcp_oauth_stack_config():
            return SHARED
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from conftest import SHARED
        from mcp_oauth_auth.testing import FakeStackConfig

        def test_baseline(mcp_oauth_stack):
            assert mcp_oauth_stack.config.as_metadata_mode == "oidc"
            assert mcp_oauth_stack.config is not SHARED
            mcp_oauth_stack.config.scopes_supported.append("admin")  # this test's copy only

        @pytest.mark.mcp_oauth_stack(access_token_lifetime=7)
        def test_marker_on_top(mcp_oauth_stack):
            assert mcp_oauth_stack.config.as_metadata_mode == "oidc"
            assert mcp_oauth_stack.config.access_token_lifetime == 7
            assert SHARED.scopes_supported == ["mcp:read", "offline_access"]
            assert SHARED.access_token_lifetime == 3600

        @pytest.mark.parametrize(
            "mcp_oauth_stack_config", [FakeStackConfig(prm_mode="root"), FakeStackConfig(prm_mode="none")]
        )
        def test_parametrized(mcp_oauth_stack, mcp_oauth_client):
            assert mcp_oauth_stack.config.prm_mode in ("root", "none")
            assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=4)


# -- isolation and clean-up ------------------------------------------------------------------------------------------


def test_fixtures_leave_nothing_behind(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        seen = {}

        def test_respx_and_store(mcp_oauth_respx, mcp_oauth_stack, mcp_oauth_auth, mcp_oauth_store):
            with httpx.Client(auth=mcp_oauth_auth) as client:
                assert client.get(mcp_oauth_stack.server_url).status_code == 200
            assert len(mcp_oauth_store.list_keys()) == 1
            seen["stack"], seen["store"] = mcp_oauth_stack, mcp_oauth_store

        def test_fresh_state(mcp_oauth_stack, mcp_oauth_store):
            assert mcp_oauth_stack is not seen["stack"]
            assert mcp_oauth_stack.count("resource") == 0
            assert mcp_oauth_store is not seen["store"]
            assert mcp_oauth_store.list_keys() == []

        def test_respx_was_stopped():
            with httpx.Client() as client, pytest.raises(httpx.ConnectError):
                client.get("http://127.0.0.1:1/")  # respx would refuse an unrouted request

        def test_real_server(mcp_oauth_server, mcp_oauth_client):
            assert mcp_oauth_client.get(mcp_oauth_server.server_url).status_code == 200
            seen["url"] = mcp_oauth_server.server_url

        def test_server_was_stopped():
            with httpx.Client() as client, pytest.raises(httpx.ConnectError):
                client.get(seen["url"])
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=5)


def test_respx_fixture_works_alongside_respx_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_both_routers(respx_mock, mcp_oauth_respx, mcp_oauth_stack, mcp_oauth_auth):
            respx_mock.get("https://api.example/status").respond(json={"up": True})
            mcp_oauth_respx.get("https://cdn.example/logo").respond(content=b"png")
            with httpx.Client(auth=mcp_oauth_auth) as client:
                assert client.get(mcp_oauth_stack.server_url).status_code == 200
                assert client.get("https://api.example/status").json() == {"up": True}
                assert client.get("https://cdn.example/logo").content == b"png"
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_missing_optional_dependency_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_without_respx(monkeypatch, request):
            monkeypatch.setitem(sys.modules, "respx", None)  # "import respx" now fails
            request.getfixturevalue("mcp_oauth_respx")
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    assert "mcp_oauth_respx needs respx: pip install 'mcp-oauth-auth[testing]'" in result.stdout.str()


# -- assertion helpers -----------------------------------------------------------------------------------------------


def test_assertion_failures_explain_what_happened(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from mcp_oauth_auth.testing import assert_grants

        def test_expects_a_refresh(mcp_oauth_stack, mcp_oauth_client):
            mcp_oauth_client.get(mcp_oauth_stack.server_url)
            assert_grants(mcp_oauth_stack, ["authorization_code", "refresh_token"])
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    expected = """\
>       assert_grants(mcp_oauth_stack, ["authorization_code", "refresh_token"])
E       AssertionError: expected the grants ['authorization_code', 'refresh_token'], the token endpoint saw \
['authorization_code']
E       requests the fake stack received:
E         GET resource /mcp -> 401
E         GET prm /.well-known/oauth-protected-resource/mcp -> 200
"""
    assert expected in output
    assert "E         POST token /token -> 200\nE         GET resource /mcp -> 200\nE       token requests:" in output
    assert "raise AssertionError" not in result.stdout.str()  # the helper's own frame is hidden


def test_helpers_pass_and_fail() -> None:
    stack = FakeMCPStack(FakeStackConfig())
    import httpx

    from mcp_oauth_auth import MCPOAuth, MemoryTokenStore

    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer)
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        client.get(stack.server_url)
        client.get(f"{stack.server_url}?access_token=leaked")
    assert_grants(stack, ["authorization_code"])
    assert_counts(stack, authorize=1, register=1, token=1)
    with pytest.raises(AssertionError, match=r"authorize: expected 2, got 1"):
        assert_counts(stack, authorize=2, register=1)
    with pytest.raises(AssertionError, match=r"1 protocol violation\(s\):\n  - access token sent in the query"):
        assert_no_violations(stack)
    with pytest.raises(TypeError):
        assert_counts(stack)
    with pytest.raises(ValueError, match="unknown endpoint"):
        assert_counts(stack, authorise=1)


def test_describe_traffic_shows_no_tokens_or_queries() -> None:
    from mcp_oauth_auth.testing import describe_traffic

    stack = FakeMCPStack()
    stack.handle("GET", f"{stack.server_url}?access_token=secret-value", [("authorization", "Bearer t0ken")])
    text = describe_traffic(stack)
    assert text == "requests the fake stack received:\n  GET resource /mcp -> 400"
    assert describe_traffic(FakeMCPStack()) == "requests the fake stack received:\n  (none)"


def test_stack_clock() -> None:
    clock = plugin.StackClock()
    before = clock()
    clock.advance(3600)
    assert 3600 <= clock() - before < 3660
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_the_docs_list_every_fixture() -> None:
    text = DOCS.read_text()
    fixtures = [name for name in plugin.__all__ if name.startswith("mcp_oauth_")]
    assert len(fixtures) == 11
    missing = [name for name in fixtures if f"| `{name}` |" not in text]
    assert missing == []
