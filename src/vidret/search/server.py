"""The HTTP API and the search page (FastAPI; `vidret serve` runs it under uvicorn).

GET /                        the search page (static/index.html)
GET /search?q=...&k=10       ranked videos as JSON (&normalize=qbnorm|dual_softmax: ordered
                             by test-time normalization against the index's query bank)
GET /videos/{id}             a video's metadata
GET /videos/{id}/file        the video file, for playback (when the index points at one)
GET /videos/{id}/thumbnail   the frame saved at extraction
GET /health                  liveness, what is loaded, batching and cache counters
GET /docs, /openapi.json     the OpenAPI description (Swagger UI served from the package,
                             so it works offline)

Files are read only from the two folders the index records (`index.json` `files`): video
files from the dataset's video folder, thumbnails from the dataset folder, each resolved
(symlinks followed) and of a video or image type (see `vidret.data.file_refs`), then opened
once from its folder without following links and served from that descriptor, so a path
swapped for a link meanwhile is not served (`vidret.search.served_file`). Responses name
files relative to those folders, never by their absolute path on the server.

Concurrent /search requests are checked one by one, then encoded and searched together
(`vidret.search.batching`: a batch per `window_ms`, at most `max_batch`), with an LRU
cache of query embeddings; each answer is the one a lone request gets (tested).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidret import __version__
from vidret.errors import VidretError
from vidret.search.batching import MicroBatcher
from vidret.search.engine import MAX_K, MAX_QUERY_CHARS, SearchEngine, SearchRequest, SearchResult
from vidret.search.hits import SERVED, card, hit_record, public_metadata, served_file
from vidret.search.served_file import DescriptorResponse, NotServableError, open_inside

STATIC = Path(__file__).with_name("static")
Normalize = Literal["none", "dual_softmax", "qbnorm"]


class VideoResult(BaseModel):
    """One hit; the same fields as `vidret search --json` (`vidret.search.hits`)."""

    rank: int
    score: float  # what the hits are ordered by
    similarity: float  # the model's similarity (== score without normalization)
    video_id: str
    caption: str | None = None  # one of the video's captions, when the dataset has them
    file_name: str | None = None  # the video file's name, when there is one
    duration: float | None = None  # seconds
    thumbnail_url: str | None = None
    video_url: str | None = None  # the local file, else the source's web address
    source_url: str | None = None  # where the video comes from (http/https), if known
    start: float | None = None  # a segment index: the moment's span, seconds
    end: float | None = None
    coarse_start: float | None = None  # with --refine: the window before CDNet placed it
    coarse_end: float | None = None
    metadata: dict[str, Any]
    # a zero-shot hit: the frame and concept that matched (concept, frame, time, probability)
    evidence: dict[str, Any] | None = None


class SearchResponse(BaseModel):
    query: str
    k: int
    normalization: str
    score_floor: float | None  # the index's weak-match floor
    below_floor: bool  # no hit reaches it: the page says "no good match"
    encode_ms: float
    search_ms: float
    # a zero-shot index: the ImageNet concepts the query was mapped to -> weight
    concepts: dict[str, float] | None = None
    results: list[VideoResult]


class Health(BaseModel):
    status: str
    videos: int
    index_kind: str
    model_run: str
    version: str
    batches: int  # batched calls of the encoder and search so far (this worker)
    mean_batch: float  # requests per batch
    largest_batch: int
    cache_hits: int  # queries whose embedding came from the cache
    cache_misses: int


def create_app(
    index_dir: Path,
    engine: SearchEngine | None = None,
    normalize: str = "none",
    max_batch: int = 32,
    window_ms: float = 2.0,
    cache_size: int = 10_000,
    refine: Path | None = None,
) -> FastAPI:
    """The app over an index; `normalize` is the default of /search's `normalize`;
    `max_batch` 1 serves each request alone, `cache_size` 0 keeps no query embeddings."""
    engine = engine or SearchEngine(index_dir, cache_size=cache_size, refine=refine)
    engine.check_normalize(normalize)
    default_normalize = normalize
    by_id = {v["video_id"]: v for v in engine.index.videos}
    roots = engine.index.info.get("files") or {}
    batcher: MicroBatcher[SearchRequest, SearchResult] = MicroBatcher(
        engine.search_many, max_batch=max_batch, window_ms=window_ms
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPIOffline(
        title="vidret search",
        version=__version__,
        description="Text-to-video search over an index built by `vidret index`.",
        lifespan=lifespan,
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
            batches=batcher.stats.batches,
            mean_batch=round(batcher.stats.mean_batch, 3),
            largest_batch=batcher.stats.largest,
            cache_hits=engine.cache.hits,
            cache_misses=engine.cache.misses,
        )

    @app.get("/search", response_model=SearchResponse)
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="query")],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="number of results")] = 10,
        normalize: Annotated[
            Normalize | None,
            Query(description="test-time normalization (default: the server's)"),
        ] = None,
    ) -> SearchResponse:
        try:  # checked alone (empty, too long, normalization), so a batch has no bad one
            request = engine.check(SearchRequest(q, k, normalize or default_normalize))
        except VidretError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        result = await asyncio.wrap_future(batcher.submit(request))
        return SearchResponse(
            query=result.query,
            k=k,
            normalization=result.normalization,
            score_floor=None if result.floor is None else round(result.floor, 4),
            below_floor=result.below_floor,
            encode_ms=round(result.encode_ms, 3),
            search_ms=round(result.search_ms, 3),
            concepts=None
            if result.concepts is None
            else {name: round(w, 4) for name, w in result.concepts},
            results=[
                VideoResult(
                    **hit_record(h.rank, h.score, h.similarity, h.video, roots, evidence=h.evidence)
                )
                for h in result.hits
            ],
        )

    @app.get("/videos/{video_id}")
    def video(video_id: str) -> dict[str, Any]:
        meta = _video(by_id, video_id)
        return {**card(meta, roots), "metadata": public_metadata(meta)}

    @app.get("/videos/{video_id}/file")
    def video_file(video_id: str, request: Request) -> DescriptorResponse:
        return _local_file(_video(by_id, video_id), roots, "path", request)

    @app.get("/videos/{video_id}/thumbnail")
    def thumbnail(video_id: str, request: Request) -> DescriptorResponse:
        return _local_file(_video(by_id, video_id), roots, "thumbnail", request)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    # Starlette's own exception (an unknown route, a wrong method) too, not only FastAPI's
    # subclass: every error answers {"error": ...}.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"error": exc.detail}, headers=exc.headers
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


SERVE_SETTINGS = "VIDRET_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker process (`vidret serve --workers N`): its settings
    come as JSON in $VIDRET_SERVE_SETTINGS (create_app's arguments, and `threads`)."""
    import faiss
    import torch

    settings = json.loads(os.environ[SERVE_SETTINGS])
    threads = settings.pop("threads", 1)
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    refine = settings.pop("refine", None)
    return create_app(
        Path(settings.pop("index_dir")), refine=Path(refine) if refine else None, **settings
    )


def _video(by_id: dict[str, dict[str, Any]], video_id: str) -> dict[str, Any]:
    meta = by_id.get(video_id)
    if meta is None:
        raise HTTPException(status_code=404, detail=f"no video '{video_id}' in this index")
    return meta


def _local_file(
    meta: dict[str, Any], roots: dict[str, str], key: str, request: Request
) -> DescriptorResponse:
    """The file, opened once and checked as opened (`served_file`): what is streamed is
    what was checked, whatever happens to the path meanwhile."""
    path = served_file(meta, roots, key)
    fd = None
    if path is not None:
        try:
            fd = open_inside(path, Path(roots[SERVED[key][0]]).resolve())
        except NotServableError:
            fd = None
    if fd is None:
        what = "video file" if key == "path" else "thumbnail"
        raise HTTPException(
            status_code=404, detail=f"video '{meta['video_id']}' has no local {what}"
        )
    return DescriptorResponse(fd, path.name, request.headers.get("range"))
