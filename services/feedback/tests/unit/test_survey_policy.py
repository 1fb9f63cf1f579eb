"""The survey policy as data: send windows on the Chinese business calendar, validation."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.domain.policy import SendWindow, SurveyPolicy

BEIJING = dt.timezone(dt.timedelta(hours=8))


def beijing(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BEIJING)


def test_every_day_window_moves_night_messages_to_nine():
    window = SendWindow()
    assert window.next_opening(beijing(2026, 12, 1, 22, 30)) == beijing(2026, 12, 2, 9)
    assert window.next_opening(beijing(2026, 12, 2, 6, 0)) == beijing(2026, 12, 2, 9)
    inside = beijing(2026, 12, 2, 15, 0)
    assert window.next_opening(inside) == inside


def test_working_days_window_skips_the_national_day_holiday_and_keeps_make_up_days():
    window = SendWindow(days="working_days")
    # 1–7 October 2026 are holidays; Saturday 10 October is a make-up working day (调休).
    assert window.next_opening(beijing(2026, 9, 30, 22)) == beijing(2026, 10, 8, 9)
    assert window.next_opening(beijing(2026, 10, 9, 22)) == beijing(2026, 10, 10, 9)
    assert window.next_opening(beijing(2026, 12, 4, 21, 30)) == beijing(2026, 12, 7, 9)


def test_urgent_cases_skip_the_window():
    policy = SurveyPolicy()
    night = beijing(2026, 12, 1, 23)
    assert policy.send_time(night, "immediate") == night
    assert policy.send_time(night, "routine") == beijing(2026, 12, 2, 9)


def test_channel_per_original_channel_with_a_fallback():
    policy = SurveyPolicy()
    assert policy.channel_for("email") is OutboundChannel.EMAIL
    assert policy.channel_for("phone") is OutboundChannel.SMS
    assert policy.channel_for("letter") is OutboundChannel.CALLBACK
    assert policy.channel_for("fax") is OutboundChannel.CALLBACK


@pytest.mark.parametrize(
    "change",
    [
        {"reminders": ["P8D"]},
        {"reminders": ["PT72H", "PT48H"]},
        {"expiry": "PT0S"},
        {"callback_attempts": 0},
        {"send_window": {"start": "21:00", "end": "09:00"}},
        {"send_window": {"timezone": "Mars/Olympus"}},
    ],
)
def test_inconsistent_policies_are_refused(change):
    with pytest.raises(ValidationError):
        SurveyPolicy.model_validate(change)


def test_the_default_policy_follows_the_domain_rules():
    policy = SurveyPolicy()
    assert policy.offer_delay == dt.timedelta(0)
    assert policy.reminders == (dt.timedelta(hours=48),)
    assert policy.expiry == dt.timedelta(days=7)
    assert policy.callback_attempts == 3
    assert SurveyPolicy.model_validate(policy.model_dump(mode="json")) == policy
