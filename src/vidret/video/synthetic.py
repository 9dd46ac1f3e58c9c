"""Real video files from generated frames (PyAV), for tests, benchmarks and trying things out.

Each scene is a colour and a pattern that drifts over time, so frames differ within a
video and a frame model sees colour and shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Scenes a caption can name: each is a colour and a pattern, drawn on every frame.
SCENES: dict[str, tuple[tuple[int, int, int], str]] = {
    "red": ((220, 30, 30), "stripes"),
    "green": ((30, 200, 60), "checks"),
    "blue": ((40, 60, 220), "circle"),
    "yellow": ((240, 220, 40), "stripes"),
    "purple": ((140, 40, 180), "checks"),
    "white": ((245, 245, 245), "circle"),
}


def scene_frame(colour: tuple[int, int, int], pattern: str, t: int, h: int, w: int) -> np.ndarray:
    """One RGB frame: the pattern in `colour` on black, drifting with the frame number."""
    y, x = np.mgrid[0:h, 0:w]
    if pattern == "stripes":
        mask = ((x + 3 * t) // 12) % 2 == 0
    elif pattern == "checks":
        mask = (((x + 2 * t) // 16) + (y // 16)) % 2 == 0
    else:
        mask = (x - w / 2 - t) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 3) ** 2
    frame = np.zeros((h, w, 3), np.uint8)
    frame[mask] = colour
    return frame


def write_video(
    path: Path,
    scene: str,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (96, 128),
    codec: str = "libx264",
    keyframe_every: int | None = None,
) -> Path:
    return write_scenes(path, [(scene, seconds)], fps, size, codec, keyframe_every)


def write_scenes(
    path: Path,
    scenes: list[tuple[str, float]],
    fps: int = 10,
    size: tuple[int, int] = (96, 128),
    codec: str = "libx264",
    keyframe_every: int | None = None,
) -> Path:
    """One video of several scenes in a row, each (scene, seconds): a long video whose
    moments are known. `keyframe_every` frames a keyframe (the encoder's default: 250
    for libx264)."""
    import av

    h, w = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if keyframe_every:
            stream.codec_context.gop_size = keyframe_every
        for scene, seconds in scenes:
            colour, pattern = SCENES[scene]
            for t in range(int(seconds * fps)):
                image = scene_frame(colour, pattern, t, h, w)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, "rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_demo_videos(
    folder: Path, clips_per_scene: int = 3, seed: int = 0, overwrite: bool = False
) -> Path:
    """A folder of generated clips (every scene, several sizes, lengths and codecs) and
    its `captions.jsonl`, to try `vidret extract` -> train -> index -> serve without
    videos of one's own. Returns the captions file. A folder that holds anything is
    refused unless `overwrite` (then the files of the same names are replaced)."""
    from vidret.errors import VidretError
    from vidret.io import write_jsonl_atomic

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise VidretError(f"{folder}: a file, not a folder; name a folder for the videos")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise VidretError(
            f"{folder} is not empty: its captions.jsonl and clips would be replaced; name a "
            "new folder, or pass --overwrite"
        )
    rng = np.random.default_rng(seed)
    sizes = [(96, 128), (120, 160), (144, 192)]
    lines = []
    for scene, (_, pattern) in SCENES.items():
        for clip in range(clips_per_scene):
            name = f"{scene}-{clip + 1}.{'webm' if clip % 3 == 2 else 'mp4'}"
            write_video(
                folder / name,
                scene,
                seconds=float(rng.uniform(1.5, 3.0)),
                fps=10,
                size=sizes[clip % len(sizes)],
                codec="libvpx-vp9" if name.endswith(".webm") else "libx264",
            )
            for text in (
                f"a {scene} pattern",
                f"{scene} {pattern} moving on a black background",
                f"a video of {pattern} in {scene}",
            ):
                lines.append({"file": name, "caption": text})
    captions = folder / "captions.jsonl"
    write_jsonl_atomic(captions, lines)
    return captions
