"""Structured JSON logs carrying the complaint id and correlation id of the work in hand."""

from __future__ import annotations

import logging
import sys
import traceback
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
        _withhold_database_text(record)
        return True


def _withhold_database_text(record: logging.LogRecord) -> None:
    """A database error is logged by its type, SQLSTATE and traceback, never its text: the
    server's message quotes the values it refused (``invalid input syntax …: "138…"``) and a
    constraint's DETAIL the row's, which may be personal data."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            f"{type(arg).__name__} (text withheld)"
            if isinstance(arg, BaseException) and _is_database_error(arg)
            else arg
            for arg in record.args
        )
    if not record.exc_info or record.exc_info[1] is None:
        return
    chain: list[BaseException] = []
    exc: BaseException | None = record.exc_info[1]
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    if not any(_is_database_error(e) for e in chain):
        return
    lines = []
    for e in reversed(chain):
        lines += traceback.format_tb(e.__traceback__)
        lines.append(f"{type(e).__module__}.{describe_error(e)}\n")
    record.exc_info = None
    record.exc_text = "".join(lines)


def describe_error(exc: BaseException) -> str:
    """An error as a log line or a dead letter may carry it: a database error by its type and
    SQLSTATE only (its text may quote personal data), any other with its message."""
    if _is_database_error(exc):
        sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
        return f"{type(exc).__qualname__}: sqlstate={sqlstate} (text withheld)"
    return f"{type(exc).__qualname__}: {exc}"


def _is_database_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in {"sqlalchemy", "asyncpg"}


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
