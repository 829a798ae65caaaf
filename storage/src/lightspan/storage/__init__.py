"""One way to reach ClickHouse: a DSN becomes a clickhouse-connect client; the schema is applied here.

Shared by the collector, converters and training (they never import each other).
``clickhouse_connect`` is imported lazily so importing this package costs nothing.
"""

from .dsn import DSN, StorageError, connect, parse_dsn, resolve_dsn
from .migrate import SchemaError, apply_schema, current_version
from .version import __version__ as __version__

__all__ = [
    "DSN",
    "SchemaError",
    "StorageError",
    "apply_schema",
    "connect",
    "current_version",
    "parse_dsn",
    "resolve_dsn",
]
