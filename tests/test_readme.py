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


def test_zero_shot_example_searches_a_folder_without_captions(tmp_path: Path) -> None:
    """The README's three zero-shot commands, run as written, on generated video files
    (no captions file): the server answers with the concepts the query was mapped to."""
    import os
    import shlex
    import subprocess
    import sys

    import httpx

    from vidret.search.local_server import serving
    from vidret.video.synthetic import write_demo_videos

    match = re.search(
        r"<!-- readme:zero-shot-example -->\n```bash\n(.*?)```", README.read_text(), re.S
    )
    assert match, "README.md lost its readme:zero-shot-example block"
    commands = [shlex.split(line) for line in match.group(1).strip().splitlines()]
    assert [c[1] for c in commands] == ["extract", "index", "serve"]
    write_demo_videos(tmp_path / "my-videos")
    (tmp_path / "my-videos" / "captions.jsonl").unlink()  # a folder without captions
    vidret = [sys.executable, "-m", "vidret"]
    for command in commands[:2]:
        subprocess.run(vidret + command[1:], cwd=tmp_path, env=dict(os.environ), check=True,
                       capture_output=True)  # fmt: skip
    with serving(commands[2][1:], cwd=tmp_path) as base:
        body = httpx.get(f"{base}/search", params={"q": "a red pattern", "k": 3}).json()
        assert len(body["results"]) == 3 and body["concepts"]
        health = httpx.get(f"{base}/health").json()
        assert health["model_run"] == "zero-shot (ImageNet concepts)"


def _vidret_commands(text: str) -> list[str]:
    """Every vidret command line the README shows: in code blocks, in the command
    table and inline (a `vidret VERB --option ...` span)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands += [line for line in block.splitlines() if "vidret " in line]
    commands += re.findall(r"`((?:\.venv/bin/)?vidret [a-z][^`]*)`", text)
    return commands


def test_readme_calls_vidret_one_way_and_every_command_exists() -> None:
    import typer.main

    from vidret.cli import app

    text = README.read_text()
    group = typer.main.get_command(app)
    checked = 0
    inline = set(re.findall(r"`(vidret [a-z][^`]*)`", text))
    for line in _vidret_commands(text):
        if "pip install" in line or "-m vidret" in line:
            continue
        words = line.split("#")[0].replace("\\|", "|").split()
        at = next(i for i, w in enumerate(words) if w.endswith("vidret"))
        command, rest = group, words[at + 1 :]
        while hasattr(command, "commands") and rest and rest[0] in command.commands:
            command, rest = command.commands[rest[0]], rest[1:]
        if not rest and line in inline:
            continue  # a command named in a sentence (`vidret eval`), not a call
        assert words[at] == ".venv/bin/vidret", f"call it as .venv/bin/vidret: {line}"
        assert not hasattr(command, "commands"), f"no such command: {line}"
        options = {opt for p in command.params for opt in p.opts + p.secondary_opts} | {"--help"}
        for word in rest:
            option = word.strip("[]").split("=")[0]
            if option.startswith("-"):
                assert option in options, f"{line}: {command.name} has no {option}"
        checked += 1
    assert checked >= 30, checked  # the README's commands were found


def test_markdown_tables_have_header_rows() -> None:
    root = README.parent
    for path in [README, root / "BENCHMARKS.md", *root.glob("docs/**/*.md")]:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            separator = re.fullmatch(r"\|( *:?-+:? *\|)+", line.strip())
            if separator and not (i > 0 and lines[i - 1].startswith("|")):
                raise AssertionError(f"{path.name}:{i + 1}: a table without a header row")
