"""The overall deadline of one OAuth request: from sending it to the last byte of its response, headers included.

httpx's timeouts are per operation (connect, each read), so a server that accepts the connection and then trickles
its status line and headers, one byte just before each read timeout, keeps a request waiting for hours; the body
is bounded by :mod:`mcp_oauth_auth.driving.reading`, which only starts once the headers are complete.

A :class:`Deadline` travels with each OAuth request as its httpcore ``trace`` extension (httpcore and httpcore2,
the transports of httpx and httpx2, call it at each step of the request, in the task or thread that sends it).
When the connection is made, the trace reports its network stream, and so its socket; a timer then shuts the
socket down when the deadline passes before the response is complete, which ends a blocked read at once (sync,
asyncio or trio alike). The failure that follows is reported as
:class:`~mcp_oauth_auth.exceptions.ResponseLimitError`.

Where the request reuses a connection the client already had open (keep-alive), no connection step is traced and
the socket is not known: that request is bounded by the client's own timeouts until its body starts, then by the
body reader. Transports without httpcore (mock, ASGI) have no sockets to bound.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from mcp_oauth_auth.exceptions import ResponseLimitError
from mcp_oauth_auth.flow.urls import safe_url

__all__ = ["DEADLINE_EXTENSION", "Deadline", "deadline_of", "finish_deadline"]

#: Where a request carries its :class:`Deadline` (besides ``trace``, which transports without httpcore ignore).
DEADLINE_EXTENSION = "mcp_oauth_auth.deadline"

_CONNECTION_STEPS = ("connect_tcp.complete", "start_tls.complete")


class Deadline:
    """The deadline of one OAuth request (see the module's documentation); ``seconds`` from its creation."""

    def __init__(self, seconds: float, url: str) -> None:
        self.seconds = seconds
        self.url = url
        self.started = time.monotonic()
        self.expired = False
        self._sockets: list[Any] = []
        self._timer: threading.Timer | None = None
        self._finished = False
        self._lock = threading.Lock()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension, for sync clients."""
        if event.endswith(_CONNECTION_STEPS):
            self._watch(info.get("return_value"))

    async def atrace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension, for async clients."""
        self.trace(event, info)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def finish(self) -> None:
        """The response is complete, or the request failed: nothing more to interrupt."""
        with self._lock:
            self._finished = True
            self._sockets.clear()
            if self._timer is not None:
                self._timer.cancel()

    def failure(self) -> ResponseLimitError:
        url = safe_url(self.url)
        return ResponseLimitError(
            f"the response from {url} took longer than {self.seconds:g} s to arrive (response_deadline); not read",
            url=url,
        )

    def _watch(self, stream: Any) -> None:
        get_extra_info = getattr(stream, "get_extra_info", None)
        sock = get_extra_info("socket") if get_extra_info is not None else None
        if sock is None:
            return
        with self._lock:
            if self._finished:
                return
            self._sockets.append(sock)
            if self._timer is None:
                self._timer = threading.Timer(max(self.remaining(), 0.0), self._expire)
                self._timer.daemon = True
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:  # already closed, or a TLS wrapper's detached original
                    continue


def deadline_of(request: Any) -> Deadline | None:
    """The :class:`Deadline` an OAuth request carries (None for any other request)."""
    deadline = request.extensions.get(DEADLINE_EXTENSION)
    return deadline if isinstance(deadline, Deadline) else None


def finish_deadline(request: Any) -> None:
    """Done with ``request`` (its response read or refused): its deadline has nothing more to interrupt."""
    deadline = deadline_of(request)
    if deadline is not None:
        deadline.finish()
