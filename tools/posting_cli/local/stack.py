"""The whole pipeline on one machine: template.yaml deployed onto embedded local engines.

- DynamoDB: Amazon's DynamoDB Local (a Java child process), or $DYNAMODB_ENDPOINT if set, behind
  a proxy that applies AWS's transaction conflict rules (strict_dynamodb.py);
- SQS, EventBridge, CloudWatch Logs, Step Functions: moto in server mode in this process, with
  Step Functions running the real ASL from statemachine/;
- Lambda: the real handlers, in this process, with the template's environment (lambdas.py);
- the EventBridge Pipe: a local poller that keeps the Pipes contract (pipe.py).

Every resource is created from template.yaml: names, keys, redrive settings, batch sizes, environment
variables and definition substitutions are resolved from it, never repeated here. Resources with no
local meaning (IAM roles, KMS keys, resource policies, trails, and the nested applications: the schema
registry, the alarms and the dashboard) are listed in `skipped`, as are resources whose Condition is false.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import boto3
from botocore.config import Config

from posting_cli.local.dynamodb_local import DynamoDBEndpoint, attach_or_start
from posting_cli.local.faults import FaultInjector
from posting_cli.local.lambdas import LocalFunction, LocalLambdaRuntime
from posting_cli.local.moto_server import MotoServer
from posting_cli.local.pipe import LocalPipe, PipeSettings
from posting_cli.local.schedule import LocalSchedule, scheduled
from posting_cli.local.tables import ensure_table
from posting_cli.local.template import ACCOUNT_ID, REGION, Resolver, Template, TemplateError
from posting_cli.target import Target

log = logging.getLogger(__name__)

LOCAL_STATE_DIR = Path(".posting-local")
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # loopback engines only


class LocalStack:
    """Start with `start()` (or `with LocalStack(...) as stack:`); `stack.target` then reaches it."""

    def __init__(
        self,
        template: Template | None = None,
        *,
        pollers: int = 2,
        state_dir: Path = LOCAL_STATE_DIR,
        capture_lambda_output: bool = True,
        retry_sleep: Callable[[float], None] | None = None,
        extra_environment: dict[str, str] | None = None,
        dynamodb: DynamoDBEndpoint | None = None,
        fresh_books: bool = False,
        faults: FaultInjector | None = None,
        schedule_seconds: float = 3.0,
    ) -> None:
        self.template = template or Template.load()
        # An existing ledger table is reused, as a retained table is on AWS; only this empties it.
        self.fresh_books = fresh_books
        self.faults = faults  # fault injection at the dispatch, the handlers' clients and the pipe
        self.pollers = pollers
        self.state_dir = state_dir
        self.capture_lambda_output = capture_lambda_output
        self.retry_sleep = retry_sleep
        self.extra_environment = extra_environment or {}
        self.resolver = Resolver(self.template)
        self.skipped: list[str] = []
        self.functions: list[LocalFunction] = []
        self.runtime: LocalLambdaRuntime | None = None
        self.dynamodb: DynamoDBEndpoint | None = dynamodb
        self._owns_dynamodb = dynamodb is None
        self.moto: MotoServer | None = None
        self.pipes: list[LocalPipe] = []
        # Scheduled functions (the expiry sweeper) run every few seconds here, not every minute.
        self.schedule = LocalSchedule(self._invoke, [], schedule_seconds)
        self.target: Target | None = None
        self._queue_urls: dict[str, str] = {}  # queue ARN -> URL
        self._stdout: TextIO | None = None
        self._lambda_log: TextIO | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if self.dynamodb is None:
            self.dynamodb = attach_or_start(log_dir=logs)
        self.runtime = LocalLambdaRuntime([])
        self.moto = MotoServer(dispatch=self._invoke, retry_sleep=self.retry_sleep).start()
        endpoints = {"default": self.moto.endpoint_url, "dynamodb": self.dynamodb.endpoint_url}
        self._clients = {
            service: boto3.client(
                service, region_name=REGION, endpoint_url=endpoints.get(service, endpoints["default"]), **CREDENTIALS
            )
            for service in ("dynamodb", "sqs", "events", "logs", "iam", "lambda", "stepfunctions")
        }
        self._role_arn = self._clients["iam"].create_role(RoleName="posting-local", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]

        for logical_id in self.template.dependency_order():
            resource_type = self.template.resources[logical_id]["Type"]
            if not self.template.is_created(logical_id):
                self.skipped.append(f"{logical_id} ({resource_type}, condition false)")
                self.resolver.skip(logical_id)
                continue
            create = self._creators().get(resource_type)
            if create is None:
                self.skipped.append(f"{logical_id} ({resource_type})")
                self.resolver.skip(logical_id)
                continue
            create(logical_id, self.resolver.resolve(self.template.properties(logical_id)))

        outputs = {
            key: str(self.resolver.resolve(output["Value"]))
            for key, output in self.template.body.get("Outputs", {}).items()
        }
        self.target = Target(outputs=outputs, region=REGION, endpoints=endpoints)

        self.runtime = LocalLambdaRuntime(self.functions)
        self.runtime.install_environment(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
                "AWS_ENDPOINT_URL": self.moto.endpoint_url,
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint_url,
                # X-Ray has no daemon here; the tracer is off, as in unit tests.
                "POWERTOOLS_TRACE_DISABLED": "true",
                **self.extra_environment,
            }
        )
        if self.capture_lambda_output:
            # Handlers log (and Powertools prints metrics) to stdout: keep the terminal for the CLI.
            self._lambda_log = (logs / "lambda.log").open("a", buffering=1)
            self._stdout, sys.stdout = sys.stdout, self._lambda_log
        self.runtime.load_handlers()
        if self.faults is not None:
            self._instrument_handler_clients(self.faults)
        for pipe in self.pipes:
            pipe.start()
        self.schedule.start()

    def stop(self) -> None:
        self.schedule.stop()
        for pipe in self.pipes:
            pipe.stop()
        if self._stdout is not None:
            sys.stdout, self._stdout = self._stdout, None
        if self._lambda_log is not None:
            self._lambda_log.close()
            self._lambda_log = None
        if self.runtime is not None:
            self.runtime.restore_environment()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self.dynamodb is not None and self._owns_dynamodb:
            self.dynamodb.stop()
            self.dynamodb = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _invoke(self, function_name: str, event: Any) -> Any:
        runtime = self.runtime
        assert runtime is not None
        if self.faults is None:
            return runtime.invoke(function_name, event)
        function = runtime.functions[function_name.rsplit(":", 1)[-1]]
        return self.faults.around_invoke(function.logical_id, event, lambda: runtime.invoke(function_name, event))

    @staticmethod
    def _instrument_handler_clients(faults: FaultInjector) -> None:
        """Hook the faults onto the very clients the handlers use (their one factory, cached per
        process as in a Lambda container), and onto no other client of this process."""
        from posting.handlers.bootstrap import aws_client

        for service in ("dynamodb", "events"):
            faults.instrument(aws_client(service))

    # -- one creator per resource type ---------------------------------------------------------

    def _creators(self) -> dict[str, Callable[[str, dict[str, Any]], None]]:
        return {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Archive": self._archive,
            "AWS::Events::Rule": self._rule,
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
            "AWS::Pipes::Pipe": self._pipe,
        }

    def _name(self, logical_id: str) -> str:
        return f"{self.template.stack_name}-{logical_id}"

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TableName") or self._name(logical_id)
        description = ensure_table(self._clients["dynamodb"], name, props, fresh=self.fresh_books)
        self.resolver.provide(logical_id, name, Arn=description["TableArn"])

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        fifo = str(props.get("FifoQueue", "false")).lower() == "true"
        # CloudFormation names a FIFO queue it names itself with the suffix SQS requires.
        name = props.get("QueueName") or self._name(logical_id) + (".fifo" if fifo else "")
        attributes: dict[str, str] = {
            key: str(props[key])
            for key in (
                "VisibilityTimeout",
                "MaximumMessageSize",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "ReceiveMessageWaitTimeSeconds",
            )
            if key in props
        }
        if fifo:
            attributes["FifoQueue"] = "true"
            for key in ("ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"):
                if key in props:
                    attributes[key] = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": policy["deadLetterTargetArn"],
                    "maxReceiveCount": int(policy["maxReceiveCount"]),
                }
            )
        url = self._clients["sqs"].create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        self._queue_urls[arn] = url
        self.resolver.provide(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def _log_group(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("LogGroupName") or self._name(logical_id)
        self._clients["logs"].create_log_group(logGroupName=name)
        # What CloudFormation's GetAtt returns, ":*" included (the template builds plain ARNs itself).
        self.resolver.provide(logical_id, name, Arn=f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*")

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props["Name"]
        arn = self._clients["events"].create_event_bus(Name=name)["EventBusArn"]
        self.resolver.provide(logical_id, name, Arn=arn, Name=name)

    def _archive(self, logical_id: str, props: dict[str, Any]) -> None:
        name = (props.get("ArchiveName") or self._name(logical_id))[:48]
        kwargs = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        if "RetentionDays" in props:
            kwargs["RetentionDays"] = int(props["RetentionDays"])
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        arn = self._clients["events"].create_archive(**kwargs)["ArchiveArn"]
        self.resolver.provide(logical_id, name, Arn=arn)

    def _rule(self, logical_id: str, props: dict[str, Any]) -> None:
        events = self._clients["events"]
        name = props.get("Name") or self._name(logical_id)
        bus = props.get("EventBusName", "default")
        arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )["RuleArn"]
        events.put_targets(Rule=name, EventBusName=bus, Targets=props.get("Targets", []))
        self.resolver.provide(logical_id, name, Arn=arn)

    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id)[:64]
        setting = self.template.function_setting
        environment = self.resolver.resolve(setting(logical_id, "Environment"))["Variables"]
        environment.update(lambda_logging_variables(self.resolver.resolve(setting(logical_id, "LoggingConfig") or {})))
        function = LocalFunction(
            logical_id=logical_id,
            function_name=name,
            handler=setting(logical_id, "Handler"),
            timeout_seconds=int(setting(logical_id, "Timeout") or 3),
            memory_mb=int(setting(logical_id, "MemorySize") or 128),
            environment={key: str(value) for key, value in environment.items()},
        )
        self._clients["lambda"].create_function(
            FunctionName=name, Role=self._role_arn, Code={"ZipFile": b"in-process"}, Handler=function.handler
        )
        self.functions.append(function)
        if scheduled(props):
            self.schedule.function_names.append(name)
        self.resolver.provide(logical_id, name, Arn=function.arn)

    def _state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        definition = (self.template.path.parent / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        if "${" in definition:
            raise TemplateError(f"{logical_id}: {props['DefinitionUri']} has substitutions the template does not set")
        json.loads(definition)  # fail here, with the file named, rather than inside moto
        name = props.get("Name") or self._name(logical_id)
        arn = self._clients["stepfunctions"].create_state_machine(
            name=name, definition=definition, roleArn=self._role_arn, type=props.get("Type", "STANDARD")
        )["stateMachineArn"]
        self.resolver.provide(logical_id, arn, Arn=arn, Name=name)

    def _pipe(self, logical_id: str, props: dict[str, Any]) -> None:
        source = props.get("SourceParameters", {}).get("SqsQueueParameters", {})
        target = props.get("TargetParameters", {}).get("StepFunctionStateMachineParameters", {})
        if props["Source"] not in self._queue_urls:
            raise TemplateError(f"{logical_id}: only an SQS queue of this template can be a local pipe's source")
        settings = PipeSettings(
            name=props.get("Name") or self._name(logical_id),
            source_queue_url=self._queue_urls[props["Source"]],
            source_queue_arn=props["Source"],
            state_machine_arn=props["Target"],
            batch_size=int(source.get("BatchSize", 10)),
            batching_window_seconds=int(source.get("MaximumBatchingWindowInSeconds", 0)),
            invocation_type=target.get("InvocationType", "FIRE_AND_FORGET"),
        )
        assert self.moto is not None
        stepfunctions = boto3.client(
            "stepfunctions",
            region_name=REGION,
            endpoint_url=self.moto.endpoint_url,
            # StartSyncExecution's host prefix ("sync-") does not resolve on loopback. One attempt
            # only: a retried call would run the whole workflow again.
            config=Config(inject_host_prefix=False, read_timeout=120, retries={"total_max_attempts": 1}),
            **CREDENTIALS,
        )
        # The pipe's calls are AWS-internal: served by moto in-process, not over the socket.
        sqs = self.moto.in_process(
            boto3.client("sqs", region_name=REGION, endpoint_url=self.moto.endpoint_url, **CREDENTIALS)
        )
        self.moto.in_process(stepfunctions)
        death = self.faults.poller_death if self.faults is not None else None
        self.pipes.append(LocalPipe(settings, sqs, stepfunctions, pollers=self.pollers, poller_death=death))
        self.resolver.provide(
            logical_id, settings.name, Arn=f"arn:aws:pipes:{REGION}:{ACCOUNT_ID}:pipe/{settings.name}"
        )


def lambda_logging_variables(config: dict[str, Any]) -> dict[str, str]:
    """What Lambda sets in a function's environment for its LoggingConfig: with the JSON format, the
    format and the application log level (which Powertools takes over POWERTOOLS_LOG_LEVEL)."""
    if config.get("LogFormat") != "JSON":
        return {}
    return {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": str(config.get("ApplicationLogLevel", "INFO"))}
