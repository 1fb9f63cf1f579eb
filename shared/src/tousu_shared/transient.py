"""Which failures are transient: the infrastructure was briefly unavailable, so the same work
will succeed if tried again later.

Consumers retry these without limit (pausing only the partition concerned); they are never a
reason to dead-letter an event. Anything else raised while applying an event is a property
of the event or the code, and is retried a bounded number of times.
"""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that say "try again": connection exceptions (08), serialization
# failure and deadlock (40001, 40P01), insufficient resources (53), operator intervention
# such as a restart (57P01-57P03).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P")
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def _sqlstate(error: BaseException) -> str | None:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


def _chain(error: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped (``orig``) and its causes, without cycles."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work later can succeed without anyone changing anything."""
    for current in _chain(error):
        if isinstance(current, ConnectionError | TimeoutError | asyncio.TimeoutError | OSError):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True  # pool exhausted, or a connection dropped under us
        if isinstance(current, KafkaConnectionError | KafkaTimeoutError):
            return True
        if isinstance(current, KafkaError) and getattr(current, "retriable", False):
            return True
        code = _sqlstate(current)
        if code and (code in _TRANSIENT_SQLSTATES or code.startswith(_TRANSIENT_SQLSTATE_PREFIXES)):
            return True
        # asyncpg's own connection-level errors carry no SQLSTATE.
        name = type(current).__name__
        if type(current).__module__.startswith("asyncpg") and (
            name == "ConnectionDoesNotExistError"
            or (name == "InterfaceError" and "closed" in str(current))
        ):
            return True
    return False
