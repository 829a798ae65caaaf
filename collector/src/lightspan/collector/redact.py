"""Redaction rules (drop or hash named attributes) and the per-attribute size limit.

Rules name attribute keys exactly or as shell-style patterns (``*.api_key``). Exact keys cost one dict
lookup per rule per span; patterns are checked against every key, so prefer exact keys on hot paths.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from lightspan.schemas import attributes as A

_PATTERN_CHARS = set("*?[")


def _split(keys: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact, patterns = set(), []
    for key in keys:
        (patterns.append(key) if _PATTERN_CHARS & set(key) else exact.add(key))
    return frozenset(exact), tuple(patterns)


def hash_value(value: str) -> str:
    """What a hashed attribute becomes: stable, so equal secrets still group together."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Redactor:
    """Applies ``drop`` and ``hash`` rules and cuts values longer than ``max_attribute_bytes`` (0 = no limit)."""

    drop: Iterable[str] = ()
    hash: Iterable[str] = ()
    max_attribute_bytes: int = 0
    _drop_exact: frozenset[str] = field(init=False, repr=False)
    _drop_patterns: tuple[str, ...] = field(init=False, repr=False)
    _hash_exact: frozenset[str] = field(init=False, repr=False)
    _hash_patterns: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attribute_bytes < 0:
            raise ValueError(
                f"max_attribute_bytes must be >= 0 (0 = no limit), got {self.max_attribute_bytes}"
            )
        self._drop_exact, self._drop_patterns = _split(self.drop)
        self._hash_exact, self._hash_patterns = _split(self.hash)

    @property
    def active(self) -> bool:
        return bool(self._drop_exact or self._drop_patterns or self._hash_exact or self._hash_patterns)

    def apply(self, attrs: dict[str, str]) -> None:
        """Redact ``attrs`` in place."""
        for key in self._drop_exact:
            attrs.pop(key, None)
        for key in self._hash_exact:
            if key in attrs:
                attrs[key] = hash_value(attrs[key])
        if self._drop_patterns or self._hash_patterns:
            for key in list(attrs):
                if any(fnmatch.fnmatchcase(key, p) for p in self._drop_patterns):
                    del attrs[key]
                elif any(fnmatch.fnmatchcase(key, p) for p in self._hash_patterns):
                    attrs[key] = hash_value(attrs[key])

    def limit(self, attrs: dict[str, str]) -> None:
        """Cut values over the byte limit; JSON values stay valid JSON (the cut text as a JSON string)."""
        limit = self.max_attribute_bytes
        if not limit:
            return
        quick = limit // 4  # a str of <= limit/4 chars is <= limit bytes in UTF-8
        if not attrs or max(map(len, attrs.values())) <= quick:
            return  # the common case, checked in C: nothing can be over the limit
        cut_keys = None
        for key, value in attrs.items():
            if len(value) <= quick:
                continue
            raw = value.encode("utf-8", "surrogatepass")
            if len(raw) <= limit:
                continue
            if value[:1] in ("[", "{"):
                # json.dumps adds quotes and escapes: leave room so the result stays under the limit.
                text = raw[: max(limit // 2 - 2, 0)].decode("utf-8", "ignore")
                cut = json.dumps(text, ensure_ascii=False)
                while len(cut.encode("utf-8", "surrogatepass")) > limit and text:
                    text = text[: len(text) * 3 // 4]
                    cut = json.dumps(text, ensure_ascii=False)
            else:
                cut = raw[:limit].decode("utf-8", "ignore")
            attrs[key] = cut
            (cut_keys := cut_keys or []).append(key)
        if cut_keys:
            attrs[A.TRUNCATED] = ",".join(cut_keys)
