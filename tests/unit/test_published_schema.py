"""The committed JSON Schemas are exactly what the models Lambda validates with generate."""

from __future__ import annotations

import json
from pathlib import Path

from posting_cli.schema import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"


def test_committed_schemas_match_the_models():
    for name, document in schemas().items():
        committed = json.loads((SCHEMA_DIR / name).read_text())
        assert committed == document, f"schema/{name} is stale: run `make schema` and commit it"


def test_the_request_schema_forbids_unknown_fields_and_floats():
    request = schemas()["posting-request.schema.json"]
    leg = request["$defs"]["Leg"]
    assert request["additionalProperties"] is False
    assert leg["additionalProperties"] is False
    assert leg["properties"]["amount"]["type"] == "integer"
    assert request["properties"]["legs"]["maxItems"] == 49
