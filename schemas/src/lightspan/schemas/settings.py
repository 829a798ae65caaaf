"""Reading settings: one spelling of true/false, typed value parsers, environment helpers and a
layered loader, so every part accepts the same words and reports a bad value the same way.

The variable names themselves live in :mod:`lightspan.schemas.env`. Stdlib only: a part that reads
YAML passes ``yaml.safe_load`` to :class:`SettingsFile` (this module never imports a parser).

Conventions (see :mod:`lightspan.schemas.env`): a bad environment value logs a warning and is
ignored, so a typo in a shell never stops an agent or a service; a bad value given explicitly
(argument, config file) raises :class:`SettingsError` naming the setting and what is accepted.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Protocol

_log = logging.getLogger(__name__)

#: Every spelling of true and false a setting accepts (compared after ``strip().lower()``).
TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})
BOOL_SPELLINGS: Final = "true/false, 1/0, yes/no, on/off"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it, where it came from and what is accepted."""


class SettingsFileNotFoundError(SettingsError, FileNotFoundError):
    """The config file is missing: a ``ValueError`` like every settings error, and a ``FileNotFoundError``
    for callers that already catch that."""


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING


class Parser(Protocol):
    """``parse(raw, name=setting) -> value``; raises :class:`SettingsError` naming ``name``."""

    def __call__(self, raw: Any, /, *, name: str) -> Any: ...


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


# --- value parsers ---------------------------------------------------------------------------------
def parse_bool(raw: object, *, name: str, default: bool | _Missing = _MISSING) -> bool:
    """``raw`` as a bool: a bool, ``0``/``1``, or one of :data:`TRUE_WORDS` / :data:`FALSE_WORDS`.

    ``default`` (when given) is returned for ``None`` or blank text, e.g. an unset DSN query flag.
    """
    if isinstance(raw, bool):
        return raw
    if default is not _MISSING and _blank(raw):
        return default
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise SettingsError(f"{name} must be one of {BOOL_SPELLINGS}, got {raw!r}")


def is_true(raw: object) -> bool:
    """Whether ``raw`` spells true; anything else (false, empty, garbage) is ``False``, never an error.

    For flags read from data (e.g. span attributes), where one odd value must not stop a run.
    """
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return raw == 1
    return isinstance(raw, str) and raw.strip().lower() in TRUE_WORDS


def _int_kind(minimum: int | None) -> str:
    if minimum is None:
        return "an integer"
    if minimum == 1:
        return "a positive integer"
    return f"an integer >= {minimum}"


def parse_int(raw: object, *, name: str, minimum: int | None = None) -> int:
    """``raw`` as an int (an int, a whole float, or decimal text), at least ``minimum`` when given."""
    value: int | None = None
    if isinstance(raw, bool):
        value = None  # True is not 1 here: a bool where a number belongs is a mistake
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            value = None
    if value is None or (minimum is not None and value < minimum):
        raise SettingsError(f"{name} must be {_int_kind(minimum)}, got {raw!r}")
    return value


def parse_positive_int(raw: object, *, name: str) -> int:
    """:func:`parse_int` with ``minimum=1`` (sizes and counts)."""
    return parse_int(raw, name=name, minimum=1)


def parse_float(raw: object, *, name: str) -> float:
    """``raw`` as a float (a number or numeric text; not a bool)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            pass
    raise SettingsError(f"{name} must be a number, got {raw!r}")


def parse_str(raw: object, *, name: str) -> str:
    """``raw`` as text; a number or bool becomes its ``str`` (YAML reads ``token: 123`` as an int)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (int, float)):
        return str(raw)
    raise SettingsError(f"{name} must be a string, got {raw!r}")


def parse_list(raw: object, *, name: str) -> list[str]:
    """``raw`` as a list of strings: comma-separated text (blanks dropped), a list/tuple/set, or ``None`` (empty)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [v.strip() for v in raw.split(",") if v.strip()]
    if isinstance(raw, (list, tuple, set, frozenset)):
        return [str(v) for v in raw]
    raise SettingsError(f"{name} must be a list or comma-separated text, got {raw!r}")


def optional(parser: Parser) -> Parser:
    """``parser``, except that ``None`` stays ``None`` (``null`` in a config file for an optional setting)."""

    def parse(raw: Any, /, *, name: str) -> Any:
        return None if raw is None else parser(raw, name=name)

    return parse


_BY_TYPE: Final[dict[object, Parser]] = {bool: parse_bool, int: parse_int, float: parse_float, str: parse_str}


def parsers_for(cls: type) -> dict[str, Parser | None]:
    """A parser per field of dataclass ``cls``, chosen by its annotation (``bool``, ``int``, ``float``,
    ``str``, ``list[str]``, each optionally ``| None``); ``None`` (taken as is) for any other type."""
    hints = typing.get_type_hints(cls)
    parsers: dict[str, Parser | None] = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name, Any)
        args = typing.get_args(hint)
        nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
        if nullable:
            rest = [a for a in args if a is not type(None)]
            hint = rest[0] if len(rest) == 1 else Any
        parser: Parser | None = _BY_TYPE.get(hint)
        if typing.get_origin(hint) is list:
            parser = parse_list
        parsers[f.name] = optional(parser) if parser is not None and nullable else parser
    return parsers


# --- environment -----------------------------------------------------------------------------------
def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's text, or ``default`` when it is unset or blank."""
    raw = (os.environ if environ is None else environ).get(name)
    return default if _blank(raw) else raw


# --- config files and the layered loader -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SettingsFile:
    """A config file holding a mapping of setting: value, and how to parse its text.

    ``parse`` defaults to JSON; YAML callers pass ``yaml.safe_load`` and ``format="YAML"`` (the
    dependency stays with their part). ``label`` names the file in errors; with ``section``, a
    mapping under that top-level key is used when present (``collector: {...}``).
    """

    path: str | os.PathLike[str]
    parse: Callable[[str], object] = json.loads
    format: str = "JSON"
    label: str = "config file"
    section: str | None = None

    def describe(self) -> str:
        return f"{self.label} {os.fspath(self.path)!r}"


def read_settings_file(file: SettingsFile) -> dict[str, Any]:
    """The file's mapping (``{}`` for an empty file); :class:`SettingsError` when it is missing,
    unreadable, not valid ``file.format`` or not a mapping."""
    where = file.describe()
    try:
        text = Path(file.path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsFileNotFoundError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read {where}: {exc}") from None
    try:
        doc = file.parse(text)
    except Exception as exc:  # the parser is the caller's (yaml.YAMLError, json.JSONDecodeError, ...)
        raise SettingsError(f"{where} is not valid {file.format}: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SettingsError(
            f"{where} must hold a {file.format} mapping of setting: value, got {type(doc).__name__}"
        )
    if file.section is not None and isinstance(doc.get(file.section), dict):
        doc = doc[file.section]
    return {str(k): v for k, v in doc.items()}


Layer = Literal["file", "env", "overrides"]
#: Lowest precedence first; the caller's dataclass defaults sit below all of them.
DEFAULT_ORDER: Final[tuple[Layer, ...]] = ("file", "env", "overrides")


def _check_known(keys: Sequence[str], fields: Mapping[str, object], what: str, where: str | None) -> None:
    unknown = sorted(set(keys) - set(fields))
    if unknown:
        prefix = f"{where}: " if where else ""
        raise SettingsError(f"{prefix}unknown {what} {unknown}; known: {', '.join(sorted(fields))}")


def _parse_values(
    values: Mapping[str, object], fields: Mapping[str, Parser | None], where: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in values.items():
        parser = fields[key]
        try:
            out[key] = raw if parser is None else parser(raw, name=key)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}" if where else str(exc)) from None
    return out


def _env_layer(
    fields: Mapping[str, Parser | None], env: Mapping[str, str | Sequence[str]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """First variable per setting that is set and valid; bad ones are logged and skipped."""
    out: dict[str, Any] = {}
    for key, names in env.items():
        parser = fields[key]
        for var in (names,) if isinstance(names, str) else names:
            raw = env_str(var, environ=environ)
            if raw is None:
                continue
            try:
                out[key] = raw if parser is None else parser(raw, name=var)
                break
            except ValueError as exc:
                _log.warning("ignoring %s=%r (%s)", var, raw, exc)
    return out


def load_settings(
    fields: Mapping[str, Parser | None],
    *,
    file: SettingsFile | None = None,
    env: Mapping[str, str | Sequence[str]] | None = None,
    overrides: Mapping[str, object] | None = None,
    order: Sequence[Layer] = DEFAULT_ORDER,
    what: str = "settings",
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Merge the layers into ``{setting: parsed value}`` for the caller's dataclass (which holds the defaults).

    :param fields: every known setting and its parser (``None``: taken as is).
    :param file: a config file; unknown keys and bad values raise, naming the file.
    :param env: setting -> variable name(s), first set-and-valid wins; bad values warn and are skipped.
    :param overrides: explicit values (arguments, CLI flags); ``None`` means "not given". Unknown
        names and bad values raise.
    :param order: the layers, lowest precedence first (default: file < env < overrides).
    :param what: how errors call the settings, e.g. ``"settings"`` -> ``unknown settings ['x']``.
    """
    if sorted(order) != sorted(DEFAULT_ORDER):
        raise ValueError(f"order must name each of {list(DEFAULT_ORDER)} once, got {list(order)!r}")
    if env is not None and set(env) - set(fields):
        raise ValueError(f"env names settings that are not fields: {sorted(set(env) - set(fields))}")
    layers: dict[Layer, dict[str, Any]] = {"file": {}, "env": {}, "overrides": {}}
    if env:
        layers["env"] = _env_layer(fields, env, os.environ if environ is None else environ)
    if file is not None:
        doc = read_settings_file(file)
        _check_known(list(doc), fields, what, file.describe())
        layers["file"] = _parse_values(doc, fields, file.describe())
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        _check_known(list(overrides), fields, what, None)
        layers["overrides"] = _parse_values(given, fields, None)
    merged: dict[str, Any] = {}
    for layer in order:
        merged.update(layers[layer])
    return merged


__all__ = [
    "BOOL_SPELLINGS",
    "DEFAULT_ORDER",
    "FALSE_WORDS",
    "TRUE_WORDS",
    "Layer",
    "Parser",
    "SettingsError",
    "SettingsFile",
    "SettingsFileNotFoundError",
    "env_str",
    "is_true",
    "load_settings",
    "optional",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_list",
    "parse_positive_int",
    "parse_str",
    "parsers_for",
    "read_settings_file",
]
