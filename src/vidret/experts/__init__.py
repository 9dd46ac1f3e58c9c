"""Supervision experts for adaptive margins: static vectors (cached) and dynamic ones."""
