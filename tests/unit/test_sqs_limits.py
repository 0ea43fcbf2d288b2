"""The body rules of SQS, as the local queue enforces them (pure: no engine)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posting_cli.local.sqs_limits import body_problem, body_size


def _allowed(character: str) -> bool:
    code = ord(character)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=50))
def test_a_body_is_refused_for_its_characters_exactly_when_one_is_outside_xml(body: str) -> None:
    problem = body_problem(body, 10**6)
    assert (problem is not None and problem.code == "InvalidMessageContents") == (not all(map(_allowed, body)))


@given(st.text(alphabet=st.sampled_from("aé€\U0001f600"), max_size=40), st.integers(1, 120))
def test_size_is_utf8_bytes(body: str, limit: int) -> None:
    problem = body_problem(body, limit)
    assert body_size(body) == len(body.encode("utf-8"))
    assert (problem is not None) == (len(body.encode("utf-8")) > limit)


def test_boundaries() -> None:
    assert body_problem("x" * 8192, 8192) is None
    assert body_problem("x" * 8193, 8192) is not None
    assert body_problem("é" * 4097, 8192) is not None  # under 8,192 characters, over 8,192 bytes
