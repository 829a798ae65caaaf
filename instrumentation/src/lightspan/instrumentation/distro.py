"""Zero-code setup: ``opentelemetry-instrument python agent.py`` with only the OTLP endpoint set.

The distro defaults the exporters (traces over OTLP, gRPC unless ``OTEL_EXPORTER_OTLP_PROTOCOL``
says otherwise; no metrics or logs exporters unless asked), and the configurator builds the SDK as
OpenTelemetry's own does, then adds lightspan's rollout-stamping span processor. If another
configurator wins (``opentelemetry-distro`` is installed too), every lightspan instrumentor adds the
processor itself when it is applied, so rollouts are stamped either way.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

from lightspan.schemas import env

from .processor import ensure_rollout_processor


class LightspanDistro(BaseDistro):
    """Sets lightspan's defaults for ``opentelemetry-instrument``; explicit env vars win."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_TRACES_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_METRICS_EXPORTER, "none")
        os.environ.setdefault(OTEL_LOGS_EXPORTER, "none")
        os.environ.setdefault(env.OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")


class LightspanConfigurator(_OTelSDKConfigurator):
    """OpenTelemetry's SDK configurator plus the rollout processor on the global tracer provider."""

    def _configure(self, **kwargs: Any) -> None:
        super()._configure(**kwargs)
        ensure_rollout_processor()
