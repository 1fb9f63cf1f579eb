"""Root conftest: the shared fixtures for tests against the real Kafka and Postgres."""

pytest_plugins = ["tousu_shared.testing"]
