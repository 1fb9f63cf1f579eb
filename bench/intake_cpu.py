"""Intake's CPU per accepted complaint (issue #12): one API process (no relay), wrk posting
distinct complaints at a fixed concurrency, and the API process's own CPU-seconds (from
/proc, user + system) divided by the complaints it accepted. On a machine shared with other
work, CPU per request is the robust figure; the rate is printed beside it.

``python -m bench.intake_cpu [--connections 16] [--seconds 10] [--profile out.svg]``
(environment from ``deploy/infra.sh env``; run it under ``flock -o /tmp/tousu-cpu.lock``).
``--profile`` records the API process with py-spy during the measured step (``.txt``: the
raw collapsed stacks, else a flame graph). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from tousu_intake.settings import IntakeSettings

from bench.__main__ import PORT, REPO, clean_up, intake_under_test, wrk
from bench.ready import wait_ready

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--native", action="store_true", help="py-spy --native (slows it)")
    args = parser.parse_args()
    settings = IntakeSettings()
    key, _, env = intake_under_test(settings)
    log_path = REPO / ".data" / "logs" / "bench-intake-cpu.log"
    with open(log_path, "w") as logs:
        api = subprocess.Popen(
            [sys.executable, "-m", "tousu_intake", "api"], env=env, stdout=logs, stderr=logs
        )
        try:
            wait_ready([PORT], seconds=60, what="intake", log=str(log_path))
            wrk(key, 8, 3)  # warm-up: jieba, pools, prepared statements
            for n in range(args.repeat):
                spy = None
                if args.profile is not None and n == args.repeat - 1:
                    spy = subprocess.Popen(
                        [
                            str(REPO / ".venv" / "bin" / "py-spy"),
                            "record",
                            *(["--native"] if args.native else []),
                            "-p",
                            str(api.pid),
                            "-d",
                            str(args.seconds),
                            "-o",
                            str(args.profile),
                            *(["--format", "raw"] if args.profile.suffix == ".txt" else []),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                before, started = cpu_seconds(api.pid), time.monotonic()
                result = wrk(key, args.connections, args.seconds)
                cpu, wall = cpu_seconds(api.pid) - before, time.monotonic() - started
                if spy is not None:
                    spy.wait(timeout=60)
                created = result["created"]
                print(
                    f"{args.connections} connections, {args.seconds} s: {created} accepted "
                    f"({result['rate']:.0f}/s, p50 {result['p50_ms']:.1f} ms, "
                    f"p99 {result['p99_ms']:.1f} ms, non-201 {result['failed']}); "
                    f"API CPU {cpu:.2f} s = {1000 * cpu / max(created, 1):.2f} ms per complaint "
                    f"({cpu / wall:.0%} of one core)",
                    flush=True,
                )
        finally:
            api.terminate()
            api.wait(timeout=20)
            asyncio.run(clean_up(settings))


if __name__ == "__main__":
    main()
