"""Every `kernels/*.kern` file through `kernjit.load`, against CPython + NumPy.

Each `# run: KERNEL(ARGS)` line of every kernel file is one test. Its
arguments (the `kernjit run` syntax; random arrays from the splitmix64 stream,
bit-identical to the Rust side) are built by tests/cpython/run_kern.py, which
also runs the same source under CPython as the independent reference. A run
line passes when

  * the compiled kernel's result and every array argument after the call
    (kernels write their outputs in place) agree with CPython's, with the
    policy of tests/it/kernels.rs: floats within 1e-9 + 2e-4 * max(|x|, |y|)
    (NaN equals NaN), integers and booleans exactly, the same kinds of
    values (bool / int / float, arrays of the same dtype and shape); and
  * `kernel.interpret(...)`, the reference interpreter, agrees with the JIT
    bit for bit (every float's bits, any NaN equals any NaN; same dtype), as
    tests/it/jit.rs requires of the Rust API, with the arrays also passed
    in Fortran order and with negative strides.

The `# bench:` lines run too, once, at sizes capped to a few dozen per axis.
"""

import functools
import importlib.util
import math
import re
import struct
from pathlib import Path

import pytest

try:
    import numpy as np
except ImportError:  # the only reason to skip
    pytest.skip("NumPy is not installed (the kernels' reference needs it)", allow_module_level=True)

import kernjit

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"
RUN_KERN_PATH = ROOT / "tests" / "cpython" / "run_kern.py"


def _import_run_kern():
    """tests/cpython/run_kern.py as a module (argument syntax, generators,
    the CPython runner), shared rather than copied."""
    spec = importlib.util.spec_from_file_location("kernjit_tests_run_kern", RUN_KERN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_kern = _import_run_kern()

KERN_FILES = sorted(KERNELS.glob("*.kern"))
BENCH_RE = re.compile(r"^\s*#\s*bench:\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$")
# Bench arrays are capped to this many elements per axis in the small run
# (a monotone map, so equal extents stay equal).
SMALL_EXTENT = 40

# tests/it/kernels.rs `close`
ABS_TOL = 1e-9
REL_TOL = 2e-4


# ----------------------------------------------------------------------------
# the cases


def _run_cases():
    cases = []
    for path in KERN_FILES:
        source = path.read_text(encoding="utf-8")
        for lineno, kernel, texts in run_kern.run_lines(source):
            cases.append(pytest.param(path, lineno, kernel, texts, id="%s:%d %s" % (path.name, lineno, kernel)))
    return cases


def _bench_lines():
    lines = []
    for path in KERN_FILES:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = BENCH_RE.match(line)
            if m:
                lines.append((path, lineno, m.group(1), run_kern.split_top_level(m.group(2))))
            elif re.match(r"^\s*#\s*bench:", line):
                raise AssertionError("%s:%d: malformed bench line: %s" % (path.name, lineno, line.strip()))
    return lines


RUN_CASES = _run_cases()


@functools.lru_cache(maxsize=None)
def compiled(path):
    """The file as a kernjit module (one per file, shared by its run lines)."""
    return kernjit.load(str(path))


@functools.lru_cache(maxsize=None)
def reference(path):
    """The file exec'd under CPython (run_kern's environment)."""
    _, env = run_kern.load_kern(str(path))
    return env


def build_args(texts, base_dir):
    """The arguments of one call, as run_kern builds them (seed 42): numpy
    scalars for literals, arrays from the splitmix64 stream."""
    rng = run_kern.SplitMix64(42)
    return [run_kern.make_arg(text, rng, str(base_dir)) for text in texts]


def fresh(args, texts=None):
    """Copies of `args` (C order). With `texts`, untyped literals (`2.5`,
    `7`, `true`) become the Python float / int / bool a Python caller passes;
    typed ones (`f32:0.5`) stay NumPy scalars."""
    out = []
    for i, arg in enumerate(args):
        if isinstance(arg, np.ndarray):
            out.append(arg.copy())
        elif texts is not None and not isinstance(run_kern.parse_literal(texts[i]), np.generic):
            out.append(arg.item())
        else:
            out.append(arg)
    return out


def relayout(arg, layout):
    """The same values in another memory layout (tests/it/jit.rs `relayout`)."""
    if not isinstance(arg, np.ndarray):
        return arg
    if layout == "fortran":
        return np.asfortranarray(arg)
    flip = (slice(None, None, -1),) * arg.ndim
    back = np.ascontiguousarray(arg[flip])[flip]  # every axis has a negative stride
    assert all(s < 0 for s in back.strides) or back.size <= 1
    return back


def run_reference(path, kernel, args):
    with np.errstate(all="ignore"):  # wrap/overflow/inf as compiled code does, silently
        return reference(path)[kernel](*args)


# ----------------------------------------------------------------------------
# comparisons


def _kind(value):
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    return type(value).__name__


def _describe(value):
    if isinstance(value, np.ndarray):
        return "%s array %s" % (value.dtype, value.shape)
    return "%s %r" % (type(value).__name__, value)


def _close_floats(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    with np.errstate(all="ignore"):
        return (got == want) | (np.isnan(got) & np.isnan(want)) | (
            np.abs(got - want) <= ABS_TOL + REL_TOL * np.maximum(np.abs(got), np.abs(want)))


def _mismatches(ok, got, want, names="kernjit vs expected", limit=5):
    bad = np.argwhere(~np.asarray(ok))
    shown = ", ".join("%s: %r vs %r" % (tuple(int(i) for i in idx), got[tuple(idx)], want[tuple(idx)])
                      for idx in bad[:limit])
    return "%d of %d elements differ (%s) e.g. %s" % (len(bad), np.asarray(ok).size, names, shown)


def check_close(got, want, what):
    """kernjit's `got` against CPython's `want` (tests/it/kernels.rs policy)."""
    if want is None:
        assert got is None, "%s: expected None, got %s" % (what, _describe(got))
        return
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), \
            "%s: expected a %d-tuple, got %s" % (what, len(want), _describe(got))
        for i, (g, w) in enumerate(zip(got, want)):
            check_close(g, w, "%s[%d]" % (what, i))
        return
    if isinstance(want, np.ndarray) and want.ndim > 0:
        assert isinstance(got, np.ndarray), "%s: expected %s, got %s" % (what, _describe(want), _describe(got))
        assert got.dtype == want.dtype and got.shape == want.shape, \
            "%s: expected %s, got %s" % (what, _describe(want), _describe(got))
        if want.dtype.kind in "fc":
            ok = _close_floats(got, want)
        else:
            ok = got == want
        assert np.all(ok), "%s: %s" % (what, _mismatches(ok, got, want))
        return
    if isinstance(want, np.ndarray):  # 0-d
        want = want[()]
    assert _kind(got) == _kind(want), "%s: expected %s, got %s" % (what, _describe(want), _describe(got))
    if _kind(want) == "float":
        assert bool(_close_floats(got, want)), "%s: %r vs expected %r" % (what, got, want)
    else:
        assert got == want, "%s: %r vs expected %r" % (what, got, want)


def _bits(x):
    if math.isnan(x):
        return "nan"
    return struct.pack("<d", x)


def check_same(got, want, what):
    """Bit for bit: `got` (the JIT) against `want` (the interpreter)."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), \
            "%s: interpreter gave %s, JIT %s" % (what, _describe(want), _describe(got))
        for i, (g, w) in enumerate(zip(got, want)):
            check_same(g, w, "%s[%d]" % (what, i))
        return
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        assert isinstance(got, np.ndarray) and isinstance(want, np.ndarray), \
            "%s: interpreter gave %s, JIT %s" % (what, _describe(want), _describe(got))
        assert got.dtype == want.dtype and got.shape == want.shape, \
            "%s: interpreter gave %s, JIT %s" % (what, _describe(want), _describe(got))
        if want.dtype.kind == "f":
            unsigned = np.dtype("u%d" % want.dtype.itemsize)
            g, w = np.ascontiguousarray(got), np.ascontiguousarray(want)
            ok = (g.view(unsigned) == w.view(unsigned)) | (np.isnan(g) & np.isnan(w))
        else:
            ok = got == want
        assert np.all(ok), "%s: %s" % (what, _mismatches(ok, got, want, "JIT vs interpreter"))
        return
    assert type(got) is type(want), "%s: interpreter gave %s, JIT %s" % (what, _describe(want), _describe(got))
    if isinstance(want, float):
        assert _bits(got) == _bits(want), "%s: JIT %r vs interpreter %r" % (what, got, want)
    else:
        assert got == want, "%s: JIT %r vs interpreter %r" % (what, got, want)


def check_call(path, kernel, texts, label):
    """The whole check of one call (see the module docstring)."""
    base_args = build_args(texts, path.parent)
    fn = getattr(compiled(path), kernel)

    # JIT against CPython + NumPy
    jit_args = fresh(base_args, texts)
    jit_result = fn(*jit_args)
    ref_args = fresh(base_args)
    ref_result = run_reference(path, kernel, ref_args)
    check_close(jit_result, ref_result, "%s result" % label)
    for i, (got, want) in enumerate(zip(jit_args, ref_args)):
        if isinstance(want, np.ndarray):
            check_close(got, want, "%s argument %d after the call" % (label, i))

    # the interpreter against the JIT, bit for bit
    interp_args = fresh(base_args, texts)
    interp_result = fn.interpret(*interp_args)
    check_same(jit_result, interp_result, "%s result" % label)
    for i, (got, want) in enumerate(zip(jit_args, interp_args)):
        if isinstance(want, np.ndarray):
            check_same(got, want, "%s argument %d after the call" % (label, i))

    # the same values in other layouts run other code: still the same bits
    # (NumPy scalars here, as make_arg builds them)
    for layout in ("fortran", "reversed"):
        args = [relayout(arg, layout) for arg in fresh(base_args)]
        result = fn(*args)
        check_same(result, interp_result, "%s result (%s arrays)" % (label, layout))
        for i, (got, want) in enumerate(zip(args, interp_args)):
            if isinstance(want, np.ndarray):
                check_same(got, want, "%s argument %d after the call (%s arrays)" % (label, i, layout))


# ----------------------------------------------------------------------------
# the tests


def test_the_kernel_library_is_there():
    assert len(KERN_FILES) >= 10, "kernels/ has at least ten files"
    for path in KERN_FILES:
        assert run_kern.run_lines(path.read_text(encoding="utf-8")), "%s has no `# run:` lines" % path.name
    assert len(RUN_CASES) >= 100


@pytest.mark.parametrize("path, lineno, kernel, texts", RUN_CASES)
def test_run_line(path, lineno, kernel, texts):
    check_call(path, kernel, texts, "%s:%d %s" % (path.name, lineno, kernel))


def small_arg(text):
    """An argument text with every array extent capped at SMALL_EXTENT."""
    m = run_kern.GEN_RE.match(text.strip())
    if not m:
        return text
    kind, inner, dtype = m.group(1), m.group(2), m.group(3)
    parts = run_kern.split_top_level(inner)
    dims, rest = (parts[:-1], parts[-1:]) if kind == "full" else (parts, [])
    dims = [str(min(int(run_kern.parse_number(d)), SMALL_EXTENT)) for d in dims]
    return "%s(%s)%s" % (kind, ", ".join(dims + rest), ":" + dtype if dtype else "")


def test_bench_lines_run_at_small_sizes():
    lines = _bench_lines()
    assert len(lines) >= 10, "every kernel file has a `# bench:` line"
    failures = []
    for path, lineno, kernel, texts in lines:
        small = [small_arg(t) for t in texts]
        label = "%s:%d %s(%s)" % (path.name, lineno, kernel, ", ".join(small))
        try:
            check_call(path, kernel, small, label)
        except Exception as error:  # report every line, then fail
            failures.append("%s\n  %s: %s" % (label, type(error).__name__, error))
    assert not failures, "%d of %d bench lines failed:\n%s" % (len(failures), len(lines), "\n".join(failures))
