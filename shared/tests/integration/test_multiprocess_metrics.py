"""/metrics of a service run in several processes answers for all of them.

``make run`` starts intake's API in several processes sharing one port (SO_REUSEPORT) and
gives them one PROMETHEUS_MULTIPROC_DIR (deploy/run-services.sh); a scrape reaches whichever
process the kernel picks, and must see the whole service's counts, not that process's. Real
``python -m tousu_intake api`` processes here, as run-services.sh starts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from tousu_shared.auth import new_api_key
from tousu_shared.metrics import MULTIPROC_DIR_VARIABLE
from tousu_shared.testing import TEST_KEYS

ADMIN_KEY = new_api_key()[1]
STARTED = "Application startup complete."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(metrics_dir: Path | None, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != MULTIPROC_DIR_VARIABLE}
    if metrics_dir is not None:
        env[MULTIPROC_DIR_VARIABLE] = str(metrics_dir)
    return {**env, **extra}


@contextlib.contextmanager
def intake_apis(
    tmp_path: Path, port: int, count: int, metrics_dir: Path | None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` intake API processes on ``port`` (shared, as make run shares it), started."""
    env = environment(
        metrics_dir,
        TOUSU_HTTP_PORT=str(port),
        TOUSU_HTTP_REUSE_PORT="true" if count > 1 else "false",
        TOUSU_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        TOUSU_ENCRYPTION_KEYS=json.dumps(TEST_KEYS["encryption_keys"]),
        TOUSU_BLIND_INDEX_KEY=TEST_KEYS["blind_index_key"],
        TOUSU_LOG_LEVEL="INFO",
    )
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"intake-api-{n}.log" for n in range(count)]
    try:
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "tousu_intake", "api"],
                        env=env,
                        cwd=tmp_path,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for process, log in zip(processes, logs, strict=True):
            deadline = time.monotonic() + 90
            while STARTED not in log.read_text(errors="replace"):
                assert process.poll() is None, f"intake api exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"intake api not up:\n{log.read_text()}"
                time.sleep(0.1)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def get(port: int, path: str, **headers: str) -> httpx.Response:
    """One request on a connection of its own (the kernel picks the process per connection);
    retried while the port is not listening yet."""
    for attempt in range(100):
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=30)
        except httpx.ConnectError:
            if attempt == 99:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def scrape(port: int) -> str:
    response = get(port, "/metrics", authorization=f"Bearer {ADMIN_KEY}")
    assert response.status_code == 200, response.text
    return response.text


def sample(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` with these labels (0 when there are none)."""
    return sum(
        found.value
        for family in text_string_to_metric_families(exposition)
        for found in family.samples
        if found.name == name and labels.items() <= found.labels.items()
    )


def not_found_count(exposition: str) -> float:
    # The requests this test counts: GETs of a page no service has (nothing else answers 404).
    return sample(exposition, "tousu_http_request_seconds_count", method="GET", status="404")


def served_by(metrics_dir: Path, pid: int, scratch: Path) -> float:
    """What one process counted: its own file alone, read the way /metrics reads them all."""
    own = scratch / str(pid)
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir(parents=True)
    file = metrics_dir / f"histogram_{pid}.db"
    if not file.exists():
        return 0.0
    shutil.copy(file, own)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(own))
    return not_found_count(generate_latest(registry).decode())


GAUGE_HOLDER = """
import signal, sys
from tousu_shared.inbox import STALLED
from tousu_shared.metrics import process_exiting
STALLED.labels("intake").set(int(sys.argv[1]))
if sys.argv[2] == "crash":
    signal.raise_signal(signal.SIGKILL)
print("set", flush=True)
sys.stdin.read()
process_exiting()
"""


def stalled(exposition: str) -> float:
    return sample(exposition, "tousu_consumer_stalled_partitions", service="intake")


def test_every_api_process_of_a_service_answers_for_all_of_them(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A consumer that counted 4 stalled partitions died by kill -9 (no goodbye) before this run.
    crashed = subprocess.run(
        [sys.executable, "-c", GAUGE_HOLDER, "4", "crash"],
        env=environment(metrics_dir),
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    assert len(list(metrics_dir.glob("gauge_livesum_*.db"))) == 1

    port = free_port()
    with intake_apis(tmp_path, port, 2, metrics_dir) as (first, second):
        # Fresh connections until the kernel has given each process some of them.
        sent = 0
        while min(served_by(metrics_dir, p.pid, tmp_path / "one") for p in (first, second)) == 0:
            assert sent < 400, "the kernel sent every connection to one process"
            for _ in range(10):
                assert get(port, "/no-such-page").status_code == 404
                sent += 1
        own = [served_by(metrics_dir, p.pid, tmp_path / "one") for p in (first, second)]
        assert sum(own) == sent and min(own) > 0
        # Every scrape, whichever process answers it, counts the requests of both.
        for _ in range(10):
            exposition = scrape(port)
            assert not_found_count(exposition) == sent
            # The dead consumer's gauge was dropped when these processes started.
            assert stalled(exposition) == 0
        assert not list(metrics_dir.glob("gauge_live*"))

        # A live process's gauge counts while it runs, and stops counting when it ends.
        holder = subprocess.Popen(
            [sys.executable, "-c", GAUGE_HOLDER, "1", "hold"],
            env=environment(metrics_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == b"set\n"
        assert stalled(scrape(port)) == 1
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        assert stalled(scrape(port)) == 0

        # One API process stops (supervisord's TERM): what it counted still counts.
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        for _ in range(5):
            assert not_found_count(scrape(port)) == sent


def test_a_single_process_without_the_directory_serves_its_own_metrics(tmp_path):
    port = free_port()
    with intake_apis(tmp_path, port, 1, None):
        for _ in range(3):
            assert get(port, "/no-such-page").status_code == 404
        exposition = scrape(port)
        assert not_found_count(exposition) == 3
        # The process's own registry, with its default collectors, as before.
        assert "process_cpu_seconds_total" in exposition
        assert "python_info" in exposition
    assert not list(tmp_path.glob("**/*.db"))
