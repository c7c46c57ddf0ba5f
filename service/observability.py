"""Prometheus metrics and structured JSON logs with request ids."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "csperf_http_requests_total",
    "HTTP requests by route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "csperf_http_request_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
APPENDED_EVENTS = Counter(
    "csperf_events_appended_total", "Events appended to the store.", ["type"], registry=REGISTRY
)
PROJECTED_EVENTS = Counter(
    "csperf_projection_events_total",
    "Events applied by each projection.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_POSITION = Gauge(
    "csperf_projection_position",
    "Global position of the last event a live projection applied in this process.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_LAG = Gauge(
    "csperf_projection_lag_events",
    "Events visible in the store that a live projection has not applied yet.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_FAILED = Gauge(
    "csperf_projection_failed",
    "1 while a projection is stopped at an event that raised.",
    ["projection"],
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "csperf_auth_failures_total", "Refused authentications and authorisations.", ["reason"],
    registry=REGISTRY,
)

REMINDERS = Counter(
    "csperf_reminders_total",
    "Email reminders settled, by outcome: sent, failed, skipped_no_email (the person has no"
    " address), opted_out (the person turned reminders off).",
    ["outcome"],
    registry=REGISTRY,
)
REMINDER_ATTEMPTS = Counter(
    "csperf_reminder_email_attempts_total",
    "Attempts to hand a reminder email to the mail server, by outcome: sent, retry, failed.",
    ["outcome"],
    registry=REGISTRY,
)

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class JsonFormatter(logging.Formatter):
    """Format log records as one JSON object a line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms", "actor", "reason"):
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    """Send JSON logs to stderr at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
