"""Threads of parallel loops follow os.environ on every call: Ray sets
OMP_NUM_THREADS per task in reused workers. Precedence: set_num_threads >
KERNJIT_NUM_THREADS > OMP_NUM_THREADS > every core.

Each test runs in a fresh interpreter: set_num_threads is process-wide, and
the pool's workers (threads named kernjit-worker-N, started when a call
first asks for N+1 threads) are the evidence of how many threads a call
used."""

import os
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task") or not hasattr(os, "sched_getaffinity"),
    reason="counts the pool's threads in /proc (Linux)",
)

COMMON = """
import os, sys, time
import numpy as np
import kernjit
from kernjit import njit, prange

def pool_threads(expected=None):
    # Threads name themselves once they run: poll (bounded) for `expected`.
    deadline = time.monotonic() + 10
    while True:
        count = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/comm") as comm:
                    count += comm.read().startswith("kernjit-worker")
            except OSError:
                pass
        if expected is None or count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.01)

def setenv(**values):
    for name in ("KERNJIT_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.pop(name, None)
    os.environ.update(values)

@njit(parallel=True)
def total(x):
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i] * x[i]
    return s

@njit(parallel=True)
def scale(x, out):
    for i in prange(x.shape[0]):
        out[i] = 2.0 * x[i]

@njit
def serial_total(x):
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i] * x[i]
    return s

x = np.random.default_rng(7).random(2_000_000)
CORES = len(os.sched_getaffinity(0))
"""


def run(run_python, body):
    done = run_python(COMMON + body)
    assert done.stdout.strip().endswith("ok"), done.stdout + done.stderr


def test_each_call_reads_os_environ(run_python):
    run(
        run_python,
        """
setenv(OMP_NUM_THREADS="1")
assert kernjit.get_num_threads() == 1 and kernjit.get_max_threads() == 1
one = total(x)
time.sleep(0.2)
assert pool_threads() == 0, "one thread: the pool never started"

setenv(OMP_NUM_THREADS="2")
assert kernjit.get_num_threads() == 2
two = total(x)
assert pool_threads(1) == 1, "two threads: the caller and one worker"

setenv(OMP_NUM_THREADS="3")
out = np.empty_like(x)
scale(x, out)
assert pool_threads(2) == 2

setenv(OMP_NUM_THREADS="1", KERNJIT_NUM_THREADS="4")
assert kernjit.get_num_threads() == 4, "KERNJIT_NUM_THREADS first"
four = total(x)
assert pool_threads(3) == 3

# The same bits on any number of threads.
assert one == two == four == serial_total(x)
assert np.array_equal(out, 2.0 * x)
time.sleep(0.2)
assert pool_threads() == 3
print("ok")
""",
    )


def test_values_and_precedence(run_python):
    run(
        run_python,
        """
setenv()
assert kernjit.get_num_threads() == kernjit.get_max_threads() == CORES
setenv(OMP_NUM_THREADS="3,2")
assert kernjit.get_num_threads() == 3, "one count per nesting level: the first"
setenv(OMP_NUM_THREADS=" 2 ")
assert kernjit.get_num_threads() == 2
setenv(OMP_NUM_THREADS="many")
assert kernjit.get_num_threads() == CORES, "not a count: skipped"
setenv(KERNJIT_NUM_THREADS="0", OMP_NUM_THREADS="2")
assert kernjit.get_num_threads() == 2, "zero: skipped"

# os.environ replaced by another mapping: still read.
saved = os.environ
os.environ = {"OMP_NUM_THREADS": "3"}
try:
    assert kernjit.get_num_threads() == 3
finally:
    os.environ = saved

# set_num_threads wins over the environment, within get_max_threads().
setenv(OMP_NUM_THREADS="3")
try:
    kernjit.set_num_threads(4)
    raise AssertionError("4 > get_max_threads()")
except ValueError as error:
    assert "between 1 and 3" in str(error), error
kernjit.set_num_threads(1)
setenv(OMP_NUM_THREADS="3", KERNJIT_NUM_THREADS="3")
assert kernjit.get_num_threads() == 1 and kernjit.get_max_threads() == 3
total(x)
time.sleep(0.2)
assert pool_threads() == 0, "set_num_threads(1): one thread"
print("ok")
""",
    )


def test_serial_and_kern_kernels(run_python, tmp_path):
    kern = tmp_path / "sq.kern"
    kern.write_text(
        "def squares(x, out):\n    for i in prange(x.shape[0]):\n        out[i] = x[i] * x[i]\n"
    )
    run(
        run_python,
        f"""
# parallel=False (the default): prange runs serially whatever the environment.
setenv(OMP_NUM_THREADS="3")
serial_total(x)
time.sleep(0.2)
assert pool_threads() == 0

# A .kern file's prange loops run in parallel, on the environment's threads,
# here and where the kernel is pickled to.
lib = kernjit.load({str(kern)!r})
assert lib.squares.targetoptions["parallel"] is True
out = np.empty_like(x)
setenv(OMP_NUM_THREADS="1")
lib.squares(x, out)
time.sleep(0.2)
assert pool_threads() == 0
setenv(OMP_NUM_THREADS="2")
lib.squares(x, out)
assert pool_threads(1) == 1
import pickle
assert pickle.loads(pickle.dumps(lib.squares)) is lib.squares
assert np.array_equal(out, x * x)
print("ok")
""",
    )


def test_pickled_kern_kernel_stays_parallel(run_python, tmp_path):
    import pickle

    import kernjit

    kern = tmp_path / "sq.kern"
    kern.write_text(
        "def squares(x, out):\n    for i in prange(x.shape[0]):\n        out[i] = x[i] * x[i]\n"
    )
    path = tmp_path / "squares.pkl"
    path.write_bytes(pickle.dumps(kernjit.load(kern).squares))
    kern.unlink()
    run(
        run_python,
        f"""
import pickle
squares = pickle.loads(open({str(path)!r}, "rb").read())
assert squares.targetoptions["parallel"] is True
out = np.empty_like(x)
setenv(OMP_NUM_THREADS="2")
squares(x, out)
assert pool_threads(1) == 1
assert np.array_equal(out, x * x)
print("ok")
""",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
