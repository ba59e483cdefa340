"""Pickling kernels by value.

A kernel pickles as the sources of itself and of the kernels it calls (each
segment's file name, text, first line and indentation, so that diagnostics in
the other process still name the original file and line), their globals
frozen as ``_kernjit.GlobalSpec`` values, its options and its eager
signatures: never by reference, so a kernel defined in ``__main__``, in a
notebook or in a file the other process cannot see ships to a fresh process
(multiprocessing, joblib, Ray...) and compiles there on its first call.
Nothing there calls ``inspect``.

Unpickling in the process a kernel comes from gives back the same kernel
object; unpickling the same kernel again in another process gives back the
first copy there (compiled code is reused, as Numba does).

``py_func`` of an unpickled kernel is a plain Python function rebuilt lazily
from the shipped source: its globals are the frozen constants, the modules
and members it named, the plain-Python versions of the kernels it calls, and
``prange`` (which is ``range`` in Python).
"""

from __future__ import annotations

import builtins
import importlib
import math
import threading
import types
import uuid
import weakref
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["reduce", "rebuild_function"]

_VERSION = 1
_SKIP = object()
_registry: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def _remember(dispatcher: Any) -> None:
    try:
        with _registry_lock:
            _registry[dispatcher._uuid] = dispatcher
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass


def reduce(dispatcher: Any) -> Tuple[Any, ...]:
    """``Dispatcher.__reduce__``: (_rebuild, (state,)), always by value."""
    units = dispatcher._frozen_units()
    if dispatcher._uuid is None:
        dispatcher._uuid = uuid.uuid4().hex
        _remember(dispatcher)
    state = {
        "version": _VERSION,
        "uuid": dispatcher._uuid,
        "name": dispatcher._def_name,
        "qualname": getattr(dispatcher, "__qualname__", dispatcher._def_name),
        "module": getattr(dispatcher, "__module__", "__main__"),
        "doc": getattr(dispatcher, "__doc__", None),
        "units": [(tuple(names), tuple(segment)) for names, segment in units],
        "options": dict(dispatcher._options),
        "signatures": list(dispatcher._eager) if dispatcher._eager else None,
    }
    return (_rebuild, (state,))


def _rebuild(state: Dict[str, Any]) -> Any:
    """Recreates a kernel from `reduce`'s state (module-level, so that any
    pickler finds it by reference in kernjit)."""
    from ._dispatcher import Dispatcher

    version = state.get("version")
    if version != _VERSION:
        raise ValueError(f"this kernel was pickled by another kernjit (format {version}, this one reads {_VERSION})")
    with _registry_lock:
        existing = _registry.get(state["uuid"])
    if existing is not None:
        return existing
    dispatcher = Dispatcher._from_units(
        state["name"],
        [(tuple(names), tuple(segment)) for names, segment in state["units"]],
        state["options"],
        state["signatures"],
        qualname=state["qualname"],
        module=state["module"],
        doc=state["doc"],
    )
    dispatcher._uuid = state["uuid"]
    _remember(dispatcher)
    return dispatcher


# ---- py_func in a process that never saw the file ---------------------------


def _numba_module() -> types.ModuleType:
    """``numba`` for rebuilt functions, without importing Numba (a second)
    unless something other than ``prange`` is used."""
    from ._decorator import prange

    module = types.ModuleType("numba")
    module.prange = prange  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        return getattr(importlib.import_module("numba"), name)

    setattr(module, "__getattr__", __getattr__)  # PEP 562
    return module


def _constant(const: Any) -> Any:
    kind = const[0]
    if kind in ("int", "float", "bool"):
        return const[1]
    if kind == "np":
        import numpy

        return numpy.dtype(const[1]).type(const[2])
    if kind == "tuple":
        return tuple(_constant(item) for item in const[1])
    raise ValueError(f"unknown constant {const!r}")


def _value(spec: Tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "const":
        return _constant(spec[1])
    if kind == "module":
        if spec[1] == "math":
            return math
        if spec[1] == "numba":
            return _numba_module()
        return importlib.import_module(spec[1])
    if kind == "member":
        module, name = spec[1], spec[2]
        if module == "numba":
            if name == "prange":
                from ._decorator import prange

                return prange
            try:
                return getattr(importlib.import_module("numba"), name)
            except ImportError:
                return _SKIP
        return getattr(importlib.import_module(module), name)
    return _SKIP  # kernels are linked afterwards; unsupported names stay unbound


def rebuild_function(units: List[Any], name: str, module_name: str = "__main__") -> Optional[types.FunctionType]:
    """The plain Python function `name` from frozen units (None if it
    cannot be rebuilt)."""
    from ._decorator import prange

    functions: Dict[str, types.FunctionType] = {}
    links = []
    for names, segment in units:
        filename, text, first_line, _indent, globals_ = segment
        namespace: Dict[str, Any] = {"__name__": module_name, "__builtins__": builtins, "prange": prange}
        try:
            for global_name, spec in globals_.items():
                if spec[0] == "kernel":
                    links.append((namespace, global_name, spec[1]))
                    continue
                value = _value(spec)
                if value is not _SKIP:
                    namespace[global_name] = value
            code = compile("\n" * max(first_line - 1, 0) + text, filename, "exec")
            exec(code, namespace)
        except Exception:
            continue
        for def_name in names:
            function = namespace.get(def_name)
            if isinstance(function, types.FunctionType):
                functions[def_name] = function
    for namespace, global_name, target in links:
        if target in functions:
            namespace[global_name] = functions[target]
    return functions.get(name)
