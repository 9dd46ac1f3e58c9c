"""`vidret index`: embed a dataset's videos with a trained model into a FAISS index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidret.search.concept_settings import DEFAULT_POOLING, DEFAULT_TOP


def index_command(
    data: Annotated[Path, typer.Option(help="dataset folder of the videos to index")],
    out: Annotated[Path, typer.Option(help="index folder to write")],
    run: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="<path>",
            help="a trained run folder (or --zero-shot); repeated: one index of the runs' "
            "fused scores (single-vector models; weights from --weights)",
        ),
    ] = None,
    weights: Annotated[
        str,
        typer.Option(
            help="with several --run: 'auto' (chosen on the runs' validation split) or w1,w2,..."
        ),
    ] = "auto",
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot",
            help="no trained model: videos by their ImageNet concepts (frames from "
            "`vidret extract`), queries mapped to concepts by Sentence-BERT",
        ),
    ] = False,
    pooling: Annotated[
        str, typer.Option(help="--zero-shot: a video's concept evidence: max, mean or top3")
    ] = DEFAULT_POOLING,
    top: Annotated[
        int, typer.Option(help="--zero-shot: concepts a query is mapped to", min=1, max=1000)
    ] = DEFAULT_TOP,
    crops: Annotated[
        bool,
        typer.Option(
            "--crops",
            help="--zero-shot: a frame's concepts are the best over it and its regions "
            "(small objects; needs `vidret extract --regions 9`)",
        ),
    ] = False,
    segment_seconds: Annotated[
        float | None,
        typer.Option(
            help="long videos: index windows of this many seconds (every half of it), so "
            "a search returns moments (video, start, end)",
        ),
    ] = None,
    fuse: Annotated[
        float,
        typer.Option(
            help="with --run: score = (1 - W) x the model's + W x the zero-shot concepts' "
            "(a model trained on `vidret extract` features; 0: off; below 1)",
        ),
    ] = 0.0,
    kind: Annotated[
        str,
        typer.Option(
            help="flat (exact), flat16 (exact scan, half precision), hnsw or ivf (approximate)"
        ),
    ] = "flat",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing index folder")
    ] = False,
    query_bank: Annotated[
        int,
        typer.Option(
            help="training captions in the query bank for `search --normalize` (0: none)",
            min=0,
        ),
    ] = 2000,
    query_tower: Annotated[
        str,
        typer.Option(
            help="the stored query graph (search without PyTorch): fp32 (as PyTorch "
            "computes) or int8 (about 2x faster a query, a small retrieval cost: BENCHMARKS)"
        ),
    ] = "fp32",
) -> None:
    """Build an index folder (--out): video vectors, metadata and the model, atomically."""
    from vidret.errors import VidretError
    from vidret.search.build_index import build_index
    from vidret.search.zero_shot_index import build_zero_shot_index

    if crops and not zero_shot:
        raise VidretError("--crops belongs to --zero-shot indexes (concepts per frame region)")
    if run and len(run) > 1:
        _fused_index(run, data, out, weights, kind, overwrite, fuse, segment_seconds)
        return
    if zero_shot:
        if run or fuse:
            raise VidretError(
                "--zero-shot uses no trained model: leave out --run (or, to fuse concepts "
                "with a trained model, give --run and --fuse W without --zero-shot)"
            )
        if segment_seconds is not None:
            raise VidretError(
                "--segment-seconds needs a trained model (--run): a zero-shot index holds "
                "whole videos only"
            )
        index = build_zero_shot_index(
            data, out, kind, pooling, top, overwrite=overwrite, crops=crops
        )
        typer.echo(
            f"{out}: {index.size} videos, zero-shot over 1000 ImageNet concepts "
            f"({pooling} over frames{', each the best of it and its regions' if crops else ''}"
            f", {top} concepts per query), {index.info['kind']} index"
        )
        if index.info["score_floor"] is not None:
            typer.echo(
                f"weak-match floor: score {index.info['score_floor']:.3f} (the 95th percentile "
                "of unrelated everyday sentences' best scores here)"
            )
        return
    if not run:
        raise VidretError("give --run RUN (a trained model), or --zero-shot")
    index = build_index(
        run[0],
        data,
        out,
        kind=kind,
        overwrite=overwrite,
        bank_size=query_bank,
        fuse=fuse,
        segment_seconds=segment_seconds,
        query_tower=query_tower,
    )
    what = f"{index.size} segments" if segment_seconds else f"{index.size} videos"
    typer.echo(f"{out}: {what}, {index.info['kind']} index, {index.info['dim']}-d")
    if fuse:
        typer.echo(f"scores: {1 - fuse:g} x the model's + {fuse:g} x the zero-shot concepts'")
    if segment_seconds:
        typer.echo(f"segments of {segment_seconds:g} s: a search returns moments")
    bank, floor = index.info["query_bank"], index.info["score_floor"]
    if bank:
        typer.echo(f"query bank: {bank['captions']} training captions (search --normalize)")
    if floor is not None:
        typer.echo(f"weak-match floor: similarity {floor:.3f}")


def _fused_index(
    runs: list[Path],
    data: Path,
    out: Path,
    weights: str,
    kind: str,
    overwrite: bool,
    fuse: float,
    segment_seconds: float | None,
) -> None:
    from vidret.errors import VidretError
    from vidret.eval.fusion import parse_weights
    from vidret.search.fused_index import build_fused_index

    if fuse or segment_seconds is not None:
        raise VidretError("several --run (a fusion) cannot be combined with --fuse or "
                          "--segment-seconds yet")  # fmt: skip
    index = build_fused_index(runs, data, out, parse_weights(weights, len(runs)), kind,
                              overwrite=overwrite)  # fmt: skip
    fusion = index.info["model"]["fusion"]
    shown = ", ".join(f"{w:g} x {Path(r).name}" for w, r in zip(fusion["weights"], fusion["runs"],
                                                              strict=True))  # fmt: skip
    typer.echo(f"{out}: {index.size} videos, {index.info['kind']} index, {index.info['dim']}-d")
    typer.echo(f"fused scores: {shown} (weights {fusion['weights_chosen_on']}); no query bank")
