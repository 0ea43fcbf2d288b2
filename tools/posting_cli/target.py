"""Where a pipeline lives: the names from its stack outputs, and boto3 clients that reach it.

The same operator commands work against a deployed stack (outputs read from CloudFormation) and
against the local stack (outputs resolved from template.yaml, endpoints on loopback).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from posting.adapters.fifo import is_fifo

if TYPE_CHECKING:
    from posting.adapters.ledger_table import LedgerTable

LOCAL_STATE_FILE = Path(".posting-local/stack.json")

# The template's Outputs this tooling needs, by output key.
REQUIRED_OUTPUTS = (
    "PostingQueueUrl",
    "DeadLetterQueueUrl",
    "LedgerTableName",
    "EventBusName",
    "ResultsLogGroupName",
    "StateMachineArn",
)


class TargetError(Exception):
    pass


@dataclass
class Target:
    outputs: dict[str, str]
    region: str
    endpoints: dict[str, str] = field(default_factory=dict)  # service -> URL, local stacks only
    # A deployed stack's name and parameter values (what it was deployed with); none locally.
    stack_name: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [key for key in REQUIRED_OUTPUTS if key not in self.outputs]
        if missing:
            raise TargetError(f"stack outputs lack {', '.join(missing)}: is this the posting pipeline's stack?")

    @property
    def queue_url(self) -> str:
        return self.outputs["PostingQueueUrl"]

    @property
    def is_fifo(self) -> bool:
        """Whether the posting queue is a FIFO queue (PostingQueueType=fifo): its name ends in .fifo."""
        return is_fifo(self.queue_url)

    @property
    def dead_letter_queue_url(self) -> str:
        return self.outputs["DeadLetterQueueUrl"]

    @property
    def ledger_table_name(self) -> str:
        return self.outputs["LedgerTableName"]

    @property
    def event_bus_name(self) -> str:
        return self.outputs["EventBusName"]

    @property
    def results_log_group(self) -> str:
        return self.outputs["ResultsLogGroupName"]

    @property
    def is_local(self) -> bool:
        return bool(self.endpoints)

    def ledger(self) -> LedgerTable:
        """The ledger table of this pipeline, through this target's DynamoDB client (its `books` reads)."""
        from posting.adapters.ledger_table import LedgerTable

        return LedgerTable(self.client("dynamodb"), self.ledger_table_name)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                kwargs: dict[str, Any] = {"region_name": self.region}
                if self.endpoints:
                    kwargs["endpoint_url"] = self.endpoints.get(service, self.endpoints["default"])
                    kwargs["aws_access_key_id"] = "local"
                    kwargs["aws_secret_access_key"] = "local"  # noqa: S105 - engines on loopback accept anything
                config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
                self._clients[service] = boto3.client(service, config=config, **kwargs)
            return self._clients[service]

    @classmethod
    def from_stack(cls, stack_name: str, region: str | None = None) -> Target:
        """A deployed stack, found by name with the caller's AWS credentials."""
        session = boto3.session.Session(region_name=region)
        if not session.region_name:
            raise TargetError("no AWS region: pass --region or set AWS_REGION")
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}
        return cls(outputs=outputs, region=session.region_name, stack_name=stack_name, parameters=parameters)

    @classmethod
    def from_file(cls, path: Path = LOCAL_STATE_FILE) -> Target:
        """The local stack started by `posting local up` (it writes this file while it runs)."""
        if not path.exists():
            raise TargetError(
                f"no local stack: {path} does not exist. Start one with `posting local up` in another "
                "terminal, or pass --stack NAME for a deployed stack"
            )
        state = json.loads(path.read_text())
        return cls(outputs=state["outputs"], region=state["region"], endpoints=state["endpoints"])

    def to_file(self, path: Path = LOCAL_STATE_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"outputs": self.outputs, "region": self.region, "endpoints": self.endpoints}
        path.write_text(json.dumps(state, indent=2))
