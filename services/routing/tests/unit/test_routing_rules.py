"""Routing rules: order, default queue, every criterion, validation and dry run."""

from __future__ import annotations

import pytest
from tousu_routing.domain import (
    InvalidRule,
    RoutingFacts,
    RoutingRule,
    RuleCriteria,
    RuleSet,
    UnknownDepartment,
)

DEFAULT = RoutingRule(id="default", order=1000, name="Default queue", target_department="service")


def rule(rule_id: str, order: int, target: str, enabled: bool = True, **criteria) -> RoutingRule:
    """A rule with the given criteria."""
    return RoutingRule(
        id=rule_id,
        order=order,
        name=f"rule {rule_id}",
        target_department=target,
        criteria=RuleCriteria(**criteria),
        enabled=enabled,
    )


def facts(**overrides) -> RoutingFacts:
    """A typical complaint's facts, with overrides."""
    values = dict(
        severity="general",
        category="product_quality",
        product_line="laptops",
        region="east",
        channel="phone",
        customer_tier="regular",
        risk_flags=frozenset(),
    )
    values.update(overrides)
    return RoutingFacts(**values)


def test_first_matching_rule_by_order_wins_whatever_the_insertion_order():
    broad = rule("broad", 20, "quality", category=["product_quality"])
    narrow = rule(
        "narrow", 10, "laptop-quality", category=["product_quality"], product_line=["laptops"]
    )
    rules = RuleSet([DEFAULT, broad, narrow])

    decision = rules.route(facts())

    assert decision.department == "laptop-quality"
    assert decision.rule_id == "narrow"
    assert [r.id for r in rules.rules] == ["narrow", "broad", "default"]


def test_later_rule_matches_when_earlier_does_not():
    rules = RuleSet(
        [
            DEFAULT,
            rule("phones", 10, "phone-quality", product_line=["phones"]),
            rule("quality", 20, "quality", category=["product_quality"]),
        ]
    )

    assert rules.route(facts()).rule_id == "quality"


def test_disabled_rule_is_skipped():
    rules = RuleSet(
        [
            DEFAULT,
            rule("off", 10, "quality", enabled=False, category=["product_quality"]),
        ]
    )

    assert rules.route(facts()).rule_id == "default"


def test_unmatched_complaint_goes_to_default_queue_and_says_so():
    rules = RuleSet([DEFAULT, rule("price", 10, "billing", category=["price_dispute"])])

    decision = rules.route(facts())

    assert decision.department == "service"
    assert decision.rule_id == "default"
    assert decision.matched_criteria == ()
    assert "default queue" in decision.reason
    assert "'default'" in decision.reason


def test_rule_set_without_default_is_refused():
    with pytest.raises(InvalidRule, match="default"):
        RuleSet([rule("quality", 10, "quality", category=["product_quality"])])


def test_rule_set_whose_only_default_is_disabled_is_refused():
    disabled_default = rule("default", 1000, "service", enabled=False)
    with pytest.raises(InvalidRule, match="default"):
        RuleSet([disabled_default])


def test_duplicate_rule_ids_are_refused():
    with pytest.raises(InvalidRule, match="duplicate rule id"):
        RuleSet([DEFAULT, rule("default", 1, "quality", category=["other"])])


def test_duplicate_orders_are_refused():
    with pytest.raises(InvalidRule, match="order"):
        RuleSet(
            [
                DEFAULT,
                rule("a", 10, "x", category=["other"]),
                rule("b", 10, "y", category=["other"]),
            ]
        )


@pytest.mark.parametrize(
    ("criterion", "accepted", "matching_fact", "other_fact"),
    [
        ("category", ["delivery_delay"], "delivery_delay", "price_dispute"),
        ("product_line", ["phones"], "phones", "laptops"),
        ("region", ["north"], "north", "south"),
        ("channel", ["social_media"], "social_media", "email"),
        ("severity", ["major"], "major", "minor"),
        ("customer_tier", ["vip"], "vip", "regular"),
    ],
)
def test_each_scalar_criterion_matches_only_listed_values(
    criterion, accepted, matching_fact, other_fact
):
    rules = RuleSet([DEFAULT, rule("r", 10, "special", **{criterion: accepted})])

    hit = rules.route(facts(**{criterion: matching_fact}))
    miss = rules.route(facts(**{criterion: other_fact}))

    assert hit.rule_id == "r"
    assert f"{criterion}={matching_fact}" in hit.matched_criteria
    assert f"{criterion}={matching_fact}" in hit.reason
    assert miss.rule_id == "default"


@pytest.mark.parametrize(
    "criterion", ["category", "product_line", "region", "channel", "customer_tier"]
)
def test_criterion_does_not_match_a_missing_fact(criterion):
    value = {
        "category": "other",
        "product_line": "tv",
        "region": "west",
        "channel": "app",
        "customer_tier": "vip",
    }[criterion]
    rules = RuleSet([DEFAULT, rule("r", 10, "special", **{criterion: [value]})])

    assert rules.route(facts(**{criterion: None})).rule_id == "default"


def test_risk_flags_match_any_of_the_listed_flags():
    rules = RuleSet([DEFAULT, rule("risk", 10, "legal", risk_flags=["legal", "media"])])

    assert rules.route(facts(risk_flags={"media", "safety"})).rule_id == "risk"
    assert rules.route(facts(risk_flags={"legal"})).matched_criteria == (
        "risk_flags include legal",
    )
    assert rules.route(facts(risk_flags={"safety"})).rule_id == "default"
    assert rules.route(facts(risk_flags=frozenset())).rule_id == "default"


def test_a_criterion_list_accepts_any_of_its_values():
    rules = RuleSet([DEFAULT, rule("r", 10, "x", region=["north", "south"])])

    assert rules.route(facts(region="north")).rule_id == "r"
    assert rules.route(facts(region="south")).rule_id == "r"
    assert rules.route(facts(region="east")).rule_id == "default"


def test_all_criteria_of_a_rule_must_hold_and_the_reason_lists_them():
    rules = RuleSet(
        [
            DEFAULT,
            rule(
                "vip-quality", 10, "vip-desk", category=["product_quality"], customer_tier=["vip"]
            ),
        ]
    )

    hit = rules.route(facts(customer_tier="vip"))

    assert hit.rule_id == "vip-quality"
    assert hit.matched_criteria == ("category=product_quality", "customer_tier=vip")
    assert "category=product_quality, customer_tier=vip" in hit.reason
    assert rules.route(facts(customer_tier="regular")).rule_id == "default"


def test_matching_ignores_case_and_surrounding_spaces():
    rules = RuleSet([DEFAULT, rule("r", 10, "x", region=["East China"])])

    assert rules.route(facts(region="  east china ")).rule_id == "r"


def test_a_bare_string_is_one_value_not_a_list_of_letters():
    criteria = RuleCriteria(region="north")

    assert criteria.region == frozenset({"north"})


def test_empty_criterion_list_is_refused():
    with pytest.raises(InvalidRule, match="empty"):
        RuleCriteria(region=[])


@pytest.mark.parametrize(
    ("criterion", "typo"),
    [
        ("category", "quality"),
        ("channel", "fax"),
        ("severity", "huge"),
        ("customer_tier", "gold"),
        ("risk_flags", "fire"),
    ],
)
def test_unknown_values_in_closed_vocabularies_are_refused(criterion, typo):
    with pytest.raises(InvalidRule, match=criterion):
        RuleCriteria(**{criterion: [typo]})


def test_rule_needs_id_name_target_and_integer_order():
    with pytest.raises(InvalidRule):
        RoutingRule(id="", order=1, name="n", target_department="x")
    with pytest.raises(InvalidRule):
        RoutingRule(id="r", order=1, name="n", target_department=" ")
    with pytest.raises(InvalidRule):
        RoutingRule(id="r", order="1", name="n", target_department="x")


def test_explain_shows_which_criteria_held_and_failed_for_every_rule():
    rules = RuleSet(
        [
            DEFAULT,
            rule("r", 10, "x", category=["product_quality"], region=["north"]),
        ]
    )

    first, default = rules.explain(facts(region="east"))

    assert first.rule.id == "r"
    assert first.matched == ("category=product_quality",)
    assert first.failed == ("region=east",)
    assert not first.is_match
    assert default.is_match


def test_dry_run_is_just_routing_sample_facts_without_side_effects():
    rules = RuleSet([DEFAULT, rule("r", 10, "x", channel=["email"])])

    before = rules.rules
    assert rules.route(facts(channel="email")).department == "x"
    assert rules.rules == before


def test_rules_after_the_default_are_reported_unreachable():
    late = rule("late", 2000, "x", category=["other"])
    rules = RuleSet([DEFAULT, late, rule("early", 10, "y", category=["other"])])

    assert rules.unreachable_rules() == (late,)


def test_with_rule_adds_or_replaces_by_id():
    rules = RuleSet([DEFAULT])

    added = rules.with_rule(rule("r", 10, "x", category=["other"]))
    replaced = added.with_rule(rule("r", 10, "y", category=["other"]))

    assert [r.id for r in added.rules] == ["r", "default"]
    assert replaced.get("r").target_department == "y"
    assert [r.id for r in rules.rules] == ["default"]


def test_removing_the_last_default_rule_is_refused():
    rules = RuleSet([DEFAULT, rule("r", 10, "x", category=["other"])])

    assert [r.id for r in rules.without_rule("r").rules] == ["default"]
    with pytest.raises(InvalidRule, match="default"):
        rules.without_rule("default")
    with pytest.raises(KeyError):
        rules.without_rule("missing")


def test_check_targets_refuses_rules_pointing_at_unknown_departments():
    rules = RuleSet([DEFAULT, rule("r", 10, "ghost", category=["other"])])

    rules.check_targets(["service", "ghost"])
    with pytest.raises(UnknownDepartment, match="ghost"):
        rules.check_targets(["service"])
