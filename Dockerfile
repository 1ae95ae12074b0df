# ALVH Bot: the wheel in a slim Python image, run as a non-root user, data in a volume.
#   docker build -t alvh-bot .
#   docker run -e TELEGRAM_BOT_TOKEN=... -v alvh-data:/data alvh-bot
# compose.yaml runs it with PostgreSQL; docs/operations.md has the details.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY core ./core
COPY bot ./bot
COPY templates ./templates
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ALVH_DATA_DIR=/data
RUN useradd --system --uid 10001 --create-home --home-dir /home/alvh alvh \
    && mkdir -p /data && chown alvh:alvh /data
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels 'alvh-bot[postgres]' && rm -rf /wheels
VOLUME ["/data"]
USER alvh
WORKDIR /data
# Webhook mode listens here (BOT_MODE=webhook); polling needs no port.
EXPOSE 8443
HEALTHCHECK --interval=60s --timeout=15s --start-period=60s --retries=3 CMD ["alvh", "health"]
CMD ["alvh", "start"]
