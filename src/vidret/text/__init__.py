"""Caption encoders: frozen Sentence-BERT vectors or token features (cached), or fine-tuning."""
