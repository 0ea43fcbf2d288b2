"""Read template.yaml so that the local stack is built from it: names, keys, settings, env, substitutions.

Nothing about the deployed resources is repeated by hand in the local code. This module loads the
template (with CloudFormation's short-form tags), applies parameter defaults and overrides with their
constraints, orders resources by their references, and resolves the intrinsic functions the template
uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split, Fn::FindInMap, Fn::If with the template's Conditions) against
the physical names and ARNs of the local resources. A nested application with a local Location is read
too: `nested()` binds its template to what this one passes it, `flattened()` reads the whole stack as
one template.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


class TemplateError(Exception):
    """The template asks for something the local stack cannot resolve; the message says what."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns `!Ref X` into `{"Ref": "X"}`, `!GetAtt A.B` into `{"Fn::GetAtt": [A, B]}`..."""


def _tag_constructor(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag_constructor)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        return yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass with CFN tags only


def default_template_path() -> Path:
    """template.yaml at the project root (this file lives in tools/posting_cli/local/)."""
    return Path(__file__).resolve().parents[3] / "template.yaml"


@dataclass
class Template:
    """A parsed template with its parameters bound."""

    path: Path
    body: dict[str, Any]
    stack_name: str
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, path: Path | None = None, stack_name: str = "posting-local", overrides: Mapping[str, Any] | None = None
    ) -> Template:
        path = path or default_template_path()
        template = cls(path=path, body=load_template(path), stack_name=stack_name)
        template.parameters = template._bind_parameters(overrides or {})
        return template

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def function_globals(self) -> dict[str, Any]:
        return self.body.get("Globals", {}).get("Function", {})

    def function_setting(self, logical_id: str, name: str) -> Any:
        """A function property, falling back to Globals the way SAM does: a map merges with the global
        one key by key, the function's keys first (Environment merges its Variables)."""
        own = self.properties(logical_id)
        if name == "Environment":
            variables = dict(self.function_globals().get("Environment", {}).get("Variables", {}))
            variables.update(own.get("Environment", {}).get("Variables", {}))
            return {"Variables": variables}
        default = self.function_globals().get(name)
        if isinstance(default, dict) and isinstance(own.get(name), dict):
            return {**default, **own[name]}
        return own.get(name, default)

    def _bind_parameters(self, overrides: Mapping[str, Any]) -> dict[str, str]:
        declared = self.body.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(
                f"unknown parameter(s): {', '.join(sorted(unknown))}; the template declares "
                f"{', '.join(sorted(declared))}"
            )
        bound: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = str(overrides[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no default: pass it as an override")
            _check_parameter(name, spec, value)
            bound[name] = value
        return bound

    def table_definition(self, logical_id: str) -> dict[str, Any]:
        """A table's keys, indexes and capacity as this template's parameters make them (what creating
        the table needs), without the properties that name other resources (its key, its policy)."""
        resolver = Resolver(self)
        for other in self.resources:
            resolver.skip(other)
        wanted = ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput", "GlobalSecondaryIndexes")
        definition: dict[str, Any] = resolver.resolve(
            {k: v for k, v in self.properties(logical_id).items() if k in wanted}
        )
        return definition

    def nested_paths(self) -> dict[str, Path]:
        """The template file of each nested application with a local Location, by its logical id."""
        found: dict[str, Path] = {}
        for logical_id, resource in self.resources_of_type("AWS::Serverless::Application").items():
            location = resource.get("Properties", {}).get("Location")
            if isinstance(location, str) and not location.startswith(("https://", "s3://")):
                found[logical_id] = self.path.parent / location  # else published or uploaded: nothing to read
        return found

    def nested(self) -> dict[str, Template]:
        """Each nested application with a local Location (AWS::Serverless::Application), by logical id:
        its template, bound to the parameters this one passes it (every resource a placeholder)."""
        resolver = Resolver(self)
        for logical_id in self.resources:
            resolver.skip(logical_id)
        return {
            logical_id: Template.load(
                path,
                stack_name=f"{self.stack_name}-{logical_id}",
                overrides=resolver.resolve(self.properties(logical_id).get("Parameters", {})),
            )
            for logical_id, path in self.nested_paths().items()
        }

    def flattened(self) -> Template:
        """This template as one stack: each nested application replaced by its template's resources and
        conditions, where a Ref to one of its parameters is the expression this template passes it and
        a GetAtt of one of its outputs is that output's value. What the checks of the whole stack read
        (its alarms, its costs); CloudFormation deploys the nested stacks as they are."""
        body = copy.deepcopy(self.body)
        resources, conditions = body["Resources"], body.setdefault("Conditions", {})
        outputs: dict[tuple[str, ...], Any] = {}
        for logical_id, path in self.nested_paths().items():
            child = load_template(path)
            passed = resources.pop(logical_id).get("Properties", {}).get("Parameters", {})
            declared = child.get("Parameters", {})
            if set(passed) != set(declared):
                raise TemplateError(f"{logical_id}: passes {sorted(passed)}, {path.name} declares {sorted(declared)}")
            if re.search(r"AWS::Stack(?:Name|Id)", str(child)):  # the nested stack's, not this one's
                raise TemplateError(f"{path.name} names things after its own stack: let {self.path.name} pass names")
            values = {
                name: {"Fn::Split": [",", passed[name]]} if spec.get("Type") == "CommaDelimitedList" else passed[name]
                for name, spec in declared.items()
            }
            for name, declared_condition in child.get("Conditions", {}).items():
                condition = _substituted(declared_condition, values)
                if conditions.setdefault(name, condition) != condition:
                    raise TemplateError(f"{path.name} and {self.path.name} both declare Condition {name}, differently")
            for name, resource in child["Resources"].items():
                if name in resources:
                    raise TemplateError(f"{path.name} and {self.path.name} both declare {name}")
                resources[name] = _substituted(resource, values)
            for name, output in child.get("Outputs", {}).items():
                outputs[(logical_id, f"Outputs.{name}")] = _substituted(output["Value"], values)
        body = _with_outputs(body, outputs)
        return Template(path=self.path, body=body, stack_name=self.stack_name, parameters=dict(self.parameters))

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions, given the bound parameters."""
        return bool(Resolver(self).evaluate({"Condition": name}))

    def is_created(self, logical_id: str) -> bool:
        """False for a resource whose Condition is false (CloudFormation does not create it)."""
        name = self.resources[logical_id].get("Condition")
        return name is None or self.condition(name)

    def dependency_order(self) -> list[str]:
        """Logical ids ordered so that every resource comes after the resources it references."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(logical_id: str) -> None:
            if logical_id in order:
                return
            if logical_id in visiting:
                raise TemplateError(f"circular reference through {logical_id}")
            visiting.add(logical_id)
            for dependency in sorted(_references(self.resources[logical_id]) & set(self.resources)):
                visit(dependency)
            visiting.discard(logical_id)
            order.append(logical_id)

        for logical_id in self.resources:
            visit(logical_id)
        return order


def _substituted(node: Any, values: Mapping[str, Any]) -> Any:
    """node with each Ref to a name in values (and each ${name} in a Fn::Sub) replaced by its value."""
    if isinstance(node, list):
        return [_substituted(v, values) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and isinstance(node.get("Ref"), str) and node["Ref"] in values:
        return values[node["Ref"]]
    if len(node) == 1 and "Fn::Sub" in node:
        text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        variables = {k: _substituted(v, values) for k, v in variables.items()}
        used = {name: values[name] for name in _SUB_VARIABLE.findall(text) if name in values and name not in variables}
        return {"Fn::Sub": [text, {**variables, **used}] if variables or used else text}
    return {key: _substituted(value, values) for key, value in node.items()}


def _with_outputs(node: Any, outputs: Mapping[tuple[str, ...], Any]) -> Any:
    """node with each Fn::GetAtt of a nested application's output replaced by the output's value."""
    if isinstance(node, list):
        return [_with_outputs(v, outputs) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        key = tuple(target) if isinstance(target, list) else tuple(target.split(".", 1))
        if key in outputs:
            return outputs[key]
    return {key: _with_outputs(value, outputs) for key, value in node.items()}


def _check_parameter(name: str, spec: dict[str, Any], value: str) -> None:
    """Apply the template's own constraints, as CloudFormation would."""
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise TemplateError(f"parameter {name}={value!r} does not match its AllowedPattern {pattern}")
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        raise TemplateError(f"parameter {name}={value} is not one of {allowed}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above its MaxValue {spec['MaxValue']}")


def _references(node: Any) -> set[str]:
    """Names referenced by Ref, Fn::GetAtt and Fn::Sub anywhere under node."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Condition" and isinstance(value, str):
                continue  # a condition's name, not a resource
            elif key == "Fn::If":
                found.update(_references(value[1:]))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(match.split(".")[0] for match in _SUB_VARIABLE.findall(text))
                if isinstance(value, list):
                    found.update(_references(value[1]))
            else:
                found.update(_references(value))
    elif isinstance(node, list):
        for value in node:
            found.update(_references(value))
    return found


_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")
_NO_VALUE = object()  # what Ref AWS::NoValue resolves to: the property or list element is dropped


class Resolver:
    """Resolves intrinsic functions against bound parameters and the local resources created so far."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.refs: dict[str, str] = {
            **template.parameters,
            "AWS::StackName": template.stack_name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.attributes: dict[tuple[str, str], str] = {}
        self.skipped: set[str] = set()

    def skip(self, logical_id: str) -> None:
        """A resource with no local meaning: Ref and every Fn::GetAtt of it give a placeholder."""
        self.skipped.add(logical_id)
        self.refs[logical_id] = f"local-{logical_id}"

    def provide(self, logical_id: str, ref: str, **attributes: str) -> None:
        """Record what Ref and Fn::GetAtt of a created resource return."""
        self.refs[logical_id] = ref
        for name, value in attributes.items():
            self.attributes[(logical_id, name)] = value

    def resolve(self, node: Any) -> Any:
        resolved = self._resolve(node)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._resolve(value) for value in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            intrinsic: dict[str, Callable[[Any], Any]] = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Sub": self._sub,
                "Fn::Join": self._join,
                "Fn::Split": self._split,
                "Fn::If": self._if,
                "Fn::FindInMap": self._find_in_map,
            }
            if key in intrinsic:
                return intrinsic[key](value)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local stack")
        resolved = {key: self._resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def evaluate(self, node: Any) -> bool:
        """A condition: Fn::Equals, Fn::Not, Fn::And, Fn::Or or a named Condition."""
        ((key, value),) = node.items()
        if key == "Condition":
            conditions = self.template.body.get("Conditions", {})
            if value not in conditions:
                raise TemplateError(f"Condition {value} is not declared")
            return self.evaluate(conditions[value])
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.evaluate(value[0])
        if key == "Fn::And":
            return all(self.evaluate(v) for v in value)
        if key == "Fn::Or":
            return any(self.evaluate(v) for v in value)
        raise TemplateError(f"{key} is not a condition function the local stack knows")

    def _if(self, value: list[Any]) -> Any:
        name, if_true, if_false = value
        return self._resolve(if_true if self.evaluate({"Condition": name}) else if_false)

    def _join(self, value: list[Any]) -> str:
        separator, values = value
        return str(separator).join(str(v) for v in self.resolve(values))

    def _find_in_map(self, value: list[Any]) -> Any:
        name, top, second = (self.resolve(v) for v in value)
        try:
            return self.template.body["Mappings"][name][str(top)][str(second)]
        except KeyError:
            raise TemplateError(f"Fn::FindInMap {name}.{top}.{second}: not in the template's Mappings") from None

    def _split(self, value: list[Any]) -> list[str]:
        separator, text = value
        return str(self.resolve(text)).split(separator)

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name not in self.refs:
            raise TemplateError(f"Ref {name}: not a parameter or a resource the local stack has created yet")
        declared = self.template.body.get("Parameters", {}).get(name, {})
        if declared.get("Type") == "CommaDelimitedList":
            return self.refs[name].split(",")  # as CloudFormation: "" is [""]
        return self.refs[name]

    def _get_att(self, value: str | list[str]) -> str:
        logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
        if logical_id in self.skipped:
            return f"arn:aws:local:::{logical_id}" if attribute.endswith("Arn") else f"local-{logical_id}-{attribute}"
        if (logical_id, attribute) not in self.attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: not available locally")
        return self.attributes[(logical_id, attribute)]

    def _sub(self, value: str | list[Any]) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name)
            return self._ref(name)

        return _SUB_VARIABLE.sub(replace, text)
