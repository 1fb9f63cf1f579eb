"""Issue #13, hole 8: the audit log was append-only only by a trigger its service role could
disable (it owned the table).

The attack: as a service role, switch the trigger off and rewrite, delete or truncate the
log, or drop it. Refused: every audit_log belongs to the NOLOGIN role tousu_audit
(deploy/infra.sh harden, run by make migrate) and the service role may only INSERT and
SELECT. And what the superuser changes behind the chain's back, the hash chain shows.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from tousu_shared.audit import AuditEntry, AuditLog, verify_chain
from tousu_shared.testing import SERVICES, settings_class, superuser_connection, test_settings

pytestmark = [pytest.mark.integration, pytest.mark.security]

CHAINED = "feedback"  # the schema whose chain these tests write and break


def role_url(schema: str) -> str:
    return test_settings(settings_class(schema)).sqlalchemy_url


@pytest.fixture
async def engine(request) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(role_url(request.param))
    yield engine
    await engine.dispose()


def attacks(schema: str) -> list[str]:
    table = f"{schema}.audit_log"
    return [
        f"ALTER TABLE {table} DISABLE TRIGGER audit_log_append_only",
        f"ALTER TABLE {table} DISABLE TRIGGER ALL",
        f"UPDATE {table} SET actor = 'someone else'",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
        f"ALTER TABLE {table} OWNER TO {schema}",
        f"ALTER TABLE {table} DROP COLUMN entry_hash",
        f"DROP TABLE {table} CASCADE",
        f"DROP SCHEMA {schema} CASCADE",
        f"DROP FUNCTION {schema}.audit_log_chain() CASCADE",
        f"CREATE OR REPLACE FUNCTION {schema}.audit_log_is_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)",
    ]


@pytest.mark.parametrize("engine", list(SERVICES), indirect=True)
async def test_the_service_role_can_only_append_to_and_read_its_audit_log(engine):
    schema = engine.url.username
    assert schema in SERVICES
    for statement in attacks(schema):
        # Rolled back whatever happens: an attack that worked must not stay done.
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match="permission denied|must be owner"):
                await conn.execute(text(statement))
            await conn.rollback()
    async with engine.connect() as conn:  # what it may do, rolled back
        await conn.execute(
            text(
                f"INSERT INTO {schema}.audit_log (actor, actor_role, action, resource_type) "
                "VALUES ('probe', 'admin', 'security.probe', 'test')"
            )
        )
        assert (await conn.execute(text(f"SELECT count(*) FROM {schema}.audit_log"))).scalar()
        await conn.rollback()


@pytest.fixture
async def chained() -> AsyncIterator[AsyncEngine]:
    """The feedback role's engine over an emptied audit log (emptied again after)."""
    engine = create_async_engine(role_url(CHAINED), pool_size=10)
    await _empty_audit_log()
    yield engine
    await engine.dispose()
    await _empty_audit_log()


async def _empty_audit_log() -> None:
    superuser = await superuser_connection()
    try:
        await superuser.execute(f"TRUNCATE {CHAINED}.audit_log RESTART IDENTITY")
    finally:
        await superuser.close()


async def write_entries(engine: AsyncEngine, count: int) -> None:
    """``count`` entries, each in a transaction of its own, all at once."""
    log = AuditLog(CHAINED)
    sessions = async_sessionmaker(engine)

    async def one(n: int) -> None:
        async with sessions() as session, session.begin():
            entry = AuditEntry(
                "tester",
                "admin",
                "security.probe",
                "test",
                str(n),
                complaint_id=uuid.uuid4(),
                details={"n": n, "text": "王先生 ✓"},
            )
            await log.record_many(session, [entry])

    await asyncio.gather(*(one(n) for n in range(count)))


async def chain_report(engine: AsyncEngine):
    async with engine.connect() as conn:
        return await verify_chain(conn, CHAINED)


async def test_concurrent_writers_extend_one_unbroken_chain(chained):
    await write_entries(chained, 30)
    report = await chain_report(chained)
    assert report.intact, report.summary()
    assert report.entries == 30
    async with chained.connect() as conn:
        positions = (
            await conn.execute(text(f"SELECT chain_seq FROM {CHAINED}.audit_log ORDER BY id"))
        ).scalars()
        assert sorted(positions) == list(range(1, 31))


def verify_audit_command() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tousu_shared.cli",
            "verify-audit",
            "--schema",
            CHAINED,
            "--database-url",
            role_url(CHAINED),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )


async def as_superuser_behind_the_triggers(statement: str) -> None:
    """What a superuser (or a restored, edited dump) can do: triggers off for the session."""
    superuser = await superuser_connection()
    try:
        await superuser.execute("SET session_replication_role = replica")
        await superuser.execute(statement)
    finally:
        await superuser.close()


async def entry_id_at(engine: AsyncEngine, position: int) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(f"SELECT id FROM {CHAINED}.audit_log WHERE chain_seq = :p"), {"p": position}
            )
        ).scalar_one()


async def test_tampering_behind_the_chain_is_found_at_the_first_broken_entry(chained):
    await write_entries(chained, 6)
    intact = verify_audit_command()
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "6 entries, chain intact" in intact.stdout

    changed = await entry_id_at(chained, 3)
    await as_superuser_behind_the_triggers(
        f"UPDATE {CHAINED}.audit_log SET actor = 'nobody' WHERE id = {changed}"
    )
    broken = verify_audit_command()
    assert broken.returncode == 1
    assert f"BROKEN at entry id {changed} (position 3)" in broken.stdout
    assert "the entry was changed" in broken.stdout

    await as_superuser_behind_the_triggers(
        f"UPDATE {CHAINED}.audit_log SET actor = 'tester' WHERE id = {changed}"
    )
    assert (await chain_report(chained)).intact  # the original content hashes as before

    removed, follower = await entry_id_at(chained, 4), await entry_id_at(chained, 5)
    await as_superuser_behind_the_triggers(f"DELETE FROM {CHAINED}.audit_log WHERE id = {removed}")
    report = await chain_report(chained)
    assert (report.broken_id, report.broken_position) == (follower, 5)
    assert "does not follow the entry before it" in (report.reason or "")
