"""Operator commands: create topics, write the AsyncAPI document, mint a development key."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import orjson

from tousu_shared.asyncapi import asyncapi_document
from tousu_shared.auth import new_api_key
from tousu_shared.kafka import ensure_topics
from tousu_shared.topics import all_topic_names


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tousu_shared.cli``."""
    parser = argparse.ArgumentParser(prog="python -m tousu_shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    topics = commands.add_parser("create-topics", help="create every registered topic")
    topics.add_argument(
        "--bootstrap", default=os.environ.get("TOUSU_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    topics.add_argument("--namespace", default="")
    spec = commands.add_parser("asyncapi", help="print the AsyncAPI document")
    spec.add_argument("--output", type=Path)
    key = commands.add_parser("dev-admin-key", help="print a key, reusing the one in --file")
    key.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "create-topics":
        wanted = [(f"{args.namespace}{name}", parts) for name, parts in all_topic_names()]
        created = asyncio.run(ensure_topics(args.bootstrap, wanted))
        print(f"topics: {len(wanted)} registered, {len(created)} created")
    elif args.command == "asyncapi":
        document = orjson.dumps(asyncapi_document(), option=orjson.OPT_INDENT_2).decode()
        if args.output:
            args.output.write_text(document + "\n")
        else:
            sys.stdout.write(document + "\n")
    elif args.command == "dev-admin-key":
        if not args.file.exists():
            args.file.parent.mkdir(parents=True, exist_ok=True)
            args.file.write_text(new_api_key()[1] + "\n")
            args.file.chmod(0o600)
        print(args.file.read_text().strip())


if __name__ == "__main__":
    main()
