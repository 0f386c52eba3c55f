"""The lock of one :class:`~mcp_oauth_auth.MCPOAuth`'s credential work, across threads, tasks and event loops.

The hot path takes no lock; credential work (loading, refreshing, authorizing) runs under this one, never held
across the caller's protected request.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import anyio
    import anyio.lowlevel

__all__ = ["CredentialLock"]


class CredentialLock:
    """One credential operation at a time, across threads, tasks and event loops.

    Tasks of one event loop queue on an anyio lock of that loop; the holder then takes the thread lock shared
    with sync callers and other loops, polling rather than blocking so that the event loop never stalls and
    cancellation stays clean. Contention on the thread lock only happens during credential work, which is rare.
    """

    def __init__(self) -> None:
        self._thread_lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            yield

    @asynccontextmanager
    async def held_async(self) -> AsyncGenerator[None, None]:
        import anyio

        async with self._loop_lock():
            while not self._thread_lock.acquire(blocking=False):  # noqa: ASYNC110 - a thread lock has no event
                await anyio.sleep(0.01)
            try:
                yield
            finally:
                self._thread_lock.release()

    def _loop_lock(self) -> anyio.Lock:
        import anyio

        loop_locks = _loop_locks()
        try:
            locks = loop_locks.get()
        except LookupError:
            locks = weakref.WeakKeyDictionary()
            loop_locks.set(locks)
        lock = locks.get(self)
        if lock is None:
            # fast_acquire: the task that will refresh must not yield to the event loop after an uncontended
            # acquire — otherwise every other task of a herd runs (and queues) before the refresh request leaves.
            lock = locks[self] = anyio.Lock(fast_acquire=True)
        return lock


_LOOP_LOCKS: list[anyio.lowlevel.RunVar[weakref.WeakKeyDictionary[CredentialLock, anyio.Lock]]] = []


def _loop_locks() -> anyio.lowlevel.RunVar[weakref.WeakKeyDictionary[CredentialLock, anyio.Lock]]:
    """The per-event-loop registry of credential locks (anyio is imported only by async programs)."""
    if not _LOOP_LOCKS:
        import anyio.lowlevel

        _LOOP_LOCKS.append(anyio.lowlevel.RunVar("mcp_oauth_auth_loop_locks"))
    return _LOOP_LOCKS[0]
