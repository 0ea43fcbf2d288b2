"""Each function's configuration, parsed once from its environment (set in template.yaml)."""

from __future__ import annotations

import os
from typing import Any

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field

# Short timeouts and the SDK's standard retry mode: a slow call is retried by the SDK, then by our
# own loop, then by the queue, rather than holding a batch until the function times out.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    tcp_keepalive=True,
    max_pool_connections=16,
)


class _Environment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_environ(cls) -> Any:
        return cls.model_validate(dict(os.environ))


class LedgerConfig(_Environment):
    ledger_table_name: str = Field(alias="LEDGER_TABLE_NAME", min_length=3)


class PostConfig(LedgerConfig):
    post_workers: int = Field(alias="POST_WORKERS", default=8, ge=1, le=32)


class EmitConfig(_Environment):
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    posting_queue_url: str = Field(alias="POSTING_QUEUE_URL", min_length=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    max_receive_count: int = Field(alias="MAX_RECEIVE_COUNT", ge=1)


class SweepConfig(LedgerConfig):
    posting_queue_url: str = Field(alias="POSTING_QUEUE_URL", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
