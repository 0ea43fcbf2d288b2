"""posting schema: print or write the JSON Schemas of the contract."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from posting_cli.commands import terminal


def register(verbs: Any) -> None:
    schema = verbs.add_parser("schema", help="print or write the JSON Schemas of the contract")
    schema.add_argument("--write", metavar="DIR", help="write one file per schema into DIR")
    schema.add_argument(
        "--template",
        metavar="FILE",
        help="write the event schema registry of this SAM template (the nested template its EventSchemas names)",
    )
    schema.set_defaults(command=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    from posting_cli.schema import schemas, write_registry_template

    documents = schemas()
    if not args.write and not args.template:
        terminal.console.print_json(json.dumps(documents))
        return 0
    if args.write:
        folder = Path(args.write)
        folder.mkdir(parents=True, exist_ok=True)
        for name, document in documents.items():
            (folder / name).write_text(json.dumps(document, indent=2) + "\n")
            terminal.console.print(f"wrote {folder / name}")
    if args.template:
        path, changed = write_registry_template(Path(args.template))
        terminal.console.print(
            f"{'updated' if changed else 'unchanged'}: {path} (the schema registry {args.template} nests)"
        )
    return 0
