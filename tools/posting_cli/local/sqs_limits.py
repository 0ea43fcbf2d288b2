"""What SQS refuses in a message body, as SQS counts it (moto counts differently; see moto_patches).

- Size: `MaximumMessageSize` is in bytes of the UTF-8 encoding, not in characters. moto compares
  `len(body)`, so 8,192 characters of 'é' (16,384 bytes) pass there and fail on SQS.
- Characters: only XML 1.0 characters may appear: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to
  #xFFFD | #x10000 to #x10FFFF. Everything else (C0 controls, lone surrogates, U+FFFE, U+FFFF)
  is refused with InvalidMessageContents. moto accepts all of them (and fails with HTTP 500 on a
  lone surrogate).

Error codes and messages are the ones SQS answers with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Everything outside the allowed set, as one character class (a str pattern matches code points).
_REFUSED_CHARACTER = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ALLOWED_CHARACTERS = "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"


@dataclass(frozen=True)
class BodyRefused:
    code: str
    message: str


def body_size(body: str) -> int:
    """Bytes SQS counts for a body: its UTF-8 encoding (a lone surrogate counts its 3 bytes)."""
    return len(body.encode("utf-8", "surrogatepass"))


def body_problem(body: str, maximum_bytes: int) -> BodyRefused | None:
    """Why SQS would refuse this body on a queue whose MaximumMessageSize is `maximum_bytes`, or None."""
    refused = _REFUSED_CHARACTER.search(body)
    if refused is not None:
        return BodyRefused(
            "InvalidMessageContents",
            f"Invalid binary character '#x{ord(refused.group()):X}' was found in the message body, "
            f"the set of allowed characters is {ALLOWED_CHARACTERS}",
        )
    if body_size(body) > maximum_bytes:
        return BodyRefused(
            "InvalidParameterValue",
            f"One or more parameters are invalid. Reason: Message must be shorter than {maximum_bytes} bytes.",
        )
    return None
