"""API keys with roles and scopes, replicated to every service through credential events.

A key looks like ``tsk_<key id>_<secret>``. Only the SHA-256 of the secret is stored (the
secret is 256 random bits, so a slow hash adds nothing). Each service keeps its own copy of
the credential table, filled from ``platform.credentials``; lookups are cached for a few
seconds, so a revocation takes effect everywhere within that time plus the event's latency.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar, get_args

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tousu_shared.contracts import Envelope, Event
from tousu_shared.contracts.platform import (
    CREDENTIALS_SUBJECT,
    CredentialEvent,
    CredentialIssued,
    CredentialRevoked,
    Role,
)
from tousu_shared.errors import (
    Forbidden,
    PermanentFailure,
    ServiceError,
    TooManyRequests,
    Unauthorized,
)
from tousu_shared.schemas import ApiModel
from tousu_shared.signing import CredentialSigner

if TYPE_CHECKING:
    from tousu_shared.uow import SqlUnitOfWork

E = TypeVar("E", bound=CredentialEvent)

log = logging.getLogger(__name__)

REFUSED_CREDENTIAL_EVENTS = Counter(
    "tousu_credential_events_refused_total",
    "Credential events refused because their signature is missing or wrong",
    ["service", "type", "reason"],
)

ROLES: tuple[str, ...] = get_args(Role)
DEPARTMENT_ROLES = frozenset({"agent", "manager"})

Scope = Literal[
    "complaints:write",
    "complaints:read",
    "pii:read",
    # PIPL rights: erasing a customer's data and exporting all of it (privacy officer, admin).
    "pii:erase",
    "pii:export",
    "classification:write",
    "rules:write",
    "cases:read",
    "cases:act",
    "cases:manage",
    "departments:write",
    "sla:read",
    "sla:pause",
    "sla:write",
    "feedback:write",
    "feedback:read",
    "analytics:read",
    "credentials:admin",
    "audit:read",
    # The services' Prometheus metrics: operational, but they name routes, topics and volumes.
    "metrics:read",
]
ALL_SCOPES: frozenset[str] = frozenset(get_args(Scope))

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "channel_frontend": frozenset({"complaints:write", "complaints:read", "feedback:write"}),
    "agent": frozenset(
        {
            "complaints:read",
            "complaints:write",
            "pii:read",
            "cases:read",
            "cases:act",
            "sla:read",
            "sla:pause",
            "feedback:write",
            "feedback:read",
        }
    ),
    "manager": frozenset(
        {
            "complaints:read",
            "complaints:write",
            "pii:read",
            "classification:write",
            "cases:read",
            "cases:act",
            "cases:manage",
            "sla:read",
            "sla:pause",
            "feedback:write",
            "feedback:read",
            "analytics:read",
        }
    ),
    "ops": frozenset(
        {
            "complaints:read",
            "cases:read",
            "sla:read",
            "sla:pause",
            "sla:write",
            "analytics:read",
            "metrics:read",
        }
    ),
    "analyst": frozenset(
        {"complaints:read", "cases:read", "sla:read", "analytics:read", "feedback:read"}
    ),
    # Answers customers' PIPL requests (erasure, export) for every department, audited.
    "privacy_officer": frozenset(
        {"complaints:read", "pii:read", "pii:erase", "pii:export", "audit:read"}
    ),
    "admin": ALL_SCOPES,
    # A service reading personal data it needs (audited) and filing complaints, nothing more.
    "service": frozenset({"complaints:read", "complaints:write", "pii:read"}),
    "monitoring": frozenset({"metrics:read"}),
}

KEY_PREFIX = "tsk"
_INVALID_KEY = "invalid, revoked or malformed API key"
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: a credential's identity, role, department and scopes."""

    key_id: str
    name: str
    role: str
    department: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """How the audit log and events name this caller."""
        return f"{self.role}:{self.name}"

    def can(self, scope: str) -> bool:
        """Whether the caller holds a scope."""
        return scope in self.scopes

    @property
    def department_bound(self) -> bool:
        """Agents and managers work inside one department; other roles see every one."""
        return self.role in DEPARTMENT_ROLES

    def may_see_department(self, department: str | None) -> bool:
        """The one department-visibility rule: department-bound callers see only their own."""
        return not self.department_bound or self.department == department

    def visible_department(self, requested: str | None) -> str | None:
        """The department a list is narrowed to for this caller (None: every department).

        Every list endpoint of every service calls this: a department-bound caller who names
        no department gets their own, and one who names another department gets a 403 naming
        the ``department`` field, never a silently narrowed list.
        """
        if not self.department_bound:
            return requested
        if requested is not None and requested != self.department:
            raise Forbidden(
                f"you may only see department {self.department}",
                field="department",
            )
        return self.department


def system_principal(name: str) -> Principal:
    """A service acting on its own (a worker, a reaction to another service's event), not a
    caller: the audit log and events name it ``system:<name>``. It holds no scope, so no
    API route accepts it; it is never looked up as a credential."""
    return Principal(key_id="system", name=name, role="system", department=None)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (key id, full key shown once, hash of its secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secret}", _sha256(secret)


def split_api_key(api_key: str) -> tuple[str, str] | None:
    """The (key id, secret) of a well-formed key, else None."""
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class CredentialCreate(ApiModel):
    """A request to issue a credential (unknown fields and NULs refused, as every body)."""

    name: str = Field(min_length=1, max_length=200)
    role: Role
    department: str | None = Field(default=None, min_length=1, max_length=64)
    scopes: list[Scope] | None = None

    @model_validator(mode="after")
    def _department_matches_role(self) -> CredentialCreate:
        if self.role in DEPARTMENT_ROLES and not self.department:
            raise ValueError(f"a {self.role} credential needs a department")
        if self.scopes is not None and not set(self.scopes) <= ROLE_SCOPES[self.role]:
            extra = sorted(set(self.scopes) - ROLE_SCOPES[self.role])
            raise ValueError(f"scopes beyond the role {self.role}: {extra}")
        return self


class CredentialRead(BaseModel):
    """A credential as the admin API shows it (never its secret)."""

    key_id: str
    name: str
    role: str
    department: str | None
    scopes: list[str]
    issued_at: datetime
    issued_by: str
    revoked_at: datetime | None = None


class CredentialIssuedRead(CredentialRead):
    """The response to issuing a credential: the only time the key itself is shown."""

    api_key: str


def _bootstrap_admin(key_id: str) -> Principal:
    return Principal(key_id, "bootstrap-admin", "admin", None, ROLE_SCOPES["admin"])


def _principal(key_id: str, row: tuple) -> Principal:
    _, name, role, department, scopes = row
    return Principal(key_id, name, role, department, frozenset(scopes))


class SigningKeyMissing(ServiceError, status=503, code="signing_key_missing"):
    """This service has no credential signing key, so it cannot issue or revoke."""


class CredentialStore:
    """Looks up credentials in the service's own table, with a short cache; signs the
    credential events this service issues and refuses those not signed with the key."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        schema: str,
        *,
        service: str,
        bootstrap_admin_key: str | None,
        signing_key: str | None,
        cache_seconds: float,
    ) -> None:
        self._session_factory = session_factory
        self._schema = schema
        self._service = service
        self.signer = CredentialSigner(signing_key) if signing_key else None
        self._cache: dict[str, tuple[float, tuple | None]] = {}
        self._cache_seconds = cache_seconds
        self._bootstrap = split_api_key(bootstrap_admin_key) if bootstrap_admin_key else None
        self._select = text(
            f"SELECT secret_sha256, name, role, department, scopes FROM {schema}.credential "
            "WHERE key_id = :key_id AND revoked_at IS NULL"
        )

    async def authenticate(self, api_key: str) -> Principal:
        """The principal of a valid, unrevoked key; raises ``Unauthorized`` otherwise.

        Every refusal reads the same, so the answer never tells whether a key id exists.
        """
        parts = split_api_key(api_key)
        if parts is None:
            raise Unauthorized(_INVALID_KEY)
        key_id, secret = parts
        if self._bootstrap and key_id == self._bootstrap[0]:
            if hmac.compare_digest(secret, self._bootstrap[1]):
                return _bootstrap_admin(key_id)
            raise Unauthorized(_INVALID_KEY)
        row = await self._lookup(key_id)
        # Hash even for an unknown id, so both refusals take the same time.
        digest = _sha256(secret)
        if row is None or not hmac.compare_digest(row[0], digest):
            raise Unauthorized(_INVALID_KEY)
        return _principal(key_id, row)

    async def principal_of(self, key_id: str) -> Principal | None:
        """The principal of an unrevoked key id, for a session that authenticated earlier
        (the ops console's cookie): revoking the key ends the session too."""
        if self._bootstrap and key_id == self._bootstrap[0]:
            return _bootstrap_admin(key_id)
        row = await self._lookup(key_id)
        return None if row is None else _principal(key_id, row)

    async def _lookup(self, key_id: str) -> tuple | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        async with self._session_factory() as session:
            row = (await session.execute(self._select, {"key_id": key_id})).first()
        value = tuple(row) if row else None
        if len(self._cache) >= _CACHE_LIMIT:
            # Forged keys would otherwise grow the cache without bound.
            self._cache.clear()
        self._cache[key_id] = (now, value)
        return value

    def forget(self, key_id: str) -> None:
        """Drop a cached entry (after a local revocation)."""
        self._cache.pop(key_id, None)

    def sign(self, event: E) -> E:
        """A credential event this service issues, signed; refused without a key."""
        if self.signer is None:
            raise SigningKeyMissing(
                "this service has no credential signing key (TOUSU_CREDENTIAL_SIGNING_KEY)"
            )
        return self.signer.sign(event)

    async def apply(self, uow: SqlUnitOfWork, event: Event, envelope: Envelope | None) -> None:
        """Inbox handler: replicate a credential event into this service's table, once its
        signature shows an issuer made it; a forged one is dead-lettered, never applied."""
        self._check_signature(event)
        await self.store(uow.session, event)

    def _check_signature(self, event: Event) -> None:
        assert isinstance(event, CredentialEvent)
        if self.signer is None:
            # Service.consumer() refuses to start without a key; this is the last guard.
            raise RuntimeError("no credential signing key: cannot verify credential events")
        if self.signer.verify(event):
            return
        reason = "unsigned" if not event.signature else "bad_signature"
        REFUSED_CREDENTIAL_EVENTS.labels(self._service, event.event_type, reason).inc()
        # The key id is public (it is the visible part of a key); nothing else is logged.
        log.warning(
            "credential event refused: %s",
            reason,
            extra={"event_type": event.event_type, "key_id": event.key_id},
        )
        raise PermanentFailure(f"credential event refused: {reason}")

    async def store(self, session: AsyncSession, event: Event) -> None:
        """Write a credential event into this service's table (idempotent)."""
        if isinstance(event, CredentialIssued):
            await session.execute(
                text(
                    f"INSERT INTO {self._schema}.credential "
                    "(key_id, secret_sha256, name, role, department, scopes, issued_at, issued_by) "
                    "VALUES (:key_id, :secret, :name, :role, :department, :scopes, :at, :by) "
                    "ON CONFLICT (key_id) DO NOTHING"
                ),
                {
                    "key_id": event.key_id,
                    "secret": event.secret_sha256,
                    "name": event.name,
                    "role": event.role,
                    "department": event.department,
                    "scopes": event.scopes,
                    "at": event.issued_at,
                    "by": event.issued_by,
                },
            )
        elif isinstance(event, CredentialRevoked):
            await session.execute(
                text(
                    f"UPDATE {self._schema}.credential SET revoked_at = :at, revoked_by = :by "
                    "WHERE key_id = :key_id AND revoked_at IS NULL"
                ),
                {"key_id": event.key_id, "at": event.revoked_at, "by": event.revoked_by},
            )
            self.forget(event.key_id)


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller of a request; a client failing too often is told to wait."""
    if credentials is None:
        raise Unauthorized("missing credential: send 'Authorization: Bearer <api key>'")
    return await authenticate_request(request, credentials.credentials)


async def authenticate_request(request: Request, api_key: str) -> Principal:
    """Check an API key a request presents (a header, or the console's sign-in form) with
    the service's credential store; a client failing too often is told to wait (429)."""
    throttle, client = failure_throttle(request)
    throttle.check(client)
    try:
        principal: Principal = await request.app.state.runtime.credentials.authenticate(api_key)
    except Unauthorized:
        throttle.failed(client)
        raise
    return principal


def failure_throttle(request: Request) -> tuple[FailureThrottle, str]:
    """The process's throttle of failed authentications and the client a request counts as.

    Anything a caller presents to prove who it is (an API key, a console session cookie)
    counts its failures here, so guessing one kind of secret is as slow as another."""
    client = request.client.host if request.client else "unknown"
    return request.app.state.runtime.auth_throttle, client


class FailureThrottle:
    """Counts failed authentications per client in a sliding window (per process).

    Past the allowance a client gets 429 with ``Retry-After`` until its oldest failure in
    the window ages out, which makes guessing secrets slow; successes are not counted.
    """

    def __init__(self, allowed: int, window_seconds: float, *, max_clients: int = 10_000) -> None:
        self._allowed = allowed
        self._window = window_seconds
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and now - failures[0] > self._window:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def check(self, client: str) -> None:
        """Refuse a client that used up its allowance of failures."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) >= self._allowed:
            wait = max(1, int(self._window - (now - failures[0])) + 1)
            raise TooManyRequests(
                "too many failed authentications; try again later",
                retry_after=wait,
            )

    def failed(self, client: str) -> None:
        """Count one failure of a client."""
        if len(self._failures) >= self._max_clients:
            self._failures.clear()  # a flood of addresses must not grow memory without bound
        self._failures.setdefault(client, deque()).append(time.monotonic())


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(scope: Scope):
    """A dependency that admits only callers holding ``scope``."""

    async def _check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(scope):
            raise Forbidden(f"this action needs the scope {scope}", required_scope=scope)
        return principal

    return Depends(_check)


def credential_issued_event(
    create: CredentialCreate,
    *,
    issued_by: str,
) -> tuple[CredentialIssued, str]:
    """The event that issues a credential (unsigned: ``CredentialStore.sign`` signs it), and
    the key to hand to its holder once."""
    key_id, api_key, secret_hash = new_api_key()
    scopes = sorted(create.scopes if create.scopes is not None else ROLE_SCOPES[create.role])
    event = CredentialIssued(
        complaint_id=CREDENTIALS_SUBJECT,
        key_id=key_id,
        secret_sha256=secret_hash,
        name=create.name,
        role=create.role,
        department=create.department,
        scopes=scopes,
        issued_at=datetime.now(UTC),
        issued_by=issued_by,
    )
    return event, api_key


def credential_revoked_event(key_id: str, *, revoked_by: str) -> CredentialRevoked:
    """The event that revokes a credential (unsigned: ``CredentialStore.sign`` signs it)."""
    return CredentialRevoked(
        complaint_id=CREDENTIALS_SUBJECT,
        key_id=key_id,
        revoked_at=datetime.now(UTC),
        revoked_by=revoked_by,
    )
