"""What `vidret serve` hands out: only files inside the index's two folders, of the right
kind; no absolute server path in any response; no link that is not a web address; API
docs that work offline. The index is tampered with after it was built, as an attacker
with write access to its metadata would, so the server's own checks are what is tested
(`vidret data check` and `vidret index` refuse such metadata earlier: test_bad_inputs)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vidret.search.server import create_app
from vidret.video.synthetic import write_video


@pytest.fixture(scope="module")
def tampered(small_world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("tampered")
    videos = root / "videos"
    clip = write_video(videos / "clip.mp4", "red", seconds=1.0, size=(64, 64))
    (videos / "notes.txt").write_text("not a video")
    (videos / "link.mp4").symlink_to("/etc/passwd")
    data = root / "data"
    (data / "thumbnails").mkdir(parents=True)
    (data / "thumbnails" / "ok.jpg").write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    (root / "secret.jpg").write_bytes(b"outside the data folder")

    index = root / "index"
    shutil.copytree(small_world["index"], index)
    rows = [json.loads(line) for line in (index / "videos.jsonl").read_text().splitlines()]
    attacks = [
        {"path": str(clip), "thumbnail": "thumbnails/ok.jpg"},  # legitimate, as indexed
        {"path": "/etc/passwd", "thumbnail": str(data / "../../../../etc/shadow")},
        {"path": str(videos / "../../../../etc/passwd"), "thumbnail": str(root / "secret.jpg")},
        {"path": str(videos / "link.mp4"), "thumbnail": "/etc/hostname"},
        {"path": str(videos / "notes.txt"), "thumbnail": "thumbnails/../../secret.jpg"},
        {"url": "javascript:alert(document.cookie)"},
        {"url": "https://example.org/video/6"},
    ]
    for row, attack in zip(rows, attacks, strict=False):
        row.update(attack)
    (index / "videos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = json.loads((index / "index.json").read_text())
    info["files"] = {"videos": str(videos), "thumbnails": str(data)}
    (index / "index.json").write_text(json.dumps(info))
    return {"root": root, "ids": [r["video_id"] for r in rows], "clip": clip,
            "client": TestClient(create_app(index))}  # fmt: skip


def test_only_files_inside_the_index_folders_are_served(tampered: dict) -> None:
    client, ids = tampered["client"], tampered["ids"]
    assert client.get(f"/videos/{ids[0]}/file").content == tampered["clip"].read_bytes()
    assert client.get(f"/videos/{ids[0]}/thumbnail").status_code == 200
    for vid in ids[1:5]:  # /etc/passwd, traversal, a symlink out, a .txt; thumbnails likewise
        for what in ("file", "thumbnail"):
            response = client.get(f"/videos/{vid}/{what}")
            assert response.status_code == 404, (vid, what)
            assert "root:" not in response.text


def test_responses_name_no_server_path(tampered: dict) -> None:
    client, root = tampered["client"], str(tampered["root"])
    texts = [client.get("/health").text, client.get("/search", params={"q": "red", "k": 50}).text]
    texts += [client.get(f"/videos/{vid}").text for vid in tampered["ids"][:7]]
    for text in texts:
        assert root not in text and "/etc/" not in text
    health = client.get("/health").json()
    assert health["model_run"] == "run"  # the run's name, not where it lives
    meta = client.get(f"/videos/{tampered['ids'][0]}").json()
    assert meta["video_url"] == f"/videos/{tampered['ids'][0]}/file"
    assert "path" not in meta["metadata"] and "thumbnail" not in meta["metadata"]


def test_only_web_addresses_are_given_as_links(tampered: dict) -> None:
    client, ids = tampered["client"], tampered["ids"]
    script = client.get(f"/videos/{ids[5]}").json()
    assert script["video_url"] is None and "url" not in script["metadata"]
    web = client.get(f"/videos/{ids[6]}").json()
    assert web["video_url"] == "https://example.org/video/6"


def test_api_docs_load_nothing_from_other_hosts(tampered: dict) -> None:
    client = tampered["client"]
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert assets and not [a for a in assets if "://" in a]
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "openapi" in client.get("/openapi.json").text
