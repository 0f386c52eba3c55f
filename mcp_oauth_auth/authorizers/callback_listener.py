"""The loopback callback listener: the bound socket, and the one I/O loop that serves it until the callback arrives.

Internal to :mod:`mcp_oauth_auth.authorizers`. Reading and answering a request is
:mod:`~mcp_oauth_auth.authorizers.callback_http`'s job; here are the sockets and the loop around it. The loop
multiplexes connections, so an idle or slow connection (browsers open speculative ones) never delays the real
callback.

One loop, written with AnyIO, serves both ways of waiting:

* :meth:`~mcp_oauth_auth.authorizers.loopback.LoopbackBrowserAuthorizer.authorize_async` awaits :func:`_serve`
  on the caller's own event loop, asyncio or trio: no thread, and a cancelled wait closes the listener and every
  connection before it returns, as any AnyIO code does.
* :meth:`~mcp_oauth_auth.authorizers.loopback.LoopbackBrowserAuthorizer.authorize` calls :func:`_serve_in_thread`,
  which runs the same :func:`_serve` on an event loop of its own in a helper thread (an AnyIO blocking portal),
  since the calling thread may be running an event loop already (a sync client used from async code). If the wait
  is interrupted (KeyboardInterrupt), the portal cancels :func:`_serve`, which closes the sockets as above.

The other way round (a blocking loop, run by the async side in a worker thread) would hold one of AnyIO's worker
threads for the whole wait (minutes) and need a wake-up channel of its own to honour cancellation promptly.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from typing import Final

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream

from mcp_oauth_auth.authorizers.callback_http import (
    _HeadBuffer,
    _HeadTooLarge,
    _loopback_ip,
    _Outcome,
    _Responder,
    _uri_host,
)
from mcp_oauth_auth.exceptions import CallbackPortInUseError

__all__ = ["CONNECTION_TIMEOUT", "MAX_CONNECTIONS"]

#: Seconds a single connection may take to deliver its request head (and to take the answer).
CONNECTION_TIMEOUT: Final = 10.0
#: Connections served at once; further ones are closed straight away.
MAX_CONNECTIONS: Final = 32


# ----------------------------------------------------------------------------------------------------
# Sockets


def _is_loopback_peer(address: object) -> bool:
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return False
    try:
        ip = ipaddress.ip_address(address[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on loopback ``host``:``port``; CallbackPortInUseError if it cannot be bound."""
    ip = _loopback_ip(host)
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            # SO_REUSEADDR on Windows lets another process steal a bound port; ask for exclusivity instead.
            exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
            if exclusive is not None:
                sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        else:
            # Lets a port whose previous connections linger in TIME_WAIT be bound again at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
        sock.listen(MAX_CONNECTIONS)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or type(exc).__name__
        raise CallbackPortInUseError(
            f"cannot listen on {_uri_host(ip)}:{port} for the authorization callback ({reason}). "
            f"Stop the program using port {port}, or give LoopbackBrowserAuthorizer another port "
            "(port=0 picks a free one; the redirect URI then changes and may need a new client registration)"
        ) from exc
    return sock


def _bind_all(host: str, port: int) -> list[socket.socket]:
    """The listening sockets for loopback ``host``:``port``: one, except for ``localhost``, which a browser may
    resolve to 127.0.0.1 or ::1, so both are bound on the same port (RFC 8252 §8.3): otherwise another process could
    listen on the other one and receive the callback. Where the machine has no IPv6 loopback, 127.0.0.1 alone."""
    if host.strip("[]").lower() != "localhost":
        return [_bind(host, port)]
    for _ in range(8):  # port 0: the port chosen for 127.0.0.1 may be taken on ::1; choose again
        first = _bind("127.0.0.1", port)
        chosen: int = first.getsockname()[1]
        try:
            return [first, _bind("::1", chosen)]
        except (CallbackPortInUseError, OSError) as exc:
            first.close()
            cause = exc if not isinstance(exc, CallbackPortInUseError) else exc.__cause__
            if isinstance(cause, OSError) and cause.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return [_bind("127.0.0.1", chosen)]  # no IPv6 loopback here: nobody can take ::1 either
            if port:
                raise CallbackPortInUseError(
                    f"cannot listen on [::1]:{port} for the authorization callback to localhost: another program "
                    "holds it and could receive the callback. Stop it, or use a redirect URI on 127.0.0.1"
                ) from exc
    raise CallbackPortInUseError("no port is free on both 127.0.0.1 and ::1 for the authorization callback")


def _port_is_free(host: str, port: int) -> bool:
    try:
        socks = _bind_all(host, port)
    except CallbackPortInUseError:
        return False
    for sock in socks:
        sock.close()
    return True


def _free_port(host: str) -> int:
    socks = _bind_all(host, 0)
    try:
        port: int = socks[0].getsockname()[1]
    finally:
        for sock in socks:
            sock.close()
    return port


# ----------------------------------------------------------------------------------------------------
# The I/O loop


def _serve_in_thread(socks: list[socket.socket], responder: _Responder, timeout: float) -> str | None:
    """:func:`_serve` for blocking callers: on an event loop of its own, in a helper thread."""
    import anyio.from_thread  # only blocking callers need it

    with anyio.from_thread.start_blocking_portal() as portal:
        return portal.call(_serve, socks, responder, timeout)


async def _serve(socks: list[socket.socket], responder: _Responder, timeout: float) -> str | None:  # noqa: ASYNC109
    """Serve the bound ``socks`` until the callback arrives (its target) or ``timeout`` seconds pass (None).

    Closes ``socks`` and every connection before returning, also when cancelled. The timeout is applied here, not by
    the caller, so that a callback that has arrived is returned even when the time runs out while its page is sent.
    """
    listeners: list[SocketListener] = []
    try:
        for sock in socks:
            sock.setblocking(False)
            listeners.append(await SocketListener.from_socket(sock))  # takes ownership of the socket
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    received: list[str] = []
    try:
        with anyio.move_on_after(timeout):
            await _serve_connections(listeners, responder, received)
    finally:
        with anyio.CancelScope(shield=True):
            for listener in listeners:
                await listener.aclose()
    return received[0] if received else None


class _Connection:
    """One served connection: when it was accepted, whether it has sent anything, and how to end it."""

    __slots__ = ("accepted", "heard", "scope")

    def __init__(self) -> None:
        self.accepted = anyio.current_time()
        self.heard = False
        self.scope = anyio.CancelScope()


def _evictable(connections: list[_Connection]) -> _Connection:
    """The connection to end for a new one when all slots are taken: the oldest silent one, else the oldest."""
    silent = [connection for connection in connections if not connection.heard]
    return min(silent or connections, key=lambda connection: connection.accepted)


async def _serve_connections(listeners: list[SocketListener], responder: _Responder, result: list[str]) -> None:
    """Serve until the callback arrives; append its target to ``result``. The caller sets the deadline.

    When :data:`MAX_CONNECTIONS` are open, a new connection takes the place of the oldest one that has sent nothing
    (then of the oldest): a local process holding idle connections cannot lock the browser out.
    """
    connections: list[_Connection] = []

    async def handle(stream: SocketStream, connection: _Connection) -> None:
        is_callback = False
        try:
            with connection.scope, anyio.move_on_after(CONNECTION_TIMEOUT):
                outcome = await _read_request(stream, responder, connection)
                if outcome is None:
                    return
                if outcome.target is not None and not result:
                    # Record the callback first: it has arrived even if the browser leaves before the page.
                    result.append(outcome.target)
                    is_callback = True
                try:
                    await stream.send(outcome.response)
                    await stream.send_eof()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
        finally:
            if connection in connections:  # not already evicted
                connections.remove(connection)
            await anyio.aclose_forcefully(stream)
            if is_callback:
                task_group.cancel_scope.cancel()

    async def accept(listener: SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError:  # e.g. out of file descriptors: do not spin
                await anyio.sleep(0.05)
                continue
            peer = stream.extra(SocketAttribute.remote_address, None)  # noqa: S610 - not Django
            if not _is_loopback_peer(peer):
                await anyio.aclose_forcefully(stream)
                continue
            if len(connections) >= MAX_CONNECTIONS:
                evicted = _evictable(connections)
                connections.remove(evicted)
                evicted.scope.cancel()
            connection = _Connection()
            connections.append(connection)
            task_group.start_soon(handle, stream, connection)

    async with anyio.create_task_group() as task_group:
        for listener in listeners:
            task_group.start_soon(accept, listener)


async def _read_request(stream: SocketStream, responder: _Responder, connection: _Connection) -> _Outcome | None:
    buffer = _HeadBuffer()
    while True:
        try:
            chunk = await stream.receive(4096)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return None
        connection.heard = True
        try:
            head = buffer.feed(chunk)
        except _HeadTooLarge:
            return responder.too_large()
        if head is not None:
            return responder.respond(head)
