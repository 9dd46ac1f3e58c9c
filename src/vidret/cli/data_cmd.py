"""`vidret data ...`: check, generate, import and split dataset folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vidret.data.splits import SPLIT_PARTS, parse_split_sizes, random_split
from vidret.io import require_folder_or_nothing
from vidret.json_output import dumps

data_app = typer.Typer(no_args_is_help=True)  # its help, listing the commands, is set below


@data_app.command("check")
def check(
    folder: Annotated[Path, typer.Argument(help="dataset folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Validate a dataset folder and print a summary; exit 1 listing every problem."""
    from vidret.data.validate import check_dataset

    report = check_dataset(folder, progress=not as_json)
    if as_json:
        typer.echo(
            dumps({**report.summary, "problems": [str(p) for p in report.problems]}, indent=2)
        )
    else:
        typer.echo(format_summary(report.summary))
    if report.problems:
        typer.secho(f"\n{len(report.problems)} problem(s):", fg=typer.colors.RED, err=True)
        for p in report.problems:
            typer.echo(f"  {p}", err=True)
        raise typer.Exit(1)
    if not as_json:
        typer.secho("OK: no problems found", fg=typer.colors.GREEN)


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"dataset:  {s['root']}" + (f"  ({s['name']})" if s.get("name") else "")]
    if s.get("generated"):
        lines.append("          generated data, not real videos")
    lines.append(f"videos:   {s['videos']}")
    per = s.get("captions_per_video")
    per_text = (
        f"  (per video min {per['min']} / mean {per['mean']:.2f} / max {per['max']})" if per else ""
    )
    lines.append(f"captions: {s['captions']}{per_text}")
    if s.get("moments"):
        m = s["moments"]
        lines.append(f"moments:  {m['captions']} captions with spans (mean {m['mean_seconds']} s)")
    lines.append("experts:")
    for name, e in s["experts"].items():
        extra = []
        if e["variable_length"]:
            extra.append("variable length")
        if e["missing_videos"]:
            extra.append(f"missing for {e['missing_videos']} videos")
        note = f"  ({', '.join(extra)})" if extra else ""
        lines.append(f"  {name:<16} {e['dtype']:<8} [{', '.join(map(str, e['shape']))}]{note}")
    if not s["experts"]:
        lines.append("  (none readable)")
    if s.get("categories"):
        cats = s["categories"]
        top = ", ".join(f"{c} {n}" for c, n in list(cats.items())[:5])
        lines.append(f"categories: {len(cats)}  (largest: {top})")
    if s.get("splits"):
        lines.append(
            "splits:   "
            + ", ".join(
                f"{k} ({v['videos']} videos, {v['captions']} captions)"
                for k, v in s["splits"].items()
            )
        )
    return "\n".join(lines)


@data_app.command("demo")
def demo(
    folder: Annotated[Path, typer.Argument(help="where to write the generated dataset")],
    videos: Annotated[int, typer.Option(help="number of videos")] = 300,
    captions: Annotated[int, typer.Option(help="captions per video")] = 10,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing folder")
    ] = False,
) -> None:
    """Generate the demo dataset: scenes with near-duplicates, shared and unrelated topics."""
    from vidret.data.demo import make_demo_dataset

    make_demo_dataset(
        folder, num_videos=videos, captions_per_video=captions, seed=seed, overwrite=overwrite
    )
    typer.echo(
        f"wrote generated demo dataset to {folder} ({videos} videos, {videos * captions} captions)"
    )


@data_app.command("demo-videos")
def demo_videos(
    folder: Annotated[Path, typer.Argument(help="where to write the video files")],
    clips: Annotated[int, typer.Option(help="clips per scene (6 scenes)")] = 3,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="write into a folder that is not empty (same names replaced)"
        ),
    ] = False,
) -> None:
    """Write short generated video files and their captions.jsonl, to try search."""
    from vidret.video.synthetic import write_demo_videos

    captions = write_demo_videos(folder, clips_per_scene=clips, overwrite=overwrite)
    typer.echo(f"wrote {6 * clips} generated video files to {folder}, captions in {captions}")


@data_app.command("moments")
def moments(
    src: Annotated[Path, typer.Argument(help="a clip dataset folder with real features")],
    dst: Annotated[Path, typer.Argument(help="the moment dataset folder to write")],
    clips: Annotated[int, typer.Option(help="clips placed one after another per long video")] = 4,
    seed: Annotated[int, typer.Option(help="which clips go together")] = 0,
    split_seed: Annotated[
        int, typer.Option(help="SRC's train/val/test split, as training's data.seed")
    ] = 0,
) -> None:
    """Build a moment benchmark: long videos of K clips, each clip's captions as moments."""
    from vidret.data.moment_benchmark import build_moment_dataset, describe

    counts = build_moment_dataset(src, dst, clips=clips, seed=seed, split_seed=split_seed)
    typer.echo(f"{dst}: {describe(counts)} (splits follow {src}'s videos)")


@data_app.command("import-mmt")
def import_mmt_command(
    src: Annotated[Path, typer.Argument(help="folder of an MMT / Collaborative-Experts release")],
    dst: Annotated[Path, typer.Argument(help="dataset folder to write")],
    dataset: Annotated[str, typer.Option(help="msrvtt, activitynet or lsmdc")] = "msrvtt",
    paragraphs: Annotated[
        bool | None,
        typer.Option(
            "--paragraphs/--no-paragraphs",
            help="join a video's captions into one paragraph (default: on for activitynet)",
        ),
    ] = None,
    max_frames: Annotated[int, typer.Option(help="keep at most this many frames per expert")] = 64,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing folder")
    ] = False,
) -> None:
    """Import an MMT or Collaborative-Experts feature release into a dataset folder.

    Two layouts: MMT's one HDF5 file per video (vid_feat_files/mult_h5/<c1>/<c2>/<c3>/ID.h5,
    every expert with its times, captions from raw_captions.<i>), or CE's pickles (one
    per expert, raw-captions*.pkl, aggregated_text_feats/). The protocols' split lists
    become named splits."""
    from vidret.data.import_mmt import import_mmt

    report = import_mmt(
        src, dst, dataset=dataset, paragraphs=paragraphs, max_frames=max_frames, overwrite=overwrite
    )
    typer.echo(f"imported {report.videos} videos, {report.captions} captions into {dst}")
    for name, e in report.experts.items():
        typer.echo(
            f"  expert {name}: dim {e['dim']}, up to {e['frames']} frames, "
            f"{e['videos_with_features']} videos with features"
        )
    for name, n in report.splits.items():
        typer.echo(f"  split {name}: {n} videos")
    for note in report.skipped:
        typer.secho(f"  skipped: {note}", fg=typer.colors.YELLOW)


@data_app.command("split")
def split(
    folder: Annotated[Path, typer.Argument(help="dataset folder")],
    sizes: Annotated[
        str,
        typer.Argument(help="train/val/test counts or fractions, e.g. 600/100/100 or 0.8/0.1/0.1"),
    ],
    seed: Annotated[int, typer.Option(help="split seed")] = 0,
    write: Annotated[
        bool, typer.Option("--write", help="save as splits/<prefix>train.txt etc.")
    ] = False,
    prefix: Annotated[str, typer.Option(help="file name prefix with --write or --out")] = "",
    list_: Annotated[
        bool, typer.Option("--list", help="print every video: one 'part<TAB>video_id' a line")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="write <prefix>train.txt, val.txt, test.txt to this folder instead"),
    ] = None,
) -> None:
    """Make a seeded random split (the same on every machine); print or save it."""
    from vidret.data.dataset import VideoDataset
    from vidret.data.format import SPLITS_DIR

    ds = VideoDataset.open(folder)
    parts = random_split(ds.video_ids, parse_split_sizes(sizes), seed)
    if list_:
        for part in SPLIT_PARTS:
            for video in parts[part]:
                typer.echo(f"{part}\t{video}")
    else:
        for part in SPLIT_PARTS:
            first = ", ".join(parts[part][:3])
            typer.echo(f"{part}: {len(parts[part])} videos (first: {first}; --list prints all)")
    targets = ([Path(folder) / SPLITS_DIR] if write else []) + ([out] if out else [])
    from vidret.io import atomic_open

    for target in targets:
        require_folder_or_nothing(target)
        for part in SPLIT_PARTS:
            with atomic_open(target / f"{prefix}{part}.txt") as f:
                f.write("\n".join(parts[part]) + "\n")
        typer.echo(f"saved to {target}", err=list_)


data_app.info.help = (
    "Dataset folders: " + ", ".join(str(c.name) for c in data_app.registered_commands) + "."
)
