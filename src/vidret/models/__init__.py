"""Retrieval backbones (one file each, one registry) and the model that joins them to text."""
