"""Intake's HTTP API with feedback's own service credential (``pii:read``; intake audits
every read of contact details)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tousu_feedback.service_layer.ports import Contact, IntakeUnavailable


class HttpIntake:
    """Reads contact details and files complaints of channel ``survey``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        # Tests hand in an ASGI transport to the real intake app running in-process.
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._api_key is None:
            raise IntakeUnavailable("feedback has no intake credential (TOUSU_INTAKE_API_KEY)")
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._api_key}"},
            )
        return self._client

    async def contact(self, contact_details_url: str) -> Contact:
        body = await self._call("GET", contact_details_url)
        contact = body.get("contact") or {}
        if contact.get("masked", True):
            raise IntakeUnavailable(
                "intake masked the contact details: the credential lacks pii:read"
            )
        return Contact(
            channel=body["channel"],
            tracking_code=body["tracking_code"],
            customer_tier=body.get("customer_tier") or "regular",
            name=contact.get("name"),
            email=contact.get("email"),
            phone=contact.get("phone"),
            address=contact.get("address"),
            preferred_contact=contact.get("preferred_contact"),
        )

    async def file_complaint(
        self, *, idempotency_key: str, contact: Contact, description: str
    ) -> uuid.UUID:
        customer: dict[str, Any] = {
            key: value
            for key, value in {
                "name": contact.name,
                "phone": contact.phone,
                "email": contact.email,
                "address": contact.address,
                "preferred_contact": contact.preferred_contact,
                "tier": contact.customer_tier,
            }.items()
            if value is not None
        }
        body = await self._call(
            "POST",
            f"{self._base_url}/v1/complaints",
            json={"channel": "survey", "customer": customer, "description": description},
            headers={"Idempotency-Key": idempotency_key},
        )
        return uuid.UUID(body["id"])

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http().request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise IntakeUnavailable(f"intake did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            # The body may echo personal data back: keep only the status in the error.
            raise IntakeUnavailable(f"intake answered {method} with {response.status_code}")
        result = response.json()
        assert isinstance(result, dict)
        return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
