"""The published contract as JSON Schema, generated from the pydantic models Lambda validates with.

- schema/posting-request.schema.json and schema/account.schema.json: what producers send (2020-12);
- schema/event-*.schema.json: the result events, whole EventBridge events with their `detail`, in
  JSON Schema draft 4, the dialect the EventBridge schema registry takes (`JSONSchemaDraft4`);
- the same event documents, inline, in the registry template that template.yaml nests (its
  EventSchemas application, templates/event-schemas.yaml): one AWS::EventSchemas::Schema each, whose
  Content is a string (CloudFormation cannot read a file).

`make schema` writes all of them; tests check that the committed copies are current.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from posting.domain.events import EVENT_SOURCE, RESULT_EVENTS, EventDetail
from posting.domain.model import Account, PostingRequest
from posting.domain.requests import request_json_schema
from posting_cli.local.template import load_template

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
EVENT_SCHEMA_DRAFT = "http://json-schema.org/draft-04/schema#"
SCHEMA_BASE_URL = "https://github.com/posting-pipeline/schema/"
REGISTRY_SCHEMA_TYPE = "JSONSchemaDraft4"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, as committed under schema/."""
    documents = {
        "posting-request.schema.json": PostingRequest.model_json_schema(mode="validation"),
        "account.schema.json": Account.model_json_schema(mode="validation"),
        # Every kind (posting, hold, capture, void, expiry, reversal), discriminated by `kind`.
        "request.schema.json": request_json_schema(),
    }
    for name, document in documents.items():
        document["$schema"] = SCHEMA_DRAFT
        document["$id"] = SCHEMA_BASE_URL + name
    for model in RESULT_EVENTS:
        documents[event_schema_file(model)] = event_schema(model)
    return documents


def event_schema_file(model: type[EventDetail]) -> str:
    """`Posting Dead-Lettered` -> event-posting-dead-lettered.schema.json."""
    return "event-" + re.sub(r"[^a-z0-9]+", "-", model.detail_type.lower()).strip("-") + ".schema.json"


def registry_schema_name(model: type[EventDetail]) -> str:
    """The registry's naming convention for discovered schemas: `<source>@<DetailTypeInCamelCase>`."""
    return f"{EVENT_SOURCE}@{model.__name__}"


def event_schema(model: type[EventDetail]) -> dict[str, Any]:
    """A whole EventBridge event whose detail is `model`, in JSON Schema draft 4."""
    detail = _draft4(model.model_json_schema(mode="serialization"))
    definitions = detail.pop("definitions", {})
    definitions[model.__name__] = detail
    return {
        "$schema": EVENT_SCHEMA_DRAFT,
        "id": SCHEMA_BASE_URL + event_schema_file(model),
        "title": model.detail_type,
        "description": f"EventBridge event `{model.detail_type}` from `{EVENT_SOURCE}`. {model.__doc__}",
        "type": "object",
        "required": ["detail-type", "source", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"type": "string", "enum": [model.detail_type]},
            "source": {"type": "string", "enum": [EVENT_SOURCE]},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": {"$ref": f"#/definitions/{model.__name__}"},
        },
        "definitions": dict(sorted(definitions.items())),
    }


def _draft4(node: Any) -> Any:
    """Rewrite what pydantic emits (2020-12) into draft 4: `$defs` -> `definitions`, `const` -> `enum`."""
    if isinstance(node, list):
        return [_draft4(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs":
            converted["definitions"] = {name: _draft4(schema) for name, schema in value.items()}
        elif key == "$ref":
            converted["$ref"] = value.replace("#/$defs/", "#/definitions/")
        elif key == "const":
            converted["enum"] = [value]
        elif key in {"exclusiveMinimum", "exclusiveMaximum", "prefixItems", "$id", "$schema"}:
            raise ValueError(f"{key} has no draft-4 form here: extend _draft4 before using it in an event model")
        elif key in {"properties", "definitions"}:
            converted[key] = {name: _draft4(schema) for name, schema in value.items()}
        else:
            converted[key] = _draft4(value)
    return converted


# -- the schema registry: a nested application of the template ----------------------------------------

# template.yaml nests the registry as this AWS::Serverless::Application, whose local Location is the
# generated template. Its own stack names the registry (a parameter) and reads it back (an output).
REGISTRY_APPLICATION = "EventSchemas"
REGISTRY_OUTPUT = "RegistryName"
REGISTRY_TEMPLATE_HEADER = (
    "# Generated by `make schema` from src/posting/domain/events.py: change the event models, not this file.\n"
    "# Nested in template.yaml as its EventSchemas application; plain CloudFormation (no transform).\n"
)


def registry_template() -> str:
    """The nested template: the registry and one AWS::EventSchemas::Schema per result event."""
    lines = [
        REGISTRY_TEMPLATE_HEADER,
        'AWSTemplateFormatVersion: "2010-09-09"\n',
        "Description: >-\n",
        "  The posting pipeline's result events as JSON Schema (draft 4) in an EventBridge schema registry,\n",
        "  for code bindings; the same documents as schema/event-*.schema.json.\n",
        "\n",
        "Parameters:\n",
        "  RegistryName:\n",
        "    Type: String\n",
        '    AllowedPattern: "^[A-Za-z0-9._-]{1,64}$"\n',
        "    Description: The registry's name (template.yaml names it after the results bus).\n",
        "\n",
        "Resources:\n",
        "  EventSchemaRegistry:\n",
        "    Type: AWS::EventSchemas::Registry\n",
        "    Properties:\n",
        "      RegistryName: !Ref RegistryName\n",
        "      Description: Result events of the posting pipeline (download code bindings from here).\n",
    ]
    for model in RESULT_EVENTS:
        content = json.dumps(event_schema(model), separators=(",", ":"), sort_keys=False)
        lines += [
            f"  {model.__name__}EventSchema:\n",
            "    Type: AWS::EventSchemas::Schema\n",
            "    Properties:\n",
            "      RegistryName: !GetAtt EventSchemaRegistry.RegistryName\n",
            f"      SchemaName: {registry_schema_name(model)}\n",
            f"      Type: {REGISTRY_SCHEMA_TYPE}\n",
            f"      Description: Detail-type {model.detail_type} (schema/{event_schema_file(model)}).\n",
            "      Content: '" + content.replace("'", "''") + "'\n",
        ]
    lines += [
        "\n",
        "Outputs:\n",
        f"  {REGISTRY_OUTPUT}:\n",
        "    Value: !GetAtt EventSchemaRegistry.RegistryName\n",
    ]
    return "".join(lines)


def registry_template_path(template: Path) -> Path:
    """Where the template's EventSchemas application says the nested registry template is."""
    resource = load_template(template).get("Resources", {}).get(REGISTRY_APPLICATION, {})
    location = resource.get("Properties", {}).get("Location")
    if resource.get("Type") != "AWS::Serverless::Application" or not isinstance(location, str):
        raise ValueError(
            f"{template} has no {REGISTRY_APPLICATION} resource of type AWS::Serverless::Application with a "
            "local Location: the event schema registry is written to the file it names"
        )
    return template.parent / location


def write_registry_template(template: Path) -> tuple[Path, bool]:
    """Write the nested registry template the template names; returns its path and whether it changed."""
    path = registry_template_path(template)
    text = registry_template()
    changed = not path.exists() or path.read_text() != text
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path, changed
