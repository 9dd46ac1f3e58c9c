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


def test_search_example_goes_from_files_to_a_working_page(tmp_path: Path) -> None:
    """The README's four search commands, run as written, on generated video files."""
    import json
    import os
    import shlex
    import subprocess
    import sys

    import httpx

    from vidret.search.local_server import serving
    from vidret.video.synthetic import write_demo_videos

    match = re.search(
        r"<!-- readme:search-example -->\n```bash\n(.*?)```", README.read_text(), re.S
    )
    assert match, "README.md lost its readme:search-example block"
    commands = [shlex.split(line) for line in match.group(1).strip().splitlines()]
    assert [c[1] for c in commands] == ["extract", "train", "index", "serve"]
    (tmp_path / "configs").symlink_to(README.parent / "configs")
    write_demo_videos(tmp_path / "my-videos")
    vidret = [sys.executable, "-m", "vidret"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for command in commands[:3]:
        subprocess.run(vidret + command[1:], cwd=tmp_path, env=env, check=True,
                       capture_output=True)  # fmt: skip

    with serving(commands[3][1:], cwd=tmp_path) as base:
        assert "search-form" in httpx.get(base + "/").text
        body = httpx.get(f"{base}/search", params={"q": "a blue circle", "k": 3}).json()
        top = [r["video_id"] for r in body["results"]]
        assert sum(v.startswith("blue-") for v in top) >= 2, json.dumps(body, indent=1)
