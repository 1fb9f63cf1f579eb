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


# Masks. Customer.masked() is the one place that applies them; nothing else masks contacts.
# They reveal a fixed, small part whatever the input, so that many masks of similar numbers
# (an attacker posting guesses) never add up to the whole: a phone shows at most its last 4
# digits, an email never its local part, and neither shows its length.
PHONE_SHOWN_DIGITS = 4
_PHONE_HIDDEN = "*" * 7
_NAME_HIDDEN = "**"


def mask_name(name: str | None) -> str | None:
    """First character only: 王先生 → 王**."""
    if not name:
        return name
    return name[0] + _NAME_HIDDEN


def mask_phone(phone: str | None) -> str | None:
    """The last four digits at most, and never more than half of them: 138… → *******8000."""
    if not phone:
        return phone
    digits = phone.lstrip("+")
    shown = min(PHONE_SHOWN_DIGITS, len(digits) // 2)
    return _PHONE_HIDDEN + digits[len(digits) - shown :]


def mask_email(email: str | None) -> str | None:
    """The domain only, never any of the local part: ***@example.com."""
    if not email:
        return email
    return "***@" + email.rsplit("@", 1)[-1] if "@" in email else "***"


def mask_address(address: str | None) -> str | None:
    """Only the first few characters (city level)."""
    if not address:
        return address
    return address[:6] + "…"


def retention_cutoff(now: datetime, years: int) -> datetime:
    """The same calendar day ``years`` before ``now`` (29 February: the 28th): complaints
    received before it are past the retention period."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)
