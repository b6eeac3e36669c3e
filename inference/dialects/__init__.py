"""TIR dialects: how a model family writes code and reads its output."""

from .base import Dialect, Turn, trim_overshoot
from .markdown import MarkdownDialect
from .openmath import OpenMathDialect

__all__ = ["Dialect", "MarkdownDialect", "OpenMathDialect", "Turn", "trim_overshoot"]
