"""Pure rules: the projection's merges, the alert and PDCA state machines, the rate ratio."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime

import pytest
from analytics_factories import evidence, improvement_action
from tousu_analytics.domain import case_timeline
from tousu_analytics.domain.actions import Target
from tousu_analytics.domain.alerts import Alert, Series
from tousu_analytics.domain.effect import Period, rate_ratio
from tousu_analytics.domain.projection import Merge, changes_for, local_day
from tousu_shared.contracts.analytics import SystemicIssueDetected
from tousu_shared.contracts.case import CaseResolved, FirstResponseSent
from tousu_shared.contracts.complaint import ClassificationData, ComplaintReclassified
from tousu_shared.errors import Conflict, InvalidInput

NOW = datetime(2025, 10, 9, 1, tzinfo=UTC)


def test_the_local_day_is_chinas() -> None:
    assert local_day(datetime(2025, 9, 30, 17, tzinfo=UTC)) == date(2025, 10, 1)


def test_case_facts_merge_so_that_replays_are_harmless() -> None:
    cid = uuid.uuid4()
    common = {
        "complaint_id": cid,
        "department": "q",
        "actor": "a",
        "occurred_at": NOW,
        "recorded_at": NOW,
    }
    (first,) = changes_for(FirstResponseSent(**common, case_version=2), uuid.uuid4())
    assert first.merge_of("first_response_at") is Merge.LEAST
    resolved, cause = changes_for(
        CaseResolved(
            **common, case_version=5, resolution="r", root_cause="batch", responsible_person="li"
        ),
        uuid.uuid4(),
    )
    assert resolved.merge_of("resolved_at") is Merge.LEAST
    assert cause.merge_of("root_cause") is Merge.NEWER_CASE
    assert cause.version_column == "root_cause_version"


def test_a_reclassification_counts_one_correction_per_changed_dimension() -> None:
    def data(category: str, urgency: str) -> ClassificationData:
        return ClassificationData(
            category=category, severity="general", urgency=urgency, customer_tier="regular"
        )

    event_id = uuid.uuid4()
    changes = changes_for(
        ComplaintReclassified(
            complaint_id=uuid.uuid4(),
            classification=data("other", "priority"),
            previous=data("product_quality", "routine"),
            reason="r",
            corrected_by="m",
        ),
        event_id,
    )
    corrections = {c.key["dimension"]: c.values for c in changes if c.table == "correction"}
    assert set(corrections) == {"category", "urgency"}
    assert corrections["category"]["from_value"] == "product_quality"
    assert changes[0].values["classified_by"] == "person"


def test_an_alert_announces_itself_once_and_follows_its_states() -> None:
    alert = Alert.raise_for(
        Series("category_product_line", "product_quality", "laptops"),
        evidence(first_day=date(2025, 5, 19), p_value=1e-8, shared={"region": "east"}),
        NOW,
    )
    (message,) = alert.pull_messages()
    assert isinstance(message.event, SystemicIssueDetected)
    assert message.event.complaint_id == alert.id and message.event.product_line == "laptops"
    assert alert.pull_messages() == []
    alert.acknowledge("manager:zhao", NOW)
    with pytest.raises(Conflict) as refused:
        alert.acknowledge("manager:zhao", NOW)
    assert refused.value.details["allowed_actions"] == ["link", "dismiss"]
    alert.dismiss("a known supplier recall", "manager:zhao", NOW)
    assert [step["what"] for step in alert.history] == ["detected", "acknowledged", "dismissed"]


def test_pdca_moves_plan_do_check_act_and_measures_from_do() -> None:
    action = improvement_action(
        starts_on=date(2025, 10, 1), created_at=NOW, target=Target(product_line="laptops")
    )
    with pytest.raises(Conflict):
        action.advance("check", "m", date(2025, 10, 2), None, NOW)
    action.advance("do", "m", date(2025, 10, 3), None, NOW)
    action.advance("check", "m", date(2025, 11, 3), None, NOW)
    action.advance("act", "m", date(2025, 11, 4), None, NOW)
    assert action.started_on == date(2025, 10, 3) and action.allowed_next == ("plan",)
    with pytest.raises(InvalidInput):
        Target()


def test_an_action_is_active_from_its_start_until_its_cycle_closes() -> None:
    action = improvement_action(
        starts_on=date(2025, 10, 15), due_on=date(2025, 10, 20), created_at=NOW
    )
    september, october, november = (
        (date(2025, m, 1), date(2025, m, d)) for m, d in ((9, 30), (10, 31), (11, 30))
    )
    assert not action.active_during(*september) and action.active_during(*october)
    assert action.active_during(*november)  # past its due date but not closed: still on
    action.advance("do", "m", date(2025, 9, 28), None, NOW)  # started early
    assert action.began_on == date(2025, 9, 28) and action.active_during(*september)
    action.advance("check", "m", date(2025, 10, 20), None, NOW)
    action.advance("act", "m", date(2025, 10, 30), None, NOW)
    assert action.ended_on == date(2025, 10, 30)
    assert action.active_during(*october) and not action.active_during(*november)
    action.advance("plan", "m", date(2025, 11, 5), None, NOW)  # a new cycle
    assert action.ended_on is None and action.active_during(*november)


def test_the_rate_ratio_of_the_seed_example() -> None:
    effect = rate_ratio([Period("2025-09", 150, 1000, False), Period("2025-10", 80, 1000, True)])
    assert effect is not None
    se = math.sqrt(1 / 150 + 1 / 80)
    assert effect.rate_ratio == pytest.approx(80 / 150)
    assert effect.ci_low == pytest.approx(80 / 150 * math.exp(-1.959964 * se), rel=1e-5)
    assert effect.p_value < 1e-4
    # With more periods than parameters the interval widens by the estimated dispersion.
    wide = rate_ratio(
        [
            Period("a", 150, 1000, False),
            Period("b", 110, 1000, False),
            Period("c", 80, 1000, True),
            Period("d", 60, 1000, True),
        ]
    )
    assert wide is not None and wide.dispersion > 1
    assert rate_ratio([Period("a", 0, 1000, False), Period("b", 0, 1000, True)]) is None


def test_the_timeline_reads_instants_and_actors_only_from_fields() -> None:
    # happened_at and actor_of ask an event only for the fields its type has: every other
    # name must read as absent on every timeline event (no property or class attribute of
    # that name), as it did when each event was asked for all of them.
    names = (*case_timeline._TIME_FIELDS, *case_timeline._ACTOR_FIELDS)
    for cls in case_timeline.TIMELINE_EVENTS:
        assert cls.model_config.get("extra") == "forbid", cls
        assert not [n for n in names if n not in cls.model_fields and hasattr(cls, n)], cls
