"""The published contract as JSON Schema, generated from the pydantic models Lambda validates with."""

from __future__ import annotations

from typing import Any

from posting.domain.model import Account, PostingRequest

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, as committed under schema/."""
    documents = {
        "posting-request.schema.json": PostingRequest.model_json_schema(mode="validation"),
        "account.schema.json": Account.model_json_schema(mode="validation"),
    }
    for name, document in documents.items():
        document["$schema"] = SCHEMA_DRAFT
        document["$id"] = f"https://github.com/posting-pipeline/schema/{name}"
    return documents
