"""Collector settings: explicit values (flags), then environment variables, then the YAML file, then defaults.

A bad environment value logs a warning and falls back to the default; a bad explicit or YAML value
raises ``ValueError`` naming the setting. Parsing and layering are :mod:`lightspan.schemas.settings`'s,
shared with the other parts; this module keeps the collector's fields, variables and checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightspan.schemas import env
from lightspan.schemas.settings import SettingsFile, env_str, load_settings, parse_list, parsers_for

MiB = 1024 * 1024

#: Budget a request holds while it is decoded, per byte of its (decompressed) body: the body itself plus
#: the decoded message (upb: up to ~2.7x the wire size for tiny spans; JSON: the parsed document, ~2x,
#: plus the message). Measured in benchmarks/bench_collector_memory.py.
DECODE_FACTOR = 5

#: The writer's memory per byte of a batch's requests: the bytes, the decoded messages (~2.7x), the
#: flattened rows (~8x for tiny spans, ~2x for 2 KB GenAI spans) and clickhouse-connect's Native blocks.
WRITER_FACTOR = 20

#: field name -> environment variable
ENV_VARS: dict[str, str] = {
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
    queue_max_bytes: int = 128 * MiB
    # = max_request_bytes, so no extra memory (memory_bound_bytes); 4 MiB made ~4x more parts (issue 18)
    batch_max_bytes: int = 16 * MiB
    max_request_bytes: int = 16 * MiB
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
    http_workers: int = 8
    ready_stall_s: float = 5.0
    insert_timeout_s: float | None = None
    schema_apply: bool = True

    def __post_init__(self) -> None:
        self.data_dir = str(Path(self.data_dir).expanduser())
        self.redact_drop = parse_list(self.redact_drop, name="redact_drop")
        self.redact_hash = parse_list(self.redact_hash, name="redact_hash")
        for name in ("grpc_endpoint", "http_endpoint", "query_endpoint"):
            try:
                setattr(self, name, _endpoint(getattr(self, name)))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        for name in (
            "batch_max_spans",
            "queue_max_spans",
            "max_request_bytes",
            "queue_max_bytes",
            "batch_max_bytes",
            "grpc_workers",
            "http_workers",
            "spool_segment_bytes",
        ):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.queue_max_spans < self.batch_max_spans:
            raise ValueError(
                f"queue_max_spans ({self.queue_max_spans}) must be >= batch_max_spans ({self.batch_max_spans}); "
                "raise queue_max_spans or lower batch_max_spans."
            )
        if self.max_attribute_bytes < 0:
            raise ValueError(
                f"max_attribute_bytes must be >= 0 (0 = no limit), got {self.max_attribute_bytes}"
            )
        if self.max_request_bytes * DECODE_FACTOR > self.queue_max_bytes:
            raise ValueError(
                f"max_request_bytes ({self.max_request_bytes}) x {DECODE_FACTOR} (the budget a request holds "
                f"while it is decoded) must be <= queue_max_bytes ({self.queue_max_bytes}); raise "
                "queue_max_bytes or lower max_request_bytes."
            )
        if self.ready_stall_s <= 0:
            raise ValueError(f"ready_stall_s must be > 0, got {self.ready_stall_s}")
        if self.insert_timeout_s is not None and self.insert_timeout_s <= 0:
            raise ValueError(
                f"insert_timeout_s must be > 0 (or unset: sized from batch_max_bytes), got {self.insert_timeout_s}"
            )
        if self.batch_timeout_s <= 0:
            raise ValueError(f"batch_timeout_s must be > 0, got {self.batch_timeout_s}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both tls_cert and tls_key (PEM files); give both or neither.")

    # ------------------------------------------------------------------
    @property
    def resolved_dsn(self) -> str:
        return self.dsn or f"chdb://{self.data_dir}"

    @property
    def resolved_insert_timeout_s(self) -> float:
        """Seconds one insert may take before it is retried: 10 s plus 2 s per MiB of batch, by default.

        (clickhouse-connect's own default is 300 s, during which a frozen server looks like progress.)"""
        if self.insert_timeout_s:
            return float(self.insert_timeout_s)
        return 10.0 + 2.0 * self.batch_max_bytes / MiB

    @property
    def memory_bound_bytes(self) -> int:
        """What the collector's own memory may grow to above its idle size (docs/collector.md, "Memory")."""
        held = (self.grpc_workers + self.http_workers) * self.max_request_bytes
        batch = max(self.batch_max_bytes, self.max_request_bytes)  # a batch holds at least one request
        return self.queue_max_bytes + held + WRITER_FACTOR * batch

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
        """Build a config from ``overrides`` (None values ignored: CLI flags), environment variables,
        the YAML ``path`` (or ``$LIGHTSPAN_COLLECTOR_CONFIG``) and defaults, in that order of precedence
        (the common convention; ``lightspan collector`` resolves the same way). The YAML may nest the
        settings under a top-level ``collector:`` key."""
        path = path or env_str(env.LIGHTSPAN_COLLECTOR_CONFIG)
        file = None
        if path:
            file = SettingsFile(
                path, parse=_yaml_load, format="YAML", label="collector config", section="collector"
            )
        values = load_settings(
            parsers_for(cls), file=file, env=ENV_VARS, overrides=overrides, order=("file", "env", "overrides")
        )
        return cls(**values)


def _yaml_load(text: str) -> object:
    import yaml  # the collector's dependency, imported only when a config file is given

    return yaml.safe_load(text)
