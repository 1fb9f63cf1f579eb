"""Test data factories for intake tests."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import contract_events
import httpx
from sqlalchemy import Row, text
from tousu_intake.domain.commands import SubmitComplaint
from tousu_intake.domain.complaint import ComplaintDetails, Customer
from tousu_shared.auth import new_api_key
from tousu_shared.contracts import case as case_events
from tousu_shared.contracts.vocabulary import Channel, Emotion, Remedy

ADMIN_KEY = new_api_key()[1]

# The worked case's phone complaint as a use-case command (the unit tests' customer).
WANG = SubmitComplaint(
    details=ComplaintDetails(
        channel=Channel.PHONE,
        description="收到的笔记本电脑屏幕有划痕，而且开机就蓝屏，我非常生气，要求退货退款。",
        requested_remedies=(Remedy.RETURN, Remedy.REFUND),
        product_ref="LAPTOP-X1",
        order_ref="ORD-20261122-001",
        amount=Decimal("6999.00"),
        emotion=Emotion.ANGRY,
    ),
    customer=Customer(
        name="王先生",
        phone="13800138000",
        email="wang.xiansheng@example.com",
        preferred_contact="phone",
    ),
)


def complaint_body(**overrides: Any) -> dict[str, Any]:
    """A valid complaint (the worked case: Mr. Wang's laptop) with overrides."""
    body: dict[str, Any] = {
        "channel": "phone",
        "customer": {
            "name": "王先生",
            "phone": "+86 138 0013 8000",
            "email": "wang.xiansheng@example.com",
            "tier": "regular",
            "preferred_contact": "phone",
        },
        "description": "收到的笔记本电脑屏幕有划痕，而且开机就蓝屏，我非常生气，要求退货退款。",
        "requested_remedies": ["return", "refund"],
        "product_ref": "LAPTOP-X1",
        "order_ref": "ORD-20261122-001",
        "amount": "6999.00",
        "emotion": "angry",
    }
    body.update(overrides)
    return body


@contextlib.asynccontextmanager
async def as_role(http: httpx.AsyncClient, role: str, department: str | None = None):
    """A client holding a freshly issued credential of a role."""
    issued = await http.post(
        "/v1/admin/credentials",
        json={
            "name": f"test-{role}",
            "role": role,
            "department": department,
        },
    )
    assert issued.status_code == 201, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['api_key']}"}
    async with httpx.AsyncClient(
        transport=http._transport, base_url="http://intake", headers=headers
    ) as client:
        yield client


def case_routed(complaint_id: uuid.UUID, department: str) -> case_events.CaseRouted:
    """Routing's event: the complaint's case went to a department (all intake reads of it)."""
    return contract_events.case_routed(complaint_id, datetime.now(UTC), department=department)


async def one_row(intake: Any, sql: str, **params: Any) -> Row[Any]:
    """The one row a read-only query on intake's tables gives (fails on none or several);
    ``intake`` is the integration tests' service."""
    async with intake.runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()
