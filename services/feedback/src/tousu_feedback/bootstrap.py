"""Composition root of the feedback service, used by its process, its API and its tests."""

from __future__ import annotations

from pathlib import Path

import httpx
from tousu_shared.clock import Clock, utc_now
from tousu_shared.http import create_app
from tousu_shared.outbox import CommitListener
from tousu_shared.runtime import Runtime, Service, include_routers

from tousu_feedback.adapters.channels import GatewayTopic, SmtpEmail
from tousu_feedback.adapters.intake import HttpIntake
from tousu_feedback.domain.channels import OutboundChannel
from tousu_feedback.entrypoints import api, public
from tousu_feedback.entrypoints.scheduler import SurveyScheduler
from tousu_feedback.service_layer.context import FeedbackContext
from tousu_feedback.service_layer.handlers import event_handlers
from tousu_feedback.service_layer.ports import ChannelAdapter
from tousu_feedback.service_layer.unit_of_work import FeedbackUnitOfWork
from tousu_feedback.settings import FeedbackSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def bootstrap(
    settings: FeedbackSettings | None = None,
    *,
    clock: Clock = utc_now,
    intake_transport: httpx.AsyncBaseTransport | None = None,
) -> Service:
    """Wire the feedback service; nothing connects until it runs.

    Tests pass a clock of their own and a transport to an in-process intake.
    """
    settings = settings or FeedbackSettings()
    runtime = Runtime.build(settings)
    gateway_topic = settings.topic(settings.gateway_topic)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    channels: dict[OutboundChannel, ChannelAdapter] = {
        OutboundChannel.EMAIL: SmtpEmail(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_start_tls,
        ),
        OutboundChannel.SMS: GatewayTopic("sms", gateway_topic, runtime.producer),
        OutboundChannel.WECHAT: GatewayTopic("wechat", gateway_topic, runtime.producer),
    }
    api_key = settings.intake_api_key.get_secret_value() if settings.intake_api_key else None
    uow = runtime.unit_of_work_factory(FeedbackUnitOfWork)
    ctx = FeedbackContext(
        uow=uow,
        clock=clock,
        channels=channels,
        intake=HttpIntake(settings.intake_url, api_key, transport=intake_transport),
        public_base_url=settings.public_base_url,
    )
    app = create_app(
        runtime,
        title="Tousu feedback",
        description="The customer is told the result, confirms it or not; callback surveys.",
    )
    app.state.feedback = ctx
    include_routers(app, [api.router, public.router])
    scheduler = SurveyScheduler(settings, ctx, CommitListener(settings, runtime.engine))
    return Service.of(
        runtime, app, uow, event_handlers(ctx), MIGRATIONS_DIR, workers={"scheduler": scheduler.run}
    )
