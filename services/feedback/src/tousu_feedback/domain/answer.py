"""The customer's answer to the survey and the outcome it leads to."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

# A rating at or below this needs reasons (domain.md §5: ask why when they are not happy).
REASONS_REQUIRED_AT_OR_BELOW = 3


class ReasonCode(StrEnum):
    """Why a customer is not satisfied (the list the page and callback agents offer)."""

    NOT_SOLVED = "not_solved"
    TOO_SLOW = "too_slow"
    REMEDY_INSUFFICIENT = "remedy_insufficient"
    STAFF_ATTITUDE = "staff_attitude"
    POOR_COMMUNICATION = "poor_communication"
    PROBLEM_RECURRED = "problem_recurred"
    OTHER = "other"


class Outcome(StrEnum):
    """What an answer means for the case."""

    CONFIRMED = "confirmed"  # routing closes the case
    DISSATISFIED = "dissatisfied"  # routing reopens it to the same department


class AnswerSource(StrEnum):
    """Where an answer came from, so reports can tell them apart."""

    LINK = "link"
    CALLBACK = "callback"


class InvalidAnswer(ValueError):
    """An answer that breaks a survey rule; ``field`` names the offending question."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Answer:
    """What the customer said: solved, satisfaction 1–5, reasons when ≤ 3, comment, and the
    explicit confirmation of the result (处理结果必须得到客户确认)."""

    solved: bool
    satisfaction: int
    confirmed: bool
    reason_codes: tuple[ReasonCode, ...] = ()
    reason_text: str | None = None
    comment: str | None = None
    # Something new, not this case: becomes a complaint of its own through intake.
    new_issue: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.satisfaction <= 5:
            raise InvalidAnswer("satisfaction is a rating from 1 to 5", "satisfaction")
        if self.satisfaction <= REASONS_REQUIRED_AT_OR_BELOW and not (
            self.reason_codes or (self.reason_text and self.reason_text.strip())
        ):
            raise InvalidAnswer(
                f"a rating of {REASONS_REQUIRED_AT_OR_BELOW} or below needs reasons",
                "reason_codes",
            )

    @property
    def outcome(self) -> Outcome:
        """Solved and confirmed closes the case; anything else reopens it."""
        if self.solved and self.confirmed:
            return Outcome.CONFIRMED
        return Outcome.DISSATISFIED

    @property
    def complaint_comment(self) -> str:
        """What routing passes to the department when it reopens the case."""
        parts = [
            "not solved" if not self.solved else "",
            "result not confirmed" if not self.confirmed else "",
            ", ".join(self.reason_codes),
            self.reason_text or "",
            self.comment or "",
        ]
        return "; ".join(part for part in parts if part) or "customer not satisfied"

    def as_record(self) -> dict[str, object]:
        """The answer as stored (JSON)."""
        return {
            "solved": self.solved,
            "satisfaction": self.satisfaction,
            "confirmed": self.confirmed,
            "reason_codes": list(self.reason_codes),
            "reason_text": self.reason_text,
            "comment": self.comment,
            "new_issue": self.new_issue,
        }

    @classmethod
    def from_record(cls, record: dict[str, object]) -> Answer:
        """An answer as stored."""
        codes = record.get("reason_codes") or []
        assert isinstance(codes, list)
        return cls(
            solved=bool(record["solved"]),
            satisfaction=int(str(record["satisfaction"])),
            confirmed=bool(record["confirmed"]),
            reason_codes=tuple(ReasonCode(code) for code in codes),
            reason_text=_text(record.get("reason_text")),
            comment=_text(record.get("comment")),
            new_issue=_text(record.get("new_issue")),
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class AnswerToken:
    """An answer link's token: 256 random bits, of which only the SHA-256 is ever stored."""

    secret: str = field(repr=False)

    @classmethod
    def new(cls) -> AnswerToken:
        return cls(secrets.token_urlsafe(32))

    @property
    def digest(self) -> str:
        return token_digest(self.secret)


def token_digest(secret: str) -> str:
    """The stored form of a token (a fast hash suffices: the token is 256 random bits)."""
    return hashlib.sha256(secret.encode()).hexdigest()
