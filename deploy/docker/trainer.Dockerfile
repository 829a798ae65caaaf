# syntax=docker/dockerfile:1
# lightspan trainer: `lightspan train` (TRL + torch) on NVIDIA GPUs. The base image brings torch built
# for CUDA; `pip install ... ".[train]"` keeps it (the extra asks for torch>=2.4) and adds trl/transformers/peft.
# Build from the repository root:
#   docker build -f deploy/docker/trainer.Dockerfile -t lightspan-trainer:0.2.0 .
# Run (needs the NVIDIA Container Toolkit on the host):
#   docker run --gpus all -v $PWD/models:/models -v $PWD/out:/out lightspan-trainer:0.2.0 \
#     train --algo lightningrl --model /models/policy --data http://lightspan@clickhouse:8123/lightspan --output /out
ARG BASE_IMAGE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="lightspan-trainer" \
      org.opencontainers.image.description="lightspan trainer: TRL on CUDA over trajectories from ClickHouse" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/var/lib/lightspan/hf \
    HF_HUB_OFFLINE=1 \
    LIGHTSPAN_OUTPUT_DIR=/out
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY storage/ storage/
COPY instrumentation/ instrumentation/
COPY cli/ cli/
COPY converters/ converters/
COPY training/ training/
COPY serving/ serving/
# Fail the build if pip replaced the base image's CUDA torch (a CPU wheel would train at 1/50 the speed).
# DL3013 (pin pip versions) is off: "." is this checkout, whose pins live in pyproject.toml.
# hadolint ignore=DL3013
RUN python -c "import torch; print('base torch', torch.__version__, torch.version.cuda)" \
    && pip install ./schemas ./storage ./instrumentation ./cli ./converters ./training ./serving ".[train]" \
    && python -c "import torch, trl; assert torch.version.cuda, 'torch lost CUDA'; print('torch', torch.__version__, 'trl', trl.__version__)" \
    && rm -rf /src
RUN groupadd --system --gid 10001 lightspan \
    && useradd --system --uid 10001 --gid lightspan --home-dir /var/lib/lightspan --create-home --shell /usr/sbin/nologin lightspan \
    && mkdir -p /out /models \
    && chown -R lightspan:lightspan /out /models /var/lib/lightspan
WORKDIR /var/lib/lightspan
USER 10001:10001
VOLUME ["/out"]
# A training job is judged by its exit code; the healthcheck only catches a GPU that fell off the bus
# (nvidia-smi is mounted by the NVIDIA Container Toolkit when a GPU is requested).
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 \
    CMD ["nvidia-smi", "-L"]
ENTRYPOINT ["lightspan"]
CMD ["train", "--help"]
