"""One hit as every interface shows it: `vidret search --json`, the HTTP API and the page.

| field | meaning |
| --- | --- |
| `rank`, `score` | 1 = best; what the hits are ordered by (the normalized score with |
| | `normalize`, else the similarity) |
| `similarity` | the model's similarity, in [-1, 1] |
| `video_id` | the video's id |
| `caption` | a caption of the video (of the moment, on a segment index), when known |
| `file_name` | the video file's name, relative to its folder |
| `duration` | seconds |
| `start`, `end` | a segment index: the moment's span, seconds |
| `coarse_start`, `coarse_end` | with `--refine`: the window the segments gave, before CDNet |
| `video_url` | where to play it: the server's `/videos/<id>/file`, a `file://` URL |
| | from the CLI, else the source's web address |
| `thumbnail_url` | likewise for the thumbnail |
| `source_url` | where the video comes from (http/https), if known |
| `metadata` | the rest of the dataset's metadata, without server paths |
| `evidence` | a zero-shot hit (the first 10): `concept`, `frame`, `time` (seconds, when |
| | known) and its `probability`: the frame and concept that matched best |

Every reference is checked as `vidret.data.file_refs` checks it: a file outside its
folder, or of the wrong kind, gets no URL.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from vidret.data.file_refs import UnsafeReferenceError, safe_url, thumbnail_file, video_file
from vidret.data.moments import video_duration
from vidret.json_output import rounded

# key in the metadata -> (folder of index.json's `files` it must be in, file check)
SERVED = {"path": ("videos", video_file), "thumbnail": ("thumbnails", thumbnail_file)}


def hit_record(
    rank: int,
    score: float,
    similarity: float,
    meta: dict[str, Any],
    roots: dict[str, str],
    local: bool = False,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The hit's fields (module doc); `local`: links as file:// URLs (the CLI), else as
    the server's paths."""
    return {
        "rank": rank,
        "score": rounded(score),
        "similarity": rounded(similarity),
        **card(meta, roots, local),
        **span(meta),
        "metadata": rounded(public_metadata(meta)),
        "evidence": rounded(evidence),
    }


def card(meta: dict[str, Any], roots: dict[str, str], local: bool = False) -> dict[str, Any]:
    """What a result card shows: caption or file name, duration, thumbnail and links."""
    vid = meta["video_id"]
    at = f"/videos/{quote(vid, safe='')}"  # ids keep to a URL-safe alphabet; escaped anyway
    url = meta.get("url") if safe_url(meta.get("url")) else None
    file = meta.get("file") or meta.get("path")
    video, thumb = served_file(meta, roots, "path"), served_file(meta, roots, "thumbnail")
    if local:
        video_url = video.as_uri() if video else url
        thumbnail_url = thumb.as_uri() if thumb else None
    else:
        video_url = f"{at}/file" if video else url
        thumbnail_url = f"{at}/thumbnail" if thumb else None
    return {
        "video_id": vid,
        "caption": meta.get("caption") if isinstance(meta.get("caption"), str) else None,
        "file_name": PurePath(file).name if isinstance(file, str) and file else None,
        "duration": _duration(meta),
        "thumbnail_url": thumbnail_url,
        "video_url": video_url,
        "source_url": url,
    }


def span(meta: dict[str, Any]) -> dict[str, float]:
    """A segment index's hit: where in the video (the page's player starts there), and
    with `--refine` the window before CDNet placed it."""
    out: dict[str, float] = {}
    if meta.get("segment"):
        out["start"], out["end"] = meta["segment"]
    if meta.get("coarse_segment"):
        out["coarse_start"], out["coarse_end"] = meta["coarse_segment"]
    return out


def _duration(meta: dict[str, Any]) -> float | None:
    """Seconds, to the hundredth (`video_duration`: `duration`, else `end - start`)."""
    seconds = video_duration(meta)
    return None if seconds is None else round(seconds, 2)


def public_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata fit to send: no absolute server paths (`file` names the video relative to
    its folder), and a source `url` only when it is an http(s) address."""
    public = {k: v for k, v in meta.items() if k not in ("path", "thumbnail")}
    if "url" in public and not safe_url(public["url"]):
        del public["url"]
    return public


def served_file(meta: dict[str, Any], roots: dict[str, str], key: str) -> Path | None:
    """The existing file `meta[key]` names, if it is inside its allowed folder."""
    folder, check = SERVED[key]
    if key not in meta or folder not in roots:
        return None
    try:
        path = check(meta[key], Path(roots[folder]))
    except UnsafeReferenceError:
        return None
    return path if path.is_file() else None
