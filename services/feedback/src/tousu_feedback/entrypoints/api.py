"""HTTP API of the feedback service for staff: surveys, callbacks, the survey policy."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from tousu_shared.auth import Principal, require

from tousu_feedback.entrypoints.schemas import (
    CallbackAnswerCreate,
    CallbackAttemptCreate,
    PolicyRead,
    PolicyUpdate,
    SurveyPage,
    SurveyRead,
    to_answer,
)
from tousu_feedback.service_layer import answers, policies, views
from tousu_feedback.service_layer.context import FeedbackContext

router = APIRouter(prefix="/v1", tags=["feedback"])

Reader = Annotated[Principal, require("feedback:read")]
Writer = Annotated[Principal, require("feedback:write")]
PolicyAdmin = Annotated[Principal, require("sla:write")]


async def get_context(request: Request) -> FeedbackContext:
    return request.app.state.feedback


Context = Annotated[FeedbackContext, Depends(get_context)]


@router.get("/surveys", response_model=SurveyPage)
async def list_surveys(
    principal: Reader,
    ctx: Context,
    department: Annotated[str | None, Query(max_length=64)] = None,
    due: Literal["today", "overdue"] | None = None,
    state: Literal["scheduled", "offered", "reminded", "answered", "expired", "cancelled"]
    | None = None,
    complaint_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SurveyPage:
    """Surveys for callback agents: due today, overdue, by department (yours if bound)."""
    query = views.SurveyQuery(department, due, state, complaint_id, cursor, limit)
    items, next_cursor = await views.list_surveys(ctx, query, principal)
    return SurveyPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get("/surveys/{survey_id}", response_model=SurveyRead)
async def get_survey(survey_id: uuid.UUID, principal: Reader, ctx: Context) -> SurveyRead:
    """One survey with its history (never its answer link)."""
    return SurveyRead.model_validate(await views.get_survey(ctx, survey_id, principal))


@router.post("/surveys/{survey_id}/callback-attempts", response_model=SurveyRead, status_code=201)
async def record_callback_attempt(
    survey_id: uuid.UUID, body: CallbackAttemptCreate, principal: Writer, ctx: Context
) -> SurveyRead:
    """A callback that did not reach the customer; the last allowed one expires the survey."""
    command = answers.CallbackAttemptCommand(survey_id, body.outcome, body.note, body.call_ref)
    await answers.record_callback_attempt(ctx, command, principal)
    return SurveyRead.model_validate(await views.get_survey(ctx, survey_id, principal))


@router.post("/surveys/{survey_id}/callback-answer", response_model=SurveyRead, status_code=201)
async def record_callback_answer(
    survey_id: uuid.UUID, body: CallbackAnswerCreate, principal: Writer, ctx: Context
) -> SurveyRead:
    """The answer the customer gave on the phone, with the agent and the call reference."""
    command = answers.CallbackAnswer(
        survey_id, to_answer(body.answer, prefix="body.answer"), body.call_ref, body.note
    )
    await answers.answer_by_callback(ctx, command, principal)
    return SurveyRead.model_validate(await views.get_survey(ctx, survey_id, principal))


@router.get("/survey-policy", response_model=PolicyRead)
async def get_policy(_: Reader, ctx: Context) -> PolicyRead:
    """The survey policy in force and its version (0: the built-in default)."""
    version, policy = await policies.current_policy(ctx)
    return PolicyRead(version=version, policy=policy)


@router.put("/survey-policy", response_model=PolicyRead)
async def put_policy(body: PolicyUpdate, principal: PolicyAdmin, ctx: Context) -> PolicyRead:
    """Publish a new version; surveys already scheduled keep the version they started on."""
    command = policies.PublishPolicy(body.policy, body.based_on_version, body.comment)
    version, policy = await policies.publish_policy(ctx, command, principal)
    return PolicyRead(version=version, policy=policy)
