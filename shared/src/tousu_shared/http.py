"""The FastAPI app every service starts from: errors, correlation ids, health, metrics, admin."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tousu_shared.auth import (
    DEPARTMENT_ROLES,
    CredentialCreate,
    CredentialIssuedRead,
    CredentialRead,
    Principal,
    credential_issued_event,
    credential_revoked_event,
    require,
)
from tousu_shared.departments import require_department
from tousu_shared.errors import NotFound, ServiceError
from tousu_shared.kafka import create_producer
from tousu_shared.logging import correlation_id_var
from tousu_shared.metrics import exposition as metrics_exposition
from tousu_shared.runtime import Runtime
from tousu_shared.schemas import ERROR_RESPONSES, INT64_MAX
from tousu_shared.unstorable import BODY_KEY, unstorable_value

REQUEST_SECONDS = Histogram(
    "tousu_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CORRELATION_HEADER = "x-correlation-id"


# Sent with every response: no content sniffing, and nothing cached on the way, since API
# responses may hold personal data.
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]
_MAX_CORRELATION_ID = 128


class RequestEdge:
    """The one pure-ASGI layer in front of every service (cheap on the hot path).

    It binds a correlation id to the request, times it by route template, refuses what no
    endpoint could handle safely before any of it is read (a header that is not printable
    ASCII, a NUL or an invalid UTF-8 sequence in the path or query), enforces the body limit
    while the body streams in (a chunked body is never read whole first), and adds the
    security headers to every response.
    """

    def __init__(self, app: ASGIApp, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _refusal(scope, self.max_body_bytes)
        incoming = dict(scope["headers"]).get(CORRELATION_HEADER.encode())
        correlation_id = (
            incoming.decode()
            if incoming and refusal is None and _printable(incoming)
            else str(uuid.uuid4())
        )
        token = correlation_id_var.set(correlation_id)
        status = 500
        started = time.perf_counter()

        refused_body = False
        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    *_SECURITY_HEADERS,
                    (CORRELATION_HEADER.encode(), correlation_id.encode()),
                ]
            await send(message)

        seen = 0
        # A JSON body is kept (it is bounded) so that a value the database refuses can be
        # found in it and named (tousu_shared.unstorable).
        kept = bytearray() if _is_json(scope) else None
        if kept is not None:
            scope[BODY_KEY] = kept

        async def limited_receive() -> Message:
            # Counting while the body streams in: past the limit the client gets a 413 at
            # once and the app is told the client left, so nothing more is read or buffered.
            nonlocal seen, refused_body
            if refused_body:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if kept is not None and seen <= self.max_body_bytes:
                    kept.extend(message.get("body", b""))
                if seen > self.max_body_bytes:
                    refused_body = True
                    if not started_response:
                        await _too_large(self.max_body_bytes)(scope, receive, send_with_headers)
                    return {"type": "http.disconnect"}
            return message

        async def app_send(message: Message) -> None:
            if not refused_body:
                await send_with_headers(message)

        try:
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
            else:
                try:
                    await self.app(scope, limited_receive, app_send)
                except Exception:
                    if not refused_body:
                        raise  # an app failing after the refusal is only the disconnect
        finally:
            correlation_id_var.reset(token)
            REQUEST_SECONDS.labels(
                self.service,
                scope["method"],
                _route_template(scope),
                str(status),
            ).observe(time.perf_counter() - started)


def _is_json(scope: Scope) -> bool:
    media_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


def _printable(value: bytes) -> bool:
    return len(value) <= _MAX_CORRELATION_ID and all(0x20 < byte < 0x7F for byte in value)


def _refusal(scope: Scope, max_body_bytes: int) -> JSONResponse | None:
    """A 4xx for what the request line and headers already show to be unacceptable."""
    headers = dict(scope["headers"])
    correlation = headers.get(CORRELATION_HEADER.encode())
    if correlation is not None and not _printable(correlation):
        return _error(
            400,
            "bad_request",
            f"X-Correlation-ID must be 1-{_MAX_CORRELATION_ID} printable ASCII characters",
            field="header.X-Correlation-ID",
        )
    declared = headers.get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
        return _too_large(max_body_bytes)
    if "\x00" in scope["path"]:
        return _error(422, "validation_failed", "the path holds a NUL character", field="path")
    raw_query = scope.get("query_string", b"")
    if raw_query:
        try:
            pairs = parse_qsl(
                raw_query.decode("latin-1"),
                keep_blank_values=True,
                encoding="utf-8",
                errors="strict",
            )
        except UnicodeDecodeError:
            return _error(422, "validation_failed", "the query is not valid UTF-8", field="query")
        for name, value in pairs:
            if "\x00" in name or "\x00" in value:
                return _error(
                    422,
                    "validation_failed",
                    "a query parameter holds a NUL character",
                    field=f"query.{name.replace(chr(0), '')}",
                )
    return None


def _too_large(limit: int) -> JSONResponse:
    return _error(413, "payload_too_large", f"the body may be at most {limit} bytes", field="body")


def _error(status: int, code: str, message: str, *, field: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "field": field}, status_code=status)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/complaints/{complaint_id}``), for the label.

    FastAPI puts the route it dispatched to in the scope, with the router's prefix; reading it
    after the call costs nothing per request, where matching every route again did (and the
    routes of an included router, which have no ``path`` of their own, were all labelled
    ``?``). A request refused before routing (a bad header, a body too large) or matching no
    route is ``unmatched``.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _field_name(location: Iterable[Any]) -> str:
    return ".".join(str(part) for part in location)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(error["loc"]), "message": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse(
        {"error": "validation_failed", "message": "the request is not valid", "errors": errors},
        status_code=422,
    )


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": _HTTP_CODES.get(exc.status_code, "http_error"), "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def get_session(request: Request):
    """A database session for one request; the endpoint decides when to commit."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.session_factory() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session)]


async def get_runtime(request: Request) -> Runtime:
    """The service runtime."""
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Admin = Annotated[Principal, require("credentials:admin")]
Auditor = Annotated[Principal, require("audit:read")]


def create_app(runtime: Runtime, *, title: str, description: str) -> FastAPI:
    """A service app with health, readiness, metrics, credential admin and uniform errors."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            if app.state.readiness_producer is not None:
                await app.state.readiness_producer.stop()
            await runtime.close()

    docs = runtime.settings.serves_api_docs
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # Off: each path answers 404 like any unknown one; `app.openapi()` still builds the
        # document (tests fuzz it, a release can publish it).
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.runtime = runtime
    # Created on the first readiness check: a process that is never probed opens no connection.
    app.state.readiness_producer = None
    app.add_middleware(
        RequestEdge,
        service=runtime.settings.service_name,
        max_body_bytes=runtime.settings.http_max_body_bytes,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, unstorable_value)
    app.include_router(_operations_router())
    app.include_router(_admin_router())
    app.openapi = _with_body_definitions(app.openapi)  # type: ignore[method-assign]
    return app


def _with_body_definitions(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with the ``$defs`` of request bodies given in ``openapi_extra``
    (an endpoint reading its raw body) moved to the components their references name."""

    def openapi() -> dict[str, Any]:
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict):
                    continue
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    schemas.update(media.get("schema", {}).pop("$defs", {}))
        return document

    return openapi


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """The database and Kafka both answer, and no partition waits on a transient failure."""
        runtime: Runtime = request.app.state.runtime
        checks = {"database": "ok", "kafka": "ok"}
        try:
            async with runtime.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        except Exception as exc:  # readiness reports the failure instead of raising it
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            producer = request.app.state.readiness_producer
            if producer is None:
                producer = create_producer(runtime.settings)
                try:
                    await asyncio.wait_for(producer.start(), 5)
                except BaseException:
                    await producer.stop()
                    raise
                request.app.state.readiness_producer = producer
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 2)
        except Exception as exc:
            checks["kafka"] = f"error: {type(exc).__name__}"
        stalled = {
            partition: reason
            for consumer in runtime.consumers
            for partition, reason in consumer.stalled.items()
        }
        if runtime.consumers:
            checks["consumer"] = "ok" if not stalled else f"stalled: {stalled}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", dependencies=[require("metrics:read")])
    async def metrics() -> Response:
        """Prometheus metrics, for a credential with metrics:read (a `monitoring` key): of
        every process of the service where they share PROMETHEUS_MULTIPROC_DIR."""
        return Response(metrics_exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def _admin_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.post("/credentials", status_code=201)
    async def issue_credential(
        body: CredentialCreate,
        principal: Admin,
        runtime: RuntimeDep,
    ) -> CredentialIssuedRead:
        """Issue a credential; its key is shown in this response only. A department-bound
        role's department must exist (routing's directory, replicated here)."""
        if body.department is not None and body.role in DEPARTMENT_ROLES:
            await require_department(runtime.departments, body.department)
        event, api_key = credential_issued_event(body, issued_by=principal.actor)
        event = runtime.credentials.sign(event)
        async with runtime.uow() as uow:
            await runtime.credentials.store(uow.session, event)
            uow.publish(event)
            uow.audit(
                principal,
                "credential.issue",
                "credential",
                event.key_id,
                details={"role": event.role, "department": event.department},
            )
            await uow.commit()
        return CredentialIssuedRead(
            **event.model_dump(include=set(CredentialRead.model_fields)),
            api_key=api_key,
        )

    @router.get("/credentials")
    async def list_credentials(
        _: Admin,
        session: DbSession,
        runtime: RuntimeDep,
    ) -> list[CredentialRead]:
        """Every credential this service knows, newest first."""
        rows = await session.execute(
            text(
                "SELECT key_id, name, role, department, scopes, issued_at, issued_by, revoked_at "
                f"FROM {runtime.settings.db_schema}.credential ORDER BY issued_at DESC"
            )
        )
        return [CredentialRead(**row._mapping) for row in rows]

    @router.delete("/credentials/{key_id}", status_code=204)
    async def revoke_credential(
        key_id: str,
        principal: Admin,
        runtime: RuntimeDep,
    ) -> Response:
        """Revoke a credential everywhere."""
        async with runtime.uow() as uow:
            exists = (
                await uow.session.execute(
                    text(
                        f"SELECT 1 FROM {runtime.settings.db_schema}.credential WHERE key_id = :k "
                        "AND revoked_at IS NULL FOR UPDATE"
                    ),
                    {"k": key_id},
                )
            ).first()
            if exists is None:
                raise NotFound(f"no active credential {key_id}", field="key_id")
            event = runtime.credentials.sign(
                credential_revoked_event(key_id, revoked_by=principal.actor)
            )
            await runtime.credentials.store(uow.session, event)
            uow.publish(event)
            uow.audit(principal, "credential.revoke", "credential", key_id)
            await uow.commit()
        return Response(status_code=204)

    @router.get("/audit")
    async def audit_entries(
        _: Auditor,
        session: DbSession,
        runtime: RuntimeDep,
        complaint_id: uuid.UUID | None = None,
        after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries of this service, oldest first, optionally for one complaint."""
        return await runtime.audit.entries(
            session,
            complaint_id=complaint_id,
            after=after,
            limit=limit,
        )

    return router
