#!/usr/bin/env python3
"""CPython + NumPy reference runner for .kern files.

Usage:
    python3 tests/cpython/run_kern.py FILE.kern KERNEL ARG... [--seed N]
    python3 tests/cpython/run_kern.py --all-runs FILE.kern [--seed N]

The .kern source is exec'd as Python with `prange = range` injected (plus a
stub `numba` module, bare math names and i64(...)-style casts, so any valid
kern file runs).  Arguments use the `kernjit run` syntax:

    2.5  7  -3  true  false          f64, i64, i64, bool, bool
    i32:7  f32:2.5  u8:3  bool:1     typed scalars
    zeros(d0, ...)  ones(d0, ...)  full(d0, ..., v)  arange(d0, ...)
    rand(d0, ...)  randn(d0, ...)    arrays, each with an optional :dtype

Random arrays come from one splitmix64 generator per run (seed 42 unless
--seed is given), consumed left to right, each array filled in C order.
One JSON object is printed per run:

    {"kernel": K, "result": R, "args": [{"index", "dtype", "shape", "sum"}...]}
"""

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
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise KernError("unbalanced ')' in %r" % text)
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise KernError("unbalanced '(' in %r" % text)
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


def cast_scalar(value, dtype_name):
    if dtype_name not in DTYPES:
        raise KernError("unknown dtype %r" % dtype_name)
    if dtype_name == "bool":
        return np.bool_(bool(value))
    t = DTYPES[dtype_name]
    if np.issubdtype(t, np.integer):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise KernError("cannot cast %r to %s" % (value, dtype_name))
            value = int(value)  # truncates toward zero
        info = np.iinfo(t)
        if not info.min <= int(value) <= info.max:
            raise KernError("%r out of range for %s" % (value, dtype_name))
        return t(int(value))
    return t(float(value))


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
        fill = parse_number(parts[-1])
        dims = parse_dims(parts[:-1], text)
        if dtype_name is None:
            dtype_name = "bool" if isinstance(fill, bool) else ("i64" if isinstance(fill, int) else "f64")
        count = int(np.prod(dims))
        if dtype_name == "bool":
            data = np.full(count, bool(fill), dtype=np.bool_)
        elif isinstance(fill, float) and np.issubdtype(DTYPES[dtype_name], np.integer):
            data = np.full(count, fill, dtype=np.float64).astype(DTYPES[dtype_name])
        else:
            data = np.full(count, fill, dtype=DTYPES[dtype_name])
        return data.reshape(dims)
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


def make_arg(text, rng):
    t = text.strip()
    if GEN_RE.match(t):
        return make_array(t, rng)
    m = re.fullmatch(r"(\w+)\s*:\s*(\S+)", t)
    if m and m.group(1) in DTYPES:
        return cast_scalar(parse_number(m.group(2)), m.group(1))
    v = parse_number(t)
    if isinstance(v, bool):
        return np.bool_(v)
    if isinstance(v, int):
        return cast_scalar(v, "i64")
    return np.float64(v)


# ----------------------------------------------------------------------------
# loading a .kern file


def _njit(*args, **kwargs):
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


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
    env = {"__name__": "kern", "__file__": path, "prange": range}
    for name in MATH_NAMES:
        env[name] = getattr(math, name)
    for name, t in DTYPES.items():
        if name != "bool":
            env[name] = t
    import __future__

    saved = sys.modules.get("numba")
    sys.modules["numba"] = fake_numba
    try:
        code = compile(source, path, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
        exec(code, env)
    except SyntaxError as e:
        raise KernError("%s:%s: syntax error: %s" % (path, e.lineno, e.msg))
    finally:
        if saved is None:
            del sys.modules["numba"]
        else:
            sys.modules["numba"] = saved
    env["prange"] = range  # in case the file imported it
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


def run_one(env, kernel, arg_texts, seed):
    fn = env.get(kernel)
    if not isinstance(fn, types.FunctionType):
        raise KernError("no kernel named %r" % kernel)
    rng = SplitMix64(seed)
    args = [make_arg(a, rng) for a in arg_texts]
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
                print(run_one(env, kernel, args, seed), flush=True)
            except KernError as e:
                raise KernError("%s:%d: %s" % (rest[1], lineno, e))
        return
    if len(rest) < 2:
        raise KernError(__doc__.strip().splitlines()[2].strip())
    _, env = load_kern(rest[0])
    print(run_one(env, rest[1], rest[2:], seed))


if __name__ == "__main__":
    np.seterr(all="ignore")  # wrap/overflow/inf like the compiled code, silently
    try:
        main(sys.argv[1:])
    except KernError as e:
        print("run_kern: error: %s" % e, file=sys.stderr)
        sys.exit(1)
