"""The kernel object `njit` returns: a callable with Numba's introspection."""

from __future__ import annotations

import functools
import os
import sys
import threading
import types
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

from . import _kernjit
from . import _signature
from ._errors import CompileError
from ._globals import ProgramBuilder, Unit
from ._source import FunctionSource, function_source

__all__ = ["Dispatcher", "disable_jit"]

_DEFAULT_OPTIONS: Dict[str, Any] = {
    "parallel": False,
    "boundscheck": True,
    "fastmath": False,
    "cache": False,
    "nogil": False,
    "nopython": True,
    "error_model": "python",
    "inline": "never",
}

_ZERO_STATS = {
    "hits": 0,
    "misses": 0,
    "evictions": 0,
    "cached": 0,
    "parse": 0.0,
    "infer": 0.0,
    "lower": 0.0,
    "cranelift": 0.0,
    "finalize": 0.0,
}


def disable_jit() -> bool:
    """Whether KERNJIT_DISABLE_JIT asks every call to run in the reference
    interpreter (read when a kernel is built, i.e. at its first call)."""
    value = os.environ.get("KERNJIT_DISABLE_JIT", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _fresh(error: BaseException) -> BaseException:
    # Raising one stored exception object again and again would chain its
    # tracebacks; raise a new one with the same message.
    try:
        return type(error)(*error.args)
    except Exception:  # pragma: no cover
        return error


class Dispatcher(_kernjit.Dispatcher):
    """A kernel compiled by kernjit: call it like the Python function.

    It compiles (in about a millisecond) on the first call for each new
    combination of argument types and layouts, then calls machine code with
    the GIL released. Attributes and methods, as in Numba:

    * ``py_func``: the Python function (for a kernel unpickled in another
      process, or a kernel of a ``.kern`` file, a plain function made from
      its source text, with ``prange`` as ``range``);
    * ``signatures``: the signatures compiled so far, each a tuple of Numba
      type names, one per argument: ``('float64[:, ::1]', 'int64')``;
    * ``inspect_types()``, ``inspect_asm()``, ``inspect_clif()``: the typed
      program, the machine code and Cranelift's IR;
    * ``stats()``: cache hits and misses, compile time per phase;
    * ``interpret(*args)``: run the reference interpreter (same semantics,
      same errors, same results bit for bit);
    * ``recompile()``: resolve the globals again and recompile.
    """

    # Set by _new for every instance.
    _func: Optional[Callable[..., Any]]  # the decorated function
    _source: Any  # its FunctionSource, or the CompileError getting it
    _units: Optional[List[Unit]]  # the program's sources, once frozen
    _eager: Optional[List[Tuple[str, Optional[str]]]]
    _options: Dict[str, Any]
    _def_name: str
    _rebuilt: Any  # py_func recreated from the units (lazily)
    _uuid: Optional[str]
    _lock: Any
    __name__: str
    __qualname__: str

    # ---- construction ------------------------------------------------------

    @classmethod
    def _new(cls, name: str) -> "Dispatcher":
        self = cls.__new__(cls, name)  # type: ignore[call-arg]
        self._lock = threading.RLock()
        self._def_name = name
        self._func = None
        self._source = None
        self._units = None
        self._eager = None
        self._options = _DEFAULT_OPTIONS
        self._rebuilt = None
        self._uuid = None
        return self

    @classmethod
    def _from_function(
        cls, func: Callable[..., Any], options: Dict[str, Any], signatures: Any = None
    ) -> "Dispatcher":
        eager = _signature.parse_many(signatures) if signatures is not None else None
        source: Any
        try:
            source = function_source(func)
        except CompileError as error:
            source = error
        self = cls._new(source.name if isinstance(source, FunctionSource) else func.__name__)
        functools.update_wrapper(self, func)
        self._func = func
        self._source = source
        self._options = dict(options)
        self._eager = eager or None
        if self._eager:
            self._build()
        return self

    @classmethod
    def _from_units(
        cls,
        name: str,
        units: List[Unit],
        options: Dict[str, Any],
        signatures: Optional[List[Tuple[str, Optional[str]]]] = None,
        *,
        qualname: Optional[str] = None,
        module: Optional[str] = None,
        doc: Optional[str] = None,
        program: Optional[Any] = None,
    ) -> "Dispatcher":
        """A kernel from frozen sources (a pickle, a .kern file); `program`
        if it is built already."""
        self = cls._new(name)
        self.__name__ = name
        self.__qualname__ = qualname or name
        self.__module__ = module or "__main__"
        self.__doc__ = doc
        self._units = units
        self._options = {**_DEFAULT_OPTIONS, **options}
        self._eager = signatures or None
        if program is not None:
            self._set_program(program, name, self._eager, interpret=disable_jit())
        elif self._eager:
            self._build()
        return self

    # ---- building ----------------------------------------------------------

    def _frozen_units(self) -> List[Unit]:
        """The program's segments, resolving the globals now the first time
        (as Numba does at the first compile)."""
        units = self._units
        if units is None:
            with self._lock:
                if self._units is None:
                    if not isinstance(self._source, FunctionSource):
                        raise _fresh(self._source)
                    builder = ProgramBuilder()
                    assert self._func is not None
                    builder.add_function(self._func, self._source)
                    self._units = builder.units
                units = self._units
        return units

    def _make_program(self, units: List[Unit]) -> Any:
        options = self._options
        return _kernjit.Program(
            [segment for _, segment in units],
            boundscheck=options["boundscheck"],
            fastmath=options["fastmath"],
            threads=None if options["parallel"] else 1,
        )

    def _build(self) -> None:
        """Called by the native ``__call__`` before the first call: resolves
        the sources and globals, builds the program, binds to it (and
        compiles the eager signatures)."""
        with self._lock:
            if self._program() is not None:
                return
            program = self._make_program(self._frozen_units())
            self._set_program(program, self._def_name, self._eager, interpret=disable_jit())

    def _kernjit_add_to(self, builder: ProgramBuilder) -> str:
        """Adds this kernel's sources to another kernel's program (it calls
        this one); returns the name its def gives it."""
        if self._func is not None:
            if not isinstance(self._source, FunctionSource):
                raise _fresh(self._source)
            return builder.add_function(self._func, self._source)
        builder.add_units(self._frozen_units())
        return self._def_name

    def recompile(self) -> None:
        """Resolves the globals again (they are frozen at the first compile)
        and recompiles the eager signatures; other signatures compile again
        on their next call."""
        with self._lock:
            if self._func is not None:
                self._units = None
            program = self._make_program(self._frozen_units())
            self._set_program(program, self._def_name, self._eager, interpret=disable_jit())

    def _built(self) -> Any:
        program = self._program()
        if program is None:
            self._build()
            program = self._program()
        return program

    # ---- Numba's attributes ------------------------------------------------

    @property
    def py_func(self) -> Optional[Callable[..., Any]]:
        """The Python function. For a kernel unpickled in another process
        or loaded from a .kern file: a plain function made from its source
        text (frozen constants as its globals, the kernels it calls as plain
        functions, ``prange`` as ``range``), or None if that fails."""
        if self._func is not None:
            return self._func
        if self._rebuilt is None and self._units is not None:
            from ._pickle import rebuild_function

            self._rebuilt = rebuild_function(self._units, self._def_name, self.__module__) or False
        return self._rebuilt or None

    @property
    def targetoptions(self) -> Dict[str, Any]:
        """The options the kernel was decorated with (normalised)."""
        return dict(self._options)

    @property
    def signatures(self) -> List[Tuple[str, ...]]:
        """The signatures compiled so far: for each, a tuple of Numba type
        names, one per argument, e.g. ``('float64[:, ::1]', 'int64')``
        (Numba lists tuples of type objects; these strings print the same
        and can be passed back to ``inspect_asm``)."""
        program = self._program()
        if program is None:
            return []
        return [_signature.numba_args(text) for text in program.signatures(self._def_name)]

    nopython_signatures = signatures

    def _kern_signature(self, signature: Any) -> str:
        program = self._built()
        compiled = program.signatures(self._def_name)
        if isinstance(signature, str) and signature.strip() in compiled:
            return signature.strip()
        text = _signature.to_kern_args(signature)
        if text in compiled:
            return text
        if self._eager is not None:
            raise KeyError(
                f"{signature!r} is not a signature of {self.__name__}; compiled: {self.signatures}"
            )
        program.compile(self._def_name, text)
        return text

    def _selected(self, signature: Any) -> List[str]:
        if signature is None:
            program = self._program()
            return list(program.signatures(self._def_name)) if program is not None else []
        return [self._kern_signature(signature)]

    def inspect_types(
        self,
        file: Optional[TextIO] = None,
        signature: Any = None,
        pretty: bool = False,
        style: str = "default",
        **kwargs: Any,
    ) -> None:
        """Prints the typed program (every expression with its type) of each
        compiled signature, or of `signature`, to `file` (stdout), as
        Numba's ``inspect_types`` does. `pretty` and `style` are accepted."""
        out = sys.stdout if file is None else file
        for text in self._selected(signature):
            program = self._program()
            assert program is not None
            label = "(" + ", ".join(_signature.numba_args(text)) + ")"
            print(f"{self._def_name} {label}", file=out)
            print("-" * 80, file=out)
            print(program.inspect_types(self._def_name, text), file=out)
            print("=" * 80, file=out)

    def _inspect(self, what: str, signature: Any) -> Any:
        if signature is not None:
            text = self._kern_signature(signature)
            return getattr(self._program(), what)(self._def_name, text)
        program = self._program()
        return {
            _signature.numba_args(text): getattr(program, what)(self._def_name, text)
            for text in self._selected(None)
        }

    def inspect_asm(self, signature: Any = None) -> Any:
        """The machine code of `signature` (a tuple from ``signatures``, or a
        signature as Numba writes it; compiled now if it was not), or a dict
        signature -> text of every compiled signature, as in Numba."""
        return self._inspect("inspect_asm", signature)

    def inspect_clif(self, signature: Any = None) -> Any:
        """Cranelift's IR of `signature`, or a dict of every compiled one
        (where Numba has ``inspect_llvm``)."""
        return self._inspect("inspect_clif", signature)

    def stats(self) -> Dict[str, Any]:
        """{"hits", "misses", "evictions", "cached": counts, "parse",
        "infer", "lower", "cranelift", "finalize": seconds spent}."""
        program = self._program()
        if program is None:
            return dict(_ZERO_STATS)
        return dict(program.stats())

    def interpret(self, *args: Any) -> Any:
        """Runs the kernel in kernjit's reference interpreter: the same
        program, semantics, errors and results (bit for bit) as the compiled
        code, slowly. Arrays are updated in place."""
        return self._built().interpret(self._def_name, args)

    # ---- Python protocols --------------------------------------------------

    def __repr__(self) -> str:
        if self._func is not None:
            return f"kernjit.Dispatcher({self._func!r})"
        where = ""
        if self._units:
            segment = self._units[0][1]
            where = f" from {segment[0]}:{segment[2]}"
        return f"<kernjit.Dispatcher {self.__qualname__}{where}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickles by value: the source texts of the kernel and of those it
        calls, their frozen globals, the options and eager signatures (see
        kernjit._pickle)."""
        from ._pickle import reduce

        return reduce(self)

    # Dispatcher[[float, float], float] in annotations, as the stubs type it.
    __class_getitem__ = classmethod(types.GenericAlias)  # type: ignore[var-annotated]

    def __copy__(self) -> "Dispatcher":
        return self

    def __deepcopy__(self, memo: Any) -> "Dispatcher":
        return self
