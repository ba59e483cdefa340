#!/usr/bin/env python3
"""kernjit and Numba from Python, side by side, in one run.

Usage (from the repository root, in a venv with the package built in;
Numba is optional: without it only the kernjit columns are printed):

    python benches/compare_python.py [--quick] [--threads N[,M]] [--json]
                                     [--filter TEXT] [--sections LIST]

Three measurements (not tests; the figures depend on the machine and its load):

  first     first call in a FRESH process: a small Kepler solver is written
            into a temporary .py file that imports NumPy (timed apart: a
            scientist's script has it already), imports kernjit (resp.
            numba), decorates the solver with `njit` and calls it once.
            Median over --processes processes (the engines alternate,
            after one untimed process each) of: the import, decorate +
            compile + first call, their sum, and the wall time of the whole
            process (interpreter start to exit; `python -c pass` is shown
            for scale). Bytecode is cached, as after `pip install`. Target: kernjit import + compile + call <= 30 ms.
  overhead  per-call overhead from Python with `timeit` (best of --repeat
            runs of --calls calls, ns per call, timeit's loop included):
            f(1.0, 2.0) returning a + b (target <= 120 ns), f(a, b) on two
            1-D float64 arrays returning a[0] + b[0] (target <= 200 ns), and
            f(8) returning a new np.zeros(n). The undecorated Python function
            is shown for scale. Then the growth of the resident set over
            --calls more calls of each (KiB, after the timing runs as
            warm-up), and no-copy checks: a kernel writing into a
            C-contiguous array, strided and negative-stride views, a
            Fortran-ordered array and a transposed view must write the
            caller's memory (the data pointer is unchanged), and a read-only
            array is accepted by a kernel that only reads it.
  kernels   steady state of kernels/: every `# bench:` line of
            kernels/*.kern, arguments built by tests/cpython/run_kern.py
            (the `kernjit run` syntax and splitmix64 stream, so the arrays
            are bit-identical to `kernjit bench`'s; building the largest
            takes about a minute of pure Python), run through
            `kernjit.load(path)` and through Numba (every function of the
            same source exec'd as Python and njit-ed, as
            benches/compare_numba.py does; parallel=True when threads > 1).
            Both engines run on the same arrays. First call (compile + one
            run) and the median of repeated calls over --time seconds; the
            ratio kernjit / Numba (below 1: kernjit is faster). Both use
            their defaults otherwise (kernjit checks bounds, Numba does not).

--quick: fewer processes, calls, repeats and seconds, and bench arrays capped
at 64 per axis: a smoke run, not figures to quote. --json prints one JSON
object instead of the Markdown tables.
"""

import argparse
import gc
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import compare_numba  # noqa: E402  (kern_files, bench_lines, load_numba, warm_up_numba, short)
import numpy as np  # noqa: E402

run_kern = compare_numba.run_kern  # tests/cpython/run_kern.py, argument syntax and generators

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
QUICK_EXTENT = 64


# ----------------------------------------------------------------------------
# kernels for the in-process measurements (plain functions, decorated at run
# time by each engine)


def add(a, b):
    return a + b


def first_sum(a, b):
    return a[0] + b[0]


def new_zeros(n):
    return np.zeros(n)


def bump(a):
    a[0] = a[0] + 1.0


def bump2(a):
    a[1, 2] = a[1, 2] + 1.0


# ----------------------------------------------------------------------------
# the engines


class Engine:
    def __init__(self, name):
        self.name = name
        if name == "kernjit":
            import kernjit

            self.module = kernjit
            self.version = getattr(kernjit, "__version__", "?")
        else:
            import numba

            self.module = numba
            self.version = numba.__version__
        self._files = {}

    def njit(self, fn):
        return self.module.njit(fn)

    def set_threads(self, threads):
        if self.name == "kernjit":
            self.module.set_num_threads(threads)
        elif threads > 1:
            self.module.set_num_threads(threads)

    def kernel(self, path, name, threads):
        """`name` of the .kern file `path`, loaded once per (file, mode)."""
        parallel = self.name == "numba" and threads > 1
        key = (path, parallel)
        if key not in self._files:
            if self.name == "kernjit":
                self._files[key] = self.module.load(path)
            else:
                self._files[key] = compare_numba.load_numba(path, parallel)
        loaded = self._files[key]
        return getattr(loaded, name) if self.name == "kernjit" else loaded[name]


# ----------------------------------------------------------------------------
# 1. first call in a fresh process

CHILD = '''\
import time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import {module} as engine
t2 = time.perf_counter()
import math


@engine.njit
def kepler(M, e):
    # Newton on E - e sin E = M from Danby's guess
    E = M + 0.85 * e * math.copysign(1.0, math.sin(M))
    for n in range(50):
        dE = (E - e * math.sin(E) - M) / (1.0 - e * math.cos(E))
        E -= dE
        if abs(dE) <= 1e-12:
            break
    return E


E = kepler(1.0, 0.5)
t3 = time.perf_counter()
import json, sys
json.dump({{"numpy": t1 - t0, "import": t2 - t1, "compile_call": t3 - t2, "result": E}}, sys.stdout)
'''


def run_process(command, cwd, env=None):
    started = time.perf_counter()
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()
        raise RuntimeError("exit %d: %s" % (out.returncode, tail[-1] if tail else ""))
    return wall, out.stdout


def first_call(engines, processes):
    """Fresh processes per engine; the engines alternate round by round
    (load drifts evenly), after one untimed process each (warm page cache).
    Bytecode is cached as after `pip install`, which compiles it: the
    children write and read it under a private PYTHONPYCACHEPREFIX, even
    where PYTHONDONTWRITEBYTECODE is set (an editable build has none)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="kernjit-first-call-") as tmp:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(tmp, "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        scripts, runs = {}, {}
        for engine in engines:
            scripts[engine] = os.path.join(tmp, "first_call_%s.py" % engine)
            with open(scripts[engine], "w", encoding="utf-8") as f:
                f.write(CHILD.format(module=engine))
            runs[engine] = []
        walls = []
        for round_ in range(processes + 1):
            walls.append(run_process([sys.executable, "-c", "pass"], tmp, env)[0])
            for engine in engines:
                if engine in results:  # failed before
                    continue
                try:
                    wall, stdout = run_process([sys.executable, scripts[engine]], tmp, env)
                except Exception as error:  # report and go on
                    results[engine] = {"error": "%s: %s" % (type(error).__name__, error)}
                    continue
                row = json.loads(stdout)
                row["wall"] = wall
                if round_ > 0:
                    runs[engine].append(row)
        results["python_startup_ms"] = statistics.median(walls[1:]) * 1e3
        for engine in engines:
            if engine in results:
                continue
            rows = runs[engine]
            med = {key: statistics.median(r[key] for r in rows) * 1e3
                   for key in ("numpy", "import", "compile_call", "wall")}
            results[engine] = {
                "numpy_ms": med["numpy"],
                "import_ms": med["import"],
                "compile_call_ms": med["compile_call"],
                "total_ms": statistics.median((r["import"] + r["compile_call"]) for r in rows) * 1e3,
                "wall_ms": med["wall"],
                "result": rows[0]["result"],
                "processes": processes,
            }
    return results


# ----------------------------------------------------------------------------
# 2. per-call overhead, memory, no copy


def rss_kib():
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (a high-water mark)


OVERHEAD_CASES = [
    # (key, label, function, statement args, target ns)
    ("scalars", "f(1.0, 2.0): a + b", add, lambda: (1.0, 2.0), 120),
    ("arrays", "f(a, b): a[0] + b[0], 1-D float64", first_sum, lambda: (np.ones(16), np.ones(16)), 200),
    ("new_array", "f(8): np.zeros(n)", new_zeros, lambda: (8,), None),
]


def per_call(fn, args, calls, repeat):
    names = ["x%d" % i for i in range(len(args))]
    timer = timeit.Timer("f(%s)" % ", ".join(names), globals=dict(zip(names, args), f=fn))
    return min(timer.repeat(repeat=repeat, number=calls)) / calls * 1e9


def memory_growth(fn, args, calls):
    gc.collect()
    before = rss_kib()
    for _ in range(calls):
        fn(*args)
    gc.collect()
    return rss_kib() - before


def no_copy_checks(engine):
    """(check, passed, detail) of writes through every layout, and a
    read-only argument."""
    checks = []
    k_bump, k_bump2, k_first = engine.njit(bump), engine.njit(bump2), engine.njit(first_sum)

    def write(label, base, view, kernel, where):
        pointer = view.__array_interface__["data"][0]
        try:
            kernel(view)
            ok = base[where] == 1.0 and view.__array_interface__["data"][0] == pointer
            checks.append((label, bool(ok), "" if ok else "the caller's array was not written"))
        except Exception as error:
            checks.append((label, False, "%s: %s" % (type(error).__name__, error)))

    base = np.zeros(8)
    write("C-contiguous 1-D", base, base, k_bump, 0)
    base = np.zeros(16)
    write("strided view a[::2]", base, base[::2], k_bump, 0)
    base = np.zeros(8)
    write("negative stride a[::-1]", base, base[::-1], k_bump, 7)
    base = np.zeros((3, 4), order="F")
    write("Fortran 2-D", base, base, k_bump2, (1, 2))
    base = np.zeros((4, 3))
    write("transposed view a.T", base, base.T, k_bump2, (2, 1))
    readonly = np.ones(4)
    readonly.flags.writeable = False
    try:
        ok = k_first(readonly, readonly) == 2.0
        checks.append(("read-only array, read", bool(ok), "" if ok else "wrong result"))
    except Exception as error:
        checks.append(("read-only array, read", False, "%s: %s" % (type(error).__name__, error)))
    return checks


def overhead(engines, calls, repeat):
    results = {"calls": calls, "repeat": repeat, "rows": []}
    for key, label, fn, make_args, target in OVERHEAD_CASES:
        row = {"key": key, "call": label, "target_ns": target}
        row["python_ns"] = per_call(fn, make_args(), calls, repeat)
        for engine in engines:
            try:
                jitted = engine.njit(fn)
                args = make_args()
                jitted(*args)  # compile
                row["%s_ns" % engine.name] = per_call(jitted, args, calls, repeat)
                row["%s_rss_kib" % engine.name] = memory_growth(jitted, args, calls)
            except Exception as error:
                row["%s_error" % engine.name] = "%s: %s" % (type(error).__name__, str(error).splitlines()[0])
        results["rows"].append(row)
    results["no_copy"] = {}
    for engine in engines:
        try:
            results["no_copy"][engine.name] = no_copy_checks(engine)
        except Exception as error:
            results["no_copy"][engine.name] = [("setup", False, "%s: %s" % (type(error).__name__, error))]
    return results


# ----------------------------------------------------------------------------
# 3. steady state of kernels/


def capped(text, extent):
    """An argument text with every array extent capped at `extent`."""
    m = run_kern.GEN_RE.match(text.strip())
    if not m:
        return text
    kind, inner, dtype = m.group(1), m.group(2), m.group(3)
    parts = run_kern.split_top_level(inner)
    dims, rest = (parts[:-1], parts[-1:]) if kind == "full" else (parts, [])
    dims = [str(min(int(run_kern.parse_number(d)), extent)) for d in dims]
    return "%s(%s)%s" % (kind, ", ".join(dims + rest), ":" + dtype if dtype else "")


def steady(fn, args, seconds):
    started = time.perf_counter()
    fn(*args)
    first = time.perf_counter() - started
    calls = []
    deadline = time.perf_counter() + seconds
    while len(calls) < 3 or (time.perf_counter() < deadline and len(calls) < 100000):
        started = time.perf_counter()
        fn(*args)
        calls.append(time.perf_counter() - started)
    return {"first_call_ms": first * 1e3, "median_ms": statistics.median(calls) * 1e3, "reps": len(calls)}


def kernels(engines, threads_list, seconds, extent, text_filter):
    rows = []
    files = compare_numba.kern_files([os.path.join(ROOT, "kernels")])
    for path in files:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        for lineno, call, kernel, arg_texts in compare_numba.bench_lines(source):
            if text_filter and text_filter not in call:
                continue
            if extent:
                arg_texts = [capped(t, extent) for t in arg_texts]
            label = "%s:%d %s" % (os.path.basename(path), lineno, kernel)
            print("building %s(%s)" % (label, ", ".join(arg_texts)), file=sys.stderr, flush=True)
            rng = run_kern.SplitMix64(42)
            args = [run_kern.make_arg(t, rng, os.path.dirname(path)) for t in arg_texts]
            for threads in threads_list:
                row = {"line": label, "call": "%s(%s)" % (kernel, ", ".join(arg_texts)), "threads": threads}
                for engine in engines:
                    try:
                        engine.set_threads(threads)
                        row[engine.name] = steady(engine.kernel(path, kernel, threads), args, seconds)
                    except Exception as error:  # report and go on
                        row["%s_error" % engine.name] = "%s: %s" % (type(error).__name__, str(error).splitlines()[0])
                print("measured %s threads=%d" % (label, threads), file=sys.stderr, flush=True)
                rows.append(row)
            del args
            gc.collect()
    return rows


def warm_up_kernjit():
    """Pay kernjit's one-time costs (the thread pool) before anything is
    timed, as warm_up_numba does for Numba; loaded apart from the timed
    modules, so no bench row finds its kernel compiled."""
    import kernjit

    x = np.ones(1000)
    kernjit.load(os.path.join(ROOT, "kernels", "axpy_dot.kern")).axpy_par(2.0, x, x.copy())


# ----------------------------------------------------------------------------
# report


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores; Python %s, NumPy %s" % (model, os.cpu_count() or 0, platform.python_version(), np.__version__)


def command_line(script):
    """How this run was started, for a report's header: the interpreter
    (relative when inside the working directory), `script` relative to it,
    and the arguments."""
    executable = sys.executable
    if os.path.abspath(executable).startswith(os.getcwd() + os.sep):
        executable = os.path.relpath(executable)
    return shlex.join([executable, os.path.relpath(os.path.abspath(script))] + sys.argv[1:])


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "?"


def ms(value):
    """Milliseconds, readably (compare_numba.short, with µs below 10 µs)."""
    if value < 0.01:
        return "%.2f µs" % (value * 1e3)
    return compare_numba.short(value)


def separator(*aligns):
    return "| %s |" % " | ".join(aligns)


def markdown(report, engines):
    names = [e.name for e in engines]
    title = {"kernjit": "kernjit", "numba": "Numba"}
    out = ["# kernjit%s from Python" % (" and Numba" if "numba" in names else ""), ""]
    out.append("`$ %s`" % report["command"])
    out.append("")
    out.append("Machine: %s; %s. Load average %s at the start, %s at the end." % (
        report["machine"], ", ".join("%s %s" % (title[e.name], e.version) for e in engines),
        report["load_start"], report["load_end"]))
    if report["quick"]:
        out.append("")
        out.append("**--quick**: a smoke run (few repeats, bench arrays capped at %d per axis), "
                   "not figures to quote." % QUICK_EXTENT)

    first = report.get("first")
    if first:
        procs = next((first[n]["processes"] for n in names if "processes" in first.get(n, {})), 0)
        out += ["", "## First call in a fresh process (median of %d processes)" % procs, ""]
        out.append("| | %s | target |" % " | ".join(title[n] for n in names))
        out.append(separator("---", *["---:"] * (len(names) + 1)))
        rows = [("import numpy (before; not counted)", "numpy_ms", ""),
                ("import", "import_ms", ""),
                ("decorate + compile + first call", "compile_call_ms", ""),
                ("**import + compile + call**", "total_ms", "≤ 30 ms"),
                ("process wall time (start to exit)", "wall_ms", "")]
        for label, key, target in rows:
            cells = []
            for n in names:
                row = first.get(n, {})
                cells.append(ms(row[key]) if key in row else row.get("error", ""))
            out.append("| %s | %s | %s |" % (label, " | ".join(cells), target))
        out.append("| `python -c pass` (for scale) | %s | |" % " | ".join(
            [ms(first["python_startup_ms"])] * len(names)))

    over = report.get("overhead")
    if over:
        out += ["", "## Per-call overhead (timeit, best of %d × %s calls, ns per call)" % (
            over["repeat"], format(over["calls"], ","))]
        out.append("")
        out.append("| call | %s | plain Python | target |" % " | ".join(title[n] for n in names))
        out.append(separator("---", *["---:"] * (len(names) + 2)))
        for row in over["rows"]:
            cells = []
            for n in names:
                cells.append("%.0f" % row[n + "_ns"] if n + "_ns" in row else row.get(n + "_error", ""))
            target = "≤ %d" % row["target_ns"] if row["target_ns"] else ""
            out.append("| %s | %s | %.0f | %s |" % (row["call"], " | ".join(cells), row["python_ns"], target))
        out += ["", "Resident-set growth over %s more calls (KiB):" % format(over["calls"], ","), ""]
        out.append("| call | %s |" % " | ".join(title[n] for n in names))
        out.append(separator("---", *["---:"] * len(names)))
        for row in over["rows"]:
            cells = [str(row[n + "_rss_kib"]) if n + "_rss_kib" in row else "" for n in names]
            out.append("| %s | %s |" % (row["call"], " | ".join(cells)))
        out += ["", "No copy (the kernel writes the caller's memory; the data pointer is unchanged):", ""]
        out.append("| argument | %s |" % " | ".join(title[n] for n in names))
        out.append(separator("---", *["---"] * len(names)))
        checks = over["no_copy"]
        for i, (label, _, _) in enumerate(checks[names[0]]):
            cells = []
            for n in names:
                _, ok, detail = checks[n][i] if i < len(checks[n]) else ("", False, "missing")
                cells.append("ok" if ok else "FAIL: " + detail)
            out.append("| %s | %s |" % (label, " | ".join(cells)))

    rows = report.get("kernels")
    if rows:
        out += ["", "## Steady state of kernels/ (median of calls over %s s)" % report["time"], ""]
        head = ["bench line", "threads"]
        head += ["first call %s" % title[n] for n in names]
        head += ["call %s" % title[n] for n in names]
        if "numba" in names:
            head.append("kernjit / Numba")
        out.append("| %s |" % " | ".join(head))
        out.append(separator("---", *["---:"] * (len(head) - 1)))
        ratios = []
        for row in rows:
            cells = [row["line"], str(row["threads"])]
            for key in ("first_call_ms", "median_ms"):
                for n in names:
                    cells.append(ms(row[n][key]) if n in row else row.get(n + "_error", ""))
            if "numba" in names:
                if "kernjit" in row and "numba" in row:
                    ratio = row["kernjit"]["median_ms"] / row["numba"]["median_ms"]
                    ratios.append(ratio)
                    cells.append("%.2f" % ratio)
                else:
                    cells.append("")
            out.append("| %s |" % " | ".join(cells))
        if ratios:
            geomean = float(np.exp(np.mean(np.log(ratios))))
            out += ["", "Geometric mean of kernjit / Numba: %.2f over %d rows." % (geomean, len(ratios))]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer repeats, small bench arrays")
    parser.add_argument("--threads", default=str(os.cpu_count() or 1),
                        type=lambda t: [int(x) for x in t.split(",")],
                        help="threads for the kernels/ rows, e.g. 1,2 (default: every core)")
    parser.add_argument("--sections", default="first,overhead,kernels",
                        type=lambda t: set(t.split(",")), help="which measurements (default: all three)")
    parser.add_argument("--filter", help="only bench lines whose call contains this text")
    parser.add_argument("--processes", type=int, help="fresh processes for the first call (default 5, quick 3)")
    parser.add_argument("--calls", type=int, help="calls per timeit run (default 1,000,000, quick 100,000)")
    parser.add_argument("--repeat", type=int, help="timeit runs (default 5, quick 3)")
    parser.add_argument("--time", type=float, help="seconds of steady state per row (default 1, quick 0.2)")
    parser.add_argument("--no-numba", action="store_true", help="kernjit columns only")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the tables")
    args = parser.parse_args()
    unknown = args.sections - {"first", "overhead", "kernels"}
    if unknown:
        parser.error("unknown sections: %s" % ", ".join(sorted(unknown)))
    processes = args.processes or (3 if args.quick else 5)
    calls = args.calls or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (3 if args.quick else 5)
    seconds = args.time if args.time is not None else (0.2 if args.quick else 1.0)

    report = {
        "command": command_line(__file__),
        "machine": machine(),
        "load_start": load_average(),
        "quick": args.quick,
        "time": seconds,
        "threads": args.threads,
    }
    names = ["kernjit"] + (["numba"] if HAVE_NUMBA and not args.no_numba else [])
    if "first" in args.sections:
        print("first call in fresh processes ...", file=sys.stderr, flush=True)
        report["first"] = first_call(names, processes)
    engines = [Engine(n) for n in names]
    report["versions"] = {e.name: e.version for e in engines}
    warm_up_kernjit()
    if "numba" in names:
        compare_numba.warm_up_numba()
    if "overhead" in args.sections:
        print("per-call overhead ...", file=sys.stderr, flush=True)
        report["overhead"] = overhead(engines, calls, repeat)
    if "kernels" in args.sections:
        report["kernels"] = kernels(engines, args.threads, seconds, QUICK_EXTENT if args.quick else None, args.filter)
    report["load_end"] = load_average()
    if args.json:
        print(json.dumps(report))
    else:
        print(markdown(report, engines))


if __name__ == "__main__":
    main()
