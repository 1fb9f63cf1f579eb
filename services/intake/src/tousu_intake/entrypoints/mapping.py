"""Between the HTTP schemas and the service layer: bodies into commands, results into reads.

The complaint's own fields are taken by name (``ComplaintDetails``), never listed again here.
"""

from __future__ import annotations

import dataclasses
import uuid

from tousu_shared.schemas import from_attributes

from tousu_intake.domain.commands import (
    AddMessage,
    AnonymizeCustomer,
    CorrectClassification,
    ExportCustomer,
    SubmitComplaint,
)
from tousu_intake.domain.complaint import ComplaintDetails, Customer, Evidence, Message
from tousu_intake.entrypoints.schemas import (
    AnonymizeRequest,
    ClassificationUpdate,
    ComplaintCreate,
    ComplaintRead,
    ContactRead,
    CustomerExportRead,
    ErasureRead,
    EvidenceRef,
    ExportedComplaintRead,
    ExportRequest,
    MessageCreate,
    MessageRead,
    RecordElsewhereRead,
    TrackingRead,
)
from tousu_intake.service_layer.privacy import CustomerExport, Erasure
from tousu_intake.service_layer.services import ComplaintView, Tracking

_NOT_DETAILS = {"customer", "evidence", "contact_at"}


def _evidence(refs: list[EvidenceRef]) -> tuple[Evidence, ...]:
    return tuple(Evidence(**ref.model_dump()) for ref in refs)


def submit_command(body: ComplaintCreate, idempotency_key: str | None) -> SubmitComplaint:
    """The command a complaint body stands for."""
    return SubmitComplaint(
        details=ComplaintDetails(**body.model_dump(exclude=_NOT_DETAILS)),
        customer=Customer(**body.customer.model_dump()),
        evidence=_evidence(body.evidence),
        contact_at=body.contact_at,
        idempotency_key=idempotency_key,
    )


def correction_command(
    complaint_id: uuid.UUID, body: ClassificationUpdate
) -> CorrectClassification:
    """The command a classification correction stands for."""
    return CorrectClassification(complaint_id=complaint_id, **body.model_dump())


def message_command(complaint_id: uuid.UUID, body: MessageCreate) -> AddMessage:
    """The command a further customer message stands for."""
    return AddMessage(
        complaint_id=complaint_id,
        channel=body.channel,
        body=body.body,
        evidence=_evidence(body.evidence),
    )


def anonymize_command(body: AnonymizeRequest) -> AnonymizeCustomer:
    """The command a deletion request stands for."""
    return AnonymizeCustomer(**body.model_dump())


def export_command(body: ExportRequest) -> ExportCustomer:
    """The command a data-export request stands for."""
    return ExportCustomer(**body.model_dump())


def erasure_read(erasure: Erasure) -> ErasureRead:
    """What an erasure touched, as far as the caller may see."""
    return ErasureRead(anonymized_complaints=erasure.complaint_ids, anonymized_count=erasure.total)


def export_read(export: CustomerExport) -> CustomerExportRead:
    """A customer's data export."""
    return CustomerExportRead(
        exported_at=export.exported_at,
        complaints=[
            ExportedComplaintRead(
                complaint=complaint_read(item.view),
                status_changed_at=item.status_changed_at,
                messages=[message_read(m) for m in item.messages],
                held_elsewhere=[RecordElsewhereRead(**vars(part)) for part in item.elsewhere],
            )
            for item in export.complaints
        ],
    )


def complaint_read(view: ComplaintView) -> ComplaintRead:
    """A complaint as staff see it."""
    complaint, contact = view.complaint, view.contact
    deadlines = complaint.deadlines
    return from_attributes(
        ComplaintRead,
        complaint,
        **vars(complaint.details),
        automatic_classification=complaint.auto_classification,
        classification_explanation=complaint.explanation_for(with_history=view.with_history),
        due_dates=deadlines.due,
        paused_milestones=deadlines.paused,
        contact=(
            ContactRead(masked=view.contact_masked, **vars(contact))
            if contact is not None
            else None
        ),
        anonymized=complaint.anonymized_at is not None,
        related_complaint_ids=list(view.related),
    )


def message_read(message: Message) -> MessageRead:
    """A stored customer message."""
    return from_attributes(
        MessageRead, message, evidence=[dataclasses.asdict(e) for e in message.evidence]
    )


def tracking_read(tracked: Tracking) -> TrackingRead:
    """What the customer may see."""
    deadlines = tracked.deadlines
    return from_attributes(
        TrackingRead, tracked, due_dates=deadlines.due, paused_milestones=deadlines.paused
    )
