"""Whether the OS keyring can hold credentials here, and, when it cannot or a call to it fails, why and what to do.

:func:`probe_keyring` names the active backend and judges it: keyring's ``fail`` and ``null`` backends,
``keyrings.alt`` files, an empty chainer and a locked or missing Secret Service collection are unusable, and a
backend that passes these checks must still store, return and delete a test entry. Nothing here ever prompts.
:func:`failure_remedy` turns an exception of a keyring call into the advice an error message ends with, and
:func:`describe` into its ``Type: message`` (never quoting the value that was being written).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
from dataclasses import dataclass

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from mcp_oauth_auth.exceptions import TokenStorageError

__all__ = [
    "DEFAULT_SERVICE",
    "NO_KEYRING_REMEDY",
    "KeyringStatus",
    "backend_name",
    "describe",
    "failure_remedy",
    "probe_keyring",
    "refuse_discarding_backend",
]

DEFAULT_SERVICE = "mcp-oauth-auth"
"""The keyring service that holds this library's entries (and :func:`probe_keyring`'s test entry)."""

_FILE_STORE_HINT = "or use the encrypted file store"
_UNLOCK_REMEDY = (
    "unlock your keyring (log in to the desktop session, or unlock the collection with your keyring manager, "
    f"e.g. Seahorse), {_FILE_STORE_HINT}"
)
NO_KEYRING_REMEDY = (
    "make an OS keyring available (on Linux: a Secret Service such as gnome-keyring or KeePassXC running in your "
    f"D-Bus session), {_FILE_STORE_HINT}"
)


@dataclass(frozen=True)
class KeyringStatus:
    """Whether an OS keyring can hold credentials here, and why (or why not) in a sentence."""

    usable: bool
    reason: str
    backend: str


class _KeyringProbe:
    """The implementation of :func:`probe_keyring`: a callable with a per-process cache for the default keyring."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._cached: KeyringStatus | None = None

    def __call__(self, backend: KeyringBackend | None = None, *, refresh: bool = False) -> KeyringStatus:
        """Whether ``backend`` (default: the active ``keyring.get_keyring()``) can hold credentials without prompting.

        The answer for the active keyring is computed once per process (``refresh=True`` or
        :meth:`cache_clear` computes it again); an explicit ``backend`` is probed on every call. Unusable: keyring's
        ``fail`` and ``null`` backends, any ``keyrings.alt`` backend (plain-text or password-prompting files), a
        chainer with nothing usable to chain, a locked Secret Service collection (checked without an unlock prompt),
        and a backend that fails a write/read/delete round trip of a test entry (service ``"mcp-oauth-auth"``,
        username ``"probe:<pid>"``). Never raises.
        """
        if backend is not None:
            return _probe(backend)
        with self._mutex:
            if self._cached is None or refresh:
                try:
                    active = keyring.get_keyring()
                except Exception as exc:
                    self._cached = KeyringStatus(
                        False, f"keyring could not choose a backend ({describe(exc)}); {NO_KEYRING_REMEDY}", "none"
                    )
                else:
                    self._cached = _probe(active)
            return self._cached

    def cache_clear(self) -> None:
        """Forget the cached answer for the active keyring (for tests, or after the environment changed)."""
        with self._mutex:
            self._cached = None


probe_keyring = _KeyringProbe()


def backend_name(backend: KeyringBackend) -> str:
    """How a keyring backend is called in messages, e.g. ``'SecretService Keyring'``."""
    try:
        name = backend.name
    except Exception:
        name = None
    return name if isinstance(name, str) and name else type(backend).__name__


def _probe(backend: KeyringBackend) -> KeyringStatus:
    name = backend_name(backend)
    try:
        problem = _static_problem(backend)
        if problem is None:
            problem = _round_trip_problem(backend)
    except Exception as exc:  # a probe answers, it does not raise
        problem = (
            f"checking the keyring backend '{name}' failed ({describe(exc)}); use the encrypted file store instead"
        )
    if problem is not None:
        return KeyringStatus(False, problem, name)
    return KeyringStatus(True, f"the keyring backend '{name}' stores and returns entries without prompting", name)


def _static_problem(backend: KeyringBackend) -> str | None:
    """Why ``backend`` cannot be used, judged without writing anything; None when it looks usable."""
    from keyring.backends import chainer, fail, null

    name = backend_name(backend)
    module = type(backend).__module__
    if isinstance(backend, fail.Keyring):
        if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return (
                "keyring found no OS keyring: there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset), so no "
                f"Secret Service can be reached; run inside a desktop or D-Bus session, {_FILE_STORE_HINT}"
            )
        return f"keyring found no OS keyring (its 'fail' backend is active); {NO_KEYRING_REMEDY}"
    if isinstance(backend, null.Keyring):
        return (
            "the keyring backend is keyring's 'null' backend, which discards every entry (chosen by "
            f"PYTHON_KEYRING_BACKEND or keyringrc.cfg); {NO_KEYRING_REMEDY}"
        )
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        return (
            f"the keyring backend '{name}' comes from keyrings.alt, which keeps entries in a plain-text or "
            f"password-prompting file rather than the OS keyring; {NO_KEYRING_REMEDY}"
        )
    if isinstance(backend, chainer.ChainerBackend):
        chained = list(backend.backends)
        if not chained:
            return f"keyring's chainer has no usable backend to chain; {NO_KEYRING_REMEDY}"
        return _static_problem(chained[0])  # the chainer writes to its first backend
    if module in ("keyring.backends.SecretService", "keyring.backends.libsecret"):
        return _secret_service_problem(backend)
    return None


def _secret_service_problem(backend: KeyringBackend) -> str | None:
    """Why the Secret Service collection ``backend`` uses cannot be used, asked without any unlock prompt."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return (
            "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset), so the Secret Service cannot be reached; "
            f"run inside a desktop or D-Bus session, {_FILE_STORE_HINT}"
        )
    try:
        import secretstorage
        from secretstorage.collection import DEFAULT_COLLECTION
    except ImportError:
        return (
            f"the secretstorage package is not installed, so the Secret Service cannot be checked; {_FILE_STORE_HINT}"
        )
    try:
        connection = secretstorage.dbus_init()
    except (secretstorage.SecretStorageException, OSError) as exc:  # OSError: no socket at the bus address
        return f"the D-Bus session bus cannot be reached ({describe(exc)}); {_FILE_STORE_HINT}"
    with contextlib.closing(connection):
        if not secretstorage.check_service_availability(connection):
            return (
                "no Secret Service runs on the D-Bus session bus (start gnome-keyring or KeePassXC's Secret Service "
                f"integration), {_FILE_STORE_HINT}"
            )
        preferred = getattr(backend, "preferred_collection", None)
        path = preferred if isinstance(preferred, str) and preferred else DEFAULT_COLLECTION
        try:
            collection = secretstorage.Collection(connection, path)  # looks the collection up; never prompts
        except secretstorage.ItemNotFoundException:
            return (
                f"the Secret Service has no collection at {path} and creating one needs an interactive prompt; "
                f"create a default keyring with your keyring manager, {_FILE_STORE_HINT}"
            )
        if collection.is_locked():
            return (
                f"the Secret Service collection {collection.get_label()!r} is locked; unlock it (log in to the "
                f"desktop session, or with your keyring manager), {_FILE_STORE_HINT}"
            )
    return None


def _round_trip_problem(backend: KeyringBackend) -> str | None:
    name = backend_name(backend)
    username = f"probe:{os.getpid()}"
    value = secrets.token_hex(16)
    written = False
    try:
        backend.set_password(DEFAULT_SERVICE, username, value)
        written = True
        returned = backend.get_password(DEFAULT_SERVICE, username)
        backend.delete_password(DEFAULT_SERVICE, username)
        written = False
    except Exception as exc:
        if written:
            with contextlib.suppress(Exception):
                backend.delete_password(DEFAULT_SERVICE, username)
        return (
            f"a test entry ({DEFAULT_SERVICE!r}, {username!r}) could not be written, read and deleted with the "
            f"keyring backend '{name}' ({describe(exc)}); use the encrypted file store instead"
        )
    if returned != value:
        return (
            f"the keyring backend '{name}' did not return the test entry ({DEFAULT_SERVICE!r}, {username!r}) that "
            "was just written to it; use the encrypted file store instead"
        )
    return None


def describe(exc: BaseException, secret: str | None = None) -> str:
    """``Type: message`` for an error message; the message is left out if it quotes any part of ``secret``."""
    text = str(exc).strip()[:300]
    if secret and text and _quotes(text, secret):
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _quotes(text: str, secret: str, window: int = 12) -> bool:
    """Whether ``text`` contains ``window`` consecutive characters of ``secret`` (escaping may change the rest)."""
    size = min(window, len(secret))
    return any(secret[start : start + size] in text for start in range(len(secret) - size + 1))


def refuse_discarding_backend(backend: KeyringBackend) -> None:
    """A backend that silently drops what is written would lose every refreshed token."""
    from keyring.backends import chainer, null

    if isinstance(backend, null.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        raise TokenStorageError(
            f"the keyring backend '{backend_name(backend)}' discards every entry, so it cannot hold credentials; "
            f"{NO_KEYRING_REMEDY}"
        )


def failure_remedy(exc: Exception, action: str) -> str:
    """What to do after a keyring call failed with ``exc`` while the store tried to ``action`` (read, save, delete)."""
    kind = type(exc).__name__
    if isinstance(exc, keyring.errors.KeyringLocked) or kind in ("LockedException", "PromptDismissedException"):
        return _UNLOCK_REMEDY
    if isinstance(exc, (keyring.errors.NoKeyringError, keyring.errors.InitError)) or kind in (
        "SecretServiceNotAvailableException",
        "ConnectionRefusedError",
        "FileNotFoundError",
    ):
        return NO_KEYRING_REMEDY
    if isinstance(exc, keyring.errors.PasswordSetError):
        return (
            "the keyring refused the entry (if it is too large for this keyring, use a smaller chunk_size); "
            "the previous record, if any, is unchanged"
        )
    if action == "read":
        return "check that your OS keyring is running and unlocked; nothing was changed"
    return "check that your OS keyring is running and unlocked; the previous record, if any, is unchanged"
