"""Batches a model reads: prepared datasets, static supervision experts, windows of long
videos."""
