"""How each consumed event changes the read model: pure, so the consumer and the bulk
generator share one write path and a test can read the rule without a database.

Every change is an upsert whose columns say how a stored value and an incoming one merge
(:class:`Merge`). The merges are chosen so that applying an event twice, or replaying the
streams from offset zero, leaves the same row: the first response is the earliest one seen,
a department or root cause is the one of the highest case version, a person's correction
outranks the classifier whenever either arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from tousu_shared.contracts import Event
from tousu_shared.contracts.case import (
    CaseClosed,
    CaseReopened,
    CaseResolved,
    CaseRouted,
    CaseTransferred,
    FirstResponseSent,
    RootCauseRecorded,
)
from tousu_shared.contracts.complaint import (
    ClassificationData,
    ComplaintAnonymized,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReclassified,
)
from tousu_shared.contracts.feedback import CustomerConfirmed, SurveyAnswered
from tousu_shared.contracts.sla import SlaBreached, SlaMet
from tousu_shared.same_names import by_name

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class Merge(StrEnum):
    """How an incoming column value meets the stored one."""

    SET = "set"  # the incoming value
    KEEP = "keep"  # the stored value when there is one
    LEAST = "least"  # the earlier instant (first response, first resolution, first reopen)
    GREATEST = "greatest"  # the later instant (last close)
    ANY = "any"  # true once any event said so (confirmed)
    NEWER_CASE = "newer_case"  # the value of the higher case_version (department, root cause)
    UNLESS_PERSON = "unless_person"  # the classifier's value unless a person corrected it


@dataclass(frozen=True)
class Upsert:
    """Insert a row or merge columns into it."""

    table: str  # "fact", "milestone", "survey" or "correction"
    key: Mapping[str, Any]
    values: Mapping[str, Any] = field(default_factory=dict)
    merge: Mapping[str, Merge] = field(default_factory=dict)
    # Which column holds the case version that NEWER_CASE columns compare.
    version_column: str | None = None

    def merge_of(self, column: str) -> Merge:
        return self.merge.get(column, Merge.SET)


def local_day(at: datetime) -> Any:
    """The calendar day in China that an instant falls on (volumes count per local day)."""
    return at.astimezone(LOCAL_TZ).date()


Projector = Callable[[Any, uuid.UUID], list[Upsert]]


def _fact(
    complaint_id: uuid.UUID,
    merge: Mapping[str, Merge] | None = None,
    version_column: str | None = None,
    **values: Any,
) -> Upsert:
    return Upsert("fact", {"complaint_id": complaint_id}, values, merge or {}, version_column)


# The fact columns a received complaint fills with its own same-named values, unchanged.
_RECEIVED_AS_THEY_ARE = ("customer_ref", "product_line", "product_ref", "region", "subject_unit")


def _received(event: ComplaintReceived, _: uuid.UUID) -> list[Upsert]:
    return [
        _fact(
            event.complaint_id,
            received_at=event.contact_at,
            received_day=local_day(event.contact_at),
            channel=event.channel.value,
            tier=event.customer_tier.value,
            tags=list(event.tags),
            **by_name(_RECEIVED_AS_THEY_ARE, event),
            fcr=event.resolved_on_first_contact,
        )
    ]


def _classification_values(data: ClassificationData) -> dict[str, Any]:
    return {
        "category": data.category.value,
        "severity": data.severity.value,
        "urgency": data.urgency.value,
    }


def _classified(event: ComplaintClassified, _: uuid.UUID) -> list[Upsert]:
    values = {**_classification_values(event.classification), "classified_by": "classifier"}
    merge = dict.fromkeys(values, Merge.UNLESS_PERSON)
    return [_fact(event.complaint_id, merge, **values)]


# The dimensions a correction is counted in (classifier corrections per dimension).
CORRECTED_DIMENSIONS = (
    "category",
    "severity",
    "urgency",
    "customer_tier",
    "risk_flags",
    "emotion",
    "impact",
)


def _dimension_value(data: ClassificationData, dimension: str) -> str | None:
    value = data.model_dump(mode="json")[dimension]
    if value is None:
        return None
    return ",".join(sorted(value)) if isinstance(value, list) else str(value)


def _reclassified(event: ComplaintReclassified, event_id: uuid.UUID) -> list[Upsert]:
    values = {**_classification_values(event.classification), "classified_by": "person"}
    changes = [_fact(event.complaint_id, **values)]
    for dimension in CORRECTED_DIMENSIONS:
        before = _dimension_value(event.previous, dimension)
        after = _dimension_value(event.classification, dimension)
        if before != after:
            changes.append(
                Upsert(
                    "correction",
                    {"event_id": event_id, "dimension": dimension},
                    {"complaint_id": event.complaint_id, "from_value": before, "to_value": after},
                )
            )
    return changes


def _anonymized(event: ComplaintAnonymized, _: uuid.UUID) -> list[Upsert]:
    # The pseudonymous customer link goes with the person's data; the counts stay.
    return [_fact(event.complaint_id, customer_ref=None)]


def _newer_case(complaint_id: uuid.UUID, column: str, value: Any, case_version: int) -> Upsert:
    """Set a column that the latest case version decides (department, root cause).

    The value sits beside ``<column>_version``, the case version it came with: an older
    version arriving late (a replay, a slow partition) leaves the newer value in place.
    """
    version_column = f"{column}_version"
    return _fact(
        complaint_id,
        {column: Merge.NEWER_CASE, version_column: Merge.GREATEST},
        version_column,
        **{column: value, version_column: case_version},
    )


def _department(event: CaseRouted | CaseTransferred, _: uuid.UUID) -> list[Upsert]:
    return [_newer_case(event.complaint_id, "department", event.department, event.case_version)]


def _earliest(complaint_id: uuid.UUID, column: str, at: datetime) -> Upsert:
    """Set an instant that counts from its first occurrence (first response, first
    resolution, first reopen): a replayed or repeated event never moves it later."""
    values: dict[str, Any] = {column: at}
    return _fact(complaint_id, {column: Merge.LEAST}, **values)


def _first_response(event: FirstResponseSent, _: uuid.UUID) -> list[Upsert]:
    return [_earliest(event.complaint_id, "first_response_at", event.occurred_at)]


def _root_cause(event: RootCauseRecorded | CaseResolved, _: uuid.UUID) -> list[Upsert]:
    return [_newer_case(event.complaint_id, "root_cause", event.root_cause, event.case_version)]


def _resolved(event: CaseResolved, event_id: uuid.UUID) -> list[Upsert]:
    return [
        _earliest(event.complaint_id, "resolved_at", event.occurred_at),
        *_root_cause(event, event_id),
    ]


def _closed(event: CaseClosed, _: uuid.UUID) -> list[Upsert]:
    return [
        _fact(
            event.complaint_id,
            {"closed_at": Merge.GREATEST},
            closed_at=event.occurred_at,
            close_reason=event.close_reason,
        )
    ]


def _reopened(event: CaseReopened, _: uuid.UUID) -> list[Upsert]:
    return [_earliest(event.complaint_id, "reopened_at", event.occurred_at)]


def _milestone(event: SlaMet | SlaBreached) -> dict[str, Any]:
    return {"complaint_id": event.complaint_id, "milestone": event.milestone}


# The milestones whose business time the KPIs report, and the fact column that holds it.
TIMED_MILESTONES = {
    "first_response": "first_response_business_seconds",
    "resolve": "resolution_business_seconds",
}


def _sla_met(event: SlaMet, _: uuid.UUID) -> list[Upsert]:
    timed = TIMED_MILESTONES.get(event.milestone)
    fact = (
        [Upsert("fact", {"complaint_id": event.complaint_id}, {timed: event.elapsed_seconds})]
        if timed
        else []
    )
    return [
        *fact,
        Upsert(
            "milestone",
            _milestone(event),
            {
                "due_at": event.due_at,
                "met_at": event.met_at,
                "elapsed_seconds": event.elapsed_seconds,
                "within_target": event.within_target,
            },
        ),
    ]


def _sla_breached(event: SlaBreached, _: uuid.UUID) -> list[Upsert]:
    return [
        Upsert(
            "milestone",
            _milestone(event),
            {"breached_at": event.due_at},
            {"breached_at": Merge.LEAST},
        )
    ]


def _survey(
    event: SurveyAnswered | CustomerConfirmed, merge: Mapping[str, Merge], **values: Any
) -> Upsert:
    """A survey row, keyed by survey: the answer and the confirmation may come in either
    order, and "confirmed" stays true once either said so."""
    merge = {"confirmed": Merge.ANY, **merge}
    values = {"complaint_id": event.complaint_id, "source": event.source, **values}
    return Upsert("survey", {"survey_id": event.survey_id}, values, merge)


def _answered(event: SurveyAnswered, _: uuid.UUID) -> list[Upsert]:
    return [
        _survey(
            event,
            {},
            satisfaction=event.satisfaction,
            solved=event.solved,
            confirmed=event.confirmed,
            answered_at=event.answered_at,
        )
    ]


def _confirmed(event: CustomerConfirmed, _: uuid.UUID) -> list[Upsert]:
    # A confirmation's source and satisfaction only fill in what no answer has given.
    keep = {"source": Merge.KEEP, "satisfaction": Merge.KEEP}
    return [_survey(event, keep, confirmed=True, satisfaction=event.satisfaction)]


# Event type → projector: the explicit table of what the read model listens to.
PROJECTORS: dict[type[Event], Projector] = {
    ComplaintReceived: _received,
    ComplaintClassified: _classified,
    ComplaintReclassified: _reclassified,
    ComplaintAnonymized: _anonymized,
    CaseRouted: _department,
    CaseTransferred: _department,
    FirstResponseSent: _first_response,
    RootCauseRecorded: _root_cause,
    CaseResolved: _resolved,
    CaseClosed: _closed,
    CaseReopened: _reopened,
    SlaMet: _sla_met,
    SlaBreached: _sla_breached,
    SurveyAnswered: _answered,
    CustomerConfirmed: _confirmed,
}


def changes_for(event: Event, event_id: uuid.UUID) -> list[Upsert]:
    """The read-model changes one event makes (none for events it does not count)."""
    projector = PROJECTORS.get(type(event))
    return projector(event, event_id) if projector else []
