"""SQL repositories of the feedback service (one session, the unit of work's)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.db import upsert
from tousu_shared.same_names import build, by_name

from tousu_feedback.adapters import orm
from tousu_feedback.domain.answer import Answer, AnswerSource
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.domain.policy import SurveyPolicy
from tousu_feedback.domain.records import CaseRef, OutboundMessage
from tousu_feedback.domain.survey import Survey, SurveyState, TokenRecord

OPEN_STATES = [state.value for state in SurveyState if state.is_open]
# A survey's columns that never change once it is added: what it surveys, and under which
# policy version. A save writes every other column but the row's own ``created_at``.
_WRITTEN_ONCE = (
    "id",
    "complaint_id",
    "resolution_version",
    "resolution",
    "resolved_at",
    "policy_version",
)
_SAVED = tuple(c for c in orm.survey.c.keys() if c not in {*_WRITTEN_ONCE, "created_at"})


class SqlCaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, complaint_id: uuid.UUID) -> CaseRef | None:
        row = (
            await self._session.execute(
                select(orm.case_ref).where(orm.case_ref.c.complaint_id == complaint_id)
            )
        ).first()
        return CaseRef(**row._mapping) if row else None

    async def save(self, case: CaseRef) -> None:
        values = {
            "complaint_id": case.complaint_id,
            "department": case.department,
            "urgency": case.urgency,
            "contact_details_url": case.contact_details_url,
        }
        await self._session.execute(upsert(orm.case_ref, values, key=("complaint_id",)))


class SqlPolicyRepository:
    """Version 0 is the built-in default (domain.md §4–§5); the API publishes 1, 2, …"""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def current(self) -> tuple[int, SurveyPolicy]:
        row = (
            await self._session.execute(
                select(orm.survey_policy.c.version, orm.survey_policy.c.body)
                .order_by(orm.survey_policy.c.version.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return 0, SurveyPolicy()
        return row.version, SurveyPolicy.model_validate(row.body)

    async def get(self, version: int) -> SurveyPolicy:
        if version == 0:
            return SurveyPolicy()
        body = await self._session.scalar(
            select(orm.survey_policy.c.body).where(orm.survey_policy.c.version == version)
        )
        if body is None:
            raise LookupError(f"no survey policy version {version}")
        return SurveyPolicy.model_validate(body)

    async def add(
        self, version: int, policy: SurveyPolicy, *, comment: str, actor: str, at: dt.datetime
    ) -> None:
        await self._session.execute(
            insert(orm.survey_policy).values(
                version=version,
                body=policy.model_dump(mode="json"),
                comment=comment,
                actor=actor,
                created_at=at,
            )
        )


class SqlSurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, survey_id: uuid.UUID) -> Survey | None:
        return await self._one(orm.survey.c.id == survey_id)

    async def for_resolution(
        self, complaint_id: uuid.UUID, resolution_version: int
    ) -> Survey | None:
        return await self._one(
            (orm.survey.c.complaint_id == complaint_id)
            & (orm.survey.c.resolution_version == resolution_version)
        )

    async def open_for(self, complaint_id: uuid.UUID) -> Survey | None:
        return await self._one(
            (orm.survey.c.complaint_id == complaint_id) & orm.survey.c.state.in_(OPEN_STATES)
        )

    async def by_token(self, digest: str) -> Survey | None:
        survey_id = await self._session.scalar(
            select(orm.survey_token.c.survey_id).where(orm.survey_token.c.digest == digest)
        )
        return await self.get(survey_id) if survey_id else None

    async def claim_due(self, now: dt.datetime, limit: int) -> list[Survey]:
        # SKIP LOCKED: several schedulers never work on one survey at once.
        rows = (
            await self._session.execute(
                select(orm.survey)
                .where(orm.survey.c.next_action_at <= now)
                .order_by(orm.survey.c.next_action_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        return [await self._with_tokens(row) for row in rows]

    async def add(self, survey: Survey, policy: SurveyPolicy) -> None:
        await self._session.execute(
            insert(orm.survey).values(
                **by_name(_WRITTEN_ONCE, survey),
                created_at=func.now(),
                **self._state(survey, policy),
            )
        )
        await self._write_children(survey)

    async def save(self, survey: Survey, policy: SurveyPolicy) -> None:
        survey.version += 1
        await self._session.execute(
            update(orm.survey)
            .where(orm.survey.c.id == survey.id)
            .values(**self._state(survey, policy))
        )
        await self._write_children(survey)

    # -- mapping --------------------------------------------------------------------------

    async def _one(self, condition: Any) -> Survey | None:
        row = (
            await self._session.execute(select(orm.survey).where(condition).with_for_update())
        ).first()
        return await self._with_tokens(row) if row else None

    async def _with_tokens(self, row: Any) -> Survey:
        tokens = (
            await self._session.execute(
                select(orm.survey_token).where(orm.survey_token.c.survey_id == row.id)
            )
        ).all()
        m = row._mapping
        return build(
            Survey,
            m,
            state=SurveyState(m["state"]),
            channel=OutboundChannel(m["channel"]) if m["channel"] else None,
            answer=Answer.from_record(m["answer"]) if m["answer"] else None,
            answer_source=AnswerSource(m["answer_source"]) if m["answer_source"] else None,
            tokens=[TokenRecord(t.digest, t.issued_at, t.expires_at, t.revoked_at) for t in tokens],
        )

    @staticmethod
    def _state(survey: Survey, policy: SurveyPolicy) -> dict[str, Any]:
        """The columns a save writes: all but those written once, by :meth:`add`."""
        return by_name(
            _SAVED,
            survey,
            state=survey.state.value,
            channel=survey.channel.value if survey.channel else None,
            answer=survey.answer.as_record() if survey.answer else None,
            answer_source=survey.answer_source.value if survey.answer_source else None,
            next_action_at=survey.next_action_at(policy),
        )

    async def _write_children(self, survey: Survey) -> None:
        for token in survey.tokens:
            if token.is_new:
                await self._session.execute(
                    insert(orm.survey_token).values(
                        by_name(orm.survey_token.c.keys(), token, survey_id=survey.id)
                    )
                )
            elif token.changed:
                await self._session.execute(
                    update(orm.survey_token)
                    .where(orm.survey_token.c.digest == token.digest)
                    .values(revoked_at=token.revoked_at)
                )
            token.is_new = token.changed = False
        await self._append(orm.survey_history, survey.id, survey.new_history)
        await self._append(orm.callback_attempt, survey.id, survey.new_attempts)

    async def _append(self, table: Table, survey_id: uuid.UUID, rows: list[Any]) -> None:
        """Insert a survey's new child rows (dataclasses named like the table's columns), then
        forget them."""
        if rows:
            await self._session.execute(
                insert(table), [{"survey_id": survey_id, **dataclasses.asdict(r)} for r in rows]
            )
            rows.clear()


class SqlMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, message: OutboundMessage) -> None:
        await self._session.execute(
            insert(orm.outbound_message).values(
                by_name(
                    orm.outbound_message.c.keys(),
                    message,
                    kind=message.kind.value,
                    status=message.status.value,
                )
            )
        )
