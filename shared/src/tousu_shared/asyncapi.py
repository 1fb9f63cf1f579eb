"""An AsyncAPI 3 document generated from the topic registry and the event contracts."""

from __future__ import annotations

from typing import Any

from tousu_shared.contracts import EVENT_TYPES, Envelope
from tousu_shared.topics import DEPARTMENT_TOPIC_PREFIX, TOPICS

# What the Kafka key (the event's subject) is, where it is not the complaint id.
_KEYS = {
    "platform.credentials": "the fixed credentials subject (all-zero UUID), one order for all",
    "platform.departments": "UUID5 of the department code (contracts.platform.department_subject)",
}


def asyncapi_document() -> dict[str, Any]:
    """The whole event interface of the system."""
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Envelope": Envelope.model_json_schema(by_alias=True)}
    by_topic: dict[str, list[str]] = {}
    for (event_type, version), cls in sorted(EVENT_TYPES.items()):
        name = f"{event_type}.v{version}"
        schemas[name] = cls.model_json_schema()
        messages[name] = {
            "name": event_type,
            "title": event_type,
            "summary": (cls.__doc__ or "").strip(),
            "contentType": "application/cloudevents+json",
            "headers": {"type": "object", "properties": {"content-type": {"type": "string"}}},
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "correlationId": {"location": "$message.payload#/correlationid"},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "format": "uuid",
                        "description": _KEYS.get(cls.topic, "complaint id"),
                    }
                }
            },
        }
        by_topic.setdefault(cls.topic, []).append(name)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPICS:
        channel_id = spec.name.replace(".", "_")
        channels[channel_id] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {
                m: {"$ref": f"#/components/messages/{m}"} for m in by_topic.get(spec.name, [])
            },
            "bindings": {"kafka": {"partitions": spec.partitions}},
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"produced by {spec.producer}",
        }
        for consumer in spec.consumers:
            operations[f"{consumer}_receives_{channel_id}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"consumed by {consumer}",
            }
    channels["case_routed_department"] = {
        "address": DEPARTMENT_TOPIC_PREFIX + "{department}",
        "description": "One department's routed cases and their updates.",
        "parameters": {"department": {"description": "department code"}},
        "messages": {
            m: {"$ref": f"#/components/messages/{m}"} for m in by_topic.get("case.events", [])
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Tousu complaint lifecycle events",
            "version": "1.0.0",
            "description": "Every event is a CloudEvents 1.0 JSON envelope keyed by complaint id.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
