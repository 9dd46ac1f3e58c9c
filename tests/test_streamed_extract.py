"""Long videos: frames are decoded and embedded in chunks, never held whole, so `--fps`
with a large `--max-frames` extracts a long file in bounded memory."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.video import embed as extract_module
from vidret.video.decode import CHUNK_FRAMES, MAX_FRAMES, Sampling, read_frames, stream_frames
from vidret.video.extract import extract_dataset
from vidret.video.synthetic import write_scenes


class MeanColour:
    """A frame 'encoder' of three numbers (mean R, G, B), fast enough for long videos;
    it records the largest batch it was given."""

    name, dim, size = "colour", 3, 32

    def __init__(self) -> None:
        self.largest = 0

    def encode(self, frames: np.ndarray) -> np.ndarray:
        self.largest = max(self.largest, len(frames))
        return frames.reshape(len(frames), -1, 3).mean(1) / 255


def test_chunks_are_the_frames_read_at_once(tmp_path: Path) -> None:
    video = write_scenes(tmp_path / "v.mp4", [("red", 2.0), ("blue", 2.0)], fps=10, size=(32, 32))
    sampling = Sampling(frames=None, fps=5, max_frames=100)
    whole = read_frames(video, sampling, size=32)
    chunks = list(stream_frames(video, sampling, size=32, chunk=3))
    assert [len(frames) for _, frames, _ in chunks] == [3, 3, 3, 3, 3, 3, 2]
    assert np.array_equal(np.concatenate([f for _, f, _ in chunks]), whole.frames)
    assert np.array_equal(np.concatenate([t for _, _, t in chunks]), whole.times)
    assert chunks[0][0].frames == 20 and whole.duration == pytest.approx(4.0, abs=0.2)


def test_more_frames_than_the_old_cap_in_bounded_chunks(tmp_path: Path) -> None:
    # 11 minutes at 2 frames/s: 1,320 frames, beyond --frames' cap of 1,024
    scenes = [("red", 330.0), ("blue", 330.0)]
    write_scenes(tmp_path / "videos" / "long.mp4", scenes, fps=2, size=(32, 32))
    encoder = MeanColour()
    sampling = Sampling(frames=None, fps=2, max_frames=2000)
    report = extract_dataset(tmp_path / "videos", tmp_path / "data", sampling, encoder=encoder,
                             progress=False)  # fmt: skip
    assert report.frames == 1320 > MAX_FRAMES
    assert encoder.largest <= CHUNK_FRAMES  # never the whole video at once
    data = VideoDataset.open(tmp_path / "data")
    colours = np.asarray(data.experts["colour"].features[0, :1320], np.float32)
    times = np.asarray(data.videos[0]["frame_times"])
    assert len(times) == 1320 and np.all(np.diff(times) >= 0) and times[-1] > 659
    red, blue = colours[times < 329], colours[times > 331]
    # each frame's colour comes from its own time (patterns drift; some frames are dark)
    assert red[:, 0].mean() > 3 * red[:, 2].mean() and blue[:, 2].mean() > 3 * blue[:, 0].mean()
    assert (red[:, 0] >= red[:, 2]).all() and (blue[:, 2] >= blue[:, 0]).all()


def test_decoding_runs_at_most_a_few_chunks_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, lock = [0], threading.Lock()

    def fake_stream(path: Path, sampling: Sampling, size: int):
        for i in range(50):
            with lock:
                made[0] += 1
            yield (None, np.zeros((1, 1)), np.array([float(i)]))

    monkeypatch.setattr(extract_module, "stream_frames", fake_stream)
    ahead = []
    for n, _ in enumerate(extract_module._decoded_chunks([tmp_path / "a"], Sampling(), 8)):
        with lock:
            ahead.append(made[0] - n - 1)
    # waiting in the queue, plus one blocked in put: never more
    assert max(ahead) <= extract_module.AHEAD_CHUNKS + 1
    assert len(ahead) == 51  # 50 chunks, then the file's end


def test_max_frames_is_checked() -> None:
    with pytest.raises(VidretError, match="--max-frames 100000"):
        Sampling(frames=None, fps=1, max_frames=100_000)
    with pytest.raises(VidretError, match="--frames 2000"):
        Sampling(frames=2000)


@pytest.mark.parametrize(
    ("name", "codec", "keyframe_every", "seeks_kept"),
    [
        ("short-gop.mp4", "libx264", 20, True),  # a keyframe every 2 s: seeks all the way
        ("mid-gop.mp4", "libx264", 50, True),  # every 5 s: lands 0-5 s before each target
        ("sparse-gop.mp4", "libx264", 400, False),  # 40 s apart: a seek lands behind, stops
        ("short-gop.webm", "libvpx-vp9", 20, True),
    ],
)
def test_seeking_to_keyframes_gives_the_frames_of_decoding_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, codec: str,
    keyframe_every: int, seeks_kept: bool,
) -> None:  # fmt: skip
    from vidret.video import decode

    # 3 minutes of 18 scenes (every frame drifts, so a frame off by one differs), 16
    # frames sampled: targets 11 s apart, more than the 2 s after which decoding seeks.
    scenes = [(s, 10.0) for s in ["red", "green", "blue", "yellow", "purple", "white"] * 3]
    video = write_scenes(tmp_path / name, scenes, fps=10, size=(32, 48), codec=codec,
                         keyframe_every=keyframe_every)  # fmt: skip
    seeks: list[bool] = []
    real_seek = decode._seek

    def counted(*args: object) -> tuple:
        decoded, go_on = real_seek(*args)  # type: ignore[arg-type]
        seeks.append(go_on)
        return decoded, go_on

    monkeypatch.setattr(decode, "_seek", counted)
    sampling = Sampling(frames=16)
    through = read_frames_with(video, sampling, seek_gap=None)
    assert seeks == []
    jumped = read_frames_with(video, sampling, seek_gap=decode.SEEK_GAP_SECONDS)
    assert seeks and all(seeks) == seeks_kept
    if not seeks_kept:
        assert seeks == [False]  # one seek that landed behind, then front to back
    np.testing.assert_array_equal(jumped[1], through[1])  # the same times
    np.testing.assert_array_equal(jumped[0], through[0])  # and the same pixels


def read_frames_with(video: Path, sampling: Sampling, seek_gap: float | None) -> tuple:
    chunks = list(stream_frames(video, sampling, size=32, seek_gap=seek_gap))
    return np.concatenate([f for _, f, _ in chunks]), np.concatenate([t for _, _, t in chunks])
