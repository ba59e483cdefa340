"""Kernels pickle by value: source, frozen constants, options, eager
signatures; fresh processes that never saw the file compile them."""

import pickle
import shutil

import numpy as np
import pytest

import kernjit
from kernjit import njit

KERNEL_MODULE = """
import math
import numpy as np
import kernjit as nb  # stands for numba (which need not be installed)
from math import sqrt
from kernjit import njit, prange

SCALE = 2.0
OFFSETS = (1, np.float32(0.5))

@njit
def norm(x, y):
    return sqrt(x * x + y * y)

def make(power):
    @njit(parallel=False, boundscheck=True)
    def weighted(a):
        \"\"\"Weighted sum.\"\"\"
        s = 0.0
        for i in nb.prange(a.shape[0]):
            s += norm(a[i], OFFSETS[0]) * SCALE ** power + OFFSETS[1]
        return s
    return weighted

weighted = make(2)

@njit("float64(float64[:], int64)")
def pick(a, i):
    return a[i] + math.pi
"""


def _expected(a):
    return sum(np.sqrt(x * x + 1) * 4.0 + 0.5 for x in a)


@pytest.fixture
def kernels(make_module):
    return make_module(KERNEL_MODULE, name="kj_pickled_kernels")


def test_round_trip_in_process_gives_the_same_kernel(kernels):
    assert pickle.loads(pickle.dumps(kernels.weighted)) is kernels.weighted
    a = np.arange(4.0)
    assert kernels.weighted(a) == pytest.approx(_expected(a))


def test_state_holds_sources_not_references(kernels):
    reducer, (state,) = kernels.weighted.__reduce__()
    assert reducer.__module__ == "kernjit._pickle"
    names = [names for names, _ in state["units"]]
    assert names == [("weighted",), ("norm",)]
    file, text, first_line, indent, globals_ = state["units"][0][1]
    assert file == kernels.__file__ and text.startswith("def weighted(a):") and indent == 4
    assert globals_["SCALE"] == ("const", ("float", 2.0))
    assert globals_["power"] == ("const", ("int", 2))
    assert globals_["OFFSETS"] == ("const", ("tuple", [("int", 1), ("np", "float32", 0.5)]))
    assert globals_["nb"] == ("module", "numba")
    assert globals_["norm"] == ("kernel", "norm")
    assert state["options"]["parallel"] is False
    assert state["units"][1][1][4]["sqrt"] == ("member", "math", "sqrt")


def _write_pickles(kernels, tmp_path, dumps):
    path = tmp_path / "kernels.pkl"
    path.write_bytes(dumps((kernels.weighted, kernels.pick, kernels.norm)))
    # The fresh process must never see the file.
    shutil.move(kernels.__file__, str(tmp_path / "gone.py.txt"))
    shutil.rmtree(tmp_path / "__pycache__", ignore_errors=True)
    return path


CHECK = """
import sys, pickle
import numpy as np
import kernjit
sys.modules.pop("kj_pickled_kernels", None)
weighted, pick, norm = {loads}(open(sys.argv[1], "rb").read())
a = np.arange(4.0)
expected = sum(np.sqrt(x * x + 1) * 4.0 + 0.5 for x in a)
assert abs(weighted(a) - expected) < 1e-9 * expected, weighted(a)
assert weighted.__name__ == "weighted" and weighted.__doc__ == "Weighted sum."
assert weighted.targetoptions["parallel"] is False
# py_func is rebuilt from the shipped source, prange being range (in Python,
# NumPy's rules make the sum float32: compare loosely)
assert abs(weighted.py_func(a) - expected) < 1e-6 * expected
assert pick.signatures == [("float64[:]", "int64")], pick.signatures
assert abs(pick(a, 2) - (2.0 + np.pi)) < 1e-12
try:
    pick(np.zeros(3, dtype=np.int32), 0)
except TypeError as error:
    assert "No matching definition" in str(error)
else:
    raise AssertionError("eager signatures were lost")
try:
    pick(a, 10)
except IndexError as error:
    # diagnostics still name the original file and line
    assert "kj_pickled_kernels.py:{line}" in str(error), str(error)
else:
    raise AssertionError("no IndexError")
assert "kj_pickled_kernels" not in sys.modules
print("ok", norm(3.0, 4.0))
"""


def _pick_line():
    return next(n for n, line in enumerate(KERNEL_MODULE.splitlines(), 1) if "return a[i] + math.pi" in line)


@pytest.mark.parametrize("library", ["pickle", "cloudpickle"])
def test_fresh_process_compiles_a_shipped_kernel(kernels, tmp_path, run_python, library):
    serializer = pytest.importorskip(library)
    path = _write_pickles(kernels, tmp_path, serializer.dumps)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_python(
        CHECK.replace("{loads}", f"__import__({library!r}).loads").replace("{line}", str(_pick_line())),
        path,
        cwd=elsewhere,
    )
    assert done.stdout.strip() == "ok 5.0"


MAIN_SCRIPT = """
import multiprocessing
import pickle
import sys

import numpy as np
from kernjit import njit, prange

N_TERMS = 3

@njit
def poly(x):
    s = 0.0
    for k in range(N_TERMS):
        s += x ** k
    return s

@njit
def apply(a):
    out = np.empty(a.shape[0])
    for i in prange(a.shape[0]):
        out[i] = poly(a[i])
    return out

def total(n):
    return float(apply(np.arange(float(n))).sum())

if __name__ == "__main__":
    expected = [total(n) for n in range(1, 6)]
    # multiprocessing with spawn: a fresh interpreter per worker
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        assert pool.map(apply, [np.arange(float(n)) for n in range(1, 6)])[-1].tolist() == apply(np.arange(5.0)).tolist()
        assert pool.map(total, range(1, 6)) == expected
    # joblib (loky workers, cloudpickle)
    import joblib
    results = joblib.Parallel(n_jobs=2)(joblib.delayed(apply)(np.arange(float(n))) for n in range(1, 6))
    assert [float(r.sum()) for r in results] == expected
    # plain pickle of a __main__ kernel into a fresh interpreter
    with open(sys.argv[1], "wb") as f:
        pickle.dump(apply, f)
    print("ok")
"""

LOAD_MAIN = """
import pickle, sys
import numpy as np
apply = pickle.load(open(sys.argv[1], "rb"))
print(apply(np.arange(3.0)).tolist(), apply.py_func(np.arange(3.0)).tolist())
"""


def test_kernel_from_main_ships_by_value(run_python, tmp_path):
    pytest.importorskip("joblib")
    pickled = tmp_path / "apply.pkl"
    done = run_python(MAIN_SCRIPT, pickled, name="main_script.py")
    assert done.stdout.strip() == "ok"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "main_script.py").unlink()
    done = run_python(LOAD_MAIN, pickled, cwd=elsewhere, name="load_main.py")
    assert done.stdout.strip() == "[1.0, 3.0, 7.0] [1.0, 3.0, 7.0]"


def test_unpickling_twice_in_one_process_shares_the_kernel(kernels, tmp_path, run_python):
    path = tmp_path / "twice.pkl"
    path.write_bytes(pickle.dumps(kernels.weighted))
    done = run_python(
        """
        import pickle, sys
        import numpy as np
        data = open(sys.argv[1], "rb").read()
        first = pickle.loads(data)
        first(np.ones(2))
        second = pickle.loads(data)
        assert second is first
        print(second.stats()["misses"])
        """,
        path,
    )
    assert done.stdout.strip() == "1"


def test_loaded_kern_kernel_pickles(tmp_path, run_python):
    kern = tmp_path / "lib.kern"
    kern.write_text("import math\n\ndef hyp(x, y):\n    return math.sqrt(x * x + y * y)\n")
    module = kernjit.load(kern)
    path = tmp_path / "hyp.pkl"
    path.write_bytes(pickle.dumps(module.hyp))
    kern.unlink()
    done = run_python("import pickle, sys\nprint(pickle.loads(open(sys.argv[1], 'rb').read())(3.0, 4.0))\n", path)
    assert done.stdout.strip() == "5.0"


def test_never_called_kernel_freezes_globals_when_pickled(make_module):
    module = make_module(
        """
        from kernjit import njit
        K = 1
        @njit
        def plus_k(x):
            return x + K
        """
    )
    data = pickle.dumps(module.plus_k)
    module.K = 10
    assert module.plus_k(1) == 2  # the pickled (frozen) value
    assert data


def test_pickle_a_kernel_without_source_fails_clearly():
    namespace = {}
    exec("def made(x):\n    return x\n", namespace)
    with pytest.raises(kernjit.CompileError, match="cannot get the source"):
        pickle.dumps(njit(namespace["made"]))


def test_kernel_from_a_notebook_cell_ships(tmp_path, run_python):
    # IPython compiles each cell under a made-up file name and registers its
    # text in linecache (mtime None), as simulated here.
    import linecache

    cell = "import numpy as np\nfrom kernjit import njit\nBIAS = 0.5\n\n@njit\ndef biased(a):\n    return a[1] + BIAS\n"
    filename = "<ipython-input-7-0123456789ab>"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    exec(compile(cell, filename, "exec"), namespace)
    biased = namespace["biased"]
    assert biased(np.arange(3.0)) == 1.5
    with pytest.raises(IndexError, match="ipython-input-7-0123456789ab>:7"):
        biased(np.arange(1.0))
    path = tmp_path / "cell.pkl"
    path.write_bytes(pickle.dumps(biased))
    done = run_python(
        """
        import pickle, sys
        import numpy as np
        biased = pickle.loads(open(sys.argv[1], "rb").read())
        print(biased(np.arange(3.0)))
        try:
            biased(np.arange(1.0))
        except IndexError as error:
            print("ipython-input-7-0123456789ab>:7" in str(error))
        """,
        path,
    )
    assert done.stdout.split() == ["1.5", "True"]
