"""One fresh interpreter of scenario 4 (cold start); prints one JSON line of timings in seconds.

    python cold_start_child.py import                      import httpx, then mcp_oauth_auth
    python cold_start_child.py import-sdk                  import httpx2, then the official SDK's OAuth client
    python cold_start_child.py first VARIANT URL TOKEN [DIR]
                                                           the first authenticated response of a new process:
                                                           VARIANT is static, keyfile, password or sdk
    python cold_start_child.py kdf DIR                     open an encrypted file store: first load, a second
                                                           store object's load, a repeated load

On purpose this file imports nothing at module level beyond the standard library, and nothing from the
benchmark helpers: each variant imports exactly what a program of its kind would.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402 - after the clock starts, like everything a real program imports
import sys  # noqa: E402
from typing import Any  # noqa: E402

BODY = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
HEADERS = {"content-type": "application/json"}


def _transport(library: Any, token: str) -> Any:
    """An in-process MCP endpoint of ``library`` that answers 200 to the right bearer token, else 401."""
    expected = f"Bearer {token}"

    class Transport(library.AsyncBaseTransport):  # type: ignore[misc]
        async def handle_async_request(self, request: Any) -> Any:
            status = 200 if request.headers.get("authorization") == expected else 401
            return library.Response(status, content=b"{}")

    return Transport()


def _packages(modules: set[str]) -> list[str]:
    """The top-level packages of ``modules``, private ones (``_queue``, ``_cffi_backend``) left out."""
    return sorted({name.partition(".")[0] for name in modules if not name.startswith("_")})


def measure_import() -> dict[str, Any]:
    start = time.perf_counter()
    import httpx  # noqa: F401

    middle = time.perf_counter()
    before = set(sys.modules)
    import mcp_oauth_auth  # noqa: F401

    end = time.perf_counter()
    packages = sorted({name.partition(".")[0] for name in set(sys.modules) - before} - {"mcp_oauth_auth"})
    return {"base": middle - start, "extra": end - middle, "packages": packages}


def measure_import_sdk() -> dict[str, Any]:
    start = time.perf_counter()
    import httpx2  # noqa: F401

    middle = time.perf_counter()
    before = set(sys.modules)
    from mcp.client.auth import OAuthClientProvider  # noqa: F401

    end = time.perf_counter()
    packages = sorted({name.partition(".")[0] for name in set(sys.modules) - before})
    return {"base": middle - start, "extra": end - middle, "packages": packages}


def measure_first(variant: str, url: str, token: str, directory: str | None) -> dict[str, Any]:
    import asyncio
    import importlib

    library = importlib.import_module("httpx2" if variant == "sdk" else "httpx")
    if variant == "sdk":
        from mcp.client.auth import OAuthClientProvider
        from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
        from pydantic import AnyUrl
    elif variant != "static":
        from mcp_oauth_auth import EncryptedFileTokenStore, MCPOAuth
    imported = time.perf_counter()
    modules: dict[str, set[str]] = {"imported": set(sys.modules)}

    def refuse(authorization_url: str) -> str:
        raise RuntimeError("asked to authorize: the stored credential was not used")

    class Storage:  # the SDK's TokenStorage protocol; the SDK ships no persistent storage
        def __init__(self, tokens: Any, client_info: Any) -> None:
            self.tokens, self.client_info = tokens, client_info

        async def get_tokens(self) -> Any:
            return self.tokens

        async def set_tokens(self, tokens: Any) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> Any:
            return self.client_info

        async def set_client_info(self, client_info: Any) -> None:
            self.client_info = client_info

    options: dict[str, Any] = {"transport": _transport(library, token)}
    if variant == "static":
        options["headers"] = {"Authorization": f"Bearer {token}"}
    elif variant == "sdk":
        redirect = AnyUrl("http://127.0.0.1:33418/callback")
        storage = Storage(
            OAuthToken(access_token=token, expires_in=86_400),
            OAuthClientInformationFull(client_id="bench-client", redirect_uris=[redirect]),
        )
        options["auth"] = OAuthClientProvider(url, OAuthClientMetadata(redirect_uris=[redirect]), storage)
    else:
        store = EncryptedFileTokenStore(directory, use_keyring=False)
        options["auth"] = MCPOAuth(url, store=store, authorizer=refuse)

    timings: dict[str, float] = {}

    async def first_request() -> None:
        async with library.AsyncClient(**options) as client:
            timings["setup_done"] = time.perf_counter()
            modules["setup_done"] = set(sys.modules)
            response = await client.post(url, content=BODY, headers=HEADERS)
            timings["responded"] = time.perf_counter()
            modules["responded"] = set(sys.modules)
            if response.status_code != 200:
                raise RuntimeError(f"first request answered {response.status_code}")

    asyncio.run(first_request())
    return {
        "import": imported - STARTED,
        "setup": timings["setup_done"] - imported,
        "request": timings["responded"] - timings["setup_done"],
        "total": timings["responded"] - STARTED,
        "setup_packages": _packages(modules["setup_done"] - modules["imported"]),
        "request_packages": _packages(modules["responded"] - modules["setup_done"]),
    }


def measure_kdf(directory: str) -> dict[str, float]:
    from mcp_oauth_auth import EncryptedFileTokenStore

    store = EncryptedFileTokenStore(directory, use_keyring=False)
    [key] = store.list_keys()
    start = time.perf_counter()
    store.load(key)
    first = time.perf_counter()
    EncryptedFileTokenStore(directory, use_keyring=False).load(key)
    second = time.perf_counter()
    store.load(key)
    again = time.perf_counter()
    return {"first": first - start, "second_store": second - first, "repeat": again - second}


def main(argv: list[str]) -> None:
    mode, arguments = argv[0], argv[1:]
    result: dict[str, Any]
    if mode == "import":
        result = measure_import()
    elif mode == "import-sdk":
        result = measure_import_sdk()
    elif mode == "first":
        variant, url, token = arguments[:3]
        result = measure_first(variant, url, token, arguments[3] if len(arguments) > 3 else None)
    elif mode == "kdf":
        result = measure_kdf(arguments[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
