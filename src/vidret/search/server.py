"""The HTTP API and the search page (FastAPI; `vidret serve` runs it under uvicorn).

GET /                        the search page (static/index.html)
GET /search?q=...&k=10       ranked videos as JSON
GET /videos/{id}             a video's metadata
GET /videos/{id}/file        the video file, for playback (when the index points at one)
GET /videos/{id}/thumbnail   the frame saved at extraction
GET /health                  liveness and what is loaded
GET /docs, /openapi.json     the OpenAPI description (Swagger UI served from the package,
                             so it works offline)

Files are read only from the two folders the index records (`index.json` `files`): video
files from the dataset's video folder, thumbnails from the dataset folder, each resolved
(symlinks followed) and of a video or image type (see `vidret.data.file_refs`). Responses
name files relative to those folders, never by their absolute path on the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from vidret import __version__
from vidret.data.file_refs import UnsafeReferenceError, safe_url, thumbnail_file, video_file
from vidret.errors import VidretError
from vidret.search.engine import MAX_QUERY_CHARS, SearchEngine

STATIC = Path(__file__).with_name("static")
MAX_RESULTS = 100


class VideoResult(BaseModel):
    rank: int
    score: float
    video_id: str
    duration: float | None = None
    thumbnail_url: str | None = None
    video_url: str | None = None
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    query: str
    k: int
    encode_ms: float
    search_ms: float
    results: list[VideoResult]


class Health(BaseModel):
    status: str
    videos: int
    index_kind: str
    model_run: str
    version: str


def create_app(index_dir: Path, engine: SearchEngine | None = None) -> FastAPI:
    engine = engine or SearchEngine(index_dir)
    by_id = {v["video_id"]: v for v in engine.index.videos}
    roots = engine.index.info.get("files") or {}
    app = FastAPIOffline(
        title="vidret search",
        version=__version__,
        description="Text-to-video search over an index built by `vidret index`.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One readable line (which parameter, what is wrong) beside FastAPI's detail.
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", [])[1:]) or "request"
        return JSONResponse(
            status_code=422,
            content={"error": f"{where}: {first.get('msg')}", "detail": exc.errors()},
        )

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(
            status="ok",
            videos=engine.size,
            index_kind=engine.index.info["kind"],
            model_run=Path(engine.index.info["model"]["run"]).name,
            version=__version__,
        )

    @app.get("/search", response_model=SearchResponse)
    def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="query")],
        k: Annotated[int, Query(ge=1, le=MAX_RESULTS, description="number of results")] = 10,
    ) -> SearchResponse:
        try:
            result = engine.search(q, k)  # it checks the query (empty, too long)
        except VidretError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        return SearchResponse(
            query=result.query,
            k=k,
            encode_ms=round(result.encode_ms, 3),
            search_ms=round(result.search_ms, 3),
            results=[
                VideoResult(
                    rank=h.rank, score=h.score, **_links(h.video, roots), metadata=_public(h.video)
                )
                for h in result.hits
            ],
        )

    @app.get("/videos/{video_id}")
    def video(video_id: str) -> dict[str, Any]:
        meta = _video(by_id, video_id)
        return {**_links(meta, roots), "metadata": _public(meta)}

    @app.get("/videos/{video_id}/file")
    def video_file(video_id: str) -> FileResponse:
        return FileResponse(_local_file(_video(by_id, video_id), roots, "path"))

    @app.get("/videos/{video_id}/thumbnail")
    def thumbnail(video_id: str) -> FileResponse:
        return FileResponse(_local_file(_video(by_id, video_id), roots, "thumbnail"))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": exc.detail})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _video(by_id: dict[str, dict[str, Any]], video_id: str) -> dict[str, Any]:
    meta = by_id.get(video_id)
    if meta is None:
        raise HTTPException(status_code=404, detail=f"no video '{video_id}' in this index")
    return meta


def _links(meta: dict[str, Any], roots: dict[str, str]) -> dict[str, Any]:
    vid = meta["video_id"]
    url = meta.get("url") if safe_url(meta.get("url")) else None
    return {
        "video_id": vid,
        "duration": meta.get("duration"),
        "thumbnail_url": (
            f"/videos/{vid}/thumbnail" if _served_file(meta, roots, "thumbnail") else None
        ),
        "video_url": f"/videos/{vid}/file" if _served_file(meta, roots, "path") else url,
    }


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata fit to send: no absolute server paths (`file` names the video relative to
    its folder), and a source `url` only when it is an http(s) address."""
    public = {k: v for k, v in meta.items() if k not in ("path", "thumbnail")}
    if "url" in public and not safe_url(public["url"]):
        del public["url"]
    return public


# key in the metadata -> (folder of index.json's `files` it must be in, file check)
_SERVED = {"path": ("videos", video_file), "thumbnail": ("thumbnails", thumbnail_file)}


def _served_file(meta: dict[str, Any], roots: dict[str, str], key: str) -> Path | None:
    """The existing file `meta[key]` names, if it is inside its allowed folder."""
    folder, check = _SERVED[key]
    if key not in meta or folder not in roots:
        return None
    try:
        path = check(meta[key], Path(roots[folder]))
    except UnsafeReferenceError:
        return None
    return path if path.is_file() else None


def _local_file(meta: dict[str, Any], roots: dict[str, str], key: str) -> Path:
    path = _served_file(meta, roots, key)
    if path is None:
        what = "video file" if key == "path" else "thumbnail"
        raise HTTPException(
            status_code=404, detail=f"video '{meta['video_id']}' has no local {what}"
        )
    return path
