"""The customer's answer link: no credential, only the token.

``/s/{token}`` is a small bilingual page (works on a phone, plain HTML form, no script);
``/v1/public/surveys/{token}`` is the same in JSON. Unknown or forged tokens are 404,
expired or revoked ones 410, answered ones 409; none of them says whether a complaint exists.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from tousu_shared.errors import InvalidInput, ServiceError

from tousu_feedback.domain.answer import REASONS_REQUIRED_AT_OR_BELOW, Outcome, ReasonCode
from tousu_feedback.entrypoints.schemas import AnswerCreate, LinkRead, to_answer
from tousu_feedback.service_layer import answers
from tousu_feedback.service_layer.context import FeedbackContext

router = APIRouter(tags=["survey link"])

Token = Annotated[str, Path(min_length=1, max_length=100)]

REASON_LABELS: dict[ReasonCode, tuple[str, str]] = {
    ReasonCode.NOT_SOLVED: ("问题没有解决", "The problem is not solved"),
    ReasonCode.TOO_SLOW: ("处理太慢", "It took too long"),
    ReasonCode.REMEDY_INSUFFICIENT: ("补偿不足", "The remedy is not enough"),
    ReasonCode.STAFF_ATTITUDE: ("服务态度差", "Staff attitude"),
    ReasonCode.POOR_COMMUNICATION: ("沟通不清楚", "Poor communication"),
    ReasonCode.PROBLEM_RECURRED: ("问题再次出现", "The problem came back"),
    ReasonCode.OTHER: ("其他", "Other"),
}

QUESTIONS: list[dict[str, Any]] = [
    {"id": "solved", "type": "yes_no", "zh": "问题是否已经解决？", "en": "Was the problem solved?"},
    {
        "id": "satisfaction",
        "type": "rating",
        "min": 1,
        "max": 5,
        "zh": "您对处理结果的满意度（1–5）",
        "en": "How satisfied are you with the result (1–5)?",
    },
    {
        "id": "reason_codes",
        "type": "choices",
        "required_when": f"satisfaction <= {REASONS_REQUIRED_AT_OR_BELOW}",
        "zh": "不满意的原因",
        "en": "Why are you not satisfied?",
        "options": [{"code": c.value, "zh": zh, "en": en} for c, (zh, en) in REASON_LABELS.items()],
    },
    {"id": "reason_text", "type": "text", "zh": "原因说明", "en": "Tell us more"},
    {"id": "comment", "type": "text", "zh": "其他意见", "en": "Any other comment"},
    {
        "id": "new_issue",
        "type": "text",
        "zh": "有与本次投诉无关的新问题？",
        "en": "A new problem, not this complaint?",
    },
    {
        "id": "confirmed",
        "type": "yes_no",
        "zh": "您是否确认以上处理结果？",
        "en": "Do you confirm the result?",
    },
]


async def get_context(request: Request) -> FeedbackContext:
    return request.app.state.feedback


Context = Annotated[FeedbackContext, Depends(get_context)]


@router.get("/v1/public/surveys/{token}", response_model=LinkRead)
async def show_survey(token: Token, ctx: Context) -> LinkRead:
    """The questions behind a link."""
    view = await answers.view_link(ctx, token)
    return LinkRead(resolution=view.resolution, expires_at=view.expires_at, questions=QUESTIONS)


@router.post("/v1/public/surveys/{token}")
async def answer_survey(token: Token, body: AnswerCreate, ctx: Context) -> dict[str, str]:
    """Answer once; the link is used up."""
    outcome = await answers.answer_by_link(ctx, answers.AnswerByLink(token, to_answer(body)))
    return {"status": "answered", "outcome": outcome.value}


@router.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
async def survey_page(token: Token, ctx: Context) -> HTMLResponse:
    try:
        view = await answers.view_link(ctx, token)
    except ServiceError as exc:
        return _page(_notice(exc), exc.status_code)
    return _page(_form(token, view.resolution), 200)


@router.post("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
async def survey_page_answer(token: Token, request: Request, ctx: Context) -> HTMLResponse:
    form = {k: v for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    data: dict[str, Any] = {
        "solved": _first(form, "solved") == "yes",
        "confirmed": _first(form, "confirmed") == "yes",
        "satisfaction": _first(form, "satisfaction") or "0",
        "reason_codes": form.get("reason_codes", []),
    }
    for name in ("reason_text", "comment", "new_issue"):
        if _first(form, name):
            data[name] = _first(form, name)
    try:
        body = AnswerCreate.model_validate(data)
        outcome = await answers.answer_by_link(ctx, answers.AnswerByLink(token, to_answer(body)))
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        return _page(_notice(InvalidInput(f"please check: {fields}")), 422)
    except ServiceError as exc:
        return _page(_notice(exc), exc.status_code)
    thanks = (
        "<p>感谢您的确认！</p><p>Thank you for confirming.</p>"
        if outcome is Outcome.CONFIRMED
        else "<p>感谢反馈，我们会重新处理您的投诉。</p><p>Thank you; we will look at it again.</p>"
    )
    return _page(thanks, 200)


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0].strip() if values and values[0].strip() else None


def _page(content: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>回访 / Feedback</title><style>body{font-family:sans-serif;max-width:34em;"
        "margin:auto;padding:1em;line-height:1.5}fieldset{margin:0 0 1em;border:1px solid #ccc}"
        "textarea{width:100%}button{font-size:1.1em;padding:.5em 1.5em}</style></head>"
        f"<body><h1>回访 / Feedback</h1>{content}</body></html>",
        status_code=status,
    )


def _notice(exc: ServiceError) -> str:
    zh = {
        404: "链接无效。",
        409: "您已回答过，谢谢！",
        410: "链接已失效。",
        422: "请检查您的回答。",
    }
    return f"<p>{zh.get(exc.status_code, '出错了。')}</p><p>{html.escape(exc.message)}</p>"


def _yes_no(name: str) -> str:
    return (
        f'<label><input type="radio" name="{name}" value="yes" required> 是 / Yes</label> '
        f'<label><input type="radio" name="{name}" value="no"> 否 / No</label>'
    )


def _form(token: str, resolution: str) -> str:
    stars = " ".join(
        f'<label><input type="radio" name="satisfaction" value="{n}" required> {n}</label>'
        for n in range(1, 6)
    )
    reasons = "<br>".join(
        f'<label><input type="checkbox" name="reason_codes" value="{code.value}"> '
        f"{zh} / {en}</label>"
        for code, (zh, en) in REASON_LABELS.items()
    )
    q = {question["id"]: f"{question['zh']}<br>{question['en']}" for question in QUESTIONS}
    return (
        f"<p>处理结果 / Result: {html.escape(resolution)}</p>"
        f'<form method="post" action="/s/{html.escape(token)}">'
        f"<fieldset><legend>{q['solved']}</legend>{_yes_no('solved')}</fieldset>"
        f"<fieldset><legend>{q['satisfaction']}</legend>{stars}</fieldset>"
        f"<fieldset><legend>{q['reason_codes']}（≤{REASONS_REQUIRED_AT_OR_BELOW}）</legend>"
        f'{reasons}<br><textarea name="reason_text" rows="2"></textarea></fieldset>'
        f'<fieldset><legend>{q["comment"]}</legend><textarea name="comment" rows="3">'
        "</textarea></fieldset>"
        f'<fieldset><legend>{q["new_issue"]}</legend><textarea name="new_issue" rows="2">'
        "</textarea></fieldset>"
        f"<fieldset><legend>{q['confirmed']}</legend>{_yes_no('confirmed')}</fieldset>"
        "<button>提交 / Submit</button></form>"
    )
