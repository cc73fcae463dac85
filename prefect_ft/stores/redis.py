"""`redis://HOST:PORT/DB`: the store shared by processes on many machines.

Each record is a hash `{v: version, d: data}`. Every request is one Lua script (or one `TIME`),
so it is one round trip and atomic on the server: `cas` compares and writes in one step, and
every answer carries the server's `TIME`, the one clock all machines agree on.

The store fails fast: 0.25 s socket timeouts and no retries in the client, because callers
fall back to local breakers rather than wait. redis-py reconnects on the next command, so the
same object works again once the server is back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from prefect_ft.exceptions import ConfigurationError, StoreUnavailableError
from prefect_ft.stores.base import Versioned
from prefect_ft.stores.forking import relock_after_fork

__all__ = ["RedisBreakerStore"]

T = TypeVar("T")

_TIMEOUT_S = 0.25
_FORM = "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (or rediss:// for TLS)"

# KEYS[1]; ARGV = expected version, data -> {ok, version, data|nil, TIME s, TIME us}.
_CAS = """
local r = redis.call('HMGET', KEYS[1], 'v', 'd')
local v = tonumber(r[1] or '0')
local t = redis.call('TIME')
if v ~= tonumber(ARGV[1]) then
  return {0, v, r[2], t[1], t[2]}
end
redis.call('HSET', KEYS[1], 'v', v + 1, 'd', ARGV[2])
return {1, v + 1, ARGV[2], t[1], t[2]}
"""
# KEYS = the keys -> {TIME s, TIME us, v1, d1|nil, v2, d2|nil, ...}.
_READ = """
local t = redis.call('TIME')
local out = {t[1], t[2]}
for _, k in ipairs(KEYS) do
  local r = redis.call('HMGET', k, 'v', 'd')
  out[#out + 1] = tonumber(r[1] or '0')
  out[#out + 1] = r[2]
end
return out
"""


def _parse(url: str) -> dict[str, Any]:
    """Connection arguments for `redis.Redis` from `url`, or ConfigurationError naming the fault."""
    where = f"store url {url!r}"
    bad_port = f"{where}: port must be an integer in 1..65535; expected {_FORM}"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when not an integer or out of range
    except ValueError as exc:
        if "port" in str(exc).lower():
            raise ConfigurationError(bad_port) from None
        raise ConfigurationError(f"{where}: cannot be parsed ({exc}); expected {_FORM}") from None
    if parts.scheme.lower() not in ("redis", "rediss"):
        raise ConfigurationError(f"{where}: scheme must be redis or rediss; expected {_FORM}")
    if not parts.hostname:
        raise ConfigurationError(f"{where}: host is missing; expected {_FORM}")
    if port == 0:
        raise ConfigurationError(bad_port)
    db_text = parts.path.strip("/")
    if db_text and not (db_text.isascii() and db_text.isdigit()):
        raise ConfigurationError(
            f"{where}: db must be a non-negative integer (got {db_text!r}); expected {_FORM}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{where}: query and fragment are not supported; expected {_FORM}")
    return {
        "host": parts.hostname,
        "port": 6379 if port is None else port,
        "db": int(db_text or 0),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "ssl": parts.scheme.lower() == "rediss",
    }


class RedisBreakerStore:
    """Versioned records in Redis hashes; safe across threads, processes and machines.

    The client is created lazily, so a store can be opened while the server is down (calls
    then raise `StoreUnavailableError` until it is back). Pickling keeps only the URL.

    Args:
        url: `redis://HOST:PORT/DB`; `rediss://` for TLS; credentials as `USER:PASSWORD@`.

    Raises:
        ConfigurationError: the URL is malformed (the message names the part) or the `redis`
            package is missing.

    Examples:
        ```python
        store = RedisBreakerStore("redis://127.0.0.1:6379/0")
        record = store.read("prefect-ft:breaker:ipc")
        ```
    """

    def __init__(self, url: str) -> None:
        try:
            import redis  # noqa: F401  (fail at open time, not at first call)
        except ImportError:
            raise ConfigurationError(
                "redis store needs the 'redis' extra: pip install 'prefect-ft[redis]'"
            ) from None
        self._kwargs = _parse(url)
        self.url = url
        self.round_trips = 0
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        relock_after_fork(self)  # redis-py reconnects in a child; the lock must be free
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._last_time = 0.0
        self._closed = False

    def __getstate__(self) -> dict[str, Any]:
        # Sockets and locks cannot travel; the copy connects on first use.
        return {"url": self.url, "round_trips": self.round_trips, "_kwargs": self._kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        # Credentials stay out of logs.
        k = self._kwargs
        scheme = "rediss" if k["ssl"] else "redis"
        return f"RedisBreakerStore('{scheme}://{k['host']}:{k['port']}/{k['db']}')"

    # -- protocol -------------------------------------------------------------------------

    def read(self, key: str) -> Versioned:
        """Read one record (version 0 and data None when absent)."""
        return self.read_many([key])[key]

    def read_many(self, keys: list[str]) -> dict[str, Versioned]:
        """Read several records in one Lua call; an empty list costs no request."""
        if not keys:
            return {}
        keys = list(keys)
        reply = self._request(lambda: self._script("read", _READ, keys, []))
        now = self._stamp(reply[0], reply[1])
        return {
            k: Versioned(reply[3 + 2 * i], int(reply[2 + 2 * i]), now) for i, k in enumerate(keys)
        }

    def cas(self, key: str, expected_version: int, data: str) -> tuple[bool, Versioned]:
        """Write `data` if the current version is `expected_version` (0 = absent).

        A timeout after the request was sent leaves it unknown whether the write happened;
        the next `read` or `cas` tells.

        Returns:
            `(True, new)` with `new.version == expected_version + 1`, else `(False, current)`.
        """
        reply = self._request(
            lambda: self._script("cas", _CAS, [key], [int(expected_version), data])
        )
        ok, version, current, sec, usec = reply
        return bool(ok), Versioned(current, int(version), self._stamp(sec, usec))

    def delete(self, key: str) -> None:
        """Remove a record; deleting an absent key is not an error."""
        self._request(lambda: self._get_client().delete(key))

    def time(self) -> float:
        """The server's clock (`TIME`), never going backwards for this object."""
        sec, usec = self._request(lambda: self._get_client().time())
        return self._stamp(sec, usec)

    def close(self) -> None:
        """Drop the connection pool; the store may not be used afterwards."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
        if client is not None:
            # Closing a broken pool must not raise.
            with contextlib.suppress(Exception):
                client.close()

    # -- internals --------------------------------------------------------------------------

    def _get_client(self) -> Any:
        with self._lock:
            if self._closed:
                raise StoreUnavailableError(f"{self!r} is closed")
            if self._client is None:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                # No retries: redis-py >= 6 retries 3 times with backoff by default, which
                # would turn an outage into seconds of blocking per call.
                self._client = redis.Redis(
                    **self._kwargs,
                    socket_timeout=_TIMEOUT_S,
                    socket_connect_timeout=_TIMEOUT_S,
                    retry=Retry(NoBackoff(), 0),
                    decode_responses=True,
                )
            return self._client

    def _script(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a registered script by SHA; after a server restart emptied the script cache,
        send its source once (EVAL caches it again). Each attempt is one counted round trip."""
        from redis.exceptions import NoScriptError

        client = self._get_client()
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = client.register_script(source)
        try:
            return client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self._count()
            return client.eval(source, len(keys), *keys, *args)

    def _request(self, call: Callable[[], T]) -> T:
        """One backend request: counts it and turns every backend failure into one error."""
        self._count()
        try:
            return call()
        except StoreUnavailableError:
            raise
        except Exception as exc:  # RedisError, OSError, and anything else the driver raises
            raise StoreUnavailableError(f"{self!r}: {type(exc).__name__}: {exc}") from exc

    def _count(self) -> None:
        with self._lock:
            self.round_trips += 1

    def _stamp(self, sec: Any, usec: Any) -> float:
        # Clamped so that this process never sees the store clock run backwards (a failover
        # to a server whose clock is behind, or a clock step).
        t = int(sec) + int(usec) / 1e6
        with self._lock:
            self._last_time = max(self._last_time, t)
            return self._last_time
