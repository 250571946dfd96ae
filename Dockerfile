# syntax=docker/dockerfile:1
# The operator image: a venv built in one stage, copied into a clean slim image in the next, so the
# final image holds no build tooling, no sources and no caches.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The venv sits at the same path in both stages: its scripts' shebangs and its interpreter link refer
# to it, and both stages share the base image's /usr/local/bin/python3.11.
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the wheel is built from (see .dockerignore), so a change in tests/ or docs/ reuses this layer.
COPY pyproject.toml README.md ./
COPY operator/ operator/
# A real wheel, not an editable install: the final stage has no /src to point back to.
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /dist . \
 && /opt/venv/bin/pip install /dist/*.whl

FROM python:3.11-slim
LABEL org.opencontainers.image.title="incidentio-operator" \
      org.opencontainers.image.description="Turns data-observability alerts declared in Kubernetes into incident.io incidents." \
      org.opencontainers.image.source="https://github.com/armor-dev/incidentio-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# PYTHONDONTWRITEBYTECODE: the pod runs with a read-only root filesystem, so .pyc files could not be
# written anyway (pip compiled them at install time). The CRDs are read by `validate` and the schema
# checks; installed packages cannot find the repository's crds/ folder, hence the variable.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INCIDENTIO_OPERATOR_CRDS=/app/crds
# A named user for tools that look the uid up; the Deployment's runAsUser uses the same number.
RUN groupadd --system --gid 10001 operator \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin operator
COPY --from=builder /opt/venv /opt/venv
COPY crds/ /app/crds/
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 8080: kopf's liveness endpoint (/healthz); 9090: Prometheus /metrics.
EXPOSE 8080 9090
ENTRYPOINT ["incidentio-operator"]
CMD ["run", "--all-namespaces"]
