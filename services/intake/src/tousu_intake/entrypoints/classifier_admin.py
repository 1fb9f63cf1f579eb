"""Admin API of the classifier's trained model: retrain from corrections, list the registry.

Mounted by the service beside the main router (``include_routers(app, [router, admin])``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from tousu_shared.auth import Principal, require
from tousu_shared.http import RuntimeDep

from tousu_intake.adapters.model_store import SessionModelRegistry, SqlModelRegistry
from tousu_intake.adapters.training_data import SqlCorrections
from tousu_intake.domain.classification.corpus import load_split
from tousu_intake.service_layer.retraining import ReadCorrections, RetrainCommand, retrain

router = APIRouter(prefix="/v1/classifier", tags=["classifier"])

RulesAdmin = Annotated[Principal, require("rules:write")]


class RetrainRequest(BaseModel):
    """Options of one retraining run."""

    tolerance: float = Field(default=0.0, ge=0, le=0.2, description="accepted loss, 0..0.2")
    recent_share: float = Field(default=0.3, gt=0, lt=1)


class RetrainRead(BaseModel):
    """The candidate's fate and the measures it was judged by."""

    version: str
    status: str
    reason: str
    metrics: dict[str, Any]


async def _context(request: Request) -> Any:
    return request.app.state.intake


@router.post("/retrain", response_model=RetrainRead)
async def retrain_model(
    principal: RulesAdmin,
    runtime: RuntimeDep,
    context: Annotated[Any, Depends(_context)],
    body: RetrainRequest | None = None,
) -> RetrainRead:
    """Train a candidate on the corpus and corrections; promote it only if it is not worse."""
    body = body or RetrainRequest()
    _, classifier = await context.classifiers.current()
    async with runtime.session_factory() as session:
        corrections = await SqlCorrections(session).corrections()
    outcome = await retrain(
        RetrainCommand(
            actor=principal.actor, tolerance=body.tolerance, recent_share=body.recent_share
        ),
        registry=SessionModelRegistry(runtime.session_factory),
        corrections=ReadCorrections(corrections),
        corpus=load_split("train"),
        test=load_split("test"),
        current=classifier.model,
        rules=classifier.rules,
        clock=context.clock,
    )
    if outcome.status == "promoted":
        context.classifiers.invalidate()
    return RetrainRead(
        version=outcome.version,
        status=outcome.status,
        reason=outcome.reason,
        metrics=outcome.metrics,
    )


@router.get("/models")
async def list_models(
    _: RulesAdmin,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict[str, Any]]:
    """The newest registry rows: version, status, reason, metrics (no artefacts)."""
    async with runtime.session_factory() as session:
        records = await SqlModelRegistry(session).history(limit)
    return [
        {
            "version": r.version,
            "created_at": r.created_at.isoformat(),
            "status": r.status,
            "reason": r.reason,
            "trained_on_size": r.trained_on_size,
            "promoted_at": r.promoted_at.isoformat() if r.promoted_at else None,
            "promoted_by": r.promoted_by,
            "metrics": r.metrics,
        }
        for r in records
    ]
