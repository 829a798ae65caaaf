"""lightspan.schemas.settings: the one true/false spelling, value parsers and the layered loader."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pytest

from lightspan.schemas.settings import (
    BOOL_SPELLINGS,
    SettingsError,
    SettingsFile,
    SettingsFileNotFoundError,
    env_str,
    is_true,
    load_settings,
    parse_bool,
    parse_float,
    parse_int,
    parse_list,
    parse_positive_int,
    parse_str,
    parsers_for,
    read_settings_file,
)


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "On", True, 1])
def test_parse_bool_true_spellings(raw):
    assert parse_bool(raw, name="x") is True


@pytest.mark.parametrize("raw", ["0", "false", "False", " no", "OFF", False, 0])
def test_parse_bool_false_spellings(raw):
    assert parse_bool(raw, name="x") is False


@pytest.mark.parametrize("raw", ["maybe", "", "  ", None, 2, 1.0, "truee"])
def test_parse_bool_rejects_naming_the_setting_and_the_spellings(raw):
    with pytest.raises(SettingsError) as info:
        parse_bool(raw, name="spool_fsync")
    assert str(info.value) == f"spool_fsync must be one of {BOOL_SPELLINGS}, got {raw!r}"
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_parse_bool_default_only_covers_missing_values():
    assert parse_bool(None, name="secure", default=True) is True
    assert parse_bool("  ", name="secure", default=False) is False
    assert parse_bool("no", name="secure", default=True) is False
    with pytest.raises(SettingsError, match="secure must be one of"):
        parse_bool("maybe", name="secure", default=True)


def test_is_true_is_lenient():
    assert [is_true(v) for v in ("true", " YES ", "1", "on", True, 1)] == [True] * 6
    assert [is_true(v) for v in ("false", "", "garbage", "2", None, 2, 1.0, False)] == [False] * 8


def test_parse_int():
    assert parse_int(" 12 ", name="n") == 12
    assert parse_int(3.0, name="n") == 3
    assert parse_int(-4, name="n") == -4
    assert parse_positive_int("5", name="n") == 5
    assert parse_int(0, name="n", minimum=0) == 0
    with pytest.raises(SettingsError, match=r"^n must be an integer, got 1.5$"):
        parse_int(1.5, name="n")
    with pytest.raises(SettingsError, match=r"^n must be an integer, got True$"):
        parse_int(True, name="n")
    with pytest.raises(SettingsError, match=r"^n must be an integer, got 'ten'$"):
        parse_int("ten", name="n")
    with pytest.raises(SettingsError, match=r"^max_attribute_bytes must be a positive integer, got 0$"):
        parse_positive_int(0, name="max_attribute_bytes")
    with pytest.raises(SettingsError, match=r"^n must be an integer >= 2, got '1'$"):
        parse_int("1", name="n", minimum=2)


def test_parse_float_str_and_list():
    assert parse_float("0.5", name="t") == 0.5
    assert parse_float(2, name="t") == 2.0
    with pytest.raises(SettingsError, match="t must be a number, got 'soon'"):
        parse_float("soon", name="t")
    with pytest.raises(SettingsError, match="t must be a number, got False"):
        parse_float(False, name="t")
    assert parse_str(123, name="token") == "123"
    with pytest.raises(SettingsError, match="token must be a string"):
        parse_str(["a"], name="token")
    assert parse_list(" a, ,b ,", name="keys") == ["a", "b"]
    assert parse_list(("a", 1), name="keys") == ["a", "1"]
    assert parse_list(None, name="keys") == []
    with pytest.raises(SettingsError, match="keys must be a list or comma-separated text"):
        parse_list({"a": 1}, name="keys")


@dataclass
class _Conf:
    flag: bool = True
    count: int = 1
    ratio: float = 0.5
    name: str = "n"
    token: str | None = None
    keys: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)


def test_parsers_for_follows_the_annotations():
    parsers = parsers_for(_Conf)
    assert set(parsers) == {"flag", "count", "ratio", "name", "token", "keys", "extra"}
    assert parsers["extra"] is None  # no parser: taken as is

    def parse(key: str, raw: object) -> object:
        parser = parsers[key]
        assert parser is not None
        return parser(raw, name=key)

    assert parse("flag", "off") is False
    assert parse("count", "7") == 7
    assert parse("ratio", "1") == 1.0
    assert parse("keys", "a,b") == ["a", "b"]
    assert parse("token", None) is None  # optional: null stays null
    assert parse("token", 5) == "5"
    with pytest.raises(SettingsError, match="count must be an integer, got None"):
        parse("count", None)


def test_env_str_treats_blank_as_unset():
    environ = {"A": "x", "B": "  ", "C": ""}
    assert env_str("A", environ=environ) == "x"
    assert env_str("B", "d", environ=environ) == "d"
    assert env_str("C", environ=environ) is None
    assert env_str("MISSING", "d", environ=environ) == "d"


def _write(tmp_path, text, name="c.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_settings_file(tmp_path):
    assert read_settings_file(SettingsFile(_write(tmp_path, '{"count": 2}'))) == {"count": 2}
    assert read_settings_file(SettingsFile(_write(tmp_path, "null"))) == {}
    nested = _write(tmp_path, json.dumps({"collector": {"count": 3}, "other": 1}))
    assert read_settings_file(SettingsFile(nested, section="collector")) == {"count": 3}
    assert read_settings_file(SettingsFile(nested, section="absent")) == {
        "collector": {"count": 3},
        "other": 1,
    }

    def pairs(text: str) -> object:  # a stand-in for yaml.safe_load: "key=value" lines
        return dict(line.split("=", 1) for line in text.splitlines() if line)

    assert read_settings_file(SettingsFile(_write(tmp_path, "a=1\n", "c.txt"), parse=pairs)) == {"a": "1"}


def test_read_settings_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        SettingsFileNotFoundError, match=r"collector config '.*nope.yaml' does not exist"
    ) as info:
        read_settings_file(SettingsFile(missing, label="collector config"))
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(SettingsError, match=r"config file '.*c.json' is not valid JSON"):
        read_settings_file(SettingsFile(_write(tmp_path, "{not json")))
    with pytest.raises(SettingsError, match=r"must hold a YAML mapping of setting: value, got list"):
        read_settings_file(SettingsFile(_write(tmp_path, "[1, 2]"), format="YAML"))
    with pytest.raises(SettingsError, match="cannot read config file"):
        read_settings_file(SettingsFile(tmp_path))  # a directory


FIELDS = {"flag": parse_bool, "count": parse_positive_int, "name": None}


def test_default_order_is_file_then_env_then_overrides(tmp_path):
    path = _write(tmp_path, '{"count": 2, "name": "file", "flag": false}')
    environ = {"COUNT": "3", "FLAG": "yes"}
    env = {"count": "COUNT", "flag": "FLAG"}
    got = load_settings(FIELDS, file=SettingsFile(path), env=env, environ=environ)
    assert got == {"count": 3, "name": "file", "flag": True}
    got = load_settings(
        FIELDS, file=SettingsFile(path), env=env, environ=environ, overrides={"count": 4, "flag": None}
    )
    assert got == {"count": 4, "name": "file", "flag": True}  # None means "not given"
    got = load_settings(
        FIELDS, file=SettingsFile(path), env=env, environ=environ, order=("env", "file", "overrides")
    )
    assert got == {"count": 2, "name": "file", "flag": False}
    assert load_settings(FIELDS) == {}  # defaults stay with the caller's dataclass


def test_env_first_set_and_valid_variable_wins_and_bad_ones_warn(caplog):
    env = {"flag": ("OURS", "STANDARD"), "count": "COUNT"}
    assert load_settings(FIELDS, env=env, environ={"OURS": "off", "STANDARD": "on"}) == {"flag": False}
    assert load_settings(FIELDS, env=env, environ={"OURS": "", "STANDARD": "on"}) == {"flag": True}
    with caplog.at_level(logging.WARNING, logger="lightspan.schemas.settings"):
        got = load_settings(FIELDS, env=env, environ={"OURS": "maybe", "STANDARD": "true", "COUNT": "0"})
    assert got == {"flag": True}
    assert "ignoring OURS='maybe' (OURS must be one of" in caplog.text
    assert "ignoring COUNT='0' (COUNT must be a positive integer" in caplog.text


def test_unknown_keys_and_bad_values_raise_naming_them(tmp_path):
    path = _write(tmp_path, '{"cuont": 1, "count": 2}')
    with pytest.raises(
        SettingsError, match=r"'.*c.json': unknown settings \['cuont'\]; known: count, flag, name$"
    ):
        load_settings(FIELDS, file=SettingsFile(path))
    with pytest.raises(
        SettingsError, match=r"^unknown TrainConfig field\(s\) \['x'\]; known: count, flag, name$"
    ):
        load_settings(FIELDS, overrides={"x": None}, what="TrainConfig field(s)")
    path.write_text('{"count": "lots"}')
    with pytest.raises(
        SettingsError, match=r"^config file '.*c.json': count must be a positive integer, got 'lots'$"
    ):
        load_settings(FIELDS, file=SettingsFile(path))
    with pytest.raises(SettingsError, match=r"^flag must be one of .*, got 'maybe'$"):
        load_settings(FIELDS, overrides={"flag": "maybe"})


def test_a_bad_file_value_raises_even_where_the_env_would_win(tmp_path):
    path = _write(tmp_path, '{"flag": "sometimes"}')
    with pytest.raises(SettingsError, match="flag must be one of"):
        load_settings(FIELDS, file=SettingsFile(path), env={"flag": "FLAG"}, environ={"FLAG": "true"})


def test_loader_rejects_a_malformed_call():
    with pytest.raises(ValueError, match="order must name each of"):
        load_settings(FIELDS, order=("file", "overrides"))
    with pytest.raises(ValueError, match=r"env names settings that are not fields: \['nope'\]"):
        load_settings(FIELDS, env={"nope": "NOPE"})
