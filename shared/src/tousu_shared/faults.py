"""Fault points: where a fault drill makes this process die by SIGKILL at the worst moment.

Some failures only matter at one instant: an API process dying after its commit and before
its answer, a relay after the broker acknowledged and before it marked its rows sent, a
consumer after its transaction and before its offset commit. A signal sent from outside
lands there by luck, so the code names those instants and ``strike`` ends the process at
one when a drill has armed it (drills/faults.py).

A drill arms ``<point>`` of ``<service>`` by creating the file ``<fault_dir>/<service>.<point>``
(``TOUSU_FAULT_DIR``); the first process of that service to reach the point removes the file
and kills itself with SIGKILL, as ``kill -9`` would: no handler, no cleanup, no flush. One
file, one death. Without ``fault_dir`` (everywhere but the drills) a point does nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Literal

from tousu_shared.settings import ServiceSettings

FaultPoint = Literal["after-commit", "after-publish", "after-apply"]
# after-commit:  intake committed a submission, its answer not yet sent.
# after-publish: a relay's rows are acknowledged by the broker, not yet marked sent.
# after-apply:   a consumer committed its transaction(s), not yet its offsets.


def strike(settings: ServiceSettings, point: FaultPoint) -> None:
    """Die here by SIGKILL if a drill armed this point of this service; otherwise return."""
    if settings.fault_dir is None:
        return
    armed = settings.fault_dir / f"{settings.service_name}.{point}"
    try:
        # Removing it is the claim: of several processes at the point, one dies.
        armed.unlink()
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
