"""Helpers shared by tests (importable because pytest puts tests/ on the path)."""

# A model small enough to train in seconds, used by the training tests.
TINY = [
    "model.embed_dim=32",
    "model.hidden_dim=64",
    "model.heads=2",
    "model.layers=1",
    "train.batch_size=32",
    "train.epochs=3",
    "train.warmup_steps=2",
    "train.threads=1",
    "train.eval_batch=64",
]
