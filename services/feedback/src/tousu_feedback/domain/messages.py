"""What the customer receives: the result of their complaint and the link to answer, in
Chinese and English (the page behind the link is bilingual too)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tousu_feedback.domain.policy import BEIJING
from tousu_feedback.domain.records import MessageKind

REDACTED = "<link withheld>"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str

    def redacted(self, link: str) -> Rendered:
        """The stored copy: the link (whose token is a secret) withheld."""
        return Rendered(
            self.subject,
            self.text.replace(link, REDACTED),
            self.html.replace(link, REDACTED),
        )


def render(
    kind: MessageKind,
    *,
    tracking_code: str,
    resolution: str,
    link: str,
    expires_at: dt.datetime,
) -> Rendered:
    """The result-and-survey message, or the reminder."""
    until = expires_at.astimezone(ZoneInfo(BEIJING)).strftime("%Y-%m-%d %H:%M")
    if kind is MessageKind.REMINDER:
        subject = (
            f"请确认投诉 {tracking_code} 的处理结果 / Please confirm the result of {tracking_code}"
        )
        zh = f"您好，我们还没有收到您对投诉 {tracking_code} 处理结果的确认。"
        en = f"Hello, we have not yet heard whether the result of complaint {tracking_code} "
        en += "works for you."
    else:
        subject = f"您的投诉 {tracking_code} 已处理 / Your complaint {tracking_code} was resolved"
        zh = f"您好，您的投诉 {tracking_code} 已处理完毕：{resolution}。"
        en = f"Hello, your complaint {tracking_code} has been resolved: {resolution}."
    zh += f"请告诉我们问题是否已解决，并确认处理结果（{until} 前有效）：\n{link}\n"
    en += f" Please tell us whether the problem is solved and confirm the result: {link} "
    en += f"(valid until {until} Beijing time)."
    text = f"{zh}\n\n{en}\n"
    html = (
        f'<p lang="zh">{_escape(zh)}</p><p lang="en">{_escape(en)}</p>'
        f'<p><a href="{link}">回答 / Answer</a></p>'
    )
    return Rendered(subject, text, html)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
