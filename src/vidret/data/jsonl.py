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
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(
                    Problem(
                        path.name,
                        f"not UTF-8 text (byte {e.start + 1} of the line is 0x{raw[e.start]:02x});"
                        " save the file as UTF-8",
                        line_no,
                    )
                )
                continue
            if line_no == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
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
