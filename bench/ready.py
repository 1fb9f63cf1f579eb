"""Waiting for services the bench started to answer their readiness probe."""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx


def wait_ready(ports: Iterable[int], *, seconds: float, what: str, log: str) -> None:
    """Return once every port's ``/readyz`` answers 200; raise after ``seconds`` in all.

    A refused connection only means the process is still starting, so it is retried.
    """
    deadline = time.monotonic() + seconds
    for port in ports:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not become ready; see {log}")
            time.sleep(0.3)
