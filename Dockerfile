# syntax=docker/dockerfile:1
# The llmmesh services: one image runs any subset of them.
#
#   docker build -t llmmesh .
#   docker run llmmesh                                  # the monolith: every service on :50051
#   docker run -e LLMMESH_SERVICES=judge -e LLMMESH_PORT=50052 -e LLMMESH_METRICS_PORT=9452 llmmesh
#   docker run llmmesh --services judge --port 50052    # the same, with flags
#   docker run --entrypoint python llmmesh -m llmmesh.gateway.main   # the HTTP gateway
#
# The base is pinned by exact tag. For a release, pin the digest too
# (python:3.11.14-slim-bookworm@sha256:...), so a rebuilt tag can never change what ships.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: a wheel of the project and of every dependency, installed into a venv ----------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# .dockerignore keeps the context to these (no .venv, tests, caches or local state).
COPY pyproject.toml README.md ./
COPY servers/ servers/

# Every dependency ships manylinux wheels, so no compiler is needed here either.
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/llmmesh \
    && /opt/llmmesh/bin/pip install --no-index --find-links /wheels llmmesh \
    && /opt/llmmesh/bin/pip uninstall --yes pip setuptools

# --- runtime: the venv only, as a non-root user ---------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="llmmesh" \
      org.opencontainers.image.description="gRPC service mesh for LLM design patterns (llmmesh-serve)"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 llmmesh \
    && useradd --system --uid 10001 --gid llmmesh --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin llmmesh

COPY --from=builder /opt/llmmesh /opt/llmmesh

ENV PATH=/opt/llmmesh/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LLMMESH_HOST=0.0.0.0 \
    LLMMESH_PORT=50051 \
    LLMMESH_METRICS_PORT=9451 \
    LLMMESH_SERVICES=all

USER 10001:10001
WORKDIR /tmp

# gRPC: the monolith on 50051, or each service on its topology port (50051-50059);
# Prometheus: 9451 (monolith) or 9451-9459 (one per service); the HTTP gateway (8090).
EXPOSE 50051-50059 9451-9459 8090

# SERVING on this container's own port ($LLMMESH_PORT). After SIGTERM the server reports
# NOT_SERVING for LLMMESH_DRAIN_DELAY_S, then drains for up to LLMMESH_GRACE_PERIOD_S.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "llmmesh.framework.healthcheck"]

ENTRYPOINT ["llmmesh-serve"]
