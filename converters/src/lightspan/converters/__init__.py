"""lightspan.converters: spans in ClickHouse -> Agent-Lightning trajectories -> training datasets.

>>> from lightspan.converters import ConvertConfig, Selection, convert
>>> report = convert(ConvertConfig(dsn="chdb:///tmp/store", output_dir="out",
...                                selection=Selection(finished_only=True), credit="grpo"))  # doctest: +SKIP

Heavy dependencies (clickhouse-connect, pyarrow, datasets) load only when used.
"""

from .config import DEFAULT_FORMATS, FORMATS, ConvertConfig, Selection
from .credit import assign_credit
from .lightning import to_lightning
from .load import load_rows, to_dataset
from .model import GapGraph, LLMCall, Reward, ToolObservation, Trajectory
from .pipeline import ConvertReport, convert, iter_trajectories
from .rebuild import SkipRollout
from .version import __version__ as __version__

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "ConvertConfig",
    "ConvertReport",
    "GapGraph",
    "LLMCall",
    "Reward",
    "Selection",
    "SkipRollout",
    "ToolObservation",
    "Trajectory",
    "assign_credit",
    "convert",
    "iter_trajectories",
    "load_rows",
    "to_dataset",
    "to_lightning",
]
