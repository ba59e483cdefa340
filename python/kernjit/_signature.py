"""Eager signatures as Numba writes them, translated to kern's type names.

Numba spells types its own way (``float64``, ``f8``, ``int32``, ``i4``,
``boolean``, ``float32[:, ::1]``, ``array(float64, 2d, C)``) and evaluates a
signature string in its ``types`` namespace; kern's names are NumPy's short
ones (``f64 f32 i64 i32 i16 i8 u64 u32 u16 u8 bool``). Careful: Numba's
``i8``/``u8`` are 8 *bytes* (int64/uint64) while kern's are 8 *bits*; every
string here is read with Numba's meaning.

`parse` turns one signature (a string, a ``numba`` signature object, or a
tuple of argument types) into ``(args_text, result)`` as
``Dispatcher._set_program`` takes it: ``("(f64[:, ::1], f64)", "f64")``.
`numba_args` turns kern's text back into Numba's spelling for display.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple, Union

__all__ = ["SignatureError", "parse", "parse_many", "numba_args", "kern_args_text", "KERN_TO_NUMBA"]


class SignatureError(TypeError, ValueError):
    """A signature kernjit cannot read (both a TypeError and a ValueError,
    so code written for either catches it)."""


# Numba's names (and NumPy's, and a few of kern's own unambiguous ones) for
# the 11 dtypes kernels compute with.
_SCALARS = {
    "f64": (
        "float64 f8 double float np_float64 np_double c_float64 py_float f64 longdouble"
    ),
    "f32": "float32 f4 float_ single np_float32 np_float_ c_float32 f32",
    "i64": (
        "int64 i8 int_ intp long_ longlong ssize_t int np_int64 np_int_ np_intp np_long "
        "np_longlong c_int64 c_intp py_int i64"
    ),
    "i32": "int32 i4 intc np_int32 np_intc c_int32 i32",
    "i16": "int16 i2 short np_short np_int16 c_int16 i16",
    "i8": "int8 i1 char np_char np_int8 c_int8 byte_",
    "u64": (
        "uint64 u8 uintp uint ulong ulonglong size_t np_uint np_uint64 np_uintp np_ulong "
        "np_ulonglong c_uint64 c_uintp u64"
    ),
    "u32": "uint32 u4 uintc np_uint32 np_uintc c_uint32 u32",
    "u16": "uint16 u2 ushort np_ushort np_uint16 c_uint16 u16",
    "u8": "uint8 u1 byte uchar np_uchar np_uint8 c_uint8",
    "bool": "boolean b1 bool_ bool np_bool_ c_bool py_bool",
}
NUMBA_TO_KERN = {name: kern for kern, names in _SCALARS.items() for name in names.split()}
# longdouble is not float64 everywhere: refuse it rather than guess.
del NUMBA_TO_KERN["longdouble"]

KERN_TO_NUMBA = {
    "f64": "float64",
    "f32": "float32",
    "i64": "int64",
    "i32": "int32",
    "i16": "int16",
    "i8": "int8",
    "u64": "uint64",
    "u32": "uint32",
    "u16": "uint16",
    "u8": "uint8",
    "bool": "bool",
}

_UNSUPPORTED = {
    "float16": "float16",
    "f2": "float16",
    "half": "float16",
    "complex64": "complex64",
    "c8": "complex64",
    "complex128": "complex128",
    "c16": "complex128",
    "complex": "complex128",
    "longdouble": "longdouble",
    "unicode_type": "str",
    "string": "str",
    "str": "str",
    "pyobject": "object",
    "intp_ptr": "a pointer",
}
_NONE = {"void", "none", "None", "NoneType"}

_ACCEPTED = "float64/f8, float32/f4, int64/i8, int32/i4, int16/i2, int8/i1, uint64/u8 ... uint8/u1, boolean/b1"

# A type: ("scalar", kern) | ("array", kern, ndim, layout) | ("tuple", [type]) | ("none",)
Type = Tuple[Any, ...]

_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*(?:\s*\.\s*[A-Za-z_][A-Za-z_0-9]*)*)"
    r"|(?P<int>\d+)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<punct>[()\[\],:]))"
)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: List[Tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                bad = text[pos:].lstrip()[:1]
                raise self.error(f"unexpected {bad!r}")
            kind = m.lastgroup or ""
            value = m.group(kind)
            if kind == "name":
                value = re.sub(r"\s+", "", value)
            self.tokens.append((kind, value))
            pos = m.end()
        self.pos = 0

    def error(self, what: str) -> SignatureError:
        return SignatureError(f"bad signature {self.text!r}: {what}")

    def peek(self, offset: int = 0) -> Tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def next(self) -> Tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        kind, found = self.next()
        if found != value or kind not in ("punct", "name"):
            raise self.error(f"expected {value!r}, found {found or 'the end'!r}")

    def at(self, value: str) -> bool:
        kind, found = self.peek()
        return kind in ("punct", "name") and found == value

    # signature := [type] "(" [type ("," type)* [","]] ")"
    def signature(self) -> Tuple[List[Type], Optional[Type]]:
        result = None
        if not self.at("("):
            result = self.type()
        if not self.at("("):
            raise self.error("expected the argument types in parentheses, as in 'float64(float64[:], int64)'")
        self.next()
        args = []
        while not self.at(")"):
            args.append(self.type())
            if self.at(","):
                self.next()
            elif not self.at(")"):
                raise self.error(f"expected ',' or ')', found {self.peek()[1] or 'the end'!r}")
        self.next()
        if self.peek()[0] != "end":
            raise self.error(f"unexpected {self.peek()[1]!r} after the argument list")
        return args, result

    def type(self) -> Type:
        kind, name = self.next()
        if kind != "name":
            raise self.error(f"expected a type, found {name or 'the end'!r}")
        base = name.rsplit(".", 1)[-1]
        if base == "readonly":
            return self.type()
        if self.at("(") and base in ("array", "Array"):
            return self.array_call(base)
        if self.at("(") and base in ("UniTuple", "Tuple"):
            return self.tuple_call(base)
        ty = self.scalar(base)
        if self.at("["):
            return self.axes(ty)
        return ty

    def scalar(self, base: str) -> Type:
        if base in _NONE:
            return ("none",)
        kern = NUMBA_TO_KERN.get(base)
        if kern is None:
            if base in _UNSUPPORTED:
                raise self.error(
                    f"kernjit has no {_UNSUPPORTED[base]} type; kernels take {_ACCEPTED} and arrays of them"
                )
            raise self.error(f"unknown type {base!r} (expected one of {_ACCEPTED}, or arrays such as float64[:, ::1])")
        return ("scalar", kern)

    def axes(self, ty: Type) -> Type:
        if ty[0] != "scalar":
            raise self.error("only a number type can be made an array")
        self.expect("[")
        axes = []
        while True:
            if not self.at(":"):
                raise self.error("each axis of an array type is written ':' (or '::1' for the contiguous one)")
            self.next()
            if self.at(":"):
                self.next()
                kind, one = self.next()
                if kind != "int" or one != "1":
                    raise self.error("a contiguous axis is written '::1'")
                axes.append(True)
            else:
                axes.append(False)
            if self.at(","):
                self.next()
                continue
            self.expect("]")
            break
        ndim = len(axes)
        if ndim > 3:
            raise self.error(f"arrays have at most 3 dimensions, not {ndim}")
        unit = sum(axes)
        if unit == 0:
            layout = "A"
        elif unit == 1 and axes[-1]:
            layout = "C"
        elif unit == 1 and axes[0]:
            layout = "F"
        else:
            raise self.error("only the last axis (C order) or the first (F order) can be '::1'")
        return ("array", ty[1], ndim, layout)

    def array_call(self, base: str) -> Type:
        # array(float64, 2d, C) as Numba prints it, Array(float64, 2, 'C').
        self.expect("(")
        dtype = self.type()
        if dtype[0] != "scalar":
            raise self.error("an array's element type must be a number type")
        self.expect(",")
        kind, ndim_text = self.next()
        if kind != "int":
            raise self.error("expected the number of dimensions")
        if self.peek() == ("name", "d"):
            self.next()
        self.expect(",")
        kind, layout = self.next()
        layout = layout.strip("'\"")
        if layout not in ("C", "F", "A"):
            raise self.error(f"an array's layout is 'C', 'F' or 'A', not {layout!r}")
        while self.at(","):  # readonly, aligned=True ...
            self.next()
            while not (self.at(",") or self.at(")")) and self.peek()[0] != "end":
                self.next()
        self.expect(")")
        ndim = int(ndim_text)
        if not 1 <= ndim <= 3:
            raise self.error(f"arrays have 1 to 3 dimensions, not {ndim}")
        if ndim == 1 and layout == "F":
            layout = "C"
        return ("array", dtype[1], ndim, layout)

    def tuple_call(self, base: str) -> Type:
        # UniTuple(float64, 2), UniTuple(float64 x 2), Tuple((f8, i8)), Tuple(f8, i8)
        self.expect("(")
        if base == "UniTuple":
            item = self.type()
            if not (self.at(",") or self.at("x")):
                raise self.error("expected UniTuple(type, count)")
            self.next()
            kind, count = self.next()
            if kind != "int":
                raise self.error("expected UniTuple(type, count)")
            self.expect(")")
            return ("tuple", [item] * int(count))
        nested = self.at("(")
        if nested:
            self.next()
        items = []
        while not self.at(")"):
            items.append(self.type())
            if self.at(","):
                self.next()
        self.expect(")")
        if nested:
            self.expect(")")
        return ("tuple", items)


def _array_text(kern: str, ndim: int, layout: str) -> str:
    axes = [":"] * ndim
    if layout == "C":
        axes[-1] = "::1"
    elif layout == "F":
        axes[0] = "::1"
    return f"{kern}[{', '.join(axes)}]"


def _arg_text(ty: Type, where: str) -> str:
    if ty[0] == "scalar":
        return ty[1]
    if ty[0] == "array":
        return _array_text(ty[1], ty[2], ty[3])
    what = "a tuple" if ty[0] == "tuple" else "None"
    raise SignatureError(f"bad signature {where!r}: kernels take numbers and arrays, not {what}")


def _result(ty: Optional[Type]) -> Optional[str]:
    # The declared result's dtype for scalar results; arrays and tuples come
    # back as the kernel makes them, and void/None declares no result.
    if ty is not None and ty[0] == "scalar":
        return ty[1]
    return None


def _from_numba_type(ty: Any) -> Type:
    """A numba type object (numba need not be imported by us: duck typing)."""
    if hasattr(ty, "ndim") and hasattr(ty, "layout") and hasattr(ty, "dtype"):
        dtype = _from_numba_type(ty.dtype)
        if dtype[0] != "scalar":
            raise SignatureError(f"bad signature: arrays of {ty.dtype} are not supported")
        layout = ty.layout if ty.layout in ("C", "F") else "A"
        if ty.ndim == 1 and layout == "F":
            layout = "C"
        if not 1 <= ty.ndim <= 3:
            raise SignatureError(f"bad signature: arrays have 1 to 3 dimensions, not {ty.ndim}")
        return ("array", dtype[1], ty.ndim, layout)
    if isinstance(ty, str):
        return _Parser(ty).type()
    if isinstance(ty, type):  # float, int, bool, np.float64 ...
        name = getattr(ty, "__name__", str(ty))
        return _Parser(name).scalar(name)
    if hasattr(ty, "types") and type(ty).__name__ in ("UniTuple", "Tuple"):
        return ("tuple", [_from_numba_type(t) for t in ty.types])
    text = str(ty)
    parser = _Parser(text)
    parsed = parser.type()
    if parser.peek()[0] != "end":
        raise parser.error("not a type")
    return parsed


def parse(signature: Any) -> Tuple[str, Optional[str]]:
    """One Numba signature -> (kern argument text, kern result dtype or None).

    Accepts the string forms (``"float64(float64[:], int64)"``,
    ``"(f8[:], f8)"``, ``"void(f8[::1])"``), a numba ``Signature`` object
    (``numba.float64(numba.float64[:])``), or a tuple of argument types
    (strings or numba types), as Numba does."""
    if isinstance(signature, str):
        where = signature
        args, result = _Parser(signature).signature()
    elif hasattr(signature, "args") and hasattr(signature, "return_type"):
        where = str(signature)
        args = [_from_numba_type(t) for t in signature.args]
        result = None if signature.return_type is None else _from_numba_type(signature.return_type)
    elif isinstance(signature, tuple):
        where = str(signature)
        args = [_from_numba_type(t) for t in signature]
        result = None
    else:
        raise SignatureError(
            f"a signature is a string such as 'float64(float64[:], int64)', not {type(signature).__name__}"
        )
    return kern_args_text([_arg_text(t, where) for t in args]), _result(result)


def parse_many(signatures: Union[Any, Sequence[Any]]) -> List[Tuple[str, Optional[str]]]:
    """A signature or a list of them (duplicates dropped, order kept)."""
    if isinstance(signatures, list):
        items = signatures
    else:
        items = [signatures]
    out: List[Tuple[str, Optional[str]]] = []
    for item in items:
        parsed = parse(item)
        if parsed not in out:
            out.append(parsed)
    return out


def kern_args_text(args: Sequence[str]) -> str:
    return "(" + ", ".join(args) + ")"


def split_args(text: str) -> List[str]:
    """Kern's "(f64[:, ::1], f64)" -> ["f64[:, ::1]", "f64"]."""
    text = text.strip()
    if "(" in text:
        text = text[text.index("(") + 1 :]
        if text.endswith(")"):
            text = text[:-1]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def numba_type_text(kern: str) -> str:
    """"f64[:, ::1]" -> "float64[:, ::1]"."""
    base, bracket, rest = kern.partition("[")
    return KERN_TO_NUMBA.get(base.strip(), base.strip()) + bracket + rest


def numba_args(kern_text: str) -> Tuple[str, ...]:
    """Kern's signature text as a tuple of Numba type strings, one per argument:
    "(f64[:, ::1], i64)" -> ("float64[:, ::1]", "int64")."""
    return tuple(numba_type_text(arg) for arg in split_args(kern_text))


def to_kern_args(signature: Any) -> str:
    """A compiled signature named as ``f.signatures`` lists it (a tuple of
    Numba type strings), as a Numba string or object -> kern's text."""
    if isinstance(signature, tuple) and all(isinstance(t, str) for t in signature):
        return kern_args_text([_arg_text(_Parser(t).type(), str(signature)) for t in signature])
    return parse(signature)[0]
