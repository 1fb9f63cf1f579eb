"""The domain's vocabularies, defined once: every service and every contract imports them here.

They are ``StrEnum`` so that a value compares equal to its string, validates from JSON and
dumps as the plain string in events.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Intake channel (渠道)."""

    PHONE = "phone"
    EMAIL = "email"
    WEB_FORM = "web_form"
    ONLINE_CHAT = "online_chat"
    SOCIAL_MEDIA = "social_media"
    LETTER = "letter"
    ON_SITE = "on_site"
    SURVEY = "survey"
    APP = "app"


class Category(StrEnum):
    """What the complaint is about (按内容)."""

    PRODUCT_QUALITY = "product_quality"
    SERVICE_ATTITUDE = "service_attitude"
    PRICE_DISPUTE = "price_dispute"
    DELIVERY_DELAY = "delivery_delay"
    AFTER_SALES = "after_sales"
    HANDLING_TIMELINESS = "handling_timeliness"
    INFORMATION_ACCURACY = "information_accuracy"
    POLICY_EXECUTION = "policy_execution"
    OTHER = "other"


class Severity(StrEnum):
    """How grave the complaint is (严重程度); decides the handler level."""

    MINOR = "minor"
    GENERAL = "general"
    SERIOUS = "serious"
    MAJOR = "major"


class Urgency(StrEnum):
    """How fast it must be handled (紧急程度); decides the SLA targets."""

    DEFERRED = "deferred"
    ROUTINE = "routine"
    PRIORITY = "priority"
    IMMEDIATE = "immediate"


class RiskFlag(StrEnum):
    """Risks that force immediate handling."""

    SAFETY = "safety"
    FRAUD = "fraud"
    DATA_LEAK = "data_leak"
    LEGAL = "legal"
    MEDIA = "media"


class Emotion(StrEnum):
    """Customer emotion (愤怒, 失望, 焦虑, 平静)."""

    ANGRY = "angry"
    DISAPPOINTED = "disappointed"
    ANXIOUS = "anxious"
    CALM = "calm"


class CustomerTier(StrEnum):
    """Customer tier; VIP raises urgency."""

    VIP = "vip"
    REGULAR = "regular"


class Remedy(StrEnum):
    """What the customer asks for."""

    REFUND = "refund"
    RETURN = "return"
    REPAIR = "repair"
    COMPENSATION = "compensation"
    APOLOGY = "apology"
    EXPLANATION = "explanation"


# Ordered scales: the index is the step used by "raise one step" rules.
SEVERITY_SCALE: tuple[Severity, ...] = tuple(Severity)
URGENCY_SCALE: tuple[Urgency, ...] = tuple(Urgency)


class HandlerLevel(StrEnum):
    """A rung of the management chain, from agent up to executive (domain.md §3, §4).

    The one ladder of the system: routing assigns by it and the SLA monitor escalates along
    it. Levels compare by rank, not alphabetically.
    """

    AGENT = "agent"
    DEPARTMENT_MANAGER = "department_manager"
    DIRECTOR = "director"
    EXECUTIVE = "executive"

    @property
    def rank(self) -> int:
        """Position in the chain: agent is 0, executive is 3."""
        return _LEVELS.index(self)

    @property
    def is_top(self) -> bool:
        """True for the highest level, which escalation cannot go beyond."""
        return self is _LEVELS[-1]

    def one_up(self) -> HandlerLevel:
        """The next level up the chain; the top level stays where it is."""
        return _LEVELS[min(self.rank + 1, len(_LEVELS) - 1)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank < other.rank

    # str's own comparisons would otherwise order levels alphabetically.
    def __le__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, HandlerLevel):
            return NotImplemented
        return self.rank >= other.rank


_LEVELS: tuple[HandlerLevel, ...] = tuple(HandlerLevel)
