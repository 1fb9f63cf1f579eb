"""HTTP API of the routing service: departments, routing rules and the case workflow.

Each endpoint gets the service's ``RoutingContext`` through one dependency and runs its use
case in one unit of work, committed once (the service layer never commits). Case actions
take the case version in ``If-Match`` (or ``expected_version`` in the body): a stale
version is refused with 412 Precondition Failed, and every response carries the new
version as ``ETag``. An action the case's state does not allow is a 409 whose body lists
the allowed actions. Department-bound callers (agents, managers) see and act on their own
department's cases only; other cases answer 404, exactly as if they did not exist.
"""

# No ``from __future__ import annotations`` here: the action endpoints are built in a loop and
# FastAPI must see their body types as real classes, not strings.

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from tousu_shared.auth import CurrentPrincipal, Principal, Scope, require
from tousu_shared.contracts.vocabulary import Category, Severity
from tousu_shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ServiceError,
)

from tousu_routing.adapters.case_repository import CaseFilters
from tousu_routing.adapters.rule_repository import RuleRecord
from tousu_routing.domain import (
    CaseState,
    ConflictOfInterest,
    EscalationReason,
    HandlerLevel,
    IllegalTransition,
    InvalidOccurredAt,
    RoutingDomainError,
    RoutingFacts,
    RoutingRule,
    UnknownDepartment,
    VersionConflict,
)
from tousu_routing.domain import commands as c
from tousu_routing.entrypoints.schemas import (
    AssignmentCreate,
    CaseActionCreate,
    CasePageRead,
    CaseRead,
    CaseSummaryRead,
    ClosureCreate,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    DryRunCreate,
    DryRunRead,
    EscalationCreate,
    MemberCreate,
    MemberRead,
    MemberUpdate,
    NoteActionCreate,
    NoteCreate,
    ReopeningCreate,
    ResolutionCreate,
    RootCauseCreate,
    RoutingRuleCreate,
    RoutingRuleOrderUpdate,
    RoutingRuleRead,
    RoutingRuleRevisionRead,
    RoutingRuleUpdate,
    SolutionCreate,
    TransferCreate,
    action_slug,
)
from tousu_routing.service_layer import cases, departments, rules, views
from tousu_routing.service_layer.context import RoutingContext
from tousu_routing.service_layer.rules import criteria_from
from tousu_routing.service_layer.unit_of_work import RoutingWork

router = APIRouter(prefix="/v1")

CaseReader = Annotated[Principal, require("cases:read")]
DepartmentWriter = Annotated[Principal, require("departments:write")]
RuleWriter = Annotated[Principal, require("rules:write")]
IfMatch = Annotated[
    str | None,
    Header(description='the version you last saw, e.g. "3" (an ETag this API returned)'),
]


T = TypeVar("T")


def routing_context(request: Request) -> RoutingContext:
    """The service's one context (built in bootstrap)."""
    context: RoutingContext = request.app.state.routing
    return context


Context = Annotated[RoutingContext, Depends(routing_context)]


async def committed(ctx: RoutingContext, work: Callable[[RoutingWork], Awaitable[T]]) -> T:
    """Run a use case in a new unit of work and commit it, state, events and audit together."""
    async with ctx.uow() as uow:
        result = await work(uow)
        await uow.commit()
    return result


async def read(ctx: RoutingContext, work: Callable[[RoutingWork], Awaitable[T]]) -> T:
    """Run a query in a unit of work that commits nothing."""
    async with ctx.uow() as uow:
        return await work(uow)


def parse_if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``); ``*`` means any."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    try:
        return int(text)
    except ValueError:
        raise InvalidInput('If-Match must hold a version such as "3"', field="If-Match") from None


def expected_version(header: str | None, body_version: int | None) -> int | None:
    """The version the caller expects, from the header or the body (they must agree)."""
    from_header = parse_if_match(header)
    if from_header is not None and body_version is not None and from_header != body_version:
        raise InvalidInput("If-Match and expected_version disagree", field="expected_version")
    return from_header if from_header is not None else body_version


def etag(version: int) -> str:
    """The ETag of a versioned resource."""
    return f'"{version}"'


# ---- errors ----


class IllegalTransitionError(Conflict, code="illegal_transition"):
    """A 409 naming the actions the case's state allows."""


class ConflictOfInterestError(Conflict, code="conflict_of_interest"):
    """A 409 for an assignee the complaint is about."""


def _service_error(exc: RoutingDomainError) -> ServiceError:
    """The uniform API error of a domain refusal."""
    if isinstance(exc, IllegalTransition):
        return IllegalTransitionError(
            str(exc),
            action=action_slug(exc.action),
            state=exc.state,
            allowed_actions=[action_slug(a) for a in exc.allowed_actions],
        )
    if isinstance(exc, VersionConflict):
        return PreconditionFailed(
            str(exc), expected_version=exc.expected, current_version=exc.actual
        )
    if isinstance(exc, ConflictOfInterest):
        return ConflictOfInterestError(str(exc), field="assignee_id")
    if isinstance(exc, InvalidOccurredAt):
        return InvalidInput(str(exc), field="occurred_at")
    if isinstance(exc, UnknownDepartment):
        return InvalidInput(str(exc), field="department")
    return InvalidInput(str(exc))


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RoutingDomainError)
    error = _service_error(exc)
    return JSONResponse(error.body(), status_code=error.status_code)


def install_error_handlers(app: FastAPI) -> None:
    """Turn the domain's refusals into the uniform 4xx bodies."""
    app.add_exception_handler(RoutingDomainError, _domain_error)


# ---- departments ----


async def department_member_editor(code: str, principal: CurrentPrincipal) -> Principal:
    """Admins edit any department's members; a manager those of their own department."""
    if principal.can("departments:write"):
        return principal
    if principal.can("cases:manage") and principal.department == code:
        return principal
    raise Forbidden(
        "changing members needs departments:write, or cases:manage in your own department",
        required_scope="departments:write",
    )


MemberEditor = Annotated[Principal, Depends(department_member_editor)]


def _chain(values: dict[HandlerLevel, list[str]]) -> dict[HandlerLevel, list[str]]:
    return {HandlerLevel(level): ids for level, ids in values.items()}


def _department_read(view: departments.DepartmentView, response: Response) -> DepartmentRead:
    response.headers["ETag"] = etag(view.record.version)
    return DepartmentRead.of(view.record, view.members)


@router.get("/departments", tags=["departments"])
async def list_departments(_: CaseReader, ctx: Context) -> list[DepartmentRead]:
    """Every department with its chain and members."""
    found = await read(ctx, departments.list_departments)
    return [DepartmentRead.of(view.record, view.members) for view in found]


@router.post("/departments", status_code=201, tags=["departments"])
async def create_department(
    body: DepartmentCreate, principal: DepartmentWriter, ctx: Context, response: Response
) -> DepartmentRead:
    """Add a department; its routed-case topic is created at once (no restart)."""
    view = await committed(
        ctx,
        lambda uow: departments.create_department(
            ctx, uow, principal, code=body.code, name=body.name, chain=_chain(body.chain)
        ),
    )
    return _department_read(view, response)


@router.get("/departments/{code}", tags=["departments"])
async def get_department(
    code: str, _: CaseReader, ctx: Context, response: Response
) -> DepartmentRead:
    """One department with its chain and members."""
    view = await read(ctx, lambda uow: departments.get_department(uow, code))
    return _department_read(view, response)


@router.patch("/departments/{code}", tags=["departments"])
async def update_department(
    code: str,
    body: DepartmentUpdate,
    principal: DepartmentWriter,
    ctx: Context,
    response: Response,
    if_match: IfMatch = None,
) -> DepartmentRead:
    """Rename a department or replace its chain (``If-Match`` optional)."""
    view = await committed(
        ctx,
        lambda uow: departments.update_department(
            ctx,
            uow,
            principal,
            code,
            name=body.name,
            chain=_chain(body.chain) if body.chain is not None else None,
            expected_version=parse_if_match(if_match),
        ),
    )
    return _department_read(view, response)


@router.delete("/departments/{code}", status_code=204, tags=["departments"])
async def delete_department(code: str, principal: DepartmentWriter, ctx: Context) -> Response:
    """Remove a department without members, cases in progress or rules sending cases to it."""
    await committed(ctx, lambda uow: departments.delete_department(ctx, uow, principal, code))
    return Response(status_code=204)


@router.get("/departments/{code}/members", tags=["departments"])
async def list_members(code: str, _: CaseReader, ctx: Context) -> list[MemberRead]:
    """The members who belong to or serve a department, with their loads."""
    view = await read(ctx, lambda uow: departments.get_department(uow, code))
    return [MemberRead.of(m) for m in view.members]


@router.post("/departments/{code}/members", status_code=201, tags=["departments"])
async def add_member(
    code: str, body: MemberCreate, principal: MemberEditor, ctx: Context
) -> MemberRead:
    """Add a member, listed in the department's chain at their level."""
    new = body.member(code)
    member = await committed(ctx, lambda uow: departments.add_member(ctx, uow, principal, new))
    return MemberRead.of(member)


@router.patch("/departments/{code}/members/{member_id}", tags=["departments"])
async def update_member(
    code: str, member_id: str, body: MemberUpdate, principal: MemberEditor, ctx: Context
) -> MemberRead:
    """Rename a member, change their manager, or mark them absent / off shift / available.

    A member who stops being available hands their cases in progress to the least-loaded
    available peer at the same level, or to the department queue when there is none.
    """
    member = await committed(
        ctx,
        lambda uow: departments.update_member(
            ctx,
            uow,
            principal,
            code,
            member_id,
            name=body.name,
            availability=body.availability,
            manager_id=body.manager_id,
        ),
    )
    return MemberRead.of(member)


@router.delete("/departments/{code}/members/{member_id}", status_code=204, tags=["departments"])
async def remove_member(
    code: str, member_id: str, principal: MemberEditor, ctx: Context
) -> Response:
    """Remove a member from every chain and hand over their cases in progress."""
    await committed(
        ctx, lambda uow: departments.remove_member(ctx, uow, principal, code, member_id)
    )
    return Response(status_code=204)


# ---- routing rules ----


@router.get("/routing-rules", tags=["routing rules"])
async def list_rules(_: CaseReader, ctx: Context) -> list[RoutingRuleRead]:
    """Every rule in the order they are tried; the first enabled match wins."""
    records, unreachable = await read(ctx, rules.list_rules)
    return [RoutingRuleRead.of(record, unreachable) for record in records]


def _rule_read(
    record: RuleRecord, response: Response, unreachable: set[str] | None = None
) -> RoutingRuleRead:
    response.headers["ETag"] = etag(record.version)
    return RoutingRuleRead.of(record, unreachable or set())


@router.post("/routing-rules", status_code=201, tags=["routing rules"])
async def create_rule(
    body: RoutingRuleCreate, principal: RuleWriter, ctx: Context, response: Response
) -> RoutingRuleRead:
    """Add a rule; without an order it is tried just before the default queue."""
    record = await committed(
        ctx,
        lambda uow: rules.create_rule(
            ctx,
            uow,
            principal,
            name=body.name,
            target_department=body.target_department,
            criteria=body.criteria.model_dump(exclude_none=True),
            order=body.order,
            enabled=body.enabled,
            rule_id=body.id,
        ),
    )
    return _rule_read(record, response)


@router.post("/routing-rules:reorder", tags=["routing rules"])
async def reorder_rules(
    body: RoutingRuleOrderUpdate, principal: RuleWriter, ctx: Context
) -> list[RoutingRuleRead]:
    """Try the rules in the given order (list every rule once)."""
    records = await committed(
        ctx, lambda uow: rules.reorder_rules(ctx, uow, principal, body.rule_ids)
    )
    return [RoutingRuleRead.of(record) for record in records]


@router.post("/routing-rules:dry-run", tags=["routing rules"])
async def dry_run(body: DryRunCreate, _: CaseReader, ctx: Context) -> DryRunRead:
    """Route a sample complaint without saving anything, explaining every rule's verdict.

    ``candidate_rules`` are tried together with the saved rules (replacing a saved rule of
    the same id), so an edit can be checked before it is made.
    """
    candidates = [
        RoutingRule(
            id=rule.id,
            order=rule.order,
            name=rule.name,
            target_department=rule.target_department,
            criteria=criteria_from(rule.criteria.model_dump(exclude_none=True)),
            enabled=rule.enabled,
        )
        for rule in body.candidate_rules
    ]
    facts = RoutingFacts.of(body.complaint)
    result = await read(ctx, lambda uow: rules.dry_run(uow, facts, candidates))
    return DryRunRead.of(result)


@router.get("/routing-rules/{rule_id}", tags=["routing rules"])
async def get_rule(
    rule_id: str, _: CaseReader, ctx: Context, response: Response
) -> RoutingRuleRead:
    """One rule with its version."""
    record = await read(ctx, lambda uow: rules.get_rule(uow, rule_id))
    _records, unreachable = await read(ctx, rules.list_rules)
    return _rule_read(record, response, unreachable)


@router.patch("/routing-rules/{rule_id}", tags=["routing rules"])
async def update_rule(
    rule_id: str,
    body: RoutingRuleUpdate,
    principal: RuleWriter,
    ctx: Context,
    response: Response,
    if_match: IfMatch = None,
) -> RoutingRuleRead:
    """Change a rule (``If-Match`` optional); the old version stays in its revisions."""
    changes = body.model_dump(exclude_unset=True)
    if "criteria" in changes:
        changes["criteria"] = (
            body.criteria.model_dump(exclude_none=True) if body.criteria is not None else {}
        )
    record = await committed(
        ctx,
        lambda uow: rules.update_rule(
            ctx, uow, principal, rule_id, changes, expected_version=parse_if_match(if_match)
        ),
    )
    return _rule_read(record, response)


@router.delete("/routing-rules/{rule_id}", status_code=204, tags=["routing rules"])
async def delete_rule(
    rule_id: str, principal: RuleWriter, ctx: Context, if_match: IfMatch = None
) -> Response:
    """Remove a rule (the last default rule cannot go)."""
    await committed(
        ctx,
        lambda uow: rules.delete_rule(
            ctx, uow, principal, rule_id, expected_version=parse_if_match(if_match)
        ),
    )
    return Response(status_code=204)


@router.get("/routing-rules/{rule_id}/revisions", tags=["routing rules"])
async def rule_revisions(
    rule_id: str, _: CaseReader, ctx: Context
) -> list[RoutingRuleRevisionRead]:
    """Every edit of a rule, oldest first (a deleted rule keeps its revisions)."""
    revisions = await read(ctx, lambda uow: rules.rule_revisions(uow, rule_id))
    return [RoutingRuleRevisionRead(**revision) for revision in revisions]


# ---- cases ----


@router.get("/cases", tags=["cases"])
async def list_cases(
    principal: CaseReader,
    ctx: Context,
    department: str | None = None,
    state: CaseState | None = None,
    level: HandlerLevel | None = None,
    assignee: str | None = None,
    category: Category | None = None,
    severity: Severity | None = None,
    complaint_id: uuid.UUID | None = None,
    created_from: Annotated[datetime | None, Query(description="inclusive")] = None,
    created_to: Annotated[datetime | None, Query(description="exclusive")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasePageRead:
    """Cases newest first, filtered; department-bound callers get their department's only."""
    filters = CaseFilters(
        department=department,
        state=state,
        level=level,
        assignee=assignee,
        category=category,
        severity=severity,
        complaint_id=complaint_id,
        created_from=created_from,
        created_to=created_to,
    )
    page = await read(
        ctx, lambda uow: views.list_cases(uow, filters, principal, limit=limit, cursor=cursor)
    )
    return CasePageRead(
        items=[CaseSummaryRead.model_validate(row) for row in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/cases/{case_id}", tags=["cases"])
async def get_case(
    case_id: uuid.UUID, principal: CaseReader, ctx: Context, response: Response
) -> CaseRead:
    """A case with its full history and the actions allowed now; ``ETag`` is its version."""
    record = await read(ctx, lambda uow: views.get_case(uow, case_id, principal))
    response.headers["ETag"] = etag(record.case.version)
    return CaseRead.of(record)


def _to_command(
    command_type: type[c.CaseCommand],
    body: CaseActionCreate,
    case_id: uuid.UUID,
    principal: Principal,
    version: int | None,
) -> c.CaseCommand:
    fields: dict[str, Any] = body.model_dump(exclude={"expected_version"})
    if command_type is c.EscalateCase:
        fields["reason"] = EscalationReason.MANUAL
    if command_type is c.TransferCase and fields.get("handler_level"):
        fields["handler_level"] = HandlerLevel(fields["handler_level"])
    return command_type(
        case_id=str(case_id), actor=principal.actor, expected_version=version, **fields
    )


# action → (request body, command, scope it needs)
CASE_ACTIONS: dict[str, tuple[type[CaseActionCreate], type[c.CaseCommand], Scope]] = {
    "acknowledge": (NoteActionCreate, c.AcknowledgeCase, "cases:act"),
    "respond-to-customer": (NoteActionCreate, c.RespondToCustomer, "cases:act"),
    "start-investigation": (NoteActionCreate, c.StartInvestigation, "cases:act"),
    "record-root-cause": (RootCauseCreate, c.RecordRootCause, "cases:act"),
    "propose-solution": (SolutionCreate, c.ProposeSolution, "cases:act"),
    "resolve": (ResolutionCreate, c.ResolveCase, "cases:act"),
    "transfer": (TransferCreate, c.TransferCase, "cases:act"),
    "escalate": (EscalationCreate, c.EscalateCase, "cases:act"),
    "add-note": (NoteCreate, c.AddNote, "cases:act"),
    "assign": (AssignmentCreate, c.AssignCase, "cases:act"),
    "close": (ClosureCreate, c.CloseCase, "cases:manage"),
    "reopen": (ReopeningCreate, c.ReopenCase, "cases:manage"),
}


def _action_endpoint(
    slug: str,
    body_type: type[CaseActionCreate],
    command_type: type[c.CaseCommand],
    scope: Scope,
) -> Callable[..., Any]:
    """One endpoint per action, so each has its own documented body."""

    async def act(
        case_id: uuid.UUID,
        body: CaseActionCreate,
        principal: Principal,
        ctx: RoutingContext,
        response: Response,
        if_match: str | None,
    ) -> CaseRead:
        version = expected_version(if_match, body.expected_version)
        command = _to_command(command_type, body, case_id, principal, version)
        record = await committed(
            ctx, lambda uow: cases.perform_action(ctx, uow, command, principal)
        )
        response.headers["ETag"] = etag(record.case.version)
        return CaseRead.of(record)

    Actor = Annotated[Principal, require(scope)]  # the scope differs per action
    Body_ = Annotated[body_type, Body()]  # type: ignore[valid-type]  # one body type per action
    if any(field.is_required() for field in body_type.model_fields.values()):

        async def endpoint(
            case_id: uuid.UUID,
            body: Body_,
            principal: Actor,
            ctx: Context,
            response: Response,
            if_match: IfMatch = None,
        ) -> CaseRead:
            return await act(case_id, body, principal, ctx, response, if_match)
    else:
        OptionalBody = Annotated[body_type | None, Body()]  # type: ignore[valid-type]

        async def endpoint(  # type: ignore[misc]  # the same endpoint with an optional body
            case_id: uuid.UUID,
            principal: Actor,
            ctx: Context,
            response: Response,
            if_match: IfMatch = None,
            body: OptionalBody = None,
        ) -> CaseRead:
            return await act(case_id, body or body_type(), principal, ctx, response, if_match)

    endpoint.__name__ = f"case_{slug.replace('-', '_')}"
    endpoint.__doc__ = f"{command_type.__doc__} (needs {scope})"
    return endpoint


for _slug, (_body, _command, _scope) in CASE_ACTIONS.items():
    router.add_api_route(
        f"/cases/{{case_id}}/actions/{_slug}",
        _action_endpoint(_slug, _body, _command, _scope),
        methods=["POST"],
        tags=["cases"],
        response_model=CaseRead,
        responses={
            409: {
                "description": "the case's state does not allow the action; the body lists "
                "allowed_actions"
            },
            412: {"description": "If-Match / expected_version is not the case's version"},
        },
    )


@router.post("/cases/{case_id}/actions/{action}", tags=["cases"], include_in_schema=False)
async def unknown_action(case_id: uuid.UUID, action: str, _: CaseReader) -> Response:
    """An action the workflow does not know."""
    raise NotFound(f"unknown action {action!r}", field="action", known_actions=list(CASE_ACTIONS))
