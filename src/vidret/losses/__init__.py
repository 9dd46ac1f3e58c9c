"""Objectives over a batch's caption x video similarity matrix (diagonal = positives)."""
