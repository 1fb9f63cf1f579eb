"""The topic registry: every topic, who produces it and who consumes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class TopicLayout(BaseSettings):
    """How topics are laid out on the brokers (``TOUSU_TOPIC_*``): the defaults suit one
    broker; a cluster sets replication 3, min.insync.replicas 2 and more partitions.

    Every caller of ``tousu_shared.kafka.ensure_topics`` (create-topics, the services at
    start, routing's department topics) reads it, so a topic is created alike whoever
    creates it first. Existing topics are left as they are.
    """

    model_config = SettingsConfigDict(env_prefix="TOUSU_TOPIC_", extra="ignore")

    replication_factor: int = Field(default=1, ge=1)
    # None: the broker's own min.insync.replicas applies (no topic override).
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # Multiplies every partitioned topic's count. Single-partition topics stay single: they
    # are single on purpose (one order for all credentials, a compacted directory read whole).
    partition_multiplier: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> Self:
        # A topic needing more in-sync replicas than it has would refuse every acks=all write.
        if self.min_insync_replicas is not None and (
            self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"TOUSU_TOPIC_MIN_INSYNC_REPLICAS={self.min_insync_replicas} exceeds "
                f"TOUSU_TOPIC_REPLICATION_FACTOR={self.replication_factor}"
            )
        return self

    def partitions(self, registered: int) -> int:
        """The partition count to create for a topic registered with ``registered``."""
        return registered if registered == 1 else registered * self.partition_multiplier

    def configs(self, *, compacted: bool) -> dict[str, str]:
        """The topic-level configs to create a topic with."""
        configs = {"cleanup.policy": "compact"} if compacted else {}
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        return configs


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
