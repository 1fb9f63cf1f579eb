"""The reduced set of fault drills (issue #14: drills 1, 3, 5, 9 and 11 at small scale).

`make drills` runs the full set at 20 complaints/s for 30 s each; here each drill offers 100
complaints over 10 s on the drills' own stack (Postgres 15432, Kafka 19092, services
18201-18215, data in .data/drills/), so the shared test infrastructure is never broken. The
drills check their ledger themselves (every acknowledged complaint once in intake with one
case and one SLA record, nothing unacknowledged, keys bound to their ids, inboxes without
repeats, no valid event dead-lettered, and each fault's own evidence) and exit 1 on any
failed check; the output is shown when one fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.drills]

REPO = Path(__file__).resolve().parents[2]
REDUCED = ("intake-commit", "consumer", "postgres", "poison", "twice")


def test_the_reduced_drills_lose_nothing_and_double_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "drills", *REDUCED, "--rate", "10", "--seconds", "10"]
        + ["--fault-at", "3"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    shown = run.stdout[-12000:] + run.stderr[-4000:]
    assert run.returncode == 0, shown
    summary = run.stdout.split("\nsummary:\n", 1)[1]
    rows = {
        match.group(1): match.group(2, 3, 4, 5)
        for match in re.finditer(
            r"^\s+(\S+)\s.*?(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(PASS|FAIL)", summary, re.M
        )
    }
    assert set(rows) == set(REDUCED), shown
    for drill, (acknowledged, present, lost, doubled) in rows.items():
        assert int(acknowledged) > 0 and acknowledged == present, (drill, shown)
        assert (lost, doubled) == ("0", "0"), (drill, shown)
