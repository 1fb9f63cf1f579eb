"""Handler level by severity, assignment inside a department, and the conflict-of-interest rule."""

from __future__ import annotations

import dataclasses

import pytest
from tousu_routing.domain import (
    Availability,
    ComplaintSubject,
    Department,
    HandlerLevel,
    InvalidCommand,
    InvalidDepartment,
    Member,
    RoutingFacts,
    RoutingRule,
    RuleCriteria,
    RuleSet,
    UnknownDepartment,
    check_conflict_of_interest,
    choose_assignee,
    handler_level_for,
    plan_routing,
)

AGENT = HandlerLevel.AGENT
MANAGER = HandlerLevel.DEPARTMENT_MANAGER
DIRECTOR = HandlerLevel.DIRECTOR
EXECUTIVE = HandlerLevel.EXECUTIVE


def member(
    member_id: str,
    level: HandlerLevel = AGENT,
    load: int = 0,
    manager: str | None = None,
    availability: Availability = Availability.AVAILABLE,
    department: str = "quality",
):
    """A member of the quality department unless told otherwise."""
    return Member(
        id=member_id,
        name=member_id.upper(),
        department=department,
        level=level,
        availability=availability,
        open_cases=load,
        manager_id=manager,
    )


STAFF = (
    member("a-1", AGENT, load=3, manager="m-1"),
    member("a-2", AGENT, load=1, manager="m-1"),
    member("a-3", AGENT, load=1, manager="m-1"),
    member("m-1", MANAGER, load=2, manager="d-1"),
    member("m-2", MANAGER, load=5, manager="d-1"),
    member("d-1", DIRECTOR, load=0, manager="x-1"),
    member("x-1", EXECUTIVE, load=0, department="board"),
)
QUALITY = Department(
    code="quality",
    name="Quality",
    chain={
        AGENT: ("a-1", "a-2", "a-3"),
        MANAGER: ("m-1", "m-2"),
        DIRECTOR: ("d-1",),
        EXECUTIVE: ("x-1",),
    },
)


def replace(members, member_id, **changes):
    """The roster with one member changed."""
    return tuple(dataclasses.replace(m, **changes) if m.id == member_id else m for m in members)


# ---- handler level ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "level", "notify"),
    [
        ("minor", AGENT, False),
        ("general", AGENT, False),
        ("serious", MANAGER, False),
        ("major", DIRECTOR, True),
    ],
)
def test_handler_level_follows_severity(severity, level, notify):
    decision = handler_level_for(severity)

    assert decision.level is level
    assert decision.notify_management is notify
    assert severity in decision.reason


def test_levels_compare_by_rank_not_alphabetically():
    assert AGENT < MANAGER < DIRECTOR < EXECUTIVE
    assert max(EXECUTIVE, DIRECTOR) is EXECUTIVE
    assert AGENT.one_up() is MANAGER
    assert EXECUTIVE.one_up() is EXECUTIVE
    assert EXECUTIVE.is_top and not DIRECTOR.is_top


def test_unknown_severity_is_refused():
    with pytest.raises(InvalidCommand, match="severity"):
        RoutingFacts(severity="catastrophic")


# ---- assignment ------------------------------------------------------------------------


def test_least_loaded_available_member_at_exactly_the_level_gets_the_case():
    decision = choose_assignee(QUALITY, MANAGER, STAFF)

    assert decision.assignee_id == "m-1"
    assert decision.level is MANAGER
    assert not decision.is_queued
    assert "least loaded" in decision.reason


def test_load_ties_go_to_the_smallest_member_id():
    # a-2 and a-3 both carry one case; listing order must not matter.
    department = Department(code="quality", name="Q", chain={AGENT: ("a-3", "a-1", "a-2")})

    assert choose_assignee(department, AGENT, STAFF).assignee_id == "a-2"
    assert choose_assignee(department, AGENT, tuple(reversed(STAFF))).assignee_id == "a-2"


@pytest.mark.parametrize("availability", [Availability.ABSENT, Availability.OFF_SHIFT])
def test_absent_and_off_shift_members_are_skipped(availability):
    staff = replace(STAFF, "a-2", availability=availability)

    decision = choose_assignee(QUALITY, AGENT, staff)

    assert decision.assignee_id == "a-3"
    assert ("a-2", str(availability)) in decision.skipped


def test_conflicted_members_are_skipped():
    decision = choose_assignee(QUALITY, AGENT, STAFF, conflicted_ids={"a-2"})

    assert decision.assignee_id == "a-3"
    assert ("a-2", "conflict of interest") in decision.skipped


def test_members_of_other_levels_are_never_chosen_even_if_less_loaded():
    # d-1 has no load but sits at director; an agent case stays with agents.
    decision = choose_assignee(QUALITY, AGENT, STAFF)

    assert decision.assignee_id == "a-2"


def test_listed_member_whose_own_level_differs_is_skipped():
    staff = replace(STAFF, "a-2", level=MANAGER)

    decision = choose_assignee(QUALITY, AGENT, staff)

    assert decision.assignee_id == "a-3"
    assert ("a-2", "their level is department_manager") in decision.skipped


def test_nobody_qualifies_so_the_case_waits_in_the_queue_and_says_why():
    staff = replace(STAFF, "d-1", availability=Availability.ABSENT)

    decision = choose_assignee(QUALITY, DIRECTOR, staff)

    assert decision.is_queued
    assert decision.assignee_id is None
    assert "d-1: absent" in decision.reason
    assert "waits in the quality queue at director level" in decision.reason


def test_level_with_nobody_listed_queues_the_case():
    department = Department(code="lean", name="Lean", chain={AGENT: ("a-1",)})

    decision = choose_assignee(department, DIRECTOR, STAFF)

    assert decision.is_queued
    assert "nobody serves lean at director level" in decision.reason


def test_listed_member_without_a_record_is_skipped():
    department = Department(code="quality", name="Q", chain={AGENT: ("ghost",)})

    decision = choose_assignee(department, AGENT, STAFF)

    assert decision.is_queued
    assert ("ghost", "no member record") in decision.skipped


def test_department_refuses_a_member_listed_at_two_levels_and_unknown_levels():
    with pytest.raises(InvalidDepartment, match="both"):
        Department(code="q", name="Q", chain={AGENT: ("a-1",), MANAGER: ("a-1",)})
    with pytest.raises(InvalidDepartment, match="unknown level"):
        Department(code="q", name="Q", chain={"intern": ("a-1",)})


def test_department_chain_lists_every_level_in_order():
    department = Department(code="q", name="Q", chain={"director": ("d-1",)})

    assert list(department.chain) == [AGENT, MANAGER, DIRECTOR, EXECUTIVE]
    assert department.members_at(AGENT) == ()
    assert department.level_of("d-1") is DIRECTOR
    assert department.level_of("nobody") is None


def test_member_refuses_negative_load():
    with pytest.raises(InvalidDepartment):
        member("a-9", load=-1)


# ---- conflict of interest --------------------------------------------------------------


def test_member_subject_is_excluded_and_case_goes_to_their_managers_level():
    check = check_conflict_of_interest(ComplaintSubject(member_id="a-2"), "quality", STAFF)

    assert check.excluded_member_ids == {"a-2"}
    assert check.minimum_level is MANAGER
    assert check.apply_to(AGENT) is MANAGER
    assert check.apply_to(DIRECTOR) is DIRECTOR
    assert "a-2" in check.reason


@pytest.mark.parametrize(
    ("subject", "roster_change", "floor"),
    [
        pytest.param("a-2", {"manager_id": "d-1"}, DIRECTOR, id="manager-is-a-director"),
        pytest.param("m-1", {}, DIRECTOR, id="manager-goes-to-director-or-above"),
        pytest.param("m-2", {"manager_id": None}, DIRECTOR, id="no-known-manager-one-level-up"),
        # a-1's recorded "manager" is another agent; the floor still goes above a-1's level.
        pytest.param("a-1", {"manager_id": "a-3"}, MANAGER, id="bad-roster-no-peer-handles-it"),
        pytest.param("stranger", {}, MANAGER, id="unknown-member-treated-as-an-agent"),
        pytest.param("x-1", {}, EXECUTIVE, id="executive-stays-at-executive"),
    ],
)
def test_a_member_subject_is_excluded_and_sets_the_level_floor(subject, roster_change, floor):
    staff = replace(STAFF, subject, **roster_change)

    check = check_conflict_of_interest(ComplaintSubject(member_id=subject), "quality", staff)

    assert check.minimum_level is floor
    assert check.excluded_member_ids == {subject}


def test_unit_subject_routed_to_itself_is_handled_at_manager_level_or_above():
    check = check_conflict_of_interest(
        ComplaintSubject(department_code="quality"), "quality", STAFF
    )

    assert check.minimum_level is MANAGER
    assert check.excluded_member_ids == frozenset()
    assert "unit quality" in check.reason


def test_unit_subject_routed_elsewhere_is_no_conflict():
    check = check_conflict_of_interest(
        ComplaintSubject(department_code="logistics"), "quality", STAFF
    )

    assert check.minimum_level is None
    assert check.apply_to(AGENT) is AGENT
    assert check.reason == "no conflict of interest"


def test_member_and_unit_subject_together_take_the_higher_floor():
    check = check_conflict_of_interest(
        ComplaintSubject(member_id="m-1", department_code="quality"), "quality", STAFF
    )

    assert check.minimum_level is DIRECTOR
    assert check.excluded_member_ids == {"m-1"}
    assert len(check.reasons) == 2


# ---- the whole routing plan ------------------------------------------------------------

RULES = RuleSet(
    [
        RoutingRule(
            id="quality",
            order=10,
            name="Quality",
            target_department="quality",
            criteria=RuleCriteria(category=["product_quality"]),
        ),
        RoutingRule(id="default", order=100, name="Default", target_department="quality"),
    ]
)
DEPARTMENTS = {"quality": QUALITY}


def test_plan_routes_by_rule_sets_level_by_severity_and_assigns():
    plan = plan_routing(
        RoutingFacts(severity="serious", category="product_quality"), RULES, DEPARTMENTS, STAFF
    )

    assert plan.department == "quality"
    assert plan.decision.rule_id == "quality"
    assert plan.handler_level is MANAGER
    assert plan.notify_management is False
    assert plan.assignment.assignee_id == "m-1"
    assert "rule 'quality'" in plan.reason


def test_plan_for_major_complaint_goes_to_director_with_notice():
    plan = plan_routing(RoutingFacts(severity="major", category="other"), RULES, DEPARTMENTS, STAFF)

    assert plan.handler_level is DIRECTOR
    assert plan.notify_management is True
    assert plan.assignment.assignee_id == "d-1"


@pytest.mark.parametrize(
    ("severity", "category", "subject", "level", "assignee"),
    [
        pytest.param("minor", "service_attitude", "a-2", MANAGER, "m-1", id="agent-skipped"),
        # d-1 reports to executive x-1, so a complaint about d-1 is handled by x-1.
        pytest.param("major", "other", "d-1", EXECUTIVE, "x-1", id="director-to-executive"),
    ],
)
def test_plan_for_complaint_about_a_member_skips_them_and_raises_the_level(
    severity, category, subject, level, assignee
):
    facts = RoutingFacts(
        severity=severity, category=category, subject=ComplaintSubject(member_id=subject)
    )

    plan = plan_routing(facts, RULES, DEPARTMENTS, STAFF)

    assert plan.handler_level is level
    assert plan.assignment.assignee_id == assignee
    assert subject in plan.reason


def test_plan_never_assigns_the_subject_even_at_their_own_level():
    department = Department(code="quality", name="Q", chain={MANAGER: ("m-1",), DIRECTOR: ("d-1",)})
    facts = RoutingFacts(
        severity="major",
        category="other",
        subject=ComplaintSubject(member_id="d-1", department_code="quality"),
    )

    plan = plan_routing(facts, RULES, {"quality": department}, STAFF)

    assert plan.handler_level is EXECUTIVE
    assert plan.assignment.is_queued
    assert "waits in the quality queue at executive level" in plan.reason


def test_plan_for_complaint_about_the_routed_unit_skips_its_agents():
    facts = RoutingFacts(
        severity="minor",
        category="product_quality",
        subject=ComplaintSubject(department_code="quality"),
    )

    plan = plan_routing(facts, RULES, DEPARTMENTS, STAFF)

    assert plan.handler_level is MANAGER
    assert plan.assignment.assignee_id == "m-1"


def test_plan_refuses_a_rule_pointing_at_an_unknown_department():
    rules = RuleSet([RoutingRule(id="default", order=1, name="D", target_department="ghost")])

    with pytest.raises(UnknownDepartment):
        plan_routing(RoutingFacts(severity="minor"), rules, DEPARTMENTS, STAFF)
