"""Complaint bodies for the bench and the end-to-end latency sampler."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from tousu_shared.kafka import admin_connection

# One complaint text a line; bench/intake.lua reads the same file, so the Python sampler
# and wrk post the same texts.
DESCRIPTIONS_FILE = Path(__file__).with_name("descriptions.txt")
DESCRIPTIONS = DESCRIPTIONS_FILE.read_text(encoding="utf-8").splitlines()


def complaint(seq: int, run: str) -> bytes:
    """A distinct, realistic complaint body (distinct text: no duplicate suppression)."""
    return orjson.dumps(
        {
            "channel": ("phone", "web_form", "online_chat", "app")[seq % 4],
            "customer": {
                "name": f"客户{seq}",
                "phone": f"139{seq % 100_000_000:08d}",
                "tier": "vip" if seq % 10 == 0 else "regular",
            },
            "description": f"{DESCRIPTIONS[seq % len(DESCRIPTIONS)]} ({run} #{seq})",
            "requested_remedies": ["refund"],
            "order_ref": f"ORD-{seq}",
            "amount": "199.00",
        }
    )


async def end_to_end_sampler(
    *,
    base_url: str,
    key: str,
    bootstrap: str,
    topic: str,
    seconds: float,
    sample_rate: int,
    run: str,
    background,
) -> tuple[list[float], dict]:
    """Sampled 201 → event-on-Kafka latencies while ``background`` (wrk) loads the API."""
    consumer = AIOKafkaConsumer(
        topic,
        **admin_connection(bootstrap),
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    await consumer.seek_to_end()
    answered: dict[str, float] = {}
    readable: dict[str, float] = {}
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set() or len(readable) < len(answered):
            for records in (await consumer.getmany(timeout_ms=50)).values():
                now = time.time()
                for record in records:
                    subject = record.key.decode()
                    if b'"ComplaintClassified"' in record.value:
                        readable.setdefault(subject, now)
            if stop.is_set() and time.time() > stop_at + 10:
                break

    stop_at = float("inf")
    reader = asyncio.create_task(consume())
    load = asyncio.create_task(asyncio.to_thread(background))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for i in range(int(seconds * sample_rate)):
            response = await client.post("/v1/complaints", content=complaint(900_000_000 + i, run))
            if response.status_code == 201:
                answered[response.json()["id"]] = time.time()
            await asyncio.sleep(1 / sample_rate)
    load_result = await load
    stop_at = time.time()
    stop.set()
    await reader
    await consumer.stop()
    return [
        max(0.0, (readable[k] - answered[k]) * 1000) for k in answered if k in readable
    ], load_result


def summary(values: list[float]) -> str:
    """p50 / p99 / max of a list of milliseconds."""
    if not values:
        return "n/a"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"
