"""Idle cost of the whole stack: every service (all its processes), Kafka and Postgres, no traffic.

Each service runs on a bench port and the bench's topic namespace, as `make run` starts it;
after a warm-up the CPU time of those processes plus the broker's and the database's is
read from /proc over the window, and so are their wake-ups (context switches of every
thread): what an idle process costs is mostly how often it wakes, and the CPU one wake-up
takes on this virtual machine moves with the host's load (2-3x between runs an hour
apart), the count does not. Kafka is the broker listening on the bootstrap port and
Postgres the postmaster on the database port with its children, so a second stack (the
drills') is not counted. Both are the development ones (TOUSU_KAFKA_BOOTSTRAP, PG_PORT),
shared with whatever else uses them meanwhile: every other process seen connected to
either during the window is listed under the figures, which then overstate the idle cost.

Alone (topics of its own, deleted after), with the busiest threads of the broker:
    flock -o /tmp/tousu-test.lock flock -o /tmp/tousu-cpu.lock \
        .venv/bin/python -m bench.idle [--warmup S] [--window S] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Collection, Mapping
from contextlib import contextmanager
from pathlib import Path

from tousu_intake.keys import new_key_env
from tousu_shared.auth import new_api_key
from tousu_shared.kafka import password_of
from tousu_shared.testing import create_topics, delete_outbox_rows, delete_topics

from bench.ready import wait_ready
from drills.stack import PACKAGES

# Service → HTTP port; each runs as its own Kafka user (named like the service: its ACLs
# name its groups and topics), with the package the drills' stack maps it to.
PORTS = dict(zip(PACKAGES, range(18101, 18106), strict=True))
_TICK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]


def _cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of a process (its threads included); with ``reaped``, also
    those of its children that ended and were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if reaped:
        used += int(fields[13]) + int(fields[14])
    return used / _TICK


def _postgres_seconds(postmaster: int) -> float:
    """CPU seconds of the postmaster, its live children and those it reaped: a backend that
    ends within the window moves from the second to the third, so it is counted once."""
    total = _cpu_seconds(postmaster, reaped=True)
    for child in _children(postmaster):
        with contextlib.suppress(OSError):
            total += _cpu_seconds(child)
    return total


def _socket_inodes(
    *, local_port: int | None = None, remote_ports: Collection[int] = ()
) -> set[str]:
    """Inodes of the sockets listening on ``local_port``, or connected to one of
    ``remote_ports`` (``socket:[n]``, as /proc/<pid>/fd links name them)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                listening = fields[3] == "0A" and local == local_port
                connected = fields[3] == "01" and remote in remote_ports
                if listening or connected:
                    inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _socket_owners(inodes: set[str]) -> dict[int, set[str]]:
    """The processes holding any of ``inodes`` (those we may look at), with theirs."""
    owners: dict[int, set[str]] = {}
    if not inodes:
        return owners
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if (link := os.readlink(fd)) in inodes:
                        owners.setdefault(int(entry.name), set()).add(link)
    return owners


def _listening_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:``port`` (or any address), if it is ours to see."""
    return next(iter(_socket_owners(_socket_inodes(local_port=port))), None)


def _clients(ports: set[int]) -> set[int]:
    """Processes with a connection open to one of ``ports``."""
    return set(_socket_owners(_socket_inodes(remote_ports=ports)))


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    return "?"


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == parent:
                    found.append(int(entry.name))
    return found


def _infrastructure_ports(env: Mapping[str, str]) -> dict[str, int]:
    """The broker's bootstrap port and the database's."""
    return {
        "kafka": int(env.get("TOUSU_KAFKA_BOOTSTRAP", "127.0.0.1:9092").rsplit(":", 1)[1]),
        "postgres": int(env.get("TOUSU_PG_PORT") or env.get("PG_PORT") or 5432),
    }


def _infrastructure_pids(env: Mapping[str, str]) -> dict[str, list[int]]:
    """The broker on the bootstrap port; the postmaster on the database port (its children,
    every backend and background worker, are counted with it: ``_postgres_seconds``)."""
    found: dict[str, list[int]] = {"kafka": [], "postgres": []}
    for name, port in _infrastructure_ports(env).items():
        if (pid := _listening_pid(port)) is not None:
            found[name].append(pid)
    return found


def _group_seconds(name: str, pids: list[int]) -> float:
    if name == "postgres":
        return sum(_postgres_seconds(pid) for pid in pids)
    return sum(_cpu_seconds(pid) for pid in pids)


def _switches(pid: int) -> int:
    """Context switches (voluntary and not) of every live thread of a process so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def _group_switches(name: str, pids: list[int]) -> int:
    """Context switches of a group's processes (a postmaster's with its live children: one
    that ends within the window takes its count with it, so this is a lower bound)."""
    if name == "postgres":
        pids = [*pids, *(child for pid in pids for child in _children(pid))]
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += _switches(pid)
    return total


def _thread_cpu(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds of each thread of a process, keyed by (tid, name)."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            head, rest = (task / "stat").read_text().rsplit(")", 1)
            fields = rest.split()
            name = head.split("(", 1)[1]
            threads[(int(task.name), name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return threads


def make_run_layout(service: str, env: Mapping[str, str]) -> list[tuple[list[str], dict[str, str]]]:
    """The processes `make run` starts for ``service`` (deploy/run-services.sh, with the same
    settings and defaults): their arguments and extra environment."""
    apart = env.get("RELAYS_APART", "intake routing").split()
    processes: list[tuple[list[str], dict[str, str]]] = []
    extra: dict[str, str] = {}
    if service == "intake":
        api_processes = int(env.get("INTAKE_API_PROCESSES") or os.cpu_count() or 1)
        if api_processes > 1:
            extra = {"TOUSU_HTTP_REUSE_PORT": "true"}
            processes += [(["api"], extra)] * (api_processes - 1)
    if service in apart:
        return [*processes, (["relay"], extra), (["all", "--without", "relay"], extra)]
    return [*processes, (["all"], extra)]


@contextmanager
def stack(env: dict[str, str], log_dir: Path):
    """Every service laid out in processes as `make run` starts them."""
    procs: dict[str, list[subprocess.Popen]] = {}
    logs = open(log_dir / "bench-idle.log", "w")
    try:
        for service, port in PORTS.items():
            for args, extra in make_run_layout(service, env):
                procs.setdefault(PACKAGES[service], []).append(
                    subprocess.Popen(
                        [sys.executable, "-m", PACKAGES[service], *args],
                        env={
                            **env,
                            **extra,
                            "TOUSU_HTTP_PORT": str(port),
                            "TOUSU_KAFKA_USERNAME": service,
                            "TOUSU_KAFKA_PASSWORD": password_of(service) or "",
                        },
                        stdout=logs,
                        stderr=logs,
                    )
                )
        wait_ready(
            list(PORTS.values()),
            seconds=90,
            what="the stack",
            log="bench-idle.log",
        )
        yield procs
    finally:
        for group in procs.values():
            for proc in group:
                proc.terminate()
        for group in procs.values():
            for proc in group:
                proc.wait(timeout=30)
        logs.close()


def measure_idle(
    env: dict[str, str],
    log_dir: Path,
    *,
    warmup: float = 10,
    window: float = 30,
    broker_threads: dict[str, float] | None = None,
    wakeups: dict[str, float] | None = None,
    others: dict[int, str] | None = None,
):
    """Share of one core each part uses with no traffic, over ``window`` seconds; the
    broker's share per thread goes into ``broker_threads``, each part's context switches
    per second into ``wakeups`` and the other processes seen connected to the broker or
    the database meanwhile (looked for every 2 s) into ``others``, when given."""
    with stack(env, log_dir) as procs:
        time.sleep(warmup)
        infra = _infrastructure_pids(env)
        groups = {name: [proc.pid for proc in group] for name, group in procs.items()} | infra
        ours = {os.getpid(), *(pid for pids in groups.values() for pid in pids)}
        ports = set(_infrastructure_ports(env).values())
        threads_before = {pid: _thread_cpu(pid) for pid in infra["kafka"]}
        switches_before = {name: _group_switches(name, pids) for name, pids in groups.items()}
        before = {name: _group_seconds(name, pids) for name, pids in groups.items()}
        seen: set[int] = set()
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            if others is not None:
                seen |= _clients(ports) - ours
                left = deadline - time.monotonic()
            time.sleep(max(0.0, min(2.0, left)))
        after = {name: _group_seconds(name, pids) for name, pids in groups.items()}
        switches_after = {name: _group_switches(name, pids) for name, pids in groups.items()}
        ended = [name for name, group in procs.items() if any(p.poll() is not None for p in group)]
        if ended:
            # Another stack on the bench's ports, say: readiness answered for it instead.
            raise RuntimeError(f"{', '.join(ended)} ended during the window; see bench-idle.log")
        if others is not None:
            others.update({pid: _command(pid) for pid in sorted(seen)})
        if wakeups is not None:
            for name in groups:
                wakeups[name] = (switches_after[name] - switches_before[name]) / window
        if broker_threads is not None:
            for pid, threads in threads_before.items():
                for key, seconds in _thread_cpu(pid).items():
                    used = (seconds - threads.get(key, 0.0)) / window
                    if used > 0:
                        broker_threads[f"{key[1]} ({key[0]})"] = used
    shares = {name: (after[name] - before[name]) / window for name in groups}
    shares["total"] = sum(shares.values())
    return shares


def main() -> None:
    """The idle step of `make bench` alone, on topics of its own."""
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--warmup", type=float, default=10, help="seconds before the window")
    parser.add_argument("--window", type=float, default=30, help="seconds measured")
    parser.add_argument("--threads", type=int, default=10, help="busiest broker threads shown")
    args = parser.parse_args()
    namespace = f"bench-idle-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "TOUSU_CREDENTIAL_SIGNING_KEY": secrets.token_hex(32),
        "TOUSU_BOOTSTRAP_ADMIN_KEY": new_api_key()[1],
        "TOUSU_TOPIC_NAMESPACE": namespace,
        "TOUSU_LOG_LEVEL": "WARNING",
        **new_key_env(),
    }
    asyncio.run(create_topics(namespace))
    threads: dict[str, float] = {}
    wakeups: dict[str, float] = {}
    others: dict[int, str] = {}
    try:
        shares = measure_idle(
            env,
            REPO / ".data" / "logs",
            warmup=args.warmup,
            window=args.window,
            broker_threads=threads,
            wakeups=wakeups,
            others=others,
        )
    finally:
        asyncio.run(delete_topics(namespace))
        asyncio.run(delete_outbox_rows(namespace))
    wakeups["total"] = sum(wakeups.values())
    print(f"idle, {args.window:.0f} s after {args.warmup:.0f} s of warm-up:")
    for name, share in shares.items():
        print(f"  {name:>16} {share:>7.2%} of one core {wakeups[name]:>7.0f} wake-ups/s")
    if others:
        print("other clients of the broker or the database during the window (counted in):")
        for pid, command in others.items():
            print(f"  {pid:>8} {command}")
    print("broker threads:")
    for name, share in sorted(threads.items(), key=lambda item: -item[1])[: args.threads]:
        print(f"  {name:>32} {share:>7.2%}")


if __name__ == "__main__":
    main()
