"""The one context intake's API and event handlers share, built in ``bootstrap.py``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tousu_shared.clock import Clock

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.domain.classification import Classifier, ClassifierRules, load_default_rules
from tousu_intake.service_layer.unit_of_work import IntakeWork
from tousu_intake.settings import IntakeSettings


class ClassifierCache:
    """The classifier of the newest rule set, rebuilt when an operator saves new rules.

    It checks the database at most every ``refresh_seconds``, in a unit of work of its own,
    so every intake process picks up new rules within seconds and without a deploy.
    """

    def __init__(
        self,
        uow: Callable[[], IntakeWork],
        refresh_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._checked_at = float("-inf")
        self._version = 0
        self._classifier = Classifier(load_default_rules())

    async def current(self) -> tuple[int, Classifier]:
        """The newest rule set's version and classifier (version 0: the shipped defaults)."""
        now = self._monotonic()
        if now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            async with self._uow() as uow:
                newest = await uow.rulesets.newest()
            if newest is not None and newest[0] != self._version:
                version, rules = newest
                self._classifier = Classifier(ClassifierRules.model_validate(rules))
                self._version = version
        return self._version, self._classifier

    def invalidate(self) -> None:
        """Check the database on the next call."""
        self._checked_at = float("-inf")


@dataclass(frozen=True)
class IntakeContext:
    """Everything intake's use cases need: units of work, the clock, the cipher, classifiers."""

    settings: IntakeSettings
    uow: Callable[[], IntakeWork]
    clock: Clock
    cipher: FieldCipher
    classifiers: ClassifierCache
