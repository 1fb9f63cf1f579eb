"""Which departments exist: the one check a department-bound credential must pass.

Departments are routing's data. Routing answers from its own ``department`` table; every
other service from its replica of routing's directory (``<schema>.department_directory``),
filled by its consumer from ``platform.departments`` through the inbox like credentials.
Services never read each other's tables. Both sides are a :class:`Departments` on the
runtime (``runtime.departments``), and :func:`require_department` is the rule itself.

Department events need no signature, unlike credential events: only routing's Kafka user
may write ``platform.departments`` (the ACLs follow the topic registry), while every service
may write ``platform.credentials``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.platform import DepartmentDeclared, DepartmentRetired
from tousu_shared.errors import InvalidInput

if TYPE_CHECKING:
    from tousu_shared.uow import SqlUnitOfWork

DIRECTORY_TABLE = "department_directory"


class Departments:
    """The departments that exist, read from a table with a ``code`` column (``live``: the
    condition a row meets while its department exists)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: str,
        *,
        live: str = "TRUE",
    ) -> None:
        self._session_factory = session_factory
        self._codes = text(f"SELECT code FROM {table} WHERE {live} ORDER BY code")

    async def codes(self) -> list[str]:
        """Every existing department's code, in order."""
        async with self._session_factory() as session:
            return list((await session.execute(self._codes)).scalars())


class DepartmentDirectory(Departments):
    """A service's replica of routing's department directory, in its own schema.

    A retired department keeps its row (``retired``), and a row only moves to a state at
    least as recent as its own (``as_of``): a redelivered, replayed or re-announced event
    never brings back a department deleted after it, nor an older name.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], schema: str) -> None:
        table = f"{schema}.{DIRECTORY_TABLE}"
        super().__init__(session_factory, table, live="NOT retired")
        self._upsert = text(
            f"INSERT INTO {table} AS d (code, name, retired, as_of) "
            "VALUES (:code, :name, :retired, :as_of) "
            "ON CONFLICT (code) DO UPDATE SET name = coalesce(excluded.name, d.name), "
            "retired = excluded.retired, as_of = excluded.as_of "
            "WHERE d.as_of <= excluded.as_of"
        )

    async def apply(self, uow: SqlUnitOfWork, event: Event, envelope: Envelope | None) -> None:
        """Inbox handler: replicate a department event into this service's directory."""
        await self.store(uow.session, event)

    async def store(self, session: AsyncSession, event: Event) -> None:
        """Write a department event's state (idempotent, order-insensitive)."""
        if isinstance(event, DepartmentDeclared):
            values = {"name": event.name, "retired": False}
        elif isinstance(event, DepartmentRetired):
            values = {"name": None, "retired": True}
        else:
            raise TypeError(f"not a department event: {event.event_type}")
        await session.execute(self._upsert, {"code": event.code, "as_of": event.as_of, **values})


async def require_department(departments: Departments, code: str) -> None:
    """Refuse (422 naming ``department``, listing the known ones) a department that does
    not exist: a credential bound to it would work nowhere, or in a department created
    later under that code."""
    # One read for the check and the refusal, so the list never contradicts the answer
    # (a department arriving between two reads was listed as known, yet refused).
    known = await departments.codes()
    if code in known:
        return
    raise InvalidInput(
        f"there is no department {code!r}",
        field="department",
        allowed=known,
    )
