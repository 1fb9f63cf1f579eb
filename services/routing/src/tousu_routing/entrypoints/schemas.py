"""Request and response bodies of the routing API (``XCreate`` / ``XUpdate`` / ``XRead``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, field_validator
from tousu_shared.contracts import vocabulary
from tousu_shared.schemas import ApiModel, from_attributes
from tousu_shared.topics import department_topic

from tousu_routing.adapters.department_repository import DepartmentRecord, chain_to_json
from tousu_routing.adapters.rule_repository import RuleRecord, criteria_to_json
from tousu_routing.domain import Availability, ClosureReason, Member, Transition, allowed_actions
from tousu_routing.domain.record import CaseRecord
from tousu_routing.service_layer.rules import DryRun

Code = Field(
    pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
    description="lower-case letters, digits, '_' and '-'; used in the topic name",
)
MemberId = Field(min_length=1, max_length=64, pattern=r"^\S+$")
Text = Field(min_length=1, max_length=4000)


def action_slug(action: str) -> str:
    """How the API names a workflow action: ``respond_to_customer`` → ``respond-to-customer``."""
    return str(action).replace("_", "-")


# ---- departments and members ------------------------------------------------------------


class DepartmentCreate(ApiModel):
    """A new department; members can be listed in the chain once they exist."""

    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    chain: dict[vocabulary.HandlerLevel, list[str]] = Field(
        default_factory=dict,
        description="member ids serving the department at each level",
    )


class DepartmentUpdate(ApiModel):
    """Changes to a department; fields left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    chain: dict[vocabulary.HandlerLevel, list[str]] | None = None


class MemberCreate(ApiModel):
    """A new member of a department, listed in its chain at their level."""

    id: str = MemberId
    name: str = Field(min_length=1, max_length=200)
    level: vocabulary.HandlerLevel
    availability: Availability = Availability.AVAILABLE
    manager_id: str | None = None

    def member(self, department: str) -> Member:
        """The new member of ``department``."""
        return Member(department=department, **self.model_dump())


class MemberUpdate(ApiModel):
    """Changes to a member; marking them absent or off shift hands over their open cases."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    availability: Availability | None = None
    manager_id: str | None = None


class MemberRead(BaseModel):
    """A member with their current load (cases in progress assigned to them)."""

    id: str
    name: str
    department: str
    level: vocabulary.HandlerLevel
    availability: Availability
    manager_id: str | None
    open_cases: int

    @classmethod
    def of(cls, member: Member) -> MemberRead:
        """From the domain's member."""
        return from_attributes(cls, member)


class DepartmentRead(BaseModel):
    """A department, its chain, its members and the topic its systems consume."""

    code: str
    name: str
    chain: dict[str, list[str]]
    version: int
    topic: str
    members: list[MemberRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: DepartmentRecord, members: list[Member]) -> DepartmentRead:
        """From a stored department and its members."""
        return from_attributes(
            cls,
            record,
            name=record.department.name,
            chain=chain_to_json(record.department.chain),
            topic=department_topic(record.code),
            members=[MemberRead.of(m) for m in members],
        )


# ---- routing rules ----------------------------------------------------------------------------


class RuleCriteriaFields(ApiModel):
    """What a rule matches on; each list accepts any of its values, a missing one any value."""

    category: list[vocabulary.Category] | None = None
    product_line: list[str] | None = None
    region: list[str] | None = None
    channel: list[vocabulary.Channel] | None = None
    severity: list[vocabulary.Severity] | None = None
    customer_tier: list[vocabulary.CustomerTier] | None = None
    risk_flags: list[vocabulary.RiskFlag] | None = Field(
        default=None,
        description="matches when the complaint carries any of these flags",
    )


MAX_ORDER = 2**31 - 1  # a rule's position is an integer column


class RoutingRuleCreate(ApiModel):
    """A new rule; without an order it goes just before the default queue."""

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    order: int | None = Field(default=None, ge=0, le=MAX_ORDER)
    target_department: str
    criteria: RuleCriteriaFields = Field(default_factory=RuleCriteriaFields)
    enabled: bool = True


class RoutingRuleUpdate(ApiModel):
    """Changes to a rule; fields left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    order: int | None = Field(default=None, ge=0, le=MAX_ORDER)
    target_department: str | None = None
    criteria: RuleCriteriaFields | None = None
    enabled: bool | None = None

    @field_validator("name", "order", "target_department", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Left out, a field stays as it is; sent as null it would erase what a rule needs.
        if value is None:
            raise ValueError("leave the field out to keep it; it cannot be null")
        return value


class RoutingRuleOrderUpdate(ApiModel):
    """Every rule id, in the order the rules should be tried."""

    rule_ids: list[str] = Field(min_length=1)


class RoutingRuleRead(BaseModel):
    """A rule with its version; ``reachable`` is false for a rule after the default queue."""

    id: str
    order: int
    name: str
    target_department: str
    criteria: dict[str, list[str]]
    enabled: bool
    is_default: bool
    reachable: bool
    version: int
    updated_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls,
        record: RuleRecord,
        unreachable: frozenset[str] | set[str] = frozenset(),
    ) -> RoutingRuleRead:
        """From a stored rule."""
        rule = record.rule
        return from_attributes(
            cls,
            rule,
            record,
            criteria=criteria_to_json(rule.criteria),
            is_default=rule.is_catch_all,
            reachable=rule.id not in unreachable,
        )


class RoutingRuleRevisionRead(BaseModel):
    """One edit of a rule, as it was after the edit."""

    rule_id: str
    version: int
    change: str
    snapshot: dict[str, Any]
    changed_by: str
    changed_at: datetime


class SampleComplaint(ApiModel):
    """The facts of a complaint as routing sees them, for a dry run."""

    severity: vocabulary.Severity
    category: vocabulary.Category | None = None
    product_line: str | None = None
    region: str | None = None
    channel: vocabulary.Channel | None = None
    customer_tier: vocabulary.CustomerTier | None = None
    risk_flags: list[vocabulary.RiskFlag] = []
    subject_staff_ref: str | None = Field(default=None, description="member complained about")
    subject_unit: str | None = Field(default=None, description="department complained about")


class CandidateRuleCreate(RoutingRuleCreate):
    """A rule to try in a dry run: new, or replacing the saved rule with the same id."""

    id: str = Field(default="candidate", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    order: int = Field(ge=0)


class DryRunCreate(ApiModel):
    """A sample complaint, and optionally rules to try with the saved ones; nothing is saved."""

    complaint: SampleComplaint
    candidate_rules: list[CandidateRuleCreate] = []


class RuleEvaluationRead(BaseModel):
    """How one rule fared against the sample."""

    rule_id: str
    order: int
    name: str
    target_department: str
    enabled: bool
    matched: list[str]
    failed: list[str]
    is_match: bool
    selected: bool


class SkippedMemberRead(BaseModel):
    """A member passed over in assignment, and why."""

    member_id: str
    why: str


class DryRunRead(BaseModel):
    """Where the sample would go, at which level, to whom, and why; every rule explained."""

    department: str
    rule_id: str
    rule_name: str
    matched_criteria: list[str]
    handler_level: vocabulary.HandlerLevel
    notify_management: bool
    conflict_of_interest: list[str]
    assignee_id: str | None
    queued: bool
    assignment_reason: str
    skipped_members: list[SkippedMemberRead]
    reason: str
    evaluations: list[RuleEvaluationRead]
    unreachable_rule_ids: list[str]

    @classmethod
    def of(cls, result: DryRun) -> DryRunRead:
        """From the service's dry-run result."""
        plan = result.plan
        return cls(
            department=plan.department,
            rule_id=plan.decision.rule_id,
            rule_name=plan.decision.rule_name,
            matched_criteria=list(plan.decision.matched_criteria),
            handler_level=plan.handler_level,
            notify_management=plan.notify_management,
            conflict_of_interest=list(plan.conflict.reasons),
            assignee_id=plan.assignment.assignee_id,
            queued=plan.assignment.is_queued,
            assignment_reason=plan.assignment.reason,
            skipped_members=[
                SkippedMemberRead(member_id=m, why=w) for m, w in plan.assignment.skipped
            ],
            reason=plan.reason,
            evaluations=[
                RuleEvaluationRead(
                    rule_id=e.rule.id,
                    order=e.rule.order,
                    name=e.rule.name,
                    target_department=e.rule.target_department,
                    enabled=e.rule.enabled,
                    matched=list(e.matched),
                    failed=list(e.failed),
                    is_match=e.is_match,
                    selected=e.rule.id == plan.decision.rule_id,
                )
                for e in result.evaluations
            ],
            unreachable_rule_ids=list(result.unreachable_rule_ids),
        )


# ---- cases ------------------------------------------------------------------------------------


class CaseActionCreate(ApiModel):
    """An action on a case; ``occurred_at`` logs work done earlier (not future, not before the
    complaint), ``expected_version`` is the body form of ``If-Match``."""

    occurred_at: AwareDatetime | None = None
    expected_version: int | None = Field(default=None, ge=1)


class NoteActionCreate(CaseActionCreate):
    """An action that may carry a note."""

    note: str | None = Field(default=None, max_length=4000)


class NoteCreate(CaseActionCreate):
    """A note on the case."""

    note: str = Text


class RootCauseCreate(NoteActionCreate):
    """What caused the problem and, if known, who is responsible."""

    root_cause: str = Text
    responsible_person: str | None = Field(default=None, max_length=200)


class SolutionCreate(NoteActionCreate):
    """The solution proposed to the customer."""

    solution: str = Text


class ResolutionCreate(NoteActionCreate):
    """What was done; root cause and responsible person are required unless recorded before."""

    resolution: str = Text
    root_cause: str | None = Field(default=None, max_length=4000)
    responsible_person: str | None = Field(default=None, max_length=200)


class ClosureCreate(NoteActionCreate):
    """Closing a resolved case by hand (the feedback service closes confirmed ones itself)."""

    close_reason: ClosureReason = ClosureReason.MANUAL


class ReopeningCreate(CaseActionCreate):
    """Reopening a resolved or closed case, with the customer's comment."""

    comment: str = Text


class TransferCreate(CaseActionCreate):
    """Moving the case to another department; without an assignee routing picks one."""

    to_department: str
    reason: str = Text
    handler_level: vocabulary.HandlerLevel | None = None
    assignee_id: str | None = None


class EscalationCreate(NoteActionCreate):
    """Raising the case one handler level; without an assignee routing picks one."""

    assignee_id: str | None = None


class AssignmentCreate(NoteActionCreate):
    """Giving the case to a member at its level, or back to the queue with ``null``."""

    assignee_id: str | None


class TransitionRead(BaseModel):
    """One entry of a case's history: what, who, when it happened and when it was logged."""

    version: int
    action: str
    from_state: str | None
    to_state: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    note: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, transition: Transition) -> TransitionRead:
        """From the domain's transition."""
        return from_attributes(
            cls,
            transition,
            action=action_slug(transition.action),
            from_state=str(transition.from_state) if transition.from_state else None,
            to_state=str(transition.to_state),
            details=dict(transition.details),
        )


class CaseSummaryRead(BaseModel):
    """A case as lists show it."""

    id: uuid.UUID
    complaint_id: uuid.UUID
    department: str
    state: str
    handler_level: vocabulary.HandlerLevel
    assignee_id: str | None
    version: int
    category: str
    severity: str
    urgency: str
    customer_tier: str
    channel: str
    product_line: str | None
    region: str | None
    risk_flags: list[str]
    rule_id: str
    notify_management: bool
    escalation_level: int
    reopen_count: int
    complaint_received_at: datetime
    created_at: datetime
    updated_at: datetime


class CaseRead(CaseSummaryRead):
    """A case with its findings, the actions allowed now, and its full history."""

    rule_version: int | None
    routing_reason: str
    excluded_member_ids: list[str]
    subject_staff_ref: str | None
    subject_unit: str | None
    contact_details_url: str
    root_cause: str | None
    responsible_person: str | None
    solution: str | None
    resolution: str | None
    acknowledged_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    allowed_actions: list[str]
    history: list[TransitionRead]

    @classmethod
    def of(cls, record: CaseRecord) -> CaseRead:
        """From a case record."""
        case = record.case
        return from_attributes(
            cls,
            case,
            record.profile,
            record,
            complaint_id=uuid.UUID(case.complaint_id),
            state=str(case.state),
            risk_flags=list(record.profile.risk_flags),
            rule_id=case.rule_id or "",
            updated_at=record.updated_at or record.created_at,
            routing_reason=case.routing_reason or "",
            excluded_member_ids=sorted(case.excluded_member_ids),
            close_reason=str(case.close_reason) if case.close_reason else None,
            allowed_actions=[action_slug(a) for a in allowed_actions(case.state)],
            history=[TransitionRead.of(t) for t in case.history],
        )


class CasePageRead(BaseModel):
    """A page of cases, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[CaseSummaryRead]
    next_cursor: str | None
