"""Structured JSON logs carrying the complaint id and correlation id of the work in hand."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)
complaint_id_var: ContextVar[str | None] = ContextVar("complaint_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = correlation_id_var.get()
        record.complaint_id = complaint_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stdout as one JSON object."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s "
            "%(correlation_id)s %(complaint_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs would repeat what the metrics already count; uvicorn's own errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


@contextmanager
def log_context(
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    complaint_id: str | None = None,
) -> Iterator[None]:
    """Bind ids to every log line and every event enqueued inside the block."""
    tokens = []
    if correlation_id is not None:
        tokens.append((correlation_id_var, correlation_id_var.set(correlation_id)))
    if causation_id is not None:
        tokens.append((causation_id_var, causation_id_var.set(causation_id)))
    if complaint_id is not None:
        tokens.append((complaint_id_var, complaint_id_var.set(complaint_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
