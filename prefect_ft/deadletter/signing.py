"""Signed dead letters: replay never unpickles, imports or runs what it did not write itself.

A dead letter holds pickled inputs, a pickled policy and the `module:qualname` of a function to
call, in a store that other processes (and, with Redis, other machines) can write. Replaying
whatever is there would let anyone who can write to the store run code in the replayer. So each
item is signed when it is written, with HMAC-SHA256 over its breaker, number, function, inputs
and policy, and replay refuses an item whose signature is missing or wrong (status
`rejected-signature`; it is never unpickled).

The key, in this order:

1. `PREFECT_FT_DEADLETTER_KEY` (at least 16 characters);
2. the Prefect Secret block named by `PREFECT_FT_DEADLETTER_KEY_BLOCK` (read once per process);
3. else a random key generated once in `$PREFECT_HOME/prefect-ft-deadletter.key` (mode 0600),
   which serves every process of one user on one machine. Processes on other machines (a Redis
   store) must share 1 or 2.

The status fields (pending, running, attempts, ...) are not signed: they change on every
transition. See the README's trust model for what this does and does not protect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from prefect_ft import settings
from prefect_ft.exceptions import ConfigurationError

if TYPE_CHECKING:
    from prefect_ft.deadletter.queue import DeadLetter

__all__ = ["SignatureError", "check", "current_key", "key_file", "sign", "verify"]

_MIN_KEY = 16
_lock = threading.Lock()
_block_keys: dict[str, bytes] = {}
_file_keys: dict[str, bytes] = {}


class SignatureError(ValueError):
    """A dead letter's signature is missing or does not match: it must not be unpickled."""


def key_file() -> Path:
    return settings.prefect_home() / "prefect-ft-deadletter.key"


def current_key() -> bytes:
    """The signing key (see the module for where it comes from).

    Raises:
        ConfigurationError: the key is too short, its Secret block cannot be read, or the key
            file cannot be created or is readable by others.
    """
    raw = settings.deadletter_key()
    if raw is not None:
        if len(raw) < _MIN_KEY:
            raise ConfigurationError(
                f"PREFECT_FT_DEADLETTER_KEY must be at least {_MIN_KEY} characters (got {len(raw)})"
            )
        return raw.encode()
    block = settings.deadletter_key_block()
    if block is not None:
        return _block_key(block)
    return _file_key(key_file())


def _block_key(name: str) -> bytes:
    with _lock:
        if name in _block_keys:
            return _block_keys[name]
    from prefect.blocks.system import Secret

    try:
        value = str(Secret.load(name).get())
    except Exception as exc:
        raise ConfigurationError(
            f"PREFECT_FT_DEADLETTER_KEY_BLOCK: cannot read Secret block {name!r}: {exc}"
        ) from None
    if len(value) < _MIN_KEY:
        raise ConfigurationError(
            f"PREFECT_FT_DEADLETTER_KEY_BLOCK: Secret block {name!r} must hold at least "
            f"{_MIN_KEY} characters"
        )
    with _lock:
        _block_keys[name] = value.encode()
    return value.encode()


def _file_key(path: Path) -> bytes:
    with _lock:
        if str(path) in _file_keys:
            return _file_keys[str(path)]
        try:
            if not path.exists():
                _create(path)
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigurationError(
                    f"dead-letter key file {path} is readable by others (mode {mode:o}): "
                    f"run `chmod 600 {path}`, or set PREFECT_FT_DEADLETTER_KEY"
                )
            key = path.read_text().strip().encode()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create or read the dead-letter key file {path}: {exc}; "
                "set PREFECT_FT_DEADLETTER_KEY or PREFECT_FT_DEADLETTER_KEY_BLOCK"
            ) from None
        if len(key) < _MIN_KEY:
            raise ConfigurationError(f"dead-letter key file {path} holds a key that is too short")
        _file_keys[str(path)] = key
        return key


def _create(path: Path) -> None:
    """Write a new random key; of two processes racing, the first link wins, both read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process wrote
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _message(item: DeadLetter) -> bytes:
    parts = [item.breaker, item.seq, item.task_path, item.encoding, item.payload, item.policy]
    return json.dumps(parts, separators=(",", ":")).encode()


def sign(item: DeadLetter, key: bytes | None = None) -> str:
    """The item's signature (hex HMAC-SHA256)."""
    return hmac.new(key or current_key(), _message(item), hashlib.sha256).hexdigest()


def verify(item: DeadLetter, key: bytes | None = None) -> bool:
    """True when the item carries a valid signature under the current key."""
    return bool(item.signature) and hmac.compare_digest(item.signature, sign(item, key))


def check(item: DeadLetter, key: bytes | None = None) -> None:
    """Raise `SignatureError` unless `verify(item)`."""
    if not verify(item, key):
        why = "unsigned" if not item.signature else "signature does not match"
        raise SignatureError(
            f"dead letter {item.id}: {why} under this process's key; refusing to unpickle "
            "or run it (see prefect_ft.deadletter.signing)"
        )
