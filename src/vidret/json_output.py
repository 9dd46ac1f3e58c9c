"""JSON for people: floats rounded, so metrics read 40.55, not 40.550000000000004."""

from __future__ import annotations

import json
from typing import Any

DIGITS = 4  # metrics are percentages or ranks; scores are cosines: 4 decimals say it all


def rounded(obj: Any, digits: int = DIGITS) -> Any:
    """`obj` with every float (in dicts, lists and tuples, at any depth) rounded."""
    if isinstance(obj, float):
        if 0 < abs(obj) < 0.1:  # small scores (zero-shot concepts): significant digits
            return float(f"{obj:.{digits}g}")
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(rounded(obj), **kwargs)
