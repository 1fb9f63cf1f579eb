"""The idempotency rule of complaint submission, all of it (domain.md §1: one record per complaint).

- **Idempotency-Key given**: every repeat of the key with the same request answers with the
  first answer (HTTP 200, ``Idempotent-Replayed: true``, the same complaint id); the same key
  with another request is refused (409 naming ``Idempotency-Key``). Keys belong to the
  credential that sent them and do not expire.
- **No key** (a double click, a frontend retry): the same customer (phone or email),
  channel and description within ``duplicate_window_minutes`` replays the first complaint.
  The same text with other details (say another amount) is a new complaint, and once the
  window has passed the automatic key may be claimed afresh.

:func:`key_for` says which key guards a submission and :meth:`IdempotencyKey.replays` decides
what a repeat gets. ``service_layer/services.py: submit_complaint`` claims the key in the
transaction that stores the complaint, with the complaint's answer, so a replay never sees a
half-made record.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from tousu_shared.errors import Conflict

from tousu_intake.domain.commands import SubmitComplaint
from tousu_intake.domain.complaint import CustomerKeys

AUTOMATIC_PREFIX = "auto:"


@dataclass(frozen=True)
class IdempotencyKey:
    """The key a submission claims, with the fingerprint of its request."""

    credential: str
    key: str
    request_hash: str
    # Automatic keys guard only the duplicate window: a claim older than this is free.
    reusable_before: datetime | None = None

    @property
    def automatic(self) -> bool:
        """Whether intake made this key up (no Idempotency-Key was sent)."""
        return self.reusable_before is not None

    def replays(self, earlier_request_hash: str) -> bool:
        """Whether a submission that finds this key taken gets the earlier answer.

        False means the submission is a new complaint after all; a caller's own key with
        another request is refused.
        """
        if earlier_request_hash == self.request_hash:
            return True
        if self.automatic:
            return False  # same text, other details: a new complaint
        raise Conflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
            allowed_actions=["resend the original request", "send this one with a new key"],
        )


def request_hash(command: SubmitComplaint) -> str:
    """A fingerprint of everything the submission says (its key aside)."""
    payload = dataclasses.replace(command, idempotency_key=None)
    return hashlib.sha256(
        orjson.dumps(payload, default=str, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def key_for(
    command: SubmitComplaint,
    *,
    credential: str,
    customer: CustomerKeys,
    now: datetime,
    duplicate_window: timedelta,
) -> IdempotencyKey | None:
    """The key that guards this submission (None: no key and no duplicate window)."""
    fingerprint = request_hash(command)
    if command.idempotency_key is not None:
        return IdempotencyKey(credential, command.idempotency_key, fingerprint)
    if not duplicate_window:
        return None
    same_complaint = hashlib.sha256(
        b"|".join(
            [
                customer.phone or b"",
                customer.email or b"",
                command.details.channel.encode(),
                " ".join(command.details.description.split()).encode(),
            ]
        )
    ).hexdigest()
    return IdempotencyKey(
        credential,
        AUTOMATIC_PREFIX + same_complaint,
        fingerprint,
        reusable_before=now - duplicate_window,
    )
