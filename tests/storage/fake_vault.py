"""A small, faithful fake of the parts of HashiCorp Vault's HTTP API that the Vault store uses, served on loopback.

Reproduced Vault behaviours (KV version 2 secrets engine, API ``/v1``):

* ``POST``/``PUT /v1/<mount>/data/<path>`` with ``{"data": {...}, "options": {"cas": N}}``: a new version, answered
  with ``data.version``. With ``cas``, the write happens only when N is the current version (0: the path has no
  metadata yet); otherwise HTTP 400 ``check-and-set parameter did not match the current version``. A mount keeps
  at most 10 versions per path (Vault's default ``max_versions``).
* ``GET /v1/<mount>/data/<path>[?version=N]``: ``data.data`` and ``data.metadata``. Nothing there: 404
  ``{"errors": []}``. A deleted or destroyed version: 404 whose body still carries ``data.data = null`` and the
  version's metadata (that is how Vault, and hvac's ``raise_on_deleted_version``, tell the two apart).
* ``DELETE /v1/<mount>/data/<path>``: soft delete of the latest version (metadata and the version number stay, so
  a later ``cas`` must name that version). ``DELETE /v1/<mount>/metadata/<path>``: every version and the metadata
  gone (``cas=0`` works again). Both answer 204, also for a missing path.
* ``LIST /v1/<mount>/metadata/<folder>`` (or ``GET ...?list=true``): the names directly below, folders with a
  trailing ``/``, soft-deleted entries included; 404 ``{"errors": []}`` when there are none.
  ``GET /v1/<mount>/metadata/<path>``: ``current_version``, ``oldest_version``, ``versions``.
* Authentication with ``X-Vault-Token``: an unknown, expired or missing token gets 403
  ``{"errors": ["permission denied"]}``. ``POST /v1/auth/approle/login`` with ``role_id``/``secret_id`` returns a
  new client token in ``auth.client_token``; a wrong pair gets 400 ``invalid role or secret ID``.
* ``X-Vault-Namespace``: every namespace has its own data (each with the same mounts).
* An unknown mount gets 404 ``no handler for route "<mount>/..."``; a sealed Vault answers everything with 503
  ``{"errors": ["Vault is sealed"]}``.

Not reproduced: policies (a known token may do anything), token TTLs (tests expire tokens explicitly),
``cas_required``, ``delete_version_after``, undelete/destroy, KV v1, response wrapping.

Test switches: :attr:`FakeVault.sealed`, :attr:`FakeVault.request_count` and :attr:`FakeVault.requests`,
:meth:`FakeVault.fail_next`, :meth:`FakeVault.add_token`, :meth:`FakeVault.expire_token`,
:meth:`FakeVault.add_approle` (and :attr:`FakeVault.logins`), :meth:`FakeVault.write_raw` and
:meth:`FakeVault.secret_data` to plant and inspect data as another Vault client would, :meth:`FakeVault.reset`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from mcp_oauth_auth.testing import serve_asgi

__all__ = ["FakeVault", "serve_vault"]

ROOT_TOKEN = "hvs.fake-root-token"
MAX_VERSIONS = 10


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class _Version:
    data: dict[str, Any]
    created_time: str = field(default_factory=_now)
    deletion_time: str = ""
    destroyed: bool = False

    def metadata(self, number: int) -> dict[str, Any]:
        return {
            "created_time": self.created_time,
            "custom_metadata": None,
            "deletion_time": self.deletion_time,
            "destroyed": self.destroyed,
            "version": number,
        }


@dataclass
class _Secret:
    versions: dict[int, _Version] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    created_time: str = field(default_factory=_now)
    updated_time: str = field(default_factory=_now)


class _Error(Exception):
    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


class FakeVault:
    """An ASGI app answering like Vault. ``root_token`` is valid from the start; state is shared across threads."""

    def __init__(self, *, root_token: str = ROOT_TOKEN, mounts: tuple[str, ...] = ("secret",)) -> None:
        self.root_token = root_token
        self.mounts = set(mounts)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to a fresh, unsealed Vault with only the root token and no data."""
        with self._lock:
            self.sealed = False
            self.request_count = 0
            self.requests: list[tuple[str, str]] = []
            self.logins = 0
            self._tokens = {self.root_token}
            self._roles: dict[str, str] = {}
            self._failures: list[tuple[str, int, str]] = []
            self._data: dict[tuple[str, str], dict[str, _Secret]] = {}  # (namespace, mount) -> path -> secret

    # -- test switches -------------------------------------------------------------------------------------------

    def fail_next(
        self, count: int, status: int = 500, error: str = "1 error occurred:\n\t* internal error\n\n", *, path: str = ""
    ) -> None:
        """Answer the next ``count`` requests (whose URL path contains ``path``) with ``status`` and
        ``{"errors": [error]}``, without acting on them."""
        with self._lock:
            self._failures.extend([(path, status, error)] * count)

    def add_approle(self, role_id: str, secret_id: str) -> None:
        with self._lock:
            self._roles[role_id] = secret_id

    def add_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    def tokens(self) -> set[str]:
        with self._lock:
            return set(self._tokens)

    def secret_data(self, path: str, *, mount: str = "secret", namespace: str = "") -> dict[str, Any] | None:
        """The latest live data at ``path``, for assertions (None when missing or deleted)."""
        with self._lock:
            secret = self._data.get((namespace, mount), {}).get(path)
            if secret is None or secret.current_version not in secret.versions:
                return None
            version = secret.versions[secret.current_version]
            return None if version.deletion_time or version.destroyed else dict(version.data)

    def write_raw(self, path: str, data: dict[str, Any], *, mount: str = "secret", namespace: str = "") -> int:
        """Write ``data`` at ``path`` as any Vault client could (no cas); the new version."""
        with self._lock:
            return self._write(self._secrets(namespace, mount), path, data, None)

    # -- ASGI ------------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = Request(scope, receive)
        body = await request.body()
        try:
            status, document = self._handle(request, body)
        except _Error as error:
            status, document = error.status, {"errors": error.errors}
        response = Response(status_code=204) if document is None else JSONResponse(document, status_code=status)
        await response(scope, receive, send)

    def _handle(self, request: Request, body: bytes) -> tuple[int, dict[str, Any] | None]:
        method = request.method.upper()
        if method == "GET" and request.query_params.get("list") == "true":
            method = "LIST"
        path = request.url.path
        with self._lock:
            self.request_count += 1
            self.requests.append((method, path))
            for index, (part, status, error) in enumerate(self._failures):
                if part in path:
                    del self._failures[index]
                    raise _Error(status, error)
            if self.sealed:
                raise _Error(503, "Vault is sealed")
            if not path.startswith("/v1/"):
                raise _Error(404, "")
            route = path[len("/v1/") :].strip("/")
            namespace = request.headers.get("x-vault-namespace", "").strip("/")
            if route.startswith("auth/") and route.endswith("/login") and method in ("POST", "PUT"):
                return 200, self._approle_login(_json(body))
            if request.headers.get("x-vault-token") not in self._tokens:
                raise _Error(403, "permission denied")
            mount, _, rest = route.partition("/")
            kind, _, key = rest.partition("/")
            if mount not in self.mounts or kind not in ("data", "metadata"):
                raise _Error(404, f'no handler for route "{route}". route entry not found.')
            store = self._secrets(namespace, mount)
            if kind == "data":
                return self._data_endpoint(store, method, key, request, body)
            return self._metadata_endpoint(store, method, key)

    def _secrets(self, namespace: str, mount: str) -> dict[str, _Secret]:
        return self._data.setdefault((namespace, mount), {})

    def _approle_login(self, document: dict[str, Any]) -> dict[str, Any]:
        role_id, secret_id = document.get("role_id"), document.get("secret_id")
        if not isinstance(role_id, str) or self._roles.get(role_id) != secret_id:
            raise _Error(400, "invalid role or secret ID")
        token = f"hvs.approle-{secrets.token_urlsafe(18)}"
        self._tokens.add(token)
        self.logins += 1
        return _envelope(
            None,
            auth={
                "client_token": token,
                "accessor": uuid.uuid4().hex,
                "policies": ["default", "mcp-oauth"],
                "token_policies": ["default", "mcp-oauth"],
                "metadata": {"role_name": "mcp-oauth"},
                "lease_duration": 3600,
                "renewable": True,
                "entity_id": "",
                "token_type": "service",
                "orphan": True,
            },
        )

    def _data_endpoint(
        self, store: dict[str, _Secret], method: str, key: str, request: Request, body: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        if method == "GET":
            secret = store.get(key)
            requested = int(request.query_params.get("version") or 0)
            number = secret.current_version if secret is not None and requested == 0 else requested
            if secret is None or number not in secret.versions:
                raise _Error(404)
            version = secret.versions[number]
            document = _envelope({"data": None, "metadata": version.metadata(number)})
            if version.deletion_time or version.destroyed:
                return 404, document
            document["data"]["data"] = version.data
            return 200, document
        if method in ("POST", "PUT"):
            payload = _json(body)
            data, options = payload.get("data"), payload.get("options") or {}
            if not isinstance(data, dict):
                raise _Error(400, "no data provided")
            cas = options.get("cas") if isinstance(options, dict) else None
            number = self._write(store, key, data, cas)
            return 200, _envelope(store[key].versions[number].metadata(number))
        if method == "DELETE":
            secret = store.get(key)
            if secret is not None and secret.current_version in secret.versions:
                secret.versions[secret.current_version].deletion_time = _now()
            return 204, None
        raise _Error(405, "1 error occurred:\n\t* unsupported operation\n\n")

    def _write(self, store: dict[str, _Secret], key: str, data: dict[str, Any], cas: object) -> int:
        secret = store.get(key)
        current = 0 if secret is None else secret.current_version
        if cas is not None and cas != current:
            raise _Error(400, "check-and-set parameter did not match the current version")
        if secret is None:
            secret = store[key] = _Secret()
        secret.current_version += 1
        secret.versions[secret.current_version] = _Version(json.loads(json.dumps(data)))
        secret.updated_time = _now()
        while len(secret.versions) > MAX_VERSIONS:
            del secret.versions[min(secret.versions)]
        secret.oldest_version = min(secret.versions)
        return secret.current_version

    def _metadata_endpoint(self, store: dict[str, _Secret], method: str, key: str) -> tuple[int, dict[str, Any] | None]:
        if method == "LIST":
            folder = f"{key}/" if key else ""
            names = set()
            for path in store:
                if path.startswith(folder):
                    head, slash, _ = path[len(folder) :].partition("/")
                    names.add(head + slash)
            if not names:
                raise _Error(404)
            return 200, _envelope({"keys": sorted(names)})
        if method == "GET":
            secret = store.get(key)
            if secret is None:
                raise _Error(404)
            return 200, _envelope(
                {
                    "cas_required": False,
                    "created_time": secret.created_time,
                    "current_version": secret.current_version,
                    "custom_metadata": None,
                    "delete_version_after": "0s",
                    "max_versions": 0,
                    "oldest_version": secret.oldest_version,
                    "updated_time": secret.updated_time,
                    "versions": {
                        str(number): {k: v for k, v in version.metadata(number).items() if k != "version"}
                        for number, version in secret.versions.items()
                    },
                }
            )
        if method == "DELETE":
            store.pop(key, None)
            return 204, None
        raise _Error(405, "1 error occurred:\n\t* unsupported operation\n\n")


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        raise _Error(400, "failed to parse JSON input") from None
    if not isinstance(document, dict):
        raise _Error(400, "failed to parse JSON input")
    return document


def _envelope(data: dict[str, Any] | None, auth: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
        "mount_type": "" if auth is not None else "kv",
    }


@contextlib.contextmanager
def serve_vault(vault: FakeVault, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``vault`` on ``http://127.0.0.1:<free port>`` (uvicorn in a thread) for the ``with`` block; its URL."""
    with serve_asgi(vault, name="the fake Vault server", startup_timeout=startup_timeout) as origin:
        yield origin
