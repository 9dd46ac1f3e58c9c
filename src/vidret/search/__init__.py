"""Search your own videos: an index of a trained model's video embeddings, and queries."""
