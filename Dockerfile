# Production image: build a wheel in one stage, run it as a non-root user in the next.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CSPERF_HOST=0.0.0.0 CSPERF_PORT=8000 CSPERF_DATA_DIR=/data
RUN useradd --create-home --uid 10001 csperf && mkdir -p /data /app && chown csperf /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
# Migrations are read from the working directory (alembic.ini + migrations/).
COPY --chown=csperf alembic.ini ./
COPY --chown=csperf migrations ./migrations
USER csperf
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
CMD ["csperf", "serve"]
