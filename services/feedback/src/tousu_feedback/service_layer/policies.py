"""Publishing a new version of the survey policy (never editing one in place)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from tousu_shared.auth import Principal
from tousu_shared.errors import Conflict

from tousu_feedback.domain.policy import SurveyPolicy
from tousu_feedback.service_layer.context import FeedbackContext


@dataclass(frozen=True)
class PublishPolicy:
    policy: SurveyPolicy
    based_on_version: int
    comment: str


async def current_policy(ctx: FeedbackContext) -> tuple[int, SurveyPolicy]:
    async with ctx.uow() as uow:
        return await uow.policies.current()


async def publish_policy(
    ctx: FeedbackContext, command: PublishPolicy, principal: Principal
) -> tuple[int, SurveyPolicy]:
    """The new version applies to surveys scheduled from now on; older ones keep theirs."""
    async with ctx.uow() as uow:
        version, _ = await uow.policies.current()
        if command.based_on_version != version:
            raise Conflict(
                f"the policy changed meanwhile: current version is {version}",
                field="based_on_version",
                current_version=version,
                allowed=["reload the policy and publish again"],
            )
        new_version = version + 1
        await uow.policies.add(
            new_version,
            command.policy,
            comment=command.comment,
            actor=principal.actor,
            at=ctx.clock(),
        )
        uow.audit(
            principal,
            "survey_policy.publish",
            "survey_policy",
            str(new_version),
            details={"comment": command.comment},
        )
        try:
            await uow.commit()
        except IntegrityError as exc:
            # Another publication of the same base version committed first.
            raise Conflict(
                f"the policy changed meanwhile: version {new_version} exists",
                field="based_on_version",
                allowed=["reload the policy and publish again"],
            ) from exc
        return new_version, command.policy
