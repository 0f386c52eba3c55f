"""Loaded by a child Python when this directory is on PYTHONPATH: refuses every connection and name lookup that
is not loopback (an audit hook, which cannot be removed), so a test can show that a command needs no network."""

import ipaddress
import sys

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise PermissionError(f"network guard: connection to {address!r} refused (loopback only)")
    elif event == "socket.getaddrinfo" and args[0] is not None and not _is_loopback(args[0]):
        raise PermissionError(f"network guard: name lookup of {args[0]!r} refused (loopback only)")


sys.addaudithook(_guard)
