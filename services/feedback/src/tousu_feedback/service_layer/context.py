"""The one context every feedback use case gets: units of work, clock, channels, intake."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tousu_shared.clock import Clock

from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.service_layer.ports import ChannelAdapter, IntakeGateway
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWorkBase


@dataclass
class FeedbackContext:
    uow: Callable[[], FeedbackUnitOfWorkBase]
    clock: Clock
    channels: Mapping[OutboundChannel, ChannelAdapter]
    intake: IntakeGateway
    # Base of the customers' answer links, e.g. https://feedback.example.com
    public_base_url: str

    def answer_link(self, token: str) -> str:
        """The page a customer answers on."""
        return f"{self.public_base_url.rstrip('/')}/s/{token}"
