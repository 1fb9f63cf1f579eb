"""Fault points (tousu_shared.faults): a drill's armed point kills the process once, by SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

# A process that reaches the after-publish point twice, printing before and after each.
PROGRAM = """
import sys
from tousu_shared.faults import strike
from tousu_shared.settings import ServiceSettings

settings = ServiceSettings(service_name="routing", http_port=1, fault_dir=sys.argv[1] or None)
for n in (1, 2):
    print("reached", n, flush=True)
    strike(settings, "after-publish")
    print("passed", n, flush=True)
"""


def _run(fault_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, fault_dir], capture_output=True, text=True, timeout=60
    )


def test_an_armed_point_kills_the_process_by_sigkill_and_is_disarmed(tmp_path: Path) -> None:
    armed = tmp_path / "routing.after-publish"
    armed.touch()
    result = _run(str(tmp_path))
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split("\n") == ["reached 1", ""]
    assert not armed.exists()
    # Disarmed by that death: the next process passes the point.
    again = _run(str(tmp_path))
    assert again.returncode == 0
    assert again.stdout.split() == ["reached", "1", "passed", "1", "reached", "2", "passed", "2"]


def test_a_point_of_another_service_or_another_point_does_not_fire(tmp_path: Path) -> None:
    (tmp_path / "intake.after-publish").touch()
    (tmp_path / "routing.after-apply").touch()
    result = _run(str(tmp_path))
    assert result.returncode == 0
    assert (tmp_path / "intake.after-publish").exists()
    assert (tmp_path / "routing.after-apply").exists()


def test_without_a_fault_dir_no_point_fires(tmp_path: Path) -> None:
    assert _run("").returncode == 0
