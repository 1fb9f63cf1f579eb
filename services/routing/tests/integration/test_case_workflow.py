"""The case workflow through the API: every legal and illegal transition, times, versions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tousu_routing.domain import TRANSITIONS, CaseState, allowed_actions
from tousu_shared.contracts.feedback import CustomerConfirmed

pytestmark = pytest.mark.integration


def slug(action) -> str:
    return str(action).replace("_", "-")


# How a fresh (routed) case reaches each state through the API.
PATH_TO: dict[str, list[tuple[str, dict]]] = {"routed": []}
PATH_TO["acknowledged"] = [*PATH_TO["routed"], ("acknowledge", {})]
PATH_TO["investigating"] = [*PATH_TO["acknowledged"], ("start-investigation", {})]
PATH_TO["solution_proposed"] = [
    *PATH_TO["investigating"],
    (
        "record-root-cause",
        {"root_cause": "scratched in transport", "responsible_person": "carrier"},
    ),
    ("propose-solution", {"solution": "full refund and ¥200 compensation"}),
]
PATH_TO["resolved"] = [*PATH_TO["solution_proposed"], ("resolve", {"resolution": "refunded"})]
PATH_TO["closed"] = [*PATH_TO["resolved"], ("close", {"close_reason": "manual"})]

VALID_BODY: dict[str, dict] = {
    "acknowledge": {"note": "on it"},
    "respond-to-customer": {"note": "apologised by phone"},
    "start-investigation": {},
    "record-root-cause": {"root_cause": "transport damage"},
    "propose-solution": {"solution": "replace the laptop"},
    "resolve": {
        "resolution": "replaced",
        "root_cause": "transport damage",
        "responsible_person": "carrier",
    },
    "close": {"close_reason": "manual"},
    "reopen": {"comment": "the new one is broken too"},
    "transfer": {"to_department": "logistics", "reason": "a carrier problem"},
    "escalate": {"note": "customer threatens to go to the press"},
    "add-note": {"note": "waiting for photos"},
    "assign": {},  # filled per case: the other agent
}


async def drive(kit, case: dict, state: str) -> dict:
    for action, body in PATH_TO[state]:
        case = await kit.act(case, action, body)
    assert case["state"] == state
    return case


def body_for(action: str, case: dict) -> dict:
    if action == "assign":
        return {"assignee_id": "qa-2" if case["assignee_id"] != "qa-2" else "qa-1"}
    return VALID_BODY[action]


@pytest.fixture
async def departments(kit):
    await kit.quality(("qa-exec", "executive"))
    await kit.department("logistics", [("lg-1", "agent"), ("lg-mgr", "department_manager")])
    await kit.rule("quality-products", "quality", category=["product_quality"])


LEGAL = [
    (slug(action), str(state), str(target))
    for action, moves in TRANSITIONS.items()
    for state, target in moves.items()
]
ILLEGAL = {
    str(state): [slug(a) for a in TRANSITIONS if state not in TRANSITIONS[a]] for state in CaseState
}


async def test_every_legal_transition_through_the_api(kit, departments):
    cases = await kit.open_cases(len(LEGAL))

    for case, (action, state, target) in zip(cases, LEGAL, strict=True):
        case = await drive(kit, case, state)
        response = await kit.http.post(
            f"/v1/cases/{case['id']}/actions/{action}",
            json=body_for(action, case),
            headers={"If-Match": f'"{case["version"]}"'},
        )

        assert response.status_code == 200, (action, state, response.text)
        after = response.json()
        assert after["state"] == target, (action, state)
        assert after["version"] == case["version"] + 1
        assert response.headers["ETag"] == f'"{after["version"]}"'
        assert after["history"][-1]["action"] == action
        assert after["history"][-1]["from_state"] == state
        assert after["history"][:-1] == case["history"]
        assert after["allowed_actions"] == [slug(a) for a in allowed_actions(CaseState(target))]


async def test_illegal_transitions_are_refused_with_the_allowed_actions(kit, departments):
    cases = await kit.open_cases(len(ILLEGAL))

    for case, (state, refused) in zip(cases, ILLEGAL.items(), strict=True):
        case = await drive(kit, case, state)
        for action in refused:
            response = await kit.http.post(
                f"/v1/cases/{case['id']}/actions/{action}", json=body_for(action, case)
            )
            assert response.status_code == 409, (state, action, response.text)
            body = response.json()
            assert body["error"] == "illegal_transition"
            assert (body["state"], body["action"]) == (state, action)
            assert body["allowed_actions"] == [slug(a) for a in allowed_actions(CaseState(state))]
            assert action not in body["allowed_actions"]
        assert (await kit.case(case["id"]))["version"] == case["version"]


async def test_the_worked_case_keeps_both_times_and_publishes_every_step(kit, departments):
    contact = datetime.now(UTC) - timedelta(hours=20)
    case = await kit.open_case(
        category="product_quality",
        severity="serious",
        received_overrides={"contact_at": contact, "received_at": contact},
    )
    assert (case["department"], case["handler_level"], case["assignee_id"]) == (
        "quality",
        "department_manager",
        "qa-mgr",
    )

    steps = [
        ("acknowledge", 1, {}),
        ("respond-to-customer", 1, {"note": "apology"}),
        ("start-investigation", 6, {"note": "technician on site"}),
        (
            "record-root-cause",
            12,
            {"root_cause": "warehousing damage", "responsible_person": "warehouse B"},
        ),
        ("propose-solution", 12, {"solution": "full refund + ¥200"}),
        ("resolve", 18, {"resolution": "refund and compensation paid"}),
    ]
    for action, hours, body in steps:
        case = await kit.act(
            case, action, {**body, "occurred_at": (contact + timedelta(hours=hours)).isoformat()}
        )
    assert case["state"] == "resolved"
    assert case["first_response_at"] == (contact + timedelta(hours=1)).isoformat().replace(
        "+00:00", "Z"
    )
    assert (case["root_cause"], case["responsible_person"]) == ("warehousing damage", "warehouse B")
    logged = case["history"][-1]
    assert datetime.fromisoformat(logged["occurred_at"]) == contact + timedelta(hours=18)
    assert datetime.fromisoformat(logged["recorded_at"]) > contact + timedelta(hours=19)

    await kit.publish(
        CustomerConfirmed(
            complaint_id=case["complaint_id"],
            survey_id="s-1",
            confirmed_at=contact + timedelta(hours=19),
        )
    )
    case = await kit.case_when(case["id"], lambda c: c["state"] == "closed")
    assert case["close_reason"] == "customer_confirmed"

    expected = [
        "CaseRouted",
        "CaseAcknowledged",
        "FirstResponseSent",
        "InvestigationStarted",
        "RootCauseRecorded",
        "SolutionProposed",
        "CaseResolved",
        "CaseClosed",
    ]
    on_case_stream = await kit.published("case.events", case["complaint_id"])
    assert [e.type for e in on_case_stream] == expected
    assert [e.data["case_version"] for e in on_case_stream] == list(range(1, 9))
    assert (
        on_case_stream[5]
        .data["occurred_at"]
        .startswith((contact + timedelta(hours=12)).isoformat()[:19])
    )
    on_department_topic = await kit.published("case.routed.quality", case["complaint_id"])
    assert [e.type for e in on_department_topic] == expected

    audit = (
        await kit.http.get("/v1/admin/audit", params={"complaint_id": case["complaint_id"]})
    ).json()
    assert [a["action"] for a in audit] == [
        "case.route",
        "case.acknowledge",
        "case.respond_to_customer",
        "case.start_investigation",
        "case.record_root_cause",
        "case.propose_solution",
        "case.resolve",
        "case.close",
    ]


async def test_occurred_at_may_not_be_in_the_future_or_before_the_complaint(kit, departments):
    case = await kit.open_case()
    received_at = datetime.fromisoformat(case["complaint_received_at"])

    future = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/acknowledge",
        json={"occurred_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
    )
    too_early = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/acknowledge",
        json={"occurred_at": (received_at - timedelta(minutes=1)).isoformat()},
    )
    naive = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/acknowledge", json={"occurred_at": "2030-01-01T10:00:00"}
    )

    assert (future.status_code, future.json()["field"]) == (422, "occurred_at")
    assert "future" in future.json()["message"]
    assert (too_early.status_code, too_early.json()["field"]) == (422, "occurred_at")
    assert naive.status_code == 422
    assert (await kit.case(case["id"]))["version"] == case["version"]


async def test_resolving_needs_root_cause_and_responsible_person(kit, departments):
    case = await drive(kit, await kit.open_case(), "investigating")
    case = await kit.act(case, "propose-solution", {"solution": "refund"})

    refused = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/resolve", json={"resolution": "refunded"}
    )

    assert refused.status_code == 422
    assert "root_cause and responsible_person" in refused.json()["message"]


async def test_two_agents_with_the_same_version_cannot_both_write(kit, departments):
    case = await kit.open_case()

    async def note(text: str):
        return await kit.http.post(
            f"/v1/cases/{case['id']}/actions/add-note",
            json={"note": text},
            headers={"If-Match": f'"{case["version"]}"'},
        )

    first, second = await asyncio.gather(note("called the customer"), note("sent an email"))

    assert sorted([first.status_code, second.status_code]) == [200, 412]
    loser = first if first.status_code == 412 else second
    assert loser.json()["error"] == "precondition_failed"
    assert loser.json()["current_version"] == case["version"] + 1
    after = await kit.case(case["id"])
    assert after["version"] == case["version"] + 1
    assert len([h for h in after["history"] if h["action"] == "add-note"]) == 1

    body_version = await kit.http.post(
        f"/v1/cases/{case['id']}/actions/acknowledge", json={"expected_version": case["version"]}
    )
    assert body_version.status_code == 412
    unversioned = await kit.http.post(f"/v1/cases/{case['id']}/actions/acknowledge")
    assert unversioned.status_code == 200  # If-Match is optional; last writer wins then


async def test_transfer_and_escalation_keep_the_history(kit, departments):
    case = await kit.open_case()
    case = await kit.act(case, "acknowledge")
    case = await kit.act(case, "start-investigation")

    case = await kit.act(
        case, "transfer", {"to_department": "logistics", "reason": "the carrier damaged it"}
    )
    assert (case["state"], case["department"], case["assignee_id"]) == (
        "routed",
        "logistics",
        "lg-1",
    )
    assert case["acknowledged_at"] is None
    case = await kit.act(case, "escalate", {"note": "VIP, press threat"})
    assert (case["handler_level"], case["assignee_id"], case["escalation_level"]) == (
        "department_manager",
        "lg-mgr",
        1,
    )
    case = await kit.act(case, "escalate")
    assert (case["handler_level"], case["assignee_id"]) == ("director", None)  # nobody there

    history = [(h["action"], h["to_state"]) for h in case["history"]]
    assert history == [
        ("route", "routed"),
        ("acknowledge", "acknowledged"),
        ("start-investigation", "investigating"),
        ("transfer", "routed"),
        ("escalate", "routed"),
        ("escalate", "routed"),
    ]
    transfer = case["history"][3]
    assert transfer["details"]["from_department"] == "quality"
    assert transfer["note"] == "the carrier damaged it"
    assert case["history"][4]["details"] == {
        "from_level": "agent",
        "to_level": "department_manager",
        "reason": "manual",
        "capped": "false",
    }

    old_topic = [e.type for e in await kit.published("case.routed.quality", case["complaint_id"])]
    new_topic = await kit.published("case.routed.logistics", case["complaint_id"])
    assert old_topic == [
        "CaseRouted",
        "CaseAcknowledged",
        "InvestigationStarted",
        "CaseTransferred",
    ]
    assert [e.type for e in new_topic] == ["CaseRouted", "CaseEscalated", "CaseEscalated"]
    assert new_topic[0].data["rule_reason"] == ("transferred from quality: the carrier damaged it")
    assert new_topic[0].data["contact_details_url"].endswith("/contact")
    transferred = [
        e
        for e in await kit.published("case.events", case["complaint_id"])
        if e.type == "CaseTransferred"
    ]
    assert transferred[0].data["from_department"] == "quality"
    assert transferred[0].data["department"] == "logistics"


async def test_unknown_cases_and_actions_are_404(kit, departments):
    case = await kit.open_case()

    missing = await kit.http.post(f"/v1/cases/{uuid.uuid4()}/actions/acknowledge")
    unknown = await kit.http.post(f"/v1/cases/{case['id']}/actions/teleport")

    assert missing.status_code == 404
    assert unknown.status_code == 404
    assert "acknowledge" in unknown.json()["known_actions"]
