"""The collector: storage + schema, spool replay, writer, receivers and the query interface, in order.

``start()`` opens the store and applies the schema, replays the spool (what an earlier run acknowledged
but may not have written), then starts the writer and the receivers. ``stop()`` refuses new exports,
stops the receivers, flushes the queue to ClickHouse and closes the spool.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .config import CollectorConfig
from .ingest import Ingestor
from .metrics import Metrics
from .redact import Redactor
from .spool import Spool
from .writer import EMBEDDED_INSERT_SETTINGS, ClickHouseSink, Pipeline

_log = logging.getLogger(__name__)


class Collector:
    """OTLP in, ClickHouse out. ``with Collector(CollectorConfig(...)) as c: ...`` or ``start()``/``stop()``."""

    def __init__(self, config: CollectorConfig | None = None, *, sink: Any | None = None):
        self.config = config or CollectorConfig.load()
        self._sink_override = sink
        self.client: Any = None
        self.lock = threading.Lock()
        self.metrics = Metrics()
        self.spool: Spool | None = None
        self.pipeline: Pipeline | None = None
        self.ingestor: Ingestor | None = None
        self._grpc: Any = None
        self._http: Any = None
        self._query: Any = None
        self._started = False
        self.embedded = False

    # ------------------------------------------------------------------ properties
    @property
    def grpc_port(self) -> int | None:
        return self._grpc.port if self._grpc else None

    @property
    def http_port(self) -> int | None:
        return self._http.port if self._http else None

    @property
    def query_url(self) -> str | None:
        """A clickhouse-connect DSN other processes read with (embedded store only), else None."""
        return self._query.url if self._query else None

    @property
    def database(self) -> str:
        from lightspan.storage import parse_dsn

        return parse_dsn(self.config.resolved_dsn).database

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Collector:
        if self._started:
            return self
        cfg = self.config
        from lightspan.storage import apply_schema, connect, parse_dsn

        from ._malloc import limit_arenas

        limit_arenas()  # before the receiver threads exist (see _malloc)

        dsn = parse_dsn(cfg.resolved_dsn)
        self.embedded = dsn.embedded
        if self._sink_override is None:
            # A frozen server must not hold an insert for clickhouse-connect's default 300 s; chDB
            # (in process) takes no timeout.
            timeouts: dict[str, Any] = (
                {} if dsn.embedded else {"send_receive_timeout": cfg.resolved_insert_timeout_s}
            )
            self.client = connect(dsn, **timeouts)
            if cfg.schema_apply:
                with self.lock:
                    apply_schema(self.client, database=dsn.database)
            settings = EMBEDDED_INSERT_SETTINGS if dsn.embedded else None
            sink: Any = ClickHouseSink(self.client, dsn.database, self.lock, settings)
        else:
            sink = self._sink_override
        self.spool = Spool(
            cfg.resolved_spool_dir, fsync=cfg.spool_fsync, segment_bytes=cfg.spool_segment_bytes
        )
        redactor = Redactor(
            drop=cfg.redact_drop, hash=cfg.redact_hash, max_attribute_bytes=cfg.max_attribute_bytes
        )
        self.pipeline = Pipeline(
            sink,
            self.spool,
            self.metrics,
            redactor,
            batch_max_spans=cfg.batch_max_spans,
            batch_max_bytes=cfg.batch_max_bytes,
            batch_timeout_s=cfg.batch_timeout_s,
            queue_max_spans=cfg.queue_max_spans,
            queue_max_bytes=cfg.queue_max_bytes,
            retry_initial_s=cfg.retry_initial_s,
            retry_max_s=cfg.retry_max_s,
        )
        self.ingestor = Ingestor(
            self.pipeline, self.spool, self.metrics, redactor, cfg.auth_token, cfg.retry_after_s
        )
        self.pipeline.start()
        replayed = self.ingestor.replay()
        if replayed:
            _log.info("replaying %d spooled requests from %s", replayed, cfg.resolved_spool_dir)
        try:
            self._start_servers()
        except Exception:
            self.stop(timeout=5)
            raise
        self._started = True
        return self

    def _start_servers(self) -> None:
        cfg = self.config
        if self.embedded and cfg.query_endpoint and self.client is not None:
            from lightspan.storage.http_interface import ClickHouseHTTPInterface

            host, _, port = cfg.query_endpoint.rpartition(":")
            self._query = ClickHouseHTTPInterface(
                self.client, host, int(port), lock=self.lock, database=self.database
            )
            self._query.start()
        if cfg.grpc_endpoint:
            from .grpc_receiver import GrpcReceiver

            self._grpc = GrpcReceiver(
                self.ingestor, cfg.grpc_endpoint, max_request_bytes=cfg.max_request_bytes,
                workers=cfg.grpc_workers, tls_cert=cfg.tls_cert, tls_key=cfg.tls_key,
            )  # fmt: skip
            self._grpc.start()
        if cfg.http_endpoint:
            from .http_receiver import HttpReceiver

            self._http = HttpReceiver(
                self.ingestor, cfg.http_endpoint, max_request_bytes=cfg.max_request_bytes,
                readiness=self.readiness, tls_cert=cfg.tls_cert, tls_key=cfg.tls_key,
                workers=cfg.http_workers,
            )  # fmt: skip
            self._http.start()
        host = lambda ep: ep.rpartition(":")[0]  # noqa: E731
        _log.info(
            "collector listening",
            extra={
                "otlp_grpc": f"{host(cfg.grpc_endpoint)}:{self.grpc_port}" if self._grpc else None,
                "otlp_http": f"{host(cfg.http_endpoint)}:{self.http_port}" if self._http else None,
                "query_url": self.query_url,
                "store": cfg.resolved_dsn if self.embedded else "server",
                "spool": cfg.resolved_spool_dir,
            },
        )

    def readiness(self) -> tuple[bool, str]:
        """Ready: running, the last insert succeeded, and the writer made progress within
        ``ready_stall_s`` whenever work was waiting (a frozen store fails this within seconds)."""
        if not self._started or self.ingestor is None or not self.ingestor.accepting:
            return False, "not running"
        p = self.pipeline
        if p is not None and not p.healthy:
            return False, f"ClickHouse writes failing: {p.last_error}"
        if p is not None and p.stalled(self.config.ready_stall_s):
            return False, (
                f"no batch written for more than {self.config.ready_stall_s:g} s while "
                f"{p.queued_spans} spans/records wait (ClickHouse slow or frozen)"
            )
        return True, "ok"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop gracefully; return True when everything acknowledged reached ClickHouse."""
        if self.ingestor is not None:
            self.ingestor.accepting = False
        if self._grpc is not None:
            self._grpc.stop(grace=min(5.0, timeout))
            self._grpc = None
        if self._http is not None:
            self._http.stop()
            self._http = None
        flushed = True
        if self.pipeline is not None:
            flushed = self.pipeline.stop(timeout)
            if not flushed:
                _log.warning("stopped before everything was written; the spool keeps it for the next start")
        if self.spool is not None:
            self.spool.close()
        if self._query is not None:
            self._query.stop()
            self._query = None
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
            self.client = None
        self._started = False
        return flushed

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
