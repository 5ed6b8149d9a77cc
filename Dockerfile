# shoplink: one stateless HTTP instance (SHOPLINK_WORKERS processes on one port). Run as many as the
# load needs (see docker-compose.yml).
# Browser libraries for the dashboard (chart.js), installed from web/package-lock.json (not the
# dev dependencies: the contract linters and TypeScript, which only the checks use).
FROM node:20-slim AS web-assets
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
COPY --from=web-assets /web/node_modules ./web/node_modules
RUN pip install -e . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home shoplink \
    && mkdir -p /var/lib/shoplink/media /var/lib/shoplink/spool \
    && chown shoplink:shoplink /var/lib/shoplink/media /var/lib/shoplink/spool

# Installed in place (editable), so the code finds migrations and JSON schemas in /app/schemas.
ENV SHOPLINK_HOST=0.0.0.0 \
    SHOPLINK_PORT=8080 \
    SHOPLINK_MEDIA_DIR=/var/lib/shoplink/media \
    SHOPLINK_SPOOL_DIR=/var/lib/shoplink/spool

USER shoplink
VOLUME ["/var/lib/shoplink/media", "/var/lib/shoplink/spool"]
EXPOSE 8080
CMD ["shoplink", "serve"]
