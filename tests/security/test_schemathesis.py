"""Schemathesis over every service's OpenAPI (issue #13): no input is a server error.

Each service's app is the ``stack`` one (conftest.py: its bootstrap on the real Kafka and
Postgres) and its OpenAPI is loaded from the app itself. Every operation gets valid and invalid
requests (positive and negative generation), each sent with an admin key, and every
response must be no server error, of a documented status code, and shaped as documented.

``TOUSU_SCHEMATHESIS_EXAMPLES`` sets the examples per operation and mode (``make test``
keeps the default small; ``make security`` raises it and draws new cases each run). The
cases run per service are written to ``.data/security/schemathesis.json`` so they can be quoted.

Schemathesis runs every app in one event-loop thread of its own; so the setup here, which
runs on the test loop, disposes each engine's pool before handing the apps over.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from tousu_shared.runtime import Service

pytestmark = [pytest.mark.integration, pytest.mark.security]

EXAMPLES = int(os.environ.get("TOUSU_SCHEMATHESIS_EXAMPLES", "5"))
# ``make test`` replays the same cases every run (a red CI must be reproducible, not a draw);
# ``make security`` sets TOUSU_SCHEMATHESIS_RANDOM=1 to explore new ones each time.
RANDOM = os.environ.get("TOUSU_SCHEMATHESIS_RANDOM") == "1"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
SERVICES = ["intake", "routing", "sla-monitor", "feedback", "analytics"]
REPORT = Path(__file__).resolve().parents[2] / ".data" / "security" / "schemathesis.json"
# An event stream never ends by itself: it is read this long, then judged on what came.
STREAM_SECONDS = 1.0
REQUEST_SECONDS = 60.0


@pytest.fixture(scope="module")
async def apps(stack: dict[str, Service]) -> AsyncIterator[dict[str, Any]]:
    """The stack's apps, their connection pools emptied for schemathesis' loop."""
    for service in stack.values():
        # Connections belong to the loop that opened them; schemathesis' loop opens its own.
        await service.runtime.engine.dispose()
    yield {name: service.app for name, service in stack.items()}
    # Each app's shutdown (closing its runtime) runs on the loop its startup ran on.
    asgi.shutdown_lifespans()


def _is_stream(operation: Any) -> bool:
    """An event stream: documented as one, or named so (its media type may go undocumented)."""
    content = operation.definition.raw.get("responses", {}).get("200", {}).get("content", {})
    return "text/event-stream" in content or operation.path.endswith("/stream")


def _runner(
    operation: Any, mode: GenerationMode, key: str, count: Callable[[], None]
) -> Callable[[], None]:
    """One Hypothesis run of an operation in one generation mode."""
    timeout = STREAM_SECONDS if _is_stream(operation) else REQUEST_SECONDS

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        count()
        case.call_and_validate(
            headers={"Authorization": f"Bearer {key}"},
            checks=CHECKS,
            timeout=timeout,
        )

    return run


def _record(service: str, figures: dict[str, Any]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = orjson.loads(REPORT.read_bytes()) if REPORT.exists() else {}
    report[service] = figures
    REPORT.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


@pytest.mark.parametrize("service", SERVICES)
def test_no_input_is_a_server_error(service: str, apps: dict[str, Any], admin_key: str) -> None:
    # From the app itself: outside development /openapi.json is not served (TOUSU_API_DOCS).
    schema = schemathesis.openapi.from_dict(apps[service].openapi())
    schema.app = apps[service]
    cases = 0

    def count() -> None:
        nonlocal cases
        cases += 1

    operations = 0
    failures: list[str] = []
    seconds: dict[str, float] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        started = time.perf_counter()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _runner(operation, mode, admin_key, count)()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid request to make.
                if mode is not GenerationMode.NEGATIVE:
                    raise
            # Each operation's failure is reported, not just the first (schemathesis raises a
            # group of the failures one case found).
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
        seconds[operation.label] = round(time.perf_counter() - started, 2)
    _record(
        service,
        {
            "operations": operations,
            "cases": cases,
            "examples_per_operation_and_mode": EXAMPLES,
            "failing_operations": len(failures),
            "slowest_operations_seconds": dict(
                sorted(seconds.items(), key=lambda item: -item[1])[:5]
            ),
        },
    )
    print(f"schemathesis {service}: {cases} cases over {operations} operations")
    assert not failures, "\n\n".join(failures)
