"""Multimodal emotion analysis of speech: what was said, how it was said, and the two fused."""

from emotion.analysis import Analysis, Analyzer
from emotion.errors import EmotionError

__all__ = ["Analysis", "Analyzer", "EmotionError"]
