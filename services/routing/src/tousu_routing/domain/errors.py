"""Errors the routing domain raises; each message tells the caller what to do differently."""

from __future__ import annotations

from collections.abc import Iterable


class RoutingDomainError(Exception):
    """Base class of every error the routing domain raises on purpose."""


class InvalidCommand(RoutingDomainError, ValueError):
    """An action was given missing or malformed arguments."""


class InvalidRule(RoutingDomainError, ValueError):
    """A routing rule or rule set breaks a validation rule."""


class InvalidDepartment(RoutingDomainError, ValueError):
    """A department definition is malformed."""


class UnknownDepartment(RoutingDomainError, LookupError):
    """A rule or command names a department that does not exist."""

    def __init__(self, code: str) -> None:
        super().__init__(f"unknown department {code!r}")
        self.code = code


class IllegalTransition(RoutingDomainError):
    """The action is not allowed in the case's current state."""

    def __init__(self, action: str, state: str, allowed_actions: Iterable[str]) -> None:
        self.action = str(action)
        self.state = str(state)
        self.allowed_actions = tuple(str(a) for a in allowed_actions)
        allowed = ", ".join(self.allowed_actions) or "none"
        super().__init__(
            f"cannot {self.action} a case in state {self.state!r}; allowed actions: {allowed}"
        )


class InvalidOccurredAt(RoutingDomainError, ValueError):
    """The time an action claims to have happened is impossible."""


class VersionConflict(RoutingDomainError):
    """Someone else changed the case since the caller read it."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"case is at version {actual}, not {expected}: reload it and try again")


class MissingResolutionDetails(RoutingDomainError, ValueError):
    """A case cannot be resolved before its root cause and responsible person are known."""


class ConflictOfInterest(RoutingDomainError, ValueError):
    """The case would be handled by the person the complaint is about."""
