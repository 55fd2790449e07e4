"""Model backends: one small contract (``Backend``) and its implementations."""

from .base import Backend, Capabilities, DecodeState, PositionScores, Tokenized
from .toy import ToyBackend

__all__ = ["Backend", "Capabilities", "DecodeState", "PositionScores", "Tokenized", "ToyBackend"]
