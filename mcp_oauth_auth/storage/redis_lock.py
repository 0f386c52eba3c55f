"""The Lua scripts of :class:`~mcp_oauth_auth.storage.redis_store.RedisTokenStore` and its record lock.

Every change is one script, so it is atomic on the server:

* :data:`SAVE` writes a record only when its version is the one the writer read (compare-and-set), bumps the
  version, adds the record to the index and publishes ``saved <version>`` on the record's channel.
* :data:`DELETE` removes the data (the version stays, so a writer that read the old record still conflicts),
  updates the index and publishes ``deleted <version>``.
* Notifications are best effort (``redis.pcall``): a user whose ACL allows no channels still saves, and its waiters
  poll.
* :data:`RELEASE` and :data:`EXTEND` delete or extend a lock only while it carries the caller's owner token; a release
  wakes the next waiter (one, not all: the others stay asleep until their turn).

The lock is a lease: ``SET <lock> <owner token> NX PX <lease>``. A holder keeps extending it from a thread while it
holds it, so a long refresh does not lose it; a holder that dies (SIGKILL, lost host) stops extending, and the others
take the lock at most one lease later. A contender that finds the lock taken subscribes to a channel of its own,
queues its name on the lock's waiter list and sleeps until the holder's release wakes it (or, should the message be
lost, until it checks again a little later): waiting costs no Redis commands. When pub/sub is not available
(an ACL without channel rights, a proxy) it falls back to polling.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import TokenStorageError

if TYPE_CHECKING:
    from mcp_oauth_auth.storage.redis_store import RedisTokenStore

__all__ = ["DELETE", "EXTEND", "RELEASE", "SAVE", "RedisRecordLock"]

logger = logging.getLogger("mcp_oauth_auth")

#: KEYS: record, index. ARGV: expected version, data, record id, channel. Returns {1, new version} or {0, current}.
SAVE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
local version = current + 1
redis.call('HSET', KEYS[1], 'v', version, 'data', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.pcall('PUBLISH', ARGV[4], 'saved ' .. version)
return {1, version}
"""

#: KEYS: record, index. ARGV: record id, channel. Returns the record's version afterwards.
DELETE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if redis.call('HEXISTS', KEYS[1], 'data') == 0 then return current end
local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HDEL', KEYS[1], 'data')
redis.call('SREM', KEYS[2], ARGV[1])
redis.pcall('PUBLISH', ARGV[2], 'deleted ' .. version)
return version
"""

#: KEYS: lock, waiter list. ARGV: owner token, wake channel prefix. Returns 1 when released, 0 when not ours.
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
while true do
  local waiter = redis.call('LPOP', KEYS[2])
  if not waiter then break end
  local woken = redis.pcall('PUBLISH', ARGV[2] .. waiter, 'released')
  if type(woken) == 'number' and woken > 0 then break end
end
return 1
"""

#: KEYS: lock. ARGV: owner token, lease in ms. Returns 1 when extended, 0 when the lock is no longer ours.
EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

_WAKE_WAIT = 0.2  # how long one try_acquire sleeps on the wake channel (the driver calls it again right away)


class RedisRecordLock:
    """One lock object on one record's lease. ``release`` may run on another thread than ``try_acquire``."""

    def __init__(self, store: RedisTokenStore, record: str) -> None:
        self._store = store
        self._key = store.redis_key("lock", record)
        self._waiters = store.redis_key("waiters", record)
        self._token = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex}"
        self._me = uuid.uuid4().hex
        self._held = False
        self._mutex = threading.Lock()
        self._pubsub: Any = None
        self._polling = False  # pub/sub failed once: poll from now on
        self._queued = False
        self._next_check = 0.0
        self._keeper_stop = threading.Event()

    @property
    def lease(self) -> float:
        return self._store.lease

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._held:
                return True
            if self._queued:
                if not self._woken():
                    return False  # the holder has not released it yet (its release would have woken us)
                if self._set():
                    return True
                if self._queued:  # not woken, only looking again (a lease may have expired): still in the list
                    self._next_check = time.monotonic() + self._recheck()
                    return False
            if not self._set():
                self._queue()  # first try, or woken but another contender was faster: (re)join the list
            return self._held

    def release(self) -> None:
        with self._mutex:
            held, self._held = self._held, False
            self._keeper_stop.set()
            self._unsubscribe()
            if not held:
                return
            try:
                self._store.run_script(
                    RELEASE, "release the lock of", [self._key, self._waiters], [self._token, self._wake_prefix()]
                )
            except TokenStorageError as exc:
                logger.warning("could not release the Redis lock %s (its lease expires by itself): %s", self._key, exc)

    def holder(self) -> str:
        """Who holds the lock now (host, pid and a random part), or "nobody"."""
        value = self._store.command("read the lock", self._key, lambda client: client.get(self._key))
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else "nobody"

    def __repr__(self) -> str:
        return f"RedisRecordLock({self._key!r}, held={self._held}, lease={self.lease:g} s)"

    # -- acquiring -----------------------------------------------------------------------------------------------

    def _set(self) -> bool:
        lease_ms = int(self.lease * 1000)
        acquired = self._store.command(
            "take the lock", self._key, lambda client: client.set(self._key, self._token, nx=True, px=lease_ms)
        )
        if not acquired:
            return False
        self._held = True
        self._queued = False
        self._unsubscribe()
        self._keeper_stop = threading.Event()
        threading.Thread(target=self._keep, args=(self._keeper_stop,), daemon=True, name="redis-lease").start()
        return True

    def _queue(self) -> None:
        """Wait for the holder's release: subscribe to our wake channel, join the waiter list, and try once more
        (the holder may have released between our first try and joining the list)."""
        self._next_check = time.monotonic() + self._recheck()
        if not self._subscribe():
            return
        wait_ms = int(self.lease * 4000)

        def join(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.rpush(self._waiters, self._me)
            pipe.pexpire(self._waiters, wait_ms)
            pipe.execute()

        self._store.command("queue for the lock", self._key, join)
        self._queued = True
        self._set()

    def _subscribe(self) -> bool:
        if self._polling:
            return False
        if self._pubsub is not None:
            return True
        channel = self._wake_prefix() + self._me
        try:
            pubsub = self._store.client.pubsub(ignore_subscribe_messages=False)
            pubsub.subscribe(channel)
            confirmed = pubsub.get_message(timeout=self._store.timeout)  # the server has registered us
            if not confirmed or confirmed.get("type") != "subscribe":
                raise TokenStorageError("no subscription confirmation")
        except Exception as exc:
            logger.info("no pub/sub on Redis for the lock %s (%s); polling instead", self._key, type(exc).__name__)
            self._polling = True
            return False
        self._pubsub = pubsub
        return True

    def _woken(self) -> bool:
        """Sleep (at most briefly) on the wake channel; True when woken, or when it is time to look again anyway."""
        wait = min(_WAKE_WAIT, self._next_check - time.monotonic())
        if wait <= 0 or self._pubsub is None:
            return True
        try:
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        except Exception:  # the connection broke (Redis restarting): fall back to trying the lock
            self._unsubscribe()
            return True
        if message is None:
            return time.monotonic() >= self._next_check
        self._queued = False  # the releaser took us off the waiter list
        return True

    def _unsubscribe(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._queued = False
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception as exc:  # closing a broken connection: nothing left to do
                logger.debug("closing a Redis pub/sub connection failed: %s", type(exc).__name__)

    def _recheck(self) -> float:
        """How long a queued waiter sleeps before it looks at the lock again (a dead holder sends no wake-up)."""
        return min(0.5, self.lease / 2)

    def _wake_prefix(self) -> str:
        return self._store.redis_key("wake", "")

    # -- holding ---------------------------------------------------------------------------------------------------

    def _keep(self, stop: threading.Event) -> None:
        """Extend the lease every third of it while the lock is held; stop when released or no longer ours."""
        lease_ms = str(int(self.lease * 1000))
        while not stop.wait(self.lease / 3):
            try:
                extended = self._store.run_script(EXTEND, "extend the lock", [self._key], [self._token, lease_ms])
            except TokenStorageError as exc:
                logger.warning("could not extend the Redis lock %s: %s", self._key, exc)
                continue
            if not extended and not stop.is_set():
                logger.warning("the Redis lock %s expired while held: another worker may have taken it", self._key)
                return
