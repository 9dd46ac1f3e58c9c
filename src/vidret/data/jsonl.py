"""Reading JSON Lines files while recording, not raising, every malformed line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidret.errors import Problem


def read_jsonl_objects(path: Path, problems: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
    """Return `(line_number, object)` for each valid line; bad lines become problems.

    Blank lines are allowed (a trailing newline is common) and skipped.
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        for line_no, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                problems.append(Problem(path.name, f"malformed JSON ({e.msg})", line_no))
                continue
            if not isinstance(obj, dict):
                problems.append(
                    Problem(path.name, f"expected a JSON object, got {type(obj).__name__}", line_no)
                )
                continue
            rows.append((line_no, obj))
    return rows
