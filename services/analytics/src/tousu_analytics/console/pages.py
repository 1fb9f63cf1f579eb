"""The console's sign-in, live board and case timeline (``/console``)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from tousu_shared.errors import TooManyRequests, Unauthorized
from tousu_shared.streams import Overflowed, Poller, StreamSlots, held, state_of

from tousu_analytics.console import charts, sessions, web
from tousu_analytics.console.board import LOCAL, board
from tousu_analytics.console.i18n import Words
from tousu_analytics.console.timeline import case_timeline, summary

router = APIRouter(prefix="/console", include_in_schema=False)
LOGIN_COOKIE_SECONDS = 600
HEARTBEAT_SECONDS = 15.0
RECHECK_SESSION_SECONDS = 60.0
# A stream ends after this long and the browser reconnects (EventSource does by itself), so
# no connection outlives a deploy or a revoked key by more than a few minutes.
STREAM_MAX_SECONDS = 300.0


@router.get("")
async def home() -> Response:
    return RedirectResponse("/console/board", status_code=303)


@router.get("/login")
async def login_form(
    request: Request, next: str | None = None, expired: int = 0, lang: str = "zh"
) -> Response:
    token = secrets.token_urlsafe(24)
    response = web.render(
        request,
        "login.html",
        None,
        lang=lang,
        csrf_token=token,
        next=web.safe_next(next),
        error="expired" if expired else None,
    )
    sessions.set_cookie(response, request, sessions.LOGIN_CSRF_COOKIE, token, LOGIN_COOKIE_SECONDS)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    lang = form.get("lang", "zh")
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, form.get("csrf_token", "")):
        raise web.Refused(403, "csrf")
    try:
        token, _ = await sessions.sign_in(
            web.ctx_of(request), request, form.get("api_key", ""), lang
        )
    except (Unauthorized, TooManyRequests) as exc:
        fresh = secrets.token_urlsafe(24)
        status = 429 if isinstance(exc, TooManyRequests) else 401
        response = web.render(
            request,
            "login.html",
            None,
            status,
            lang=lang,
            csrf_token=fresh,
            next=web.safe_next(form.get("next")),
            error="bad_key",
        )
        sessions.set_cookie(
            response, request, sessions.LOGIN_CSRF_COOKIE, fresh, LOGIN_COOKIE_SECONDS
        )
        return response
    done = RedirectResponse(web.safe_next(form.get("next")), status_code=303)
    lifetime = web.ctx_of(request).settings.console_session_minutes * 60
    sessions.set_cookie(done, request, sessions.COOKIE, token, lifetime)
    done.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path="/console")
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer = await web.viewer_of(request)
    await web.checked_form(request, viewer)
    await sessions.sign_out(web.ctx_of(request), viewer)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/console")
    return response


@router.post("/lang")
async def switch_language(request: Request) -> Response:
    viewer = await web.viewer_of(request)
    form = await web.checked_form(request, viewer)
    await sessions.set_language(
        web.ctx_of(request), viewer, "en" if form.get("lang") == "en" else "zh"
    )
    return RedirectResponse(web.safe_next(form.get("next")), status_code=303)


# ---- live SLA board ----------------------------------------------------------------------


@router.get("/board")
async def board_page(request: Request, department: str | None = None) -> Response:
    viewer = await web.viewer_of(request, "sla:read")
    scope = web.department_scope(viewer, department)
    data = await board(web.ctx_of(request), scope)
    return web.render(request, "board.html", viewer, data=data, department=scope)


def labelled(data: dict[str, Any], words: Words) -> dict[str, Any]:
    """The board with its values named in the viewer's language (the script only places)."""
    state_word = {state: words[state] for state in ("breached", "at_risk", "paused")}
    state_word["running"] = words.open_clocks
    rows = [
        {
            **row,
            "state_label": state_word[row["state"]],
            "category_label": words.value(row["category"]) if row["category"] else None,
            "level_label": words.value(row["level"]) if row["level"] else None,
            "milestone_label": words.value(row["milestone"]),
        }
        for row in data["rows"]
    ]
    # Department codes are names of their own; levels are vocabulary.
    counts = {
        "per_department": [{**c, "label": c["department"]} for c in data["per_department"]],
        "per_level": [{**c, "label": words.value(c["level"])} for c in data["per_level"]],
    }
    return {**data, "rows": rows, **counts}


def _sse(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.get("/board/stream")
async def board_stream(request: Request, department: str | None = None) -> Response:
    """Server-sent events from the read model: the board whenever it changed, a comment
    line as heartbeat, and ``signed_out`` when the session ends.

    The board of one department scope is read once per interval for every stream showing
    it (one poller per process); a credential holds at most
    ``TOUSU_STREAM_MAX_PER_CREDENTIAL`` streams, the next is a 429."""
    viewer = await web.viewer_of(request, "sla:read")
    scope = web.department_scope(viewer, department)
    ctx = web.ctx_of(request)
    words = Words(viewer.lang)
    poller = board_poller(request)

    async def events() -> AsyncIterator[bytes]:
        last: bytes | None = None
        loop = asyncio.get_running_loop()
        opened = checked_at = loop.time()
        yield b"retry: 2000\n\n"
        async with poller.listen(scope) as listener:
            while loop.time() - opened < STREAM_MAX_SECONDS:
                if loop.time() - checked_at > RECHECK_SESSION_SECONDS:
                    checked_at = loop.time()
                    try:
                        await sessions.current_viewer(ctx, request)
                    except sessions.SignInRequired:
                        yield _sse("signed_out", {})
                        return
                    except TooManyRequests:
                        pass  # others guess from this address; this session is checked later
                try:
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        data = await listener.next()
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                except Overflowed:
                    return  # the browser reconnects and gets the board afresh
                payload = _sse("board", labelled(data, words))
                if payload != last:
                    last = payload
                    yield payload

    headers = {**web.SECURITY_HEADERS, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return held(
        stream_slots(request),
        viewer.principal.key_id,
        lambda: StreamingResponse(events(), media_type="text/event-stream", headers=headers),
    )


def board_poller(request: Request) -> Poller[str | None, None, dict[str, Any]]:
    """The process's one board reader per department scope, shared by every stream."""
    ctx = web.ctx_of(request)

    async def start(_: str | None) -> None:
        return None

    async def poll(scope: str | None, state: None) -> tuple[None, dict[str, Any]]:
        return state, await board(ctx, scope)

    return state_of(
        request.app.state,
        "console_board_poller",
        lambda: Poller(
            "console-board",
            start=start,
            poll=poll,
            interval=lambda: ctx.settings.console_stream_seconds,
            replay_last=True,
        ),
    )


def stream_slots(request: Request) -> StreamSlots:
    """The board streams each credential holds open in this process."""
    settings = web.ctx_of(request).settings
    return state_of(
        request.app.state,
        "console_stream_slots",
        lambda: StreamSlots("console-board", lambda: settings.stream_max_per_credential),
    )


# ---- case timeline -----------------------------------------------------------------------


def _local(at: datetime | None) -> str:
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if at else "—"


@router.get("/cases/{complaint_id}")
async def case_page(request: Request, complaint_id: str) -> Response:
    viewer = await web.viewer_of(request, "cases:read")
    try:
        cid = uuid.UUID(complaint_id)
    except ValueError:
        raise web.Refused(404, "not_found") from None
    case = await case_timeline(web.ctx_of(request), viewer.principal, cid)
    if case is None:
        raise web.Refused(404, "not_found")
    words = Words(viewer.lang)
    labels = {bar.milestone: words.value(bar.milestone) for bar in case.milestones}
    surveys = [
        e
        for e in case.events
        if e["event_type"] in ("SurveyAnswered", "CustomerConfirmed", "CallbackAttempted")
    ]
    return web.render(
        request,
        "case.html",
        viewer,
        case=case,
        chart=charts.milestone_chart(case, labels),
        surveys=surveys,
        summary=summary,
        local=_local,
        hours=charts.hours_label,
    )
