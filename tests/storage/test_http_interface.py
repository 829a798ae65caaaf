"""The ClickHouse-HTTP-compatible query interface over chDB, driven by clickhouse-connect, httpx and curl-like posts.

Every compressed block of an insert is stored (clickhouse-connect sends one LZ4 or zstd frame per ~2 MiB
block), chunked bodies are read whole, limits answer 413, and beyond loopback the interface is read-only.
"""

from __future__ import annotations

import gzip
import zlib

import clickhouse_connect
import httpx
import pytest

from lightspan.storage import connect
from lightspan.storage.http_interface import ClickHouseHTTPInterface


@pytest.fixture
def store(tmp_path, closing):
    client = closing(connect(f"chdb://{tmp_path / 'store'}"))
    client.command("CREATE TABLE lightspan.t (s String) ENGINE = MergeTree ORDER BY tuple()")
    return client


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False])
def test_a_multi_block_insert_stores_every_row(store, compress):
    """10,000 rows of 500 bytes are several ~2 MiB blocks; today's main kept only the first LZ4 frame."""
    with ClickHouseHTTPInterface(store, port=0, database="lightspan") as server:
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=server.port, database="lightspan", compress=compress
        )
        client.insert("t", [[f"{i:05d}" + "x" * 495] for i in range(10_000)], column_names=["s"])
        assert client.query("SELECT count(), uniqExact(s) FROM t").result_rows == [(10_000, 10_000)]
        client.close()


def test_chunked_and_compressed_bodies_are_read_whole(store):
    with ClickHouseHTTPInterface(store, port=0, database="lightspan") as server:
        url = f"http://127.0.0.1:{server.port}/?query=INSERT%20INTO%20lightspan.t%20FORMAT%20TSV"
        rows = b"".join(b"row-%d\n" % i for i in range(5000))

        def pieces():  # a generator body: httpx sends Transfer-Encoding: chunked
            for at in range(0, len(rows), 4096):
                yield rows[at : at + 4096]

        r = httpx.post(url, content=pieces())
        assert r.status_code == 200, r.text
        r = httpx.post(
            url, content=gzip.compress(rows) + gzip.compress(rows), headers={"Content-Encoding": "gzip"}
        )
        assert r.status_code == 200, r.text
        r = httpx.post(url, content=zlib.compress(rows), headers={"Content-Encoding": "deflate"})
        assert r.status_code == 200, r.text
        count = httpx.get(
            f"http://127.0.0.1:{server.port}/", params={"query": "SELECT count() FROM lightspan.t"}
        )
        assert count.text.strip() == "20000"


def test_bodies_past_the_limits_get_413_and_a_bomb_takes_no_memory(store):
    with ClickHouseHTTPInterface(
        store, port=0, database="lightspan", max_body_bytes=1 << 16, max_query_bytes=1 << 20
    ) as s:
        url = f"http://127.0.0.1:{s.port}/?query=INSERT%20INTO%20lightspan.t%20FORMAT%20TSV"
        r = httpx.post(url, content=b"a\n" * 40_000)
        assert r.status_code == 413 and "larger than the limit" in r.text
        bomb = gzip.compress(b"a\n" * (64 << 20))  # 64 MiB that gzip makes ~64 KiB
        assert len(bomb) < 1 << 17
        r = httpx.post(url, content=bomb[: 1 << 16], headers={"Content-Encoding": "gzip"})
        assert r.status_code in (400, 413)
        r = httpx.post(url, content=gzip.compress(b"a\n" * (2 << 20)), headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413 and "after decompression" in r.text
        r = httpx.post(url, content=b"x", headers={"Content-Encoding": "snappy"})
        assert r.status_code == 415 and "unsupported Content-Encoding" in r.text
        assert store.query("SELECT count() FROM lightspan.t").result_rows == [(0,)]


def test_beyond_loopback_it_is_read_only_and_the_owner_still_writes(store):
    with ClickHouseHTTPInterface(store, host="0.0.0.0", port=0, database="lightspan") as server:
        assert server.readonly
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database="lightspan")
        assert client.query("SELECT count() FROM t").result_rows == [(0,)]
        for sql in (
            "DROP TABLE t",
            "INSERT INTO t SELECT 'z'",
            "SELECT 1; DROP TABLE t",
            "SELECT 1 INTO OUTFILE '/tmp/x'",
        ):
            with pytest.raises(Exception, match="read-only"):
                client.command(sql)
        with pytest.raises(Exception, match="read-only"):
            client.insert("t", [["y"]], column_names=["s"])
        client.close()
    store.insert("lightspan.t", [["owner"]], column_names=["s"])  # nothing leaked into the owner's session
    assert store.query("SELECT s FROM lightspan.t").result_rows == [("owner",)]
    with ClickHouseHTTPInterface(
        store, host="0.0.0.0", port=0, database="lightspan", readonly=False
    ) as server:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database="lightspan")
        client.insert("t", [["remote"]], column_names=["s"])
        assert client.query("SELECT count() FROM t").result_rows == [(2,)]
        client.close()
