"""Evaluation: exact retrieval metrics, and (later) reports over seeds and figures."""
