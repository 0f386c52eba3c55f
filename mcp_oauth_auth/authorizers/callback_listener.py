"""The loopback callback listener: the bound socket, and the I/O loops that serve it until the callback arrives.

Internal to :mod:`mcp_oauth_auth.authorizers`. Reading and answering a request is
:mod:`~mcp_oauth_auth.authorizers.callback_http`'s job; here are the sockets and the loops around it: a blocking
one (``selectors``) for :meth:`~mcp_oauth_auth.authorizers.loopback.LoopbackBrowserAuthorizer.authorize` and a
native AnyIO one (asyncio and trio) for its ``authorize_async``. Both multiplex connections, so an idle or slow
connection (browsers open speculative ones) never delays the real callback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import sys
import time
from dataclasses import dataclass
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


def _port_is_free(host: str, port: int) -> bool:
    try:
        _bind(host, port).close()
    except CallbackPortInUseError:
        return False
    return True


def _free_port(host: str) -> int:
    sock = _bind(host, 0)
    try:
        port: int = sock.getsockname()[1]
    finally:
        sock.close()
    return port


# ----------------------------------------------------------------------------------------------------
# Blocking I/O loop


@dataclass
class _Connection:
    sock: socket.socket
    deadline: float
    buffer: _HeadBuffer


def _serve_blocking(listener: socket.socket, responder: _Responder, deadline: float) -> str | None:
    """Serve until the callback arrives (its target) or ``deadline`` passes (None)."""
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    connections: dict[socket.socket, _Connection] = {}
    try:
        selector.register(listener, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            for expired in [c for c in connections.values() if c.deadline <= now]:
                _drop(selector, connections, expired.sock)
            wake = min([deadline, *(c.deadline for c in connections.values())])
            for key, _ in selector.select(max(wake - now, 0.0)):
                if key.fileobj is listener:
                    _accept_blocking(listener, selector, connections)
                    continue
                connection = connections.get(key.fileobj)  # type: ignore[call-overload]
                if connection is None:
                    continue
                target = _read_blocking(connection, responder, selector, connections)
                if target is not None:
                    return target
    finally:
        for sock in list(connections):
            _drop(selector, connections, sock)
        selector.close()


def _accept_blocking(
    listener: socket.socket, selector: selectors.BaseSelector, connections: dict[socket.socket, _Connection]
) -> None:
    while True:
        try:
            sock, address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # e.g. ECONNABORTED: the client gave up before we accepted
        if not _is_loopback_peer(address) or len(connections) >= MAX_CONNECTIONS:
            sock.close()
            continue
        sock.setblocking(False)
        connections[sock] = _Connection(sock, time.monotonic() + CONNECTION_TIMEOUT, _HeadBuffer())
        selector.register(sock, selectors.EVENT_READ)


def _read_blocking(
    connection: _Connection,
    responder: _Responder,
    selector: selectors.BaseSelector,
    connections: dict[socket.socket, _Connection],
) -> str | None:
    sock = connection.sock
    try:
        chunk = sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        chunk = b""
    if not chunk:
        _drop(selector, connections, sock)
        return None
    try:
        head = connection.buffer.feed(chunk)
    except _HeadTooLarge:
        outcome: _Outcome | None = responder.too_large()
    else:
        outcome = None if head is None else responder.respond(head)
    if outcome is None:
        return None
    selector.unregister(sock)
    del connections[sock]
    try:
        sock.settimeout(max(0.1, min(CONNECTION_TIMEOUT, connection.deadline - time.monotonic())))
        sock.sendall(outcome.response)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        if outcome.target is None:
            return None
        # The browser went away before reading the page; the callback itself did arrive.
    finally:
        sock.close()
    return outcome.target


def _drop(selector: selectors.BaseSelector, connections: dict[socket.socket, _Connection], sock: socket.socket) -> None:
    connections.pop(sock, None)
    with contextlib.suppress(KeyError, ValueError):
        selector.unregister(sock)
    sock.close()


# ----------------------------------------------------------------------------------------------------
# Async I/O loop


async def _serve_async(listener: SocketListener, responder: _Responder, result: list[str]) -> None:
    """Serve until the callback arrives; append its target to ``result``. The caller sets the deadline."""
    active = 0

    async def handle(stream: SocketStream) -> None:
        nonlocal active
        is_callback = False
        try:
            with anyio.move_on_after(CONNECTION_TIMEOUT):
                outcome = await _read_async(stream, responder)
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
            active -= 1
            await anyio.aclose_forcefully(stream)
            if is_callback:
                task_group.cancel_scope.cancel()

    async with anyio.create_task_group() as task_group:
        while True:
            try:
                stream = await listener.accept()
            except OSError:  # e.g. out of file descriptors: do not spin
                await anyio.sleep(0.05)
                continue
            peer = stream.extra(SocketAttribute.remote_address, None)  # noqa: S610 - not Django
            if not _is_loopback_peer(peer) or active >= MAX_CONNECTIONS:
                await anyio.aclose_forcefully(stream)
                continue
            active += 1
            task_group.start_soon(handle, stream)


async def _read_async(stream: SocketStream, responder: _Responder) -> _Outcome | None:
    buffer = _HeadBuffer()
    while True:
        try:
            chunk = await stream.receive(4096)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return None
        try:
            head = buffer.feed(chunk)
        except _HeadTooLarge:
            return responder.too_large()
        if head is not None:
            return responder.respond(head)
