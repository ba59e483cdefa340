"""kernjit: a JIT compiler for numeric Python kernels, a drop-in for Numba.

Change one import line::

    from kernjit import njit, prange

    @njit
    def saxpy(a, x, y, out):
        for i in prange(x.shape[0]):
            out[i] = a * x[i] + y[i]

A kernel compiles in about a millisecond on its first call for each new
combination of argument types, runs with the GIL released, checks its array
bounds by default, and gives the same results on any number of threads.
See `njit` for the options, `load` for ``.kern`` files.
"""

from ._kernjit import CompileError, get_max_threads, get_num_threads, set_num_threads
from ._decorator import jit, njit, prange
from ._dispatcher import Dispatcher
from ._load import load

__version__ = "0.1.0"

#: Numba's name for a type error; kernjit has one error for syntax and types.
TypingError = CompileError

__all__ = [
    "njit",
    "jit",
    "prange",
    "set_num_threads",
    "get_num_threads",
    "get_max_threads",
    "CompileError",
    "TypingError",
    "Dispatcher",
    "load",
    "__version__",
]
