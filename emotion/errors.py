"""The project's one error type for input it cannot use."""


class EmotionError(Exception):
    """Raised for input the analyser cannot use; the message is written for a person, not a developer."""
