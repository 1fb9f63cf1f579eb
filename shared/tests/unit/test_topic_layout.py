"""TOUSU_TOPIC_* reach the topic creation requests; without them, one broker's layout."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tousu_shared.kafka import new_topics
from tousu_shared.topics import TopicLayout, all_topic_names, compacted_topic_names

LAYOUT_VARIABLES = (
    "TOUSU_TOPIC_REPLICATION_FACTOR",
    "TOUSU_TOPIC_MIN_INSYNC_REPLICAS",
    "TOUSU_TOPIC_PARTITION_MULTIPLIER",
)


@pytest.fixture(autouse=True)
def _no_layout_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LAYOUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _registry_requests():
    requests = new_topics(all_topic_names(), compacted=compacted_topic_names())
    return {request.name: request for request in requests}


def test_one_box_defaults_keep_the_registered_layout() -> None:
    requests = _registry_requests()

    assert {name: r.num_partitions for name, r in requests.items()} == dict(all_topic_names())
    assert {r.replication_factor for r in requests.values()} == {1}
    assert requests["platform.departments"].topic_configs == {"cleanup.policy": "compact"}
    assert requests["complaint.events"].topic_configs == {}


def test_cluster_layout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUSU_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("TOUSU_TOPIC_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("TOUSU_TOPIC_PARTITION_MULTIPLIER", "4")

    requests = _registry_requests()

    assert {r.replication_factor for r in requests.values()} == {3}
    assert {r.topic_configs["min.insync.replicas"] for r in requests.values()} == {"2"}
    assert requests["complaint.events"].num_partitions == 12
    assert requests["complaint.events.dlq"].num_partitions == 12
    # Single on purpose: one order for every credential, a directory read whole.
    assert requests["platform.credentials"].num_partitions == 1
    assert requests["platform.departments"].num_partitions == 1
    assert requests["platform.departments"].topic_configs == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2",
    }


def test_an_explicit_layout_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUSU_TOPIC_REPLICATION_FACTOR", "3")

    [request] = new_topics([("case.routed.X", 3)], layout=TopicLayout(replication_factor=2))

    assert (request.replication_factor, request.num_partitions) == (2, 3)


def test_more_in_sync_replicas_than_replicas_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUSU_TOPIC_MIN_INSYNC_REPLICAS", "2")

    with pytest.raises(ValidationError, match="TOUSU_TOPIC_MIN_INSYNC_REPLICAS=2 exceeds"):
        new_topics([("complaint.events", 3)])
