"""Read side for callback agents: the survey lists and one survey with its history.

Never shows a token or a contact detail: the link is the customer's alone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from tousu_shared.auth import Principal
from tousu_shared.errors import NotFound
from tousu_shared.pagination import decode_cursor, encode_cursor

from tousu_feedback.adapters import orm
from tousu_feedback.adapters.repository import OPEN_STATES
from tousu_feedback.domain.policy import BEIJING
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWork

LIST_COLUMNS = [
    orm.survey.c.id,
    orm.survey.c.complaint_id,
    orm.survey.c.department,
    orm.survey.c.state,
    orm.survey.c.channel,
    orm.survey.c.offer_at,
    orm.survey.c.due_at,
    orm.survey.c.expires_at,
    orm.survey.c.attempts,
    orm.survey.c.answer_source,
    orm.survey.c.answered_at,
]


@dataclass(frozen=True)
class SurveyQuery:
    department: str | None = None
    due: str | None = None  # "today" | "overdue"
    state: str | None = None
    complaint_id: uuid.UUID | None = None
    cursor: str | None = None
    limit: int = 50


async def list_surveys(
    ctx: FeedbackContext, query: SurveyQuery, principal: Principal
) -> tuple[list[dict[str, Any]], str | None]:
    """Surveys by due time, narrowed to what the caller may see."""
    department = principal.visible_department(query.department)
    statement = select(*LIST_COLUMNS).order_by(orm.survey.c.due_at, orm.survey.c.id)
    if department is not None:
        statement = statement.where(orm.survey.c.department == department)
    if query.complaint_id is not None:
        statement = statement.where(orm.survey.c.complaint_id == query.complaint_id)
    if query.state is not None:
        statement = statement.where(orm.survey.c.state == query.state)
    now = ctx.clock()
    if query.due is not None:
        statement = statement.where(orm.survey.c.state.in_(OPEN_STATES))
        if query.due == "overdue":
            statement = statement.where(orm.survey.c.due_at < now)
        else:
            start, end = _beijing_day(now)
            statement = statement.where(orm.survey.c.due_at >= start, orm.survey.c.due_at < end)
    if query.cursor:
        due_at, last_id = decode_cursor(query.cursor, dt.datetime, uuid.UUID)
        statement = statement.where(
            (orm.survey.c.due_at > due_at)
            | ((orm.survey.c.due_at == due_at) & (orm.survey.c.id > last_id))
        )
    async with ctx.uow() as uow:
        assert isinstance(uow, FeedbackUnitOfWork)
        rows = (await uow.session.execute(statement.limit(query.limit + 1))).all()
    items = [dict(row._mapping) for row in rows[: query.limit]]
    for item in items:
        item["overdue"] = item["state"] in OPEN_STATES and item["due_at"] < now
    cursor = None
    if len(rows) > query.limit:
        last = items[-1]
        cursor = encode_cursor(last["due_at"], last["id"])
    return items, cursor


async def get_survey(
    ctx: FeedbackContext, survey_id: uuid.UUID, principal: Principal
) -> dict[str, Any]:
    """One survey with its answer, callback attempts, messages and history."""
    async with ctx.uow() as uow:
        assert isinstance(uow, FeedbackUnitOfWork)
        session = uow.session
        row = (
            await session.execute(select(orm.survey).where(orm.survey.c.id == survey_id))
        ).first()
        if row is None or not principal.may_see_department(row.department):
            raise NotFound(f"no survey {survey_id}", field="survey_id")
        survey = dict(row._mapping)
        survey.pop("next_action_at", None)
        survey["history"] = await _rows(
            session,
            select(
                orm.survey_history.c.kind,
                orm.survey_history.c.at,
                orm.survey_history.c.actor,
                orm.survey_history.c.details,
            )
            .where(orm.survey_history.c.survey_id == survey_id)
            .order_by(orm.survey_history.c.id),
        )
        survey["callback_attempts"] = await _rows(
            session,
            select(orm.callback_attempt)
            .where(orm.callback_attempt.c.survey_id == survey_id)
            .order_by(orm.callback_attempt.c.attempt),
        )
        survey["messages"] = await _rows(
            session,
            select(orm.outbound_message)
            .where(orm.outbound_message.c.survey_id == survey_id)
            .order_by(orm.outbound_message.c.created_at),
        )
    return survey


async def _rows(session: Any, statement: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in (await session.execute(statement)).all()]


def _beijing_day(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(BEIJING)
    start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), zone)
    return start, start + dt.timedelta(days=1)
