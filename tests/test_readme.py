"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README.md lost its {marker} block"
    return match.group(1)


def test_plugin_example_trains_a_foreign_model() -> None:
    namespace: dict = {}
    exec(readme_block("readme:plugin-example"), namespace)  # our own README, run as a user would
    assert namespace["loss"].item() > 0
    grads = [p.grad for p in namespace["model"].parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
