"""Strict parsing of a filter's reply: JSON with ``decision`` in {approve, reject},
``confidence`` in [0, 1], ``contracts`` an integer 1-5 and an optional ``reason``. Anything else
is a ``BadReply`` whose message says what was wrong; the caller records it with the raw text."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from research.exceptions import ResearchError

__all__ = ["DECISION_SCHEMA", "BadReply", "Decision", "parse_reply"]

DECISION_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "reject"]},
        # the hundredths as an enum: llama.cpp's grammar enforces enums and integer bounds, not
        # the bounds of a number (it let `"confidence": 7` through a minimum/maximum)
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "enum": [round(i / 100, 2) for i in range(101)],
        },
        "contracts": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string", "maxLength": 200},
    },
    "required": ["decision", "confidence", "contracts", "reason"],
    "additionalProperties": False,
}
"""A valid decision as a JSON schema: sent as ``response_format`` to servers that enforce it
(llama.cpp's grammar-constrained sampling), so the reply cannot break ``parse_reply``'s rules.
The confidence is one of 0.00, 0.01, ..., 1.00."""


class BadReply(ResearchError, ValueError):
    """A reply that is not a valid decision (the message says why)."""


@dataclass(frozen=True)
class Decision:
    """A valid decision."""

    decision: str
    confidence: float
    contracts: int
    reason: str


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def _json_object(text: str) -> dict[str, object]:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except ValueError:
        # a JSON object inside prose: the outermost {...}
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            raise BadReply("no JSON object in the reply") from None
        try:
            value = json.loads(body[start : end + 1])
        except ValueError as exc:
            raise BadReply(f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadReply(f"the reply is JSON but not an object ({type(value).__name__})")
    return value


def parse_reply(text: str | None) -> Decision:
    """Validate a reply.

    Raises
    ------
    BadReply
        Empty, not JSON, or a field missing or out of range.

    Examples
    --------
    >>> parse_reply('{"decision": "Approve", "confidence": 0.7, "contracts": 2, "reason": "ok"}')
    Decision(decision='approve', confidence=0.7, contracts=2, reason='ok')
    """
    if text is None or not text.strip():
        raise BadReply("empty reply")
    obj = _json_object(text)
    decision = obj.get("decision")
    if not isinstance(decision, str) or decision.strip().lower() not in ("approve", "reject"):
        raise BadReply(f"decision must be 'approve' or 'reject', got {decision!r}")
    conf = obj.get("confidence")
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not math.isfinite(conf):
        raise BadReply(f"confidence must be a number in [0, 1], got {conf!r}")
    if not 0.0 <= float(conf) <= 1.0:
        raise BadReply(f"confidence must be in [0, 1], got {conf!r}")
    contracts = obj.get("contracts")
    if isinstance(contracts, float) and contracts.is_integer():
        contracts = int(contracts)
    if isinstance(contracts, bool) or not isinstance(contracts, int) or not 1 <= contracts <= 5:
        raise BadReply(f"contracts must be an integer 1-5, got {contracts!r}")
    reason = obj.get("reason", "")
    return Decision(decision.strip().lower(), float(conf), contracts, str(reason or ""))
