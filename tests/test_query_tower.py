"""The query side as one ONNX graph (`vidret.search.query_tower`): every backbone's graph
gives what its PyTorch query side gives, a graph that does not is refused, and a search
over such an index imports no PyTorch (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY
from vidret.config import load_config
from vidret.runs.query_encoder import QueryEncoder
from vidret.search import export_tower
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.search.export_tower import export_query_tower
from vidret.search.query_tower import TOKENIZER_FILE, TOWER_FILE, QueryTower
from vidret.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
QUERIES = ["a man is cooking pasta", "Two DOGS run on the beach!", "x " * 60]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidret.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("tower")
    return make_demo_dataset(root / "data", num_videos=40, captions_per_video=3, seed=0)


def _train(data: Path, folder: Path, config: str, *overrides: str) -> Path:
    cfg = load_config(REPO / "configs" / config, [*TINY, "train.epochs=1", *overrides])
    train(cfg, folder, data, progress=False)
    return folder


@pytest.mark.parametrize(
    "config, overrides",
    [
        ("meanpool-infonce.yaml", ()),
        ("ce-infonce.yaml", ()),  # two experts: per-expert vectors and caption weights
        ("mmt-infonce.yaml", ()),
        ("mmt-infonce.yaml", ("model.variant=compact",)),
        ("dual-infonce.yaml", ()),  # a GRU over tokens (packed sequences)
        ("amenet-infonce.yaml", ()),
        ("visern-infonce.yaml", ()),
        ("prota-infonce.yaml", ()),  # token features, rounded through float16
        ("meanpool-infonce.yaml", ("text.encoder=tokens",)),
    ],
)
def test_every_backbone_exports_its_query_side(
    data: Path, tmp_path: Path, config: str, overrides: tuple[str, ...]
) -> None:
    run = _train(data, tmp_path / "run", config, *overrides)
    out = tmp_path / "tower"
    out.mkdir()
    settings = export_query_tower(run, out)
    assert "fallback" not in settings, settings
    assert settings["max_difference"] <= export_tower.MAX_DIFFERENCE
    # checked here too, on other queries: one batch (padded) and one at a time
    reference = QueryEncoder(run, backend="torch")
    tower = QueryTower(out, settings)
    for batch in (QUERIES, QUERIES[:1], QUERIES[2:]):
        want, got = reference.embed_many(batch), tower.embed_many(batch)
        np.testing.assert_allclose(got.vectors, want.vectors.numpy(), atol=1e-4)
        np.testing.assert_allclose(got.weights, want.weights.numpy(), atol=1e-4)


def test_a_graph_that_differs_is_refused_and_search_falls_back(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _train(data, tmp_path / "run", "meanpool-infonce.yaml")
    monkeypatch.setattr(export_tower, "MAX_DIFFERENCE", 0.0)  # any rounding is too much
    out = tmp_path / "tower"
    out.mkdir()
    settings = export_query_tower(run, out)
    assert settings["fallback"].startswith("the exported graph differs from PyTorch by")
    assert not (out / TOWER_FILE).exists() and not (out / TOKENIZER_FILE).exists()

    index = tmp_path / "index"
    build_index(run, data, index, progress=False)
    info = json.loads((index / "index.json").read_text())
    assert "fallback" in info["model"]["query_tower"]
    assert not (index / TOWER_FILE).exists()
    monkeypatch.undo()
    tower_index = tmp_path / "tower-index"
    build_index(run, data, tower_index, progress=False)
    assert (tower_index / TOWER_FILE).is_file()
    # the PyTorch fallback and the graph rank alike
    for query in QUERIES:
        slow = SearchEngine(index).search(query, k=5).hits
        fast = SearchEngine(tower_index).search(query, k=5).hits
        assert [h.video_id for h in fast] == [h.video_id for h in slow]
        np.testing.assert_allclose([h.score for h in fast], [h.score for h in slow], atol=1e-5)


def test_fine_tuned_caption_models_fall_back_with_the_reason(data: Path, tmp_path: Path) -> None:
    run = _train(data, tmp_path / "run", "meanpool-infonce.yaml", "text.encoder=finetune")
    out = tmp_path / "tower"
    out.mkdir()
    assert export_query_tower(run, out) == {
        "fallback": "the model fine-tunes its own caption transformer (not exported)"
    }


NO_TORCH = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from vidret.cli import app
from vidret.search.server import create_app

index = sys.argv[1]
shell = CliRunner().invoke(app, ["search", index, "a red ball", "-k", "3", "--json"])
assert shell.exit_code == 0, shell.output
normalized = CliRunner().invoke(app, ["search", index, "a red ball", "--normalize", "qbnorm"])
assert normalized.exit_code == 0, normalized.output
client = TestClient(create_app(Path(index)))
api = client.get("/search", params={"q": "a red ball", "k": 3}).json()
page = client.get("/")
print(json.dumps({"torch": "torch" in sys.modules, "shell": json.loads(shell.stdout),
                  "api": api, "page": page.status_code}))
"""


def test_search_serve_and_the_page_import_no_torch(small_world: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(small_world["index"])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["torch"] is False
    assert out["page"] == 200
    shell = [r["video_id"] for r in out["shell"]["results"]]
    assert len(shell) == 3 and [r["video_id"] for r in out["api"]["results"]] == shell
