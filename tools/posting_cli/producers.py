"""Whose dead letters `posting dlq redrive` may re-send: principal ids, not ARNs.

SQS records the sender of every message as a principal id (its SenderId), and so does the pipeline
when it dead-letters one: an IAM role's unique id and the session's name (`AROA...:session`), an IAM
user's id (`AIDA...`), or an account id for the account's root. A role's id belongs to that role
alone (a role deleted and created again under the same name gets a new id), so a principal id is
what a redrive can check, and an ARN must first be resolved to one with IAM (iam:GetRole,
iam:GetUser), in the account of the stack.

- Allowed producers: on a deployed stack, the principals of its ProducerPrincipalArns parameter and
  its expiry sweeper's role (the stack's SweepRole resource), plus each --allow-producer (an ARN in
  the stack's account, or a principal id as SQS records it, for a producer in another account). On
  the local stack, its one principal: every local client signs with the same local credentials, and
  moto records the same SenderId on every message.
- The pipeline: the Emit and workflow roles (EmitRole, StateMachineRole). Only a dead letter one of
  them sent is believed about who sent the failed request; any other message in the DLQ (moved there
  by the queue's redrive policy, or sent by hand) is the request as its own sender sent it.
- Redrivers: the principal running this redrive. A request it re-sends names the producer it vouched
  for (`original_producer_id`); when that request is dead-lettered again, the next redrive by the
  same role believes the attribution, and checks the producer it names.

A role named without a session matches every session of that role; a principal id with a session
(`AROA...:name`) matches that session only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from posting_cli.target import Target

# What a principal id may hold: IAM unique ids, account ids and role session names.
PRINCIPAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:-]{1,256}", re.ASCII)
ARN = re.compile(r"arn:(?P<partition>[a-z-]+):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)")
PRODUCERS_PARAMETER = "ProducerPrincipalArns"
SWEEPER_ROLE = "SweepRole"  # the stack's own producer: expiry requests
PIPELINE_ROLES = ("EmitRole", "StateMachineRole")  # they alone write dead letters with a reason


class NotResolved(Exception):
    """An ARN that names no single principal this redrive can look up."""


def same_principal(sender: str, named: str) -> bool:
    """Whether the principal id `sender` (as SQS records it) is the principal `named`: the same id, or
    a session of the role `named` names without a session."""
    return sender == named or (":" not in named and sender.partition(":")[0] == named)


@dataclass(frozen=True)
class Producers:
    """What a redrive vouches for: allowed producers, the pipeline's roles and the redrivers."""

    allowed: frozenset[str]
    pipeline: frozenset[str]
    redrivers: frozenset[str]
    # ARNs (or a stack resource) that could not become a principal id, each with the reason.
    unresolved: tuple[str, ...] = field(default=())

    def allows(self, principal: str) -> bool:
        return any(same_principal(principal, named) for named in self.allowed)

    def is_pipeline(self, principal: str | None) -> bool:
        return principal is not None and any(same_principal(principal, named) for named in self.pipeline)

    def redrove(self, principal: str) -> bool:
        return any(same_principal(principal, named) for named in self.redrivers)


def allowed_producers(target: Target, extra: Sequence[str] = ()) -> Producers:
    """The producers, pipeline and redrivers of `target`'s stack, with each --allow-producer."""
    if target.is_local:
        return _local_producers(extra)
    caller = target.client("sts").get_caller_identity()
    account, caller_id = str(caller["Account"]), str(caller["UserId"])
    iam, cloudformation = target.client("iam"), target.client("cloudformation")
    unresolved: list[str] = []

    def resolve(names: Iterable[str]) -> set[str]:
        ids = set()
        for name in names:
            try:
                ids.add(principal_id(name, iam, account))
            except NotResolved as why:
                unresolved.append(f"{name}: {why}")
        return ids

    def role_of(logical_id: str) -> str | None:
        try:
            detail = cloudformation.describe_stack_resource(StackName=target.stack_name, LogicalResourceId=logical_id)
            return _role_id(iam, detail["StackResourceDetail"]["PhysicalResourceId"])
        except (ClientError, BotoCoreError, KeyError, NotResolved) as error:
            unresolved.append(f"the stack's {logical_id}: {_why(error)}")
            return None

    declared = [arn.strip() for arn in target.parameters.get(PRODUCERS_PARAMETER, "").split(",") if arn.strip()]
    allowed = resolve(declared) | resolve(extra)
    sweeper = role_of(SWEEPER_ROLE)
    pipeline = {role for role in map(role_of, PIPELINE_ROLES) if role}
    return Producers(
        allowed=frozenset(allowed | ({sweeper} if sweeper else set())),
        pipeline=frozenset(pipeline),
        redrivers=frozenset({caller_id.partition(":")[0]}),
        unresolved=tuple(unresolved),
    )


def _local_producers(extra: Sequence[str]) -> Producers:
    from moto.sqs.models import DEFAULT_SENDER_ID  # the SenderId moto records on every message

    named, unresolved = set(), []
    for name in extra:
        if name.startswith("arn:"):
            unresolved.append(f"{name}: the local stack has no IAM; name a principal id")
        elif PRINCIPAL_ID.fullmatch(name):
            named.add(name)
        else:
            unresolved.append(f"{name}: not a principal id")
    local = frozenset({DEFAULT_SENDER_ID})
    return Producers(allowed=local | named, pipeline=local, redrivers=local, unresolved=tuple(unresolved))


def principal_id(name: str, iam: Any, account: str) -> str:
    """The principal id SQS records for `name`: a principal id as given, or the id of the role,
    user, role session or root an ARN in `account` names. Raises NotResolved."""
    if not name.startswith("arn:"):
        if not PRINCIPAL_ID.fullmatch(name):
            raise NotResolved("not a principal id or an IAM ARN")
        return name
    match = ARN.fullmatch(name)
    if match is None or "*" in name or "?" in name:
        raise NotResolved("not the ARN of one IAM principal (patterns name no single principal)")
    if match["account"] != account:
        raise NotResolved(f"in account {match['account']}, not {account}: name its principal id instead")
    kind, _, rest = match["resource"].partition("/")
    if match["service"] == "iam" and match["resource"] == "root":
        return account
    try:
        if match["service"] == "iam" and kind == "role":
            role = iam.get_role(RoleName=rest.rsplit("/", 1)[-1])["Role"]
            return _checked(role["Arn"], name, role["RoleId"])
        if match["service"] == "iam" and kind == "user":
            user = iam.get_user(UserName=rest.rsplit("/", 1)[-1])["User"]
            return _checked(user["Arn"], name, user["UserId"])
        if match["service"] == "sts" and kind == "assumed-role" and rest.count("/") == 1:
            role_name, session = rest.split("/")
            return f"{_role_id(iam, role_name)}:{session}"
    except (ClientError, BotoCoreError) as error:
        raise NotResolved(_why(error)) from error
    raise NotResolved("not an IAM role, user, role session or root")


def _role_id(iam: Any, role_name: str) -> str:
    try:
        return str(iam.get_role(RoleName=role_name)["Role"]["RoleId"])
    except (ClientError, BotoCoreError) as error:
        raise NotResolved(_why(error)) from error


def _checked(found_arn: str, asked_arn: str, principal: str) -> str:
    # GetRole and GetUser look a name up without its path: the ARN must be the one asked for.
    if found_arn != asked_arn:
        raise NotResolved(f"the principal of that name is {found_arn}")
    return principal


def _why(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "refused")
    return str(error) if isinstance(error, NotResolved) else type(error).__name__
