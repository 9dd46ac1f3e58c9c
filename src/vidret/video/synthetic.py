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
) -> Path:
    import av

    colour, pattern = SCENES[scene]
    h, w = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(scene_frame(colour, pattern, t, h, w), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
