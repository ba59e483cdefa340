#!/usr/bin/env python3
"""kernjit and Numba in Ray tasks, side by side, in one run.

Usage (from the repository root, in a venv with Ray, NumPy and the package
built in; Numba is optional: without it only the kernjit columns are printed):

    python benches/compare_ray.py [--quick] [--no-numba] [--json]
                                  [--address ADDRESS] [--sections LIST]
                                  [--workers N] [--tasks N] [--configs LIST]

Three measurements (not tests; the figures depend on the machine and its load):

  first     per-worker first call in FRESH Ray workers: a task declared
            `@ray.remote(num_cpus=1, max_calls=1)` (Ray ends the worker
            process after one task, so every sample runs in a new process
            that has never imported either JIT) receives the kernel as the
            bytes of `ray.cloudpickle.dumps(dispatcher)`, made in the driver.
            The same Python source goes to both engines: a small Kepler
            solver defined in this script (`__main__`), decorated here with
            `kernjit.njit` and with `numba.njit`; and `resize_into` and
            `sample_points` of kernels/bicubic.kern, through `kernjit.load`
            and, for Numba, the .kern source exec'd as Python with every
            function `numba.njit`-ed (benches/compare_numba.py's
            `load_numba`, serial: `parallel=True` would compile slower
            still). Both dispatchers pickle by value (kernjit always; Numba
            ships the `py_func` of a `__main__` or exec'd function by value
            through cloudpickle), so both engines go the same path. Timed
            inside the task, in this order:
              import     `import kernjit` / `import numba`;
              unpickle   `pickle.loads(blob)`: the dispatcher, not compiled;
              1st call   the first call: compile + one run;
              2nd call   the same call again (the run alone).
            The inputs are NumPy arrays in Ray's object store (read-only in
            the task, read in place); outputs are arrays the task allocates
            (not timed). `import numpy` is done before any of it (Ray's
            worker imports it already). Serial samples: one task at a time;
            concurrent samples: two tasks submitted together (2 CPUs, so two
            fresh workers compile at once; the table gives how much of their
            first calls overlapped). The engines alternate sample by sample,
            after one untimed sample each (it fills the bytecode cache: the
            workers read and write .pyc files under a private
            PYTHONPYCACHEPREFIX, as after `pip install`; not with
            --address, where the cluster's own setting applies). Medians
            over --workers samples (concurrent: --workers pairs). Target:
            kernjit's first call per fresh worker >= 30x faster than Numba's.
            The driver's round trip of each fresh-worker task (submit to
            result, worker start-up included when Ray has none idle) is
            shown for scale.
  overhead  per-task overhead on warm workers: a task calling a trivial
            kernel `add(a, b) = a + b` on two floats, against the same task
            calling the plain Python function. "global": the kernel is a
            global of the task function (pickled with it once, as a user
            writes it); "argument": the kernel is passed to every task
            (pickled on every call; the worker finds the compiled copy by
            its id). Round trip: `ray.get(f.remote(1.0, 2.0))` one at a
            time, median of --tasks calls; batched: --tasks tasks submitted
            at once, then one `ray.get` of the list, wall time / tasks,
            median of 5 batches (2 CPUs: two workers share them). After
            warm-up batches (every worker compiled the kernel), the cases
            take turns over 5 rounds (load drifts evenly).
  examples  throughput of the three Ray examples (examples/ray_night.py,
            ray_contrast.py, ray_orbits.py): each example's own `main()`,
            imported from it (its functions pickled by value, as when it
            runs as a script), at its default sizes, on local
            `ray.cluster_utils.Cluster`s started by this script: one node
            with 1 CPU, one node with 2 CPUs, and two nodes (two raylets,
            two object stores) with 1 CPU each; 2 GiB of object store per
            node (Cluster's default, 150 MiB, spills the night's frames to
            disk and makes it 20x slower). The machine has the cores it
            has: 1 node x 1 CPU against 1 node x 2 CPUs is the scaling over
            cores, 1 node x 2 CPUs against 2 nodes x 1 CPU the cost of
            spreading the same CPUs over two nodes (on a 2-core machine a
            second node adds no cores). Per example and cluster a new
            driver connection (a new Ray job: fresh workers), then a first
            run (the workers start and compile the kernels) and --runs warm
            runs on the same workers: for that, the example's
            `_ray_common.ray_session` is swapped for the open connection
            for the run, and its `print_timing` and `print_workers` hand
            over their figures. Items/s (frames, positions, grid points) of
            the example's Ray part as it times it (submission to the last
            result, ray.put of the inputs included), the example's local
            reference (one process, kernjit's threads on every core) for
            scale, where the tasks ran, and the example's exit status (0:
            Ray's results are the local ones bit for bit).

--address ADDRESS runs `first` and `overhead` on an existing cluster
(`ray.init(address=ADDRESS)`; Ray 2.60 needs RAY_AUTH_MODE set as the
cluster has it); `examples` always starts its own local clusters.
--quick: fewer samples, tasks and configurations: a smoke run, not figures
to quote. --json prints one JSON object instead of the Markdown tables.
"""

import argparse
import importlib
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import compare_numba  # noqa: E402  (load_numba, warm_up_numba, short)
import compare_python  # noqa: E402  (machine, load_average, ms, separator)
import numpy as np  # noqa: E402

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
BICUBIC = os.path.join(ROOT, "kernels", "bicubic.kern")
TITLE = {"kernjit": "kernjit", "numba": "Numba"}

machine = compare_python.machine
load_average = compare_python.load_average
ms = compare_python.ms
separator = compare_python.separator


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# kernels (plain functions of this __main__, decorated by each engine)


def kepler_solve(M, e, out):
    # Kepler's equation E - e sin E = M by Newton from Danby's guess, for
    # every mean anomaly M[i] at eccentricity e.
    for i in range(M.shape[0]):
        Mi = M[i]
        E = Mi + 0.85 * e * math.copysign(1.0, math.sin(Mi))
        for n in range(50):
            dE = (E - e * math.sin(E) - Mi) / (1.0 - e * math.cos(E))
            E -= dE
            if abs(dE) <= 1e-12:
                break
        out[i] = E


def add(a, b):
    return a + b


def kernel_cases(quick):
    """(key, label, make dispatcher(engine), inputs, outputs): inputs go
    through the object store, outputs are (position, shape) of float64
    arrays the task allocates."""
    rng = np.random.default_rng(17)
    n = 10_000
    m = rng.uniform(-math.pi, math.pi, n)
    side = 256
    src = rng.random((side, side))
    ys = rng.uniform(0, side - 1, n)
    xs = rng.uniform(0, side - 1, n)

    def kepler(engine):
        return engine.njit(kepler_solve)

    def bicubic(name):
        return lambda engine: engine.kern(BICUBIC, name)

    return [
        ("kepler", "Kepler solver `kepler_solve(M, 0.5, out)`, %s points" % format(n, ","),
         kepler, [m, 0.5], [(2, (n,))]),
        ("resize_into", "bicubic `resize_into(src, out)`, %d² → %d²" % (side, 2 * side),
         bicubic("resize_into"), [src], [(1, (2 * side, 2 * side))]),
        ("sample_points", "bicubic `sample_points(src, ys, xs, out)`, %s points" % format(n, ","),
         bicubic("sample_points"), [src, ys, xs], [(3, (n,))]),
    ]


class Engine:
    def __init__(self, name):
        self.name = name
        self.module = importlib.import_module(name)
        self.version = getattr(self.module, "__version__", "?")

    def njit(self, fn):
        return self.module.njit(fn)

    def kern(self, path, name):
        if self.name == "kernjit":
            return getattr(self.module.load(path), name)
        return compare_numba.load_numba(path, False)[name]


# ----------------------------------------------------------------------------
# Ray


def ray_init(address=None):
    import ray

    if address:
        ray.init(address=address, logging_level="warning", log_to_driver=False)
    else:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    return ray


def bytecode_env(tmp):
    """Fresh workers read and write bytecode under a private prefix (as
    after `pip install`), also where PYTHONDONTWRITEBYTECODE is set; set in
    the driver before Ray starts, so the raylet and its workers inherit it."""
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# ----------------------------------------------------------------------------
# 1. per-worker first call


class Barrier:
    """Two fresh workers meet here before their timed part, so that they
    import and compile at the same time (worker start-ups differ by up to a
    second). One actor (num_cpus=0) for the whole section; `generation`
    tells the pairs apart."""

    def __init__(self):
        self.arrived = {}

    def arrive(self, generation):
        self.arrived[generation] = self.arrived.get(generation, 0) + 1

    def count(self, generation):
        return self.arrived.get(generation, 0)


def fresh_call(engine_name, blob, outputs, barrier, *inputs):
    """Runs in a fresh worker: import, unpickle, first and second call.
    Imports nothing from the driver's globals (the function ships by value).
    `barrier`: None, or (actor, generation, parties) to wait for first."""
    import sys
    import time

    if barrier is not None:
        import ray

        actor, generation, parties = barrier
        ray.get(actor.arrive.remote(generation))
        deadline = time.monotonic() + 60
        while ray.get(actor.count.remote(generation)) < parties and time.monotonic() < deadline:
            time.sleep(0.001)
    started = time.time()
    t0 = time.perf_counter()
    preloaded = engine_name in sys.modules
    import importlib
    import pickle

    import numpy

    engine = importlib.import_module(engine_name)
    t1 = time.perf_counter()
    kernel = pickle.loads(blob)
    t2 = time.perf_counter()
    args = list(inputs)
    outs = []
    for position, shape in outputs:
        out = numpy.zeros(shape)
        args.insert(position, out)
        outs.append(out)
    t3 = time.perf_counter()
    first_from = time.time()
    c3 = time.process_time()
    kernel(*args)
    c4 = time.process_time()
    t4 = time.perf_counter()
    first_to = time.time()
    kernel(*args)
    t5 = time.perf_counter()
    return {
        "import": t1 - t0, "unpickle": t2 - t1, "first": t4 - t3, "second": t5 - t4,
        "first_cpu": c4 - c3,
        "checksum": float(sum(float(o.sum()) for o in outs)),
        "threads": engine.get_num_threads(),
        "preloaded": preloaded, "pid": __import__("os").getpid(),
        "readonly": not any(getattr(a, "flags", None) is not None and a.flags.writeable for a in inputs),
        "span": (started, first_from, first_to),
    }


def overlap(a, b):
    """The fraction of the shorter first call that the other one overlapped."""
    lo, hi = max(a[1], b[1]), min(a[2], b[2])
    shorter = min(a[2] - a[1], b[2] - b[1])
    return max(0.0, hi - lo) / shorter if shorter > 0 else 0.0


def first_call(ray, engines, workers, settle, quick):
    remote = ray.remote(num_cpus=1, max_calls=1)(fresh_call)
    barrier = ray.remote(num_cpus=0)(Barrier).remote()
    generation = 0
    results = []
    for key, label, make, inputs, outputs in kernel_cases(quick):
        refs = [ray.put(x) if isinstance(x, np.ndarray) else x for x in inputs]
        row = {"kernel": key, "label": label}
        blobs = {}
        for engine in engines:
            try:
                blobs[engine.name] = ray.cloudpickle.dumps(make(engine))
            except Exception as error:
                row[engine.name] = {"error": "%s: %s" % (type(error).__name__, str(error).splitlines()[0])}
        runs = {name: {"serial": [], "concurrent": [], "overlap": [], "wall": []} for name in blobs}
        for mode, rounds in (("serial", workers), ("concurrent", workers)):
            for round_ in range(rounds + 1):
                for name, blob in blobs.items():
                    if "error" in row.get(name, {}):
                        continue
                    count = 1 if mode == "serial" else 2
                    generation += 1
                    meet = (barrier, generation, count) if count > 1 else None
                    started = time.perf_counter()
                    try:
                        got = ray.get([remote.remote(name, blob, outputs, meet, *refs) for _ in range(count)])
                    except Exception as error:  # report and go on
                        row[name] = {"error": "%s: %s" % (type(error).__name__, str(error).strip().splitlines()[-1])}
                        continue
                    wall = time.perf_counter() - started
                    log("  %s %s %s #%d: %s" % (key, name, mode, round_, ", ".join(
                        "first %.1f ms" % (g["first"] * 1e3) for g in got)))
                    if round_ > 0:  # round 0: untimed (bytecode cache, page cache)
                        runs[name][mode].extend(got)
                        if mode == "serial":
                            runs[name]["wall"].append(wall)
                        else:
                            runs[name]["overlap"].append(overlap(got[0]["span"], got[1]["span"]))
                    time.sleep(settle)  # the finished worker exits; let it
        for name, run in runs.items():
            if "error" in row.get(name, {}):
                continue
            out = {}
            for mode in ("serial", "concurrent"):
                samples = run[mode]
                if not samples:
                    continue
                med = {k: statistics.median(s[k] for s in samples) * 1e3
                       for k in ("import", "unpickle", "first", "second")}
                med["import_first"] = statistics.median((s["import"] + s["unpickle"] + s["first"])
                                                        for s in samples) * 1e3
                med["compile"] = statistics.median((s["first"] - s["second"]) for s in samples) * 1e3
                med["first_cpu_per_wall"] = statistics.median(s["first_cpu"] / s["first"] for s in samples)
                med["samples"] = len(samples)
                med["preloaded"] = sum(s["preloaded"] for s in samples)
                med["threads"] = sorted({s["threads"] for s in samples})
                med["checksum"] = samples[0]["checksum"]
                out[mode] = med
            every = run["serial"] + run["concurrent"]
            out["samples"] = len(every)
            out["fresh_pids"] = len({s["pid"] for s in every})
            out["readonly"] = all(s["readonly"] for s in every)
            if run["overlap"]:
                out["concurrent"]["overlap"] = statistics.median(run["overlap"])
            if run["wall"]:
                out["round_trip_ms"] = statistics.median(run["wall"]) * 1e3
            row[name] = out
        if "kernjit" in row and "numba" in row and "serial" in row["kernjit"] and "serial" in row["numba"]:
            a, b = row["kernjit"]["serial"]["checksum"], row["numba"]["serial"]["checksum"]
            row["agree"] = bool(abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)))
        results.append(row)
    return results


# ----------------------------------------------------------------------------
# 2. per-task overhead


def overhead(ray, engines, tasks, batches):
    """The cases take turns, round by round (load drifts evenly): per round
    and case, tasks / batches round trips one at a time, then one batch of
    `tasks` tasks."""
    cases = [("python", "plain Python", add, False)]
    for engine in engines:
        kernel = engine.njit(add)
        cases.append(("%s_global" % engine.name, "%s, kernel captured by the task function" % TITLE[engine.name],
                      kernel, False))
        cases.append(("%s_argument" % engine.name, "%s, kernel an argument of every task" % TITLE[engine.name],
                      kernel, True))
    live, rows = [], {}
    for key, label, fn, as_argument in cases:
        if as_argument:
            @ray.remote(num_cpus=1)
            def task(k, a, b):
                return k(a, b)

            def submit(task=task, fn=fn):
                return task.remote(fn, 1.0, 2.0)
        else:
            task = ray.remote(num_cpus=1)(make_task(fn))

            def submit(task=task):
                return task.remote(1.0, 2.0)

        rows[key] = {"key": key, "task": label}
        try:
            warm = max(tasks // 4, 20)
            for _ in range(3):  # every worker (both CPUs) runs it and compiles the kernel
                assert ray.get([submit() for _ in range(warm)]) == [3.0] * warm
            live.append((key, submit, [], []))
        except Exception as error:
            rows[key]["error"] = "%s: %s" % (type(error).__name__, str(error).strip().splitlines()[-1])
    per_round = max(tasks // batches, 1)
    for _ in range(batches):
        for key, submit, trips, walls in live:
            for _ in range(per_round):
                started = time.perf_counter()
                ray.get(submit())
                trips.append(time.perf_counter() - started)
            started = time.perf_counter()
            ray.get([submit() for _ in range(tasks)])
            walls.append((time.perf_counter() - started) / tasks)
    for key, submit, trips, walls in live:
        rows[key].update({"round_trip_us": statistics.median(trips) * 1e6,
                          "round_trip_p90_us": sorted(trips)[int(0.9 * len(trips))] * 1e6,
                          "round_trips": len(trips), "batched_us": statistics.median(walls) * 1e6})
        log("  %s: %s" % (key, rows[key]))
    return {"tasks": tasks, "batches": batches, "rows": [rows[key] for key, _, _, _ in cases]}


def make_task(fn):
    def task(a, b):
        return fn(a, b)

    return task


# ----------------------------------------------------------------------------
# 3. the examples on 1 and 2 nodes

EXAMPLES = [("night", "ray_night"), ("contrast", "ray_contrast"), ("orbits", "ray_orbits")]
CONFIGS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}


EXAMPLES_DIR = os.path.join(ROOT, "examples")


def import_example(name):
    """examples/NAME.py as a module; it and the helpers it imports from
    examples/ pickle BY VALUE (as when the example runs as `__main__`): the
    workers never import them."""
    import ray

    if EXAMPLES_DIR not in sys.path:
        sys.path.insert(0, EXAMPLES_DIR)
    module = importlib.import_module(name)
    for other in list(sys.modules.values()):  # the example and its helpers in examples/
        path = getattr(other, "__file__", None) or ""
        if os.path.dirname(os.path.abspath(path)) == EXAMPLES_DIR:
            ray.cloudpickle.register_pickle_by_value(other)
    return module


def run_example(ray, module, argv):
    """One run of the example's own `main(argv)` on the cluster this driver
    is connected to. Three of the examples' shared helpers
    (examples/_ray_common.py) are wrapped for the run: `ray_session` yields
    the connected `ray` (no init, no shutdown, so the job's workers stay
    warm from one run to the next), `print_timing` and `print_workers`
    hand over their figures. The example's own output is kept apart."""
    import contextlib
    import io

    common = sys.modules["_ray_common"]
    saved = {k: getattr(common, k) for k in ("ray_session", "print_timing", "print_workers")}
    got = {}

    @contextlib.contextmanager
    def session(args):
        yield ray

    def print_timing(what, count, unit, local_s, ray_s, *rest, **kw):
        got["timing"] = {"items": count, "unit": unit, "local_s": local_s, "ray_s": ray_s}
        return saved["print_timing"](what, count, unit, local_s, ray_s, *rest, **kw)

    def print_workers(reports):
        got["workers"] = [dict(r) for r in reports]
        return saved["print_workers"](reports)

    output = io.StringIO()
    try:
        common.ray_session, common.print_timing, common.print_workers = session, print_timing, print_workers
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = module.main(list(argv))
    finally:
        for k, v in saved.items():
            setattr(common, k, v)
    if "timing" not in got:
        tail = output.getvalue().strip().splitlines()[-5:]
        raise RuntimeError("no throughput from %s.main (exit %s): %s" % (module.__name__, code, " / ".join(tail)))
    got["exit"] = code
    return got


OBJECT_STORE = 2 << 30  # bytes per node: Cluster's default (150 MiB) spills the night's frames to disk


def start_cluster(nodes, cpus):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "include_dashboard": False, "object_store_memory": OBJECT_STORE})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=cpus, object_store_memory=OBJECT_STORE)
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


def examples(configs, runs, quick):
    """Every example on every cluster shape: per example a new driver
    connection (a new Ray job, so fresh workers), one first run and `runs`
    warm runs."""
    import ray

    present = [(key, name) for key, name in EXAMPLES if os.path.exists(os.path.join(EXAMPLES_DIR, name + ".py"))]
    result = {"configs": configs, "runs": runs, "missing": [n for _, n in EXAMPLES if (_, n) not in present],
              "rows": {}}
    modules = {}
    for key, name in present:
        try:
            modules[key] = import_example(name)
        except Exception as error:
            result["rows"][key] = {"error": "import: %s: %s" % (type(error).__name__, error)}
    argv = ["--no-progress"] + (["--quick"] if quick else [])
    for config in configs:
        nodes, cpus = CONFIGS[config]
        log("cluster %s: %d node(s) x %d CPU(s) ..." % (config, nodes, cpus))
        started = time.perf_counter()
        cluster = start_cluster(nodes, cpus)
        try:
            log("  up in %.1f s" % (time.perf_counter() - started))
            for key, module in modules.items():
                row = result["rows"].setdefault(key, {"example": module.__name__})
                cell = {}
                try:
                    ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
                    try:
                        got = [run_example(ray, module, argv) for _ in range(runs + 1)]
                    finally:
                        ray.shutdown()
                except Exception as error:  # report and go on
                    row[config] = {"error": "%s: %s" % (type(error).__name__, str(error).strip().splitlines()[-1])}
                    log("  %s: %s" % (key, row[config]["error"]))
                    continue
                first, warm = got[0], got[1:]
                timing = first["timing"]
                row["items"], row["unit"] = timing["items"], timing["unit"]
                cell["first_per_s"] = timing["items"] / timing["ray_s"]
                cell["warm_per_s"] = statistics.median(g["timing"]["items"] / g["timing"]["ray_s"] for g in warm)
                cell["local_per_s"] = statistics.median(g["timing"]["items"] / g["timing"]["local_s"] for g in got)
                reports = first.get("workers", [])
                firsts = [r["first_call_s"] for r in reports if r.get("first_call_s") is not None]
                cell["first_call_ms"] = statistics.median(firsts) * 1e3 if firsts else None
                every = [r for g in got for r in g.get("workers", [])]
                cell["nodes_used"] = len({r["node"] for r in every})
                cell["workers"] = len({(r["node"], r["pid"]) for r in every})
                cell["same_bits"] = all(g["exit"] == 0 for g in got)
                row[config] = cell
                log("  %s: first %.1f, warm %.1f %s/s (local %.1f); %d worker(s) on %d node(s)%s" % (
                    key, cell["first_per_s"], cell["warm_per_s"], row["unit"], cell["local_per_s"],
                    cell["workers"], cell["nodes_used"], "" if cell["same_bits"] else "; RESULTS DIFFER"))
        finally:
            cluster.shutdown()
    return result


# ----------------------------------------------------------------------------
# report


def markdown(report, names):
    out = ["# kernjit%s in Ray tasks" % (" and Numba" if "numba" in names else ""), ""]
    out.append("`$ %s`" % report["command"])
    out.append("")
    sections = ", ".join("%s %s" % (label, report[key]) for key, label in (
        ("load_first", "first calls"), ("load_overhead", "overhead"), ("load_examples", "examples"))
        if key in report)
    out.append("Machine: %s; Ray %s; %s. Load average %s at the start (%s), %s at the end.%s" % (
        report["machine"], report["ray"], ", ".join("%s %s" % (TITLE[n], report["versions"][n]) for n in names),
        report["load_start"], sections, report["load_end"],
        " Cluster: `%s`." % report["address"] if report.get("address") else
        " First two sections: a local `ray.init(num_cpus=2)`."))
    if report["quick"]:
        out += ["", "**--quick**: a smoke run (few samples and tasks), not figures to quote."]

    rows = report.get("first")
    if rows:
        out += ["", "## Per-worker first call in fresh Ray workers (`max_calls=1`)", ""]
        out.append("Kernels: %s. Median of %d fresh workers one at a time (\"1\"), and of %d pairs of "
                   "fresh workers started together (\"2\": %d workers, importing and compiling at once)."
                   % ("; ".join("`%s`: %s" % (r["kernel"], r["label"]) for r in rows),
                      report["workers"], report["workers"], 2 * report["workers"]))
        out.append("")
        head = ["kernel", "at once", "engine", "import", "unpickle", "1st call (compile + run)",
                "2nd call", "1st − 2nd", "**import + unpickle + 1st call**"]
        out.append("| %s |" % " | ".join(head))
        out.append(separator("---", "---:", "---", *["---:"] * (len(head) - 3)))
        for row in rows:
            for mode, at_once in (("serial", "1"), ("concurrent", "2")):
                for n in names:
                    got = row.get(n, {})
                    if "error" in got:
                        if mode == "serial":
                            out.append("| %s | | %s | %s |" % (row["kernel"], TITLE[n], got["error"]))
                        continue
                    if mode not in got:
                        continue
                    g = got[mode]
                    out.append("| %s | %s | %s | %s | %s | %s | %s | %s | **%s** |" % (
                        row["kernel"], at_once, TITLE[n], ms(g["import"]), ms(g["unpickle"]), ms(g["first"]),
                        ms(g["second"]), ms(g["compile"]), ms(g["import_first"])))
        if "numba" in names:
            out += ["", "Numba / kernjit, times (target: kernjit's first call per fresh worker ≥ 30× faster):", ""]
            out.append("| kernel | at once | 1st call | 1st − 2nd | import + unpickle + 1st call |")
            out.append(separator("---", "---:", "---:", "---:", "---:"))
            for row in rows:
                for mode, at_once in (("serial", "1"), ("concurrent", "2")):
                    k, nb = row.get("kernjit", {}).get(mode), row.get("numba", {}).get(mode)
                    if k and nb:
                        out.append("| %s | %s | %.0f× | %s | **%.0f×** |" % (
                            row["kernel"], at_once, nb["first"] / k["first"],
                            "%.0f×" % (nb["compile"] / k["compile"]) if k["compile"] > 0 else "",
                            nb["import_first"] / k["import_first"]))
        out += ["", "Checks and scale:", ""]
        out.append("| kernel | engine | fresh processes | `get_num_threads()` in the task | CPU / wall of the "
                   "1st call (1; 2 at once) | first calls overlapping (2 at once) | driver round trip of a "
                   "fresh-worker task (1) | same result |")
        out.append(separator("---", "---", "---:", "---:", "---:", "---:", "---:", "---"))
        for row in rows:
            for n in names:
                got = row.get(n, {})
                if "serial" not in got:
                    continue
                s, c = got["serial"], got.get("concurrent", {})
                pids = "%d of %d" % (got["fresh_pids"], got["samples"])
                if s["preloaded"] + c.get("preloaded", 0):
                    pids += " (%d had the JIT imported)" % (s["preloaded"] + c.get("preloaded", 0))
                agree = {True: "yes", False: "NO"}.get(row.get("agree"), "")
                cpu = "%.2f; %s" % (s["first_cpu_per_wall"],
                                    "%.2f" % c["first_cpu_per_wall"] if "first_cpu_per_wall" in c else "")
                out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    row["kernel"], TITLE[n], pids, ",".join(map(str, s["threads"])), cpu,
                    "%.0f%%" % (100 * c["overlap"]) if "overlap" in c else "", ms(got["round_trip_ms"]), agree))

    over = report.get("overhead")
    if over:
        out += ["", "## Per-task overhead on warm workers (µs per task; `add(1.0, 2.0)`)", ""]
        out.append("The cases take turns, %d rounds." % over["batches"])
        out.append("")
        trips = next((r["round_trips"] for r in over["rows"] if "round_trips" in r), 0)
        out.append("| task | round trip, one at a time (median of %d) | p90 | batched, %d at once (median of %d) |"
                   % (trips, over["tasks"], over["batches"]))
        out.append(separator("---", "---:", "---:", "---:"))
        for row in over["rows"]:
            if "error" in row:
                out.append("| %s | %s | | |" % (row["task"], row["error"]))
            else:
                out.append("| %s | %.0f | %.0f | %.0f |" % (
                    row["task"], row["round_trip_us"], row["round_trip_p90_us"], row["batched_us"]))

    ex = report.get("examples")
    if ex:
        out += ["", "## The examples on 1 and 2 nodes (items/s)", ""]
        out.extend(examples_markdown(ex))
    return "\n".join(out)


def examples_markdown(ex):
    configs = ex["configs"]
    label = {"1x1": "1 node × 1 CPU", "1x2": "1 node × 2 CPUs", "2x1": "2 nodes × 1 CPU"}
    out = ["Each example's own `main()` (%s sizes) on local `ray.cluster_utils.Cluster`s (2 GiB of "
           "object store per node); a new "
           "driver connection per example and cluster (a new job: fresh workers). \"warm\": median of %d "
           "further runs on the same workers; \"first run\": the run that started the workers and compiled "
           "the kernels there; \"local\": the example's reference, one process (kernjit's threads on every "
           "core), median over the runs." % ("its --quick" if ex.get("quick") else "its default", ex["runs"]), ""]
    head = ["example", "items", "local, 1 process"] + ["%s, warm" % label[c] for c in configs]
    out.append("| %s |" % " | ".join(head))
    out.append(separator("---", "---:", *["---:"] * (len(head) - 2)))
    rows = ex["rows"]
    for key, row in rows.items():
        if "error" in row:
            out.append("| %s | %s |" % (key, row["error"]))
            continue
        cells = [row.get("example", key), "%s %s" % (format(row["items"], ",") if "items" in row else "", row.get("unit", ""))]
        local = [row[c]["local_per_s"] for c in configs if "local_per_s" in row.get(c, {})]
        cells.append("%s /s" % rate(statistics.median(local)) if local else "")
        for c in configs:
            cell = row.get(c, {})
            cells.append(cell["error"] if "error" in cell else "**%s /s**" % rate(cell["warm_per_s"]) if cell else "")
        out.append("| %s |" % " | ".join(cells))
    out += ["", "First run (fresh workers: start-up and compile included), and what ran where:", ""]
    head = ["example"] + ["%s, first run" % label[c] for c in configs] + ["workers (nodes)", "first call per worker (median)",
                                                                           "exit 0 (Ray == local, bit for bit)"]
    out.append("| %s |" % " | ".join(head))
    out.append(separator("---", *["---:"] * (len(head) - 2), "---"))
    for key, row in rows.items():
        if "error" in row:
            continue
        cells = [row.get("example", key)]
        cells += ["%s /s" % rate(row[c]["first_per_s"]) if "first_per_s" in row.get(c, {}) else "" for c in configs]
        cells.append(", ".join("%d (%d)" % (row[c]["workers"], row[c]["nodes_used"])
                               for c in configs if "workers" in row.get(c, {})))
        cells.append(", ".join(ms(row[c]["first_call_ms"]) if row[c].get("first_call_ms") else "-"
                               for c in configs if "workers" in row.get(c, {})))
        same = [row[c]["same_bits"] for c in configs if "same_bits" in row.get(c, {})]
        cells.append("yes" if same and all(same) else "NO" if same else "")
        out.append("| %s |" % " | ".join(cells))
    if ex["missing"]:
        out += ["", "Not run (not in examples/ yet): %s." % ", ".join(ex["missing"])]
    return out


def rate(value):
    if value >= 100:
        return format(round(value), ",")
    return "%.1f" % value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few samples, tasks, configurations")
    parser.add_argument("--sections", default="first,overhead,examples",
                        type=lambda t: set(t.split(",")), help="which measurements (default: all three)")
    parser.add_argument("--address", help="an existing Ray cluster for `first` and `overhead`")
    parser.add_argument("--workers", type=int, help="fresh-worker samples per kernel and engine (default 7, quick 2)")
    parser.add_argument("--tasks", type=int, help="tasks per overhead measurement (default 1000, quick 100)")
    parser.add_argument("--configs", type=lambda t: t.split(","),
                        help="cluster shapes for `examples`, of 1x1,1x2,2x1 (nodes x CPUs; default all, quick 1x2,2x1)")
    parser.add_argument("--runs", type=int, help="warm runs of each example per cluster (default 3, quick 1)")
    parser.add_argument("--settle", type=float, help="seconds between fresh-worker samples (default 1, quick 0.3)")
    parser.add_argument("--no-numba", action="store_true", help="kernjit columns only")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the tables")
    args = parser.parse_args()
    unknown = args.sections - {"first", "overhead", "examples"}
    if unknown:
        parser.error("unknown sections: %s" % ", ".join(sorted(unknown)))
    configs = args.configs or (["1x2", "2x1"] if args.quick else ["1x1", "1x2", "2x1"])
    if set(configs) - set(CONFIGS):
        parser.error("unknown configs: %s" % ", ".join(sorted(set(configs) - set(CONFIGS))))
    workers = args.workers or (2 if args.quick else 7)
    tasks = args.tasks or (100 if args.quick else 1000)
    runs = args.runs or (1 if args.quick else 3)
    settle = args.settle if args.settle is not None else (0.3 if args.quick else 1.0)

    import ray

    report = {
        "command": compare_python.command_line(__file__),
        "machine": machine(),
        "ray": ray.__version__,
        "load_start": load_average(),
        "quick": args.quick,
        "workers": workers,
        "address": args.address,
    }
    names = ["kernjit"] + (["numba"] if HAVE_NUMBA and not args.no_numba else [])
    engines = [Engine(n) for n in names]
    report["versions"] = {e.name: e.version for e in engines}
    with tempfile.TemporaryDirectory(prefix="kernjit-ray-bench-") as tmp:
        if not args.address:
            bytecode_env(tmp)
        if args.sections & {"first", "overhead"}:
            log("starting Ray%s ..." % (" at " + args.address if args.address else " (num_cpus=2)"))
            ray_init(args.address)
            try:
                if "first" in args.sections:
                    log("per-worker first call in fresh workers ...")
                    report["load_first"] = load_average()
                    report["first"] = first_call(ray, engines, workers, settle, args.quick)
                if "overhead" in args.sections:
                    log("per-task overhead ...")
                    report["load_overhead"] = load_average()
                    report["overhead"] = overhead(ray, engines, tasks, 3 if args.quick else 5)
            finally:
                ray.shutdown()
        if "examples" in args.sections:
            log("the examples on %s ..." % ", ".join(configs))
            report["load_examples"] = load_average()
            report["examples"] = examples(configs, runs, args.quick)
            report["examples"]["quick"] = args.quick
    report["load_end"] = load_average()
    if args.json:
        print(json.dumps(report))
    else:
        print(markdown(report, names))


if __name__ == "__main__":
    main()
