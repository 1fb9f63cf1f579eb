"""The submission path's statements run on the session's asyncpg connection (issue #12):
still inside the unit of work's one transaction, and failing as SQLAlchemy would."""

from __future__ import annotations

import uuid

import pytest
from intake_factories import complaint_body, one_row
from sqlalchemy.exc import DBAPIError
from tousu_intake.adapters.repository import HOT_CLAIM_KEY
from tousu_shared.unstorable import refused_value

pytestmark = pytest.mark.integration


def claim(key: str) -> dict:
    return {
        "credential": "test-hot",
        "key": key,
        "request_hash": "h",
        "complaint_id": uuid.uuid4(),
        "response": {"id": "x", "nested": {"n": 1}},
    }


async def count_claims(intake, key: str) -> int:
    sql = "SELECT count(*) FROM intake.idempotency_key WHERE credential = 'test-hot' AND key = :k"
    return (await one_row(intake, sql, k=key))[0]


async def test_a_first_statement_runs_in_the_transaction_and_rolls_back_with_it(intake):
    context = intake.app.state.intake
    async with context.uow() as uow:
        # The first statement of the unit of work: it begins the dialect's transaction.
        assert await HOT_CLAIM_KEY.fetch(uow.session, claim("rolled-back"))
        # Left without commit.
    assert await count_claims(intake, "rolled-back") == 0
    async with context.uow() as uow:
        assert await HOT_CLAIM_KEY.fetch(uow.session, claim("kept"))
        assert not await HOT_CLAIM_KEY.fetch(uow.session, claim("kept"))  # already held
        await uow.commit()
    assert await count_claims(intake, "kept") == 1
    stored = await one_row(
        intake,
        "SELECT response FROM intake.idempotency_key "
        "WHERE credential = 'test-hot' AND key = 'kept'",
    )
    assert stored[0] == {"id": "x", "nested": {"n": 1}}


async def test_a_refused_value_fails_as_sqlalchemy_reports_it(intake):
    context = intake.app.state.intake
    async with context.uow() as uow:
        with pytest.raises(DBAPIError) as failure:
            await HOT_CLAIM_KEY.fetch(uow.session, claim("nul\x00key"))
    assert refused_value(failure.value) == "nul"
    assert "nul\x00key" not in str(failure.value)  # parameters stay hidden


async def test_submissions_still_record_complaint_contact_and_key_together(http, intake):
    body = complaint_body()
    first = await http.post("/v1/complaints", json=body, headers={"Idempotency-Key": "hot-1"})
    again = await http.post("/v1/complaints", json=body, headers={"Idempotency-Key": "hot-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    complaint_id = uuid.UUID(first.json()["id"])
    rows = await one_row(
        intake,
        "SELECT (SELECT count(*) FROM intake.complaint WHERE id = :id), "
        "(SELECT count(*) FROM intake.complaint_contact WHERE complaint_id = :id), "
        "(SELECT count(*) FROM intake.idempotency_key WHERE complaint_id = :id), "
        "(SELECT count(*) FROM intake.outbox WHERE message_key = :key)",
        id=complaint_id,
        key=str(complaint_id),
    )
    assert tuple(rows) == (1, 1, 1, 2)


async def test_a_submission_failing_at_commit_leaves_nothing(http, intake, monkeypatch):
    """Complaint, contact, idempotency key and outbox rows all ran on the raw connection
    (HotStatement), inside the one transaction: a failure before commit takes them all."""
    from tousu_intake.service_layer.unit_of_work import IntakeUnitOfWork

    async def failing_commit(self) -> None:
        raise RuntimeError("the database went away at commit")

    monkeypatch.setattr(IntakeUnitOfWork, "_commit", failing_commit)
    body = complaint_body()
    try:
        response = await http.post(
            "/v1/complaints", json=body, headers={"Idempotency-Key": "hot-failed"}
        )
    except RuntimeError:
        pass  # the in-process client re-raises the app's error
    else:
        assert response.status_code == 500
    monkeypatch.undo()
    rows = await one_row(
        intake,
        "SELECT (SELECT count(*) FROM intake.complaint), "
        "(SELECT count(*) FROM intake.complaint_contact), "
        "(SELECT count(*) FROM intake.idempotency_key), "
        "(SELECT count(*) FROM intake.outbox)",
    )
    assert tuple(rows) == (0, 0, 0, 0)
    again = await http.post("/v1/complaints", json=body, headers={"Idempotency-Key": "hot-failed"})
    assert again.status_code == 201  # the key was not left claimed
