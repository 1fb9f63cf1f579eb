"""Service configuration from the environment (prefix ``TOUSU_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """A service cannot start with its configuration; the message names the setting."""


class ServiceSettings(BaseSettings):
    """Settings every service shares; each service subclasses it with its own defaults."""

    model_config = SettingsConfigDict(env_prefix="TOUSU_", extra="ignore")

    service_name: str
    # Development mode relaxes what a service insists on (e.g. intake then generates local
    # keys instead of refusing to start without them); off unless set explicitly.
    environment: Literal["production", "development"] = "production"
    # Not configurable: the schema is the service's own (its ORM tables, its role, its
    # migrations all name it), so each service's settings class fixes it.
    db_schema: ClassVar[str]
    http_port: int
    http_host: str = "127.0.0.1"
    # Lets several API processes share one port (SO_REUSEPORT), the kernel spreading connections.
    http_reuse_port: bool = False
    # No request body may be larger, counted while it streams in (endpoints may allow less).
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Failed authentications one client may make per window before it gets 429s.
    auth_failures_allowed: int = Field(default=10, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    # Live streams (SSE) one credential may hold open in one process; the next is a 429.
    stream_max_per_credential: int = Field(default=5, ge=1)
    # /docs, /redoc and /openapi.json: a map of every endpoint for whoever asks, so served
    # only in development unless set explicitly (`make run`, a local stack, turns them on).
    api_docs: bool | None = None

    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_database: str = "tousu"
    # Each service logs in as the role named after its schema; the dev password is the role name.
    db_password: SecretStr | None = None
    database_url: str | None = None
    db_pool_size: int = 10
    # A ping per connection checkout costs a round trip on every request; off by default, a
    # dropped connection is then noticed by its first query and the pool is invalidated.
    db_pool_pre_ping: bool = False

    kafka_bootstrap: str = "127.0.0.1:9092"
    # The service's own SASL (SCRAM-SHA-512) user on the broker; the broker's ACLs let it
    # write only its own topics (tousu_shared.acls). Without a user the client speaks PLAINTEXT.
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    # Prefixed to every topic name: tests run on their own topics this way.
    topic_namespace: str = ""
    consumer_group_suffix: str = ""

    relay_batch_size: int = Field(default=500, ge=1)
    # Relays sleep until a commit's NOTIFY wakes them; they look anyway after the fallback
    # interval (a writer that does not notify, a NOTIFY that failed), and poll at the idle
    # interval only while they cannot listen (database restarting). What was committed
    # while the LISTEN connection was down is read as soon as it is open again, and a lane
    # held back is retried when its backoff ends, so neither waits for the fallback; at
    # 2 s it was a transaction every 2 s per idle service (issue #12).
    relay_fallback_poll_ms: int = Field(default=30000, ge=1)
    relay_idle_poll_ms: int = Field(default=20, ge=1)
    # Commits within this window share one NOTIFY, sent after they committed.
    relay_notify_window_ms: int = Field(default=2, ge=0)
    relay_lanes_per_claim: int = Field(default=8, ge=1)
    outbox_retention_hours: int = Field(default=24, ge=1)

    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_ms: int = Field(default=200, ge=0)
    consumer_batch_size: int = Field(default=200, ge=1)
    # Events of one partition applied in one transaction (inbox rows written in bulk); 1
    # applies each in its own. A batch that fails is applied again one event at a time, so
    # retries and dead letters stay per event. Safe because every handler only
    # changes its own schema (feedback's messages go out from its scheduler, not from a
    # handler); a handler with a side effect outside the transaction would need 1, since a
    # batch that falls back would repeat it.
    consumer_transaction_batch: int = Field(default=100, ge=1, le=1000)
    # How long the broker holds a fetch that finds nothing new: new records end it at once
    # (a partition busy with a batch stays in the fetches), so this only sets how often an
    # idle consumer asks, and how long a newly assigned partition may wait for its first
    # fetch after a rebalance.
    consumer_fetch_wait_ms: int = Field(default=5000, ge=1, le=30000)
    # Applied offsets are committed together at most this often (the inbox makes a re-read
    # after a crash or rebalance harmless, so later commits only mean a longer re-read).
    consumer_commit_interval_ms: int = Field(default=1000, ge=0, le=60000)

    bootstrap_admin_key: SecretStr | None = None
    # Signs the credential events this service issues and verifies those it consumes
    # (tousu_shared.signing); without it the service can neither issue nor accept any.
    credential_signing_key: SecretStr | None = None
    credential_cache_seconds: float = 5.0
    log_level: str = "INFO"
    # The fault drills (drills/, issue #14) arm a fault point by creating a file in this
    # directory (tousu_shared.faults); unset outside a drill, and then no point ever fires.
    fault_dir: Path | None = None

    @property
    def serves_api_docs(self) -> bool:
        """Whether the API documents are served: as set, else only in development."""
        if self.api_docs is not None:
            return self.api_docs
        return self.environment == "development"

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL for this service's own role."""
        if self.database_url:
            return self.database_url
        password = self.db_password.get_secret_value() if self.db_password else self.db_schema
        return (
            f"postgresql+asyncpg://{self.db_schema}:{password}"
            f"@{self.pg_host}:{self.pg_port}/{self.pg_database}"
        )

    @property
    def consumer_group(self) -> str:
        """The Kafka consumer group of this service."""
        return f"tousu-{self.service_name}{self.consumer_group_suffix}"

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one."""
        return f"{self.topic_namespace}{name}"
