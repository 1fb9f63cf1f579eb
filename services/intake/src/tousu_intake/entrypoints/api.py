"""HTTP API of the intake service (``/v1``)."""

from __future__ import annotations

import csv
import gc
import io
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect
from tousu_shared.auth import Principal, require
from tousu_shared.contracts.vocabulary import Category, Channel, Severity, Urgency
from tousu_shared.errors import InvalidInput, PayloadTooLarge, ServiceError, UnsupportedMediaType

from tousu_intake.domain.classification import ClassifierRules
from tousu_intake.domain.commands import GetComplaint, ListComplaints, SaveClassifierRules
from tousu_intake.domain.model import normalise_email, normalise_phone
from tousu_intake.entrypoints import mapping
from tousu_intake.entrypoints.schemas import (
    AnonymizeRequest,
    BatchItemResult,
    BatchResult,
    ClassificationUpdate,
    ComplaintCreate,
    ComplaintCreated,
    ComplaintPage,
    ComplaintRead,
    CustomerExportRead,
    ErasureRead,
    ExportRequest,
    MessageCreate,
    MessageRead,
    TrackingRead,
)
from tousu_intake.service_layer import privacy, services
from tousu_intake.service_layer.context import IntakeContext


@asynccontextmanager
async def _long_lived_objects_frozen(_app: Any) -> AsyncIterator[None]:
    """While the API serves, what it built at start (the classifier's model and jieba's
    dictionary, the rules, every module) is left out of the garbage collector's full passes
    (``gc.freeze``): it lives as long as the process, and walking it made each full pass take
    100-190 ms of CPU in the middle of requests (issue #12). Moving objects in or out of the
    frozen set costs nothing; on shutdown they are the collector's again, so a process that
    starts apps one after another (the tests) collects the earlier ones' garbage."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


router = APIRouter(prefix="/v1", tags=["intake"], lifespan=_long_lived_objects_frozen)
M = TypeVar("M", bound=BaseModel)

Writer = Annotated[Principal, require("complaints:write")]
Reader = Annotated[Principal, require("complaints:read")]
Classifier = Annotated[Principal, require("classification:write")]
RulesAdmin = Annotated[Principal, require("rules:write")]
Eraser = Annotated[Principal, require("pii:erase")]
Exporter = Annotated[Principal, require("pii:export")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200),
]


async def get_context(request: Request) -> IntakeContext:
    """The intake use cases' collaborators."""
    return request.app.state.intake


Context = Annotated[IntakeContext, Depends(get_context)]


async def _body(request: Request, *, limit: int, media_types: tuple[str, ...]) -> tuple[str, bytes]:
    """The raw body after checking its media type and size (before parsing anything)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in media_types:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(media_types)}",
            field="Content-Type",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", field="body")
    try:
        raw = await request.body()
    except ClientDisconnect as exc:
        # The caller hung up mid-body: nothing was written, and there is no one to answer.
        raise InvalidInput(
            "the client disconnected before sending the whole body", field="body"
        ) from exc
    if len(raw) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", field="body")
    return media_type, raw


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from exc


def _errors(exc: ValidationError, prefix: str = "body") -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join([prefix, *(str(p) for p in error["loc"])]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False)
    ]


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("the request is not valid", errors=_errors(exc)) from exc


@router.post(
    "/complaints",
    status_code=201,
    response_model=ComplaintCreated,
    responses={
        200: {
            "model": ComplaintCreated,
            "description": (
                "A replay: this Idempotency-Key already recorded the complaint; the first "
                "answer again, with `Idempotent-Replayed: true`."
            ),
        }
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": ComplaintCreate.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
            "required": True,
        }
    },
)
async def create_complaint(
    request: Request,
    principal: Writer,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a complaint from any channel; a replay of the same Idempotency-Key returns it."""
    _, raw = await _body(
        request, limit=context.settings.max_body_bytes, media_types=("application/json",)
    )
    body = _validate(ComplaintCreate, _parse_json(raw))
    submission = await services.submit_complaint(
        mapping.submit_command(body, idempotency_key), principal=principal, context=context
    )
    created = ComplaintCreated.model_validate(submission.answer)
    headers = {"Location": f"/v1/complaints/{created.id}"}
    if submission.replayed:
        headers["Idempotent-Replayed"] = "true"
    # Validated once and encoded once: handing the model back to FastAPI would dump it,
    # validate the dump against response_model again and encode that (the hot path).
    return Response(
        created.model_dump_json(),
        status_code=200 if submission.replayed else 201,
        media_type="application/json",
        headers=headers,
    )


CSV_LIST_FIELDS = {"requested_remedies", "tags"}
CSV_CUSTOMER_FIELDS = {
    "customer_name": "name",
    "customer_phone": "phone",
    "customer_email": "email",
    "customer_address": "address",
    "customer_tier": "tier",
    "preferred_contact": "preferred_contact",
}


def _csv_items(raw: bytes) -> list[dict[str, Any]]:
    """CSV rows as complaint dicts: customer_* columns nest, list columns split on ';'."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the CSV is not UTF-8", field="body") from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "channel" not in reader.fieldnames:
        raise InvalidInput(
            "the CSV needs a header row with at least a channel column", field="body"
        )
    items = []
    for row in reader:
        item: dict[str, Any] = {"customer": {}}
        for column, value in row.items():
            if column is None or value is None or value == "":
                continue
            if column in CSV_CUSTOMER_FIELDS:
                item["customer"][CSV_CUSTOMER_FIELDS[column]] = value
            elif column in CSV_LIST_FIELDS:
                item[column] = [part.strip() for part in value.split(";") if part.strip()]
            else:
                item[column] = value
        items.append(item)
    return items


# An item's idempotency key, bounded like the Idempotency-Key header (and no NUL).
_BATCH_KEY = TypeAdapter(
    Annotated[str | None, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
)


@router.post("/complaints:batch", response_model=BatchResult)
async def import_complaints(
    request: Request,
    principal: Writer,
    context: Context,
) -> BatchResult:
    """Import many complaints (JSON array or CSV); each item is accepted or rejected alone."""
    media_type, raw = await _body(
        request,
        limit=context.settings.max_batch_body_bytes,
        media_types=("application/json", "text/csv"),
    )
    items = _csv_items(raw) if media_type == "text/csv" else _parse_json(raw)
    if not isinstance(items, list):
        raise InvalidInput("the body must be a JSON array of complaints", field="body")
    if not items:
        raise InvalidInput("the batch is empty", field="body")
    if len(items) > context.settings.max_batch_items:
        raise PayloadTooLarge(
            f"at most {context.settings.max_batch_items} complaints per batch",
            field="body",
            items=len(items),
        )
    results: list[BatchItemResult] = []
    for index, item in enumerate(items):
        raw_key = item.pop("idempotency_key", None) if isinstance(item, dict) else None
        try:
            key = _BATCH_KEY.validate_python(raw_key)
            body = ComplaintCreate.model_validate(item)
        except ValidationError as exc:
            # The key's errors have no location of their own; the body's start at the item.
            at = (
                f"body.{index}"
                if exc.title == ComplaintCreate.__name__
                else f"body.{index}.idempotency_key"
            )
            results.append(BatchItemResult(index=index, status="rejected", errors=_errors(exc, at)))
            continue
        # One transaction per item: a bad item never takes the good ones down with it.
        try:
            submission = await services.submit_complaint(
                mapping.submit_command(body, key),
                principal=principal,
                context=context,
            )
        except ServiceError as exc:
            results.append(
                BatchItemResult(
                    index=index,
                    status="rejected",
                    errors=[{"field": f"body.{index}", **exc.body()}],
                )
            )
            continue
        results.append(
            BatchItemResult(
                index=index,
                status="replayed" if submission.replayed else "created",
                complaint_id=submission.answer["id"],
                tracking_code=submission.answer["tracking_code"],
            )
        )
    return BatchResult(
        created=sum(r.status == "created" for r in results),
        replayed=sum(r.status == "replayed" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )


def _normalised(value: str | None, normalise: Callable[[str], str], field: str) -> str | None:
    if not value:
        return None
    try:
        return normalise(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from exc


@router.get("/complaints", response_model=ComplaintPage)
async def list_complaints(
    principal: Reader,
    context: Context,
    channel: Channel | None = None,
    category: Category | None = None,
    severity: Severity | None = None,
    urgency: Urgency | None = None,
    status: str | None = None,
    department: str | None = None,
    needs_review: bool | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    customer_phone: Annotated[str | None, Query(max_length=32)] = None,
    customer_email: Annotated[str | None, Query(max_length=254)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ComplaintPage:
    """Complaints newest first, with filters and cursor pagination.

    ``needs_review=true`` is the review queue: complaints the classifier was unsure about
    that no person has corrected yet.
    """
    query = ListComplaints(
        channel=channel,
        category=category,
        severity=severity,
        urgency=urgency,
        status=status,
        department=department,
        needs_review=needs_review,
        received_from=received_from,
        received_to=received_to,
        customer_phone=_normalised(customer_phone, normalise_phone, "customer_phone"),
        customer_email=_normalised(customer_email, normalise_email, "customer_email"),
        cursor=cursor,
        limit=limit,
    )
    page = await services.list_complaints(query, principal=principal, context=context)
    return ComplaintPage(
        items=[mapping.complaint_read(view) for view in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/complaints/{complaint_id}", response_model=ComplaintRead)
async def get_complaint(
    complaint_id: uuid.UUID,
    principal: Reader,
    context: Context,
    include: Annotated[str | None, Query(pattern="^contact$")] = None,
) -> ComplaintRead:
    """One complaint; ``?include=contact`` adds contact details (clear only with pii:read)."""
    query = GetComplaint(complaint_id, include_contact=include == "contact")
    view = await services.get_complaint(query, principal=principal, context=context)
    return mapping.complaint_read(view)


@router.post("/complaints/{complaint_id}/messages", status_code=201, response_model=MessageRead)
async def add_message(
    complaint_id: uuid.UUID,
    body: MessageCreate,
    principal: Writer,
    context: Context,
) -> MessageRead:
    """Add a customer message and evidence references."""
    message = await services.add_message(
        mapping.message_command(complaint_id, body), principal=principal, context=context
    )
    return mapping.message_read(message)


@router.get("/complaints/{complaint_id}/messages", response_model=list[MessageRead])
async def list_messages(
    complaint_id: uuid.UUID,
    principal: Reader,
    context: Context,
) -> list[MessageRead]:
    """A complaint's messages, oldest first."""
    messages = await services.list_messages(complaint_id, principal=principal, context=context)
    return [mapping.message_read(m) for m in messages]


@router.put("/complaints/{complaint_id}/classification", response_model=ComplaintRead)
async def correct_classification(
    complaint_id: uuid.UUID,
    body: ClassificationUpdate,
    principal: Classifier,
    context: Context,
) -> ComplaintRead:
    """A person's correction, kept beside the automatic classification."""
    view = await services.correct_classification(
        mapping.correction_command(complaint_id, body), principal=principal, context=context
    )
    return mapping.complaint_read(view)


@router.get("/track/{tracking_code}", response_model=TrackingRead)
async def track(
    tracking_code: Annotated[str, Path(min_length=4, max_length=20)],
    _: Reader,
    context: Context,
) -> TrackingRead:
    """What the customer may see: status, next step, due dates; no personal data."""
    return mapping.tracking_read(await services.track(tracking_code, context=context))


@router.get("/classifier/rules")
async def get_rules(_: Reader, context: Context) -> dict[str, Any]:
    """The classifier rules in force and their version (0 = the shipped defaults)."""
    version, classifier = await context.classifiers.current()
    return {"version": version, "rules": classifier.rules.model_dump(mode="json")}


@router.put("/classifier/rules")
async def put_rules(
    rules: ClassifierRules,
    principal: RulesAdmin,
    context: Context,
    note: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Save a new classifier rule set; it applies within seconds, without a deploy."""
    command = SaveClassifierRules(rules.model_dump(mode="json"), note=note)
    version = await services.save_rules(command, principal=principal, context=context)
    return {"version": version}


@router.post("/customers:anonymize", response_model=ErasureRead)
async def anonymize_customer(
    body: AnonymizeRequest,
    principal: Eraser,
    context: Context,
) -> ErasureRead:
    """Erase a customer's personal data (PIPL deletion request); statistics are kept.

    Needs pii:erase (privacy officer, admin); the reason is audited with every complaint.
    The answer names the anonymised complaints the caller may see and counts them all.
    """
    erasure = await privacy.anonymize_customer(
        mapping.anonymize_command(body), principal=principal, context=context
    )
    return mapping.erasure_read(erasure)


@router.post("/customers:export", response_model=CustomerExportRead)
async def export_customer(
    body: ExportRequest,
    principal: Exporter,
    context: Context,
) -> CustomerExportRead:
    """Everything intake holds about one customer (PIPL data export), as JSON.

    Needs pii:export (privacy officer, admin); each complaint's read is audited with the
    reason. A POST, so the phone or email never lands in a URL or an access log. Intake holds
    the contact details, every complaint with its classification (automatic and corrected),
    the remedies asked for, the messages, and what it follows of the case (status,
    department, due dates); the other services key by complaint id and hold no contact data,
    and each complaint's ``held_elsewhere`` says where their parts are fetched.
    """
    export = await privacy.export_customer(
        mapping.export_command(body), principal=principal, context=context
    )
    return mapping.export_read(export)
