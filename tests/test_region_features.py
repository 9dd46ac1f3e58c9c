"""Region features: the dataset format's optional `<expert>.regions.npy`, `vidret extract
--regions N`, and every backbone trained, indexed and searched on videos with regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import TINY, clip_dataset
from vidret.batches.prepared import dataset_video_batch
from vidret.cli import app
from vidret.config import load_config
from vidret.data.dataset import VideoDataset
from vidret.data.validate import check_dataset
from vidret.errors import DatasetError, VidretError
from vidret.models.registry import BACKBONES
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.train.trainer import train
from vidret.video.decode import Sampling
from vidret.video.extract import extract_dataset
from vidret.video.frame_encoder import EfficientNetLite0, load_torch_model, preprocess
from vidret.video.synthetic import SCENES, write_video

REPO = Path(__file__).resolve().parents[1]


def _with_regions(root: Path, regions: int = 3, dim: int = 5, mask: bool = True) -> Path:
    clip_dataset(root)
    n, frames = np.load(root / "frames.npy").shape[:2]
    rng = np.random.default_rng(1)
    np.save(root / "frames.regions.npy", rng.standard_normal((n, frames, regions, dim)))
    if mask:
        real = np.ones((n, frames, regions), np.bool_)
        real[::2, :, -1] = False  # every other video: a frame holds one region fewer
        np.save(root / "frames.region_mask.npy", real)
    return root


def test_region_features_are_read_and_checked(tmp_path: Path) -> None:
    root = _with_regions(tmp_path / "d")
    dataset = VideoDataset.open(root)
    expert = dataset.experts["frames"]
    assert (expert.num_regions, expert.region_dim) == (3, 5)
    assert list(dataset.experts) == ["frames"]  # the region files are not experts
    report = check_dataset(root, progress=False)
    assert report.ok, report.problems
    assert report.summary["experts"]["frames"]["regions"] == [24, 6, 3, 5]

    batch = dataset_video_batch(dataset, ["frames"], np.array([5, 2]), ["frames"])
    assert batch.regions["frames"].shape == (2, 6, 3, 5)
    np.testing.assert_allclose(batch.regions["frames"][1], np.load(root / "frames.regions.npy")[2])
    assert batch.region_mask["frames"][1, :, -1].sum() == 0  # row 2: its last region masked
    assert "frames" not in dataset_video_batch(dataset, ["frames"], np.array([0])).regions


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (
            lambda r: np.save(r / "frames.regions.npy", np.zeros((24, 5, 3, 2))),
            "[24 videos, 6 frames",
        ),
        (lambda r: np.save(r / "frames.regions.npy", np.zeros((24, 6, 3))), "regions, dim"),
        (lambda r: np.save(r / "frames.regions.npy", np.zeros((24, 6, 3, 2), np.int8)), "float"),
        (lambda r: np.save(r / "frames.region_mask.npy", np.ones((24, 6, 3))), "bool"),
        (lambda r: np.save(r / "other.regions.npy", np.zeros((24, 6, 3, 2))), "without its expert"),
    ],
)
def test_bad_region_files_are_named(tmp_path: Path, write, expected: str) -> None:
    root = _with_regions(tmp_path / "d", mask=False)
    write(root)
    with pytest.raises(DatasetError) as info:
        VideoDataset.open(root)
    assert expected in str(info.value)


def test_region_mask_without_regions_and_nan_regions(tmp_path: Path) -> None:
    root = clip_dataset(tmp_path / "d")
    np.save(root / "frames.region_mask.npy", np.ones((24, 6, 3), np.bool_))
    with pytest.raises(DatasetError, match=r"region mask without frames\.regions\.npy"):
        VideoDataset.open(root)
    root = _with_regions(tmp_path / "e")
    regions = np.load(root / "frames.regions.npy")
    regions[7, 1, 2, 0] = np.nan
    np.save(root / "frames.regions.npy", regions)
    problems = [str(p) for p in check_dataset(root, progress=False).problems]
    assert any("frames.regions.npy" in p and "row 7 (video 'clip07'" in p for p in problems)


def test_grid_regions_are_the_pooled_feature_map() -> None:
    """Reference: the network's own 7 x 7 map, average-pooled by torch's adaptive pooling."""
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), np.uint8)
    net = load_torch_model(with_classifier=True)
    with torch.inference_mode():
        spatial = net.extract_features(torch.from_numpy(preprocess(frames)))
    want_cells = torch.nn.functional.adaptive_avg_pool2d(spatial, 3).flatten(2).transpose(1, 2)
    for backend in ("torch", "onnx"):
        pooled, cells = EfficientNetLite0(backend, regions=9).encode_regions(frames)
        assert cells.shape == (3, 9, 1280)
        np.testing.assert_allclose(cells, want_cells.numpy(), atol=2e-4)
        np.testing.assert_allclose(pooled, spatial.mean((2, 3)).numpy(), atol=2e-4)
    # cell 0 is the top-left of the map: rows 0..2, columns 0..2 (adaptive pooling of 7 to 3)
    np.testing.assert_allclose(cells[:, 0], spatial[:, :, :3, :3].mean((2, 3)).numpy(), atol=2e-4)
    with pytest.raises(VidretError, match="square number"):
        EfficientNetLite0("torch", regions=8)


@pytest.fixture(scope="module")
def region_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("regions")
    videos = root / "videos"
    lines = []
    for scene, (_, pattern) in SCENES.items():
        for k, seconds in enumerate((1.5, 2.0)):
            write_video(videos / f"{scene}-{k}.mp4", scene, seconds=seconds, size=(96, 128))
            lines += [
                {"file": f"{scene}-{k}.mp4", "caption": f"a {scene} pattern"},
                {"file": f"{scene}-{k}.mp4", "caption": f"{scene} {pattern} on black"},
            ]
    captions = root / "captions.jsonl"
    captions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    data = root / "data"
    result = CliRunner().invoke(
        app,
        [
            "extract",
            str(videos),
            "--out",
            str(data),
            "--captions",
            str(captions),
            "--frames",
            "6",
            "--regions",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    return {"root": root, "videos": videos, "data": data, "captions": captions}


def test_extract_regions_writes_a_checked_region_expert(region_videos: dict, tmp_path) -> None:
    data = region_videos["data"]
    dataset = VideoDataset.open(data)
    expert = dataset.experts["efficientnet_lite0"]
    assert expert.regions is not None and expert.regions.shape == (12, 6, 4, 1280)
    assert expert.region_mask is None  # a grid: every frame has all its cells
    assert check_dataset(data, progress=False).ok
    assert json.loads((data / "dataset.json").read_text())["extraction"]["regions"] == 4
    # the stored frame vector is the global mean of the map, not the mean of the cells
    # (exactly so when the cells tile the 7 x 7 map unequally); cells differ from each other
    cells = np.asarray(expert.regions[0, 0], np.float32)
    assert np.abs(cells - cells.mean(0)).max() > 1e-3
    # a re-run keeps every video and its regions; other --regions are refused
    before = np.load(data / "efficientnet_lite0.regions.npy")
    report = extract_dataset(
        region_videos["videos"], data, Sampling(frames=6), region_videos["captions"],
        EfficientNetLite0(regions=4), progress=False,
    )  # fmt: skip
    assert len(report.kept) == 12 and not report.added
    np.testing.assert_array_equal(np.load(data / "efficientnet_lite0.regions.npy"), before)
    with pytest.raises(VidretError, match="use the same options"):
        extract_dataset(region_videos["videos"], data, Sampling(frames=6),
                        encoder=EfficientNetLite0(regions=9), progress=False)  # fmt: skip


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_trains_indexes_and_searches_videos_with_regions(
    region_videos: dict, backbone: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cfg = load_config(
        None,
        [
            *TINY,
            f"model.backbone={backbone}",
            "data.split=all",
            "train.epochs=2",
            "train.batch_size=6",
            "model.max_frames=6",
        ],
    )
    train(cfg, run, region_videos["data"], progress=False)
    info = json.loads((run / "model.json").read_text())
    reads = backbone in ("visern", "amenet")
    assert info["signature"]["regions"] == ({"efficientnet_lite0": [4, 1280]} if reads else {})
    if reads:
        assert info["regions"] == {"efficientnet_lite0": "regions"}
    index = tmp_path / "index"
    build_index(run, region_videos["data"], index, progress=False)
    hits = SearchEngine(index).search("a red pattern", k=3).hits
    assert len(hits) == 3 and hits[0].score >= hits[-1].score


def test_region_model_refuses_data_without_its_regions(region_videos: dict, tmp_path) -> None:
    run = tmp_path / "run"
    cfg = load_config(
        None,
        [
            *TINY,
            "model.backbone=visern",
            "data.split=all",
            "train.epochs=1",
            "train.batch_size=6",
        ],
    )
    train(cfg, run, region_videos["data"], progress=False)
    plain = tmp_path / "plain"
    extract_dataset(region_videos["videos"], plain, Sampling(frames=6), progress=False)
    with pytest.raises(VidretError, match="extract with the same --regions"):
        build_index(run, plain, tmp_path / "index", progress=False)


def test_without_regions_a_frame_is_one_region_and_the_run_says_so(tmp_path: Path) -> None:
    data = clip_dataset(tmp_path / "d")
    run = tmp_path / "run"
    cfg = load_config(None, [*TINY, "model.backbone=amenet", "train.epochs=1", "data.sizes=16/4/4"])
    with pytest.warns(UserWarning, match="each frame is taken as one region"):
        train(cfg, run, data, progress=False)
    info = json.loads((run / "model.json").read_text())
    assert info["regions"] == {"frames": "frames"} and info["signature"]["regions"] == {}
