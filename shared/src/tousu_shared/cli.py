"""Operator commands: create topics, write the AsyncAPI document, mint development secrets,
verify a service's audit chain."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
from sqlalchemy.ext.asyncio import create_async_engine

from tousu_shared.acls import grant_service_acls
from tousu_shared.asyncapi import asyncapi_document
from tousu_shared.audit import ChainReport, verify_chain
from tousu_shared.auth import new_api_key
from tousu_shared.kafka import admin_connection, ensure_topics
from tousu_shared.topics import all_topic_names, compacted_topic_names


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tousu_shared.cli``."""
    parser = argparse.ArgumentParser(prog="python -m tousu_shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    topics = commands.add_parser(
        "create-topics", help="create every registered topic and the services' ACLs on them"
    )
    topics.add_argument(
        "--bootstrap", default=os.environ.get("TOUSU_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    topics.add_argument("--namespace", default="")
    spec = commands.add_parser("asyncapi", help="print the AsyncAPI document")
    spec.add_argument("--output", type=Path)
    key = commands.add_parser("dev-admin-key", help="print a key, reusing the one in --file")
    key.add_argument("--file", type=Path, required=True)
    signing = commands.add_parser(
        "dev-signing-key", help="print a credential signing key, reusing the one in --file"
    )
    signing.add_argument("--file", type=Path, required=True)
    audit = commands.add_parser(
        "verify-audit", help="walk a schema's audit hash chain; exit 1 at the first broken entry"
    )
    audit.add_argument("--schema", required=True, choices=SCHEMAS)
    audit.add_argument(
        "--database-url",
        help="default: TOUSU_DATABASE_URL, else the schema's own role as deploy/infra.sh sets it",
    )
    args = parser.parse_args(argv)

    if args.command == "create-topics":
        wanted = [(f"{args.namespace}{name}", parts) for name, parts in all_topic_names()]
        kafka = admin_connection(args.bootstrap)
        compacted = [f"{args.namespace}{name}" for name in compacted_topic_names()]
        created = asyncio.run(ensure_topics(kafka, wanted, compacted=compacted))
        print(f"topics: {len(wanted)} registered, {len(created)} created")
        if "sasl_plain_username" in kafka:
            acls = asyncio.run(grant_service_acls(kafka, args.namespace))
            print(f"acls: {acls} for the services' users")
    elif args.command == "asyncapi":
        document = orjson.dumps(asyncapi_document(), option=orjson.OPT_INDENT_2).decode()
        if args.output:
            args.output.write_text(document + "\n")
        else:
            sys.stdout.write(document + "\n")
    elif args.command == "dev-admin-key":
        print(_kept_secret(args.file, lambda: new_api_key()[1]))
    elif args.command == "dev-signing-key":
        print(_kept_secret(args.file, lambda: secrets.token_hex(32)))
    elif args.command == "verify-audit":
        url = args.database_url or _role_url(args.schema)
        report = asyncio.run(_verify_audit(args.schema, url))
        print(report.summary())
        if not report.intact:
            raise SystemExit(1)


SCHEMAS = ("intake", "routing", "sla_monitor", "feedback", "analytics")


def _role_url(schema: str) -> str:
    # The service role reads its own audit log (SELECT is all it needs); same defaults as
    # deploy/infra.sh env: password = role name unless TOUSU_DB_PASSWORD_<ROLE>.
    if url := os.environ.get("TOUSU_DATABASE_URL"):
        return url
    password = os.environ.get(f"TOUSU_DB_PASSWORD_{schema.upper()}", schema)
    host = os.environ.get("TOUSU_PG_HOST", "127.0.0.1")
    port = os.environ.get("TOUSU_PG_PORT", "5432")
    return f"postgresql+asyncpg://{schema}:{password}@{host}:{port}/tousu"


async def _verify_audit(schema: str, url: str) -> ChainReport:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await verify_chain(connection, schema)
    finally:
        await engine.dispose()


def _kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``, made (mode 600) if the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make() + "\n")
    return path.read_text().strip()


if __name__ == "__main__":
    main()
