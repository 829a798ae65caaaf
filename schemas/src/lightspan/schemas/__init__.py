"""The contracts between lightspan's parts: span attribute keys, env vars, ClickHouse DDL,
the Lightning trajectory JSON Schema and the training-row format. No heavy dependencies."""

from . import attributes, ddl, env, rows
from .trajectory import TrajectoryValidationError, trajectory_schema, validate_trajectory
from .version import __version__ as __version__

__all__ = [
    "attributes",
    "ddl",
    "env",
    "rows",
    "TrajectoryValidationError",
    "trajectory_schema",
    "validate_trajectory",
]
