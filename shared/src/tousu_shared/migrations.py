"""Alembic support shared by every service: the env runner and the platform tables."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import create_async_engine

from tousu_shared.outbox import OUTBOX_LANES
from tousu_shared.settings import ServiceSettings


def alembic_config(migrations_dir: Path, settings: ServiceSettings) -> Config:
    """An Alembic config for one service, pointed at its own schema and role."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("version_locations", str(migrations_dir / "versions"))
    config.set_main_option("path_separator", "os")
    config.attributes["settings"] = settings
    return config


def upgrade(migrations_dir: Path, settings: ServiceSettings, revision: str = "head") -> None:
    """Apply the service's migrations."""
    command.upgrade(alembic_config(migrations_dir, settings), revision)


def downgrade(migrations_dir: Path, settings: ServiceSettings, revision: str = "base") -> None:
    """Revert the service's migrations."""
    command.downgrade(alembic_config(migrations_dir, settings), revision)


def run_env(target_metadata: sa.MetaData | None = None) -> None:
    """Body of every service's ``env.py``: online migrations, version table in the own schema."""
    settings: ServiceSettings = context.config.attributes["settings"]

    def _migrate(connection: sa.Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=settings.db_schema,
            include_schemas=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def _run() -> None:
        engine = create_async_engine(settings.sqlalchemy_url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(_migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(_run())


def create_platform_tables(schema: str) -> None:
    """Outbox, inbox, audit log and credential tables (platform schema v1)."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", pg.UUID, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("message_key", sa.Text, nullable=False),
        # Events of one key always share a lane; a relay owns a lane while it publishes.
        sa.Column("lane", sa.SmallInteger, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["lane", "id"],
        schema=schema,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_sent_at",
        "outbox",
        ["sent_at"],
        schema=schema,
        postgresql_where=sa.text("sent_at IS NOT NULL"),
    )
    op.create_table(
        "outbox_lane",
        sa.Column("lane", sa.SmallInteger, primary_key=True, autoincrement=False),
        schema=schema,
    )
    op.execute(
        f"INSERT INTO {schema}.outbox_lane (lane) SELECT generate_series(0, {OUTBOX_LANES - 1})"
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", pg.UUID, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema=schema,
    )
    _create_audit_log(schema)
    op.create_table(
        "credential",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("department", sa.Text),
        sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.Text),
        schema=schema,
    )


def create_department_directory(schema: str) -> None:
    """The replica of routing's department directory (platform schema v3), which the
    service's consumer fills from ``platform.departments`` (``tousu_shared.departments``).

    A retired department keeps its row, and ``as_of`` (routing's time of the change) lets a
    row move only forward, so a replayed older event changes nothing.
    """
    op.create_table(
        "department_directory",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def drop_department_directory(schema: str) -> None:
    """Undo ``create_department_directory``."""
    op.drop_table("department_directory", schema=schema)


def drop_platform_tables(schema: str) -> None:
    """Undo ``create_platform_tables``, except the audit log: it is the record of what was
    done, and once deploy/infra.sh harden has given it to ``tousu_audit`` the service role
    could not drop it anyway."""
    for table in ("credential", "inbox", "outbox_lane", "outbox"):
        op.drop_table(table, schema=schema)


def _owns_audit_log(schema: str) -> bool | None:
    """Whether the migrating role owns ``<schema>.audit_log`` (None: there is none)."""
    return (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT pg_get_userbyid(relowner) = current_user FROM pg_class "
                "WHERE oid = to_regclass(:table)"
            ),
            {"table": f"{schema}.audit_log"},
        )
        .scalar()
    )


def _create_audit_log(schema: str) -> None:
    # The audit log outlives a downgrade (see drop_platform_tables): one that is there stays.
    if _owns_audit_log(schema) is not None:
        return
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("actor_role", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("resource_type", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text),
        sa.Column("complaint_id", pg.UUID),
        sa.Column("correlation_id", sa.Text),
        sa.Column("details", pg.JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        schema=schema,
    )
    op.create_index("ix_audit_log_complaint", "audit_log", ["complaint_id"], schema=schema)
    # Append-only in the database itself, not only by convention in the code.
    op.execute(
        f"""
        CREATE FUNCTION {schema}.audit_log_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {schema}.audit_log
            FOR EACH ROW EXECUTE FUNCTION {schema}.audit_log_is_append_only();
        """
    )


# The first entry's predecessor: 32 zero bytes.
AUDIT_GENESIS = "decode(repeat('00', 32), 'hex')"


def _has_audit_hash_chain(schema: str) -> bool:
    return bool(
        op.get_bind()
        .execute(
            sa.text(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = :schema "
                "AND table_name = 'audit_log' AND column_name = 'entry_hash'"
            ),
            {"schema": schema},
        )
        .scalar()
    )


def add_audit_hash_chain(schema: str) -> None:
    """Chain the audit log (platform schema v2): each entry holds its predecessor's hash and
    its own, SHA-256 over the predecessor's hash and a canonical encoding of the entry (a
    jsonb array of its fields, the time in UTC), so an entry changed, removed or slipped in
    afterwards breaks the chain (``python -m tousu_shared.cli verify-audit``).

    The insert trigger computes both, whoever inserts. It serialises the schema's audit
    inserts with a transaction-scoped advisory lock: without it two transactions would read
    the same last entry and fork the chain; the lock is held to commit, so the next insert
    (READ COMMITTED: a fresh snapshot per statement in the trigger) sees the entry before
    it. The position is unique, so even a transaction whose snapshot is older (REPEATABLE
    READ) fails instead of forking. Existing entries are chained in id order.
    """
    if _has_audit_hash_chain(schema):  # kept from before a downgrade: the chain stays as is
        return
    table = f"{schema}.audit_log"
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash bytea, "
        "ADD COLUMN entry_hash bytea"
    )
    op.execute(
        f"""
        CREATE FUNCTION {schema}.audit_log_digest(e {table}) RETURNS bytea
        LANGUAGE sql STABLE AS $$
            SELECT sha256(e.prev_hash || convert_to(jsonb_build_array(
                e.chain_seq, e.id,
                to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                e.actor, e.actor_role, e.action, e.resource_type, e.resource_id,
                e.complaint_id, e.correlation_id, e.details)::text, 'UTF8'))
        $$
        """
    )
    op.execute(f"ALTER TABLE {table} DISABLE TRIGGER audit_log_append_only")
    op.execute(
        f"""
        DO $$
        DECLARE
            entry record;
            previous bytea := {AUDIT_GENESIS};
            position bigint := 0;
        BEGIN
            FOR entry IN SELECT id FROM {table} ORDER BY id LOOP
                position := position + 1;
                UPDATE {table} SET chain_seq = position, prev_hash = previous
                    WHERE id = entry.id;
                UPDATE {table} a SET entry_hash = {schema}.audit_log_digest(a)
                    WHERE id = entry.id RETURNING a.entry_hash INTO previous;
            END LOOP;
        END $$
        """
    )
    op.execute(f"ALTER TABLE {table} ENABLE TRIGGER audit_log_append_only")
    op.execute(
        f"ALTER TABLE {table} ALTER COLUMN chain_seq SET NOT NULL, "
        "ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN entry_hash SET NOT NULL"
    )
    op.execute(f"CREATE UNIQUE INDEX ux_audit_log_chain ON {table} (chain_seq)")
    op.execute(
        f"""
        CREATE FUNCTION {schema}.audit_log_chain() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            last record;
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('tousu.audit_log'), TG_RELID::integer);
            SELECT chain_seq, entry_hash INTO last FROM {table}
                ORDER BY chain_seq DESC LIMIT 1;
            NEW.chain_seq := coalesce(last.chain_seq, 0) + 1;
            NEW.prev_hash := coalesce(last.entry_hash, {AUDIT_GENESIS});
            NEW.entry_hash := {schema}.audit_log_digest(NEW);
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER audit_log_chain BEFORE INSERT ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.audit_log_chain()"
    )


def drop_audit_hash_chain(schema: str) -> None:
    """Undo ``add_audit_hash_chain`` while the service still owns the audit log; once it
    belongs to ``tousu_audit`` the chain stays. (Once harden.sql has run, its event trigger
    refuses the service role any drop of an audit_log object: only the superuser may.)"""
    if not _owns_audit_log(schema) or not _has_audit_hash_chain(schema):
        return
    table = f"{schema}.audit_log"
    op.execute(f"DROP TRIGGER audit_log_chain ON {table}")
    op.execute(f"DROP FUNCTION {schema}.audit_log_chain()")
    op.execute(f"DROP INDEX {schema}.ux_audit_log_chain")
    op.execute(f"DROP FUNCTION {schema}.audit_log_digest({table})")
    op.execute(
        f"ALTER TABLE {table} DROP COLUMN chain_seq, DROP COLUMN prev_hash, DROP COLUMN entry_hash"
    )
