"""Automatic complaint classification (domain.md §2): category, severity, urgency, risks."""

from . import model
from .classifier import Classifier, without_customer_history
from .model import *  # noqa: F403  (the value types, as listed once in model.__all__)
from .rules import ClassifierRules, load_default_rules

__all__ = ["Classifier", "ClassifierRules", "without_customer_history", "load_default_rules"]
__all__ += model.__all__
