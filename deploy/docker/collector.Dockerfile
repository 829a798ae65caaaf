# syntax=docker/dockerfile:1
# lightspan collector: OTLP gRPC :4317 and OTLP/HTTP :4318 (POST /v1/traces, POST /v1/rewards,
# GET /healthz, /readyz, /metrics) into ClickHouse. Build from the repository root:
#   docker build -f deploy/docker/collector.Dockerfile -t lightspan-collector:0.2.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install lightspan[collector] into a venv that the runtime stage copies whole ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/lightspan
WORKDIR /src
# Each part is its own distribution in its own folder: copy the ones this extra needs and name them
# to pip, which then satisfies the root's `lightspan-<part>==<version>` pins from these folders.
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY storage/ storage/
COPY instrumentation/ instrumentation/
COPY cli/ cli/
COPY collector/ collector/
RUN /opt/lightspan/bin/pip install ./schemas ./storage ./instrumentation ./cli ./collector ".[collector]" \
    && /opt/lightspan/bin/lightspan --version

# ---- runtime: no compiler, no source tree, a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="lightspan-collector" \
      org.opencontainers.image.description="OTLP collector that writes agent spans into ClickHouse for RL" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 lightspan \
    && useradd --system --uid 10001 --gid lightspan --home-dir /var/lib/lightspan --shell /usr/sbin/nologin lightspan \
    && mkdir -p /var/lib/lightspan/spool /var/lib/lightspan/data \
    && chown -R lightspan:lightspan /var/lib/lightspan
COPY --from=build /opt/lightspan /opt/lightspan
ENV PATH=/opt/lightspan/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIGHTSPAN_DATA_DIR=/var/lib/lightspan/data \
    LIGHTSPAN_SPOOL_DIR=/var/lib/lightspan/spool \
    LIGHTSPAN_GRPC_ENDPOINT=0.0.0.0:4317 \
    LIGHTSPAN_HTTP_ENDPOINT=0.0.0.0:4318 \
    LIGHTSPAN_LOG_FORMAT=json
# The spool must outlive the container: mount a volume here (compose: named volume; Kubernetes: see
# deploy/kubernetes/base/collector-deployment.yaml).
VOLUME ["/var/lib/lightspan"]
WORKDIR /var/lib/lightspan
USER 10001:10001
EXPOSE 4317 4318
# python is in the image already; no curl/wget needed. /healthz answers without the bearer token.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["lightspan"]
CMD ["collector"]
