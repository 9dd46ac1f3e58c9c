"""What a new user reads first: every help text, whole and listing what there is."""

from __future__ import annotations

import inspect
from pathlib import Path

from typer.testing import CliRunner

from vidret.cli import app
from vidret.cli.data_cmd import data_app
from vidret.losses.registry import OBJECTIVES
from vidret.models.registry import BACKBONES


def _commands() -> list[tuple[str, object]]:
    named = [(c.name or "", c.callback) for c in app.registered_commands]
    named += [(f"data {c.name}", c.callback) for c in data_app.registered_commands]
    return named


def test_help_texts_have_no_hard_line_breaks() -> None:
    """A line break inside a summary or an option's help is kept by the terminal renderer
    and shows as a broken wrap; paragraphs must be single lines for it to re-flow."""
    for name, callback in _commands():
        summary = (inspect.getdoc(callback) or "").split("\n\n")[0]
        assert summary and "\n" not in summary, f"vidret {name}: summary {summary!r}"
        for parameter in inspect.signature(callback).parameters.values():
            for meta in getattr(parameter.annotation, "__metadata__", ()):
                text = getattr(meta, "help", None) or ""
                assert "\n" not in text, f"vidret {name} {parameter.name}: {text!r}"


def test_help_shows_what_a_user_types() -> None:
    """Flags carry no type label (`--json <bool>` read as taking a value), the usage line
    names arguments as they are typed (`INDEX QUERY`, not `{index} {query}`), -k is -k,
    every switch that is off by default is one flag (no `--no-x`), and --version works."""
    runner = CliRunner()
    commands = [name.split() for name, _ in _commands()]
    for words in [[], ["data"], *commands]:
        shown = runner.invoke(app, [*words, "--help"], terminal_width=200).stdout
        assert "<bool>" not in shown, words
        assert "--no-" not in shown.replace("--no-paragraphs", ""), words
        usage = next(line for line in shown.splitlines() if "Usage:" in line)
        assert "{" not in usage, usage
    search = runner.invoke(app, ["search", "--help"], terminal_width=200).stdout
    assert "vidret search [OPTIONS] INDEX QUERY" in search
    assert "--k" not in search and " -k " in search
    extract = runner.invoke(app, ["extract", "--help"], terminal_width=200).stdout
    assert "(default: 16; or --fps)" in extract
    importer = " ".join(runner.invoke(app, ["data", "import-mmt", "--help"],
                                      terminal_width=200).stdout.split())  # fmt: skip
    assert "HDF5" in importer and "pickles" in importer
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("vidret ")


def test_data_help_lists_every_subcommand() -> None:
    shown = CliRunner().invoke(app, ["data", "--help"], terminal_width=200).stdout
    summary = next(line for line in shown.splitlines() if "Dataset folders:" in line)
    for command in data_app.registered_commands:
        assert f" {command.name}," in summary or f" {command.name}." in summary, summary


def test_train_help_lists_backbones_objectives_and_configs() -> None:
    shown = CliRunner().invoke(app, ["train", "--help"], terminal_width=300).stdout
    flat = " ".join(shown.split())
    for backbone in BACKBONES:
        assert backbone in flat.split("Backbones")[1].split("Objectives")[0]
    for objective in OBJECTIVES:
        assert objective in flat.split("Objectives")[1]
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs and all(p.name in flat for p in configs)


def test_data_split_prints_and_writes_the_whole_lists(demo_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    splits = sorted((demo_dir / "splits").glob("*.txt"))
    before = {p.name: p.read_text() for p in splits}
    listed = runner.invoke(app, ["data", "split", str(demo_dir), "80/20/20", "--list"])
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [r[0] for r in rows] == ["train"] * 80 + ["val"] * 20 + ["test"] * 20
    assert len({r[1] for r in rows}) == 120  # every video once
    out = tmp_path / "lists"
    written = runner.invoke(app, ["data", "split", str(demo_dir), "80/20/20", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert (out / "val.txt").read_text().split() == [r[1] for r in rows if r[0] == "val"]
    after = {p.name: p.read_text() for p in sorted((demo_dir / "splits").glob("*.txt"))}
    assert after == before  # the dataset's own split files are left alone
    blocked = tmp_path / "file"
    blocked.write_text("")
    bad = runner.invoke(app, ["data", "split", str(demo_dir), "80/20/20", "--out", str(blocked)])
    assert bad.exit_code != 0 and "a file, not a folder" in str(bad.exception)


def test_every_command_has_help() -> None:
    for name, _ in _commands():
        shown = CliRunner().invoke(app, [*name.split(), "--help"])
        assert shown.exit_code == 0 and "Usage:" in shown.stdout, name


def test_help_imports_no_torch() -> None:
    """`vidret --help` and a command's help start in well under a second: no PyTorch import
    (the train help's list of backbones and objectives loads it, when it is shown)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vidret.cli import app\n"
        "for words in ([], ['search'], ['index'], ['serve'], ['eval']):\n"
        "    assert CliRunner().invoke(app, [*words, '--help']).exit_code == 0\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"
    shown = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).stdout
    assert all(name in shown for name in (*BACKBONES, *OBJECTIVES))
