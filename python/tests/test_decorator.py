"""The decorator surface: options, eager signatures, introspection, errors
pointing at the real .py file, KERNJIT_DISABLE_JIT and kernjit.load."""

import io
import os
import pathlib
import re

import numpy as np
import pytest

import kernjit
from kernjit import CompileError, jit, njit, prange

KERNELS = pathlib.Path(__file__).resolve().parents[2] / "kernels"


# ---- the package ------------------------------------------------------------


def test_public_names():
    for name in ["njit", "jit", "prange", "set_num_threads", "get_num_threads", "CompileError", "load"]:
        assert hasattr(kernjit, name), name
    assert kernjit.TypingError is kernjit.CompileError
    assert issubclass(CompileError, Exception)
    assert isinstance(kernjit.__version__, str) and kernjit.__version__
    assert (pathlib.Path(kernjit.__file__).parent / "py.typed").exists()
    assert (pathlib.Path(kernjit.__file__).parent / "__init__.pyi").exists()


def test_prange_is_range_in_python():
    assert list(prange(3)) == [0, 1, 2]
    assert list(prange(1, 7, 2)) == [1, 3, 5]
    assert isinstance(prange(4), range)

    def total(n):
        s = 0
        for i in prange(n):
            s += i
        return s

    assert total(5) == 10
    assert njit(total)(5) == 10


def test_threads():
    n = kernjit.get_num_threads()
    assert n >= 1
    kernjit.set_num_threads(1)
    try:
        assert kernjit.get_num_threads() == 1
    finally:
        kernjit.set_num_threads(n)
    with pytest.raises(ValueError):
        kernjit.set_num_threads(0)


# ---- decorating ---------------------------------------------------------------


def add(x, y):
    """Adds two numbers."""
    return x + y


def test_bare_and_called_forms():
    for decorated in [njit(add), njit()(add), jit(add), jit()(add), njit(parallel=False)(add), njit(add, parallel=False)]:
        assert decorated(1.5, 2.0) == 3.5
        assert decorated(2, 3) == 5
        assert isinstance(decorated, kernjit.Dispatcher)


def test_wrapper_metadata():
    kernel = njit(add)
    assert kernel.py_func is add
    assert kernel.__wrapped__ is add
    assert kernel.__name__ == "add"
    assert kernel.__qualname__ == "add"
    assert kernel.__doc__ == "Adds two numbers."
    assert kernel.__module__ == __name__
    assert "add" in repr(kernel)
    assert kernel.py_func(1, 2) == 3


def test_every_numba_option_is_accepted():
    kernel = njit(
        parallel=True,
        boundscheck=None,
        fastmath=True,
        cache=True,
        nogil=True,
        nopython=True,
        error_model="numpy",
        inline="always",
    )(add)
    assert kernel(1.0, 2.0) == 3.0
    assert njit(fastmath={"nnan", "ninf"}, error_model="python", inline="never", boundscheck=False)(add)(1, 2) == 3
    assert jit(nopython=True, cache=False, nogil=False, parallel=False)(add)(1, 2) == 3
    assert jit(nopython=True)(add).targetoptions["boundscheck"] is True


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="forceobj"):
        njit(forceobj=True)
    with pytest.raises(TypeError, match="locals"):
        jit(locals={})(add)
    with pytest.raises(TypeError, match="parralel"):
        njit(add, parralel=True)


@pytest.mark.parametrize(
    "options, error",
    [
        ({"error_model": "fortran"}, ValueError),
        ({"error_model": 1}, TypeError),
        ({"inline": "sometimes"}, ValueError),
        ({"inline": 3}, TypeError),
        ({"boundscheck": "yes"}, TypeError),
        ({"parallel": "yes"}, TypeError),
        ({"fastmath": {"fast", "bogus"}}, ValueError),
        ({"cache": "yes"}, TypeError),
    ],
)
def test_bad_option_values(options, error):
    with pytest.raises(error):
        njit(**options)


def test_decorating_a_dispatcher_uses_its_function():
    kernel = njit(njit(parallel=False)(add))
    assert kernel.py_func is add
    assert kernel(1, 2) == 3
    numba = pytest.importorskip("numba")
    assert njit(numba.njit(add)).py_func is add


def test_dispatcher_is_generic_in_annotations():
    alias = kernjit.Dispatcher[[float, float], float]
    assert alias.__origin__ is kernjit.Dispatcher


def test_first_calls_from_many_threads_build_once():
    import threading

    def cube(x):
        return x * x * x

    kernel = njit(cube)
    results = []
    barrier = threading.Barrier(8)

    def call(k):
        barrier.wait()
        results.append(kernel(float(k)) == k**3)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8
    assert kernel.stats()["misses"] == 1


def test_njit_refuses_non_functions():
    with pytest.raises(TypeError):
        njit(3)
    with pytest.raises(TypeError):
        njit()(len)


def test_parallel_false_gives_the_same_results():
    def total(a):
        s = 0.0
        for i in prange(a.shape[0]):
            s += a[i] * a[i]
        return s

    a = np.random.default_rng(0).standard_normal(100_000)
    serial = njit(total)  # parallel=False is the default, as in Numba
    assert serial.targetoptions["parallel"] is False
    assert njit(parallel=True)(total)(a) == serial(a) == serial.interpret(a)


def test_boundscheck_default_on():
    def get(a, i):
        return a[i]

    with pytest.raises(IndexError):
        njit(get)(np.zeros(3), 5)
    with pytest.raises(IndexError):
        njit(boundscheck=None)(get)(np.zeros(3), 5)


# ---- eager signatures -----------------------------------------------------------


def scale(a, s):
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        out[i] = a[i] * s
    return out


def fill(a, v):
    for i in range(a.shape[0]):
        a[i] = v


def test_eager_signature_compiles_at_decoration():
    kernel = njit("float64[:](float64[:], float64)")(scale)
    assert kernel.signatures == [("float64[:]", "float64")]
    assert kernel.stats()["misses"] >= 1
    np.testing.assert_array_equal(kernel(np.arange(3.0), 2.0), [0.0, 2.0, 4.0])
    # an int converts safely to float64
    np.testing.assert_array_equal(kernel(np.arange(3.0), 2), [0.0, 2.0, 4.0])


def test_eager_signature_refuses_other_types():
    kernel = njit("float64[:](float64[:], float64)")(scale)
    with pytest.raises(TypeError, match="No matching definition"):
        kernel(np.arange(3, dtype=np.int32), 2.0)
    assert kernel.signatures == [("float64[:]", "float64")]


def test_eager_signature_list_and_spellings():
    kernel = njit(["f8(f8, f8)", "i8(i8, i8)", "float32(float32, float32)"])(add)
    assert sorted(kernel.signatures) == sorted([("float64", "float64"), ("int64", "int64"), ("float32", "float32")])
    assert kernel(1, 2) == 3
    assert kernel(1.5, 2.0) == 3.5
    result = kernel(np.float32(0.1), np.float32(0.2))
    assert result == np.float32(np.float32(0.1) + np.float32(0.2))
    with pytest.raises(TypeError, match="No matching definition"):
        kernel(np.zeros(2), 1.0)
    assert kernel.inspect_asm(("int64", "int64"))
    with pytest.raises(KeyError):
        kernel.inspect_asm(("int32", "int32"))  # not one of the eager signatures


@pytest.mark.parametrize(
    "signature, expected",
    [
        ("void(f8[:], f8)", ("float64[:]", "float64")),
        ("(float64[:], float64)", ("float64[:]", "float64")),
        ("(f4[::1], f4)", ("float32[::1]", "float32")),
        ("void(i4[:], i4)", ("int32[:]", "int32")),
        ("(i2[:], int16)", ("int16[:]", "int16")),
        ("(i1[:], int8)", ("int8[:]", "int8")),
        ("(u8[:], uint64)", ("uint64[:]", "uint64")),
        ("(u4[:], u4)", ("uint32[:]", "uint32")),
        ("(u2[:], uint16)", ("uint16[:]", "uint16")),
        ("(u1[:], uint8)", ("uint8[:]", "uint8")),
        ("(b1[:], boolean)", ("bool[:]", "bool")),
        ("(bool_[:], b1)", ("bool[:]", "bool")),
        ("(intp[:], int_)", ("int64[:]", "int64")),
        ("(double[:], float)", ("float64[:]", "float64")),
    ],
)
def test_no_result_signatures_and_dtype_spellings(signature, expected):
    kernel = njit(signature)(fill)
    assert kernel.signatures == [expected]


def test_layout_spellings():
    def first(a):
        return a[0, 0] + a[a.shape[0] - 1, a.shape[1] - 1]

    c = njit("float32(float32[:, ::1])")(first)
    f = njit("float64(float64[::1, :])")(first)
    assert c.signatures == [("float32[:, ::1]",)]
    assert f.signatures == [("float64[::1, :]",)]
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert c(a) == 5.0
    with pytest.raises(TypeError, match="No matching definition"):
        c(np.asfortranarray(a))
    assert f(np.asfortranarray(a.astype(np.float64))) == 5.0

    def total3(a):
        s = 0.0
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                for k in range(a.shape[2]):
                    s += a[i, j, k]
        return s

    k3 = njit("f8(f8[:,:,:])")(total3)
    assert k3(np.ones((2, 3, 4))) == 24.0


def test_numba_type_objects_as_signatures():
    numba = pytest.importorskip("numba")
    kernel = njit(numba.float64(numba.float64[:], numba.float64))(lambda_free_dot)
    assert kernel.signatures == [("float64[:]", "float64")]
    assert kernel(np.ones(3), 2.0) == 6.0


def lambda_free_dot(a, s):
    t = 0.0
    for i in range(a.shape[0]):
        t += a[i] * s
    return t


@pytest.mark.parametrize(
    "signature",
    ["float64(float64[:]", "float64(quaternion)", "complex128(f8)", "f8(f8[:,:,:,:])", "f8(f8[::1, ::1])", "f8 f8", 42],
)
def test_bad_signatures(signature):
    with pytest.raises((TypeError, ValueError)):
        njit(signature)(add)


def test_eager_compile_error_at_decoration():
    def bad(a):
        return a + "x"

    with pytest.raises(CompileError):
        njit("f8(f8)")(bad)


# ---- introspection ----------------------------------------------------------------


def test_signatures_inspect_and_stats():
    kernel = njit(add)
    assert kernel.signatures == []
    assert kernel.stats()["misses"] == 0
    kernel(1.0, 2.0)
    kernel(1, 2)
    kernel(1.0, 2.0)
    assert kernel.signatures == [("float64", "float64"), ("int64", "int64")]
    stats = kernel.stats()
    for key in ["hits", "misses", "evictions", "cached", "parse", "infer", "lower", "cranelift", "finalize"]:
        assert key in stats, key
    assert stats["misses"] == 2

    buffer = io.StringIO()
    assert kernel.inspect_types(file=buffer) is None
    text = buffer.getvalue()
    assert "add (float64, float64)" in text and "add (int64, int64)" in text

    asm = kernel.inspect_asm()
    assert set(asm) == {("float64", "float64"), ("int64", "int64")}
    assert all(isinstance(v, str) and v for v in asm.values())
    assert kernel.inspect_asm(("float64", "float64")) == asm[("float64", "float64")]
    assert kernel.inspect_asm("(float64, float64)") == asm[("float64", "float64")]
    clif = kernel.inspect_clif()
    assert set(clif) == set(asm)
    assert "function" in kernel.inspect_clif(("int64", "int64"))
    # a signature not compiled yet compiles on demand
    assert kernel.inspect_asm("(float32, float32)")
    assert ("float32", "float32") in kernel.signatures


def test_inspect_types_prints_to_stdout(capsys):
    kernel = njit(add)
    kernel(1, 2)
    kernel.inspect_types()
    assert "add (int64, int64)" in capsys.readouterr().out


def test_interpret_matches_compiled():
    def mix(a, x):
        s = 0.0
        for i in range(a.shape[0]):
            s += a[i] * x - i // 3
        return s

    kernel = njit(mix)
    a = np.linspace(0, 1, 17)
    assert kernel.interpret(a, 0.5) == kernel(a, 0.5)
    with pytest.raises(IndexError):
        njit(lambda_free_index).interpret(np.zeros(2), 9)


def lambda_free_index(a, i):
    return a[i]


def test_disable_jit_runs_the_interpreter(monkeypatch, make_module):
    monkeypatch.setenv("KERNJIT_DISABLE_JIT", "1")
    module = make_module(
        """
        from kernjit import njit

        @njit
        def total(a):
            s = 0
            for i in range(a.shape[0]):
                s += a[i]
            return s
        """
    )
    assert module.total(np.arange(10)) == 45
    stats = module.total.stats()
    assert stats["cranelift"] == 0.0
    with pytest.raises(IndexError):
        njit(lambda_free_index)(np.zeros(2), 9)


# ---- errors point at the real .py file -------------------------------------------


def _line_of(path, needle):
    for number, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_syntax_error_names_the_py_file_and_line(make_module):
    module = make_module(
        """
        import numpy as np
        from kernjit import njit


        @njit(
            parallel=False,
        )
        def kernel(a):
            total = 0.0
            for i in range(a.shape[0]):
                with open("x") as f:
                    total += a[i]
            return total
        """
    )
    with pytest.raises(CompileError) as info:
        module.kernel(np.zeros(3))
    line = _line_of(module.__file__, "with open")
    assert re.search(re.escape(os.path.basename(module.__file__)) + rf":{line}:\d+", str(info.value)), str(info.value)


def test_type_error_column_in_a_nested_def(make_module):
    module = make_module(
        """
        from kernjit import njit

        def factory():
            @njit
            def inner(a, i):
                return a[i] + a
            return inner
        """
    )
    with pytest.raises(CompileError) as info:
        module.factory()(1.0, 0)
    line = _line_of(module.__file__, "return a[i] + a")
    assert f"{os.path.basename(module.__file__)}:{line}:" in str(info.value), str(info.value)


def test_runtime_error_in_a_nested_def_names_its_line(make_module):
    module = make_module(
        """
        import numpy as np
        from kernjit import njit

        def factory(offset):
            if offset >= 0:
                @njit
                def shifted(a, i):
                    x = 0.0
                    x += a[i + offset]
                    return x
                return shifted
        """
    )
    shifted = module.factory(5)
    assert shifted(np.arange(10.0), 1) == 6.0
    with pytest.raises(IndexError) as info:
        shifted(np.arange(10.0), 7)
    line = _line_of(module.__file__, "x += a[i + offset]")
    message = str(info.value)
    assert f"{os.path.basename(module.__file__)}:{line}:" in message, message
    assert "12" in message and "10" in message


def test_runtime_error_in_a_callee_from_another_module(make_module):
    helpers = make_module(
        """
        from kernjit import njit

        # a comment to move the lines

        @njit
        def divide(a, b):
            return a // b
        """,
        name="kj_helpers_divide",
    )
    main = make_module(
        """
        import numpy as np
        from kj_helpers_divide import divide as div
        from kernjit import njit

        @njit
        def run(a):
            s = 0
            for i in range(a.shape[0]):
                s += div(10, a[i])
            return s
        """
    )
    assert main.run(np.array([1, 2, 5])) == 17
    with pytest.raises(ZeroDivisionError) as info:
        main.run(np.array([1, 0]))
    line = _line_of(helpers.__file__, "return a // b")
    assert f"{os.path.basename(helpers.__file__)}:{line}:" in str(info.value), str(info.value)


def test_no_source_is_a_clear_error():
    namespace = {}
    exec("def made(x):\n    return x\n", namespace)
    kernel = njit(namespace["made"])
    with pytest.raises(CompileError, match="cannot get the source of 'made'.*define kernels in a file"):
        kernel(1.0)
    with pytest.raises(CompileError, match="cannot get the source"):
        njit("f8(f8)")(namespace["made"])


def test_lambda_and_async_refused():
    with pytest.raises(CompileError, match="lambda"):
        njit(lambda x: x)(1.0)

    async def coroutine(x):
        return x

    with pytest.raises(CompileError, match="async"):
        njit(coroutine)(1.0)


# ---- kernjit.load ---------------------------------------------------------------------


def test_load_kern_file():
    module = kernjit.load(KERNELS / "kepler.kern")
    assert module.__file__ == str(KERNELS / "kepler.kern")
    assert "kepler_newton" in module.__all__ and "kepler_newton" in dir(module)
    assert module.__doc__ and "Kepler" in module.__doc__
    E, n = module.kepler_newton(1.0, 0.5, 1e-12, 50)
    assert abs(E - 0.5 * np.sin(E) - 1.0) < 1e-12 and n >= 1
    assert isinstance(module.kepler_newton, kernjit.Dispatcher)
    # py_func: the .kern file run as Python (prange being range)
    assert module.wrap_angle.py_func(7.0) == pytest.approx(module.wrap_angle(7.0), abs=1e-15)
    assert module.kepler_newton.signatures == [("float64", "float64", "float64", "int64")]
    assert module.wrap_angle.interpret(7.0) == module.wrap_angle(7.0)


def test_load_every_kern_file():
    for path in sorted(KERNELS.glob("*.kern")):
        module = kernjit.load(str(path))
        assert module.__all__, path


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        kernjit.load(tmp_path / "missing.kern")
    bad = tmp_path / "bad.kern"
    bad.write_text("def f(x):\n    return x +\n")
    with pytest.raises(CompileError, match="bad.kern:2"):
        kernjit.load(bad)


def test_a_python_kernel_calls_a_loaded_kernel(make_module, tmp_path):
    kern = tmp_path / "lib_twice.kern"
    kern.write_text("def twice(x):\n    return 2 * x\n")
    library = kernjit.load(kern)
    module = make_module(
        f"""
        import kernjit
        library = kernjit.load({str(kern)!r})
        twice = library.twice

        @kernjit.njit
        def four_times(x):
            return twice(twice(x))
        """
    )
    assert library.twice(3) == 6
    assert module.four_times(3) == 12
