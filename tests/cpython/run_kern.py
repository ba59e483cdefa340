#!/usr/bin/env python3
"""CPython + NumPy reference runner for .kern files.

Usage:
    python3 tests/cpython/run_kern.py FILE.kern KERNEL ARG... [--seed N]
    python3 tests/cpython/run_kern.py --all-runs FILE.kern [--seed N]

The .kern source is exec'd as Python with `prange = range` injected (plus a
stub `numba` module, bare math names and i64(...)-style casts, so any valid
kern file runs).  Plain Python floats stored in variables, returned or passed
as parameters are made np.float64 so that f32 data meets f64 variables the
way it does in kern/Numba (see _ConcreteFloats).  Arguments use the `kernjit run` syntax:

    2.5  7  -3  true  false          f64, i64, i64, bool, bool
    i32:7  f32:2.5  u8:3  bool:1     typed scalars
    zeros(d0, ...)  ones(d0, ...)  full(d0, ..., v)  arange(d0, ...)
    rand(d0, ...)  randn(d0, ...)    arrays, each with an optional :dtype
                                     (v may be typed: full(3, i32:7))
    @data.npy                        an array file (relative to the .kern
                                     file's directory in --all-runs mode)

Random arrays come from one splitmix64 generator per run (seed 42 unless
--seed is given), consumed left to right, each array filled in C order.
One JSON object is printed per run:

    {"kernel": K, "result": R, "args": [{"index", "dtype", "shape", "sum"}...]}
"""

import ast
import json
import math
import os
import re
import sys
import types

import numpy as np

MASK64 = (1 << 64) - 1

DTYPES = {
    "bool": np.bool_,
    "i8": np.int8,
    "i16": np.int16,
    "i32": np.int32,
    "i64": np.int64,
    "u8": np.uint8,
    "u16": np.uint16,
    "u32": np.uint32,
    "u64": np.uint64,
    "f32": np.float32,
    "f64": np.float64,
}
DTYPE_NAMES = {np.dtype(t): name for name, t in DTYPES.items()}

MATH_NAMES = (
    "sqrt exp log log2 log10 log1p expm1 sin cos tan asin acos atan atan2 "
    "sinh cosh tanh floor ceil trunc fabs pow hypot erf erfc gamma lgamma "
    "isnan isinf isfinite copysign fmod pi e inf nan"
).split()


class KernError(Exception):
    pass


# ----------------------------------------------------------------------------
# splitmix64 generator (bit-exact with the Rust side)


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def normal(self):
        u1 = self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


# ----------------------------------------------------------------------------
# argument parsing


def split_top_level(text):
    """Split on commas that are not inside () or []; parts are trimmed."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise KernError("unbalanced %r in %r" % (ch, text))
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise KernError("unbalanced '(' or '[' in %r" % text)
    last = "".join(cur).strip()
    if last or parts:
        parts.append(last)
    if any(p == "" for p in parts):
        raise KernError("empty argument in %r" % text)
    return parts


def parse_number(text):
    """Return a Python int or float for a numeric literal, or raise."""
    t = text.strip().replace("_", "")
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        sign = -1 if t.startswith("-") else 1
        body = t[1:] if t[:1] in "+-" else t
        if re.fullmatch(r"0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+", body):
            return sign * int(body, 0)
        if re.fullmatch(r"[0-9]+", body):
            return sign * int(body, 10)
        return float(t)
    except ValueError:
        raise KernError("bad number %r" % text) from None


def cast_scalar(value, dtype_name, strict=True):
    """A literal (Python bool/int/float or a numpy scalar from `i32:7`) as a
    numpy scalar of dtype_name.  Ints must fit an int dtype; floats going to
    an int dtype truncate toward zero (strict: must be finite and in range,
    otherwise cast like astype)."""
    if dtype_name not in DTYPES:
        raise KernError("unknown dtype %r" % dtype_name)
    t = DTYPES[dtype_name]
    if dtype_name == "bool":
        return np.bool_(bool(value))
    if isinstance(value, np.generic):  # a typed literal: numpy cast
        return np.array([value]).astype(t)[0]
    if isinstance(value, bool):
        value = int(value)
    if np.issubdtype(t, np.integer):
        if isinstance(value, float):
            if not strict:
                return np.array([value], dtype=np.float64).astype(t)[0]
            if not math.isfinite(value):
                raise KernError("cannot convert %r to %s" % (value, dtype_name))
            value = int(value)  # truncates toward zero
        info = np.iinfo(t)
        if not info.min <= value <= info.max:
            raise KernError("%r is out of range for %s (%d to %d)" % (value, dtype_name, info.min, info.max))
        return t(value)
    return t(float(value))


def parse_literal(text):
    """A plain number, true/false, or a typed scalar `i32:7` (numpy scalar)."""
    m = re.fullmatch(r"\s*(\w+)\s*:\s*(.*?)\s*", text)
    if m:
        if m.group(1) not in DTYPES:
            raise KernError("%r is not a dtype (accepted: %s)" % (m.group(1), ", ".join(DTYPES)))
        return cast_scalar(parse_number(m.group(2)), m.group(1))
    return parse_number(text)


def literal_dtype(v):
    if isinstance(v, np.generic):
        return DTYPE_NAMES[v.dtype]
    if isinstance(v, bool):
        return "bool"
    return "i64" if isinstance(v, int) else "f64"


GEN_RE = re.compile(r"^(zeros|ones|full|arange|rand|randn)\s*\((.*)\)\s*(?::\s*(\w+))?$", re.S)


def parse_dims(parts, what):
    dims = []
    for p in parts:
        v = parse_number(p)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise KernError("%s: bad dimension %r" % (what, p))
        dims.append(v)
    if not 1 <= len(dims) <= 3:
        raise KernError("%s: arrays have 1 to 3 dimensions, got %d" % (what, len(dims)))
    return tuple(dims)


def make_array(text, rng):
    m = GEN_RE.match(text.strip())
    if not m:
        raise KernError("bad argument %r" % text)
    kind, inner, dtype_name = m.group(1), m.group(2), m.group(3)
    if dtype_name is not None and dtype_name not in DTYPES:
        raise KernError("unknown dtype %r in %r" % (dtype_name, text))
    parts = split_top_level(inner)
    if kind == "full":
        if len(parts) < 2:
            raise KernError("full needs dimensions and a fill value: %r" % text)
        fill = parse_literal(parts[-1])
        dims = parse_dims(parts[:-1], text)
        if dtype_name is None:
            dtype_name = literal_dtype(fill)
        value = cast_scalar(fill, dtype_name, strict=False)
        return np.full(dims, value, dtype=DTYPES[dtype_name])
    dims = parse_dims(parts, text)
    count = int(np.prod(dims))
    if kind == "zeros":
        data = np.zeros(count, dtype=np.float64)
    elif kind == "ones":
        data = np.ones(count, dtype=np.float64)
    elif kind == "arange":
        data = np.arange(count, dtype=np.int64)
        if dtype_name is None:
            dtype_name = "i64"
    elif kind == "rand":
        data = np.array([rng.uniform() for _ in range(count)], dtype=np.float64)
    else:  # randn
        data = np.array([rng.normal() for _ in range(count)], dtype=np.float64)
    if dtype_name is None:
        dtype_name = "f64"
    # float -> int truncates toward zero, as numpy astype does
    return np.ascontiguousarray(data.astype(DTYPES[dtype_name])).reshape(dims)


def load_npy(path, base_dir):
    full = os.path.join(base_dir, path)
    try:
        arr = np.load(full, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise KernError("cannot read %s: %s" % (full, e))
    if arr.dtype not in DTYPE_NAMES:
        raise KernError("%s: dtype %s is not supported" % (full, arr.dtype))
    if not 1 <= arr.ndim <= 3:
        raise KernError("%s: arrays have 1 to 3 dimensions, got %d" % (full, arr.ndim))
    return np.array(arr)  # writable, owned


def make_arg(text, rng, base_dir="."):
    t = text.strip()
    if not t:
        raise KernError("empty argument")
    if t.startswith("@"):
        if not t[1:].strip():
            raise KernError("'@' must be followed by the path of an .npy file")
        return load_npy(t[1:].strip(), base_dir)
    if GEN_RE.match(t):
        return make_array(t, rng)
    v = parse_literal(t)
    if isinstance(v, np.generic):
        return v
    return cast_scalar(v, literal_dtype(v))


# ----------------------------------------------------------------------------
# loading a .kern file


# numpy spellings of the math functions, used when math.* raises
_NP_FALLBACK = {
    "asin": "arcsin", "acos": "arccos", "atan": "arctan", "atan2": "arctan2", "pow": "power",
}


def _ieee(name):
    """math.NAME, but returning inf/nan like IEEE/compiled code instead of
    raising ValueError/OverflowError (e.g. sqrt(-1) -> nan, exp(1000) -> inf)."""
    fn = getattr(math, name)
    npfn = getattr(np, _NP_FALLBACK.get(name, name), None)

    def wrapped(*args):
        try:
            return fn(*args)
        except (ValueError, OverflowError):
            fargs = [np.float64(a) for a in args]
            if name in ("floor", "ceil", "trunc"):
                return fargs[0]  # nan/inf cannot become an int
            if name == "gamma":
                x = fargs[0]
                if x == math.floor(x) and x <= 0:
                    return np.float64(math.nan)
                return np.float64(math.inf)
            if name == "lgamma":
                return np.float64(math.inf)
            if npfn is None:
                return np.float64(math.nan)
            with np.errstate(all="ignore"):
                return np.float64(npfn(*fargs))

    wrapped.__name__ = name
    return wrapped


def _ieee_math_module():
    mod = types.ModuleType("math")
    for name in dir(math):
        if not name.startswith("_"):
            setattr(mod, name, getattr(math, name))
    for name in MATH_NAMES:
        if callable(getattr(math, name)) and name not in ("isnan", "isinf", "isfinite", "copysign", "fabs"):
            setattr(mod, name, _ieee(name))
    return mod


_KERN_MATH = _ieee_math_module()


def _njit(*args, **kwargs):
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


def _kf(v):
    """Give a runtime Python float the concrete f64 type a kern variable has."""
    if type(v) is float:
        return np.float64(v)
    if type(v) is tuple:
        return tuple(_kf(x) for x in v)
    return v


class _ConcreteFloats(ast.NodeTransformer):
    """Make CPython follow kern's typing of float *variables*.

    In kern (as in Numba) only a literal is "weak" (NEP 50): `s = 0.0` makes
    `s` an f64 variable, so `s += x_f32 * y_f32` accumulates in f64.  In
    CPython `s` stays a weak Python float and the sum silently becomes f32.
    We wrap every value that is stored in a variable, returned, or received
    as a parameter with _kf, which turns a plain Python float into np.float64
    (literals inside expressions stay weak, as in kern)."""

    def _wrap(self, node):
        call = ast.Call(func=ast.Name(id="__kern_f64", ctx=ast.Load()), args=[node], keywords=[])
        return ast.copy_location(call, node)

    def visit_Assign(self, node):
        self.generic_visit(node)
        node.value = self._wrap(node.value)
        return node

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        if node.value is not None:
            node.value = self._wrap(node.value)
        return node

    def visit_Return(self, node):
        self.generic_visit(node)
        if node.value is not None:
            node.value = self._wrap(node.value)
        return node

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        prologue = []
        for a in node.args.args:
            stmt = ast.Assign(
                targets=[ast.Name(id=a.arg, ctx=ast.Store())],
                value=self._wrap(ast.Name(id=a.arg, ctx=ast.Load())),
            )
            prologue.append(ast.copy_location(stmt, node))
        body = node.body
        # keep a docstring first
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            node.body = body[:1] + prologue + body[1:]
        else:
            node.body = prologue + body
        return node


def load_kern(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise KernError("cannot read %s: %s" % (path, e))
    fake_numba = types.ModuleType("numba")
    for name in ("njit", "jit", "vectorize", "generated_jit"):
        setattr(fake_numba, name, _njit)
    fake_numba.prange = range
    env = {"__name__": "kern", "__file__": path, "prange": range, "__kern_f64": _kf}
    for name in MATH_NAMES:
        env[name] = getattr(_KERN_MATH, name)
    for name, t in DTYPES.items():
        if name != "bool":
            env[name] = t
    import __future__

    saved = sys.modules.get("numba")
    sys.modules["numba"] = fake_numba
    try:
        tree = compile(source, path, "exec", flags=ast.PyCF_ONLY_AST | __future__.annotations.compiler_flag,
                       dont_inherit=True)
        tree = ast.fix_missing_locations(_ConcreteFloats().visit(tree))
        code = compile(tree, path, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
        exec(code, env)
    except SyntaxError as e:
        raise KernError("%s:%s: syntax error: %s" % (path, e.lineno, e.msg))
    finally:
        if saved is None:
            del sys.modules["numba"]
        else:
            sys.modules["numba"] = saved
    env["prange"] = range  # in case the file imported it
    if env.get("math") is math:
        env["math"] = _KERN_MATH  # domain errors give nan/inf, as compiled
    return source, env


RUN_RE = re.compile(r"^\s*#\s*run:\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$")


def run_lines(source):
    runs = []
    for lineno, line in enumerate(source.splitlines(), 1):
        if re.match(r"^\s*#\s*run:", line):
            m = RUN_RE.match(line)
            if not m:
                raise KernError("line %d: malformed run line: %s" % (lineno, line.strip()))
            runs.append((lineno, m.group(1), split_top_level(m.group(2))))
    return runs


# ----------------------------------------------------------------------------
# running and reporting


def json_float(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def dtype_name(arr):
    try:
        return DTYPE_NAMES[arr.dtype]
    except KeyError:
        raise KernError("unsupported dtype %s" % arr.dtype)


def array_summary(arr):
    return {
        "dtype": dtype_name(arr),
        "shape": [int(d) for d in arr.shape],
        "sum": json_float(np.sum(arr.astype(np.float64), dtype=np.float64)),
    }


def scalar_json(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return json_float(v)
    raise KernError("unsupported scalar result of type %s" % type(v).__name__)


def result_json(r):
    if r is None:
        return None
    if isinstance(r, tuple):
        return [result_json(x) for x in r]
    if isinstance(r, np.ndarray):
        if r.ndim == 0:
            return scalar_json(r[()])
        return array_summary(r)
    return scalar_json(r)


def run_one(env, kernel, arg_texts, seed, base_dir="."):
    fn = env.get(kernel)
    if not isinstance(fn, types.FunctionType):
        raise KernError("no kernel named %r" % kernel)
    rng = SplitMix64(seed)
    args = [make_arg(a, rng, base_dir) for a in arg_texts]
    try:
        result = fn(*args)
    except Exception as e:  # report the kernel's own failure
        raise KernError("%s(%s) raised %s: %s" % (kernel, ", ".join(arg_texts), type(e).__name__, e))
    out = {"kernel": kernel, "result": result_json(result), "args": []}
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            entry = {"index": i}
            entry.update(array_summary(a))
            out["args"].append(entry)
    return json.dumps(out, allow_nan=False)


def main(argv):
    seed = 42
    rest = []
    i = 0
    while i < len(argv):
        if argv[i] == "--seed":
            if i + 1 >= len(argv):
                raise KernError("--seed needs a value")
            v = parse_number(argv[i + 1])
            if isinstance(v, bool) or not isinstance(v, int):
                raise KernError("--seed needs an integer")
            seed = v & MASK64
            i += 2
        elif argv[i].startswith("--seed="):
            v = parse_number(argv[i][7:])
            if isinstance(v, bool) or not isinstance(v, int):
                raise KernError("--seed needs an integer")
            seed = v & MASK64
            i += 1
        else:
            rest.append(argv[i])
            i += 1
    if rest and rest[0] == "--all-runs":
        if len(rest) != 2:
            raise KernError("usage: run_kern.py --all-runs FILE.kern [--seed N]")
        source, env = load_kern(rest[1])
        runs = run_lines(source)
        if not runs:
            raise KernError("%s: no '# run:' lines" % rest[1])
        for lineno, kernel, args in runs:
            try:
                print(run_one(env, kernel, args, seed, os.path.dirname(rest[1]) or "."), flush=True)
            except KernError as e:
                raise KernError("%s:%d: %s" % (rest[1], lineno, e))
        return
    if len(rest) < 2:
        raise KernError("usage: run_kern.py FILE.kern KERNEL ARG... [--seed N]\n"
                        "       run_kern.py --all-runs FILE.kern [--seed N]")
    _, env = load_kern(rest[0])
    print(run_one(env, rest[1], rest[2:], seed))


if __name__ == "__main__":
    np.seterr(all="ignore")  # wrap/overflow/inf like the compiled code, silently
    try:
        main(sys.argv[1:])
    except KernError as e:
        print("run_kern: error: %s" % e, file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # anything unexpected is still a clean failure
        print("run_kern: error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
