"""What the service layer needs from the outside world: channels and intake."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol


class DeliveryFailed(Exception):
    """A channel could not take the message; it is tried again later."""


@dataclass(frozen=True)
class Delivery:
    """One message to one customer (held in memory only: it carries the address)."""

    message_id: uuid.UUID
    complaint_id: uuid.UUID
    to: str = field(repr=False)
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)


class ChannelAdapter(Protocol):
    """Sends messages on one channel; returns the provider's reference."""

    async def send(self, delivery: Delivery) -> str: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Contact:
    """A customer's contact details as intake gives them (personal data: never stored,
    logged or published)."""

    channel: str
    tracking_code: str
    customer_tier: str
    name: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)
    preferred_contact: str | None = None


class IntakeUnavailable(Exception):
    """Intake did not answer as expected; the step is tried again later."""


class IntakeGateway(Protocol):
    """Intake's API as feedback uses it, with feedback's own service credential."""

    async def contact(self, contact_details_url: str) -> Contact: ...

    async def file_complaint(
        self, *, idempotency_key: str, contact: Contact, description: str
    ) -> uuid.UUID: ...

    async def close(self) -> None: ...
