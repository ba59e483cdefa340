"""What the names a kernel reads are bound to, and the program they make.

As in Numba, a kernel's globals are resolved when it is first compiled, and
frozen: `free_names` lists the names a ``def`` reads without binding them,
`resolve` looks each up in the function's closure, then its module's
globals (builtins such as ``range`` and ``len`` are the kernel language's
own), and `describe` says what the value is, in the encoding of
``_kernjit.GlobalSpec``:

* numbers, booleans, NumPy scalars and (nested) tuples of them: constants;
* the modules ``math``, ``numpy`` and ``numba`` under any alias (and
  ``kernjit``, which stands for ``numba``);
* members of those modules bound to a name (``from math import sqrt``,
  ``from numpy import float32``, ``from numba import prange``, kernjit's own
  ``prange``);
* other kernels (kernjit's, or Numba's ``@njit`` functions through their
  ``py_func``), whose sources join the same program;
* anything else, described for the error the compiler reports where it is
  used.

`ProgramBuilder` collects the segments of one program: the kernel's ``def``
and, recursively, those of the kernels it calls, each function once.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ._errors import CompileError
from ._source import FunctionSource, function_source

__all__ = [
    "free_names",
    "resolve",
    "describe",
    "constant",
    "member_of",
    "ProgramBuilder",
    "Unit",
]

_MISSING = object()
_KNOWN_MODULES = ("math", "numpy", "numba")
_DTYPES = frozenset(
    "float64 float32 int64 int32 int16 int8 uint64 uint32 uint16 uint8 bool".split()
)


# ---- names -----------------------------------------------------------------


class _Names(ast.NodeVisitor):
    """Python's scoping, simplified for one function and what it nests: a
    name bound anywhere in the function (parameter, assignment, for target,
    import, nested def) is local to it; ``global x`` makes ``x`` global."""

    def __init__(self) -> None:
        self.bound: set = set()
        self.declared_global: set = set()
        self.loads: Dict[str, None] = {}

    def bind_arguments(self, args: ast.arguments) -> None:
        for arg in (*getattr(args, "posonlyargs", ()), *args.args, *args.kwonlyargs):
            self.bound.add(arg.arg)
        if args.vararg:
            self.bound.add(args.vararg.arg)
        if args.kwarg:
            self.bound.add(args.kwarg.arg)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.setdefault(node.id, None)
        else:
            self.bound.add(node.id)

    def visit_FunctionDef(self, node: Any) -> None:
        if self.depth:
            self.bound.add(node.name)
        self.depth += 1
        self.bind_arguments(node.args)
        for default in (*node.args.defaults, *node.args.kw_defaults):
            if default is not None:
                self.visit(default)
        for arg in (*getattr(node.args, "posonlyargs", ()), *node.args.args, *node.args.kwonlyargs):
            if arg.annotation is not None:
                self.visit(arg.annotation)
        if node.returns is not None:
            self.visit(node.returns)
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    depth = 0

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.bind_arguments(node.args)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bound.add(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global.update(node.names)

    def visit_Import(self, node: Any) -> None:
        for alias in node.names:
            self.bound.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: Any) -> None:  # pragma: no cover - 3.10+
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs


def free_names(node: ast.FunctionDef) -> List[str]:
    """The names the function reads and does not bind itself, in the order
    they first appear (decorators excluded)."""
    names = _Names()
    names.visit(node)
    local = names.bound - names.declared_global
    return [name for name in names.loads if name not in local]


def resolve(func: Any, name: str) -> Any:
    """What ``name`` is bound to for ``func``: its closure cell, else its
    module's global; `_MISSING` for builtins and names bound nowhere."""
    code = func.__code__
    if name in code.co_freevars and func.__closure__ is not None:
        cell = func.__closure__[code.co_freevars.index(name)]
        try:
            return cell.cell_contents
        except ValueError:  # a closure variable not assigned yet
            return _MISSING
    value = func.__globals__.get(name, _MISSING)
    if value is not _MISSING and getattr(builtins, name, _MISSING) is value:
        return _MISSING  # `from builtins import range`: still the builtin
    return value


# ---- values ----------------------------------------------------------------


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def constant(value: Any) -> Optional[Tuple[Any, ...]]:
    """The frozen constant for ``value`` (see ``_kernjit.GlobalSpec``), or
    None if it is not a number, boolean, NumPy scalar or tuple of them."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        # First: np.float64 is also a Python float, but keeps its dtype.
        name = value.dtype.name
        if name in _DTYPES:
            return ("np", name, value.item())
        return None
    if isinstance(value, bool):
        return ("bool", bool(value))
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, float):
        return ("float", float(value))
    if isinstance(value, tuple):
        items = [constant(item) for item in value]
        if all(item is not None for item in items):
            return ("tuple", items)
    return None


def _describe_unsupported(value: Any) -> str:
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return "a NumPy array"  # the compiler advises passing it as an argument
        if isinstance(value, numpy.generic):
            return f"a NumPy {value.dtype.name} scalar"
        if isinstance(value, numpy.dtype):
            return f"the NumPy dtype {value.name}"
    if isinstance(value, types.ModuleType):
        return f"the module {value.__name__}"
    if value is None:
        return "None"
    if isinstance(value, tuple):
        for item in value:
            if constant(item) is None:
                return f"a tuple holding {_describe_unsupported(item)}"
    if isinstance(value, list):
        return "a list (use a tuple, or pass a NumPy array as an argument)"
    if isinstance(value, types.FunctionType):
        return (
            f"a plain Python function {value.__module__}.{value.__qualname__} "
            "(decorate it with @njit to call it from a kernel)"
        )
    if isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        module = getattr(value, "__module__", None)
        return f"the function {module + '.' if module else ''}{value.__name__}"
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    return _article(type(value).__name__)


_member_index: Dict[str, Tuple[int, Dict[int, str]]] = {}


def _module(name: str) -> Optional[types.ModuleType]:
    module = sys.modules.get(name)
    if module is None and name == "math":
        import math as module  # always cheap
    return module


def member_of(value: Any) -> Optional[Tuple[str, str]]:
    """(module, name) if ``value`` is a member of math, numpy or numba (found
    by identity; the name it has there is preferred)."""
    from . import _decorator

    if value is _decorator.prange:
        return ("numba", "prange")
    own_name = getattr(value, "__name__", None)
    for module_name in _KNOWN_MODULES:
        module = _module(module_name)
        if module is None:  # a value cannot come from a module never imported
            continue
        if isinstance(own_name, str) and own_name:
            try:
                if getattr(module, own_name, _MISSING) is value:
                    return (module_name, own_name)
            except Exception:  # pragma: no cover - an odd module __getattr__
                pass
        namespace = vars(module)
        size, index = _member_index.get(module_name, (-1, {}))
        if size != len(namespace):
            index = {}
            for name, member in list(namespace.items()):
                if not name.startswith("_"):
                    index.setdefault(id(member), name)
            _member_index[module_name] = (len(namespace), index)
        found = index.get(id(value))
        if found is not None and namespace.get(found) is value:
            return (module_name, found)
    return None


def _is_numba_dispatcher(value: Any) -> bool:
    module = type(value).__module__ or ""
    return module.startswith("numba") and isinstance(getattr(value, "py_func", None), types.FunctionType)


def describe(value: Any, builder: "ProgramBuilder") -> Tuple[Any, ...]:
    """The GlobalSpec for a global's value; kernels join `builder`."""
    kernel_units = getattr(type(value), "_kernjit_add_to", None)
    if kernel_units is not None:
        return ("kernel", value._kernjit_add_to(builder))
    if _is_numba_dispatcher(value):
        return ("kernel", builder.add_function(value.py_func))
    const = constant(value)
    if const is not None:
        return ("const", const)
    if isinstance(value, types.ModuleType):
        if value.__name__ in _KNOWN_MODULES:
            return ("module", value.__name__)
        if value.__name__ == "kernjit":
            return ("module", "numba")
        return ("unsupported", f"the module {value.__name__}")
    if not isinstance(value, (list, dict, set, str, bytes)) and value is not None:
        member = member_of(value)
        if member is not None:
            return ("member",) + member
    return ("unsupported", _describe_unsupported(value))


# ---- programs ----------------------------------------------------------------


Segment = Tuple[str, str, int, int, Dict[str, Tuple[Any, ...]]]
# One piece of a program: the def names it defines and its segment.
Unit = Tuple[Tuple[str, ...], Segment]


def _where(segment: Segment) -> str:
    return f"{segment[0]}:{segment[2]}"


class ProgramBuilder:
    """The segments of one program: a kernel and every kernel it calls."""

    def __init__(self) -> None:
        self.units: List[Unit] = []
        self._by_name: Dict[str, Tuple[Any, Segment]] = {}
        self._by_function: Dict[int, str] = {}
        self._keep: List[Any] = []  # functions whose ids are keys above

    def _claim(self, names: Iterable[str], key: Any, segment: Segment) -> bool:
        """Registers a unit's names; False if the very same unit is in
        already, CompileError if another function has one of its names."""
        names = tuple(names)
        for name in names:
            seen = self._by_name.get(name)
            if seen is None:
                continue
            if seen[0] == key:
                return False
            first, second = _where(seen[1]), _where(segment)
            if first == second:
                both = f"two closures of the def at {first}, with different values"
            else:
                both = f"{first} and {second}"
            raise CompileError(
                f"two different functions named {name!r} would be kernels of one program: "
                f"{both}. A kernel and the kernels it calls need distinct names: rename one of them"
            )
        for name in names:
            self._by_name[name] = (key, segment)
        self.units.append((names, segment))
        return True

    def add_function(self, func: Any, source: Optional[FunctionSource] = None) -> str:
        """Adds a Python function (and, recursively, the kernels it calls);
        returns the name its def gives it."""
        known = self._by_function.get(id(func))
        if known is not None:
            return known
        if source is None:
            source = function_source(func)
        globals_: Dict[str, Tuple[Any, ...]] = {}
        segment: Segment = (source.filename, source.text, source.first_line, source.indent, globals_)
        key: Any = (source.filename, source.first_line, source.text)
        if func.__closure__:
            key = key + (id(func),)
        self._by_function[id(func)] = source.name
        self._keep.append(func)
        if not self._claim((source.name,), key, segment):
            return source.name
        # Filled after the claim, so that recursion finds the unit.
        for name in free_names(source.node):
            value = resolve(func, name)
            if value is _MISSING:
                continue
            globals_[name] = describe(value, self)
        return source.name

    def add_units(self, units: Iterable[Unit]) -> None:
        """Adds frozen units (from a pickle or a .kern file)."""
        for names, segment in units:
            key = (segment[0], segment[2], segment[1])
            self._claim(names, key, segment)

    def segments(self) -> List[Segment]:
        return [segment for _, segment in self.units]


def collect(func: Any, source: Optional[FunctionSource] = None) -> Tuple[str, List[Unit]]:
    """The program of one kernel: (its def name, its units)."""
    builder = ProgramBuilder()
    name = builder.add_function(func, source)
    return name, builder.units
