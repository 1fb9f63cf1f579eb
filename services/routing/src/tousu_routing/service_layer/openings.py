"""What the cases a consumed batch opens share, read once for the whole batch.

The inbox consumer applies a partition's batch in one transaction. Before its first event,
``prepare_openings`` finds out which complaints already have a case and reads the received
facts the batch's classifications need, the rule set, and one roster for every department
those complaints are routed to (their assignment locks taken together, in code order, so
two batches never wait on each other in a cycle). ``open_case`` then routes each complaint
with what is held, counting each assignment into the held loads, instead of reading it all
again per complaint.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tousu_shared.contracts import Event
from tousu_shared.contracts.complaint import ComplaintClassified, ComplaintReceived

from tousu_routing.domain import RuleSet
from tousu_routing.service_layer.cases import case_profile, received_facts
from tousu_routing.service_layer.roster import Roster
from tousu_routing.service_layer.unit_of_work import RoutingWork


@dataclass(frozen=True)
class Openings:
    """The rule set in force and the roster a batch's case openings route with."""

    rule_set: RuleSet
    rule_versions: dict[str, int]
    roster: Roster


async def prepare_openings(uow: RoutingWork, events: Sequence[Event]) -> None:
    """Read what the batch's received and classified complaints need, in a few statements."""
    received: dict[uuid.UUID, ComplaintReceived] = {}
    for event in events:
        if isinstance(event, ComplaintReceived):
            received.setdefault(event.complaint_id, event)  # the first copy wins
    classified = [event for event in events if isinstance(event, ComplaintClassified)]
    await uow.cases.load_existence([*received, *(event.complaint_id for event in classified)])
    if not classified:
        return
    await uow.complaint_facts.load(event.complaint_id for event in classified)
    rule_set, rule_versions = await uow.rules.rule_set()
    profiles = []
    for event in classified:
        facts = await uow.complaint_facts.get(event.complaint_id)
        if facts is None and event.complaint_id in received:
            facts = received_facts(received[event.complaint_id])
        if facts is not None:
            profiles.append(case_profile(facts, event.classification))
    targets = [rule_set.route(profile.routing_facts()).department for profile in profiles]
    roster = await Roster.load(uow, targets, subjects=[profile.subject for profile in profiles])
    uow.openings = Openings(rule_set, rule_versions, roster)
