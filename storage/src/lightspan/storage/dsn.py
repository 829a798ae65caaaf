"""Turn a DSN into a clickhouse-connect client: ``chdb:///dir`` (embedded) or ``http(s)://host:8123/db``.

This is the only place in lightspan that calls ``clickhouse_connect.get_client``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lightspan.schemas import env
from lightspan.schemas.settings import SettingsError, parse_bool

if TYPE_CHECKING:  # pragma: no cover
    from clickhouse_connect.driver.client import Client

_log = logging.getLogger(__name__)


class StorageError(Exception):
    """A DSN that cannot be used, or a store that cannot be reached; the message says which and why."""


@dataclass(frozen=True)
class DSN:
    """A parsed storage location. ``kind`` is ``chdb`` (embedded directory) or ``http``."""

    kind: str
    database: str = env.DEFAULT_DATABASE
    path: str | None = None  # chdb
    host: str | None = None  # http
    port: int | None = None
    username: str = "default"
    password: str = field(default="", repr=False)
    secure: bool = False
    verify: bool = True
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def redacted(self) -> str:
        """The DSN as text with the password hidden (safe to log)."""
        if self.embedded:
            return f"chdb://{self.path}"
        scheme = "https" if self.secure else "http"
        auth = f"{self.username}:***@" if self.password else f"{self.username}@"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.database}"


def resolve_dsn(dsn: str | None = None) -> str:
    """Argument, then ``LIGHTSPAN_CLICKHOUSE_DSN``, then the embedded default directory."""
    if dsn:
        return dsn
    from_env = os.environ.get(env.LIGHTSPAN_CLICKHOUSE_DSN)
    if from_env:
        return from_env
    data_dir = os.environ.get(env.LIGHTSPAN_DATA_DIR) or env.DEFAULT_DATA_DIR
    return f"chdb://{Path(data_dir).expanduser()}"


def parse_dsn(dsn: str | None = None) -> DSN:
    """Parse ``dsn`` (see :func:`resolve_dsn` for defaults); raise :class:`StorageError` naming the problem.

    Accepted forms::

        chdb:///abs/dir   chdb://~/dir   chdb://relative/dir   /abs/dir   ./dir
        http://user:pass@host:8123/database?secure=false&verify=true&<clickhouse setting>=<value>
        https://host:8443/database
    """
    raw = resolve_dsn(dsn).strip()
    database_env = os.environ.get(env.LIGHTSPAN_CLICKHOUSE_DATABASE) or env.DEFAULT_DATABASE
    if "://" not in raw:
        if not raw:
            raise StorageError("empty DSN: give chdb:///dir, a directory, or http(s)://host:port/db")
        return DSN(kind="chdb", path=str(Path(raw).expanduser().resolve()), database=database_env)
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query))
    if scheme == "chdb":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise StorageError(f"chdb DSN needs a directory, e.g. chdb:///var/lib/lightspan, got {raw!r}")
        database = query.pop("database", database_env)
        return DSN(kind="chdb", path=str(Path(path).expanduser().resolve()), database=database)
    if scheme in ("http", "https", "clickhouse", "clickhouses"):
        if not parts.hostname:
            raise StorageError(f"server DSN needs a host, e.g. http://localhost:8123/lightspan, got {raw!r}")
        secure_default = scheme in ("https", "clickhouses")
        # The DSN's ``?secure=``/``?verify=`` win over the environment, which wins over the scheme.
        raw_secure = query.pop("secure", None) or os.environ.get(env.LIGHTSPAN_CLICKHOUSE_SECURE)
        raw_verify = query.pop("verify", None) or os.environ.get(env.LIGHTSPAN_CLICKHOUSE_VERIFY)
        try:
            secure = parse_bool(raw_secure, name="secure", default=secure_default)
            verify = parse_bool(raw_verify, name="verify", default=True)
        except SettingsError as exc:  # storage callers catch StorageError
            raise StorageError(str(exc)) from None
        try:
            port = parts.port or (8443 if secure else 8123)
        except ValueError as exc:
            raise StorageError(f"bad port in DSN {raw!r}: {exc}") from None
        database = parts.path.strip("/") or query.pop("database", None) or database_env
        username = (
            unquote(parts.username)
            if parts.username
            else os.environ.get(env.LIGHTSPAN_CLICKHOUSE_USER, "default")
        )
        password = (
            unquote(parts.password)
            if parts.password is not None
            else os.environ.get(env.LIGHTSPAN_CLICKHOUSE_PASSWORD, "")
        )
        return DSN(
            kind="http",
            host=parts.hostname,
            port=port,
            database=database,
            username=username,
            password=password,
            secure=secure,
            verify=verify,
            settings=query,
        )
    raise StorageError(f"unknown DSN scheme {parts.scheme!r} in {raw!r}: use chdb://, http:// or https://")


def connect(dsn: str | DSN | None = None, *, create_database: bool = True, **kwargs: Any) -> Client:
    """A clickhouse-connect client for ``dsn``, its database created if missing.

    ``kwargs`` go to ``clickhouse_connect.get_client`` (e.g. ``send_receive_timeout``).
    """
    parsed = dsn if isinstance(dsn, DSN) else parse_dsn(dsn)
    try:
        import clickhouse_connect
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "Reading or writing ClickHouse needs clickhouse-connect. Install with: pip install lightspan[collector]"
        ) from exc
    try:
        if parsed.embedded:
            Path(parsed.path).mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(interface="chdb", path=parsed.path, **kwargs)
            if create_database:
                client.command(f"CREATE DATABASE IF NOT EXISTS {parsed.database}")
            # chDB has no per-session default database switch through the driver; callers qualify names.
            client.database = parsed.database
            return client
        client = clickhouse_connect.get_client(
            host=parsed.host,
            port=parsed.port,
            username=parsed.username,
            password=parsed.password,
            secure=parsed.secure,
            verify=parsed.verify,
            database="default" if create_database else parsed.database,
            settings=parsed.settings or None,
            **kwargs,
        )
        if create_database:
            client.command(f"CREATE DATABASE IF NOT EXISTS {parsed.database}")
            client.database = parsed.database
        return client
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot open ClickHouse at {parsed.redacted()}: {exc}") from exc
