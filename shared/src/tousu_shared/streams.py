"""Live streams (server-sent events) that cost the database the same whatever their number.

A `Poller` runs one poll loop per key (a stream's shared source, e.g. the whole SLA event log
or one department's board) while anyone listens, and hands what it reads to every listener of
that key; each listener filters for itself. `StreamSlots` caps the streams one credential may
hold open, so one key cannot take every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prometheus_client import Counter
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tousu_shared.errors import TooManyRequests

K = TypeVar("K", bound=Hashable)
S = TypeVar("S")
M = TypeVar("M")

log = logging.getLogger(__name__)

STREAM_POLLS = Counter(
    "tousu_stream_polls_total", "Database reads made by live-stream pollers", ["stream"]
)
STREAM_REFUSED = Counter(
    "tousu_stream_refused_total", "Streams refused for a credential over its cap", ["stream"]
)


class Overflowed(Exception):
    """A listener fell further behind than its queue holds; it should reconnect (and resume)."""


@dataclass(eq=False)
class Listener(Generic[M]):
    """One client's end of a poller: the messages read since it joined, in order."""

    queue: asyncio.Queue[M | None]
    overflowed: bool = False

    async def next(self) -> M:
        """The next message; raises `Overflowed` once the listener was left behind."""
        message = await self.queue.get()
        if message is None:
            raise Overflowed
        return message


@dataclass(eq=False)
class _Loop(Generic[M]):
    listeners: set[Listener[M]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    last: M | None = None


class Poller(Generic[K, S, M]):
    """One poll loop per key, shared by every listener of that key.

    ``poll(key, state)`` reads the source once and returns the new state and the message to
    hand out (None: nothing new). ``start(key)`` gives the first state. With ``replay_last``
    a listener joining a running loop gets its latest message at once (a snapshot source such
    as a board); without it, only what is read after it joined (a log). ``polls`` counts the
    reads, so tests and the metric can show that they do not grow with the listeners.
    """

    def __init__(
        self,
        name: str,
        *,
        start: Callable[[K], Awaitable[S]],
        poll: Callable[[K, S], Awaitable[tuple[S, M | None]]],
        interval: Callable[[], float],
        replay_last: bool = False,
        queue_size: int = 64,
    ) -> None:
        self.name = name
        self._start = start
        self._poll = poll
        self._interval = interval
        self._replay_last = replay_last
        self._queue_size = queue_size
        self._loops: dict[K, _Loop[M]] = {}
        self.polls = 0

    @contextlib.asynccontextmanager
    async def listen(self, key: K) -> AsyncIterator[Listener[M]]:
        """A listener of ``key`` for the block (the loop starts with the first one, ends
        with the last)."""
        loop = self._loops.setdefault(key, _Loop())
        listener: Listener[M] = Listener(asyncio.Queue(self._queue_size))
        if self._replay_last and loop.last is not None:
            listener.queue.put_nowait(loop.last)
        loop.listeners.add(listener)
        if loop.task is None or loop.task.done():
            loop.task = asyncio.create_task(self._run(key, loop))
        try:
            yield listener
        finally:
            loop.listeners.discard(listener)
            if not loop.listeners:
                if loop.task is not None:
                    loop.task.cancel()
                if self._loops.get(key) is loop:
                    del self._loops[key]

    def listeners(self, key: K) -> int:
        """How many listen to ``key`` now."""
        loop = self._loops.get(key)
        return len(loop.listeners) if loop else 0

    async def _run(self, key: K, loop: _Loop[M]) -> None:
        try:
            state = await self._start(key)
            while loop.listeners:
                self.polls += 1
                STREAM_POLLS.labels(self.name).inc()
                state, message = await self._poll(key, state)
                if message is not None:
                    loop.last = message
                    for listener in list(loop.listeners):
                        self._hand(listener, message)
                await asyncio.sleep(self._interval())
        except Exception as exc:
            # Every listener ends (clients reconnect, resuming); the next one starts a loop.
            log.warning("%s poller failed: %s", self.name, type(exc).__name__)
            for listener in list(loop.listeners):
                if not listener.overflowed:
                    listener.overflowed = True
                    listener.queue.put_nowait(None)

    @staticmethod
    def _hand(listener: Listener[M], message: M) -> None:
        if listener.overflowed:
            return
        if listener.queue.qsize() >= (listener.queue.maxsize or 1) - 1:
            # The last place is kept for the end mark, so a slow client is told, not stalled.
            listener.overflowed = True
            listener.queue.put_nowait(None)
            return
        listener.queue.put_nowait(message)


class StreamSlots:
    """How many streams each credential holds open; past ``limit()`` the next is a 429."""

    def __init__(self, name: str, limit: Callable[[], int]) -> None:
        self.name = name
        self._limit = limit
        self._held: dict[str, int] = {}

    def held(self, key_id: str) -> int:
        """Streams the credential holds open now."""
        return self._held.get(key_id, 0)

    def take(self, key_id: str) -> Callable[[], None]:
        """Hold a slot for ``key_id``; returns its release (call it once, when the stream
        ends). Raises `TooManyRequests` when the credential holds its limit already."""
        limit = self._limit()
        if self.held(key_id) >= limit:
            STREAM_REFUSED.labels(self.name).inc()
            raise TooManyRequests(
                f"this credential holds {limit} open streams already; close one first",
                retry_after=5,
                limit=limit,
            )
        self._held[key_id] = self.held(key_id) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self.held(key_id) - 1
            if left > 0:
                self._held[key_id] = left
            else:
                self._held.pop(key_id, None)

        return release


class Held(Response):
    """A streaming response that gives its slot back however the stream ends (finished,
    client gone, failed, or never started)."""

    def __init__(self, inner: Response, release: Callable[[], None]) -> None:
        # Shares the inner response's status and headers (FastAPI may add to them).
        self.inner = inner
        self.release = release
        self.status_code = inner.status_code
        self.raw_headers = inner.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.release()


def held(slots: StreamSlots, key_id: str, build: Callable[[], Response]) -> Response:
    """``build()``'s response holding a slot of ``slots`` for ``key_id`` (429 over the cap)."""
    release = slots.take(key_id)
    try:
        return Held(build(), release)
    except BaseException:
        release()
        raise


def state_of(app_state: Any, name: str, build: Callable[[], Any]) -> Any:
    """The one per-process object ``name`` on an app's state, built on first use."""
    existing = getattr(app_state, name, None)
    if existing is None:
        existing = build()
        setattr(app_state, name, existing)
    return existing
