"""Key rotation: contacts written under an older key are sealed again under the active one.

A rotation adds the new key to ``TOUSU_ENCRYPTION_KEYS``, makes it active (both stay
readable), lets this worker move every row, and only then drops the old key. Rows move in
batches, one transaction each, locked with SKIP LOCKED: a row a use case holds is taken on a
later round, two workers never take the same row, and a row already under the active key is
never selected, so running it again (or twice at once) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tousu_shared.runtime import Worker

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.adapters.orm import complaint_contact
from tousu_intake.domain.complaint import PII_FIELDS
from tousu_intake.settings import IntakeSettings

log = logging.getLogger(__name__)

_SEALED = tuple(f"{name}_ct" for name in PII_FIELDS)
SELECT_STALE = (
    sa.select(complaint_contact.c.complaint_id, complaint_contact.c.key_id)
    .add_columns(*(complaint_contact.c[column] for column in _SEALED))
    # Only keys this process can read: a row under a key no longer configured stays as it is
    # (and stays unreadable) instead of stopping the worker on every round.
    .where(complaint_contact.c.key_id.in_(sa.bindparam("older", expanding=True)))
    .order_by(complaint_contact.c.complaint_id)
    .limit(sa.bindparam("batch"))
    .with_for_update(skip_locked=True)
)
UPDATE_SEALED = complaint_contact.update().where(
    complaint_contact.c.complaint_id == sa.bindparam("contact_id")
)


async def rekey_batch(
    session_factory: async_sessionmaker[AsyncSession], cipher: FieldCipher, batch: int
) -> int:
    """Re-encrypt up to ``batch`` contacts not under the active key; how many moved."""
    older = sorted(cipher.key_ids - {cipher.active_key_id})
    if not older:
        return 0
    async with session_factory() as session, session.begin():
        rows = (await session.execute(SELECT_STALE, {"older": older, "batch": batch})).all()
        if not rows:
            return 0
        await session.execute(
            UPDATE_SEALED,
            [
                {
                    "contact_id": row.complaint_id,
                    "key_id": cipher.active_key_id,
                    **{
                        f"{name}_ct": cipher.reencrypt(
                            row._mapping[f"{name}_ct"],
                            key_id=row.key_id,
                            row_id=str(row.complaint_id),
                            field=name,
                        )
                        for name in PII_FIELDS
                    },
                }
                for row in rows
            ],
        )
    return len(rows)


async def rekey_contacts(
    session_factory: async_sessionmaker[AsyncSession], cipher: FieldCipher, batch: int
) -> int:
    """Re-encrypt batches until none is left to take; how many moved in all."""
    total = 0
    while moved := await rekey_batch(session_factory, cipher, batch):
        total += moved
    return total


def rekey_worker(
    session_factory: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    settings: IntakeSettings,
) -> Worker:
    """The ``rekey`` role: moves old rows now, then looks again every idle interval."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            moved = await rekey_contacts(session_factory, cipher, settings.rekey_batch_size)
            if moved:
                log.info("rekey: %d contacts now under key %s", moved, cipher.active_key_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.rekey_idle_seconds)

    return run
