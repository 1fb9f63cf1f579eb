"""SQL repositories of the feedback service (one session, the unit of work's)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.db import upsert

from tousu_feedback.adapters import orm
from tousu_feedback.domain.answer import Answer, AnswerSource
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.domain.policy import SurveyPolicy
from tousu_feedback.domain.records import CaseRef, OutboundMessage
from tousu_feedback.domain.survey import Survey, SurveyState, TokenRecord

OPEN_STATES = [state.value for state in SurveyState if state.is_open]


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
                id=survey.id,
                complaint_id=survey.complaint_id,
                resolution_version=survey.resolution_version,
                resolution=survey.resolution,
                resolved_at=survey.resolved_at,
                policy_version=survey.policy_version,
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
        return Survey(
            id=m["id"],
            complaint_id=m["complaint_id"],
            resolution_version=m["resolution_version"],
            department=m["department"],
            urgency=m["urgency"],
            resolution=m["resolution"],
            resolved_at=m["resolved_at"],
            policy_version=m["policy_version"],
            offer_at=m["offer_at"],
            due_at=m["due_at"],
            expires_at=m["expires_at"],
            state=SurveyState(m["state"]),
            channel=OutboundChannel(m["channel"]) if m["channel"] else None,
            informed_at=m["informed_at"],
            offered_at=m["offered_at"],
            reminders_sent=m["reminders_sent"],
            attempts=m["attempts"],
            failed_attempts=m["failed_attempts"],
            answer=Answer.from_record(m["answer"]) if m["answer"] else None,
            answered_at=m["answered_at"],
            answer_source=AnswerSource(m["answer_source"]) if m["answer_source"] else None,
            answered_by=m["answered_by"],
            call_ref=m["call_ref"],
            new_issue_due_at=m["new_issue_due_at"],
            new_complaint_id=m["new_complaint_id"],
            closed_reason=m["closed_reason"],
            version=m["version"],
            tokens=[TokenRecord(t.digest, t.issued_at, t.expires_at, t.revoked_at) for t in tokens],
        )

    @staticmethod
    def _state(survey: Survey, policy: SurveyPolicy) -> dict[str, Any]:
        return {
            "department": survey.department,
            "urgency": survey.urgency,
            "state": survey.state.value,
            "channel": survey.channel.value if survey.channel else None,
            "offer_at": survey.offer_at,
            "due_at": survey.due_at,
            "expires_at": survey.expires_at,
            "informed_at": survey.informed_at,
            "offered_at": survey.offered_at,
            "reminders_sent": survey.reminders_sent,
            "attempts": survey.attempts,
            "failed_attempts": survey.failed_attempts,
            "answer": survey.answer.as_record() if survey.answer else None,
            "answered_at": survey.answered_at,
            "answer_source": survey.answer_source.value if survey.answer_source else None,
            "answered_by": survey.answered_by,
            "call_ref": survey.call_ref,
            "new_issue_due_at": survey.new_issue_due_at,
            "new_complaint_id": survey.new_complaint_id,
            "closed_reason": survey.closed_reason,
            "next_action_at": survey.next_action_at(policy),
            "version": survey.version,
        }

    async def _write_children(self, survey: Survey) -> None:
        for token in survey.tokens:
            if token.is_new:
                await self._session.execute(
                    insert(orm.survey_token).values(
                        digest=token.digest,
                        survey_id=survey.id,
                        issued_at=token.issued_at,
                        expires_at=token.expires_at,
                        revoked_at=token.revoked_at,
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
                id=message.id,
                survey_id=message.survey_id,
                complaint_id=message.complaint_id,
                channel=message.channel,
                kind=message.kind.value,
                subject=message.subject,
                body=message.body,
                status=message.status.value,
                created_at=message.created_at,
                sent_at=message.sent_at,
                provider_ref=message.provider_ref,
                error=message.error,
            )
        )
