"""HTTP schemas of the analytics API (translated to commands; never passed further)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DenominatorPut(_Body):
    """Orders and customers of one month (optionally of one product line)."""

    orders: int | None = Field(default=None, ge=0)
    customers: int | None = Field(default=None, ge=0)
    product_line: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _something(self) -> DenominatorPut:
        if self.orders is None and self.customers is None:
            raise ValueError("give orders, customers or both")
        return self


class AlertLink(_Body):
    action_id: uuid.UUID


class AlertDismiss(_Body):
    reason: str = Field(min_length=3, max_length=2000)


class TargetIn(_Body):
    category: str | None = Field(default=None, min_length=1, max_length=100)
    product_line: str | None = Field(default=None, min_length=1, max_length=100)
    unit: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one(self) -> TargetIn:
        if not (self.category or self.product_line or self.unit):
            raise ValueError("name a category, product_line or unit")
        return self


class ActionCreate(_Body):
    title: str = Field(min_length=1, max_length=300)
    target: TargetIn
    plan: str = Field(min_length=1, max_length=10000)
    owner: str = Field(min_length=1, max_length=200)
    starts_on: date
    due_on: date | None = None
    target_rate: float | None = Field(default=None, ge=0)
    alert_id: uuid.UUID | None = None
    root_cause: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _dates(self) -> ActionCreate:
        if self.due_on is not None and self.due_on < self.starts_on:
            raise ValueError("due_on is before starts_on")
        return self


class ActionAdvance(_Body):
    to: Literal["plan", "do", "check", "act"]
    on: date | None = None
    note: str | None = Field(default=None, max_length=2000)
