"""The survey policy as data: when the customer is told the result, on which channel, when
they are reminded, when the survey expires and how many callback attempts it gets.

Policies are versioned (the API publishes a new version, never edits one); a survey keeps
the version it was scheduled under.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from tousu_shared.contracts.vocabulary import Channel, Urgency

from tousu_feedback.domain.channels import OutboundChannel

BEIJING = "Asia/Shanghai"


def _local(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise ValueError("give a local time without an offset; the zone is the window's timezone")
    return value


# A wall-clock time in the window's own time zone: JSON Schema's "time" format requires an
# offset, which a local time has none of (and one with an offset would not compare).
LocalTime = Annotated[
    dt.time,
    AfterValidator(_local),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["09:00:00"],
        }
    ),
]


class SendWindow(BaseModel):
    """When messages may go out, in local time; outside it they wait for the next opening.

    ``days`` is ``every_day`` or ``working_days`` (the Chinese statutory calendar: weekends
    and public holidays off, make-up working days on). The window applies to the urgencies
    listed; a more urgent case is told at once, day or night.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: LocalTime = dt.time(9, 0)
    end: LocalTime = dt.time(21, 0)
    timezone: str = BEIJING
    days: str = Field(default="every_day", pattern="^(every_day|working_days)$")
    urgencies: tuple[Urgency, ...] = (Urgency.DEFERRED, Urgency.ROUTINE)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if self.start >= self.end:
            raise ValueError("the send window's start must be before its end")
        return self

    def applies_to(self, urgency: str | None) -> bool:
        """Whether a case of this urgency waits for the window (unknown: it does)."""
        return urgency is None or urgency in self.urgencies

    def next_opening(self, at: dt.datetime) -> dt.datetime:
        """``at`` itself when it lies inside the window, else the window's next opening."""
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        for offset in range(0, 60):
            day = local.date() + dt.timedelta(days=offset)
            if not self._open_on(day):
                continue
            opens = dt.datetime.combine(day, self.start, zone)
            closes = dt.datetime.combine(day, self.end, zone)
            if local < opens:
                return opens.astimezone(dt.UTC)
            if local < closes:
                return at
        raise ValueError("no open day in the send window within 60 days")

    def _open_on(self, day: dt.date) -> bool:
        if self.days == "every_day":
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            # The library has no data for that year yet: weekdays are the safe guess.
            return day.weekday() < 5


def _default_channels() -> dict[Channel, OutboundChannel]:
    return {
        Channel.PHONE: OutboundChannel.SMS,
        Channel.EMAIL: OutboundChannel.EMAIL,
        Channel.WEB_FORM: OutboundChannel.EMAIL,
        Channel.ONLINE_CHAT: OutboundChannel.WECHAT,
        Channel.SOCIAL_MEDIA: OutboundChannel.WECHAT,
        Channel.APP: OutboundChannel.WECHAT,
        Channel.LETTER: OutboundChannel.CALLBACK,
        Channel.ON_SITE: OutboundChannel.SMS,
        Channel.SURVEY: OutboundChannel.EMAIL,
    }


class SurveyPolicy(BaseModel):
    """One version of the survey policy (the defaults follow domain.md §4–§5)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offer_delay: dt.timedelta = dt.timedelta(0)
    # §4: follow-up within 24 h of resolution; the callback list shows a survey as due then.
    callback_due_after: dt.timedelta = dt.timedelta(hours=24)
    send_window: SendWindow = SendWindow()
    reminders: tuple[dt.timedelta, ...] = (dt.timedelta(hours=48),)
    expiry: dt.timedelta = dt.timedelta(days=7)
    callback_attempts: int = Field(default=3, ge=1, le=20)
    channels: dict[Channel, OutboundChannel] = Field(default_factory=_default_channels)
    retry_failed_send_after: dt.timedelta = dt.timedelta(minutes=5)

    @model_validator(mode="after")
    def _consistent(self) -> SurveyPolicy:
        if self.offer_delay < dt.timedelta(0):
            raise ValueError("offer_delay must not be negative")
        if self.expiry <= dt.timedelta(0):
            raise ValueError("expiry must be positive")
        if any(r <= dt.timedelta(0) or r >= self.expiry for r in self.reminders):
            raise ValueError("every reminder must fall after the offer and before the expiry")
        if list(self.reminders) != sorted(self.reminders):
            raise ValueError("reminders must be in increasing order")
        if self.retry_failed_send_after <= dt.timedelta(0):
            raise ValueError("retry_failed_send_after must be positive")
        return self

    def channel_for(self, original: str) -> OutboundChannel:
        """The channel a customer who came in through ``original`` is told the result on."""
        try:
            return self.channels[Channel(original)]
        except (ValueError, KeyError):
            return OutboundChannel.CALLBACK

    def send_time(self, wanted: dt.datetime, urgency: str | None) -> dt.datetime:
        """The first moment at or after ``wanted`` a message may go out for this urgency."""
        if not self.send_window.applies_to(urgency):
            return wanted
        return self.send_window.next_opening(wanted)
