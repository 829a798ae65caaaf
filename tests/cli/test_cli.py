"""The one `lightspan` entry point: help everywhere, one-line errors, exit codes, lazy parts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lightspan.cli.main import SUBCOMMANDS
from lightspan.schemas.ddl import MIGRATIONS


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightspan.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_top_level_help_lists_every_subcommand_without_importing_parts():
    code = (
        "import sys\nfrom lightspan.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'grpc', 'clickhouse_connect', 'trl') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for name in SUBCOMMANDS:
        assert name in out
    assert "HEAVY []" in out


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name):
    result = _run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: lightspan" in result.stdout


def test_unknown_command_is_one_line_and_exit_2():
    result = _run("frobnicate")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No such command 'frobnicate'" in lines[0]


def test_bad_option_value_is_one_line_and_exit_2():
    result = _run("schema", "apply", "--ttl-days", "-3")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--ttl-days" in result.stderr


def test_schema_apply_twice_then_version(tmp_path):
    dsn = f"chdb://{tmp_path / 'db'}"
    first = _run("schema", "apply", "--dsn", dsn)
    assert first.returncode == 0, first.stderr
    every = [m.version for m in MIGRATIONS]
    assert f"applied migrations {every}" in first.stdout
    second = _run("schema", "apply", "--dsn", dsn)
    assert "nothing to do" in second.stdout
    assert f"version {every[-1]}" in _run("schema", "version", "--dsn", dsn).stdout


def test_runtime_error_exit_1(tmp_path):
    result = _run("schema", "apply", "--dsn", "ftp://nowhere/x")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "lightspan: error: unknown DSN scheme 'ftp' in 'ftp://nowhere/x': use chdb://, http:// or https://"
    )


def test_schema_print_cluster_is_offline():
    result = _run("schema", "print", "--cluster", "prod")
    assert result.returncode == 0
    assert "Distributed('prod'" in result.stdout


def test_version_flag():
    result = _run("--version")
    assert result.returncode == 0 and "lightspan, version" in result.stdout
