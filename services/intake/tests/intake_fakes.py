"""An in-memory intake unit of work, for unit tests of the use cases without Kafka or Postgres.

The repositories keep copies, as a database would: a change reaches them only through
``add`` or ``save``, and every load hands out a fresh object.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.adapters.repository import ComplaintFilter, EarlierClaim, KeysetPosition
from tousu_intake.bootstrap import build_cipher
from tousu_intake.domain.complaint import Complaint, Customer, CustomerKeys, Message
from tousu_intake.domain.idempotency import IdempotencyKey
from tousu_intake.service_layer.context import ClassifierCache, IntakeContext
from tousu_intake.service_layer.handlers import event_handlers
from tousu_intake.settings import IntakeSettings
from tousu_shared.auth import Principal
from tousu_shared.clock import Clock, FixedClock
from tousu_shared.contracts import Event
from tousu_shared.errors import Conflict
from tousu_shared.testing import TEST_KEYS, envelope_of
from tousu_shared.uow import FakeUnitOfWork


def _copy(complaint: Complaint) -> Complaint:
    """What a load returns: the stored fields only, without personal data or pending events."""
    stored = {
        f.name: copy.deepcopy(getattr(complaint, f.name))
        for f in dataclasses.fields(complaint)
        if f.init and f.name not in ("customer", "customer_keys")
    }
    return Complaint(**stored)


def _same_customer(stored: CustomerKeys, wanted: CustomerKeys) -> bool:
    return bool(
        (wanted.phone and stored.phone == wanted.phone)
        or (wanted.email and stored.email == wanted.email)
    )


class FakeComplaints:
    """Complaints, contacts and messages in dictionaries."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Complaint] = {}
        self.contacts: dict[uuid.UUID, tuple[Customer, CustomerKeys]] = {}
        self.stored_messages: list[Message] = []

    async def add(self, complaint: Complaint) -> None:
        assert complaint.customer is not None and complaint.customer_keys is not None
        self.rows[complaint.id] = _copy(complaint)
        self.contacts[complaint.id] = (complaint.customer, complaint.customer_keys)
        self.stored_messages += complaint.take_new_messages()

    async def save(self, complaint: Complaint) -> None:
        assert complaint.id in self.rows, "save() of a complaint that was never added"
        self.rows[complaint.id] = _copy(complaint)
        self.stored_messages += complaint.take_new_messages()
        if complaint.contact_erased:
            self.contacts[complaint.id] = (Customer(tier=complaint.customer_tier), CustomerKeys())
            self.stored_messages = [
                dataclasses.replace(
                    m,
                    body=None,
                    evidence=tuple(dataclasses.replace(e, description=None) for e in m.evidence),
                )
                if m.complaint_id == complaint.id
                else m
                for m in self.stored_messages
            ]

    async def get(self, complaint_id: uuid.UUID, *, for_update: bool = False) -> Complaint | None:
        stored = self.rows.get(complaint_id)
        return _copy(stored) if stored is not None else None

    async def by_tracking_code(self, tracking_code: str) -> Complaint | None:
        for stored in self.rows.values():
            if stored.tracking_code == tracking_code:
                return _copy(stored)
        return None

    async def of_customer(self, keys: CustomerKeys, *, for_update: bool = False) -> list[Complaint]:
        found = [
            self.rows[cid]
            for cid, (_, stored) in self.contacts.items()
            if _same_customer(stored, keys)
        ]
        return [_copy(c) for c in sorted(found, key=lambda c: c.received_at)]

    async def departments_of(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str | None]:
        return {i: self.rows[i].department for i in ids if i in self.rows}

    async def expired(self, *, received_before: datetime, limit: int) -> list[Complaint]:
        found = [
            c
            for c in self.rows.values()
            if c.received_at < received_before and c.anonymized_at is None
        ]
        return [_copy(c) for c in sorted(found, key=lambda c: (c.received_at, c.id))][:limit]

    async def recent_of_customer(self, keys: CustomerKeys, *, since: datetime) -> list[uuid.UUID]:
        found = [
            self.rows[cid]
            for cid, (_, stored) in self.contacts.items()
            if _same_customer(stored, keys) and self.rows[cid].received_at >= since
        ]
        return [c.id for c in sorted(found, key=lambda c: c.received_at, reverse=True)]

    async def find(
        self, filters: ComplaintFilter, *, after: KeysetPosition | None, limit: int
    ) -> list[Complaint]:
        def wanted(c: Complaint) -> bool:
            if any(getattr(c, name) != value for name, value in filters.equal_to().items()):
                return False
            if filters.received_from is not None and c.received_at < filters.received_from:
                return False
            if filters.received_to is not None and c.received_at >= filters.received_to:
                return False
            if filters.customer is not None and not _same_customer(
                self.contacts[c.id][1], filters.customer
            ):
                return False
            return after is None or (c.received_at, c.id) < after

        found = sorted(filter(wanted, self.rows.values()), key=lambda c: (c.received_at, c.id))
        return [_copy(c) for c in reversed(found)][:limit]

    async def contact(self, complaint: Complaint) -> Customer | None:
        stored = self.contacts.get(complaint.id)
        return stored[0] if stored is not None else None

    async def messages(self, complaint_id: uuid.UUID) -> list[Message]:
        return [m for m in self.stored_messages if m.complaint_id == complaint_id]


class FakeIdempotencyKeys:
    """Claimed keys with the time of their claim (the database's now())."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.claims: dict[tuple[str, str], tuple[str, dict[str, Any], datetime]] = {}

    async def claim(
        self, key: IdempotencyKey, complaint_id: uuid.UUID, answer: dict[str, Any]
    ) -> EarlierClaim | None:
        held = self.claims.get((key.credential, key.key))
        expired = (
            held is not None and key.reusable_before is not None and held[2] < key.reusable_before
        )
        if held is None or expired:
            self.claims[(key.credential, key.key)] = (key.request_hash, answer, self._clock())
            return None
        return EarlierClaim(held[0], held[1])


class FakeRuleSets:
    """Saved classifier rule sets."""

    def __init__(self) -> None:
        self.versions: dict[int, dict[str, Any]] = {}

    async def newest(self) -> tuple[int, dict[str, Any]] | None:
        if not self.versions:
            return None
        version = max(self.versions)
        return version, self.versions[version]

    async def add(self, rules: dict[str, Any], *, by: str, note: str | None) -> int:
        version = max(self.versions, default=0) + 1
        if version in self.versions:
            raise Conflict("another rule set was saved at the same time; retry", field="rules")
        self.versions[version] = rules
        return version


class FakePromotedModels:
    """No retrained model promoted: the shipped one classifies."""

    async def promoted_version(self) -> str | None:
        return None

    async def promoted_model(self) -> None:
        return None


class FakeIntakeUnitOfWork(FakeUnitOfWork):
    """Intake's unit of work in memory; one instance serves every use in a test."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.complaints = FakeComplaints()
        self.idempotency = FakeIdempotencyKeys(clock)
        self.rulesets = FakeRuleSets()
        self.models = FakePromotedModels()


def fake_context(clock: FixedClock, **settings: Any) -> tuple[IntakeContext, FakeIntakeUnitOfWork]:
    """An intake context on the fake unit of work, the run's test keys and the shipped
    classifier."""
    uow = FakeIntakeUnitOfWork(clock)
    intake_settings = IntakeSettings(**{**TEST_KEYS, **settings})
    cipher: FieldCipher = build_cipher(intake_settings)
    context = IntakeContext(
        settings=intake_settings,
        uow=lambda: uow,
        clock=clock,
        cipher=cipher,
        classifiers=ClassifierCache(lambda: uow, intake_settings.classifier_refresh_seconds),
    )
    return context, uow


def principal(role: str = "admin", department: str | None = None, **kwargs: Any) -> Principal:
    """A caller of a role; admin holds every scope the use cases check."""
    scopes = kwargs.pop("scopes", {"pii:read", "complaints:write", "complaints:read"})
    return Principal(
        key_id=kwargs.pop("key_id", f"key-{role}"),
        name=kwargs.pop("name", role),
        role=role,
        department=department,
        scopes=frozenset(scopes),
    )


async def deliver(uow: FakeIntakeUnitOfWork, *events: Event) -> None:
    """Apply events the way the consumer does: each in a unit of work it commits."""
    handlers = event_handlers()
    for event in events:
        async with uow:
            await handlers[event.event_type](uow, event, envelope_of(event))
            await uow.commit()
