"""What the sans-IO flow asks its driver to do, and the neutral HTTP types it speaks.

A flow is a generator of :data:`Effect` values; the driver performs each and sends the result back:

=====================  ====================================================
effect                 result sent back
=====================  ====================================================
:class:`SendHttp`      :class:`HttpResponse`
:class:`Authorize`     the callback URL (``str``)
:class:`ChooseRedirect` the redirect URI (``str``)
:class:`Sleep`         ``None``
:class:`ShowDeviceCode` ``None`` (the person has been shown where to go and which code to confirm)
:class:`ObtainAssertion` the workload's JWT (``str``), read from its source now
:class:`ResolveHost`   the addresses the name resolves to (``tuple[str, ...]``, empty when it does not resolve)
:class:`LoadRecords`   ``list[CredentialRecord]``
:class:`LoadRecord`    ``CredentialRecord | None``
:class:`LockRecord`    ``None`` (the store's lock for the record is held until :class:`UnlockRecord` or the flow's end)
:class:`UnlockRecord`  ``None``
:class:`SaveRecord`    ``None``
:class:`DeleteRecord`  ``None``
=====================  ====================================================

The ``yield from`` helpers at the bottom give each effect a typed result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from mcp_oauth_auth.records import CredentialRecord, RecordKey

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.device_authorization import DeviceAuthorization

__all__ = [
    "Authorize",
    "ChooseRedirect",
    "DeleteRecord",
    "Effect",
    "Flow",
    "HttpRequest",
    "HttpResponse",
    "LoadRecord",
    "LoadRecords",
    "LockRecord",
    "ObtainAssertion",
    "PeerCheck",
    "ResolveHost",
    "SaveRecord",
    "SendHttp",
    "ShowDeviceCode",
    "Sleep",
    "UnlockRecord",
]


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request the flow wants sent through the caller's client."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def get(cls, url: str) -> HttpRequest:
        return cls("GET", url, (("Accept", "application/json"),))

    @classmethod
    def form(cls, url: str, fields: dict[str, str], headers: tuple[tuple[str, str], ...] = ()) -> HttpRequest:
        form_headers = (
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
            *headers,
        )
        return cls("POST", url, form_headers, urlencode(fields).encode("ascii"))

    @classmethod
    def json(cls, url: str, document: dict[str, Any]) -> HttpRequest:
        body = json.dumps(document).encode("utf-8")
        return cls("POST", url, (("Content-Type", "application/json"), ("Accept", "application/json")), body)

    def __repr__(self) -> str:
        # Bodies carry codes, verifiers, refresh tokens and secrets: never show them.
        return f"HttpRequest({self.method} {self.url})"


@dataclass(frozen=True)
class HttpResponse:
    """A response as the flow sees it: status, headers (lower-cased names, repeats kept) and the whole body.

    ``request`` is the request it answers, as :func:`send` attaches it: errors made from the response leave out the
    secrets the request carried.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    url: str = ""
    request: HttpRequest | None = field(default=None, repr=False, compare=False)
    #: Where the HTTP client was redirected on the way (a client with ``follow_redirects=True``), in order.
    redirects: tuple[str, ...] = field(default=(), compare=False)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one (not JSON, or an array, string, ...)."""
        try:
            document = json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return document if isinstance(document, dict) else None

    def __repr__(self) -> str:
        return f"HttpResponse({self.status} {self.url})"


#: The largest OAuth response body read, in bytes (``max_response_size``).
DEFAULT_MAX_RESPONSE_SIZE = 1 << 20
#: The longest an OAuth response body may take to arrive, in seconds (``response_deadline``).
DEFAULT_RESPONSE_DEADLINE = 30.0


#: Given the URL of a request and the IP address its response came from (the connection's peer), the error that
#: refuses the response, or None to use it.
PeerCheck = Callable[[str, str], Exception | None]


@dataclass(frozen=True)
class SendHttp:
    request: HttpRequest
    #: Bounds on reading the response (the driver closes the connection past them: ResponseLimitError).
    max_body: int = DEFAULT_MAX_RESPONSE_SIZE
    deadline: float = DEFAULT_RESPONSE_DEADLINE
    #: Asked, where the client tells the peer's address, before the response is read: a refusal closes it and is
    #: thrown into the flow instead of the response.
    peer_check: PeerCheck | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ResolveHost:
    """Resolve ``host`` (a DNS name) as the HTTP client would to connect to ``port``; the result is the addresses,
    as strings, and empty when the name does not resolve here."""

    host: str
    port: int


@dataclass(frozen=True)
class Authorize:
    """Ask the person to approve at ``url``; the result is the callback URL."""

    url: str = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True)
class ChooseRedirect:
    """Ask the authorizer for a redirect URI, preferring one of ``registered``."""

    registered: tuple[str, ...]


@dataclass(frozen=True)
class ShowDeviceCode:
    """Show the person the device flow's verification URI and user code (RFC 8628 §3.3); polling follows."""

    device: DeviceAuthorization


@dataclass(frozen=True)
class ObtainAssertion:
    """Obtain the workload's JWT from ``source`` (the JWT, a file or a function: see
    :data:`~mcp_oauth_auth.flow.jwt_bearer.AssertionSource`) for one token request; never shown."""

    source: object = field(repr=False)


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class LoadRecords:
    """Load every stored record for ``resource`` (any issuer)."""

    resource: str


@dataclass(frozen=True)
class LoadRecord:
    """Read the record for ``key`` again from the store (another process may have changed it)."""

    key: RecordKey


@dataclass(frozen=True)
class LockRecord:
    """Take the store's lock for ``key``: exclusive across processes (and hosts, for a remote store).

    The driver releases it on :class:`UnlockRecord`, and in any case when the flow ends, however it ends.
    """

    key: RecordKey


@dataclass(frozen=True)
class UnlockRecord:
    key: RecordKey


@dataclass(frozen=True)
class SaveRecord:
    record: CredentialRecord


@dataclass(frozen=True)
class DeleteRecord:
    key: RecordKey


Effect = (
    SendHttp
    | Authorize
    | ChooseRedirect
    | ShowDeviceCode
    | ObtainAssertion
    | ResolveHost
    | Sleep
    | LoadRecords
    | LoadRecord
    | LockRecord
    | UnlockRecord
    | SaveRecord
    | DeleteRecord
)
StorageEffect = (LoadRecords, LoadRecord, LockRecord, UnlockRecord, SaveRecord, DeleteRecord)
Flow = Generator[Effect, Any, Any]


def send(request: HttpRequest) -> Generator[Effect, Any, HttpResponse]:
    response = yield SendHttp(request)
    assert isinstance(response, HttpResponse)
    return response if response.request is request else replace(response, request=request)


def authorize(url: str, redirect_uri: str) -> Generator[Effect, Any, str]:
    callback_url = yield Authorize(url, redirect_uri)
    assert isinstance(callback_url, str)
    return callback_url


def choose_redirect(registered: tuple[str, ...]) -> Generator[Effect, Any, str]:
    redirect_uri = yield ChooseRedirect(registered)
    assert isinstance(redirect_uri, str)
    return redirect_uri


def show_device_code(device: DeviceAuthorization) -> Generator[Effect, Any, None]:
    yield ShowDeviceCode(device)


def obtain_assertion(source: object) -> Generator[Effect, Any, str]:
    assertion = yield ObtainAssertion(source)
    assert isinstance(assertion, str)
    return assertion


def sleep(seconds: float) -> Generator[Effect, Any, None]:
    yield Sleep(seconds)


def load_records(resource: str) -> Generator[Effect, Any, list[CredentialRecord]]:
    records = yield LoadRecords(resource)
    assert isinstance(records, list)
    return records


def save_record(record: CredentialRecord) -> Generator[Effect, Any, None]:
    yield SaveRecord(record)


def load_record(key: RecordKey) -> Generator[Effect, Any, CredentialRecord | None]:
    record = yield LoadRecord(key)
    assert record is None or isinstance(record, CredentialRecord)
    return record


def lock_record(key: RecordKey) -> Generator[Effect, Any, None]:
    yield LockRecord(key)


def unlock_record(key: RecordKey) -> Generator[Effect, Any, None]:
    yield UnlockRecord(key)


def delete_record(key: RecordKey) -> Generator[Effect, Any, None]:
    yield DeleteRecord(key)


def resolve_host(host: str, port: int) -> Generator[Effect, Any, tuple[str, ...]]:
    addresses = yield ResolveHost(host, port)
    assert isinstance(addresses, tuple)
    return addresses
