"""PostingQueueType: a standard posting queue by default, a FIFO one (and a FIFO DLQ) when asked.

The template is read as CloudFormation would deploy it with each value: its conditions evaluated and
its intrinsic functions resolved (posting_cli.local.template, which the local stack builds from).
`make lint` also runs cfn-lint and checkov on the SAM translation with each value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posting_cli.local.template import Resolver, Template

ROOT = Path(__file__).resolve().parents[2]
FIFO_PROPERTIES = {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
SQS_QUEUE_NAME_LIMIT = 80  # characters, the .fifo suffix included
FIFO_PIPE_BATCH_LIMIT = 10  # what Lambda's event source mapping takes from a FIFO queue


def deployed(resource: str, **parameters: Any) -> dict[str, Any]:
    """The resource's properties as CloudFormation creates them with these parameter values."""
    template = Template.load(ROOT / "template.yaml", stack_name="payments", overrides=parameters)
    resolver = Resolver(template)
    for logical_id in template.resources:  # what the properties below refer to
        if logical_id != resource:
            resolver.provide(logical_id, f"ref-{logical_id}", Arn=f"arn-{logical_id}", QueueName=f"name-{logical_id}")
    resolved: dict[str, Any] = resolver.resolve(template.properties(resource))
    return resolved


def test_the_default_is_a_standard_queue_with_no_fifo_property():
    queue, dlq = deployed("PostingQueue"), deployed("PostingDLQ")

    assert queue["QueueName"] == "payments-postings"
    assert FIFO_PROPERTIES.isdisjoint(queue) and FIFO_PROPERTIES.isdisjoint(dlq)
    assert dlq["RedriveAllowPolicy"]["sourceQueueArns"] == ["arn:aws:sqs:us-east-1:123456789012:payments-postings"]


def test_fifo_makes_the_queue_and_its_dlq_fifo_in_high_throughput_mode():
    queue, dlq = deployed("PostingQueue", PostingQueueType="fifo"), deployed("PostingDLQ", PostingQueueType="fifo")

    assert queue["QueueName"] == "payments-postings.fifo"
    assert (queue["FifoQueue"], dlq["FifoQueue"]) == (True, True)  # SQS: a FIFO queue's DLQ is FIFO
    # Every sender names its deduplication id: none is derived from the body behind a producer's back.
    assert (queue["ContentBasedDeduplication"], dlq["ContentBasedDeduplication"]) == (False, False)
    assert (queue["DeduplicationScope"], queue["FifoThroughputLimit"]) == ("messageGroup", "perMessageGroupId")
    assert dlq["RedriveAllowPolicy"]["sourceQueueArns"] == ["arn:aws:sqs:us-east-1:123456789012:payments-postings.fifo"]
    assert "QueueName" not in dlq  # CloudFormation names it, with the .fifo suffix


def test_a_fifo_pipe_takes_no_batching_window_and_batches_of_at_most_ten():
    template = Template.load(ROOT / "template.yaml")
    assert int(template.body["Parameters"]["PipeBatchSize"]["MaxValue"]) <= FIFO_PIPE_BATCH_LIMIT

    standard = deployed("PostingPipe", PipeBatchingWindowSeconds=30)["SourceParameters"]["SqsQueueParameters"]
    fifo = deployed("PostingPipe", PostingQueueType="fifo", PipeBatchingWindowSeconds=30)["SourceParameters"][
        "SqsQueueParameters"
    ]

    assert standard["MaximumBatchingWindowInSeconds"] == "30"
    assert fifo["MaximumBatchingWindowInSeconds"] == 0


def test_the_fifo_queue_names_fit_sqs_for_the_stack_names_the_template_allows():
    # The template asks for stack names of at most 50 characters with a FIFO queue: CloudFormation
    # adds .fifo to the DLQ's generated name (stack name, logical id, 13 random characters) without
    # shortening it to SQS's limit.
    assert "keep the stack's name to 50 characters or less" in (ROOT / "template.yaml").read_text()
    stack_name = "s" * 50
    template = Template.load(ROOT / "template.yaml", stack_name=stack_name, overrides={"PostingQueueType": "fifo"})
    name = Resolver(template).resolve(template.properties("PostingQueue")["QueueName"])
    generated_dlq_name = f"{stack_name}-PostingDLQ-{'X' * 13}.fifo"

    assert len(name) <= SQS_QUEUE_NAME_LIMIT and len(generated_dlq_name) <= SQS_QUEUE_NAME_LIMIT


def test_cfn_lint_passes_with_a_fifo_queue(tmp_path):
    from cfnlint.api import lint_file

    text = (ROOT / "template.yaml").read_text()
    marker = "  PostingQueueType:\n    Type: String\n    Default: standard\n"
    assert marker in text
    copy = tmp_path / "template.yaml"
    copy.write_text(text.replace(marker, marker.replace("standard", "fifo")))
    for folder in ("statemachine", "src", "layer"):
        (tmp_path / folder).symlink_to(ROOT / folder)

    assert [str(match) for match in lint_file(copy)] == []
