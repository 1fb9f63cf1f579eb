"""Commands stay in step with the Case methods that carry them out."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from tousu_routing.domain import WORKFLOW_ACTIONS, Case, CaseAction
from tousu_routing.domain import commands as c

COMMAND_FOR = {
    CaseAction.ACKNOWLEDGE: c.AcknowledgeCase,
    CaseAction.RESPOND_TO_CUSTOMER: c.RespondToCustomer,
    CaseAction.START_INVESTIGATION: c.StartInvestigation,
    CaseAction.RECORD_ROOT_CAUSE: c.RecordRootCause,
    CaseAction.PROPOSE_SOLUTION: c.ProposeSolution,
    CaseAction.RESOLVE: c.ResolveCase,
    CaseAction.CLOSE: c.CloseCase,
    CaseAction.REOPEN: c.ReopenCase,
    CaseAction.TRANSFER: c.TransferCase,
    CaseAction.ESCALATE: c.EscalateCase,
    CaseAction.ADD_NOTE: c.AddNote,
    CaseAction.ASSIGN: c.AssignCase,
}


def test_every_workflow_action_has_a_command():
    assert set(COMMAND_FOR) == set(WORKFLOW_ACTIONS)


@pytest.mark.parametrize("action", list(COMMAND_FOR), ids=str)
def test_command_fields_are_the_case_method_parameters(action):
    command = COMMAND_FOR[action]
    fields = {f.name for f in dataclasses.fields(command)} - {"case_id", "expected_version"}
    parameters = set(inspect.signature(getattr(Case, str(action))).parameters) - {"self"}

    assert fields == parameters - {"now"}


def test_route_command_carries_what_case_open_from_plan_needs():
    fields = {f.name for f in dataclasses.fields(c.RouteCase)} - {"facts"}
    parameters = set(inspect.signature(Case.open_from_plan).parameters) - {"plan", "now"}

    assert fields == parameters
