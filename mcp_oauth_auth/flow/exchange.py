"""One protected request as the engine sees it: what it needs before it is sent, and after each response.

The rules of MCP authorization for a request, in one place for every driver:

* before sending: nothing while the token is valid and not due for refresh (the hot path: no lock, no I/O); else
  load the stored credential and refresh an expiring token first;
* a 401 calls for recovery (reuse a token renewed meanwhile, refresh, or authorize anew), at most
  :data:`MAX_RECOVERIES` times per request, and never again once a token authorized for this very request was
  rejected too (that would only repeat the person's approval);
* a 403 calls for a step-up only with ``error="insufficient_scope"`` (RFC 6750 §3.1, MCP "Scope Selection
  Strategy"), counted separately (the engine refuses beyond ``max_step_up``); any other 403 is the caller's;
* a 401 with a ``DPoP`` challenge ``error="use_dpop_nonce"`` and a ``DPoP-Nonce`` is sent again once with that
  nonce, without credential work (RFC 9449 §9); a 401 whose challenges are ``DPoP`` only turns DPoP on before the
  recovery (the resource accepts DPoP-bound tokens only);
* a 500 whose body is an authentication layer's ``server_error`` document, to a request that carried a token,
  counts as a 401 once, as the first recovery of the request (the MCP TypeScript SDK answers so for a token its
  verifier does not know: :func:`~mcp_oauth_auth.flow.challenge.is_unverified_token_answer`); the driver reads
  that body only when :meth:`Exchange.needs_body` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from mcp_oauth_auth.flow.effects import Effect, Flow

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.challenge import BearerChallenge
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = ["MAX_RECOVERIES", "STATUSES_WITH_WORK", "Exchange", "Headers", "Outcome", "sends_as_is"]

logger = logging.getLogger("mcp_oauth_auth")

#: How many times one request may recover from a 401 before its response is handed to the caller.
MAX_RECOVERIES = 2

#: The only response statuses :meth:`Exchange.after_response` may act on: every other response goes to the caller
#: as it is, so a driver need not create or consult an :class:`Exchange` for it.
STATUSES_WITH_WORK = frozenset({401, 403, 500})


def sends_as_is(engine: Engine) -> bool:
    """Whether a request goes out with the current token without any credential work first: the token is valid
    and not due for refresh (the hot path). Where False, :meth:`Exchange.before_request` decides."""
    return engine.access_token is not None and engine.clock() < engine.refresh_due_at


class Outcome(str, Enum):
    """What a credential flow did (a ``str``: it compares equal to its value)."""

    #: Another request or process had already renewed the credential; its token is used.
    REUSED = "reused"
    REFRESHED = "refreshed"
    AUTHORIZED = "authorized"


class Headers(Protocol):
    """A response's headers, read only when the status calls for it (``httpx.Headers``, ``httpx2.Headers``)."""

    def get_list(self, key: str) -> list[str]: ...


class Engine(Protocol):
    """What an :class:`Exchange` reads from and asks of its :class:`~mcp_oauth_auth.flow.engine.FlowEngine` (a
    protocol: the engine imports this module, not the other way round)."""

    server_url: str
    access_token: str | None
    refresh_due_at: float
    loaded: bool
    clock: Callable[[], float]
    dpop: DPoPState | None

    def require_dpop(self, *, requested: bool = False) -> DPoPState: ...

    def ensure_fresh(self, now: float | None = None) -> Generator[Effect, Any, None]: ...

    def recover(
        self, status: int, challenge: BearerChallenge, rejected_token: str | None, attempt: int
    ) -> Generator[Effect, Any, Outcome]: ...


class Exchange:
    """The credential work one protected request needs, decided by the engine; the driver runs it (under its
    credential lock) and sends the request again."""

    __slots__ = ("_engine", "authorized", "nonce_retried", "recoveries", "step_ups")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.recoveries = 0
        self.step_ups = 0
        #: Whether credential work for this request authorized anew.
        self.authorized = False
        #: Whether this request was already sent again with a resource's DPoP nonce.
        self.nonce_retried = False

    def before_request(self) -> Flow | None:
        """None to send the request with the current token (or none), else the flow to run first."""
        engine = self._engine
        if sends_as_is(engine):
            return None
        if engine.loaded and engine.access_token is None:
            return None  # nothing stored: the server's 401 will say what to ask for
        return engine.ensure_fresh()

    def needs_body(self, status: int, headers: Headers, sent_token: str | None) -> bool:
        """Whether :meth:`after_response` must see this response's body: a small JSON answer ``500`` to a request
        that carried a token, before any recovery (the body is read whole, so its length must be declared)."""
        if status != 500 or sent_token is None or self.recoveries:
            return False
        from mcp_oauth_auth.flow.challenge import MAX_ERROR_DOCUMENT

        lengths = headers.get_list("content-length")
        if len(lengths) != 1:
            return False
        length = lengths[0].strip()
        return length.isascii() and length.isdigit() and int(length) <= MAX_ERROR_DOCUMENT

    def after_response(
        self, status: int, headers: Headers, sent_token: str | None, body: bytes | None = None
    ) -> Flow | None:
        """None to hand the response to the caller, else the flow to run before sending the request again.

        ``body``: the response's body where :meth:`needs_body` asked for it."""
        if status == 500:
            return self._after_server_error(headers, sent_token, body)
        if status not in STATUSES_WITH_WORK:
            return None
        from mcp_oauth_auth.flow.challenge import BearerChallenge, parse_bearer_challenge

        values = headers.get_list("www-authenticate")
        challenge = parse_bearer_challenge(values)
        if values and (challenge is None or self._engine.dpop is not None):
            retry = self._after_dpop_challenge(values, headers) if status == 401 else None
            if retry is not None:
                return retry
            if challenge is None:
                from mcp_oauth_auth.flow.dpop import dpop_challenge

                challenge = dpop_challenge(values)
        if status == 403:
            if challenge is None or challenge.error != "insufficient_scope":
                return None
            attempt = self.step_ups
            self.step_ups += 1
        else:
            if self.authorized or self.recoveries >= MAX_RECOVERIES:
                logger.warning("the server rejected a freshly issued token for %s; giving up", self._engine.server_url)
                return None
            attempt = self.recoveries
            self.recoveries += 1
            challenge = challenge or BearerChallenge()
        return self._recover(status, challenge, sent_token, attempt)

    def _after_dpop_challenge(self, values: list[str], headers: Headers) -> Flow | None:
        """What a 401's ``DPoP`` challenges ask for: a nonce to send the request again with, once per request (no
        credential work), or DPoP turned on before the recovery when they are the only challenges."""
        from mcp_oauth_auth.flow.dpop import is_use_dpop_nonce, requires_dpop

        engine = self._engine
        if engine.dpop is not None and not self.nonce_retried and is_use_dpop_nonce(values):
            nonces = headers.get_list("dpop-nonce")
            if len(nonces) == 1:
                engine.dpop.remember_nonce(engine.server_url, nonces[0], resource=True)
                self.nonce_retried = True
                logger.debug("%s asks for a DPoP nonce; sending the request again with it", engine.server_url)
                return _no_work()
        if engine.dpop is None and requires_dpop(values):
            engine.require_dpop()
        return None

    def _after_server_error(self, headers: Headers, sent_token: str | None, body: bytes | None) -> Flow | None:
        from mcp_oauth_auth.flow.challenge import BearerChallenge, is_unverified_token_answer

        if body is None or sent_token is None or self.recoveries:
            return None
        content_types = headers.get_list("content-type")
        content_type = content_types[0] if len(content_types) == 1 else None
        if not is_unverified_token_answer(500, content_type, body):
            return None
        logger.warning(
            "%s answered 500 server_error, without a challenge, to the bearer token: taking the token as rejected "
            "(the MCP TypeScript SDK answers so for a token it does not know); recovering once",
            self._engine.server_url,
        )
        self.recoveries += 1
        return self._recover(401, BearerChallenge(), sent_token, 0)

    def _recover(
        self, status: int, challenge: BearerChallenge, sent_token: str | None, attempt: int
    ) -> Generator[Effect, Any, Outcome]:
        outcome = yield from self._engine.recover(status, challenge, sent_token, attempt)
        self.authorized = self.authorized or outcome is Outcome.AUTHORIZED
        return outcome


def _no_work() -> Generator[Effect, Any, None]:
    """The credential work of a request sent again as it is (with a new DPoP proof)."""
    yield from ()
