"""The services' ACLs follow the topic registry."""

from tousu_shared.acls import SERVICES, Grant, service_grants

NS = "ns."


def allowed(service: str, topic: str, operation: str) -> bool:
    return Grant(service, "topic", f"{NS}{topic}", operation) in service_grants(NS)


def test_only_the_owner_writes_a_topic():
    assert allowed("intake", "complaint.events", "WRITE")
    assert not any(allowed(s, "complaint.events", "WRITE") for s in SERVICES if s != "intake")
    assert allowed("feedback", "feedback.outbound", "WRITE")
    assert not any(allowed(s, "feedback.outbound", "READ") for s in SERVICES)


def test_every_service_writes_credentials_and_reads_them():
    for service in SERVICES:
        assert allowed(service, "platform.credentials", "WRITE")
        assert allowed(service, "platform.credentials", "READ")


def test_consumers_read_their_topics_and_write_only_those_dead_letters():
    assert allowed("routing", "complaint.events", "READ")
    assert allowed("routing", "complaint.events.dlq", "WRITE")
    assert not allowed("feedback", "complaint.events", "READ")
    assert not allowed("feedback", "complaint.events.dlq", "WRITE")


def test_department_topics_groups_and_metadata():
    grants = service_grants(NS)
    assert Grant("routing", "topic", f"{NS}case.routed.", "WRITE", prefixed=True) in grants
    assert not any(g.prefixed and g.operation == "WRITE" and g.service != "routing" for g in grants)
    assert Grant("sla-monitor", "group", "tousu-sla-monitor", "READ", prefixed=True) in grants
    assert Grant("intake", "topic", "*", "DESCRIBE") in service_grants("")


def test_only_routing_writes_the_department_directory_and_the_others_read_it():
    assert allowed("routing", "platform.departments", "WRITE")
    assert not any(allowed(s, "platform.departments", "WRITE") for s in SERVICES if s != "routing")
    for service in ("intake", "sla-monitor", "feedback", "analytics"):
        assert allowed(service, "platform.departments", "READ")
        assert allowed(service, "platform.departments.dlq", "WRITE")
    assert not allowed("routing", "platform.departments", "READ")
