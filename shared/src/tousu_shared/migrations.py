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


def drop_platform_tables(schema: str) -> None:
    """Undo ``create_platform_tables``."""
    for table in ("credential", "audit_log", "inbox", "outbox_lane", "outbox"):
        op.drop_table(table, schema=schema)
    op.execute(f"DROP FUNCTION IF EXISTS {schema}.audit_log_is_append_only()")
