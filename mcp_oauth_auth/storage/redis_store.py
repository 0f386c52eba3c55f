"""A :class:`~mcp_oauth_auth.storage.TokenStore` in Redis, shared by a fleet of workers on many hosts.

Redis is not a secrets vault, so records are encrypted before they leave the process: AES-256-GCM with the record's
issuer and resource as associated data, the envelope of the encrypted file store
(:mod:`~mcp_oauth_auth.storage.encrypted_format`), under a master key from ``MCP_OAUTH_PASSWORD``, a key file or
the OS keyring (:mod:`~mcp_oauth_auth.storage.redis_key`). Layout, under a prefix per deployment
(default ``mcp-oauth``)::

    <prefix>:store              how to get the master key (source, scrypt salt, key check value); no secret
    <prefix>:record:<id>        a hash: v (the record's version) and data (the encrypted envelope)
    <prefix>:records            the set of the ids of the stored records
    <prefix>:lock:<id>          the record's lock: its owner token, with a lease (PX)
    <prefix>:waiters:<id>       who waits for that lock
    channel <prefix>:changed:<id>   "saved <version>" / "deleted <version>" on every change of the record
    channel <prefix>:wake:<waiter>  "released": the waiter's turn to take the lock

Every write is a compare-and-set on the version this object read (a Lua script; see
:mod:`~mcp_oauth_auth.storage.redis_lock`): a record another host changed meanwhile is not overwritten, and
:class:`~mcp_oauth_auth.exceptions.RecordConflictError` is raised. When Redis is unreachable (or loading its data
after a restart) a call is retried for up to ``retry_for`` seconds, then
:class:`~mcp_oauth_auth.exceptions.StoreUnavailableError` (a temporary error: a still-valid token keeps being used)
is raised; nothing is ever deleted because of it. Run Redis with ``appendonly yes`` (and ideally ``appendfsync
always``): a restart without persistence loses every record, and with ``everysec`` the last second of rotated
refresh tokens.

``redis`` is an optional dependency: ``pip install 'mcp-oauth-auth[redis]'``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mcp_oauth_auth.exceptions import RecordConflictError, StoreUnavailableError, TokenStorageError
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import decode_record, encode_record, record_id
from mcp_oauth_auth.storage.encrypted_format import (
    RECORD_REMEDY,
    NewerFormatError,
    StoreInfo,
    listed_key,
    newer_record_format,
    parse_envelope,
    parse_store_info,
    seal_record,
)
from mcp_oauth_auth.storage.redis_key import RedisMasterKey
from mcp_oauth_auth.storage.redis_lock import DELETE, SAVE, RedisRecordLock

__all__ = ["REDIS_URL_ENV", "RedisTokenStore"]

REDIS_URL_ENV = "MCP_OAUTH_REDIS_URL"
_INSTALL_HINT = "the Redis store needs redis-py: pip install 'mcp-oauth-auth[redis]'"
_FIRST_RETRY = 0.05
_MAX_RETRY = 0.5


class RedisTokenStore:
    """Credential records in Redis, encrypted on the client, shared by every worker using the same URL and prefix.

    ``url`` (default ``$MCP_OAUTH_REDIS_URL``) is a ``redis://`` or ``rediss://`` (TLS) URL; an ACL user and password
    go in it (``redis://user:secret@host:6379/0``) or in ``username=`` and ``redis_password=``. ``prefix`` separates
    deployments sharing one Redis. ``password`` (default ``$MCP_OAUTH_PASSWORD``), ``key_file`` and ``use_keyring``
    choose the encryption key as the encrypted file store does; a fleet sets the same password (or copies the same key
    file) on every host. ``lease`` is the record lock's lease in seconds (a dead holder blocks the others at most
    that long), ``retry_for`` how long a call keeps trying an unreachable Redis, ``timeout`` bounds each command.
    ``client`` is an already configured ``redis.Redis`` to use instead of building one from ``url``.

    Nothing connects before the first call. No password (Redis's or the encryption one) ever appears in ``repr`` or
    in an error.
    """

    blocking = True

    def __init__(
        self,
        url: str | None = None,
        *,
        password: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        use_keyring: bool = True,
        username: str | None = None,
        redis_password: str | None = None,
        prefix: str = "mcp-oauth",
        lease: float = 10.0,
        retry_for: float = 5.0,
        timeout: float = 5.0,
        client: Any = None,
    ) -> None:
        redis = _import_redis()
        if lease <= 0 or retry_for < 0 or timeout <= 0:
            raise TokenStorageError("lease and timeout must be positive, and retry_for not negative")
        if not prefix or any(char.isspace() for char in prefix):
            raise TokenStorageError(f"prefix must be a non-empty name without spaces, not {prefix!r}")
        self.prefix = prefix
        self.lease = float(lease)
        self.retry_for = float(retry_for)
        self.timeout = float(timeout)
        if client is not None:
            if url is not None:
                raise TokenStorageError("pass either client= or url= to RedisTokenStore, not both")
            kwargs = client.connection_pool.connection_kwargs
            url = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
            self.client = client
        else:
            url = url or os.environ.get(REDIS_URL_ENV) or None
            if url is None:
                raise TokenStorageError(f"no Redis URL: pass url= to RedisTokenStore or set {REDIS_URL_ENV}")
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise TokenStorageError(f"not a Redis URL: {safe_url(url)} (use redis://, rediss:// or unix://)")
            options: dict[str, Any] = {}
            if username is not None:
                options["username"] = username
            if redis_password is not None:
                options["password"] = redis_password
            self.client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),  # we retry, within retry_for
                **options,
            )
        self.url = safe_url(url)
        self._where = f"{self.url} (prefix {prefix!r})"
        self._master = RedisMasterKey(
            f"{self.url}/{prefix}",
            self._read_info,
            self._create_info,
            password=password,
            key_file=key_file,
            use_keyring=use_keyring,
        )
        self._scripts: dict[str, Any] = {}
        self._versions: dict[RecordKey, int] = {}
        self._versions_lock = threading.Lock()

    # -- TokenStore --------------------------------------------------------------------------------------------

    def load(self, key: RecordKey) -> CredentialRecord | None:
        rid = record_id(key)
        name = self.redis_key("record", rid)
        version, data = self.command("read", name, lambda client: client.hmget(name, "v", "data"))
        self._remember(key, int(version or 0))
        if data is None:
            return None
        return self._open(name, key, data)

    def save(self, record: CredentialRecord) -> None:
        key = record.key
        rid = record_id(key)
        name = self.redis_key("record", rid)
        master = self._unlocked(name)
        with self._versions_lock:
            expected = self._versions.get(key)
        if expected is None:
            expected = int(self.command("read", name, lambda client: client.hget(name, "v")) or 0)
        data = seal_record(encode_record(record), key, master)
        attempts = 0

        def write(client: Any) -> Any:
            nonlocal attempts
            attempts += 1
            return self._script(SAVE)(
                keys=[name, self.redis_key("records")],
                args=[expected, data, rid, self.redis_key("changed", rid)],
                client=client,
            )

        saved, version = self.command("write", name, write)
        if not saved:
            if attempts > 1 and self.command("read", name, lambda client: client.hget(name, "data")) == data:
                version = int(self.command("read", name, lambda client: client.hget(name, "v")) or 0)
            else:  # not a retry of our own write that went through: another host wrote it
                self._remember(key, int(version))
                raise RecordConflictError(
                    f"the credential record {name} on Redis at {self._where} was changed by another host (or "
                    "process) since this one read it; nothing was overwritten: load it again and retry"
                )
        self._remember(key, int(version))

    def delete(self, key: RecordKey) -> None:
        rid = record_id(key)
        name = self.redis_key("record", rid)
        version = self.run_script(
            DELETE, "delete", [name, self.redis_key("records")], [rid, self.redis_key("changed", rid)]
        )
        self._remember(key, int(version))

    def list_keys(self) -> list[RecordKey]:
        index = self.redis_key("records")
        ids = sorted(member.decode("ascii", "replace") for member in self.command("list", index, _members(index)))

        def read_all(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for rid in ids:
                pipe.hget(self.redis_key("record", rid), "data")
            return list(pipe.execute())

        keys: list[RecordKey] = []
        for rid, data in zip(ids, self.command("list", index, read_all) if ids else [], strict=True):
            if data is None:
                continue  # deleted since the listing
            name = self.redis_key("record", rid)
            key = listed_key(data, name)
            if key is None or record_id(key) != rid:
                raise TokenStorageError(
                    f"the credential record {name} on Redis at {self._where} cannot be parsed, or holds another "
                    "record's data; it was left untouched: delete it (redis-cli DEL) and sign in again"
                )
            keys.append(key)
        return keys

    def lock(self, key: RecordKey) -> RedisRecordLock:
        """A lease on ``key``'s lock, shared by every host using this Redis and prefix (see
        :mod:`~mcp_oauth_auth.storage.redis_lock`)."""
        return RedisRecordLock(self, record_id(key))

    def __repr__(self) -> str:
        return f"RedisTokenStore({self.url!r}, prefix={self.prefix!r}, key={self._master.source})"

    # -- server facts, for doctor --------------------------------------------------------------------------------

    def persistence(self) -> dict[str, str]:
        """The server's version and persistence settings: ``redis_version``, ``aof_enabled`` ("1" or "0") and,
        when CONFIG is allowed, ``appendfsync``."""
        info = self.command("read the server information", "INFO", lambda client: client.info("server"))
        facts = {"redis_version": str(info.get("redis_version", "?"))}
        persistence = self.command("read the server information", "INFO", lambda client: client.info("persistence"))
        facts["aof_enabled"] = str(persistence.get("aof_enabled", "?"))
        try:
            config = self.client.config_get("appendfsync")
            facts["appendfsync"] = str(config.get("appendfsync", "?"))
        except Exception as exc:  # managed Redis services often forbid CONFIG
            facts["appendfsync"] = f"unknown ({type(exc).__name__})"
        return facts

    # -- Redis calls (also used by the lock) ---------------------------------------------------------------------

    def redis_key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def command(self, action: str, name: str, operation: Callable[[Any], Any]) -> Any:
        """Run ``operation(client)``, retrying an unreachable or loading Redis for up to ``retry_for`` seconds; every
        failure becomes one of our errors, without any password."""
        import redis.exceptions as errors

        deadline = time.monotonic() + self.retry_for
        delay = _FIRST_RETRY
        while True:
            try:
                return operation(self.client)
            except errors.AuthenticationError:
                raise TokenStorageError(
                    f"Redis at {self._where} refused the credentials while trying to {action} {name}: check the user "
                    f"and password in {REDIS_URL_ENV} (or username=/redis_password=)"
                ) from None
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailableError(
                        f"Redis at {self._where} stayed unreachable ({type(exc).__name__}) for {self.retry_for:g} s "
                        f"while trying to {action} {name}; nothing stored was changed: check the server and try again"
                    ) from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, _MAX_RETRY)
            except errors.NoPermissionError:
                raise TokenStorageError(
                    f"the Redis user lacks permission to {action} {name} on {self._where}: grant it the commands "
                    f"and keys '{self.prefix}:*' and channels '{self.prefix}:*' in its ACL"
                ) from None
            except errors.RedisError as exc:
                raise TokenStorageError(
                    f"Redis at {self._where} could not {action} {name}: {type(exc).__name__}: {exc}"
                ) from None

    def run_script(self, source: str, action: str, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        script = self._script(source)
        return self.command(action, keys[0], lambda client: script(keys=list(keys), args=list(args), client=client))

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:  # register_script: EVALSHA, loading the script again after a restart emptied the cache
            script = self._scripts[source] = self.client.register_script(source)
        return script

    # -- the key and the records -----------------------------------------------------------------------------------

    def _read_info(self) -> StoreInfo | None:
        name = self.redis_key("store")
        data = self.command("read", name, lambda client: client.get(name))
        if data is None:
            return None
        return parse_store_info(data, name, self._where)

    def _create_info(self, info: StoreInfo) -> bool:
        name = self.redis_key("store")
        return bool(self.command("create", name, lambda client: client.set(name, info.to_json(), nx=True)))

    def _unlocked(self, name: str) -> bytes:
        try:
            return self._master.get()
        except StoreUnavailableError:
            raise
        except TokenStorageError as exc:
            raise type(exc)(f"cannot read or write the credential record {name}: {exc.message}") from None

    def _open(self, name: str, key: RecordKey, data: bytes) -> CredentialRecord:
        remedy = (
            f"it was left untouched: check the key (the password, key file or keyring every host uses), or delete it "
            f"(redis-cli DEL {name}) and sign in again"
        )
        where = f"{name} on Redis at {self._where}"
        master = self._unlocked(name)
        try:
            envelope = parse_envelope(data, where)
            if envelope.key != key:
                raise TokenStorageError(f"the credential record {where} holds the record of {envelope.key}")
            plaintext = envelope.open(master, where)
            try:
                return decode_record(plaintext, where, expected=key)
            except TokenStorageError as exc:
                if newer_record_format(plaintext):
                    raise NewerFormatError(exc.message) from None
                raise
        except NewerFormatError:
            raise
        except TokenStorageError as exc:
            message = exc.message.replace(RECORD_REMEDY, "").rstrip("; ")
            raise TokenStorageError(f"{message}; {remedy}") from None

    def _remember(self, key: RecordKey, version: int) -> None:
        with self._versions_lock:
            self._versions[key] = version


def _members(index: str) -> Callable[[Any], Any]:
    return lambda client: client.smembers(index)


def _import_redis() -> Any:
    try:
        import redis
        import redis.backoff
        import redis.retry
    except ImportError:
        raise TokenStorageError(_INSTALL_HINT) from None
    return redis
