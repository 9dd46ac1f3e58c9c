"""From video files to frame features: decoding, an ImageNet frame encoder, extraction."""
