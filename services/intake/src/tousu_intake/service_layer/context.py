"""The one context intake's API and event handlers share, built in ``bootstrap.py``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tousu_shared.clock import Clock

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.domain.classification import Classifier, ClassifierRules, load_default_rules
from tousu_intake.domain.classification.textmodel import load_shipped_model
from tousu_intake.service_layer.unit_of_work import IntakeWork
from tousu_intake.settings import IntakeSettings


class ClassifierCache:
    """The classifier of the newest rule set and the newest promoted model, rebuilt when an
    operator saves new rules or a retrained model is promoted.

    It checks the database at most every ``refresh_seconds``, in a unit of work of its own,
    so every intake process picks up new rules and models within seconds, without a deploy.
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
        self._rules = load_default_rules()
        self._model_version: str | None = None  # None: the shipped artefact
        self._classifier = Classifier(self._rules)
        self._model = self._classifier.model

    async def current(self) -> tuple[int, Classifier]:
        """The newest rule set's version and classifier (version 0: the shipped defaults)."""
        now = self._monotonic()
        if now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            async with self._uow() as uow:
                newest = await uow.rulesets.newest()
                model_version = await uow.models.promoted_version()
                model = (
                    await uow.models.promoted_model()
                    if model_version != self._model_version
                    else None
                )
            rules_changed = newest is not None and newest[0] != self._version
            if newest is not None and rules_changed:
                self._version, self._rules = newest[0], ClassifierRules.model_validate(newest[1])
            if model_version != self._model_version:
                self._model = model if model is not None else load_shipped_model()
                self._model_version = model_version
                rules_changed = True
            if rules_changed:
                self._classifier = Classifier(self._rules, model=self._model)
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
