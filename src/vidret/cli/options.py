"""Options several verbs share, written once so they read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# --refine of `search` and `serve`
RefineOption = Annotated[
    Path | None,
    typer.Option(
        help="a CDNet run (configs/cdnet.yaml): on an index of segments, each hit's "
        "start and end are placed by CDNet"
    ),
]

# --normalize of `search` and `serve`: how hits are ordered against the index's query bank
SearchNormalizeOption = Annotated[
    str,
    typer.Option(
        help="order by test-time normalization against the index's query bank: none, "
        "dual_softmax or qbnorm (serve: the default of /search and the page)"
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
