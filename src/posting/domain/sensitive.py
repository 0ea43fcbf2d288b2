"""Data the pipeline must never store or announce: card numbers (PANs), and control characters.

Pure. A posting request is refused as SENSITIVE_DATA when any of its strings (ids, description,
metadata keys and values, whatever the field) holds a run of 13 to 19 digits, single spaces or
dashes allowed between them (the whole run, bounded by any other character), that passes the Luhn
check: the shape of a primary account number.
The pipeline is not a tokeniser; producers send tokens, never PANs (the guidance's "PCI-DSS fields
tokenised"). Free text (description, metadata values) may not hold control characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19
# A run of digits with at most one space or dash between two digits.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def contains_card_number(text: str) -> bool:
    """True when a whole digit run (single spaces or dashes between digits) has 13 to 19 digits and
    passes Luhn. A run is bounded by any other character, so longer numbers are not PANs."""
    for run in _DIGIT_RUN.finditer(text):
        digits = run.group().replace(" ", "").replace("-", "")
        if PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS and luhn_valid(digits):
            return True
    return False


def contains_control_character(text: str) -> bool:
    return _CONTROL.search(text) is not None


def strings_of(document: Any) -> Iterator[tuple[str, str]]:
    """(where, text) of every string in a JSON document, keys included. `where` names the top-level
    field only (never a key from the input below it), so it is safe to put in a detail. Iterative:
    a hostile body may nest deeper than Python's recursion limit."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, str):
            yield path or "body", node
        elif isinstance(node, dict):
            for key, value in node.items():
                where = path or (key if isinstance(key, str) and key.isidentifier() else "body")
                yield where, str(key)
                pending.append((where, value))
        elif isinstance(node, list):
            pending.extend((path, value) for value in node)


def card_number_fields(document: Any) -> list[str]:
    """The top-level fields of a JSON document that hold a card number, sorted (empty: none)."""
    return sorted({where for where, text in strings_of(document) if contains_card_number(text)})
