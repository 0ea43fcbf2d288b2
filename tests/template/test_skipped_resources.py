"""Resources with no local meaning (IAM, alarms, the schema registry...) are skipped by the local stack,
and whatever refers to them still resolves."""

from __future__ import annotations

from posting_cli.local.template import Resolver, Template


def test_refs_and_attributes_of_a_skipped_resource_resolve_to_placeholders(template: Template) -> None:
    resolver = Resolver(template)
    resolver.skip("EventSchemaRegistry")

    assert resolver.resolve({"Ref": "EventSchemaRegistry"}) == "local-EventSchemaRegistry"
    assert resolver.resolve({"Fn::GetAtt": ["EventSchemaRegistry", "RegistryName"]}) == (
        "local-EventSchemaRegistry-RegistryName"
    )
    assert resolver.resolve({"Fn::Sub": "${EventSchemaRegistry.RegistryArn}"}) == "arn:aws:local:::EventSchemaRegistry"


def test_every_output_resolves_when_every_resource_is_skipped(template: Template) -> None:
    """The worst case for the local stack: a template made only of types it does not know."""
    resolver = Resolver(template)
    for logical_id in template.dependency_order():
        resolver.skip(logical_id)
    for output in template.body["Outputs"].values():
        assert isinstance(resolver.resolve(output["Value"]), str)
