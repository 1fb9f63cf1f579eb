"""The customer's rights over their data (PIPL) and the records' retention period.

- Erasure: a customer's deletion request anonymises every complaint of theirs.
- Retention: complaints older than the retention period are anonymised the same way.
- Export: everything intake holds about one customer.

Erasure and retention share one path (:func:`_erase`, which calls ``Complaint.anonymize``):
what goes and what stays is decided once. Both keep the statistics.

Intake is the only service that holds a customer's contact details. The others key their
records by complaint id and hold no contact data: routing the case (department, handler,
every state change with who, when and why, the solution and remedies offered), the SLA
monitor its deadlines and pauses, feedback the callback surveys and the customer's answers,
analytics counts. An export names where each of those parts is fetched
(:data:`HELD_ELSEWHERE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tousu_shared.auth import Principal, system_principal
from tousu_shared.errors import NotFound
from tousu_shared.runtime import Worker

from tousu_intake.domain.commands import AnonymizeCustomer, ExportCustomer
from tousu_intake.domain.complaint import (
    ANONYMISED_DESCRIPTION,
    PII_FIELDS,
    RETENTION_DESCRIPTION,
    Complaint,
    Message,
)
from tousu_intake.domain.model import retention_cutoff
from tousu_intake.service_layer.context import IntakeContext
from tousu_intake.service_layer.services import ComplaintView, view_of
from tousu_intake.service_layer.unit_of_work import IntakeWork

log = logging.getLogger(__name__)

# The retention worker, as the audit log and events name it (actor ``system:retention``).
RETENTION = system_principal("retention")


@dataclass(frozen=True)
class Erasure:
    """What an erasure touched: every complaint is counted, only those the caller may see
    are named (``Principal.may_see_department``; a privacy officer or admin sees all)."""

    complaint_ids: list[uuid.UUID]
    total: int


@dataclass(frozen=True)
class RecordElsewhere:
    """A part of a complaint's record another service holds, and where to fetch it."""

    service: str
    holds: str
    href: str | None


@dataclass(frozen=True)
class ExportedComplaint:
    """One complaint as the customer gets it: every field, the clear contact, the messages,
    and where the rest of its record is."""

    view: ComplaintView
    status_changed_at: datetime
    messages: list[Message]
    elsewhere: list[RecordElsewhere]


@dataclass(frozen=True)
class CustomerExport:
    """Everything intake holds about one customer."""

    exported_at: datetime
    complaints: list[ExportedComplaint]


def held_elsewhere(complaint_id: uuid.UUID) -> list[RecordElsewhere]:
    """The parts of a complaint's record other services hold (paths on those services)."""
    return [
        RecordElsewhere(
            "routing",
            "the case: department, handler, every state change with who, when and why, "
            "the solution and remedies offered",
            f"/v1/cases?complaint_id={complaint_id}",
        ),
        RecordElsewhere(
            "sla-monitor",
            "deadlines, pauses and breaches of the case",
            "/v1/cases/{case_id}/sla (case_id: the routing case's id)",
        ),
        RecordElsewhere(
            "feedback",
            "callback surveys and the customer's answers",
            f"/v1/surveys?complaint_id={complaint_id}",
        ),
        RecordElsewhere("analytics", "statistics only, no personal data", None),
    ]


def _customer_field(phone: str | None) -> str:
    return "phone" if phone else "email"


async def _erase(
    uow: IntakeWork,
    complaints: Sequence[Complaint],
    *,
    principal: Principal,
    action: str,
    reason: str,
    at: datetime,
    description: str,
) -> None:
    """The one erasure path: anonymise, store, announce and audit each complaint (locked)."""
    for complaint in complaints:
        complaint.anonymize(at=at, description=description)
        await uow.complaints.save(complaint)
        uow.track(complaint)
        uow.audit(
            principal,
            action,
            "complaint",
            str(complaint.id),
            complaint_id=complaint.id,
            details={"reason": reason},
        )


async def anonymize_customer(
    command: AnonymizeCustomer, *, principal: Principal, context: IntakeContext
) -> Erasure:
    """Erase a customer's personal data from every complaint, keeping the statistics.

    The API admits only holders of pii:erase; the reason is audited with each complaint.
    """
    keys = context.cipher.customer_keys(phone=command.phone, email=command.email)
    async with context.uow() as uow:
        complaints = await uow.complaints.of_customer(keys, for_update=True)
        if not complaints:
            raise NotFound("no complaint of this customer", field=_customer_field(command.phone))
        await _erase(
            uow,
            complaints,
            principal=principal,
            action="customer.anonymize",
            reason=command.reason,
            at=context.clock(),
            description=ANONYMISED_DESCRIPTION,
        )
        await uow.commit()
    visible = [c.id for c in complaints if principal.may_see_department(c.department)]
    return Erasure(visible, len(complaints))


async def export_customer(
    command: ExportCustomer, *, principal: Principal, context: IntakeContext
) -> CustomerExport:
    """Everything intake holds about a customer, the contact in clear; each complaint's read
    is audited with the reason. Only complaints the caller may see are exported."""
    keys = context.cipher.customer_keys(phone=command.phone, email=command.email)
    async with context.uow() as uow:
        found = await uow.complaints.of_customer(keys)
        complaints = [c for c in found if principal.may_see_department(c.department)]
        if not complaints:
            raise NotFound("no complaint of this customer", field=_customer_field(command.phone))
        exported = []
        for complaint in complaints:
            contact = await uow.complaints.contact(complaint)
            view = await view_of(uow, principal, complaint, contact=contact, contact_masked=False)
            messages = await uow.complaints.messages(complaint.id)
            exported.append(
                ExportedComplaint(
                    view, complaint.status_changed_at, messages, held_elsewhere(complaint.id)
                )
            )
            uow.audit(
                principal,
                "customer.export",
                "complaint",
                str(complaint.id),
                complaint_id=complaint.id,
                details={"reason": command.reason, "fields": list(PII_FIELDS)},
            )
        await uow.commit()
    return CustomerExport(context.clock(), exported)


# -- retention ---------------------------------------------------------------------------------


async def retention_batch(context: IntakeContext) -> int:
    """Anonymise one batch of complaints past the retention period; how many (0: none left).

    Idempotent: an anonymised complaint is never taken again, and rows another transaction
    holds are skipped for a later round.
    """
    settings = context.settings
    now = context.clock()
    async with context.uow() as uow:
        complaints = await uow.complaints.expired(
            received_before=retention_cutoff(now, settings.retention_years),
            limit=settings.retention_batch_size,
        )
        if not complaints:
            return 0
        await _erase(
            uow,
            complaints,
            principal=RETENTION,
            action="retention.anonymize",
            reason=f"retention period of {settings.retention_years} years ended",
            at=now,
            description=RETENTION_DESCRIPTION,
        )
        await uow.commit()
    return len(complaints)


async def apply_retention(context: IntakeContext) -> int:
    """Anonymise batches until no complaint past the retention period is left; how many."""
    total = 0
    while done := await retention_batch(context):
        total += done
    return total


def retention_worker(context: IntakeContext) -> Worker:
    """The ``retention`` role: anonymises what is past the period now, then every interval."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            done = await apply_retention(context)
            if done:
                log.info("retention: %d complaints anonymised", done)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), context.settings.retention_interval_seconds)

    return run
