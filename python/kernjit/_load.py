"""``kernjit.load``: the kernels of a ``.kern`` file as a module."""

from __future__ import annotations

import os
import types
from typing import Any, List, Tuple, Union

from . import _kernjit

__all__ = ["load"]


def _leading_comment(text: str) -> str:
    lines: List[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if lines or stripped:
                break
            continue
        lines.append(stripped[1:].strip())
    return "\n".join(lines)


def load(path: Union[str, "os.PathLike[str]"], *, boundscheck: bool = True) -> types.ModuleType:
    """Compiles the kernels of a ``.kern`` file (kernjit's own files: a
    Python subset with ``import math``/``import numpy as np`` and defs).

    Returns a module whose attributes are the file's kernels, as callables
    like those of ``njit`` (``__all__`` lists them; ``__file__`` is the path;
    the file's leading comment is its ``__doc__``). The file is parsed now:
    a missing file raises FileNotFoundError, a syntax error CompileError;
    type errors appear at the first call of a signature. ``boundscheck=False``
    drops the bounds checks (None means True)."""
    from ._dispatcher import Dispatcher

    name = os.fspath(path)
    if not isinstance(name, str):
        name = os.fsdecode(name)
    with open(name, encoding="utf-8") as file:
        text = file.read()
    check = True if boundscheck is None else bool(boundscheck)
    program = _kernjit.Program.load(name, boundscheck=check)
    kernels = list(program.kernel_names())
    stem = os.path.splitext(os.path.basename(name))[0]
    module = types.ModuleType(stem, _leading_comment(text) or None)
    module.__file__ = os.path.abspath(name)
    units: List[Tuple[Tuple[str, ...], Tuple[str, str, int, int, Any]]] = [
        (tuple(kernels), (name, text, 1, 0, {}))
    ]
    for kernel in kernels:
        # parallel=True: a .kern file's prange loops run in parallel, here
        # and in a process the kernel is pickled to (Ray workers).
        dispatcher = Dispatcher._from_units(
            kernel, units, {"boundscheck": check, "parallel": True}, module=stem, program=program
        )
        setattr(module, kernel, dispatcher)
    module.__all__ = kernels  # type: ignore[attr-defined]
    return module
