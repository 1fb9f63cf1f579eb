"""Automatic complaint classification (domain.md §2): category, severity, urgency, risks."""

from .classifier import Classifier, without_customer_history
from .model import (
    Category,
    Channel,
    Classification,
    ComplaintFacts,
    CustomerTier,
    Emotion,
    Remedy,
    RiskFlag,
    Severity,
    Urgency,
)
from .rules import ClassifierRules, load_default_rules

__all__ = [
    "Category",
    "Channel",
    "Classification",
    "Classifier",
    "ClassifierRules",
    "ComplaintFacts",
    "CustomerTier",
    "Emotion",
    "Remedy",
    "RiskFlag",
    "Severity",
    "Urgency",
    "without_customer_history",
    "load_default_rules",
]
