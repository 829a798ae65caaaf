"""The ``lightspan`` command. Each subcommand lives in its part and is imported only when run."""

from .version import __version__ as __version__
