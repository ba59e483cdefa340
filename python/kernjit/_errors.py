"""kernjit's one compile-time error, shared with the native module."""

from ._kernjit import CompileError

__all__ = ["CompileError"]
