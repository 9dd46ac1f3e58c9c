"""Experiments: variants x seeds trained and evaluated as one resumable command."""
