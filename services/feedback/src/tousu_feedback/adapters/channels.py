"""Channel adapters: email over SMTP, and an outbound topic an SMS/WeChat gateway consumes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import orjson
from aiokafka import AIOKafkaProducer

from tousu_feedback.service_layer.ports import Delivery, DeliveryFailed


@dataclass(frozen=True, kw_only=True)
class SmtpEmail:
    """Sends each message as a multipart (text + HTML) email through one SMTP server."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    start_tls: bool = False
    timeout: float = 15.0

    async def send(self, delivery: Delivery) -> str:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = delivery.to
        message["Subject"] = delivery.subject
        message_id = make_msgid(idstring=delivery.message_id.hex, domain="tousu.feedback")
        message["Message-ID"] = message_id
        message["X-Tousu-Message"] = str(delivery.message_id)
        message.set_content(delivery.text)
        message.add_alternative(delivery.html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP {self.host}:{self.port}: {type(exc).__name__}") from exc
        return message_id

    async def close(self) -> None:
        """Nothing held open: one connection per message."""


class GatewayTopic:
    """Hands messages to an SMS or WeChat gateway through a Kafka topic of its own.

    This is a delivery channel, not an event stream: like SMTP it must carry the recipient
    and the text with the answer link, so the topic is for the gateway alone (short
    retention, restricted access). The record key is the complaint id, keeping a customer's
    messages in order.
    """

    def __init__(
        self, channel: str, topic: str, producer_factory: Callable[[], AIOKafkaProducer]
    ) -> None:
        self._channel = channel
        self._topic = topic
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        # Created on first use: a producer belongs to the event loop that starts it.
        async with self._lock:
            if self._producer is None:
                producer = self._producer_factory()
                await producer.start()
                self._producer = producer
            return self._producer

    async def send(self, delivery: Delivery) -> str:
        record = {
            "message_id": str(delivery.message_id),
            "channel": self._channel,
            "to": delivery.to,
            "text": delivery.text,
        }
        try:
            producer = await self._started()
            metadata = await producer.send_and_wait(
                self._topic, orjson.dumps(record), key=str(delivery.complaint_id).encode()
            )
        except Exception as exc:  # any producer failure: the step is retried later
            raise DeliveryFailed(f"gateway topic {self._topic}: {type(exc).__name__}") from exc
        return f"{self._topic}/{metadata.partition}/{metadata.offset}"

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
