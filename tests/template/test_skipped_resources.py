"""Resources with no local meaning (IAM, alarms, the nested schema registry...) are skipped by the local
stack, and whatever refers to them still resolves."""

from __future__ import annotations

from posting_cli.local.template import Resolver, Template


def test_refs_and_attributes_of_a_skipped_resource_resolve_to_placeholders(template: Template) -> None:
    resolver = Resolver(template)
    resolver.skip("EventSchemas")

    assert resolver.resolve({"Ref": "EventSchemas"}) == "local-EventSchemas"
    assert resolver.resolve({"Fn::GetAtt": ["EventSchemas", "Outputs.RegistryName"]}) == (
        "local-EventSchemas-Outputs.RegistryName"
    )
    assert resolver.resolve({"Fn::Sub": "${EventSchemas.Outputs.RegistryArn}"}) == "arn:aws:local:::EventSchemas"


def test_every_output_resolves_when_every_resource_is_skipped(template: Template) -> None:
    """The worst case for the local stack: a template made only of types it does not know."""
    resolver = Resolver(template)
    for logical_id in template.dependency_order():
        resolver.skip(logical_id)
    for output in template.body["Outputs"].values():
        assert isinstance(resolver.resolve(output["Value"]), str)


# What the local stack skips, by type: none of these moves a posting or holds one.
NO_LOCAL_MEANING = {
    "AWS::ApplicationAutoScaling::ScalableTarget": "capacity: DynamoDB Local has none to scale",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "capacity: DynamoDB Local has none to scale",
    "AWS::CloudTrail::Trail": "an audit record of AWS API calls",
    "AWS::CloudWatch::Alarm": "alarms",
    "AWS::CloudWatch::Dashboard": "a dashboard",
    "AWS::EventSchemas::Registry": "published schemas (schema/ holds them)",
    "AWS::EventSchemas::Schema": "published schemas (schema/ holds them)",
    "AWS::Events::EventBusPolicy": "a resource policy",
    "AWS::IAM::Role": "IAM",
    "AWS::KMS::Alias": "encryption",
    "AWS::KMS::Key": "encryption",
    "AWS::Lambda::ResourcePolicy": "a resource policy",
    "AWS::Logs::MetricFilter": "metrics from the trail's log group",
    "AWS::Logs::ResourcePolicy": "a resource policy",
    "AWS::S3::Bucket": "the trail's bucket",
    "AWS::S3::BucketPolicy": "a resource policy",
    "AWS::Serverless::Application": "a nested application: every resource in it has no local meaning either",
    "AWS::SNS::Subscription": "alarm notifications",
    "AWS::SNS::Topic": "alarm notifications",
    "AWS::SNS::TopicPolicy": "a resource policy",
    "AWS::SQS::QueuePolicy": "a resource policy",
    "AWS::Serverless::LayerVersion": "the dependencies are the local interpreter's",
    "AWS::XRay::SamplingRule": "tracing: no X-Ray daemon runs locally",
}


def test_every_resource_type_is_created_locally_or_has_no_local_meaning(template: Template) -> None:
    from posting_cli.local.stack import LocalStack

    created = set(LocalStack(template)._creators())
    types = {resource["Type"] for resource in template.resources.values()}
    assert types - created - set(NO_LOCAL_MEANING) == set()
    assert not created & set(NO_LOCAL_MEANING)


def test_the_local_stack_skips_a_nested_application_whole_so_nothing_in_it_has_a_local_meaning(
    template: Template,
) -> None:
    nested = template.nested()
    assert (
        set(nested) == set(template.resources_of_type("AWS::Serverless::Application")) == {"EventSchemas", "Monitoring"}
    )
    for logical_id, child in nested.items():
        types = {resource["Type"] for resource in child.resources.values()}
        assert types <= set(NO_LOCAL_MEANING), f"{logical_id}: {types - set(NO_LOCAL_MEANING)}"


def test_a_tables_definition_is_what_its_capacity_mode_makes_it() -> None:
    on_demand = Template.load().table_definition("LedgerTable")
    assert on_demand["BillingMode"] == "PAY_PER_REQUEST" and "ProvisionedThroughput" not in on_demand
    assert {"KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"} <= set(on_demand)
    provisioned = Template.load(overrides={"CapacityMode": "PROVISIONED"}).table_definition("LedgerTable")
    assert provisioned["BillingMode"] == "PROVISIONED"
    assert provisioned["ProvisionedThroughput"] == {"ReadCapacityUnits": "10", "WriteCapacityUnits": "25"}
    assert all("ProvisionedThroughput" in index for index in provisioned["GlobalSecondaryIndexes"])
