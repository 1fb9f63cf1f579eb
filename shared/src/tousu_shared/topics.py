"""The topic registry: every topic, who produces it and who consumes it."""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"
DEPARTMENT_TOPIC_PREFIX = "case.routed."


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic and its place in the system."""

    name: str
    producer: str
    consumers: tuple[str, ...]
    description: str
    partitions: int = 3
    # A compacted topic keeps the latest event of each key: a state stream a new consumer
    # reads whole from the start (its dead-letter topic stays an ordinary one).
    compacted: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "complaint.events",
        "intake",
        ("routing", "sla-monitor", "analytics"),
        "Complaints received, classified, reclassified, messages added, anonymised.",
    ),
    TopicSpec(
        "case.events",
        "routing",
        ("intake", "sla-monitor", "feedback", "analytics"),
        "Every case transition: routed, acknowledged, … resolved, closed, reopened.",
    ),
    TopicSpec(
        "sla.events",
        "sla-monitor",
        ("intake", "routing", "analytics"),
        "Milestones started, at risk, breached, met, escalated; calendar alerts.",
    ),
    TopicSpec(
        "feedback.events",
        "feedback",
        ("routing", "sla-monitor", "analytics"),
        "Surveys scheduled, answered, expired; customers confirmed or dissatisfied.",
    ),
    TopicSpec(
        "feedback.outbound",
        "feedback",
        ("sms-gateway", "wechat-gateway"),
        "Messages for the SMS/WeChat gateways: recipient and text with the answer link. A "
        "delivery channel, not an event stream: it holds personal data, so only the gateways "
        "read it.",
    ),
    TopicSpec(
        "analytics.events",
        "analytics",
        (),
        "Systemic issues detected.",
    ),
    TopicSpec(
        "platform.credentials",
        "any",
        ("intake", "routing", "sla-monitor", "feedback", "analytics"),
        "Credentials issued and revoked, replicated into every service.",
        partitions=1,
    ),
    TopicSpec(
        "platform.departments",
        "routing",
        ("intake", "sla-monitor", "feedback", "analytics"),
        "Routing's department directory, keyed by department code: declared (created, "
        "renamed, announced at start) and retired; every other service keeps a replica to "
        "check the department of the credentials it issues.",
        partitions=1,
        compacted=True,
    ),
)

TOPICS_BY_NAME = {spec.name: spec for spec in TOPICS}


def department_topic(department_code: str) -> str:
    """The routed-case topic of one department."""
    return f"{DEPARTMENT_TOPIC_PREFIX}{department_code}"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}{DLQ_SUFFIX}"


def consumed_by(service: str) -> list[str]:
    """The logical topics a service consumes."""
    return [spec.name for spec in TOPICS if service in spec.consumers]


def compacted_topic_names() -> list[str]:
    """The registered topics that are compacted (created with ``cleanup.policy=compact``)."""
    return [spec.name for spec in TOPICS if spec.compacted]


def all_topic_names() -> list[tuple[str, int]]:
    """Every topic the project creates up front, with its dead-letter topic."""
    names: list[tuple[str, int]] = []
    for spec in TOPICS:
        names.append((spec.name, spec.partitions))
        names.append((dlq_topic(spec.name), spec.partitions))
    return names
