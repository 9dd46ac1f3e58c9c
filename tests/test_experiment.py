"""`vidret experiment`: variants x seeds, resumable, with results.json and results.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from helpers import TINY
from vidret.cli import app
from vidret.errors import VidretError
from vidret.experiments.results import results_table


def write_experiment(tmp_path: Path, data: Path) -> Path:
    base = {}
    for item in [*TINY, "train.epochs=2"]:
        key, value = item.split("=")
        section, name = key.split(".")
        base.setdefault(section, {})[name] = yaml.safe_load(value)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {
        "name": "tiny",
        "data": str(data),
        "base": str(tmp_path / "base.yaml"),
        "seeds": [0, 1],
        "variants": [
            {"name": "hard margin"},
            {"name": "InfoNCE", "set": {"loss.name": "infonce"}},
        ],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_experiment_runs_resumes_and_tabulates(tmp_path: Path, demo_dir: Path) -> None:
    spec = write_experiment(tmp_path, demo_dir)
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(
        app, ["experiment", str(spec), "--out", str(out), "--jobs", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 4
    assert {r["variant"] for r in results["runs"]} == {"hard margin", "InfoNCE"}
    assert all(r["config_hash"] and r["test"]["Rsum"] > 0 for r in results["runs"])
    assert all(r["code"].startswith("0.1.0") for r in results["runs"])  # which code made it
    table = (out / "results.md").read_text()
    assert "| InfoNCE | 2 |" in table and "paired t-test" in table and "**" in table
    # n = 2 seeds: the p-value is printed with its caveat; each variant says what it is
    assert "n = 2: too few seeds for a test)" in table
    assert f'- **InfoNCE**: `{tmp_path / "base.yaml"}`, setting loss.name="infonce"' in table
    assert f"- **hard margin**: `{tmp_path / 'base.yaml'}`, setting nothing" in table
    hashes = {r["variant"]: r["config_hash"] for r in results["runs"]}
    assert hashes["hard margin"] != hashes["InfoNCE"]

    # An interrupted run (checkpoint, no final metrics) is resumed; finished ones are kept.
    kept = (out / "hard-margin" / "seed0" / "test_metrics.json").stat().st_mtime_ns
    (out / "infonce" / "seed1" / "test_metrics.json").unlink()
    again = runner.invoke(app, ["experiment", str(spec), "--out", str(out)], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert (out / "hard-margin" / "seed0" / "test_metrics.json").stat().st_mtime_ns == kept
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 4

    shown = runner.invoke(app, ["report", str(out)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    for name in ("rsum.png", "validation_curves.png"):
        assert (out / "report" / name).read_bytes().startswith(b"\x89PNG"), name
    assert (out / "report" / "results.md").read_text() == table
    assert (out / "report" / "results.json").read_text() == (out / "results.json").read_text()
    one = runner.invoke(app, ["report", str(out / "infonce" / "seed0")], catch_exceptions=False)
    assert one.exit_code == 0 and (out / "infonce/seed0/report/training_curves.png").exists()
    # A run folder that is gone (a row merged from another experiment): curves without it.
    (out / "infonce" / "seed1").rename(tmp_path / "away")
    partial = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "partial")])
    assert partial.exit_code == 0, partial.output
    assert "1 run folder(s) are not here" in partial.output
    assert (tmp_path / "partial" / "validation_curves.png").exists()
    (tmp_path / "away").rename(out / "infonce" / "seed1")

    # The experiment file is edited: its finished runs no longer match and are not reused.
    edited = yaml.safe_load(spec.read_text())
    edited["variants"][1]["set"]["loss.temperature"] = 0.1
    spec.write_text(yaml.safe_dump(edited))
    stale = runner.invoke(app, ["experiment", str(spec), "--out", str(out)])
    assert stale.exit_code != 0  # `vidret` itself prints this as one error line, exit 2
    assert "2 run folder(s) were trained with other settings" in str(stale.exception)
    assert "infonce" in str(stale.exception)
    bad = runner.invoke(app, ["report", str(tmp_path)])
    assert "neither a run folder" in str(bad.exception)


def scored_run(variant: str, seed: int, rsum: float, part: str = "test", **more: int) -> dict:
    """A results.json run whose only differing number is its Rsum."""
    m = {"R@1": 1.0, "R@5": 2.0, "R@10": 3.0, "MdR": 4.0, "MnR": 5.0}
    return {"variant": variant, "seed": seed, part: {"t2v": m, "v2t": m, "Rsum": rsum}, **more}


# variant, seed (or fold), Rsum: b beats a by 5, 6 and 4
AB_RSUMS = [
    ("a", 0, 100),
    ("a", 1, 110),
    ("a", 2, 120),
    ("b", 0, 105),
    ("b", 1, 116),
    ("b", 2, 124),
]


def test_paired_difference_in_the_table() -> None:
    run = scored_run
    results = {
        "experiment": "x",
        "variants": ["a", "b"],
        "runs": [run(v, unit, rsum) for v, unit, rsum in AB_RSUMS],
    }
    table = results_table(results)
    assert "+5.0 (p = 0.0" in table  # differences 5, 6, 4: consistent, small p
    assert "**115.0 +- 9.5**" in table  # b has the best mean Rsum

    # A variant compared with another than the first (Table 6: CMGSD vs its own backbone).
    results["variants"].append("c")
    results["runs"] += [run("c", 0, 95), run("c", 1, 106), run("c", 2, 117)]
    results["compare_to"] = {"a": "a", "b": "a", "c": "b"}
    row_c = next(line for line in results_table(results).splitlines() if line.startswith("| c "))
    assert "| -9.0 (p = 0.012, n = 3) vs b |" in row_c  # 10, 10, 7 below b

    # Two references (objectives: each row against InfoNCE and against CMGSD): a column
    # each; a row with one reference leaves the second empty, results.json of older
    # versions (a string) still reads.
    results["compare_to"] = {"a": ["a"], "b": "a", "c": ["a", "b"]}
    table = results_table(results).splitlines()
    assert table[2].endswith("| Rsum vs (paired t-test) | Rsum vs (paired t-test 2) |")
    row_b = next(line for line in table if line.startswith("| b "))
    row_c = next(line for line in table if line.startswith("| c "))
    assert row_b.endswith("| +5.0 (p = 0.013, n = 3) vs a |  |")
    assert row_c.endswith("| -4.0 (p = 0.020, n = 3) vs a | -9.0 (p = 0.012, n = 3) vs b |")


def test_shipped_experiment_files_load() -> None:
    from vidret.experiments.spec import load_experiment

    files = sorted((Path(__file__).parents[1] / "configs" / "experiments").glob("*.yaml"))
    assert files
    # Tables 1-3 run on imported releases (the MMT/CE features), the rest on msrvtt-1k.
    imported = {"table1-msrvtt": "msrvtt-mmt", "table2-activitynet": "activitynet-mmt",
                "table3-lsmdc": "lsmdc-mmt"}  # fmt: skip
    for path in files:
        spec = load_experiment(path)  # every variant's config is validated here
        assert spec.variants and spec.data_path().name == imported.get(path.stem, "msrvtt-1k")
    assert set(imported) <= {p.stem for p in files}


def test_experiment_adds_test_time_normalization_rows(tmp_path: Path, demo_dir: Path) -> None:
    spec = write_experiment(tmp_path, demo_dir)
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["experiment", str(spec), "--out", str(out), "--normalize", "dual_softmax,qbnorm"]
    result = runner.invoke(app, [*args, "--jobs", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = out / "infonce" / "seed1"
    saved = json.loads((run / "test_normalized.json").read_text())
    assert saved["dual_softmax"]["normalization"] == {"method": "dual_softmax", "temperature": 0.1}
    # the experiment's numbers are what `vidret eval` gives for that run and setting
    for method in ("dual_softmax", "qbnorm"):
        shown = runner.invoke(app, ["eval", "--run", str(run), "--normalize", method, "--json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout) == saved[method]
    table = (out / "results.md").read_text()
    assert "| InfoNCE + QB-Norm | 2 |" in table and "| hard margin + dual softmax | 2 |" in table
    assert "vs InfoNCE |" in table  # a normalized row is tested against its own plain row
    assert "query bank from the run's training captions and videos" in table
    results = json.loads((out / "results.json").read_text())
    assert results["test_normalization"][1]["method"] == "qbnorm"
    assert all(set(r["test_normalized"]) == {"dual_softmax", "qbnorm"} for r in results["runs"])

    # Scored once: a second call keeps the file; another setting scores again.
    kept = (run / "test_normalized.json").stat().st_mtime_ns
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    assert (run / "test_normalized.json").stat().st_mtime_ns == kept
    edited = yaml.safe_load(spec.read_text())
    edited["test_normalization"] = [{"method": "dual_softmax", "temperature": 0.5}]
    spec.write_text(yaml.safe_dump(edited))
    assert runner.invoke(app, args[:4], catch_exceptions=False).exit_code == 0
    rescored = json.loads((run / "test_normalized.json").read_text())
    assert rescored["dual_softmax"]["normalization"]["temperature"] == 0.5
    bad = runner.invoke(app, [*args[:4], "--normalize", "softmax"])
    assert "choose dual_softmax or qbnorm" in str(bad.exception)


def test_normalized_rows_are_never_bold() -> None:
    m = {"R@1": 1.0, "R@5": 2.0, "R@10": 3.0, "MdR": 4.0, "MnR": 5.0}
    better = {"R@1": 9.0, "R@5": 9.0, "R@10": 9.0, "MdR": 1.0, "MnR": 1.0}
    results = {
        "experiment": "x",
        "variants": ["a"],
        "test_normalization": [{"method": "dual_softmax", "temperature": 0.01}],
        "runs": [
            {
                "variant": "a",
                "seed": s,
                "test": {"t2v": m, "v2t": m, "Rsum": 12.0 + s},
                "test_normalized": {"dual_softmax": {"t2v": better, "v2t": better, "Rsum": 54.0}},
            }
            for s in (0, 1)
        ],
    }
    lines = results_table(results).splitlines()
    normalized = next(line for line in lines if line.startswith("| a + dual softmax |"))
    assert "**" not in normalized and "54.0 +- 0.0" in normalized
    assert "**12.5 +- 0.7**" in next(line for line in lines if line.startswith("| a | 2 |"))


def test_paper_numbers_are_shown_beside_ours(tmp_path: Path, demo_dir: Path) -> None:
    from vidret.errors import VidretError
    from vidret.experiments.results import collect
    from vidret.experiments.spec import load_experiment

    spec_file = write_experiment(tmp_path, demo_dir)
    raw = yaml.safe_load(spec_file.read_text())
    raw["paper"] = {
        "source": "CMGSD paper, Table 4",
        "differs": "Their data is larger.",
        "rows": {"InfoNCE": [24.6, 54.0, 67.1, 4.0, 24.4, None, 67.8, 3.9, 293.9]},
    }
    spec_file.write_text(yaml.safe_dump(raw))
    spec = load_experiment(spec_file)
    results = collect(spec, tmp_path / "nothing-run-yet")
    table = results_table(results)
    assert "## The paper beside us: CMGSD paper, Table 4" in table
    assert "Their data is larger." in table
    assert "| InfoNCE | 24.6 | 54.0 | 67.1 | 4.0 | 24.4 | - | 67.8 | 3.9 | 293.9 |" in table
    raw["paper"]["rows"] = {"InfoNCE++": [1.0] * 9}
    spec_file.write_text(yaml.safe_dump(raw))
    with pytest.raises(VidretError, match="paper row 'InfoNCE\\+\\+' is not a variant"):
        load_experiment(spec_file)
    raw["paper"]["rows"] = {"InfoNCE": [1.0] * 8}
    spec_file.write_text(yaml.safe_dump(raw))
    with pytest.raises(VidretError, match="has 8 numbers; give 9"):
        load_experiment(spec_file)


def test_cross_validation_experiment(tmp_path: Path, demo_dir: Path) -> None:
    spec = write_experiment(tmp_path, demo_dir)
    out = tmp_path / "cv"
    args = ["experiment", str(spec), "--out", str(out), "--folds", "2", "--seeds", "0,1",
            "--split", "val", "--jobs", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["folds"] == 2 and len(results["runs"]) == 8  # 2 variants x 2 seeds x 2
    assert (out / "infonce" / "seed1-fold1" / "test_metrics.json").exists()
    # each fold validates on other videos; the test split is the same for both
    from vidret.batches.prepared import prepare_data
    from vidret.config import load_config
    from vidret.runs.folder import read_run_config

    data = [prepare_data(read_run_config(out / "infonce" / f"seed0-fold{f}"), demo_dir,
                         progress=False) for f in (0, 1)]  # fmt: skip
    assert not set(data[0].splits["val"]) & set(data[1].splits["val"])
    assert list(data[0].splits["test"]) == list(data[1].splits["test"])
    plain = prepare_data(load_config(tmp_path / "base.yaml"), demo_dir, progress=False)
    assert set(data[0].splits["val"]) | set(data[1].splits["val"]) == set(
        plain.splits["train"]
    ) | set(plain.splits["val"])
    # the table's number for a seed is the mean of its folds' validation Rsum
    table = (out / "results.md").read_text()
    assert "val split, mean over 2 folds, then mean +- std over seeds" in table
    runs = [r for r in results["runs"] if r["variant"] == "InfoNCE"]
    per_seed = [sum(r["val"]["Rsum"] for r in runs if r["seed"] == s) / 2 for s in (0, 1)]
    import statistics

    expected = f"{statistics.mean(per_seed):.1f} +- {statistics.stdev(per_seed):.1f}"
    row = next(line for line in table.splitlines() if line.startswith("| InfoNCE |"))
    assert expected in row, (expected, row)


def test_compare_to_names_variants(tmp_path: Path, demo_dir: Path) -> None:
    from vidret.experiments.spec import load_experiment

    path = write_experiment(tmp_path, demo_dir)
    spec = yaml.safe_load(path.read_text())
    spec["variants"].append({"name": "third", "compare_to": ["hard margin", "InfoNCE"]})
    path.write_text(yaml.safe_dump(spec))
    assert load_experiment(path).variants[2].references("hard margin") == ["hard margin", "InfoNCE"]
    spec["variants"][2]["compare_to"] = ["hard margin", "CMGSD"]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(VidretError, match="'third' compares to 'CMGSD', which is not a variant"):
        load_experiment(path)


def test_one_seed_with_folds_spreads_and_pairs_over_folds() -> None:
    def run(variant: str, fold: int, rsum: float) -> dict:
        return scored_run(variant, 0, rsum, part="val", fold=fold)

    results = {
        "experiment": "grid",
        "variants": ["a", "b"],
        "seeds": [0],
        "folds": 3,
        "runs": [run(v, unit, rsum) for v, unit, rsum in AB_RSUMS],
    }
    table = results_table(results, part="val")
    assert "mean +- std over 3 folds (one seed; tests paired by fold)" in table
    assert "| variant | folds |" in table
    assert "| b | 3 |" in table and "**115.0 +- 9.5**" in table  # the folds' spread
    assert "+5.0 (p = 0.013, n = 3)" in table  # paired fold by fold: 5, 6, 4
    results["seeds"] = [0, 1]  # several seeds: folds are averaged into each seed's number
    assert "mean over 3 folds, then mean +- std over seeds" in results_table(results, "val")


def test_fusion_row_fuses_each_seeds_runs(tmp_path: Path, demo_dir: Path) -> None:
    """A `fuse:` row trains nothing: each seed's runs of the named variants are fused with
    weights chosen on that seed's validation split, tested against its first member."""
    from vidret.eval.fusion import fuse_runs
    from vidret.eval.metrics import retrieval_metrics
    from vidret.experiments.spec import load_experiment

    path = write_experiment(tmp_path, demo_dir)
    spec = yaml.safe_load(path.read_text())
    spec["variants"].append({"name": "fused", "fuse": ["hard margin", "InfoNCE"],
                             "compare_to": "InfoNCE"})  # fmt: skip
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["experiment", str(path), "--out", str(out), "--jobs", "2"],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    fused = [r for r in results["runs"] if r["variant"] == "fused"]
    assert len(results["runs"]) == 6 and [r["seed"] for r in fused] == [0, 1]
    assert not (out / "fused" / "seed0").exists()  # nothing trained for it
    for r in fused:
        fusion, S, c2v = fuse_runs([out / "hard-margin" / f"seed{r['seed']}",
                                    out / "infonce" / f"seed{r['seed']}"], None)  # fmt: skip
        assert r["fusion"]["weights"] == [round(w, 4) for w in fusion.weights]
        assert r["test"]["Rsum"] == pytest.approx(retrieval_metrics(S, c2v)["Rsum"])
    table = (out / "results.md").read_text()
    assert "| fused | 2 |" in table and "the runs of *hard margin* + *InfoNCE* fused" in table
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0

    for bad, message in [
        ({"name": "f", "fuse": ["hard margin", "nope"]}, "'nope' is not a trained variant"),
        ({"name": "f", "fuse": ["hard margin"]}, "at least two different variants"),
        ({"name": "f", "fuse": ["hard margin", "InfoNCE"], "set": {"loss.margin": 0.1}},
         "trains nothing"),
        ({"name": "f", "fuse": ["hard margin", "InfoNCE"], "fuse_weights": [1.0]},
         "fuse_weights needs 2"),
    ]:  # fmt: skip
        spec["variants"][2] = bad
        path.write_text(yaml.safe_dump(spec))
        with pytest.raises(VidretError, match=message):
            load_experiment(path)


def test_merge_rows_adds_another_experiments_variant(tmp_path: Path) -> None:
    """benchmarks/merge_rows.py: a variant's runs copied from another results.json (same
    data and seeds) into a table, with its paired test; other data is refused."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from merge_rows import merge_rows

    def results(variants: list[str], rsums: dict[str, list[float]], data: str = "d") -> dict:
        runs = [scored_run(v, s, r) for v, rs in rsums.items() for s, r in enumerate(rs)]
        return {"experiment": "x", "data": data, "seeds": [0, 1, 2], "folds": 0,
                "variants": variants, "compare_to": {}, "runs": runs}  # fmt: skip

    target = tmp_path / "target"
    target.mkdir()
    (target / "results.json").write_text(json.dumps(results(["a"], {"a": [100, 110, 120]})))
    source = tmp_path / "source.json"
    source.write_text(json.dumps(results(["b"], {"b": [105, 116, 124]})))
    merge_rows(source, target, "b", ["a"], as_name="b (other experiment)")
    merged = json.loads((target / "results.json").read_text())
    assert merged["variants"] == ["a", "b (other experiment)"]
    assert len(merged["runs"]) == 6
    row = next(line for line in (target / "results.md").read_text().splitlines()
               if line.startswith("| b (other experiment) |"))  # fmt: skip
    assert "+5.0 (p = " in row and "n = 3" in row
    assert "(runs from)" in (target / "results.md").read_text()  # where the rows came from
    # the other way round: the target's own row "a" tested against a copied reference "c"
    source.write_text(json.dumps(results(["c"], {"c": [90, 95, 100]})))
    merge_rows(source, target, "c", [], as_name="c", compared_by=["a"])
    row = next(line for line in (target / "results.md").read_text().splitlines()
               if line.startswith("| a |"))  # fmt: skip
    assert "+15.0 (p = " in row and "vs c" in row
    with pytest.raises(SystemExit, match="no variant 'nope'"):
        merge_rows(source, target, "c", [], as_name="c", compared_by=["nope"])
    source.write_text(json.dumps(results(["b"], {"b": [1, 2, 3]}, data="elsewhere")))
    with pytest.raises(SystemExit, match="other data"):
        merge_rows(source, target, "b", [])
