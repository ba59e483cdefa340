"""The native module `kernjit._kernjit` on its own: programs built from
hand-made segments and a trivial `Dispatcher` subclass, called as the
Python layer calls them.

Covers arguments (every dtype and layout, in place, read-only arrays,
Python and NumPy scalars), results, runtime errors with their exception
types and `.py` positions, argument errors, threads and the GIL, eager
signatures, and the reference interpreter agreeing with the JIT.
"""

import sys
import textwrap
import threading

import numpy as np
import pytest

from kernjit import _kernjit as K

FILE = "/virtual/test_native_kernels.py"
FIRST_LINE = 100  # the segment's text starts at this line of FILE

DTYPES = [
    np.bool_,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float32,
    np.float64,
]

KERNELS = """\
def add(a, b):
    return a + b

def ident(x):
    return x

def copy1(x, out):
    for i in range(x.shape[0]):
        out[i] = x[i]

def copy2(x, out):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j]

def copy3(x, out):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                out[i, j, k] = x[i, j, k]

def total(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s

def scale(x, k):
    for i in range(x.shape[0]):
        x[i] = x[i] * k

def pair(a, b):
    return a + b, a * b

def zeros(n):
    return np.zeros(n)

def ramp(n):
    out = np.zeros((n, 2), dtype=np.int32)
    for i in range(n):
        out[i, 0] = i
        out[i, 1] = 2 * i
    return out

def nothing(x):
    x[0] = 1.0

def at(x, i):
    return x[i]

def div(a, b):
    return a // b

def stepped(n, step):
    s = 0
    for i in range(0, n, step):
        s += i
    return s

def power(a, b):
    return a ** b

def forever(n):
    if n == 0:
        return 0
    return forever(n + 1)

def spin(flag, started, spins, limit):
    started[0] = 1
    while flag[0] == 0 and spins[0] < limit:
        spins[0] += 1
    return flag[0]

def is_positive(x):
    return x > 0
"""

#: Line in FILE of each `def` above, for error positions.
LINES = {
    line.split("(")[0][4:]: FIRST_LINE + number
    for number, line in enumerate(KERNELS.splitlines())
    if line.startswith("def ")
}


def make_program(text=KERNELS, first_line=FIRST_LINE, globals=None, **options):
    if globals is None:
        globals = {"np": ("module", "numpy")}
    return K.Program([(FILE, text, first_line, 0, globals)], **options)


PROGRAM = make_program()


class Kernel(K.Dispatcher):
    """What the Python layer does, minimally: bind on first call."""

    def __init__(self, program, name, signatures=None, interpret=False):
        self.builds = 0
        self.args = (program, name, signatures, interpret)

    def _build(self):
        self.builds += 1
        program, name, signatures, interpret = self.args
        self._set_program(program, name, signatures, interpret)


def kernel(name, program=PROGRAM, **options):
    return Kernel(program, name, **options)


def values_for(dtype, shape):
    size = int(np.prod(shape))
    if dtype is np.bool_:
        return (np.arange(size) % 3 == 0).reshape(shape)
    return (np.arange(size) % 100 + 1).astype(dtype).reshape(shape)


def layouts(ndim):
    """(name, make) pairs: each make(base) gives a view of `base` (a
    C-contiguous array of shape (6,) * ndim) in one layout."""
    full = (slice(None),) * ndim
    return [
        ("C", lambda a: a[tuple(slice(0, 4) for _ in range(ndim))].copy()),
        ("F", lambda a: np.asfortranarray(a[tuple(slice(0, 4) for _ in range(ndim))])),
        ("strided", lambda a: a[tuple(slice(0, 6, 2) for _ in range(ndim))]),
        ("negative", lambda a: a[tuple(slice(None, None, -1) for _ in range(ndim))]),
        ("transposed", lambda a: a[full].T),
    ]


# ---- arguments: every dtype and layout, in place ---------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_every_dtype_and_layout_is_passed_in_place(dtype, ndim):
    copy = kernel(f"copy{ndim}")
    for name, make in layouts(ndim):
        source = make(values_for(dtype, (6,) * ndim))
        out_base = np.zeros((6,) * ndim, dtype=dtype)
        out = make(out_base)
        assert copy(source, out) is None, name
        np.testing.assert_array_equal(out, source, err_msg=name)
        if np.shares_memory(out, out_base):
            # The kernel wrote the caller's memory: no copy in or out.
            assert np.count_nonzero(out_base) == np.count_nonzero(source), name


def test_writes_through_a_strided_view_reach_the_base_array():
    base = np.zeros(10)
    kernel("scale")(base, 2.0)
    view = base[1::3]
    ones = np.ones(10)
    kernel("copy1")(ones[::4], view)
    assert np.shares_memory(view, base)
    np.testing.assert_array_equal(base, [0, 1, 0, 0, 1, 0, 0, 1, 0, 0])
    reversed_view = base[::-1]
    kernel("scale")(reversed_view, 3.0)
    np.testing.assert_array_equal(base, [0, 3, 0, 0, 3, 0, 0, 3, 0, 0])


def test_read_only_arrays_are_fine_for_parameters_the_kernel_reads():
    x = np.arange(5.0)
    x.flags.writeable = False
    assert kernel("total")(x) == 10.0
    out = np.zeros(5)
    kernel("copy1")(x, out)
    np.testing.assert_array_equal(out, x)


def test_a_read_only_array_for_a_written_parameter_is_refused_before_running():
    x = np.arange(5.0)
    out = np.zeros(5)
    out.flags.writeable = False
    copy = kernel("copy1")
    with pytest.raises(ValueError, match=r"argument 2 \(`out`\) of `copy1` is a read-only array"):
        copy(x, out)
    np.testing.assert_array_equal(out, 0.0)
    # A writable array of the same signature still works, and the read-only
    # one is still refused after it (the remembered call keeps them apart).
    writable = np.zeros(5)
    copy(x, writable)
    np.testing.assert_array_equal(writable, x)
    with pytest.raises(ValueError, match="read-only"):
        copy(x, out)


# ---- scalars ---------------------------------------------------------------


def test_python_scalars():
    add = kernel("add")
    assert add(1.5, 2.25) == 3.75 and type(add(1.5, 2.25)) is float
    assert add(2, 3) == 5 and type(add(2, 3)) is int
    assert type(add(True, False)) in (int, bool)
    assert kernel("is_positive")(3) is True
    assert kernel("is_positive")(-3.0) is False
    assert kernel("ident")(True) is True
    assert kernel("ident")(-(2**63)) == -(2**63)
    # Above int64's range an int is a uint64, as in Numba.
    assert kernel("ident")(2**64 - 1) == 2**64 - 1
    assert "(u64)" in PROGRAM.signatures("ident")


def test_an_int_beyond_uint64_is_an_overflow_error():
    with pytest.raises(OverflowError, match=r"argument 1 \(`x`\) of `ident`"):
        kernel("ident")(2**64)
    with pytest.raises(OverflowError):
        kernel("ident")(-(2**63) - 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_scalars_keep_their_dtype(dtype):
    program = make_program()
    ident = kernel("ident", program)
    value = dtype(1)
    result = ident(value)
    assert result == 1
    kern = {
        "bool": "bool", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8",
        "uint16": "u16", "uint32": "u32", "uint64": "u64", "float32": "f32", "float64": "f64",
    }[np.dtype(dtype).name]
    assert program.signatures("ident") == [f"({kern})"]
    expected_type = bool if dtype is np.bool_ else float if np.dtype(dtype).kind == "f" else int
    assert type(result) is expected_type


def test_numpy_scalar_values_are_exact():
    ident = kernel("ident")
    assert ident(np.float32(0.1)) == float(np.float32(0.1))
    assert ident(np.int8(-128)) == -128
    assert ident(np.uint64(2**64 - 1)) == 2**64 - 1
    assert ident(np.int16(-2)) == -2
    assert ident(np.bool_(True)) is True


def test_scalar_arguments_of_subclasses():
    class MyFloat(float):
        pass

    class MyInt(int):
        pass

    assert kernel("add")(MyFloat(1.5), MyInt(2)) == 3.5


# ---- results ---------------------------------------------------------------


def test_results_tuples_and_new_arrays():
    assert kernel("pair")(2, 3.5) == (5.5, 7.0)
    zeros = kernel("zeros")(4)
    assert isinstance(zeros, np.ndarray) and zeros.dtype == np.float64
    np.testing.assert_array_equal(zeros, np.zeros(4))
    zeros[0] = 1.0  # the array is the caller's, writable
    ramp = kernel("ramp")(3)
    assert ramp.dtype == np.int32 and ramp.shape == (3, 2) and ramp.flags.c_contiguous
    np.testing.assert_array_equal(ramp, [[0, 0], [1, 2], [2, 4]])
    assert kernel("nothing")(np.zeros(2)) is None


def test_a_returned_array_outlives_the_call():
    arrays = [kernel("ramp")(n) for n in range(1, 50)]
    for n, array in enumerate(arrays, start=1):
        np.testing.assert_array_equal(array[:, 1], 2 * np.arange(n))


# ---- runtime errors --------------------------------------------------------


def position(name, body_line):
    """`FILE:LINE:` of line `body_line` (1-based) of kernel `name`'s def."""
    return f"{FILE}:{LINES[name] + body_line - 1}:"


RUNTIME_ERRORS = [
    ("at", (np.zeros(10), 12), IndexError, 2, "index 12 out of bounds for axis 0 with size 10"),
    ("div", (7, 0), ZeroDivisionError, 2, "division or modulo by zero"),
    ("stepped", (10, 0), ValueError, 3, "step must not be zero"),
    ("zeros", (-1,), ValueError, 2, r"shape \(-1\)"),
    ("zeros", (2**45,), MemoryError, 2, "too large"),
    ("power", (2, -1), ValueError, 2, "negative integer power"),
    ("forever", (1,), RecursionError, 4, "recursion deeper than 1000 calls"),
]


@pytest.mark.parametrize("interpret", [False, True], ids=["jit", "interpret"])
@pytest.mark.parametrize("name, args, error, line, message", RUNTIME_ERRORS, ids=lambda v: str(v)[:20])
def test_runtime_errors_raise_python_exceptions_with_the_py_line(name, args, error, line, message, interpret):
    with pytest.raises(error, match=message) as caught:
        kernel(name, interpret=interpret)(*args)
    text = str(caught.value)
    assert text.startswith(position(name, line)), text
    assert "error[R06" in text and "runtime error here" in text


def test_index_errors_name_the_array_and_index():
    with pytest.raises(IndexError) as caught:
        kernel("at")(np.zeros(3), -4)
    assert "x[-4]" in str(caught.value)


# ---- argument errors -------------------------------------------------------

BAD_ARGUMENTS = [
    ("text", "a str"),
    (None, "None"),
    ([1.0, 2.0], "a list"),
    (object(), "an object"),
    ((1.0, 2.0), "a tuple"),
    (1 + 2j, "a complex"),
    (np.zeros((2, 2, 2, 2)), "a 4-D array"),
    (np.array(1.0), "a 0-D array"),
    (np.zeros(3, dtype=np.complex128), "dtype complex128"),
    (np.zeros(3, dtype=np.float16), "dtype float16"),
    (np.zeros(3, dtype=object), "dtype object"),
    (np.zeros(3, dtype="datetime64[s]"), "dtype datetime64"),
    (np.zeros(3, dtype=">f8"), "non-native byte order"),
    (np.zeros(24, np.uint8)[1:17].view(np.float64), "misaligned"),
]


@pytest.mark.parametrize("bad, what", BAD_ARGUMENTS, ids=lambda v: str(v)[:20])
def test_bad_arguments_are_type_errors_naming_the_parameter(bad, what):
    with pytest.raises(TypeError) as caught:
        kernel("add")(1.0, bad)
    text = str(caught.value)
    assert text.startswith("argument 2 (`b`) of `add` is "), text
    assert what in text, text
    assert "NumPy arrays of 1 to 3 dimensions" in text


def test_bad_arguments_after_a_successful_call():
    add = kernel("add")
    assert add(1.0, 2.0) == 3.0
    with pytest.raises(TypeError, match=r"argument 1 \(`a`\) of `add` is a str"):
        add("x", 2.0)


def test_strides_not_a_multiple_of_the_item_size_are_refused():
    raw = np.zeros(40, dtype=np.uint8)
    odd = np.lib.stride_tricks.as_strided(raw[:32].view(np.float64), shape=(3,), strides=(12,))
    if odd.flags.aligned:
        with pytest.raises(TypeError, match="strides"):
            kernel("total")(odd)
    else:
        with pytest.raises(TypeError, match="misaligned|strides"):
            kernel("total")(odd)


def test_wrong_argument_counts_read_like_python():
    add = kernel("add")
    with pytest.raises(TypeError, match=r"^add\(\) takes 2 positional arguments but 3 were given$"):
        add(1, 2, 3)
    with pytest.raises(TypeError, match=r"^add\(\) missing 1 required positional argument: 'b'$"):
        add(1)
    with pytest.raises(TypeError, match=r"^add\(\) missing 2 required positional arguments: 'a' and 'b'$"):
        add()
    assert add(1, 2) == 3
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        add(1, 2, 3)


def test_keyword_arguments_are_a_type_error():
    add = kernel("add")
    with pytest.raises(TypeError, match="positional arguments only"):
        add(1.0, b=2.0)


# ---- threads and the GIL ---------------------------------------------------


def test_concurrent_calls_from_eight_threads():
    program = make_program()
    copy = kernel("copy2", program)
    total = kernel("total", program)
    add = kernel("add", program)
    failures = []
    barrier = threading.Barrier(8)

    def work(seed):
        try:
            barrier.wait()
            rng = np.random.default_rng(seed)
            for round in range(300):
                x = rng.random((5, 3))
                out = np.zeros((5, 3)) if round % 2 else np.zeros((5, 3), order="F")
                copy(x, out)
                np.testing.assert_array_equal(out, x)
                assert total(x[:, 0]) == pytest.approx(x[:, 0].sum())
                assert add(seed, round) == seed + round
                assert add(float(seed), 0.5) == seed + 0.5
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]


def test_parallel_kernels_called_from_many_threads():
    source = "def psum(x):\n    s = 0\n    for i in prange(x.shape[0]):\n        s += x[i]\n    return s\n"
    program = make_program(source, globals={"prange": ("member", "numba", "prange")})
    psum = kernel("psum", program)
    x = np.arange(100_000, dtype=np.int64)
    failures = []

    def work():
        try:
            for _ in range(50):
                assert psum(x) == x.sum()
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]


def test_the_gil_is_released_while_a_kernel_runs():
    # The kernel spins until this thread sets `flag`; it can only if the
    # kernel let go of the GIL. (If it did not, the kernel gives up after
    # `limit` spins and returns 0, and the assertion below fails.)
    spin = kernel("spin")
    flag = np.zeros(1, dtype=np.int64)
    started = np.zeros(1, dtype=np.int64)
    spins = np.zeros(1, dtype=np.int64)
    spin(flag, started, spins, 1)  # compile first
    flag[0] = started[0] = spins[0] = 0
    result = []
    worker = threading.Thread(target=lambda: result.append(spin(flag, started, spins, 10**11)))
    worker.start()
    while started[0] == 0 and worker.is_alive():
        pass
    flag[0] = 1
    worker.join()
    assert result == [1]


def test_the_gil_is_released_while_compiling():
    # With a long switch interval, another thread gets the GIL only when
    # this one lets go of it: it can only have ticked during the loop if
    # compiling (the native calls) released the GIL.
    program = make_program()
    ident = kernel("ident", program)
    ready = threading.Event()
    ticks = []
    counter = threading.Thread(target=lambda: (ready.wait(), ticks.append(1)))
    counter.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        ready.set()
        # Up to 99 signatures, each compiled on its first call.
        for dtype in DTYPES:
            for shape in [(4,), (4, 4), (4, 4, 4)]:
                base = np.zeros(shape, dtype=dtype)
                for array in [base, base.T, base[::-2]]:
                    ident(array)
                    if ticks:
                        break
        seen = list(ticks)
    finally:
        sys.setswitchinterval(interval)
        counter.join()
    assert seen == [1]


# ---- eager signatures ------------------------------------------------------


def test_eager_signatures_compile_now_and_accept_safe_conversions():
    program = make_program()
    add = Kernel(program, "add", signatures=[("(f64, f64)", "f64")])
    add._build()
    assert program.signatures("add") == ["(f64, f64)"]
    assert add(1.0, 2.0) == 3.0
    assert add(1, 2) == 3.0 and type(add(1, 2)) is float  # Python ints convert
    assert add(np.float32(0.5), 1.0) == 1.5
    assert add(np.int32(2), 1.0) == 3.0
    assert add(True, 1.0) == 2.0
    with pytest.raises(TypeError, match=r"No matching definition for argument type\(s\) \(f64\[::1\], f64\)"):
        add(np.zeros(2), 1.0)
    assert program.signatures("add") == ["(f64, f64)"]  # nothing else compiled


def test_eager_signatures_pick_the_exact_match_and_check_int_ranges():
    program = make_program()
    ident = Kernel(program, "ident", signatures=[("(i32)", None), ("(f64)", None)])
    assert ident(7) == 7 and type(ident(7)) is int  # fits i32
    assert ident(2**40) == float(2**40)  # does not fit i32: f64
    assert ident(np.int32(3)) == 3
    assert ident(2.5) == 2.5
    assert ident(np.uint64(3)) == 3.0  # promote(u64, i32) is f64: only (f64) fits
    with pytest.raises(TypeError, match=r"No matching definition for argument type\(s\) \(f64\[::1\]\)"):
        ident(np.zeros(2))
    assert program.signatures("ident") == ["(i32)", "(f64)"]


def test_eager_result_types_convert_scalar_results():
    program = make_program()
    add = Kernel(program, "add", signatures=[("(i64, i64)", "f64")])
    assert add(2, 3) == 5.0 and type(add(2, 3)) is float


def test_eager_array_signatures_check_dtype_dimensions_and_layout():
    program = make_program()
    total = Kernel(program, "total", signatures=[("(f64[::1])", "f64")])
    assert total(np.ones(4)) == 4.0
    with pytest.raises(TypeError, match="No matching definition"):
        total(np.ones(8)[::2])
    with pytest.raises(TypeError, match="No matching definition"):
        total(np.ones(4, dtype=np.float32))
    anywhere = Kernel(program, "total", signatures=[("(f64[:])", "f64")])
    assert anywhere(np.ones(8)[::2]) == 4.0
    assert anywhere(np.ones(8)) == 8.0


def test_eager_signature_errors():
    program = make_program("def bad(x):\n    return x + undefined_name\n", globals={})
    bad = Kernel(program, "bad", signatures=[("(f64)", None)])
    with pytest.raises(K.CompileError) as caught:
        bad._build()
    assert f"{FILE}:{FIRST_LINE + 1}:" in str(caught.value)
    with pytest.raises(TypeError, match="invalid signature"):
        Kernel(PROGRAM, "add", signatures=[("(f64, f64[:, :, :, :])", None)])._build()


# ---- the reference interpreter ---------------------------------------------


@pytest.mark.parametrize(
    "name, make_args",
    [
        ("add", lambda: (1.5, 2)),
        ("add", lambda: (np.int8(100), np.int8(100))),
        ("pair", lambda: (3, 0.25)),
        ("total", lambda: (np.arange(7.0)[::-2],)),
        ("ramp", lambda: (4,)),
        ("zeros", lambda: (3,)),
        ("is_positive", lambda: (np.float32(-0.0),)),
        ("copy2", lambda: (np.arange(12.0).reshape(3, 4).T, np.zeros((4, 3), order="F"))),
        ("scale", lambda: (np.arange(6, dtype=np.int16)[::-1], 3)),
        ("div", lambda: (-7, 2)),
    ],
)
def test_interpret_mode_agrees_with_the_jit(name, make_args):
    jit_args, interp_args = make_args(), make_args()
    jit_result = kernel(name)(*jit_args)
    interp_result = kernel(name, interpret=True)(*interp_args)
    assert type(jit_result) is type(interp_result)
    if isinstance(jit_result, np.ndarray):
        assert jit_result.dtype == interp_result.dtype
        np.testing.assert_array_equal(jit_result, interp_result)
    else:
        assert jit_result == interp_result
    for a, b in zip(jit_args, interp_args):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)  # written back in place
    np.testing.assert_array_equal(PROGRAM.interpret(name, make_args()), jit_result)


def test_interpret_mode_follows_eager_signatures():
    add = Kernel(make_program(), "add", signatures=[("(i32, i32)", "f64")], interpret=True)
    assert add(2, 3) == 5.0 and type(add(2, 3)) is float
    assert kernel("add", interpret=True)(np.int32(2**31 - 1), np.int32(1)) == -(2**31)
    assert add(np.int32(2**31 - 1), np.int32(1)) == float(-(2**31))  # wraps in i32, as compiled
    with pytest.raises(TypeError, match="No matching definition"):
        add(2**40, 1)
    with pytest.raises(TypeError, match="No matching definition"):
        add(1.5, 1)


def test_interpret_mode_refuses_read_only_arrays_it_would_write():
    out = np.zeros(3)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernel("copy1", interpret=True)(np.ones(3), out)
    x = np.ones(3)
    x.flags.writeable = False
    assert kernel("total", interpret=True)(x) == 3.0


def test_interpret_mode_keeps_writes_made_before_an_error():
    jit_x, interp_x = np.arange(4.0), np.arange(4.0)
    source = "def partial(x):\n    for i in range(10):\n        x[i] = -1.0\n"
    program = make_program(source)
    with pytest.raises(IndexError):
        kernel("partial", program)(jit_x)
    with pytest.raises(IndexError):
        kernel("partial", program, interpret=True)(interp_x)
    np.testing.assert_array_equal(jit_x, interp_x)
    np.testing.assert_array_equal(jit_x, -1.0)


# ---- Program ---------------------------------------------------------------


def test_program_introspection():
    program = make_program()
    assert program.kernel_names()[:3] == ["add", "ident", "copy1"]
    program.compile("total", "(f64[:])")
    assert program.signatures("total") == ["(f64[:])"]
    types = program.inspect_types("total", "(f64[:])")
    assert "def total(x: f64[:]) -> f64" in types
    assert "function" in program.inspect_clif("total", "(f64[::1])")
    assert program.inspect_asm("total", "(f64[:])").strip()
    stats = program.stats()
    assert set(stats) == {"hits", "misses", "evictions", "cached", "parse", "infer", "lower", "cranelift", "finalize"}
    assert stats["misses"] == 1
    total = kernel("total", program)
    for _ in range(5):
        total(np.ones(3)[::2])
    assert program.stats()["hits"] >= 4
    assert program.call("add", (1, 2)) == 3
    assert program.call("add", [1.5, 2]) == 3.5
    assert program.interpret("add", (1, 2)) == 3
    with pytest.raises(ValueError, match="no kernel named `nope`"):
        program.compile("nope", "(f64)")
    with pytest.raises(K.CompileError):
        program.compile("total", "(bool)")


def test_compile_errors_point_at_the_py_file_and_line():
    with pytest.raises(K.CompileError) as caught:
        make_program("def broken(x):\n    return x +\n", first_line=41)
    assert f"{FILE}:42:" in str(caught.value)
    program = make_program("def typed(x):\n    return x[0]\n", first_line=7)
    with pytest.raises(K.CompileError) as caught:
        kernel("typed", program)(1.0)
    assert f"{FILE}:8:" in str(caught.value)
    assert issubclass(K.CompileError, Exception)


def test_globals_specs():
    source = "def g(x):\n    y = x * SCALE + OFFSET[1] + sq(4.0) + HALF\n    if FLAG:\n        y += 1\n    return y\n"
    globals = {
        "SCALE": ("const", ("int", 3)),
        "OFFSET": ("const", ("tuple", [("float", 0.5), ("float", 1.5)])),
        "FLAG": ("const", ("bool", True)),
        "HALF": ("const", ("np", "float32", 0.5)),
        "sq": ("member", "math", "sqrt"),
    }
    program = make_program(source, globals=globals)
    assert kernel("g", program)(2.0) == 2.0 * 3 + 1.5 + 2.0 + 1 + 0.5
    with pytest.raises(TypeError, match="global `X`"):
        make_program(source, globals={"X": ("what", 1)})
    with pytest.raises(K.CompileError, match=f"(?s)dict.*{FILE}:{FIRST_LINE + 1}:"):
        make_program("def h():\n    return D\n", globals={"D": ("unsupported", "a dict")})


def test_load_reads_kern_files(tmp_path):
    path = tmp_path / "small.kern"
    path.write_text("def twice(x):\n    return 2 * x\n")
    program = K.Program.load(str(path))
    assert program.kernel_names() == ["twice"]
    assert program.call("twice", (21,)) == 42
    with pytest.raises(OSError):
        K.Program.load(str(tmp_path / "missing.kern"))
    (tmp_path / "bad.kern").write_text("def f(:\n")
    with pytest.raises(K.CompileError, match="bad.kern:1:"):
        K.Program.load(str(tmp_path / "bad.kern"))


def test_options():
    unchecked = make_program(boundscheck=False)
    assert kernel("at", unchecked)(np.arange(4.0), 3) == 3.0
    with pytest.raises(ValueError, match="threads"):
        make_program(threads=0)
    assert kernel("add", make_program(threads=1, fastmath=True))(1, 2) == 3


# ---- Dispatcher ------------------------------------------------------------


def test_dispatcher_binds_on_first_call_once():
    add = kernel("add")
    assert add._program() is None and add._kernel() is None
    assert add(1, 2) == 3 and add(3, 4) == 7 and add(1.0, 2) == 3.0
    assert add.builds == 1
    assert add._kernel() == "add" and isinstance(add._program(), K.Program)


def test_a_build_that_does_not_bind_is_an_error():
    class Lazy(K.Dispatcher):
        def _build(self):
            pass

    with pytest.raises(TypeError, match="_set_program"):
        Lazy("lazy")(1)


def test_rebinding_forgets_the_last_call():
    first = make_program("def f(x):\n    return x + 1\n")
    second = make_program("def f(x):\n    return x + 2\n")
    f = kernel("f", first)
    assert f(1) == 2
    f._set_program(second, "f")
    assert f(1) == 3


def test_rebinding_while_other_threads_call():
    programs = [make_program(f"def f(x):\n    return x + {k}\n") for k in (1, 2)]
    f = kernel("f", programs[0])
    assert f(0) == 1
    stop = threading.Event()
    failures = []

    def call():
        try:
            while not stop.is_set():
                assert f(0) in (1, 2)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for round in range(50):
            f._set_program(programs[round % 2], "f")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[0]
    assert f(0) == 2


def test_dispatcher_subclasses_may_define_their_own_init():
    class Named(K.Dispatcher):
        def __init__(self, func, extra):
            super().__init__(func.__name__)
            self.extra = extra

    def g():
        pass

    named = Named(g, 1)
    assert named.extra == 1 and "g" in repr(named)


# ---- threads setting -------------------------------------------------------


def test_thread_settings():
    most = K.get_max_threads()
    assert most >= 1
    before = K.get_num_threads()
    try:
        K.set_num_threads(1)
        assert K.get_num_threads() == 1
        K.set_num_threads(most)
        assert K.get_num_threads() == most
        with pytest.raises(ValueError):
            K.set_num_threads(0)
        with pytest.raises(ValueError):
            K.set_num_threads(most + 1)
    finally:
        K.set_num_threads(before)
