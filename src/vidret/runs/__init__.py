"""Run folders: the files a trained run keeps, its checkpoints, its epoch log, and its
caption side as a query encoder."""
