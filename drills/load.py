"""The load driver: distinct complaints at a steady rate over a few connections, each with its
own Idempotency-Key, retried with the same key until it is answered."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

from bench.intake_load import complaint

# Answers after which the same request is simply sent again: the service is (partly) down.
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class LoadResult:
    """What the driver sent and what it was told."""

    sent: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)  # Idempotency-Key → id
    bodies: dict[str, bytes] = field(default_factory=dict)
    attempts: int = 0
    retried: set[str] = field(default_factory=set)  # keys that needed more than one attempt
    # Keys first answered 200 (a replay): the request had committed, its answer was lost.
    replayed: set[str] = field(default_factory=set)
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # key, status, body
    unanswered: list[str] = field(default_factory=list)  # still failing when the driver gave up
    ended_at: float = 0.0  # monotonic: the last request answered (or given up)
    # id → wall-clock time of its first 201 (an event's broker timestamp is compared to it).
    answered_at: dict[str, float] = field(default_factory=dict)


class LoadDriver:
    """POSTs complaint ``seq`` of run ``tag`` at ``rate`` per second over ``connections``.

    With several intake URLs (two instances), the connections are spread over them and a
    request that fails on one is sent again to the next, as a load balancer would.
    """

    def __init__(
        self, base_urls: list[str], api_key: str, tag: str, *, rate: float, connections: int
    ):
        self.base_urls = base_urls
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.tag = tag
        self.rate = rate
        self.connections = connections
        self.result = LoadResult()

    def key(self, seq: int) -> str:
        return f"{self.tag}-{seq}"

    async def run(self, seconds: float, *, give_up_after: float = 120.0) -> LoadResult:
        """Offer ``seconds × rate`` complaints on schedule (a backlog builds while the service is
        down), then wait until each is answered or ``give_up_after`` seconds have passed."""
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        give_up_at = time.monotonic() + seconds + give_up_after
        workers = [
            asyncio.create_task(self._worker(queue, give_up_at, n)) for n in range(self.connections)
        ]
        started = time.monotonic()
        total = int(seconds * self.rate)
        for seq in range(total):
            await asyncio.sleep(max(0.0, started + seq / self.rate - time.monotonic()))
            queue.put_nowait(seq)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        self.result.ended_at = time.monotonic()
        return self.result

    async def _worker(self, queue: asyncio.Queue[int | None], give_up_at: float, n: int) -> None:
        # One connection per worker and URL; a cut connection is opened anew by the pool.
        limits = httpx.Limits(max_connections=len(self.base_urls), max_keepalive_connections=2)
        async with httpx.AsyncClient(headers=self.headers, timeout=10, limits=limits) as client:
            while (seq := await queue.get()) is not None:
                key = self.key(seq)
                body = complaint(seq, self.tag)
                self.result.sent += 1
                self.result.bodies[key] = body
                await self._until_answered(client, key, body, give_up_at, n)

    async def _until_answered(
        self, client: httpx.AsyncClient, key: str, body: bytes, give_up_at: float, n: int
    ) -> None:
        attempt = 0
        while True:
            url = self.base_urls[(n + attempt) % len(self.base_urls)]
            attempt += 1
            self.result.attempts += 1
            if attempt > 1:
                self.result.retried.add(key)
            try:
                response = await client.post(
                    f"{url}/v1/complaints", content=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code in (200, 201):
                complaint_id = response.json()["id"]
                self.result.acknowledged[key] = complaint_id
                self.result.answered_at.setdefault(complaint_id, time.time())
                if response.status_code == 200:
                    self.result.replayed.add(key)
                return
            if response is not None and response.status_code not in RETRY_STATUSES:
                self.result.refused.append((key, response.status_code, response.text[:300]))
                return
            if time.monotonic() > give_up_at:
                self.result.unanswered.append(key)
                return
            await asyncio.sleep(min(0.2 * attempt, 2.0) * random.uniform(0.8, 1.2))


async def replay_answers(
    base_urls: list[str], api_key: str, result: LoadResult, sample: int = 100
) -> tuple[int, list[str]]:
    """Send acknowledged requests again with their Idempotency-Key (every retried one, and a
    random sample of the rest), to each intake URL in turn: each must answer 200 with the
    same id. Returns (replayed, keys answered otherwise)."""
    retried = [key for key in result.acknowledged if key in result.retried]
    others = [key for key in result.acknowledged if key not in result.retried]
    keys = retried + random.sample(others, min(sample, len(others)))
    wrong: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        for n, key in enumerate(keys):
            response = await client.post(
                f"{base_urls[n % len(base_urls)]}/v1/complaints",
                content=result.bodies[key],
                headers={"Idempotency-Key": key},
            )
            if response.status_code != 200 or response.json().get("id") != result.acknowledged[key]:
                wrong.append(f"{key}: {response.status_code} {response.text[:120]}")
    return len(keys), wrong
