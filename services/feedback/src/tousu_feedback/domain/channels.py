"""The channels a customer is told the result on."""

from __future__ import annotations

from enum import StrEnum


class OutboundChannel(StrEnum):
    """How feedback reaches a customer: a message with the answer link, or a phone call."""

    EMAIL = "email"
    SMS = "sms"
    WECHAT = "wechat"
    # No message: a callback agent phones the customer and records the answer.
    CALLBACK = "callback"

    @property
    def sends_link(self) -> bool:
        """Whether a message (with the answer link) goes out on this channel."""
        return self is not OutboundChannel.CALLBACK
