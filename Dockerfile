# One image per deployable, built from one Dockerfile: `docker build --target ingest .` etc.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    PATH="/app/.venv/bin:$PATH"
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY schemas ./schemas
COPY services ./services
COPY leadctl ./leadctl
COPY fakes ./fakes
COPY migrations ./migrations
COPY alembic.ini ./
RUN uv sync --frozen --no-dev && useradd --system --uid 10001 app
USER app

# Schema migrations and topic provisioning, run once before the services start.
FROM base AS migrate
CMD ["sh", "-c", "leadctl migrate up && leadctl topics create"]

FROM base AS ingest
EXPOSE 3000
CMD ["leadctl", "ingest"]

FROM base AS poller
CMD ["leadctl", "poller"]

FROM base AS sequencer
ENV SEQUENCER_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 3002
CMD ["leadctl", "sequencer"]

FROM base AS outbound
EXPOSE 3003
CMD ["leadctl", "outbound"]
