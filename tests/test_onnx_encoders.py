"""The onnxruntime paths give the same vectors as PyTorch: queries and video frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidret.text.onnx_encoder import OnnxSentenceEncoder
from vidret.text.sentence_bert import default_model_path, encode_texts
from vidret.video.frame_encoder import EfficientNetLite0, load_torch_model, preprocess

TEXTS = ["a man is cooking pasta in a kitchen", "dog", "people dance at a party " * 12]


def test_onnx_query_encoder_matches_sentence_transformers() -> None:
    from vidret.text import onnx_encoder

    path = default_model_path()
    exported = OnnxSentenceEncoder.try_load(path)  # exports, or finds the export
    # A later start: the export and its manifest, tokenized by tokenizers, without
    # sentence-transformers (the fast cold start of `vidret search`).
    restarted = onnx_encoder._load_exported(path, threads=1)
    assert exported is not None and restarted is not None
    texts = [*TEXTS, "  Leading spaces, UPPER case and ünïcödé  ", "x" * 3000]
    for encoder, text in [(e, t) for e in (exported, restarted) for t in texts]:
        fast = encoder.encode([text], with_tokens=True, max_tokens=32)  # one, as queries come
        # After the export the shared PyTorch model must still be in eval mode.
        ref = encode_texts([text], path, with_tokens=True, max_tokens=32, progress=False)
        np.testing.assert_allclose(fast.sentence, ref.sentence, atol=1e-5)
        np.testing.assert_array_equal(fast.lengths, ref.lengths)
        np.testing.assert_allclose(
            fast.tokens.astype(np.float32), ref.tokens.astype(np.float32), atol=2e-3
        )
    # several texts at once: padded to the longest, the padding masked out of the mean
    batch = restarted.encode(texts, with_tokens=False)
    ref = encode_texts(texts, path, with_tokens=False, progress=False)
    np.testing.assert_allclose(batch.sentence, ref.sentence, atol=1e-5)


def test_frame_encoder_backends_agree_and_classify_a_real_photo() -> None:
    import matplotlib.cbook
    import torch
    from PIL import Image

    photo = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    image = Image.open(photo).convert("RGB").resize((224, 224))
    frames = np.stack([np.asarray(image), np.asarray(image.transpose(Image.FLIP_LEFT_RIGHT))])
    onnx = EfficientNetLite0("onnx").encode(frames)
    eager = EfficientNetLite0("torch").encode(frames)
    assert onnx.shape == (2, 1280)
    np.testing.assert_allclose(onnx, eager, atol=1e-4, rtol=1e-4)
    # The weights and the [-1, 1] input scaling are right: ImageNet class 652 is
    # "military uniform", what Grace Hopper wears in this photo.
    classifier = load_torch_model(with_classifier=True)
    with torch.inference_mode():
        logits = classifier(torch.from_numpy(preprocess(frames[:1])))
    assert int(logits.argmax()) == 652


def test_unknown_backend_is_refused() -> None:
    from vidret.errors import VidretError

    with pytest.raises(VidretError, match="onnx"):
        EfficientNetLite0("tensorflow")  # type: ignore[arg-type]


def test_parallel_runs_give_each_frame_its_own_features_in_order() -> None:
    # The batch is split over single-threaded runs side by side: every frame must come
    # back where it went in, equal to one run over the whole batch (70 frames: parts of
    # 32, 32 and 6 with three runs, an uneven last part).
    frames = np.random.default_rng(0).integers(0, 255, (70, 224, 224, 3), dtype=np.uint8)
    one = EfficientNetLite0("onnx", threads=1)
    three = EfficientNetLite0("onnx", threads=3)
    assert three.parallel_runs == 3
    alone = np.concatenate([one.encode(frames[i : i + 1]) for i in (0, 31, 32, 69)])
    together = three.encode(frames)
    assert together.shape == (70, 1280)
    np.testing.assert_allclose(together[[0, 31, 32, 69]], alone, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(together, one.encode(frames), atol=1e-4, rtol=1e-4)
    # Both outputs of the region model stay paired with their frame.
    regions = EfficientNetLite0("onnx", threads=2, regions=4)
    pooled, cells = regions.encode_regions(frames[:5])
    last_pooled, last_cells = regions.encode_regions(frames[4:5])
    np.testing.assert_allclose(pooled, together[:5], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(cells[4:], last_cells, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(last_pooled, together[4:5], atol=1e-4, rtol=1e-4)
