"""SLA policies as data: matching, validation and the domain.md §4 defaults."""

import datetime as dt

import pytest
from tousu_sla.domain import (
    CaseAttributes,
    ClockKind,
    MatchCriteria,
    MilestoneSpec,
    PolicySet,
    SlaPolicy,
    default_policy_set,
)

H = dt.timedelta(hours=1)


def milestone(**changes):
    fields = {
        "key": "k",
        "name": "n",
        "start_event": "A",
        "stop_events": ("B",),
        "target": H,
    } | changes
    return MilestoneSpec(**fields)


def test_first_matching_policy_wins():
    policies = default_policy_set()
    assert (
        policies.select(CaseAttributes(urgency="immediate", severity="major")).name == "immediate"
    )
    assert policies.select(CaseAttributes(urgency="routine", severity="serious")).name == "complex"
    assert policies.select(CaseAttributes(urgency="routine", severity="major")).name == "complex"
    assert (
        policies.select(CaseAttributes(urgency="priority", severity="general")).name == "standard"
    )
    assert policies.select(CaseAttributes()).name == "standard"  # not classified yet


def test_match_criteria_cover_every_dimension():
    criteria = MatchCriteria(
        customer_tier=("vip",),
        category=("product_quality",),
        channel=("phone",),
        department=("ops",),
    )
    vip_case = CaseAttributes(
        customer_tier="vip", category="product_quality", channel="phone", department="ops"
    )
    assert criteria.matches(vip_case)
    assert not criteria.matches(vip_case.model_copy(update={"department": "sales"}))
    assert not criteria.matches(CaseAttributes())
    assert MatchCriteria().is_catch_all and not criteria.is_catch_all


def test_default_policy_implements_domain_targets():
    standard = default_policy_set().policy("standard")
    targets = {
        spec.key: (spec.target, spec.target_working_days, spec.clock)
        for spec in standard.milestones
    }
    assert targets == {
        "record": (2 * H, None, ClockKind.CALENDAR),
        "first_response": (24 * H, None, ClockKind.CALENDAR),
        "confirm": (24 * H, None, ClockKind.CALENDAR),
        "root_cause": (None, 2, ClockKind.BUSINESS),
        "initial_solution": (None, 3, ClockKind.BUSINESS),
        "resolve": (None, 7, ClockKind.BUSINESS),
        "follow_up": (24 * H, None, ClockKind.CALENDAR),
    }
    record = standard.milestone("record")
    assert (record.start_event, record.start_at_field, record.stop_events) == (
        "ComplaintReceived",
        "contact_at",
        ("ComplaintReceived",),
    )
    follow_up = standard.milestone("follow_up")
    assert follow_up.start_event == "CaseResolved"
    # Met when the feedback service has told the customer the result (domain.md §4).
    assert follow_up.stop_events == ("CustomerInformed",)
    assert standard.milestone("resolve").pause_events == ("CustomerWaitStarted",)
    assert standard.milestone("first_response").warn_fractions == (0.5, 0.75, 0.9)
    assert (
        default_policy_set().policy("complex").milestone("initial_solution").target_working_days
        == 5
    )


def test_immediate_policy_reproduces_the_worked_case():
    immediate = default_policy_set().policy("immediate")
    targets = {spec.key: spec.target for spec in immediate.milestones}
    assert targets["first_response"] == 1 * H
    assert targets["confirm"] == 6 * H
    assert targets["initial_solution"] == 12 * H
    assert targets["resolve"] == 18 * H
    assert all(spec.clock is ClockKind.CALENDAR for spec in immediate.milestones)


def test_policy_set_needs_exactly_one_catch_all_at_the_end():
    specific = SlaPolicy(
        name="vip", match=MatchCriteria(customer_tier=("vip",)), milestones=(milestone(),)
    )
    default = SlaPolicy(name="default", milestones=(milestone(),))
    with pytest.raises(ValueError):
        PolicySet(policies=(specific,))
    with pytest.raises(ValueError):
        PolicySet(policies=(default, specific, default.model_copy(update={"name": "again"})))
    assert (
        PolicySet(policies=(specific, default)).select(CaseAttributes(customer_tier="vip")).name
        == "vip"
    )


def test_milestone_spec_validation():
    with pytest.raises(ValueError):
        milestone(target_working_days=3)  # both targets
    with pytest.raises(ValueError):
        milestone(target=None, target_working_days=3)  # working days need the business clock
    with pytest.raises(ValueError):
        milestone(warn_fractions=(0.5, 1.2))
    with pytest.raises(ValueError):
        milestone(target=dt.timedelta(0))
    with pytest.raises(ValueError):
        SlaPolicy(name="dup", milestones=(milestone(), milestone()))
    assert milestone(warn_fractions=(0.9, 0.5)).warn_fractions == (0.5, 0.9)
    assert milestone(target=dt.timedelta(seconds=3)).target == dt.timedelta(seconds=3)
    assert milestone(target=dt.timedelta(weeks=6)).target == dt.timedelta(weeks=6)


def test_policies_are_json_data_an_operator_can_extend():
    policies = default_policy_set()
    as_json = policies.model_dump(mode="json")
    as_json["policies"][-1]["milestones"].append(
        {
            "key": "callback",
            "name": "Satisfaction callback (回访)",
            "start_event": "CaseResolved",
            "stop_events": ["CustomerConfirmed", "CustomerDissatisfied", "SurveyExpired"],
            "target": "P7D",
        }
    )
    extended = PolicySet.model_validate(as_json)
    assert extended.policy("standard").milestone("callback").target == dt.timedelta(days=7)
    assert PolicySet.model_validate_json(policies.model_dump_json()) == policies
