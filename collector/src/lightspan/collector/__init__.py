"""lightspan.collector: OTLP/gRPC and OTLP/HTTP in, ClickHouse out, nothing acknowledged ever lost.

>>> from lightspan.collector import Collector, CollectorConfig
>>> with Collector(CollectorConfig.load(data_dir="/tmp/ls", grpc_endpoint="127.0.0.1:0")) as c:  # doctest: +SKIP
...     print(c.grpc_port, c.http_port, c.query_url)
"""

from .config import CollectorConfig
from .service import Collector
from .version import __version__ as __version__

__all__ = ["Collector", "CollectorConfig"]
