"""Drill 8: the SLA monitor stopped across many deadlines, then started again.

For the drill the SLA monitor gets a policy set of short deadlines (published through its own
API and put back afterwards): ``record`` is met at once, ``first_response`` and ``confirm``
both fall due 20 s after a complaint arrives (together: one escalation, not two), ``resolve``
35 s after. The monitor is stopped for 40 s, so the deadlines of the complaints that came
before the stop fall due while it is down, and those that came during the stop have theirs
pass before it has even seen them. The check, once every deadline is past: each milestone
that fell due unmet has exactly one breach, one that was met has none, every breach of a
deadline that fell while the monitor was down says it is late, and each overdue case got
exactly one escalation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from drills.faults import Fault
from drills.stack import HTTP_PORTS, PG_PORT, Stack

SLA_URL = f"http://127.0.0.1:{HTTP_PORTS['sla-monitor']}"
STOPPED_FOR = 40.0
TARGETS = {"first_response": "PT20S", "confirm": "PT20S", "resolve": "PT35S"}
# A firing later than this after its due time is caught up (the monitor's late_after_seconds).
LATE_AFTER = dt.timedelta(seconds=5)


def short_policy(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The catch-all policy of ``current`` with the drill's short targets, and nothing else."""
    catch_all = current[-1]
    milestones = []
    for milestone in catch_all["milestones"]:
        if milestone["key"] == "record":
            milestones.append(milestone)
        elif milestone["key"] in TARGETS:
            milestones.append(
                milestone
                | {
                    "target": TARGETS[milestone["key"]],
                    "target_working_days": None,
                    "clock": "calendar",
                    "warn_fractions": [0.5],
                    "escalation_interval": None,
                }
            )
    return [catch_all | {"name": "drill-deadlines", "milestones": milestones}]


async def _publish(client: httpx.AsyncClient, policies: list[dict], comment: str) -> None:
    current = (await client.get(f"{SLA_URL}/v1/sla-policies")).raise_for_status().json()
    body = {"policies": policies, "based_on_version": current["version"], "comment": comment}
    (await client.put(f"{SLA_URL}/v1/sla-policies", json=body)).raise_for_status()


@asynccontextmanager
async def short_deadlines(stack: Stack) -> AsyncIterator[None]:
    """The drill's policy set while the drill runs; the one before it afterwards."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        before = (await client.get(f"{SLA_URL}/v1/sla-policies")).raise_for_status().json()
        await _publish(client, short_policy(before["policies"]), "drill 8: short deadlines")
        try:
            yield
        finally:
            await _publish(client, before["policies"], "drill 8 over: the policies before it")


async def stop_sla_monitor(stack: Stack, start: float) -> Fault:
    """Stop the SLA monitor (SIGTERM, as an operator would) for 40 s, then start it again."""
    struck = time.monotonic()
    stopped_at = dt.datetime.now(dt.UTC)
    await asyncio.to_thread(stack.supervisorctl, "stop", "sla-monitor")
    await asyncio.sleep(STOPPED_FOR)
    started_at = dt.datetime.now(dt.UTC)
    await asyncio.to_thread(stack.supervisorctl, "start", "sla-monitor")
    over = time.monotonic()

    async def evidence(stack: Stack, ids: list[uuid.UUID]) -> tuple[list[str], list[str]]:
        return await check_deadlines(ids, stopped_at, started_at)

    targets = ", ".join(f"{key} {target}" for key, target in TARGETS.items())
    return Fault(
        f"SLA monitor stopped at +{struck - start:.1f} s for {STOPPED_FOR:.0f} s, started "
        f"again at +{over - start:.1f} s (deadlines {targets})",
        struck,
        over,
        evidence=evidence,
    )


async def check_deadlines(
    ids: list[uuid.UUID], stopped_at: dt.datetime, started_at: dt.datetime, timeout: float = 120
) -> tuple[list[str], list[str]]:
    """Once every deadline of ``ids`` is past and fired: the breach and escalation ledger."""
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=PG_PORT,
        user="sla_monitor",
        password="sla_monitor",
        database="tousu",
        server_settings={"default_transaction_read_only": "on"},
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            # Due, unmet and not yet breached: the monitor still owes a firing.
            owed = await conn.fetchval(
                "SELECT count(*) FROM sla_monitor.sla_milestone WHERE case_id = ANY($1) "
                "AND due_at < now() - interval '2 seconds' AND met_at IS NULL "
                "AND breached_at IS NULL AND cancelled_at IS NULL",
                ids,
            )
            if owed == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        milestones = await conn.fetch(
            "SELECT case_id, milestone_key, due_at, met_at, breached_at "
            "FROM sla_monitor.sla_milestone WHERE case_id = ANY($1)",
            ids,
        )
        events = await conn.fetch(
            "SELECT complaint_id, event_type, milestone, (envelope->'data'->>'late')::boolean "
            "AS late, (envelope->'data'->>'repeat')::int AS repeat "
            "FROM sla_monitor.sla_event_log WHERE complaint_id = ANY($1) "
            "AND event_type IN ('SlaBreached', 'SlaEscalated')",
            ids,
        )
    finally:
        await conn.close()
    return _ledger(milestones, events, stopped_at, started_at, owed)


def _ledger(
    milestones: list[asyncpg.Record],
    events: list[asyncpg.Record],
    stopped_at: dt.datetime,
    started_at: dt.datetime,
    owed: int,
) -> tuple[list[str], list[str]]:
    breaches: dict[tuple[uuid.UUID, str], list[bool]] = {}
    escalations: dict[uuid.UUID, list[int]] = {}
    for event in events:
        if event["event_type"] == "SlaBreached":
            breaches.setdefault((event["complaint_id"], event["milestone"]), []).append(
                bool(event["late"])
            )
        else:
            escalations.setdefault(event["complaint_id"], []).append(event["repeat"] or 0)
    problems = []
    if owed:
        problems.append(f"{owed} deadlines past and unmet were never breached")
    due = met_in_time = breached_once = twice = met_breached = 0
    while_down = late_while_down = 0
    overdue_cases = set()
    for m in milestones:
        fired = breaches.get((m["case_id"], m["milestone_key"]), [])
        if m["met_at"] is not None and m["met_at"] <= m["due_at"]:
            met_in_time += 1
            met_breached += bool(fired)
            continue
        if m["due_at"] is None or m["due_at"] > dt.datetime.now(dt.UTC):
            continue
        due += 1
        overdue_cases.add(m["case_id"])
        breached_once += len(fired) == 1
        twice += len(fired) > 1
        if stopped_at <= m["due_at"] <= started_at - LATE_AFTER:
            while_down += 1
            late_while_down += sum(fired)
    one_escalation = sum(1 for case in overdue_cases if escalations.get(case) == [0])
    if breached_once != due:
        problems.append(f"{due - breached_once} of {due} due milestones without exactly one breach")
    if twice:
        problems.append(f"{twice} milestones breached more than once")
    if met_breached:
        problems.append(f"{met_breached} milestones met in time were breached")
    if late_while_down != while_down:
        problems.append(
            f"{while_down - late_while_down} breaches of deadlines that fell while the monitor "
            "was down do not say they are late"
        )
    if one_escalation != len(overdue_cases):
        problems.append(
            f"{len(overdue_cases) - one_escalation} overdue cases without exactly one "
            "escalation (first_response and confirm fall due together: one level, not two)"
        )
    if not while_down:
        problems.append("no deadline fell while the monitor was down: the drill proved nothing")
    lines = [
        f"   deadlines: {due} fell due unmet, {breached_once} breached exactly once, {twice} "
        f"more than once; {met_in_time} met in time, {met_breached} of them breached; "
        f"{while_down} fell while the monitor was down, {late_while_down} of those breaches "
        f"say late; {one_escalation} of {len(overdue_cases)} overdue cases escalated exactly "
        "once",
    ]
    return lines, problems
