"""`vidret extract`: frame features of a folder of video files, as a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidret.errors import VidretError


def extract_command(
    video_dir: Annotated[Path, typer.Argument(help="folder of video files (searched recursively)")],
    out: Annotated[Path, typer.Option(help="dataset folder to write (re-run: adds new videos)")],
    frames: Annotated[
        int | None, typer.Option(help="frames per video, evenly spaced (default: 16; or --fps)")
    ] = None,
    fps: Annotated[
        float | None, typer.Option(help="frames per second instead (capped by --max-frames)")
    ] = None,
    max_frames: Annotated[int, typer.Option(help="most frames per video with --fps")] = 64,
    captions: Annotated[
        Path | None,
        typer.Option(help='JSONL of {"file": "clip.mp4", "caption": "..."}: makes a training set'),
    ] = None,
    backend: Annotated[str, typer.Option(help="frame encoder runtime: onnx or torch")] = "onnx",
    regions: Annotated[
        int,
        typer.Option(
            help="also N region features a frame: grid cells of the frame's feature map "
            "(N = 4, 9, 16, ...; for the visern and amenet backbones)",
            min=0,
        ),
    ] = 0,
    commit_every: Annotated[
        int, typer.Option(help="write the dataset after this many new videos")
    ] = 500,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="decode and embed on Ray Data (a local Ray, or --ray-address's cluster)",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(help="with --ray: a cluster's address (ray://HOST:10001 or HOST:6379)"),
    ] = None,
    ray_workers: Annotated[
        int, typer.Option(help="with --ray: frame-encoder actors (one CPU each)", min=1)
    ] = 2,
) -> None:
    """Decode videos, embed sampled frames with EfficientNet-Lite0, write a dataset folder.

    Unreadable or empty files are reported and skipped. The folder is replaced whole,
    never left half-written; run it again to add only new or changed videos.
    """
    from vidret.video.decode import Sampling
    from vidret.video.extract import extract_dataset
    from vidret.video.frame_encoder import EfficientNetLite0

    if frames is not None and fps is not None:
        raise VidretError("give --frames or --fps, not both")
    if ray_address is not None and not ray:
        raise VidretError("--ray-address is for --ray: add --ray")
    if (frames is not None and frames < 1) or (fps is not None and fps <= 0) or max_frames < 1:
        raise VidretError("--frames, --fps and --max-frames must be positive")
    sampling = Sampling(frames=None if fps else (frames or 16), fps=fps, max_frames=max_frames)
    report = extract_dataset(
        video_dir,
        out,
        sampling,
        captions,
        EfficientNetLite0(backend, regions=regions),  # type: ignore[arg-type]
        commit_every=max(1, commit_every),
        ray_address=(ray_address or "local") if ray else None,
        ray_workers=ray_workers,
    )
    typer.echo(
        f"{out}: {len(report.added)} video(s) added, {len(report.kept)} kept, "
        f"{len(report.removed)} removed (file gone), {len(report.skipped)} skipped"
    )
    if report.frames:
        typer.echo(
            f"embedded {report.frames} frames in {report.seconds:.1f} s "
            f"({report.frames_per_second:.0f} frames/s)"
        )
    for file, reason in report.skipped:
        typer.secho(f"skipped {file}: {reason}", fg=typer.colors.YELLOW, err=True)
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
