"""The published contract as JSON Schema, generated from the pydantic models Lambda validates with.

- schema/posting-request.schema.json and schema/account.schema.json: what producers send (2020-12);
- schema/event-*.schema.json: the result events, whole EventBridge events with their `detail`, in
  JSON Schema draft 4, the dialect the EventBridge schema registry takes (`JSONSchemaDraft4`);
- the same event documents, inline, in template.yaml's generated block of AWS::EventSchemas::Schema
  resources (a Schema's Content is a string in the template: CloudFormation cannot read a file).

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

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
EVENT_SCHEMA_DRAFT = "http://json-schema.org/draft-04/schema#"
SCHEMA_BASE_URL = "https://github.com/posting-pipeline/schema/"
REGISTRY_SCHEMA_TYPE = "JSONSchemaDraft4"

TEMPLATE_BEGIN = (
    "  # BEGIN generated event schemas: `make schema` writes this block from src/posting/domain/events.py\n"
)
TEMPLATE_END = "  # END generated event schemas\n"


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


# -- the template's schema registry -------------------------------------------------------------------


def template_block() -> str:
    """The generated block of template.yaml: the registry and one AWS::EventSchemas::Schema per event."""
    lines = [
        TEMPLATE_BEGIN,
        "  EventSchemaRegistry:\n",
        "    Type: AWS::EventSchemas::Registry\n",
        "    Properties:\n",
        "      RegistryName: !Sub ${AWS::StackName}-events\n",
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
    lines.append(TEMPLATE_END)
    return "".join(lines)


def with_template_block(template_text: str) -> str:
    """template.yaml's text with its generated block replaced (or inserted before the logs section)."""
    block = template_block()
    if TEMPLATE_BEGIN in template_text:
        before, rest = template_text.split(TEMPLATE_BEGIN, 1)
        if TEMPLATE_END not in rest:
            raise ValueError("template.yaml has the generated block's BEGIN line but not its END line")
        return before + block + rest.split(TEMPLATE_END, 1)[1]
    anchor = "\nOutputs:\n"
    if anchor not in template_text:
        raise ValueError("template.yaml has no Outputs section to put the generated block before")
    head, tail = template_text.split(anchor, 1)
    return head.rstrip("\n") + "\n\n" + block + anchor + tail


def write_template_block(path: Path) -> bool:
    """Rewrite the generated block of the template at path; returns whether anything changed."""
    text = path.read_text()
    updated = with_template_block(text)
    if updated != text:
        path.write_text(updated)
    return updated != text
