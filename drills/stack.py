"""The drills' own stack: a Postgres cluster, a Kafka broker and the five services, all on
alternate ports with their data under .data/drills/, so killing any of them never touches the
development and test infrastructure (5432, 9092)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import SQLAlchemyError
from tousu_shared.kafka import admin_connection
from tousu_shared.topics import TOPICS_BY_NAME, consumed_by

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / ".data" / "drills"
PG_PORT = int(os.environ.get("DRILL_PG_PORT", "15432"))
KAFKA_PORT = int(os.environ.get("DRILL_KAFKA_PORT", "19092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("DRILL_KAFKA_CONTROLLER_PORT", "19093"))
SERVICES = ("intake", "routing", "sla-monitor", "feedback", "analytics")
SCHEMAS = {"intake": "intake", "routing": "routing", "sla-monitor": "sla_monitor"}
SCHEMAS |= {"feedback": "feedback", "analytics": "analytics"}
# deploy/service-package.sh's mapping: sla-monitor → tousu_sla, the others tousu_<name>.
PACKAGES = {name: "tousu_" + name.split("-")[0] for name in SERVICES}
HTTP_PORTS = dict(zip(SERVICES, range(18201, 18206), strict=True))
# The second instance of each service (run-services.sh's SECOND_INSTANCES): its API 10 up.
SECOND_PORTS = {service: port + 10 for service, port in HTTP_PORTS.items()}
SECOND = {service: f"{service}-2" for service in SERVICES}
FAULT_DIR = DATA_DIR / "faults"
NETNS = "tousu-drill"
MAIL_PORT = 18225
PYTHON = str(REPO / ".venv" / "bin" / "python")


# A fault armed for a service must be reached by the process a drill watches, so the drills
# run each service as one process; make run splits intake's API and intake's and routing's
# relays into processes of their own (run-services.sh). bench.pipeline drops these.
DRILL_TOPOLOGY = {"INTAKE_API_PROCESSES": "1", "RELAYS_APART": ""}


def drill_env() -> dict[str, str]:
    """The environment of every drill subprocess: the drill infrastructure's ports and files,
    never the shared ones a caller (make) exported."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TOUSU_", "PG_", "KAFKA_", "INTAKE_"))
    }
    env |= {
        # infra.sh refuses to reset a data dir equal to $HOME, so it needs one.
        "HOME": os.environ.get("HOME") or str(Path.home()),
        # infra.sh runs Postgres as its OS user with runuser (in /usr/sbin).
        "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
        "TOUSU_DATA_DIR": str(DATA_DIR),
        "PG_PORT": str(PG_PORT),
        "KAFKA_PORT": str(KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
        "TOUSU_PG_PORT": str(PG_PORT),
        "TOUSU_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
        "TOUSU_KAFKA_PASSWORDS_FILE": str(DATA_DIR / "kafka-passwords"),
        "INTAKE_KEYS_FILE": str(DATA_DIR / "intake-keys.env"),
        "MAIL_SINK_PORT": str(MAIL_PORT),
        # A second instance of every service, defined but stopped until a drill starts it.
        "SECOND_INSTANCES": "stopped",
        # The network namespace of the network-fault drill's instance (drills/netfault.py).
        "DRILL_NETNS": NETNS,
        # Where a drill arms a service's fault points (tousu_shared.faults).
        "TOUSU_FAULT_DIR": str(FAULT_DIR),
        **DRILL_TOPOLOGY,
        "TOUSU_API_DOCS": "false",
        # run-services.sh returns once every /readyz answers instead of waiting on supervisord.
        "CI": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for service, port in HTTP_PORTS.items():
        env[f"{service.upper().replace('-', '_')}_PORT"] = str(port)
    return env


class Stack:
    """Starts, inspects and breaks the drill infrastructure and services."""

    def __init__(self) -> None:
        self.env = drill_env()
        self.admin_key = ""
        # The services whose second instance runs (their APIs are then checked as well).
        self.doubled: set[str] = set()
        # Other APIs a drill started (e.g. the network-fault drill's instance).
        self.extra_ports: set[int] = set()

    # ------------------------------------------------------------------ lifecycle

    def _run(self, *args: str, quiet: bool = True) -> str:
        out = subprocess.run(
            list(args),
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
            raise RuntimeError(f"{' '.join(args)} failed ({out.returncode})")
        if not quiet:
            sys.stdout.write(out.stdout)
        return out.stdout

    def infra(self, command: str) -> str:
        """``deploy/infra.sh <command>`` for the drill data dir and ports."""
        return self._run("bash", "deploy/infra.sh", command)

    def set_up(self) -> None:
        """A fresh drill infrastructure: reset, start, migrate, create topics, start services."""
        self.stop_services()
        self.infra("reset")
        FAULT_DIR.mkdir(parents=True, exist_ok=True)
        self.infra("up")
        keys_file = self.env["INTAKE_KEYS_FILE"]
        self._run(PYTHON, "-m", "tousu_intake.keys", "dev-file", "--file", keys_file)
        keys = self._intake_keys()
        for service in SERVICES:
            subprocess.run(
                [PYTHON, "-m", PACKAGES[service], "migrate"],
                cwd=REPO,
                env=self.env | keys,
                check=True,
                capture_output=True,
            )
        self.infra("harden")
        self._run(PYTHON, "-m", "tousu_shared.cli", "create-topics")
        self.start_services()

    def _intake_keys(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        for line in Path(self.env["INTAKE_KEYS_FILE"]).read_text().splitlines():
            match = re.match(r"^(?:export\s+)?([A-Z0-9_]+)=['\"]?(.*?)['\"]?$", line.strip())
            if match:
                keys[match.group(1)] = match.group(2)
        return keys

    def start_services(self) -> None:
        """The five services under supervisord, as `make run` starts them."""
        # To a file, not a pipe: supervisord inherits the script's output and outlives it.
        with open(DATA_DIR / "logs" / "run-services.log", "w") as log:
            subprocess.run(
                ["bash", "deploy/run-services.sh"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        self.admin_key = (DATA_DIR / "dev-admin-key").read_text().strip()

    def stop_services(self) -> None:
        self._run("bash", "deploy/run-services.sh", "stop")

    def tear_down(self) -> None:
        self.stop_services()
        self.infra("down")

    # ------------------------------------------------------------------ processes

    def supervisorctl(self, *args: str) -> str:
        conf = DATA_DIR / "run" / "supervisord.conf"
        return subprocess.run(
            [str(REPO / ".venv" / "bin" / "supervisorctl"), "-c", str(conf), *args],
            capture_output=True,
            text=True,
        ).stdout

    def service_pid(self, service: str) -> int:
        """The process of a supervised program (a service's first instance, ``routing-ns``);
        0 while it is down."""
        try:
            return int(self.supervisorctl("pid", service).strip())
        except ValueError:
            return 0

    def start_second(self, services: tuple[str, ...] = SERVICES) -> None:
        """Start the second instance of ``services``: each role a process of its own."""
        self.supervisorctl("start", *(f"{SECOND[s]}:*" for s in services))
        self.doubled |= set(services)

    def stop_second(self, services: tuple[str, ...] = SERVICES) -> None:
        """Stop second instances as an orchestrator scales down: SIGTERM, then SIGKILL after
        supervisord's stopwaitsecs."""
        self.doubled -= set(services)
        self.supervisorctl("stop", *(f"{SECOND[s]}:*" for s in services))

    def intake_urls(self) -> list[str]:
        """Intake's APIs: the first instance's, and the second's while it runs."""
        ports = [HTTP_PORTS["intake"]] + (
            [SECOND_PORTS["intake"]] if "intake" in self.doubled else []
        )
        return [f"http://127.0.0.1:{port}" for port in ports]

    def group_pids(self, group: str) -> dict[str, int]:
        """The running processes of a supervisord group (a second instance's roles)."""
        pids = {}
        for line in self.supervisorctl("status", f"{group}:*").splitlines():
            match = re.match(r"^(\S+)\s+RUNNING\s+pid (\d+)", line)
            if match:
                pids[match.group(1)] = int(match.group(2))
        return pids

    def infra_pid(self, what: str) -> int:
        """The pid of the drill's postmaster or broker, as infra.sh reports it."""
        out = subprocess.run(
            ["bash", "deploy/infra.sh", "status"],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
        ).stdout
        match = re.search(rf"{what}: running, pid (\d+)", out)
        if not match:
            raise RuntimeError(f"{what} of the drill is not running: {out}")
        return int(match.group(1))

    @staticmethod
    def kill_group(pid: int) -> None:
        """SIGKILL a process and every process of its group (a postmaster with its backends)."""
        pgid = os.getpgid(pid)
        if pgid == os.getpgid(0):
            os.kill(pid, signal.SIGKILL)  # never our own group
        else:
            os.killpg(pgid, signal.SIGKILL)

    # ------------------------------------------------------------------ observation

    async def all_ready(self, client: httpx.AsyncClient) -> bool:
        ports = [*HTTP_PORTS.values(), *(SECOND_PORTS[s] for s in self.doubled), *self.extra_ports]
        for port in ports:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=3)
            except httpx.HTTPError:
                return False
            if response.status_code != 200:
                return False
        return True

    async def consumer_lag(self) -> dict[str, int]:
        """Per service, records its consumer group has not yet committed, over its topics."""
        kafka = admin_connection(self.env["TOUSU_KAFKA_BOOTSTRAP"])
        admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=5000)
        reader = AIOKafkaConsumer(**kafka, request_timeout_ms=5000)
        await admin.start()
        await reader.start()
        try:
            lag = dict.fromkeys(SERVICES, 0)
            for service in SERVICES:
                topics = list(dict.fromkeys([*consumed_by(service), "platform.credentials"]))
                partitions = [
                    TopicPartition(topic, p)
                    for topic in topics
                    # The registry's partition counts: a consumer without a subscription
                    # knows no topic's partitions.
                    for p in range(TOPICS_BY_NAME[topic].partitions)
                ]
                committed = await admin.list_consumer_group_offsets(f"tousu-{service}")
                ends = await reader.end_offsets(partitions)
                for tp in partitions:
                    done = committed[tp].offset if tp in committed else 0
                    lag[service] += max(0, ends[tp] - max(done, 0))
            return lag
        finally:
            await reader.stop()
            await admin.close()

    async def consumed(self, outcome: str) -> dict[str, float]:
        """Per service, the events its consumer counted with ``outcome`` (e.g. ``duplicate``:
        a redelivery the inbox turned into a no-op) since that process started."""
        totals: dict[str, float] = {}
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        async with httpx.AsyncClient(headers=headers, timeout=5) as client:
            for service, port in HTTP_PORTS.items():
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                response.raise_for_status()
                totals[service] = sum(
                    sample.value
                    for family in text_string_to_metric_families(response.text)
                    if family.name == "tousu_events_consumed"
                    for sample in family.samples
                    if sample.name.endswith("_total") and sample.labels.get("outcome") == outcome
                )
        return totals

    async def wait_recovered(self, since: float, timeout: float, backlog) -> Recovery:
        """Until every /readyz is ready, the consumers have no lag and ``backlog()`` (unsent
        outbox rows and ledger gaps) is 0, or ``timeout`` passed; also when each service's
        consumer last had lag (which part of the pipeline the drain waited for)."""
        recovery = Recovery()
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    ready = await self.all_ready(client)
                    gaps = await backlog()
                    lag = await self.consumer_lag()
                except (OSError, KafkaError, SQLAlchemyError, httpx.HTTPError):
                    await asyncio.sleep(1)  # the broker or database may still be coming back
                    continue
                now = time.monotonic() - since
                for service, behind in lag.items():
                    if behind:
                        recovery.lagging[service] = (now, behind)
                if ready and gaps == 0 and not any(lag.values()):
                    recovery.after = now
                    return recovery
                await asyncio.sleep(1)
        return recovery


@dataclass
class Recovery:
    """How a drill's stack came back: seconds from the fault until quiescent (None: never),
    and per service the last moment its consumer still had lag, with that lag."""

    after: float | None = None
    lagging: dict[str, tuple[float, int]] = field(default_factory=dict)

    def line(self) -> str:
        if not self.lagging:
            return "no consumer had lag"
        last = sorted(self.lagging.items(), key=lambda item: item[1][0])
        return "consumers last behind: " + ", ".join(
            f"{service} +{at:.0f} s ({behind} records)" for service, (at, behind) in last
        )
