"""Kernels in Ray tasks and actors, on a real Ray (2.60): a local
``ray.init(num_cpus=2)`` and a two-node ``ray.cluster_utils.Cluster``.

Kernels ship by value (their source, not a reference to this module or to a
driver's ``__main__``) and compile on each worker's first call; results are
those of a single process, bit for bit; read-only object-store arrays are
read in place, and writing one is a ValueError naming the parameter; errors
inside a task surface in the driver as the same exception class, with the
kernel's file and line; a task's parallel loops use the CPUs Ray gave it.

Without Ray these tests are skipped, unless KERNJIT_REQUIRE_RAY=1 (CI),
where that is a failure. Every cluster is shut down after its class, even
on failure, and no process it started may outlive it (ray_fixtures).
"""

import os
import pickle
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ray_fixtures

ray = ray_fixtures.require_ray()

import kernjit  # noqa: E402
from kernjit import njit, prange  # noqa: E402

# Workers cannot import this module: ship its functions by value too, as
# they would from a driver's __main__.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

# ---- kernels --------------------------------------------------------------------


@njit(parallel=True)
def smooth(x, out):
    n = x.shape[0]
    for i in prange(n):
        left = x[max(i - 1, 0)]
        right = x[min(i + 1, n - 1)]
        out[i] = 0.25 * left + 0.5 * x[i] + 0.25 * right


@njit(parallel=True)
def sum_sq(x):
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i] * x[i]
    return s


@njit
def kepler(mean_anomaly, e):
    out = np.empty(mean_anomaly.shape[0])
    for i in range(mean_anomaly.shape[0]):
        m = mean_anomaly[i]
        big_e = m
        for _ in range(30):
            big_e = big_e - (big_e - e * np.sin(big_e) - m) / (1.0 - e * np.cos(big_e))
        out[i] = big_e
    return out


@njit
def take(x, i):
    return x[i]  # marker: take


@njit
def modulo(a, b):
    return a % b  # marker: modulo


@njit
def typo(x):
    return x + "s"  # marker: typo


@njit
def double_in_place(x):
    for i in range(x.shape[0]):
        x[i] *= 2.0


def line_of(marker):
    """`file:line` of the source line holding `# marker: <marker>`."""
    lines = Path(__file__).read_text().splitlines()
    number = next(n for n, text in enumerate(lines, 1) if text.rstrip().endswith(f"# marker: {marker}"))
    return f"{__file__}:{number}:"


# ---- what tasks report ------------------------------------------------------------


def pool_threads():
    """The kernjit pool's worker threads in this process (they name
    themselves once running: poll briefly)."""
    count, deadline = 0, time.monotonic() + 5
    while True:
        count = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/comm") as comm:
                    count += comm.read().startswith("kernjit-worker")
            except OSError:
                pass
        if count or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def pool_cpu_ticks():
    """CPU time (clock ticks) the kernjit pool's workers used so far."""
    ticks = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm:
                if not comm.read().startswith("kernjit-worker"):
                    continue
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks


def run_all(x):
    """Every kernel on `x` (a task's read-only argument): outputs go to
    arrays allocated here, or come back from the kernel."""
    out = np.empty_like(x)
    smooth(x, out)
    return {"smooth": out, "sum_sq": sum_sq(x), "kepler": kepler(x, 0.3)}


def thread_probe(kernel, size):
    """How many threads a parallel kernel uses in this task, with evidence:
    the pool's workers, and the CPU time they spent during the call."""
    x = np.linspace(0.0, 1.0, size)
    out = np.empty_like(x)
    kernel(x[:10], out[:10])  # compile first: time only the run
    before = pool_cpu_ticks()
    started = time.perf_counter()
    for _ in range(3):
        kernel(x, out)
    elapsed = time.perf_counter() - started
    return {
        "pid": os.getpid(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "threads": kernjit.get_num_threads(),
        "pool_threads": pool_threads(),
        "pool_ticks": pool_cpu_ticks() - before,
        "elapsed": elapsed,
        "checksum": float(out.sum()),
    }


@njit(parallel=True)
def busy(x, out):
    for i in prange(x.shape[0]):
        v = x[i]
        for _ in range(100):
            v = np.sqrt(v * v + x[i] + 1.0) - 0.5
        out[i] = v


@ray.remote(num_cpus=1)
def run_all_task(x):
    return run_all(x), x.flags.writeable, x.flags.owndata, os.getpid(), smooth.stats()["misses"]


@ray.remote(num_cpus=1)
def apply(kernel, *args):
    return kernel(*args)


@ray.remote(num_cpus=1)
def update_copy(kernel, x):
    y = x.copy()
    kernel(y)
    return y


@ray.remote(num_cpus=1)
class KernelActor:
    def run(self, x):
        return run_all(x), os.getpid(), sum_sq.stats()

    def take(self, x, i):
        return take(x, i)


@ray.remote
def probe(kernel, size):
    return thread_probe(kernel, size)


@ray.remote(max_calls=1)
def fresh_probe(kernel, size):
    """In a worker process of its own (which exits after the task)."""
    return thread_probe(kernel, size)


@ray.remote(num_cpus=1)
class ProbeActor:
    def probe(self, kernel, size):
        return thread_probe(kernel, size)


def assert_same(result, expected):
    """Bit-for-bit equal results of `run_all`."""
    assert np.array_equal(result["smooth"], expected["smooth"])
    assert result["sum_sq"] == expected["sum_sq"]
    assert np.array_equal(result["kepler"], expected["kepler"])


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(17).random(100_000)
    return x, run_all(x)


# ---- a kernel from a driver's __main__ -----------------------------------------------

DRIVER = '''
import json, os, shutil, sys, time
import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
import kernjit
from kernjit import njit, prange

@njit(parallel=True)
def energy(x, out):
    for i in prange(x.shape[0]):
        out[i] = 0.5 * x[i] * x[i] + 1.0

@njit
def norm2(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s

@njit
def at(x, i):
    return x[i]  # marker: at

@njit
def broken(x):
    return x + "s"  # marker: broken

SCRIPT = os.path.abspath(__file__)
source_lines = open(SCRIPT).read().splitlines()
lines = {marker: number for number, text in enumerate(source_lines, 1)
         for marker in ("at", "broken") if text.endswith("# marker: " + marker)}

x = np.random.default_rng(3).random(50_000)
expected = np.empty_like(x)
energy(x, expected)
expected_norm = norm2(x)
# A kernel of a .kern file, shipped by value too.
kern = os.path.join(os.path.dirname(SCRIPT), "cube.kern")
with open(kern, "w") as file:
    file.write("def cube(x, out):\\n    for i in prange(x.shape[0]):\\n        out[i] = x[i] * x[i] * x[i]\\n")
cube = kernjit.load(kern).cube
expected_cube = np.empty_like(x)
cube(x, expected_cube)
# No worker can read the sources now: they must come with the kernels.
os.remove(kern)
shutil.move(SCRIPT, SCRIPT + ".moved")

ray.init(address=sys.argv[1], log_to_driver=False)
nodes = sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])

@ray.remote(num_cpus=1)
def task(x):
    started = time.perf_counter()
    out = np.empty_like(x)
    energy(x, out)
    first_call = time.perf_counter() - started
    cubed = np.empty_like(x)
    cube(x, cubed)
    return {
        "node": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
        "equal": bool(np.array_equal(out, expected) and norm2(x) == expected_norm
                      and np.array_equal(cubed, expected_cube)),
        "writeable": bool(x.flags.writeable),
        "first_call": first_call,
        "misses": energy.stats()["misses"],
        "threads": kernjit.get_num_threads(),
        "sees_script": os.path.exists(SCRIPT),
    }

@ray.remote(num_cpus=1)
class Holder:
    def norm(self, x):
        return norm2(x) == expected_norm, ray.get_runtime_context().get_node_id()

@ray.remote(num_cpus=1)
def call(kernel, *args):
    return kernel(*args)

def pinned(node):
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}

ref = ray.put(x)
report = {"driver_pid": os.getpid(), "script": SCRIPT, "lines": lines, "nodes": nodes,
          "tasks": [], "actors": [], "errors": {}}
for node in nodes:
    report["tasks"].append(ray.get(task.options(**pinned(node)).remote(ref)))
    holder = Holder.options(**pinned(node)).remote()
    equal, where = ray.get(holder.norm.remote(ref))
    report["actors"].append({"node": where, "equal": equal})
    ray.kill(holder)
last = pinned(nodes[-1])
try:
    ray.get(call.options(**last).remote(at, ref, 10**6))
except IndexError as error:
    report["errors"]["index"] = str(error)
try:
    ray.get(call.options(**last).remote(broken, ref))
except kernjit.CompileError as error:
    report["errors"]["compile"] = str(error)
try:
    ray.get(call.options(**last).remote(energy, x, ref))
except ValueError as error:
    report["errors"]["read_only"] = str(error)
print("REPORT " + json.dumps(report))
ray.shutdown()
'''


def check_driver_report(done, nodes):
    """The driver's report: every node ran its pinned task and actor with
    the results of the driver's own process; errors as the same class with
    the driver file's line."""
    import json

    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, f"driver failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    report = json.loads(lines[-1][len("REPORT ") :])
    assert report["nodes"] == sorted(nodes)
    assert [task["node"] for task in report["tasks"]] == report["nodes"]
    assert [actor["node"] for actor in report["actors"]] == report["nodes"]
    for task in report["tasks"]:
        assert task["equal"], task
        assert task["pid"] != report["driver_pid"]
        assert not task["sees_script"], "the driver's file was moved away"
        assert not task["writeable"], "object-store arrays are read-only"
        assert task["misses"] >= 1, "compiled on the worker"
        assert task["first_call"] < 5.0, task
    assert all(actor["equal"] for actor in report["actors"])
    script, lines = report["script"], report["lines"]
    errors = report["errors"]
    assert f"{script}:{lines['at']}:" in errors["index"], errors["index"]
    assert "index 1000000 out of bounds" in errors["index"]
    assert f"{script}:{lines['broken']}:" in errors["compile"], errors["compile"]
    assert "argument 2 (`out`) of `energy` is a read-only array" in errors["read_only"]
    return report


# ---- on a local ray.init(num_cpus=2) ----------------------------------------------------


@pytest.fixture(scope="class")
def local():
    with ray_fixtures.local_ray(num_cpus=2) as address:
        yield address


@pytest.mark.usefixtures("local")
class TestLocal:
    def test_tasks_and_actors_give_a_single_process_results(self, data):
        x, expected = data
        ref = ray.put(x)
        chunks = np.array_split(x, 4)
        results = ray.get([run_all_task.remote(ref)] + [run_all_task.remote(chunk) for chunk in chunks])
        whole, writeable, owndata, pid, misses = results[0]
        assert_same(whole, expected)
        assert pid != os.getpid() and misses >= 1, "compiled on the worker"
        assert not writeable and not owndata, "the task read the object store's array in place"
        for chunk, (result, *_) in zip(chunks, results[1:]):
            assert_same(result, run_all(chunk))

        actor = KernelActor.remote()
        first, actor_pid, stats = ray.get(actor.run.remote(ref))
        assert_same(first, expected)
        again, _, stats_again = ray.get(actor.run.remote(ref))
        assert_same(again, expected)
        assert stats_again["misses"] == stats["misses"], "the actor reuses its compiled code"
        ray.kill(actor)

        # A kernel as a task's argument.
        assert ray.get(apply.remote(sum_sq, ref)) == expected["sum_sq"]

    def test_read_only_inputs(self, data):
        x, expected = data
        ref = ray.put(x)
        fetched = ray.get(ref)
        assert not fetched.flags.writeable
        assert sum_sq(fetched) == expected["sum_sq"], "read in place, in the driver too"
        # A kernel that writes its argument refuses a read-only one.
        message = r"argument 1 \(`x`\) of `double_in_place` is a read-only array .*write outputs to an array you allocate"
        with pytest.raises(ValueError, match=message):
            ray.get(apply.remote(double_in_place, ref))
        with pytest.raises(ValueError, match=r"argument 2 \(`out`\) of `smooth` is a read-only array"):
            ray.get(apply.remote(smooth, x, ref))
        # Even an array passed inline is read-only in the task: a kernel
        # that updates in place gets a copy the task makes.
        with pytest.raises(ValueError, match="double_in_place"):
            ray.get(apply.remote(double_in_place, x.copy()))
        assert np.array_equal(ray.get(update_copy.remote(double_in_place, ref)), 2.0 * x)

    def test_errors_surface_as_the_same_exception(self, data):
        x, _ = data
        ref = ray.put(x)
        with pytest.raises(IndexError) as info:
            ray.get(apply.remote(take, ref, 10**6))
        assert isinstance(info.value, ray.exceptions.RayTaskError)
        assert line_of("take") in str(info.value)
        assert "index 1000000 out of bounds for axis 0 with size 100000" in str(info.value)

        with pytest.raises(ZeroDivisionError) as info:
            ray.get(apply.remote(modulo, 7, 0))
        assert line_of("modulo") in str(info.value)

        with pytest.raises(kernjit.CompileError) as info:
            ray.get(apply.remote(typo, ref))
        assert isinstance(info.value, kernjit.TypingError)
        assert line_of("typo") in str(info.value)
        assert "string literals are not supported" in str(info.value)

        actor = KernelActor.remote()
        with pytest.raises(IndexError) as info:
            ray.get(actor.take.remote(ref, -(10**6)))
        assert line_of("take") in str(info.value)
        assert ray.get(actor.take.remote(ref, 3)) == x[3], "the actor lives on"
        ray.kill(actor)

        error = kernjit.CompileError("message")
        assert type(pickle.loads(pickle.dumps(error))) is kernjit.CompileError

    def test_threads_follow_the_tasks_cpus(self):
        size = 200_000
        one = probe.options(num_cpus=1)
        two = probe.options(num_cpus=2)
        # Fresh workers (max_calls=1) show how many pool threads a task
        # started: none on 1 CPU, one (plus the caller) on 2.
        fresh_one = ray.get(fresh_probe.options(num_cpus=1).remote(busy, size))
        fresh_two = ray.get(fresh_probe.options(num_cpus=2).remote(busy, size))
        assert (fresh_one["omp"], fresh_one["threads"], fresh_one["pool_threads"]) == ("1", 1, 0), fresh_one
        assert (fresh_two["omp"], fresh_two["threads"], fresh_two["pool_threads"]) == ("2", 2, 1), fresh_two
        assert fresh_one["pool_ticks"] == 0
        # Reused workers follow each task's CPUs; two 1-CPU tasks at once
        # run on one thread each (their pools stay idle).
        rounds = [two.remote(busy, size), *[one.remote(busy, size) for _ in range(2)], two.remote(busy, size)]
        reports = ray.get(rounds)
        assert [report["threads"] for report in reports] == [2, 1, 1, 2], reports
        for report in reports[1:3]:
            assert report["pool_ticks"] == 0, report
        # The 2-CPU runs had the pool's worker compute (when they ran long
        # enough to measure, the clock tick being 10 ms).
        for report in [fresh_two, reports[0], reports[3]]:
            if report["elapsed"] > 0.2:
                assert report["pool_ticks"] > 0, report
        # An actor's methods run on its CPUs too.
        actor = ProbeActor.options(num_cpus=2).remote()
        assert ray.get(actor.probe.remote(busy, size))["threads"] == 2
        ray.kill(actor)
        # The same bits on any number of threads, and in this process.
        out = np.empty(size)
        busy(np.linspace(0.0, 1.0, size), out)
        assert {report["checksum"] for report in [fresh_one, fresh_two, *reports]} == {float(out.sum())}

    def test_kern_kernels_follow_the_tasks_cpus(self, tmp_path):
        kern = tmp_path / "squares.kern"
        kern.write_text("def squares(x, out):\n    for i in prange(x.shape[0]):\n        out[i] = x[i] * x[i]\n")
        squares = kernjit.load(kern).squares
        kern.unlink()
        report = ray.get(fresh_probe.options(num_cpus=2).remote(squares, 2_000_000))
        assert (report["threads"], report["pool_threads"]) == (2, 1), report
        x = np.linspace(0.0, 1.0, 2_000_000)
        assert report["checksum"] == float((x * x).sum())


# ---- on a two-node cluster ---------------------------------------------------------------


@pytest.fixture(scope="class")
def two_nodes():
    with ray_fixtures.two_node_cluster(num_cpus=1) as cluster:
        yield cluster


class TestTwoNodes:
    def test_tasks_and_actors_pinned_to_each_node(self, two_nodes, data):
        x, expected = data
        ref = ray.put(x)

        @ray.remote(num_cpus=1)
        def where(x):
            return ray.get_runtime_context().get_node_id(), run_all(x), kernjit.get_num_threads()

        for node in two_nodes.node_ids:
            on_node = ray_fixtures.pin(node)
            ran_on, result, threads = ray.get(where.options(**on_node).remote(ref))
            assert ran_on == node
            assert_same(result, expected)
            assert threads == 1, "a 1-CPU task on a 1-CPU node"
            actor = KernelActor.options(**on_node).remote()
            result, _, _ = ray.get(actor.run.remote(ref))
            assert_same(result, expected)
            ray.kill(actor)

    def test_errors_on_the_second_node(self, two_nodes, data):
        x, _ = data
        on_second = ray_fixtures.pin(two_nodes.node_ids[1])
        with pytest.raises(IndexError, match=re.escape(line_of("take"))):
            ray.get(apply.options(**on_second).remote(take, ray.put(x), 10**6))
        with pytest.raises(kernjit.CompileError, match=re.escape(line_of("typo"))):
            ray.get(apply.options(**on_second).remote(typo, x))

    def test_kernels_from_a_driver_scripts_main(self, two_nodes, tmp_path):
        done = ray_fixtures.run_driver(tmp_path, DRIVER, two_nodes.address)
        report = check_driver_report(done, two_nodes.node_ids)
        assert all(task["threads"] == 1 for task in report["tasks"])
