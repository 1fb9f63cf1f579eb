"""The Case aggregate: every legal and illegal transition, history, times, versions, events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from tousu_routing.domain import (
    TRANSITIONS,
    WORKFLOW_ACTIONS,
    Case,
    CaseAction,
    CaseState,
    ClosureReason,
    ComplaintSubject,
    ConflictOfInterest,
    Department,
    EscalationReason,
    HandlerLevel,
    IllegalTransition,
    InvalidCommand,
    InvalidOccurredAt,
    Member,
    MissingResolutionDetails,
    RoutingFacts,
    RoutingRule,
    RuleSet,
    Stamp,
    VersionConflict,
    allowed_actions,
    plan_routing,
)
from tousu_routing.domain import events as ev
from tousu_routing.service_layer.cases import CASE_ACTIONS

RECEIVED = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=10)
A = CaseAction
S = CaseState


def open_case(
    *,
    actor: str = "system:routing",
    now: datetime = RECEIVED + STEP,
    occurred_at: datetime | None = None,
    **overrides,
) -> Case:
    """A case just routed to quality at agent level, assigned to a-1, ten minutes in."""
    values = dict(
        case_id="case-1",
        complaint_id="complaint-1",
        complaint_received_at=RECEIVED,
        department="quality",
        handler_level=HandlerLevel.AGENT,
        rule_id="quality",
        routing_reason="rule 'quality' matched category=product_quality",
        assignee_id="a-1",
        excluded_member_ids={"a-9"},
    )
    values.update(overrides)
    return Case.open(Stamp(actor=actor, now=now, occurred_at=occurred_at), **values)


def next_time(case: Case) -> datetime:
    """A time just after the case's latest step."""
    return case.history[-1].occurred_at + STEP


# Each workflow action's Case method, from the service's command table.
METHOD_FOR: dict[CaseAction, Callable[..., None]] = dict(CASE_ACTIONS.values())


def perform(
    case: Case,
    action: CaseAction,
    now: datetime | None = None,
    *,
    actor: str = "agent:a-1",
    occurred_at: datetime | None = None,
    **overrides,
) -> None:
    """Do ``action`` with valid arguments, at ``now`` (default: just after the last step)."""
    stamp = Stamp(actor=actor, now=now or next_time(case), occurred_at=occurred_at)
    defaults: dict[CaseAction, dict] = {
        A.RECORD_ROOT_CAUSE: dict(
            root_cause="screen scratched in transport", responsible_person="warehouse team"
        ),
        A.PROPOSE_SOLUTION: dict(solution="full refund and 200 yuan compensation"),
        A.RESOLVE: dict(resolution="refund and compensation paid"),
        A.REOPEN: dict(comment="refund has not arrived"),
        A.TRANSFER: dict(to_department="logistics", reason="damage happened in transport"),
        A.ADD_NOTE: dict(note="customer called again"),
        A.ASSIGN: dict(assignee_id="a-2"),
    }
    kwargs = {**defaults.get(action, {}), **overrides}
    METHOD_FOR[action](case, stamp, **kwargs)


# The shortest legal way from a fresh case to each state.
PATH_TO: dict[CaseState, tuple[CaseAction, ...]] = {
    S.ROUTED: (),
    S.ACKNOWLEDGED: (A.ACKNOWLEDGE,),
    S.INVESTIGATING: (A.ACKNOWLEDGE, A.START_INVESTIGATION),
    S.SOLUTION_PROPOSED: (
        A.ACKNOWLEDGE,
        A.START_INVESTIGATION,
        A.RECORD_ROOT_CAUSE,
        A.PROPOSE_SOLUTION,
    ),
    S.RESOLVED: (
        A.ACKNOWLEDGE,
        A.START_INVESTIGATION,
        A.RECORD_ROOT_CAUSE,
        A.PROPOSE_SOLUTION,
        A.RESOLVE,
    ),
    S.CLOSED: (
        A.ACKNOWLEDGE,
        A.START_INVESTIGATION,
        A.RECORD_ROOT_CAUSE,
        A.PROPOSE_SOLUTION,
        A.RESOLVE,
        A.CLOSE,
    ),
}


def case_in(state: CaseState) -> Case:
    """A case driven through legal actions into ``state``, with its events drained."""
    case = open_case()
    for action in PATH_TO[state]:
        perform(case, action)
    assert case.state is state
    case.events.clear()
    return case


EVENT_FOR: dict[CaseAction, type[ev.CaseEvent]] = {
    A.ACKNOWLEDGE: ev.CaseAcknowledged,
    A.RESPOND_TO_CUSTOMER: ev.FirstResponseSent,
    A.START_INVESTIGATION: ev.InvestigationStarted,
    A.RECORD_ROOT_CAUSE: ev.RootCauseRecorded,
    A.PROPOSE_SOLUTION: ev.SolutionProposed,
    A.RESOLVE: ev.CaseResolved,
    A.CLOSE: ev.CaseClosed,
    A.REOPEN: ev.CaseReopened,
    A.TRANSFER: ev.CaseTransferred,
    A.ESCALATE: ev.CaseEscalated,
    A.ADD_NOTE: ev.CaseNoteAdded,
    A.ASSIGN: ev.CaseAssigned,
}

LEGAL = [(action, state) for action, moves in TRANSITIONS.items() for state in moves]
ILLEGAL = [
    (action, state)
    for action in WORKFLOW_ACTIONS
    for state in CaseState
    if state not in TRANSITIONS[action]
]


def test_the_transition_table_is_what_the_domain_describes():
    assert {a: dict(m) for a, m in TRANSITIONS.items()} == {
        A.ACKNOWLEDGE: {S.ROUTED: S.ACKNOWLEDGED},
        A.RESPOND_TO_CUSTOMER: {S.ACKNOWLEDGED: S.ACKNOWLEDGED, S.INVESTIGATING: S.INVESTIGATING},
        A.START_INVESTIGATION: {S.ACKNOWLEDGED: S.INVESTIGATING},
        A.RECORD_ROOT_CAUSE: {S.INVESTIGATING: S.INVESTIGATING},
        A.PROPOSE_SOLUTION: {
            S.INVESTIGATING: S.SOLUTION_PROPOSED,
            S.SOLUTION_PROPOSED: S.SOLUTION_PROPOSED,
        },
        A.RESOLVE: {S.SOLUTION_PROPOSED: S.RESOLVED},
        A.CLOSE: {S.RESOLVED: S.CLOSED},
        A.REOPEN: {S.RESOLVED: S.INVESTIGATING, S.CLOSED: S.INVESTIGATING},
        A.TRANSFER: {
            s: S.ROUTED for s in (S.ROUTED, S.ACKNOWLEDGED, S.INVESTIGATING, S.SOLUTION_PROPOSED)
        },
        A.ESCALATE: {s: s for s in CaseState if s is not S.CLOSED},
        A.ADD_NOTE: {s: s for s in CaseState if s is not S.CLOSED},
        A.ASSIGN: {s: s for s in CaseState if s is not S.CLOSED},
    }
    assert A.ROUTE not in WORKFLOW_ACTIONS
    assert len(LEGAL) + len(ILLEGAL) == len(WORKFLOW_ACTIONS) * len(CaseState)


@pytest.mark.parametrize(("action", "state"), LEGAL, ids=lambda x: str(x))
def test_every_legal_transition_moves_records_and_emits(action, state):
    case = case_in(state)
    version, history_length = case.version, len(case.history)
    when = next_time(case)

    perform(case, action, now=when)

    assert case.state is TRANSITIONS[action][state]
    assert case.version == version + 1
    assert len(case.history) == history_length + 1
    entry = case.history[-1]
    assert (entry.action, entry.from_state, entry.to_state) == (action, state, case.state)
    assert entry.actor == "agent:a-1"
    assert entry.occurred_at == entry.recorded_at == when
    assert entry.version == case.version
    [event] = case.events
    assert type(event) is EVENT_FOR[action]
    assert event.event_type == EVENT_FOR[action].__name__
    assert (event.case_id, event.complaint_id) == ("case-1", "complaint-1")
    assert (event.version, event.actor, event.occurred_at) == (case.version, "agent:a-1", when)
    assert event.department == case.department


@pytest.mark.parametrize(("action", "state"), ILLEGAL, ids=lambda x: str(x))
def test_every_illegal_transition_is_refused_with_the_allowed_actions(action, state):
    case = case_in(state)
    version, history_length = case.version, len(case.history)

    with pytest.raises(IllegalTransition) as refused:
        perform(case, action)

    error = refused.value
    assert (error.action, error.state) == (str(action), str(state))
    assert error.allowed_actions == tuple(str(a) for a in allowed_actions(state))
    assert f"cannot {action} a case in state '{state}'" in str(error)
    for allowed in allowed_actions(state):
        assert str(allowed) in str(error)
    assert case.state is state
    assert case.version == version
    assert len(case.history) == history_length
    assert case.events == []


def test_opening_a_case_records_the_routing():
    case = open_case(queued_reason=None, notify_management=True)

    assert case.state is S.ROUTED
    assert case.version == 1
    [entry] = case.history
    assert (entry.action, entry.from_state, entry.to_state) == (A.ROUTE, None, S.ROUTED)
    assert entry.details["rule_id"] == "quality"
    [event] = case.events
    assert isinstance(event, ev.CaseRouted)
    assert event.rule_id == "quality"
    assert event.handler_level == "agent"
    assert event.assignee == "a-1"
    assert event.notify_management is True


def test_opening_a_case_from_a_plan_keeps_the_queue_reason_and_exclusions():
    department = Department(code="quality", name="Q", chain={"agent": ("a-1",)})
    members = [Member(id="a-1", name="A", department="quality", level="agent")]
    rules = RuleSet([RoutingRule(id="default", order=1, name="D", target_department="quality")])
    facts = RoutingFacts(severity="minor", subject=ComplaintSubject(member_id="a-1"))
    plan = plan_routing(facts, rules, {"quality": department}, members)

    case = Case.open_from_plan(
        plan,
        Stamp(actor="system", now=RECEIVED + STEP),
        case_id="c",
        complaint_id="p",
        complaint_received_at=RECEIVED,
    )

    assert case.handler_level is HandlerLevel.DEPARTMENT_MANAGER
    assert case.assignee_id is None
    assert case.excluded_member_ids == {"a-1"}
    assert "queue" in case.events[0].queued_reason
    assert case.routing_reason == plan.reason
    with pytest.raises(ConflictOfInterest):
        case.assign(Stamp(actor="boss", now=RECEIVED + 2 * STEP), assignee_id="a-1")


def test_opening_a_case_for_the_subject_of_the_complaint_is_refused():
    with pytest.raises(ConflictOfInterest):
        open_case(assignee_id="a-9")


def test_happy_path_of_the_worked_case_keeps_a_complete_history():
    case = open_case()
    hour = timedelta(hours=1)
    case.acknowledge(Stamp(actor="a-1", now=RECEIVED + hour))
    case.respond_to_customer(Stamp(actor="a-1", now=RECEIVED + hour), note="apologised")
    case.start_investigation(Stamp(actor="a-1", now=RECEIVED + 6 * hour), note="technician on site")
    case.record_root_cause(
        Stamp(actor="a-1", now=RECEIVED + 12 * hour), root_cause="transport damage"
    )
    case.propose_solution(Stamp(actor="a-1", now=RECEIVED + 12 * hour), solution="refund + 200")
    case.resolve(
        Stamp(actor="a-1", now=RECEIVED + 18 * hour),
        resolution="paid",
        responsible_person="carrier",
    )
    case.close(Stamp(actor="feedback", now=RECEIVED + 30 * hour))

    assert [t.action for t in case.history] == [
        A.ROUTE,
        A.ACKNOWLEDGE,
        A.RESPOND_TO_CUSTOMER,
        A.START_INVESTIGATION,
        A.RECORD_ROOT_CAUSE,
        A.PROPOSE_SOLUTION,
        A.RESOLVE,
        A.CLOSE,
    ]
    assert [type(e) for e in case.events] == [
        ev.CaseRouted,
        ev.CaseAcknowledged,
        ev.FirstResponseSent,
        ev.InvestigationStarted,
        ev.RootCauseRecorded,
        ev.SolutionProposed,
        ev.CaseResolved,
        ev.CaseClosed,
    ]
    assert case.version == 8
    assert case.first_response_at == RECEIVED + hour
    assert case.resolved_at == RECEIVED + 18 * hour
    assert case.close_reason is ClosureReason.CUSTOMER_CONFIRMED
    assert (case.root_cause, case.responsible_person) == ("transport damage", "carrier")


# ---- first response --------------------------------------------------------------------


def test_first_response_time_is_recorded_once():
    case = case_in(S.ACKNOWLEDGED)
    first = next_time(case)
    perform(case, A.RESPOND_TO_CUSTOMER, now=first)
    perform(case, A.START_INVESTIGATION)
    perform(case, A.RESPOND_TO_CUSTOMER)

    assert case.first_response_at == first
    assert [type(e) for e in case.events] == [
        ev.FirstResponseSent,
        ev.InvestigationStarted,
        ev.CustomerResponseSent,
    ]
    assert case.history[-1].details == {"first": "false"}


# ---- root cause and resolution ---------------------------------------------------------


def test_resolve_without_root_cause_and_responsible_person_is_refused():
    case = case_in(S.INVESTIGATING)
    perform(case, A.PROPOSE_SOLUTION)
    version = case.version

    with pytest.raises(MissingResolutionDetails, match="root_cause and responsible_person"):
        perform(case, A.RESOLVE)

    assert case.state is S.SOLUTION_PROPOSED
    assert case.version == version


def test_resolve_needs_the_responsible_person_even_with_a_root_cause():
    case = case_in(S.INVESTIGATING)
    perform(case, A.RECORD_ROOT_CAUSE, responsible_person=None)
    perform(case, A.PROPOSE_SOLUTION)

    with pytest.raises(MissingResolutionDetails, match="responsible_person"):
        perform(case, A.RESOLVE)


def test_root_cause_and_responsible_person_may_come_with_resolve():
    case = case_in(S.INVESTIGATING)
    perform(case, A.PROPOSE_SOLUTION)

    perform(case, A.RESOLVE, root_cause="packaging too thin", responsible_person="packing line")

    assert case.state is S.RESOLVED
    [*_, resolved] = case.events
    assert (resolved.root_cause, resolved.responsible_person) == (
        "packaging too thin",
        "packing line",
    )


def test_recording_a_root_cause_again_replaces_it_and_keeps_the_responsible_person():
    case = case_in(S.INVESTIGATING)
    perform(case, A.RECORD_ROOT_CAUSE)
    perform(case, A.RECORD_ROOT_CAUSE, root_cause="courier dropped it", responsible_person=None)

    assert case.root_cause == "courier dropped it"
    assert case.responsible_person == "warehouse team"
    assert [t.details["root_cause"] for t in case.history[-2:]] == [
        "screen scratched in transport",
        "courier dropped it",
    ]


@pytest.mark.parametrize(
    ("action", "state", "blank"),
    [
        (A.RECORD_ROOT_CAUSE, S.INVESTIGATING, {"root_cause": " "}),
        (A.PROPOSE_SOLUTION, S.INVESTIGATING, {"solution": ""}),
        (A.RESOLVE, S.SOLUTION_PROPOSED, {"resolution": None}),
        (A.REOPEN, S.RESOLVED, {"comment": "  "}),
        (A.TRANSFER, S.ROUTED, {"reason": ""}),
        (A.TRANSFER, S.ROUTED, {"to_department": ""}),
        (A.ADD_NOTE, S.ROUTED, {"note": ""}),
        (A.ACKNOWLEDGE, S.ROUTED, {"actor": ""}),
    ],
)
def test_required_text_must_not_be_blank(action, state, blank):
    case = case_in(state)
    version = case.version

    with pytest.raises(InvalidCommand):
        perform(case, action, **blank)

    assert case.version == version
    assert case.state is state


def test_closing_records_why():
    case = case_in(S.RESOLVED)

    perform(case, A.CLOSE, close_reason="no_response")

    assert case.close_reason is ClosureReason.NO_RESPONSE
    assert case.events[-1].close_reason == "no_response"
    with pytest.raises(InvalidCommand, match="close_reason"):
        perform(case_in(S.RESOLVED), A.CLOSE, close_reason="bored")


# ---- reopen ----------------------------------------------------------------------------


def test_reopen_from_resolved_goes_back_to_investigating_with_the_comment():
    case = case_in(S.RESOLVED)

    perform(case, A.REOPEN, comment="the screen still flickers", actor="feedback")

    assert case.state is S.INVESTIGATING
    assert case.department == "quality"
    assert case.reopen_count == 1
    assert case.resolution is None and case.resolved_at is None
    assert case.root_cause == "screen scratched in transport"
    entry = case.history[-1]
    assert (entry.action, entry.from_state, entry.to_state) == (
        A.REOPEN,
        S.RESOLVED,
        S.INVESTIGATING,
    )
    assert entry.note == "the screen still flickers"
    [event] = case.events
    assert event.reason == "the screen still flickers"
    assert event.from_state == "resolved"
    assert event.reopen_count == 1


def test_reopen_from_closed_clears_the_closure_and_the_case_can_be_resolved_again():
    case = case_in(S.CLOSED)

    perform(case, A.REOPEN)
    perform(case, A.PROPOSE_SOLUTION, solution="replace the laptop")
    perform(case, A.RESOLVE, resolution="replaced")

    assert case.closed_at is None and case.close_reason is None
    assert case.state is S.RESOLVED
    assert case.resolution == "replaced"
    assert [t.action for t in case.history].count(A.RESOLVE) == 2


# ---- transfer --------------------------------------------------------------------------


def test_transfer_moves_to_the_new_department_and_keeps_history():
    case = case_in(S.INVESTIGATING)
    before = list(case.history)

    perform(case, A.TRANSFER, to_department="logistics", reason="damage in transport")

    assert case.state is S.ROUTED
    assert case.department == "logistics"
    assert case.assignee_id is None
    assert case.handler_level is HandlerLevel.AGENT
    assert case.history[:-1] == before
    entry = case.history[-1]
    assert entry.details == {
        "from_department": "quality",
        "to_department": "logistics",
        "handler_level": "agent",
    }
    assert entry.note == "damage in transport"
    [event] = case.events
    assert event.department == "logistics"
    assert event.from_department == "quality"
    assert event.reason == "damage in transport"
    # The new department starts again from acknowledgement.
    perform(case, A.ACKNOWLEDGE)
    assert case.state is S.ACKNOWLEDGED


def test_transfer_can_set_level_and_assignee_but_never_the_subject():
    case = case_in(S.ACKNOWLEDGED)

    with pytest.raises(ConflictOfInterest):
        perform(case, A.TRANSFER, assignee_id="a-9")
    perform(case, A.TRANSFER, handler_level="director", assignee_id="d-7")

    assert (case.handler_level, case.assignee_id) == (HandlerLevel.DIRECTOR, "d-7")
    assert case.events[-1].assignee == "d-7"


def test_transfer_to_the_same_department_is_refused():
    case = case_in(S.ROUTED)

    with pytest.raises(InvalidCommand, match="already in quality"):
        perform(case, A.TRANSFER, to_department="quality")


# ---- escalation ------------------------------------------------------------------------


def test_escalation_climbs_one_level_at_a_time_and_keeps_state_and_history():
    case = case_in(S.INVESTIGATING)
    before = list(case.history)

    perform(case, A.ESCALATE, reason=EscalationReason.SLA_BREACH, actor="system:sla")
    perform(case, A.ESCALATE, reason="sla_breach", actor="system:sla", assignee_id="d-1")

    assert case.state is S.INVESTIGATING
    assert case.handler_level is HandlerLevel.DIRECTOR
    assert case.assignee_id == "d-1"
    assert case.escalation_level == 2
    assert case.history[: len(before)] == before
    first, second = case.events
    assert (first.from_level, first.to_level, first.reason, first.capped) == (
        "agent",
        "department_manager",
        "sla_breach",
        False,
    )
    assert first.assignee is None
    assert (second.from_level, second.to_level) == ("department_manager", "director")


def test_escalation_at_executive_is_recorded_but_goes_no_further():
    case = case_in(S.ROUTED)
    for _ in range(3):
        perform(case, A.ESCALATE, assignee_id="x-1")
    version = case.version

    perform(case, A.ESCALATE, reason="sla_breach")

    assert case.handler_level is HandlerLevel.EXECUTIVE
    assert case.assignee_id == "x-1"
    assert case.version == version + 1
    assert case.escalation_level == 4
    event = case.events[-1]
    assert event.capped is True
    assert (event.from_level, event.to_level) == ("executive", "executive")
    assert case.history[-1].details["capped"] == "true"


def test_escalation_reason_must_be_known_and_assignee_not_the_subject():
    case = case_in(S.ROUTED)

    with pytest.raises(InvalidCommand, match="escalation reason"):
        perform(case, A.ESCALATE, reason="bored")
    with pytest.raises(ConflictOfInterest):
        perform(case, A.ESCALATE, assignee_id="a-9")
    assert case.handler_level is HandlerLevel.AGENT


# ---- assignment and notes --------------------------------------------------------------


def test_assign_moves_the_case_between_people_and_back_to_the_queue():
    case = case_in(S.ACKNOWLEDGED)

    perform(case, A.ASSIGN, assignee_id="a-2", note="a-1 is absent")
    perform(case, A.ASSIGN, assignee_id=None)

    assert case.assignee_id is None
    first, second = case.events
    assert (first.from_assignee, first.assignee, first.note) == ("a-1", "a-2", "a-1 is absent")
    assert (second.from_assignee, second.assignee) == ("a-2", None)
    with pytest.raises(InvalidCommand, match="already assigned"):
        perform(case, A.ASSIGN, assignee_id=None)
    with pytest.raises(ConflictOfInterest):
        perform(case, A.ASSIGN, assignee_id="a-9")


def test_note_is_kept_in_history_and_event():
    case = case_in(S.SOLUTION_PROPOSED)

    perform(case, A.ADD_NOTE, note="customer prefers a refund")

    assert case.state is S.SOLUTION_PROPOSED
    assert case.history[-1].note == "customer prefers a refund"
    assert case.events[-1].note == "customer prefers a refund"


# ---- occurred_at -----------------------------------------------------------------------


def test_occurred_at_defaults_to_now():
    case = case_in(S.ROUTED)
    now = next_time(case)

    perform(case, A.ACKNOWLEDGE, now=now)

    assert case.history[-1].occurred_at == case.history[-1].recorded_at == now


def test_offline_work_logged_later_keeps_both_times():
    case = case_in(S.ACKNOWLEDGED)
    visit = next_time(case)
    logged = visit + timedelta(hours=5)

    perform(case, A.START_INVESTIGATION, now=logged, occurred_at=visit)

    entry = case.history[-1]
    assert (entry.occurred_at, entry.recorded_at) == (visit, logged)
    assert (case.events[-1].occurred_at, case.events[-1].recorded_at) == (visit, logged)


def test_occurred_at_in_the_future_is_refused():
    case = case_in(S.ROUTED)
    now = next_time(case)

    with pytest.raises(InvalidOccurredAt, match="in the future"):
        perform(case, A.ACKNOWLEDGE, now=now, occurred_at=now + timedelta(seconds=1))
    assert case.state is S.ROUTED


def test_occurred_at_before_the_complaint_was_received_is_refused():
    with pytest.raises(InvalidOccurredAt, match="before the complaint was received"):
        open_case(occurred_at=RECEIVED - timedelta(minutes=1))


def test_occurred_at_before_the_previous_step_is_refused_but_equal_is_fine():
    case = case_in(S.ACKNOWLEDGED)
    previous = case.history[-1].occurred_at
    now = previous + timedelta(hours=1)

    with pytest.raises(InvalidOccurredAt, match="before the previous step"):
        perform(case, A.START_INVESTIGATION, now=now, occurred_at=previous - timedelta(seconds=1))
    perform(case, A.START_INVESTIGATION, now=now, occurred_at=previous)

    assert case.state is S.INVESTIGATING
    assert case.version == len(case.history)


def test_naive_times_are_refused():
    case = case_in(S.ROUTED)
    now = next_time(case)

    with pytest.raises(InvalidOccurredAt, match="time zone"):
        perform(case, A.ACKNOWLEDGE, now=now, occurred_at=now.replace(tzinfo=None))
    with pytest.raises(InvalidCommand, match="time zone"):
        perform(case, A.ACKNOWLEDGE, now=now.replace(tzinfo=None))


def test_times_in_other_zones_compare_by_instant():
    case = case_in(S.ROUTED)
    routed_utc = case.history[-1].occurred_at
    beijing = timezone(timedelta(hours=8))
    # 1 minute after routing, written in Beijing time: later by the clock, not by the text.
    just_after = (routed_utc + timedelta(minutes=1)).astimezone(beijing)
    before = (routed_utc - timedelta(minutes=1)).astimezone(beijing)

    with pytest.raises(InvalidOccurredAt):
        perform(case, A.ACKNOWLEDGE, now=just_after, occurred_at=before)
    perform(case, A.ACKNOWLEDGE, now=just_after)

    assert case.acknowledged_at == routed_utc + timedelta(minutes=1)


# ---- versions --------------------------------------------------------------------------


def test_every_action_bumps_the_version_by_one():
    case = open_case()
    versions = [case.version]
    for action in PATH_TO[S.CLOSED]:
        perform(case, action)
        versions.append(case.version)

    assert versions == list(range(1, 8))
    assert [e.version for e in case.events] == versions
    assert [t.version for t in case.history] == versions


def test_expect_version_refuses_a_stale_version():
    case = case_in(S.ACKNOWLEDGED)

    case.expect_version(2)
    with pytest.raises(VersionConflict) as conflict:
        case.expect_version(1)

    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    assert "version 2, not 1" in str(conflict.value)


def test_a_case_loaded_from_storage_continues_from_its_version():
    stored = case_in(S.INVESTIGATING)
    loaded = Case(
        case_id=stored.case_id,
        complaint_id=stored.complaint_id,
        complaint_received_at=stored.complaint_received_at,
        department=stored.department,
        handler_level=stored.handler_level,
        state=stored.state,
        version=stored.version,
        assignee_id=stored.assignee_id,
        history=stored.history,
    )

    perform(loaded, A.RECORD_ROOT_CAUSE)

    assert loaded.version == stored.version + 1
    assert loaded.events[-1].version == loaded.version
    assert loaded.allowed_actions == allowed_actions(S.INVESTIGATING)
    assert loaded.can(A.PROPOSE_SOLUTION) and not loaded.can(A.CLOSE)


def test_an_escalation_to_a_named_level_rises_there_in_one_step():
    case = case_in(S.INVESTIGATING)

    perform(case, A.ESCALATE, reason="sla_breach", to_level="director", assignee_id="d-1")

    (event,) = case.events
    assert (event.from_level, event.to_level, event.capped) == ("agent", "director", False)
    assert (case.handler_level, case.assignee_id, case.escalation_level) == ("director", "d-1", 1)
    assert case.history[-1].details["to_level"] == "director"


@pytest.mark.parametrize("level", ["agent", "executive-ish"])
def test_an_escalation_to_a_level_not_above_the_case_is_refused(level):
    case = case_in(S.INVESTIGATING)

    with pytest.raises(InvalidCommand):
        perform(case, A.ESCALATE, to_level=level)

    assert (case.version, case.events) == (3, [])
