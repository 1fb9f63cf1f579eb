"""What the sla-monitor endpoints depend on: the caller's scopes and the service context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from tousu_shared.auth import Principal, require

from tousu_sla.service_layer.context import SlaContext

Reader = Annotated[Principal, require("sla:read")]
Writer = Annotated[Principal, require("sla:write")]
# Agents and managers pause their own department's clocks while they wait for the customer.
Pauser = Annotated[Principal, require("sla:pause")]
PageSize = Annotated[int, Query(ge=1, le=500)]


async def get_context(request: Request) -> SlaContext:
    """The one context the bootstrap built (unit of work factory, clock, caches)."""
    context: SlaContext = request.app.state.sla
    return context


Context = Annotated[SlaContext, Depends(get_context)]
