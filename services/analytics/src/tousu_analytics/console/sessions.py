"""Console sign-in: an API key exchanged for a short-lived session cookie.

The cookie holds a random token (HttpOnly, SameSite=Strict, Secure on HTTPS); the table
keeps only its SHA-256, the key id and a CSRF token. Every request looks the principal up
again by key id, so a revoked key ends its sessions, and the role and department decide
what a page shows exactly as they decide what the API answers. Sessions slide: one still in
use is extended when less than half of its life is left (a write at most every half-life).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from fastapi import Request, Response
from tousu_shared.auth import Principal, authenticate_request, failure_throttle

from tousu_analytics.adapters.orm import console_session
from tousu_analytics.service_layer.context import AnalyticsContext

COOKIE = "tousu_console"
# Before sign-in there is no session to hold a CSRF token, so the sign-in form's token is
# double-submitted: a cookie of its own and the same value in the form.
LOGIN_CSRF_COOKIE = "tousu_console_login"


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """A signed-in console user."""

    principal: Principal
    token_sha256: str
    csrf_token: str
    lang: str

    def csrf_ok(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf_token, submitted or "")


class SignInRequired(Exception):
    """No valid session: pages send the browser to the sign-in form."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in required")
        self.expired = expired


async def sign_in(
    ctx: AnalyticsContext, request: Request, api_key: str, lang: str
) -> tuple[str, Principal]:
    """Check the key like the API does (throttled) and open a session; returns its token."""
    principal = await authenticate_request(request, api_key.strip())
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    async with ctx.uow() as uow:
        await uow.session.execute(
            sa.delete(console_session).where(console_session.c.expires_at < now)
        )
        await uow.session.execute(
            sa.insert(console_session).values(
                token_sha256=_sha256(token),
                key_id=principal.key_id,
                csrf_token=secrets.token_urlsafe(32),
                lang=lang,
                created_at=now,
                expires_at=now + _lifetime(ctx),
            )
        )
        uow.audit(principal, "console.sign_in", "console_session")
        await uow.commit()
    return token, principal


def _lifetime(ctx: AnalyticsContext) -> timedelta:
    return timedelta(minutes=ctx.settings.console_session_minutes)


async def current_viewer(ctx: AnalyticsContext, request: Request) -> Viewer:
    """The signed-in user of a request; raises :class:`SignInRequired` otherwise."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired()
    # A cookie is a secret like an API key: a client guessing tokens is slowed the same way.
    throttle, client = failure_throttle(request)
    throttle.check(client)
    digest = _sha256(token)
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = (
            await uow.session.execute(
                sa.select(console_session).where(console_session.c.token_sha256 == digest)
            )
        ).first()
        if row is None:
            throttle.failed(client)
            raise SignInRequired()
        if row.expires_at <= now:
            raise SignInRequired(expired=True)
        if row.expires_at - now < _lifetime(ctx) / 2:
            await uow.session.execute(
                sa.update(console_session)
                .where(console_session.c.token_sha256 == digest)
                .values(expires_at=now + _lifetime(ctx))
            )
            await uow.commit()
    principal = await request.app.state.runtime.credentials.principal_of(row.key_id)
    if principal is None:
        raise SignInRequired(expired=True)
    return Viewer(principal, digest, row.csrf_token, row.lang)


async def set_language(ctx: AnalyticsContext, viewer: Viewer, lang: str) -> None:
    async with ctx.uow() as uow:
        await uow.session.execute(
            sa.update(console_session)
            .where(console_session.c.token_sha256 == viewer.token_sha256)
            .values(lang=lang)
        )
        await uow.commit()


async def sign_out(ctx: AnalyticsContext, viewer: Viewer) -> None:
    async with ctx.uow() as uow:
        await uow.session.execute(
            sa.delete(console_session).where(console_session.c.token_sha256 == viewer.token_sha256)
        )
        uow.audit(viewer.principal, "console.sign_out", "console_session")
        await uow.commit()


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, path /console; Secure whenever the page came over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
