"""Training: data preparation, batches, the loop, schedules, checkpoints, logging."""
