"""Routing domain: pure rules for where a complaint goes, who handles it, and the case workflow.

One module per concern: ``vocabulary`` (routing's own terms beside the shared ones),
``departments``, ``rules`` (routing rules as data), ``levels`` (handler level by severity and
conflict of interest), ``assignment`` (who takes the case, the routing plan), ``workflow``
(the transition table), ``bookkeeping`` and ``case`` (the aggregate), ``record`` (the case as
stored) and ``messages`` (its events as contracts on their topics).
"""

from tousu_routing.domain.assignment import (
    AssignmentDecision,
    RoutingPlan,
    choose_assignee,
    plan_routing,
)
from tousu_routing.domain.case import Case
from tousu_routing.domain.departments import Department, Member
from tousu_routing.domain.errors import (
    ConflictOfInterest,
    IllegalTransition,
    InvalidCommand,
    InvalidDepartment,
    InvalidOccurredAt,
    InvalidRule,
    MissingResolutionDetails,
    RoutingDomainError,
    UnknownDepartment,
    VersionConflict,
)
from tousu_routing.domain.levels import (
    ConflictCheck,
    HandlerLevelDecision,
    check_conflict_of_interest,
    handler_level_for,
)
from tousu_routing.domain.rules import (
    ComplaintSubject,
    RoutingDecision,
    RoutingFacts,
    RoutingRule,
    RuleCriteria,
    RuleEvaluation,
    RuleSet,
)
from tousu_routing.domain.vocabulary import (
    Availability,
    CaseAction,
    CaseState,
    ClosureReason,
    EscalationReason,
    HandlerLevel,
    Severity,
)
from tousu_routing.domain.workflow import (
    TRANSITIONS,
    WORKFLOW_ACTIONS,
    Stamp,
    Transition,
    allowed_actions,
)

__all__ = [
    "TRANSITIONS",
    "WORKFLOW_ACTIONS",
    "AssignmentDecision",
    "Availability",
    "Case",
    "CaseAction",
    "CaseState",
    "ClosureReason",
    "ComplaintSubject",
    "ConflictCheck",
    "ConflictOfInterest",
    "Department",
    "EscalationReason",
    "HandlerLevel",
    "HandlerLevelDecision",
    "IllegalTransition",
    "InvalidCommand",
    "InvalidDepartment",
    "InvalidOccurredAt",
    "InvalidRule",
    "Member",
    "MissingResolutionDetails",
    "RoutingDecision",
    "RoutingDomainError",
    "RoutingFacts",
    "RoutingPlan",
    "RoutingRule",
    "RuleCriteria",
    "RuleEvaluation",
    "RuleSet",
    "Severity",
    "Stamp",
    "Transition",
    "UnknownDepartment",
    "VersionConflict",
    "allowed_actions",
    "check_conflict_of_interest",
    "choose_assignee",
    "handler_level_for",
    "plan_routing",
]
