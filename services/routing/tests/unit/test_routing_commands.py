"""Commands stay in step with the Case methods that carry them out."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from tousu_routing.domain import WORKFLOW_ACTIONS, Case, Stamp
from tousu_routing.domain import commands as c
from tousu_routing.service_layer.cases import CASE_ACTIONS

# What a command carries for the method's Stamp (the service supplies ``now``).
STAMPED = {f.name for f in dataclasses.fields(Stamp)} - {"now"}


def test_every_workflow_action_has_exactly_one_command():
    actions = [action for action, _ in CASE_ACTIONS.values()]

    assert sorted(actions) == sorted(WORKFLOW_ACTIONS)


@pytest.mark.parametrize("command", list(CASE_ACTIONS), ids=lambda command: command.__name__)
def test_command_fields_are_the_case_method_parameters(command):
    action, method = CASE_ACTIONS[command]
    fields = {f.name for f in dataclasses.fields(command)} - {"case_id", "expected_version"}
    parameters = set(inspect.signature(method).parameters) - {"self", "stamp"}

    assert method.__name__ == str(action)
    assert fields == parameters | STAMPED


def test_route_command_carries_what_case_open_from_plan_needs():
    fields = {f.name for f in dataclasses.fields(c.RouteCase)} - {"facts"}
    parameters = set(inspect.signature(Case.open_from_plan).parameters) - {"plan", "stamp"}

    assert fields == parameters | STAMPED
