"""``njit``, ``jit`` and ``prange``: Numba's decorator surface."""

from __future__ import annotations

import types
from typing import Any, Dict

__all__ = ["njit", "jit", "prange", "validate_options", "OPTIONS"]


class prange:
    """A ``range`` whose iterations may run in parallel in a kernel.

    In a kernel, ``for i in prange(n)`` splits the iterations between
    threads (see `set_num_threads`) when the kernel was decorated with
    ``parallel=True`` and runs them in order otherwise (as Numba); kernjit
    checks that the iterations do not race and makes reductions
    deterministic. Called from plain Python, ``prange(...)`` is just
    ``range(...)`` (as Numba's)."""

    def __new__(cls, *args: Any) -> range:  # type: ignore[misc]
        return range(*args)


# The options Numba users pass, with what they do here.
OPTIONS = {
    "parallel": "False (default, as Numba): prange loops run serially; True: they use the "
    "threads of set_num_threads, with the same results",
    "boundscheck": "True or None (default): every index is checked (IndexError naming "
    "the array, axis, index and extent); False: unchecked, as Numba's default",
    "fastmath": "accepted; results stay IEEE-exact (no reassociation)",
    "cache": "accepted; nothing to cache on disk when a compile takes a millisecond",
    "nogil": "accepted; the GIL is always released while compiling and running (a "
    "straight-line kernel, which runs in nanoseconds, keeps it)",
    "nopython": "accepted; kernels are always nopython (there is no object mode)",
    "error_model": "'python' or 'numpy', accepted; integer division by zero always raises "
    "ZeroDivisionError, floats follow IEEE",
    "inline": "'never', 'always' or a cost function, accepted; kernjit decides what to inline",
}


def _check_bool(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (isinstance(value, bool) or type(value).__name__ == "bool_" or (isinstance(value, int) and value in (0, 1))):
        raise TypeError(f"njit option {name}= takes True or False, not {value!r}")


def validate_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Checks the keyword options of njit/jit; returns them normalised
    (TypeError for an unknown option or a value of the wrong type,
    ValueError for an unknown value)."""
    unknown = [name for name in options if name not in OPTIONS]
    if unknown:
        raise TypeError(
            f"njit() got an unexpected keyword argument {unknown[0]!r}; kernjit accepts "
            + ", ".join(OPTIONS)
        )
    parallel = options.get("parallel", False)
    if isinstance(parallel, dict):  # Numba's {'comprehension': False, ...}
        parallel = any(parallel.values()) if parallel else True
    _check_bool("parallel", parallel)
    boundscheck = options.get("boundscheck", None)
    _check_bool("boundscheck", boundscheck, allow_none=True)
    fastmath = options.get("fastmath", False)
    if isinstance(fastmath, (set, frozenset, list, tuple, dict)):
        flags = set(fastmath)
        bad = [f for f in flags if f not in {"fast", "nnan", "ninf", "nsz", "arcp", "contract", "afn", "reassoc"}]
        if bad:
            raise ValueError(f"njit option fastmath= has an unknown flag {bad[0]!r}")
        fastmath = bool(flags)
    else:
        _check_bool("fastmath", fastmath)
    for name in ("cache", "nogil", "nopython"):
        if name in options:
            _check_bool(name, options[name])
    error_model = options.get("error_model", "python")
    if not isinstance(error_model, str):
        raise TypeError(f"njit option error_model= takes 'python' or 'numpy', not {error_model!r}")
    if error_model not in ("python", "numpy"):
        raise ValueError(f"njit option error_model= takes 'python' or 'numpy', not {error_model!r}")
    inline = options.get("inline", "never")
    if isinstance(inline, str):
        if inline not in ("never", "always"):
            raise ValueError(f"njit option inline= takes 'never', 'always' or a function, not {inline!r}")
    elif not callable(inline):
        raise TypeError(f"njit option inline= takes 'never', 'always' or a function, not {inline!r}")
    return {
        "parallel": bool(parallel),
        "boundscheck": True if boundscheck is None else bool(boundscheck),
        "fastmath": bool(fastmath),
        "cache": bool(options.get("cache", False)),
        "nogil": bool(options.get("nogil", False)),
        "nopython": bool(options.get("nopython", True)),
        "error_model": error_model,
        "inline": inline if isinstance(inline, str) else "never",
    }


def _is_signature(value: Any) -> bool:
    if isinstance(value, (str, list, tuple)):
        return True
    return hasattr(value, "args") and hasattr(value, "return_type")


def _make(func: Any, signatures: Any, options: Dict[str, Any]) -> Any:
    from ._dispatcher import Dispatcher

    if isinstance(func, Dispatcher):
        func = func.py_func
    elif isinstance(getattr(func, "py_func", None), types.FunctionType):  # a Numba dispatcher
        func = func.py_func
    if not isinstance(func, types.FunctionType):
        raise TypeError(
            f"njit decorates Python functions (def), not {type(func).__name__} objects"
        )
    return Dispatcher._from_function(func, options, signatures)


def njit(signature_or_function: Any = None, **options: Any) -> Any:
    """Compiles a Python function to machine code on its first call (or now,
    for the signatures given), as Numba's ``njit``.

    Use it bare (``@njit``), with options (``@njit(parallel=False)``), or with
    eager signatures as Numba writes them (``@njit("float64(float64[:],
    int64)")``, a list of them, ``"(f8[:, ::1], f8)"`` with no result type,
    ``"void(f8[:])"``; numba type objects too). With eager signatures the
    kernel compiles at decoration (CompileError there) and accepts only
    arguments that match one of them (TypeError "No matching definition"
    otherwise).

    Options (all keyword-only; any other keyword is a TypeError):

    * ``parallel=False`` (default, as in Numba): ``prange`` loops run
      serially; ``parallel=True`` runs them on ``get_num_threads()``
      threads, with the same results (kernjit's reductions are
      deterministic, whatever the thread count).
    * ``boundscheck=True`` (default, unlike Numba; ``None`` means True): every
      index is checked and an out-of-bounds one raises IndexError naming the
      array, axis, index and extent; ``False`` drops the checks.
    * ``fastmath``: accepted (a bool or a set of flags); results stay
      IEEE-exact.
    * ``cache``: accepted; nothing to cache when a compile takes a
      millisecond (and a pickled kernel ships its source).
    * ``nogil``: accepted; the GIL is always released while a kernel
      compiles and runs (but for a straight-line kernel, no loop, call or
      array made, which runs in nanoseconds).
    * ``nopython``: accepted; kernels are always nopython.
    * ``error_model`` (``'python'`` or ``'numpy'``) and ``inline``
      (``'never'``, ``'always'`` or a function): accepted, no effect.

    The function's globals are resolved and frozen at its first compile, as
    in Numba: numbers, booleans, NumPy scalars and tuples of them become
    constants; ``math``, ``numpy`` and ``numba`` are known under any alias;
    other kernels (kernjit's or Numba's ``@njit``) it calls join its program.
    """
    validated = validate_options(options)
    if signature_or_function is None:
        return lambda func: _make(func, None, validated)
    if _is_signature(signature_or_function):
        signatures = signature_or_function
        if isinstance(signatures, tuple) and not signatures:
            signatures = None
        return lambda func: _make(func, signatures, validated)
    if callable(signature_or_function):
        return _make(signature_or_function, None, validated)
    raise TypeError(
        "njit takes a function, a signature string (or a list of them) and keyword options, "
        f"not {type(signature_or_function).__name__}"
    )


def jit(signature_or_function: Any = None, **options: Any) -> Any:
    """The same as `njit`: kernjit is always nopython (``nopython=True`` is
    accepted and is the only mode; there is no object mode to fall back to).
    See `njit` for the signatures and options."""
    return njit(signature_or_function, **options)


