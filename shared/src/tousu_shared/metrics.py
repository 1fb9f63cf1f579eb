"""A service's Prometheus metrics, whether it runs in one process or in several.

A service whose roles run in several processes (``make run``: intake's API processes sharing
one port, a relay apart) is given a directory of its own in ``PROMETHEUS_MULTIPROC_DIR``,
emptied before its processes start: prometheus-client's multiprocess mode then keeps every
process's metrics in files there, and ``/metrics`` of any of them answers for the whole
service (counters and histograms summed; the live gauges, ``multiprocess_mode="livesum"``,
over the processes still running). Without the variable (one process, the tests' in-process
apps) ``/metrics`` answers from this process's registry as before.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory this service's processes share their metrics in, if it has one."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


def exposition() -> bytes:
    """The metrics in Prometheus' text format: of every process of the service when they
    share a directory, else of this process."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


def process_started() -> None:
    """Forget the live gauges of processes that ended without saying so (``kill -9``, a
    crash): a restarted process has a new pid, and the old one's files would count forever."""
    path = multiprocess_dir()
    if path is None:
        return
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            # Processes starting together sweep together: the file may be gone already.
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(int(pid), path)


def process_exiting() -> None:
    """This process's live gauges stop counting (its counters and histograms stay)."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(os.getpid(), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has that pid
        return True
    return True
