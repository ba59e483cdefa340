"""Names a kernel reads: frozen constants, module aliases, members, closures,
kernels calling kernels (kernjit's and Numba's), unsupported globals."""

import ast
import math
import os

import numpy as np
import pytest

import kernjit
from kernjit import CompileError, njit
from kernjit import _globals, _source


# ---- the pure-Python pieces ------------------------------------------------------


def _free(text):
    return _globals.free_names(ast.parse(text).body[0])


def test_free_names_skip_locals_and_parameters():
    text = (
        "def f(a, b, *args, c=N, **kw):\n"
        "    x = a + M\n"
        "    for i in range(K):\n"
        "        x += i\n"
        "    y, (z, w) = T\n"
        "    return x + y + z + w + np.sqrt(b) + f(a)\n"
    )
    assert _free(text) == ["N", "M", "range", "K", "T", "np", "f"]


def test_free_names_global_statement_and_nested_defs():
    text = "def f(a):\n    global G\n    G = 1\n    def g(q):\n        return q + H\n    return g(a) + G\n"
    assert _free(text) == ["H", "G"]


def test_constants_encoding():
    assert _globals.constant(3) == ("int", 3)
    assert _globals.constant(True) == ("bool", True)
    assert _globals.constant(2.5) == ("float", 2.5)
    assert _globals.constant(np.float32(0.5)) == ("np", "float32", 0.5)
    assert _globals.constant(np.uint8(7)) == ("np", "uint8", 7)
    assert _globals.constant(np.float64(1.5)) == ("np", "float64", 1.5)  # not a weak float
    assert _globals.constant(np.bool_(True)) == ("np", "bool", True)
    assert _globals.constant((1, (2.0, np.int16(3)))) == (
        "tuple",
        [("int", 1), ("tuple", [("float", 2.0), ("np", "int16", 3)])],
    )
    assert _globals.constant(np.complex128(1j)) is None
    assert _globals.constant((1, "a")) is None
    assert _globals.constant(np.zeros(3)) is None
    assert _globals.constant("text") is None


def test_describe_values():
    numba = pytest.importorskip("numba")

    builder = _globals.ProgramBuilder()
    describe = lambda value: _globals.describe(value, builder)  # noqa: E731
    assert describe(math) == ("module", "math")
    assert describe(np) == ("module", "numpy")
    assert describe(numba) == ("module", "numba")
    assert describe(kernjit) == ("module", "numba")
    assert describe(math.sqrt) == ("member", "math", "sqrt")
    assert describe(np.sqrt) == ("member", "numpy", "sqrt")
    assert describe(np.float32) == ("member", "numpy", "float32")
    assert describe(np.zeros) == ("member", "numpy", "zeros")
    assert describe(numba.prange) == ("member", "numba", "prange")
    assert describe(kernjit.prange) == ("member", "numba", "prange")
    assert describe(np.int64(3)) == ("const", ("np", "int64", 3))
    assert describe(os) == ("unsupported", "the module os")
    assert describe(np.zeros(2)) == ("unsupported", "a NumPy array")
    assert describe({}) == ("unsupported", "a dict")
    assert describe([1]) [0] == "unsupported"
    assert describe("s") == ("unsupported", "a str")
    assert describe(None) == ("unsupported", "None")
    assert describe(os.path.join)[0] == "unsupported"
    assert "decorate it with @njit" in describe(test_describe_values)[1]


def test_source_of_a_nested_def_with_a_multiline_decorator(make_module):
    module = make_module(
        """
        import kernjit

        def outer():
            if True:
                @kernjit.njit(
                    parallel=False,
                    boundscheck=True,
                )
                def inner(x):  # the def line
                    return x + 1
            return inner
        """
    )
    inner = module.outer()
    source = _source.function_source(inner.py_func)
    lines = open(module.__file__).read().splitlines()
    assert lines[source.first_line - 1].strip().startswith("def inner(x):")
    assert source.indent == 8
    assert source.text == "def inner(x):  # the def line\n    return x + 1\n"
    assert source.filename == module.__file__
    assert source.name == "inner"
    assert inner(1) == 2


# ---- constants are frozen at the first call ------------------------------------------


def test_module_constants_are_frozen(make_module):
    module = make_module(
        """
        import numpy as np
        from kernjit import njit

        N = 3
        SCALE = 0.5
        ON = True
        EPS = np.float32(0.1)
        STRONG = np.float64(0.1)
        SHAPE = (2, 3, 4.5)

        @njit
        def constants(x):
            if ON:
                return x * N + SCALE + SHAPE[0] * SHAPE[1] + SHAPE[2]
            return 0.0

        @njit
        def typed(a):
            return a[0] * EPS

        @njit
        def strong(a):
            return a[0] * STRONG
        """
    )
    assert module.constants(1.0) == 1.0 * 3 + 0.5 + 6 + 4.5
    module.N = 100
    module.ON = False
    assert module.constants(2.0) == 2.0 * 3 + 0.5 + 6 + 4.5  # frozen, as in Numba
    assert module.constants.py_func(2.0) == 0.0  # plain Python sees the change
    result = module.typed(np.ones(2, dtype=np.float32))
    assert result == np.float32(0.1)  # f32 * f32 stays f32: EPS kept its dtype
    assert module.typed.signatures == [("float32[::1]",)]
    # np.float64 is a strong f64 (NEP 50): f32 * np.float64 -> f64
    b = np.full(1, 3.0, dtype=np.float32)
    assert module.strong(b) == 3.0 * 0.1 != float(np.float32(3.0) * np.float32(0.1))


def test_recompile_reads_the_globals_again(make_module):
    module = make_module(
        """
        from kernjit import njit
        K = 2
        @njit
        def times(x):
            return x * K
        """
    )
    assert module.times(3) == 6
    module.K = 5
    assert module.times(3) == 6
    module.times.recompile()
    assert module.times(3) == 15


# ---- modules and members under any name -----------------------------------------------


def test_aliases(make_module):
    module = make_module(
        """
        import math as m
        import numpy as xp
        import kernjit as kj
        from math import sqrt, pi
        from math import cos as cosine
        from numpy import float32, zeros
        from kernjit import njit, prange

        @njit
        def aliased(a):
            out = zeros(a.shape[0])
            for i in prange(a.shape[0]):
                out[i] = sqrt(a[i]) + xp.sqrt(a[i]) + m.floor(a[i]) + cosine(0.0)
            s = 0.0
            for i in kj.prange(a.shape[0]):
                s += out[i]
            for i in range(2):
                s += pi
            return s + float32(0.5)
        """
    )
    a = np.array([1.0, 4.0, 9.0])
    expected = sum(2 * np.sqrt(x) + math.floor(x) + 1.0 for x in a) + 2 * math.pi + 0.5
    assert module.aliased(a) == pytest.approx(expected, rel=1e-15)
    assert module.aliased(a) == module.aliased.interpret(a)


def test_numba_aliases(make_module):
    pytest.importorskip("numba")
    module = make_module(
        """
        import numba as nb
        from numba import prange as numba_prange, float32 as nb_f32
        from kernjit import njit

        @njit
        def total(a):
            s = 0.0
            for i in nb.prange(a.shape[0]):
                s += a[i]
            for i in numba_prange(3):
                s += i
            return s + nb_f32(0.5) + nb.float64(0.25)
        """
    )
    assert module.total(np.arange(4.0)) == 9.75


def test_closures(make_module):
    module = make_module(
        """
        import numpy as np
        from kernjit import njit

        def make_scaler(factor, offset):
            k = np.int32(offset)
            @njit
            def scaler(a):
                for i in range(a.shape[0]):
                    a[i] = a[i] * factor + k
            return scaler
        """
    )
    a = np.ones(3)
    module.make_scaler(3.0, 1)(a)
    np.testing.assert_array_equal(a, [4.0, 4.0, 4.0])
    module.make_scaler(0.5, 2)(a)
    np.testing.assert_array_equal(a, [4.0, 4.0, 4.0])


# ---- kernels calling kernels ---------------------------------------------------------------


def test_kernel_calls_kernel_specialised_per_call(make_module):
    module = make_module(
        """
        import numpy as np
        from kernjit import njit

        @njit
        def square(x):
            return x * x

        @njit
        def both(a, n):
            s = 0.0
            for i in range(a.shape[0]):
                s += square(a[i])      # f32
            return s + square(n)       # i64

        @njit
        def fact(n):
            if n <= 1:
                return 1
            return n * fact(n - 1)
        """
    )
    a = np.array([1.0, 2.0], dtype=np.float32)
    assert module.both(a, 3) == 14.0
    assert module.square(1.5) == 2.25
    assert module.fact(10) == 3628800
    assert module.square.signatures == [("float64",)]


def test_kernel_calls_numba_njit_function(make_module):
    pytest.importorskip("numba")
    module = make_module(
        """
        import numba
        from numba import njit as numba_njit
        from kernjit import njit

        @numba_njit
        def helper(x):
            return 2 * x + 1

        @numba.njit(cache=False)
        def other(x):
            return helper(x) - 1

        @njit
        def mixed(a):
            s = 0
            for i in range(a.shape[0]):
                s += other(a[i])
            return s
        """
    )
    assert module.mixed(np.arange(4)) == 12


def test_same_name_from_two_modules_is_an_error(make_module):
    first = make_module(
        """
        from kernjit import njit
        @njit
        def step(x):
            return x + 1
        """,
        name="kj_first_step",
    )
    second = make_module(
        """
        from kernjit import njit
        from kj_first_step import step as step1

        @njit
        def step(x):
            return step1(x) * 2
        """,
        name="kj_second_step",
    )
    with pytest.raises(CompileError) as info:
        second.step(1)
    message = str(info.value)
    assert "kj_first_step.py" in message and "kj_second_step.py" in message and "'step'" in message


# ---- unsupported globals ----------------------------------------------------------------


@pytest.mark.parametrize(
    "definition, name",
    [
        ("import os as thing", "os"),
        ("thing = {'a': 1}", "dict"),
        ("thing = np.zeros(3)", "NumPy array"),
        ("thing = 'text'", "str"),
        ("def thing(x):\n    return x", "@njit"),
        ("from os.path import join as thing", "join"),
        ("thing = np.complex128(1j)", "complex128"),
    ],
)
def test_unsupported_global_names_it(make_module, definition, name):
    module = make_module(
        f"""
import numpy as np
from kernjit import njit
{definition}

@njit
def uses(x):
    return x + thing(x)
"""
    )
    with pytest.raises(CompileError) as info:
        module.uses(1.0)
    message = str(info.value)
    assert "thing" in message and name in message, message


def test_unused_unsupported_global_is_fine(make_module):
    module = make_module(
        """
        import os
        from kernjit import njit
        CONFIG = {"a": 1}

        @njit
        def fine(x):
            return x + 1
        """
    )
    assert module.fine(1) == 2


def test_attribute_of_another_module_is_unsupported(make_module):
    module = make_module(
        """
        import json
        from kernjit import njit

        @njit
        def uses(x):
            return json.decoder(x)
        """
    )
    with pytest.raises(CompileError, match="json"):
        module.uses(1.0)
