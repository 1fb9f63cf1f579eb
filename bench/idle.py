"""Idle cost of the whole stack: every service (all roles), Kafka and Postgres, no traffic.

Each service runs on a bench port and the bench's topic namespace, as `make run` starts it;
after a warm-up the CPU time of those processes plus the broker's and the database's is
read from /proc over the window. Kafka and Postgres are shared with anything else running
on the machine, so their share is an upper bound.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tousu_shared.kafka import password_of

from bench.ready import wait_ready
from drills.stack import PACKAGES

# Service → HTTP port; each runs as its own Kafka user (named like the service: its ACLs
# name its groups and topics), with the package the drills' stack maps it to.
PORTS = dict(zip(PACKAGES, range(18101, 18106), strict=True))
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _infrastructure_pids() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {"kafka": [], "postgres": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "kafka.Kafka" in command:
            found["kafka"].append(int(entry.name))
        elif command.startswith("postgres") or "/postgres " in command:
            found["postgres"].append(int(entry.name))
    return found


@contextmanager
def stack(env: dict[str, str], log_dir: Path):
    """Every service with all its roles, as `make run` runs them."""
    procs: dict[str, subprocess.Popen] = {}
    logs = open(log_dir / "bench-idle.log", "w")
    try:
        for service, port in PORTS.items():
            procs[PACKAGES[service]] = subprocess.Popen(
                [sys.executable, "-m", PACKAGES[service]],
                env={
                    **env,
                    "TOUSU_HTTP_PORT": str(port),
                    "TOUSU_KAFKA_USERNAME": service,
                    "TOUSU_KAFKA_PASSWORD": password_of(service) or "",
                },
                stdout=logs,
                stderr=logs,
            )
        wait_ready(
            list(PORTS.values()),
            seconds=90,
            what="the stack",
            log="bench-idle.log",
        )
        yield procs
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)
        logs.close()


def measure_idle(env: dict[str, str], log_dir: Path, *, warmup: float = 10, window: float = 30):
    """Share of one core each part uses with no traffic, over ``window`` seconds."""
    with stack(env, log_dir) as procs:
        time.sleep(warmup)
        infra = _infrastructure_pids()
        groups = {name: [proc.pid] for name, proc in procs.items()} | infra
        before = {name: sum(_cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}
        time.sleep(window)
        after = {
            name: sum(_cpu_seconds(pid) for pid in pids if Path(f"/proc/{pid}").exists())
            for name, pids in groups.items()
        }
    shares = {name: (after[name] - before[name]) / window for name in groups}
    shares["total"] = sum(shares.values())
    return shares
