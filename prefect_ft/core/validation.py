"""Construction-time checks whose messages name the field and the allowed range."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from prefect_ft.exceptions import ConfigurationError

__all__ = ["STORE_URL_FORMS", "STORE_URL_PATTERN", "check_store_url", "require"]

STORE_URL_FORMS = "memory://, sqlite:///PATH or redis://HOST[:PORT][/DB]"
# The same schemes as a JSON-schema pattern, so a UI form refuses a mistyped scheme before saving.
STORE_URL_PATTERN = r"^(memory://.*|sqlite:///.+|rediss?://.+)$"


def require(ok: bool, field: str, allowed: str, got: Any) -> None:
    """Raise `ConfigurationError("<field> must be <allowed> (got <got>)")` unless `ok`."""
    if not ok:
        raise ConfigurationError(f"{field} must be {allowed} (got {got!r})")


def check_store_url(url: object, field: str = "store_url") -> str:
    """`url` if a store can be built from it, else `ConfigurationError` naming `field` and the cause.

    Only the form is checked (scheme, host, port 1-65535, integer database, SQLite path), never
    whether the store answers: a store that is down is a fault handled at run time, whereas a
    malformed URL would fail every call until someone edited it.
    """

    def refuse(cause: str) -> ConfigurationError:
        return ConfigurationError(f"{field} must be {STORE_URL_FORMS}: {cause} (got {url!r})")

    if not isinstance(url, str) or "://" not in url:
        raise refuse("no scheme")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in 0-65535
    except ValueError:
        raise refuse("port must be an integer in [1, 65535]") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return url
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or not url[len("sqlite:///") :]:
            raise refuse("sqlite needs a path, as in sqlite:///PATH")
        return url
    if scheme not in ("redis", "rediss"):
        raise refuse(f"unknown scheme {parts.scheme!r}")
    if not parts.hostname:
        raise refuse("redis needs a host")
    if port is not None and not 1 <= port <= 65535:
        raise refuse("port must be an integer in [1, 65535]")
    db = parts.path.strip("/")
    if db and not (db.isdigit() and db.isascii()):
        raise refuse(f"the database must be an integer >= 0, not {db!r}")
    return url
