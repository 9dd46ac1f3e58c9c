"""vidret: text-to-video and video-to-text retrieval with adaptive-margin supervision."""

__version__ = "0.1.0"
