"""What every console page shares: templates, the signed-in viewer, CSRF and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from tousu_shared.errors import Forbidden, TooManyRequests

from tousu_analytics.console.i18n import Words
from tousu_analytics.console.sessions import SignInRequired, Viewer, current_viewer
from tousu_analytics.service_layer.context import AnalyticsContext

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Pages load only their own script and stylesheet; nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class Refused(Exception):
    """A page the viewer may not see, or a form that failed its check (rendered, not JSON)."""

    def __init__(self, status: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key


def ctx_of(request: Request) -> AnalyticsContext:
    return request.app.state.analytics


async def viewer_of(request: Request, scope: str | None = None) -> Viewer:
    """The signed-in viewer, holding ``scope`` when one is named."""
    viewer = await current_viewer(ctx_of(request), request)
    if scope is not None and not viewer.principal.can(scope):
        raise Refused(403, "forbidden")
    return viewer


def department_scope(viewer: Viewer, requested: str | None) -> str | None:
    """The department a page is narrowed to, by the platform's one visibility rule."""
    try:
        return viewer.principal.visible_department(requested or None)
    except Forbidden:
        raise Refused(403, "forbidden") from None


async def checked_form(request: Request, viewer: Viewer) -> dict[str, str]:
    """The posted form, after its CSRF token matched the session's."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    if not viewer.csrf_ok(form.get("csrf_token")):
        raise Refused(403, "csrf")
    return form


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status: int = 200,
    lang: str | None = None,
    **values: Any,
) -> HTMLResponse:
    words = Words(lang or (viewer.lang if viewer else "zh"))
    html = TEMPLATES.get_template(template).render(
        t=words,
        lang=words.lang,
        viewer=viewer,
        principal=viewer.principal if viewer else None,
        path=request.url.path,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a console path, never another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/board"


async def sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if request.url.path.endswith("/stream"):
        return Response(status_code=401, headers={"WWW-Authenticate": "Cookie"})
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    flag = "&expired=1" if exc.expired else ""
    return RedirectResponse(f"/console/login?next={quote(here)}{flag}", status_code=303)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    try:
        viewer: Viewer | None = await current_viewer(ctx_of(request), request)
    except (SignInRequired, TooManyRequests):
        viewer = None
    return render(request, "message.html", viewer, exc.status, message_key=exc.message_key)
