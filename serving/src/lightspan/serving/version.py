"""The version of lightspan-serving; every part of one release shares it (checked by tests/test_packaging.py)."""

__version__ = "0.2.0"
