"""One of several processes sharing a credential store: requests for a while, then reports what happened.

Usage: python -m tests.integration.multiprocess_worker SERVER_URL STORE_DIR SECONDS
Prints one JSON object: {"statuses": {"200": n, ...}, "errors": [...], "authorizations": n}.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import httpx

from mcp_oauth_auth import MCPOAuth, RetryPolicy
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore


def main(server_url: str, store_dir: str, seconds: float) -> dict[str, object]:
    authorizations = 0

    def no_browser_here(url: str) -> str:
        nonlocal authorizations
        authorizations += 1
        raise RuntimeError("this worker must never need a new authorization")

    auth = MCPOAuth(
        server_url,
        store=EncryptedFileTokenStore(store_dir, use_keyring=False),
        authorizer=no_browser_here,
        retry=RetryPolicy(attempts=1),
    )
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(auth=auth, timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                statuses[str(client.get(server_url).status_code)] += 1
            except Exception as exc:  # reported to the test, which fails on any
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.005)
    return {"statuses": dict(statuses), "errors": errors[:10], "authorizations": authorizations}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], float(sys.argv[3]))))
