"""Intake domain rules: normalising contacts, tracking codes, masking, late records."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

# Crockford base32 without I, L, O, U: easy to read out over the phone.
_TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PHONE_DIGITS = re.compile(r"[\s\-()]")
PHONE_PATTERN = re.compile(r"^\+?[0-9]{6,15}$")
EMAIL_PATTERN = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def normalise_phone(raw: str) -> str:
    """Digits with an optional leading +; Chinese mobiles lose a +86 prefix so both forms match."""
    phone = _PHONE_DIGITS.sub("", raw.strip())
    if phone.startswith("+86") and len(phone) == 14:
        phone = phone[3:]
    elif phone.startswith("0086") and len(phone) == 15:
        phone = phone[4:]
    if not PHONE_PATTERN.fullmatch(phone):
        raise ValueError("not a valid phone number")
    return phone


def normalise_email(raw: str) -> str:
    """Lower-cased address; raises on anything that is not an email address."""
    email = raw.strip().lower()
    if len(email) > 254 or not EMAIL_PATTERN.fullmatch(email):
        raise ValueError("not a valid email address")
    return email


def new_tracking_code() -> str:
    """A short customer-facing code such as ``TS-7K2M-9QXD``."""
    chars = "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(8))
    return f"TS-{chars[:4]}-{chars[4:]}"


def recorded_late(contact_at: datetime, received_at: datetime, *, allowed: timedelta) -> bool:
    """Whether the record missed the recording milestone counted from first contact."""
    return received_at - contact_at > allowed


def mask_name(name: str | None) -> str | None:
    """First character only: 王先生 → 王**."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """First three and last four digits: 138****5678."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_email(email: str | None) -> str | None:
    """First character of the local part: w***@example.com."""
    if not email or "@" not in email:
        return email
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_address(address: str | None) -> str | None:
    """Only the first few characters (city level)."""
    if not address:
        return address
    return address[:6] + "…"
