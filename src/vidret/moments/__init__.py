"""Moment localization: CDNet runs (config, data, training, localizing)."""
