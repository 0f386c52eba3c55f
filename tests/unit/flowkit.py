"""Running sans-IO flows against canned responses in tests, with no HTTP library at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_oauth_auth.flow.effects import (
    Authorize,
    ChooseRedirect,
    DeleteRecord,
    Flow,
    HttpRequest,
    HttpResponse,
    LoadRecord,
    LoadRecords,
    LockRecord,
    ResolveHost,
    SaveRecord,
    SendHttp,
    Sleep,
    UnlockRecord,
)
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.names import serves

Route = Callable[[HttpRequest], HttpResponse]


def json_response(status: int, document: Any, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    import json

    return HttpResponse(status, (("content-type", "application/json"), *headers), json.dumps(document).encode())


@dataclass
class Harness:
    """Answers a flow's effects: HTTP from ``routes`` (exact URL without query -> response or callable)."""

    routes: dict[str, HttpResponse | Route | list[HttpResponse]] = field(default_factory=dict)
    authorizer: Callable[[str, str], str] | None = None
    redirect_uri: str = "http://127.0.0.1:9999/callback"
    records: dict[RecordKey, CredentialRecord] = field(default_factory=dict)
    sent: list[HttpRequest] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    authorization_urls: list[str] = field(default_factory=list)
    #: Record locks currently held by the flow, and every lock/unlock in order ("lock <key>", "unlock <key>").
    held: set[RecordKey] = field(default_factory=set)
    lock_events: list[str] = field(default_factory=list)
    #: What host names resolve to (ResolveHost); a name not here does not resolve.
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def run(self, flow: Flow) -> Any:
        result: Any = None
        while True:
            try:
                effect = flow.send(result)
            except StopIteration as stop:
                return stop.value
            result = self.execute(effect)

    def execute(self, effect: Any) -> Any:
        if isinstance(effect, SendHttp):
            return self.http(effect.request)
        if isinstance(effect, Authorize):
            self.authorization_urls.append(effect.url)
            assert self.authorizer is not None, "the flow asked for an authorization"
            return self.authorizer(effect.url, effect.redirect_uri)
        if isinstance(effect, ChooseRedirect):
            return self.redirect_uri
        if isinstance(effect, Sleep):
            self.slept.append(effect.seconds)
            return None
        if isinstance(effect, ResolveHost):
            return self.addresses.get(effect.host, ())
        if isinstance(effect, LoadRecords):
            return [r for k, r in self.records.items() if serves(k, effect.resource)]
        if isinstance(effect, LoadRecord):
            return self.records.get(effect.key)
        if isinstance(effect, LockRecord):
            assert effect.key not in self.held, f"{effect.key} locked twice"
            self.held.add(effect.key)
            self.lock_events.append(f"lock {effect.key}")
            return None
        if isinstance(effect, UnlockRecord):
            self.held.discard(effect.key)
            self.lock_events.append(f"unlock {effect.key}")
            return None
        if isinstance(effect, SaveRecord):
            self.records[effect.record.key] = effect.record
            return None
        if isinstance(effect, DeleteRecord):
            self.records.pop(effect.key, None)
            return None
        raise AssertionError(f"unexpected effect {effect!r}")

    def http(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        url = request.url.split("?")[0]
        route = self.routes.get(url)
        if route is None:
            return HttpResponse(404, (), b"not found", url)
        if isinstance(route, list):
            return route.pop(0)
        if callable(route):
            return route(request)
        return route

    def urls_sent(self) -> list[str]:
        return [request.url for request in self.sent]
