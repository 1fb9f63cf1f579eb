"""Per-complaint event order on every topic: what each consumer reads in the order it
happened.

A producer's outbox gives its events ids in commit order per complaint (the writer holds the
complaint's row lock), so the outbox ids are the order each complaint's events happened in.
The check reads every topic the drill's complaints have events on and asks that, per
complaint, the first appearance of each event on the topic follows that order (a relay that
publishes a batch again after a crash may repeat events later: a consumer's inbox skips those
repeats, so only first appearances count).
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tousu_shared.kafka import admin_connection

from drills.ledger import Checker

PRODUCERS = ("intake", "routing", "sla_monitor", "feedback", "analytics")


async def check_order(
    bootstrap: str, checker: Checker, ids: list[uuid.UUID]
) -> tuple[list[str], list[str]]:
    keys = {str(i) for i in ids}
    # topic → complaint → event ids in outbox (commit) order
    expected: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for schema in PRODUCERS:
        rows = await checker.rows(
            schema,
            f"SELECT topic, message_key, event_id FROM {schema}.outbox "
            "WHERE message_key = ANY(:keys) ORDER BY id",
            keys=list(keys),
        )
        for topic, key, event_id in rows:
            expected[topic].setdefault(key, []).append(str(event_id))
    seen = await _first_appearances(bootstrap, set(expected), keys)
    problems = []
    checked = 0
    for topic, by_key in expected.items():
        for key, order in by_key.items():
            checked += len(order)
            got = [event_id for event_id in seen.get(topic, {}).get(key, []) if event_id in order]
            if got != order:
                problems.append(
                    f"{topic}: complaint {key} events out of order or missing "
                    f"({len(got)} of {len(order)} in order)"
                )
    line = (
        f"   order: {checked} events of the drill's complaints on {len(expected)} topics "
        f"({', '.join(sorted(expected))}); per complaint "
        f"{'all' if not problems else f'{len(problems)} complaints NOT'} in commit order"
    )
    return [line], problems[:5] + ([f"… {len(problems) - 5} more"] if len(problems) > 5 else [])


async def _first_appearances(
    bootstrap: str, topics: set[str], keys: set[str]
) -> dict[str, dict[str, list[str]]]:
    """topic → complaint → event ids in the order they first appear on the topic."""
    if not topics:
        return {}
    admin = AIOKafkaAdminClient(**admin_connection(bootstrap))
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    reader = AIOKafkaConsumer(**admin_connection(bootstrap), enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        firsts: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        known: set[tuple[str, str]] = set()
        while any([await reader.position(tp) < end[tp] for tp in partitions]):
            for tp, records in (await reader.getmany(timeout_ms=1000, max_records=5000)).items():
                for record in records:
                    key = (record.key or b"").decode(errors="replace")
                    if key not in keys:
                        continue
                    try:
                        event_id = str(orjson.loads(record.value)["id"])
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        continue
                    if (tp.topic, event_id) not in known:
                        known.add((tp.topic, event_id))
                        firsts[tp.topic][key].append(event_id)
        return firsts
    finally:
        await reader.stop()
