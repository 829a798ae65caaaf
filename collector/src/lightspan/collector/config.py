"""Collector settings: explicit values, then the YAML file, then environment variables, then defaults.

A bad environment value logs a warning and falls back to the default; a bad explicit or YAML value
raises ``ValueError`` naming the setting.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightspan.schemas import env

_log = logging.getLogger(__name__)

MiB = 1024 * 1024

#: field name -> environment variable
_ENV: dict[str, str] = {
    "dsn": env.LIGHTSPAN_CLICKHOUSE_DSN,
    "data_dir": env.LIGHTSPAN_DATA_DIR,
    "grpc_endpoint": env.LIGHTSPAN_GRPC_ENDPOINT,
    "http_endpoint": env.LIGHTSPAN_HTTP_ENDPOINT,
    "query_endpoint": env.LIGHTSPAN_QUERY_ENDPOINT,
    "spool_dir": env.LIGHTSPAN_SPOOL_DIR,
    "batch_max_spans": env.LIGHTSPAN_BATCH_MAX_SPANS,
    "batch_timeout_s": env.LIGHTSPAN_BATCH_TIMEOUT,
    "queue_max_spans": env.LIGHTSPAN_QUEUE_MAX_SPANS,
    "max_request_bytes": env.LIGHTSPAN_MAX_REQUEST_BYTES,
    "max_attribute_bytes": env.LIGHTSPAN_MAX_ATTRIBUTE_BYTES,
    "redact_drop": env.LIGHTSPAN_REDACT_DROP,
    "redact_hash": env.LIGHTSPAN_REDACT_HASH,
    "auth_token": env.LIGHTSPAN_AUTH_TOKEN,
    "tls_cert": env.LIGHTSPAN_TLS_CERT,
    "tls_key": env.LIGHTSPAN_TLS_KEY,
    "spool_fsync": env.LIGHTSPAN_SPOOL_FSYNC,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _endpoint(value: str | None) -> str | None:
    if value is None or str(value).strip().lower() in ("", "none", "off", "false"):
        return None
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port (port 0 picks a free one), got {value!r}")
    return str(value)


@dataclass
class CollectorConfig:
    """Everything ``lightspan collector`` can be told. See ``docs/collector.md`` for each setting."""

    dsn: str | None = None
    data_dir: str = env.DEFAULT_DATA_DIR
    grpc_endpoint: str | None = "0.0.0.0:4317"
    http_endpoint: str | None = "0.0.0.0:4318"
    query_endpoint: str | None = "127.0.0.1:8123"
    spool_dir: str | None = None
    batch_max_spans: int = 10_000
    batch_timeout_s: float = 1.0
    queue_max_spans: int = 50_000
    max_request_bytes: int = 64 * MiB
    max_attribute_bytes: int = env.DEFAULT_MAX_ATTRIBUTE_BYTES
    redact_drop: list[str] = field(default_factory=list)
    redact_hash: list[str] = field(default_factory=list)
    auth_token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    spool_fsync: bool = True
    spool_segment_bytes: int = 64 * MiB
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    retry_after_s: int = 1
    grpc_workers: int = 8
    schema_apply: bool = True

    def __post_init__(self) -> None:
        self.data_dir = str(Path(self.data_dir).expanduser())
        self.redact_drop = _as_list(self.redact_drop)
        self.redact_hash = _as_list(self.redact_hash)
        for name in ("grpc_endpoint", "http_endpoint", "query_endpoint"):
            try:
                setattr(self, name, _endpoint(getattr(self, name)))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        for name in ("batch_max_spans", "queue_max_spans", "max_request_bytes", "grpc_workers", "spool_segment_bytes"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.queue_max_spans < self.batch_max_spans:
            raise ValueError(
                f"queue_max_spans ({self.queue_max_spans}) must be >= batch_max_spans ({self.batch_max_spans}); "
                "raise queue_max_spans or lower batch_max_spans."
            )
        if self.max_attribute_bytes < 0:
            raise ValueError(f"max_attribute_bytes must be >= 0 (0 = no limit), got {self.max_attribute_bytes}")
        if self.batch_timeout_s <= 0:
            raise ValueError(f"batch_timeout_s must be > 0, got {self.batch_timeout_s}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both tls_cert and tls_key (PEM files); give both or neither.")

    # ------------------------------------------------------------------
    @property
    def resolved_dsn(self) -> str:
        return self.dsn or f"chdb://{self.data_dir}"

    @property
    def resolved_spool_dir(self) -> str:
        """``spool_dir``, else beside the embedded data directory, else ``~/.lightspan/spool``."""
        if self.spool_dir:
            return str(Path(self.spool_dir).expanduser())
        if self.dsn and not self.dsn.startswith("chdb:") and "://" in self.dsn:
            return str(Path("~/.lightspan/spool").expanduser())
        data = Path(self.data_dir)
        return str(data.parent / "spool" if data.name == "data" else data.with_name(data.name + "-spool"))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides: Any) -> CollectorConfig:
        """Build a config from ``overrides`` (None values ignored), the YAML ``path``
        (or ``$LIGHTSPAN_COLLECTOR_CONFIG``), environment variables and defaults, in that order."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            raw = os.environ.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = _coerce(fields[name], raw)
            except ValueError as exc:
                _log.warning("ignoring %s=%r (%s); using the default", var, raw, exc)
        path = path or os.environ.get(env.LIGHTSPAN_COLLECTOR_CONFIG) or None
        if path:
            values.update(_read_yaml(Path(path), fields))
        for name, value in overrides.items():
            if name not in fields:
                raise ValueError(f"unknown collector setting {name!r}; known: {', '.join(sorted(fields))}")
            if value is not None:
                values[name] = _coerce(fields[name], value)
        return cls(**values)


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    typ = str(f.type)
    try:
        if typ.startswith("bool"):
            return _as_bool(value)
        if typ.startswith("int"):
            return int(value)
        if typ.startswith("float"):
            return float(value)
        if typ.startswith("list"):
            return _as_list(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{f.name}: {exc}") from None
    return None if value is None else (value if isinstance(value, str) else str(value))


def _read_yaml(path: Path, fields: dict[str, dataclasses.Field]) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ValueError(f"cannot read collector config {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"collector config {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"collector config {path} must be a mapping of setting: value")
    doc = doc.get("collector", doc) if isinstance(doc.get("collector"), dict) else doc
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise ValueError(f"collector config {path}: unknown settings {unknown}; known: {', '.join(sorted(fields))}")
    return {k: _coerce(fields[k], v) for k, v in doc.items()}
