"""kernjit: a JIT compiler for numeric Python kernels, a drop-in for Numba."""

import os
import types
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Generic,
    List,
    Literal,
    Optional,
    Sequence,
    Set,
    TextIO,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from typing_extensions import ParamSpec

from ._kernjit import CompileError as CompileError
from ._kernjit import get_max_threads as get_max_threads
from ._kernjit import get_num_threads as get_num_threads
from ._kernjit import set_num_threads as set_num_threads

__version__: str
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

TypingError = CompileError

_P = ParamSpec("_P")
_R = TypeVar("_R")

# A signature as Numba writes it: "float64(float64[:], int64)", "(f8[:, ::1], f8)",
# "void(f8[:])", or a numba Signature object / tuple of numba types.
_Signature = Union[str, Tuple[Any, ...]]
_Signatures = Union[str, List[Any], Tuple[Any, ...]]
_FastMath = Union[bool, Set[str], FrozenSet[str], Dict[str, Any]]
_Inline = Union[Literal["never", "always"], Callable[..., Any]]

class prange:
    """``range`` whose iterations may run in parallel in a kernel; plain
    ``range`` when called from Python."""

    def __new__(cls, *args: int) -> range: ...  # type: ignore[misc]

class Dispatcher(Generic[_P, _R]):
    """A compiled kernel: call it like the Python function."""

    __name__: str
    __qualname__: str
    __module__: str
    __doc__: Optional[str]
    __wrapped__: Callable[_P, _R]
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
    # The Python function (in a process that unpickled the kernel, or for a
    # kernel of a .kern file, a plain function made from its source text).
    @property
    def py_func(self) -> Callable[_P, _R]: ...
    @property
    def signatures(self) -> List[Tuple[str, ...]]: ...
    @property
    def nopython_signatures(self) -> List[Tuple[str, ...]]: ...
    @property
    def targetoptions(self) -> Dict[str, Any]: ...
    def inspect_types(
        self,
        file: Optional[TextIO] = None,
        signature: Optional[_Signature] = None,
        pretty: bool = False,
        style: str = "default",
        **kwargs: Any,
    ) -> None: ...
    @overload
    def inspect_asm(self, signature: None = None) -> Dict[Tuple[str, ...], str]: ...
    @overload
    def inspect_asm(self, signature: _Signature) -> str: ...
    @overload
    def inspect_clif(self, signature: None = None) -> Dict[Tuple[str, ...], str]: ...
    @overload
    def inspect_clif(self, signature: _Signature) -> str: ...
    def stats(self) -> Dict[str, Union[int, float]]: ...
    def interpret(self, *args: Any) -> _R: ...
    def recompile(self) -> None: ...
    def __copy__(self) -> Dispatcher[_P, _R]: ...
    def __deepcopy__(self, memo: Any) -> Dispatcher[_P, _R]: ...

@overload
def njit(
    signature_or_function: Callable[_P, _R],
    *,
    parallel: Union[bool, Dict[str, bool]] = False,
    boundscheck: Optional[bool] = None,
    fastmath: _FastMath = False,
    cache: bool = False,
    nogil: bool = False,
    nopython: bool = True,
    error_model: Literal["python", "numpy"] = "python",
    inline: _Inline = "never",
) -> Dispatcher[_P, _R]: ...
@overload
def njit(
    signature_or_function: Optional[_Signatures] = None,
    *,
    parallel: Union[bool, Dict[str, bool]] = False,
    boundscheck: Optional[bool] = None,
    fastmath: _FastMath = False,
    cache: bool = False,
    nogil: bool = False,
    nopython: bool = True,
    error_model: Literal["python", "numpy"] = "python",
    inline: _Inline = "never",
) -> Callable[[Callable[_P, _R]], Dispatcher[_P, _R]]: ...
@overload
def jit(
    signature_or_function: Callable[_P, _R],
    *,
    parallel: Union[bool, Dict[str, bool]] = False,
    boundscheck: Optional[bool] = None,
    fastmath: _FastMath = False,
    cache: bool = False,
    nogil: bool = False,
    nopython: bool = True,
    error_model: Literal["python", "numpy"] = "python",
    inline: _Inline = "never",
) -> Dispatcher[_P, _R]: ...
@overload
def jit(
    signature_or_function: Optional[_Signatures] = None,
    *,
    parallel: Union[bool, Dict[str, bool]] = False,
    boundscheck: Optional[bool] = None,
    fastmath: _FastMath = False,
    cache: bool = False,
    nogil: bool = False,
    nopython: bool = True,
    error_model: Literal["python", "numpy"] = "python",
    inline: _Inline = "never",
) -> Callable[[Callable[_P, _R]], Dispatcher[_P, _R]]: ...
def load(path: Union[str, "os.PathLike[str]"], *, boundscheck: Optional[bool] = True) -> types.ModuleType: ...
