"""The native half of kernjit (a Rust extension built with pyo3).

The pure-Python package (`kernjit/__init__.py` and friends) turns decorated
functions into *sources* and calls into this module; users never import it
directly. Everything here is thread-safe, and every call releases the GIL
while it compiles or runs machine code (but for a straight-line program: no
loop, no call between kernels, no array made, which runs in nanoseconds).
"""

from typing import Any, Optional, Sequence, Tuple, Union

# ---- What the Python layer hands over -------------------------------------

# A frozen compile-time constant:
#   ("int", v)   a Python int (a weak literal, as if written in the kernel)
#   ("float", v) a Python float (weak)
#   ("bool", v)  a Python bool
#   ("np", dtype_name, v)  a NumPy scalar that keeps its dtype, e.g.
#                ("np", "float32", 0.5); v is a Python int/float/bool
#   ("tuple", [constant, ...])
# What a global name the kernel reads is bound to:
#   ("const", constant)
#   ("module", "math" | "numpy" | "numba")         import numpy as xp
#   ("member", "math" | "numpy" | "numba", name)    from math import sqrt
#   ("kernel", def_name)       another kernel of the same program
#   ("unsupported", what)      e.g. "a dict": an error where it is used
GlobalSpec = Tuple[Any, ...]

# One piece of a program: (file, text, first_line, indent, globals)
#   file        the .py path diagnostics name
#   text        one or more top-level defs, dedented, decorators removed
#   first_line  the 1-based line of `file` where `text` starts
#   indent      the columns removed from every line by dedenting
#   globals     {name: GlobalSpec} for the names the functions read
Segment = Tuple[str, str, int, int, dict]


class CompileError(Exception):
    """A syntax or type error (Numba's TypingError). `str(e)` is the
    rendered diagnostic with the .py file, line and column. Its
    `__module__` is "kernjit" (the package re-exports it)."""


class Program:
    """Kernels parsed from sources, compiled per signature on first use.

    Raises CompileError for syntax errors and unsupported globals."""

    def __init__(
        self,
        segments: Sequence[Segment],
        *,
        boundscheck: bool = True,
        fastmath: bool = False,
        threads: Optional[int] = None,
    ) -> None: ...

    @staticmethod
    def load(path: str, *, boundscheck: bool = True) -> "Program":
        """Parses a .kern file (CompileError on syntax errors, OSError if it
        cannot be read)."""

    def kernel_names(self) -> list[str]: ...

    def compile(self, kernel: str, signature: str) -> None:
        """Compiles `kernel` for a kern signature text such as
        "(f64[:, ::1], f64)"; raises CompileError (TypeError for text that
        is not a signature, ValueError for an unknown kernel)."""

    def signatures(self, kernel: str) -> list[str]:
        """The signatures compiled so far, as kern text "(f64[:], f64)"."""

    def inspect_types(self, kernel: str, signature: str) -> str:
        """The typed program (every expression with its type)."""

    def inspect_clif(self, kernel: str, signature: str) -> str: ...

    def inspect_asm(self, kernel: str, signature: str) -> str: ...

    def stats(self) -> dict:
        """{"hits", "misses", "evictions", "cached": int,
        "parse", "infer", "lower", "cranelift", "finalize": seconds}"""

    def call(self, kernel: str, args: Sequence[Any]) -> Any:
        """Runs `kernel` compiled (the slow path of `Dispatcher.__call__`)."""

    def interpret(self, kernel: str, args: Sequence[Any]) -> Any:
        """Runs `kernel` in the reference interpreter: same semantics, same
        errors, same results bit for bit. Arrays are updated in place (the
        interpreter works on copies; those it changed are copied back, also
        after an error)."""


class Dispatcher:
    """A kernel as a callable; the Python layer subclasses it.

    `__call__` is the hot path: it classifies the arguments (NumPy arrays of
    the 11 dtypes and 1-3 dimensions, any strides, without a copy; Python
    float -> f64, int -> i64, bool -> bool; NumPy scalars keep their dtype),
    reuses the last call's compiled code when the types and layouts match
    (else looks up or compiles the signature), releases the GIL (not for a
    straight-line program, which runs in nanoseconds) and runs the
    machine code. Results: Python float/int/bool, tuples of them, or NumPy
    arrays handed over without a copy.

    A Python int in the int64 range is an i64; from 2**63 to 2**64 - 1 a
    u64 (as Numba types it); beyond, an OverflowError. Keyword arguments
    are a TypeError (positional arguments only).

    Until `_set_program` was called, `__call__` first calls `self._build()`
    (defined by the subclass), which must call `_set_program`.

    Errors: CompileError; IndexError, ZeroDivisionError, ValueError,
    MemoryError, RecursionError for runtime faults (message: the kernel's
    file:line:col and the rendered diagnostic); TypeError for arguments
    kernjit cannot take (naming the parameter and what is accepted); a
    ValueError, before running, for a read-only array passed for a parameter
    the kernel may write.
    """

    def __init__(self, name: str) -> None:
        """`__new__` accepts any arguments (the name is the first if it is a
        str), so that a subclass's `__init__` may have its own signature."""

    def _set_program(
        self,
        program: Program,
        kernel: str,
        signatures: Optional[Sequence[Tuple[str, Optional[str]]]] = None,
        interpret: bool = False,
    ) -> None:
        """Binds the dispatcher to `kernel` of `program`.

        `signatures`: eager (argument types text "(f64[:], f64)", result
        dtype name or None) pairs, compiled now (CompileError; TypeError for
        text that is not a signature or an unknown result dtype); calls then
        only accept arguments that match one of them exactly or by a safe
        scalar conversion (TypeError "No matching definition ..." otherwise),
        and scalar results are converted to the declared result type. The
        first exact match wins, else the first safe one: a NumPy scalar
        converts where `promote_types(arg, param) == param`; a Python int
        (weak, as in NEP 50) to any int dtype holding its value or any
        float, a Python float to f32 or f64; arrays need the dtype, the
        dimensions and a layout the signature accepts (`f64[:, ::1]`:
        C-contiguous).
        `interpret`: run every call in the reference interpreter
        (KERNJIT_DISABLE_JIT=1)."""

    def _program(self) -> Optional[Program]: ...

    def _kernel(self) -> Optional[str]: ...

    def __call__(self, *args: Any) -> Any: ...


def set_num_threads(threads: int) -> None:
    """Threads for later prange loops in the whole process, over the
    environment's; 1 <= n <= get_max_threads() (ValueError otherwise)."""

def get_num_threads() -> int:
    """The threads a prange loop started now uses: set_num_threads's count,
    else get_max_threads()."""

def get_max_threads() -> int:
    """KERNJIT_NUM_THREADS, else OMP_NUM_THREADS, else the number of cores,
    as os.environ says now (kernels with parallel loops read it at every
    call: Ray sets OMP_NUM_THREADS per task)."""
