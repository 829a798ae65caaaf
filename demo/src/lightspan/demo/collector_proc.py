"""Run ``lightspan collector`` as a separate process on loopback, as a user would.

The collector owns the embedded chDB directory; the demo's converter and trainer read through the
ClickHouse HTTP query interface it serves, exactly as they would read a ClickHouse server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class CollectorProcess:
    """A running collector subprocess and where to reach it.

    A context manager: leaving the ``with`` block (normally or by an exception) stops the process and
    waits for it, so a failure anywhere after the start leaves no collector behind.
    """

    proc: subprocess.Popen
    grpc_port: int
    http_port: int
    query_port: int
    log_path: Path

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}/lightspan"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: flush queue and spool), then wait; SIGKILL only past ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> CollectorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_collector(work_dir: Path, *, ready_timeout: float = 90.0) -> CollectorProcess:
    """Start a collector with its store and spool under ``work_dir``; return once /readyz answers.

    If it does not become ready (or anything interrupts the wait) the process is stopped before the
    exception propagates; once returned, the caller owns it (``with`` it, or call ``stop``).
    """
    grpc_port, http_port, query_port = _free_port(), _free_port(), _free_port()
    log_path = work_dir / "collector.log"
    cmd = [
        sys.executable,
        "-m",
        "lightspan.cli",
        "collector",
        "--data-dir",
        str(work_dir / "store"),
        "--spool-dir",
        str(work_dir / "spool"),
        "--grpc-endpoint",
        f"127.0.0.1:{grpc_port}",
        "--http-endpoint",
        f"127.0.0.1:{http_port}",
        "--query-endpoint",
        f"127.0.0.1:{query_port}",
        "--batch-timeout",
        "0.2",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTSPAN_CLICKHOUSE")}
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    handle = CollectorProcess(proc, grpc_port, http_port, query_port, log_path)
    try:
        _wait_ready(proc, http_port, ready_timeout, log_path)
    except BaseException:
        handle.stop(timeout=5)
        raise
    return handle


def _wait_ready(proc: subprocess.Popen, http_port: int, ready_timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"collector not ready after {ready_timeout:.0f}s; see {log_path}")
