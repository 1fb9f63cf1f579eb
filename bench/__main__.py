"""`make bench`: intake throughput and latency, end-to-end event latency, the pgbench ceiling,
the idle cost of the whole stack, SLA breach detection lag at 1,000,000 open cases, the
analytics KPI and monthly-report times over 1,000,000 generated complaints, and the whole
pipeline (burst drain rate, 201 → CaseRouted at a steady rate) on a stack of its own.
Prints figures; asserts nothing."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient
from tousu_intake.keys import new_key_env
from tousu_intake.settings import IntakeSettings
from tousu_shared.acls import grant_service_acls
from tousu_shared.auth import new_api_key
from tousu_shared.db import create_engine
from tousu_shared.kafka import admin_connection, ensure_topics, password_of
from tousu_shared.testing import delete_outbox_rows
from tousu_shared.topics import all_topic_names

import bench.pipeline
from bench.idle import measure_idle
from bench.intake_load import DESCRIPTIONS_FILE, end_to_end_sampler, summary
from bench.ready import wait_ready

REPO = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("BENCH_INTAKE_PORT", "18001"))
API_PROCESSES = int(os.environ.get("BENCH_API_PROCESSES", "2"))
STEP_SECONDS = int(os.environ.get("BENCH_STEP_SECONDS", "10"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,2,4,8,16,32,64").split(",")]
RUN = f"bench-{uuid.uuid4().hex[:8]}"
BREACH_OPEN_CASES = int(os.environ.get("BENCH_BREACH_OPEN_CASES", "1000000"))
ANALYTICS_COMPLAINTS = int(os.environ.get("BENCH_ANALYTICS_COMPLAINTS", "1000000"))


def ensure_tool(binary: str, package: str) -> str:
    """The path of a Debian tool, installing its package when missing."""
    path = shutil.which(binary)
    if path is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", package],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
        path = shutil.which(binary)
    assert path, f"{binary} is not available"
    return path


@contextmanager
def intake_processes(env: dict[str, str]):
    """API processes sharing one port (SO_REUSEPORT) plus one relay, as in production."""
    logs = open(REPO / ".data" / "logs" / "bench-intake.log", "w")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tousu_intake", "api"], env=env, stdout=logs, stderr=logs
        )
        for _ in range(API_PROCESSES)
    ]
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "tousu_intake", "relay"], env=env, stdout=logs, stderr=logs
        )
    )
    try:
        wait_ready([PORT], seconds=60, what="intake", log=".data/logs/bench-intake.log")
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        logs.close()


def wrk(key: str, connections: int, seconds: int, rate: int = 0) -> dict:
    """One step with wrk: closed loop over ``connections`` (or paced to ``rate``/s)."""
    out = subprocess.run(
        [
            ensure_tool("wrk", "wrk"),
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "bench" / "intake.lua"),
            f"http://127.0.0.1:{PORT}",
        ],
        env={
            **os.environ,
            "RATE": str(rate),
            "CONNECTIONS": str(connections),
            # A tag per call: every wrk run restarts its counter, and equal complaints within
            # minutes would be answered as duplicates instead of recorded.
            "RUN": f"{RUN}-{uuid.uuid4().hex[:6]}",
            "ADMIN_KEY": key,
            "DESCRIPTIONS": str(DESCRIPTIONS_FILE),
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["rate"] = result["created"] / result["seconds"]
    result["connections"] = connections
    return result


def pgbench_ceiling(settings: IntakeSettings, seconds: int) -> float:
    """Transactions/s of plain pgbench committing the same rows (complaint, contact, 2 outbox)."""
    pgbench = ensure_tool("pgbench", "postgresql-contrib")
    password = settings.db_password.get_secret_value() if settings.db_password else "intake"
    out = subprocess.run(
        [
            pgbench,
            "-h",
            settings.pg_host,
            "-p",
            str(settings.pg_port),
            "-U",
            "intake",
            "-n",
            "-c",
            "16",
            "-j",
            "2",
            "-M",
            "prepared",
            "-T",
            str(seconds),
            "-f",
            str(REPO / "bench" / "pgbench_intake.sql"),
            settings.pg_database,
        ],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tps = next(line for line in out.splitlines() if line.startswith("tps"))
    return float(tps.split("=")[1].split()[0])


async def clean_up(settings: IntakeSettings) -> None:
    """Remove what the bench wrote, so a development stack keeps only its own data."""
    engine = create_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "DELETE FROM intake.complaint WHERE created_by = 'pgbench' OR description LIKE :run"
            ),
            {"run": f"%({RUN}%"},
        )
        await conn.execute(
            sa.text("DELETE FROM intake.outbox WHERE topic = 'pgbench' OR topic LIKE :ns"),
            {"ns": f"{RUN}.%"},
        )
        await conn.execute(
            sa.text(
                "DELETE FROM intake.idempotency_key WHERE complaint_id NOT IN "
                "(SELECT id FROM intake.complaint)"
            )
        )
    await engine.dispose()
    # Every service's rows for this run's topics (the idle stack's too): a row left unsent
    # for a deleted topic would hold back its outbox lane.
    await delete_outbox_rows(f"{RUN}.")
    admin = AIOKafkaAdminClient(**admin_connection(settings.kafka_bootstrap))
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(f"{RUN}.")]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def analytics_figures() -> None:
    """Month KPIs and the monthly report over the analytics read model holding
    ANALYTICS_COMPLAINTS generated complaints (generated once, through the read model's own
    write path; skipped when it already holds as many)."""
    print(
        f"\nanalytics over {ANALYTICS_COMPLAINTS:,} complaints (generated unless present, "
        "about 10 min for 1,000,000):",
        flush=True,
    )
    out = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-m", "tousu_analytics.cli", "bench"]
        + ["--month", "2025-06", "--complaints", str(ANALYTICS_COMPLAINTS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = json.loads(out)
    print(
        f"  {figures['complaints']:,} complaints in the read model"
        f"{' (generated now)' if figures['generated'] else ''}; June 2025 KPIs by category "
        f"{figures['kpi_query_seconds']} s (runs {figures['kpi_query_runs']}), monthly report "
        f"with PDF {figures['monthly_report_seconds']} s (runs {figures['monthly_report_runs']})"
    )


def intake_under_test(settings: IntakeSettings) -> tuple[str, str, dict[str, str]]:
    """This run's topics (and their ACLs) and the environment of an intake started on them:
    the admin key, the topic namespace and the environment."""
    key = new_api_key()[1]
    namespace = f"{RUN}."
    kafka = admin_connection(settings.kafka_bootstrap)
    asyncio.run(
        ensure_topics(kafka, [(namespace + name, parts) for name, parts in all_topic_names()])
    )
    if "sasl_plain_username" in kafka:
        asyncio.run(grant_service_acls(kafka, namespace))
    env = {
        **os.environ,
        "TOUSU_KAFKA_USERNAME": "intake",
        "TOUSU_KAFKA_PASSWORD": password_of("intake") or "",
        "TOUSU_CREDENTIAL_SIGNING_KEY": secrets.token_hex(32),
        "TOUSU_HTTP_PORT": str(PORT),
        "TOUSU_BOOTSTRAP_ADMIN_KEY": key,
        "TOUSU_TOPIC_NAMESPACE": namespace,
        "TOUSU_LOG_LEVEL": "WARNING",
        # Its own random keys: the bench deletes what it wrote, so nothing outlives them.
        **new_key_env(),
    }
    return key, namespace, env


def main() -> None:
    """Run every measurement and print the figures."""
    settings = IntakeSettings()
    key, namespace, env = intake_under_test(settings)
    env["TOUSU_HTTP_REUSE_PORT"] = "true"
    kafka = admin_connection(settings.kafka_bootstrap)
    print(
        f"Tousu bench {RUN}: {os.cpu_count()} cores; intake = {API_PROCESSES} API processes "
        f"+ 1 relay; wrk posts distinct complaints, "
        f"{STEP_SECONDS} s per step",
        flush=True,
    )
    try:
        with intake_processes(env):
            wrk(key, 8, 3)  # warm-up: jieba, connection pools, prepared statements
            print("\nintake write path (closed loop: each connection sends as soon as answered):")
            print(
                f"  {'connections':>11} {'complaints/s':>13} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'max ms':>8} {'non-201':>8}"
            )
            steps = []
            for connections in CONCURRENCY:
                result = wrk(key, connections, STEP_SECONDS)
                steps.append(result)
                print(
                    f"  {connections:>11} {result['rate']:>13.0f} {result['p50_ms']:>8.1f} "
                    f"{result['p99_ms']:>8.1f} {result['max_ms']:>8.1f} "
                    f"{result['failed'] + result['errors']:>8}",
                    flush=True,
                )
            best = max(step["rate"] for step in steps)
            half = min(steps, key=lambda step: abs(step["rate"] - best / 2))
            print(
                f"\n  best {best:.0f}/s; at about half of it ({half['rate']:.0f}/s, "
                f"{half['connections']} connections): p50 {half['p50_ms']:.1f} ms, "
                f"p99 {half['p99_ms']:.1f} ms"
            )
            print(
                "\nend to end under that load: 201 → ComplaintClassified readable on Kafka",
                flush=True,
            )
            latencies, load = asyncio.run(
                end_to_end_sampler(
                    base_url=f"http://127.0.0.1:{PORT}",
                    key=key,
                    bootstrap=settings.kafka_bootstrap,
                    topic=f"{namespace}complaint.events",
                    seconds=STEP_SECONDS,
                    sample_rate=20,
                    run=RUN,
                    background=lambda: wrk(key, half["connections"], STEP_SECONDS),
                )
            )
            print(
                f"  {len(latencies)} samples: {summary(latencies)}; background {load['rate']:.0f}/s"
            )
        ceiling = pgbench_ceiling(settings, STEP_SECONDS)
        print(
            f"\nceiling: pgbench commits the same rows (complaint + contact + 2 outbox) at "
            f"{ceiling:.0f} tx/s (16 clients)"
        )
        print(f"  intake best sustained / pgbench = {best / ceiling:.0%}")
        print("\nclassifier (rules + trained model), CPU per complaint:", flush=True)
        classifier = subprocess.run(
            [sys.executable, "-m", "tousu_intake.classifier_cli", "bench"],
            capture_output=True,
            text=True,
            check=True,
        )
        print("  " + classifier.stdout.strip())
        print("\nidle: the whole stack (every service, all roles), no traffic, 30 s:", flush=True)
        # Topics of its own: on the intake runs' topics the consumers would spend the window
        # catching up on their complaints (and write cases for them).
        idle_namespace = f"{namespace}idle."
        asyncio.run(
            ensure_topics(
                kafka, [(idle_namespace + name, parts) for name, parts in all_topic_names()]
            )
        )
        if "sasl_plain_username" in kafka:
            asyncio.run(grant_service_acls(kafka, idle_namespace))
        idle = measure_idle(
            {**env, "TOUSU_TOPIC_NAMESPACE": idle_namespace}, REPO / ".data" / "logs"
        )
        for name, share in idle.items():
            print(f"  {name:>16} {share:>7.1%} of one core")
        sla_bench = REPO / "services" / "sla-monitor" / "bench_breach.py"
        if sla_bench.exists():
            sys.path.insert(0, str(sla_bench.parent))
            from bench_breach import measure_breach_latency  # noqa: PLC0415

            print(f"\nSLA breach detection at {BREACH_OPEN_CASES:,} open cases:", flush=True)
            lag = asyncio.run(measure_breach_latency(open_cases=BREACH_OPEN_CASES))
            print("  " + json.dumps(lag))
        analytics_figures()
    finally:
        asyncio.run(clean_up(settings))
    # Last, on a stack of its own (the drills' ports), so the figures above are unaffected.
    bench.pipeline.run()


if __name__ == "__main__":
    main()
