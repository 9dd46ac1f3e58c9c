"""A generated demo dataset with the structure the adaptive-margin method is about.

Every video is a *scene*: (topic, subject, action, object, place). Scenes come in groups
of near-duplicates (the same scene filmed again: same words, slightly different
features), scenes share topics (same topic: related but different), and topics are
unrelated to each other. Two visual experts see different sides of a scene:

* `appearance` (16 frames x 48): who and what is in the picture, and where;
* `motion` (4-12 frames x 32, variable length, missing for ~5% of videos): the action
  and who does it.

Captions are written from the scene's words with synonyms and dropped phrases, so
caption similarity follows scene similarity: near-duplicates > same topic > unrelated.
Everything is drawn from one seeded generator. The data is generated, not real: it is
named `vidret-demo (generated)` and its `dataset.json` says `"generated": true`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidret.data.splits import random_split
from vidret.data.writer import dataset_folder

# topic -> (subjects, actions, objects, places); each word has synonyms after '|'.
VOCABULARY: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "cooking": (
        ["a chef|a cook", "a woman|a lady", "a man|a guy"],
        ["is chopping|is cutting", "is frying|is cooking", "is stirring|is mixing"],
        ["vegetables|some veggies", "pasta|noodles", "an egg|eggs", "a pancake|pancakes"],
        ["in a kitchen|in the kitchen", "at a restaurant|in a restaurant"],
    ),
    "sports": (
        ["a player|an athlete", "a team|a group of players", "a boy|a kid"],
        ["is kicking|kicks", "is throwing|throws", "is catching|catches"],
        ["a ball|the ball", "a frisbee|a disc", "a football|the football"],
        ["on a field|on the field", "in a stadium|at a stadium"],
    ),
    "music": (
        ["a singer|a vocalist", "a band|a group of musicians", "a girl|a young woman"],
        ["is playing|plays", "is performing|performs", "is practicing|practices"],
        ["a guitar|the guitar", "a piano|the piano", "a song|a tune", "drums|the drums"],
        ["on a stage|on stage", "in a studio|at a studio"],
    ),
    "animals": (
        ["a dog|a puppy", "a cat|a kitten", "a horse|a pony"],
        ["is running|runs", "is jumping|jumps", "is playing|plays"],
        ["with a toy|with its toy", "with a stick|with a branch", "with a ball|with its ball"],
        ["in a park|at the park", "on a beach|at the beach", "in a yard|in the backyard"],
    ),
    "vehicles": (
        ["a car|an automobile", "a truck|a lorry", "a motorcycle|a motorbike"],
        ["is driving|drives", "is racing|races", "is parking|parks"],
        ["down a road|along the road", "around a track|on a race track", "through a city|in town"],
        ["at night|in the dark", "in the rain|on a rainy day"],
    ),
    "travel": (
        ["a tourist|a traveler", "a family|some people", "a couple|two people"],
        ["is walking|walks", "is hiking|hikes", "is sightseeing|looks around"],
        [
            "through a market|in a market",
            "up a mountain|on a mountain",
            "across a bridge|over a bridge",
        ],
        ["in a city|downtown", "in the countryside|in the country"],
    ),
}

TEMPLATES = (
    "{subject} {action} {object} {place}",
    "{subject} {action} {object}",
    "{place} {subject} {action} {object}",
    "{subject} {action} {object} {place}",
    "someone {action} {object} {place}",
    "there is {subject} who {action} {object}",
)

LATENT_DIM = 32
APPEARANCE = ("appearance", 16, 48)  # name, frames, dim
MOTION = ("motion", 12, 32)  # name, max frames, dim


def make_demo_dataset(
    out: Path | str,
    num_videos: int = 300,
    captions_per_video: int = 10,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write the generated dataset folder `out` (atomically) and return its path."""
    if num_videos < 10:
        raise ValueError("the demo dataset needs at least 10 videos")
    rng = np.random.default_rng(seed)
    topics = list(VOCABULARY)
    words = _word_vectors(rng)
    topic_vecs = {t: rng.standard_normal(LATENT_DIM) for t in topics}
    proj_app = rng.standard_normal((LATENT_DIM, APPEARANCE[2])) / np.sqrt(LATENT_DIM)
    proj_mot = rng.standard_normal((LATENT_DIM, MOTION[2])) / np.sqrt(LATENT_DIM)

    scenes = _draw_scenes(rng, topics, num_videos)
    videos, captions = [], []
    appearance = np.zeros((num_videos, APPEARANCE[1], APPEARANCE[2]), np.float32)
    motion = np.zeros((num_videos, MOTION[1], MOTION[2]), np.float32)
    motion_len = np.zeros(num_videos, np.int64)
    for i, (scene_id, scene) in enumerate(scenes):
        topic, picks = scene
        vid = f"demo{i:04d}"
        videos.append({"video_id": vid, "category": topic, "scene": scene_id, "generated": True})
        vec = {role: words[(topic, role, k)] for role, k in picks.items()}
        jitter = 0.35 * rng.standard_normal(LATENT_DIM)  # what makes near-duplicates differ
        static = topic_vecs[topic] + vec["subject"] + vec["object"] + 0.7 * vec["place"] + jitter
        moving = 0.6 * topic_vecs[topic] + vec["action"] + 0.5 * vec["subject"] + jitter
        frames = static @ proj_app
        appearance[i] = frames + 0.6 * rng.standard_normal((APPEARANCE[1], APPEARANCE[2]))
        if rng.random() >= 0.05:
            n = int(rng.integers(4, MOTION[1] + 1))
            phase = np.sin(np.linspace(0, np.pi, n))[:, None]
            motion[i, :n] = (moving @ proj_mot) * (0.5 + phase)
            motion[i, :n] += 0.6 * rng.standard_normal((n, MOTION[2]))
            motion_len[i] = n
        for c in range(captions_per_video):
            captions.append(
                {
                    "video_id": vid,
                    "sen_id": i * captions_per_video + c,
                    "caption": _caption(rng, topic, picks),
                }
            )

    ids = [v["video_id"] for v in videos]
    split = random_split(ids, (0.7, 0.15, 0.15), seed=seed)
    with dataset_folder(out, overwrite=overwrite) as folder:
        folder.videos(videos)
        folder.captions(captions)
        folder.expert(APPEARANCE[0], appearance)
        folder.expert(MOTION[0], motion, lengths=motion_len)
        for part, part_ids in split.items():
            folder.split(part, part_ids)
        folder.metadata(
            {
                "name": "vidret-demo (generated)",
                "generated": True,
                "description": "Generated by `vidret data demo`: scenes with near-duplicates, "
                "shared topics and unrelated topics; not real video data.",
                "seed": seed,
                "experts": {APPEARANCE[0]: {"dim": APPEARANCE[2]}, MOTION[0]: {"dim": MOTION[2]}},
            },
        )
    return Path(out)


def _word_vectors(rng: np.random.Generator) -> dict[tuple[str, str, int], np.ndarray]:
    vectors = {}
    for topic, lists in VOCABULARY.items():
        for role, options in zip(("subject", "action", "object", "place"), lists, strict=True):
            for k in range(len(options)):
                vectors[(topic, role, k)] = rng.standard_normal(LATENT_DIM)
    return vectors


def _draw_scenes(
    rng: np.random.Generator, topics: list[str], num_videos: int
) -> list[tuple[int, tuple[str, dict[str, int]]]]:
    """Scenes of 1-3 near-duplicate videos each, until `num_videos` videos exist."""
    out: list[tuple[int, tuple[str, dict[str, int]]]] = []
    scene_id = 0
    while len(out) < num_videos:
        topic = topics[int(rng.integers(len(topics)))]
        lists = VOCABULARY[topic]
        picks = {
            role: int(rng.integers(len(options)))
            for role, options in zip(("subject", "action", "object", "place"), lists, strict=True)
        }
        copies = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        for _ in range(min(copies, num_videos - len(out))):
            out.append((scene_id, (topic, picks)))
        scene_id += 1
    return out


def _caption(rng: np.random.Generator, topic: str, picks: dict[str, int]) -> str:
    lists = dict(zip(("subject", "action", "object", "place"), VOCABULARY[topic], strict=True))
    words = {}
    for role, k in picks.items():
        synonyms = lists[role][k].split("|")
        words[role] = synonyms[int(rng.integers(len(synonyms)))]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return template.format(**words)
