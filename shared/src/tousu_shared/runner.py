"""Runs a service process: every role together (``all``), or one role alone.

The roles are ``api``, ``consumer``, ``relay`` and the service's own workers (the SLA
monitor's ``scheduler``, for example). Each can run alone, and twice: none of them relies on
being the only one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn
import uvloop

from tousu_shared.dlq import ReplayReport, replay_dead_letters
from tousu_shared.kafka import connection, ensure_topics
from tousu_shared.logging import configure_logging
from tousu_shared.metrics import process_exiting, process_started
from tousu_shared.migrations import downgrade, upgrade
from tousu_shared.runtime import Service
from tousu_shared.settings import ConfigurationError
from tousu_shared.topics import all_topic_names, compacted_topic_names

log = logging.getLogger(__name__)

PLATFORM_ROLES = ("api", "consumer", "relay")


def roles_of(service: Service) -> tuple[str, ...]:
    """Every role this service can run."""
    return (*PLATFORM_ROLES, *service.workers)


def roles_to_run(roles: tuple[str, ...], command: str, without: list[str]) -> tuple[str, ...]:
    """The roles ``command`` starts: one role, or with ``all`` every role but ``without``."""
    if command != "all":
        return (command,)
    return tuple(role for role in roles if role not in without)


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the runner stops every part together.

    Nor with its ten wake-ups a second: uvicorn's main loop sleeps 0.1 s between looks at
    ``should_exit`` (and refreshes its Date header every tenth look), the largest part of
    what an idle service process did (issue #12). Here the runner's stop event ends the
    wait at once, so one look a second, the Date header's own resolution, is enough.
    """

    def __init__(self, config: uvicorn.Config, stop: asyncio.Event) -> None:
        super().__init__(config)
        self._stop = stop

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            counter = 0
            # A multiple of 10: on_tick refreshes the Date header on every call.
            while not await self.on_tick(counter):
                await asyncio.wait({stopping}, timeout=1.0)
                counter = (counter + 10) % 864000
        finally:
            stopping.cancel()


async def serve(service: Service, roles: tuple[str, ...]) -> None:
    """Run the chosen parts until a signal arrives or one part fails."""
    stop = asyncio.Event()
    settings = service.runtime.settings
    server = _Server(
        uvicorn.Config(
            service.app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        ),
        stop,
    )

    def _shutdown() -> None:
        stop.set()
        server.should_exit = True

    if set(roles) - {"api"}:
        # The registry's topics, idempotently: a consumer of a missing topic would wait in
        # start() and not even stop on a signal.
        await ensure_topics(
            connection(settings),
            [(settings.topic(name), partitions) for name, partitions in all_topic_names()],
            compacted=[settings.topic(name) for name in compacted_topic_names()],
        )

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _shutdown)

    async with asyncio.TaskGroup() as group:
        if "api" in roles:
            sockets = (
                [_shared_socket(settings.http_host, settings.http_port)]
                if settings.http_reuse_port
                else None
            )
            group.create_task(_until_done(server.serve(sockets), _shutdown), name="api")
        if "consumer" in roles:
            group.create_task(_until_done(service.consumer().run(stop), _shutdown), name="consumer")
        if "relay" in roles:
            group.create_task(_until_done(service.relay().run(stop), _shutdown), name="relay")
            for companion in service.relay_companions:
                group.create_task(_until_done(companion(stop), _shutdown))
        for name, worker in service.workers.items():
            if name in roles:
                group.create_task(_until_done(worker(stop), _shutdown), name=name)
    if "api" not in roles:
        await service.runtime.close()


def _shared_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def _until_done(work, shutdown: Callable[[], None]) -> None:
    # When one part ends (or fails) the whole process stops, so a supervisor restarts it whole.
    try:
        await work
    finally:
        shutdown()


async def _replay(service: Service) -> ReplayReport:
    try:
        return await replay_dead_letters(service)
    finally:
        await service.runtime.close()


def main(build: Callable[[], Service], argv: list[str] | None = None) -> None:
    """Command line of ``python -m tousu_<service>``."""
    try:
        service = build()
    except ConfigurationError as error:
        # A refusal to start, not a crash: the message names the setting, no traceback.
        raise SystemExit(f"refusing to start: {error}") from error
    roles = roles_of(service)
    parser = argparse.ArgumentParser(description="Run a Tousu service.")
    parser.add_argument(
        "command",
        nargs="?",
        default="all",
        choices=("all", *roles, "migrate", "downgrade", "dlq-replay", "roles"),
        help=f"all (default) runs every role in one process: {', '.join(roles)}",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=roles,
        metavar="ROLE",
        help="with all: every role but this one (repeatable), e.g. a relay run apart",
    )
    args = parser.parse_args(argv)
    if args.without and args.command != "all":
        parser.error("--without goes with all")
    if args.command == "roles":
        # For supervisors that start each role as a process of its own (run-services.sh).
        print("\n".join(roles))
        return
    settings = service.runtime.settings
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "migrate":
        upgrade(service.migrations_dir, settings)
        return
    if args.command == "downgrade":
        downgrade(service.migrations_dir, settings)
        return
    if args.command == "dlq-replay":
        report = uvloop.run(_replay(service))
        print(report.summary())
        return
    chosen = roles_to_run(roles, args.command, args.without)
    log.info("starting %s on %s:%s", ", ".join(chosen), settings.http_host, settings.http_port)
    # Where the service's processes share their metrics, a live gauge counts only while its
    # process runs: this one's stop counting when it ends, those of processes gone are dropped.
    process_started()
    try:
        # uvloop: uvicorn picks it only for loops it creates itself, and this one is ours.
        uvloop.run(serve(service, chosen))
    finally:
        process_exiting()
